import TillerCore
import TillerModels
import TillerSteering

/// A /v1/chat/completions or /v1/completions body, read field by field so every wrong field is a
/// 400 naming it. Fields OpenAI clients send that Tiller does not use (user, logit_bias,
/// frequency_penalty, ...) are ignored, as other OpenAI-compatible servers do.
public struct CompletionRequest: Sendable {
    public enum Prompt: Sendable, Equatable {
        case text(String)
        case messages([ChatMessage])
        case ids([Int32])
    }

    /// One entry of "steering": a --steer-file/--steer-dir name, with an alpha and a location
    /// that replace the file's own (nil: the file's), as a `tiller generate` line's "steer".
    public struct Steer: Sendable, Equatable {
        public var name: String
        public var alpha: Float?
        public var location: SteeringLocation?
    }

    public var prompt: Prompt
    public var maxTokens: Int?
    public var temperature: Float = 0
    public var topP: Float = 1
    public var topK: Int = 0
    public var seed: UInt64 = 0
    public var stop: [String] = []
    public var stream = false
    public var includeUsage = false
    public var steering: [Steer] = []

    /// Parses a body. `chat`: messages (chat completions), else prompt (completions).
    public init(body: [UInt8], chat: Bool) throws {
        let document: JSONDocument
        do {
            document = try JSONDocument.parse(body)
        } catch {
            throw APIError("the body is not valid JSON (\(error))", code: "invalid_json")
        }
        guard case .object = document else { throw APIError("the body must be a JSON object, not \(document.kindName)", code: "invalid_json") }
        let fields = Fields(document)

        if chat {
            prompt = .messages(try Self.messages(fields.required("messages")))
        } else {
            prompt = try Self.prompt(fields.required("prompt"))
        }
        _ = try fields.string("model")
        maxTokens = try fields.int(chat && fields.has("max_completion_tokens") ? "max_completion_tokens" : "max_tokens", 0...Int.max)
        if let value = try fields.float("temperature", 0...2) { temperature = value }
        if let value = try fields.float("top_p", 0...1) {
            guard value > 0 else { throw APIError.field("top_p", "0 keeps no token (allowed (0, 1])") }
            topP = value
        }
        if let value = try fields.int("top_k", 0...Int.max) { topK = value }
        if let value = try fields.int("seed", 0...Int.max) { seed = UInt64(value) }
        if let n = try fields.int("n", 1...Int.max), n != 1 { throw APIError.field("n", "only n = 1 is served, not \(n)") }
        stream = try fields.bool("stream") ?? false
        if let options = fields["stream_options"], !options.isNull {
            guard case .object = options else { throw APIError.field("stream_options", "must be an object, not \(options.kindName)") }
            includeUsage = try Fields(options, prefix: "stream_options.").bool("include_usage") ?? false
        }
        stop = try Self.stop(fields["stop"])
        steering = try Self.steering(fields["steering"])
    }

    private static func messages(_ value: JSONDocument) throws -> [ChatMessage] {
        guard case .array(let items) = value else { throw APIError.field("messages", "must be an array, not \(value.kindName)") }
        guard !items.isEmpty else { throw APIError.field("messages", "is empty") }
        return try items.enumerated().map { i, item in
            let name = "messages[\(i)]"
            guard case .object = item else { throw APIError.field(name, "must be an object, not \(item.kindName)") }
            let fields = Fields(item, prefix: name + ".")
            guard let role = try fields.string("role") else { throw APIError.field(name + ".role", "is missing") }
            return ChatMessage(role: role, content: try content(item["content"], name: name + ".content"))
        }
    }

    /// A message's content: a string, null (an assistant turn with tool calls), or OpenAI's list
    /// of parts, of which only text parts can be read by a language model.
    private static func content(_ value: JSONDocument?, name: String) throws -> String {
        switch value {
        case .string(let text): return text
        case .null, nil: return ""
        case .array(let parts):
            return try parts.enumerated().map { j, part in
                guard case .string(let type) = part["type"], type == "text", case .string(let text) = part["text"] else {
                    throw APIError.field("\(name)[\(j)]", "only {\"type\": \"text\", \"text\": ...} parts are served")
                }
                return text
            }.joined()
        case .some(let other): throw APIError.field(name, "must be a string or a list of text parts, not \(other.kindName)")
        }
    }

    /// A completion prompt: a string, a list of one string, or token ids (a list of integers).
    private static func prompt(_ value: JSONDocument) throws -> Prompt {
        switch value {
        case .string(let text): return .text(text)
        case .array(let items):
            if items.count == 1, case .string(let text) = items[0] { return .text(text) }
            guard !items.isEmpty else { throw APIError.field("prompt", "is empty") }
            return .ids(try items.enumerated().map { i, item in
                guard case .number(let int?, _) = item, let id = Int32(exactly: int), id >= 0 else {
                    throw APIError.field("prompt[\(i)]", "must be a token id (an integer >= 0) or the prompt one string, not \(item.kindName)")
                }
                return id
            })
        default: throw APIError.field("prompt", "must be a string or a list of token ids, not \(value.kindName)")
        }
    }

