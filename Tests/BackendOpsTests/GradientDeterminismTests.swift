// The CPU backend's backward ops give the same bits run to run: sums over rows, query blocks and
// the heads of a GQA group run in a fixed order, whichever thread computes which part. The shapes
// are large enough for the parallel paths (several attention lanes per KV head summed in scratch,
// column strips of the PSR head's and scatter's sums).

import Testing
import TillerCore
@testable import TillerCPU

/// Runs `body` twice on fresh CPU backends with the same inputs; every output must match bit for bit.
private func expectSameBits(_ name: String, _ body: (OpRun) throws -> Void) throws {
    var runs: [[(name: String, bits: [UInt32])]] = []
    for _ in 0..<2 {
        let run = OpRun(CPUBackend())
        try body(run)
        let result = try run.finish()
        for problem in result.problems { Issue.record(Comment(rawValue: "[\(name)] \(problem)")) }
        runs.append(result.values.map { output in
            switch output.values {
            case .floats(let values): return (output.name, values.map { $0.bitPattern })
            case .ints(let values): return (output.name, values.map { UInt32(bitPattern: $0) })
            }
        })
    }
    for (first, second) in zip(runs[0], runs[1]) {
        let differing = zip(first.bits, second.bits).filter { $0 != $1 }.count
        #expect(differing == 0, "[\(name)] \(first.name): \(differing) of \(first.bits.count) values differ between two runs")
    }
}

@Test func attentionBackwardIsDeterministic() throws {
    var rng = caseRNG("attentionBackward determinism")
    let cases = [
        // One sequence, two KV heads: many lanes per head, summed in scratch.
        AttentionCase.prefill("GQA 7, lanes summed in scratch", hq: 14, hkv: 2, d: 16, lengths: [200, 130], window: 120, softcap: 30),
        // Many (sequence, KV head) pairs: one lane each, straight into gradK and gradV.
        AttentionCase.prefill("one lane per head", hq: 8, hkv: 8, d: 16, lengths: [40, 33, 7, 40, 12, 40, 1, 39], s: 48),
    ]
    for c in cases {
        let batch = SequenceBatch(starts: c.starts, lengths: c.lengths)
        let cpu = CPUBackend()
        let (qt, kt) = (try cpu.empty(c.qShape), try cpu.empty(c.kvShape))
        let dims = try GradientShapes.attentionBackward(q: qt, k: kt, v: kt, batch: batch, options: c.options,
                                                        gradOut: qt, gradQ: qt, gradK: kt, gradV: kt)
        let plan = AttentionBackwardLanes(dims: dims, batch: batch, window: c.window)
        #expect(plan.reduced.contains(true) == (c.kvHeads == 2), "[\(c.name)] the lanes are not split as the case intends")
        let qCount = c.qShape.reduce(1, *), kvCount = c.kvShape.reduce(1, *)
        let (q, k, v, seed) = (rng.uniforms(qCount, -1, 1), rng.uniforms(kvCount, -1, 1), rng.uniforms(kvCount, -1, 1), rng.uniforms(qCount, -1, 1))
        try expectSameBits("attentionBackward \(c.name)") { run in
            try run.gradients.attentionBackward(q: run.input(q, c.qShape), k: run.input(k, c.kvShape), v: run.input(v, c.kvShape),
                                                batch: batch, options: c.options, gradOut: run.input(seed, c.qShape),
                                                gradQ: run.output("dq", c.qShape), gradK: run.output("dk", c.kvShape),
                                                gradV: run.output("dv", c.kvShape))
        }
    }
}

@Test func psrHeadBackwardIsDeterministic() throws {
    var rng = caseRNG("psrHeadBackward determinism")
    let (n, d, k) = (1000, 130, 4)
    let kinds: [Int32] = [0, 1, 2, 0]
    let index = (0..<n).map { _ in Int32(rng.int(-1..<k)) }
    let (h, w, bias, z) = (rng.uniforms(n * d), rng.uniforms(k * d, -0.5, 0.5), rng.uniforms(k, -0.3, 0.3), rng.uniforms(k * d))
    let (alpha, seed, lambdaSeed) = (rng.uniforms(n, 0.2, 2), rng.uniforms(n * d), rng.uniforms(n))
    try expectSameBits("psrHeadBackward") { run in
        let heads = PSRHeads(w: try run.input(w, [k, d]), bias: try run.input(bias, [k]), z: try run.input(z, [k, d]),
                             activation: try run.input(ints: kinds, [k]))
        try run.gradients.psrHeadBackward(run.input(h, [n, d]), heads: heads, headIndex: run.input(ints: index, [n]),
                                          alpha: run.input(alpha, [n]), gradLambda: run.input(lambdaSeed, [n]),
                                          gradient: run.output("dh", [n, d], initial: seed),
                                          gradients: PSRHeadGradients(w: run.output("dw", [k, d]), bias: run.output("dbias", [k]),
                                                                      z: run.output("dz", [k, d])))
    }
}

@Test func scatterAndCrossEntropyAreDeterministic() throws {
    var rng = caseRNG("scatter and cross-entropy determinism")
    // Few destination rows, each gathered many times.
    let (m, d, n) = (2000, 130, 37)
    let indices = (0..<m).map { _ in Int32(rng.int(0..<n)) }
    let (seed, initial) = (rng.uniforms(m * d), rng.uniforms(n * d))
    try expectSameBits("scatterAddRows") { run in
        try run.gradients.scatterAddRows(run.input(seed, [m, d]), indices: run.input(ints: indices, [m]),
                                         into: run.output("dx", [n, d], initial: initial))
    }
    let (rows, vocabulary) = (24, 3000)
    let logits = rng.uniforms(rows * vocabulary, -8, 8), scale = rng.uniforms(rows, 0.1, 2)
    let targets = (0..<rows).map { $0 % 5 == 1 ? -1 : Int32(rng.int(0..<vocabulary)) }
    try expectSameBits("crossEntropy") { run in
        try run.gradients.crossEntropy(run.output("dlogits", [rows, vocabulary], initial: logits), targets: run.input(ints: targets, [rows]),
                                       gradScale: run.input(scale, [rows]), loss: run.output("loss", [rows]))
    }
}

@Test func elementwiseBackwardsAreDeterministic() throws {
    var rng = caseRNG("elementwise backward determinism")
    let shape = [100, 257], count = 100 * 257
    let (x, up, seed, weight) = (rng.uniforms(count, -3, 3), rng.uniforms(count, -2, 2), rng.uniforms(count), rng.uniforms(257))
    try expectSameBits("rmsNormBackward") { run in
        try run.gradients.rmsNormBackward(run.input(x, shape), weight: run.input(weight, [257], .bf16), eps: 1e-6, unitOffset: true,
                                          gradOut: run.input(seed, shape), gradX: run.output("dx", shape))
    }
    for kind in GatedActivation.allCases {
        try expectSameBits("gatedActivationBackward \(kind)") { run in
            try run.gradients.gatedActivationBackward(kind, gate: run.input(x, shape), up: run.input(up, shape), gradOut: run.input(seed, shape),
                                                      gradGate: run.output("dgate", shape), gradUp: run.output("dup", shape))
        }
    }
    try expectSameBits("softcapBackward") { run in
        try run.gradients.softcapBackward(run.input(x, shape), cap: 2, gradOut: run.input(seed, shape), gradX: run.output("dx", shape))
    }
}
