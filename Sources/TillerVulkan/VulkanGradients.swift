import TillerCore

/// The backward ops of `GradientBackend` on Vulkan other than attention's
/// (VulkanAttentionBackward.swift). Validation calls come in the reference's order so every
/// error message equals the reference's; sums over rows run in a fixed order, without atomics.
extension VulkanBackend: GradientBackend {
    /// Shaders/rms_norm_backward.comp: one work group per row, 16-bit weights read as words.
    public func rmsNormBackward(_ x: Tensor, weight: Tensor, eps: Float, unitOffset: Bool, gradOut: Tensor, gradX: Tensor) throws {
        let op = "rmsNormBackward"
        let (rows, d) = try GradientShapes.rmsNormBackward(x, weight: weight, gradOut: gradOut, gradX: gradX)
        try check32(op, x.count)
        try dispatch(op, SPIRV.rmsNormBackward, specialization: [UInt32(Self.rowGroup(d)), Self.dtypeCode(weight.dtype)],
                     bindings: [(x, .read), (weight, .read), (gradOut, .read), (gradX, .write)],
                     push: [UInt32(rows), UInt32(d), bits(eps), unitOffset ? 1 : 0], groups: rowGroups(rows))
    }

    public func gatedActivationBackward(_ kind: GatedActivation, gate: Tensor, up: Tensor, gradOut: Tensor,
                                        gradGate: Tensor, gradUp: Tensor) throws {
        let op = "gatedActivationBackward"
        try GradientShapes.gatedActivationBackward(gate: gate, up: up, gradOut: gradOut, gradGate: gradGate, gradUp: gradUp)
        guard gate.count > 0 else { return }
        try check32(op, gate.count)
        let size = Self.transformerGroup
        try dispatch(op, SPIRV.gatedActivationBackward, specialization: [UInt32(size), kind == .silu ? 0 : 1],
                     bindings: [(gate, .read), (up, .read), (gradOut, .read), (gradGate, .write), (gradUp, .write)],
                     push: [UInt32(gate.count)], groups: groups(gate.count, size))
    }

    public func softcapBackward(_ x: Tensor, cap: Float, gradOut: Tensor, gradX: Tensor) throws {
        let op = "softcapBackward"
        try GradientShapes.softcapBackward(x, cap: cap, gradOut: gradOut, gradX: gradX)
        guard x.count > 0 else { return }
        try check32(op, x.count)
        let size = Self.transformerGroup
        try dispatch(op, SPIRV.softcapBackward, specialization: [UInt32(size)],
                     bindings: [(x, .read), (gradOut, .read), (gradX, .write)],
                     push: [UInt32(x.count), bits(cap)], groups: groups(x.count, size))
    }

    /// Shaders/scatter_add_rows.comp, one thread per element of gradX, over a plan the host
    /// makes from the indices: the source rows grouped by destination, each group in the order
    /// of m (so the sums run in the reference's order). The host needs the index values for
    /// it: those it uploaded are known; others are downloaded (a synchronisation), and values
    /// outside 0 ..< N, which only the device can have produced, are skipped as the shaders
    /// skip bad device-made indices.
    public func scatterAddRows(_ gradOut: Tensor, indices: Tensor, into gradX: Tensor) throws {
        let op = "scatterAddRows"
        let (m, d, n) = try GradientShapes.scatterAddRows(gradOut, indices: indices, into: gradX)
        try checkIndices(op, "indices", indices, 0..<Int32(n))
        guard m > 0, n * d > 0 else { return }
        try check32(op, n * d, gradOut.count, n + 1 + m)
        let index = try knownIndices(indices) ?? ints(indices)
        var offsets = [Int](repeating: 0, count: n + 1)
        for i in index where i >= 0 && Int(i) < n { offsets[Int(i) + 1] += 1 }
        for row in 0..<n { offsets[row + 1] += offsets[row] }
        var sources = [Int](repeating: 0, count: offsets[n]), next = offsets
        for (source, i) in index.enumerated() where i >= 0 && Int(i) < n {
            sources[next[Int(i)]] = source
            next[Int(i)] += 1
        }
        let plan = try metadata(offsets + sources)
        let size = Self.transformerGroup
        try dispatch(op, SPIRV.scatterAddRows, specialization: [UInt32(size)],
                     bindings: [(gradOut, .read), (plan, .read), (gradX, .readWrite)],
                     push: [UInt32(m), UInt32(d), UInt32(n)], groups: groups(n * d, size))
    }

    /// Two dispatches: Shaders/psr_head_backward_rows.comp makes each row's ds and
    /// alpha * lambda (a work group per row), then Shaders/psr_head_backward_heads.comp sums
    /// them per head in row order (a work group per head and chunk of columns) and updates the
    /// gradient in place. Without gradLambda, alpha is bound in its slot and a flag says so.
    public func psrHeadBackward(_ h: Tensor, heads: PSRHeads, headIndex: Tensor, alpha: Tensor, gradLambda: Tensor?,
                                gradient: Tensor, gradients: PSRHeadGradients) throws {
        let op = "psrHeadBackward"
        let (n, d, k) = try GradientShapes.psrHeadBackward(h, heads: heads, headIndex: headIndex, alpha: alpha,
                                                          gradLambda: gradLambda, gradient: gradient, gradients: gradients)
        if let kinds = knownIndices(heads.activation) {
            try kinds.withUnsafeBufferPointer { try Check.activations($0, op: op) }
        }
        try checkIndices(op, "headIndex", headIndex, -1..<Int32(k))
        try check32(op, h.count, heads.w.count)
        let rowStats = try empty([max(1, 2 * n)])
        try dispatch(op, SPIRV.psrHeadBackwardRows, specialization: [UInt32(d <= 64 ? 64 : 256)],
                     bindings: [(h, .read), (heads.w, .read), (heads.bias, .read), (heads.z, .read), (heads.activation, .read),
                                (headIndex, .read), (alpha, .read), (gradLambda ?? alpha, .read), (gradient, .read), (rowStats, .write)],
                     push: [UInt32(n), UInt32(d), UInt32(k), gradLambda == nil ? 0 : 1], groups: groups(n, 1))
        let size = Self.psrHeadBackwardGroup
        try dispatch(op, SPIRV.psrHeadBackwardHeads, specialization: [UInt32(size)],
                     bindings: [(h, .read), (heads.w, .read), (headIndex, .read), (rowStats, .read), (gradient, .readWrite),
                                (gradients.w, .write), (gradients.bias, .write), (gradients.z, .write)],
                     push: [UInt32(n), UInt32(d), UInt32(k)], groups: (max(1, (d + size - 1) / size), k, 1))
    }

    static let psrHeadBackwardGroup = 64

    /// Shaders/cross_entropy.comp: one work group per row, in place over the logits.
    public func crossEntropy(_ logits: Tensor, targets: Tensor, gradScale: Tensor, loss: Tensor) throws {
        let op = "crossEntropy"
        let (rows, vocabulary) = try GradientShapes.crossEntropy(logits, targets: targets, gradScale: gradScale, loss: loss)
        try checkIndices(op, "targets", targets, -1..<Int32(vocabulary))
        try check32(op, logits.count)
        try dispatch(op, SPIRV.crossEntropy, specialization: [UInt32(Self.rowGroup(vocabulary))],
                     bindings: [(logits, .readWrite), (targets, .read), (gradScale, .read), (loss, .write)],
                     push: [UInt32(rows), UInt32(vocabulary)], groups: rowGroups(rows))
    }
}
