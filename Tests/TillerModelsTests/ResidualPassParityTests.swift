import Foundation
import Testing
import TillerCore
import TillerModels

/// `residualPass` (capture's teacher forcing: the inference blocks in place, no cache, no
/// logits) gives transformers' residual stream after every block, q/k norms normed in place.
extension ModelParityTests {
    @Test(arguments: ModelFixtures.architectures)
    func residualPassMatchesTransformers(architecture: String) throws {
        let reference = try ModelFixtures.reference(architecture)
        let ids = try reference.ints("ids"), expected = try reference.floats("residual_after_block")
        for backend in ModelFixtures.backends().dropFirst() {
            try using(backend) {
                let model = try TransformerModel.load(directory: ModelFixtures.directory(architecture), backend: backend)
                let recorder = ResidualRecorder()
                try model.residualPass([ids], hook: recorder)
                let perLayer = ids.count * model.hiddenSize
                #expect(recorder.layers.count == model.layerCount)
                for (layer, values) in recorder.layers.enumerated() {
                    let error = ModelFixtures.relativeError(values, Array(expected[(layer * perLayer)..<((layer + 1) * perLayer)]))
                    #expect(error <= Self.tolerance, "\(architecture) on \(backend.name) layer \(layer): relative error \(error)")
                }
            }
        }
    }
}
