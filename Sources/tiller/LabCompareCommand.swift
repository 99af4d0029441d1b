import ArgumentParser
import Foundation
import TillerCore
import TillerEvaluation
import TillerLab
import TillerModels
import TillerSteering

struct LabCompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Compare activation steering (fitted: DiffMean, PCA, Stolfo, local PSR; trained: S/A-PSR, S/A-Const) with prompt steering on the lab.",
        discussion: """
            For each target (default: two concepts, two traits, capitals and one end_with phrase), the \
            target's first --train-triplets train examples (corpus seed: the model card's, else 1) are \
            captured at --layer (default: the middle layer, layerCount / 2) into a temporary capture \
            file and every method is fitted on it (as `tiller fit`, alpha 1: the mean shift), on every \
            captured row and steering every position by default (--rows all --location all: AxBench \
            steers the prompt too). The target's held-out \
            examples (at most --limit) are split in half: each method answers the first half at every \
            factor of --factors (AxBench's 0.2 ... 5.0) and keeps the factor with the best headline \
            score (concept: the AxBench aggregate; persona: the harmonic mean of trait/100 and \
            coherence/100; format: pass rate x coherence/100); then unsteered, prompt and every method \
            at its factor answer the second half, which is what the table shows. Progress goes to \
            stderr; --out also writes the table as markdown. The trained methods (s-psr-mse, a-psr-mse, \
            s-psr-ll, s-const-mse, a-const-mse) are trained through the frozen model on the same \
            triplets (--train-epochs, --learning-rate: the lab's 4 and 0.03); persona also reports each \
            method's trait at coherence 80 and at the prompt's (bisection, --matched-steps), format the \
            trained PSR heads stacked on the prompt, and a table says which of the PSR paper's claims \
            hold. Details: docs/lab.md.
            """)

    @OptionGroup var modelOption: LabModelOption

    @Option(help: ArgumentHelp("Kinds of target, comma-separated: concept, persona, format.", valueName: "kinds"))
    var kinds: String = "concept,persona,format"

    @Option(help: ArgumentHelp("Targets, comma-separated: concept or trait names, format types or formats such as end_with(the end) (default: two per kind).", valueName: "names"))
    var targets: String?

    @Option(help: ArgumentHelp("The layer steered (0-based; default: the middle one).", valueName: "L"))
    var layer: Int?

    @Option(help: ArgumentHelp("Train triplets captured per target.", valueName: "n"))
    var trainTriplets = LabComparison.defaultTrainTriplets

    @Option(help: ArgumentHelp("Most held-out examples per target (half choose the factor, half are scored).", valueName: "n"))
    var limit = LabComparison.defaultLimit

    @Option(help: ArgumentHelp("Steering factors, comma-separated, or axbench.", valueName: "list"))
    var factors = "axbench"

    @Option(help: ArgumentHelp("Methods, comma-separated: fitted diffmean, pca, stolfo, psr; trained s-psr-mse, a-psr-mse, s-psr-ll, s-const-mse, a-const-mse.", valueName: "list"))
    var methods = (FitMethod.allCases.map(\.rawValue) + LabTrainedMethod.allCases.map(\.rawValue)).joined(separator: ",")

    @Option(help: ArgumentHelp("Epochs of the trained methods (the lab's default; the paper's 15/7 are for larger sets).", valueName: "n"))
    var trainEpochs = LabTrainingSettings.labEpochs

    @Option(help: ArgumentHelp("AdamW's learning rate for the trained methods (the lab's; the paper's 1e-3 barely moves the heads in the lab's few steps).", valueName: "lr"))
    var learningRate = LabTrainingSettings.labLearningRate

    @Option(help: ArgumentHelp("Bisection steps of persona's search for the factor at coherence 80 and at the prompt's.", valueName: "n"))
    var matchedSteps = LabComparison.defaultMatchedSteps

    @Option(help: "The captured rows the methods are fitted on: all (the shared prompt tokens too), answer or last_prompt.")
    var rows: FitRows = .all

    @Option(help: "Where the fitted interventions steer: all (every position, as AxBench), answer_only or question_and_answer.")
    var location = "all"

    @Option(help: "Corpus seed of the train and held-out splits (default: the model card's, else 1).")
    var seed: UInt64?

    @Option(help: "Most prompts decoded together.")
    var batchSize = 64

    @Option(help: "Most new tokens per answer.")
    var maxNewTokens = LabEvaluation.defaultMaxNewTokens

    @Flag(help: "Print one JSON document with every number instead of the table.")
    var json = false

    @Option(help: ArgumentHelp("Also write the table, settings and fits as markdown to this file.", valueName: "file.md"))
    var out: String?

    @OptionGroup var backendOptions: BackendOptions

    func validate() throws {
        // No train split holds more than LabCorpus.maximumCount examples.
        try NumericOptions.check("--train-triplets", trainTriplets, 1...LabCorpus.maximumCount)
        // At least one example per half (one chooses the factor, one is scored).
        try NumericOptions.check("--limit", limit, 2...Int.max)
        if let layer { try NumericOptions.check("--layer", layer, NumericOptions.layerIndex) }
        try NumericOptions.check("--batch-size", batchSize, NumericOptions.batchSize)
        try NumericOptions.check("--max-new-tokens", maxNewTokens, 1...Int.max)
        try NumericOptions.check("--train-epochs", trainEpochs, 1...100_000)
        try NumericOptions.check("--learning-rate", learningRate, NumericOptions.learningRate)
        try NumericOptions.check("--matched-steps", matchedSteps, 0...30)
        guard SteeringLocation(name: location) != nil else {
            throw ValidationError("--location must be answer_only, all or question_and_answer, not \(location)")
        }
    }

    func settings() throws -> LabComparison.Settings {
        var kindList: [LabKind] = []
        for name in kinds.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) {
            guard let kind = LabKind(rawValue: name), kind != .none else {
                throw TillerError.invalidArgument(op: "--kinds", detail: "\"\(name)\" is not concept, persona or format")
            }
            if !kindList.contains(kind) { kindList.append(kind) }
        }
        guard !kindList.isEmpty else { throw TillerError.invalidArgument(op: "--kinds", detail: "no kinds given") }
        var targetList = LabComparison.defaultTargets(kinds: kindList)
        if let targets {
            targetList = try targets.split(separator: ",").map { try LabComparison.target(named: String($0)) }
            if let other = targetList.first(where: { !kindList.contains($0.kind) }) {
                throw TillerError.invalidArgument(op: "--targets", detail: "\(other) is a \(other.kind.rawValue) target, not of --kinds \(kinds)")
            }
        }
        var methodList: [FitMethod] = [], trainedList: [LabTrainedMethod] = []
        for name in methods.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) {
            if let method = FitMethod(rawValue: name) {
                if !methodList.contains(method) { methodList.append(method) }
            } else if let method = LabTrainedMethod(rawValue: name) {
                if !trainedList.contains(method) { trainedList.append(method) }
            } else {
                throw TillerError.invalidArgument(op: "--methods", detail: "\"\(name)\" is not "
                    + (FitMethod.allCases.map(\.rawValue) + LabTrainedMethod.allCases.map(\.rawValue)).joined(separator: ", "))
            }
        }
        guard !methodList.isEmpty || !trainedList.isEmpty else { throw TillerError.invalidArgument(op: "--methods", detail: "no methods given") }
        return LabComparison.Settings(targets: targetList, layer: layer, trainTriplets: trainTriplets, limit: limit,
                                      factors: try LabSweep.parseFactors(factors), methods: methodList, trained: trainedList,
                                      training: LabTrainingSettings(epochs: trainEpochs, learningRate: learningRate),
                                      matchedSteps: matchedSteps, rows: rows,
                                      location: SteeringLocation(name: location)!, maxNewTokens: maxNewTokens, batchSize: batchSize)
    }

    func run() throws {
        let settings = try settings()
        let directory = try modelOption.resolve()
        if let out { try OutputPaths.check(out, inputs: [], modelDirectory: directory) }
        let seed = seed ?? HeldOutExamples.cardSeed(modelDirectory: directory) ?? HeldOutExamples.defaultSeed
        let pool = try HeldOutExamples.corpus(seed: seed)
        let backend = try backendOptions.make()
        let evaluation = try LabEvaluation.load(directory: directory, backend: backend)
        let bar = ProgressBar(enabled: ProgressBar.stderrIsTerminal)
        var last = GenerationProgress()
        let comparison = try LabComparison.run(settings, evaluation: evaluation, modelDirectory: directory, seed: seed, heldout: pool,
                                               log: { line in
                                                   if last.totalRequests > 0 { bar.close(last); last = GenerationProgress() }
                                                   printError(line)
                                               },
                                               progress: { p in last = p; bar.update(p) })
        if last.totalRequests > 0 { bar.close(last) }

        let command = "tiller lab compare " + CommandLine.arguments.dropFirst(3).joined(separator: " ")
        if let out {
            try OutputFile.write(Data(comparison.markdown(command: command.trimmingCharacters(in: .whitespaces)).utf8), to: out)
        }
        if json {
            print(try comparison.json(extra: ["model": directory, "backend": backend.name]))
        } else {
            print("tiller lab compare: activation steering against prompt steering, held-out split of corpus seed \(seed)")
            print("model \(directory)")
            print("")
            print(comparison.table())
            print("")
            print("concept: mean AxBench aggregate (0-2); persona: trait/coherence (0-100); format: pass rate/coherence (0-100);")
            print("@F: the factor the sweep kept on the first half; the table scores the other half.")
            if let matched = comparison.matchedMarkdown() {
                print("")
                print("persona at matched coherence (trait at coherence 80 / at the prompt's):")
                print(matched, terminator: "")
            }
            print("")
            print("the PSR paper's claims:")
            print(LabClaims.markdown(comparison.verdicts), terminator: "")
        }
        let g = comparison.generation
        printError(String(format: "tiller: %d answers, %d new tokens, %.1f s in all on %@", g.finishedRequests, g.generatedTokens,
                          comparison.seconds, backend.name) + (out.map { "; wrote \($0)" } ?? ""))
    }
}
