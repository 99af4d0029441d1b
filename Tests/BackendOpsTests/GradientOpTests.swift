// Gradient mode: every backward op of `GradientBackend` over a table of cases (odd sizes,
// padding, windows, soft-caps, GQA ratios, several heads mixed in one batch, relu rows exactly at
// zero), against finite differences on the reference and against the reference on every backend.

import Testing
import TillerCore

// MARK: - attention

/// Small enough for finite differences on every element of q, k and v.
let attentionGradientCases: [AttentionCase] = [
    .prefill("MHA", hq: 2, hkv: 2, d: 4, lengths: [5]),
    .prefill("GQA 2, odd head dim", hq: 4, hkv: 2, d: 5, lengths: [6]),
    .prefill("GQA 3, padded batch with an empty sequence", hq: 3, hkv: 1, d: 4, lengths: [5, 2, 0], s: 6),
    .prefill("sliding window", hq: 2, hkv: 1, d: 4, lengths: [7, 4], window: 3),
    .prefill("soft-cap", hq: 2, hkv: 2, d: 4, lengths: [6], softcap: 1.5, scale: 1),
    .prefill("window, soft-cap and GQA 2", hq: 4, hkv: 2, d: 4, lengths: [7, 3], s: 8, window: 2, softcap: 3, scale: 1),
    AttentionCase(name: "after a cached prefix", queryHeads: 2, kvHeads: 1, headDim: 4, queryLength: 3, cacheLength: 7,
                  starts: [4, 0], lengths: [3, 2]),
    // Big enough for the CPU backend's query blocks (128 rows): sampled differences only.
    .prefill("past one query block", hq: 2, hkv: 1, d: 8, lengths: [135, 40], window: 50, softcap: 20),
    // GQA 7 with the CPU backend's dK/dV split over several lanes per KV head and summed.
    .prefill("GQA 7 over several lanes", hq: 14, hkv: 2, d: 16, lengths: [200, 130], softcap: 30),
]

@Test(arguments: attentionGradientCases)
func attentionBackward(_ c: AttentionCase) {
    let name = "attentionBackward \(c.testDescription)"
    var rng = caseRNG(name)
    let qCount = c.qShape.reduce(1, *), kvCount = c.kvShape.reduce(1, *)
    let inputs = [GradientInput(name: "q", values: rng.uniforms(qCount, -1, 1), shape: c.qShape),
                  GradientInput(name: "k", values: rng.uniforms(kvCount, -1, 1), shape: c.kvShape),
                  GradientInput(name: "v", values: rng.uniforms(kvCount, -1, 1), shape: c.kvShape)]
    // The seed is random on padding rows too: the backward must ignore them.
    let seed = rng.uniforms(qCount, -1, 1)
    checkGradients(GradientCase(name: name, inputs: inputs, seeds: [seed], forward: { run, t in
        try run.backend.attention(q: t[0], k: t[1], v: t[2], batch: SequenceBatch(starts: c.starts, lengths: c.lengths),
                                  options: c.options, out: try run.output("out", c.qShape))
    }, backward: { run, t in
        let (dq, dk, dv) = (try run.output("dq", c.qShape), try run.output("dk", c.kvShape), try run.output("dv", c.kvShape))
        try run.gradients.attentionBackward(q: t[0], k: t[1], v: t[2], batch: SequenceBatch(starts: c.starts, lengths: c.lengths),
                                            options: c.options, gradOut: try run.input(seed, c.qShape), gradQ: dq, gradK: dk, gradV: dv)
    }), maxNMSE: Tolerance.accumulated)
}

// MARK: - rmsNorm

// With d = 1 the output is w x / sqrt(x^2 + eps), whose gradient w eps / (x^2 + eps)^1.5 is
// O(eps): at eps 1e-6 it drowns in f32 cancellation and in the differences' noise, so the
// single-element case takes a large eps.
@Test(arguments: [RMSNormCase(shape: [1, 1], dtype: .f32, unitOffset: false, eps: 1),
                  RMSNormCase(shape: [3, 17], dtype: .f32, unitOffset: false, eps: 1e-6),
                  RMSNormCase(shape: [5, 33], dtype: .bf16, unitOffset: true, eps: 1e-6),
                  RMSNormCase(shape: [2, 3, 65], dtype: .f16, unitOffset: false, eps: 1e-5),
                  RMSNormCase(shape: [600, 129], dtype: .bf16, unitOffset: true, eps: 1e-6)])
