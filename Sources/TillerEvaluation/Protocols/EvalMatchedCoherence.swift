/// The PSR paper's comparison at matched coherence (docs/evaluation.md): for each steering file,
/// the strength where mean coherence falls to a level, found by bisection on alpha, and the score
/// there. TA@C80: coherence 80; TA@Cp: the prompt's own coherence. Coherence is assumed to fall as
/// alpha grows (as `LabMatchedCoherence` assumes for the lab).
public enum EvalMatchedCoherence {
    /// The score a protocol is compared by: persona's trait, ifeval-format's strict pass rate (in
    /// percent), concept's AxBench aggregate.
    public static func scoreMetric(_ proto: EvalProtocol) -> String {
        switch proto {
        case .persona: return "trait"
        case .ifevalFormat: return "pass"
        case .concept: return "aggregate"
        }
    }

    /// One arm's point at a level: the largest alpha tried whose coherence reached the target (nil:
    /// none did, not even the smallest tried) with its means.
    public struct Point: Sendable {
        public var level: String
        public var target: Double
        public var alpha: Double?
        public var score: Double?
        public var coherence: Double?
    }

    /// Bisects alpha in [0, `maxAlpha`] for every arm at once: first `maxAlpha` itself (an arm
    /// coherent there keeps it), then `steps` halvings of the interval between the largest coherent
    /// and the smallest incoherent alpha. `evaluate` gets (arm, alpha) pairs and returns each pair's
    /// (coherence, score) means, so a caller runs each step as one batch (and may answer pairs it
    /// has seen from its results).
    public static func search(arms: Int, target: Double, level: String, maxAlpha: Double, steps: Int,
                              evaluate: ([(arm: Int, alpha: Double)]) throws -> [(coherence: Double?, score: Double?)]) throws -> [Point] {
        var low = [Double](repeating: 0, count: arms), high = [Double](repeating: maxAlpha, count: arms)
        var best = [(alpha: Double, coherence: Double?, score: Double?)?](repeating: nil, count: arms)
        var done = [Bool](repeating: false, count: arms)
        for step in 0...max(0, steps) {
            let searching = (0..<arms).filter { !done[$0] }
            if searching.isEmpty { break }
            let pairs = searching.map { (arm: $0, alpha: step == 0 ? maxAlpha : (low[$0] + high[$0]) / 2) }
            let means = try evaluate(pairs)
            for (pair, mean) in zip(pairs, means) {
                if let coherence = mean.coherence, coherence >= target {
                    low[pair.arm] = pair.alpha
                    best[pair.arm] = (pair.alpha, mean.coherence, mean.score)
                    if step == 0 { done[pair.arm] = true }
                } else {
                    high[pair.arm] = pair.alpha
                }
            }
        }
        return (0..<arms).map { a in
            Point(level: level, target: target, alpha: best[a]?.alpha, score: best[a]?.score ?? nil, coherence: best[a]?.coherence ?? nil)
        }
    }
}
