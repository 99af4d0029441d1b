import Foundation
import Testing
import TillerCore

@Suite struct SamplingTests {
    @Test func nucleusKeepsTheSmallestPrefixReachingP() throws {
        // Probabilities 0.5, 0.25, 0.125, 0.125 (logits are their natural logs).
        let logits: [Float] = [0.5, 0.25, 0.125, 0.125].map { Float(log(Double($0))) }
        // Mass before each: 0, 0.5, 0.75, 0.875. With p = 0.7 the first two are kept.
        let kept = try Sampling.nucleus(sortedLogits: logits, temperature: 1, topP: 0.7)
        #expect(kept.count == 2)
        #expect(abs(kept[0] - 2.0 / 3) < 1e-6 && abs(kept[1] - 1.0 / 3) < 1e-6)
        // p = 1 keeps everything; a tiny p keeps only the best.
        #expect(try Sampling.nucleus(sortedLogits: logits, temperature: 1, topP: 1).count == 4)
        #expect(try Sampling.nucleus(sortedLogits: logits, temperature: 1, topP: 0.01) == [1])
    }

    @Test func temperatureSharpens() throws {
        let probs = try Sampling.nucleus(sortedLogits: [1, 0], temperature: 0.5, topP: 1)
        // softmax([2, 0]) = [e^2, 1] / (e^2 + 1)
        let e2 = Float(exp(2.0))
        #expect(abs(probs[0] - e2 / (e2 + 1)) < 1e-6)
    }

    @Test func rejectsBadArguments() {
        #expect(throws: TillerError.self) { try Sampling.nucleus(sortedLogits: [0, 1], temperature: 1, topP: 0.9) }
        #expect(throws: TillerError.self) { try Sampling.nucleus(sortedLogits: [1], temperature: 0, topP: 0.9) }
        #expect(throws: TillerError.self) { try Sampling.nucleus(sortedLogits: [], temperature: 1, topP: 0.9) }
    }

    @Test func drawFollowsTheDistribution() {
        var rng = SplitMix64(seed: 1)
        var counts = [0, 0, 0]
        for _ in 0..<30_000 { counts[Sampling.draw([0.5, 0.3, 0.2], using: &rng)] += 1 }
        #expect(abs(Double(counts[0]) / 30_000 - 0.5) < 0.02)
        #expect(abs(Double(counts[2]) / 30_000 - 0.2) < 0.02)
    }
}
