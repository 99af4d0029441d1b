import Foundation
import TillerCore
import TillerLab
import TillerModels
import TillerSteering

/// Runs held-out lab examples through a model and judges the answers: each example's prompt (steered
/// or bare) goes through the model's chat template with the generation prompt, is decoded greedily up
/// to the end-of-turn token, and the answer is scored against the example's target.
public final class LabEvaluation {
    public static let defaultMaxNewTokens = 64
    public static let defaultBatchSize = 16

    public let model: TransformerModel
    public let tokenizer: Tokenizer
    public let template: ChatTemplate

    public init(model: TransformerModel, tokenizer: Tokenizer, template: ChatTemplate) {
        self.model = model
        self.tokenizer = tokenizer
        self.template = template
    }

    /// Loads the weights, tokenizer and chat template of a model directory onto `backend`.
    public static func load(directory: String, backend: any Backend) throws -> LabEvaluation {
        let tokenizer = try Tokenizer(directory: directory)
        let template = try ChatTemplate(directory: directory)
        let model = try TransformerModel.load(directory: directory, backend: backend)
        return LabEvaluation(model: model, tokenizer: tokenizer, template: template)
    }

    /// The token ids of a conversation rendered with the generation prompt. The template writes the
    /// BOS itself, so no special tokens are added again (as apply_chat_template(tokenize=True)).
    public func promptIDs(_ messages: [LabMessage]) throws -> [Int32] {
        let text = try template.render(messages.map { ChatMessage(role: $0.role, content: $0.content) },
                                       addGenerationPrompt: true)
        return try tokenizer.encode(text, addSpecialTokens: false)
    }

    /// Greedy answers to prompts, in their order, each ending at the end-of-turn token (left out of
    /// the text) or after `maxNewTokens` tokens.
    public func answer(_ prompts: [[LabMessage]], maxNewTokens: Int = LabEvaluation.defaultMaxNewTokens,
                       batchSize: Int = LabEvaluation.defaultBatchSize,
                       progress: ((GenerationProgress) -> Void)? = nil) throws -> [GenerationResult] {
        let options = GenerationOptions(maxNewTokens: maxNewTokens, temperature: 0)
        let requests = try prompts.map { GenerationRequest(promptIDs: try promptIDs($0), options: options) }
        let generator = try Generator(model: model, tokenizer: tokenizer, batchSize: batchSize)
        return try generator.generate(requests, progress: progress)
    }

    /// Generates and judges one answer per example (examples of kind none have no target and are
    /// refused). Rows come back in the examples' order.
    public func run(_ examples: [LabExample], steer: LabSteerMode,
                    maxNewTokens: Int = LabEvaluation.defaultMaxNewTokens,
                    batchSize: Int = LabEvaluation.defaultBatchSize,
                    progress: ((GenerationProgress) -> Void)? = nil) throws -> LabEvaluationReport {
        guard let kind = examples.first?.kind else {
            throw TillerError.invalidArgument(op: "lab eval", detail: "no examples to evaluate")
        }
        var targets: [LabTarget] = []
        for example in examples {
            guard let target = example.target, example.kind == kind else {
                throw TillerError.invalidArgument(op: "lab eval", detail: "\(example.id): expected a \(kind.rawValue) example, got \(example.kind.rawValue)")
            }
            targets.append(target)
        }
        let prompts = examples.map { $0.promptMessages(steered: steer.steered) }
        var last = GenerationProgress(totalRequests: prompts.count)
        let results = try answer(prompts, maxNewTokens: maxNewTokens, batchSize: batchSize, progress: { p in
            last = p
            progress?(p)
        })
        let rows = examples.indices.map { i in
            LabEvaluationRow(example: examples[i], messages: prompts[i], answer: results[i].completion,
                             stopReason: results[i].stopReason,
                             scores: LabJudge.score(target: targets[i], topic: examples[i].topic, answer: results[i].completion))
        }
        return LabEvaluationReport(kind: kind, steer: steer, rows: rows, generation: last)
    }

