import ArgumentParser
import Foundation
import TillerCore
import TillerEvaluation
import TillerLab

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
            The examples are the first --limit of --kind in the held-out split: generated in memory for \
            the corpus seed (--seed, default the one the model card records, else 1) or read from \
            --heldout FILE. --steer prompt asks with the steering text, --steer none asks the bare \
            question; both are judged against the example's target. Prints the mean of every metric \
            overall and per placement (concept metrics 0-2, trait and coherence 0-100, pass a rate \
            0-1), or with --json one document with every answer.
            """)

    @OptionGroup var modelOption: LabModelOption

    @Option(help: "The kind of steering target to evaluate.")
    var kind: LabEvalKind

    @Option(help: "prompt: ask with the steering text; none: ask the bare question.")
    var steer: LabSteerMode

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

    @OptionGroup var backendOptions: BackendOptions

    func validate() throws {
        guard limit > 0 else { throw ValidationError("--limit must be positive") }
        guard batchSize > 0 else { throw ValidationError("--batch-size must be positive") }
        guard maxNewTokens > 0 else { throw ValidationError("--max-new-tokens must be positive") }
        guard show >= 0 else { throw ValidationError("--show must be >= 0") }
        if seed != nil && heldout != nil { throw ValidationError("give --seed or --heldout, not both") }
    }

    func run() throws {
        // A held-out file is read before the model is looked for, so a bad line is reported first.
        let fromFile = try heldout.map(HeldOutExamples.file)
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
        let examples = HeldOutExamples.select(pool, kind: kind.kind, limit: limit)
        guard !examples.isEmpty else {
            throw TillerError.invalidArgument(op: "lab eval", detail: "no \(kind.rawValue) examples in \(source)")
        }

        let backend = try backendOptions.make()
        let evaluation = try LabEvaluation.load(directory: directory, backend: backend)
        let bar = ProgressBar(enabled: progress || ProgressBar.stderrIsTerminal)
        let report = try evaluation.run(examples, steer: steer, maxNewTokens: maxNewTokens, batchSize: batchSize,
                                        progress: { bar.update($0) })
        bar.close(report.generation)

        if json {
            var extra: [String: Any] = ["model": directory, "backend": backend.name, "max_new_tokens": maxNewTokens,
                                        "source": heldout ?? "corpus"]
            if let corpusSeed { extra["seed"] = corpusSeed }
            print(try report.json(extra: extra))
        } else {
            print("tiller lab eval: \(kind.rawValue), steer \(steer.rawValue): the first \(examples.count) \(kind.rawValue) "
                  + "examples of \(source)")
            print("model \(directory)")
            print("")
            print(report.table())
            if show > 0 {
                print("")
                print(report.examples(show))
            }
        }
        let g = report.generation
        printError(String(format: "tiller: %d answers, %d new tokens in %.2f s (%.1f tok/s) on %@",
                          examples.count, g.generatedTokens, g.elapsed, g.tokensPerSecond, backend.name))
    }
}
