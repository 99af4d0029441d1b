import Foundation
import Testing
import TillerCPU
import TillerLab
@testable import TillerEvaluation

/// The equivalent-prompt yardstick of `tiller lab compare`.
@Suite struct LabParaphraseTests {
    static func examples(_ target: String) throws -> [LabExample] {
        let filter = try LabTargetFilter(kind: .persona, name: target)
        let train = LabComparison.trainSplit(seed: HeldOutExamples.defaultSeed, targets: [filter], count: 6)
        return Array(train.filter { $0.kind == .persona && filter.matches($0.target) }.prefix(6))
    }

    @Test func theSamePromptIsZeroAndAParaphraseIsNot() throws {
        let evaluation = try LabEvaluation.load(directory: try BuiltInModel.locate(environment: [:]), backend: CPUBackend())
        let examples = try Self.examples("cheerful")
        try #require(!examples.isEmpty)
        let layer = evaluation.model.layerCount / 2
        let prompted = try LabComparison.prepare(examples, evaluation: evaluation, source: "test")
        // Against itself: every row shared and equal, so no error at all.
        let same = try #require(try LabParaphrase.relativeRMSE(examples, prompted: prompted, layer: layer, evaluation: evaluation,
                                                                source: "test", paraphrase: { $0.promptMessages(steered: true) }))
        #expect(same == 0)
        // The paraphrase moves the stream, but not as far as dropping the prompt (Delta itself: 1).
        let paraphrased = try #require(try LabParaphrase.relativeRMSE(examples, prompted: prompted, layer: layer,
                                                                       evaluation: evaluation, source: "test"))
        #expect(paraphrased > 0 && paraphrased.isFinite)
        let unsteered = try #require(try LabParaphrase.relativeRMSE(examples, prompted: prompted, layer: layer, evaluation: evaluation,
                                                                     source: "test", paraphrase: { $0.promptMessages(steered: false) }))
        #expect(abs(unsteered - 1) < 1e-6, "with x' = x the paraphrase's Delta is 0, so the error is Delta itself")
    }

    @Test func paraphrasesAskForTheSameTarget() {
        for target in [LabTarget.persona(Lexicon.traits[0]), .concept(Lexicon.topics[0]), .format(.capitals)] {
            #expect(target.paraphraseText != target.steeringText)
        }
    }
}
