#if canImport(Glibc)
import Glibc
#endif
import CTillerKernels
import TillerCore

/// The CPU backend's backward ops: attention in CPUAttentionBackward.swift, the PSR head in
/// CPUPSRHeadBackward.swift, cross-entropy in CPUCrossEntropy.swift, the elementwise ones here
/// over `Parallel.chunks`, as the forward's: SIMD Swift, the gated activations in C.
extension CPUBackend: GradientBackend {
    public func rmsNormBackward(_ x: Tensor, weight: Tensor, eps: Float, unitOffset: Bool, gradOut: Tensor, gradX: Tensor) throws {
        let op = "rmsNormBackward"
        let (rows, d) = try GradientShapes.rmsNormBackward(x, weight: weight, gradOut: gradOut, gradX: gradX)
        let xp = try floats(op, x), gp = try floats(op, gradOut), dxp = try floats(op, gradX)
        let gains = try rmsNormGains(op, weight, d: d, unitOffset: unitOffset)
        gains.withUnsafeBufferPointer { gains in
            let wp = gains.baseAddress!
            Parallel.chunks(rows, grain: max(1, Self.elementGrain / d)) { range in
                for r in range { rmsNormBackwardRow(xp + r * d, gp + r * d, wp, dxp + r * d, d, eps: eps) }
            }
        }
    }

    public func gatedActivationBackward(_ kind: GatedActivation, gate: Tensor, up: Tensor, gradOut: Tensor,
                                        gradGate: Tensor, gradUp: Tensor) throws {
        let op = "gatedActivationBackward"
        try GradientShapes.gatedActivationBackward(gate: gate, up: up, gradOut: gradOut, gradGate: gradGate, gradUp: gradUp)
        let gp = try floats(op, gate), up = try floats(op, up), gradp = try floats(op, gradOut)
        let dgp = try floats(op, gradGate), dup = try floats(op, gradUp)
        // The C kernel (this CPU's widest vectors, as the forward) in cache-sized slices across cores.
        let code: Int32 = kind == .silu ? 0 : 1
        Parallel.chunks(gate.count, grain: Self.elementGrain) { r in
            let o = r.lowerBound
            tiller_gated_activation_backward(code, gp + o, up + o, gradp + o, dgp + o, dup + o, r.count)
        }
    }

    public func softcapBackward(_ x: Tensor, cap: Float, gradOut: Tensor, gradX: Tensor) throws {
        let op = "softcapBackward"
        try GradientShapes.softcapBackward(x, cap: cap, gradOut: gradOut, gradX: gradX)
        let xp = try floats(op, x), gp = try floats(op, gradOut), dxp = try floats(op, gradX)
        let inverseCap = 1 / cap
        Parallel.chunks(x.count, grain: Self.elementGrain) { r in
            let o = r.lowerBound
            Self.zipVectors(xp + o, gp + o, dxp + o, r.count) { x, g in
                // 1 - tanh(y)^2 as 4 e / (1 + e)^2, e = exp(-2|y|): no cancellation where the cap saturates.
                let y = x * inverseCap
                let e = vexp(-2 * y.replacing(with: -y, where: y .< 0))
                let s = 1 / (1 + e)
                return g * (4 * e * s * s)
            }
        }
    }

    /// Threads own strips of columns and add every row into theirs in the order of m, so each
    /// element's sum has the same order on any number of cores (and rows gathered many times,
    /// such as a repeated token's embedding, do not serialise the work).
    public func scatterAddRows(_ gradOut: Tensor, indices: Tensor, into gradX: Tensor) throws {
        let op = "scatterAddRows"
        let (m, d, n) = try GradientShapes.scatterAddRows(gradOut, indices: indices, into: gradX)
        let index = try checkedIndices(op, "indices", indices, 0..<Int32(n))
        let gp = try floats(op, gradOut), xp = try floats(op, gradX)
        let strips = (d + 15) / 16
        Parallel.chunks(strips, grain: max(1, Self.elementGrain / max(1, 16 * m))) { range in
            let lo = range.lowerBound * 16, width = min(d, range.upperBound * 16) - lo
            for r in 0..<m { axpy(1, gp + r * d + lo, xp + Int(index[r]) * d + lo, width) }
        }
    }
}

extension CPUBackend {
    /// RMSNorm's weight widened (and offset by one for Gemma's 1 + w) into d floats: one row,
    /// never more, whatever the weight's dtype.
    func rmsNormGains(_ op: String, _ weight: Tensor, d: Int, unitOffset: Bool) throws -> [Float] {
        let wp = try hostPointer(op, weight)
        return (0..<d).map { HostEncoding.load(wp, weight.dtype, $0) + (unitOffset ? 1 : 0) }
    }
}

typealias DoubleVec = SIMD8<Double>

@inline(__always) func loadWide(_ p: UnsafePointer<Float>) -> DoubleVec {
    DoubleVec(UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self))
}

/// One row of RMSNorm's backward, y = x * inverse * w: dx = inverse * (g w - x * inverse^2 * mean(g w x)).
/// In Double: the second term removes dx's component along x, which cancels the first to within
/// eps / mean(x^2) (all of dx when d = 1); in f32 that leaves percent-level errors there. The op
/// reads three and writes one float per element, so the wider arithmetic costs little.
@inline(__always) func rmsNormBackwardRow(_ x: UnsafePointer<Float>, _ g: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
                                          _ dx: UnsafeMutablePointer<Float>, _ d: Int, eps: Float) {
    var squares = DoubleVec(), projections = DoubleVec()
    var i = 0
    while i + 8 <= d {
        let xv = loadWide(x + i)
        squares += xv * xv
        projections += loadWide(g + i) * loadWide(w + i) * xv
        i += 8
    }
    var squareSum = squares.sum(), projection = projections.sum()
    while i < d {
        let xv = Double(x[i])
        squareSum += xv * xv
        projection += Double(g[i]) * Double(w[i]) * xv
        i += 1
    }
    let inverse = 1 / (squareSum / Double(d) + Double(eps)).squareRoot()
    let along = inverse * inverse * projection / Double(d)
    i = 0
    while i + 8 <= d {
        let value = inverse * (loadWide(g + i) * loadWide(w + i) - loadWide(x + i) * along)
        UnsafeMutableRawPointer(dx + i).storeBytes(of: SIMD8<Float>(value), as: SIMD8<Float>.self)
        i += 8
    }
    while i < d { dx[i] = Float(inverse * (Double(g[i]) * Double(w[i]) - Double(x[i]) * along)); i += 1 }
}
