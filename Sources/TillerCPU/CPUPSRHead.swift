import TillerCore

extension CPUBackend {
    /// One pass over H: each row's coefficient is read from the row itself, then its head's
    /// direction is added in place while the row is still in L1.
    public func psrHead(_ h: Tensor, heads: PSRHeads, headIndex: Tensor, alpha: Tensor, lambda: Tensor) throws {
        let (n, d, k) = try OpShapes.psrHead(h, heads: heads, headIndex: headIndex, alpha: alpha, lambda: lambda)
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
}
