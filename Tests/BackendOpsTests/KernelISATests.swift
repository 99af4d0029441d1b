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
