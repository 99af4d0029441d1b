import TillerCore

/// The residual stream of fresh sequences with nothing else: no KV cache (the keys and values of
/// the pass are attended in place, as `trainingForward` does) and no logits. What teacher-forced
/// capture needs: `tiller capture` reads the stream after chosen blocks through a hook and never
/// decodes, so a cache to fill and a vocabulary-sized matmul to skip are pure cost. The blocks are
/// the inference blocks, in place, in the same workspace as `forward`, so a row's values are the
/// ones `forward` computes for it.
extension TransformerModel {
    /// Runs each sequence (positions from 0, padded to the longest) through blocks 0...`lastLayer`
    /// (default: every block), calling `hook.afterBlock` after each; the blocks above are not run,
    /// as nothing reads them. Empty sequences are allowed (they take padding rows only).
    public func residualPass(_ tokens: [[Int32]], through lastLayer: Int? = nil, hook: ResidualStreamHook) throws {
        let last = lastLayer ?? layerCount - 1
        guard last >= 0, last < layerCount else {
            throw TillerError.invalidArgument(op: "residualPass", detail: "layer \(last): the model has \(layerCount) layers (0-\(layerCount - 1))")
        }
        guard !tokens.isEmpty else { return }
        for (i, seq) in tokens.enumerated() {
            if let bad = seq.first(where: { $0 < 0 || Int($0) >= vocabularySize }) {
                throw TillerError.indexOutOfRange(op: "residualPass", detail: "token \(bad) in sequence \(i), vocabulary \(vocabularySize)")
            }
        }
        let b = tokens.count, t = max(1, tokens.map(\.count).max() ?? 1), n = b * t, d = hiddenSize
        let hq = config.numAttentionHeads, hkv = config.kvHeads, hd = config.resolvedHeadDim, f = config.intermediateSize
        let eps = Float(config.rmsNormEps ?? 1e-6)
        let step = ForwardStep(batch: SequenceBatch(lengths: tokens.map(\.count)), rowsPerSequence: t)
        // Padding rows take id 0 at their row's position; attention never lets a real row see them.
        var ids = [Int32](repeating: 0, count: n), positions = [Int32](repeating: 0, count: n)
        for s in 0..<b {
            for r in 0..<t {
                ids[s * t + r] = r < tokens[s].count ? tokens[s][r] : 0
                positions[s * t + r] = Int32(r)
            }
        }
        let be = backend
        let x = try scratch("x", [n, d]), h = try scratch("h", [n, d])
        let q = try scratch("q", [n, hq * hd]), k = try scratch("k", [n, hkv * hd]), v = try scratch("v", [n, hkv * hd])
        let attended = try scratch("attended", [n, hq * hd])
        let gate = try scratch("gate", [n, f]), up = try scratch("up", [n, f])
        let sandwich = traits.sandwichNorms ? try scratch("sandwich", [n, d]) : nil
        // Index tensors and the hook's uploads go up before the first op (a recording backend
        // is not made to stop in the middle of the pass).
        let idTensor = try scratchInts("ids", ids), positionTensor = try scratchInts("positions", positions)
        try hook.prepare(for: step, backend: be)

        try be.embedding(table: embedding, ids: idTensor, scale: traits.embeddingScale, out: x)
        let block = BlockActivations.inPlace(x: x, h: h, q: q, k: k, v: v, attended: attended, gate: gate, up: up, sandwich: sandwich)
        let keys = try k.reshaped([b, t, hkv, hd]), values = try v.reshaped([b, t, hkv, hd])
        for (index, layer) in layers[...last].enumerated() {
            try normAndProjections(layer, block, positions: positionTensor, eps: eps)
            try attentionAndMLP(layer, index, block, keys: keys, values: values, batch: step.batch, rows: t, eps: eps)
            try hook.afterBlock(index, residual: x, step: step, backend: be)
        }
    }
}
