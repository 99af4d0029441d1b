import ArgumentParser
import Foundation
import TillerCore
import TillerEvaluation

/// `tiller eval compare`: several steering files and the prompt on one protocol, compared at
/// matched coherence as the PSR paper does (TA@C80, TA@Cp), printed as the paper's table.
struct EvalCompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Compare steering files and the prompt on one protocol at matched coherence (the paper's table).",
        discussion: """
            Answers every item unsteered and prompt-steered, then, for each --steer FILE, bisects its \
            alpha in [0, --max-alpha] (--steps halvings) for the largest alpha whose mean coherence is \
            at least 80 (C80) and at least the prompt's (Cp), and reports the score there: persona's \
            trait (TA@C80, TA@Cp), ifeval-format's strict pass rate, concept's AxBench aggregate. \
            Coherence is the judge's, else the proxy's (the table says which). With --out every \
            answer of every alpha tried is kept, and a re-run resumes from it.
            """)

    @OptionGroup var options: EvalOptions

    @Option(help: ArgumentHelp("A steering file to compare (repeatable).", valueName: "file"))
    var steer: [String] = []

    @Flag(help: "Steer the prompt-steered request (each file stacked on the prompt).")
    var withPrompt = false

    @Option(help: "The largest alpha the bisection tries.")
    var maxAlpha: Double = 4

    @Option(help: "Halvings of the alpha interval after trying --max-alpha.")
    var steps = 5

    @Option(help: ArgumentHelp("The results of every answer, as JSON Lines (a re-run resumes from it).", valueName: "file"))
    var out: String?

    func validate() throws {
        guard !steer.isEmpty else { throw ValidationError("give at least one --steer FILE") }
        if let bad = steer.first(where: { $0 == "none" || $0 == "prompt" }) {
            throw ValidationError("--steer \(bad): compare always runs none and prompt; give steering files")
        }
        try NumericOptions.check("--max-alpha", maxAlpha, 1e-6...1e6)
        try NumericOptions.check("--steps", steps, 0...30)
    }

    func run() throws {
        let (items, source) = try options.items()
        let directory = try options.modelOption.resolve()
        let model = URL(fileURLWithPath: directory).standardizedFileURL.path
        if let out {
            try OutputPaths.check(out, inputs: options.prompts.map { [("--prompts", $0)] } ?? [], modelDirectory: directory)
        }
        let files = try EvalOptions.arms(steer, alphas: [1], withPrompt: withPrompt, modelDirectory: directory)
        let references: [EvalArm] = [.none, .prompt]
        for request in references.flatMap({ arm in items.map { EvalRequest(item: $0, arm: arm) } }) { _ = try request.messages() }
        let judge = try options.judge.client()
        let (runner, file) = try options.runner(directory: directory, model: model, out: out, judge: judge)
        let bar = ProgressBar(enabled: options.progress || ProgressBar.stderrIsTerminal)
        let metric = EvalMatchedCoherence.scoreMetric(options.proto)
        let scale = metric == "pass" ? 100.0 : 1.0

        // Every arm's means, by key, so an alpha tried for both levels is answered once.
        var means: [String: (coherence: Double?, score: Double?)] = [:]
        func evaluate(_ arms: [EvalArm], stage: String) throws -> [(coherence: Double?, score: Double?)] {
            let fresh = arms.filter { means[$0.key] == nil }
            if !fresh.isEmpty {
                let requests = fresh.flatMap { arm in items.map { EvalRequest(item: $0, arm: arm) } }
                var last: EvalRunner.Progress?
                let results = try runner.run(requests, file: file, progress: { p in
                    last = p
                    EvalOptions.draw(bar, p)
                })
                if let last { EvalOptions.draw(bar, last, force: true) }
                bar.finish()
                for row in EvalSummary(proto: options.proto, results: results).rows {
                    means[row.steerKey] = (row.mean("coherence"), row.mean(metric).map { $0 * scale })
                }
            }
            return arms.map { means[$0.key] ?? (nil, nil) }
        }

        let reference = try evaluate(references, stage: "none and prompt")
        let promptCoherence = reference[1].coherence
        var levels: [(name: String, target: Double)] = [("C80", 80)]
        if let promptCoherence { levels.append(("Cp", promptCoherence)) }
        var points: [[EvalMatchedCoherence.Point]] = []
        for level in levels {
            points.append(try EvalMatchedCoherence.search(arms: files.count, target: level.target, level: level.name,
                                                          maxAlpha: maxAlpha, steps: steps) { pairs in
                try evaluate(pairs.map { files[$0.arm].at(alpha: Float($0.alpha)) }, stage: level.name)
            })
        }

        let coherenceSource = runner.coherenceSource
        print("tiller eval compare: \(options.proto.rawValue), \(items.count) items of \(source), model \(directory)")
        print("score: \(metric)\(scale == 100 ? " (percent)" : ""); coherence: \(coherenceSource)\(coherenceSource == "proxy" ? " (the answer's perplexity under the unsteered model, mapped to 0-100)" : "")")
        if judge == nil && options.proto != .ifevalFormat {
            print("note: \(metric) needs a judge (--judge-url, --judge-model); the scores below are empty without one")
        }
        print("")
        print(Self.table(files: files, reference: reference, levels: levels, points: points, withPrompt: withPrompt))
    }

    /// The paper's table: a row per method, score and alpha at each coherence level; then the
    /// unsteered and prompt rows with their own score and coherence.
    static func table(files: [EvalArm], reference: [(coherence: Double?, score: Double?)], levels: [(name: String, target: Double)],
                      points: [[EvalMatchedCoherence.Point]], withPrompt: Bool) -> String {
        func number(_ v: Double?) -> String { v.map { String(format: "%.1f", $0) } ?? "-" }
        var rows: [[String]] = [["method"] + levels.flatMap { ["score@\($0.name)", "alpha", "coherence"] }]
        for (a, arm) in files.enumerated() {
            let name = ((arm.file ?? "?") as NSString).lastPathComponent + (withPrompt ? " + prompt" : "")
            rows.append([name] + points.flatMap { level -> [String] in
                let p = level[a]
                return [number(p.score), p.alpha.map { String(format: "%.3g", $0) } ?? "none", number(p.coherence)]
            })
        }
        rows.append(["none (unsteered)"] + levels.flatMap { _ in [number(reference[0].score), "-", number(reference[0].coherence)] })
        rows.append(["prompt"] + levels.flatMap { _ in [number(reference[1].score), "-", number(reference[1].coherence)] })
        let widths = rows[0].indices.map { c in rows.map { $0[c].count }.max() ?? 0 }
        var lines = rows.map { row in
            row.enumerated().map { c, cell in
                c == 0 ? cell.padding(toLength: widths[c], withPad: " ", startingAt: 0) : String(repeating: " ", count: widths[c] - cell.count) + cell
            }.joined(separator: "  ")
        }
        lines.append("")
        lines.append("levels: " + levels.map { "\($0.name) = coherence \(String(format: "%.1f", $0.target))" }.joined(separator: ", ")
                     + "; alpha none: not even the smallest alpha tried kept the coherence")
        return lines.joined(separator: "\n")
    }
}
