import TillerCore

/// The differentiable forward through the frozen model and its backward. The forward is the
/// inference block (`normAndProjections` + `attentionAndMLP`) over a padded batch without a KV
/// cache, keeping each block's input; the backward recomputes each block from its saved input
/// into distinct activations and runs its adjoint, handing the gradient of the stream after every
/// block to a `ResidualGradientHook`. Weights get no gradient.
extension TransformerModel {
    /// Runs tokens (one sequence each, fresh: no cache) through every block, with `hook` seeing and
    /// steering the stream after each, and keeps what the backward needs.
    public func trainingForward(_ tokens: [[Int32]], hook: ResidualStreamHook? = nil) throws -> SavedForward {
        guard !tokens.isEmpty, tokens.allSatisfy({ !$0.isEmpty }) else {
            throw TillerError.invalidArgument(op: "trainingForward", detail: "every sequence needs at least one token")
        }
        for (i, seq) in tokens.enumerated() {
            if let bad = seq.first(where: { $0 < 0 || Int($0) >= vocabularySize }) {
                throw TillerError.indexOutOfRange(op: "trainingForward", detail: "token \(bad) in sequence \(i), vocabulary \(vocabularySize)")
            }
        }
        let b = tokens.count, t = tokens.map(\.count).max()!, n = b * t, d = hiddenSize
        let step = ForwardStep(batch: SequenceBatch(lengths: tokens.map(\.count)), rowsPerSequence: t)
        var ids = [Int32](repeating: 0, count: n), positions = [Int32](repeating: 0, count: n)
        for s in 0..<b {
            for r in 0..<t {
                ids[s * t + r] = r < tokens[s].count ? tokens[s][r] : 0
                positions[s * t + r] = Int32(r)
            }
        }
        let be = backend
        let idTensor = try be.tensor(ints: ids, shape: [n]), positionTensor = try be.tensor(ints: positions, shape: [n])
        try hook?.prepare(for: step, backend: be)
        let eps = Float(config.rmsNormEps ?? 1e-6)
        var inputs: [Tensor] = []
        let first = try be.empty([n, d])
        try be.embedding(table: embedding, ids: idTensor, scale: traits.embeddingScale, out: first)
        inputs.append(first)
        // A pass with a hook may be backpropagated: when every block's activations fit the
        // budget, they are kept (distinct, the block's output before the hook) and the backward
        // need not recompute any block.
        let keep = hook != nil && layers.count * BlockActivations.bytes(rows: n, config: config, traits: traits) <= trainingActivationBudget
        var kept: [BlockActivations] = []
        // Otherwise one set of working tensors for every block, aliased as in inference except
        // that each block writes a fresh output (its input stays saved).
        let work = keep ? nil : try BlockActivations.distinct(rows: n, config: config, traits: traits, backend: be)
        var final = first
        for (index, layer) in layers.enumerated() {
            let output = try be.empty([n, d])
            var a: BlockActivations
            if keep {
                a = try BlockActivations.distinct(rows: n, config: config, traits: traits, backend: be, input: final)
            } else {
                a = work!
                a.input = final
                a.middle = output
                a.output = output
                a.mlpNormed = a.attentionNormed
                a.gated = a.gate
                a.normedProjection = nil
            }
            try normAndProjections(layer, a, positions: positionTensor, eps: eps)
            try attentionAndMLP(layer, index, a, keys: try a.k.reshaped(kvShape(b, t)), values: try a.v.reshaped(kvShape(b, t)),
                                batch: step.batch, rows: t, eps: eps)
            if keep {
                try be.copy(a.output, to: output)
                kept.append(a)
            }
            try hook?.afterBlock(index, residual: output, step: step, backend: be)
            if index + 1 < layers.count { inputs.append(output) }
            final = output
        }
        return SavedForward(step: step, ids: idTensor, positions: positionTensor, blockInputs: inputs, final: final,
                            activations: keep ? kept : nil)
    }

