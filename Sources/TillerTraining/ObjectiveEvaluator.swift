import TillerCore
import TillerModels
import TillerSteering

/// Evaluates the objectives of docs/training.md for one steering file's heads over triplets, and
/// their gradient with respect to every head parameter, through the frozen model on any backend
/// with backward ops. Triplets run in padded batches; the normalisers (compared positions, tokens
/// of y', triplets) are those of the whole set, so batching changes nothing but memory.
public final class ObjectiveEvaluator {
    public let model: TransformerModel
    /// The heads evaluated; a trainer sets new parameters between evaluations.
    public var intervention: Intervention
    public let objective: Objective
    /// C, the weight of the dead-ReLU regularizer.
    public let regularizerWeight: Float
    public let batchSize: Int
    /// Multiplies the objective's gradient (not the regularizer's): a trainer normalising the MSE
    /// by its starting value sets it. `ObjectiveResult.objective` stays unscaled.
    public var objectiveScale: Double = 1

    public init(model: TransformerModel, intervention: Intervention, objective: Objective, regularizerWeight: Float = 0,
                batchSize: Int = 8) throws {
        guard model.backend is any GradientBackend else {
            throw TillerError.unsupported("the \(model.backend.name) backend has no backward ops")
        }
        guard let lowest = intervention.layers.first, let highest = intervention.layers.last, lowest >= 0, highest < model.layerCount else {
            throw TillerError.invalidArgument(op: "loss", detail: "the steering file's layers \(intervention.layers) are not all layers of the model (0-\(model.layerCount - 1))")
        }
        guard batchSize > 0 else { throw TillerError.invalidArgument(op: "loss", detail: "batch size \(batchSize) must be positive") }
        self.model = model
        self.intervention = intervention
        self.objective = objective
        self.regularizerWeight = regularizerWeight
        self.batchSize = batchSize
    }

    /// Layers whose stream the MSE compares (Lambda): the lowest steered layer and every later one.
    public var comparedLayers: [Int] { Array(intervention.layers.first!..<model.layerCount) }

    public func evaluate(_ triplets: [TrainingTriplet]) throws -> ObjectiveResult {
        guard !triplets.isEmpty else { throw TillerError.invalidArgument(op: "loss", detail: "no triplets") }
        let positions = try objective.positions(triplets, location: intervention.location)
        let d = model.hiddenSize
        var result = ObjectiveResult(loss: 0, objective: 0, regularizer: 0, triplets: triplets.count, positions: positions, gradients: [:])
        var sums: [Int: (w: [Double], bias: Double, z: [Double])] = [:]
        for layer in intervention.layers { sums[layer] = ([Double](repeating: 0, count: d), 0, [Double](repeating: 0, count: d)) }
        var start = 0
        while start < triplets.count {
            let batch = Array(triplets[start..<min(start + batchSize, triplets.count)])
            let part = try evaluateBatch(batch, positions: positions, tripletCount: triplets.count)
            result.objective += part.objective
            result.regularizer += part.regularizer
            for (layer, g) in part.gradients {
                for i in 0..<d { sums[layer]!.w[i] += Double(g.w[i]); sums[layer]!.z[i] += Double(g.z[i]) }
                sums[layer]!.bias += Double(g.bias)
            }
            start += batchSize
        }
        result.loss = result.objective + Double(regularizerWeight) * result.regularizer
        try Self.checkFinite(result.loss)
        for (layer, s) in sums {
            result.gradients[layer] = HeadGradient(w: s.w.map(Float.init), bias: Float(s.bias), z: s.z.map(Float.init))
        }
        return result
    }

    static func checkFinite(_ loss: Double) throws {
        guard loss.isFinite else {
            throw TillerError.invalidArgument(op: "loss", detail: "the loss is not finite (\(loss)): the steered activations overflowed (a huge alpha or z?)")
        }
    }

    /// One padded batch's share of the objective, the regularizer and the gradients.
    private func evaluateBatch(_ triplets: [TrainingTriplet], positions: Int, tripletCount: Int) throws
        -> (objective: Double, regularizer: Double, gradients: [Int: HeadGradient]) {
        let be = model.backend, d = model.hiddenSize
        let batch = TrainingBatch(triplets, location: intervention.location)
        let n = batch.rows
        var alphas = [Float](repeating: 0, count: n)
        for (triplet, rows) in zip(triplets, batch.steeredRows) {
            for row in rows { alphas[row] = intervention.alpha * triplet.alpha }
        }
        var heads: [Int: PSRHeads] = [:]
        for (layer, head) in intervention.heads {
            heads[layer] = PSRHeads(w: try be.tensor(head.w, shape: [1, d]), bias: try be.tensor([head.bias], shape: [1]),
                                    z: try be.tensor(head.z, shape: [1, d]), activation: try be.tensor(ints: [head.activation.rawValue], shape: [1]))
        }
        let mse = objective == .mse
            ? try batch.mseTerms(model, layers: comparedLayers, gradientScale: Float(2 * objectiveScale / Double(positions))) : nil
        let hook = try HeadTrainingHook(heads: heads, headIndex: try batch.headIndex(be), alpha: try be.tensor(alphas, shape: [n]),
                                        rows: n, mse: mse, backend: be)

        // The regularizer, on the host from each head's lambdas: a sequence whose lambdas sum
        // below 1 pulls each of its steered rows' lambda up by C / n.
        var regularizer = 0.0
        let objectiveValue = try batch.run(model, objective: objective, hook: hook, mse: mse, lowest: intervention.layers.first!,
                                           positions: positions, objectiveScale: objectiveScale) {
            for layer in intervention.layers {
                let lambda = try be.floats(hook.lambdas[layer]!)
                var gradient = [Float](repeating: 0, count: n)
                for rows in batch.steeredRows {
                    let total = rows.reduce(0.0) { $0 + Double(lambda[$1]) }
                    guard 1 - total > 0 else { continue }
                    regularizer += (1 - total) / Double(tripletCount)
                    for row in rows { gradient[row] = -regularizerWeight / Float(tripletCount) }
                }
                if regularizerWeight != 0 { hook.lambdaGradients[layer] = try be.tensor(gradient, shape: [n]) }
            }
        }
        var gradients: [Int: HeadGradient] = [:]
        for layer in intervention.layers {
            let g = hook.gradients[layer]!
            gradients[layer] = HeadGradient(w: try be.floats(g.w), bias: try be.floats(g.bias)[0], z: try be.floats(g.z))
        }
        return (objectiveValue, regularizer, gradients)
    }
}
