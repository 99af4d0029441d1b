// Bad input must come back as a TillerError that names the op, on every backend, never as a
// trap or a silent out-of-bounds access: index values in particular are data, not shapes, and
// a backend that checks them late (or not at all) reads or writes outside its buffers.

import Testing
import TillerCore

enum ErrorKind: String, Sendable {
    case shape, dtype, empty, index, invalid

    func matches(_ error: TillerError) -> Bool {
        switch (self, error) {
        case (.shape, .shapeMismatch), (.dtype, .dtypeMismatch), (.empty, .emptyTensor),
             (.index, .indexOutOfRange), (.invalid, .invalidArgument): return true
        default: return false
        }
    }
}

struct ErrorCase: Sendable, CustomTestStringConvertible {
    var op: String
    var what: String
    var kinds: [ErrorKind]
    var attempt: @Sendable (any Backend) throws -> Void

    init(_ op: String, _ what: String, _ kinds: ErrorKind..., attempt: @escaping @Sendable (any Backend) throws -> Void) {
        self.op = op
        self.what = what
        self.kinds = kinds
        self.attempt = attempt
    }

    var testDescription: String { "\(op): \(what)" }
}

/// A small f32 tensor of ones (contents never matter here: every call must fail validation).
func ones(_ b: any Backend, _ shape: [Int], _ dtype: DType = .f32) throws -> Tensor {
    try b.tensor([Float](repeating: 1, count: shape.reduce(1, *)), shape: shape, dtype: dtype)
}

func ids(_ b: any Backend, _ values: [Int32]) throws -> Tensor {
    try b.tensor(ints: values, shape: [values.count])
}

func heads(_ b: any Backend, count: Int, dim: Int, activations: [Int32]? = nil) throws -> PSRHeads {
    PSRHeads(w: try ones(b, [count, dim]), bias: try ones(b, [count]), z: try ones(b, [count, dim]),
             activation: try b.tensor(ints: activations ?? [Int32](repeating: 0, count: count), shape: [count]))
}

