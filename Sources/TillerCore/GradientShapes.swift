/// Shape and dtype rules of the backward ops (`GradientBackend`), shared by every backend as
/// `OpShapes` is for the forward: each backward op first checks its forward's inputs with the
/// forward's own rule, then its gradients against them.
public enum GradientShapes {
    public static func attentionBackward(q: Tensor, k: Tensor, v: Tensor, batch: SequenceBatch, options: AttentionOptions,
                                         gradOut: Tensor, gradQ: Tensor, gradK: Tensor, gradV: Tensor) throws -> AttentionDims {
        let op = "attentionBackward"
        let dims = try renamed(op) { try OpShapes.attention(q: q, k: k, v: v, batch: batch, options: options, out: gradOut) }
        for (name, t, like) in [("gradQ", gradQ, q), ("gradK", gradK, k), ("gradV", gradV, v)] {
            try Check.dtype(op, name, t, .f32)
            try Check.shape(op, name, t, like.shape)
        }
        return dims
    }

    public static func rmsNormBackward(_ x: Tensor, weight: Tensor, gradOut: Tensor, gradX: Tensor) throws -> (rows: Int, d: Int) {
        let op = "rmsNormBackward"
        let dims = try renamed(op) { try OpShapes.rmsNorm(x, weight: weight, out: gradOut) }
        try Check.dtype(op, "gradX", gradX, .f32)
        try Check.sameShape(op, ("x", x), ("gradX", gradX))
        return dims
    }

    public static func gatedActivationBackward(gate: Tensor, up: Tensor, gradOut: Tensor, gradGate: Tensor, gradUp: Tensor) throws {
        let op = "gatedActivationBackward"
        for (name, t) in [("gate", gate), ("up", up), ("gradOut", gradOut), ("gradGate", gradGate), ("gradUp", gradUp)] {
            try Check.dtype(op, name, t, .f32)
            try Check.sameShape(op, ("gate", gate), (name, t))
        }
    }

    public static func softcapBackward(_ x: Tensor, cap: Float, gradOut: Tensor, gradX: Tensor) throws {
        let op = "softcapBackward"
        for (name, t) in [("x", x), ("gradOut", gradOut), ("gradX", gradX)] {
            try Check.dtype(op, name, t, .f32)
            try Check.sameShape(op, ("x", x), (name, t))
        }
        guard cap > 0 else { throw TillerError.invalidArgument(op: op, detail: "cap \(cap) must be > 0") }
    }

    /// Returns (M, d, N).
    public static func scatterAddRows(_ gradOut: Tensor, indices: Tensor, into gradX: Tensor) throws -> (m: Int, d: Int, n: Int) {
        let op = "scatterAddRows"
        try Check.dtype(op, "gradOut", gradOut, .f32)
        try Check.dtype(op, "indices", indices, .i32)
        try Check.dtype(op, "gradX", gradX, .f32)
        guard gradX.rank == 2 else { throw TillerError.shapeMismatch(op: op, detail: "gradX \(gradX.shape) must be [N, d]") }
        try Check.shape(op, "gradOut", gradOut, [indices.count, gradX.shape[1]])
        return (indices.count, gradX.shape[1], gradX.shape[0])
    }

    /// Returns (N, d, K).
    public static func psrHeadBackward(_ h: Tensor, heads: PSRHeads, headIndex: Tensor, alpha: Tensor, gradLambda: Tensor?,
                                       gradient: Tensor, gradients: PSRHeadGradients) throws -> (n: Int, d: Int, k: Int) {
        let op = "psrHeadBackward"
        // The forward's rule, with the gradient standing in for lambda's [N] slot where there is one.
        let dims = try renamed(op) {
            try OpShapes.psrHead(h, heads: heads, headIndex: headIndex, alpha: alpha, lambda: alpha)
        }
        try Check.dtype(op, "gradient", gradient, .f32)
        try Check.sameShape(op, ("h", h), ("gradient", gradient))
        if let gradLambda {
            try Check.dtype(op, "gradLambda", gradLambda, .f32)
            try Check.shape(op, "gradLambda", gradLambda, [dims.n])
        }
        for (name, t, like) in [("gradients.w", gradients.w, heads.w), ("gradients.bias", gradients.bias, heads.bias),
                                ("gradients.z", gradients.z, heads.z)] {
            try Check.dtype(op, name, t, .f32)
            try Check.shape(op, name, t, like.shape)
        }
        return dims
    }

    /// Returns (rows, vocabulary).
    public static func crossEntropy(_ logits: Tensor, targets: Tensor, gradScale: Tensor, loss: Tensor) throws -> (rows: Int, vocabulary: Int) {
        let op = "crossEntropy"
        try Check.dtype(op, "logits", logits, .f32)
        try Check.dtype(op, "targets", targets, .i32)
        try Check.dtype(op, "gradScale", gradScale, .f32)
        try Check.dtype(op, "loss", loss, .f32)
        guard logits.rank == 2 else { throw TillerError.shapeMismatch(op: op, detail: "logits \(logits.shape) must be [N, V]") }
        try Check.nonEmpty(op, "logits", logits)
        let rows = logits.shape[0]
        try Check.shape(op, "targets", targets, [rows])
        try Check.shape(op, "gradScale", gradScale, [rows])
        try Check.shape(op, "loss", loss, [rows])
        return (rows, logits.shape[1])
    }

    /// Runs a forward rule (or a forward check of index or activation values) and reports its
    /// errors under the backward op's name. Public so that every backend can do the same.
    public static func renamed<R>(_ op: String, _ rule: () throws -> R) throws -> R {
        do {
            return try rule()
        } catch let error as TillerError {
            switch error {
            case let .shapeMismatch(_, detail): throw TillerError.shapeMismatch(op: op, detail: detail)
            case let .dtypeMismatch(_, detail): throw TillerError.dtypeMismatch(op: op, detail: detail)
            case let .emptyTensor(_, name): throw TillerError.emptyTensor(op: op, name: name)
            case let .indexOutOfRange(_, detail): throw TillerError.indexOutOfRange(op: op, detail: detail)
            case let .invalidArgument(_, detail): throw TillerError.invalidArgument(op: op, detail: detail)
            default: throw error
            }
        }
    }
}
