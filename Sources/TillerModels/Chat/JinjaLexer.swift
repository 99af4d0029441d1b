// The Jinja2 lexer, with the options transformers compiles chat templates with:
// trim_blocks=True (the first newline after a block or comment tag is dropped),
// lstrip_blocks=True (spaces and tabs before a block or comment tag at the start of a line
// are dropped), keep_trailing_newline=False (one trailing newline of the source is dropped),
// and the `-` / `+` whitespace-control markers. Line endings are normalised to "\n" first.

struct JinjaToken {
    enum Kind: Equatable {
        case data, variableBegin, variableEnd, blockBegin, blockEnd, name, string, integer, float, op, eof
    }
    var kind: Kind
    /// The text of data, a name, an operator, or the decoded value of a string literal.
    var text: String
    /// Offset in the normalised source, in Unicode scalars.
    var pos: Int
    var intValue: Int = 0
    var floatValue: Double = 0

    /// How an error message names the token, as Jinja does.
    var describe: String {
        switch kind {
        case .data: return "template data"
        case .variableBegin: return "begin of print statement"
        case .variableEnd: return "end of print statement"
        case .blockBegin: return "begin of statement block"
        case .blockEnd: return "end of statement block"
        case .name: return text
        case .string: return "string"
        case .integer: return "integer"
        case .float: return "float"
        case .op: return text
        case .eof: return "end of template"
        }
    }
}

struct JinjaLexer {
    let src: [Unicode.Scalar]
    private var pos = 0
    private var tokens: [JinjaToken] = []
    /// Whether the text matched last ended with a newline (Jinja's line_starting).
    private var lineStarting = true

    /// Normalises line endings to "\n" and drops one trailing newline, as Jinja does.
    static func normalize(_ source: String) -> [Unicode.Scalar] {
        let input = Array(source.unicodeScalars)
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(input.count)
        var i = 0
        while i < input.count {
            let c = input[i]
            if c == "\r" {
                out.append("\n")
                if i + 1 < input.count && input[i + 1] == "\n" { i += 1 }
            } else {
                out.append(c)
            }
            i += 1
        }
        if out.last == "\n" { out.removeLast() }
        return out
    }

    init(normalizedSource: [Unicode.Scalar]) { src = normalizedSource }

    static func tokenize(_ normalizedSource: [Unicode.Scalar]) throws -> [JinjaToken] {
        var lexer = JinjaLexer(normalizedSource: normalizedSource)
        try lexer.run()
        return lexer.tokens
    }

    private func at(_ i: Int) -> Unicode.Scalar? { i < src.count ? src[i] : nil }

    private func startsWith(_ s: String, at i: Int) -> Bool {
        var j = i
        for c in s.unicodeScalars {
            guard j < src.count, src[j] == c else { return false }
            j += 1
        }
        return true
    }

    private func skipSpace(from i: Int) -> Int {
        var j = i
        while j < src.count && pyIsSpace(src[j]) { j += 1 }
        return j
    }

    private enum TagKind { case variable, block, comment }

    private func findTag(from start: Int) -> (Int, TagKind)? {
        var i = start
        while i + 1 < src.count {
            if src[i] == "{" {
                switch src[i + 1] {
                case "{": return (i, .variable)
                case "%": return (i, .block)
                case "#": return (i, .comment)
                default: break
                }
            }
            i += 1
        }
        return nil
    }

    private mutating func emitData(_ from: Int, _ to: Int) {
        guard to > from else { return }
        var s = String.UnicodeScalarView()
        s.append(contentsOf: src[from..<to])
        tokens.append(JinjaToken(kind: .data, text: String(s), pos: from))
    }

    /// The end of the text before a tag after whitespace control (`-` strips all whitespace,
    /// lstrip_blocks strips spaces before a block or comment tag that starts its line).
    private func strippedEnd(textStart: Int, textEnd: Int, sign: Unicode.Scalar?, lstrip: Bool) -> Int {
        if sign == "-" {
            var e = textEnd
            while e > textStart && pyIsSpace(src[e - 1]) { e -= 1 }
            return e
        }
        guard sign != "+", lstrip else { return textEnd }
        var lineStart = textStart
        var hasNewline = false
        var k = textEnd
        while k > textStart {
            if src[k - 1] == "\n" { lineStart = k; hasNewline = true; break }
            k -= 1
        }
        guard hasNewline || lineStarting, lineStart < textEnd else { return textEnd }
        for j in lineStart..<textEnd where !pyIsSpace(src[j]) { return textEnd }
        return lineStart
    }

