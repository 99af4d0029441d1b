import Foundation
import Testing
import TillerCore
import TillerModels
import TillerSteering
import TillerTraining

/// ReFT-r1's loss (objective + C * L1), its gradient with respect to every direction and each
/// layer's largest latent against PyTorch autograd through torch.topk (float64;
/// scripts/fixtures/make_reft_fixtures.py), for every architecture on every backend with backward
/// ops: the loss within 1e-4 relative, every gradient within 1e-4 of its largest magnitude.
@Suite struct ReFTR1ParityTests {
    struct Fixture: Decodable {
        struct Case: Decodable {
            let name: String
            let directions: [String: [Float]]
            let location: String
            let topk: Int
            let objective: String
            let l1_weight: Float
            let loss: Double
            let objective_value: Double
            let l1: Double
            let positions: Int
            let gradients: [String: [Double]]
            let max_latents: [String: Double]
        }
        let triplets: [GradientFixtures.Fixture.Triplet]
        let cases: [Case]
    }

    @Test(arguments: GradientFixtures.architectures)
    func lossGradientsAndLatentsMatchAutograd(_ architecture: String) throws {
        let fixture = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: URL(fileURLWithPath: GradientFixtures.path("\(architecture)-reft-r1"))))
        let triplets = fixture.triplets.map {
            TrainingTriplet(ids: CaptureTriplet(steeredPrompt: $0.steered, unsteeredPrompt: $0.unsteered, completion: $0.completion), alpha: $0.alpha)
        }
        for backend in GradientFixtures.backends() {
            try GradientFixtures.exclusively(backend) {
                let model = try TransformerModel.load(directory: GradientFixtures.modelDirectory(architecture), backend: backend)
                for expected in fixture.cases {
                    var directions: [Int: [Float]] = [:]
                    for (layer, w) in expected.directions { directions[Int(layer)!] = w }
                    // Batches of 3 over 4 triplets: a padded batch and a lone one.
                    let evaluator = try ReFTR1Evaluator(model: model, directions: directions, location: SteeringLocation(name: expected.location)!,
                                                        objective: Objective(rawValue: expected.objective)!, topK: expected.topk,
                                                        l1Weight: expected.l1_weight, batchSize: 3)
                    let got = try evaluator.evaluate(triplets)
                    let label = "\(architecture) \(expected.name) on \(backend.name)"
                    let head = GradientFixtures.Fixture.Case(file: expected.name, objective: expected.objective, regularizer_weight: expected.l1_weight,
                                                             loss: expected.loss, objective_value: expected.objective_value,
                                                             regularizer: expected.l1, positions: expected.positions, gradients: expected.gradients)
                    ObjectiveParityTests.check(got, head, label)
                    let maxima = try evaluator.maxLatents(triplets)
                    for (layer, want) in expected.max_latents {
                        let value = Double(try #require(maxima[Int(layer)!]))
                        #expect(abs(value - want) <= ObjectiveParityTests.tolerance * max(abs(want), 1), "\(label): layer \(layer)'s largest latent \(value), torch \(want)")
                    }
                }
            }
        }
    }
}
