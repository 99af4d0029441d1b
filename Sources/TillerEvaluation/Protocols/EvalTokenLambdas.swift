import TillerCore
import TillerLab
import TillerModels
import TillerSteering

/// The tokens of an answer with the lambda_t a PSR head gave each, for the report: the prompt and
/// the answer teacher-forced through the model with the intervention (at the run's alpha), the
/// head's coefficients recorded by the `SteeringHook` at one layer.
public struct EvalTokenLambdas: Sendable {
    public var layer: Int
    /// The answer's tokens as text, with lambda_t (nil where the head does not act).
    public var tokens: [(text: String, lambda: Float?)]

    /// The layer shown: the intervention's first ReLU (PSR) head; nil when it has none (a constant
    /// head's lambda is 1 everywhere, nothing to show).
    public static func layer(of intervention: Intervention) -> Int? {
        intervention.layers.first { intervention.heads[$0]?.activation == .relu }
    }

    public static func compute(evaluation: LabEvaluation, intervention: Intervention, alpha: Float,
                               messages: [LabMessage], answer: [Int32]) throws -> EvalTokenLambdas? {
        guard let layer = layer(of: intervention), !answer.isEmpty else { return nil }
        let prompt = try evaluation.promptIDs(messages)
        let tokens = prompt + answer
        let model = evaluation.model
        guard tokens.count <= model.config.maxPositionEmbeddings ?? Int.max else { return nil }
        let steering = SequenceSteering([SteeringApplication(intervention: 0, alpha: alpha)],
                                        systemLength: try evaluation.systemLength(messages, ids: prompt))
        let hook = try SteeringHook(model: model, interventions: [intervention], requests: [steering])
        hook.recordedRequest = 0
        hook.assign(slot: 0, request: 0, promptLength: prompt.count)
        let cache = try model.makeCache(batchSize: 1, capacity: tokens.count)
        _ = try model.forward([tokens], cache: cache, logits: .last, hook: hook)
        var lambdaAt: [Int: Float] = [:]
        for record in try hook.recordedLambdas() where record.layer == layer { lambdaAt[record.position] = record.lambda }
        let texts = answer.map { evaluation.tokenizer.decode([$0]) }
        // Position p's lambda steered the stream that predicted token p + 1: shown on the token it
        // helped produce, as generation applies it.
        return EvalTokenLambdas(layer: layer, tokens: texts.enumerated().map { k, text in
            (text, lambdaAt[prompt.count - 1 + k])
        })
    }
}