    /// Backpropagates `gradient` (dL/d`saved.final`, f32 [B * T, hidden], overwritten) from the last
    /// block down to block `lowest`, calling `hook.afterBlockBackward` after recomputing each
    /// block. On return `gradient` holds dL/d(the stream entering block `lowest`).
    public func backward(_ saved: SavedForward, gradient: Tensor, hook: ResidualGradientHook?, lowest: Int = 0) throws {
        guard let be = backend as? any GradientBackend else {
            throw TillerError.unsupported("the \(backend.name) backend has no backward ops")
        }
        guard lowest >= 0, lowest < layerCount else {
            throw TillerError.invalidArgument(op: "backward", detail: "lowest layer \(lowest) is not one of the model's \(layerCount) layers")
        }
        let step = saved.step, b = step.batch.count, t = step.rowsPerSequence, n = step.rowCount
        try Check.shape("backward", "gradient", gradient, [n, hiddenSize])
        let eps = Float(config.rmsNormEps ?? 1e-6)
        if negatedInverseFrequencies == nil {
            // Layers that share a frequency tensor share its negation.
            var negated: [(Tensor, Tensor)] = []
            negatedInverseFrequencies = try layers.map { layer in
                if let known = negated.first(where: { $0.0.isSameView(as: layer.inverseFrequencies) }) { return known.1 }
                let tensor = try be.tensor(try be.floats(layer.inverseFrequencies).map { -$0 }, shape: [layer.inverseFrequencies.count])
                negated.append((layer.inverseFrequencies, tensor))
                return tensor
            }
        }
        let recomputed = saved.activations == nil
            ? try BlockActivations.distinct(rows: n, config: config, traits: traits, backend: be) : nil
        let scratch = try BlockGradients(rows: n, config: config, qkNorm: traits.qkNorm, backend: be)
        for index in stride(from: layerCount - 1, through: lowest, by: -1) {
            let layer = layers[index]
            let a: BlockActivations
            if let kept = saved.activations {
                a = kept[index]
            } else {
                a = recomputed!
                try be.copy(saved.blockInputs[index], to: a.input)
                try normAndProjections(layer, a, positions: saved.positions, eps: eps)
                try attentionAndMLP(layer, index, a, keys: try a.k.reshaped(kvShape(b, t)), values: try a.v.reshaped(kvShape(b, t)),
                                    batch: step.batch, rows: t, eps: eps)
            }
            try hook?.afterBlockBackward(index, residual: a.output, steered: saved.residual(after: index), gradient: gradient,
                                         step: step, backend: be)
            try blockBackward(layer, index, a, scratch, positions: saved.positions, batch: step.batch, rows: t,
                              eps: eps, backend: be, gradient: gradient)
        }
    }

    private func kvShape(_ b: Int, _ t: Int) -> [Int] { [b, t, config.kvHeads, config.resolvedHeadDim] }

    /// The adjoint of one block (`a` recomputed, distinct): `gradient` goes from dL/d(output) to
    /// dL/d(input). Each matmul's adjoint is the same matmul with the weight's layout flipped.
    private func blockBackward(_ layer: LayerWeights, _ index: Int, _ a: BlockActivations, _ g: BlockGradients,
                               positions: Tensor, batch: SequenceBatch, rows t: Int, eps: Float,
                               backend be: any GradientBackend, gradient: Tensor) throws {
        let b = batch.count, unit = traits.normUnitOffset
        let hq = config.numAttentionHeads, hkv = config.kvHeads, hd = config.resolvedHeadDim
        // MLP: output = middle + [norm](gated . Wdown).
        var upstream = gradient
        if let projected = a.mlpProjected, let norm = layer.postFeedforwardNorm {
            try be.rmsNormBackward(projected, weight: norm, eps: eps, unitOffset: unit, gradOut: gradient, gradX: g.projection)
            upstream = g.projection
        }
        try be.matmul(upstream, layer.down, layout: .kn, bias: nil, accumulate: false, out: g.gated)
        try be.gatedActivationBackward(traits.activation, gate: a.gate, up: a.up, gradOut: g.gated, gradGate: g.gate, gradUp: g.up)
        try be.matmul(g.gate, layer.gate, layout: .kn, bias: nil, accumulate: false, out: g.normed)
        try be.matmul(g.up, layer.up, layout: .kn, bias: nil, accumulate: true, out: g.normed)
        try be.rmsNormBackward(a.middle, weight: mlpNorm(layer), eps: eps, unitOffset: unit, gradOut: g.normed, gradX: g.stream)
        try be.add(gradient, g.stream, out: gradient)

        // Attention: middle = input + [norm](attended . Wo).
        upstream = gradient
        if let projected = a.attentionProjected {
            try be.rmsNormBackward(projected, weight: layer.postAttentionNorm, eps: eps, unitOffset: unit, gradOut: gradient, gradX: g.projection)
            upstream = g.projection
        }
        try be.matmul(upstream, layer.o, layout: .kn, bias: nil, accumulate: false, out: g.attended)
        try be.attentionBackward(q: try a.q.reshaped([b, t, hq, hd]), k: try a.k.reshaped(kvShape(b, t)), v: try a.v.reshaped(kvShape(b, t)),
                                 batch: batch, options: attentionOptions(index), gradOut: try g.attended.reshaped([b, t, hq, hd]),
                                 gradQ: try g.q.reshaped([b, t, hq, hd]), gradK: try g.k.reshaped(kvShape(b, t)),
                                 gradV: try g.v.reshaped(kvShape(b, t)))
        let negated = negatedInverseFrequencies![index]
        try be.rope(try g.q.reshaped([b * t, hq, hd]), positions: positions, inverseFrequencies: negated)
        try be.rope(try g.k.reshaped([b * t, hkv, hd]), positions: positions, inverseFrequencies: negated)
        // Per-head q/k norms (Qwen3, Gemma 3): back through each head's norm to the projection.
        var gradQ = g.q, gradK = g.k
        if let qNorm = layer.qNorm, let kNorm = layer.kNorm, let qProjected = a.qProjected, let kProjected = a.kProjected,
           let gq = g.qProjected, let gk = g.kProjected {
            try be.rmsNormBackward(try qProjected.reshaped([b * t * hq, hd]), weight: qNorm, eps: eps, unitOffset: unit,
                                   gradOut: try g.q.reshaped([b * t * hq, hd]), gradX: try gq.reshaped([b * t * hq, hd]))
            try be.rmsNormBackward(try kProjected.reshaped([b * t * hkv, hd]), weight: kNorm, eps: eps, unitOffset: unit,
                                   gradOut: try g.k.reshaped([b * t * hkv, hd]), gradX: try gk.reshaped([b * t * hkv, hd]))
            (gradQ, gradK) = (gq, gk)
        }
        try be.matmul(gradQ, layer.q, layout: .kn, bias: nil, accumulate: false, out: g.normed)
        try be.matmul(gradK, layer.k, layout: .kn, bias: nil, accumulate: true, out: g.normed)
        try be.matmul(g.v, layer.v, layout: .kn, bias: nil, accumulate: true, out: g.normed)
        try be.rmsNormBackward(a.input, weight: layer.inputNorm, eps: eps, unitOffset: unit, gradOut: g.normed, gradX: g.stream)
        try be.add(gradient, g.stream, out: gradient)
    }

