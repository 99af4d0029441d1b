#if canImport(Glibc)
import Glibc
#endif
import CTillerKernels
import TillerCore

extension CPUBackend {
    /// Elementwise work is split across cores only when there is enough of it to pay for the hand-off.
    static let elementGrain = 1 << 15

    public func embedding(table: Tensor, ids: Tensor, scale: Float, out: Tensor) throws {
        let (n, d, vocab) = try OpShapes.embedding(table: table, ids: ids, out: out)
        let index = try checkedIndices("embedding", "ids", ids, 0..<Int32(vocab))
        let op = try floats("embedding", out)
        let base = try hostPointer("embedding", table)
        let dtype = table.dtype
        Parallel.chunks(n, grain: max(1, Self.elementGrain / d)) { rows in
            for r in rows {
                let dst = op + r * d, id = Int(index[r])
                switch dtype {
                case .f32: dst.update(from: base.assumingMemoryBound(to: Float.self) + id * d, count: d)
                default: widen(base.assumingMemoryBound(to: UInt16.self) + id * d, isBF16: dtype == .bf16, dst, d)
                }
                if scale != 1 { mapVectors(dst, dst, d) { $0 * scale } }
            }
        }
    }

    public func rmsNorm(_ x: Tensor, weight: Tensor, eps: Float, unitOffset: Bool, out: Tensor) throws {
        let (rows, d) = try OpShapes.rmsNorm(x, weight: weight, out: out)
        let xp = try floats("rmsNorm", x), op = try floats("rmsNorm", out)
        // The weight is widened (and offset) once per call: d floats.
        let gains = try rmsNormGains("rmsNorm", weight, d: d, unitOffset: unitOffset)
        gains.withUnsafeBufferPointer { g in
            let gp = g.baseAddress!
            Parallel.chunks(rows, grain: max(1, Self.elementGrain / d)) { range in
                for r in range {
                    let src = xp + r * d, dst = op + r * d
                    let inverse = 1 / (sumOfSquares(src, d) / Float(d) + eps).squareRoot()
                    var i = 0
                    while i + 16 <= d { storeVec(loadVec(src + i) * inverse * loadVec(gp + i), dst + i); i += 16 }
                    while i < d { dst[i] = src[i] * inverse * gp[i]; i += 1 }
                }
            }
        }
    }

    public func rope(_ x: Tensor, positions: Tensor, inverseFrequencies: Tensor) throws {
        let (rows, heads, d) = try OpShapes.rope(x, positions: positions, inverseFrequencies: inverseFrequencies)
        let xp = try floats("rope", x), pp = try int32s("rope", positions), fp = try floats("rope", inverseFrequencies)
        let half = d / 2
        Parallel.chunks(rows, grain: max(1, Self.elementGrain / (heads * d))) { range in
            var cosines = [Float](repeating: 0, count: half), sines = [Float](repeating: 0, count: half)
            for r in range {
                // One table of angles per row serves all of its heads.
                for i in 0..<half {
                    let angle = Float(pp[r]) * fp[i]
                    cosines[i] = cosf(angle)
                    sines[i] = sinf(angle)
                }
                for h in 0..<heads {
                    let base = xp + (r * heads + h) * d
                    for i in 0..<half {
                        let a = base[i], b = base[i + half]
                        base[i] = a * cosines[i] - b * sines[i]
                        base[i + half] = b * cosines[i] + a * sines[i]
                    }
                }
            }
        }
    }

    public func gatedActivation(_ kind: GatedActivation, gate: Tensor, up: Tensor, out: Tensor) throws {
        try OpShapes.unary("gatedActivation", gate, out: out)
        try Check.sameShape("gatedActivation", ("gate", gate), ("up", up))
        try Check.dtype("gatedActivation", "up", up, .f32)
        let gp = try floats("gatedActivation", gate), up = try floats("gatedActivation", up), op = try floats("gatedActivation", out)
        // The C kernel (compiled for this CPU's widest vectors) in cache-sized slices across cores.
        let code: Int32 = kind == .silu ? 0 : 1
        Parallel.chunks(gate.count, grain: Self.elementGrain) { r in
            tiller_gated_activation(code, gp + r.lowerBound, up + r.lowerBound, op + r.lowerBound, r.count)
        }
    }

