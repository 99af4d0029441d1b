/// Shape and dtype rules of every op, in one place, so that every backend rejects the same
/// inputs with the same one-line message. Each check returns the sizes the kernel needs.

public enum Check {
    public static func dtype(_ op: String, _ name: String, _ t: Tensor, _ allowed: DType...) throws {
        guard allowed.contains(t.dtype) else {
            throw TillerError.dtypeMismatch(op: op, detail: "\(name) is \(t.dtype), expected \(allowed.map(\.rawValue).joined(separator: " or "))")
        }
    }

    public static func nonEmpty(_ op: String, _ name: String, _ t: Tensor) throws {
        if t.count == 0 { throw TillerError.emptyTensor(op: op, name: "\(name) \(t.shape)") }
    }

    public static func shape(_ op: String, _ name: String, _ t: Tensor, _ expected: [Int]) throws {
        guard t.shape == expected else {
            throw TillerError.shapeMismatch(op: op, detail: "\(name) is \(t.shape), expected \(expected)")
        }
    }

    public static func sameShape(_ op: String, _ a: (String, Tensor), _ b: (String, Tensor)) throws {
        guard a.1.shape == b.1.shape else {
            throw TillerError.shapeMismatch(op: op, detail: "\(a.0) \(a.1.shape) vs \(b.0) \(b.1.shape)")
        }
    }

    public static func minRank(_ op: String, _ name: String, _ t: Tensor, _ rank: Int) throws {
        guard t.rank >= rank else {
            throw TillerError.shapeMismatch(op: op, detail: "\(name) \(t.shape) needs at least \(rank) dimensions")
        }
    }

    /// Throws when any index is outside lower..<upper; reads host memory only.
    public static func indices(_ op: String, _ name: String, _ values: UnsafeBufferPointer<Int32>, _ range: Range<Int32>) throws {
        for (i, v) in values.enumerated() where !range.contains(v) {
            throw TillerError.indexOutOfRange(op: op, detail: "\(name)[\(i)] = \(v), valid \(range.lowerBound)..<\(range.upperBound)")
        }
    }
}

extension Check {
    public static func activations(_ values: UnsafeBufferPointer<Int32>, op: String = "psrHead") throws {
        for (i, v) in values.enumerated() where PSRActivation(rawValue: v) == nil {
            throw TillerError.invalidArgument(op: op, detail: "activation[\(i)] = \(v) is not 0 (relu), 1 (identity) or 2 (constant)")
        }
    }

    public static func softcap(_ cap: Float) throws {
        guard cap > 0 else { throw TillerError.invalidArgument(op: "softcap", detail: "cap \(cap) must be > 0") }
    }
}

public struct MatmulDims: Equatable, Sendable {
    public var batch: Int       // 1 unless W is batched
    public var m: Int           // rows of x per batch (all leading dims folded when W is shared)
    public var n: Int
    public var k: Int
    public var weightBatched: Bool
}

public struct AttentionDims: Equatable, Sendable {
    public var batch, queryLength, cacheLength, queryHeads, kvHeads, headDim: Int
    public var group: Int { queryHeads / kvHeads }
}

public enum OpShapes {
    public static func matmul(_ x: Tensor, _ w: Tensor, layout: WeightLayout, bias: Tensor?, out: Tensor) throws -> MatmulDims {
        let op = "matmul"
        try Check.dtype(op, "x", x, .f32)
        try Check.dtype(op, "w", w, .f32, .f16, .bf16, .q8_0, .q4_0, .q4_1, .q4_K)
        try Check.dtype(op, "out", out, .f32)
        try Check.minRank(op, "x", x, 2)
        // Quantized blocks run along K, so only a single [N, K] weight can hold them.
        if w.dtype.isQuantized, layout != .nk || w.rank != 2 {
            throw TillerError.shapeMismatch(op: op, detail: "\(w.dtype) w \(w.shape) must be one [N, K] weight (layout nk)")
        }
        guard w.rank == 2 || w.rank == 3 else {
            throw TillerError.shapeMismatch(op: op, detail: "w \(w.shape) must be [N, K], [K, N] or batched [B, ., .]")
        }
        try Check.nonEmpty(op, "x", x)
        try Check.nonEmpty(op, "w", w)
        let rows = w.shape[w.rank - 2], cols = w.shape[w.rank - 1]
        let (n, k) = layout == .nk ? (rows, cols) : (cols, rows)
        guard x.columns == k else {
            throw TillerError.shapeMismatch(op: op, detail: "x \(x.shape) has K = \(x.columns) but w \(w.shape) (\(layout.rawValue)) has K = \(k)")
        }
        var batch = 1, m = x.rows
        if w.rank == 3 {
            batch = w.shape[0]
            guard x.rank == 3, x.shape[0] == batch else {
                throw TillerError.shapeMismatch(op: op, detail: "batched w \(w.shape) needs x [\(batch), M, \(k)], got \(x.shape)")
            }
            m = x.shape[1]
        }
        try Check.shape(op, "out", out, Array(x.shape.dropLast()) + [n])
        if let bias {
            try Check.dtype(op, "bias", bias, .f32)
            try Check.shape(op, "bias", bias, [n])
        }
        return MatmulDims(batch: batch, m: m, n: n, k: k, weightBatched: w.rank == 3)
    }

