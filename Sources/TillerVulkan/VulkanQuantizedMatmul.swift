import TillerCore

extension VulkanBackend {
    /// Rows of x per workgroup of matmul_vec_quant: each decoded block meets this many rows.
    static let quantizedMatmulRows = 8

    /// out[M, N] = x[M, K] . W[N, K]^T (+ bias) (+ out) with W in ggml blocks (q8_0, q4_0, q4_1,
    /// q4_K), decoded in the shader: decode with M <= 8 streams W once; prefill runs one grid
    /// layer per 8 rows of x, each streaming W again (from cache at these weight sizes).
    func quantizedMatmul(_ x: Tensor, _ w: Tensor, bias: Tensor?, accumulate: Bool, out: Tensor, m: Int, n: Int, k: Int) throws {
        let code: UInt32
        switch w.dtype {
        case .q8_0: code = 0
        case .q4_0: code = 1
        case .q4_1: code = 2
        default: code = 3
        }
        guard w.byteCount < Int(UInt32.max) else {
            throw TillerError.unsupported("vulkan: matmul on \(w) needs 64-bit byte addresses")
        }
        let flags: UInt32 = (bias != nil ? 1 : 0) | (accumulate ? 2 : 0)
        let bindings: [(Tensor, Access)] = [(x, .read), (w, .read), (bias ?? x, .read), (out, accumulate ? .readWrite : .write)]
        let push = [m, n, k, Int(flags), w.dtype.byteCount(elements: k)].map { UInt32($0) }
        let rows = Self.quantizedMatmulRows, columns = 2
        var mrows = 1
        while mrows < min(m, rows) { mrows *= 2 }
        let g = groups(n, columns)
        try dispatch("matmul", SPIRV.matmulVecQuant,
                     specialization: [64, UInt32(mrows), UInt32(columns), code],
                     bindings: bindings, push: push, groups: (g.0, g.1, (m + mrows - 1) / mrows))
    }
}
