/// Whether text is one JSON value as Python's `json.loads` accepts it: RFC 8259 (no trailing
/// commas, no comments, no single quotes; Foundation's JSONSerialization lets a trailing comma
/// through), plus Python's NaN, Infinity and -Infinity, with whitespace around.
enum StrictJSON {
    static func isValid(_ text: String) -> Bool {
        var parser = Parser(bytes: Array(text.utf8))
        parser.skipSpace()
        guard parser.value(depth: 0) else { return false }
        parser.skipSpace()
        return parser.index == parser.bytes.count
    }

    private struct Parser {
        let bytes: [UInt8]
        var index = 0

        init(bytes: [UInt8]) { self.bytes = bytes }

        var peek: UInt8? { index < bytes.count ? bytes[index] : nil }

        mutating func skipSpace() {
            while let b = peek, b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D { index += 1 }
        }

        mutating func literal(_ word: String) -> Bool {
            let w = Array(word.utf8)
            guard index + w.count <= bytes.count, Array(bytes[index..<(index + w.count)]) == w else { return false }
            index += w.count
            return true
        }

        /// Nesting is bounded so a hostile answer cannot exhaust the stack.
        mutating func value(depth: Int) -> Bool {
            guard depth < 512, let b = peek else { return false }
            switch b {
            case UInt8(ascii: "{"): return object(depth: depth)
            case UInt8(ascii: "["): return array(depth: depth)
            case UInt8(ascii: "\""): return string()
            case UInt8(ascii: "t"): return literal("true")
            case UInt8(ascii: "f"): return literal("false")
            case UInt8(ascii: "n"): return literal("null")
            case UInt8(ascii: "N"): return literal("NaN")
            case UInt8(ascii: "I"): return literal("Infinity")
            default:
                if b == UInt8(ascii: "-") && literal("-Infinity") { return true }
                return number()
            }
        }

        mutating func object(depth: Int) -> Bool {
            index += 1
            skipSpace()
            if peek == UInt8(ascii: "}") { index += 1; return true }
            while true {
                skipSpace()
                guard peek == UInt8(ascii: "\""), string() else { return false }
                skipSpace()
                guard peek == UInt8(ascii: ":") else { return false }
                index += 1
                skipSpace()
                guard value(depth: depth + 1) else { return false }
                skipSpace()
                if peek == UInt8(ascii: ",") { index += 1; continue }
                if peek == UInt8(ascii: "}") { index += 1; return true }
                return false
            }
        }

        mutating func array(depth: Int) -> Bool {
            index += 1
            skipSpace()
            if peek == UInt8(ascii: "]") { index += 1; return true }
            while true {
                skipSpace()
                guard value(depth: depth + 1) else { return false }
                skipSpace()
                if peek == UInt8(ascii: ",") { index += 1; continue }
                if peek == UInt8(ascii: "]") { index += 1; return true }
                return false
            }
        }

        mutating func string() -> Bool {
            index += 1
            while let b = peek {
                index += 1
                switch b {
                case UInt8(ascii: "\""): return true
                case UInt8(ascii: "\\"):
                    guard let e = peek else { return false }
                    index += 1
                    if e == UInt8(ascii: "u") {
                        for _ in 0..<4 {
                            guard let h = peek, (h >= 0x30 && h <= 0x39) || (h | 0x20 >= 0x61 && h | 0x20 <= 0x66) else { return false }
                            index += 1
                        }
                    } else if !"\"\\/bfnrt".utf8.contains(e) {
                        return false
                    }
                default:
                    if b < 0x20 { return false } // control characters must be escaped
                }
            }
            return false
        }

        mutating func number() -> Bool {
            func digits() -> Int {
                let start = index
                while let d = peek, d >= 0x30 && d <= 0x39 { index += 1 }
                return index - start
            }
            if peek == UInt8(ascii: "-") { index += 1 }
            if peek == UInt8(ascii: "0") {
                index += 1
            } else if digits() == 0 {
                return false
            }
            if peek == UInt8(ascii: ".") {
                index += 1
                guard digits() > 0 else { return false }
            }
            if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
                index += 1
                if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { index += 1 }
                guard digits() > 0 else { return false }
            }
            return true
        }
    }
}