func rmsNormBackward(_ c: RMSNormCase) {
    let name = "rmsNormBackward \(c.testDescription)"
    var rng = caseRNG(name)
    let count = c.shape.reduce(1, *), d = c.shape.last!
    let inputs = [GradientInput(name: "x", values: rng.uniforms(count, -3, 3), shape: c.shape),
                  GradientInput(name: "weight", values: rng.uniforms(d, -2, 2), shape: [d], dtype: c.dtype, differentiable: false)]
    let seed = rng.uniforms(count, -1, 1)
    checkGradients(GradientCase(name: name, inputs: inputs, seeds: [seed], forward: { run, t in
        try run.backend.rmsNorm(t[0], weight: t[1], eps: c.eps, unitOffset: c.unitOffset, out: try run.output("out", c.shape))
    }, backward: { run, t in
        try run.gradients.rmsNormBackward(t[0], weight: t[1], eps: c.eps, unitOffset: c.unitOffset,
                                          gradOut: try run.input(seed, c.shape), gradX: try run.output("dx", c.shape))
    }), maxNMSE: Tolerance.elementwise)
}

// MARK: - gated activation and soft-cap

@Test(arguments: GatedActivation.allCases, [[1, 1], [3, 17], [7, 33], [600, 129]])
func gatedActivationBackward(_ kind: GatedActivation, _ shape: [Int]) {
    let name = "gatedActivationBackward \(kind) \(shapeName(shape))"
    var rng = caseRNG(name)
    let count = shape.reduce(1, *)
    // As in the forward's suite, element 0 sits where act' is well-conditioned: f32 computes
    // act'(gate) near its roots (silu at -1.28, gelu at -0.75) with an absolute error, which a
    // tensor of one element would measure as a relative one.
    var gate = rng.uniforms(count, -4, 4)
    gate[0] = rng.uniform(0.5, 4)
    let inputs = [GradientInput(name: "gate", values: gate, shape: shape),
                  GradientInput(name: "up", values: rng.uniforms(count, -2, 2), shape: shape)]
    let seed = rng.uniforms(count, -1, 1)
    checkGradients(GradientCase(name: name, inputs: inputs, seeds: [seed], forward: { run, t in
        try run.backend.gatedActivation(kind, gate: t[0], up: t[1], out: try run.output("out", shape))
    }, backward: { run, t in
        try run.gradients.gatedActivationBackward(kind, gate: t[0], up: t[1], gradOut: try run.input(seed, shape),
                                                  gradGate: try run.output("dgate", shape), gradUp: try run.output("dup", shape))
    }), maxNMSE: Tolerance.elementwise)
}

let softcapGradientCases: [(cap: Float, shape: [Int])] = [(1.5, [3, 17]), (30, [7, 33]), (50, [600, 129])]

@Test(arguments: softcapGradientCases)
func softcapBackward(_ cap: Float, _ shape: [Int]) {
    let name = "softcapBackward cap \(cap) \(shapeName(shape))"
    var rng = caseRNG(name)
    let count = shape.reduce(1, *)
    let inputs = [GradientInput(name: "x", values: rng.uniforms(count, -3 * cap, 3 * cap), shape: shape)]
    let seed = rng.uniforms(count, -1, 1)
    checkGradients(GradientCase(name: name, inputs: inputs, seeds: [seed], forward: { run, t in
        try run.backend.softcap(t[0], cap: cap, out: try run.output("out", shape))
    }, backward: { run, t in
        try run.gradients.softcapBackward(t[0], cap: cap, gradOut: try run.input(seed, shape), gradX: try run.output("dx", shape))
    }), maxNMSE: Tolerance.elementwise)
}

// MARK: - row gather's adjoint

let scatterGradientCases: [(n: Int, d: Int, m: Int)] = [(5, 1, 3), (4, 17, 9), (9, 33, 40), (300, 129, 257)]

