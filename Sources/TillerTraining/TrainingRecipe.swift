import TillerCore
import TillerSteering

/// How the heads are parameterised.
public enum TrainingMethod: String, Codable, Sendable, CaseIterable {
    /// lambda = ReLU(w . h + b): a head that reads each token (S-PSR on one layer, A-PSR on all).
    case psr
    /// lambda = 1: the same directions with a constant coefficient (S-Const, A-Const).
    case const

    var activation: PSRActivation { self == .psr ? .relu : .constant }
}

/// Everything that determines a training run; written into the steering file's metadata, so a
/// file says how it was made, and into every checkpoint, so `--resume` continues only the same run.
public struct TrainingRecipe: Codable, Sendable, Equatable {
    public var method: TrainingMethod
    public var objective: Objective
    public var layers: [Int]
    public var location: String
    public var epochs: Int
    public var batchSize: Int
    public var learningRate: Double
    public var weightDecay: Double
    /// C, the dead-ReLU regularizer's weight.
    public var regularizer: Float
    /// Divide the MSE by its value at the initial parameters (on the training triplets).
    public var normalizeMSE: Bool
    /// Share of the kept triplets held out for the dev loss.
    public var devShare: Double
    /// Lines scoring below this on "coherence" (or "attribute") are dropped.
    public var scoreThreshold: Double
    public var seed: UInt64
    /// FNV-1a of the triplets' token ids and alphas (after filtering), in order.
    public var dataHash: String

    public init(method: TrainingMethod, objective: Objective, layers: [Int], location: SteeringLocation = .answerOnly,
                epochs: Int? = nil, batchSize: Int = 8, learningRate: Double = 1e-3, weightDecay: Double = 1e-6,
                regularizer: Float = 0, normalizeMSE: Bool = false, devShare: Double = 0.1, scoreThreshold: Double = 0.5,
                seed: UInt64 = 0, dataHash: String = "") {
        self.method = method
        self.objective = objective
        self.layers = layers.sorted()
        self.location = location.name
        // The paper's defaults: 15 epochs for MSE, 7 for LL.
        self.epochs = epochs ?? (objective == .mse ? 15 : 7)
        self.batchSize = batchSize
        self.learningRate = learningRate
        self.weightDecay = weightDecay
        self.regularizer = regularizer
        self.normalizeMSE = normalizeMSE
        self.devShare = devShare
        self.scoreThreshold = scoreThreshold
        self.seed = seed
        self.dataHash = dataHash
    }

    public var steeringLocation: SteeringLocation { SteeringLocation(name: location) ?? .answerOnly }

    /// The triplets' fingerprint for `dataHash`.
    public static func hash(_ triplets: [TrainingTriplet]) -> String {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        func mix(_ value: UInt32) {
            for shift in stride(from: 0, to: 32, by: 8) { h = (h ^ UInt64((value >> UInt32(shift)) & 0xFF)) &* 0x100_0000_01B3 }
        }
        for t in triplets {
            for part in [t.ids.steeredPrompt, t.ids.unsteeredPrompt, t.ids.completion] {
                mix(UInt32(part.count))
                part.forEach { mix(UInt32(bitPattern: $0)) }
            }
            mix(t.alpha.bitPattern)
            mix(UInt32(t.ids.unsteeredSystemLength))
        }
        return String(h, radix: 16)
    }
}

/// One epoch's figures.
public struct EpochRecord: Codable, Sendable, Equatable {
    public var epoch: Int
    /// Mean loss over the epoch's batches (as trained: normalised when the recipe says so).
    public var trainLoss: Double
    /// The loss on the held-out triplets after the epoch (nil without a dev split).
    public var devLoss: Double?
    public var seconds: Double
    public var tokensPerSecond: Double
}

/// Where a run stands, enough to continue it exactly: written atomically after every epoch and
/// when the run is interrupted.
public struct TrainingCheckpoint: Codable, Sendable, Equatable {
    public var recipe: TrainingRecipe
    /// Completed epochs, and batches of the next one already taken.
    public var epoch: Int
    public var batch: Int
    /// Per layer (ascending): w [d], bias, z [d].
    public var parameters: [Double]
    public var optimiser: AdamW
    public var mseScale: Double
    /// The current epoch's summed batch losses and tokens so far (an interrupted epoch resumes them).
    public var epochLossSum: Double
    public var epochTokens: Int
    public var epochSeconds: Double
    public var history: [EpochRecord]
}