    /// Cross-entropy of the logits of chosen rows of `saved.final` against `targets`, computed
    /// `chunk` rows at a time (the [rows, vocabulary] logits never exist whole): returns each row's
    /// loss and adds d(sum_i scales[i] * loss_i)/d`saved.final` into `gradient`.
    public func logitLoss(_ saved: SavedForward, rows: [Int32], targets: [Int32], scales: [Float], chunk: Int = 256,
                          gradient: Tensor) throws -> [Float] {
        guard let be = backend as? any GradientBackend else {
            throw TillerError.unsupported("the \(backend.name) backend has no backward ops")
        }
        guard rows.count == targets.count, rows.count == scales.count, chunk > 0 else {
            throw TillerError.invalidArgument(op: "logitLoss", detail: "\(rows.count) rows, \(targets.count) targets and \(scales.count) scales")
        }
        let n = saved.step.rowCount, d = hiddenSize, v = vocabularySize
        try Check.shape("logitLoss", "gradient", gradient, [n, d])
        let eps = Float(config.rmsNormEps ?? 1e-6), unit = traits.normUnitOffset
        var losses: [Float] = []
        var start = 0
        while start < rows.count {
            let m = min(chunk, rows.count - start), range = start..<(start + m)
            let index = try be.tensor(ints: Array(rows[range]), shape: [m])
            let selected = try be.empty([m, d]), normed = try be.empty([m, d])
            try be.gatherRows(saved.final, indices: index, out: selected)
            try be.rmsNorm(selected, weight: finalNorm, eps: eps, unitOffset: unit, out: normed)
            let logits = try be.empty([m, v])
            try be.matmul(normed, lmHead, layout: .nk, bias: nil, accumulate: false, out: logits)
            var capped = logits
            if let cap = traits.finalLogitSoftcap {
                capped = try be.empty([m, v])
                try be.softcap(logits, cap: cap, out: capped)
            }
            let loss = try be.empty([m])
            try be.crossEntropy(capped, targets: try be.tensor(ints: Array(targets[range]), shape: [m]),
                                gradScale: try be.tensor(Array(scales[range]), shape: [m]), loss: loss)
            if let cap = traits.finalLogitSoftcap { try be.softcapBackward(logits, cap: cap, gradOut: capped, gradX: logits) }
            try be.matmul(logits, lmHead, layout: .kn, bias: nil, accumulate: false, out: normed)
            try be.rmsNormBackward(selected, weight: finalNorm, eps: eps, unitOffset: unit, gradOut: normed, gradX: selected)
            try be.scatterAddRows(selected, indices: index, into: gradient)
            losses += try be.floats(loss)
            start += m
        }
        return losses
    }
}

/// The gradient tensors one block's backward works in, made once per backward pass.
struct BlockGradients {
    let stream, normed, projection: Tensor        // [n, d]
    let gated, gate, up: Tensor                   // [n, f]
    let attended, q: Tensor                       // [n, hq * hd]
    let k, v: Tensor                              // [n, hkv * hd]
    /// The gradients of q and k before their per-head norms (nil without such norms).
    let qProjected, kProjected: Tensor?

    init(rows n: Int, config: ModelConfig, qkNorm: Bool, backend: Backend) throws {
        let d = config.hiddenSize, f = config.intermediateSize
        let hq = config.numAttentionHeads, hkv = config.kvHeads, hd = config.resolvedHeadDim
        func make(_ columns: Int) throws -> Tensor { try backend.empty([n, columns]) }
        (stream, normed, projection) = (try make(d), try make(d), try make(d))
        (gated, gate, up) = (try make(f), try make(f), try make(f))
        (attended, q) = (try make(hq * hd), try make(hq * hd))
        (k, v) = (try make(hkv * hd), try make(hkv * hd))
        (qProjected, kProjected) = qkNorm ? (try make(hq * hd), try make(hkv * hd)) : (nil, nil)
    }
}
