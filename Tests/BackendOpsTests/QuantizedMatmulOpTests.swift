// matmul with ggml-quantized weights (q8_0, q4_0, q4_1, q4_K) kept in their blocks: every
// backend against the reference, which dequantizes the same stored blocks and multiplies in
// Double. Both sides read identical weight values, so the bound is the f32 accumulation one,
// except where the CPU backend rounds x to int8 (decode shapes, Tolerance.int8Activations).

import Testing
import TillerCore
import TillerCPU

struct QuantizedMatmulCase: Sendable, CustomTestStringConvertible {
    var m: Int, n: Int, k: Int
    var dtype: DType
    var leading: [Int] = []
    var bias = false
    var accumulate = false

    var xShape: [Int] { leading + [m, k] }
    var outShape: [Int] { leading + [m, n] }

    var testDescription: String {
        var parts = ["x \(shapeName(xShape))", "w [\(n), \(k)] \(dtype)"]
        if bias { parts.append("bias") }
        if accumulate { parts.append("accumulate") }
        return parts.joined(separator: ", ")
    }

    static let all: [QuantizedMatmulCase] = {
        var cases: [QuantizedMatmulCase] = []
        for (d, dtype) in [DType.q8_0, .q4_0, .q4_1, .q4_K].enumerated() {
            let block = dtype.blockElements
            // M = 1 and 3: the decode kernels; 17 and 64: panels and sgemm (CPU), several grid
            // layers (Vulkan). N is odd and not a multiple of any thread split; K one block and several.
            for (i, m) in [1, 3, 17, 64].enumerated() {
                let n = [37, 129, 5, 67][(i + d) % 4], k = block * [1, 3, 2, 5][(i + d) % 4]
                cases.append(QuantizedMatmulCase(m: m, n: n, k: k, dtype: dtype,
                                                 bias: (i + d) % 2 == 0, accumulate: (i + d) % 3 == 1))
            }
            // Wide and deep enough for the CPU to split N across threads and W across panels.
            cases.append(QuantizedMatmulCase(m: 2, n: 1103, k: 2 * 256, dtype: dtype, bias: true))
            cases.append(QuantizedMatmulCase(m: 9, n: 1031, k: 512, dtype: dtype, accumulate: true))
            cases.append(QuantizedMatmulCase(m: 3, n: 7, k: block, dtype: dtype, leading: [2]))
        }
        return cases
    }()
}

@Test(arguments: QuantizedMatmulCase.all)
func quantizedMatmul(_ c: QuantizedMatmulCase) {
    var rng = caseRNG("quantized matmul \(c.testDescription)")
    let x = rng.uniforms(c.xShape.reduce(1, *))
    // Offsets per row so q4_1's and q4_K's minimum terms are exercised too.
    let w = (0..<c.n).flatMap { j in rng.uniforms(c.k).map { $0 + Float(j % 3) * 0.25 } }
    let bias = rng.uniforms(c.n)
    let previous = rng.uniforms(c.outShape.reduce(1, *))
    let run: (OpRun) throws -> Void = { run in
        let xt = try run.input(x, c.xShape), wt = try run.input(w, [c.n, c.k], c.dtype)
        let bt = c.bias ? try run.input(bias, [c.n]) : nil
        let out = try run.output("out", c.outShape, initial: c.accumulate ? previous : nil)
        try run.backend.matmul(xt, wt, layout: .nk, bias: bt, accumulate: c.accumulate, out: out)
    }
    let decode = c.m <= 8  // CPUBackend.quantizedGEMVMaxRows: the decode kernel
    checkAgainstReference("quantized matmul \(c.testDescription)",
                          maxNMSE: decode ? Tolerance.int8Activations : Tolerance.accumulated, run)
    // The CPU backend's f32 decode kernel, still the f32 bound.
    let exact = CPUBackend()
    exact.exactQuantizedDecode = true
    for message in compareWithReference("quantized matmul \(c.testDescription), exact decode",
                                        maxNMSE: Tolerance.accumulated, backends: [exact], run) {
        Issue.record(Comment(rawValue: message))
    }
}

extension Tolerance {
    /// The CPU backend's decode kernel rounds each 32 values of x to int8 (step d = max|x| / 127,
    /// error uniform in +-d/2, variance d^2 / 12). For x uniform in [-1, 1] the block maximum is
    /// near 1, so the NMSE of x is (1/127)^2 / 12 / (1/3) ~ 1.9e-5, and as the errors of the terms
    /// are independent the dot products inherit the same NMSE: E[(sum w e)^2] / E[(sum w x)^2] =
    /// var(e) / E[x^2] (a relative error of ~4e-3, the 1/254 per element averaged over the sum).
    /// 1e-4 leaves 5x; a wrong block, scale or offset term gives 1e-2 or more.
    static let int8Activations = 1e-4
}

