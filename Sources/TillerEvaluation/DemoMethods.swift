import Foundation
import TillerCore
import TillerLab
import TillerModels
import TillerSteering

/// The demo's second part: activation steering next to prompt steering for one persona. DiffMean
/// and a local PSR head are fitted from a capture of the trait's train triplets (as `tiller lab
/// compare` does, in memory), and an A-PSR head (one on every layer, MSE) is trained through the
/// frozen model on the same triplets (as `tiller train`, with the lab's settings). Each method keeps
/// the factor that scores best on a few held-out questions, then one other held-out question is
/// answered with the prompt and with each method.
///
/// The target is picked from `tiller lab compare`'s table (docs/lab.md): cheerful is the persona the
/// prompt steers fully (trait 100 at coherence 100) and where the methods come apart, the fitted
/// constant vector steering nothing while the trained head imitates the prompt. A concept (the
/// demo's earlier example) scores 0 for every activation method, which shows nothing about them.
public struct DemoMethods {
    /// The persona shown.
    public static let defaultTarget = "cheerful"
    /// Fewer than `tiller lab compare`'s 150, so the training stays a few seconds on a CPU.
    public static let trainTriplets = 60
    public static let selectionCount = 8
    public static let fitted: [FitMethod] = [.diffmean, .psr]
    public static let trained: LabTrainedMethod = .aPSRMSE
    /// The factors swept: up to 3x (the persona columns of the lab table keep factors of 1 to 3).
    public static let factors: [Double] = [0.5, 1, 1.5, 2, 3]

    /// One answer to the shown question.
    public struct Answer: Sendable {
        /// "unsteered", "prompt" or a method's label.
        public let label: String
        /// The factor the method kept (nil for unsteered and prompt).
        public let factor: Double?
        /// The headline score at that factor on the questions that chose it (nil for unsteered and prompt).
        public let selectionScore: Double?
        public let row: LabEvaluationRow
    }

    public let target: LabTargetFilter
    public let question: LabExample
    public let layer: Int
    public let tripletCount: Int
    public let rowCount: Int
    /// Each fitted method's relative RMSE against Delta_PS on the captured rows.
    public let fits: [(method: FitMethod, relativeRMSE: Double)]
    public let trainingSeconds: Double
    public let selectionCount: Int
    public let answers: [Answer]
    public let generation: GenerationProgress

