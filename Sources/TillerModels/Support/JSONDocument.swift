/// A JSON document read by TillerModels' strict reader (`JSONValue`: invalid UTF-8, duplicate
/// keys, NaN, deep nesting and trailing bytes are errors, nothing traps), for callers outside
/// the module: `tiller serve` reads every request body with it.
public enum JSONDocument: Sendable {
    case object([Member])
    case array([JSONDocument])
    case string(String)
    /// A number's text; `int` when it is an integer literal that fits an Int.
    case number(int: Int?, text: String)
    case bool(Bool)
    case null

    public struct Member: Sendable {
        public let key: String
        public let value: JSONDocument
    }

    /// Parses a whole document; the error says what is wrong and at which byte.
    public static func parse(_ bytes: [UInt8]) throws -> JSONDocument {
        JSONDocument(try JSONValue.parse(bytes))
    }

    init(_ value: JSONValue) {
        switch value {
        case .object(let members): self = .object(members.map { Member(key: $0.key, value: JSONDocument($0.value)) })
        case .array(let items): self = .array(items.map(JSONDocument.init))
        case .string(let s): self = .string(s)
        case .number(let int, let text): self = .number(int: int, text: text)
        case .bool(let b): self = .bool(b)
        case .null: self = .null
        }
    }

    /// The first member called `key` (compared by UTF-8 bytes), or nil.
    public subscript(key: String) -> JSONDocument? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.key.utf8.elementsEqual(key.utf8) }?.value
    }

    /// What the value is, for error messages: "a boolean", "a number".
    public var kindName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    public var isNull: Bool { if case .null = self { return true }; return false }
}
