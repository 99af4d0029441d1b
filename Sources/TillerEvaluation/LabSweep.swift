import Foundation
import TillerCore
import TillerLab
import TillerModels
import TillerSteering

/// The factor sweep of activation steering, as AxBench runs it: every steering factor is tried on
/// the first half of the examples, the factor with the best headline score there is kept, and the
/// other half is answered at that factor and reported (docs/lab.md, "Activation steering against
/// prompt steering").
public enum LabSweep {
    /// AxBench's steering factors (stanfordnlp/axbench, `steering_factors` of its sweep configs).
    /// A factor multiplies the intervention's strength (its alpha, 1 for a fitted file).
    public static let axBenchFactors: [Double] = [0.2, 0.4, 0.6, 0.8, 1.0, 1.2, 1.4, 1.6, 1.8, 2.0, 2.5, 3.0, 4.0, 5.0]

    /// How `count` examples are split: the first half (rounded down) chooses the factor, the rest
    /// (at least as many) is scored. Needs at least 2 examples.
    public static func halves(_ count: Int) -> (selection: Range<Int>, evaluation: Range<Int>) {
        let half = max(count, 0) / 2
        return (0..<half, half..<max(count, 0))
    }

    /// The index of the factor to keep: the best score, and among equal best scores the smallest
    /// factor (the gentlest intervention that does as well). `factors` and `scores` pair up.
    public static func choose(factors: [Double], scores: [Double]) -> Int {
        precondition(!factors.isEmpty && factors.count == scores.count, "one score per factor")
        var best = 0
        for i in factors.indices.dropFirst() {
            if scores[i] > scores[best] || (scores[i] == scores[best] && factors[i] < factors[best]) { best = i }
        }
        return best
    }

    /// The factor to keep from the judged answers of the selection half: `scores[f]` holds the
    /// answers at `factors[f]` (all of `kind`); each factor's headline score (`LabHeadline`) is
    /// computed and `choose` picks. Returns the index and every factor's headline score.
    public static func select(kind: LabKind, factors: [Double], scores: [[LabScores]]) -> (index: Int, headlines: [Double]) {
        precondition(factors.count == scores.count, "one group of answers per factor")
        let headlines = scores.map { LabHeadline.score(kind: kind, scores: $0) }
        return (choose(factors: factors, scores: headlines), headlines)
    }

    /// Parses "0.2,0.4,1" (or "axbench" for `axBenchFactors`): finite, positive, no repeats; sorted.
    public static func parseFactors(_ text: String) throws -> [Double] {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed == "axbench" { return axBenchFactors }
        var factors: [Double] = []
        for part in trimmed.split(separator: ",", omittingEmptySubsequences: false) {
            let item = part.trimmingCharacters(in: .whitespaces)
            guard let factor = Double(item), factor.isFinite, factor > 0 else {
                throw TillerError.invalidArgument(op: "--factors", detail: "\"\(item)\" is not a positive number (give e.g. 0.5,1,2 or axbench)")
            }
            try NumericRange.check("--factors", factor, in: NumericRange.steeringFactor)
            guard !factors.contains(factor) else {
                throw TillerError.invalidArgument(op: "--factors", detail: "\(item) is given twice")
            }
            factors.append(factor)
        }
        return factors.sorted()
    }
}

/// The one number a factor is chosen by, per kind, from the means of a group of answers
/// (docs/lab.md): concept: the mean AxBench aggregate (each answer's harmonic mean of concept,
/// instruction and fluency, 0-2); persona: the harmonic mean of the mean trait score and the mean
/// coherence, both divided by 100 (0-1); format: the pass rate times the mean coherence / 100 (0-1).
public enum LabHeadline {
    public static func score(kind: LabKind, means: LabMetricMeans) -> Double {
        switch kind {
        case .concept:
            return means["aggregate"] ?? 0
        case .persona:
            let trait = (means["trait"] ?? 0) / 100, coherence = (means["coherence"] ?? 0) / 100
            return trait > 0 && coherence > 0 ? 2 * trait * coherence / (trait + coherence) : 0
        case .format:
            return (means["pass"] ?? 0) * (means["coherence"] ?? 0) / 100
        case .none:
            return 0
        }
    }

    /// The score of judged answers (all of one kind).
    public static func score(kind: LabKind, scores: [LabScores]) -> Double {
        score(kind: kind, means: LabMetricMeans(scores.map { $0.metrics.map { LabMetric(name: $0.name, value: $0.value) } }))
    }

    /// What the score is, in a few words, and its scale.
    public static func name(_ kind: LabKind) -> String {
        switch kind {
        case .concept: return "aggregate (0-2)"
        case .persona: return "harmonic mean of trait/100 and coherence/100 (0-1)"
        case .format: return "pass rate x coherence/100 (0-1)"
        case .none: return "-"
        }
    }
}

/// One intervention to sweep: a name, the intervention, the strength a factor multiplies, and
/// whether it steers the prompt-steered question (stacked on the prompt) or the bare one.
public struct LabSweepArm: Sendable {
    public var name: String
    public var intervention: Intervention
    /// Factor 1's strength: the intervention's alpha unless given.
    public var alpha: Float
    public var prompted: Bool

    public init(name: String, intervention: Intervention, alpha: Float? = nil, prompted: Bool = false) {
        self.name = name
        self.intervention = intervention
        self.alpha = alpha ?? intervention.alpha
        self.prompted = prompted
    }
}

