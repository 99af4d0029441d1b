import CTillerKernels

/// exp and tanh on 16 lanes at once, accurate to a few ulp in f32 (Cephes' expf and tanhf
/// polynomials). Calling libm per element would cost more than the matmuls in attention.

@inline(__always) func vexp(_ input: Vec) -> Vec {
    // Clamped with comparisons and masks: the stdlib's generic `clamped` is not specialised and
    // runs lane by lane.
    var x = input.replacing(with: -87.3, where: input .< -87.3)
    x.replace(with: 88.3, where: x .> 88.3)
    // Round x / ln 2 to the nearest integer by adding 1.5 * 2^23: the sum's low mantissa bits
    // then hold the integer (in two's complement), and subtracting the constant back gives it as
    // a float. Both avoid Swift's lane-by-lane generic rounding and conversion.
    let shifted = x * 1.442_695_04 + 0x1.8p23
    let n = shifted - 0x1.8p23
    // ln 2 split in two so r = x - n ln 2 stays exact.
    let r = x - n * 0.693_359_375 + n * 2.121_944_40e-4
    var p = Vec(repeating: 1.987_569_15e-4)
    p = p * r + 1.398_199_95e-3
    p = p * r + 8.333_451_91e-3
    p = p * r + 4.166_579_59e-2
    p = p * r + 1.666_666_55e-1
    p = p * r + 5.000_000_12e-1
    let y = p * r * r + r + 1
    let integer = unsafeBitCast(shifted, to: SIMD16<Int32>.self) &- 0x4B40_0000
    return y * unsafeBitCast((integer &+ 127) &<< 23, to: Vec.self)
}

@inline(__always) func vtanh(_ x: Vec) -> Vec {
    let magnitude = x.replacing(with: -x, where: x .< 0)
    // Large |x|: 1 - 2 / (exp(2|x|) + 1), with the sign restored.
    let e = vexp(2 * magnitude)
    var large = 1 - 2 / (e + 1)
    large.replace(with: -large, where: x .< 0)
    // Small |x|: an odd polynomial avoids the cancellation in 1 - 2/(e+1).
    let z = x * x
    var p = Vec(repeating: -5.704_988_727_45e-3)
    p = p * z + 2.063_908_879_54e-2
    p = p * z - 5.373_971_555_31e-2
    p = p * z + 1.333_144_220_36e-1
    p = p * z - 3.333_328_194_22e-1
    let small = p * z * x + x
    return large.replacing(with: small, where: magnitude .< 0.625)
}

// The gated activations (SiLU, tanh-GELU) run in C: CTillerKernels/activation.c.

/// Applies a 16-lane function to n values, the tail through a zero-padded vector.
@inline(__always) func mapVectors(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ n: Int, _ f: (Vec) -> Vec) {
    var i = 0
    while i + 16 <= n { storeVec(f(loadVec(src + i)), dst + i); i += 16 }
    if i < n {
        var tail = Vec()
        for j in 0..<(n - i) { tail[j] = src[i + j] }
        let result = f(tail)
        for j in 0..<(n - i) { dst[i + j] = result[j] }
    }
}

/// Replaces p[0..<n] by exp(p - max) and returns their sum: the softmax numerator. Runs in the
/// C kernels, compiled for the widest vectors this CPU has.
@inline(__always) func expMinusMax(_ p: UnsafeMutablePointer<Float>, _ n: Int) -> Float {
    tiller_exp_minus_max(p, n)
}
