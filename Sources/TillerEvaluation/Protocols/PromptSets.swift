import Foundation
import TillerCore
import TillerLab

/// The prompt sets of the protocols: the committed ones (Resources/prompt-sets, written by
/// scripts/eval/make_prompt_sets.py) and user files in the same layout; ifeval-format also reads
/// IFEval's own input layout (key, prompt, instruction_id_list, kwargs).
public enum PromptSets {
    /// The layouts, one line each (docs/evaluation.md):
    /// - ifeval-format: {"key", "prompt", "instruction_id_list", "kwargs", optional "question" (the
    ///   prompt without its instruction) and "instruction"};
    /// - persona: {"id", "trait", "trait_description", "instruction" (the system prompt that
    ///   elicits the trait), "question"};
    /// - concept: {"id", "concept", "instruction", "prompt" (the instruction asking for the concept)}.
    public static func keys(_ proto: EvalProtocol) -> (required: [String], optional: [String]) {
        switch proto {
        case .ifevalFormat: return (["key", "prompt", "instruction_id_list", "kwargs"], ["question", "instruction"])
        case .persona: return (["id", "trait", "trait_description", "instruction", "question"], [])
        case .concept: return (["id", "concept", "instruction", "prompt"], [])
        }
    }

    /// The items of a file (`path`) or, with nil, of the committed set. Lines of IFEval's own data
    /// that use instructions outside the format subset are skipped and counted in `skipped`.
    public static func load(_ proto: EvalProtocol, path: String?,
                            maxLineBytes: Int = JSONLinesReader.defaultMaxLineBytes) throws -> (items: [EvalItem], skipped: Int, source: String) {
        let file = try path ?? PromptSetResource.path(proto)
        let lines = try TextFiles.jsonObjectLines(path: file, expecting: keys(proto).required.joined(separator: ", "),
                                                  maxLineBytes: maxLineBytes)
        var items: [EvalItem] = [], skipped = 0, seen: Set<String> = []
        for (number, fields) in lines {
            func fail(_ detail: String) -> TillerError { .io(path: "\(file):\(number)", detail: detail) }
            let (required, optional) = keys(proto)
            if let detail = KeySuggestion.unknownKey(in: fields, known: required + optional) { throw fail(detail) }
            func text(_ key: String) throws -> String {
                guard let value = fields[key] else { throw fail("missing key \(JSONEscaping.quoted(key))") }
                guard let string = value as? String, !string.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
                    throw fail("\(JSONEscaping.quoted(key)) must be a non-empty string")
                }
                return string
            }
            let item: EvalItem
            do {
                guard let parsed = try parse(proto, fields: fields, text: text) else {
                    skipped += 1
                    continue
                }
                item = parsed
            } catch let problem as IFEvalInstruction.Problem {
                throw fail(problem.description)
            }
            guard seen.insert(item.id).inserted else { throw fail("id \(JSONEscaping.quoted(item.id)) is used twice") }
            items.append(item)
        }
        guard !items.isEmpty else {
            throw TillerError.io(path: file, detail: skipped > 0 ? "none of its \(skipped) lines uses only instructions Tiller checks" : "holds no items")
        }
        return (items, skipped, path ?? "the committed \(proto.rawValue) set")
    }

    private static func user(_ text: String) -> [LabMessage] { [LabMessage(role: "user", content: text)] }

    /// One line's item; nil for an IFEval line that uses an instruction Tiller does not check.
    private static func parse(_ proto: EvalProtocol, fields: [String: Any], text: (String) throws -> String) throws -> EvalItem? {
        switch proto {
        case .ifevalFormat:
            let id: String
            if let number = fields["key"] as? NSNumber, String(cString: number.objCType) != "c", let key = Int(exactly: number.doubleValue) {
                id = String(key) // IFEval's own keys are integers
            } else {
                id = try text("key")
            }
            guard let ids = fields["instruction_id_list"] as? [String], !ids.isEmpty else {
                throw IFEvalInstruction.Problem("\"instruction_id_list\" must be a non-empty list of strings")
            }
            guard let kwargs = fields["kwargs"] as? [Any], kwargs.count == ids.count else {
                throw IFEvalInstruction.Problem("\"kwargs\" must be a list of \(ids.count) object(s), one per instruction")
            }
            var instructions: [IFEvalInstruction] = []
            for (instructionID, arguments) in zip(ids, kwargs) {
                guard let object = arguments as? [String: Any] else {
                    throw IFEvalInstruction.Problem("\"kwargs\" of \(instructionID) must be an object")
                }
                do {
                    instructions.append(try IFEvalInstruction(id: instructionID, kwargs: object))
                } catch is IFEvalInstruction.Unsupported {
                    return nil
                }
            }
            let bare = fields["question"] == nil ? nil : user(try text("question"))
            return EvalItem(id: id, bare: bare, prompted: user(try text("prompt")), target: .instructions(instructions))
        case .persona:
            let question = try text("question")
            return EvalItem(id: try text("id"), bare: user(question),
                            prompted: [LabMessage(role: "system", content: try text("instruction"))] + user(question),
                            target: .trait(name: try text("trait"), description: try text("trait_description")))
        case .concept:
            let instruction = try text("instruction")
            return EvalItem(id: try text("id"), bare: user(instruction), prompted: user(try text("prompt")),
                            target: .concept(name: try text("concept"), instruction: instruction))
        }
    }
}

/// Where the committed prompt sets lie: the resource bundle SwiftPM builds beside the executable,
/// else this source tree (as `LabModelResource` finds the lab model, and for the same reason:
/// `Bundle.module` traps when its bundle is missing, so it is touched only once seen).
public enum PromptSetResource {
    public static let folder = "prompt-sets"

    public static var bundled: URL? {
        let bundle = Bundle.main.bundleURL.appendingPathComponent("Tiller_TillerEvaluation.resources")
        guard FileManager.default.fileExists(atPath: bundle.path) else { return nil }
        return Bundle.module.url(forResource: folder, withExtension: nil)
    }

    public static var sourceTree: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Resources/\(folder)")
    }

    /// The committed set's file, failing in one line naming the places looked at.
    public static func path(_ proto: EvalProtocol) throws -> String {
        let candidates = [bundled, sourceTree].compactMap { $0?.appendingPathComponent(proto.promptSetName).path }
        if let found = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) { return found }
        throw TillerError.io(path: proto.promptSetName, detail: "the committed prompt set is in none of \(candidates.joined(separator: ", ")); pass --prompts FILE")
    }
}
