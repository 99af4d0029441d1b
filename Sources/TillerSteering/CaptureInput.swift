import Foundation
import TillerCore
import TillerModels

/// A prompt of a capture triplet as written in the JSONL: a plain string (encoded raw, with the
/// tokenizer's special tokens, no chat template), chat messages (rendered through the model's chat
/// template with the generation prompt) or token ids (used as they are).
public enum CapturePrompt: Sendable, Equatable {
    case text(String)
    case messages([ChatMessage])
    case ids([Int32])
}

/// y' as written: text (encoded without special tokens and appended to each prompt's ids) or ids.
public enum CaptureCompletion: Sendable, Equatable {
    case text(String)
    case ids([Int32])
}

/// One line of a triplets file, before tokenization.
public struct CaptureTripletLine: Sendable, Equatable {
    /// 1-based line number in the file, for messages.
    public var number: Int
    /// x': the prompt with the steering text.
    public var steered: CapturePrompt
    /// x: the same prompt without it.
    public var unsteered: CapturePrompt
    /// y'; nil: sampled from x' by the model.
    public var completion: CaptureCompletion?
    /// The triplet's "alpha" (default 1): multiplies a steering file's alpha when the objectives
    /// steer xy' (a soft label, such as a judge's score). Capture ignores it.
    public var alpha: Float
    /// Judge scores in [0, 1] a training run filters on ("coherence"; "attribute" for positives):
    /// nil when the line has none.
    public var coherence: Double?
    public var attribute: Double?

    public init(number: Int, steered: CapturePrompt, unsteered: CapturePrompt, completion: CaptureCompletion?, alpha: Float = 1,
                coherence: Double? = nil, attribute: Double? = nil) {
        self.number = number
        self.steered = steered
        self.unsteered = unsteered
        self.completion = completion
        self.alpha = alpha
        self.coherence = coherence
        self.attribute = attribute
    }
}

/// The input of `tiller capture`: JSON Lines, one triplet (x, x', y') per line.
///
/// A triplet line is {"steered": P, "unsteered": P, "completion": C}, where P is a string (a raw
/// prompt), a list of {"role", "content"} messages, or a list of token ids, and C (optional: when
/// absent, y' is sampled from x') is a string or a list of token ids. A lab corpus line (`tiller lab
/// corpus`: it has "messages" and "unsteered_messages") is read as x' = "messages" without its final
/// assistant message, x = "unsteered_messages" without its final assistant message, y' = the content
/// of the final assistant message of "messages". Any other key is an error naming the nearest
/// known one; blank lines are skipped.
public enum CaptureInput {
    static let expecting = "\"steered\" and \"unsteered\" (or a lab corpus line)"
    /// The keys of a triplet line, and those of a lab corpus line (`LabExample.jsonLine`); any
    /// other key is an error (a typo would drop what it asked for).
    public static let tripletKeys = ["steered", "unsteered", "completion"] + labelKeys
    public static let labCorpusKeys = ["id", "kind", "placement", "topic", "question_template", "concept", "trait",
                                       "format", "steering_prompt", "messages", "unsteered_messages"] + labelKeys

    public static func read(_ path: String, maxLineBytes: Int = JSONLinesReader.defaultMaxLineBytes) throws -> [CaptureTripletLine] {
        try parse(objects: try TextFiles.jsonObjectLines(path: path, expecting: expecting, maxLineBytes: maxLineBytes), path: path)
    }

    public static func parse(_ data: Data, path: String) throws -> [CaptureTripletLine] {
        try parse(objects: try TextFiles.jsonObjectLines(data, path: path, expecting: expecting), path: path)
    }

    static func parse(objects: [(number: Int, fields: [String: Any])], path: String) throws -> [CaptureTripletLine] {
        var lines: [CaptureTripletLine] = []
        for (number, fields) in objects {
            func fail(_ detail: String) -> TillerError { .io(path: "\(path):\(number)", detail: detail) }
            do {
                lines.append(try line(fields, number: number))
            } catch let problem as Problem {
                throw fail(problem.text)
            }
        }
        return lines
    }

    struct Problem: Error { let text: String; init(_ text: String) { self.text = text } }

