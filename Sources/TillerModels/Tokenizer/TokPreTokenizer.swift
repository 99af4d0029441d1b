import Foundation

// Pre-tokenizers: split normalized text into the words the BPE model sees, as tokenizer.json's
// "pre_tokenizer" describes (Sequence, Split, ByteLevel, Metaspace, Digits, WhitespaceSplit,
// Punctuation).

/// A stretch of text on its way through the pipeline. `atStart` says whether it begins at offset 0 of
/// the original input (Metaspace's prepend_scheme "first" needs it).
struct TokPiece {
    var bytes: [UInt8]
    var atStart: Bool
}

/// A regular expression from tokenizer.json, run with Swift Regex on Unicode scalars (the reference
/// runs Oniguruma on code points; grapheme-cluster matching would merge e.g. a space with a following
/// combining mark). A pattern Swift Regex rejects (it validates character-class ranges by comparing
/// characters canonically, so a range ending in a character with a singleton decomposition, like
/// DeepSeek's "Ὗ-ώ", fails) is run with ICU's NSRegularExpression instead, which compares code points.
struct TokRegex {
    let pattern: String
    private let swiftRegex: Regex<AnyRegexOutput>?
    private let icuRegex: NSRegularExpression?

    init(_ pattern: String) throws {
        self.pattern = pattern
        do {
            self.swiftRegex = try Regex(pattern).matchingSemantics(.unicodeScalar)
            self.icuRegex = nil
        } catch {
            guard let icu = try? NSRegularExpression(pattern: pattern) else { throw error }
            self.swiftRegex = nil
            self.icuRegex = icu
        }
    }

    /// Byte ranges of the non-overlapping matches, left to right (empty matches are dropped).
    func matches(in bytes: [UInt8]) -> [Range<Int>] {
        if bytes.isEmpty { return [] }
        let text = TokText.string(bytes)
        let utf8 = text.utf8
        var out: [Range<Int>] = []
        var lastIndex = utf8.startIndex
        var lastOffset = 0
        func add(_ range: Range<String.Index>) {
            // Distances are measured from the previous match, so the walk over the text stays linear.
            let lo = lastOffset + utf8.distance(from: lastIndex, to: range.lowerBound)
            let hi = lo + utf8.distance(from: range.lowerBound, to: range.upperBound)
            lastIndex = range.upperBound
            lastOffset = hi
            if hi > lo { out.append(lo..<hi) }
        }
        if let swiftRegex {
            for match in text.matches(of: swiftRegex) { add(match.range) }
        } else if let icuRegex {
            let all = NSRange(location: 0, length: text.utf16.count)
            for match in icuRegex.matches(in: text, range: all) {
                if let range = Range(match.range, in: text) { add(range) }
            }
        }
        return out
    }
}

/// What a Split or a Replace looks for: a literal string or a regular expression.
enum TokPattern {
    case string([UInt8])
    case regex(TokRegex)

    func matches(in bytes: [UInt8]) -> [Range<Int>] {
        switch self {
        case let .string(s): return TokText.occurrences(of: s, in: bytes)
        case let .regex(r): return r.matches(in: bytes)
        }
    }

    /// Replaces every match by `content`.
    func replace(in bytes: [UInt8], with content: [UInt8]) -> [UInt8] {
        switch self {
        case let .string(s): return TokText.replace(bytes, s, with: content)
        case let .regex(r):
            let ranges = r.matches(in: bytes)
            if ranges.isEmpty { return bytes }
            var out: [UInt8] = []
            out.reserveCapacity(bytes.count)
            var last = 0
            for range in ranges {
                out.append(contentsOf: bytes[last..<range.lowerBound])
                out.append(contentsOf: content)
                last = range.upperBound
            }
            out.append(contentsOf: bytes[last...])
            return out
        }
    }
}

/// SplitDelimiterBehavior of the reference implementation.
enum TokSplitBehavior: String {
    case removed = "Removed"
    case isolated = "Isolated"
    case mergedWithPrevious = "MergedWithPrevious"
    case mergedWithNext = "MergedWithNext"
    case contiguous = "Contiguous"

    init?(json: String) {
        // Accept both the serialized spelling ("MergedWithPrevious") and the Python one ("merged_with_previous").
        let key = json.lowercased().replacingOccurrences(of: "_", with: "")
        switch key {
        case "removed": self = .removed
        case "isolated": self = .isolated
        case "mergedwithprevious": self = .mergedWithPrevious
        case "mergedwithnext": self = .mergedWithNext
        case "contiguous": self = .contiguous
        default: return nil
        }
    }

    /// Splits `count` bytes given the matched ranges (in order, non-overlapping): the resulting pieces'
    /// byte ranges, empty ones left out. Mirrors NormalizedString::split.
    func split(count: Int, matches: [Range<Int>], invert: Bool) -> [Range<Int>] {
        if count == 0 { return [] }
        // The whole text as alternating (range, isMatch) stretches.
        var stretches: [(range: Range<Int>, isMatch: Bool)] = []
        stretches.reserveCapacity(matches.count * 2 + 1)
        var prev = 0
        for m in matches {
            if prev < m.lowerBound { stretches.append((prev..<m.lowerBound, false)) }
            stretches.append((m, true))
            prev = m.upperBound
        }
        if prev < count { stretches.append((prev..<count, false)) }
        if invert { stretches = stretches.map { ($0.range, !$0.isMatch) } }

        var out: [Range<Int>] = []
        switch self {
        case .isolated:
            out = stretches.map { $0.range }
        case .removed:
            out = stretches.filter { !$0.isMatch }.map { $0.range }
        case .contiguous:
            var previousMatch = false
            for s in stretches {
                if s.isMatch == previousMatch, let last = out.last {
                    out[out.count - 1] = last.lowerBound..<s.range.upperBound
                } else {
                    out.append(s.range)
                }
                previousMatch = s.isMatch
            }
        case .mergedWithPrevious:
            var previousMatch = false
            for s in stretches {
                if s.isMatch && !previousMatch, let last = out.last {
                    out[out.count - 1] = last.lowerBound..<s.range.upperBound
                } else {
                    out.append(s.range)
                }
                previousMatch = s.isMatch
            }
        case .mergedWithNext:
            var previousMatch = false
            var reversed: [Range<Int>] = []
            for s in stretches.reversed() {
                if s.isMatch && !previousMatch, let last = reversed.last {
                    reversed[reversed.count - 1] = s.range.lowerBound..<last.upperBound
                } else {
                    reversed.append(s.range)
                }
                previousMatch = s.isMatch
            }
            out = reversed.reversed()
        }
        return out.filter { !$0.isEmpty }
    }
}

