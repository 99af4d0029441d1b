// matmul, attention, cacheAppend and psrHead: the ops with the most code paths per backend
// (GEMV vs panel sgemm, query blocks, per-row head dispatch), so the most cases.

import Testing
import TillerCore

// MARK: - matmul

struct MatmulCase: Sendable, CustomTestStringConvertible {
    var m: Int, n: Int, k: Int
    var dtype: DType
    var layout: WeightLayout
    /// Batched weights [B, N, K] / [B, K, N] with x [B, M, K].
    var batch: Int? = nil
    /// Extra leading dimensions of x folded into M over one shared weight.
    var leading: [Int] = []
    var bias = false
    var accumulate = false

    var xShape: [Int] { batch.map { [$0, m, k] } ?? leading + [m, k] }
    var wShape: [Int] { (batch.map { [$0] } ?? []) + (layout == .nk ? [n, k] : [k, n]) }
    var outShape: [Int] { Array(xShape.dropLast()) + [n] }

    var testDescription: String {
        var parts = ["x \(shapeName(xShape))", "w \(shapeName(wShape)) \(dtype) \(layout.rawValue)"]
        if bias { parts.append("bias") }
        if accumulate { parts.append("accumulate") }
        return parts.joined(separator: ", ")
    }

    static let all: [MatmulCase] = {
        var cases: [MatmulCase] = []
        // M <= 8 takes the 16-bit GEMV kernels, M > 8 the widened-panel sgemm; N and K avoid
        // every vector width and tile size.
        let sizes = [(17, 33), (3, 127), (33, 17), (127, 3), (1, 65), (65, 1)]
        for (d, dtype) in [DType.f32, .f16, .bf16].enumerated() {
            for (l, layout) in [WeightLayout.nk, .kn].enumerated() {
                for (i, m) in [1, 2, 7, 8, 9, 67].enumerated() {
                    let (n, k) = sizes[(i + d + l) % sizes.count]
                    cases.append(MatmulCase(m: m, n: n, k: k, dtype: dtype, layout: layout,
                                            bias: (i + d + l) % 2 == 0, accumulate: (i + 2 * d + l) % 3 == 0))
                }
                for (i, m) in [1, 9].enumerated() {
                    cases.append(MatmulCase(m: m, n: 17, k: 33, dtype: dtype, layout: layout, batch: 3,
                                            bias: (i + l) % 2 == 1, accumulate: (i + d) % 2 == 0))
                }
            }
        }
        cases += [
            MatmulCase(m: 3, n: 33, k: 17, dtype: .f32, layout: .nk, leading: [2], bias: true),
            MatmulCase(m: 3, n: 17, k: 33, dtype: .f16, layout: .kn, leading: [2]),          // folds to M = 6: GEMV
            MatmulCase(m: 5, n: 31, k: 47, dtype: .bf16, layout: .nk, leading: [3], accumulate: true), // M = 15: panels
            MatmulCase(m: 9, n: 1, k: 1, dtype: .f16, layout: .nk, bias: true),
            MatmulCase(m: 1, n: 1, k: 200, dtype: .bf16, layout: .kn),
            MatmulCase(m: 100, n: 100, k: 100, dtype: .f32, layout: .nk, bias: true),
            MatmulCase(m: 97, n: 101, k: 99, dtype: .f16, layout: .kn, accumulate: true),
            // More weight than one widened panel (2^18 values), so panels split N (nk) or K (kn).
            MatmulCase(m: 9, n: 300, k: 1000, dtype: .f16, layout: .nk, bias: true),
            MatmulCase(m: 9, n: 2100, k: 130, dtype: .bf16, layout: .kn, bias: true, accumulate: true),
            // Wide enough for the GEMV kernels to split columns across threads.
            MatmulCase(m: 3, n: 1100, k: 40, dtype: .f16, layout: .kn, accumulate: true),
            MatmulCase(m: 5, n: 600, k: 47, dtype: .bf16, layout: .nk, bias: true),
        ]
        return cases
    }()
}