    static func line(_ fields: [String: Any], number: Int) throws -> CaptureTripletLine {
        if fields["steered"] == nil, fields["unsteered"] == nil, fields["messages"] != nil || fields["unsteered_messages"] != nil {
            if let unknown = KeySuggestion.unknownKey(in: fields, known: labCorpusKeys) { throw Problem(unknown) }
            return try labLine(fields, number: number)
        }
        if let unknown = KeySuggestion.unknownKey(in: fields, known: tripletKeys) { throw Problem(unknown) }
        guard let steered = fields["steered"] else { throw Problem("missing \"steered\" (the prompt with the steering text)") }
        guard let unsteered = fields["unsteered"] else { throw Problem("missing \"unsteered\" (the prompt without it)") }
        var completion: CaptureCompletion?
        if let value = fields["completion"], !(value is NSNull) {
            if let text = value as? String {
                completion = .text(text)
            } else if let list = value as? [Any] {
                completion = .ids(try ids(list, key: "\"completion\"", allowEmpty: true))
            } else {
                throw Problem("\"completion\" must be a string or a list of token ids")
            }
        }
        var line = CaptureTripletLine(number: number, steered: try prompt(steered, key: "\"steered\""),
                                      unsteered: try prompt(unsteered, key: "\"unsteered\""), completion: completion)
        try readLabels(fields, into: &line)
        return line
    }

    /// A `tiller lab corpus` line.
    static func labLine(_ fields: [String: Any], number: Int) throws -> CaptureTripletLine {
        guard let steeredValue = fields["messages"] else { throw Problem("a lab corpus line needs \"messages\"") }
        guard let unsteeredValue = fields["unsteered_messages"] else { throw Problem("a lab corpus line needs \"unsteered_messages\"") }
        let steered = try messages(steeredValue, key: "\"messages\"")
        let unsteered = try messages(unsteeredValue, key: "\"unsteered_messages\"")
        guard let answer = steered.last, answer.role == "assistant", steered.count > 1 else {
            throw Problem("\"messages\" must end with the assistant's answer after the prompt")
        }
        guard unsteered.last?.role == "assistant", unsteered.count > 1 else {
            throw Problem("\"unsteered_messages\" must end with the assistant's answer after the prompt")
        }
        var line = CaptureTripletLine(number: number, steered: .messages(Array(steered.dropLast())),
                                      unsteered: .messages(Array(unsteered.dropLast())), completion: .text(answer.content))
        try readLabels(fields, into: &line)
        return line
    }

    /// The keys training reads on either kind of line: "alpha" (a soft label multiplying the
    /// steering file's alpha) and the judge scores "coherence" and "attribute" in [0, 1].
    static let labelKeys = ["alpha", "coherence", "attribute"]

    static func readLabels(_ fields: [String: Any], into line: inout CaptureTripletLine) throws {
        func number(_ key: String, in range: ClosedRange<Double>) throws -> Double? {
            guard let value = fields[key] else { return nil }
            guard let n = value as? NSNumber, String(cString: n.objCType) != "c" else { throw Problem("\"\(key)\" must be a number") }
            do {
                return try NumericRange.check("\"\(key)\"", n.doubleValue, in: range)
            } catch let error as TillerError {
                throw Problem(error.description)
            }
        }
        let alphaRange = Double(NumericRange.steeringAlpha.lowerBound)...Double(NumericRange.steeringAlpha.upperBound)
        line.alpha = Float(try number("alpha", in: alphaRange) ?? 1)
        line.coherence = try number("coherence", in: 0...1)
        line.attribute = try number("attribute", in: 0...1)
    }

    static func prompt(_ value: Any, key: String) throws -> CapturePrompt {
        if let text = value as? String { return .text(text) }
        guard let list = value as? [Any], !list.isEmpty else {
            throw Problem("\(key) must be a string, a non-empty list of {\"role\", \"content\"} or a list of token ids")
        }
        if list.first is [String: Any] { return .messages(try messages(value, key: key)) }
        return .ids(try ids(list, key: key, allowEmpty: false))
    }