    /// Tokens of a prompt that are its system prompt: the leading system messages rendered alone (no
    /// generation prompt), as far as their tokens agree with the prompt's; 0 without one. What a
    /// `question_and_answer` location leaves out.
    public func systemLength(_ messages: [LabMessage], ids: [Int32]) throws -> Int {
        let system = messages.prefix { $0.role == "system" }
        guard !system.isEmpty else { return 0 }
        let text = try template.render(system.map { ChatMessage(role: $0.role, content: $0.content) }, addGenerationPrompt: false)
        let prefix = try tokenizer.encode(text, addSpecialTokens: false)
        return zip(prefix, ids).prefix { $0 == $1 }.count
    }

    /// Generates and judges one answer per request, all in one batched run: each request's prompt
    /// (bare or with its steering text) is steered by its intervention, if any, through one
    /// `SteeringHook` over `interventions`, so differently steered requests share batches. Rows come
    /// back in the requests' order; every example needs a target.
    public func answer(_ requests: [LabRequest], interventions: [Intervention] = [],
                       maxNewTokens: Int = LabEvaluation.defaultMaxNewTokens,
                       batchSize: Int = LabEvaluation.defaultBatchSize,
                       progress: ((GenerationProgress) -> Void)? = nil) throws -> (rows: [LabEvaluationRow], generation: GenerationProgress) {
        var targets: [LabTarget] = []
        for request in requests {
            guard let target = request.example.target else {
                throw TillerError.invalidArgument(op: "lab eval", detail: "\(request.example.id) has no steering target")
            }
            if let index = request.intervention, !interventions.indices.contains(index) {
                throw TillerError.invalidArgument(op: "lab eval", detail: "intervention \(index) of \(interventions.count)")
            }
            targets.append(target)
        }
        let options = GenerationOptions(maxNewTokens: maxNewTokens, temperature: 0)
        var generationRequests: [GenerationRequest] = [], steering: [SequenceSteering] = []
        let prompts = requests.map { $0.example.promptMessages(steered: $0.prompted) }
        for (request, messages) in zip(requests, prompts) {
            let ids = try promptIDs(messages)
            generationRequests.append(GenerationRequest(promptIDs: ids, options: options))
            if let index = request.intervention {
                steering.append(SequenceSteering([SteeringApplication(intervention: index, alpha: request.alpha)],
                                                 systemLength: try systemLength(messages, ids: ids)))
            } else {
                steering.append(.unsteered)
            }
        }
        let hook = interventions.isEmpty ? nil : try SteeringHook(model: model, interventions: interventions, requests: steering)
        let generator = try Generator(model: model, tokenizer: tokenizer, batchSize: batchSize)
        var last = GenerationProgress(totalRequests: requests.count)
        let results = try generator.generate(generationRequests, hook: hook, progress: { p in
            last = p
            progress?(p)
        })
        let rows = requests.indices.map { i in
            LabEvaluationRow(example: requests[i].example, messages: prompts[i], answer: results[i].completion,
                             stopReason: results[i].stopReason,
                             scores: LabJudge.score(target: targets[i], topic: requests[i].example.topic, answer: results[i].completion))
        }
        return (rows, last)
    }
}

/// One answer for `LabEvaluation.answer(_:interventions:)`: an example asked bare (x) or with its
/// steering text (x'), and optionally steered by one of the interventions at a strength.
public struct LabRequest: Sendable {
    public var example: LabExample
    /// Ask with the steering text (x') rather than the bare question (x).
    public var prompted: Bool
    /// Index into the interventions; nil: no activation steering.
    public var intervention: Int?
    /// The strength; nil: the intervention's own alpha.
    public var alpha: Float?

    public init(example: LabExample, prompted: Bool, intervention: Int? = nil, alpha: Float? = nil) {
        self.example = example
        self.prompted = prompted
        self.intervention = intervention
        self.alpha = alpha
    }
}