let errorCases: [ErrorCase] = [
    // matmul
    ErrorCase("matmul", "K of x and w differ", .shape) { b in
        try b.matmul(ones(b, [2, 5]), ones(b, [3, 6]), layout: .nk, bias: nil, accumulate: false, out: ones(b, [2, 3]))
    },
    ErrorCase("matmul", "out has the wrong N", .shape) { b in
        try b.matmul(ones(b, [2, 5]), ones(b, [5, 3], .f16), layout: .kn, bias: nil, accumulate: false, out: ones(b, [2, 4]))
    },
    ErrorCase("matmul", "bias has the wrong length", .shape) { b in
        try b.matmul(ones(b, [2, 5]), ones(b, [3, 5]), layout: .nk, bias: ones(b, [5]), accumulate: false, out: ones(b, [2, 3]))
    },
    ErrorCase("matmul", "batched w with an unbatched x", .shape) { b in
        try b.matmul(ones(b, [2, 5]), ones(b, [2, 3, 5], .bf16), layout: .nk, bias: nil, accumulate: false, out: ones(b, [2, 3]))
    },
    ErrorCase("matmul", "x is f16", .dtype) { b in
        try b.matmul(ones(b, [2, 5], .f16), ones(b, [3, 5]), layout: .nk, bias: nil, accumulate: false, out: ones(b, [2, 3]))
    },
    ErrorCase("matmul", "w is i32", .dtype) { b in
        try b.matmul(ones(b, [2, 5]), ones(b, [3, 5], .i32), layout: .nk, bias: nil, accumulate: false, out: ones(b, [2, 3]))
    },
    ErrorCase("matmul", "x has no rows", .empty) { b in
        try b.matmul(ones(b, [0, 5]), ones(b, [3, 5]), layout: .nk, bias: nil, accumulate: false, out: ones(b, [0, 3]))
    },

    // attention
    ErrorCase("attention", "q and k head dims differ", .shape) { b in
        try b.attention(q: ones(b, [1, 2, 2, 8]), k: ones(b, [1, 4, 1, 16]), v: ones(b, [1, 4, 1, 16]),
                        batch: SequenceBatch(lengths: [2]), options: AttentionOptions(scale: 1), out: ones(b, [1, 2, 2, 8]))
    },
    ErrorCase("attention", "query heads not a multiple of KV heads", .shape) { b in
        try b.attention(q: ones(b, [1, 2, 3, 8]), k: ones(b, [1, 4, 2, 8]), v: ones(b, [1, 4, 2, 8]),
                        batch: SequenceBatch(lengths: [2]), options: AttentionOptions(scale: 1), out: ones(b, [1, 2, 3, 8]))
    },
    ErrorCase("attention", "q is bf16", .dtype) { b in
        try b.attention(q: ones(b, [1, 2, 2, 8], .bf16), k: ones(b, [1, 4, 1, 8]), v: ones(b, [1, 4, 1, 8]),
                        batch: SequenceBatch(lengths: [2]), options: AttentionOptions(scale: 1), out: ones(b, [1, 2, 2, 8]))
    },
    ErrorCase("attention", "sequence runs past the cache", .index) { b in
        try b.attention(q: ones(b, [2, 3, 2, 8]), k: ones(b, [2, 4, 1, 8]), v: ones(b, [2, 4, 1, 8]),
                        batch: SequenceBatch(starts: [0, 2], lengths: [3, 3]), options: AttentionOptions(scale: 1),
                        out: ones(b, [2, 3, 2, 8]))
    },
    ErrorCase("attention", "length longer than T", .index) { b in
        try b.attention(q: ones(b, [1, 2, 2, 8]), k: ones(b, [1, 4, 1, 8]), v: ones(b, [1, 4, 1, 8]),
                        batch: SequenceBatch(lengths: [3]), options: AttentionOptions(scale: 1), out: ones(b, [1, 2, 2, 8]))
    },
    ErrorCase("attention", "sliding window of zero", .invalid) { b in
        try b.attention(q: ones(b, [1, 2, 2, 8]), k: ones(b, [1, 4, 1, 8]), v: ones(b, [1, 4, 1, 8]),
                        batch: SequenceBatch(lengths: [2]), options: AttentionOptions(scale: 1, slidingWindow: 0),
                        out: ones(b, [1, 2, 2, 8]))
    },

    // cacheAppend
    ErrorCase("cacheAppend", "row shapes differ", .shape) { b in
        try b.cacheAppend(ones(b, [1, 2, 2, 8]), into: ones(b, [1, 5, 2, 4]), batch: SequenceBatch(lengths: [2]))
    },
    ErrorCase("cacheAppend", "f32 rows into an f16 cache", .dtype) { b in
        try b.cacheAppend(ones(b, [1, 2, 8]), into: ones(b, [1, 5, 8], .f16), batch: SequenceBatch(lengths: [2]))
    },
    ErrorCase("cacheAppend", "rows past the end of the cache", .index) { b in
        try b.cacheAppend(ones(b, [2, 2, 8]), into: ones(b, [2, 5, 8]), batch: SequenceBatch(starts: [0, 4], lengths: [2, 2]))
    },
    ErrorCase("cacheAppend", "negative start", .index) { b in
        try b.cacheAppend(ones(b, [1, 2, 8]), into: ones(b, [1, 5, 8]), batch: SequenceBatch(starts: [-1], lengths: [2]))
    },

    // psrHead
    ErrorCase("psrHead", "head index past the last head", .index) { b in
        try b.psrHead(ones(b, [3, 8]), heads: heads(b, count: 2, dim: 8), headIndex: ids(b, [0, 1, 2]),
                      alpha: ones(b, [3]), lambda: ones(b, [3]))
    },
    ErrorCase("psrHead", "head index below -1", .index) { b in
        try b.psrHead(ones(b, [3, 8]), heads: heads(b, count: 2, dim: 8), headIndex: ids(b, [-2, 0, 1]),
                      alpha: ones(b, [3]), lambda: ones(b, [3]))
    },
    ErrorCase("psrHead", "unknown activation", .invalid) { b in
        try b.psrHead(ones(b, [3, 8]), heads: heads(b, count: 2, dim: 8, activations: [0, 7]), headIndex: ids(b, [0, 1, -1]),
                      alpha: ones(b, [3]), lambda: ones(b, [3]))
    },
    ErrorCase("psrHead", "w has the wrong width", .shape) { b in
        try b.psrHead(ones(b, [3, 8]), heads: heads(b, count: 2, dim: 7), headIndex: ids(b, [0, 1, -1]),
                      alpha: ones(b, [3]), lambda: ones(b, [3]))
    },
    ErrorCase("psrHead", "headIndex is f32", .dtype) { b in
        try b.psrHead(ones(b, [3, 8]), heads: heads(b, count: 2, dim: 8), headIndex: ones(b, [3]),
                      alpha: ones(b, [3]), lambda: ones(b, [3]))
    },
    ErrorCase("psrHead", "no heads", .empty) { b in
        try b.psrHead(ones(b, [3, 8]), heads: heads(b, count: 0, dim: 8), headIndex: ids(b, [-1, -1, -1]),
                      alpha: ones(b, [3]), lambda: ones(b, [3]))
    },

    // embedding
    ErrorCase("embedding", "id equal to the vocabulary size", .index) { b in
        try b.embedding(table: ones(b, [10, 4], .f16), ids: ids(b, [3, 10]), scale: 1, out: ones(b, [2, 4]))
    },
    ErrorCase("embedding", "negative id", .index) { b in
        try b.embedding(table: ones(b, [10, 4]), ids: ids(b, [-1]), scale: 1, out: ones(b, [1, 4]))
    },
    ErrorCase("embedding", "out has the wrong width", .shape) { b in
        try b.embedding(table: ones(b, [10, 4]), ids: ids(b, [1]), scale: 1, out: ones(b, [1, 5]))
    },
    ErrorCase("embedding", "ids are f32", .dtype) { b in
        try b.embedding(table: ones(b, [10, 4]), ids: ones(b, [1]), scale: 1, out: ones(b, [1, 4]))
    },
    ErrorCase("embedding", "empty table", .empty) { b in
        try b.embedding(table: ones(b, [0, 4]), ids: ids(b, []), scale: 1, out: ones(b, [0, 4]))
    },

    // rmsNorm, rope
    ErrorCase("rmsNorm", "weight has the wrong length", .shape) { b in
        try b.rmsNorm(ones(b, [2, 8]), weight: ones(b, [7]), eps: 1e-6, unitOffset: false, out: ones(b, [2, 8]))
    },
    ErrorCase("rmsNorm", "weight is i32", .dtype) { b in
        try b.rmsNorm(ones(b, [2, 8]), weight: ones(b, [8], .i32), eps: 1e-6, unitOffset: false, out: ones(b, [2, 8]))
    },
    ErrorCase("rmsNorm", "no rows", .empty) { b in
        try b.rmsNorm(ones(b, [0, 8]), weight: ones(b, [8]), eps: 1e-6, unitOffset: false, out: ones(b, [0, 8]))
    },
    ErrorCase("rope", "odd head dim", .shape) { b in
        try b.rope(ones(b, [2, 1, 7]), positions: ids(b, [0, 1]), inverseFrequencies: ones(b, [3]))
    },
    ErrorCase("rope", "one position short", .shape) { b in
        try b.rope(ones(b, [3, 2, 8]), positions: ids(b, [0, 1]), inverseFrequencies: ones(b, [4]))
    },
    ErrorCase("rope", "positions are f32", .dtype) { b in
        try b.rope(ones(b, [2, 2, 8]), positions: ones(b, [2]), inverseFrequencies: ones(b, [4]))
    },

    // elementwise
    ErrorCase("gatedActivation", "gate and up differ", .shape) { b in
        try b.gatedActivation(.silu, gate: ones(b, [2, 8]), up: ones(b, [2, 7]), out: ones(b, [2, 8]))
    },
    ErrorCase("gatedActivation", "up is f16", .dtype) { b in
        try b.gatedActivation(.geluTanh, gate: ones(b, [2, 8]), up: ones(b, [2, 8], .f16), out: ones(b, [2, 8]))
    },
    ErrorCase("add", "b is neither a's shape nor one row", .shape) { b in
        try b.add(ones(b, [3, 8]), ones(b, [3, 1]), out: ones(b, [3, 8]))
    },
    ErrorCase("add", "out is bf16", .dtype) { b in
        try b.add(ones(b, [3, 8]), ones(b, [8]), out: ones(b, [3, 8], .bf16))
    },
    ErrorCase("mul", "broadcast row of the wrong width", .shape) { b in
        try b.mul(ones(b, [3, 8]), ones(b, [3]), out: ones(b, [3, 8]))
    },
    ErrorCase("scale", "out has another shape", .shape) { b in
        try b.scale(ones(b, [3, 8]), by: 2, out: ones(b, [8, 3]))
    },
    ErrorCase("softmax", "no rows", .empty) { b in
        try b.softmax(ones(b, [0, 8]), out: ones(b, [0, 8]))
    },
    ErrorCase("softmax", "x is i32", .dtype) { b in
        try b.softmax(ones(b, [2, 8], .i32), out: ones(b, [2, 8]))
    },
    ErrorCase("softcap", "cap of zero", .invalid) { b in
        try b.softcap(ones(b, [2, 8]), cap: 0, out: ones(b, [2, 8]))
    },
    ErrorCase("gatherRows", "index equal to the row count", .index) { b in
        try b.gatherRows(ones(b, [4, 8]), indices: ids(b, [0, 4]), out: ones(b, [2, 8]))
    },
    ErrorCase("gatherRows", "negative index", .index) { b in
        try b.gatherRows(ones(b, [4, 8]), indices: ids(b, [-1]), out: ones(b, [1, 8]))
    },
    ErrorCase("gatherRows", "out has the wrong row count", .shape) { b in
        try b.gatherRows(ones(b, [4, 8]), indices: ids(b, [0, 1]), out: ones(b, [3, 8]))
    },
    ErrorCase("copy", "element counts differ", .shape) { b in
        try b.copy(ones(b, [3, 8]), to: ones(b, [25]))
    },
    ErrorCase("copy", "dtypes differ", .shape) { b in
        try b.copy(ones(b, [8], .f16), to: ones(b, [8], .bf16))
    },

    // sampling and reductions
    ErrorCase("argmax", "out is f32", .dtype) { b in
        try b.argmax(ones(b, [2, 8]), out: ones(b, [2]))
    },
    ErrorCase("argmax", "no columns", .empty) { b in
        try b.argmax(ones(b, [2, 0]), out: ones(b, [2], .i32))
    },
    ErrorCase("topK", "k larger than the row", .invalid) { b in
        try b.topK(ones(b, [2, 8]), k: 9, values: ones(b, [2, 9]), indices: ones(b, [2, 9], .i32))
    },
    ErrorCase("topK", "k of zero", .invalid) { b in
        try b.topK(ones(b, [2, 8]), k: 0, values: ones(b, [2, 0]), indices: ones(b, [2, 0], .i32))
    },
    ErrorCase("topK", "indices have the wrong shape", .shape) { b in
        try b.topK(ones(b, [2, 8]), k: 3, values: ones(b, [2, 3]), indices: ones(b, [2, 4], .i32))
    },
    ErrorCase("rowDot", "b is neither a's shape nor one row", .shape) { b in
        try b.rowDot(ones(b, [3, 8]), ones(b, [2, 8]), out: ones(b, [3]))
    },
    ErrorCase("rowNorm", "out has the wrong length", .shape) { b in
        try b.rowNorm(ones(b, [3, 8]), out: ones(b, [8]))
    },
    ErrorCase("rowNorm", "empty x", .empty) { b in
        try b.rowNorm(ones(b, [0, 8]), out: ones(b, [0]))
    },
    ErrorCase("meanRows", "index equal to the row count", .index) { b in
        try b.meanRows(ones(b, [4, 8]), indices: ids(b, [1, 4]), out: ones(b, [8]))
    },
    ErrorCase("meanRows", "no indices", .empty) { b in
        try b.meanRows(ones(b, [4, 8]), indices: ids(b, []), out: ones(b, [8]))
    },
]

