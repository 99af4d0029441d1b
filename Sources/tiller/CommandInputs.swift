import TillerCore

// The files each command reads, as (flag, path) pairs for `OutputPaths.check`: an --out that is
// one of them is refused before any work, since writing it would destroy what the run reads.

extension Generate {
    /// --prompts, every steering file named by --steer, --steer-file or a prompt line's "steer".
    func inputs(_ lines: [PromptFile.Line]) -> [(flag: String, path: String)] {
        let named = (try? GenerateSteering.names(steerFile)) ?? [:]
        var inputs: [(flag: String, path: String)] = [("--prompts", prompts)]
        inputs += steer.compactMap { try? SteerEntry(parsing: $0).name }.map { ("--steer", named[$0] ?? $0) }
        inputs += named.values.sorted().map { ("--steer-file", $0) }
        inputs += lines.flatMap { line in (line.steer ?? []).map { ("--prompts line \(line.number) \"steer\"", named[$0.name] ?? $0.name) } }
        return inputs
    }
}
