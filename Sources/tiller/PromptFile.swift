import Foundation
import TillerCore
import TillerModels
import TillerSteering

/// The input of `tiller generate`: JSON Lines, one prompt per line. Each line is an object with
/// "prompt" (a string, encoded with the tokenizer's special tokens), "messages" (a list of
/// {"role", "content"} rendered through the chat template) or "ids" (token ids, used as they
/// are), and optionally "seed" (a non-negative integer overriding --seed for that line). Any
/// other key is an error naming the nearest known one; blank lines are skipped.
///
/// Steering, all optional: "steer" (a steering file: a --steer-file name or a path, "NAME" or
/// "NAME:ALPHA", or {"file": NAME, "alpha": number, "location": ...}, or a list of these, stacked
/// in order; null or [] for none, whatever --steer says), "alpha" (a number replacing the files'
/// alpha), "location" ("all", "answer_only", "question_and_answer", or {"mask": [0/1 or
/// true/false per prompt token], "generated": bool, default true}) and "system_length" (prompt
/// tokens that are the system prompt, for "question_and_answer"; "messages" lines work it out).
enum PromptFile {
    enum Prompt: Equatable {
        case text(String)
        case messages([ChatMessage])
        case ids([Int32])
    }

    struct Line {
        var number: Int
        var prompt: Prompt
        /// The line's optional "id" (any JSON value), repeated on its output line.
        var id: EchoedJSON? = nil
        var seed: UInt64? = nil
        /// The line's own steering files; nil when it has no "steer" (the run's --steer applies),
        /// [] when it asks for none.
        var steer: [SteerEntry]? = nil
        var alpha: Float? = nil
        var location: SteeringLocation? = nil
        var systemLength: Int? = nil
    }

    /// Every key a line may have; any other is an error (a typo would drop what it asked for).
    static let knownKeys = ["prompt", "messages", "ids", "id", "seed", "steer", "alpha", "location", "system_length"]
    static let expecting = "\"prompt\" or \"messages\""

    static func read(_ path: String, maxLineBytes: Int = JSONLinesReader.defaultMaxLineBytes) throws -> [Line] {
        try parse(objects: try TextFiles.jsonObjectLines(path: path, expecting: expecting, maxLineBytes: maxLineBytes), path: path)
    }

    static func parse(_ data: Data, path: String) throws -> [Line] {
        try parse(objects: try TextFiles.jsonObjectLines(data, path: path, expecting: expecting), path: path)
    }