/// One arm's sweep: its score at every factor on the selection half, the factor kept, and the
/// evaluation half answered at that factor.
public struct LabSweepResult: Sendable {
    public let arm: LabSweepArm
    public let factors: [Double]
    /// The headline score at each factor on the selection half (empty when only one factor was
    /// given: nothing to choose, nothing generated).
    public let selectionScores: [Double]
    public let chosenIndex: Int
    /// The ids of the selection half.
    public let selectionIDs: [String]
    /// The evaluation half at the chosen factor.
    public let report: LabEvaluationReport

    public var chosenFactor: Double { factors[chosenIndex] }
    /// The strength the evaluation half was steered at: factor x alpha.
    public var chosenAlpha: Float { Float(chosenFactor) * arm.alpha }
    public var headline: Double { LabHeadline.score(kind: report.kind, means: report.overall) }
}

extension LabEvaluation {
    /// Sweeps every arm over `factors` on the first half of `examples` (all of one kind), keeps each
    /// arm's best factor by `LabHeadline`, then answers the second half at it. Two batched runs in
    /// all: every arm and factor of the selection half together, then every arm's evaluation half.
    public func sweep(_ examples: [LabExample], arms: [LabSweepArm], factors: [Double],
                      maxNewTokens: Int = LabEvaluation.defaultMaxNewTokens,
                      batchSize: Int = LabEvaluation.defaultBatchSize,
                      progress: ((String, GenerationProgress) -> Void)? = nil) throws -> (results: [LabSweepResult], generation: GenerationProgress) {
        guard let kind = examples.first?.kind, examples.count >= 2 else {
            throw TillerError.invalidArgument(op: "lab sweep", detail: "a sweep needs at least 2 examples (one per half), got \(examples.count)")
        }
        if let other = examples.first(where: { $0.kind != kind || $0.target == nil }) {
            throw TillerError.invalidArgument(op: "lab sweep", detail: "\(other.id): expected a \(kind.rawValue) example, got \(other.kind.rawValue)")
        }
        guard !factors.isEmpty, factors.allSatisfy({ $0.isFinite && $0 > 0 }) else {
            throw TillerError.invalidArgument(op: "lab sweep", detail: "factors must be positive numbers, got \(factors)")
        }
        guard !arms.isEmpty else { return ([], GenerationProgress()) }
        // A steering file may hold any finite f32 alpha; scaled by a factor it must stay finite.
        for arm in arms {
            if let factor = factors.first(where: { !(Float($0) * arm.alpha).isFinite }) {
                throw TillerError.invalidArgument(op: "lab sweep", detail: "\(arm.name): alpha \(arm.alpha) x factor \(factor) is not a finite f32")
            }
        }
        let (selectionRange, evaluationRange) = LabSweep.halves(examples.count)
        let selection = Array(examples[selectionRange]), evaluation = Array(examples[evaluationRange])
        let interventions = arms.map(\.intervention)
        var total = GenerationProgress()
        func add(_ g: GenerationProgress) {
            total.generatedTokens += g.generatedTokens
            total.promptTokens += g.promptTokens
            total.finishedRequests += g.finishedRequests
            total.totalRequests += g.totalRequests
            total.elapsed += g.elapsed
        }

        // Selection: every arm x factor x selection example, one run.
        var chosen = [Int](repeating: 0, count: arms.count)
        var scores = [[Double]](repeating: [], count: arms.count)
        if factors.count > 1 {
            var requests: [LabRequest] = []
            for (a, arm) in arms.enumerated() {
                for factor in factors {
                    for example in selection {
                        requests.append(LabRequest(example: example, prompted: arm.prompted, intervention: a, alpha: Float(factor) * arm.alpha))
                    }
                }
            }
            let (rows, generation) = try answer(requests, interventions: interventions, maxNewTokens: maxNewTokens,
                                                batchSize: batchSize, progress: { progress?("selection", $0) })
            add(generation)
            for a in arms.indices {
                let groups = factors.indices.map { f -> [LabScores] in
                    let start = (a * factors.count + f) * selection.count
                    return rows[start..<(start + selection.count)].map(\.scores)
                }
                (chosen[a], scores[a]) = LabSweep.select(kind: kind, factors: factors, scores: groups)
            }
        }

        // Evaluation: every arm at its factor on the other half, one run.
        var requests: [LabRequest] = []
        for (a, arm) in arms.enumerated() {
            for example in evaluation {
                requests.append(LabRequest(example: example, prompted: arm.prompted, intervention: a,
                                           alpha: Float(factors[chosen[a]]) * arm.alpha))
            }
        }
        let (rows, generation) = try answer(requests, interventions: interventions, maxNewTokens: maxNewTokens,
                                            batchSize: batchSize, progress: { progress?("evaluation", $0) })
        add(generation)
        let results = arms.indices.map { a -> LabSweepResult in
            let group = Array(rows[(a * evaluation.count)..<((a + 1) * evaluation.count)])
            let report = LabEvaluationReport(kind: kind, steer: arms[a].prompted ? .prompt : .none, rows: group, generation: generation)
            return LabSweepResult(arm: arms[a], factors: factors, selectionScores: scores[a], chosenIndex: chosen[a],
                                  selectionIDs: selection.map(\.id), report: report)
        }
        return (results, total)
    }
}
