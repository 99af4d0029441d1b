// A small JSON reader for tokenizer.json and tokenizer_config.json.
//
// Foundation's JSONSerialization is not used on purpose: it returns objects as dictionaries keyed by
// Swift String, whose equality is canonical equivalence, so two vocabulary entries that differ only
// in Unicode normalisation ("é" and "e\u{301}") would collapse into one. Objects here keep every
// member, in file order, and strings keep their exact scalars.

enum TokJSON {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([TokJSON])
    case object([(key: String, value: TokJSON)])

    /// The first member called `key` (compared by UTF-8 bytes), or nil. Linear: meant for the small
    /// objects of a tokenizer.json, not for the vocabulary.
    subscript(key: String) -> TokJSON? {
        guard case let .object(members) = self else { return nil }
        for member in members where member.key.utf8.elementsEqual(key.utf8) { return member.value }
        return nil
    }

    var stringValue: String? { if case let .string(s) = self { return s }; return nil }
    var boolValue: Bool? { if case let .bool(b) = self { return b }; return nil }
    var arrayValue: [TokJSON]? { if case let .array(a) = self { return a }; return nil }
    var objectValue: [(key: String, value: TokJSON)]? { if case let .object(o) = self { return o }; return nil }
    var isNull: Bool { if case .null = self { return true }; return false }

    /// An integer-valued number that fits in Int32-range arithmetic, or nil.
    var intValue: Int? {
        guard case let .number(d) = self, d.isFinite, d == d.rounded(), abs(d) < 9.0e15 else { return nil }
        return Int(d)
    }

    /// A short description of the kind of value, for error messages.
    var kindName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    struct ParseError: Error {
        let message: String
    }

    static func parse(_ bytes: [UInt8]) throws -> TokJSON {
        var parser = TokJSONParser(bytes: bytes)
        return try parser.parseDocument()
    }
}

private struct TokJSONParser {
    let bytes: [UInt8]
    var pos = 0
    var depth = 0
    static let maxDepth = 256

    init(bytes: [UInt8]) { self.bytes = bytes }

    mutating func parseDocument() throws -> TokJSON {
        // A UTF-8 byte-order mark is tolerated.
        if bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF { pos = 3 }
        skipSpace()
        if pos == bytes.count { throw TokJSON.ParseError(message: "the file is empty") }
        let value = try parseValue()
        skipSpace()
        guard pos == bytes.count else { throw fail("unexpected \(describeHere()) after the top-level value") }
        return value
    }

    func fail(_ message: String) -> TokJSON.ParseError {
        TokJSON.ParseError(message: "\(message) at byte \(pos)")
    }

    func describeHere() -> String {
        guard pos < bytes.count else { return "end of input" }
        let b = bytes[pos]
        if b >= 0x20 && b < 0x7F { return "character '\(Character(Unicode.Scalar(b)))'" }
        return "byte 0x" + String(b, radix: 16, uppercase: true)
    }

    mutating func skipSpace() {
        while pos < bytes.count {
            switch bytes[pos] {
            case 0x20, 0x09, 0x0A, 0x0D: pos += 1
            default: return
            }
        }
    }

    mutating func parseValue() throws -> TokJSON {
        guard pos < bytes.count else { throw fail("unexpected end of input") }
        switch bytes[pos] {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        // Python's json module writes these for non-finite floats.
        case UInt8(ascii: "N"): try expectLiteral("NaN"); return .number(.nan)
        case UInt8(ascii: "I"): try expectLiteral("Infinity"); return .number(.infinity)
        default: throw fail("unexpected \(describeHere())")
        }
    }

    mutating func expectLiteral(_ literal: String) throws {
        let lit = Array(literal.utf8)
        guard pos + lit.count <= bytes.count, Array(bytes[pos..<pos + lit.count]) == lit else {
            throw fail("unexpected \(describeHere())")
        }
        pos += lit.count
    }

    mutating func enter() throws {
        depth += 1
        if depth > Self.maxDepth { throw fail("nesting deeper than \(Self.maxDepth) levels") }
    }

