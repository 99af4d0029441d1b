import CTillerKernels
import Foundation
import Testing
import TillerCore

/// The 16-bit GEMV is compiled three times and picked by CPU features at run time; the op suite
/// only reaches the build this machine picks. Here every build this CPU can run is compared
/// with the reference on shapes with tails (K not a multiple of 16) and each row count 1...8.
@Suite struct KernelISATests {
    @Test(arguments: ["avx512", "avx2", "baseline"])
    func gemv16MatchesReference(isa: String) throws {
        let ref = ReferenceBackend()
        var rng = SplitMix64(seed: 0x15A)
        for dtype in [DType.bf16, .f16] {
            for m in 1...8 {
                let (n, k) = (13, 37)
                let xValues = rng.uniforms(m * k), wValues = rng.uniforms(n * k)
                let w = try ref.tensor(wValues, shape: [n, k], dtype: dtype)
                let expected = try ref.empty([m, n])
                try ref.matmul(ref.tensor(xValues, shape: [m, k]), w, layout: .nk, bias: nil, accumulate: false, out: expected)
                let weightBits = try ref.bytes(w).withUnsafeBytes { Array($0.bindMemory(to: UInt16.self)) }
                var out = [Float](repeating: .nan, count: m * n)
                let status = tiller_gemv16_nk_isa(isa, xValues, m, k, weightBits, dtype == .bf16 ? 1 : 0, 0, n, &out, n, 0)
                if status != 0 { return }  // this CPU cannot run that build
                let reference = try ref.floats(expected)
                let error = zip(out, reference).map { ($0 - $1) * ($0 - $1) }.reduce(0, +)
                let scale = reference.map { $0 * $0 }.reduce(0, +)
                #expect(error / scale < 1e-10, "\(isa) \(dtype) m=\(m): nmse \(error / scale)")
            }
        }
    }
}

extension KernelISATests {
    /// The softmax numerator of each build against exp in Double, on lengths with tails and a
    /// spread of magnitudes (large negative differences underflow towards zero).
    @Test(arguments: ["avx512", "avx2", "baseline"])
    func expMinusMaxMatchesLibm(isa: String) {
        var rng = SplitMix64(seed: 0xE4)
        for n in [1, 5, 16, 17, 100] {
            var values = rng.uniforms(n, -30, 10)
            // The kernel subtracts the max in f32, as any f32 softmax does; so does the expectation.
            let largest = values.max()!
            let expected = values.map { Foundation.exp(Double($0 - largest)) }
            var total: Float = 0
            if tiller_exp_minus_max_isa(isa, &values, n, &total) != 0 { return }
            for (got, want) in zip(values, expected) {
                #expect(abs(Double(got) - want) <= 2e-7 * max(want, 1e-30) + 1e-38, "\(isa) n=\(n): \(got) vs \(want)")
            }
            #expect(abs(Double(total) - expected.reduce(0, +)) <= 1e-6 * expected.reduce(0, +), "\(isa) n=\(n) sum")
        }
    }
}

