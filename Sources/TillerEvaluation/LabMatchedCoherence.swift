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
        var low = [Double](repeating: 0, count: arms.count), high = [Double](repeating: maxFactor, count: arms.count)
        var best = [LabMetricMeans?](repeating: nil, count: arms.count)
        var done = [Bool](repeating: false, count: arms.count)
        var total = GenerationProgress()
        for step in 0...steps {
            let searching = arms.indices.filter { !done[$0] }
            if searching.isEmpty { break }
            let tried = searching.map { step == 0 ? maxFactor : (low[$0] + high[$0]) / 2 }
            var requests: [LabRequest] = []
            for (a, factor) in zip(searching, tried) {
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
            for (i, (a, factor)) in zip(searching, tried).enumerated() {
                let means = LabMetricMeans(rows[(i * examples.count)..<((i + 1) * examples.count)].map(\.metrics))
                if (means["coherence"] ?? 0) >= target {
                    low[a] = factor
                    best[a] = means
                    if step == 0 { done[a] = true }
                } else {
                    high[a] = factor
                }
            }
        }
        let points = arms.indices.map { a -> LabMatchedPoint in
            let means = best[a] ?? fallback
            return LabMatchedPoint(level: level, coherenceTarget: target, factor: best[a] == nil ? 0 : low[a],
                                   trait: means["trait"] ?? 0, coherence: means["coherence"] ?? 0)
        }
        return (points, total)
    }
}
