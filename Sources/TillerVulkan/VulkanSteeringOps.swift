import TillerCore

extension VulkanBackend {
    /// Shaders/psr_head.comp: one workgroup per row, the dot reduced in shared memory and the
    /// row updated in the same pass.
    public func psrHead(_ h: Tensor, heads: PSRHeads, headIndex: Tensor, alpha: Tensor, lambda: Tensor) throws {
        let (n, d, k) = try OpShapes.psrHead(h, heads: heads, headIndex: headIndex, alpha: alpha, lambda: lambda)
        if let kinds = knownIndices(heads.activation) {
            try kinds.withUnsafeBufferPointer { try Check.activations($0) }
        }
        try checkIndices("psrHead", "headIndex", headIndex, -1..<Int32(k))
        let size = d <= 64 ? 64 : 256
        try dispatch("psrHead", SPIRV.psrHead, specialization: [UInt32(size)],
                     bindings: [(h, .readWrite), (heads.w, .read), (heads.bias, .read), (heads.z, .read),
                                (heads.activation, .read), (headIndex, .read), (alpha, .read), (lambda, .write)],
                     push: [UInt32(n), UInt32(d), UInt32(k)], groups: groups(n, 1))
    }

    public func rowDot(_ a: Tensor, _ b: Tensor, out: Tensor) throws {
        let (rows, cols, broadcast) = try OpShapes.rowDot(a, b, out: out)
        try rowReduction("rowDot", a, b, out: out, rows: rows, cols: cols, broadcast: broadcast, norm: false)
    }

    public func rowNorm(_ x: Tensor, out: Tensor) throws {
        let (rows, cols) = try OpShapes.rowReduce("rowNorm", x, out: out)
        try rowReduction("rowNorm", x, x, out: out, rows: rows, cols: cols, broadcast: false, norm: true)
    }

    static let rowReductionGroup = 256

    /// Shaders/row_dot.comp with a power of two of invocations per row near its length.
    func rowReduction(_ op: String, _ a: Tensor, _ b: Tensor, out: Tensor, rows: Int, cols: Int, broadcast: Bool, norm: Bool) throws {
        var perRow = 8
        while perRow < min(cols, Self.rowReductionGroup) { perRow *= 2 }
        try dispatch(op, SPIRV.rowDot, specialization: [UInt32(Self.rowReductionGroup), UInt32(perRow), norm ? 1 : 0],
                     bindings: [(a, .read), (b, .read), (out, .write)],
                     push: [UInt32(rows), UInt32(cols), broadcast ? 1 : 0],
                     groups: groups(rows, Self.rowReductionGroup / perRow))
    }

    /// Shaders/mean_rows.comp: 32 columns per workgroup, the index list split 8 ways.
    public func meanRows(_ x: Tensor, indices: Tensor, out: Tensor) throws {
        let (m, d, n) = try OpShapes.meanRows(x, indices: indices, out: out)
        try checkIndices("meanRows", "indices", indices, 0..<Int32(n))
        try dispatch("meanRows", SPIRV.meanRows, bindings: [(x, .read), (indices, .read), (out, .write)],
                     push: [UInt32(m), UInt32(d), UInt32(n)], groups: groups(d, 32))
    }
}