/// The quantized weights are what the reference reads: its product equals a plain f32 matmul
/// over QuantizedBlocks' dequantization, and that dequantization is close to the values quantized
/// (so a quantizer or decoder that scrambled blocks could not pass the op cases by agreeing with itself).
@Test(arguments: [DType.q8_0, .q4_0, .q4_1, .q4_K])
func quantizedBlocksRoundTrip(_ dtype: DType) throws {
    var rng = caseRNG("quantized round trip \(dtype)")
    let values = rng.uniforms(4 * 256)
    let bytes = try #require(QuantizedBlocks.quantize(values, as: dtype))
    #expect(bytes.count == dtype.byteCount(elements: values.count))
    let decoded = bytes.withUnsafeBytes { HostEncoding.decode($0, as: dtype) }
    // Uniform values in [-1, 1]: 8-bit steps of 1/127, 4-bit steps of 2/15 (q4_K's 6-bit scales
    // round each step by up to 1/126 more), so the NMSE of round-to-nearest is about step^2 / 12 / (1/3).
    let bound: Double = dtype == .q8_0 ? 1e-4 : 2.5e-2
    #expect(nmse(decoded, values) < bound, "\(dtype): NMSE \(nmse(decoded, values))")
    for i in stride(from: 0, to: values.count, by: 97) {
        let one = bytes.withUnsafeBytes { HostEncoding.load($0.baseAddress!, dtype, i) }
        #expect(one == decoded[i])
    }
}

/// Hand-made blocks with known values, so the layout itself (nibble order, scale position, q4_K's
/// packed 6-bit scales) is checked against ggml-common.h and not only against the quantizer.
@Test func quantizedBlockLayouts() {
    func decode(_ bytes: [UInt8], _ dtype: DType) -> [Float] { bytes.withUnsafeBytes { HostEncoding.decode($0, as: dtype) } }
    let two: [UInt8] = [0x00, 0x40]   // f16 2.0
    let half: [UInt8] = [0x00, 0x38]  // f16 0.5
    // q8_0: d = 2, qs = -16...15.
    let q8Bytes: [UInt8] = (0..<32).map { UInt8(bitPattern: Int8($0 - 16)) }
    let q8 = decode(two + q8Bytes, .q8_0)
    let q8Expected: [Float] = (0..<32).map { Float(2 * ($0 - 16)) }
    #expect(q8 == q8Expected)
    // q4_0: byte j holds value j (low nibble) and j + 16 (high nibble), minus 8, times d.
    let nibbles: [UInt8] = (0..<16).map { (j: Int) -> UInt8 in UInt8(j) | (UInt8(15 - j) << 4) }
    let q40 = decode(two + nibbles, .q4_0)
    let low: [Float] = (0..<16).map { Float(2 * ($0 - 8)) }, high: [Float] = (0..<16).map { Float(2 * (7 - $0)) }
    #expect(q40 == low + high)
    // q4_1: d * nibble + m.
    let q41 = decode(two + half + nibbles, .q4_1)
    let low1: [Float] = (0..<16).map { Float(2 * $0) + 0.5 }, high1: [Float] = (0..<16).map { Float(2 * (15 - $0)) + 0.5 }
    #expect(q41 == low1 + high1)
    // q4_K: d = 2, dmin = 0.5; sub-block s has scale s + 1 and min 2s (s >= 4 split over the high
    // bits as get_scale_min_k4 reads them); every quant is s mod 16 in its nibble.
    var scales = [UInt8](repeating: 0, count: 12)
    for s in 0..<8 {
        let sc = UInt8(s + 1 + (s >= 4 ? 16 : 0)), mn = UInt8(2 * s + (s >= 4 ? 32 : 0))
        if s < 4 { scales[s] = sc; scales[s + 4] = mn } else {
            scales[s + 4] = (sc & 0x0F) | ((mn & 0x0F) << 4)
            scales[s - 4] |= (sc >> 4) << 6
            scales[s] |= (mn >> 4) << 6
        }
    }
    let qs: [UInt8] = (0..<128).map { (i: Int) -> UInt8 in
        let c = i / 32
        return UInt8(2 * c) | (UInt8(2 * c + 1) << 4)
    }
    let q4kBytes: [UInt8] = two + half + scales + qs
    let q4k = decode(q4kBytes, .q4_K)
    let expected = (0..<256).map { i -> Float in
        let s = i / 32
        let sc: Float = Float(s + 1 + (s >= 4 ? 16 : 0)), mn: Float = Float(2 * s + (s >= 4 ? 32 : 0))
        let scaled: Float = 2 * sc
        return scaled * Float(s) - 0.5 * mn
    }
    #expect(q4k == expected)
}

let quantizedErrorCases: [ErrorCase] = [
    ErrorCase("matmul", "quantized w in the [K, N] layout", .shape) { b in
        try b.matmul(ones(b, [2, 64]), ones(b, [64, 32], .q8_0), layout: .kn, bias: nil, accumulate: false, out: ones(b, [2, 32]))
    },
    ErrorCase("matmul", "batched quantized w", .shape) { b in
        try b.matmul(ones(b, [2, 3, 32]), ones(b, [2, 4, 32], .q4_0), layout: .nk, bias: nil, accumulate: false, out: ones(b, [2, 3, 4]))
    },
    ErrorCase("matmul", "K of x and a quantized w differ", .shape) { b in
        try b.matmul(ones(b, [2, 32]), ones(b, [3, 64], .q4_1), layout: .nk, bias: nil, accumulate: false, out: ones(b, [2, 3]))
    },
    ErrorCase("embedding", "quantized table", .dtype) { b in
        try b.embedding(table: ones(b, [4, 32], .q8_0), ids: ids(b, [1]), scale: 1, out: ones(b, [1, 32]))
    },
    ErrorCase("tensor", "a quantized row that is not whole blocks", .invalid) { b in
        _ = try Tensor(buffer: b.makeBuffer(byteCount: 1024), shape: [2, 48], dtype: .q4_K)
    },
]

@Test(arguments: quantizedErrorCases)
func rejectsQuantized(_ c: ErrorCase) {
    expectSameRejection(c, on: [ReferenceBackend()] + backendsUnderTest())
}
