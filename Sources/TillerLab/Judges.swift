/// The exact judges (docs/lab.md spells out the same rules). They read an answer's words and parse its
/// sentences; no model is involved, so a score is a fact about the text.

/// AxBench-style 0/1/2 scores for concept steering.
public struct ConceptScores: Sendable, Hashable {
    /// Distinct words of the concept's lexicon (name included): 0, 1, or 2 for two or more.
    public let concept: Int
    /// Distinct words of the question topic's lexicon (relevance to the question), bucketed the same way.
    public let instruction: Int
    /// 2 when every sentence parses, 1 when at least half do, else 0 (0 for an empty answer).
    public let fluency: Int
    /// Harmonic mean of the three; 0 when any is 0.
    public let aggregate: Double
}

public struct PersonaScores: Sendable, Hashable {
    /// 0-100: the share of sentences carrying one of the trait's adverbs or adjectives.
    public let trait: Double
    /// 0-100: the share of sentences that parse, or 0 when no word of the question's topic appears.
    public let coherence: Double
}

public struct FormatScores: Sendable, Hashable {
    public let pass: Bool
    /// As for persona.
    public let coherence: Double
}

public enum LabScores: Sendable, Hashable {
    case concept(ConceptScores)
    case persona(PersonaScores)
    case format(FormatScores)

    /// Every number, named, in a fixed order (for tables and JSON): concept/instruction/fluency/aggregate,
    /// trait/coherence, or pass (1 or 0)/coherence.
    public var metrics: [(name: String, value: Double)] {
        switch self {
        case .concept(let s):
            return [("concept", Double(s.concept)), ("instruction", Double(s.instruction)),
                    ("fluency", Double(s.fluency)), ("aggregate", s.aggregate)]
        case .persona(let s):
            return [("trait", s.trait), ("coherence", s.coherence)]
        case .format(let s):
            return [("pass", s.pass ? 1 : 0), ("coherence", s.coherence)]
        }
    }
}

public enum LabJudge {
    /// Scores `answer` to a question about `topic` against `target`. Unsteered baselines use the same
    /// call with the target the steered run would have had.
    public static func score(target: LabTarget, topic: LabTopic, answer: String) -> LabScores {
        switch target {
        case .concept(let concept): return .concept(self.concept(concept, topic: topic, answer: answer))
        case .persona(let trait): return .persona(persona(trait, topic: topic, answer: answer))
        case .format(let format): return .format(self.format(format, topic: topic, answer: answer))
        }
    }

    /// Scores `answer` against the example's own target; nil for an example of kind none (it has none).
    public static func score(example: LabExample, answer: String) -> LabScores? {
        example.target.map { score(target: $0, topic: example.topic, answer: answer) }
    }

    // MARK: - Concept

    public static func concept(_ concept: LabTopic, topic: LabTopic, answer: String) -> ConceptScores {
        let words = Set(LabText.words(answer))
        let c = bucket(words.intersection(concept.words).count)
        let i = bucket(words.intersection(topic.words).count)
        let f = fluency(answer)
        let aggregate = (c == 0 || i == 0 || f == 0) ? 0 : 3 / (1 / Double(c) + 1 / Double(i) + 1 / Double(f))
        return ConceptScores(concept: c, instruction: i, fluency: f, aggregate: aggregate)
    }

    /// 0, 1, or 2 for two or more.
    static func bucket(_ count: Int) -> Int { min(count, 2) }

    /// The 0/1/2 fluency score from the share of sentences that parse.
    public static func fluency(_ answer: String) -> Int {
        let sentences = sentences(answer)
        guard !sentences.isEmpty else { return 0 }
        let share = parseShare(sentences)
        return share == 1 ? 2 : (share >= 0.5 ? 1 : 0)
    }

    // MARK: - Persona

    public static func persona(_ trait: LabTrait, topic: LabTopic, answer: String) -> PersonaScores {
        let sentences = sentences(answer)
        let markers = Set(trait.markers)
        let carrying = sentences.filter { !markers.isDisjoint(with: LabText.words($0)) }.count
        let share = sentences.isEmpty ? 0 : Double(carrying) / Double(sentences.count)
        return PersonaScores(trait: 100 * share, coherence: coherence(topic: topic, answer: answer))
    }

    /// 0-100: 100 times the share of sentences that parse, and 0 when the answer has no word of the
    /// topic's lexicon (an off-topic answer is no coherent answer to the question).
    public static func coherence(topic: LabTopic, answer: String) -> Double {
        let sentences = sentences(answer)
        guard !sentences.isEmpty, !Set(topic.words).isDisjoint(with: LabText.words(answer)) else { return 0 }
        return 100 * parseShare(sentences)
    }

    // MARK: - Format

    public static func format(_ format: LabFormat, topic: LabTopic, answer: String) -> FormatScores {
        FormatScores(pass: passes(format, answer: answer), coherence: coherence(topic: topic, answer: answer))
    }

    /// The format checker, on the raw answer.
    public static func passes(_ format: LabFormat, answer: String) -> Bool {
        switch format {
        case .capitals:
            return answer.contains(where: \.isLetter) && !answer.contains(where: \.isLowercase)
        case .noCommas:
            // "Has a letter" keeps an empty answer from passing by saying nothing.
            return answer.contains(where: \.isLetter) && !answer.contains(",")
        case .endWith(let phrase):
            return endsWith(answer, phrase: phrase)
        case .sentences(let n):
            return sentences(answer).count == n
        case .quotes:
            let text = answer.trimmingWhitespace()
            guard text.count >= 2, text.hasPrefix("\""), text.hasSuffix("\"") else { return false }
            return !String(text.dropFirst().dropLast()).trimmingWhitespace().isEmpty
        }
    }

    /// With trailing whitespace, one closing quote and one final "." or "!" (in either order) stripped,
    /// the answer ends with the phrase, case ignored, and the phrase starts a word ("bathe end" does not
    /// end with "the end").
    static func endsWith(_ answer: String, phrase: String) -> Bool {
        var text = answer.trimmingWhitespace().lowercased()
        var quote = false, terminator = false
        while true {
            if !quote, text.hasSuffix("\"") {
                quote = true
            } else if !terminator, text.hasSuffix(".") || text.hasSuffix("!") {
                terminator = true
            } else {
                break
            }
            text = String(text.dropLast()).trimmingWhitespace()
        }
        let phrase = phrase.lowercased()
        guard !phrase.isEmpty, text.hasSuffix(phrase) else { return false }
        let before = text.dropLast(phrase.count).last
        return before.map { !$0.isLetter } ?? true
    }

    // MARK: - Shared

    /// The answer's sentences as the judges see them: wrapping quotes stripped, split after ".", "!"
    /// or "?" followed by whitespace.
    public static func sentences(_ answer: String) -> [String] {
        Grammar.sentences(of: LabText.unquoted(answer))
    }

    static func parseShare(_ sentences: [String]) -> Double {
        guard !sentences.isEmpty else { return 0 }
        return Double(sentences.filter { Grammar.parse($0) != nil }.count) / Double(sentences.count)
    }
}
