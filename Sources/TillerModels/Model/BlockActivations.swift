import TillerCore

/// The tensors one decoder block reads and writes, by name, for `rows` rows of the residual
/// stream. One forward serves inference and training: inference aliases them (the residual is
/// updated in place, the MLP reuses the attention's normed buffer, the activation overwrites the
/// gate), while the training backward recomputes a block into distinct tensors, because its
/// adjoint needs every intermediate value.
///
///     attentionNormed = norm(input)                     q, k, v = projections (q and k roped)
///     attended = attention(q, k, v)                     attentionProjected = attended . Wo
///     middle = input + [post-norm](attentionProjected)
///     mlpNormed = norm(middle)                          gate, up = projections
///     gated = act(gate) * up                            mlpProjected = gated . Wdown
///     output = middle + [post-norm](mlpProjected)
///
/// The projections' pre-norm values exist only with sandwich norms (Gemma 2); without them the
/// projections accumulate straight into the residual. With per-head q/k norms (Qwen3, Gemma 3)
/// q and k hold the normed heads and, when distinct, qProjected and kProjected the projections.
struct BlockActivations {
    var input: Tensor
    var attentionNormed: Tensor
    var q: Tensor, k: Tensor, v: Tensor
    var attended: Tensor
    var attentionProjected: Tensor?
    var middle: Tensor
    var mlpNormed: Tensor
    var gate: Tensor, up: Tensor
    var gated: Tensor
    var mlpProjected: Tensor?
    var output: Tensor
    /// Where a sandwich post-norm writes when the projection must survive it (nil: in place).
    var normedProjection: Tensor? = nil
    /// q and k before their per-head norms (nil: normed in place, or no such norms).
    var qProjected: Tensor? = nil, kProjected: Tensor? = nil

    /// Every tensor distinct, freshly made (the input too unless given): what the backward needs.
    static func distinct(rows n: Int, config: ModelConfig, traits: ArchitectureTraits, backend: Backend, input: Tensor? = nil) throws -> BlockActivations {
        let sandwich = traits.sandwichNorms, qk = traits.qkNorm
        let d = config.hiddenSize, f = config.intermediateSize
        let hq = config.numAttentionHeads, hkv = config.kvHeads, hd = config.resolvedHeadDim
        func make(_ columns: Int) throws -> Tensor { try backend.empty([n, columns]) }
        return BlockActivations(input: try input ?? make(d), attentionNormed: try make(d), q: try make(hq * hd), k: try make(hkv * hd),
                                v: try make(hkv * hd), attended: try make(hq * hd), attentionProjected: sandwich ? try make(d) : nil,
                                middle: try make(d), mlpNormed: try make(d), gate: try make(f), up: try make(f), gated: try make(f),
                                mlpProjected: sandwich ? try make(d) : nil, output: try make(d),
                                normedProjection: sandwich ? try make(d) : nil,
                                qProjected: qk ? try make(hq * hd) : nil, kProjected: qk ? try make(hkv * hd) : nil)
    }
}

extension BlockActivations {
    /// Bytes of one block's distinct activations for `rows` rows (the input not counted).
    static func bytes(rows n: Int, config: ModelConfig, traits: ArchitectureTraits) -> Int {
        let d = config.hiddenSize, f = config.intermediateSize
        let q = config.numAttentionHeads * config.resolvedHeadDim, kv = config.kvHeads * config.resolvedHeadDim
        let perRow = 4 * d + 2 * q + 2 * kv + 3 * f + (traits.sandwichNorms ? 3 * d : 0) + (traits.qkNorm ? q + kv : 0)
        return n * perRow * 4
    }
}

extension Tensor {
    /// Whether two tensors are the same view of the same buffer (an aliased activation).
    func isSameView(as other: Tensor) -> Bool {
        buffer === other.buffer && byteOffset == other.byteOffset && shape == other.shape
    }
}

extension BlockActivations {
    /// Inference's aliasing: the residual x is input, middle and output; h serves both norms;
    /// the activation overwrites the gate; one sandwich buffer serves both post-norms.
    static func inPlace(x: Tensor, h: Tensor, q: Tensor, k: Tensor, v: Tensor, attended: Tensor,
                        gate: Tensor, up: Tensor, sandwich: Tensor?) -> BlockActivations {
        BlockActivations(input: x, attentionNormed: h, q: q, k: k, v: v, attended: attended, attentionProjected: sandwich,
                         middle: x, mlpNormed: h, gate: gate, up: up, gated: gate, mlpProjected: sandwich, output: x)
    }
}