extension KernelISATests {
    /// The decode and batched-decode matmul kernels (tiller_matmul_nk, tiller_matmul_xt), every
    /// build this CPU runs, every weight dtype, row counts around their block sizes and both
    /// kernels' ranges, N and K with tails, with and without accumulation, each output column
    /// range split in two as the backend's threads split it.
    @Test(arguments: ["avx512", "avx2", "baseline"])
    func decodeMatmulKernelsMatchReference(isa: String) throws {
        let ref = ReferenceBackend()
        var rng = SplitMix64(seed: 0x3A7)
        for dtype in [DType.f32, .bf16, .f16] {
            for m in [1, 2, 3, 4, 5, 8, 9, 15, 16, 17, 24, 31, 32, 33, 47, 48] {
                for (n, k) in [(29, 37), (50, 16), (7, 130)] {
                    let xValues = rng.uniforms(m * k), wValues = rng.uniforms(n * k)
                    let initial = rng.uniforms(m * n)
                    let w = try ref.tensor(wValues, shape: [n, k], dtype: dtype)
                    let weightBytes = try ref.bytes(w)
                    let type: Int32 = dtype == .f32 ? 0 : dtype == .bf16 ? 1 : 2
                    for accumulate in [false, true] {
                        let expected = try ref.tensor(initial, shape: [m, n])
                        try ref.matmul(ref.tensor(xValues, shape: [m, k]), w, layout: .nk, bias: nil, accumulate: accumulate, out: expected)
                        let reference = try ref.floats(expected)
                        let split = n / 2
                        // The dot-product kernel serves m <= 8 in the backend, but is correct for any m.
                        var out = accumulate ? initial : [Float](repeating: .nan, count: m * n)
                        var status: Int32 = 0
                        weightBytes.withUnsafeBytes { wp in
                            for (j0, j1) in [(0, split), (split, n)] {
                                status |= tiller_matmul_nk_isa(isa, xValues, m, k, wp.baseAddress, type, j0, j1, &out, n, accumulate ? 1 : 0)
                            }
                        }
                        if status != 0 { return }  // this CPU cannot run that build
                        check(out, reference, "\(isa) nk \(dtype) m=\(m) n=\(n) k=\(k) accumulate=\(accumulate)")

                        var xt = [Float](repeating: .nan, count: k * tiller_xt_width(m))
                        tiller_pack_xt(xValues, m, k, &xt)
                        var buffer = [Float](repeating: .nan, count: max(tiller_xt_tile_rows(m), 4) * k)
                        out = accumulate ? initial : [Float](repeating: .nan, count: m * n)
                        weightBytes.withUnsafeBytes { wp in
                            for (j0, j1) in [(0, split), (split, n)] {
                                status |= tiller_matmul_xt_isa(isa, xt, m, k, wp.baseAddress, type, j0, j1, &buffer, &out, n, accumulate ? 1 : 0)
                            }
                        }
                        #expect(status == 0)
                        check(out, reference, "\(isa) xt \(dtype) m=\(m) n=\(n) k=\(k) accumulate=\(accumulate)")
                    }
                }
            }
        }
    }

    private func check(_ out: [Float], _ reference: [Float], _ label: String) {
        let error = zip(out, reference).map { Double($0 - $1) * Double($0 - $1) }.reduce(0, +)
        let scale = reference.map { Double($0) * Double($0) }.reduce(0, +)
        #expect(error / scale < 1e-10, "\(label): nmse \(error / scale)")
    }
}

extension KernelISATests {
    /// The gated activations of each build against SiLU and tanh-GELU in Double, on lengths with
    /// tails and inputs from deep negative to large positive.
    @Test(arguments: ["avx512", "avx2", "baseline"])
    func gatedActivationMatchesDouble(isa: String) {
        var rng = SplitMix64(seed: 0x6A7E)
        for kind: Int32 in [0, 1] {
            for n in [1, 15, 16, 33, 1000] {
                let gate = rng.uniforms(n, -30, 30), up = rng.uniforms(n, -2, 2)
                var out = [Float](repeating: .nan, count: n)
                if tiller_gated_activation_isa(isa, kind, gate, up, &out, n) != 0 { return }
                for i in 0..<n {
                    let g = Double(gate[i])
                    let act = kind == 0 ? g / (1 + exp(-g)) : 0.5 * g * (1 + tanh(0.7978845608028654 * (g + 0.044715 * g * g * g)))
                    let want = act * Double(up[i])
                    #expect(abs(Double(out[i]) - want) <= 1e-5 * abs(want) + 1e-6, "\(isa) kind \(kind) n=\(n) x=\(gate[i]): \(out[i]) vs \(want)")
                }
            }
        }
    }
}

