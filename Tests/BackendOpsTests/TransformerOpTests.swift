// The rest of a transformer forward: embedding, norms, rotary embedding, activations,
// elementwise arithmetic, row gathers and copies. Shapes avoid multiples of the 16-lane vector
// width so every vector tail is hit, and a few are large enough for the CPU backend to split
// them across threads (2^15 elements per thread).

import Testing
import TillerCore

/// Shapes for the row-wise and elementwise ops: a scalar row, one row, odd sizes, a rank-3
/// tensor, and one large enough to be split across threads.
let rowShapes: [[Int]] = [[1, 1], [1, 17], [3, 17], [7, 33], [5, 127], [2, 3, 65], [1, 1000], [600, 129]]

// MARK: - embedding

struct EmbeddingCase: Sendable, CustomTestStringConvertible {
    var vocab: Int, dim: Int, ids: Int
    var dtype: DType
    var scale: Float = 1
    var testDescription: String { "table \(vocab)x\(dim) \(dtype), \(ids) ids, scale \(scale)" }

    static let all: [EmbeddingCase] = [
        EmbeddingCase(vocab: 1, dim: 1, ids: 1, dtype: .f32),
        EmbeddingCase(vocab: 37, dim: 17, ids: 20, dtype: .f32),
        EmbeddingCase(vocab: 37, dim: 17, ids: 20, dtype: .f16, scale: Float(17).squareRoot()),
        EmbeddingCase(vocab: 37, dim: 17, ids: 20, dtype: .bf16),
        EmbeddingCase(vocab: 100, dim: 64, ids: 3, dtype: .bf16, scale: 8),
        EmbeddingCase(vocab: 5, dim: 127, ids: 33, dtype: .f16),
        EmbeddingCase(vocab: 9, dim: 33, ids: 0, dtype: .f32),
        EmbeddingCase(vocab: 50, dim: 1000, ids: 70, dtype: .f16, scale: -0.5),
    ]
}

@Test(arguments: EmbeddingCase.all)
func embedding(_ c: EmbeddingCase) {
    var rng = caseRNG("embedding \(c.testDescription)")
    let table = rng.uniforms(c.vocab * c.dim)
    // The first and last rows always appear, plus repeats.
    var ids = (0..<c.ids).map { _ in Int32(rng.int(0..<c.vocab)) }
    if c.ids >= 2 { ids[0] = 0; ids[c.ids - 1] = Int32(c.vocab - 1) }
    checkAgainstReference("embedding \(c.testDescription)", maxNMSE: Tolerance.exact) { run in
        let tableTensor = try run.input(table, [c.vocab, c.dim], c.dtype)
        let idTensor = try run.input(ints: ids, [c.ids])
        let out = try run.output("out", [c.ids, c.dim])
        try run.backend.embedding(table: tableTensor, ids: idTensor, scale: c.scale, out: out)
    }
}

// MARK: - rmsNorm

struct RMSNormCase: Sendable, CustomTestStringConvertible {
    var shape: [Int]
    var dtype: DType
    var unitOffset: Bool
    var eps: Float
    var testDescription: String { "x \(shapeName(shape)), weight \(dtype)\(unitOffset ? ", 1 + w" : ""), eps \(eps)" }

    static let all: [RMSNormCase] = rowShapes.enumerated().map { i, shape in
        RMSNormCase(shape: shape, dtype: [DType.f32, .f16, .bf16][i % 3], unitOffset: i % 2 == 1, eps: i % 4 < 2 ? 1e-6 : 1e-5)
    } + [RMSNormCase(shape: [17], dtype: .bf16, unitOffset: true, eps: 1e-6)]
}

@Test(arguments: RMSNormCase.all)
func rmsNorm(_ c: RMSNormCase) {
    var rng = caseRNG("rmsNorm \(c.testDescription)")
    let x = rng.uniforms(c.shape.reduce(1, *), -3, 3), weight = rng.uniforms(c.shape.last!, -2, 2)
    checkAgainstReference("rmsNorm \(c.testDescription)", maxNMSE: Tolerance.elementwise) { run in
        let xt = try run.input(x, c.shape), wt = try run.input(weight, [c.shape.last!], c.dtype)
        let out = try run.output("out", c.shape)
        try run.backend.rmsNorm(xt, weight: wt, eps: c.eps, unitOffset: c.unitOffset, out: out)
    }
}

// MARK: - rope

struct RoPECase: Sendable, CustomTestStringConvertible {
    var leading: [Int]
    var heads: Int, headDim: Int
    var scaling: RoPEScaling = .none
    var maxPosition: Int = 64
    var shape: [Int] { leading + [heads, headDim] }
    var testDescription: String { "x \(shapeName(shape)), positions < \(maxPosition), \(scaling)" }

