// Bad input to the backward ops: the same one-line TillerError on the reference and on every
// backend that has backward ops, as ErrorTests requires of the forward ops. Index and
// activation values are data, checked before any kernel reads them.

import Testing
import TillerCore

/// The backend as a `GradientBackend` (gradientBackendsUnderTest only passes those).
private func grad(_ b: any Backend) throws -> any GradientBackend {
    guard let g = b as? any GradientBackend else { throw TillerError.unsupported("\(b.name) has no backward ops") }
    return g
}

private func attentionBackward(_ b: any Backend, q: [Int] = [1, 2, 2, 8], kv: [Int] = [1, 4, 1, 8],
                               gradQ: [Int]? = nil, gradK: [Int]? = nil, gradKType: DType = .f32,
                               batch: SequenceBatch = SequenceBatch(lengths: [2]), options: AttentionOptions = AttentionOptions(scale: 1),
                               gradOut: [Int]? = nil) throws {
    try grad(b).attentionBackward(q: ones(b, q), k: ones(b, kv), v: ones(b, kv), batch: batch, options: options,
                                  gradOut: ones(b, gradOut ?? q), gradQ: ones(b, gradQ ?? q),
                                  gradK: ones(b, gradK ?? kv, gradKType), gradV: ones(b, kv))
}

private func psrHeadBackward(_ b: any Backend, rows: Int = 3, dim: Int = 8, headDim: Int? = nil, index: [Int32] = [0, 1, -1],
                             activations: [Int32]? = nil, gradLambda: [Int]? = nil, gradW: [Int] = [2, 8],
                             gradientType: DType = .f32) throws {
    try grad(b).psrHeadBackward(ones(b, [rows, dim]), heads: heads(b, count: 2, dim: headDim ?? dim, activations: activations),
                                headIndex: ids(b, index), alpha: ones(b, [rows]), gradLambda: try gradLambda.map { try ones(b, $0) },
                                gradient: ones(b, [rows, dim], gradientType),
                                gradients: PSRHeadGradients(w: ones(b, gradW), bias: ones(b, [2]), z: ones(b, [2, dim])))
}

private func crossEntropy(_ b: any Backend, logits: [Int] = [2, 5], targets: [Int32] = [0, 4], targetsType: DType = .i32,
                          loss: [Int] = [2]) throws {
    let targetTensor = targetsType == .i32 ? try ids(b, targets) : try ones(b, [targets.count], targetsType)
    try grad(b).crossEntropy(ones(b, logits), targets: targetTensor, gradScale: ones(b, [targets.count]), loss: ones(b, loss))
}

