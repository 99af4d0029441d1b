/// f32 values into ggml blocks, so tests and benchmarks can make quantized weights from any
/// values. q8_0, q4_0 and q4_1 follow ggml's quantize_row_*_ref exactly; q4_K uses a plain
/// min/max fit per sub-block (ggml searches for better scales), which is a valid q4_K encoding
/// and all a kernel test needs.
extension QuantizedBlocks {
    /// `values.count` must be a multiple of the block size (returns nil otherwise, or for a dense dtype).
    public static func quantize(_ values: [Float], as dtype: DType) -> [UInt8]? {
        let block = dtype.blockElements
        guard dtype.isQuantized, values.count % block == 0 else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(dtype.byteCount(elements: values.count))
        for start in stride(from: 0, to: values.count, by: block) {
            let x = Array(values[start ..< start + block])
            switch dtype {
            case .q8_0: out += q8_0(x)
            case .q4_0: out += q4_0(x)
            case .q4_1: out += q4_1(x)
            default: out += q4_K(x)
            }
        }
        return out
    }

    static func f16Bytes(_ value: Float) -> [UInt8] {
        let bits = HalfConversion.floatToF16(value)
        return [UInt8(bits & 0xFF), UInt8(bits >> 8)]
    }

    static func q8_0(_ x: [Float]) -> [UInt8] {
        let amax = x.map(abs).max() ?? 0
        let d = amax / 127, id = d != 0 ? 1 / d : 0
        return f16Bytes(d) + x.map { UInt8(bitPattern: Int8(($0 * id).rounded(.toNearestOrAwayFromZero))) }
    }

    static func q4_0(_ x: [Float]) -> [UInt8] {
        // The value of largest magnitude, with its sign, maps to -8.
        var max: Float = 0, amax: Float = 0
        for v in x where abs(v) > amax { amax = abs(v); max = v }
        let d = max / -8, id = d != 0 ? 1 / d : 0
        let q = x.map { UInt8(min(15, Int(Int8(truncatingIfNeeded: Int($0 * id + 8.5))))) }
        return f16Bytes(d) + (0..<16).map { q[$0] | (q[$0 + 16] << 4) }
    }

    static func q4_1(_ x: [Float]) -> [UInt8] {
        let lo = x.min() ?? 0, hi = x.max() ?? 0
        let d = (hi - lo) / 15, id = d != 0 ? 1 / d : 0
        let q = x.map { UInt8(min(15, Int(Int8(truncatingIfNeeded: Int(($0 - lo) * id + 0.5))))) }
        return f16Bytes(d) + f16Bytes(lo) + (0..<16).map { q[$0] | (q[$0 + 16] << 4) }
    }

    static func q4_K(_ x: [Float]) -> [UInt8] {
        var scales = [Float](repeating: 0, count: 8), mins = [Float](repeating: 0, count: 8)
        for s in 0..<8 {
            let sub = x[32 * s ..< 32 * s + 32]
            let lo = Swift.min(0, sub.min()!), hi = sub.max()!
            scales[s] = (hi - lo) / 15
            mins[s] = -lo
        }
        let d = (scales.max() ?? 0) / 63, dmin = (mins.max() ?? 0) / 63
        let dHalf = HalfConversion.f16ToFloat(HalfConversion.floatToF16(d))
        let dminHalf = HalfConversion.f16ToFloat(HalfConversion.floatToF16(dmin))
        let ls = scales.map { dHalf > 0 ? UInt8(Swift.min(63, ($0 / dHalf).rounded())) : 0 }
        let lm = mins.map { dminHalf > 0 ? UInt8(Swift.min(63, ($0 / dminHalf).rounded())) : 0 }
        var packed = [UInt8](repeating: 0, count: 12)
        for j in 0..<8 {
            if j < 4 {
                packed[j] = ls[j]
                packed[j + 4] = lm[j]
            } else {
                packed[j + 4] = (ls[j] & 0x0F) | ((lm[j] & 0x0F) << 4)
                packed[j - 4] |= (ls[j] >> 4) << 6
                packed[j] |= (lm[j] >> 4) << 6
            }
        }
        var q = [UInt8](repeating: 0, count: 256)
        for s in 0..<8 {
            let d1 = dHalf * Float(ls[s]), m1 = dminHalf * Float(lm[s])
            for l in 0..<32 {
                let v = d1 > 0 ? ((x[32 * s + l] + m1) / d1).rounded() : 0
                q[32 * s + l] = UInt8(Swift.max(0, Swift.min(15, v)))
            }
        }
        let qs = (0..<128).map { i -> UInt8 in
            let c = i / 32, l = i % 32
            return q[64 * c + l] | (q[64 * c + 32 + l] << 4)
        }
        return f16Bytes(d) + f16Bytes(dmin) + packed + qs
    }
}
