/// AdamW (Loshchilov & Hutter; torch.optim.AdamW's update) over one flat vector of parameters on
/// the host, with a learning rate decayed linearly to 0 over a planned number of steps and no
/// warm-up (the paper's schedule). Every steering method that optimises its heads (the local PSR
/// fit, `tiller train`) steps through this one type; its state is Codable so a training checkpoint
/// can carry it.
public struct AdamW: Codable, Sendable, Equatable {
    public var learningRate: Double
    public var beta1: Double
    public var beta2: Double
    public var epsilon: Double
    /// Decoupled weight decay: each step first scales the parameters by 1 - rate * weightDecay.
    public var weightDecay: Double
    /// Steps the learning rate decays over (to 0 after the last); 0 keeps it constant.
    public var plannedSteps: Int
    /// Steps taken so far.
    public private(set) var step = 0
    /// First and second moments, one per parameter (allocated by the first step).
    public private(set) var firstMoment: [Double] = []
    public private(set) var secondMoment: [Double] = []

    public init(learningRate: Double = 1e-3, beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8,
                weightDecay: Double = 0, plannedSteps: Int = 0) {
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        self.plannedSteps = plannedSteps
    }

    /// The learning rate of the next step: linear decay from learningRate (step 0) to 0 (after
    /// the last planned step), as torch's LambdaLR with 1 - step / plannedSteps.
    public var currentRate: Double {
        guard plannedSteps > 0 else { return learningRate }
        return learningRate * max(0, 1 - Double(step) / Double(plannedSteps))
    }

    /// One update of `parameters` along `gradient` (same count as every earlier step).
    public mutating func update(_ parameters: inout [Double], gradient: [Double]) throws {
        guard parameters.count == gradient.count, firstMoment.isEmpty || firstMoment.count == parameters.count else {
            throw TillerError.invalidArgument(op: "AdamW", detail: "\(parameters.count) parameters, \(gradient.count) gradients, \(firstMoment.count) moments")
        }
        if firstMoment.isEmpty {
            firstMoment = [Double](repeating: 0, count: parameters.count)
            secondMoment = firstMoment
        }
        let rate = currentRate
        step += 1
        let c1 = 1 - pow(beta1, Double(step)), c2 = 1 - pow(beta2, Double(step))
        for i in parameters.indices {
            let g = gradient[i]
            parameters[i] *= 1 - rate * weightDecay
            firstMoment[i] = beta1 * firstMoment[i] + (1 - beta1) * g
            secondMoment[i] = beta2 * secondMoment[i] + (1 - beta2) * g * g
            parameters[i] -= rate * (firstMoment[i] / c1) / ((secondMoment[i] / c2).squareRoot() + epsilon)
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
