import TillerCore

/// Which token positions of a sequence an intervention acts on.
public enum SteeringLocation: Sendable, Equatable {
    /// Every position, prompt and generated.
    case all
    /// The last prompt token and every generated token (where the answer is being written).
    case answerOnly
    /// Everything after the system prompt: the user turn, the assistant header and the answer.
    case questionAndAnswer
    /// An explicit mask over the prompt's positions; generated positions take `generated`.
    case mask(prompt: [Bool], generated: Bool)

    /// The name used in steering files and on the command line (masks have no name: they are
    /// given per request).
    public var name: String {
        switch self {
        case .all: return "all"
        case .answerOnly: return "answer_only"
        case .questionAndAnswer: return "question_and_answer"
        case .mask: return "mask"
        }
    }

    public init?(name: String) {
        switch name {
        case "all": self = .all
        case "answer_only": self = .answerOnly
        case "question_and_answer": self = .questionAndAnswer
        default: return nil
        }
    }

    /// Whether position `p` of a sequence whose prompt has `promptLength` tokens, the first
    /// `systemLength` of them the system prompt (0 when it has none), is steered.
    public func covers(position p: Int, promptLength: Int, systemLength: Int) -> Bool {
        switch self {
        case .all: return true
        case .answerOnly: return p >= promptLength - 1
        case .questionAndAnswer: return p >= systemLength
        case .mask(let prompt, let generated): return p < promptLength ? (p < prompt.count && prompt[p]) : generated
        }
    }
}

/// One head at one layer: lambda_t = f(w . h_t + bias), h_t += alpha * lambda_t * z.
/// Every method is one of these (docs/steering.md): a PSR head (relu), Stolfo's projection
/// (identity, w = -u, bias = c_bar, z = u) or a constant vector (constant: lambda = 1, z = v).
public struct SteeringHead: Sendable, Equatable {
    public var w: [Float]
    public var bias: Float
    public var z: [Float]
    public var activation: PSRActivation

    public init(w: [Float], bias: Float, z: [Float], activation: PSRActivation) {
        self.w = w
        self.bias = bias
        self.z = z
        self.activation = activation
    }

    /// A constant vector v added at every steered position (DiffMean, CAA, PCA, control vectors).
    public static func constant(_ v: [Float]) -> SteeringHead {
        SteeringHead(w: [Float](repeating: 0, count: v.count), bias: 0, z: v, activation: .constant)
    }

    /// Stolfo et al.: every steered position's projection on the unit direction u set to cBar
    /// (at alpha 1).
    public static func projection(u: [Float], cBar: Float) -> SteeringHead {
        SteeringHead(w: u.map { -$0 }, bias: cBar, z: u, activation: .identity)
    }

    public var hiddenSize: Int { z.count }
}

/// A steering intervention: heads on some layers (the residual stream after those blocks), where
/// they act, and the default strength. What a steering file holds, apart from its metadata.
public struct Intervention: Sendable, Equatable {
    /// The method that made it: "diffmean", "pca", "stolfo", "psr", "control_vector", ...
    public var method: String
    /// Layer index (0-based: the residual stream after block `layer`) -> head.
    public var heads: [Int: SteeringHead]
    public var location: SteeringLocation
    public var alpha: Float

    public init(method: String, heads: [Int: SteeringHead], location: SteeringLocation = .all, alpha: Float = 1) {
        self.method = method
        self.heads = heads
        self.location = location
        self.alpha = alpha
    }

    public var layers: [Int] { heads.keys.sorted() }
}
