// Bad input to the backward ops: the same one-line errors on every backend that has them, the
// reference's, including index values the host uploaded (heads, targets, scatter rows), which
// every backend checks before it reads or writes by them.

import Testing
import TillerCore

/// The backend as a `GradientBackend` (the cases only run on backends that are).
private func grad(_ b: any Backend) throws -> any GradientBackend {
    guard let g = b as? any GradientBackend else { throw TillerError.unsupported("\(b.name) has no backward ops") }
    return g
}

private func headGradients(_ b: any Backend, count: Int, dim: Int) throws -> PSRHeadGradients {
    PSRHeadGradients(w: try ones(b, [count, dim]), bias: try ones(b, [count]), z: try ones(b, [count, dim]))
}

let gradientErrorCases: [ErrorCase] = [
    ErrorCase("attentionBackward", "gradK has the wrong shape", .shape) { b in
        try grad(b).attentionBackward(q: ones(b, [1, 2, 2, 8]), k: ones(b, [1, 4, 1, 8]), v: ones(b, [1, 4, 1, 8]),
                                      batch: SequenceBatch(lengths: [2]), options: AttentionOptions(scale: 1), gradOut: ones(b, [1, 2, 2, 8]),
                                      gradQ: ones(b, [1, 2, 2, 8]), gradK: ones(b, [1, 4, 2, 8]), gradV: ones(b, [1, 4, 1, 8]))
    },
    ErrorCase("attentionBackward", "length longer than T", .index) { b in
        try grad(b).attentionBackward(q: ones(b, [1, 2, 2, 8]), k: ones(b, [1, 4, 1, 8]), v: ones(b, [1, 4, 1, 8]),
                                      batch: SequenceBatch(lengths: [3]), options: AttentionOptions(scale: 1), gradOut: ones(b, [1, 2, 2, 8]),
                                      gradQ: ones(b, [1, 2, 2, 8]), gradK: ones(b, [1, 4, 1, 8]), gradV: ones(b, [1, 4, 1, 8]))
    },
    ErrorCase("attentionBackward", "gradOut is bf16", .dtype) { b in
        try grad(b).attentionBackward(q: ones(b, [1, 2, 2, 8]), k: ones(b, [1, 4, 1, 8]), v: ones(b, [1, 4, 1, 8]),
                                      batch: SequenceBatch(lengths: [2]), options: AttentionOptions(scale: 1), gradOut: ones(b, [1, 2, 2, 8], .bf16),
                                      gradQ: ones(b, [1, 2, 2, 8]), gradK: ones(b, [1, 4, 1, 8]), gradV: ones(b, [1, 4, 1, 8]))
    },
    ErrorCase("rmsNormBackward", "weight has the wrong length", .shape) { b in
        try grad(b).rmsNormBackward(ones(b, [2, 8]), weight: ones(b, [7], .bf16), eps: 1e-6, unitOffset: true,
                                    gradOut: ones(b, [2, 8]), gradX: ones(b, [2, 8]))
    },
    ErrorCase("rmsNormBackward", "gradX is f16", .dtype) { b in
        try grad(b).rmsNormBackward(ones(b, [2, 8]), weight: ones(b, [8]), eps: 1e-6, unitOffset: false,
                                    gradOut: ones(b, [2, 8]), gradX: ones(b, [2, 8], .f16))
    },
    ErrorCase("gatedActivationBackward", "gradUp has another shape", .shape) { b in
        try grad(b).gatedActivationBackward(.silu, gate: ones(b, [2, 8]), up: ones(b, [2, 8]), gradOut: ones(b, [2, 8]),
                                            gradGate: ones(b, [2, 8]), gradUp: ones(b, [8, 2]))
    },
    ErrorCase("softcapBackward", "cap of zero", .invalid) { b in
        try grad(b).softcapBackward(ones(b, [2, 8]), cap: 0, gradOut: ones(b, [2, 8]), gradX: ones(b, [2, 8]))
    },
    ErrorCase("scatterAddRows", "index past the last row", .index) { b in
        try grad(b).scatterAddRows(ones(b, [3, 4]), indices: ids(b, [0, 5, 1]), into: ones(b, [5, 4]))
    },
    ErrorCase("scatterAddRows", "negative index", .index) { b in
        try grad(b).scatterAddRows(ones(b, [2, 4]), indices: ids(b, [-1, 1]), into: ones(b, [5, 4]))
    },
    ErrorCase("scatterAddRows", "gradOut has the wrong width", .shape) { b in
        try grad(b).scatterAddRows(ones(b, [2, 3]), indices: ids(b, [0, 1]), into: ones(b, [5, 4]))
    },
    ErrorCase("psrHeadBackward", "head index past the last head", .index) { b in
        try grad(b).psrHeadBackward(ones(b, [3, 8]), heads: heads(b, count: 2, dim: 8), headIndex: ids(b, [0, 2, -1]),
                                    alpha: ones(b, [3]), gradLambda: nil, gradient: ones(b, [3, 8]),
                                    gradients: headGradients(b, count: 2, dim: 8))
    },
    ErrorCase("psrHeadBackward", "unknown activation", .invalid) { b in
        try grad(b).psrHeadBackward(ones(b, [3, 8]), heads: heads(b, count: 2, dim: 8, activations: [0, 3]), headIndex: ids(b, [0, 1, -1]),
                                    alpha: ones(b, [3]), gradLambda: nil, gradient: ones(b, [3, 8]),
                                    gradients: headGradients(b, count: 2, dim: 8))
    },
    ErrorCase("psrHeadBackward", "gradLambda has the wrong length", .shape) { b in
        try grad(b).psrHeadBackward(ones(b, [3, 8]), heads: heads(b, count: 2, dim: 8), headIndex: ids(b, [0, 1, -1]),
                                    alpha: ones(b, [3]), gradLambda: ones(b, [2]), gradient: ones(b, [3, 8]),
                                    gradients: headGradients(b, count: 2, dim: 8))
    },
    ErrorCase("psrHeadBackward", "head gradients for another head count", .shape) { b in
        try grad(b).psrHeadBackward(ones(b, [3, 8]), heads: heads(b, count: 2, dim: 8), headIndex: ids(b, [0, 1, -1]),
                                    alpha: ones(b, [3]), gradLambda: nil, gradient: ones(b, [3, 8]),
                                    gradients: headGradients(b, count: 3, dim: 8))
    },
    ErrorCase("crossEntropy", "target past the vocabulary", .index) { b in
        try grad(b).crossEntropy(ones(b, [2, 5]), targets: ids(b, [4, 5]), gradScale: ones(b, [2]), loss: ones(b, [2]))
    },
    ErrorCase("crossEntropy", "target below -1", .index) { b in
        try grad(b).crossEntropy(ones(b, [2, 5]), targets: ids(b, [-2, 0]), gradScale: ones(b, [2]), loss: ones(b, [2]))
    },
    ErrorCase("crossEntropy", "loss has the wrong length", .shape) { b in
        try grad(b).crossEntropy(ones(b, [2, 5]), targets: ids(b, [0, 1]), gradScale: ones(b, [2]), loss: ones(b, [3]))
    },
    ErrorCase("crossEntropy", "no rows", .empty) { b in
        try grad(b).crossEntropy(ones(b, [0, 5]), targets: ids(b, []), gradScale: ones(b, [0]), loss: ones(b, [0]))
    },
]

@Test(arguments: gradientErrorCases)
func rejectsGradient(_ c: ErrorCase) {
    expectRejection(c, on: [ReferenceBackend()] + gradientBackendsUnderTest())
}
