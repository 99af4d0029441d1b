import TillerCore

/// The rest of a transformer forward on Vulkan: embedding, RMSNorm, rotary embedding, gated
/// activations, softmax and row gathers. Validation calls come in the CPU backend's order so
/// every error message equals the reference's.
extension VulkanBackend {
    /// Threads per work group of the one-thread-per-element shaders.
    static let transformerGroup = 256

    /// Specialization code of a weight dtype in the shaders that read 16-bit tensors as words.
    static func dtypeCode(_ dtype: DType) -> UInt32 {
        switch dtype {
        case .f16: return 1
        case .bf16: return 2
        default: return 0
        }
    }

    /// Threads per work group for one-work-group-per-row shaders: a power of two, 32...256,
    /// no wider than the row needs.
    static func rowGroup(_ columns: Int) -> Int {
        var size = 32
        while size < 256 && size < columns { size <<= 1 }
        return size
    }

    /// One work group per row, spread over y when rows exceed the x limit.
    func rowGroups(_ rows: Int) -> (Int, Int, Int) { groups(rows, 1) }

    /// Raises unsupported when a count does not fit the shaders' 32-bit indexing.
    func check32(_ op: String, _ counts: Int...) throws {
        for n in counts where n > Int(UInt32.max) {
            throw TillerError.unsupported("vulkan: \(op) indexes \(n) elements, more than 32-bit shader indices reach")
        }
    }

    public func embedding(table: Tensor, ids: Tensor, scale: Float, out: Tensor) throws {
        let (n, d, vocab) = try OpShapes.embedding(table: table, ids: ids, out: out)
        try checkIndices("embedding", "ids", ids, 0..<Int32(vocab))
        guard n * d > 0 else { return }
        try check32("embedding", n * d, table.count)
        let size = Self.transformerGroup
        try dispatch("embedding", SPIRV.embedding, specialization: [UInt32(size), Self.dtypeCode(table.dtype)],
                     bindings: [(table, .read), (ids, .read), (out, .write)],
                     push: [UInt32(n), UInt32(d), UInt32(vocab), bits(scale)], groups: groups(n * d, size))
    }

    public func rmsNorm(_ x: Tensor, weight: Tensor, eps: Float, unitOffset: Bool, out: Tensor) throws {
        let (rows, d) = try OpShapes.rmsNorm(x, weight: weight, out: out)
        try check32("rmsNorm", x.count)
        let size = Self.rowGroup(d)
        try dispatch("rmsNorm", SPIRV.rmsNorm, specialization: [UInt32(size), Self.dtypeCode(weight.dtype)],
                     bindings: [(x, .read), (weight, .read), (out, .write)],
                     push: [UInt32(rows), UInt32(d), bits(eps), unitOffset ? 1 : 0], groups: rowGroups(rows))
    }

    public func rope(_ x: Tensor, positions: Tensor, inverseFrequencies: Tensor) throws {
        let (rows, heads, d) = try OpShapes.rope(x, positions: positions, inverseFrequencies: inverseFrequencies)
        let pairs = rows * heads * d / 2
        guard pairs > 0 else { return }
        try check32("rope", x.count)
        let size = Self.transformerGroup
        try dispatch("rope", SPIRV.rope, specialization: [UInt32(size)],
                     bindings: [(x, .readWrite), (positions, .read), (inverseFrequencies, .read)],
                     push: [UInt32(rows), UInt32(heads), UInt32(d / 2)], groups: groups(pairs, size))
    }

    public func gatedActivation(_ kind: GatedActivation, gate: Tensor, up: Tensor, out: Tensor) throws {
        try OpShapes.unary("gatedActivation", gate, out: out)
        try Check.sameShape("gatedActivation", ("gate", gate), ("up", up))
        try Check.dtype("gatedActivation", "up", up, .f32)
        guard gate.count > 0 else { return }
        try check32("gatedActivation", gate.count)
        let size = Self.transformerGroup
        try dispatch("gatedActivation", SPIRV.gatedActivation, specialization: [UInt32(size), kind == .silu ? 0 : 1],
                     bindings: [(gate, .read), (up, .read), (out, .write)],
                     push: [UInt32(gate.count)], groups: groups(gate.count, size))
    }

    public func softmax(_ x: Tensor, out: Tensor) throws {
        try OpShapes.unary("softmax", x, out: out)
        try Check.nonEmpty("softmax", "x", x)
        try check32("softmax", x.count)
        let size = Self.rowGroup(x.columns)
        try dispatch("softmax", SPIRV.softmax, specialization: [UInt32(size)],
                     bindings: [(x, .read), (out, .write)],
                     push: [UInt32(x.rows), UInt32(x.columns)], groups: rowGroups(x.rows))
    }

    public func gatherRows(_ x: Tensor, indices: Tensor, out: Tensor) throws {
        let (m, d, n) = try OpShapes.gatherRows(x, indices: indices, out: out)
        try checkIndices("gatherRows", "indices", indices, 0..<Int32(n))
        guard m * d > 0 else { return }
        try check32("gatherRows", m * d, x.count)
        let size = Self.transformerGroup
        try dispatch("gatherRows", SPIRV.gatherRows, specialization: [UInt32(size)],
                     bindings: [(x, .read), (indices, .read), (out, .write)],
                     push: [UInt32(m), UInt32(d), UInt32(n)], groups: groups(m * d, size))
    }
}
