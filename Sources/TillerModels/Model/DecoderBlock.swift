import TillerCore

/// The second half of a decoder block, shared by inference and training: once `a.q` holds the
/// roped queries and `keys`/`values` the keys and values attention reads (the KV cache in
/// inference, the block's own k and v in training), attention, the output projection and the MLP,
/// each added into the residual. Aliased activations make this inference's in-place update;
/// distinct ones keep every intermediate for the backward.
extension TransformerModel {
    func attentionAndMLP(_ layer: LayerWeights, _ index: Int, _ a: BlockActivations, keys: Tensor, values: Tensor,
                         batch: SequenceBatch, rows t: Int, eps: Float) throws {
        let be = backend, b = batch.count
        let hq = config.numAttentionHeads, hd = config.resolvedHeadDim
        try be.attention(q: try a.q.reshaped([b, t, hq, hd]), k: keys, v: values,
                         batch: batch, options: attentionOptions(index), out: try a.attended.reshaped([b, t, hq, hd]))
        if !a.middle.isSameView(as: a.input) { try be.copy(a.input, to: a.middle) }
        try residualAdd(a.attended, layer.o, norm: layer.postAttentionNorm, projected: a.attentionProjected, normed: a.normedProjection, eps: eps, into: a.middle)

        try be.rmsNorm(a.middle, weight: mlpNorm(layer), eps: eps, unitOffset: traits.normUnitOffset, out: a.mlpNormed)
        try be.matmul(a.mlpNormed, layer.gate, layout: .nk, bias: nil, accumulate: false, out: a.gate)
        try be.matmul(a.mlpNormed, layer.up, layout: .nk, bias: nil, accumulate: false, out: a.up)
        try be.gatedActivation(traits.activation, gate: a.gate, up: a.up, out: a.gated)
        if !a.output.isSameView(as: a.middle) { try be.copy(a.middle, to: a.output) }
        try residualAdd(a.gated, layer.down, norm: layer.postFeedforwardNorm, projected: a.mlpProjected, normed: a.normedProjection, eps: eps, into: a.output)
    }

    /// The first half of a block: the input norm and the q, k, v projections, q and k normed per
    /// head (Qwen3, Gemma 3) and roped.
    func normAndProjections(_ layer: LayerWeights, _ a: BlockActivations, positions: Tensor, eps: Float) throws {
        let be = backend, n = a.input.rows
        let hq = config.numAttentionHeads, hkv = config.kvHeads, hd = config.resolvedHeadDim
        try be.rmsNorm(a.input, weight: layer.inputNorm, eps: eps, unitOffset: traits.normUnitOffset, out: a.attentionNormed)
        try be.matmul(a.attentionNormed, layer.q, layout: .nk, bias: layer.qBias, accumulate: false, out: a.qProjected ?? a.q)
        try be.matmul(a.attentionNormed, layer.k, layout: .nk, bias: layer.kBias, accumulate: false, out: a.kProjected ?? a.k)
        try be.matmul(a.attentionNormed, layer.v, layout: .nk, bias: layer.vBias, accumulate: false, out: a.v)
        try headNorm(a.qProjected ?? a.q, layer.qNorm, heads: hq, eps: eps, out: a.q)
        try headNorm(a.kProjected ?? a.k, layer.kNorm, heads: hkv, eps: eps, out: a.k)
        try be.rope(try a.q.reshaped([n, hq, hd]), positions: positions, inverseFrequencies: layer.inverseFrequencies)
        try be.rope(try a.k.reshaped([n, hkv, hd]), positions: positions, inverseFrequencies: layer.inverseFrequencies)
    }

    /// An RMSNorm over each head of `projected` ([rows, heads * head_dim]) into `out` (in place
    /// when they are the same tensor); nothing when the layer has no such norm.
    func headNorm(_ projected: Tensor, _ weight: Tensor?, heads: Int, eps: Float, out: Tensor) throws {
        guard let weight else { return }
        let hd = config.resolvedHeadDim, rows = projected.rows * heads
        try backend.rmsNorm(try projected.reshaped([rows, hd]), weight: weight, eps: eps, unitOffset: traits.normUnitOffset,
                            out: try out.reshaped([rows, hd]))
    }

    func attentionOptions(_ index: Int) -> AttentionOptions {
        AttentionOptions(scale: traits.attentionScale, slidingWindow: traits.slidingWindow(index), softcap: traits.attentionSoftcap)
    }

    /// The MLP's input norm: Gemma 2's pre-feedforward norm, else the post-attention norm.
    func mlpNorm(_ layer: LayerWeights) -> Tensor { layer.preFeedforwardNorm ?? layer.postAttentionNorm }

    /// x += W . input, or with sandwich norms (Gemma 2) x += norm(W . input) with W . input in
    /// `projected`, normed in place, or into `normed` when given (so `projected` keeps its pre-norm
    /// value for the backward).
    func residualAdd(_ input: Tensor, _ w: Tensor, norm: Tensor?, projected: Tensor?, normed: Tensor?, eps: Float, into x: Tensor) throws {
        if let projected, let norm {
            try backend.matmul(input, w, layout: .nk, bias: nil, accumulate: false, out: projected)
            let target = normed ?? projected
            try backend.rmsNorm(projected, weight: norm, eps: eps, unitOffset: traits.normUnitOffset, out: target)
            try backend.add(x, target, out: x)
        } else {
            try backend.matmul(input, w, layout: .nk, bias: nil, accumulate: true, out: x)
        }
    }
}