    /// `\s*raw\s*(-%}\s*|%})` after `{%` and its sign: the end of the raw opening tag.
    private func rawBegin(at i: Int) -> Int? {
        var j = skipSpace(from: i)
        guard startsWith("raw", at: j) else { return nil }
        j = skipSpace(from: j + 3)
        if startsWith("-%}", at: j) { return skipSpace(from: j + 3) }
        if startsWith("%}", at: j) { return j + 2 }
        return nil
    }

    private mutating func run() throws {
        while pos < src.count {
            guard let (tagStart, kind) = findTag(from: pos) else {
                emitData(pos, src.count)
                pos = src.count
                break
            }
            var i = tagStart + 2
            var sign: Unicode.Scalar? = nil
            if let c = at(i), c == "-" || c == "+" { sign = c; i += 1 }
            let rawEnd = kind == .block ? rawBegin(at: i) : nil
            let textEnd = strippedEnd(textStart: pos, textEnd: tagStart, sign: sign, lstrip: kind != .variable)
            emitData(pos, textEnd)
            if let rawEnd {
                try lexRaw(from: rawEnd, tagStart: tagStart)
                continue
            }
            switch kind {
            case .comment:
                try skipComment(from: i, tagStart: tagStart)
            case .variable, .block:
                tokens.append(JinjaToken(kind: kind == .block ? .blockBegin : .variableBegin, text: "", pos: tagStart))
                pos = i
                lineStarting = false
                try lexTag(block: kind == .block)
            }
        }
        tokens.append(JinjaToken(kind: .eof, text: "", pos: src.count))
    }

    private mutating func skipComment(from start: Int, tagStart: Int) throws {
        var j = start
        while j < src.count {
            if startsWith("+#}", at: j) { pos = j + 3; lineStarting = false; return }
            if startsWith("-#}", at: j) {
                pos = skipSpace(from: j + 3)
                lineStarting = src[pos - 1] == "\n"
                return
            }
            if startsWith("#}", at: j) {
                pos = j + 2
                if at(pos) == "\n" { pos += 1 }
                lineStarting = src[pos - 1] == "\n"
                return
            }
            j += 1
        }
        throw JinjaError.syntax("Missing end of comment tag", at: tagStart)
    }

    /// `{% raw %}...{% endraw %}`: the text in between is data.
    private mutating func lexRaw(from start: Int, tagStart: Int) throws {
        var j = start
        while let (k, kind) = findTag(from: j) {
            if kind == .block {
                var m = k + 2
                var sign: Unicode.Scalar? = nil
                if let c = at(m), c == "-" || c == "+" { sign = c; m += 1 }
                m = skipSpace(from: m)
                if startsWith("endraw", at: m) {
                    m = skipSpace(from: m + 6)
                    var end: Int? = nil
                    if startsWith("+%}", at: m) { end = m + 3 } else if startsWith("-%}", at: m) {
                        end = skipSpace(from: m + 3)
                    } else if startsWith("%}", at: m) {
                        end = m + 2
                        if at(m + 2) == "\n" { end = m + 3 }
                    }
                    if let end {
                        let textEnd = strippedEnd(textStart: start, textEnd: k, sign: sign, lstrip: true)
                        emitData(start, textEnd)
                        pos = end
                        lineStarting = src[end - 1] == "\n"
                        return
                    }
                }
            }
            j = k + 1
        }
        throw JinjaError.syntax("Missing end of raw directive", at: tagStart)
    }

