import ArgumentParser
import Foundation
import TillerCore
import TillerEvaluation

/// How `tiller eval` takes a shard (docs/cluster.md): item i (after --limit) belongs to shard
/// i % N under every steering, so an item always lands in the same shard. The shard answers its
/// (item, steering) requests into its own results file, which resumes like any results file and is
/// left in canonical order (steerings in the order given, items in input order) before its
/// manifest vouches for it. The manifest counts requests, not prompt lines: request r of the run
/// (steering r / items, item r % items) is "input line" r, so `tiller merge` places every answer
/// where the unsharded run writes it.
enum EvalSharding {
    static func resolve(_ options: ShardOptions, out: String?, report: String?, prompts: String?, steer: [String]) throws -> ShardRun? {
        // The steering files are hashed too: a re-fitted file under the same path is another run.
        let files = try steer.filter { $0 != "none" && $0 != "prompt" }.map { try LabEvalCommand.steerEntry($0).name }
        guard let shard = try options.resolve(command: "eval", format: .jsonLines, out: out, inputs: (prompts.map { [$0] } ?? []) + files) else {
            return nil
        }
        if report != nil {
            throw TillerError.invalidArgument(op: "--report", detail: "covers the whole run and cannot be written by shard \(shard.shard) (merge the shards, then run the command with --shard none --out MERGED --report FILE: every answer comes from the results file; docs/cluster.md)")
        }
        return shard
    }

    /// The shard's requests of the whole run's `requests` (steering-major over `items` items) and
    /// their positions in it, ascending.
    static func select(_ shard: ShardRun, requests: [EvalRequest], items: Int) -> (requests: [EvalRequest], indices: [Int]) {
        let indices = requests.indices.filter { shard.shard.owns($0 % items) }
        return (indices.map { requests[$0] }, indices)
    }

    /// A shard's results file must hold its own answers only: what else is there would be merged
    /// as answers of another run. Refused before the model loads.
    static func refuseForeignLines(_ file: EvalResultsFile, requests: [EvalRequest], shard: ShardRun) throws {
        let foreign = file.lines(outside: requests)
        if let first = foreign.first {
            throw TillerError.io(path: file.path, detail: "holds \(foreign.count) answers that are not shard \(shard.shard)'s of this run, the first item \(JSONEscaping.quoted(first.id)) under \(first.steerKey) (give another --out)")
        }
    }
}
