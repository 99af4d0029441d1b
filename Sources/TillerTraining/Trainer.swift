import Foundation
import TillerCore
import TillerModels
import TillerSteering

/// What a trainer reports after every batch.
public struct TrainingProgress: Sendable {
    public var epoch: Int, epochs: Int
    public var batch: Int, batches: Int
    /// Mean loss of the epoch's batches so far.
    public var runningLoss: Double
    public var tokensPerSecond: Double
}

/// Trains a steering file's heads on triplets by minimising the objectives of docs/training.md
/// with AdamW (`AdamW`, shared with `tiller fit`): mini-batches of padded sequences in an order
/// shuffled per epoch by the seed, the learning rate decayed linearly to 0 over every step, the dev
/// loss after each epoch. Deterministic for a seed on a given backend; a checkpoint continues the
/// run exactly (the shuffle of an epoch depends on the seed and the epoch alone).
public final class Trainer {
    public let model: TransformerModel
    public let recipe: TrainingRecipe
    public let train: [TrainingTriplet]
    public let dev: [TrainingTriplet]
    let evaluator: ObjectiveEvaluator
    public private(set) var state: TrainingCheckpoint

    /// A fresh run (parameters initialised from the seed), or the continuation of `checkpoint`.
    public init(model: TransformerModel, recipe: TrainingRecipe, train: [TrainingTriplet], dev: [TrainingTriplet],
                checkpoint: TrainingCheckpoint? = nil) throws {
        guard !train.isEmpty else { throw TillerError.invalidArgument(op: "train", detail: "no training triplets") }
        guard recipe.epochs >= 1, recipe.batchSize >= 1 else {
            throw TillerError.invalidArgument(op: "train", detail: "epochs \(recipe.epochs) and batch size \(recipe.batchSize) must be positive")
        }
        self.model = model
        self.recipe = recipe
        self.train = train
        self.dev = dev
        let d = model.hiddenSize
        let steps = recipe.epochs * ((train.count + recipe.batchSize - 1) / recipe.batchSize)
        let initial = Self.initialParameters(recipe, hiddenSize: d)
        evaluator = try ObjectiveEvaluator(model: model, intervention: Self.intervention(initial, recipe: recipe, hiddenSize: d),
                                           objective: recipe.objective, regularizerWeight: recipe.regularizer, batchSize: recipe.batchSize)
        if let checkpoint {
            guard checkpoint.recipe == recipe else {
                throw TillerError.invalidArgument(op: "train", detail: "the checkpoint was made by another recipe or other data (\(checkpoint.recipe.method.rawValue), \(checkpoint.recipe.objective.rawValue), layers \(checkpoint.recipe.layers), data \(checkpoint.recipe.dataHash)); remove it or drop --resume")
            }
            guard checkpoint.parameters.count == initial.count else {
                throw TillerError.invalidArgument(op: "train", detail: "the checkpoint holds \(checkpoint.parameters.count) parameters, the run needs \(initial.count)")
            }
            state = checkpoint
        } else {
            state = TrainingCheckpoint(recipe: recipe, epoch: 0, batch: 0, parameters: initial,
                                       optimiser: AdamW(learningRate: recipe.learningRate, weightDecay: recipe.weightDecay, plannedSteps: steps),
                                       mseScale: 1, epochLossSum: 0, epochTokens: 0, epochSeconds: 0, history: [])
            if recipe.objective == .mse && recipe.normalizeMSE {
                let start = try evaluator.evaluate(train).objective
                guard start > 0, start.isFinite else {
                    throw TillerError.invalidArgument(op: "train", detail: "the MSE at the start is \(start): nothing to normalise by")
                }
                state.mseScale = 1 / start
            }
        }
    }

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
                                        activation: recipe.method.activation)
        }
        return Intervention(method: "\(recipe.method.rawValue)-\(recipe.objective.rawValue)", heads: heads,
                            location: recipe.steeringLocation, alpha: 1)
    }

    /// The heads as they stand.
    public var intervention: Intervention { Self.intervention(state.parameters, recipe: recipe, hiddenSize: model.hiddenSize) }

    /// The batches of an epoch: the training triplets in an order that depends on the seed and
    /// the epoch alone.
    func order(epoch: Int) -> [Int] {
        var rng = SplitMix64(seed: recipe.seed &+ 0x9E37_79B9_7F4A_7C15 &* UInt64(epoch + 1))
        var values = Array(train.indices)
        for i in stride(from: values.count - 1, to: 0, by: -1) { values.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
        return values
    }

    /// The loss on the held-out triplets at the current parameters.
    public func devLoss() throws -> Double? {
        guard !dev.isEmpty else { return nil }
        evaluator.intervention = intervention
        evaluator.objectiveScale = state.mseScale
        return try scaled(evaluator.evaluate(dev))
    }

    private func scaled(_ result: ObjectiveResult) -> Double {
        result.objective * state.mseScale + Double(recipe.regularizer) * result.regularizer
    }

    /// Runs the remaining epochs. `checkpoint` is called with the state after every epoch and when
    /// `shouldStop` turns true between batches (the run then returns early, `finished` false).
    /// A loss that is not finite stops the run with an error naming the epoch and batch; the
    /// last checkpoint written stays the last good one.
    public func run(progress: (TrainingProgress) -> Void = { _ in }, checkpoint: (TrainingCheckpoint) throws -> Void = { _ in },
                    shouldStop: () -> Bool = { false }) throws -> (finished: Bool, history: [EpochRecord]) {
        let d = model.hiddenSize
        let batches = (train.count + recipe.batchSize - 1) / recipe.batchSize
        while state.epoch < recipe.epochs {
            let order = self.order(epoch: state.epoch)
            while state.batch < batches {
                if shouldStop() {
                    try checkpoint(state)
                    return (false, state.history)
                }
                let started = DispatchTime.now().uptimeNanoseconds
                let members = order[(state.batch * recipe.batchSize)..<min((state.batch + 1) * recipe.batchSize, train.count)]
                let batch = members.map { train[$0] }
                evaluator.intervention = intervention
                evaluator.objectiveScale = state.mseScale
                let result: ObjectiveResult
                do {
                    result = try evaluator.evaluate(batch)
                } catch let error as TillerError {
                    throw TillerError.invalidArgument(op: "train", detail: "epoch \(state.epoch + 1), batch \(state.batch + 1): \(Self.detail(error)); the last checkpoint is the last good state")
                }
                var gradient: [Double] = []
                for layer in recipe.layers {
                    let g = result.gradients[layer]!
                    gradient += g.w.map(Double.init) + [Double(g.bias)] + g.z.map(Double.init)
                }
                guard gradient.allSatisfy(\.isFinite) else {
                    throw TillerError.invalidArgument(op: "train", detail: "epoch \(state.epoch + 1), batch \(state.batch + 1): the gradient is not finite; the last checkpoint is the last good state")
                }
                if recipe.method == .const {
                    // A constant head reads nothing: only z moves (w and b get zero gradients anyway).
                    for i in 0..<recipe.layers.count { for j in 0...d { gradient[i * (2 * d + 1) + j] = 0 } }
                }
                var parameters = state.parameters
                try state.optimiser.update(&parameters, gradient: gradient)
                state.parameters = parameters
                state.batch += 1
                state.epochLossSum += scaled(result)
                state.epochTokens += batch.reduce(0) { $0 + $1.ids.unsteeredSequence.count }
                state.epochSeconds += Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
                progress(TrainingProgress(epoch: state.epoch + 1, epochs: recipe.epochs, batch: state.batch, batches: batches,
                                          runningLoss: state.epochLossSum / Double(state.batch),
                                          tokensPerSecond: state.epochSeconds > 0 ? Double(state.epochTokens) / state.epochSeconds : 0))
            }
            let record = EpochRecord(epoch: state.epoch + 1, trainLoss: state.epochLossSum / Double(batches), devLoss: try devLoss(),
                                     seconds: state.epochSeconds,
                                     tokensPerSecond: state.epochSeconds > 0 ? Double(state.epochTokens) / state.epochSeconds : 0)
            state.history.append(record)
            state.epoch += 1
            state.batch = 0
            state.epochLossSum = 0
            state.epochTokens = 0
            state.epochSeconds = 0
            try checkpoint(state)
        }
        return (true, state.history)
    }

    static func detail(_ error: TillerError) -> String {
        if case let .invalidArgument(_, detail) = error { return detail }
        return "\(error)"
    }
}
