import TillerCore
import TillerModels
import TillerSteering

/// ReFT-r1's training loss (docs/training.md) for directions w at steered layers, over triplets
/// in padded batches, with its gradient with respect to every w: the MSE or LL objective of the
/// stream steered by h_t += alpha_i * c_i * w (c_i the mean of the sequence's k largest latents
/// ReLU(w . h_t) over its steered positions), plus C times the L1 term
/// (1 / n) sum_i (1 / |P_i|) sum_{t in P_i outside the top k} ReLU(w . h_t).
/// `ObjectiveResult.regularizer` holds the L1 term and `gradients[L].w` the direction's gradient
/// (bias 0 and z empty: ReFT-r1 has one tensor per layer).
public final class ReFTR1Evaluator {
    public let model: TransformerModel
    /// Layer -> w, read as the detector and added as the steering vector.
    public var directions: [Int: [Float]]
    public let location: SteeringLocation
    public let objective: Objective
    /// k of the top-k.
    public let topK: Int
    /// C, the weight of the L1 term (a trainer ramps it up over the run, as AxBench does).
    public var l1Weight: Float
    public let batchSize: Int
    /// Multiplies the objective's gradient (not the L1 term's), as `ObjectiveEvaluator.objectiveScale`.
    public var objectiveScale: Double = 1

    public init(model: TransformerModel, directions: [Int: [Float]], location: SteeringLocation, objective: Objective, topK: Int,
                l1Weight: Float, batchSize: Int = 8) throws {
        guard model.backend is any GradientBackend else {
            throw TillerError.unsupported("the \(model.backend.name) backend has no backward ops")
        }
        let layers = directions.keys.sorted()
        guard let lowest = layers.first, let highest = layers.last, lowest >= 0, highest < model.layerCount else {
            throw TillerError.invalidArgument(op: "reft-r1", detail: "the layers \(layers) are not all layers of the model (0-\(model.layerCount - 1))")
        }
        if let bad = directions.first(where: { $0.value.count != model.hiddenSize }) {
            throw TillerError.invalidArgument(op: "reft-r1", detail: "layer \(bad.key)'s direction has \(bad.value.count) values, the model's hidden size is \(model.hiddenSize)")
        }
        guard topK > 0, batchSize > 0 else {
            throw TillerError.invalidArgument(op: "reft-r1", detail: "top-k \(topK) and batch size \(batchSize) must be positive")
        }
        self.model = model
        self.directions = directions
        self.location = location
        self.objective = objective
        self.topK = topK
        self.l1Weight = l1Weight
        self.batchSize = batchSize
    }

    public var layers: [Int] { directions.keys.sorted() }

    public func evaluate(_ triplets: [TrainingTriplet]) throws -> ObjectiveResult {
        guard !triplets.isEmpty else { throw TillerError.invalidArgument(op: "loss", detail: "no triplets") }
        let positions = try objective.positions(triplets, location: location)
        let be = model.backend, d = model.hiddenSize, lowest = layers.first!
        var result = ObjectiveResult(loss: 0, objective: 0, regularizer: 0, triplets: triplets.count, positions: positions, gradients: [:])
        var sums: [Int: [Double]] = [:]
        for layer in layers { sums[layer] = [Double](repeating: 0, count: d) }
        for start in stride(from: 0, to: triplets.count, by: batchSize) {
            let batch = TrainingBatch(Array(triplets[start..<min(start + batchSize, triplets.count)]), location: location)
            let mse = objective == .mse
                ? try batch.mseTerms(model, layers: Array(lowest..<model.layerCount), gradientScale: Float(2 * objectiveScale / Double(positions)))
                : nil
            let hook = try ReFTR1Hook(directions: directions, batch: batch, topK: topK, l1Gradient: l1Weight / Float(triplets.count),
                                      steers: true, mse: mse, backend: be)
            result.objective += try batch.run(model, objective: objective, hook: hook, mse: mse, lowest: lowest, positions: positions,
                                              objectiveScale: objectiveScale)
            result.regularizer += hook.outsideSum / Double(triplets.count)
            for layer in layers {
                for (i, g) in try hook.directionGradient(layer, backend: be).enumerated() { sums[layer]![i] += Double(g) }
            }
        }
        result.loss = result.objective + Double(l1Weight) * result.regularizer
        try ObjectiveEvaluator.checkFinite(result.loss)
        for (layer, s) in sums { result.gradients[layer] = HeadGradient(w: s.map(Float.init), bias: 0, z: []) }
        return result
    }

    /// Each layer's largest latent ReLU(w . h_t) over the triplets' steered positions on the
    /// unsteered model: the scale of the constant head ReFT-r1 steers with at test time.
    public func maxLatents(_ triplets: [TrainingTriplet]) throws -> [Int: Float] {
        var maxima: [Int: Float] = [:]
        for layer in layers { maxima[layer] = 0 }
        for start in stride(from: 0, to: triplets.count, by: batchSize) {
            let batch = TrainingBatch(Array(triplets[start..<min(start + batchSize, triplets.count)]), location: location)
            let hook = try ReFTR1Hook(directions: directions, batch: batch, topK: topK, l1Gradient: 0, steers: false, mse: nil,
                                      backend: model.backend)
            _ = try model.trainingForward(batch.sequences, hook: hook)
            for layer in layers {
                let a = hook.latents[layer]!
                for row in batch.steeredRows.joined() { maxima[layer] = max(maxima[layer]!, a[row]) }
            }
        }
        return maxima
    }
}