@Test(arguments: MatmulCase.all)
func matmul(_ c: MatmulCase) {
    var rng = caseRNG("matmul \(c.testDescription)")
    // A lone output is one dot product, and a random one can cancel to almost nothing, where
    // its relative error measures the luck of the draw rather than the kernel: such cases get
    // non-negative operands.
    let lower: Float = c.outShape.reduce(1, *) == 1 ? 0 : -1
    let x = rng.uniforms(c.xShape.reduce(1, *), lower, 1)
    let w = rng.uniforms(c.wShape.reduce(1, *), lower, 1)
    let bias = rng.uniforms(c.n)
    let previous = rng.uniforms(c.outShape.reduce(1, *))
    checkAgainstReference("matmul \(c.testDescription)", maxNMSE: Tolerance.accumulated) { run in
        let xt = try run.input(x, c.xShape), wt = try run.input(w, c.wShape, c.dtype)
        let bt = c.bias ? try run.input(bias, [c.n]) : nil
        let out = try run.output("out", c.outShape, initial: c.accumulate ? previous : nil)
        try run.backend.matmul(xt, wt, layout: c.layout, bias: bt, accumulate: c.accumulate, out: out)
    }
}

// MARK: - attention

struct AttentionCase: Sendable, CustomTestStringConvertible {
    var name: String
    var queryHeads: Int, kvHeads: Int, headDim: Int
    var queryLength: Int, cacheLength: Int
    var starts: [Int], lengths: [Int]
    var window: Int? = nil
    var softcap: Float? = nil
    var scale: Float? = nil

    var qShape: [Int] { [starts.count, queryLength, queryHeads, headDim] }
    var kvShape: [Int] { [starts.count, cacheLength, kvHeads, headDim] }
    var options: AttentionOptions {
        AttentionOptions(scale: scale ?? 1 / Float(headDim).squareRoot(), slidingWindow: window, softcap: softcap)
    }

    var testDescription: String {
        var text = "\(name): q \(shapeName(qShape)), kv \(shapeName(kvShape)), starts \(starts), lengths \(lengths)"
        if let window { text += ", window \(window)" }
        if let softcap { text += ", softcap \(softcap)" }
        return text
    }

    static func prefill(_ name: String, hq: Int, hkv: Int, d: Int, lengths: [Int], t: Int? = nil, s: Int? = nil,
                        window: Int? = nil, softcap: Float? = nil, scale: Float? = nil) -> AttentionCase {
        let t = t ?? lengths.max()!
        return AttentionCase(name: name, queryHeads: hq, kvHeads: hkv, headDim: d, queryLength: t, cacheLength: s ?? t,
                             starts: lengths.map { _ in 0 }, lengths: lengths, window: window, softcap: softcap, scale: scale)
    }

    static let all: [AttentionCase] = [
        prefill("one token", hq: 1, hkv: 1, d: 8, lengths: [1]),
        prefill("prefill MHA", hq: 2, hkv: 2, d: 8, lengths: [7]),
        prefill("prefill GQA 2", hq: 4, hkv: 2, d: 64, lengths: [17]),
        prefill("prefill GQA 7", hq: 14, hkv: 2, d: 8, lengths: [9]),
        prefill("padded batch with an empty sequence", hq: 4, hkv: 2, d: 8, lengths: [13, 5, 0], s: 16),
        prefill("padded batch, all shorter than T", hq: 2, hkv: 1, d: 64, lengths: [3, 11], t: 12),
        // The CPU backend splits queries into blocks of 128: one block and a bit, and a lone row.
        prefill("prefill past one query block", hq: 2, hkv: 1, d: 8, lengths: [150]),
        prefill("padded batch across the block edge", hq: 2, hkv: 2, d: 8, lengths: [131, 129, 2], t: 133),
        prefill("sliding window", hq: 4, hkv: 2, d: 8, lengths: [33], window: 8),
        prefill("window of one", hq: 2, hkv: 1, d: 8, lengths: [6, 4], window: 1),
        prefill("soft-cap", hq: 4, hkv: 4, d: 64, lengths: [19], softcap: 1.5, scale: 1),
        prefill("window, soft-cap and GQA 7", hq: 14, hkv: 2, d: 8, lengths: [21, 0, 12], s: 24, window: 5, softcap: 3, scale: 1),
        prefill("long window and soft-cap past one block", hq: 2, hkv: 1, d: 8, lengths: [160], window: 37, softcap: 20),
        AttentionCase(name: "decode", queryHeads: 4, kvHeads: 2, headDim: 64, queryLength: 1, cacheLength: 24,
                      starts: [5, 0, 20], lengths: [1, 1, 1]),
        AttentionCase(name: "decode GQA 7 with a finished sequence", queryHeads: 14, kvHeads: 2, headDim: 8, queryLength: 1,
                      cacheLength: 17, starts: [16, 9, 3], lengths: [1, 0, 1]),
        AttentionCase(name: "decode sliding window", queryHeads: 2, kvHeads: 1, headDim: 64, queryLength: 1, cacheLength: 40,
                      starts: [30, 2], lengths: [1, 1], window: 5),
        AttentionCase(name: "decode soft-cap", queryHeads: 3, kvHeads: 3, headDim: 8, queryLength: 1, cacheLength: 33,
                      starts: [32], lengths: [1], softcap: 2, scale: 1),
        AttentionCase(name: "chunked prefill", queryHeads: 4, kvHeads: 2, headDim: 8, queryLength: 9, cacheLength: 24,
                      starts: [4, 11, 0], lengths: [9, 6, 0]),
        AttentionCase(name: "chunked prefill with window", queryHeads: 4, kvHeads: 1, headDim: 64, queryLength: 7, cacheLength: 27,
                      starts: [20, 3], lengths: [7, 2], window: 6),
        AttentionCase(name: "chunked prefill past one block", queryHeads: 2, kvHeads: 1, headDim: 8, queryLength: 140, cacheLength: 150,
                      starts: [10], lengths: [140]),
    ]
}

