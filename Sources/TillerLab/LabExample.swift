import Foundation
import TillerCore

/// One corpus example: a question about a topic, an optional steering target and where its text goes,
/// the steered answer and the unsteered answer to the same question. It writes itself as one corpus
/// line and reads one back, so evaluation works from heldout.jsonl with the same types.
public struct LabExample: Sendable, Hashable {
    public let id: String
    public let kind: LabKind
    public let placement: LabPlacement
    public let topic: LabTopic
    public let questionTemplate: QuestionTemplate
    public let question: String
    /// The topic noun the question names (nil for "say something about {topic}." and the like).
    public let questionNoun: String?
    /// Nil exactly when kind is none.
    public let target: LabTarget?
    /// The answer that follows the steering (the unsteered answer when kind is none).
    public let answer: String
    public let unsteeredAnswer: String

    public init(id: String, placement: LabPlacement, topic: LabTopic, questionTemplate: QuestionTemplate,
                question: String, questionNoun: String?, target: LabTarget?, answer: String, unsteeredAnswer: String) {
        self.id = id
        self.kind = target?.kind ?? .none
        self.placement = target == nil ? .none : placement
        self.topic = topic
        self.questionTemplate = questionTemplate
        self.question = question
        self.questionNoun = questionNoun
        self.target = target
        self.answer = answer
        self.unsteeredAnswer = unsteeredAnswer
    }

    public var concept: LabTopic? { if case .concept(let c)? = target { return c } else { return nil } }
    public var trait: LabTrait? { if case .persona(let t)? = target { return t } else { return nil } }
    public var format: LabFormat? { if case .format(let f)? = target { return f } else { return nil } }
    public var steeringPrompt: String? { target?.steeringText }

    /// The messages a model is prompted with: the steered prompt (x') or, with `steered: false`, the
    /// bare question (x). No assistant message: generation continues from here.
    public func promptMessages(steered: Bool) -> [LabMessage] {
        LabPrompt.messages(question: question, target: steered ? target : nil, placement: placement)
    }

    /// The steered conversation: prompt and answer (the corpus's "messages").
    public var messages: [LabMessage] { promptMessages(steered: true) + [LabMessage(role: "assistant", content: answer)] }
    /// The unsteered conversation (the corpus's "unsteered_messages").
    public var unsteeredMessages: [LabMessage] {
        promptMessages(steered: false) + [LabMessage(role: "assistant", content: unsteeredAnswer)]
    }

    // MARK: - Corpus line

    /// One JSON object, keys in the order of the lab specification.
    public func jsonLine() -> String {
        var members: [(String, JSONText)] = [
            ("id", .string(id)), ("kind", .string(kind.rawValue)), ("placement", .string(placement.rawValue)),
            ("topic", .string(topic.name)), ("question_template", .string(questionTemplate.id)),
        ]
        if let concept { members.append(("concept", .string(concept.name))) }
        if let trait { members.append(("trait", .string(trait.name))) }
        if let format {
            var object: [(String, JSONText)] = [("type", .string(format.kind.rawValue))]
            if case .endWith(let phrase) = format { object.append(("phrase", .string(phrase))) }
            if case .sentences(let n) = format { object.append(("n", .int(n))) }
            members.append(("format", .object(object)))
        }
        if let steeringPrompt { members.append(("steering_prompt", .string(steeringPrompt))) }
        members.append(("messages", LabExample.json(messages)))
        members.append(("unsteered_messages", LabExample.json(unsteeredMessages)))
        return JSONText.object(members).compact
    }

    private static func json(_ messages: [LabMessage]) -> JSONText {
        .array(messages.map { .object([("role", .string($0.role)), ("content", .string($0.content))]) })
    }

    /// Reads a corpus line, checking every name against the lexicon and the messages against the prompt
    /// the lab builds for the example; throws a one-line `TillerError` naming the problem.
    public init(jsonLine line: String) throws {
        func fail(_ detail: String) -> TillerError { .invalidArgument(op: "lab example", detail: detail) }
        let raw: RawExample
        do {
            raw = try JSONDecoder().decode(RawExample.self, from: Data(line.utf8))
        } catch {
            throw fail("not a corpus line (\(ErrorReason.decoding(error, json: Data(line.utf8))))")
        }
        guard let kind = LabKind(rawValue: raw.kind) else { throw fail("\(raw.id): unknown kind \"\(raw.kind)\"") }
        guard let placement = LabPlacement(rawValue: raw.placement) else {
            throw fail("\(raw.id): unknown placement \"\(raw.placement)\"")
        }
        guard let topic = Lexicon.topic(named: raw.topic) else { throw fail("\(raw.id): unknown topic \"\(raw.topic)\"") }
        guard let template = QuestionTemplate.named(raw.question_template) else {
            throw fail("\(raw.id): unknown question template \"\(raw.question_template)\"")
        }
        let target: LabTarget?
        switch kind {
        case .none:
            target = nil
        case .concept:
            guard let name = raw.concept, let concept = Lexicon.topic(named: name), concept != topic else {
                throw fail("\(raw.id): a concept example needs a concept topic other than its topic")
            }
            target = .concept(concept)
        case .persona:
            guard let name = raw.trait, let trait = Lexicon.trait(named: name) else {
                throw fail("\(raw.id): a persona example needs a known trait")
            }
            target = .persona(trait)
        case .format:
            guard let format = raw.format, let type = LabFormat.Kind(rawValue: format.type) else {
                throw fail("\(raw.id): a format example needs a known format type")
            }
            switch type {
            case .capitals: target = .format(.capitals)
            case .noCommas: target = .format(.noCommas)
            case .quotes: target = .format(.quotes)
            case .endWith:
                guard let phrase = format.phrase, !phrase.isEmpty else { throw fail("\(raw.id): end_with needs a phrase") }
                target = .format(.endWith(phrase))
            case .sentences:
                guard let n = format.n, n > 0 else { throw fail("\(raw.id): sentences needs n > 0") }
                target = .format(.sentences(n))
            }
        }
        guard raw.unsteered_messages.count == 2, raw.unsteered_messages[0].role == "user",
              raw.unsteered_messages[1].role == "assistant" else {
            throw fail("\(raw.id): unsteered_messages must be a user and an assistant message")
        }
        guard let last = raw.messages.last, last.role == "assistant" else {
            throw fail("\(raw.id): messages must end with the assistant's answer")
        }
        let question = raw.unsteered_messages[0].content
        let words = LabText.words(question)
        self.init(id: raw.id, placement: placement, topic: topic, questionTemplate: template, question: question,
                  questionNoun: topic.nouns.first { words.contains($0) }, target: target,
                  answer: last.content, unsteeredAnswer: raw.unsteered_messages[1].content)
        guard self.placement == placement, messages == raw.messages else {
            throw fail("\(raw.id): the messages are not the lab's prompt for this example")
        }
        if let prompt = raw.steering_prompt, prompt != steeringPrompt {
            throw fail("\(raw.id): steering_prompt is not the lab's text for this target")
        }
    }

    /// The line as it is stored; field names are the corpus's.
    private struct RawExample: Decodable {
        struct Format: Decodable {
            let type: String
            let phrase: String?
            let n: Int?
        }
        let id: String
        let kind: String
        let placement: String
        let topic: String
        let question_template: String
        let concept: String?
        let trait: String?
        let format: Format?
        let steering_prompt: String?
        let messages: [LabMessage]
        let unsteered_messages: [LabMessage]
    }
}
