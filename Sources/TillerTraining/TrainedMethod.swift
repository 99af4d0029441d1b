import TillerCore
import TillerModels
import TillerSteering

/// How a training method turns one flat parameter vector (what AdamW steps and a checkpoint
/// holds) into a loss and its gradient, and into the steering file it writes. The `Trainer` is the
/// same for every method.
protocol TrainedMethod: AnyObject {
    /// The parameters a fresh run starts from (a function of the recipe and its seed).
    func initialParameters() -> [Double]
    /// The loss over `triplets` at `parameters` and its gradient with respect to them, the
    /// objective's part multiplied by `objectiveScale`; `progress` is the share of the run's steps
    /// already taken (ReFT-r1's L1 weight ramps with it).
    func evaluate(_ triplets: [TrainingTriplet], parameters: [Double], objectiveScale: Double, progress: Double) throws
        -> (result: ObjectiveResult, gradient: [Double])
    /// The method's own changes to the parameters and the gradient before the optimiser's step.
    func beforeStep(_ parameters: inout [Double], gradient: inout [Double])
    /// The parameters as a steering file's heads, as they stand.
    func intervention(_ parameters: [Double]) -> Intervention
    /// The steering file a finished run writes (`training`: the triplets it trained on).
    func steeringFile(_ parameters: [Double], training: [TrainingTriplet]) throws -> Intervention
}

/// PSR and Const: a steering file's heads, per layer (ascending) w [d], bias, z [d].
final class HeadMethod: TrainedMethod {
    let recipe: TrainingRecipe
    let hiddenSize: Int
    let evaluator: ObjectiveEvaluator

    init(model: TransformerModel, recipe: TrainingRecipe) throws {
        self.recipe = recipe
        hiddenSize = model.hiddenSize
        let d = model.hiddenSize
        evaluator = try ObjectiveEvaluator(model: model, intervention: Self.intervention(Self.initialParameters(recipe, hiddenSize: d), recipe: recipe, hiddenSize: d),
                                           objective: recipe.objective, regularizerWeight: recipe.regularizer, batchSize: recipe.batchSize)
    }

    func initialParameters() -> [Double] { Self.initialParameters(recipe, hiddenSize: hiddenSize) }

    func intervention(_ parameters: [Double]) -> Intervention { Self.intervention(parameters, recipe: recipe, hiddenSize: hiddenSize) }

    /// The paper's initialisation: w and b as torch's default nn.Linear(d, 1) (uniform in
    /// +-1/sqrt(d)), z small and random (uniform in +-0.01); a constant head has w = 0, b = 0.
    static func initialParameters(_ recipe: TrainingRecipe, hiddenSize d: Int) -> [Double] {
        var rng = SplitMix64(seed: recipe.seed ^ 0x7EA1_2A17)
        let bound = 1 / Double(d).squareRoot()
        var parameters: [Double] = []
        for _ in recipe.layers {
            let w = (0..<d).map { _ in Double(rng.uniform(Float(-bound), Float(bound))) }
            let b = Double(rng.uniform(Float(-bound), Float(bound)))
            let z = (0..<d).map { _ in Double(rng.uniform(-0.01, 0.01)) }
            parameters += recipe.method == .const ? [Double](repeating: 0, count: d) + [0] + z : w + [b] + z
        }
        return parameters
    }

    static func intervention(_ parameters: [Double], recipe: TrainingRecipe, hiddenSize d: Int) -> Intervention {
        var heads: [Int: SteeringHead] = [:]
        for (i, layer) in recipe.layers.enumerated() {
            let base = i * (2 * d + 1)
            heads[layer] = SteeringHead(w: parameters[base..<(base + d)].map(Float.init), bias: Float(parameters[base + d]),
                                        z: parameters[(base + d + 1)..<(base + 2 * d + 1)].map(Float.init),
                                        activation: recipe.method == .const ? .constant : .relu)
        }
        return Intervention(method: "\(recipe.method.rawValue)-\(recipe.objective.rawValue)", heads: heads,
                            location: recipe.steeringLocation, alpha: 1)
    }

    func evaluate(_ triplets: [TrainingTriplet], parameters: [Double], objectiveScale: Double, progress: Double) throws
        -> (result: ObjectiveResult, gradient: [Double]) {
        let d = hiddenSize
        evaluator.intervention = intervention(parameters)
        evaluator.objectiveScale = objectiveScale
        let result = try evaluator.evaluate(triplets)
        var gradient: [Double] = []
        for layer in recipe.layers {
            let g = result.gradients[layer]!
            gradient += g.w.map(Double.init) + [Double(g.bias)] + g.z.map(Double.init)
        }
        if recipe.method == .const {
            // A constant head reads nothing: only z moves (w and b get zero gradients anyway).
            for i in 0..<recipe.layers.count { for j in 0...d { gradient[i * (2 * d + 1) + j] = 0 } }
        }
        return (result, gradient)
    }

    func beforeStep(_ parameters: inout [Double], gradient: inout [Double]) {}

    func steeringFile(_ parameters: [Double], training: [TrainingTriplet]) throws -> Intervention { intervention(parameters) }
}
