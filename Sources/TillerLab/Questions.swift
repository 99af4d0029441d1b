/// The user's questions: ten templates over a topic, with {noun}, {adj} and {topic} slots. The last two
/// are held out of training, to measure whether steering survives a question form never seen with it.

public struct QuestionTemplate: Sendable, Hashable {
    public let id: String
    public let text: String

    public var heldOut: Bool { QuestionTemplate.heldOutIDs.contains(id) }
    /// Whether the question names a noun (and so the answer's first sentence mentions it).
    public var hasNoun: Bool { text.contains("{noun}") }
    public var hasAdjective: Bool { text.contains("{adj}") }

    public static let all: [QuestionTemplate] = [
        QuestionTemplate(id: "q0", text: "tell me about the {noun}."),
        QuestionTemplate(id: "q1", text: "what do you know about the {noun}?"),
        QuestionTemplate(id: "q2", text: "why is the {noun} {adj}?"),
        QuestionTemplate(id: "q3", text: "can you describe the {noun}?"),
        QuestionTemplate(id: "q4", text: "say something about {topic}."),
        QuestionTemplate(id: "q5", text: "explain the {adj} {noun} to me."),
        QuestionTemplate(id: "q6", text: "i wonder about the {noun}. any thoughts?"),
        QuestionTemplate(id: "q7", text: "what can you tell me about {topic}?"),
        QuestionTemplate(id: "q8", text: "what is special about the {noun}?"),
        QuestionTemplate(id: "q9", text: "give me facts about the {noun}."),
    ]
    public static let heldOutIDs = ["q8", "q9"]
    public static var trainTemplates: [QuestionTemplate] { all.filter { !$0.heldOut } }
    public static var heldOutTemplates: [QuestionTemplate] { all.filter(\.heldOut) }

    public static func named(_ id: String) -> QuestionTemplate? { all.first { $0.id == id } }

    /// The question for a topic; `noun` and `adjective` fill {noun} and {adj} where the template has them.
    public func render(topic: LabTopic, noun: String, adjective: String) -> String {
        text.replacingAll("{noun}", with: noun)
            .replacingAll("{adj}", with: adjective)
            .replacingAll("{topic}", with: topic.name)
    }
}

extension String {
    /// Plain substring replacement (the standard library's, so no Foundation in the grammar).
    func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var result = ""
        var rest = Substring(self)
        while let range = rest.firstRange(of: target) {
            result += rest[..<range.lowerBound]
            result += replacement
            rest = rest[range.upperBound...]
        }
        return result + rest
    }
}
