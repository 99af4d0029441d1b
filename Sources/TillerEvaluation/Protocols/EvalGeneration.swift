import TillerCore
import TillerLab
import TillerModels
import TillerSteering

/// One answer to generate: an item asked under an arm.
public struct EvalRequest: Sendable {
    public var item: EvalItem
    public var arm: EvalArm

    public init(item: EvalItem, arm: EvalArm) {
        self.item = item
        self.arm = arm
    }

    /// The messages asked: the prompt-steered request or the bare one.
    public func messages() throws -> [LabMessage] {
        if arm.prompted { return item.prompted }
        guard let bare = item.bare else {
            throw TillerError.invalidArgument(op: "eval", detail: "item \(item.id) has no bare request (no \"question\": IFEval's own layout gives only the instructed prompt), so it can be asked only with --steer prompt or --with-prompt")
        }
        return bare
    }
}

/// A generated answer: the text, its ids (for the coherence proxy) and why it stopped.
public struct EvalAnswer: Sendable {
    public var messages: [LabMessage]
    public var promptIDs: [Int32]
    public var result: GenerationResult
}

extension LabEvaluation {
    /// Greedy answers to requests, in their order, in one batched run: every arm's intervention
    /// goes into one `SteeringHook`, so differently steered requests share batches (as
    /// `answer(_:interventions:)` does for lab examples).
    public func answer(_ requests: [EvalRequest], maxNewTokens: Int, batchSize: Int,
                       progress: ((GenerationProgress) -> Void)? = nil) throws -> [EvalAnswer] {
        let options = GenerationOptions(maxNewTokens: maxNewTokens, temperature: 0)
        var interventions: [Intervention] = [], indexOfKey: [String: Int] = [:]
        var generationRequests: [GenerationRequest] = [], steering: [SequenceSteering] = []
        var asked: [[LabMessage]] = [], ids: [[Int32]] = []
        for request in requests {
            let messages = try request.messages()
            let promptIDs = try self.promptIDs(messages)
            asked.append(messages)
            ids.append(promptIDs)
            generationRequests.append(GenerationRequest(promptIDs: promptIDs, options: options))
            if let intervention = request.arm.intervention, let file = request.arm.file {
                let index: Int
                if let known = indexOfKey[file] {
                    index = known
                } else {
                    index = interventions.count
                    indexOfKey[file] = index
                    interventions.append(intervention)
                }
                steering.append(SequenceSteering([SteeringApplication(intervention: index, alpha: request.arm.alpha)],
                                                 systemLength: try systemLength(messages, ids: promptIDs)))
            } else {
                steering.append(.unsteered)
            }
        }
        let hook = interventions.isEmpty ? nil : try SteeringHook(model: model, interventions: interventions, requests: steering)
        let generator = try Generator(model: model, tokenizer: tokenizer, batchSize: batchSize)
        let results = try generator.generate(generationRequests, hook: hook, progress: progress)
        return results.indices.map { EvalAnswer(messages: asked[$0], promptIDs: ids[$0], result: results[$0]) }
    }
}
