import ArgumentParser
import Foundation
import TillerCore
import TillerEvaluation
import TillerLab
import TillerModels
import TillerSteering

/// The kinds an evaluation can judge: those with a steering target.
enum LabEvalKind: String, ExpressibleByArgument, CaseIterable {
    case concept, persona, format

    var kind: LabKind { LabKind(rawValue: rawValue)! }
}

extension LabSteerMode: ExpressibleByArgument {}

struct LabEvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Answer held-out lab questions greedily and score the answers with the exact judges.",
        discussion: """
            The examples are the first --limit of --kind (and of --target, when given) in the held-out \
            split: generated in memory for the corpus seed (--seed, default the one the model card \
            records, else 1) or read from --heldout FILE. --steer prompt asks with the steering text, \
            --steer none asks the bare question; both are judged against the example's target. \
            --steer FILE[:ALPHA] asks the bare question steered by a steering file (Tiller \
            .safetensors or a .gguf control vector, made for this model) at ALPHA (default: the \
            file's alpha); --with-prompt stacks it on the steering prompt instead. A file is made for \
            one target: give --target (a concept, a trait, a format type or a format such as \
            "end_with(the end)") so only its examples are asked. --factors 0.2,0.4,... (or axbench: \
            AxBench's 0.2 ... 5.0) sweeps the file's strength as AxBench does: every factor (times \
            ALPHA) answers the first half of the examples, the factor with the best headline score \
            there is kept (concept: the aggregate; persona: the harmonic mean of trait/100 and \
            coherence/100; format: pass rate x coherence/100), and the other half is answered at it \
            and reported. Prints the mean of every metric overall and per placement (concept metrics \
            0-2, trait and coherence 0-100, pass a rate 0-1), or with --json one document with every \
            answer.
            """)

    @OptionGroup var modelOption: LabModelOption

    @Option(help: "The kind of steering target to evaluate.")
    var kind: LabEvalKind

    @Option(help: ArgumentHelp("prompt: ask with the steering text; none: ask the bare question; FILE[:ALPHA]: steer the bare question with a steering file.", valueName: "prompt|none|file[:alpha]"))
    var steer: String

    @Flag(help: "With --steer FILE: steer the prompt-steered question (the file stacked on the prompt).")
    var withPrompt = false

    @Option(help: ArgumentHelp("Only examples of this target: a concept, a trait, a format type, or a format such as end_with(the end).", valueName: "name"))
    var target: String?

    @Option(help: ArgumentHelp("With --steer FILE: sweep these factors (comma-separated, or axbench) on the first half, score the second.", valueName: "list"))
    var factors: String?

    @Option(help: ArgumentHelp("Most examples evaluated.", valueName: "n"))
    var limit = 60

    @Option(help: "Corpus seed of the held-out split (default: the model card's, else 1).")
    var seed: UInt64?

    @Option(help: ArgumentHelp("A corpus JSON Lines file (heldout.jsonl) to take the examples from instead.", valueName: "file"))
    var heldout: String?

    @Option(help: "Most prompts decoded together.")
    var batchSize = LabEvaluation.defaultBatchSize

    @Option(help: "Most new tokens per answer.")
    var maxNewTokens = LabEvaluation.defaultMaxNewTokens

    @Flag(help: "Print one JSON document (means and every answer) instead of the table.")
    var json = false

    @Option(help: ArgumentHelp("Also print the first N examples with their answers and scores.", valueName: "n"))
    var show = 0

    @Flag(help: "Show the progress bar even when stderr is not a terminal.")
    var progress = false

    @Option(help: ArgumentHelp("Also write every answer with its scores as a JSON line, in example order (a shard's answers with --shard).", valueName: "file"))
    var answers: String?

    @OptionGroup var jsonLines: JSONLinesOptions

    @OptionGroup var sharding: ShardOptions

    @OptionGroup var backendOptions: BackendOptions

    func validate() throws {
        try NumericOptions.check("--limit", limit, 1...Int.max)
        try NumericOptions.check("--batch-size", batchSize, NumericOptions.batchSize)
        try NumericOptions.check("--max-new-tokens", maxNewTokens, 1...Int.max)
        try NumericOptions.check("--show", show, NumericOptions.anyCount)
        if seed != nil && heldout != nil { throw ValidationError("give --seed or --heldout, not both") }
        if LabSteerMode(rawValue: steer) != nil {
            if withPrompt { throw ValidationError("--with-prompt needs --steer FILE (prompt steering is the prompt itself)") }
            if factors != nil { throw ValidationError("--factors needs --steer FILE (there is nothing to scale)") }
        }
    }

    func run() throws {
        let mode = LabSteerMode(rawValue: steer)
        let entry = try mode == nil ? Self.steerEntry(steer) : nil
        let factorList = try factors.map(LabSweep.parseFactors)
        let targetFilter = try target.map { try LabTargetFilter(kind: kind.kind, name: $0) }
        // A held-out file is read before the model is looked for, so a bad line is reported first.
        let fromFile = try heldout.map { try HeldOutExamples.file($0, maxLineBytes: jsonLines.maxLineBytes) }
        let directory = try modelOption.resolve()
        let source: String
        let pool: [LabExample]
        var corpusSeed: UInt64?
        if let heldout, let fromFile {
            pool = fromFile
            source = heldout
        } else {
            let seed = seed ?? HeldOutExamples.cardSeed(modelDirectory: directory) ?? HeldOutExamples.defaultSeed
            pool = try HeldOutExamples.corpus(seed: seed)
            source = "the held-out split of corpus seed \(seed)"
            corpusSeed = seed
        }
        let allExamples = HeldOutExamples.select(pool, kind: kind.kind, target: targetFilter, limit: limit)
        let described = targetFilter.map { "\(kind.rawValue) \($0)" } ?? kind.rawValue
        // A shard (docs/cluster.md) answers its examples only and writes them to its own --answers file.
        let shard = try LabEvalSharding.resolve(sharding, answers: answers, heldout: heldout, sweep: factorList != nil)
        if try shard?.skipIfComplete() == true { return }
        if let answers { try OutputPaths.check(shard?.output ?? answers, flag: "--answers", inputs: [("--heldout", heldout ?? "")]) }
        let examples = shard?.select(allExamples) ?? allExamples
        if let shard, examples.isEmpty, !allExamples.isEmpty { return try LabEvalSharding.finishEmpty(shard, inputLines: allExamples.count) }
        guard !examples.isEmpty else {
            throw TillerError.invalidArgument(op: "lab eval", detail: "no \(described) examples in \(source)")
        }
        if factorList != nil && examples.count < 2 {
            throw TillerError.invalidArgument(op: "lab eval", detail: "--factors needs at least 2 examples (one per half), \(source) has \(examples.count) \(described) example")
        }

        // The steering file is read (and checked against the model) before the model is loaded.
        var steering: (intervention: Intervention, alpha: Float)?
        if entry != nil && targetFilter == nil {
            printError("tiller: note: no --target, so every \(kind.rawValue) example is asked, whatever target the steering file was made for")
        }
        if let entry {
            let files = GenerateSteering(modelDirectory: directory, named: [:])
            let index = try files.intervention(entry.name)
            let intervention = files.interventions[index]
            steering = (intervention, entry.alpha ?? intervention.alpha)
        }

        let backend = try backendOptions.make()
        let evaluation = try LabEvaluation.load(directory: directory, backend: backend)
        let bar = ProgressBar(enabled: progress || ProgressBar.stderrIsTerminal)
        var extra: [String: Any] = ["model": directory, "backend": backend.name, "max_new_tokens": maxNewTokens,
                                    "source": heldout ?? "corpus", "steer": steer]
        if let corpusSeed { extra["seed"] = corpusSeed }
        if let targetFilter { extra["target"] = targetFilter.name }
        var header = "tiller lab eval: \(described), steer \(steer): the first \(examples.count) \(described) examples of \(source)"
        var preamble: [String] = []
        let report: LabEvaluationReport
        var generation: GenerationProgress
        if let mode {
            report = try evaluation.run(examples, steer: mode, maxNewTokens: maxNewTokens, batchSize: batchSize,
                                        progress: { bar.update($0) })
            generation = report.generation
            bar.close(generation)
        } else if let steering, let factorList {
            let arm = LabSweepArm(name: entry!.name, intervention: steering.intervention, alpha: steering.alpha, prompted: withPrompt)
            var last = GenerationProgress(), lastStage = ""
            let (results, total) = try evaluation.sweep(examples, arms: [arm], factors: factorList, maxNewTokens: maxNewTokens,
                                                        batchSize: batchSize, progress: { stage, p in
                                                            // One bar per run: the selection half's, then the evaluation half's.
                                                            if stage != lastStage && !lastStage.isEmpty { bar.close(last) }
                                                            lastStage = stage
                                                            last = p
                                                            bar.update(p)
                                                        })
            bar.close(last)
            let result = results[0]
            report = result.report
            generation = total
            let (selection, evaluated) = LabSweep.halves(examples.count)
            header = "tiller lab eval: \(described), steer \(steer)\(withPrompt ? " on the steering prompt" : " on the bare question"): "
                + "the first \(examples.count) \(described) examples of \(source); factors on the first \(selection.count), "
                + "scored on the other \(evaluated.count)"
            preamble = result.selectionTable()
            extra["with_prompt"] = withPrompt
            extra["intervention"] = Self.describe(steering.intervention)
            extra["sweep"] = [
                "factors": result.factors,
                "alpha": Double(arm.alpha),
                "selection_scores": result.selectionScores,
                "selection_ids": result.selectionIDs,
                "chosen_factor": result.chosenFactor,
                "chosen_alpha": Double(result.chosenAlpha),
                "headline": result.headline,
                "headline_metric": LabHeadline.name(kind.kind),
            ] as [String: Any]
        } else if let steering {
            let requests = examples.map { LabRequest(example: $0, prompted: withPrompt, intervention: 0, alpha: steering.alpha) }
            let (rows, g) = try evaluation.answer(requests, interventions: [steering.intervention], maxNewTokens: maxNewTokens,
                                                  batchSize: batchSize, progress: { bar.update($0) })
            bar.close(g)
            report = LabEvaluationReport(kind: kind.kind, steer: withPrompt ? .prompt : .none, rows: rows, generation: g)
            generation = g
            header = "tiller lab eval: \(described), steer \(steer)\(withPrompt ? " on the steering prompt" : " on the bare question") "
                + "at alpha \(LabComparison.factorText(Double(steering.alpha))): the first \(examples.count) \(described) examples of \(source)"
            extra["with_prompt"] = withPrompt
            extra["intervention"] = Self.describe(steering.intervention)
            extra["alpha"] = Double(steering.alpha)
        } else {
            preconditionFailure("--steer is prompt, none or a file")
        }

        if let answers {
            try OutputFile.write(Data(try report.answerLines().utf8), to: shard?.output ?? answers)
            try shard?.finish(inputLines: allExamples.count)
        }

        // A NaN or Inf stopped these answers (a huge factor or alpha): never a quiet low score.
        let broken = report.rows.filter { $0.stopReason == .nonFinite }
        if let first = broken.first {
            printError("tiller: warning: \(broken.count) of \(report.rows.count) answers stopped with \"non_finite\" (the activations became NaN or Inf; steering \(steer)), the first \(first.example.id)")
        }
        if json {
            print(try report.json(extra: extra))
        } else {
            print(header)
            print("model \(directory)")
            if let steering {
                let i = steering.intervention
                print("steering: \(i.method), layer\(i.layers.count == 1 ? "" : "s") \(i.layers.map(String.init).joined(separator: ",")), "
                      + "location \(i.location.name), file alpha \(LabComparison.factorText(Double(i.alpha)))")
            }
            print("")
            if !preamble.isEmpty {
                print(preamble.joined(separator: "\n"))
                print("")
            }
            print(report.table())
            if show > 0 {
                print("")
                print(report.examples(show))
            }
        }
        printError(String(format: "tiller: %d answers, %d new tokens in %.2f s (%.1f tok/s) on %@",
                          generation.finishedRequests > 0 ? generation.finishedRequests : examples.count, generation.generatedTokens,
                          generation.elapsed, generation.tokensPerSecond, backend.name))
    }

    /// "FILE" or "FILE:ALPHA" (as `tiller generate --steer`).
    static func steerEntry(_ text: String) throws -> SteerEntry {
        do {
            return try SteerEntry(parsing: text)
        } catch let problem as SteerEntry.Problem {
            throw TillerError.invalidArgument(op: "--steer", detail: problem.description)
        }
    }

    static func describe(_ intervention: Intervention) -> [String: Any] {
        ["method": intervention.method, "layers": intervention.layers, "location": intervention.location.name,
         "alpha": Double(intervention.alpha)]
    }
}
