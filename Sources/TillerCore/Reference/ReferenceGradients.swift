#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The backward ops as plain loops in Double: the analytic yardstick every backend's gradients
/// are compared with (and which the op suite itself checks against finite differences).
extension ReferenceBackend: GradientBackend {
    public func attentionBackward(q: Tensor, k: Tensor, v: Tensor, batch: SequenceBatch, options: AttentionOptions,
                                  gradOut: Tensor, gradQ: Tensor, gradK: Tensor, gradV: Tensor) throws {
        let op = "attentionBackward"
        let dims = try GradientShapes.attentionBackward(q: q, k: k, v: v, batch: batch, options: options,
                                                        gradOut: gradOut, gradQ: gradQ, gradK: gradK, gradV: gradV)
        let qs = try read(op, q), ks = try read(op, k), vs = try read(op, v), gs = try read(op, gradOut)
        var dq = [Double](repeating: 0, count: q.count), dk = [Double](repeating: 0, count: k.count)
        var dv = [Double](repeating: 0, count: v.count)
        let (hq, hkv, d, t, s) = (dims.queryHeads, dims.kvHeads, dims.headDim, dims.queryLength, dims.cacheLength)
        let scale = Double(options.scale), cap = options.softcap.map(Double.init)
        for b in 0..<dims.batch {
            for row in 0..<batch.lengths[b] {
                let position = batch.starts[b] + row
                let keys = Array((options.slidingWindow.map { max(0, position - $0 + 1) } ?? 0)...position)
                for h in 0..<hq {
                    let g = h / dims.group
                    let qBase = ((b * t + row) * hq + h) * d
                    func kvBase(_ key: Int) -> Int { ((b * s + key) * hkv + g) * d }
                    // Recompute the row's probabilities (and tanh of the capped scores).
                    var raw: [Double] = [], scores: [Double] = []
                    for key in keys {
                        var dot = 0.0
                        for i in 0..<d { dot += qs[qBase + i] * ks[kvBase(key) + i] }
                        raw.append(dot * scale)
                        scores.append(cap.map { $0 * tanh(dot * scale / $0) } ?? dot * scale)
                    }
                    let largest = scores.max()!
                    let weights = scores.map { exp($0 - largest) }
                    let total = weights.reduce(0, +)
                    let p = weights.map { $0 / total }
                    // dP_j = gradOut . v_j; dS_j = P_j (dP_j - sum_i P_i dP_i).
                    let dp = keys.map { key in (0..<d).reduce(0.0) { $0 + gs[qBase + $1] * vs[kvBase(key) + $1] } }
                    let mean = zip(p, dp).reduce(0.0) { $0 + $1.0 * $1.1 }
                    for (j, key) in keys.enumerated() {
                        var ds = p[j] * (dp[j] - mean)
                        if let cap { let th = tanh(raw[j] / cap); ds *= 1 - th * th }
                        ds *= scale
                        for i in 0..<d {
                            dq[qBase + i] += ds * ks[kvBase(key) + i]
                            dk[kvBase(key) + i] += ds * qs[qBase + i]
                            dv[kvBase(key) + i] += p[j] * gs[qBase + i]
                        }
                    }
                }
            }
        }
        try write(op, dq, to: gradQ)
        try write(op, dk, to: gradK)
        try write(op, dv, to: gradV)
    }

    public func rmsNormBackward(_ x: Tensor, weight: Tensor, eps: Float, unitOffset: Bool, gradOut: Tensor, gradX: Tensor) throws {
        let op = "rmsNormBackward"
        let (rows, d) = try GradientShapes.rmsNormBackward(x, weight: weight, gradOut: gradOut, gradX: gradX)
        let xs = try read(op, x), ws = try read(op, weight).map { unitOffset ? 1 + $0 : $0 }, gs = try read(op, gradOut)
        var result = [Double](repeating: 0, count: xs.count)
        for r in 0..<rows {
            let base = r * d
            let meanSquare = (0..<d).reduce(0.0) { $0 + xs[base + $1] * xs[base + $1] } / Double(d)
            let inverse = 1 / (meanSquare + Double(eps)).squareRoot()
            // y_i = x_i * inverse * w_i: dx_j = inverse * (g_j w_j - x_j * inverse^2 * mean_i(g_i w_i x_i)).
            let projection = (0..<d).reduce(0.0) { $0 + gs[base + $1] * ws[$1] * xs[base + $1] } / Double(d)
            for j in 0..<d {
                result[base + j] = inverse * (gs[base + j] * ws[j] - xs[base + j] * inverse * inverse * projection)
            }
        }
        try write(op, result, to: gradX)
    }

    public func gatedActivationBackward(_ kind: GatedActivation, gate: Tensor, up: Tensor, gradOut: Tensor,
                                        gradGate: Tensor, gradUp: Tensor) throws {
        let op = "gatedActivationBackward"
        try GradientShapes.gatedActivationBackward(gate: gate, up: up, gradOut: gradOut, gradGate: gradGate, gradUp: gradUp)
        let gates = try read(op, gate), ups = try read(op, up), gs = try read(op, gradOut)
        var dGate = [Double](repeating: 0, count: gates.count), dUp = dGate
        for i in gates.indices {
            let (value, slope) = referenceActivation(kind, gates[i])
            dGate[i] = gs[i] * ups[i] * slope
            dUp[i] = gs[i] * value
        }
        try write(op, dGate, to: gradGate)
        try write(op, dUp, to: gradUp)
    }