    public static func attention(q: Tensor, k: Tensor, v: Tensor, batch: SequenceBatch, options: AttentionOptions, out: Tensor) throws -> AttentionDims {
        let op = "attention"
        for (name, t) in [("q", q), ("k", k), ("v", v), ("out", out)] {
            try Check.dtype(op, name, t, .f32)
            guard t.rank == 4 else { throw TillerError.shapeMismatch(op: op, detail: "\(name) \(t.shape) must be [B, T, H, D]") }
        }
        try Check.sameShape(op, ("k", k), ("v", v))
        try Check.sameShape(op, ("q", q), ("out", out))
        let dims = AttentionDims(batch: q.shape[0], queryLength: q.shape[1], cacheLength: k.shape[1],
                                 queryHeads: q.shape[2], kvHeads: k.shape[2], headDim: q.shape[3])
        guard k.shape[0] == dims.batch, k.shape[3] == dims.headDim else {
            throw TillerError.shapeMismatch(op: op, detail: "q \(q.shape) and k \(k.shape) disagree on batch or head dim")
        }
        guard dims.kvHeads > 0, dims.queryHeads % dims.kvHeads == 0 else {
            throw TillerError.shapeMismatch(op: op, detail: "\(dims.queryHeads) query heads are not a multiple of \(dims.kvHeads) KV heads")
        }
        try checkSequences(op, batch, batchSize: dims.batch, rowsPerSequence: dims.queryLength, capacity: dims.cacheLength)
        if let w = options.slidingWindow, w < 1 {
            throw TillerError.invalidArgument(op: op, detail: "sliding window \(w) must be >= 1")
        }
        if let c = options.softcap, !(c > 0) {
            throw TillerError.invalidArgument(op: op, detail: "soft-cap \(c) must be > 0")
        }
        return dims
    }

    /// Returns (B, T, S, row elements) for a cache append.
    public static func cacheAppend(_ new: Tensor, cache: Tensor, batch: SequenceBatch) throws -> (b: Int, t: Int, s: Int, row: Int) {
        let op = "cacheAppend"
        guard new.dtype == cache.dtype else {
            throw TillerError.dtypeMismatch(op: op, detail: "new is \(new.dtype), cache is \(cache.dtype)")
        }
        guard new.rank >= 2, new.rank == cache.rank, new.shape[0] == cache.shape[0],
              Array(new.shape.dropFirst(2)) == Array(cache.shape.dropFirst(2)) else {
            throw TillerError.shapeMismatch(op: op, detail: "new \(new.shape) does not fit cache \(cache.shape) ([B, T, ...] into [B, S, ...])")
        }
        let row = new.shape.dropFirst(2).reduce(1, *)
        try checkSequences(op, batch, batchSize: new.shape[0], rowsPerSequence: new.shape[1], capacity: cache.shape[1])
        return (new.shape[0], new.shape[1], cache.shape[1], row)
    }

    static func checkSequences(_ op: String, _ batch: SequenceBatch, batchSize: Int, rowsPerSequence: Int, capacity: Int) throws {
        guard batch.starts.count == batchSize, batch.lengths.count == batchSize else {
            throw TillerError.shapeMismatch(op: op, detail: "sequence batch has \(batch.starts.count) starts and \(batch.lengths.count) lengths for \(batchSize) sequences")
        }
        for b in 0..<batchSize {
            let s = batch.starts[b], l = batch.lengths[b]
            guard s >= 0, l >= 0, l <= rowsPerSequence, s + l <= capacity else {
                throw TillerError.indexOutOfRange(op: op, detail: "sequence \(b): start \(s) + length \(l) must fit \(rowsPerSequence) rows and a cache of \(capacity)")
            }
        }
    }

