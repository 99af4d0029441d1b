import TillerCore
import TillerModels
import TillerSteering
import TillerTraining

/// The rows of `tiller lab compare` trained through the frozen model (the PSR paper's method,
/// docs/training.md) with the `Trainer`, on the same train triplets the fitted methods are
/// captured from. S- is one head at the compare layer, A- a head on every layer; ReFT-r1 is
/// AxBench's baseline, one direction at the compare layer steered by constant addition.
public enum LabTrainedMethod: String, CaseIterable, Sendable {
    case sPSRMSE = "s-psr-mse"
    case aPSRMSE = "a-psr-mse"
    case sPSRLL = "s-psr-ll"
    case sConstMSE = "s-const-mse"
    case aConstMSE = "a-const-mse"
    case reftR1 = "reft-r1"

    public var method: TrainingMethod {
        switch self {
        case .sPSRMSE, .aPSRMSE, .sPSRLL: return .psr
        case .sConstMSE, .aConstMSE: return .const
        case .reftR1: return .reftR1
        }
    }

    /// ReFT-r1 is trained by the LM loss, as AxBench trains it.
    public var objective: Objective { self == .sPSRLL || self == .reftR1 ? .ll : .mse }

    /// Every layer (A-) or the compare layer alone (S-).
    public var allLayers: Bool { self == .aPSRMSE || self == .aConstMSE }

    public func layers(compareLayer: Int, layerCount: Int) -> [Int] {
        allLayers ? Array(0..<layerCount) : [compareLayer]
    }

    /// The paper's names: S-PSR(MSE), A-Const(MSE).
    public var label: String {
        if self == .reftR1 { return "ReFT-r1" }
        let name: String
        switch self {
        case .sPSRMSE, .sPSRLL: name = "S-PSR"
        case .aPSRMSE: name = "A-PSR"
        case .sConstMSE: name = "S-Const"
        case .aConstMSE: name = "A-Const"
        case .reftR1: name = "ReFT-r1"
        }
        return "\(name)(\(objective.rawValue.uppercased()))"
    }
}

/// How the trained rows are trained in the lab. The paper's learning rate (1e-3) barely moves a
/// head in the few dozen steps the lab's 150 triplets give; 0.03 over 4 epochs (batch 8) is what
/// steers the lab model (A-PSR(LL) reaches trait 100 at coherence 100 on cheerful), so it is the
/// lab's default.
public struct LabTrainingSettings: Sendable {
    public static let labLearningRate = 0.03
    public static let labEpochs = 4

    public var epochs: Int
    public var learningRate: Double
    public var batchSize: Int
    /// Where the trained heads act (and the MSE compares): answer_only by default, as `tiller train`.
    public var location: SteeringLocation
    public var seed: UInt64

    public init(epochs: Int = LabTrainingSettings.labEpochs, learningRate: Double = LabTrainingSettings.labLearningRate,
                batchSize: Int = 8, location: SteeringLocation = .answerOnly, seed: UInt64 = 0) {
        self.epochs = epochs
        self.learningRate = learningRate
        self.batchSize = batchSize
        self.location = location
        self.seed = seed
    }

    /// Trains `method` on every triplet (no dev split: the held-out examples judge the result) and
    /// returns the steering file `tiller train` would write (for ReFT-r1 the direction scaled by its
    /// largest latent), named by the method, alpha 1.
    func train(_ method: LabTrainedMethod, triplets: [CaptureTriplet], model: TransformerModel, compareLayer: Int) throws -> Intervention {
        let all = triplets.map { TrainingTriplet(ids: $0) }
        let recipe = TrainingRecipe(method: method.method, objective: method.objective,
                                    layers: method.layers(compareLayer: compareLayer, layerCount: model.layerCount),
                                    location: location, epochs: epochs, batchSize: batchSize, learningRate: learningRate,
                                    devShare: 0, seed: seed, dataHash: TrainingRecipe.hash(all))
        let trainer = try Trainer(model: model, recipe: recipe, train: all, dev: [])
        _ = try trainer.run()
        let heads = try trainer.steeringFile()
        return Intervention(method: method.rawValue, heads: heads.heads, location: heads.location, alpha: 1)
    }
}
