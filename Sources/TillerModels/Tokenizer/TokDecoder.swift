// Decoders: tokenizer.json's "decoder", turning token strings back into text. Each step maps a list
// of token strings (UTF-8 bytes) to another, as the reference's decode_chain does; the final text is
// their concatenation.

indirect enum TokDecoder {
    case sequence([TokDecoder])
    case byteLevel
    case metaspace(replacement: Unicode.Scalar, dropFirstReplacement: Bool)
    case replace(pattern: TokPattern, content: [UInt8])
    case byteFallback
    case fuse
    case strip(content: Unicode.Scalar, start: Int, stop: Int)
    case bpeSuffix([UInt8])

    /// Whether a ByteFallback step is part of this decoder (its byte runs are decoded as a whole).
    var containsByteFallback: Bool {
        switch self {
        case .byteFallback: return true
        case let .sequence(steps): return steps.contains { $0.containsByteFallback }
        default: return false
        }
    }

    func decodeChain(_ tokens: [[UInt8]]) -> [[UInt8]] {
        switch self {
        case let .sequence(steps):
            var current = tokens
            for step in steps { current = step.decodeChain(current) }
            return current

        case .byteLevel:
            // Every token's stand-in characters back to bytes (a token with any other character is
            // kept as its own UTF-8), then one lossy UTF-8 decode over everything.
            var bytes: [UInt8] = []
            for t in tokens { bytes += TokByteLevel.decode(t) ?? t }
            return [Array(String(decoding: bytes, as: UTF8.self).utf8)]

        case let .metaspace(replacement, dropFirstReplacement):
            return tokens.enumerated().map { i, token in
                var out: [UInt8] = []
                out.reserveCapacity(token.count)
                var k = 0
                while k < token.count {
                    let (scalar, length) = TokText.decodeScalar(token, at: k)
                    if scalar == replacement {
                        if !(i == 0 && dropFirstReplacement) { out.append(0x20) }
                    } else {
                        out.append(contentsOf: token[k..<(k + length)])
                    }
                    k += length
                }
                return out
            }

        case let .replace(pattern, content):
            return tokens.map { pattern.replace(in: $0, with: content) }

        case .byteFallback:
            var out: [[UInt8]] = []
            var run: [UInt8] = []
            func flush() {
                guard !run.isEmpty else { return }
                if Self.isValidUTF8(run) {
                    out.append(run)
                } else {
                    // An invalid run becomes one U+FFFD per byte.
                    for _ in run { out.append([0xEF, 0xBF, 0xBD]) }
                }
                run.removeAll(keepingCapacity: true)
            }
            for token in tokens {
                if let byte = Self.fallbackByte(token) {
                    run.append(byte)
                } else {
                    flush()
                    out.append(token)
                }
            }
            flush()
            return out

        case .fuse:
            return [tokens.flatMap { $0 }]

        case let .strip(content, start, stop):
            return tokens.map { token in
                let scalars = TokText.scalars(token)
                var startCut = 0
                for k in 0..<min(start, scalars.count) {
                    if scalars[k].scalar == content { startCut = k + 1 } else { break }
                }
                var stopCut = scalars.count
                for k in 0..<min(stop, scalars.count) {
                    let idx = scalars.count - 1 - k
                    if scalars[idx].scalar == content { stopCut = idx } else { break }
                }
                if startCut >= stopCut { return [] }
                let lo = scalars[startCut].start
                let hi = stopCut == scalars.count ? token.count : scalars[stopCut].start
                return Array(token[lo..<hi])
            }

        case let .bpeSuffix(suffix):
            return tokens.enumerated().map { i, token in
                TokText.replace(token, suffix, with: i == tokens.count - 1 ? [] : [0x20])
            }
        }
    }

    /// The byte of a "<0xAB>" token (the reference accepts what Rust's u8::from_str_radix(_, 16) does).
    static func fallbackByte(_ token: [UInt8]) -> UInt8? {
        guard token.count == 6, token[0] == UInt8(ascii: "<"), token[1] == UInt8(ascii: "0"),
              token[2] == UInt8(ascii: "x"), token[5] == UInt8(ascii: ">") else { return nil }
        func digit(_ b: UInt8) -> UInt8? {
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return b - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return b - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return b - UInt8(ascii: "A") + 10
            default: return nil
            }
        }
        if token[3] == UInt8(ascii: "+") { return digit(token[4]) }
        guard let hi = digit(token[3]), let lo = digit(token[4]) else { return nil }
        return hi << 4 | lo
    }

    static func isValidUTF8(_ bytes: [UInt8]) -> Bool {
        var iterator = bytes.makeIterator()
        var decoder = UTF8()
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue: continue
            case .emptyInput: return true
            case .error: return false
            }
        }
    }
}