    mutating func parseObject() throws -> TokJSON {
        try enter()
        defer { depth -= 1 }
        pos += 1
        var members: [(key: String, value: TokJSON)] = []
        skipSpace()
        if pos < bytes.count, bytes[pos] == UInt8(ascii: "}") { pos += 1; return .object(members) }
        while true {
            skipSpace()
            guard pos < bytes.count, bytes[pos] == UInt8(ascii: "\"") else {
                throw fail("expected a member name, found \(describeHere())")
            }
            let key = try parseString()
            skipSpace()
            guard pos < bytes.count, bytes[pos] == UInt8(ascii: ":") else {
                throw fail("expected ':', found \(describeHere())")
            }
            pos += 1
            skipSpace()
            let value = try parseValue()
            members.append((key: key, value: value))
            skipSpace()
            guard pos < bytes.count else { throw fail("unterminated object") }
            if bytes[pos] == UInt8(ascii: ",") { pos += 1; continue }
            if bytes[pos] == UInt8(ascii: "}") { pos += 1; return .object(members) }
            throw fail("expected ',' or '}', found \(describeHere())")
        }
    }

    mutating func parseArray() throws -> TokJSON {
        try enter()
        defer { depth -= 1 }
        pos += 1
        var items: [TokJSON] = []
        skipSpace()
        if pos < bytes.count, bytes[pos] == UInt8(ascii: "]") { pos += 1; return .array(items) }
        while true {
            skipSpace()
            items.append(try parseValue())
            skipSpace()
            guard pos < bytes.count else { throw fail("unterminated array") }
            if bytes[pos] == UInt8(ascii: ",") { pos += 1; continue }
            if bytes[pos] == UInt8(ascii: "]") { pos += 1; return .array(items) }
            throw fail("expected ',' or ']', found \(describeHere())")
        }
    }

    mutating func parseNumber() throws -> TokJSON {
        let start = pos
        if bytes[pos] == UInt8(ascii: "-") { pos += 1 }
        if pos < bytes.count, bytes[pos] == UInt8(ascii: "I") { try expectLiteral("Infinity"); return .number(-.infinity) }
        var sawDigit = false
        while pos < bytes.count {
            let b = bytes[pos]
            if b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") {
                sawDigit = true
            } else if b == UInt8(ascii: ".") || b == UInt8(ascii: "e") || b == UInt8(ascii: "E")
                        || b == UInt8(ascii: "+") || b == UInt8(ascii: "-") {
            } else {
                break
            }
            pos += 1
        }
        guard sawDigit, let value = Double(String(decoding: bytes[start..<pos], as: UTF8.self)) else {
            pos = start
            throw fail("malformed number")
        }
        return .number(value)
    }

    mutating func parseHex4() throws -> UInt32 {
        guard pos + 4 <= bytes.count else { throw fail("truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let b = bytes[pos]
            let d: UInt32
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(b - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(b - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(b - UInt8(ascii: "A") + 10)
            default: throw fail("bad \\u escape")
            }
            v = v * 16 + d
            pos += 1
        }
        return v
    }

    mutating func parseString() throws -> String {
        pos += 1  // opening quote
        var out: [UInt8] = []
        var runStart = pos
        while true {
            guard pos < bytes.count else { throw fail("unterminated string") }
            let b = bytes[pos]
            if b == UInt8(ascii: "\"") {
                out.append(contentsOf: bytes[runStart..<pos])
                pos += 1
                break
            }
            if b < 0x20 { throw fail("control character in string") }
            if b != UInt8(ascii: "\\") { pos += 1; continue }
            out.append(contentsOf: bytes[runStart..<pos])
            pos += 1
            guard pos < bytes.count else { throw fail("unterminated string") }
            let e = bytes[pos]
            pos += 1
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var code = try parseHex4()
                if code >= 0xD800 && code < 0xDC00 {
                    // A high surrogate: pair it with the low one that should follow.
                    if pos + 6 <= bytes.count, bytes[pos] == UInt8(ascii: "\\"), bytes[pos + 1] == UInt8(ascii: "u") {
                        let save = pos
                        pos += 2
                        let low = try parseHex4()
                        if low >= 0xDC00 && low < 0xE000 {
                            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                        } else {
                            pos = save
                            code = 0xFFFD
                        }
                    } else {
                        code = 0xFFFD
                    }
                } else if code >= 0xDC00 && code < 0xE000 {
                    code = 0xFFFD
                }
                let scalar = Unicode.Scalar(code) ?? "\u{FFFD}"
                out.append(contentsOf: Array(String(scalar).utf8))
            default:
                pos -= 1
                throw fail("bad escape '\\\(Character(Unicode.Scalar(e)))'")
            }
            runStart = pos
        }
        // Invalid UTF-8 in the file is repaired (U+FFFD), never trapped on.
        return String(decoding: out, as: UTF8.self)
    }
}