    static let all: [RoPECase] = [
        RoPECase(leading: [1], heads: 1, headDim: 2),
        RoPECase(leading: [5], heads: 3, headDim: 8),
        RoPECase(leading: [7], heads: 2, headDim: 34),
        RoPECase(leading: [2, 9], heads: 14, headDim: 8),
        RoPECase(leading: [3, 1], heads: 4, headDim: 64, maxPosition: 9000),
        RoPECase(leading: [17], heads: 2, headDim: 64, scaling: .linear(factor: 4), maxPosition: 5000),
        RoPECase(leading: [11], heads: 3, headDim: 128,
                 scaling: .llama3(factor: 8, lowFrequencyFactor: 1, highFrequencyFactor: 4, originalMaxPositions: 8192),
                 maxPosition: 20000),
        // Enough elements for the CPU backend to split rows across threads.
        RoPECase(leading: [300], heads: 4, headDim: 64, maxPosition: 4096),
    ]
}

@Test(arguments: RoPECase.all)
func rope(_ c: RoPECase) {
    var rng = caseRNG("rope \(c.testDescription)")
    let x = rng.uniforms(c.shape.reduce(1, *))
    let rows = c.leading.reduce(1, *)
    var positions = (0..<rows).map { _ in Int32(rng.int(0..<c.maxPosition)) }
    positions[0] = 0
    let frequencies = c.scaling.inverseFrequencies(theta: 10_000, headDim: c.headDim)
    checkAgainstReference("rope \(c.testDescription)", maxNMSE: Tolerance.elementwise) { run in
        let p = try run.input(ints: positions, [rows]), f = try run.input(frequencies, [c.headDim / 2])
        let xt = try run.output("x", c.shape, initial: x)
        try run.backend.rope(xt, positions: p, inverseFrequencies: f)
    }
}

// MARK: - gatedActivation

@Test(arguments: GatedActivation.allCases, rowShapes)
func gatedActivation(_ kind: GatedActivation, _ shape: [Int]) {
    let name = "gatedActivation \(kind) \(shapeName(shape))"
    var rng = caseRNG(name)
    // Wide enough to reach both saturated tails of silu and gelu. In gelu's negative tail f32
    // computes 1 + tanh(...) with total cancellation (so does PyTorch): the error there is
    // absolute, about 1e-7 * |x * up|, and tiny results carry no correct digits. So element 0
    // always sits in the well-conditioned positive range, giving every tensor a scale against
    // which those absolute errors are measured.
    var gate = rng.uniforms(shape.reduce(1, *), -10, 10), up = rng.uniforms(shape.reduce(1, *), -2, 2)
    gate[0] = rng.uniform(2, 10)
    up[0] = rng.uniform(0.5, 2) * (rng.next() & 1 == 0 ? 1 : -1)
    checkAgainstReference(name, maxNMSE: Tolerance.elementwise) { run in
        let g = try run.input(gate, shape), u = try run.input(up, shape)
        let out = try run.output("out", shape)
        try run.backend.gatedActivation(kind, gate: g, up: u, out: out)
    }
}

// MARK: - add, mul

enum BinaryOp: String, Sendable, CaseIterable { case add, mul }

struct BinaryCase: Sendable, CustomTestStringConvertible {
    var shape: [Int]
    /// b is one row [d] applied to every row of a.
    var broadcast: Bool
    /// out is a itself, as in a residual add.
    var inPlace = false
    var bShape: [Int] { broadcast ? [shape.last!] : shape }
    var testDescription: String {
        "a \(shapeName(shape)), b \(shapeName(bShape))\(inPlace ? ", out = a" : "")"
    }

    static let all: [BinaryCase] = rowShapes.flatMap { [BinaryCase(shape: $0, broadcast: false), BinaryCase(shape: $0, broadcast: true)] }
        + [BinaryCase(shape: [70_001], broadcast: false), BinaryCase(shape: [4, 33], broadcast: false, inPlace: true),
           BinaryCase(shape: [4, 33], broadcast: true, inPlace: true)]
}

@Test(arguments: BinaryOp.allCases, BinaryCase.all)
func binary(_ op: BinaryOp, _ c: BinaryCase) {
    let name = "\(op) \(c.testDescription)"
    var rng = caseRNG(name)
    let a = rng.uniforms(c.shape.reduce(1, *), -4, 4), b = rng.uniforms(c.bShape.reduce(1, *), -4, 4)
    checkAgainstReference(name, maxNMSE: Tolerance.exact) { run in
        let bt = try run.input(b, c.bShape)
        let out = try run.output("out", c.shape, initial: c.inPlace ? a : nil)
        let at = c.inPlace ? out : try run.input(a, c.shape)
        switch op {
        case .add: try run.backend.add(at, bt, out: out)
        case .mul: try run.backend.mul(at, bt, out: out)
        }
    }
}

// MARK: - scale, softcap, softmax

