import ArgumentParser
import Foundation
import TillerCore
import TillerSteering

struct Merge: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Join the shard outputs of a job array (--shard) into the output of the whole run.",
        discussion: """
            Each SHARD is an output written with --shard I/N (or in a Slurm or Kubernetes job \
            array) next to its manifest SHARD.shard.json; the manifest may be given instead. \
            JSON Lines outputs (generate, lab eval --answers, eval --out) are joined line by line and capture \
            files row by row, back into input order: the result has the bytes the unsharded run \
            writes. Refused, before anything is written, when a shard is missing, given twice, from \
            another run (the run id every manifest records), or truncated or changed since it was \
            written (its size and SHA-256 against its manifest). docs/cluster.md has the recipes.
            """)

    @Argument(help: ArgumentHelp("The shard outputs (any order).", valueName: "shard"))
    var shards: [String]

    @Option(help: "The merged output (- for standard output, JSON Lines only).")
    var out: String

    func validate() throws {
        if shards.isEmpty { throw ValidationError("give the shard outputs to merge") }
    }

    func run() throws {
        let set = try ShardSet(shards)
        try OutputPaths.check(out, inputs: set.members.flatMap { [("shard", $0.path), ("shard", ShardManifest.path(for: $0.path))] },
                              allowStandardOutput: set.format == .jsonLines)
        switch set.format {
        case .jsonLines: try JSONLinesShardMerge.merge(set, to: out)
        case .capture: try CaptureShardMerge.merge(set, to: out)
        }
        printError("tiller: merged \(set.members.count) shards of run \(set.first.runID) (\(set.first.command), \(set.inputLines) lines) into \(out)")
    }
}
