// Cross-entropy where f32 loses digits most easily: a target that dominates its row (the loss is
// log(1 + tiny) and the target's gradient 1 - p cancels) and rows whose other logits are masked
// to -inf. Margins stop at 20: beyond, the Double reference itself loses the loss's digits (it
// adds e^-margin terms to 1). One row per case, so NMSE is each row's own relative error; backends against the
// reference, which computes in Double.

import Testing
import TillerCore

enum CrossEntropyRow: String, CaseIterable, Sendable {
    case leadsBy12, leadsBy20, twoUnmasked, onlyTargetUnmasked, farBelow
}

@Test(arguments: CrossEntropyRow.allCases)
func crossEntropyEdgeRow(_ kind: CrossEntropyRow) {
    let name = "crossEntropy \(kind.rawValue)"
    var rng = caseRNG(name)
    let vocabulary = 37
    var logits = rng.uniforms(vocabulary, -4, 4)
    let target = rng.int(0..<vocabulary)
    switch kind {
    case .leadsBy12: logits[target] = logits.max()! + 12
    case .leadsBy20: logits[target] = logits.max()! + 20
    case .twoUnmasked, .onlyTargetUnmasked:
        for i in 0..<vocabulary where i != target && (kind == .onlyTargetUnmasked || i != (target + 1) % vocabulary) {
            logits[i] = -.infinity
        }
    case .farBelow: logits[target] = logits.min()! - 30
    }
    let scale = rng.uniforms(1, 0.5, 2)
    for message in compareWithReference(name, maxNMSE: Tolerance.accumulated, backends: gradientBackendsUnderTest(), { run in
        let loss = try run.output("loss", [1])
        try run.gradients.crossEntropy(try run.output("logits", [1, vocabulary], initial: logits),
                                       targets: try run.input(ints: [Int32(target)], [1]),
                                       gradScale: try run.input(scale, [1]), loss: loss)
    }) {
        Issue.record(Comment(rawValue: "\(message) (replay with \(TestSeed.replay))"))
    }
}
