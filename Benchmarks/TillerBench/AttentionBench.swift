import COpenBLAS
import TillerCore

/// Causal prefill attention (Qwen2-0.5B geometry: 14 query heads, 2 KV heads, head dim 64)
/// through `Backend.attention`. Attention is a pair of matmuls with a softmax between them, so
/// the yardstick is what sgemm itself reaches on this machine: a square f32 product measured in
/// the same run, its samples interleaved with the attention samples.
enum AttentionBench {
    static let queryHeads = 14, kvHeads = 2, headDim = 64
    /// Side of the square reference sgemm: big enough for OpenBLAS to reach its peak.
    static let referenceSide = 1024

    static func run(_ bench: BenchRun) throws {
        let backend = bench.backend
        let lengths = bench.quick ? [128, 512] : [128, 512, 2048]
        let name = "attention/causal"
        let shape = { (t: Int) in "T=\(t) Hq=\(queryHeads) Hkv=\(kvHeads) D=\(headDim)" }
        guard lengths.contains(where: { bench.selected(name, shape($0)) }) else { return }

        var rng = SplitMix64(seed: 0x6174_746E)
        let s = referenceSide
        let a = try backend.tensor(rng.uniforms(s * s), shape: [s, s])
        let b = try backend.tensor(rng.uniforms(s * s), shape: [s, s])
        let c = try backend.empty([s, s])
        let referenceFlops = 2.0 * Double(s) * Double(s) * Double(s)

        for t in lengths where bench.selected(name, shape(t)) {
            let q = try backend.tensor(rng.uniforms(t * queryHeads * headDim), shape: [1, t, queryHeads, headDim])
            // The KV cache holds exactly the T new rows: a fresh prefill.
            let k = try backend.tensor(rng.uniforms(t * kvHeads * headDim), shape: [1, t, kvHeads, headDim])
            let v = try backend.tensor(rng.uniforms(t * kvHeads * headDim), shape: [1, t, kvHeads, headDim])
            let out = try backend.empty([1, t, queryHeads, headDim])
            let batch = SequenceBatch(lengths: [t])
            let options = AttentionOptions(scale: 1.0 / 8.0)

            let results = try measureInterleaved(bench.plan, [
                {
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(s), Int32(s), Int32(s),
                                1, a.floatPointer, Int32(s), b.floatPointer, Int32(s), 0, c.floatPointer, Int32(s))
                },
                { try backend.attention(q: q, k: k, v: v, batch: batch, options: options, out: out) },
            ])
            // Only the causal half counts: q.k^T and p.v each cost 2*D flops per (query, key)
            // pair, and there are T(T+1)/2 pairs per head. Work the kernel spends on the masked
            // half of a block is its own overhead, not credit.
            let pairs = Double(t) * Double(t + 1) / 2
            let flops = 4.0 * Double(queryHeads) * Double(headDim) * pairs
            let reference = ReferenceFigure(name: "sgemm \(s)^3", figure: referenceFlops / results[0].median / 1e9,
                                            seconds: results[0].median)
            let gflops = flops / results[1].median / 1e9
            var row = Row(name: name, shape: shape(t), figure: gflops, unit: "GFLOP/s", seconds: results[1].median,
                          fastestSeconds: results[1].fastest, callsPerSample: results[1].callsPerSample,
                          reference: reference, ratio: gflops / reference.figure, targets: [])
            if t == 2048 { row.targets.append(Target(metric: "ratio", value: row.ratio, atLeast: 0.4)) }
            bench.record(row)
        }
    }
}
