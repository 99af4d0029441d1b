#if canImport(Glibc)
import Glibc
#endif
import TillerCore

extension CPUBackend {
    /// Rows in parallel; per row three passes over the logits, all in place: the max, then
    /// exp(x - max) and its sum (the C kernel, for this CPU's widest vectors), then the scaling
    /// into gradScale * softmax, less gradScale at the target.
    public func crossEntropy(_ logits: Tensor, targets: Tensor, gradScale: Tensor, loss: Tensor) throws {
        let op = "crossEntropy"
        let (rows, vocabulary) = try GradientShapes.crossEntropy(logits, targets: targets, gradScale: gradScale, loss: loss)
        let target = try checkedIndices(op, "targets", targets, -1..<Int32(vocabulary))
        let xp = try floats(op, logits), sp = try floats(op, gradScale), lp = try floats(op, loss)
        Parallel.chunks(rows, grain: max(1, Self.elementGrain / vocabulary)) { range in
            for r in range {
                let row = xp + r * vocabulary, t = Int(target[r])
                guard t >= 0 else {
                    row.update(repeating: 0, count: vocabulary)
                    lp[r] = 0
                    continue
                }
                // The loss from the max and the target's logit, read before the row is overwritten.
                let shiftedTarget = row[t] - maximum(row, vocabulary)
                let total = expMinusMax(row, vocabulary)
                lp[r] = logf(total) - shiftedTarget
                let scale = sp[r], factor = sp[r] / total
                mapVectors(row, row, vocabulary) { $0 * factor }
                row[t] -= scale
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