@Test(arguments: AttentionCase.all)
func attention(_ c: AttentionCase) {
    var rng = caseRNG("attention \(c.testDescription)")
    // Every cache row is random, including rows past each query's position, so reading a key
    // the mask should hide changes the result.
    let q = rng.uniforms(c.qShape.reduce(1, *))
    let k = rng.uniforms(c.kvShape.reduce(1, *)), v = rng.uniforms(c.kvShape.reduce(1, *))
    let batch = SequenceBatch(starts: c.starts, lengths: c.lengths)
    checkAgainstReference("attention \(c.testDescription)", maxNMSE: Tolerance.accumulated) { run in
        let qt = try run.input(q, c.qShape), kt = try run.input(k, c.kvShape), vt = try run.input(v, c.kvShape)
        // Poisoned, so padding rows left unwritten fail rather than pass as stale zeros.
        let out = try run.output("out", c.qShape)
        try run.backend.attention(q: qt, k: kt, v: vt, batch: batch, options: c.options, out: out)
    }
}

// MARK: - cacheAppend

struct CacheAppendCase: Sendable, CustomTestStringConvertible {
    var dtype: DType
    var rowShape: [Int]
    var queryLength: Int, cacheLength: Int
    var starts: [Int], lengths: [Int]

    var newShape: [Int] { [starts.count, queryLength] + rowShape }
    var cacheShape: [Int] { [starts.count, cacheLength] + rowShape }
    var testDescription: String {
        "\(dtype) new \(shapeName(newShape)) into \(shapeName(cacheShape)), starts \(starts), lengths \(lengths)"
    }

    static let all: [CacheAppendCase] = [
        CacheAppendCase(dtype: .f32, rowShape: [2, 8], queryLength: 7, cacheLength: 7, starts: [0], lengths: [7]),
        CacheAppendCase(dtype: .f32, rowShape: [3, 17], queryLength: 5, cacheLength: 19, starts: [0, 14, 3], lengths: [5, 5, 0]),
        CacheAppendCase(dtype: .f32, rowShape: [1, 64], queryLength: 1, cacheLength: 33, starts: [32, 0, 17], lengths: [1, 1, 0]),
        CacheAppendCase(dtype: .f32, rowShape: [], queryLength: 9, cacheLength: 12, starts: [3, 0], lengths: [9, 4]),
        CacheAppendCase(dtype: .f16, rowShape: [2, 33], queryLength: 4, cacheLength: 10, starts: [6, 1], lengths: [4, 3]),
        CacheAppendCase(dtype: .bf16, rowShape: [7], queryLength: 3, cacheLength: 5, starts: [2, 0, 4], lengths: [3, 0, 1]),
        CacheAppendCase(dtype: .f32, rowShape: [2, 8], queryLength: 131, cacheLength: 140, starts: [0, 9], lengths: [131, 127]),
    ]
}

@Test(arguments: CacheAppendCase.all)
func cacheAppend(_ c: CacheAppendCase) {
    var rng = caseRNG("cacheAppend \(c.testDescription)")
    // Padding rows of `new` are random too: copying one of them overwrites a cache row that
    // must survive.
    let new = rng.uniforms(c.newShape.reduce(1, *))
    let cache = rng.uniforms(c.cacheShape.reduce(1, *))
    let batch = SequenceBatch(starts: c.starts, lengths: c.lengths)
    checkAgainstReference("cacheAppend \(c.testDescription)", maxNMSE: Tolerance.exact) { run in
        let newTensor = try run.input(new, c.newShape, c.dtype)
        let cacheTensor = try run.output("cache", c.cacheShape, c.dtype, initial: cache)
        try run.backend.cacheAppend(newTensor, into: cacheTensor, batch: batch)
    }
}