let gradientErrorCases: [ErrorCase] = [
    // attentionBackward
    ErrorCase("attentionBackward", "gradQ has the wrong shape", .shape) { b in
        try attentionBackward(b, gradQ: [1, 2, 2, 4])
    },
    ErrorCase("attentionBackward", "gradOut has the wrong shape", .shape) { b in
        try attentionBackward(b, gradOut: [1, 2, 1, 8])
    },
    ErrorCase("attentionBackward", "gradK is bf16", .dtype) { b in
        try attentionBackward(b, gradKType: .bf16)
    },
    ErrorCase("attentionBackward", "query heads not a multiple of KV heads", .shape) { b in
        try attentionBackward(b, q: [1, 2, 3, 8], kv: [1, 4, 2, 8])
    },
    ErrorCase("attentionBackward", "sequence runs past the cache", .index) { b in
        try attentionBackward(b, batch: SequenceBatch(starts: [3], lengths: [2]))
    },
    ErrorCase("attentionBackward", "sliding window of zero", .invalid) { b in
        try attentionBackward(b, options: AttentionOptions(scale: 1, slidingWindow: 0))
    },
    ErrorCase("attentionBackward", "negative soft-cap", .invalid) { b in
        try attentionBackward(b, options: AttentionOptions(scale: 1, softcap: -1))
    },

    // rmsNormBackward
    ErrorCase("rmsNormBackward", "weight has the wrong length", .shape) { b in
        try grad(b).rmsNormBackward(ones(b, [2, 8]), weight: ones(b, [7], .bf16), eps: 1e-6, unitOffset: true,
                                    gradOut: ones(b, [2, 8]), gradX: ones(b, [2, 8]))
    },
    ErrorCase("rmsNormBackward", "gradX is f16", .dtype) { b in
        try grad(b).rmsNormBackward(ones(b, [2, 8]), weight: ones(b, [8]), eps: 1e-6, unitOffset: false,
                                    gradOut: ones(b, [2, 8]), gradX: ones(b, [2, 8], .f16))
    },
    ErrorCase("rmsNormBackward", "gradOut has another shape", .shape) { b in
        try grad(b).rmsNormBackward(ones(b, [2, 8]), weight: ones(b, [8]), eps: 1e-6, unitOffset: false,
                                    gradOut: ones(b, [3, 8]), gradX: ones(b, [2, 8]))
    },
    ErrorCase("rmsNormBackward", "no rows", .empty) { b in
        try grad(b).rmsNormBackward(ones(b, [0, 8]), weight: ones(b, [8]), eps: 1e-6, unitOffset: false,
                                    gradOut: ones(b, [0, 8]), gradX: ones(b, [0, 8]))
    },

    // gatedActivationBackward, softcapBackward
    ErrorCase("gatedActivationBackward", "gradUp has another shape", .shape) { b in
        try grad(b).gatedActivationBackward(.silu, gate: ones(b, [2, 8]), up: ones(b, [2, 8]), gradOut: ones(b, [2, 8]),
                                            gradGate: ones(b, [2, 8]), gradUp: ones(b, [8, 2]))
    },
    ErrorCase("gatedActivationBackward", "up is f16", .dtype) { b in
        try grad(b).gatedActivationBackward(.geluTanh, gate: ones(b, [2, 8]), up: ones(b, [2, 8], .f16), gradOut: ones(b, [2, 8]),
                                            gradGate: ones(b, [2, 8]), gradUp: ones(b, [2, 8]))
    },
    ErrorCase("softcapBackward", "cap of zero", .invalid) { b in
        try grad(b).softcapBackward(ones(b, [2, 8]), cap: 0, gradOut: ones(b, [2, 8]), gradX: ones(b, [2, 8]))
    },
    ErrorCase("softcapBackward", "gradX has another shape", .shape) { b in
        try grad(b).softcapBackward(ones(b, [2, 8]), cap: 30, gradOut: ones(b, [2, 8]), gradX: ones(b, [16]))
    },

    // scatterAddRows
    ErrorCase("scatterAddRows", "index equal to the row count", .index) { b in
        try grad(b).scatterAddRows(ones(b, [2, 8]), indices: ids(b, [0, 4]), into: ones(b, [4, 8]))
    },
    ErrorCase("scatterAddRows", "negative index", .index) { b in
        try grad(b).scatterAddRows(ones(b, [1, 8]), indices: ids(b, [-1]), into: ones(b, [4, 8]))
    },
    ErrorCase("scatterAddRows", "gradOut has the wrong width", .shape) { b in
        try grad(b).scatterAddRows(ones(b, [2, 7]), indices: ids(b, [0, 1]), into: ones(b, [4, 8]))
    },
    ErrorCase("scatterAddRows", "gradX is not a matrix", .shape) { b in
        try grad(b).scatterAddRows(ones(b, [2, 8]), indices: ids(b, [0, 1]), into: ones(b, [32]))
    },
    ErrorCase("scatterAddRows", "indices are f32", .dtype) { b in
        try grad(b).scatterAddRows(ones(b, [2, 8]), indices: ones(b, [2]), into: ones(b, [4, 8]))
    },

    // psrHeadBackward
    ErrorCase("psrHeadBackward", "head index past the last head", .index) { b in
        try psrHeadBackward(b, index: [0, 2, -1])
    },
    ErrorCase("psrHeadBackward", "head index below -1", .index) { b in
        try psrHeadBackward(b, index: [0, -2, 1])
    },
    ErrorCase("psrHeadBackward", "unknown activation", .invalid) { b in
        try psrHeadBackward(b, activations: [0, 7])
    },
    ErrorCase("psrHeadBackward", "w has the wrong width", .shape) { b in
        try psrHeadBackward(b, headDim: 7)
    },
    ErrorCase("psrHeadBackward", "gradients.w has the wrong shape", .shape) { b in
        try psrHeadBackward(b, gradW: [2, 7])
    },
    ErrorCase("psrHeadBackward", "gradLambda has the wrong length", .shape) { b in
        try psrHeadBackward(b, gradLambda: [4])
    },
    ErrorCase("psrHeadBackward", "gradient is bf16", .dtype) { b in
        try psrHeadBackward(b, gradientType: .bf16)
    },

    // crossEntropy
    ErrorCase("crossEntropy", "target equal to the vocabulary size", .index) { b in
        try crossEntropy(b, targets: [0, 5])
    },
    ErrorCase("crossEntropy", "target below -1", .index) { b in
        try crossEntropy(b, targets: [-2, 1])
    },
    ErrorCase("crossEntropy", "logits are not a matrix", .shape) { b in
        try crossEntropy(b, logits: [2, 5, 1])
    },
    ErrorCase("crossEntropy", "loss has the wrong length", .shape) { b in
        try crossEntropy(b, loss: [3])
    },
    ErrorCase("crossEntropy", "targets are f32", .dtype) { b in
        try crossEntropy(b, targetsType: .f32)
    },
    ErrorCase("crossEntropy", "an empty vocabulary", .empty) { b in
        try crossEntropy(b, logits: [2, 0])
    },
]

@Test(arguments: gradientErrorCases)
func backwardRejects(_ c: ErrorCase) {
    expectSameRejection(c, on: [ReferenceBackend()] + gradientBackendsUnderTest())
}