    /// The tokens inside `{{ }}` or `{% %}`, up to and including the closing tag.
    private mutating func lexTag(block: Bool) throws {
        var balance: [Unicode.Scalar] = []
        while pos < src.count {
            if balance.isEmpty {
                if block {
                    if startsWith("+%}", at: pos) { return closeTag(.blockEnd, end: pos + 3) }
                    if startsWith("-%}", at: pos) { return closeTag(.blockEnd, end: skipSpace(from: pos + 3)) }
                    if startsWith("%}", at: pos) { return closeTag(.blockEnd, end: at(pos + 2) == "\n" ? pos + 3 : pos + 2) }
                } else {
                    if startsWith("-}}", at: pos) { return closeTag(.variableEnd, end: skipSpace(from: pos + 3)) }
                    if startsWith("}}", at: pos) { return closeTag(.variableEnd, end: pos + 2) }
                }
            }
            let c = src[pos]
            if pyIsSpace(c) { pos = skipSpace(from: pos); continue }
            if let t = try lexNumber() { tokens.append(t); continue }
            if c == "_" || c.properties.isAlphabetic {
                let start = pos
                var s = String.UnicodeScalarView()
                while pos < src.count, src[pos] == "_" || src[pos].properties.isAlphabetic || src[pos].properties.numericType == .decimal {
                    s.append(src[pos]); pos += 1
                }
                tokens.append(JinjaToken(kind: .name, text: String(s), pos: start))
                continue
            }
            if c == "'" || c == "\"" {
                if let t = try lexString() { tokens.append(t); continue }
            }
            if let op = lexOperator() {
                let start = pos
                switch op {
                case "{": balance.append("}")
                case "(": balance.append(")")
                case "[": balance.append("]")
                case "}", ")", "]":
                    guard let expected = balance.popLast() else {
                        throw JinjaError.syntax("unexpected '\(op)'", at: start)
                    }
                    if String(expected) != op {
                        throw JinjaError.syntax("unexpected '\(op)', expected '\(expected)'", at: start)
                    }
                default: break
                }
                pos += op.unicodeScalars.count
                tokens.append(JinjaToken(kind: .op, text: op, pos: start))
                continue
            }
            throw JinjaError.syntax("unexpected char \(pyStringRepr(String(c))) at \(pos)", at: pos)
        }
    }

    private mutating func closeTag(_ kind: JinjaToken.Kind, end: Int) {
        tokens.append(JinjaToken(kind: kind, text: "", pos: pos))
        pos = end
        lineStarting = src[end - 1] == "\n"
    }

    private static let operators2: [String] = ["//", "**", "==", "!=", ">=", "<="]
    private static let operators1: Set<Unicode.Scalar> = ["+", "-", "/", "*", "%", "~", "[", "]", "(", ")", "{", "}", ">", "<", "=", ".", ":", "|", ",", ";"]

    private func lexOperator() -> String? {
        for op in Self.operators2 where startsWith(op, at: pos) { return op }
        if Self.operators1.contains(src[pos]) { return String(src[pos]) }
        return nil
    }

    private func isDigit(_ i: Int) -> Bool { i < src.count && src[i].value >= 0x30 && src[i].value <= 0x39 }

    /// `(\d+_)*\d+` from i: its end, or nil.
    private func digitRun(_ i: Int) -> Int? {
        guard isDigit(i) else { return nil }
        var j = i
        while true {
            while isDigit(j) { j += 1 }
            if at(j) == "_" && isDigit(j + 1) { j += 1; continue }
            return j
        }
    }

    private func text(_ from: Int, _ to: Int) -> String {
        var s = String.UnicodeScalarView()
        for c in src[from..<to] where c != "_" { s.append(c) }
        return String(s)
    }

