import TillerCore
import TillerModels
import TillerSteering

/// ReFT-r1 as AxBench trains it (LsReFT with its TopKReLUIntervention; docs/training.md): per
/// layer (ascending) one direction w [d], trained through `ReFTR1Evaluator`, written as the
/// constant head z = (largest latent over the training triplets) * w that AxBench steers with.
final class ReFTR1Method: TrainedMethod {
    let recipe: TrainingRecipe
    let hiddenSize: Int
    let evaluator: ReFTR1Evaluator
    /// Each layer's largest latent measured by the last `steeringFile` (before any fallback).
    private(set) var maxLatents: [Int: Float] = [:]

    init(model: TransformerModel, recipe: TrainingRecipe) throws {
        self.recipe = recipe
        hiddenSize = model.hiddenSize
        evaluator = try ReFTR1Evaluator(model: model, directions: Self.directions(Self.initialParameters(recipe, hiddenSize: model.hiddenSize),
                                                                                  recipe: recipe, hiddenSize: model.hiddenSize),
                                        location: recipe.steeringLocation, objective: recipe.objective, topK: recipe.resolvedTopK,
                                        l1Weight: 0, batchSize: recipe.batchSize)
    }

    /// AxBench's initialisation: every entry of w 0.01 (no randomness); the first step
    /// normalises it to unit length.
    static func initialParameters(_ recipe: TrainingRecipe, hiddenSize d: Int) -> [Double] {
        [Double](repeating: 0.01, count: recipe.layers.count * d)
    }

    static func directions(_ parameters: [Double], recipe: TrainingRecipe, hiddenSize d: Int) -> [Int: [Float]] {
        var directions: [Int: [Float]] = [:]
        for (i, layer) in recipe.layers.enumerated() { directions[layer] = parameters[(i * d)..<((i + 1) * d)].map(Float.init) }
        return directions
    }

    func initialParameters() -> [Double] { Self.initialParameters(recipe, hiddenSize: hiddenSize) }

    func evaluate(_ triplets: [TrainingTriplet], parameters: [Double], objectiveScale: Double, progress: Double) throws
        -> (result: ObjectiveResult, gradient: [Double]) {
        evaluator.directions = Self.directions(parameters, recipe: recipe, hiddenSize: hiddenSize)
        // AxBench ramps the L1 weight linearly from 0 over the run (coeff = step / steps).
        evaluator.l1Weight = Float(recipe.resolvedL1Coefficient * progress)
        evaluator.objectiveScale = objectiveScale
        let result = try evaluator.evaluate(triplets)
        return (result, recipe.layers.flatMap { result.gradients[$0]!.w.map(Double.init) })
    }

    /// AxBench's step (LsReFT.train): the gradient clipped to global norm 1
    /// (torch.nn.utils.clip_grad_norm_), then each w set to unit norm and the gradient's component
    /// along it removed, so the optimiser moves w on the sphere (to first order).
    func beforeStep(_ parameters: inout [Double], gradient: inout [Double]) {
        Self.axbenchStep(&parameters, gradient: &gradient, layers: recipe.layers.count, hiddenSize: hiddenSize)
    }

    static func axbenchStep(_ parameters: inout [Double], gradient: inout [Double], layers: Int, hiddenSize d: Int) {
        let norm = gradient.reduce(0) { $0 + $1 * $1 }.squareRoot()
        let clip = min(1, 1 / (norm + 1e-6))
        for i in gradient.indices { gradient[i] *= clip }
        for layer in 0..<layers {
            let range = (layer * d)..<((layer + 1) * d)
            let length = range.reduce(0) { $0 + parameters[$1] * parameters[$1] }.squareRoot() + Double(Float.ulpOfOne)
            for i in range { parameters[i] /= length }
            let along = range.reduce(0) { $0 + gradient[$1] * parameters[$1] }
            for i in range { gradient[i] -= along * parameters[i] }
        }
    }

    /// The direction as a constant head of scale `scales[layer]` (1 where none is given).
    func intervention(_ parameters: [Double], scales: [Int: Float]) -> Intervention {
        let d = hiddenSize
        var heads: [Int: SteeringHead] = [:]
        for (layer, w) in Self.directions(parameters, recipe: recipe, hiddenSize: d) {
            let scale = scales[layer] ?? 1
            heads[layer] = SteeringHead(w: [Float](repeating: 0, count: d), bias: 0, z: w.map { $0 * scale }, activation: .constant)
        }
        return Intervention(method: "\(recipe.method.rawValue)-\(recipe.objective.rawValue)", heads: heads,
                            location: recipe.steeringLocation, alpha: 1)
    }

    /// The unscaled direction w as a constant head.
    func intervention(_ parameters: [Double]) -> Intervention { intervention(parameters, scales: [:]) }

    /// z = m * w with m each layer's largest latent ReLU(w . h_t) over the training triplets'
    /// steered positions on the unsteered model (AxBench: the largest latent of the concept's
    /// examples; 50 when it is not positive), so a factor of 1 adds the strongest activation seen.
    func steeringFile(_ parameters: [Double], training: [TrainingTriplet]) throws -> Intervention {
        evaluator.directions = Self.directions(parameters, recipe: recipe, hiddenSize: hiddenSize)
        maxLatents = try evaluator.maxLatents(training)
        return intervention(parameters, scales: maxLatents.mapValues { $0 > 0 ? $0 : TrainingMethod.reftDeadDirectionScale })
    }
}
