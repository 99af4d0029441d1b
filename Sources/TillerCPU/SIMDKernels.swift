/// Vector building blocks over raw pointers. Sixteen lanes: one AVX-512 register, or four SSE
/// registers where the compiler targets baseline x86-64; two accumulators hide FMA latency.
typealias Vec = SIMD16<Float>

@inline(__always) func loadVec(_ p: UnsafePointer<Float>) -> Vec {
    UnsafeRawPointer(p).loadUnaligned(as: Vec.self)
}

@inline(__always) func storeVec(_ v: Vec, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: Vec.self)
}

/// 16 bf16 values widened to f32: bf16 is the high half of an f32.
@inline(__always) func loadBF16(_ p: UnsafePointer<UInt16>) -> Vec {
    let bits = UnsafeRawPointer(p).loadUnaligned(as: SIMD16<UInt16>.self)
    return unsafeBitCast(SIMD16<UInt32>(truncatingIfNeeded: bits) &<< 16, to: Vec.self)
}

/// 16 IEEE half values widened to f32 with integer ops only (no F16C needed): shifting the
/// exponent and mantissa into f32 position and multiplying by 2^112 rebias both normal and
/// subnormal values exactly; infinities and NaNs get their exponent forced to all ones.
@inline(__always) func loadF16(_ p: UnsafePointer<UInt16>) -> Vec {
    let h = SIMD16<UInt32>(truncatingIfNeeded: UnsafeRawPointer(p).loadUnaligned(as: SIMD16<UInt16>.self))
    let magnitude = unsafeBitCast((h & 0x7FFF) &<< 13, to: Vec.self) * 0x1p112
    var bits = unsafeBitCast(magnitude, to: SIMD16<UInt32>.self) | ((h & 0x8000) &<< 16)
    bits.replace(with: bits | 0x7F80_0000, where: (h & 0x7C00) .== 0x7C00)
    return unsafeBitCast(bits, to: Vec.self)
}

/// Widens n values of a 16-bit float format into f32.
@inline(__always) func widen(_ src: UnsafePointer<UInt16>, isBF16: Bool, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
    var i = 0
    if isBF16 {
        while i + 16 <= n { storeVec(loadBF16(src + i), dst + i); i += 16 }
        while i < n { dst[i] = Float(bitPattern: UInt32(src[i]) << 16); i += 1 }
    } else {
        while i + 16 <= n { storeVec(loadF16(src + i), dst + i); i += 16 }
        while i < n { dst[i] = f16ToFloat(src[i]); i += 1 }
    }
}

@inline(__always) func f16ToFloat(_ h: UInt16) -> Float {
    let bits = UInt32(h)
    let magnitude = Float(bitPattern: (bits & 0x7FFF) << 13) * 0x1p112
    var out = magnitude.bitPattern | ((bits & 0x8000) << 16)
    if bits & 0x7C00 == 0x7C00 { out |= 0x7F80_0000 }
    return Float(bitPattern: out)
}

@inline(__always) func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc0 = Vec(), acc1 = Vec()
    var i = 0
    while i + 32 <= n {
        acc0 += loadVec(a + i) * loadVec(b + i)
        acc1 += loadVec(a + i + 16) * loadVec(b + i + 16)
        i += 32
    }
    if i + 16 <= n { acc0 += loadVec(a + i) * loadVec(b + i); i += 16 }
    var sum = (acc0 + acc1).sum()
    while i < n { sum += a[i] * b[i]; i += 1 }
    return sum
}

@inline(__always) func sumOfSquares(_ a: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc0 = Vec(), acc1 = Vec()
    var i = 0
    while i + 32 <= n {
        let x = loadVec(a + i), y = loadVec(a + i + 16)
        acc0 += x * x
        acc1 += y * y
        i += 32
    }
    if i + 16 <= n { let x = loadVec(a + i); acc0 += x * x; i += 16 }
    var sum = (acc0 + acc1).sum()
    while i < n { sum += a[i] * a[i]; i += 1 }
    return sum
}

/// y += a * x over n values.
@inline(__always) func axpy(_ a: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
    let av = Vec(repeating: a)
    var i = 0
    while i + 16 <= n { storeVec(loadVec(y + i) + av * loadVec(x + i), y + i); i += 16 }
    while i < n { y[i] += a * x[i]; i += 1 }
}
