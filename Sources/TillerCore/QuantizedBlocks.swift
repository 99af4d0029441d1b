/// ggml's quantized blocks (ggml-common.h, ggml-quants.c), the formats of `DType.q8_0`, `.q4_0`,
/// `.q4_1` and `.q4_K`, in plain Swift: the reference every backend's kernel is tested against, and
/// what turns such weights back into f32 on the host.
///
///   q8_0: d (f16), qs[32] (i8)                value j = d * qs[j]
///   q4_0: d (f16), qs[16] (two 4-bit each)    value j = d * (nibble j - 8), nibble j of the low
///         halves for j < 16 (qs[j] & 15) and of the high halves for j >= 16 (qs[j - 16] >> 4)
///   q4_1: d, m (f16), qs[16]                  value j = d * nibble j + m
///   q4_K: d, dmin (f16), scales[12], qs[128]  256 values in 8 sub-blocks of 32, sub-block s with
///         a 6-bit scale sc and min mn (packed as in get_scale_min_k4): value = d * sc * q - dmin * mn;
///         sub-blocks 2c and 2c + 1 take the low and high nibbles of qs[32c ..< 32c + 32].
///
/// The decoders do the operations of ggml's dequantize_row_* in the same order, so the values are
/// the ones llama.cpp computes.
public enum QuantizedBlocks {
    /// Dequantizes `count` values (a multiple of the block size) of `dtype` from `source`, which
    /// holds `dtype.byteCount(elements: count)` bytes. Dense float types are widened.
    public static func dequantize(_ dtype: DType, _ source: UnsafeRawPointer, count: Int, into out: UnsafeMutablePointer<Float>) {
        let block = dtype.blockElements, bytes = dtype.blockBytes
        switch dtype {
        case .q8_0, .q4_0, .q4_1, .q4_K:
            for b in 0..<count / block { decodeBlock(dtype, source + b * bytes, out + b * block) }
        default:
            for i in 0..<count { out[i] = HostEncoding.load(source, dtype, i) }
        }
    }

    /// One block's values into `y` (blockElements floats).
    public static func decodeBlock(_ dtype: DType, _ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        switch dtype {
        case .q8_0:
            let d = half(x, 0)
            for j in 0..<32 { y[j] = Float(x.load(fromByteOffset: 2 + j, as: Int8.self)) * d }
        case .q4_0:
            let d = half(x, 0)
            for j in 0..<16 {
                let q = byte(x, 2 + j)
                y[j] = Float(Int(q & 0x0F) - 8) * d
                y[j + 16] = Float(Int(q >> 4) - 8) * d
            }
        case .q4_1:
            let d = half(x, 0), m = half(x, 2)
            for j in 0..<16 {
                let q = byte(x, 4 + j)
                y[j] = Float(q & 0x0F) * d + m
                y[j + 16] = Float(q >> 4) * d + m
            }
        case .q4_K:
            let d = half(x, 0), dmin = half(x, 2)
            for c in 0..<4 {
                let (sc1, m1) = scaleMin(2 * c, x + 4), (sc2, m2) = scaleMin(2 * c + 1, x + 4)
                let d1 = d * sc1, min1 = dmin * m1, d2 = d * sc2, min2 = dmin * m2
                for l in 0..<32 {
                    let q = byte(x, 16 + 32 * c + l)
                    y[64 * c + l] = d1 * Float(q & 0x0F) - min1
                    y[64 * c + 32 + l] = d2 * Float(q >> 4) - min2
                }
            }
        default:
            break
        }
    }

    /// Element i of a quantized tensor at `base` (the reference backend reads weights this way).
    public static func value(_ base: UnsafeRawPointer, _ dtype: DType, _ i: Int) -> Float {
        let block = dtype.blockElements
        var values = [Float](repeating: 0, count: block)
        values.withUnsafeMutableBufferPointer { decodeBlock(dtype, base + (i / block) * dtype.blockBytes, $0.baseAddress!) }
        return values[i % block]
    }

    /// Scale and min of sub-block j from q4_K's twelve bytes of 6-bit values (get_scale_min_k4).
    @inline(__always) public static func scaleMin(_ j: Int, _ q: UnsafeRawPointer) -> (Float, Float) {
        if j < 4 {
            return (Float(byte(q, j) & 63), Float(byte(q, j + 4) & 63))
        }
        let d = (byte(q, j + 4) & 0x0F) | ((byte(q, j - 4) >> 6) << 4)
        let m = (byte(q, j + 4) >> 4) | ((byte(q, j) >> 6) << 4)
        return (Float(d), Float(m))
    }

    @inline(__always) static func half(_ p: UnsafeRawPointer, _ at: Int) -> Float {
        HalfConversion.f16ToFloat(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: at, as: UInt16.self)))
    }
    @inline(__always) static func byte(_ p: UnsafeRawPointer, _ at: Int) -> UInt8 { p.load(fromByteOffset: at, as: UInt8.self) }
}