    static func parse(objects: [(number: Int, fields: [String: Any])], path: String) throws -> [Line] {
        var lines: [Line] = []
        for (number, fields) in objects {
            func fail(_ detail: String) -> TillerError { .io(path: "\(path):\(number)", detail: detail) }
            if let unknown = KeySuggestion.unknownKey(in: fields, known: knownKeys) { throw fail(unknown) }
            var seed: UInt64?
            if let value = fields["seed"] {
                guard let number = value as? Int, number >= 0 else { throw fail("\"seed\" must be a non-negative integer") }
                seed = UInt64(number)
            }
            var steering = Line(number: number, prompt: .ids([]))
            do {
                try readSteering(fields, into: &steering)
            } catch let problem as SteerEntry.Problem {
                throw fail(problem.description)
            }
            let present = ["prompt", "messages", "ids"].filter { fields[$0] != nil }
            guard present.count == 1 else {
                throw fail(present.isEmpty
                    ? "expected \"prompt\" (a string) or \"messages\" (a list of {\"role\", \"content\"})"
                    : "has both \(present.map { "\"\($0)\"" }.joined(separator: " and ")); give one")
            }
            if let value = fields["prompt"] {
                guard let prompt = value as? String else { throw fail("\"prompt\" must be a string") }
                steering.prompt = .text(prompt)
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
                steering.prompt = .messages(messages)
            } else if let value = fields["ids"] {
                guard let list = value as? [Any], !list.isEmpty else { throw fail("\"ids\" must be a non-empty list of token ids") }
                var ids: [Int32] = []
                for item in list {
                    guard let number = item as? NSNumber, let id = Int32(exactly: number.doubleValue), id >= 0 else {
                        throw fail("\"ids\" must hold non-negative integers, found \(item)")
                    }
                    ids.append(id)
                }
                steering.prompt = .ids(ids)
            }
            steering.seed = seed
            steering.id = fields["id"].map(EchoedJSON.init)
            lines.append(steering)
        }
        return lines
    }

    /// The steering keys of a line ("steer", "alpha", "location", "system_length").
    static func readSteering(_ fields: [String: Any], into line: inout Line) throws {
        typealias Problem = SteerEntry.Problem
        func number(_ value: Any) -> Float? {
            // Booleans come back as NSNumbers too, of objCType "c".
            guard let n = value as? NSNumber, String(cString: n.objCType) != "c" else { return nil }
            return Float(n.doubleValue)
        }
        func alpha(_ value: Any, _ key: String) throws -> Float {
            guard let a = number(value), a.isFinite else { throw Problem("\(key) must be a finite number") }
            guard NumericRange.steeringAlpha.contains(a) else { throw Problem("\(key): \(a) is out of range (allowed \(NumericRange.steeringAlpha))") }
            return a
        }
        func location(_ value: Any, _ key: String) throws -> SteeringLocation {
            if let name = value as? String {
                guard let location = SteeringLocation(name: name) else {
                    throw Problem("\(key) \"\(name)\" is not one of \"all\", \"answer_only\", \"question_and_answer\" or {\"mask\": [...]}")
                }
                return location
            }
            guard let object = value as? [String: Any], let list = object["mask"] as? [Any] else {
                throw Problem("\(key) must be a location name or {\"mask\": [0/1 per prompt token], \"generated\": bool}")
            }
            if let unknown = KeySuggestion.unknownKey(in: object, known: ["mask", "generated"]) { throw Problem("\(key): \(unknown)") }
            let mask: [Bool] = try list.map {
                if let flag = $0 as? Bool { return flag }
                if let n = number($0), n == 0 || n == 1 { return n == 1 }
                throw Problem("\(key) mask values must be 0, 1, true or false")
            }
            var generated = true
            if let value = object["generated"] {
                guard let flag = value as? Bool else { throw Problem("\(key) \"generated\" must be true or false") }
                generated = flag
            }
            return .mask(prompt: mask, generated: generated)
        }
        func entry(_ value: Any) throws -> SteerEntry {
            if let text = value as? String { return try SteerEntry(parsing: text) }
            guard let object = value as? [String: Any], let name = object["file"] as? String, !name.isEmpty else {
                throw Problem("\"steer\" must be a steering file (\"NAME\", \"NAME:ALPHA\" or {\"file\": NAME, \"alpha\", \"location\"}), a list of them, or null")
            }
            if let unknown = KeySuggestion.unknownKey(in: object, known: ["file", "alpha", "location"]) {
                throw Problem("\"steer\": \(unknown)")
            }
            return SteerEntry(name: name, alpha: try object["alpha"].map { try alpha($0, "\"steer\" \"alpha\"") },
                              location: try object["location"].map { try location($0, "\"steer\" \"location\"") })
        }
        if let value = fields["steer"] {
            if value is NSNull {
                line.steer = []
            } else if let list = value as? [Any] {
                line.steer = try list.map(entry)
            } else {
                line.steer = [try entry(value)]
            }
        }
        line.alpha = try fields["alpha"].map { try alpha($0, "\"alpha\"") }
        line.location = try fields["location"].map { try location($0, "\"location\"") }
        if let value = fields["system_length"] {
            guard let n = value as? Int, n >= 0, number(value) != nil else { throw Problem("\"system_length\" must be a non-negative integer") }
            line.systemLength = n
        }
    }
}