enum TokPrependScheme {
    case always, first, never
}

indirect enum TokPreTokenizer {
    case sequence([TokPreTokenizer])
    case split(pattern: TokPattern, behavior: TokSplitBehavior, invert: Bool)
    case byteLevel(addPrefixSpace: Bool, useRegex: Bool)
    case metaspace(replacement: Unicode.Scalar, prependScheme: TokPrependScheme, split: Bool)
    case digits(individual: Bool)
    case whitespaceSplit
    case punctuation(TokSplitBehavior)

    /// The regex the ByteLevel pre-tokenizer uses when use_regex is set (GPT-2's).
    static let gpt2Pattern =
        #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
    static let gpt2Regex: TokRegex? = try? TokRegex(gpt2Pattern)

    func apply(_ pieces: [TokPiece]) -> [TokPiece] {
        switch self {
        case let .sequence(steps):
            var current = pieces
            for step in steps { current = step.apply(current) }
            return current

        case let .split(pattern, behavior, invert):
            return pieces.flatMap { piece in
                Self.splitPiece(piece, behavior.split(count: piece.bytes.count,
                                                      matches: pattern.matches(in: piece.bytes), invert: invert))
            }

        case let .byteLevel(addPrefixSpace, useRegex):
            var out: [TokPiece] = []
            for var piece in pieces {
                if addPrefixSpace && piece.bytes.first != 0x20 { piece.bytes.insert(0x20, at: 0) }
                let parts: [TokPiece]
                if useRegex, let regex = Self.gpt2Regex {
                    parts = Self.splitPiece(piece, TokSplitBehavior.isolated.split(
                        count: piece.bytes.count, matches: regex.matches(in: piece.bytes), invert: false))
                } else {
                    parts = piece.bytes.isEmpty ? [] : [piece]
                }
                for part in parts { out.append(TokPiece(bytes: TokByteLevel.encode(part.bytes), atStart: part.atStart)) }
            }
            return out

        case let .metaspace(replacement, prependScheme, split):
            let rep = TokText.bytes(of: replacement)
            var out: [TokPiece] = []
            for var piece in pieces {
                piece.bytes = TokText.replace(piece.bytes, [0x20], with: rep)
                let startsWithReplacement = TokText.matches(piece.bytes, at: 0, rep)
                switch prependScheme {
                case .always where !startsWithReplacement:
                    piece.bytes.insert(contentsOf: rep, at: 0)
                case .first where !startsWithReplacement && piece.atStart:
                    piece.bytes.insert(contentsOf: rep, at: 0)
                default: break
                }
                if split {
                    let ranges = Self.scalarMatches(piece.bytes) { $0 == replacement }
                    out += Self.splitPiece(piece, TokSplitBehavior.mergedWithNext.split(
                        count: piece.bytes.count, matches: ranges, invert: false))
                } else if !piece.bytes.isEmpty {
                    out.append(piece)
                }
            }
            return out

        case let .digits(individual):
            return pieces.flatMap { piece in
                let ranges = Self.scalarMatches(piece.bytes, TokText.isNumeric)
                return Self.splitPiece(piece, (individual ? TokSplitBehavior.isolated : .contiguous).split(
                    count: piece.bytes.count, matches: ranges, invert: false))
            }

        case .whitespaceSplit:
            return pieces.flatMap { piece in
                let ranges = Self.scalarMatches(piece.bytes, TokText.isWhitespace)
                return Self.splitPiece(piece, TokSplitBehavior.removed.split(
                    count: piece.bytes.count, matches: ranges, invert: false))
            }

        case let .punctuation(behavior):
            return pieces.flatMap { piece in
                let ranges = Self.scalarMatches(piece.bytes, TokText.isPunctuation)
                return Self.splitPiece(piece, behavior.split(count: piece.bytes.count, matches: ranges, invert: false))
            }
        }
    }

    /// One match per scalar that satisfies `predicate` (the reference's char-predicate patterns).
    static func scalarMatches(_ bytes: [UInt8], _ predicate: (Unicode.Scalar) -> Bool) -> [Range<Int>] {
        var out: [Range<Int>] = []
        var i = 0
        while i < bytes.count {
            let (scalar, length) = TokText.decodeScalar(bytes, at: i)
            if predicate(scalar) { out.append(i..<(i + length)) }
            i += length
        }
        return out
    }

    static func splitPiece(_ piece: TokPiece, _ ranges: [Range<Int>]) -> [TokPiece] {
        ranges.map { TokPiece(bytes: Array(piece.bytes[$0]), atStart: piece.atStart && $0.lowerBound == 0) }
    }
}