    /// Returns (N, d, K).
    public static func psrHead(_ h: Tensor, heads: PSRHeads, headIndex: Tensor, alpha: Tensor, lambda: Tensor) throws -> (n: Int, d: Int, k: Int) {
        let op = "psrHead"
        try Check.dtype(op, "h", h, .f32)
        guard h.rank == 2 else { throw TillerError.shapeMismatch(op: op, detail: "h \(h.shape) must be [N, d]") }
        let n = h.shape[0], d = h.shape[1], k = heads.count
        guard heads.w.rank == 2 else { throw TillerError.shapeMismatch(op: op, detail: "w \(heads.w.shape) must be [K, d]") }
        try Check.nonEmpty(op, "w", heads.w)
        try Check.shape(op, "w", heads.w, [k, d])
        try Check.shape(op, "z", heads.z, [k, d])
        try Check.shape(op, "bias", heads.bias, [k])
        try Check.shape(op, "activation", heads.activation, [k])
        try Check.shape(op, "headIndex", headIndex, [n])
        try Check.shape(op, "alpha", alpha, [n])
        try Check.shape(op, "lambda", lambda, [n])
        for (name, t) in [("w", heads.w), ("z", heads.z), ("bias", heads.bias), ("alpha", alpha), ("lambda", lambda)] {
            try Check.dtype(op, name, t, .f32)
        }
        try Check.dtype(op, "activation", heads.activation, .i32)
        try Check.dtype(op, "headIndex", headIndex, .i32)
        return (n, d, k)
    }

    /// Returns (N, d).
    public static func embedding(table: Tensor, ids: Tensor, out: Tensor) throws -> (n: Int, d: Int, vocab: Int) {
        let op = "embedding"
        try Check.dtype(op, "table", table, .f32, .f16, .bf16)
        try Check.dtype(op, "ids", ids, .i32)
        try Check.dtype(op, "out", out, .f32)
        guard table.rank == 2 else { throw TillerError.shapeMismatch(op: op, detail: "table \(table.shape) must be [V, d]") }
        try Check.nonEmpty(op, "table", table)
        try Check.shape(op, "out", out, [ids.count, table.shape[1]])
        return (ids.count, table.shape[1], table.shape[0])
    }

    /// Returns (rows, d).
    public static func rmsNorm(_ x: Tensor, weight: Tensor, out: Tensor) throws -> (rows: Int, d: Int) {
        let op = "rmsNorm"
        try Check.dtype(op, "x", x, .f32)
        try Check.dtype(op, "out", out, .f32)
        try Check.dtype(op, "weight", weight, .f32, .f16, .bf16)
        try Check.minRank(op, "x", x, 1)
        try Check.nonEmpty(op, "x", x)
        try Check.sameShape(op, ("x", x), ("out", out))
        try Check.shape(op, "weight", weight, [x.columns])
        return (x.rows, x.columns)
    }

    /// Returns (rows, heads, headDim).
    public static func rope(_ x: Tensor, positions: Tensor, inverseFrequencies: Tensor) throws -> (rows: Int, heads: Int, headDim: Int) {
        let op = "rope"
        try Check.dtype(op, "x", x, .f32)
        try Check.dtype(op, "positions", positions, .i32)
        try Check.dtype(op, "inverseFrequencies", inverseFrequencies, .f32)
        try Check.minRank(op, "x", x, 2)
        let d = x.shape[x.rank - 1], heads = x.shape[x.rank - 2]
        guard d % 2 == 0, d > 0 else { throw TillerError.shapeMismatch(op: op, detail: "head dim \(d) in \(x.shape) must be even") }
        let rows = x.shape.dropLast(2).reduce(1, *)
        try Check.shape(op, "positions", positions, [rows])
        try Check.shape(op, "inverseFrequencies", inverseFrequencies, [d / 2])
        return (rows, heads, d)
    }

