/// Element types a tensor can hold. Activations are always f32; weights may be f32, f16 or bf16,
/// or ggml's quantized blocks (matmul weights only, see `QuantizedBlocks`); i32 carries token ids,
/// positions and head indices.
public enum DType: String, Sendable, CaseIterable, CustomStringConvertible {
    case f32, f16, bf16, i32
    /// ggml blocks kept as they are in a GGUF file: 32 values per block (q8_0, q4_0, q4_1) or a
    /// 256-value super-block (q4_K). A tensor of these has a last dimension divisible by the block.
    case q8_0, q4_0, q4_1, q4_K

    /// Bytes per element of the dense types; for the quantized ones, bytes per block (use
    /// `byteCount(elements:)` for sizes).
    public var byteSize: Int {
        switch self {
        case .f32, .i32: return 4
        case .f16, .bf16: return 2
        case .q8_0, .q4_0, .q4_1, .q4_K: return blockBytes
        }
    }

    /// Values per block: 1 for the dense types.
    public var blockElements: Int {
        switch self {
        case .f32, .f16, .bf16, .i32: return 1
        case .q8_0, .q4_0, .q4_1: return 32
        case .q4_K: return 256
        }
    }

    /// Bytes per block (ggml's ggml-common.h): an f16 scale d (and min m, or d and dmin with
    /// twelve bytes of 6-bit sub-block scales for q4_K) before the packed quants.
    public var blockBytes: Int {
        switch self {
        case .f32, .i32: return 4
        case .f16, .bf16: return 2
        case .q8_0: return 2 + 32
        case .q4_0: return 2 + 16
        case .q4_1: return 4 + 16
        case .q4_K: return 4 + 12 + 128
        }
    }

    public var isQuantized: Bool { blockElements > 1 }

    /// Bytes of `elements` values (a multiple of the block size for the quantized types).
    public func byteCount(elements: Int) -> Int { elements / blockElements * blockBytes }

    /// Byte alignment a tensor of this dtype starts at: the element size, or 2 (the f16 scales)
    /// for the blocks, whose sizes (34, 18, 20, 144) are only even.
    public var alignment: Int { isQuantized ? 2 : byteSize }

    public var isFloatingPoint: Bool { self != .i32 }
    public var description: String { rawValue }
}

/// Scalar conversions between f32 and the 16-bit storage formats. Bit-exact, no dependence on
/// hardware half-precision support, so they serve as the reference for every fast path.
public enum HalfConversion {
    /// bf16 is the top half of an f32: widening is a shift.
    @inline(__always)
    public static func bf16ToFloat(_ bits: UInt16) -> Float {
        Float(bitPattern: UInt32(bits) << 16)
    }

    /// Round to nearest, ties to even; NaN stays NaN (quiet).
    @inline(__always)
    public static func floatToBF16(_ value: Float) -> UInt16 {
        let bits = value.bitPattern
        if value.isNaN { return UInt16(truncatingIfNeeded: (bits >> 16) | 0x0040) }
        let roundingBias: UInt32 = 0x7FFF + ((bits >> 16) & 1)
        return UInt16(truncatingIfNeeded: (bits &+ roundingBias) >> 16)
    }

    /// IEEE binary16 to f32, including subnormals, infinities and NaN.
    @inline(__always)
    public static func f16ToFloat(_ bits: UInt16) -> Float {
        let sign = UInt32(bits & 0x8000) << 16
        let exponent = UInt32(bits >> 10) & 0x1F
        let mantissa = UInt32(bits & 0x3FF)
        if exponent == 0 {
            // Zero or subnormal: mantissa * 2^-24.
            let magnitude = Float(mantissa) * 0x1p-24
            return Float(bitPattern: magnitude.bitPattern | sign)
        }
        if exponent == 0x1F {
            return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
        }
        return Float(bitPattern: sign | ((exponent + 112) << 23) | (mantissa << 13))
    }

    /// f32 to IEEE binary16, round to nearest even, overflow to infinity, gradual underflow.
    @inline(__always)
    public static func floatToF16(_ value: Float) -> UInt16 {
        let bits = value.bitPattern
        let sign = UInt16((bits >> 16) & 0x8000)
        let exponent = Int((bits >> 23) & 0xFF)
        let mantissa = bits & 0x7F_FFFF
        if exponent == 0xFF {
            return sign | 0x7C00 | (mantissa != 0 ? 0x200 : 0)
        }
        let halfExponent = exponent - 127 + 15
        if halfExponent >= 0x1F { return sign | 0x7C00 }
        if halfExponent <= 0 {
            // Subnormal half (or zero): shift the full significand into place with rounding.
            if halfExponent < -10 { return sign }
            let significand = mantissa | 0x80_0000
            let shift = UInt32(14 - halfExponent)
            let halfway: UInt32 = 1 << (shift - 1)
            var result = significand >> shift
            let remainder = significand & ((1 << shift) - 1)
            if remainder > halfway || (remainder == halfway && (result & 1) == 1) { result += 1 }
            return sign | UInt16(result)
        }
        var result = UInt32(halfExponent) << 10 | (mantissa >> 13)
        let remainder = mantissa & 0x1FFF
        if remainder > 0x1000 || (remainder == 0x1000 && (result & 1) == 1) { result += 1 }
        // A carry out of the mantissa correctly bumps the exponent (up to infinity).
        return sign | UInt16(result)
    }
}