    static func messages(_ value: Any, key: String) throws -> [ChatMessage] {
        guard let list = value as? [Any], !list.isEmpty else { throw Problem("\(key) must be a non-empty list of {\"role\", \"content\"}") }
        return try list.enumerated().map { i, item in
            guard let message = item as? [String: Any], let role = message["role"] as? String,
                  let content = message["content"] as? String else {
                throw Problem("\(key)[\(i)] must be {\"role\": string, \"content\": string}")
            }
            return ChatMessage(role: role, content: content)
        }
    }

    static func ids(_ list: [Any], key: String, allowEmpty: Bool) throws -> [Int32] {
        guard allowEmpty || !list.isEmpty else { throw Problem("\(key) must not be empty") }
        return try list.map { item in
            // Booleans come back as NSNumbers too, of objCType "c".
            guard let number = item as? NSNumber, String(cString: number.objCType) != "c",
                  let id = Int32(exactly: number.doubleValue), id >= 0 else {
                throw Problem("\(key) must hold non-negative integer token ids, found \(item)")
            }
            return id
        }
    }
}

/// One triplet as token ids: x' (steered prompt), x (unsteered prompt) and y' (the completion),
/// the same ids appended to both prompts. The captured rows are the longest common suffix of x'y'
/// and xy' (token-identical: y' and whatever the prompts share at their end).
public struct CaptureTriplet: Sendable, Equatable {
    public var steeredPrompt: [Int32]
    public var unsteeredPrompt: [Int32]
    public var completion: [Int32]
    /// Tokens of x that are its system prompt (0 without one): what a question_and_answer
    /// location leaves out when a steering file is replayed on xy'.
    public var unsteeredSystemLength: Int

    public init(steeredPrompt: [Int32], unsteeredPrompt: [Int32], completion: [Int32], unsteeredSystemLength: Int = 0) {
        self.steeredPrompt = steeredPrompt
        self.unsteeredPrompt = unsteeredPrompt
        self.completion = completion
        self.unsteeredSystemLength = unsteeredSystemLength
    }

    /// x'y'
    public var steeredSequence: [Int32] { steeredPrompt + completion }
    /// xy'
    public var unsteeredSequence: [Int32] { unsteeredPrompt + completion }

    /// Length of the longest common suffix of x'y' and xy'.
    public var sharedLength: Int {
        let a = steeredSequence, b = unsteeredSequence
        var n = 0
        while n < a.count, n < b.count, a[a.count - 1 - n] == b[b.count - 1 - n] { n += 1 }
        return n
    }

    /// The captured positions in xy'.
    public var rowPositions: Range<Int> {
        let total = unsteeredPrompt.count + completion.count
        return (total - sharedLength)..<total
    }

    /// How far x'y' is shifted against xy': the steered position of unsteered position p is p + offset.
    public var steeredOffset: Int { steeredPrompt.count - unsteeredPrompt.count }

    /// The role of position p of xy' (`CaptureRole`).
    public func role(at position: Int) -> CaptureRole {
        if position >= unsteeredPrompt.count { return .answer }
        return position == unsteeredPrompt.count - 1 ? .lastPrompt : .prompt
    }
}

/// The `role` tensor of a capture.
public enum CaptureRole: Int32, Sendable, CaseIterable {
    /// A shared prompt token before the last prompt token.
    case prompt = 0
    /// The last prompt token (its logits give y'_1).
    case lastPrompt = 1
    /// A token of y'.
    case answer = 2
}

/// Turns triplet lines into token ids with a model's tokenizer and chat template, sampling y'
/// where a line has none.
public final class CapturePreparer {
    public let tokenizer: Tokenizer
    private let templateDirectory: String?
    private var loadedTemplate: ChatTemplate?

    /// `template` is used for message prompts; when nil it is read from `templateDirectory` the
    /// first time a line needs it.
    public init(tokenizer: Tokenizer, template: ChatTemplate? = nil, templateDirectory: String? = nil) {
        self.tokenizer = tokenizer
        self.loadedTemplate = template
        self.templateDirectory = templateDirectory
    }

    private func template() throws -> ChatTemplate {
        if let loadedTemplate { return loadedTemplate }
        guard let templateDirectory else {
            throw TillerError.invalidArgument(op: "capture", detail: "chat messages need the model's chat template")
        }
        let template = try ChatTemplate(directory: templateDirectory)
        loadedTemplate = template
        return template
    }

