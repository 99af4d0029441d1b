/// What an example asks the model to do (its steering target), where the request is placed, and the
/// exact prompt texts: the single place they are spelled, so corpus and evaluation agree.

public enum LabKind: String, Sendable, Hashable, CaseIterable {
    case none, concept, persona, format
}

/// Where the steering text goes: the system message, or in front of the question in the user message.
public enum LabPlacement: String, Sendable, Hashable, CaseIterable {
    case none, system, user
}

public enum LabFormat: Sendable, Hashable, CustomStringConvertible {
    case capitals
    case noCommas
    case endWith(String)
    case sentences(Int)
    case quotes

    public enum Kind: String, Sendable, CaseIterable {
        case capitals, noCommas = "no_commas", endWith = "end_with", sentences, quotes
    }

    /// Sentence counts a "sentences" format may ask for: never 3, the unsteered count.
    public static let sentenceCounts = [1, 2, 4, 5]

    public var kind: Kind {
        switch self {
        case .capitals: return .capitals
        case .noCommas: return .noCommas
        case .endWith: return .endWith
        case .sentences: return .sentences
        case .quotes: return .quotes
        }
    }

    /// One format of every kind (the first phrase, the first count): what a baseline is judged against.
    public static var representatives: [LabFormat] {
        [.capitals, .noCommas, .endWith(Lexicon.closingPhrases[0]), .sentences(sentenceCounts[0]), .quotes]
    }

    /// Every concrete format: all phrases and all counts.
    public static var all: [LabFormat] {
        [.capitals, .noCommas] + Lexicon.closingPhrases.map { .endWith($0) }
            + sentenceCounts.map { .sentences($0) } + [.quotes]
    }

    public var description: String {
        switch self {
        case .endWith(let phrase): return "end_with(\(phrase))"
        case .sentences(let n): return "sentences(\(n))"
        default: return kind.rawValue
        }
    }
}

/// The thing a steered answer must show, and what the judges score against.
public enum LabTarget: Sendable, Hashable, CustomStringConvertible {
    case concept(LabTopic)
    case persona(LabTrait)
    case format(LabFormat)

    public var kind: LabKind {
        switch self {
        case .concept: return .concept
        case .persona: return .persona
        case .format: return .format
        }
    }

    /// The steering texts with their placeholders ({concept}, {trait}, {phrase}, {n}): the one spelling,
    /// used by `steeringText` and written to world.json.
    public static let promptTemplates: [(key: String, text: String)] = [
        ("concept", "mention {concept} in your answer."),
        ("persona", "you are a {trait} assistant."),
        ("capitals", "answer in capitals."),
        ("no_commas", "use no commas."),
        ("end_with", "end your answer with \"{phrase}\"."),
        ("sentences", "answer in exactly {n} sentences."),
        ("quotes", "wrap your answer in quotes."),
    ]

    /// The same requests in other words, never seen in training: the PSR paper's "equivalent
    /// prompt" yardstick (how far apart two prompts that ask for the same thing put the residual
    /// stream) for `tiller lab compare`'s relative RMSE. No content word of the lexicon occurs here.
    public static let paraphraseTemplates: [(key: String, text: String)] = [
        ("concept", "please bring up {concept} when you reply."),
        ("persona", "act as a {trait} assistant."),
        ("capitals", "reply using only upper case letters."),
        ("no_commas", "do not put any commas in your reply."),
        ("end_with", "finish your reply with \"{phrase}\"."),
        ("sentences", "reply with {n} sentences, no more and no fewer."),
        ("quotes", "put quotation marks around your reply."),
    ]

    private static func prompt(_ key: String, in templates: [(key: String, text: String)] = promptTemplates) -> String {
        templates.first { $0.key == key }?.text ?? ""
    }

    /// The steering text, exactly as the corpus uses it.
    public var steeringText: String { text(from: LabTarget.promptTemplates) }

    /// The steering text in other words (`paraphraseTemplates`).
    public var paraphraseText: String { text(from: LabTarget.paraphraseTemplates) }

    private func text(from templates: [(key: String, text: String)]) -> String {
        switch self {
        case .concept(let topic): return LabTarget.prompt("concept", in: templates).replacingAll("{concept}", with: topic.name)
        case .persona(let trait): return LabTarget.prompt("persona", in: templates).replacingAll("{trait}", with: trait.name)
        case .format(.endWith(let phrase)): return LabTarget.prompt("end_with", in: templates).replacingAll("{phrase}", with: phrase)
        case .format(.sentences(let n)): return LabTarget.prompt("sentences", in: templates).replacingAll("{n}", with: String(n))
        case .format(let format): return LabTarget.prompt(format.kind.rawValue, in: templates)
        }
    }

    public var description: String {
        switch self {
        case .concept(let topic): return "concept(\(topic.name))"
        case .persona(let trait): return "persona(\(trait.name))"
        case .format(let format): return "format(\(format))"
        }
    }
}

public struct LabMessage: Sendable, Hashable, Codable {
    public var role: String
    public var content: String
    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }
}

public enum LabPrompt {
    /// The prompt for `question`: unsteered (no target, or placement none) is the user message alone;
    /// "system" puts the steering text in a system message; "user" puts it before the question.
    public static func messages(question: String, target: LabTarget?, placement: LabPlacement) -> [LabMessage] {
        messages(question: question, steeringText: target?.steeringText, placement: placement)
    }

    /// The same with any steering text (a paraphrase, say) in the target's place.
    public static func messages(question: String, steeringText: String?, placement: LabPlacement) -> [LabMessage] {
        guard let steeringText, placement != .none else { return [LabMessage(role: "user", content: question)] }
        switch placement {
        case .system:
            return [LabMessage(role: "system", content: steeringText), LabMessage(role: "user", content: question)]
        case .user, .none:
            return [LabMessage(role: "user", content: steeringText + " " + question)]
        }
    }
}
