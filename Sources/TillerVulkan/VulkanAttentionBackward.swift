import TillerCore

extension VulkanBackend {
    static let attentionBackwardGroup = 64

    /// Two dispatches, deterministic and without atomics or a [T, S] matrix:
    /// Shaders/attention_backward_query.comp gives dQ per (query row, head), recomputing the
    /// row's softmax, and stores its logsumexp and D = sum_j P_j dP_j in a [B, T, Hq, 2]
    /// scratch tensor; Shaders/attention_backward_kv.comp then gives dK and dV per (key row, KV
    /// head), walking the query rows (and heads of the group) that see the key.
    public func attentionBackward(q: Tensor, k: Tensor, v: Tensor, batch: SequenceBatch, options: AttentionOptions,
                                  gradOut: Tensor, gradQ: Tensor, gradK: Tensor, gradV: Tensor) throws {
        let op = "attentionBackward"
        let dims = try GradientShapes.attentionBackward(q: q, k: k, v: v, batch: batch, options: options,
                                                        gradOut: gradOut, gradQ: gradQ, gradK: gradK, gradV: gradV)
        let d = dims.headDim
        guard dims.batch > 0, d > 0 else { return }
        try check32(op, q.count, k.count, dims.batch * dims.queryLength * dims.queryHeads * 2)
        let meta = try metadata(batch.starts + batch.lengths)
        let stats = try empty([max(1, dims.batch * dims.queryLength * dims.queryHeads * 2)])
        let window = options.slidingWindow.map { UInt32(min($0, Int(Int32.max))) } ?? 0
        let shape: [UInt32] = [UInt32(dims.batch), UInt32(dims.queryLength), UInt32(dims.cacheLength),
                               UInt32(dims.queryHeads), UInt32(dims.kvHeads), UInt32(dims.group),
                               window, bits(options.scale), bits(options.softcap ?? 0)]
        let specialization = [UInt32(Self.attentionBackwardGroup), UInt32(d)]
        try dispatch(op, SPIRV.attentionBackwardQuery, specialization: specialization,
                     bindings: [(q, .read), (k, .read), (v, .read), (gradOut, .read), (meta, .read), (gradQ, .write), (stats, .write)],
                     push: shape, groups: groups(dims.batch * dims.queryLength * dims.queryHeads, 1))
        try dispatch(op, SPIRV.attentionBackwardKv, specialization: specialization,
                     bindings: [(q, .read), (k, .read), (v, .read), (gradOut, .read), (meta, .read), (stats, .read),
                                (gradK, .write), (gradV, .write)],
                     push: shape, groups: groups(dims.batch * dims.cacheLength * dims.kvHeads, 1))
    }
}
