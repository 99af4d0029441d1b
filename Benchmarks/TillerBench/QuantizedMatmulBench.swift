import TillerCore
import TillerCPU

/// x[M, K] . W[N, K]^T through `Backend.matmul` with W kept in ggml blocks (q8_0, q4_0, q4_1,
/// q4_K), against the same weights dequantized to f32 and to bf16 through the same call, samples
/// interleaved. The figure is weight rows x rows of x per second in GFLOP/s terms; the ratio is
/// against the f32 dequantized path, and decode rows also carry the speed against bf16.
/// Shapes are SmolLM2-135M's projections (hidden 576, MLP 1536) and a Qwen2-0.5B-sized one.
enum QuantizedMatmulBench {
    static let types: [DType] = [.q8_0, .q4_0, .q4_1, .q4_K]
    static let shapes = [(n: 1536, k: 576), (n: 576, k: 1536), (n: 4864, k: 896)]

    static func run(_ bench: BenchRun) throws {
        let backend = bench.backend
        let rowCounts = bench.quick ? [1, 64] : [1, 4, 64, 512]
        var rng = SplitMix64(seed: 0x5141_4E54)
        for (n, k) in shapes {
            let weights = rng.uniforms(n * k, -0.05, 0.05)
            for dtype in types where k % dtype.blockElements == 0 {
                let name = "matmul/\(dtype)"
                let label = { (m: Int) in "M=\(m) N=\(n) K=\(k)" }
                guard rowCounts.contains(where: { bench.selected(name, label($0)) }) else { continue }
                let wq = try backend.tensor(weights, shape: [n, k], dtype: dtype)
                // The dequantized paths hold exactly the values the blocks decode to.
                let values = try backend.floats(wq)
                let w32 = try backend.tensor(values, shape: [n, k])
                let w16 = try backend.tensor(values, shape: [n, k], dtype: .bf16)
                for m in rowCounts where bench.selected(name, label(m)) {
                    let x = try backend.tensor(rng.uniforms(m * k), shape: [m, k])
                    let out = try backend.empty([m, n])
                    var calls: [() throws -> Void] = [
                        { try backend.matmul(x, w32, layout: .nk, bias: nil, accumulate: false, out: out) },
                        { try backend.matmul(x, w16, layout: .nk, bias: nil, accumulate: false, out: out) },
                        { try backend.matmul(x, wq, layout: .nk, bias: nil, accumulate: false, out: out) },
                    ]
                    // The CPU's decode rows round x to int8; its f32 decode kernel beside them.
                    let cpu = m <= 8 ? backend as? CPUBackend : nil
                    if let cpu {
                        calls.append {
                            cpu.exactQuantizedDecode = true
                            defer { cpu.exactQuantizedDecode = false }
                            try backend.matmul(x, wq, layout: .nk, bias: nil, accumulate: false, out: out)
                        }
                    }
                    let results = try measureInterleaved(bench.plan, calls)
                    let flops = 2.0 * Double(m) * Double(n) * Double(k)
                    let reference = ReferenceFigure(name: "f32 dequantized", figure: flops / results[0].median / 1e9, seconds: results[0].median)
                    let gflops = flops / results[2].median / 1e9
                    var row = Row(name: name, shape: label(m), figure: gflops, unit: "GFLOP/s", seconds: results[2].median,
                                  fastestSeconds: results[2].fastest, callsPerSample: results[2].callsPerSample,
                                  reference: reference, ratio: gflops / reference.figure, targets: [])
                    if m <= 8 {
                        // Decode streams the weights: blocks must beat the 16-bit GEMV they replace.
                        row.targets.append(Target(metric: "speed vs bf16", value: results[1].median / results[2].median, atLeast: 1.0))
                        if cpu != nil {
                            row.targets.append(Target(metric: "speed vs f32-x kernel", value: results[3].median / results[2].median, atLeast: 1.0))
                        }
                    }
                    bench.record(row)
                }
            }
        }
    }
}
