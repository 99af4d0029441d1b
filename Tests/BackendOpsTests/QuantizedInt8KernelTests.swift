import CTillerKernels
import Testing
import TillerCore

/// gemv_quant_int8.c, llama.cpp's way of multiplying quantized blocks: x rounded to int8 per 32
/// values, integer dot products per block. The rounding is checked on its own terms (each value
/// within half a step of d, |q| <= 127, s = d * sum q), and every build's product against the
/// reference run on the rounded x (q * d, exactly representable): the integer sums are exact, so
/// only the f32 sums over blocks remain, the same bound as the f32 kernel's.
@Suite struct QuantizedInt8KernelTests {
    @Test func activationRounding() {
        var rng = SplitMix64(seed: 0x1A8)
        let (m, k) = (3, 96)
        var x = rng.uniforms(m * k).map { $0 * 3 }
        for p in 32..<64 { x[p] = 0 }  // an all-zero block: scale 0, no division by it
        x[70] = 40                      // one outlier sets its block's step
        var qs = [Int8](repeating: 0, count: m * k), d = [Float](repeating: .nan, count: m * k / 32)
        var s = d
        tiller_quantize_rows_q8(x, m, k, &qs, &d, &s)
        for b in 0..<(m * k / 32) {
            let block = (32 * b)..<(32 * b + 32)
            let amax = block.map { abs(x[$0]) }.max()!
            #expect(d[b] == amax / 127, "block \(b): d \(d[b]) for max |x| \(amax)")
            #expect(s[b] == d[b] * Float(block.map { Int(qs[$0]) }.reduce(0, +)), "block \(b): s")
            for p in block {
                #expect(abs(Int(qs[p])) <= 127)
                #expect(abs(x[p] - Float(qs[p]) * d[b]) <= d[b] / 2 * 1.0001, "x[\(p)] \(x[p]) as \(qs[p]) * \(d[b])")
            }
        }
    }

    @Test(arguments: ["avx512", "avx2", "baseline"])
    func int8KernelsMatchReferenceOnRoundedX(isa: String) throws {
        let ref = ReferenceBackend()
        var rng = SplitMix64(seed: 0x1A9)
        for (code, dtype) in [DType.q8_0, .q4_0, .q4_1, .q4_K].enumerated() {
            let (n, k) = (11, 2 * 256)
            // Offsets per row so the minimum and offset terms matter.
            let wValues = (0..<n).flatMap { j in rng.uniforms(k).map { $0 + Float(j % 3) * 0.25 } }
            let w = try ref.tensor(wValues, shape: [n, k], dtype: dtype)
            let blocks = try ref.bytes(w)
            for m in 1...8 {
                let x = rng.uniforms(m * k)
                var qs = [Int8](repeating: 0, count: m * k), d = [Float](repeating: 0, count: m * k / 32)
                var s = d
                tiller_quantize_rows_q8(x, m, k, &qs, &d, &s)
                let rounded = (0..<(m * k)).map { Float(qs[$0]) * d[$0 / 32] }
                let expected = try ref.empty([m, n])
                try ref.matmul(ref.tensor(rounded, shape: [m, k]), w, layout: .nk, bias: nil, accumulate: false, out: expected)
                // Accumulating onto 1s, and column 0 left to the caller: not computed below.
                var out = [Float](repeating: 1, count: m * n)
                if tiller_gemv_quant_int8_nk_isa(isa, qs, d, s, m, k, blocks, Int32(code), 1, n, &out, n, 1) != 0 { return }
                var reference = try ref.floats(expected).map { $0 + 1 }
                for i in 0..<m { reference[i * n] = 1 }
                let error = zip(out, reference).map { ($0 - $1) * ($0 - $1) }.reduce(0, +)
                let scale = reference.map { $0 * $0 }.reduce(0, +)
                #expect(error / scale < 1e-10, "\(isa) \(dtype) m=\(m): nmse \(error / scale)")
            }
        }
    }
}

extension QuantizedInt8KernelTests {
    /// A NaN or infinity in x reaches the output, as in f32 (the block maximum alone would skip a NaN).
    @Test func nonFiniteXPropagates() {
        for bad in [Float.nan, .infinity] {
            var x = [Float](repeating: 0.5, count: 64)
            x[40] = bad
            var qs = [Int8](repeating: 0, count: 64), d = [Float](repeating: 0, count: 2), s = d
            tiller_quantize_rows_q8(x, 1, 64, &qs, &d, &s)
            let w = [UInt8](repeating: 0x3C, count: 2 * 34)  // q8_0, d = f16 1.0078, every quant 60
            var out: [Float] = [0]
            tiller_gemv_quant_int8_nk(qs, d, s, 1, 64, w, 0, 0, 1, &out, 1, 0)
            #expect(!out[0].isFinite, "x with \(bad): \(out[0])")
        }
    }
}
