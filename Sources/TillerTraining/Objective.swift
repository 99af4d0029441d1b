import TillerCore
import TillerSteering

/// What a steering file's heads are trained to do (docs/training.md).
public enum Objective: String, Codable, Sendable, CaseIterable {
    /// Prompt steering imitation: the steered stream of xy' should equal the prompted stream of
    /// x'y' at every compared position, from the lowest steered layer to the last.
    case mse
    /// The prompted response's likelihood: -log p(y' | x, heads), per token of y'.
    case ll
}

/// One triplet as the objectives see it: token ids, and its "alpha" (a soft label multiplying the
/// steering file's alpha).
public struct TrainingTriplet: Sendable, Equatable {
    public var ids: CaptureTriplet
    public var alpha: Float

    public init(ids: CaptureTriplet, alpha: Float = 1) {
        self.ids = ids
        self.alpha = alpha
    }

    /// The positions of xy' the heads act on (P_i): where `location` covers.
    public func steeredPositions(_ location: SteeringLocation) -> [Int] {
        let total = ids.unsteeredSequence.count, prompt = ids.unsteeredPrompt.count
        return (0..<total).filter { location.covers(position: $0, promptLength: prompt, systemLength: ids.unsteeredSystemLength) }
    }

    /// The compared positions (Q_i): the steered positions of xy' in the suffix it shares with
    /// x'y', each with its aligned position in x'y'.
    public func comparedPositions(_ location: SteeringLocation) -> [(steered: Int, prompted: Int)] {
        let shared = ids.rowPositions
        return steeredPositions(location).filter { shared.contains($0) }.map { ($0, $0 + ids.steeredOffset) }
    }
}

/// The loss of a steering file's heads over triplets, and its gradient with respect to every
/// tensor of the file.
public struct ObjectiveResult: Sendable {
    /// objective + C * regularizer.
    public var loss: Double
    /// L: the MSE or the mean negative log-likelihood.
    public var objective: Double
    /// R: (1 / n) sum_i sum_k max(0, 1 - sum_{t in P_i} lambda_{k,t}); for ReFT-r1 its L1 term.
    public var regularizer: Double
    public var triplets: Int
    /// Positions the objective averages over: compared positions (MSE) or tokens of y' (LL).
    public var positions: Int
    /// Layer -> dLoss/d(w, bias, z) of that layer's head (ReFT-r1: w alone, bias 0 and z empty).
    public var gradients: [Int: HeadGradient]
}

/// The gradient of a loss with respect to one `SteeringHead`.
public struct HeadGradient: Sendable, Equatable {
    public var w: [Float]
    public var bias: Float
    public var z: [Float]
}