/// Runs on the reference too: it is a backend callers may use, and it defines the error kinds.
@Test(arguments: errorCases)
func rejects(_ c: ErrorCase) {
    expectRejection(c, on: [ReferenceBackend()] + backendsUnderTest())
}

/// Runs a case on each backend, the reference first: every one must throw the expected kind of
/// error with the reference's message (and the validation layer stay quiet).
func expectRejection(_ c: ErrorCase, on backends: [any Backend]) {
    // The shape, dtype and index rules live in TillerCore and are shared, so every backend must
    // say exactly what the reference says.
    var referenceMessage: String?
    for backend in backends {
        do {
            let (_, validation) = try exclusively(backend) {
                try c.attempt(backend)
                try backend.synchronize()
            }
            for message in validation { Issue.record(Comment(rawValue: "[\(c.testDescription)] on \(backend.name): validation layer: \(message)")) }
            Issue.record(Comment(rawValue: "[\(c.testDescription)] on \(backend.name): did not throw"))
        } catch let error as TillerError {
            if !c.kinds.contains(where: { $0.matches(error) }) {
                Issue.record(Comment(rawValue: "[\(c.testDescription)] on \(backend.name): expected \(c.kinds.map(\.rawValue)) error, got \(error)"))
            }
            if let referenceMessage, error.description != referenceMessage {
                Issue.record(Comment(rawValue: "[\(c.testDescription)] on \(backend.name): says '\(error)', the reference says '\(referenceMessage)'"))
            }
            if backend is ReferenceBackend { referenceMessage = error.description }
            if !error.description.hasPrefix("\(c.op):") {
                Issue.record(Comment(rawValue: "[\(c.testDescription)] on \(backend.name): message does not name the op: \(error)"))
            }
        } catch {
            Issue.record(Comment(rawValue: "[\(c.testDescription)] on \(backend.name): threw \(error), not a TillerError"))
        }
    }
}
