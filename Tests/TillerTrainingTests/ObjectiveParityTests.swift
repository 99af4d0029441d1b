import Foundation
import Testing
import TillerCore
import TillerModels
import TillerSteering
import TillerTraining

/// The objectives and their gradients against PyTorch autograd (float64), for every architecture,
/// both objectives, with and without the regularizer, on every backend with backward ops: the
/// loss within 1e-4 relative, every gradient tensor within 1e-4 of its largest magnitude.
@Suite struct ObjectiveParityTests {
    static let tolerance = 1e-4

    @Test(arguments: GradientFixtures.architectures)
    func objectivesMatchAutograd(_ architecture: String) throws {
        let fixture = try GradientFixtures.load(architecture)
        let triplets = GradientFixtures.triplets(fixture)
        let backends = GradientFixtures.backends()
        print("ObjectiveParityTests \(architecture): backends \(backends.map(\.name).joined(separator: ", "))")
        // The reference always has backward ops, and so must the CPU backend.
        #expect(backends.contains { $0.name == "cpu" })
        for backend in backends {
            try GradientFixtures.exclusively(backend) {
                let model = try TransformerModel.load(directory: GradientFixtures.modelDirectory(architecture), backend: backend)
                // Both backward paths: every block's activations kept, and each block recomputed.
                for budget in [model.trainingActivationBudget, 0] {
                model.trainingActivationBudget = budget
                for expected in fixture.cases {
                    let file = try #require(fixture.files.first { $0.name == expected.file })
                    // Batches of 3 over 4 triplets: a padded batch and a lone one.
                    let evaluator = try ObjectiveEvaluator(model: model, intervention: GradientFixtures.intervention(file),
                                                           objective: Objective(rawValue: expected.objective)!,
                                                           regularizerWeight: expected.regularizer_weight, batchSize: 3)
                    let got = try evaluator.evaluate(triplets)
                    let label = "\(architecture) \(expected.file) \(expected.objective) C=\(expected.regularizer_weight) on \(backend.name)"
                        + (budget == 0 ? ", blocks recomputed" : ", activations kept")
                    Self.check(got, expected, label)
                }
                }
            }
        }
    }

    static func check(_ got: ObjectiveResult, _ expected: GradientFixtures.Fixture.Case, _ label: String,
                      sourceLocation: SourceLocation = #_sourceLocation) {
        func close(_ a: Double, _ b: Double, scale: Double) -> Bool { abs(a - b) <= tolerance * max(scale, 1e-6) }
        #expect(got.positions == expected.positions, "\(label): positions", sourceLocation: sourceLocation)
        #expect(close(got.loss, expected.loss, scale: abs(expected.loss)), "\(label): loss \(got.loss), autograd \(expected.loss)", sourceLocation: sourceLocation)
        #expect(close(got.objective, expected.objective_value, scale: abs(expected.objective_value)),
                "\(label): objective \(got.objective), autograd \(expected.objective_value)", sourceLocation: sourceLocation)
        #expect(close(got.regularizer, expected.regularizer, scale: max(abs(expected.regularizer), 1)),
                "\(label): regularizer \(got.regularizer), autograd \(expected.regularizer)", sourceLocation: sourceLocation)
        for (name, want) in expected.gradients.sorted(by: { $0.key < $1.key }) {
            let parts = name.split(separator: ".")
            let layer = Int(parts[1])!, part = String(parts[2])
            guard let head = got.gradients[layer] else {
                Issue.record("\(label): no gradient for layer \(layer)", sourceLocation: sourceLocation)
                continue
            }
            let values: [Float] = part == "w" ? head.w : part == "z" ? head.z : [head.bias]
            // Relative to the largest magnitude of the tensor, so a tiny bias gradient is compared
            // on the scale of its layer's w and z.
            let scale = (expected.gradients.filter { $0.key.hasPrefix("layers.\(layer).") }.values.flatMap { $0 }.map(abs).max() ?? 0)
            let worst = zip(values, want).map { abs(Double($0) - $1) }.max() ?? 0
            #expect(values.count == want.count && worst <= tolerance * max(scale, 1e-6),
                    "\(label): \(name) differs by \(worst) (largest magnitude \(scale))", sourceLocation: sourceLocation)
        }
    }
}
