import Foundation
import Testing
import TillerCore

/// Tiller's AdamW against torch.optim.AdamW with LambdaLR's linear decay to 0
/// (scripts/fixtures/make_adamw_fixture.py): every parameter after every step.
@Suite struct AdamWTests {
    struct Fixture: Decodable {
        let learning_rate: Double
        let weight_decay: Double
        let planned_steps: Int
        let start: [Double]
        let gradients: [[Double]]
        let after: [[Double]]
    }

    @Test func matchesTorch() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/optim/adamw.json")
        let fixture = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
        var optimiser = AdamW(learningRate: fixture.learning_rate, weightDecay: fixture.weight_decay, plannedSteps: fixture.planned_steps)
        var parameters = fixture.start
        for (step, (gradient, expected)) in zip(fixture.gradients, fixture.after).enumerated() {
            try optimiser.update(&parameters, gradient: gradient)
            let worst = zip(parameters, expected).map { abs($0 - $1) }.max()!
            #expect(worst < 1e-12, "step \(step + 1): differs from torch by \(worst)")
        }
        // Past the plan the rate is 0: the last two steps change nothing (torch agrees).
        #expect(optimiser.currentRate == 0)
    }

    @Test func refusesAChangeOfSize() throws {
        var optimiser = AdamW()
        var parameters = [1.0, 2.0]
        try optimiser.update(&parameters, gradient: [0.1, 0.2])
        var other = [1.0]
        #expect(throws: TillerError.self) { try optimiser.update(&other, gradient: [0.1]) }
        #expect(throws: TillerError.self) { try optimiser.update(&parameters, gradient: [0.1]) }
    }
}