@Test(arguments: scatterGradientCases)
func scatterAddRows(_ n: Int, _ d: Int, _ m: Int) {
    let name = "scatterAddRows \(m) rows of \(d) into \(n)"
    var rng = caseRNG(name)
    // Repeats and the first and last rows; some rows never gathered.
    var indices = (0..<m).map { _ in Int32(rng.int(0..<max(1, n - 1))) }
    indices[0] = 0
    if m > 1 { indices[m - 1] = Int32(n - 1); indices[m / 2] = indices[0] }
    let inputs = [GradientInput(name: "x", values: rng.uniforms(n * d), shape: [n, d])]
    let seed = rng.uniforms(m * d), initial = rng.uniforms(n * d)
    // The finite differences read the gradient alone (accumulated onto zeros); the backends
    // also accumulate onto what gradX held before.
    func gradientCase(onto start: [Float]) -> GradientCase {
        GradientCase(name: name, inputs: inputs, seeds: [seed], forward: { run, t in
            try run.backend.gatherRows(t[0], indices: try run.input(ints: indices, [m]), out: try run.output("out", [m, d]))
        }, backward: { run, t in
            try run.gradients.scatterAddRows(try run.input(seed, [m, d]), indices: try run.input(ints: indices, [m]),
                                             into: try run.output("dx", [n, d], initial: start))
        })
    }
    let onto = gradientCase(onto: initial)
    for message in finiteDifferenceProblems(gradientCase(onto: [Float](repeating: 0, count: n * d)))
        + compareWithReference(name, maxNMSE: Tolerance.elementwise, backends: gradientBackendsUnderTest(), { run in
            try onto.backward(run, try run.inputs(onto.inputs))
        }) {
        Issue.record(Comment(rawValue: "\(message) (replay with \(TestSeed.replay))"))
    }
}

// MARK: - the PSR head

struct PSRGradientCase: Sendable, CustomTestStringConvertible {
    var rows: Int, dim: Int
    var kinds: [PSRActivation]
    /// Rows whose relu pre-activation is exactly zero (h = 0, bias 0): the kink, where the
    /// gradient is 0 as in torch. Finite differences skip such cases.
    var zeroRows = false
    var withGradLambda = true
    var testDescription: String {
        "\(rows) rows of \(dim), heads \(kinds.map { "\($0)" }.joined(separator: ","))\(zeroRows ? ", relu rows at zero" : "")\(withGradLambda ? ", gradLambda" : "")"
    }

    static let all: [PSRGradientCase] = [
        PSRGradientCase(rows: 1, dim: 1, kinds: [.relu]),
        PSRGradientCase(rows: 6, dim: 17, kinds: [.relu], withGradLambda: false),
        PSRGradientCase(rows: 9, dim: 33, kinds: [.relu, .identity, .constant]),
        PSRGradientCase(rows: 12, dim: 20, kinds: [.relu, .relu, .identity, .constant, .relu]),
        PSRGradientCase(rows: 8, dim: 16, kinds: [.relu, .identity], zeroRows: true),
        PSRGradientCase(rows: 700, dim: 129, kinds: [.relu, .constant, .identity, .relu]),
    ]
}

