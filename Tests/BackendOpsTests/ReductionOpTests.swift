// Sampling support (argmax, topK) and the reductions steering uses (rowDot, rowNorm, meanRows).

import Testing
import TillerCore

struct RankingCase: Sendable, CustomTestStringConvertible {
    var rows: Int, columns: Int
    var k: Int = 1
    /// Values drawn from a handful of integers, so the tie-breaking rule (lower index first)
    /// decides the answer; otherwise every row is tie-free and has exactly one right answer.
    var ties = false
    var testDescription: String { "x \(rows)x\(columns), k \(k)\(ties ? ", with ties" : "")" }

    func values(_ rng: inout SplitMix64) -> [Float] {
        ties ? (0..<(rows * columns)).map { _ in Float(rng.int(0..<4)) - 2 } : rng.distinctRows(rows, columns)
    }
}

let argmaxCases: [RankingCase] = [
    RankingCase(rows: 1, columns: 1), RankingCase(rows: 1, columns: 3), RankingCase(rows: 4, columns: 17),
    RankingCase(rows: 3, columns: 33), RankingCase(rows: 2, columns: 127), RankingCase(rows: 1, columns: 1000),
    RankingCase(rows: 120, columns: 600),
    RankingCase(rows: 5, columns: 17, ties: true), RankingCase(rows: 3, columns: 1, ties: true),
]

@Test(arguments: argmaxCases)
func argmax(_ c: RankingCase) {
    var rng = caseRNG("argmax \(c.testDescription)")
    let x = c.values(&rng)
    checkAgainstReference("argmax \(c.testDescription)", maxNMSE: Tolerance.exact) { run in
        let xt = try run.input(x, [c.rows, c.columns])
        try run.backend.argmax(xt, out: try run.output("out", ints: [c.rows]))
    }
}

let topKCases: [RankingCase] = [
    RankingCase(rows: 1, columns: 1, k: 1), RankingCase(rows: 1, columns: 17, k: 1), RankingCase(rows: 4, columns: 17, k: 3),
    RankingCase(rows: 3, columns: 33, k: 33), RankingCase(rows: 2, columns: 127, k: 40), RankingCase(rows: 5, columns: 1000, k: 17),
    RankingCase(rows: 4, columns: 17, k: 5, ties: true), RankingCase(rows: 2, columns: 9, k: 9, ties: true),
    // Wider than one GPU sort tile (512), with ties: the merge of tiles must keep lower columns first.
    RankingCase(rows: 2, columns: 1500, k: 600, ties: true),
]

@Test(arguments: topKCases)
func topK(_ c: RankingCase) {
    var rng = caseRNG("topK \(c.testDescription)")
    let x = c.values(&rng)
    checkAgainstReference("topK \(c.testDescription)", maxNMSE: Tolerance.exact) { run in
        let xt = try run.input(x, [c.rows, c.columns])
        let values = try run.output("values", [c.rows, c.k]), indices = try run.output("indices", ints: [c.rows, c.k])
        try run.backend.topK(xt, k: c.k, values: values, indices: indices)
    }
}

/// Rows of one element, one row, odd widths, a rank-3 input, and enough rows to be split
/// across threads.
let reductionShapes: [[Int]] = [[1, 1], [1, 17], [3, 17], [33, 64], [5, 127], [2, 3, 33], [7, 1000], [700, 100]]

@Test(arguments: [false, true], reductionShapes)
func rowDot(_ broadcast: Bool, _ shape: [Int]) {
    let bShape = broadcast ? [shape.last!] : shape
    let name = "rowDot a \(shapeName(shape)), b \(shapeName(bShape))"
    var rng = caseRNG(name)
    // One row is one dot product: non-negative operands keep it from cancelling to nothing
    // (see matmul).
    let lower: Float = shape.dropLast().reduce(1, *) == 1 ? 0 : -1
    let a = rng.uniforms(shape.reduce(1, *), lower, 1), b = rng.uniforms(bShape.reduce(1, *), lower, 1)
    checkAgainstReference(name, maxNMSE: Tolerance.accumulated) { run in
        let at = try run.input(a, shape), bt = try run.input(b, bShape)
        try run.backend.rowDot(at, bt, out: try run.output("out", Array(shape.dropLast())))
    }
}

@Test(arguments: reductionShapes)
func rowNorm(_ shape: [Int]) {
    let name = "rowNorm x \(shapeName(shape))"
    var rng = caseRNG(name)
    let x = rng.uniforms(shape.reduce(1, *), -3, 3)
    checkAgainstReference(name, maxNMSE: Tolerance.elementwise) { run in
        let xt = try run.input(x, shape)
        try run.backend.rowNorm(xt, out: try run.output("out", Array(shape.dropLast())))
    }
}

struct MeanRowsCase: Sendable, CustomTestStringConvertible {
    var rows: Int, dim: Int, count: Int
    var testDescription: String { "x \(rows)x\(dim), mean of \(count) rows" }

    static let all: [MeanRowsCase] = [
        MeanRowsCase(rows: 1, dim: 1, count: 1), MeanRowsCase(rows: 5, dim: 17, count: 1),
        MeanRowsCase(rows: 5, dim: 17, count: 3), MeanRowsCase(rows: 9, dim: 64, count: 33),
        MeanRowsCase(rows: 40, dim: 127, count: 7), MeanRowsCase(rows: 3, dim: 1000, count: 12),
    ]
}

@Test(arguments: MeanRowsCase.all)
func meanRows(_ c: MeanRowsCase) {
    var rng = caseRNG("meanRows \(c.testDescription)")
    let x = rng.uniforms(c.rows * c.dim)
    var indices = (0..<c.count).map { _ in Int32(rng.int(0..<c.rows)) }
    if c.count >= 2 { indices[0] = Int32(c.rows - 1); indices[1] = 0 }
    checkAgainstReference("meanRows \(c.testDescription)", maxNMSE: Tolerance.elementwise) { run in
        let xt = try run.input(x, [c.rows, c.dim]), it = try run.input(ints: indices, [c.count])
        try run.backend.meanRows(xt, indices: it, out: try run.output("out", [c.dim]))
    }
}
