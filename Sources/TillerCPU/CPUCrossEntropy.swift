#if canImport(Glibc)
import Glibc
#endif
import TillerCore

extension CPUBackend {
    /// Rows in parallel, each in place. The target's logit is set aside and the other logits'
    /// exp(x - max) summed (the C kernel, for this CPU's widest vectors): with `others` that sum
    /// and d the target's logit less their max, loss = log(others + e^d) - d and the target's
    /// gradient is -gradScale * others / total, both free of the cancellation in 1 - p and
    /// log(1 + tiny) when the target dominates its row (a well-fitted token's loss keeps its digits).
    public func crossEntropy(_ logits: Tensor, targets: Tensor, gradScale: Tensor, loss: Tensor) throws {
        let op = "crossEntropy"
        let (rows, vocabulary) = try GradientShapes.crossEntropy(logits, targets: targets, gradScale: gradScale, loss: loss)
        let target = try checkedIndices(op, "targets", targets, -1..<Int32(vocabulary))
        let xp = try floats(op, logits), sp = try floats(op, gradScale), lp = try floats(op, loss)
        Parallel.chunks(rows, grain: max(1, Self.elementGrain / vocabulary)) { range in
            for r in range {
                let row = xp + r * vocabulary, t = Int(target[r])
                // A row outside the loss, or a vocabulary of one (softmax 1, loss 0): all zero.
                guard t >= 0, vocabulary > 1 else {
                    row.update(repeating: 0, count: vocabulary)
                    lp[r] = 0
                    continue
                }
                let picked = row[t]
                row[t] = -.infinity
                let othersMax = maximum(row, vocabulary)
                guard othersMax > -.infinity else {
                    // Every other logit is -inf (masked): the softmax is all on the target.
                    row.update(repeating: 0, count: vocabulary)
                    lp[r] = 0
                    continue
                }
                let d = picked - othersMax
                // row[i] = exp(x_i - max of the others); the target's slot gets exp of the clamped -inf, ~1e-38.
                let others = expMinusMax(row, vocabulary) - row[t]
                let scale = sp[r]
                let factor: Float
                if d >= 0 {
                    // Relative to the target's logit, the row's max.
                    let shrink = expf(-d), rest = others * shrink, total = 1 + rest
                    lp[r] = log1pf(rest)
                    factor = scale * shrink / total
                    row[t] = -scale * rest / total
                } else {
                    let total = others + expf(d)
                    lp[r] = logf(total) - d
                    factor = scale / total
                    row[t] = -scale * others / total
                }
                let gradient = row[t]
                mapVectors(row, row, vocabulary) { $0 * factor }
                row[t] = gradient
            }
        }
    }
}

/// The largest of n >= 1 values.
@inline(__always) func maximum(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
    var i = 0, largest = -Float.infinity
    if n >= 16 {
        var acc = loadVec(p)
        i = 16
        while i + 16 <= n {
            let v = loadVec(p + i)
            acc.replace(with: v, where: v .> acc)
            i += 16
        }
        largest = acc.max()
    }
    while i < n { largest = max(largest, p[i]); i += 1 }
    return largest
}
