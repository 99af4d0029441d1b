import ArgumentParser
import Foundation
import TillerCore
import TillerEvaluation
import TillerModels
import TillerSteering

extension EvalProtocol: ExpressibleByArgument {}

/// `tiller eval`: the field's evaluation protocols on any model (docs/evaluation.md).
struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate steering with the field's protocols: IFEval format instructions, persona traits, AxBench concepts.",
        subcommands: [EvalRunCommand.self, EvalCompareCommand.self],
        defaultSubcommand: EvalRunCommand.self)
}

/// What every `tiller eval` command shares: the protocol, its prompts, the model, the judge and
/// how answers are generated.
struct EvalOptions: ParsableArguments {
    @Option(name: .customLong("protocol"), help: "The protocol: ifeval-format, persona or concept.")
    var proto: EvalProtocol

    @OptionGroup var modelOption: LabModelOption

    @Option(help: ArgumentHelp("A prompt set in the protocol's layout (ifeval-format also reads IFEval's input_data.jsonl); default: the committed set.", valueName: "file"))
    var prompts: String?

    @Option(help: ArgumentHelp("Only the first N items of the prompt set.", valueName: "n"))
    var limit: Int?

    @Option(help: "Most new tokens per answer.")
    var maxNewTokens = 128

    @Option(help: "Most prompts decoded together.")
    var batchSize = LabEvaluation.defaultBatchSize

    @OptionGroup var judge: JudgeOptions

    @Flag(help: "Show the progress bar even when stderr is not a terminal.")
    var progress = false

    @OptionGroup var jsonLines: JSONLinesOptions

    @OptionGroup var backendOptions: BackendOptions

    func validate() throws {
        if let limit { try NumericOptions.check("--limit", limit, 1...Int.max) }
        try NumericOptions.check("--max-new-tokens", maxNewTokens, 1...Int.max)
        try NumericOptions.check("--batch-size", batchSize, NumericOptions.batchSize)
    }

    /// The items (the first --limit), with a note when lines were skipped.
    func items() throws -> (items: [EvalItem], source: String) {
        let (all, skipped, source) = try PromptSets.load(proto, path: prompts, maxLineBytes: jsonLines.maxLineBytes)
        if skipped > 0 {
            printError("tiller: note: \(skipped) lines of \(source) use IFEval instructions outside the format subset and are skipped")
        }
        return (Array(all.prefix(limit ?? Int.max)), source)
    }

    /// The arms of --steer values (none, prompt, FILE[:ALPHA]); a file at each of `alphas` when given.
    static func arms(_ values: [String], alphas: [Float]?, withPrompt: Bool, modelDirectory: String) throws -> [EvalArm] {
        let files = GenerateSteering(modelDirectory: modelDirectory, named: [:])
        var arms: [EvalArm] = []
        for value in values {
            switch value {
            case "none": arms.append(.none)
            case "prompt": arms.append(.prompt)
            default:
                let entry = try LabEvalCommand.steerEntry(value)
                if entry.alpha != nil && alphas != nil {
                    throw TillerError.invalidArgument(op: "--steer", detail: "\"\(value)\" gives an alpha and --alpha gives others: give one")
                }
                // The index first: `files.interventions[...]` would read the array before the file is added.
                let index = try files.intervention(entry.name)
                let intervention = files.interventions[index]
                for alpha in alphas ?? [entry.alpha ?? intervention.alpha] {
                    arms.append(.file(entry.name, intervention, alpha: alpha, withPrompt: withPrompt))
                }
            }
        }
        var seen: Set<String> = []
        for arm in arms where !seen.insert(arm.key).inserted {
            throw TillerError.invalidArgument(op: "--steer", detail: "\(arm.key) is given twice")
        }
        return arms
    }

