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

/// Trains a steering file's heads (PSR, Const) or ReFT-r1's directions (a `TrainedMethod`) on
/// triplets by minimising the objectives of docs/training.md with AdamW (`AdamW`, shared with `tiller fit`): mini-batches of padded sequences in an order
/// shuffled per epoch by the seed, the learning rate decayed linearly to 0 over every step, the dev
/// loss after each epoch. Deterministic for a seed on a given backend; a checkpoint continues the
/// run exactly (the shuffle of an epoch depends on the seed and the epoch alone).
public final class Trainer {
    public let model: TransformerModel
    public let recipe: TrainingRecipe
    public let train: [TrainingTriplet]
    public let dev: [TrainingTriplet]
    let method: TrainedMethod
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
        let steps = recipe.epochs * ((train.count + recipe.batchSize - 1) / recipe.batchSize)
        method = recipe.method == .reftR1 ? try ReFTR1Method(model: model, recipe: recipe) : try HeadMethod(model: model, recipe: recipe)
        let initial = method.initialParameters()
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
                let start = try method.evaluate(train, parameters: initial, objectiveScale: 1, progress: 0).result.objective
                guard start > 0, start.isFinite else {
                    throw TillerError.invalidArgument(op: "train", detail: "the MSE at the start is \(start): nothing to normalise by")
                }
                state.mseScale = 1 / start
            }
        }
    }

    /// The heads as they stand (ReFT-r1: the direction w as a constant head, unscaled; the file
    /// a run writes is `steeringFile()`).
    public var intervention: Intervention { method.intervention(state.parameters) }

    /// The steering file of the run as it stands: the heads, or ReFT-r1's constant head scaled by
    /// the largest latent over the training triplets (a forward pass over them).
    public func steeringFile() throws -> Intervention { try method.steeringFile(state.parameters, training: train) }

    /// ReFT-r1: each layer's largest latent measured by the last `steeringFile()` (nil for the
    /// other methods); a value not above 0 means the file used AxBench's fallback scale.
    public var maxLatents: [Int: Float]? { (method as? ReFTR1Method)?.maxLatents }

    /// Share of the run's optimiser steps taken.
    private var stepShare: Double {
        state.optimiser.plannedSteps > 0 ? Double(state.optimiser.step) / Double(state.optimiser.plannedSteps) : 0
    }

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
        return try scaled(method.evaluate(dev, parameters: state.parameters, objectiveScale: state.mseScale, progress: stepShare).result)
    }

    /// The loss as trained: the objective normalised when the recipe says so, plus the weighted
    /// regularizer (or L1 term) the result's loss holds.
    private func scaled(_ result: ObjectiveResult) -> Double {
        result.objective * state.mseScale + (result.loss - result.objective)
    }

    /// Runs the remaining epochs. `checkpoint` is called with the state after every epoch and when
    /// `shouldStop` turns true between batches (the run then returns early, `finished` false).
    /// A loss that is not finite stops the run with an error naming the epoch and batch; the
    /// last checkpoint written stays the last good one.
    public func run(progress: (TrainingProgress) -> Void = { _ in }, checkpoint: (TrainingCheckpoint) throws -> Void = { _ in },
                    shouldStop: () -> Bool = { false }) throws -> (finished: Bool, history: [EpochRecord]) {
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
                let result: ObjectiveResult
                var gradient: [Double]
                do {
                    (result, gradient) = try method.evaluate(batch, parameters: state.parameters, objectiveScale: state.mseScale, progress: stepShare)
                } catch let error as TillerError {
                    throw TillerError.invalidArgument(op: "train", detail: "epoch \(state.epoch + 1), batch \(state.batch + 1): \(Self.detail(error)); the last checkpoint is the last good state")
                }
                guard gradient.allSatisfy(\.isFinite) else {
                    throw TillerError.invalidArgument(op: "train", detail: "epoch \(state.epoch + 1), batch \(state.batch + 1): the gradient is not finite; the last checkpoint is the last good state")
                }
                var parameters = state.parameters
                method.beforeStep(&parameters, gradient: &gradient)
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
