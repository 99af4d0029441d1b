import Foundation
import Testing
import TillerCore

/// The reference is the yardstick of every backend, so it is checked here against values
/// worked out by hand.
@Suite struct ReferenceBackendTests {
    let ref = ReferenceBackend()

    func close(_ a: [Float], _ b: [Float], _ tolerance: Float = 1e-6) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) <= tolerance * max(1, abs($1)) }
    }

    @Test func matmulBothLayoutsBiasAndAccumulate() throws {
        let x = try ref.tensor([1, 2, 3, 4], shape: [2, 2])
        let wNK = try ref.tensor([1, 0, 1, 1, 0, 2], shape: [3, 2])   // rows: (1,0), (1,1), (0,2)
        let out = try ref.empty([2, 3])
        try ref.matmul(x, wNK, layout: .nk, bias: ref.tensor([10, 20, 30], shape: [3]), accumulate: false, out: out)
        #expect(try ref.floats(out) == [11, 23, 34, 13, 27, 38])
        let wKN = try ref.tensor([1, 1, 0, 0, 1, 2], shape: [2, 3])   // the same matrix transposed
        try ref.matmul(x, wKN, layout: .kn, bias: nil, accumulate: true, out: out)
        #expect(try ref.floats(out) == [12, 26, 38, 16, 34, 46])
        // bf16 weights hold these small integers exactly.
        try ref.matmul(x, try ref.tensor([1, 0, 1, 1, 0, 2], shape: [3, 2], dtype: .bf16), layout: .nk, bias: nil, accumulate: false, out: out)
        #expect(try ref.floats(out) == [1, 3, 4, 3, 7, 8])
    }

    @Test func attentionByHand() throws {
        // One head, D = 1, three positions with keys 0, 0, ln 2 and values 1, 2, 3.
        let k = try ref.tensor([0, 0, Float(log(2.0))], shape: [1, 3, 1, 1])
        let v = try ref.tensor([1, 2, 3], shape: [1, 3, 1, 1])
        let q = try ref.tensor([1, 1, 1], shape: [1, 3, 1, 1])
        let out = try ref.empty([1, 3, 1, 1])
        try ref.attention(q: q, k: k, v: v, batch: SequenceBatch(lengths: [3]), options: AttentionOptions(scale: 1), out: out)
        // Position 0 sees value 1; position 1 averages 1 and 2; position 2 weighs 1 : 1 : 2.
        #expect(close(try ref.floats(out), [1, 1.5, (1 + 2 + 2 * 3) / 4.0]))
        // A window of 1 sees only its own position; padding rows come out zero.
        try ref.attention(q: q, k: k, v: v, batch: SequenceBatch(lengths: [2]), options: AttentionOptions(scale: 1, slidingWindow: 1), out: out)
        #expect(try ref.floats(out) == [1, 2, 0])
    }

    @Test func psrHeadEachActivation() throws {
        // h rows (1, 2) and (-3, 0); head 0: w = (1, 1), b = -1, z = (10, 0); head 1: constant, z = (0, 1).
        let heads = try ref.psrHeads(w: [1, 1, 0, 0], bias: [-1, 0], z: [10, 0, 0, 1], activations: [.relu, .constant], dim: 2)
        let h = try ref.tensor([1, 2, -3, 0, 5, 5], shape: [3, 2])
        let lambda = try ref.empty([3])
        try ref.psrHead(h, heads: heads, headIndex: ref.tensor(ints: [0, 0, 1], shape: [3]), alpha: ref.tensor([0.5, 1, 2], shape: [3]), lambda: lambda)
        // Row 0: relu(1 + 2 - 1) = 2, h += 0.5 * 2 * z0. Row 1: relu(-4) = 0. Row 2: 1, h += 2 * z1.
        #expect(try ref.floats(lambda) == [2, 0, 1])
        #expect(try ref.floats(h) == [11, 2, -3, 0, 5, 7])
        // Identity is Stolfo's projection: w = -u, b = c, z = u sets the projection on u to c.
        let stolfo = try ref.psrHeads(w: [-1, 0], bias: [4], z: [1, 0], activations: [.identity], dim: 2)
        let g = try ref.tensor([1, 9], shape: [1, 2])
        try ref.psrHead(g, heads: stolfo, headIndex: ref.tensor(ints: [0], shape: [1]), alpha: ref.tensor([1], shape: [1]), lambda: ref.empty([1]))
        #expect(try ref.floats(g) == [4, 9])
    }

    @Test func normsAndActivationsByHand() throws {
        let x = try ref.tensor([3, 4], shape: [1, 2])
        let out = try ref.empty([1, 2])
        // rms = sqrt((9 + 16) / 2); with weight (1, 2) and the Gemma (1 + w) form (2, 3).
        try ref.rmsNorm(x, weight: ref.tensor([1, 2], shape: [2]), eps: 0, unitOffset: false, out: out)
        let rms = Float((12.5).squareRoot())
        #expect(close(try ref.floats(out), [3 / rms, 8 / rms]))
        try ref.rmsNorm(x, weight: ref.tensor([1, 2], shape: [2]), eps: 0, unitOffset: true, out: out)
        #expect(close(try ref.floats(out), [6 / rms, 12 / rms]))
        try ref.softmax(ref.tensor([0, Float(log(2.0))], shape: [1, 2]), out: out)
        #expect(close(try ref.floats(out), [1.0 / 3, 2.0 / 3]))
        // silu(0) * up = 0; silu(x) = x * sigmoid(x): silu(ln 3) = ln 3 * 3/4.
        try ref.gatedActivation(.silu, gate: ref.tensor([0, Float(log(3.0))], shape: [1, 2]), up: ref.tensor([5, 2], shape: [1, 2]), out: out)
        #expect(close(try ref.floats(out), [0, Float(log(3.0)) * 0.75 * 2]))
        try ref.softcap(ref.tensor([0, 1000], shape: [1, 2]), cap: 30, out: out)
        #expect(close(try ref.floats(out), [0, 30]))
    }

    @Test func ropeRotatesPairsHalfApart() throws {
        // D = 4: pairs (0, 2) and (1, 3); frequencies 1 and 0; position 1 rotates the first pair by 1 radian.
        let x = try ref.tensor([1, 1, 0, 0], shape: [1, 1, 4])
        try ref.rope(x, positions: ref.tensor(ints: [1], shape: [1]), inverseFrequencies: ref.tensor([1, 0], shape: [2]))
        #expect(close(try ref.floats(x), [Float(cos(1.0)), 1, Float(sin(1.0)), 0]))
    }

    @Test func samplingSupportAndReductions() throws {
        let x = try ref.tensor([1, 5, 3, 5, -1, 0], shape: [2, 3])
        let index = try ref.empty([2], .i32)
        try ref.argmax(x, out: index)
        #expect(try ref.ints(index) == [1, 0])   // first of equal maxima
        let values = try ref.empty([2, 2]), indices = try ref.empty([2, 2], .i32)
        try ref.topK(x, k: 2, values: values, indices: indices)
        #expect(try ref.floats(values) == [5, 3, 5, 0])
        #expect(try ref.ints(indices) == [1, 2, 0, 2])
        let norms = try ref.empty([2])
        try ref.rowNorm(ref.tensor([3, 4, 0, 0], shape: [2, 2]), out: norms)
        #expect(try ref.floats(norms) == [5, 0])
        try ref.rowDot(ref.tensor([1, 2, 3, 4], shape: [2, 2]), ref.tensor([1, 1], shape: [2]), out: norms)
        #expect(try ref.floats(norms) == [3, 7])
        let mean = try ref.empty([2])
        try ref.meanRows(ref.tensor([1, 2, 3, 4, 5, 6], shape: [3, 2]), indices: ref.tensor(ints: [0, 2], shape: [2]), out: mean)
        #expect(try ref.floats(mean) == [3, 4])
    }

    @Test func cacheAppendPlacesRowsAtEachSequenceStart() throws {
        let cache = try ref.empty([2, 4, 1])
        try ref.cacheAppend(ref.tensor([1, 2, 3, 4], shape: [2, 2, 1]), into: cache, batch: SequenceBatch(starts: [1, 3], lengths: [2, 1]))
        #expect(try ref.floats(cache) == [0, 1, 2, 0, 0, 0, 0, 3])
    }
}