@Test(arguments: [Float(0.5), -3, 0], rowShapes)
func scale(_ factor: Float, _ shape: [Int]) {
    let name = "scale by \(factor) \(shapeName(shape))"
    var rng = caseRNG(name)
    let x = rng.uniforms(shape.reduce(1, *), -5, 5)
    checkAgainstReference(name, maxNMSE: Tolerance.exact) { run in
        let xt = try run.input(x, shape)
        let out = try run.output("out", shape)
        try run.backend.scale(xt, by: factor, out: out)
    }
}

@Test func scaleInPlace() {
    var rng = caseRNG("scale in place")
    let x = rng.uniforms(3 * 37)
    checkAgainstReference("scale in place 3x37", maxNMSE: Tolerance.exact) { run in
        let out = try run.output("x", [3, 37], initial: x)
        try run.backend.scale(out, by: 1.5, out: out)
    }
}

@Test(arguments: [Float(30), 0.5], rowShapes)
func softcap(_ cap: Float, _ shape: [Int]) {
    let name = "softcap \(cap) \(shapeName(shape))"
    var rng = caseRNG(name)
    // Spans the linear middle and both saturated ends.
    let x = rng.uniforms(shape.reduce(1, *), -4 * cap, 4 * cap)
    checkAgainstReference(name, maxNMSE: Tolerance.elementwise) { run in
        let xt = try run.input(x, shape)
        let out = try run.output("out", shape)
        try run.backend.softcap(xt, cap: cap, out: out)
    }
}

/// Spreads of the logits: near-uniform rows, and rows whose exponentials overflow unless the
/// maximum is subtracted first.
@Test(arguments: [Float(1), 100], rowShapes)
func softmax(_ spread: Float, _ shape: [Int]) {
    let name = "softmax spread \(spread) \(shapeName(shape))"
    var rng = caseRNG(name)
    let x = rng.uniforms(shape.reduce(1, *), -spread, spread)
    checkAgainstReference(name, maxNMSE: Tolerance.elementwise) { run in
        let xt = try run.input(x, shape)
        let out = try run.output("out", shape)
        try run.backend.softmax(xt, out: out)
    }
}

// MARK: - gatherRows

struct GatherCase: Sendable, CustomTestStringConvertible {
    var rows: Int, dim: Int, count: Int
    var testDescription: String { "x \(rows)x\(dim), \(count) indices" }

    static let all: [GatherCase] = [
        GatherCase(rows: 1, dim: 1, count: 1), GatherCase(rows: 5, dim: 17, count: 3),
        GatherCase(rows: 3, dim: 64, count: 11), GatherCase(rows: 33, dim: 127, count: 33),
        GatherCase(rows: 8, dim: 9, count: 0),
    ]
}

@Test(arguments: GatherCase.all)
func gatherRows(_ c: GatherCase) {
    var rng = caseRNG("gatherRows \(c.testDescription)")
    let x = rng.uniforms(c.rows * c.dim)
    // Repeats and both ends of the range.
    var indices = (0..<c.count).map { _ in Int32(rng.int(0..<c.rows)) }
    if c.count >= 2 { indices[0] = Int32(c.rows - 1); indices[1] = 0 }
    checkAgainstReference("gatherRows \(c.testDescription)", maxNMSE: Tolerance.exact) { run in
        let xt = try run.input(x, [c.rows, c.dim]), it = try run.input(ints: indices, [c.count])
        let out = try run.output("out", [c.count, c.dim])
        try run.backend.gatherRows(xt, indices: it, out: out)
    }
}

// MARK: - copy

struct CopyCase: Sendable, CustomTestStringConvertible {
    var dtype: DType
    var source: [Int], destination: [Int]
    var testDescription: String { "\(dtype) \(shapeName(source)) to \(shapeName(destination))" }

    static let all: [CopyCase] = [
        CopyCase(dtype: .f32, source: [1], destination: [1]),
        CopyCase(dtype: .f32, source: [3, 17], destination: [51]),
        CopyCase(dtype: .f16, source: [7, 33], destination: [33, 7]),
        CopyCase(dtype: .bf16, source: [127], destination: [1, 127]),
        CopyCase(dtype: .i32, source: [2, 3, 5], destination: [30]),
        CopyCase(dtype: .f32, source: [600, 129], destination: [129, 600]),
        CopyCase(dtype: .f16, source: [3], destination: [3]),
    ]
}

@Test(arguments: CopyCase.all)
func copy(_ c: CopyCase) {
    var rng = caseRNG("copy \(c.testDescription)")
    let count = c.source.reduce(1, *)
    let values = rng.uniforms(count, -100, 100)
    let ints = values.map { Int32($0 * 1000) }
    checkAgainstReference("copy \(c.testDescription)", maxNMSE: Tolerance.exact) { run in
        if c.dtype == .i32 {
            let src = try run.input(ints: ints, c.source)
            try run.backend.copy(src, to: try run.output("dst", ints: c.destination))
        } else {
            let src = try run.input(values, c.source, c.dtype)
            try run.backend.copy(src, to: try run.output("dst", c.destination, c.dtype))
        }
    }
}
