import TillerCore

extension CPUBackend {
    /// One pass over H: each row's coefficient is read from the row itself, then its head's
    /// direction is added in place while the row is still in L1.
    public func psrHead(_ h: Tensor, heads: PSRHeads, headIndex: Tensor, alpha: Tensor, lambda: Tensor) throws {
        // The steering hook calls this after every steered block of every decode step, often on
        // one row, where OpShapes' checks (an array per shape compared) cost more than the
        // arithmetic; the same rules are checked here without allocating, and anything they
        // reject goes to OpShapes for its error.
        let (n, d, k) = try Self.psrShapes(h, heads: heads, headIndex: headIndex, alpha: alpha, lambda: lambda)
            ?? OpShapes.psrHead(h, heads: heads, headIndex: headIndex, alpha: alpha, lambda: lambda)
        let hp = try floats("psrHead", h), wp = try floats("psrHead", heads.w), zp = try floats("psrHead", heads.z)
        let bp = try floats("psrHead", heads.bias), ap = try floats("psrHead", alpha), lp = try floats("psrHead", lambda)
        let kinds = try checkedActivations(heads)
        let index = try checkedIndices("psrHead", "headIndex", headIndex, -1..<Int32(k))
        Parallel.chunks(n, grain: 256) { rows in
            for row in rows {
                let head = Int(index[row])
                guard head >= 0 else { lp[row] = 0; continue }
                let x = hp + row * d
                let coefficient: Float
                switch PSRActivation(rawValue: kinds[head])! {
                case .relu: coefficient = max(0, dot(wp + head * d, x, d) + bp[head])
                case .identity: coefficient = dot(wp + head * d, x, d) + bp[head]
                case .constant: coefficient = 1
                }
                lp[row] = coefficient
                let strength = ap[row] * coefficient
                if strength != 0 { axpy(strength, zp + head * d, x, d) }
            }
        }
    }

    /// (N, d, K) when the tensors meet OpShapes.psrHead's rules, else nil.
    @inline(__always)
    static func psrShapes(_ h: Tensor, heads: PSRHeads, headIndex: Tensor, alpha: Tensor, lambda: Tensor) -> (n: Int, d: Int, k: Int)? {
        let hs = h.shape, ws = heads.w.shape, zs = heads.z.shape
        guard hs.count == 2, ws.count == 2, zs.count == 2 else { return nil }
        let n = hs[0], d = hs[1], k = ws[0]
        func vector(_ t: Tensor, _ length: Int, _ dtype: DType) -> Bool {
            t.dtype == dtype && t.shape.count == 1 && t.shape[0] == length
        }
        guard k > 0, d > 0, ws[1] == d, zs[0] == k, zs[1] == d,
              h.dtype == .f32, heads.w.dtype == .f32, heads.z.dtype == .f32,
              vector(heads.bias, k, .f32), vector(heads.activation, k, .i32),
              vector(headIndex, n, .i32), vector(alpha, n, .f32), vector(lambda, n, .f32) else { return nil }
        return (n, d, k)
    }
}