    /// Fits, trains, sweeps and answers. `heldout` is the held-out split; the target's first
    /// held-out question is shown, the next `selectionCount` choose the factors.
    public static func run(target name: String = DemoMethods.defaultTarget, heldout: [LabExample], seed: UInt64,
                           evaluation: LabEvaluation, progress: ((GenerationProgress) -> Void)? = nil) throws -> DemoMethods {
        let target = try LabTargetFilter(kind: .persona, name: name)
        let questions = heldout.filter { $0.kind == target.kind && target.matches($0.target) }
        guard questions.count >= 2 else {
            throw TillerError.invalidArgument(op: "demo", detail: "\(questions.count) held-out \(name) questions, the demo needs 2")
        }
        let shown = questions[0], selection = Array(questions.dropFirst().prefix(selectionCount))
        let model = evaluation.model, backend = model.backend
        let layer = model.layerCount / 2

        // The trait's first train triplets, captured in memory at the middle layer (every row).
        let train = LabComparison.trainSplit(seed: seed, targets: [target], count: trainTriplets)
        let examples = Array(train.lazy.filter { $0.kind == target.kind && target.matches($0.target) }.prefix(trainTriplets))
        guard !examples.isEmpty else { throw TillerError.invalidArgument(op: "demo", detail: "no train triplets of \(name)") }
        let triplets = try LabComparison.prepare(examples, evaluation: evaluation, source: "lab train split")
        let capture = try ActivationCapture(model: model, layers: [layer])
        var h: [Float] = [], delta: [Float] = [], roles: [Int32] = [], owners: [Int32] = []
        for (i, triplet) in triplets.enumerated() {
            let rows = try capture.capture(triplet)
            h += rows.h[0]
            delta += rows.delta[0]
            roles += rows.roles
            owners += [Int32](repeating: Int32(i), count: rows.roles.count)
        }
        let activations = try LayerActivations.upload(layer: layer, h: h, delta: delta, hiddenSize: model.hiddenSize,
                                                      roles: roles, examples: owners, on: backend)
        var interventions: [Intervention] = [], fits: [(FitMethod, Double)] = []
        for method in fitted {
            let fit = try method.fit(activations, backend: backend)
            interventions.append(Intervention(method: method.rawValue, heads: [layer: fit.head], location: .all, alpha: 1))
            fits.append((method, fit.relativeRMSE))
        }
        let trainingStarted = DispatchTime.now().uptimeNanoseconds
        interventions.append(try LabTrainingSettings().train(trained, triplets: triplets, model: model, compareLayer: layer))
        let trainingSeconds = Double(DispatchTime.now().uptimeNanoseconds - trainingStarted) / 1e9
        let labels = fitted.map { LabComparison.label($0.rawValue) } + [trained.label]

        // The factor sweep on the selection questions, then the shown question: one run each.
        var requests: [LabRequest] = []
        for m in interventions.indices {
            for factor in factors {
                requests += selection.map { LabRequest(example: $0, prompted: false, intervention: m, alpha: Float(factor)) }
            }
        }
        var total = GenerationProgress()
        let (selectionRows, selectionGeneration) = try evaluation.answer(requests, interventions: interventions,
                                                                         batchSize: 64, progress: progress)
        var chosen: [Double] = [], chosenScores: [Double] = []
        for m in interventions.indices {
            let groups = factors.indices.map { f -> [LabScores] in
                let start = (m * factors.count + f) * selection.count
                return selectionRows[start..<(start + selection.count)].map(\.scores)
            }
            let (best, scores) = LabSweep.select(kind: target.kind, factors: factors, scores: groups)
            chosen.append(factors[best])
            chosenScores.append(scores[best])
        }
        let final = [LabRequest(example: shown, prompted: false), LabRequest(example: shown, prompted: true)]
            + interventions.indices.map { LabRequest(example: shown, prompted: false, intervention: $0, alpha: Float(chosen[$0])) }
        let (rows, finalGeneration) = try evaluation.answer(final, interventions: interventions, batchSize: final.count)
        for g in [selectionGeneration, finalGeneration] {
            total.generatedTokens += g.generatedTokens
            total.promptTokens += g.promptTokens
            total.finishedRequests += g.finishedRequests
            total.totalRequests += g.totalRequests
            total.elapsed += g.elapsed
        }
        var answers = [Answer(label: "unsteered", factor: nil, selectionScore: nil, row: rows[0]),
                       Answer(label: "prompt", factor: nil, selectionScore: nil, row: rows[1])]
        for m in interventions.indices {
            answers.append(Answer(label: labels[m], factor: chosen[m], selectionScore: chosenScores[m], row: rows[2 + m]))
        }
        return DemoMethods(target: target, question: shown, layer: layer, tripletCount: triplets.count, rowCount: roles.count,
                           fits: fits, trainingSeconds: trainingSeconds, selectionCount: selection.count, answers: answers,
                           generation: total)
    }

    /// The section as printed, at most 100 columns wide.
    public func text() -> [String] {
        var lines = ["Activation steering: the same persona without the prompt, \"\(target.name)\""]
        let intro = "DiffMean and a local PSR head are fitted at layer \(layer) on \(tripletCount) train triplets "
            + "(\(rowCount) captured rows; they steer every position); \(Self.trained.label), a head on every layer, "
            + String(format: "is trained through the frozen model on the same triplets (%.1f s). ", trainingSeconds)
            + "Each keeps the factor (\(Self.factors.map(LabComparison.factorText).joined(separator: ", "))) with the best "
            + "trait x coherence on \(selectionCount) other held-out \(target.name) questions, then answers this one. "
            + "\(target.name) is the persona where tiller lab compare (docs/lab.md) shows the methods apart."
        lines += TextLayout.labelled("", intro, indent: 0)
        let placement = question.placement == .system ? "in the system message" : "before the question"
        let labels = answers.map { "   " + $0.label + ($0.factor.map { " x\(LabComparison.factorText($0))" } ?? "") }
        let indent = max(18, (labels.map(\.count).max() ?? 0) + 2)
        lines += TextLayout.labelled("   question", question.question, indent: indent)
        lines += TextLayout.labelled("   prompt text", "\"\(question.steeringPrompt ?? "")\" (\(placement))", indent: indent)
        for (answer, label) in zip(answers, labels) {
            lines += TextLayout.labelled(label, answer.row.answer, indent: indent)
            var scores = LabEvaluationReport.scoreLine(answer.row.metrics)
            if let score = answer.selectionScore {
                scores += String(format: " (%.2f on the %d choosing questions)", score, selectionCount)
            }
            lines += TextLayout.labelled("", scores, indent: indent)
        }
        return lines
    }
}
