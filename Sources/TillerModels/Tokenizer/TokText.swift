// Text helpers shared by the tokenizer stages. Text moves between stages as UTF-8 bytes so that no
// step ever compares strings by canonical equivalence (Swift String's ==) or by grapheme clusters:
// the reference implementation works on bytes and Unicode scalars, and so does this one.

enum TokText {
    /// The scalars of valid UTF-8 bytes, with the byte offset where each starts.
    static func scalars(_ bytes: [UInt8]) -> [(scalar: Unicode.Scalar, start: Int)] {
        var out: [(scalar: Unicode.Scalar, start: Int)] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            let (scalar, length) = decodeScalar(bytes, at: i)
            out.append((scalar, i))
            i += length
        }
        return out
    }

    /// Decodes one scalar at `i` (U+FFFD and one byte for anything malformed).
    @inline(__always)
    static func decodeScalar(_ bytes: [UInt8], at i: Int) -> (Unicode.Scalar, Int) {
        let b0 = bytes[i]
        if b0 < 0x80 { return (Unicode.Scalar(b0), 1) }
        var length = 0
        var value: UInt32 = 0
        if b0 & 0xE0 == 0xC0 { length = 2; value = UInt32(b0 & 0x1F) }
        else if b0 & 0xF0 == 0xE0 { length = 3; value = UInt32(b0 & 0x0F) }
        else if b0 & 0xF8 == 0xF0 { length = 4; value = UInt32(b0 & 0x07) }
        else { return ("\u{FFFD}", 1) }
        guard i + length <= bytes.count else { return ("\u{FFFD}", 1) }
        for k in 1..<length {
            let b = bytes[i + k]
            guard b & 0xC0 == 0x80 else { return ("\u{FFFD}", 1) }
            value = value << 6 | UInt32(b & 0x3F)
        }
        guard let scalar = Unicode.Scalar(value) else { return ("\u{FFFD}", 1) }
        return (scalar, length)
    }

    @inline(__always)
    static func utf8Length(_ s: Unicode.Scalar) -> Int {
        switch s.value {
        case 0..<0x80: return 1
        case 0x80..<0x800: return 2
        case 0x800..<0x10000: return 3
        default: return 4
        }
    }

    static func bytes(of scalar: Unicode.Scalar) -> [UInt8] { Array(String(scalar).utf8) }

    static func string(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    static func bytes(_ string: String) -> [UInt8] { Array(string.utf8) }

    /// Unicode White_Space (Rust's char::is_whitespace and regex \s).
    @inline(__always)
    static func isWhitespace(_ s: Unicode.Scalar) -> Bool { s.properties.isWhitespace }

    /// Rust regex's Unicode \w: Alphabetic, marks, decimal digits, connector punctuation, join controls.
    static func isWordCharacter(_ s: Unicode.Scalar) -> Bool {
        let p = s.properties
        if p.isAlphabetic || p.isJoinControl { return true }
        switch p.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .connectorPunctuation: return true
        default: return false
        }
    }

    /// Rust's char::is_numeric: general categories Nd, Nl, No.
    static func isNumeric(_ s: Unicode.Scalar) -> Bool {
        switch s.properties.generalCategory {
        case .decimalNumber, .letterNumber, .otherNumber: return true
        default: return false
        }
    }

    /// Rust's char::is_ascii_punctuation || general category P* (the Punctuation pre-tokenizer).
    static func isPunctuation(_ s: Unicode.Scalar) -> Bool {
        if s.isASCII {
            let v = s.value
            return (0x21...0x2F).contains(v) || (0x3A...0x40).contains(v) || (0x5B...0x60).contains(v)
                || (0x7B...0x7E).contains(v)
        }
        switch s.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation: return true
        default: return false
        }
    }

    /// Replaces every non-overlapping occurrence of `pattern` (left to right) by `content`.
    static func replace(_ text: [UInt8], _ pattern: [UInt8], with content: [UInt8]) -> [UInt8] {
        guard !pattern.isEmpty, text.count >= pattern.count else { return text }
        var out: [UInt8] = []
        out.reserveCapacity(text.count)
        var i = 0
        let first = pattern[0]
        while i < text.count {
            if text[i] == first, i + pattern.count <= text.count, matches(text, at: i, pattern) {
                out.append(contentsOf: content)
                i += pattern.count
            } else {
                out.append(text[i])
                i += 1
            }
        }
        return out
    }

    /// Whether `pattern` occurs in `text` at byte offset `i`.
    @inline(__always)
    static func matches(_ text: [UInt8], at i: Int, _ pattern: [UInt8]) -> Bool {
        guard i + pattern.count <= text.count else { return false }
        var k = 0
        while k < pattern.count {
            if text[i + k] != pattern[k] { return false }
            k += 1
        }
        return true
    }

    /// Byte ranges of the non-overlapping occurrences of `pattern`.
    static func occurrences(of pattern: [UInt8], in text: [UInt8]) -> [Range<Int>] {
        guard !pattern.isEmpty else { return [] }
        var out: [Range<Int>] = []
        var i = 0
        while i + pattern.count <= text.count {
            if matches(text, at: i, pattern) {
                out.append(i..<(i + pattern.count))
                i += pattern.count
            } else {
                i += 1
            }
        }
        return out
    }
}

/// GPT-2's reversible mapping of the 256 byte values onto printable Unicode characters.
enum TokByteLevel {
    /// byte -> the UTF-8 bytes of its stand-in character.
    static let byteToCharBytes: [[UInt8]] = {
        let table = byteToScalar
        return table.map { TokText.bytes(of: $0) }
    }()

    /// byte -> stand-in scalar.
    static let byteToScalar: [Unicode.Scalar] = {
        var printable: [Int] = []
        printable += Array(0x21...0x7E)
        printable += Array(0xA1...0xAC)
        printable += Array(0xAE...0xFF)
        var table = [Unicode.Scalar](repeating: "\0", count: 256)
        var isPrintable = [Bool](repeating: false, count: 256)
        for b in printable { table[b] = Unicode.Scalar(UInt32(b))!; isPrintable[b] = true }
        var n: UInt32 = 0
        for b in 0..<256 where !isPrintable[b] {
            table[b] = Unicode.Scalar(256 + n)!
            n += 1
        }
        return table
    }()

    /// stand-in scalar value -> byte, for scalar values below 0x144 (-1 where none).
    static let scalarToByte: [Int16] = {
        var inverse = [Int16](repeating: -1, count: 0x144)
        for (b, s) in byteToScalar.enumerated() { inverse[Int(s.value)] = Int16(b) }
        return inverse
    }()

    /// Maps raw bytes onto the stand-in characters (as UTF-8).
    static func encode(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        let table = byteToCharBytes
        for b in bytes { out.append(contentsOf: table[Int(b)]) }
        return out
    }

    /// Maps a token's stand-in characters back to bytes; nil if any character is not a stand-in.
    static func decode(_ token: [UInt8]) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(token.count)
        var i = 0
        let inverse = scalarToByte
        while i < token.count {
            let (scalar, length) = TokText.decodeScalar(token, at: i)
            let v = Int(scalar.value)
            guard v < inverse.count, inverse[v] >= 0 else { return nil }
            out.append(UInt8(inverse[v]))
            i += length
        }
        return out
    }
}