    private static func stop(_ value: JSONDocument?) throws -> [String] {
        let stops: [String]
        switch value {
        case nil, .null: return []
        case .string(let s): stops = [s]
        case .array(let items):
            stops = try items.enumerated().map { i, item in
                guard case .string(let s) = item else { throw APIError.field("stop[\(i)]", "must be a string, not \(item.kindName)") }
                return s
            }
        case .some(let other): throw APIError.field("stop", "must be a string or a list of strings, not \(other.kindName)")
        }
        guard stops.count <= 4 else { throw APIError.field("stop", "has \(stops.count) strings (at most 4)") }
        if stops.contains(where: \.isEmpty) { throw APIError.field("stop", "a stop string is empty") }
        return stops
    }

    /// "steering": a list of {"name", "alpha", "location"} (or "NAME" strings), stacked in order.
    private static func steering(_ value: JSONDocument?) throws -> [Steer] {
        switch value {
        case nil, .null: return []
        case .array(let items):
            return try items.enumerated().map { i, item in
                let name = "steering[\(i)]"
                switch item {
                case .string(let s):
                    guard !s.isEmpty else { throw APIError.field(name, "names no steering file") }
                    return Steer(name: s)
                case .object:
                    let fields = Fields(item, prefix: name + ".")
                    guard let file = try fields.string("name"), !file.isEmpty else { throw APIError.field(name + ".name", "is missing") }
                    let alpha = try fields.float("alpha", NumericRange.steeringAlpha)
                    var location: SteeringLocation?
                    if let text = try fields.string("location") {
                        guard let parsed = SteeringLocation(name: text) else {
                            throw APIError.field(name + ".location", "\"\(text)\" is not all, answer_only or question_and_answer")
                        }
                        location = parsed
                    }
                    return Steer(name: file, alpha: alpha, location: location)
                default:
                    throw APIError.field(name, "must be an object {\"name\", \"alpha\", \"location\"} or a name, not \(item.kindName)")
                }
            }
        case .some(let other): throw APIError.field("steering", "must be a list, not \(other.kindName)")
        }
    }
}

/// Typed access to an object's members; null counts as absent. Errors name `prefix + key`.
struct Fields {
    let object: JSONDocument
    var prefix = ""

    init(_ object: JSONDocument, prefix: String = "") {
        self.object = object
        self.prefix = prefix
    }

    subscript(key: String) -> JSONDocument? { object[key] }

    func has(_ key: String) -> Bool { !(object[key]?.isNull ?? true) }

    func required(_ key: String) throws -> JSONDocument {
        guard let value = object[key], !value.isNull else { throw APIError.field(prefix + key, "is missing") }
        return value
    }

    func string(_ key: String) throws -> String? {
        switch object[key] {
        case nil, .null: return nil
        case .string(let s): return s
        case .some(let other): throw APIError.field(prefix + key, "must be a string, not \(other.kindName)")
        }
    }

    func bool(_ key: String) throws -> Bool? {
        switch object[key] {
        case nil, .null: return nil
        case .bool(let b): return b
        case .some(let other): throw APIError.field(prefix + key, "must be true or false, not \(other.kindName)")
        }
    }

    func int(_ key: String, _ range: ClosedRange<Int>) throws -> Int? {
        switch object[key] {
        case nil, .null: return nil
        case .number(let int, let text):
            // 2.0 is an integer to JSON's readers in Python and JavaScript: accept it.
            guard let value = int ?? Double(text).flatMap({ $0.rounded() == $0 ? Int(exactly: $0) : nil }) else {
                throw APIError.field(prefix + key, "\(text) is not an integer in \(range)")
            }
            guard range.contains(value) else { throw APIError.field(prefix + key, "\(value) is out of range (allowed \(range))") }
            return value
        case .some(let other): throw APIError.field(prefix + key, "must be an integer, not \(other.kindName)")
        }
    }

    func float(_ key: String, _ range: ClosedRange<Float>) throws -> Float? {
        switch object[key] {
        case nil, .null: return nil
        case .number(_, let text):
            guard let value = Float(text), value.isFinite, range.contains(value) else {
                throw APIError.field(prefix + key, "\(text) is out of range (allowed \(range.lowerBound)...\(range.upperBound))")
            }
            return value
        case .some(let other): throw APIError.field(prefix + key, "must be a number, not \(other.kindName)")
        }
    }
}
