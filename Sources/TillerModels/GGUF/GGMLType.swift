/// The ggml tensor types a GGUF file may hold, with their block layouts (ggml's ggml-common.h):
/// a row of n values is n / blockSize blocks of blockBytes each. Knowing the size of every type
/// lets the reader bounds-check every tensor, including those Tiller cannot dequantize.
public enum GGMLType: UInt32, Sendable, CaseIterable {
    case f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q5_0 = 6, q5_1 = 7, q8_0 = 8, q8_1 = 9
    case q2_K = 10, q3_K = 11, q4_K = 12, q5_K = 13, q6_K = 14, q8_K = 15
    case i8 = 24, i16 = 25, i32 = 26, i64 = 27, f64 = 28, bf16 = 30

    /// Values per block (QK_K = 256 for the K-quants).
    public var blockSize: Int {
        switch self {
        case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q8_1: return 32
        case .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .q8_K: return 256
        default: return 1
        }
    }

    /// Bytes per block: the scales (f16 unless said) and the packed quants.
    public var blockBytes: Int {
        switch self {
        case .f32, .i32: return 4
        case .f16, .bf16, .i16: return 2
        case .i8: return 1
        case .i64, .f64: return 8
        case .q4_0: return 2 + 16            // d, 32 x 4 bits
        case .q4_1: return 4 + 16            // d, m, 32 x 4 bits
        case .q5_0: return 2 + 4 + 16        // d, high bits, low nibbles
        case .q5_1: return 4 + 4 + 16        // d, m, high bits, low nibbles
        case .q8_0: return 2 + 32            // d, 32 x i8
        case .q8_1: return 4 + 32            // d, s, 32 x i8
        case .q2_K: return 16 + 64 + 4       // scales, 256 x 2 bits, d, dmin
        case .q3_K: return 32 + 64 + 12 + 2  // high-bit mask, 256 x 2 bits, 6-bit scales, d
        case .q4_K: return 4 + 12 + 128      // d, dmin, 6-bit scales and mins, 256 x 4 bits
        case .q5_K: return 4 + 12 + 32 + 128 // d, dmin, scales and mins, high bits, low nibbles
        case .q6_K: return 128 + 64 + 16 + 2 // low nibbles, high 2 bits, i8 scales, d
        case .q8_K: return 4 + 256 + 32      // f32 d, 256 x i8, 16 i16 block sums
        }
    }

    /// Whether Tiller dequantizes this type into model weights.
    public var isLoadable: Bool {
        switch self {
        case .f32, .f16, .bf16, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K: return true
        default: return false
        }
    }

    /// Bytes of `count` values (a multiple of the block size).
    public func byteCount(_ count: Int) -> Int { count / blockSize * blockBytes }
}
