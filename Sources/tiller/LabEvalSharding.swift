import ArgumentParser
import Foundation
import TillerCore

/// How `tiller lab eval` takes a shard: its answers go to the shard's --answers file (the table it
/// prints covers its own examples), and a factor sweep, which chooses on the first half of all
/// examples, cannot be split.
enum LabEvalSharding {
    static func resolve(_ options: ShardOptions, answers: String?, heldout: String?, sweep: Bool) throws -> ShardRun? {
        guard let shard = try options.resolve(command: "lab eval", format: .jsonLines, out: answers, outFlag: "--answers",
                                              inputs: heldout.map { [$0] } ?? []) else { return nil }
        if sweep {
            throw TillerError.invalidArgument(op: "--factors", detail: "a factor sweep chooses on the first half of all examples and cannot run as shard \(shard.shard) (give --shard none)")
        }
        return shard
    }

    /// A shard with no examples (more shards than examples) writes an empty answers file.
    static func finishEmpty(_ shard: ShardRun, inputLines: Int) throws {
        try OutputFile.write(Data(), to: shard.output)
        try shard.finish(inputLines: inputLines)
    }
}
