import Foundation
import TillerCore
import TillerLab
import TillerModels
import TillerSteering
import TillerTraining

/// `tiller lab compare`: activation steering against prompt steering on the lab model. For each
/// target, DiffMean, PCA, Stolfo's projection and a local PSR head are fitted from a capture of the
/// target's train triplets (at one layer, in a temporary capture file), then the target's held-out
/// examples are answered unsteered, with the steering prompt, and with each method, every method
/// with AxBench's factor sweep (`LabSweep`). Unsteered and prompt answer the same evaluation half
/// the methods are scored on.
public struct LabComparison {
    public struct Settings: Sendable {
        /// One target each (a concept, a trait, a format or a format type).
        public var targets: [LabTargetFilter]
        /// The layer steered (0-based: the residual stream after block L); nil: the middle layer,
        /// layerCount / 2.
        public var layer: Int?
        /// Train triplets captured per target (the first of the target in the train split).
        public var trainTriplets: Int
        /// Most held-out examples per target (split in half by the sweep).
        public var limit: Int
        public var factors: [Double]
        public var methods: [FitMethod]
        /// Rows trained through the frozen model (`LabTrainedMethod`), on the same triplets.
        public var trained: [LabTrainedMethod]
        public var training: LabTrainingSettings
        /// Bisection steps of the persona search for TA@C80 and TA@Cp (`matchedCoherence`).
        public var matchedSteps: Int
        /// The captured rows each method is fitted on (default: all, the shared prompt tokens too).
        public var rows: FitRows
        /// Where the fitted interventions steer (default: all, as AxBench steers every position).
        public var location: SteeringLocation
        public var psr: LocalPSROptions
        public var maxNewTokens: Int
        public var batchSize: Int

        public init(targets: [LabTargetFilter] = LabComparison.defaultTargets(), layer: Int? = nil,
                    trainTriplets: Int = LabComparison.defaultTrainTriplets, limit: Int = LabComparison.defaultLimit,
                    factors: [Double] = LabSweep.axBenchFactors, methods: [FitMethod] = FitMethod.allCases,
                    trained: [LabTrainedMethod] = LabTrainedMethod.allCases, training: LabTrainingSettings = LabTrainingSettings(),
                    matchedSteps: Int = LabComparison.defaultMatchedSteps, rows: FitRows = .all, location: SteeringLocation = .all, psr: LocalPSROptions = LocalPSROptions(),
                    maxNewTokens: Int = LabEvaluation.defaultMaxNewTokens, batchSize: Int = 64) {
            self.targets = targets
            self.layer = layer
            self.trainTriplets = trainTriplets
            self.limit = limit
            self.factors = factors
            self.methods = methods
            self.trained = trained
            self.training = training
            self.matchedSteps = matchedSteps
            self.rows = rows
            self.location = location
            self.psr = psr
            self.maxNewTokens = maxNewTokens
            self.batchSize = batchSize
        }
    }

    public static let defaultTrainTriplets = 150
    public static let defaultLimit = 40
    public static let defaultMatchedSteps = 4
    /// The sizes the train split is generated at, smallest first: the first that holds enough
    /// triplets of every target is used (the largest, the default corpus size, in any case).
    public static let trainSplitSizes = [5_000, 10_000, 20_000, LabCorpus.defaultTrainCount]

    /// The train split the triplets come from: train examples (train pairs and question templates
    /// only) of the corpus seed, at the smallest of `trainSplitSizes` with `count` examples of every
    /// target. (The kinds are shuffled over the whole split, so each size gives other examples.)
    public static func trainSplit(seed: UInt64, targets: [LabTargetFilter], count: Int) -> [LabExample] {
        let splits = LabSplits(seed: seed)
        func found(_ examples: [LabExample], _ target: LabTargetFilter) -> Int {
            examples.lazy.filter { $0.kind == target.kind && target.matches($0.target) }.prefix(count).count
        }
        var examples: [LabExample] = []
        var skipBelow = 0
        for size in trainSplitSizes where size >= skipBelow || size == trainSplitSizes.last {
            examples = LabCorpus.examples(.train, count: size, seed: seed, splits: splits)
            let counts = targets.map { found(examples, $0) }
            if counts.allSatisfy({ $0 >= count }) { break }
            // Sizes the rarest target's share says are too small are not generated.
            let share = Double(counts.min() ?? 0) / Double(size)
            skipBelow = share > 0 ? Int(Double(count) / share) : 0
        }
        return examples
    }

