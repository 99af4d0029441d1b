import Foundation
import TillerCore
import TillerLab
import TillerModels
import TillerSteering

/// The demo's second part: activation steering next to prompt steering for one concept. DiffMean
/// and a local PSR head are fitted in memory from a small capture of the concept's train triplets
/// (as `tiller lab compare` does, without the capture file), each keeps the AxBench factor that
/// scores best on a few held-out questions of the concept, and one other held-out question is
/// answered with the prompt and with each method.
public struct DemoMethods {
    /// The concept shown: `tiller lab compare`'s first default concept.
    public static let defaultConcept = "pottery"
    /// As `tiller lab compare`'s default, so the fits are the comparison's.
    public static let trainTriplets = LabComparison.defaultTrainTriplets
    public static let selectionCount = 10
    public static let methods: [FitMethod] = [.diffmean, .psr]

    /// One answer to the shown question.
    public struct Answer: Sendable {
        /// "unsteered", "prompt" or a method's label.
        public let label: String
        /// The factor the method kept (nil for unsteered and prompt).
        public let factor: Double?
        /// The mean aggregate at that factor on the questions that chose it (nil for unsteered and prompt).
        public let selectionScore: Double?
        public let row: LabEvaluationRow
    }

    public let concept: LabTopic
    public let question: LabExample
    public let layer: Int
    public let tripletCount: Int
    public let rowCount: Int
    /// Each method's relative RMSE against Delta_PS on the fitted rows.
    public let fits: [(method: FitMethod, relativeRMSE: Double)]
    public let selectionCount: Int
    public let answers: [Answer]
    public let generation: GenerationProgress

    /// Fits, sweeps and answers. `heldout` is the held-out split; the concept's first held-out
    /// question is shown, the next `selectionCount` choose the factors.
    public static func run(concept name: String = DemoMethods.defaultConcept, heldout: [LabExample], seed: UInt64,
                           evaluation: LabEvaluation, progress: ((GenerationProgress) -> Void)? = nil) throws -> DemoMethods {
        guard let concept = Lexicon.topic(named: name) else {
            throw TillerError.invalidArgument(op: "demo", detail: "no concept \(name)")
        }
        let questions = heldout.filter { $0.concept == concept }
        guard questions.count >= 2 else {
            throw TillerError.invalidArgument(op: "demo", detail: "\(questions.count) held-out \(name) questions, the demo needs 2")
        }
        let shown = questions[0], selection = Array(questions.dropFirst().prefix(selectionCount))
        let model = evaluation.model, backend = model.backend
        let layer = model.layerCount / 2

        // A small capture in memory: the concept's first train triplets, every shared row.
        let train = LabComparison.trainSplit(seed: seed, targets: [LabTargetFilter(.concept(concept))], count: trainTriplets)
        let examples = Array(train.lazy.filter { $0.concept == concept }.prefix(trainTriplets))
        guard !examples.isEmpty else { throw TillerError.invalidArgument(op: "demo", detail: "no train triplets of \(name)") }
        let preparer = CapturePreparer(tokenizer: evaluation.tokenizer, template: evaluation.template)
        let lines = examples.enumerated().map { i, example in
            CaptureTripletLine(number: i + 1, steered: .messages(LabComparison.chat(example.promptMessages(steered: true))),
                               unsteered: .messages(LabComparison.chat(example.promptMessages(steered: false))),
                               completion: .text(example.answer))
        }
        let triplets = try preparer.prepare(lines, path: "lab train split", generator: nil, options: GenerationOptions())
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
        for method in methods {
            let fit = try method.fit(activations, backend: backend)
            interventions.append(Intervention(method: method.rawValue, heads: [layer: fit.head], location: .all, alpha: 1))
            fits.append((method, fit.relativeRMSE))
        }

        // The factor sweep on the selection questions, then the shown question: one run each.
        let factors = LabSweep.axBenchFactors
        var requests: [LabRequest] = []
        for m in methods.indices {
            for factor in factors {
                requests += selection.map { LabRequest(example: $0, prompted: false, intervention: m, alpha: Float(factor)) }
            }
        }
        var total = GenerationProgress()
        let (selectionRows, selectionGeneration) = try evaluation.answer(requests, interventions: interventions,
                                                                         batchSize: 64, progress: progress)
        var chosen: [Double] = [], chosenScores: [Double] = []
        for m in methods.indices {
            let groups = factors.indices.map { f -> [LabScores] in
                let start = (m * factors.count + f) * selection.count
                return selectionRows[start..<(start + selection.count)].map(\.scores)
            }
            let (best, scores) = LabSweep.select(kind: .concept, factors: factors, scores: groups)
            chosen.append(factors[best])
            chosenScores.append(scores[best])
        }
        let final = [LabRequest(example: shown, prompted: false), LabRequest(example: shown, prompted: true)]
            + methods.indices.map { LabRequest(example: shown, prompted: false, intervention: $0, alpha: Float(chosen[$0])) }
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
        for m in methods.indices {
            answers.append(Answer(label: LabComparison.label(methods[m].rawValue), factor: chosen[m], selectionScore: chosenScores[m],
                                  row: rows[2 + m]))
        }
        return DemoMethods(concept: concept, question: shown, layer: layer, tripletCount: triplets.count, rowCount: roles.count,
                           fits: fits, selectionCount: selection.count, answers: answers, generation: total)
    }

    /// The section as printed, at most 100 columns wide.
    public func text() -> [String] {
        var lines = ["Activation steering: the same concept without the prompt, \"\(concept.name)\""]
        let intro = "DiffMean and a local PSR head, fitted at layer \(layer) on \(tripletCount) train triplets "
            + "(\(rowCount) captured rows, every row; they steer every position). Each keeps the AxBench "
            + "factor (0.2 to 5) with the best mean aggregate on \(selectionCount) other held-out \(concept.name) "
            + "questions, then answers this one. Every method on every kind: tiller lab compare."
        lines += TextLayout.labelled("", intro, indent: 0)
        let placement = question.placement == .system ? "in the system message" : "before the question"
        let indent = 18
        lines += TextLayout.labelled("   question", question.question, indent: indent)
        lines += TextLayout.labelled("   prompt text", "\"\(question.steeringPrompt ?? "")\" (\(placement))", indent: indent)
        for answer in answers {
            let label = "   " + answer.label + (answer.factor.map { " x\(LabComparison.factorText($0))" } ?? "")
            lines += TextLayout.labelled(label, answer.row.answer, indent: indent)
            var scores = LabEvaluationReport.scoreLine(answer.row.metrics)
            if let score = answer.selectionScore {
                scores += String(format: " (mean aggregate %.2f on the %d choosing questions)", score, selectionCount)
            }
            lines += TextLayout.labelled("", scores, indent: indent)
        }
        return lines
    }
}