    public static func elementwise(_ op: String, _ a: Tensor, _ b: Tensor, out: Tensor) throws -> (count: Int, broadcastRow: Bool) {
        for (name, t) in [("a", a), ("b", b), ("out", out)] { try Check.dtype(op, name, t, .f32) }
        try Check.sameShape(op, ("a", a), ("out", out))
        if a.shape == b.shape { return (a.count, false) }
        guard b.rank == 1, b.shape[0] == a.columns else {
            throw TillerError.shapeMismatch(op: op, detail: "b \(b.shape) is neither a's shape \(a.shape) nor one row [\(a.columns)]")
        }
        return (a.count, true)
    }

    public static func unary(_ op: String, _ x: Tensor, out: Tensor) throws {
        try Check.dtype(op, "x", x, .f32)
        try Check.dtype(op, "out", out, .f32)
        try Check.sameShape(op, ("x", x), ("out", out))
    }

    /// Returns (M, d, N).
    public static func gatherRows(_ x: Tensor, indices: Tensor, out: Tensor) throws -> (m: Int, d: Int, n: Int) {
        let op = "gatherRows"
        try Check.dtype(op, "x", x, .f32)
        try Check.dtype(op, "indices", indices, .i32)
        try Check.dtype(op, "out", out, .f32)
        guard x.rank == 2 else { throw TillerError.shapeMismatch(op: op, detail: "x \(x.shape) must be [N, d]") }
        try Check.shape(op, "out", out, [indices.count, x.shape[1]])
        return (indices.count, x.shape[1], x.shape[0])
    }

    /// Returns (rows, columns).
    public static func rowReduce(_ op: String, _ x: Tensor, out: Tensor, outDType: DType = .f32) throws -> (rows: Int, cols: Int) {
        try Check.dtype(op, "x", x, .f32)
        try Check.dtype(op, "out", out, outDType)
        try Check.minRank(op, "x", x, 1)
        try Check.nonEmpty(op, "x", x)
        try Check.shape(op, "out", out, Array(x.shape.dropLast()))
        return (x.rows, x.columns)
    }

    public static func topK(_ x: Tensor, k: Int, values: Tensor, indices: Tensor) throws -> (rows: Int, cols: Int) {
        let op = "topK"
        try Check.dtype(op, "x", x, .f32)
        try Check.dtype(op, "values", values, .f32)
        try Check.dtype(op, "indices", indices, .i32)
        try Check.minRank(op, "x", x, 1)
        try Check.nonEmpty(op, "x", x)
        guard k >= 1, k <= x.columns else {
            throw TillerError.invalidArgument(op: op, detail: "k = \(k) must be in 1...\(x.columns)")
        }
        let shape = Array(x.shape.dropLast()) + [k]
        try Check.shape(op, "values", values, shape)
        try Check.shape(op, "indices", indices, shape)
        return (x.rows, x.columns)
    }

    public static func rowDot(_ a: Tensor, _ b: Tensor, out: Tensor) throws -> (rows: Int, cols: Int, broadcast: Bool) {
        let (rows, cols) = try rowReduce("rowDot", a, out: out)
        try Check.dtype("rowDot", "b", b, .f32)
        if b.shape == a.shape { return (rows, cols, false) }
        guard b.shape == [cols] else {
            throw TillerError.shapeMismatch(op: "rowDot", detail: "b \(b.shape) is neither a's shape \(a.shape) nor one row [\(cols)]")
        }
        return (rows, cols, true)
    }

    /// Returns (M, d, N).
    public static func meanRows(_ x: Tensor, indices: Tensor, out: Tensor) throws -> (m: Int, d: Int, n: Int) {
        let op = "meanRows"
        try Check.dtype(op, "x", x, .f32)
        try Check.dtype(op, "indices", indices, .i32)
        try Check.dtype(op, "out", out, .f32)
        guard x.rank == 2 else { throw TillerError.shapeMismatch(op: op, detail: "x \(x.shape) must be [N, d]") }
        try Check.nonEmpty(op, "indices", indices)
        try Check.shape(op, "out", out, [x.shape[1]])
        return (indices.count, x.shape[1], x.shape[0])
    }

    public static func copy(_ src: Tensor, _ dst: Tensor) throws {
        guard src.dtype == dst.dtype, src.count == dst.count else {
            throw TillerError.shapeMismatch(op: "copy", detail: "src \(src) and dst \(dst) differ in dtype or element count")
        }
    }
}