    /// Two targets per kind: the two concepts and two traits with the most held-out examples in
    /// seed 1's split, capitals and one end_with phrase.
    public static let defaultTargetNames: [LabKind: [String]] = [
        .concept: ["pottery", "forest"],
        .persona: ["gloomy", "cheerful"],
        .format: ["capitals", "end_with(thank you kindly)"],
    ]

    public static func defaultTargets(kinds: [LabKind] = [.concept, .persona, .format]) -> [LabTargetFilter] {
        kinds.flatMap { kind in (defaultTargetNames[kind] ?? []).map { try! LabTargetFilter(kind: kind, name: $0) } }
    }

    /// A target name of any kind: concept topic names, trait names and format names are disjoint.
    public static func target(named name: String) throws -> LabTargetFilter {
        for kind in [LabKind.concept, .persona, .format] {
            if let filter = try? LabTargetFilter(kind: kind, name: name) { return filter }
        }
        throw TillerError.invalidArgument(op: "--targets", detail: "\"\(name)\" names no concept, trait or format "
                                          + "(e.g. pottery, gloomy, capitals, end_with(thank you kindly))")
    }

    /// The display name of a row.
    public static func label(_ method: String) -> String {
        switch method {
        case "diffmean": return "DiffMean"
        case "pca": return "PCA"
        case "stolfo": return "Stolfo"
        case "psr": return "local PSR"
        default:
            if let trained = LabTrainedMethod(rawValue: method) { return trained.label }
            if method.hasPrefix(stackedPrefix) { return "prompt + " + label(String(method.dropFirst(stackedPrefix.count))) }
            return method
        }
    }

    static let stackedPrefix = "prompt+"
    /// The row of a method stacked on the prompt (format targets: the trained PSR rows steer x').
    public static func stackedName(_ method: String) -> String { stackedPrefix + method }

    /// One row of one target: a way of steering and how its answers scored.
    public struct Cell: Sendable {
        /// "unsteered", "prompt" or a `FitMethod` raw value.
        public let method: String
        public let means: LabMetricMeans
        public let headline: Double
        /// The factor the sweep kept (nil for unsteered and prompt).
        public let factor: Double?
        /// The headline score at every factor on the selection half (empty for unsteered and prompt).
        public let selectionScores: [Double]
    }

    /// Everything measured for one target.
    public struct TargetResult: Sendable {
        public let target: LabTargetFilter
        public let layer: Int
        public let trainTriplets: Int
        public let capturedRows: Int
        public let fittedRows: Int
        /// Each method's relative RMSE against Delta_PS on the fitted rows.
        public let fits: [(method: FitMethod, relativeRMSE: Double)]
        /// Each trained row's relative RMSE at the compare layer over every captured row, from a
        /// replay of its heads on xy' (`CaptureAnalyzer.replay`, as `tiller analyze --steer`).
        public let replayed: [(method: String, relativeRMSE: Double)]
        /// The yardstick: the paraphrased steering prompt's relative RMSE against Delta_PS
        /// (`LabParaphrase`) on the same triplets and layer; nil when not measured.
        public let paraphraseRMSE: Double?
        public let selectionCount: Int
        public let evaluationCount: Int
        public let cells: [Cell]
        /// Persona: per steering row, the scores at matched coherence (C80, then Cp).
        public let matched: [String: [LabMatchedPoint]]
        public let seconds: Double

        public var kind: LabKind { target.kind }
        public func cell(_ method: String) -> Cell? { cells.first { $0.method == method } }
    }

    public let settings: Settings
    public let seed: UInt64
    public let layerCount: Int
    public let results: [TargetResult]
    public let generation: GenerationProgress
    public let seconds: Double

