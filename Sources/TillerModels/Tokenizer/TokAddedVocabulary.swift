// Added and special tokens: found in the text before pre-tokenization (leftmost-longest, without
// overlaps), honouring their lstrip / rstrip / single_word / normalized flags, as the reference's
// AddedVocabulary does.

struct TokAddedToken {
    let id: Int32
    let content: [UInt8]
    let singleWord: Bool
    let lstrip: Bool
    let rstrip: Bool
    let normalized: Bool
    let special: Bool
}

/// A byte trie over token contents, for leftmost-longest matching.
struct TokTokenTrie {
    private var children: [[UInt8: Int32]] = [[:]]
    /// node -> index of the token that ends there (-1: none)
    private var terminal: [Int] = [-1]

    var isEmpty: Bool { children[0].isEmpty }

    mutating func insert(_ bytes: [UInt8], tokenIndex: Int) {
        guard !bytes.isEmpty else { return }
        var node = 0
        for b in bytes {
            if let child = children[node][b] {
                node = Int(child)
            } else {
                children.append([:])
                terminal.append(-1)
                let child = children.count - 1
                children[node][b] = Int32(child)
                node = child
            }
        }
        terminal[node] = tokenIndex
    }

    /// The longest token starting at `start`: (token index, end offset).
    func longestMatch(in text: [UInt8], at start: Int) -> (index: Int, end: Int)? {
        var node = 0
        var best: (index: Int, end: Int)? = nil
        var i = start
        while i < text.count, let child = children[node][text[i]] {
            node = Int(child)
            i += 1
            if terminal[node] >= 0 { best = (terminal[node], i) }
        }
        return best
    }
}

/// A stretch of text, or an added token found in it.
enum TokSegment {
    case text(TokPiece)
    case token(Int32)
}

struct TokAddedVocabulary {
    let tokens: [TokAddedToken]
    /// id -> token (contents for decoding, and which are special)
    let byID: [Int32: TokAddedToken]
    /// content -> id
    let byContent: [[UInt8]: Int32]
    /// id -> the string decoding starts from: the normalized content for normalized tokens (as the
    /// reference caches it), the content otherwise
    let decodeForm: [Int32: [UInt8]]
    /// Tokens matched against the raw text.
    private var rawTrie = TokTokenTrie()
    /// Tokens matched against the normalized text (their contents normalized too).
    private var normalizedTrie = TokTokenTrie()

    init(tokens: [TokAddedToken], normalizer: TokNormalizer?) {
        self.tokens = tokens
        var byID: [Int32: TokAddedToken] = [:]
        var byContent: [[UInt8]: Int32] = [:]
        for t in tokens {
            byID[t.id] = t
            byContent[t.content] = t.id
        }
        self.byID = byID
        self.byContent = byContent
        var decodeForm: [Int32: [UInt8]] = [:]
        for t in tokens {
            decodeForm[t.id] = t.normalized ? (normalizer.map { $0.normalize(t.content) } ?? t.content) : t.content
        }
        self.decodeForm = decodeForm
        // Special tokens first, then the others, as the reference builds its matchers; on equal
        // contents the later insertion wins, which only matters for duplicated entries.
        let ordered = tokens.indices.filter { tokens[$0].special } + tokens.indices.filter { !tokens[$0].special }
        for tokenIndex in ordered {
            let t = tokens[tokenIndex]
            if t.normalized {
                let content = normalizer.map { $0.normalize(t.content) } ?? t.content
                normalizedTrie.insert(content, tokenIndex: tokenIndex)
            } else {
                rawTrie.insert(t.content, tokenIndex: tokenIndex)
            }
        }
    }

    var hasNormalizedTokens: Bool { !normalizedTrie.isEmpty }

    func isSpecial(_ id: Int32) -> Bool { byID[id]?.special ?? false }

    /// Splits a piece of text around the added tokens found in it (raw or normalized set).
    func split(_ piece: TokPiece, normalizedSet: Bool) -> [TokSegment] {
        let trie = normalizedSet ? normalizedTrie : rawTrie
        let text = piece.bytes
        if text.isEmpty { return [] }
        if trie.isEmpty { return [.text(piece)] }
        var segments: [TokSegment] = []
        var startOffset = 0
        var i = 0
        while i < text.count {
            guard let m = trie.longestMatch(in: text, at: i) else { i += 1; continue }
            let token = tokens[m.index]
            var start = i
            var stop = m.end
            i = m.end  // the next search starts after this match, kept or not
            if token.singleWord {
                let startSpace = start == 0 || !Self.endsWithWord(text, before: start)
                let stopSpace = stop == text.count || !Self.startsWithWord(text, at: stop)
                if !startSpace || !stopSpace { continue }
            }
            if token.lstrip {
                start = max(Self.leftmostSpaceAtEnd(text, before: start), startOffset)
            }
            if token.rstrip {
                stop = Self.rightmostSpaceAtStart(text, from: stop)
            }
            if startOffset < start {
                segments.append(.text(TokPiece(bytes: Array(text[startOffset..<start]),
                                               atStart: piece.atStart && startOffset == 0)))
            }
            segments.append(.token(token.id))
            startOffset = stop
        }
        if startOffset < text.count {
            segments.append(.text(TokPiece(bytes: Array(text[startOffset...]), atStart: piece.atStart && startOffset == 0)))
        }
        return segments
    }

    /// Whether the text before `offset` ends with a word character (\w).
    private static func endsWithWord(_ text: [UInt8], before offset: Int) -> Bool {
        guard offset > 0 else { return false }
        var s = offset - 1
        while s > 0 && text[s] & 0xC0 == 0x80 { s -= 1 }
        return TokText.isWordCharacter(TokText.decodeScalar(text, at: s).0)
    }

    /// Whether the text from `offset` starts with a word character (\w).
    private static func startsWithWord(_ text: [UInt8], at offset: Int) -> Bool {
        guard offset < text.count else { return false }
        return TokText.isWordCharacter(TokText.decodeScalar(text, at: offset).0)
    }

    /// Start of the run of whitespace that ends at `offset`.
    private static func leftmostSpaceAtEnd(_ text: [UInt8], before offset: Int) -> Int {
        var start = offset
        while start > 0 {
            var s = start - 1
            while s > 0 && text[s] & 0xC0 == 0x80 { s -= 1 }
            if TokText.isWhitespace(TokText.decodeScalar(text, at: s).0) { start = s } else { break }
        }
        return start
    }

    /// End of the run of whitespace that starts at `offset`.
    private static func rightmostSpaceAtStart(_ text: [UInt8], from offset: Int) -> Int {
        var end = offset
        while end < text.count {
            let (scalar, length) = TokText.decodeScalar(text, at: end)
            if TokText.isWhitespace(scalar) { end += length } else { break }
        }
        return end
    }
}