    /// The ids of a prompt: raw text with the tokenizer's special tokens, messages through the chat
    /// template with the generation prompt (the template writes any BOS), ids as they are.
    public func ids(_ prompt: CapturePrompt) throws -> [Int32] {
        switch prompt {
        case .text(let text): return try tokenizer.encode(text, addSpecialTokens: true)
        case .ids(let ids): return ids
        case .messages(let messages):
            let text = try template().render(messages, addGenerationPrompt: true)
            return try tokenizer.encode(text, addSpecialTokens: false)
        }
    }

    /// Tokens of a prompt that are its system prompt: the leading system messages rendered alone
    /// (no generation prompt), as far as their tokens agree with the prompt's. 0 otherwise.
    public func systemLength(_ prompt: CapturePrompt, ids: [Int32]) throws -> Int {
        guard case .messages(let messages) = prompt else { return 0 }
        let system = messages.prefix { $0.role == "system" }
        guard !system.isEmpty else { return 0 }
        let prefix = try tokenizer.encode(try template().render(Array(system), addGenerationPrompt: false), addSpecialTokens: false)
        return zip(prefix, ids).prefix { $0 == $1 }.count
    }

    /// The ids of a given completion (text without special tokens).
    public func ids(_ completion: CaptureCompletion) throws -> [Int32] {
        switch completion {
        case .text(let text): return try tokenizer.encode(text, addSpecialTokens: false)
        case .ids(let ids): return ids
        }
    }

    /// Every line as token ids. Lines without a completion get y' sampled from x' by `generator`
    /// with `options` (greedy unless its temperature is > 0); a trailing end-of-sequence token is
    /// dropped, so y' is the answer's tokens in every case. Errors name the file and line.
    public func prepare(_ lines: [CaptureTripletLine], path: String, generator: Generator?, options: GenerationOptions,
                        progress: ((GenerationProgress) -> Void)? = nil) throws -> [CaptureTriplet] {
        var triplets: [CaptureTriplet] = []
        var toSample: [Int] = []
        for line in lines {
            do {
                let steered = try ids(line.steered), unsteered = try ids(line.unsteered)
                guard !steered.isEmpty else { throw TillerError.invalidArgument(op: "capture", detail: "the steered prompt encodes to no tokens") }
                guard !unsteered.isEmpty else { throw TillerError.invalidArgument(op: "capture", detail: "the unsteered prompt encodes to no tokens") }
                let completion = try line.completion.map { try ids($0) } ?? []
                if line.completion == nil { toSample.append(triplets.count) }
                triplets.append(CaptureTriplet(steeredPrompt: steered, unsteeredPrompt: unsteered, completion: completion,
                                               unsteeredSystemLength: try systemLength(line.unsteered, ids: unsteered)))
            } catch let error as TillerError {
                throw TillerError.io(path: "\(path):\(line.number)", detail: Self.detail(error))
            }
        }
        guard !toSample.isEmpty else { return triplets }
        guard let generator else {
            throw TillerError.io(path: "\(path):\(lines[toSample[0]].number)", detail: "no \"completion\" and no model to sample one")
        }
        let requests = toSample.map { GenerationRequest(promptIDs: triplets[$0].steeredPrompt, options: options) }
        let results = try generator.generate(requests, progress: progress)
        for (k, index) in toSample.enumerated() {
            guard results[k].stopReason != .nonFinite else {
                throw TillerError.io(path: "\(path):\(lines[index].number)", detail: "sampling y' from the steered prompt went NaN or Inf; give a \"completion\"")
            }
            var ids = results[k].ids
            if results[k].stopReason == .eos, let last = ids.last, generator.eosTokenIDs.contains(last) { ids.removeLast() }
            triplets[index].completion = ids
        }
        return triplets
    }

    /// An error's text for a message that names the file and line (this file's own errors without
    /// their "capture: invalid argument" prefix).
    static func detail(_ error: TillerError) -> String {
        if case let .invalidArgument("capture", detail) = error { return detail }
        return "\(error)"
    }
}