    /// Runs the comparison. `log` gets one line per stage (for stderr); `progress` every generation
    /// step.
    public static func run(_ settings: Settings, evaluation: LabEvaluation, modelDirectory: String, seed: UInt64,
                           heldout pool: [LabExample], log: (String) -> Void = { _ in },
                           progress: ((GenerationProgress) -> Void)? = nil) throws -> LabComparison {
        let started = DispatchTime.now().uptimeNanoseconds
        func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9 }
        let model = evaluation.model
        let layer = settings.layer ?? model.layerCount / 2
        guard (0..<model.layerCount).contains(layer) else {
            throw TillerError.invalidArgument(op: "lab compare", detail: "layer \(layer): the model has \(model.layerCount) layers (0-\(model.layerCount - 1))")
        }
        guard !settings.targets.isEmpty else { throw TillerError.invalidArgument(op: "lab compare", detail: "no targets") }
        guard settings.trainTriplets > 0, settings.limit >= 2 else {
            throw TillerError.invalidArgument(op: "lab compare", detail: "needs at least 1 train triplet and 2 held-out examples per target")
        }
        // Held-out examples first: a target without enough is reported before any work.
        var heldout: [[LabExample]] = []
        for target in settings.targets {
            let examples = HeldOutExamples.select(pool, kind: target.kind, target: target, limit: settings.limit)
            guard examples.count >= 2 else {
                throw TillerError.invalidArgument(op: "lab compare", detail: "\(target.kind.rawValue) target \(target): \(examples.count) held-out examples, the sweep needs at least 2")
            }
            heldout.append(examples)
        }
        let fingerprint = try ModelFingerprint(directory: modelDirectory)
        log("tiller: lab compare: \(settings.targets.count) target\(settings.targets.count == 1 ? "" : "s"), layer \(layer) of \(model.layerCount), \(settings.methods.count + settings.trained.count) methods x \(settings.factors.count) factors; generating the train split of corpus seed \(seed)")
        let train = trainSplit(seed: seed, targets: settings.targets, count: settings.trainTriplets)
        log("tiller: the train split at \(train.count) examples holds the triplets")

