import Foundation
import TillerCore
import TillerModels
import TillerSteering

/// One steering file as `tiller generate` names it: a `--steer-file` name or a path, with an
/// alpha and a location that replace the file's own (nil: the file's).
struct SteerEntry: Equatable {
    var name: String
    var alpha: Float?
    var location: SteeringLocation?

    /// "NAME" or "NAME:ALPHA", where ALPHA is a finite number after the last colon (a name with
    /// a colon and no number after it is taken whole).
    init(parsing text: String) throws {
        if let colon = text.lastIndex(of: ":"), let alpha = Float(text[text.index(after: colon)...]) {
            guard alpha.isFinite, NumericRange.steeringAlpha.contains(alpha) else {
                throw Problem("alpha \(alpha) in \"\(text)\" is out of range (allowed \(NumericRange.steeringAlpha))")
            }
            name = String(text[..<colon])
            self.alpha = alpha
        } else {
            name = text
        }
        guard !name.isEmpty else { throw Problem("\"\(text)\" names no steering file") }
    }

    init(name: String, alpha: Float? = nil, location: SteeringLocation? = nil) {
        self.name = name
        self.alpha = alpha
        self.location = location
    }

    /// What is wrong with a written entry, in words (the caller says where).
    struct Problem: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }
}

/// The steering files of a `tiller generate` run, each read once and checked against the model,
/// and each prompt line's `SequenceSteering` over them.
final class GenerateSteering {
    let modelDirectory: String
    /// --steer-file NAME=PATH.
    let named: [String: String]
    private(set) var interventions: [Intervention] = []
    private(set) var indexOfPath: [String: Int] = [:]
    private lazy var fingerprint = Result<ModelFingerprint, Error> { try ModelFingerprint(directory: modelDirectory) }

    init(modelDirectory: String, named: [String: String]) {
        self.modelDirectory = modelDirectory
        self.named = named
    }

    /// Parses the --steer-file values (NAME=PATH, names unique and without ':').
    static func names(_ values: [String]) throws -> [String: String] {
        var named: [String: String] = [:]
        for value in values {
            guard let equals = value.firstIndex(of: "="), equals != value.startIndex, value.index(after: equals) != value.endIndex else {
                throw TillerError.invalidArgument(op: "--steer-file", detail: "\"\(value)\" is not NAME=PATH")
            }
            let name = String(value[..<equals]), path = String(value[value.index(after: equals)...])
            guard !name.contains(":") else {
                throw TillerError.invalidArgument(op: "--steer-file", detail: "the name \"\(name)\" contains ':' (it separates an alpha)")
            }
            guard named[name] == nil else {
                throw TillerError.invalidArgument(op: "--steer-file", detail: "the name \"\(name)\" is given twice")
            }
            named[name] = path
        }
        return named
    }

    /// The intervention `name` refers to (loaded on first use): a --steer-file name, else a path.
    /// Files ending in .gguf are llama.cpp/repeng control vectors, others Tiller steering files.
    func intervention(_ name: String) throws -> Int {
        let path = named[name] ?? name
        let key = URL(fileURLWithPath: path).standardizedFileURL.path
        if let index = indexOfPath[key] { return index }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else {
            throw TillerError.io(path: path, detail: named[name] == nil
                ? "no such steering file (nor a --steer-file name)" : "no such steering file (--steer-file \(name))")
        }
        let model = try fingerprint.get()
        let intervention: Intervention
        if path.lowercased().hasSuffix(".gguf") {
            intervention = try ControlVector.read(path: path).intervention(for: model, path: path)
        } else {
            intervention = try SteeringFile.load(path: path, for: model)
        }
        interventions.append(intervention)
        indexOfPath[key] = interventions.count - 1
        return interventions.count - 1
    }

    /// The steering of one line: its own entries, or the run's when it gives none; the line's
    /// alpha and location replace the run's, and fill in for its own entries that give none.
    func steering(line: PromptFile.Line, run: [SteerEntry], systemLength: Int) throws -> SequenceSteering {
        let applications = try entries(line: line, run: run).map {
            SteeringApplication(intervention: try intervention($0.name), alpha: $0.alpha, location: $0.location)
        }
        return SequenceSteering(applications, systemLength: line.systemLength ?? systemLength)
    }

    /// The steering entries of one line, in order: its own, or the run's when it gives none.
    func entries(line: PromptFile.Line, run: [SteerEntry]) -> [SteerEntry] {
        if let own = line.steer {
            return own.map { SteerEntry(name: $0.name, alpha: $0.alpha ?? line.alpha, location: $0.location ?? line.location) }
        }
        return run.map { SteerEntry(name: $0.name, alpha: line.alpha ?? $0.alpha, location: line.location ?? $0.location) }
    }
}

extension ModelDirectory {
    /// Tokens of a chat prompt that are its system prompt: the leading system messages rendered
    /// alone (no generation prompt), as far as their tokens agree with the whole prompt's. 0 when
    /// the conversation does not start with a system message.
    static func systemLength(_ messages: [ChatMessage], ids: [Int32], template: ChatTemplate, tokenizer: Tokenizer) throws -> Int {
        try ChatPrompt.systemLength(messages, ids: ids, template: template, tokenizer: tokenizer)
    }
}
