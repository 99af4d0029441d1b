import TillerCore

/// Dequantization of ggml blocks to f32 (Q8_0, Q4_0, Q4_1 and Q4_K by TillerCore's
/// QuantizedBlocks, which the backends' kernels share), transcribed from ggml's ggml-quants.c
/// (dequantize_row_q4_0 ... dequantize_row_q6_K), same operations in the same order, so the
/// values are those llama.cpp computes. Checked against gguf-py's numpy dequantization
/// (GGUFDequantizeTests, scripts/fixtures/make_gguf_fixtures.py).
public enum GGMLDequantize {
    /// Dequantizes `count` values (a multiple of the type's block size) of `type` starting at
    /// `source` into `out`. The caller has checked that `source` holds `type.byteCount(count)` bytes.
    public static func run(_ type: GGMLType, _ source: UnsafeRawPointer, count: Int, into out: UnsafeMutablePointer<Float>) throws {
        // The types the backends also multiply in their blocks share TillerCore's code.
        if let blocked = GGUFModelFile.nativeDType(type) {
            QuantizedBlocks.dequantize(blocked, source, count: count, into: out)
            return
        }
        let blocks = count / type.blockSize
        let bb = type.blockBytes
        switch type {
        case .f32:
            for i in 0..<count { out[i] = Float(bitPattern: UInt32(littleEndian: source.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
        case .f16:
            for i in 0..<count { out[i] = HalfConversion.f16ToFloat(u16(source, 2 * i)) }
        case .bf16:
            for i in 0..<count { out[i] = HalfConversion.bf16ToFloat(u16(source, 2 * i)) }
        case .q5_0:
            for b in 0..<blocks { q5_0(source + b * bb, out + 32 * b) }
        case .q5_1:
            for b in 0..<blocks { q5_1(source + b * bb, out + 32 * b) }
        case .q2_K:
            for b in 0..<blocks { q2_K(source + b * bb, out + 256 * b) }
        case .q3_K:
            for b in 0..<blocks { q3_K(source + b * bb, out + 256 * b) }
        case .q5_K:
            for b in 0..<blocks { q5_K(source + b * bb, out + 256 * b) }
        case .q6_K:
            for b in 0..<blocks { q6_K(source + b * bb, out + 256 * b) }
        default:
            throw TillerError.unsupported("dequantizing ggml type \(GGUFReader.typeName(type.rawValue))")
        }
    }

    @inline(__always) static func u16(_ p: UnsafeRawPointer, _ at: Int) -> UInt16 {
        UInt16(littleEndian: p.loadUnaligned(fromByteOffset: at, as: UInt16.self))
    }
    @inline(__always) static func half(_ p: UnsafeRawPointer, _ at: Int) -> Float { HalfConversion.f16ToFloat(u16(p, at)) }
    @inline(__always) static func byte(_ p: UnsafeRawPointer, _ at: Int) -> UInt8 { p.load(fromByteOffset: at, as: UInt8.self) }
    @inline(__always) static func signed(_ p: UnsafeRawPointer, _ at: Int) -> Int8 { p.load(fromByteOffset: at, as: Int8.self) }

    // MARK: 32-value blocks

    static func q5_0(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(x, 0)
        let qh = UInt32(littleEndian: x.loadUnaligned(fromByteOffset: 2, as: UInt32.self))
        for j in 0..<16 {
            let q = UInt32(byte(x, 6 + j))
            let h0 = ((qh >> UInt32(j)) << 4) & 0x10
            let h1 = (qh >> UInt32(j + 12)) & 0x10
            y[j] = Float(Int32((q & 0x0F) | h0) - 16) * d
            y[j + 16] = Float(Int32((q >> 4) | h1) - 16) * d
        }
    }

    static func q5_1(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(x, 0), m = half(x, 2)
        let qh = UInt32(littleEndian: x.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
        for j in 0..<16 {
            let q = UInt32(byte(x, 8 + j))
            let h0 = ((qh >> UInt32(j)) << 4) & 0x10
            let h1 = (qh >> UInt32(j + 12)) & 0x10
            y[j] = Float((q & 0x0F) | h0) * d + m
            y[j + 16] = Float((q >> 4) | h1) * d + m
        }
    }

    // MARK: K-quants (256-value super-blocks)

    /// scales[16], qs[64], d, dmin.
    static func q2_K(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(x, 80), dmin = half(x, 82)
        var out = 0, scale = 0, q = 16
        for _ in 0..<2 {
            var shift: UInt8 = 0
            for _ in 0..<4 {
                for half in 0..<2 {
                    let sc = byte(x, scale); scale += 1
                    let dl = d * Float(sc & 0x0F), ml = dmin * Float(sc >> 4)
                    for l in 0..<16 { y[out] = dl * Float((byte(x, q + 16 * half + l) >> shift) & 3) - ml; out += 1 }
                }
                shift += 2
            }
            q += 32
        }
    }

    /// hmask[32], qs[64], scales[12] (sixteen 6-bit scales), d.
    static func q3_K(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let dAll = half(x, 108)
        var aux = (0..<3).map { x.loadUnaligned(fromByteOffset: 96 + 4 * $0, as: UInt32.self).littleEndian } + [0]
        let kmask1: UInt32 = 0x0303_0303, kmask2: UInt32 = 0x0F0F_0F0F
        let tmp = aux[2]
        aux[2] = ((aux[0] >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4)
        aux[3] = ((aux[1] >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4)
        aux[0] = (aux[0] & kmask2) | (((tmp >> 0) & kmask1) << 4)
        aux[1] = (aux[1] & kmask2) | (((tmp >> 2) & kmask1) << 4)
        let scales = aux.flatMap { w in (0..<4).map { Int8(bitPattern: UInt8(truncatingIfNeeded: w >> (8 * UInt32($0)))) } }
        var out = 0, s = 0, q = 32
        var m: UInt8 = 1
        for _ in 0..<2 {
            var shift: UInt8 = 0
            for _ in 0..<4 {
                for half in 0..<2 {
                    let dl = dAll * Float(Int(scales[s]) - 32); s += 1
                    for l in 0..<16 {
                        let k = 16 * half + l
                        let low = Int((byte(x, q + k) >> shift) & 3)
                        let high = (byte(x, k) & m) != 0 ? 0 : 4
                        y[out] = dl * Float(low - high); out += 1
                    }
                }
                shift += 2
                m <<= 1
            }
            q += 32
        }
    }

    /// d, dmin, scales[12], qh[32], qs[128].
    static func q5_K(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(x, 0), dmin = half(x, 2)
        let scales = x + 4
        var out = 0, q = 48, s = 0
        var u1: UInt8 = 1, u2: UInt8 = 2
        for _ in 0..<4 {
            let (sc1, m1) = QuantizedBlocks.scaleMin(s, scales), (sc2, m2) = QuantizedBlocks.scaleMin(s + 1, scales)
            let d1 = d * sc1, min1 = dmin * m1, d2 = d * sc2, min2 = dmin * m2
            for l in 0..<32 {
                let h: UInt8 = (byte(x, 16 + l) & u1) != 0 ? 16 : 0
                y[out] = d1 * Float((byte(x, q + l) & 0x0F) + h) - min1; out += 1
            }
            for l in 0..<32 {
                let h: UInt8 = (byte(x, 16 + l) & u2) != 0 ? 16 : 0
                y[out] = d2 * Float((byte(x, q + l) >> 4) + h) - min2; out += 1
            }
            q += 32; s += 2
            u1 <<= 2; u2 <<= 2
        }
    }

    /// ql[128], qh[64], scales[16] (i8), d.
    static func q6_K(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(x, 208)
        var ql = 0, qh = 128, sc = 192, out = 0
        for _ in 0..<2 {
            for l in 0..<32 {
                let s = l / 16
                let a = byte(x, ql + l), b = byte(x, ql + l + 32), h = byte(x, qh + l)
                let q1 = Int(Int8(bitPattern: (a & 0x0F) | ((h >> 0) & 3) << 4)) - 32
                let q2 = Int(Int8(bitPattern: (b & 0x0F) | ((h >> 2) & 3) << 4)) - 32
                let q3 = Int(Int8(bitPattern: (a >> 4) | ((h >> 4) & 3) << 4)) - 32
                let q4 = Int(Int8(bitPattern: (b >> 4) | ((h >> 6) & 3) << 4)) - 32
                y[out + l] = d * Float(signed(x, sc + s)) * Float(q1)
                y[out + l + 32] = d * Float(signed(x, sc + s + 2)) * Float(q2)
                y[out + l + 64] = d * Float(signed(x, sc + s + 4)) * Float(q3)
                y[out + l + 96] = d * Float(signed(x, sc + s + 6)) * Float(q4)
            }
            out += 128; ql += 64; qh += 32; sc += 8
        }
    }
}