        var results: [TargetResult] = []
        var total = GenerationProgress()
        for (target, examples) in zip(settings.targets, heldout) {
            let targetStarted = now()
            let triplets = Array(train.lazy.filter { $0.kind == target.kind && target.matches($0.target) }.prefix(settings.trainTriplets))
            guard !triplets.isEmpty else {
                throw TillerError.invalidArgument(op: "lab compare", detail: "no train examples of \(target.kind.rawValue) target \(target)")
            }
            let name = "\(target.kind.rawValue)(\(target))"
            let source = "lab train split, seed \(seed), \(name)"
            let prepared = try prepare(triplets, evaluation: evaluation, source: source)
            var trained: [Intervention] = []
            for method in settings.trained {
                let started = now()
                trained.append(try settings.training.train(method, triplets: prepared, model: model, compareLayer: layer))
                log("tiller: \(name): trained \(method.label) on \(prepared.count) triplets (\(settings.training.epochs) epochs, learning rate \(settings.training.learningRate)) in \(String(format: "%.1f", now() - started)) s")
            }
            let fitted = try fit(prepared, layer: layer, settings: settings, evaluation: evaluation, fingerprint: fingerprint, source: source,
                                 replaying: trained)
            if !fitted.replayed.isEmpty {
                log("tiller: \(name): replayed on the capture at layer \(layer), relative RMSE " + fitted.replayed.map {
                    "\(label($0.method)) \(String(format: "%.3f", $0.relativeRMSE))"
                }.joined(separator: ", "))
            }
            let paraphraseRMSE = try LabParaphrase.relativeRMSE(triplets, prompted: prepared, layer: layer, evaluation: evaluation, source: source)
            log("tiller: \(name): the paraphrased prompt (\"\(triplets[0].target?.paraphraseText ?? "")\") against Delta_PS at layer \(layer): relative RMSE "
                + (paraphraseRMSE.map { String(format: "%.3f", $0) } ?? "none"))
            log("tiller: \(name): captured \(fitted.capturedRows) rows of \(triplets.count) train triplets at layer \(layer); fitted "
                + fitted.fits.map { "\($0.method.rawValue) (relative RMSE \(String(format: "%.3f", $0.relativeRMSE)))" }.joined(separator: ", "))

            let (selection, evaluationRange) = LabSweep.halves(examples.count)
            let evaluated = Array(examples[evaluationRange])
            log("tiller: \(name): \(examples.count) held-out examples: \(selection.count) choose each method's factor, \(evaluated.count) are scored")
            // Unsteered and prompt on the evaluation half.
            let baselineRequests = evaluated.map { LabRequest(example: $0, prompted: false) } + evaluated.map { LabRequest(example: $0, prompted: true) }
            let (baselineRows, baselineGeneration) = try evaluation.answer(baselineRequests, maxNewTokens: settings.maxNewTokens,
                                                                           batchSize: settings.batchSize, progress: progress)
            var cells: [Cell] = []
            for (i, method) in ["unsteered", "prompt"].enumerated() {
                let rows = baselineRows[(i * evaluated.count)..<((i + 1) * evaluated.count)]
                let means = LabMetricMeans(rows.map(\.metrics))
                cells.append(Cell(method: method, means: means, headline: LabHeadline.score(kind: target.kind, means: means),
                                  factor: nil, selectionScores: []))
            }
            var arms = (fitted.interventions + trained).map { LabSweepArm(name: $0.method, intervention: $0) }
            if target.kind == .format {
                // Format: the trained PSR heads stacked on the prompt too (does PSR add to the prompt?).
                arms += trained.filter { LabTrainedMethod(rawValue: $0.method)?.method == .psr }
                    .map { LabSweepArm(name: stackedName($0.method), intervention: $0, prompted: true) }
            }
            let (sweeps, sweepGeneration) = try evaluation.sweep(examples, arms: arms, factors: settings.factors,
                                                                 maxNewTokens: settings.maxNewTokens, batchSize: settings.batchSize,
                                                                 progress: { _, p in progress?(p) })
            for sweep in sweeps {
                cells.append(Cell(method: sweep.arm.name, means: sweep.report.overall, headline: sweep.headline,
                                  factor: sweep.chosenFactor, selectionScores: sweep.selectionScores))
            }
            var matched: [String: [LabMatchedPoint]] = [:]
            var matchedGeneration: [GenerationProgress] = []
            if target.kind == .persona && !arms.isEmpty {
                // On the scored half, as the other rows; up to the largest factor swept.
                let promptCoherence = cells[1].means["coherence"] ?? 100
                for (level, coherence) in [("C80", 80.0), ("Cp", promptCoherence)] {
                    let (points, g) = try evaluation.matchedCoherence(evaluated, arms: arms, coherence: coherence, level: level,
                                                                      maxFactor: settings.factors.max() ?? 1, steps: settings.matchedSteps,
                                                                      fallback: cells[0].means, maxNewTokens: settings.maxNewTokens,
                                                                      batchSize: settings.batchSize, progress: progress)
                    for (arm, point) in zip(arms, points) { matched[arm.name, default: []].append(point) }
                    matchedGeneration.append(g)
                }
                log("tiller: \(name): trait at coherence 80 / the prompt's: " + arms.map { arm in
                    "\(label(arm.name)) " + (matched[arm.name] ?? []).map { String(format: "%.0f", $0.trait) }.joined(separator: " / ")
                }.joined(separator: ", "))
            }
            for g in [baselineGeneration, sweepGeneration] + matchedGeneration {
                total.generatedTokens += g.generatedTokens
                total.promptTokens += g.promptTokens
                total.finishedRequests += g.finishedRequests
                total.totalRequests += g.totalRequests
                total.elapsed += g.elapsed
            }
            let result = TargetResult(target: target, layer: layer, trainTriplets: triplets.count, capturedRows: fitted.capturedRows,
                                      fittedRows: fitted.fittedRows, fits: fitted.fits, replayed: fitted.replayed, paraphraseRMSE: paraphraseRMSE, selectionCount: selection.count,
                                      evaluationCount: evaluated.count, cells: cells, matched: matched, seconds: now() - targetStarted)
            log("tiller: \(name): " + cells.map { cell in
                "\(label(cell.method)) \(String(format: "%.2f", cell.headline))" + (cell.factor.map { " @\(LabComparison.factorText($0))" } ?? "")
            }.joined(separator: ", ") + String(format: " (%.1f s)", result.seconds))
            results.append(result)
        }
        return LabComparison(settings: settings, seed: seed, layerCount: model.layerCount, results: results, generation: total, seconds: now())
    }

    struct Fitted {
        var interventions: [Intervention]
        var fits: [(method: FitMethod, relativeRMSE: Double)]
        var replayed: [(method: String, relativeRMSE: Double)] = []
        var capturedRows: Int
        var fittedRows: Int
    }

    /// The train examples as token triplets (x', x, y' = the corpus answer), for capture and training.
    /// `steeredMessages` gives x' (the example's own steered prompt unless another is wanted).
    static func prepare(_ examples: [LabExample], evaluation: LabEvaluation, source: String,
                        steeredMessages: (LabExample) -> [LabMessage] = { $0.promptMessages(steered: true) }) throws -> [CaptureTriplet] {
        let preparer = CapturePreparer(tokenizer: evaluation.tokenizer, template: evaluation.template)
        let lines = examples.enumerated().map { i, example in
            CaptureTripletLine(number: i + 1, steered: .messages(chat(steeredMessages(example))),
                               unsteered: .messages(chat(example.promptMessages(steered: false))), completion: .text(example.answer))
        }
        return try preparer.prepare(lines, path: source, generator: nil, options: GenerationOptions())
    }

    /// Captures the triplets at `layer` into a temporary capture file, reads it back and fits every
    /// method on the chosen rows, and replays each of `replaying` on it. The file is removed
    /// afterwards. Nothing is captured without a method to fit or replay.
    static func fit(_ triplets: [CaptureTriplet], layer: Int, settings: Settings, evaluation: LabEvaluation,
                    fingerprint: ModelFingerprint, source: String, replaying: [Intervention] = []) throws -> Fitted {
        guard !settings.methods.isEmpty || !replaying.isEmpty else { return Fitted(interventions: [], fits: [], capturedRows: 0, fittedRows: 0) }
        let path = (NSTemporaryDirectory() as NSString)
            .appendingPathComponent("tiller-lab-compare-\(ProcessInfo.processInfo.processIdentifier)-\(UInt64.random(in: 0...UInt64.max)).safetensors")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let capture = try ActivationCapture(model: evaluation.model, layers: [layer])
        let layout = try capture.run(triplets, to: path, model: fingerprint, source: source)
        let data = try CaptureData(path: path)
        let rows = data.rowIndices(settings.rows)
        guard !rows.isEmpty else {
            throw TillerError.invalidArgument(op: "lab compare", detail: "no \(settings.rows.rawValue) rows in the capture of \(source)")
        }
        let backend = evaluation.model.backend
        let activations = try data.activations(layer: layer, rows: rows, on: backend)
        var interventions: [Intervention] = [], fits: [(FitMethod, Double)] = []
        for method in settings.methods {
            let fit = try method.fit(activations, backend: backend, psr: settings.psr)
            interventions.append(Intervention(method: method.rawValue, heads: [layer: fit.head], location: settings.location, alpha: 1))
            fits.append((method, fit.relativeRMSE))
        }
        var replayed: [(method: String, relativeRMSE: Double)] = []
        if !replaying.isEmpty {
            let analyzer = CaptureAnalyzer(capture: try CaptureFile(path: path), backend: backend)
            let norms = [layer: try analyzer.deltaNorms(layer: layer)]
            for intervention in replaying {
                let replay = try analyzer.replay(intervention, name: intervention.method, model: evaluation.model,
                                                 unsteeredPrompts: triplets.map(\.unsteeredPrompt),
                                                 systemLengths: triplets.map(\.unsteeredSystemLength), norms: norms)
                replayed.append((intervention.method, replay.layers.first?.relativeRMSE ?? .nan))
            }
        }
        return Fitted(interventions: interventions, fits: fits, replayed: replayed, capturedRows: layout.info.rows, fittedRows: rows.count)
    }

    static func chat(_ messages: [LabMessage]) -> [ChatMessage] {
        messages.map { ChatMessage(role: $0.role, content: $0.content) }
    }

    /// "2.5", "1", "0.2".
    public static func factorText(_ factor: Double) -> String {
        // Int(factor) traps past Int's range (an alpha of 1e30); %g writes those.
        factor == factor.rounded() && abs(factor) < 1e15 ? String(Int(factor)) : String(format: "%g", factor)
    }
}