// MARK: - psrHead

struct PSRHeadCase: Sendable, CustomTestStringConvertible {
    var name: String
    var rows: Int, dim: Int
    var activations: [PSRActivation]
    /// Every this-many-th row has head -1.
    var unsteeredEvery: Int? = nil
    /// Every this-many-th row has alpha 0.
    var zeroAlphaEvery: Int? = nil

    var testDescription: String {
        "\(name): h \(rows)x\(dim), heads \(activations.map { "\($0)" }.joined(separator: ","))"
    }

    static let all: [PSRHeadCase] = [
        PSRHeadCase(name: "one row", rows: 1, dim: 17, activations: [.relu]),
        PSRHeadCase(name: "relu", rows: 33, dim: 64, activations: [.relu]),
        PSRHeadCase(name: "identity", rows: 7, dim: 33, activations: [.identity]),
        PSRHeadCase(name: "constant", rows: 9, dim: 3, activations: [.constant], zeroAlphaEvery: 4),
        PSRHeadCase(name: "mixed heads", rows: 40, dim: 33, activations: [.relu, .identity, .constant],
                    unsteeredEvery: 5, zeroAlphaEvery: 7),
        PSRHeadCase(name: "no row steered", rows: 5, dim: 16, activations: [.relu, .identity], unsteeredEvery: 1),
        PSRHeadCase(name: "every alpha zero", rows: 6, dim: 17, activations: [.identity, .constant], zeroAlphaEvery: 1),
        PSRHeadCase(name: "tiny rows", rows: 11, dim: 1, activations: [.relu, .relu, .identity], unsteeredEvery: 3),
        // At least two of the CPU backend's per-thread grains (256 rows), so rows split across threads.
        PSRHeadCase(name: "many rows", rows: 520, dim: 8, activations: [.relu, .constant, .identity, .relu],
                    unsteeredEvery: 6, zeroAlphaEvery: 9),
        PSRHeadCase(name: "wide rows", rows: 3, dim: 127, activations: [.identity, .relu, .constant]),
    ]
}

@Test(arguments: PSRHeadCase.all)
func psrHead(_ c: PSRHeadCase) {
    var rng = caseRNG("psrHead \(c.testDescription)")
    let (n, d, kCount) = (c.rows, c.dim, c.activations.count)
    let w = rng.uniforms(kCount * d), z = rng.uniforms(kCount * d), bias = rng.uniforms(kCount, -0.5, 0.5)
    var index = [Int32](repeating: -1, count: n), alpha = [Float](repeating: 0, count: n)
    for row in 0..<n {
        if let every = c.unsteeredEvery, row % every == 0 { index[row] = -1 } else { index[row] = Int32(rng.int(0..<kCount)) }
        let magnitude = rng.uniform(0.5, 3)
        alpha[row] = (c.zeroAlphaEvery.map { row % $0 == 0 } ?? false) ? 0 : (rng.next() & 1 == 0 ? magnitude : -magnitude)
    }
    // Each head's rows alternate between a positive and a negative pre-activation, at least
    // 0.1 away from zero: ReLU's zero is exercised without rows so close to the kink that
    // rounding could pick the other side.
    var h = rng.uniforms(n * d)
    var seen = [Int](repeating: 0, count: kCount)
    for row in 0..<n where index[row] >= 0 {
        let k = Int(index[row])
        var pre = Double(bias[k]), norm = 0.0
        for i in 0..<d {
            pre += Double(w[k * d + i]) * Double(h[row * d + i])
            norm += Double(w[k * d + i]) * Double(w[k * d + i])
        }
        let target = Double(rng.uniform(0.1, 1)) * (seen[k] % 2 == 0 ? 1 : -1)
        seen[k] += 1
        for i in 0..<d { h[row * d + i] += Float((target - pre) / norm * Double(w[k * d + i])) }
    }
    checkAgainstReference("psrHead \(c.testDescription)", maxNMSE: Tolerance.accumulated) { run in
        let heads = PSRHeads(w: try run.input(w, [kCount, d]), bias: try run.input(bias, [kCount]),
                             z: try run.input(z, [kCount, d]),
                             activation: try run.input(ints: c.activations.map(\.rawValue), [kCount]))
        let indexTensor = try run.input(ints: index, [n]), alphaTensor = try run.input(alpha, [n])
        let hTensor = try run.output("h", [n, d], initial: h)
        let lambda = try run.output("lambda", [n])
        try run.backend.psrHead(hTensor, heads: heads, headIndex: indexTensor, alpha: alphaTensor, lambda: lambda)
    }
}
