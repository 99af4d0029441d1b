import TillerCore

extension CPUBackend {
    /// Two passes. Rows in parallel: each row's ds (the gradient at the head's pre-activation) and
    /// alpha * lambda, from two dot products. Then strips of columns in parallel, each thread
    /// walking all rows in order: the head sums (dw += ds h, dz += alpha lambda gradient) and the
    /// in-place gradient += ds w, the latter after dz has read the incoming gradient. Every sum
    /// runs in row order whatever the number of cores, so results are the same run to run.
    public func psrHeadBackward(_ h: Tensor, heads: PSRHeads, headIndex: Tensor, alpha: Tensor, gradLambda: Tensor?,
                                gradient: Tensor, gradients: PSRHeadGradients) throws {
        let op = "psrHeadBackward"
        let (n, d, headCount) = try GradientShapes.psrHeadBackward(h, heads: heads, headIndex: headIndex, alpha: alpha,
                                                                   gradLambda: gradLambda, gradient: gradient, gradients: gradients)
        let kinds = try GradientShapes.renamed(op) { try checkedActivations(heads) }
        let index = try checkedIndices(op, "headIndex", headIndex, -1..<Int32(headCount))
        let hp = try floats(op, h), wp = try floats(op, heads.w), bp = try floats(op, heads.bias), zp = try floats(op, heads.z)
        let ap = try floats(op, alpha), lp = try gradLambda.map { try floats(op, $0) }, gp = try floats(op, gradient)
        let dwp = try floats(op, gradients.w), dbp = try floats(op, gradients.bias), dzp = try floats(op, gradients.z)

        // Per row: ds and the coefficient of the incoming gradient in dz.
        var rowGrad = [Float](repeating: 0, count: n), rowStrength = [Float](repeating: 0, count: n)
        rowGrad.withUnsafeMutableBufferPointer { rowGrad in
            rowStrength.withUnsafeMutableBufferPointer { rowStrength in
                let dsp = rowGrad.baseAddress!, cp = rowStrength.baseAddress!
                Parallel.chunks(n, grain: max(1, Self.elementGrain / (2 * d))) { rows in
                    for row in rows {
                        let head = Int(index[row])
                        guard head >= 0 else { continue }
                        let along = dot(gp + row * d, zp + head * d, d)
                        let lambda: Float, slope: Float
                        switch PSRActivation(rawValue: kinds[head])! {
                        case .relu:
                            let pre = dot(wp + head * d, hp + row * d, d) + bp[head]
                            // Slope 0 at exactly 0, as torch's relu.
                            (lambda, slope) = (max(0, pre), pre > 0 ? 1 : 0)
                        case .identity: (lambda, slope) = (dot(wp + head * d, hp + row * d, d) + bp[head], 1)
                        case .constant: (lambda, slope) = (1, 0)
                        }
                        dsp[row] = (ap[row] * along + (lp?[row] ?? 0)) * slope
                        cp[row] = ap[row] * lambda
                    }
                }

                // Head gradients are written whole: zero for heads no row uses.
                dwp.update(repeating: 0, count: headCount * d)
                dzp.update(repeating: 0, count: headCount * d)
                dbp.update(repeating: 0, count: headCount)
                let strips = (d + 15) / 16
                Parallel.chunks(strips, grain: max(1, Self.elementGrain / max(1, 48 * n))) { range in
                    let lo = range.lowerBound * 16, width = min(d, range.upperBound * 16) - lo
                    for row in 0..<n {
                        let head = Int(index[row])
                        guard head >= 0 else { continue }
                        let grad = gp + row * d + lo
                        axpy(cp[row], grad, dzp + head * d + lo, width)
                        axpy(dsp[row], hp + row * d + lo, dwp + head * d + lo, width)
                        axpy(dsp[row], wp + head * d + lo, grad, width)
                    }
                }
                for row in 0..<n where index[row] >= 0 { dbp[Int(index[row])] += dsp[row] }
            }
        }
    }
}