extension KernelISATests {
    /// The gated activations' backward of each build against the derivatives in Double, on
    /// lengths with tails and inputs from deep negative to large positive (away from the slopes'
    /// roots, where f32's error is absolute).
    @Test(arguments: ["avx512", "avx2", "baseline"])
    func gatedActivationBackwardMatchesDouble(isa: String) {
        var rng = SplitMix64(seed: 0x6A7F)
        for kind: Int32 in [0, 1] {
            for n in [1, 15, 16, 33, 1000] {
                let gate = rng.uniforms(n, -30, 30).map { abs($0 + 1) < 0.5 ? $0 + 2 : $0 }
                let up = rng.uniforms(n, -2, 2), grad = rng.uniforms(n, -1, 1)
                var gradGate = [Float](repeating: .nan, count: n), gradUp = gradGate
                if tiller_gated_activation_backward_isa(isa, kind, gate, up, grad, &gradGate, &gradUp, n) != 0 { return }
                for i in 0..<n {
                    let x = Double(gate[i]), value: Double, slope: Double
                    if kind == 0 {
                        let s = 1 / (1 + exp(-x))
                        (value, slope) = (x * s, s * (1 + x * (1 - s)))
                    } else {
                        let c = 0.7978845608028654, th = tanh(c * (x + 0.044715 * x * x * x))
                        (value, slope) = (0.5 * x * (1 + th), 0.5 * (1 + th) + 0.5 * x * (1 - th * th) * c * (1 + 3 * 0.044715 * x * x))
                    }
                    let wantGate = Double(grad[i]) * Double(up[i]) * slope, wantUp = Double(grad[i]) * value
                    #expect(abs(Double(gradGate[i]) - wantGate) <= 1e-5 * abs(wantGate) + 1e-6, "\(isa) kind \(kind) n=\(n) x=\(gate[i]): gradGate \(gradGate[i]) vs \(wantGate)")
                    #expect(abs(Double(gradUp[i]) - wantUp) <= 1e-5 * abs(wantUp) + 1e-6, "\(isa) kind \(kind) n=\(n) x=\(gate[i]): gradUp \(gradUp[i]) vs \(wantUp)")
                }
            }
        }
    }
}

extension KernelISATests {
    /// The quantized GEMV and panel dequantizer of each build (gemv_quant.c) against the reference's
    /// dequantization: every type, each row count 1...8, a column range that starts past 0.
    @Test(arguments: ["avx512", "avx2", "baseline"])
    func quantizedKernelsMatchReference(isa: String) throws {
        let ref = ReferenceBackend()
        var rng = SplitMix64(seed: 0x0A4)
        for (code, dtype) in [DType.q8_0, .q4_0, .q4_1, .q4_K].enumerated() {
            let (n, k) = (11, 2 * 256)
            let wValues = rng.uniforms(n * k)
            let w = try ref.tensor(wValues, shape: [n, k], dtype: dtype)
            let blocks = try ref.bytes(w)
            var dequantized = [Float](repeating: .nan, count: n * k)
            if tiller_dequantize_blocks_isa(isa, blocks, Int32(code), n * k / dtype.blockElements, &dequantized) != 0 { return }
            #expect(dequantized == blocks.withUnsafeBytes { HostEncoding.decode($0, as: dtype) }, "\(isa) \(dtype): dequantized blocks differ")
            for m in 1...8 {
                let xValues = rng.uniforms(m * k)
                let expected = try ref.empty([m, n])
                try ref.matmul(ref.tensor(xValues, shape: [m, k]), w, layout: .nk, bias: nil, accumulate: false, out: expected)
                var out = [Float](repeating: .nan, count: m * n)
                for i in 0..<m { out[i * n] = 0 }  // column 0 is left to the caller: not computed below
                let status = tiller_gemv_quant_nk_isa(isa, xValues, m, k, blocks, Int32(code), 1, n, &out, n, 0)
                if status != 0 { return }
                var reference = try ref.floats(expected)
                for i in 0..<m { reference[i * n] = 0 }
                let error = zip(out, reference).map { ($0 - $1) * ($0 - $1) }.reduce(0, +)
                let scale = reference.map { $0 * $0 }.reduce(0, +)
                #expect(error / scale < 1e-10, "\(isa) \(dtype) m=\(m): nmse \(error / scale)")
            }
        }
    }
}
