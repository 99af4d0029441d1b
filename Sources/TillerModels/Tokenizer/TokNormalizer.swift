import Foundation

// Normalizers: tokenizer.json's "normalizer", applied to each stretch of text between added tokens.

indirect enum TokNormalizer {
    case sequence([TokNormalizer])
    case prepend([UInt8])
    case replace(pattern: TokPattern, content: [UInt8])
    case nfc, nfd, nfkc, nfkd
    case lowercase
    case strip(left: Bool, right: Bool)
    case stripAccents
    case byteLevel

    func normalize(_ bytes: [UInt8]) -> [UInt8] {
        switch self {
        case let .sequence(steps):
            var current = bytes
            for step in steps { current = step.normalize(current) }
            return current
        case let .prepend(prefix):
            return bytes.isEmpty ? bytes : prefix + bytes
        case let .replace(pattern, content):
            return pattern.replace(in: bytes, with: content)
        case .nfc:
            return Self.unicodeForm(bytes) { $0.precomposedStringWithCanonicalMapping }
        case .nfd:
            return Self.unicodeForm(bytes) { $0.decomposedStringWithCanonicalMapping }
        case .nfkc:
            return Self.unicodeForm(bytes) { $0.precomposedStringWithCompatibilityMapping }
        case .nfkd:
            return Self.unicodeForm(bytes) { $0.decomposedStringWithCompatibilityMapping }
        case .lowercase:
            // Per scalar, like Rust's str::to_lowercase (without its final-sigma rule).
            if bytes.allSatisfy({ $0 < 0x80 }) {
                return bytes.map { $0 >= 0x41 && $0 <= 0x5A ? $0 + 0x20 : $0 }
            }
            var out: [UInt8] = []
            out.reserveCapacity(bytes.count)
            for (scalar, _) in TokText.scalars(bytes) {
                out.append(contentsOf: Array(scalar.properties.lowercaseMapping.utf8))
            }
            return out
        case let .strip(left, right):
            let scalars = TokText.scalars(bytes)
            var lo = 0
            var hi = scalars.count
            if left { while lo < hi && TokText.isWhitespace(scalars[lo].scalar) { lo += 1 } }
            if right { while hi > lo && TokText.isWhitespace(scalars[hi - 1].scalar) { hi -= 1 } }
            if lo == hi { return [] }
            let start = scalars[lo].start
            let end = hi == scalars.count ? bytes.count : scalars[hi].start
            return Array(bytes[start..<end])
        case .stripAccents:
            var out: [UInt8] = []
            out.reserveCapacity(bytes.count)
            var i = 0
            while i < bytes.count {
                let (scalar, length) = TokText.decodeScalar(bytes, at: i)
                switch scalar.properties.generalCategory {
                case .nonspacingMark, .spacingMark, .enclosingMark: break
                default: out.append(contentsOf: bytes[i..<(i + length)])
                }
                i += length
            }
            return out
        case .byteLevel:
            return TokByteLevel.encode(bytes)
        }
    }

    private static func unicodeForm(_ bytes: [UInt8], _ transform: (String) -> String) -> [UInt8] {
        // ASCII is already in every normalization form.
        if bytes.allSatisfy({ $0 < 0x80 }) { return bytes }
        return Array(transform(TokText.string(bytes)).utf8)
    }
}
