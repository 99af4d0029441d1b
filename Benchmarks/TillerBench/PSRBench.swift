#if canImport(Glibc)
import Glibc
#endif
import TillerCore

/// The PSR head (`Backend.psrHead`) over N rows of a Qwen2-0.5B-wide residual stream. It reads
/// each row, dots it with w, and writes it back plus lambda * z: a streaming op whose ceiling is
/// memory bandwidth, so the yardstick is memcpy of the same bytes (one read and one write of H).
enum PSRBench {
    static let rows = 4096, dim = 896

    static func run(_ bench: BenchRun) throws {
        let backend = bench.backend
        let shape = "N=\(rows) d=\(dim)"
        let variants: [(name: String, activations: [PSRActivation])] = [
            ("psr/1-head", [.relu]),
            // Rows dealt round-robin to heads with different coefficient functions: the per-row
            // dispatch a mixed batch pays.
            ("psr/4-heads", [.relu, .identity, .constant, .relu]),
        ]
        guard variants.contains(where: { bench.selected($0.name, shape) }) else { return }

        var rng = SplitMix64(seed: 0x7073_7268)
        let bytes = rows * dim * MemoryLayout<Float>.size
        let source = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        let destination = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        defer { source.deallocate(); destination.deallocate() }
        // Touch every page of both buffers so no sample pays first-touch page faults.
        memset(source, 1, bytes)
        memset(destination, 0, bytes)

        let h = try backend.tensor(rng.uniforms(rows * dim), shape: [rows, dim])
        let alpha = try backend.tensor([Float](repeating: 1, count: rows), shape: [rows])
        let lambda = try backend.empty([rows])

        for variant in variants where bench.selected(variant.name, shape) {
            let k = variant.activations.count
            // The op runs in place thousands of times, so h must not drift to infinity: w lives
            // on even coordinates and z on odd ones, so w . h never changes and h grows only
            // linearly by a tiny z. The bias keeps every coefficient positive, so every row is
            // written back and the bytes counted really move.
            var w = [Float](repeating: 0, count: k * dim), z = [Float](repeating: 0, count: k * dim)
            for head in 0..<k {
                for i in stride(from: 0, to: dim, by: 2) { w[head * dim + i] = rng.uniform(-0.01, 0.01) }
                for i in stride(from: 1, to: dim, by: 2) { z[head * dim + i] = rng.uniform(-1e-4, 1e-4) }
            }
            let heads = try backend.psrHeads(w: w, bias: [Float](repeating: 1, count: k), z: z,
                                             activations: variant.activations, dim: dim)
            let headIndex = try backend.tensor(ints: (0..<rows).map { Int32($0 % k) }, shape: [rows])

            let results = try measureInterleaved(bench.plan, [
                { _ = memcpy(destination, source, bytes) },
                { try backend.psrHead(h, heads: heads, headIndex: headIndex, alpha: alpha, lambda: lambda) },
            ])
            // Both sides are credited one read and one write of N*d floats; w, z and the per-row
            // scalars are under 1% of that.
            let traffic = 2.0 * Double(bytes)
            let reference = ReferenceFigure(name: "memcpy", figure: traffic / results[0].median / 1e9, seconds: results[0].median)
            let gbps = traffic / results[1].median / 1e9
            var row = Row(name: variant.name, shape: shape, figure: gbps, unit: "GB/s", seconds: results[1].median,
                          fastestSeconds: results[1].fastest, callsPerSample: results[1].callsPerSample,
                          reference: reference, ratio: gbps / reference.figure, targets: [])
            row.targets.append(Target(metric: "ratio", value: row.ratio, atLeast: 0.5))
            bench.record(row)
        }
    }
}
