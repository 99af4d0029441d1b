import COpenBLAS
import TillerCore

/// x[M, K] . W[N, K]^T through `Backend.matmul` (layout .nk, the Hugging Face Linear layout,
/// no bias), with f32 and bf16 weights, against cblas_sgemm called directly on the same f32
/// data: the ratio is what the protocol and the CPU backend's dispatch cost (f32), or what
/// widening 16-bit weights costs or saves (bf16).
enum MatmulBench {
    static let fullRows = [1, 8, 64, 512]
    static let fullShapes = [(n: 896, k: 896), (n: 4864, k: 896), (n: 896, k: 4864)]

    static func run(_ bench: BenchRun) throws {
        let backend = bench.backend
        let rowCounts = bench.quick ? [1, 512] : fullRows
        let shapes = bench.quick ? Array(fullShapes.prefix(2)) : fullShapes
        var rng = SplitMix64(seed: 0x6D61_746D)

        for (n, k) in shapes {
            let label = { (m: Int) in "M=\(m) N=\(n) K=\(k)" }
            guard rowCounts.contains(where: { bench.selected("matmul/f32", label($0)) || bench.selected("matmul/bf16", label($0)) })
            else { continue }
            // Small weights keep the products in a sane range; the values do not change the timing.
            let weights = rng.uniforms(n * k, -0.05, 0.05)
            let w32 = try backend.tensor(weights, shape: [n, k])
            let w16 = try backend.tensor(weights, shape: [n, k], dtype: .bf16)

            for m in rowCounts {
                let shape = label(m)
                let wantF32 = bench.selected("matmul/f32", shape)
                let wantBF16 = bench.selected("matmul/bf16", shape)
                guard wantF32 || wantBF16 else { continue }
                // The bf16 decode target compares with the f32 protocol figure, so that figure
                // is measured (not shown) even when the filter left only bf16 rows.
                let needF32 = wantF32 || (wantBF16 && m <= 8)

                let x = try backend.tensor(rng.uniforms(m * k), shape: [m, k])
                let out = try backend.empty([m, n])
                let referenceOut = try backend.empty([m, n])

                var bodies: [() throws -> Void] = [{
                    // The same call the CPU backend makes for f32 .nk weights, minus everything around it.
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(n), Int32(k),
                                1, x.floatPointer, Int32(k), w32.floatPointer, Int32(k), 0, referenceOut.floatPointer, Int32(n))
                }]
                let f32Index = needF32 ? bodies.count : nil
                if needF32 { bodies.append { try backend.matmul(x, w32, layout: .nk, bias: nil, accumulate: false, out: out) } }
                let bf16Index = wantBF16 ? bodies.count : nil
                if wantBF16 { bodies.append { try backend.matmul(x, w16, layout: .nk, bias: nil, accumulate: false, out: out) } }

                let results = try measureInterleaved(bench.plan, bodies)
                let flops = 2.0 * Double(m) * Double(n) * Double(k)
                let reference = ReferenceFigure(name: "sgemm", figure: flops / results[0].median / 1e9, seconds: results[0].median)

                func row(_ name: String, _ result: Measurement) -> Row {
                    let gflops = flops / result.median / 1e9
                    return Row(name: name, shape: shape, figure: gflops, unit: "GFLOP/s", seconds: result.median,
                               fastestSeconds: result.fastest, callsPerSample: result.callsPerSample,
                               reference: reference, ratio: gflops / reference.figure, targets: [])
                }

                if let f32Index, wantF32 {
                    var r = row("matmul/f32", results[f32Index])
                    if m >= 64 { r.targets.append(Target(metric: "ratio", value: r.ratio, atLeast: 0.95)) }
                    if m == 512 && n == 4864 && k == 896 { r.targets.append(Target(metric: "GFLOP/s", value: r.figure, atLeast: 250)) }
                    bench.record(r)
                }
                if let bf16Index {
                    var r = row("matmul/bf16", results[bf16Index])
                    if m <= 8, let f32Index {
                        // Speed relative to f32 weights through the same protocol: f32 time / bf16 time.
                        r.targets.append(Target(metric: "speed vs f32",
                                                value: results[f32Index].median / results[bf16Index].median, atLeast: 1.0))
                    }
                    bench.record(r)
                }
            }
        }
    }
}

extension Tensor {
    /// Host f32 address for the direct BLAS and memcpy references (the CPU backend keeps
    /// every tensor in host memory).
    var floatPointer: UnsafeMutablePointer<Float> {
        hostPointer!.assumingMemoryBound(to: Float.self)
    }
}
