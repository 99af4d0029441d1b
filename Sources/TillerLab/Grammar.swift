/// The grammar of answers: sentence templates with noun (N), adjective (A) and verb (V) slots, how
/// they render, and the parser that recognises every sentence any steering transform can produce.

public enum LabSlot: String, Sendable, Hashable {
    case noun = "N", adjective = "A", verb = "V"

    /// Every word the parser accepts in this slot: any topic's (and, for adjectives, any trait's).
    var vocabulary: Set<String> {
        switch self {
        case .noun: return Lexicon.allNouns
        case .adjective: return Lexicon.allAdjectives
        case .verb: return Lexicon.allVerbs
        }
    }
}

/// A sentence pattern such as "the A N V near the N.": space-separated pieces, each a literal word or
/// a slot letter, optionally followed by a comma; the sentence ends with ".".
public struct SentenceTemplate: Sendable, Hashable {
    struct Piece: Sendable, Hashable {
        let word: String?   // nil for a slot
        let slot: LabSlot?
        let comma: Bool
    }

    public let id: String
    public let pattern: String
    let pieces: [Piece]

    init(id: String, pattern: String) {
        self.id = id
        self.pattern = pattern
        var body = Substring(pattern)
        if body.hasSuffix(".") { body = body.dropLast() }
        pieces = body.split(separator: " ").map { token in
            let comma = token.hasSuffix(",")
            let text = String(comma ? token.dropLast() : token)
            if let slot = LabSlot(rawValue: text) { return Piece(word: nil, slot: slot, comma: comma) }
            return Piece(word: text, slot: nil, comma: comma)
        }
    }

    /// The slots in reading order: the order `render` expects its fillers in.
    public var slots: [LabSlot] { pieces.compactMap(\.slot) }
    public var hasComma: Bool { pieces.contains(where: \.comma) }

    /// The sentence with the slots filled in order; nil when the number of fillers is wrong.
    public func render(_ fillers: [String]) -> String? {
        guard fillers.count == slots.count else { return nil }
        var next = 0
        let words = pieces.map { piece -> String in
            var word: String
            if let literal = piece.word {
                word = literal
            } else {
                word = fillers[next]
                next += 1
            }
            if piece.comma { word += "," }
            return word
        }
        return words.joined(separator: " ") + "."
    }

    /// The slot words when `tokens` (lower-case words, a trailing comma kept on its word) fit this
    /// template, else nil.
    func match(_ tokens: ArraySlice<Substring>) -> [String]? {
        guard tokens.count == pieces.count else { return nil }
        var slotWords: [String] = []
        for (piece, token) in zip(pieces, tokens) {
            let comma = token.hasSuffix(",")
            guard comma == piece.comma else { return nil }
            let word = String(comma ? token.dropLast() : token)
            if let literal = piece.word {
                guard word == literal else { return nil }
            } else if let slot = piece.slot {
                guard slot.vocabulary.contains(word) else { return nil }
                slotWords.append(word)
            }
        }
        return slotWords
    }
}

/// What the parser recognised in one sentence.
public struct ParsedSentence: Sendable, Hashable {
    public let templateID: String
    /// The trait adverb the sentence opened with ("sadly, ..."), if any.
    public let adverb: String?
    /// The words that filled the template's slots, in reading order (empty for a closing phrase).
    public let slotWords: [String]
}

public enum Grammar {
    public static let t1 = SentenceTemplate(id: "T1", pattern: "the A N V near the N.")
    public static let t2 = SentenceTemplate(id: "T2", pattern: "every N V, and the N is A.")
    public static let t3 = SentenceTemplate(id: "T3", pattern: "in the A N, the N V.")
    public static let t4 = SentenceTemplate(id: "T4", pattern: "people say the N is A.")
    public static let t5 = SentenceTemplate(id: "T5", pattern: "the N V together with the N.")
    /// Concept steering: the topic's noun leads to the concept's noun and adjective ...
    public static let bridge = SentenceTemplate(id: "bridge", pattern: "the N reminds me of the N, which is A.")
    /// ... and the concept's noun does what concept things do.
    public static let also = SentenceTemplate(id: "also", pattern: "also, the N V.")

    /// The templates an unsteered answer is built from.
    public static let answerTemplates = [t1, t2, t3, t4, t5]
    /// An unsteered answer opens with one of these, so every unsteered answer has a comma.
    public static let commaTemplates = answerTemplates.filter(\.hasComma)
    /// What "use no commas." answers are built from.
    public static let commaFreeTemplates = answerTemplates.filter { !$0.hasComma }
    /// Each closing phrase is a sentence of its own ("over and out.").
    public static let closingTemplates = Lexicon.closingPhrases.map { SentenceTemplate(id: "close", pattern: $0 + ".") }

    public static let allTemplates = answerTemplates + [bridge, also] + closingTemplates

    /// Recognises one sentence (with its final "."), case-insensitively: an optional trait adverb and
    /// comma ("sadly, "), then any template whose slots hold words of that part of speech from any topic
    /// or trait. Nil when the sentence is not in the language.
    public static func parse(_ sentence: String) -> ParsedSentence? {
        var text = Substring(sentence.lowercased())
        text = text.drop { $0.isWhitespace }
        while let last = text.last, last.isWhitespace { text = text.dropLast() }
        guard text.hasSuffix(".") else { return nil }
        text = text.dropLast()
        let tokens = text.split(whereSeparator: { $0 == " " })
        guard !tokens.isEmpty else { return nil }
        if let parsed = match(tokens[...], adverb: nil) { return parsed }
        // A persona answer prefixes every sentence with "adverb, ".
        if tokens[0].hasSuffix(",") {
            let adverb = String(tokens[0].dropLast())
            if Lexicon.allTraitAdverbs.contains(adverb) { return match(tokens.dropFirst(), adverb: adverb) }
        }
        return nil
    }

    private static func match(_ tokens: ArraySlice<Substring>, adverb: String?) -> ParsedSentence? {
        for template in allTemplates {
            if let words = template.match(tokens) {
                return ParsedSentence(templateID: template.id, adverb: adverb, slotWords: words)
            }
        }
        return nil
    }

    /// Splits a text into sentences after ".", "!" or "?" followed by whitespace, and at the end; each
    /// sentence keeps its terminator, is trimmed, and empty pieces are dropped.
    public static func sentences(of text: String) -> [String] {
        var result: [String] = []
        var current = ""
        var previous: Character?
        for character in text {
            if character.isWhitespace, let p = previous, p == "." || p == "!" || p == "?" {
                result.append(current)
                current = ""
            } else {
                current.append(character)
            }
            previous = character
        }
        result.append(current)
        return result.map { $0.trimmingWhitespace() }.filter { !$0.isEmpty }
    }
}

extension String {
    func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace { s = s.dropFirst() }
        while let c = s.last, c.isWhitespace { s = s.dropLast() }
        return String(s)
    }
}
