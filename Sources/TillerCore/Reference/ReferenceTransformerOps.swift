#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// tanh-approximated GELU, as gelu_pytorch_tanh.
func referenceGELUTanh(_ x: Double) -> Double {
    0.5 * x * (1 + tanh((2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x)))
}

extension ReferenceBackend {
    public func embedding(table: Tensor, ids: Tensor, scale: Float, out: Tensor) throws {
        let (n, d, vocab) = try OpShapes.embedding(table: table, ids: ids, out: out)
        _ = try checkedIndices("embedding", "ids", ids, 0..<Int32(vocab))
        let rows = try readInts("embedding", ids)
        let tableBase = try host("embedding", table)
        var result = [Double](repeating: 0, count: n * d)
        for (r, id) in rows.enumerated() {
            for i in 0..<d { result[r * d + i] = Double(HostEncoding.load(tableBase, table.dtype, id * d + i)) * Double(scale) }
        }
        try write("embedding", result, to: out)
    }

    public func rmsNorm(_ x: Tensor, weight: Tensor, eps: Float, unitOffset: Bool, out: Tensor) throws {
        let (rows, d) = try OpShapes.rmsNorm(x, weight: weight, out: out)
        let xs = try read("rmsNorm", x), ws = try read("rmsNorm", weight)
        var result = [Double](repeating: 0, count: xs.count)
        for r in 0..<rows {
            let meanSquare = (0..<d).reduce(0.0) { $0 + xs[r * d + $1] * xs[r * d + $1] } / Double(d)
            let inverse = 1 / (meanSquare + Double(eps)).squareRoot()
            for i in 0..<d { result[r * d + i] = xs[r * d + i] * inverse * (unitOffset ? 1 + ws[i] : ws[i]) }
        }
        try write("rmsNorm", result, to: out)
    }

    public func rope(_ x: Tensor, positions: Tensor, inverseFrequencies: Tensor) throws {
        let (rows, heads, d) = try OpShapes.rope(x, positions: positions, inverseFrequencies: inverseFrequencies)
        var xs = try read("rope", x)
        let pos = try readInts("rope", positions), freqs = try read("rope", inverseFrequencies)
        let half = d / 2
        for r in 0..<rows {
            for h in 0..<heads {
                let base = (r * heads + h) * d
                for i in 0..<half {
                    // transformers computes the angle in f32; so do we, then cos/sin in Double.
                    let angle = Double(Float(pos[r]) * Float(freqs[i]))
                    let (c, s) = (cos(angle), sin(angle))
                    let (a, b) = (xs[base + i], xs[base + i + half])
                    xs[base + i] = a * c - b * s
                    xs[base + i + half] = b * c + a * s
                }
            }
        }
        try write("rope", xs, to: x)
    }

    public func gatedActivation(_ kind: GatedActivation, gate: Tensor, up: Tensor, out: Tensor) throws {
        try OpShapes.unary("gatedActivation", gate, out: out)
        try Check.sameShape("gatedActivation", ("gate", gate), ("up", up))
        try Check.dtype("gatedActivation", "up", up, .f32)
        let g = try read("gatedActivation", gate), u = try read("gatedActivation", up)
        let result = zip(g, u).map { gate, up in
            switch kind {
            case .silu: return gate / (1 + exp(-gate)) * up
            case .geluTanh: return referenceGELUTanh(gate) * up
            }
        }
        try write("gatedActivation", result, to: out)
    }

    public func add(_ a: Tensor, _ b: Tensor, out: Tensor) throws {
        try binary("add", a, b, out: out, +)
    }

    public func mul(_ a: Tensor, _ b: Tensor, out: Tensor) throws {
        try binary("mul", a, b, out: out, *)
    }

    func binary(_ op: String, _ a: Tensor, _ b: Tensor, out: Tensor, _ f: (Double, Double) -> Double) throws {
        let (count, broadcast) = try OpShapes.elementwise(op, a, b, out: out)
        let xs = try read(op, a), ys = try read(op, b)
        let result = (0..<count).map { f(xs[$0], broadcast ? ys[$0 % ys.count] : ys[$0]) }
        try write(op, result, to: out)
    }

    public func scale(_ x: Tensor, by factor: Float, out: Tensor) throws {
        try OpShapes.unary("scale", x, out: out)
        try write("scale", try read("scale", x).map { $0 * Double(factor) }, to: out)
    }

    public func softmax(_ x: Tensor, out: Tensor) throws {
        try OpShapes.unary("softmax", x, out: out)
        try Check.nonEmpty("softmax", "x", x)
        let xs = try read("softmax", x), c = x.columns
        var result = [Double](repeating: 0, count: xs.count)
        for r in 0..<x.rows {
            let row = xs[(r * c)..<((r + 1) * c)]
            let largest = row.max()!
            let total = row.reduce(0) { $0 + exp($1 - largest) }
            for i in 0..<c { result[r * c + i] = exp(xs[r * c + i] - largest) / total }
        }
        try write("softmax", result, to: out)
    }

    public func softcap(_ x: Tensor, cap: Float, out: Tensor) throws {
        try OpShapes.unary("softcap", x, out: out)
        try Check.softcap(cap)
        let c = Double(cap)
        try write("softcap", try read("softcap", x).map { c * tanh($0 / c) }, to: out)
    }

    public func gatherRows(_ x: Tensor, indices: Tensor, out: Tensor) throws {
        let (m, d, n) = try OpShapes.gatherRows(x, indices: indices, out: out)
        _ = try checkedIndices("gatherRows", "indices", indices, 0..<Int32(n))
        let xs = try read("gatherRows", x), index = try readInts("gatherRows", indices)
        var result = [Double](repeating: 0, count: m * d)
        for (r, source) in index.enumerated() {
            for i in 0..<d { result[r * d + i] = xs[source * d + i] }
        }
        try write("gatherRows", result, to: out)
    }

    public func copy(_ src: Tensor, to dst: Tensor) throws {
        try OpShapes.copy(src, dst)
        try host("copy", dst).copyMemory(from: try host("copy", src), byteCount: src.byteCount)
    }
}
