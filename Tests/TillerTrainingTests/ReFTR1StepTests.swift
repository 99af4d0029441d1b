import Foundation
import Testing
import TillerCore
@testable import TillerTraining

/// ReFT-r1's optimiser step against AxBench's, run in torch (scripts/fixtures/make_reft_step_fixture.py):
/// the gradient clipped to global norm 1, each direction set to unit norm, the gradient's component
/// along it removed, then AdamW; every parameter after every step.
@Suite struct ReFTR1StepTests {
    struct Fixture: Decodable {
        let learning_rate: Double
        let planned_steps: Int
        let hidden_size: Int
        let layers: Int
        let gradients: [[Double]]
        let after: [[Double]]
    }

    @Test func matchesAxBenchsStep() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/optim/reft-r1-step.json")
        let fixture = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
        let recipe = TrainingRecipe(method: .reftR1, objective: .ll, layers: Array(0..<fixture.layers))
        #expect(recipe.learningRate == fixture.learning_rate && recipe.weightDecay == 0)
        var parameters = ReFTR1Method.initialParameters(recipe, hiddenSize: fixture.hidden_size)
        var optimiser = AdamW(learningRate: recipe.learningRate, weightDecay: recipe.weightDecay, plannedSteps: fixture.planned_steps)
        for (step, (given, expected)) in zip(fixture.gradients, fixture.after).enumerated() {
            var gradient = given
            ReFTR1Method.axbenchStep(&parameters, gradient: &gradient, layers: fixture.layers, hiddenSize: fixture.hidden_size)
            try optimiser.update(&parameters, gradient: gradient)
            let worst = zip(parameters, expected).map { abs($0 - $1) }.max()!
            #expect(worst < 1e-9, "step \(step + 1): differs from AxBench's step in torch by \(worst)")
        }
    }
}
