import TillerCore
import TillerSteering

/// How the heads are parameterised.
public enum TrainingMethod: String, Codable, Sendable, CaseIterable {
    /// lambda = ReLU(w . h + b): a head that reads each token (S-PSR on one layer, A-PSR on all).
    case psr
    /// lambda = 1: the same directions with a constant coefficient (S-Const, A-Const).
    case const
    /// AxBench's ReFT-r1: one direction w per layer, steering during training by the mean of each
    /// sequence's top-k latents ReLU(w . h) times w, with an L1 penalty on the other latents;
    /// written as a constant head (docs/training.md).
    case reftR1 = "reft-r1"

    /// ReFT-r1's defaults are AxBench's (its LsReFT sweeps): k 8, L1 weight 0.005, learning rate
    /// 0.01, no weight decay, 3 epochs; PSR's and Const's are the paper's (psr-method.md section 3).
    public static let reftTopK = 8
    public static let reftL1Coefficient = 0.005
    /// The scale of a ReFT-r1 direction whose latent never fires on the training triplets
    /// (AxBench's fallback in Model.pre_compute_mean_activations).
    public static let reftDeadDirectionScale: Float = 50

    public var defaultLearningRate: Double { self == .reftR1 ? 0.01 : 1e-3 }
    public var defaultWeightDecay: Double { self == .reftR1 ? 0 : 1e-6 }
    public func defaultEpochs(_ objective: Objective) -> Int { self == .reftR1 ? 3 : objective == .mse ? 15 : 7 }
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
    /// ReFT-r1's k and L1 weight (nil for the other methods, so their recipes read as before).
    public var topK: Int?
    public var l1Coefficient: Double?
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
                epochs: Int? = nil, batchSize: Int = 8, learningRate: Double? = nil, weightDecay: Double? = nil,
                regularizer: Float = 0, topK: Int? = nil, l1Coefficient: Double? = nil, normalizeMSE: Bool = false,
                devShare: Double = 0.1, scoreThreshold: Double = 0.5, seed: UInt64 = 0, dataHash: String = "") {
        self.method = method
        self.objective = objective
        self.layers = layers.sorted()
        self.location = location.name
        // The paper's defaults: 15 epochs for MSE, 7 for LL; AxBench's 3 for ReFT-r1.
        self.epochs = epochs ?? method.defaultEpochs(objective)
        self.batchSize = batchSize
        self.learningRate = learningRate ?? method.defaultLearningRate
        self.weightDecay = weightDecay ?? method.defaultWeightDecay
        self.regularizer = regularizer
        if method == .reftR1 {
            self.topK = topK ?? TrainingMethod.reftTopK
            self.l1Coefficient = l1Coefficient ?? TrainingMethod.reftL1Coefficient
        }
        self.normalizeMSE = normalizeMSE
        self.devShare = devShare
        self.scoreThreshold = scoreThreshold
        self.seed = seed
        self.dataHash = dataHash
    }

    public var steeringLocation: SteeringLocation { SteeringLocation(name: location) ?? .answerOnly }
    var resolvedTopK: Int { topK ?? TrainingMethod.reftTopK }
    var resolvedL1Coefficient: Double { l1Coefficient ?? TrainingMethod.reftL1Coefficient }

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
    /// Per layer (ascending): w [d], bias, z [d] (ReFT-r1: w [d]).
    public var parameters: [Double]
    public var optimiser: AdamW
    public var mseScale: Double
    /// The current epoch's summed batch losses and tokens so far (an interrupted epoch resumes them).
    public var epochLossSum: Double
    public var epochTokens: Int
    public var epochSeconds: Double
    public var history: [EpochRecord]
}