    /// "0.5,1,2": finite alphas in the steering range, no repeats, in the order given.
    static func parseAlphas(_ text: String) throws -> [Float] {
        var alphas: [Float] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let item = part.trimmingCharacters(in: .whitespaces)
            guard let alpha = Float(item), alpha.isFinite else {
                throw TillerError.invalidArgument(op: "--alpha", detail: "\"\(item)\" is not a number (give e.g. 0.5,1,2)")
            }
            guard NumericRange.steeringAlpha.contains(alpha) else {
                throw TillerError.invalidArgument(op: "--alpha", detail: "\(item) is out of range (allowed \(NumericRange.steeringAlpha))")
            }
            guard !alphas.contains(alpha) else { throw TillerError.invalidArgument(op: "--alpha", detail: "\(item) is given twice") }
            alphas.append(alpha)
        }
        return alphas
    }

    /// A progress bar with the share done, the pace and the time left.
    /// The results file of `out` (opened, or resumed, before the model loads, so a mismatched file
    /// is refused at once) and a runner over the model with these options' limits.
    func runner(directory: String, model: String, out: String?, judge: JudgeClient?) throws -> (runner: EvalRunner, file: EvalResultsFile?) {
        let file = try out.map { try resultsFile($0, model: model, judge: judge) }
        return (try runner(directory: directory, model: model, judge: judge), file)
    }

    /// The runner alone (the model loaded), for a results file opened before.
    func runner(directory: String, model: String, judge: JudgeClient?) throws -> EvalRunner {
        let evaluation = try LabEvaluation.load(directory: directory, backend: try backendOptions.make())
        let runner = EvalRunner(evaluation: evaluation, proto: proto, model: model, judge: judge, coherence: self.judge.coherence)
        runner.maxNewTokens = maxNewTokens
        runner.batchSize = batchSize
        return runner
    }

    /// The results file at `out`, opened or resumed with this run's settings.
    func resultsFile(_ out: String, model: String, judge: JudgeClient?) throws -> EvalResultsFile {
        try EvalResultsFile(path: out, proto: proto, model: model, maxNewTokens: maxNewTokens,
                            coherenceSource: EvalScorer.coherenceSource(judged: judge != nil, asked: self.judge.coherence).rawValue)
    }

    static func draw(_ bar: ProgressBar, _ p: EvalRunner.Progress, force: Bool = false) {
        let fraction = p.total > 0 ? Double(p.done) / Double(p.total) : 1
        var text = "\(p.done)/\(p.total) answers"
        if p.resumed > 0 { text += " (\(p.resumed) from the results file)" }
        text += String(format: ", %d tokens, %.1f s", p.generatedTokens, p.elapsed)
        if let eta = p.eta { text += String(format: ", ETA %.0f s", eta) }
        bar.draw(fraction: fraction, text, elapsed: p.elapsed, force: force)
    }
}