    public func add(_ a: Tensor, _ b: Tensor, out: Tensor) throws { try binary("add", a, b, out: out, +) }
    public func mul(_ a: Tensor, _ b: Tensor, out: Tensor) throws { try binary("mul", a, b, out: out, *) }

    @inline(__always)
    func binary(_ op: String, _ a: Tensor, _ b: Tensor, out: Tensor, _ f: @escaping (Vec, Vec) -> Vec) throws {
        let (count, broadcast) = try OpShapes.elementwise(op, a, b, out: out)
        let ap = try floats(op, a), bp = try floats(op, b), opp = try floats(op, out)
        if broadcast {
            let d = a.columns
            Parallel.chunks(a.rows, grain: max(1, Self.elementGrain / d)) { rows in
                for r in rows { Self.zipVectors(ap + r * d, bp, opp + r * d, d, f) }
            }
        } else {
            Parallel.chunks(count, grain: Self.elementGrain) { r in
                Self.zipVectors(ap + r.lowerBound, bp + r.lowerBound, opp + r.lowerBound, r.count, f)
            }
        }
    }

    @inline(__always)
    static func zipVectors(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ n: Int, _ f: (Vec, Vec) -> Vec) {
        var i = 0
        while i + 16 <= n { storeVec(f(loadVec(a + i), loadVec(b + i)), out + i); i += 16 }
        while i < n { out[i] = f(Vec(repeating: a[i]), Vec(repeating: b[i]))[0]; i += 1 }
    }

    public func scale(_ x: Tensor, by factor: Float, out: Tensor) throws {
        try unaryMap("scale", x, out: out) { $0 * factor }
    }

    public func softcap(_ x: Tensor, cap: Float, out: Tensor) throws {
        try Check.softcap(cap)
        try unaryMap("softcap", x, out: out) { cap * vtanh($0 / cap) }
    }

    func unaryMap(_ op: String, _ x: Tensor, out: Tensor, _ f: @escaping (Vec) -> Vec) throws {
        try OpShapes.unary(op, x, out: out)
        let xp = try floats(op, x), opp = try floats(op, out)
        Parallel.chunks(x.count, grain: Self.elementGrain) { r in
            mapVectors(xp + r.lowerBound, opp + r.lowerBound, r.count, f)
        }
    }

    public func softmax(_ x: Tensor, out: Tensor) throws {
        try OpShapes.unary("softmax", x, out: out)
        try Check.nonEmpty("softmax", "x", x)
        let xp = try floats("softmax", x), op = try floats("softmax", out)
        let c = x.columns
        Parallel.chunks(x.rows, grain: max(1, Self.elementGrain / c)) { rows in
            for r in rows { softmaxRow(xp + r * c, op + r * c, c) }
        }
    }

    public func gatherRows(_ x: Tensor, indices: Tensor, out: Tensor) throws {
        let (m, d, n) = try OpShapes.gatherRows(x, indices: indices, out: out)
        let index = try checkedIndices("gatherRows", "indices", indices, 0..<Int32(n))
        let xp = try floats("gatherRows", x), op = try floats("gatherRows", out)
        for r in 0..<m { (op + r * d).update(from: xp + Int(index[r]) * d, count: d) }
    }

    public func copy(_ src: Tensor, to dst: Tensor) throws {
        try OpShapes.copy(src, dst)
        try hostPointer("copy", dst).copyMemory(from: try hostPointer("copy", src), byteCount: src.byteCount)
    }

    public func cacheAppend(_ new: Tensor, into cache: Tensor, batch: SequenceBatch) throws {
        let (b, t, s, row) = try OpShapes.cacheAppend(new, cache: cache, batch: batch)
        let src = try hostPointer("cacheAppend", new), dst = try hostPointer("cacheAppend", cache)
        let rowBytes = row * new.dtype.byteSize
        for seq in 0..<b where batch.lengths[seq] > 0 {
            // A sequence's new rows are contiguous in both tensors: one copy each.
            (dst + (seq * s + batch.starts[seq]) * rowBytes)
                .copyMemory(from: src + seq * t * rowBytes, byteCount: batch.lengths[seq] * rowBytes)
        }
    }
}

/// Numerically stable softmax of one row: subtract the max, exponentiate, normalise.
@inline(__always) func softmaxRow(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
    if src != UnsafePointer(dst) { dst.update(from: src, count: n) }
    let inverse = 1 / expMinusMax(dst, n)
    mapVectors(dst, dst, n) { $0 * inverse }
}
