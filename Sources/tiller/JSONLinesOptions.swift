import ArgumentParser
import TillerCore

/// `--max-line-bytes` of the commands that read JSON Lines (prompts, triplets, corpus lines): a
/// longer line is refused as soon as it is seen, so a wrong or hostile file cannot exhaust memory.
struct JSONLinesOptions: ParsableArguments {
    @Option(help: "Refuse an input JSON Lines line longer than this many bytes (default 16 MiB).")
    var maxLineBytes: Int = JSONLinesReader.defaultMaxLineBytes

    func validate() throws {
        guard maxLineBytes > 0 else { throw ValidationError("--max-line-bytes must be positive") }
    }
}