@Test(arguments: PSRGradientCase.all)
func psrHeadBackward(_ c: PSRGradientCase) {
    let name = "psrHeadBackward \(c.testDescription)"
    var rng = caseRNG(name)
    let (n, d, k) = (c.rows, c.dim, c.kinds.count)
    var h = rng.uniforms(n * d)
    var w = rng.uniforms(k * d, -0.5, 0.5)
    var bias = rng.uniforms(k, -0.3, 0.3)
    // Every head used, padding rows (-1) mixed in.
    var index = (0..<n).map { _ in Int32(rng.int(-1..<k)) }
    for head in 0..<min(k, n) { index[head] = Int32(head) }
    // Keep relu pre-activations away from the kink, where differences are meaningless...
    for row in 0..<n where index[row] >= 0 {
        let head = Int(index[row])
        let pre = (0..<d).reduce(bias[head]) { $0 + w[head * d + $1] * h[row * d + $1] }
        if abs(pre) < 0.05 { bias[head] += pre >= 0 ? 0.05 : -0.05 }
    }
    // ...except in the case that puts some rows exactly on it.
    if c.zeroRows {
        bias = bias.map { _ in 0 }
        w = w.map { $0 * 0.5 }
        for row in stride(from: 0, to: n, by: 2) { for i in 0..<d { h[row * d + i] = 0 } }
    }
    let inputs = [GradientInput(name: "h", values: h, shape: [n, d]),
                  GradientInput(name: "w", values: w, shape: [k, d]),
                  GradientInput(name: "bias", values: bias, shape: [k]),
                  GradientInput(name: "z", values: rng.uniforms(k * d), shape: [k, d]),
                  GradientInput(name: "alpha", values: rng.uniforms(n, 0.2, 2), shape: [n], differentiable: false)]
    let kinds = c.kinds.map(\.rawValue)
    let seed = rng.uniforms(n * d), lambdaSeed = c.withGradLambda ? rng.uniforms(n) : [Float](repeating: 0, count: n)
    let gradientCase = GradientCase(name: name, inputs: inputs, seeds: [seed, lambdaSeed], forward: { run, t in
        let out = try run.output("h", [n, d], initial: h)
        // The forward is in place: copy the (perturbed) input into the output first.
        try run.backend.copy(t[0], to: out)
        try run.backend.psrHead(out, heads: PSRHeads(w: t[1], bias: t[2], z: t[3], activation: try run.input(ints: kinds, [k])),
                                headIndex: try run.input(ints: index, [n]), alpha: t[4], lambda: try run.output("lambda", [n]))
    }, backward: { run, t in
        let gradient = try run.output("dh", [n, d], initial: seed)
        let grads = PSRHeadGradients(w: try run.output("dw", [k, d]), bias: try run.output("dbias", [k]), z: try run.output("dz", [k, d]))
        try run.gradients.psrHeadBackward(t[0], heads: PSRHeads(w: t[1], bias: t[2], z: t[3], activation: try run.input(ints: kinds, [k])),
                                          headIndex: try run.input(ints: index, [n]), alpha: t[4],
                                          gradLambda: c.withGradLambda ? try run.input(lambdaSeed, [n]) : nil,
                                          gradient: gradient, gradients: grads)
    })
    if c.zeroRows {
        // At the kink only the backends' agreement with the reference's convention is checked.
        for message in compareWithReference(name, maxNMSE: Tolerance.accumulated, backends: gradientBackendsUnderTest(), { run in
            try gradientCase.backward(run, try run.inputs(gradientCase.inputs))
        }) { Issue.record(Comment(rawValue: message)) }
        return
    }
    checkGradients(gradientCase, maxNMSE: Tolerance.accumulated)
}

// MARK: - cross-entropy

let crossEntropyCases: [(rows: Int, vocabulary: Int)] = [(1, 2), (3, 17), (6, 1000), (40, 4099)]

@Test(arguments: crossEntropyCases)
func crossEntropy(_ rows: Int, _ vocabulary: Int) {
    let name = "crossEntropy \(rows) rows of \(vocabulary)"
    var rng = caseRNG(name)
    var targets = (0..<rows).map { _ in Int32(rng.int(0..<vocabulary)) }
    if rows > 2 { targets[1] = -1; targets[rows - 1] = Int32(vocabulary - 1) }
    let scale = rng.uniforms(rows, 0.1, 2)
    let inputs = [GradientInput(name: "logits", values: rng.uniforms(rows * vocabulary, -8, 8), shape: [rows, vocabulary])]
    checkGradients(GradientCase(name: name, inputs: inputs, seeds: [scale], forward: { run, t in
        // The loss is the output the differences read (the first); the gradient comes after it.
        let loss = try run.output("loss", [rows])
        let logits = try run.output("logits", [rows, vocabulary], initial: inputs[0].values)
        try run.backend.copy(t[0], to: logits)
        try run.gradients.crossEntropy(logits, targets: try run.input(ints: targets, [rows]),
                                       gradScale: try run.input(scale, [rows]), loss: loss)
    }, backward: { run, t in
        let logits = try run.output("dlogits", [rows, vocabulary], initial: inputs[0].values)
        try run.backend.copy(t[0], to: logits)
        try run.gradients.crossEntropy(logits, targets: try run.input(ints: targets, [rows]),
                                       gradScale: try run.input(scale, [rows]), loss: try run.output("loss", [rows]))
    }), maxNMSE: Tolerance.accumulated)
}
