import Foundation
import TillerCore
import TillerModels

/// The input of `tiller generate`: JSON Lines, one prompt per line. Each line is an object with
/// "prompt" (a string, encoded with the tokenizer's special tokens), "messages" (a list of
/// {"role", "content"} rendered through the chat template) or "ids" (token ids, used as they
/// are), and optionally "seed" (a non-negative integer overriding --seed for that line). Other
/// keys are ignored; blank lines are skipped.
enum PromptFile {
    enum Prompt: Equatable {
        case text(String)
        case messages([ChatMessage])
        case ids([Int32])
    }

    struct Line {
        var number: Int
        var prompt: Prompt
        var seed: UInt64? = nil
    }

    static func read(_ path: String) throws -> [Line] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else {
            throw TillerError.io(path: path, detail: "no such file")
        }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw TillerError.io(path: path, detail: "cannot read (\(error.localizedDescription))")
        }
        return try parse(data, path: path)
    }

    static func parse(_ data: Data, path: String) throws -> [Line] {
        var lines: [Line] = []
        var number = 0
        for raw in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            number += 1
            let bytes = Data(raw)
            func fail(_ detail: String) -> TillerError { .io(path: "\(path):\(number)", detail: detail) }
            guard let text = String(data: bytes, encoding: .utf8) else { throw fail("not valid UTF-8") }
            if text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { continue }
            guard let object = try? JSONSerialization.jsonObject(with: bytes, options: [.fragmentsAllowed]) else {
                throw fail("not valid JSON")
            }
            guard let fields = object as? [String: Any] else {
                throw fail("expected a JSON object with \"prompt\" or \"messages\"")
            }
            var seed: UInt64?
            if let value = fields["seed"] {
                guard let number = value as? Int, number >= 0 else { throw fail("\"seed\" must be a non-negative integer") }
                seed = UInt64(number)
            }
            let present = ["prompt", "messages", "ids"].filter { fields[$0] != nil }
            guard present.count == 1 else {
                throw fail(present.isEmpty
                    ? "expected \"prompt\" (a string) or \"messages\" (a list of {\"role\", \"content\"})"
                    : "has both \(present.map { "\"\($0)\"" }.joined(separator: " and ")); give one")
            }
            if let value = fields["prompt"] {
                guard let prompt = value as? String else { throw fail("\"prompt\" must be a string") }
                lines.append(Line(number: number, prompt: .text(prompt), seed: seed))
            } else if let value = fields["messages"] {
                guard let list = value as? [Any], !list.isEmpty else {
                    throw fail("\"messages\" must be a non-empty list of {\"role\", \"content\"}")
                }
                var messages: [ChatMessage] = []
                for (i, item) in list.enumerated() {
                    guard let message = item as? [String: Any], let role = message["role"] as? String,
                          let content = message["content"] as? String else {
                        throw fail("messages[\(i)] must be {\"role\": string, \"content\": string}")
                    }
                    messages.append(ChatMessage(role: role, content: content))
                }
                lines.append(Line(number: number, prompt: .messages(messages), seed: seed))
            } else if let value = fields["ids"] {
                guard let list = value as? [Any], !list.isEmpty else { throw fail("\"ids\" must be a non-empty list of token ids") }
                var ids: [Int32] = []
                for item in list {
                    guard let number = item as? NSNumber, let id = Int32(exactly: number.doubleValue), id >= 0 else {
                        throw fail("\"ids\" must hold non-negative integers, found \(item)")
                    }
                    ids.append(id)
                }
                lines.append(Line(number: number, prompt: .ids(ids), seed: seed))
            }
        }
        return lines
    }
}