struct EvalRunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Answer a protocol's prompts under some steering and score the answers (the default of tiller eval).",
        discussion: """
            --steer none asks the bare request (IFEval's question without its instruction, the persona \
            question, AxBench's instruction); --steer prompt the prompt-steered one (with the \
            instruction, under the trait's system prompt, asking for the concept); --steer FILE[:ALPHA] \
            steers the bare request with a steering file (--with-prompt: the prompt-steered one), at \
            each of --alpha when given. --steer can be repeated. Answers are greedy. ifeval-format is \
            scored by IFEval's checkers; coherence (0-100), persona's trait (0-100) and AxBench's \
            concept, instruction and fluency (0-2) by the judge at --judge-url; without a judge, \
            coherence comes from a proxy (the answer's perplexity under the unsteered model, mapped to \
            0-100) and the judge-only scores are left out. --out keeps every answer, score and judge \
            answer as JSON Lines, written as the run goes: run the same command again to resume. \
            --shard I/N (or a Slurm or Kubernetes job array) answers items I, I+N, ... into their own \
            results file for tiller merge (docs/cluster.md).
            """)

    @OptionGroup var options: EvalOptions

    @Option(help: ArgumentHelp("none, prompt, or a steering file FILE[:ALPHA] (repeatable).", valueName: "none|prompt|file[:alpha]"))
    var steer: [String] = []

    @Flag(help: "With --steer FILE: steer the prompt-steered request (the file stacked on the prompt).")
    var withPrompt = false

    @Option(help: ArgumentHelp("With --steer FILE: these strengths (comma-separated), each a run of its own.", valueName: "list"))
    var alpha: String?

    @Option(help: ArgumentHelp("The results, as JSON Lines (appended to as the run goes; a re-run resumes from it).", valueName: "file"))
    var out: String?

    @Option(help: ArgumentHelp("An HTML report: the table, the curves over alpha and example answers.", valueName: "file"))
    var report: String?

    @Flag(help: "Also print the means per instruction, trait or concept.")
    var byGroup = false

    @Option(help: ArgumentHelp("Also print the first N answers with their scores.", valueName: "n"))
    var show = 0

    @OptionGroup var sharding: ShardOptions

    func validate() throws {
        guard !steer.isEmpty else { throw ValidationError("give --steer none, prompt or a steering file") }
        try NumericOptions.check("--show", show, NumericOptions.anyCount)
        if withPrompt && steer.allSatisfy({ $0 == "none" || $0 == "prompt" }) {
            throw ValidationError("--with-prompt needs --steer FILE (prompt steering is the prompt itself)")
        }
        if alpha != nil && steer.allSatisfy({ $0 == "none" || $0 == "prompt" }) {
            throw ValidationError("--alpha needs --steer FILE (there is nothing to scale)")
        }
    }

    func run() throws {
        let alphas = try alpha.map(EvalOptions.parseAlphas)
        let (items, source) = try options.items()
        // A shard (docs/cluster.md) answers its items under every steering, into its own results file.
        let shard = try EvalSharding.resolve(sharding, out: out, report: report, prompts: options.prompts, steer: steer)
        let out = shard?.output ?? self.out
        let directory = try options.modelOption.resolve()
        let model = URL(fileURLWithPath: directory).standardizedFileURL.path
        var inputs: [(flag: String, path: String)] = []
        if let prompts = options.prompts { inputs.append(("--prompts", prompts)) }
        if let out { try OutputPaths.check(out, inputs: inputs, modelDirectory: directory) }
        if let report { try OutputPaths.check(report, flag: "--report", inputs: inputs + (out.map { [("--out", $0)] } ?? []), modelDirectory: directory) }
        let arms = try EvalOptions.arms(steer, alphas: alphas, withPrompt: withPrompt, modelDirectory: directory)
        let allRequests = arms.flatMap { arm in items.map { EvalRequest(item: $0, arm: arm) } }
        // Every request must be askable before anything is generated.
        for request in allRequests { _ = try request.messages() }
        let (requests, indices) = shard.map { EvalSharding.select($0, requests: allRequests, items: items.count) } ?? (allRequests, [])
        let judge = try options.judge.client()
        // Opened (or resumed) before the model loads, so a mismatched file is refused at once.
        let file = try out.map { try options.resultsFile($0, model: model, judge: judge) }
        if let shard, let file {
            // Checked before a complete shard is skipped or an old manifest removed.
            try EvalSharding.refuseForeignLines(file, requests: requests, shard: shard)
            if try shard.skipIfComplete() { return }
            // More shards than items: an empty results file, without loading the model.
            if requests.isEmpty { return try shard.finish(inputLines: allRequests.count, indices: []) }
        }
        let runner = try options.runner(directory: directory, model: model, judge: judge)
        let bar = ProgressBar(enabled: options.progress || ProgressBar.stderrIsTerminal)
        var last: EvalRunner.Progress?
        let results = try runner.run(requests, file: file, progress: { p in
            last = p
            EvalOptions.draw(bar, p)
        })
        if let last { EvalOptions.draw(bar, last, force: true) }
        bar.finish()
        try file?.rewriteInCanonicalOrder(of: requests)
        try shard?.finish(inputLines: allRequests.count, indices: indices)

        let broken = results.filter { $0.stopReason == StopReason.nonFinite.rawValue }
        if let first = broken.first {
            printError("tiller: warning: \(broken.count) of \(results.count) answers stopped with \"non_finite\" (the activations became NaN or Inf; steering \(first.steerKey)), the first \(first.id)")
        }
        let summary = EvalSummary(proto: options.proto, results: results, perGroup: byGroup)
        let shown = shard.map { "\($0.shard.lines(total: items.count).count) of \(items.count) items (shard \($0.shard))" } ?? "\(items.count) items"
        print("tiller eval: \(options.proto.rawValue), \(shown) of \(source), model \(directory)")
        print("")
        print(summary.table())
        print("")
        for note in summary.notes(judged: judge != nil) { print(note) }
        if options.proto == .concept {
            for selection in EvalFactorSelection.select(results) {
                let name = (selection.name as NSString).lastPathComponent
                guard let mean = selection.mean else {
                    print("AxBench selection of \(name): no judged aggregates (needs a judge)")
                    continue
                }
                print(String(format: "AxBench selection of %@: aggregate %.3f over %d concepts (alpha chosen per concept on the first half of its instructions, scored on the other half)",
                             name, mean, selection.choices.count))
                if byGroup {
                    for choice in selection.choices { print(String(format: "  %@: alpha %g, %.3f", choice.concept, choice.alpha, choice.score)) }
                }
            }
        }
        if show > 0 {
            print("")
            for result in results.prefix(show) {
                let scores = EvalScorer.metricNames(options.proto).compactMap { m in (result.metrics[m] ?? nil).map { "\(m) \(String(format: "%.3g", $0))" } }
                print("[\(result.id), \(result.steerKey)] \(result.messages.last?.content ?? "")")
                print("  -> \(result.response.replacingOccurrences(of: "\n", with: "\\n"))")
                print("  " + scores.joined(separator: ", "))
            }
        }
        if let report {
            var page = EvalReport(proto: options.proto, model: directory, source: source, results: results, summary: summary,
                                  judged: judge != nil)
            page.lambdas = try EvalRunCommand.exampleLambdas(page, arms: arms, evaluation: runner.evaluation)
            try OutputFile.write(Data(page.html().utf8), to: report)
        }
    }

    /// lambda_t of the report's example answers that a PSR head steered (the answers replayed).
    static func exampleLambdas(_ page: EvalReport, arms: [EvalArm], evaluation: LabEvaluation) throws -> [Int: EvalTokenLambdas] {
        var byKey: [String: EvalArm] = [:]
        for arm in arms { byKey[arm.key] = arm }
        var lambdas: [Int: EvalTokenLambdas] = [:]
        for i in page.exampleIndices {
            let result = page.results[i]
            guard let arm = byKey[result.steerKey], let intervention = arm.intervention, let alpha = arm.alpha else { continue }
            lambdas[i] = try EvalTokenLambdas.compute(evaluation: evaluation, intervention: intervention, alpha: alpha,
                                                      messages: result.messages, answer: result.responseIDs)
        }
        return lambdas
    }
}
