import TillerCore
import TillerLab
import TillerModels
import TillerSteering

/// Persona scored the PSR paper's way: the trait score at the strength where coherence falls to a
/// level (TA@C80: coherence 80; TA@Cp: the prompt's coherence), found per method by bisection on
/// the factor. Methods are compared at the same coherence rather than at each one's best trade-off.
public struct LabMatchedPoint: Sendable {
    /// "C80" or "Cp".
    public let level: String
    public let coherenceTarget: Double
    /// The largest factor tried whose coherence reached the target (0: none did; the scores are
    /// then the unsteered answers').
    public let factor: Double
    public let trait: Double
    public let coherence: Double
}

extension LabEvaluation {
    /// For every arm, bisects the factor in [0, `maxFactor`] for the largest factor whose mean
    /// coherence on `examples` is at least `coherence` (assumed to fall as the factor grows), and
    /// returns the means there. First `maxFactor` itself (an arm coherent there keeps it), then
    /// `steps` halvings; every step is one batched run over the arms still searching. An arm with no
    /// coherent factor gets `fallback` (the unsteered means) at factor 0.
    func matchedCoherence(_ examples: [LabExample], arms: [LabSweepArm], coherence target: Double, level: String,
                          maxFactor: Double, steps: Int, fallback: LabMetricMeans,
                          maxNewTokens: Int, batchSize: Int,
                          progress: ((GenerationProgress) -> Void)?) throws -> (points: [LabMatchedPoint], generation: GenerationProgress) {
        var total = GenerationProgress()
        var means: [Int: LabMetricMeans] = [:]
        // The bisection is the one `tiller eval compare` uses; each step is one batched run.
        let found = try EvalMatchedCoherence.search(arms: arms.count, target: target, level: level, maxAlpha: maxFactor,
                                                    steps: steps) { pairs in
            var requests: [LabRequest] = []
            for (a, factor) in pairs {
                for example in examples {
                    requests.append(LabRequest(example: example, prompted: arms[a].prompted, intervention: a, alpha: Float(factor) * arms[a].alpha))
                }
            }
            let (rows, generation) = try answer(requests, interventions: arms.map(\.intervention), maxNewTokens: maxNewTokens,
                                                batchSize: batchSize, progress: progress)
            total.generatedTokens += generation.generatedTokens
            total.promptTokens += generation.promptTokens
            total.finishedRequests += generation.finishedRequests
            total.totalRequests += generation.totalRequests
            total.elapsed += generation.elapsed
            return pairs.indices.map { i -> (coherence: Double?, score: Double?) in
                let m = LabMetricMeans(rows[(i * examples.count)..<((i + 1) * examples.count)].map(\.metrics))
                // The means of the largest coherent factor are what a point reports; kept per arm as found.
                if (m["coherence"] ?? 0) >= target { means[pairs[i].arm] = m }
                return (m["coherence"] ?? 0, m["trait"])
            }
        }
        let points = arms.indices.map { a -> LabMatchedPoint in
            let kept = found[a].alpha == nil ? fallback : (means[a] ?? fallback)
            return LabMatchedPoint(level: level, coherenceTarget: target, factor: found[a].alpha ?? 0,
                                   trait: kept["trait"] ?? 0, coherence: kept["coherence"] ?? 0)
        }
        return (points, total)
    }
}