    private mutating func lexNumber() throws -> JinjaToken? {
        let start = pos
        guard isDigit(start) else { return nil }
        // float: not right after a '.', digits, then a fraction and/or an exponent
        if !(start > 0 && src[start - 1] == "."), let intEnd = digitRun(start) {
            var j = intEnd
            var isFloat = false
            if at(j) == ".", let fracEnd = digitRun(j + 1) { j = fracEnd; isFloat = true }
            if let e = at(j), e == "e" || e == "E" {
                var k = j + 1
                if let s = at(k), s == "+" || s == "-" { k += 1 }
                if let expEnd = digitRun(k) { j = expEnd; isFloat = true }
            }
            if isFloat {
                let t = text(start, j)
                guard let value = Double(t) else { throw JinjaError.syntax("invalid float literal \(t)", at: start) }
                pos = j
                return JinjaToken(kind: .float, text: t, pos: start, floatValue: value)
            }
        }
        // integer: 0b / 0o / 0x prefixes, decimal without leading zeros, or zeros
        var radix = 10
        var j = start
        var digitsStart = start
        if src[start] == "0", let p = at(start + 1) {
            switch p {
            case "b", "B": radix = 2
            case "o", "O": radix = 8
            case "x", "X": radix = 16
            default: break
            }
        }
        if radix != 10 {
            j = start + 2
            digitsStart = j
            func ok(_ c: Unicode.Scalar) -> Bool { Int(String(c), radix: radix) != nil }
            while true {
                if let c = at(j), ok(c) { j += 1; continue }
                if at(j) == "_", let c = at(j + 1), ok(c) { j += 2; continue }
                break
            }
            if j == digitsStart { radix = 10; j = start; digitsStart = start }
        }
        if radix == 10 {
            if src[start] == "0" {
                j = start + 1
                while true {
                    if at(j) == "0" { j += 1; continue }
                    if at(j) == "_" && at(j + 1) == "0" { j += 2; continue }
                    break
                }
            } else {
                j = digitRun(start) ?? start + 1
            }
        }
        let digits = text(digitsStart, j)
        guard let value = Int(digits, radix: radix) else {
            throw JinjaError.syntax("integer literal \(text(start, j)) is too large", at: start)
        }
        pos = j
        return JinjaToken(kind: .integer, text: text(start, j), pos: start, intValue: value)
    }

    /// A quoted string literal, decoded as Python's unicode-escape codec does; nil when it is
    /// not terminated (the quote is then an unexpected character, as in Jinja).
    private mutating func lexString() throws -> JinjaToken? {
        let start = pos
        let quote = src[pos]
        var j = pos + 1
        while j < src.count && src[j] != quote {
            if src[j] == "\\" { j += 1 }
            j += 1
        }
        guard j < src.count else { return nil }
        let body = Array(src[(start + 1)..<j])
        let value = try Self.decodeEscapes(body, at: start)
        pos = j + 1
        return JinjaToken(kind: .string, text: value, pos: start)
    }

    static func decodeEscapes(_ body: [Unicode.Scalar], at offset: Int) throws -> String {
        var out = String.UnicodeScalarView()
        var i = 0
        func hexValue(_ count: Int) throws -> UInt32 {
            var v: UInt32 = 0
            for k in 0..<count {
                guard i + 1 + k < body.count, let d = Int(String(body[i + 1 + k]), radix: 16) else {
                    throw JinjaError.syntax("truncated escape sequence in string literal", at: offset)
                }
                v = v * 16 + UInt32(d)
            }
            return v
        }
        while i < body.count {
            let c = body[i]
            guard c == "\\", i + 1 < body.count else { out.append(c); i += 1; continue }
            let e = body[i + 1]
            switch e {
            case "\n": i += 2
            case "\\", "'", "\"": out.append(e); i += 2
            case "a": out.append("\u{07}"); i += 2
            case "b": out.append("\u{08}"); i += 2
            case "f": out.append("\u{0C}"); i += 2
            case "n": out.append("\n"); i += 2
            case "r": out.append("\r"); i += 2
            case "t": out.append("\t"); i += 2
            case "v": out.append("\u{0B}"); i += 2
            case "0"..."7":
                var v: UInt32 = 0
                var k = i + 1
                while k < body.count && k < i + 4, body[k].value >= 0x30 && body[k].value <= 0x37 {
                    v = v * 8 + (body[k].value - 0x30); k += 1
                }
                out.append(Unicode.Scalar(v) ?? "\u{FFFD}")
                i = k
            case "x", "u", "U":
                let count = e == "x" ? 2 : (e == "u" ? 4 : 8)
                i += 1
                let v = try hexValue(count)
                guard let scalar = Unicode.Scalar(v) else {
                    throw JinjaError.syntax("illegal Unicode character in string literal", at: offset)
                }
                out.append(scalar)
                i += 1 + count
            case "N":
                throw JinjaError.syntax("\\N{...} escapes are not supported in string literals", at: offset)
            default:
                out.append(c); out.append(e); i += 2
            }
        }
        return String(out)
    }
}
