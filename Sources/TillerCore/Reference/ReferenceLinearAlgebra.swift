#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension ReferenceBackend {
    public func matmul(_ x: Tensor, _ w: Tensor, layout: WeightLayout, bias: Tensor?, accumulate: Bool, out: Tensor) throws {
        let dims = try OpShapes.matmul(x, w, layout: layout, bias: bias, out: out)
        let xs = try read("matmul", x), ws = try read("matmul", w)
        let bs = try bias.map { try read("matmul", $0) }
        var result = accumulate ? try read("matmul", out) : [Double](repeating: 0, count: out.count)
        let (m, n, k) = (dims.m, dims.n, dims.k)
        for b in 0..<dims.batch {
            let xBase = b * m * k, wBase = dims.weightBatched ? b * n * k : 0, oBase = b * m * n
            for i in 0..<m {
                for j in 0..<n {
                    var sum = bs?[j] ?? 0
                    for p in 0..<k {
                        let weight = layout == .nk ? ws[wBase + j * k + p] : ws[wBase + p * n + j]
                        sum += xs[xBase + i * k + p] * weight
                    }
                    result[oBase + i * n + j] += sum
                }
            }
        }
        try write("matmul", result, to: out)
    }

    public func attention(q: Tensor, k: Tensor, v: Tensor, batch: SequenceBatch, options: AttentionOptions, out: Tensor) throws {
        let dims = try OpShapes.attention(q: q, k: k, v: v, batch: batch, options: options, out: out)
        let qs = try read("attention", q), ks = try read("attention", k), vs = try read("attention", v)
        var result = [Double](repeating: 0, count: out.count)
        let (hq, hkv, d, t, s) = (dims.queryHeads, dims.kvHeads, dims.headDim, dims.queryLength, dims.cacheLength)
        for b in 0..<dims.batch {
            for row in 0..<batch.lengths[b] {
                let position = batch.starts[b] + row
                let firstKey = options.slidingWindow.map { max(0, position - $0 + 1) } ?? 0
                for h in 0..<hq {
                    let g = h / dims.group
                    let qBase = ((b * t + row) * hq + h) * d
                    var scores: [Double] = []
                    for key in firstKey...position {
                        let kBase = ((b * s + key) * hkv + g) * d
                        var dot = 0.0
                        for i in 0..<d { dot += qs[qBase + i] * ks[kBase + i] }
                        var score = dot * Double(options.scale)
                        if let cap = options.softcap.map(Double.init) { score = cap * tanh(score / cap) }
                        scores.append(score)
                    }
                    let largest = scores.max()!
                    let weights = scores.map { exp($0 - largest) }
                    let total = weights.reduce(0, +)
                    for (j, key) in (firstKey...position).enumerated() {
                        let vBase = ((b * s + key) * hkv + g) * d
                        for i in 0..<d { result[qBase + i] += weights[j] / total * vs[vBase + i] }
                    }
                }
            }
        }
        try write("attention", result, to: out)
    }

    public func cacheAppend(_ new: Tensor, into cache: Tensor, batch: SequenceBatch) throws {
        let (bCount, t, s, row) = try OpShapes.cacheAppend(new, cache: cache, batch: batch)
        let src = try host("cacheAppend", new), dst = try host("cacheAppend", cache)
        let rowBytes = row * new.dtype.byteSize
        for b in 0..<bCount {
            for r in 0..<batch.lengths[b] {
                (dst + ((b * s + batch.starts[b] + r) * rowBytes)).copyMemory(from: src + ((b * t + r) * rowBytes), byteCount: rowBytes)
            }
        }
    }

    public func psrHead(_ h: Tensor, heads: PSRHeads, headIndex: Tensor, alpha: Tensor, lambda: Tensor) throws {
        let (n, d, kCount) = try OpShapes.psrHead(h, heads: heads, headIndex: headIndex, alpha: alpha, lambda: lambda)
        var hs = try read("psrHead", h)
        let ws = try read("psrHead", heads.w), zs = try read("psrHead", heads.z), bs = try read("psrHead", heads.bias)
        _ = try checkedActivations(heads)
        _ = try checkedIndices("psrHead", "headIndex", headIndex, -1..<Int32(kCount))
        let kinds = try readInts("psrHead", heads.activation), index = try readInts("psrHead", headIndex)
        let alphas = try read("psrHead", alpha)
        var lambdas = [Double](repeating: 0, count: n)
        for row in 0..<n {
            let head = index[row]
            if head == -1 { continue }
            var pre = bs[head]
            for i in 0..<d { pre += ws[head * d + i] * hs[row * d + i] }
            switch PSRActivation(rawValue: Int32(kinds[head]))! {
            case .relu: lambdas[row] = max(0, pre)
            case .identity: lambdas[row] = pre
            case .constant: lambdas[row] = 1
            }
            for i in 0..<d { hs[row * d + i] += alphas[row] * lambdas[row] * zs[head * d + i] }
        }
        try write("psrHead", hs, to: h)
        try write("psrHead", lambdas, to: lambda)
    }
}
