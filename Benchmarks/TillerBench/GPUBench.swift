import Foundation
import TillerCore
import TillerVulkan

/// PyTorch's figures for the GPU suite's shapes, measured by Benchmarks/gpu_reference.py on the
/// same machine just before this run. Missing entries leave the row without a ratio.
struct TorchReferences: Codable {
    var device: String?
    var sgemm_f32_gflops: Double?
    var matmul_f16_gflops: Double?
    var sdpa_gflops: Double?
    var copy_gbps: Double?

    static func load(_ path: String) throws -> TorchReferences {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        return try JSONDecoder().decode(TorchReferences.self, from: data)
    }
}

/// The GPU targets: f32 matmul at 4096^3 >= 0.5x cuBLAS sgemm (TF32 off); f16 weights
/// >= 0.5x torch fp16 matmul; PSR head >= 0.7x copy bandwidth; attention at T = 4096 >= 0.3x SDPA.
enum GPUBench {
    static let size = 4096
    static let attention = (t: 4096, hq: 32, hkv: 8, d: 128)
    static let psr = (rows: 16384, dim: 4096)

    static func run(_ bench: BenchRun, vulkan: VulkanBackend, torch: TorchReferences) throws {
        var rng = SplitMix64(seed: 0x6770_75)
        let sync = { try vulkan.synchronize() }

        for (dtype, name, reference, target) in [(DType.f32, "matmul/f32", torch.sgemm_f32_gflops, 0.5),
                                                  (.f16, "matmul/f16", torch.matmul_f16_gflops, 0.5),
                                                  (.bf16, "matmul/bf16", torch.matmul_f16_gflops, 0.0)] {
            let n = bench.quick ? 1024 : size
            let shape = "M=N=K=\(n)"
            guard bench.selected(name, shape) else { continue }
            let x = try vulkan.tensor(rng.uniforms(n * n), shape: [n, n])
            let w = try vulkan.tensor(rng.uniforms(n * n), shape: [n, n], dtype: dtype)
            let out = try vulkan.empty([n, n])
            let m = try measureInterleaved(bench.plan, synchronize: sync, [
                { try vulkan.matmul(x, w, layout: .nk, bias: nil, accumulate: false, out: out) },
            ])[0]
            let gflops = 2 * pow(Double(n), 3) / m.median / 1e9
            bench.record(row(name, shape, gflops, "GFLOP/s", m, reference: reference.map { ("torch", $0) },
                             target: target > 0 ? target : nil))
        }

        let a = attention
        let attentionShape = "T=\(a.t) Hq=\(a.hq) Hkv=\(a.hkv) D=\(a.d)"
        if bench.selected("attention/causal", attentionShape) {
            let t = bench.quick ? 1024 : a.t
            let q = try vulkan.tensor(rng.uniforms(t * a.hq * a.d), shape: [1, t, a.hq, a.d])
            let k = try vulkan.tensor(rng.uniforms(t * a.hkv * a.d), shape: [1, t, a.hkv, a.d])
            let v = try vulkan.tensor(rng.uniforms(t * a.hkv * a.d), shape: [1, t, a.hkv, a.d])
            let out = try vulkan.empty([1, t, a.hq, a.d])
            let options = AttentionOptions(scale: 1 / Float(a.d).squareRoot())
            let m = try measureInterleaved(bench.plan, synchronize: sync, [
                { try vulkan.attention(q: q, k: k, v: v, batch: SequenceBatch(lengths: [t]), options: options, out: out) },
            ])[0]
            let flops = 4.0 * Double(a.hq * a.d) * Double(t) * Double(t + 1) / 2
            bench.record(row("attention/causal", attentionShape, flops / m.median / 1e9, "GFLOP/s", m,
                             reference: torch.sdpa_gflops.map { ("torch SDPA", $0) }, target: 0.3))
        }

        let p = psr
        let psrShape = "N=\(p.rows) d=\(p.dim)"
        if bench.selected("psr/1-head", psrShape) {
            let rows = bench.quick ? 2048 : p.rows
            let h = try vulkan.tensor(rng.uniforms(rows * p.dim, -1, 1), shape: [rows, p.dim])
            let copyTarget = try vulkan.empty([rows, p.dim])
            let heads = try vulkan.psrHeads(w: [Float](repeating: 0, count: p.dim), bias: [1],
                                            z: [Float](repeating: 0, count: p.dim), activations: [.relu], dim: p.dim)
            let index = try vulkan.tensor(ints: [Int32](repeating: 0, count: rows), shape: [rows])
            let alpha = try vulkan.tensor([Float](repeating: 1, count: rows), shape: [rows])
            let lambda = try vulkan.empty([rows])
            let results = try measureInterleaved(bench.plan, synchronize: sync, [
                { try vulkan.copy(h, to: copyTarget) },
                { try vulkan.psrHead(h, heads: heads, headIndex: index, alpha: alpha, lambda: lambda) },
            ])
            let traffic = 2.0 * Double(rows * p.dim * 4)
            let copy = traffic / results[0].median / 1e9
            bench.record(row("psr/1-head", psrShape, traffic / results[1].median / 1e9, "GB/s", results[1],
                             reference: ("device copy", copy), target: 0.7))
        }
    }

    static func row(_ name: String, _ shape: String, _ figure: Double, _ unit: String, _ m: Measurement,
                    reference: (String, Double)?, target: Double?) -> Row {
        let ref = ReferenceFigure(name: reference?.0 ?? "none (no --torch)", figure: reference?.1 ?? .nan, seconds: .nan)
        var r = Row(name: name, shape: shape, figure: figure, unit: unit, seconds: m.median, fastestSeconds: m.fastest,
                    callsPerSample: m.callsPerSample, reference: ref, ratio: figure / ref.figure, targets: [])
        if let target, reference != nil { r.targets.append(Target(metric: "ratio", value: r.ratio, atLeast: target)) }
        return r
    }
}