    public func softcapBackward(_ x: Tensor, cap: Float, gradOut: Tensor, gradX: Tensor) throws {
        let op = "softcapBackward"
        try GradientShapes.softcapBackward(x, cap: cap, gradOut: gradOut, gradX: gradX)
        let xs = try read(op, x), gs = try read(op, gradOut), c = Double(cap)
        try write(op, zip(xs, gs).map { x, g in let th = tanh(x / c); return g * (1 - th * th) }, to: gradX)
    }

    public func scatterAddRows(_ gradOut: Tensor, indices: Tensor, into gradX: Tensor) throws {
        let op = "scatterAddRows"
        let (m, d, n) = try GradientShapes.scatterAddRows(gradOut, indices: indices, into: gradX)
        _ = try checkedIndices(op, "indices", indices, 0..<Int32(n))
        let gs = try read(op, gradOut), index = try readInts(op, indices)
        var result = try read(op, gradX)
        for r in 0..<m {
            for i in 0..<d { result[index[r] * d + i] += gs[r * d + i] }
        }
        try write(op, result, to: gradX)
    }

    public func psrHeadBackward(_ h: Tensor, heads: PSRHeads, headIndex: Tensor, alpha: Tensor, gradLambda: Tensor?,
                                gradient: Tensor, gradients: PSRHeadGradients) throws {
        let op = "psrHeadBackward"
        let (n, d, kCount) = try GradientShapes.psrHeadBackward(h, heads: heads, headIndex: headIndex, alpha: alpha,
                                                               gradLambda: gradLambda, gradient: gradient, gradients: gradients)
        _ = try checkedActivations(heads, op: op)
        _ = try checkedIndices(op, "headIndex", headIndex, -1..<Int32(kCount))
        let hs = try read(op, h), ws = try read(op, heads.w), zs = try read(op, heads.z), bs = try read(op, heads.bias)
        let kinds = try readInts(op, heads.activation), index = try readInts(op, headIndex), alphas = try read(op, alpha)
        let extra = try gradLambda.map { try read(op, $0) } ?? [Double](repeating: 0, count: n)
        var gs = try read(op, gradient)
        var dw = [Double](repeating: 0, count: kCount * d), dz = dw, db = [Double](repeating: 0, count: kCount)
        for row in 0..<n {
            let head = index[row]
            if head == -1 { continue }
            var pre = bs[head], along = 0.0
            for i in 0..<d {
                pre += ws[head * d + i] * hs[row * d + i]
                along += gs[row * d + i] * zs[head * d + i]
            }
            let (lambda, slope): (Double, Double)
            switch PSRActivation(rawValue: Int32(kinds[head]))! {
            case .relu: (lambda, slope) = (max(0, pre), pre > 0 ? 1 : 0)
            case .identity: (lambda, slope) = (pre, 1)
            case .constant: (lambda, slope) = (1, 0)
            }
            let ds = (alphas[row] * along + extra[row]) * slope
            db[head] += ds
            for i in 0..<d {
                dz[head * d + i] += alphas[row] * lambda * gs[row * d + i]
                dw[head * d + i] += ds * hs[row * d + i]
                gs[row * d + i] += ds * ws[head * d + i]
            }
        }
        try write(op, gs, to: gradient)
        try write(op, dw, to: gradients.w)
        try write(op, db, to: gradients.bias)
        try write(op, dz, to: gradients.z)
    }

    public func crossEntropy(_ logits: Tensor, targets: Tensor, gradScale: Tensor, loss: Tensor) throws {
        let op = "crossEntropy"
        let (rows, vocabulary) = try GradientShapes.crossEntropy(logits, targets: targets, gradScale: gradScale, loss: loss)
        _ = try checkedIndices(op, "targets", targets, -1..<Int32(vocabulary))
        var xs = try read(op, logits)
        let target = try readInts(op, targets), scales = try read(op, gradScale)
        var losses = [Double](repeating: 0, count: rows)
        for r in 0..<rows {
            let base = r * vocabulary
            guard target[r] >= 0 else {
                for i in 0..<vocabulary { xs[base + i] = 0 }
                continue
            }
            let row = xs[base..<(base + vocabulary)]
            let largest = row.max()!
            let total = row.reduce(0.0) { $0 + exp($1 - largest) }
            let logTotal = largest + log(total)
            losses[r] = logTotal - xs[base + target[r]]
            for i in 0..<vocabulary {
                xs[base + i] = scales[r] * (exp(xs[base + i] - logTotal) - (i == target[r] ? 1 : 0))
            }
        }
        try write(op, losses, to: loss)
        try write(op, xs, to: logits)
    }
}

/// act(x) and act'(x) for the gated MLP's activations.
func referenceActivation(_ kind: GatedActivation, _ x: Double) -> (value: Double, slope: Double) {
    switch kind {
    case .silu:
        let sigmoid = 1 / (1 + exp(-x))
        return (x * sigmoid, sigmoid * (1 + x * (1 - sigmoid)))
    case .geluTanh:
        let c = (2 / Double.pi).squareRoot()
        let inner = c * (x + 0.044715 * x * x * x)
        let th = tanh(inner)
        let slope = 0.5 * (1 + th) + 0.5 * x * (1 - th * th) * c * (1 + 3 * 0.044715 * x * x)
        return (referenceGELUTanh(x), slope)
    }
}
