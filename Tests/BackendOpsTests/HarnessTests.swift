// The harness checks itself: a suite that cannot fail proves nothing, so each kind of damage it
// claims to catch is staged here on purpose and must be reported.

import Testing
import TillerCore
import TillerCPU

@Suite struct HarnessTests {
    @Test func writesPastAnOutputAreReported() throws {
        let run = OpRun(CPUBackend())
        let out = try run.output("out", [3])
        // One float beyond the end, through a wider view of the same buffer.
        let wider = try Tensor(buffer: out.buffer, byteOffset: out.byteOffset, shape: [4], dtype: .f32)
        try [Float](repeating: 1, count: 4).withUnsafeBytes { try run.backend.upload($0, to: wider) }
        let problems = try run.finish().problems
        #expect(problems.contains { $0.contains("guard bytes changed") && $0.contains("after") })
    }

    @Test func writesBeforeAnOutputAreReported() throws {
        let run = OpRun(CPUBackend())
        let out = try run.output("out", [2, 5], initial: [Float](repeating: 0, count: 10))
        let earlier = try Tensor(buffer: out.buffer, byteOffset: out.byteOffset - 4, shape: [1], dtype: .f32)
        try [Float(7)].withUnsafeBytes { try run.backend.upload($0, to: earlier) }
        let problems = try run.finish().problems
        #expect(problems.contains { $0.contains("guard bytes changed") && $0.contains("before") })
    }

    @Test func unwrittenOutputsAreNotFinite() throws {
        let run = OpRun(CPUBackend())
        _ = try run.output("out", [5])
        _ = try run.output("indices", ints: [2])
        let values = try run.finish().values
        guard case let .floats(floats) = values[0].values, case let .ints(ints) = values[1].values else {
            Issue.record("outputs decoded as the wrong kind")
            return
        }
        #expect(floats.allSatisfy { $0.isNaN })
        #expect(ints.allSatisfy { $0 == GuardedTensor.sentinelInt })
    }

    @Test func modifiedInputsAreReported() throws {
        let run = OpRun(CPUBackend())
        let x = try run.input([1, 2, 3], [3])
        try run.backend.scale(x, by: 2, out: x)
        #expect(try run.finish().problems.contains { $0.contains("was modified") })
    }

    @Test func wrongValuesFailTheComparison() {
        let messages = compareWithReference("harness: scale by the wrong factor", maxNMSE: Tolerance.accumulated, backends: [CPUBackend()]) { run in
            let x = try run.input([1, -2, 3, 0.5], [4])
            let out = try run.output("out", [4])
            try run.backend.scale(x, by: run.backend is ReferenceBackend ? 2 : 2.001, out: out)
        }
        #expect(messages.count == 1 && messages[0].contains("NMSE"))
    }

    @Test func wrongIndicesFailTheComparison() {
        let messages = compareWithReference("harness: argmax of another row", maxNMSE: 0, backends: [CPUBackend()]) { run in
            let x = try run.input(run.backend is ReferenceBackend ? [1, 3, 2] : [3, 1, 2], [1, 3])
            try run.backend.argmax(x, out: try run.output("out", ints: [1]))
        }
        #expect(messages.count == 1 && messages[0].contains("1 of 1 differ"))
    }

    @Test func nmseFallsBackToSquaredErrorOnZeroReference() {
        #expect(nmse([0, 0], [0, 0]) == 0)
        #expect(nmse([3, 4], [0, 0]) == 25)
        #expect(nmse([1, 1], [1, 0]) == 1)
    }
}
