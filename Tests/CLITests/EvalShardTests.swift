import Foundation
import Testing

/// `tiller eval` sharded as a cluster runs it (docs/cluster.md): item i in shard i % N under every
/// steering, each shard's results file in canonical order with its manifest, `tiller merge` against
/// the unsharded run's bytes, a re-run that skips a complete shard and resumes a broken one, a
/// resumed unsharded run left in the order a fresh one writes, and the refusals. On the lab model,
/// coherence from the proxy.
@Suite struct EvalShardTests {
    typealias Scratch = SteeringCommandTests.Scratch
    static let lab = SteeringCommandTests.labModel

    static func eval(_ proto: String, steer: [String], limit: Int, out: String, _ extra: [String] = []) -> [String] {
        ["eval", "--protocol", proto, "--model", lab] + steer.flatMap { ["--steer", $0] }
            + ["--limit", "\(limit)", "--max-new-tokens", "8", "--backend", "cpu", "--out", out] + extra
    }

    static func lines(_ path: String) throws -> [Substring] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false).dropLast()
    }

    static func field(_ line: Substring, _ key: String) throws -> String? {
        try SteeringCommandTests.jsonObject(String(line))[key] as? String
    }

    @Test func ifevalShardsMergeIntoTheUnshardedBytes() throws {
        let scratch = try Scratch()
        let whole = scratch.file("whole.jsonl"), out = scratch.file("results.jsonl"), merged = scratch.file("merged.jsonl")
        let command = { (extra: [String]) in Self.eval("ifeval-format", steer: ["none", "prompt"], limit: 5, out: out, extra) }
        try ShardCommandTests.run(Self.eval("ifeval-format", steer: ["none", "prompt"], limit: 5, out: whole))
        // The unsharded file in canonical order: the steerings as given, under each the items in input order.
        let wholeLines = try Self.lines(whole)
        #expect(wholeLines.count == 10)
        let ids = try wholeLines.map { try #require(try Self.field($0, "id")) }
        #expect(try wholeLines.map { try Self.field($0, "steer_key") } == Array(repeating: "none", count: 5) + Array(repeating: "prompt", count: 5))
        #expect(Array(ids[5...]) == Array(ids[..<5]) && Set(ids).count == 5)

        let logs = [
            try ShardCommandTests.run(command(["--shard", "0/3"])),
            try ShardCommandTests.run(command([]), environment: ["SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "3"]),
            try ShardCommandTests.run(command([]), environment: ["JOB_COMPLETION_INDEX": "2", "TILLER_SHARD_COUNT": "3"]),
        ]
        #expect(logs[0].stderr.contains("shard 0/3 (from --shard)"), "\(logs[0].stderr)")
        #expect(logs[1].stderr.contains("shard 1/3 (from SLURM_ARRAY_TASK_ID=1, SLURM_ARRAY_TASK_COUNT=3)"), "\(logs[1].stderr)")
        #expect(logs[2].stderr.contains("shard 2/3 (from JOB_COMPLETION_INDEX=2, TILLER_SHARD_COUNT=3)"), "\(logs[2].stderr)")
        #expect(logs[0].stdout.contains("2 of 5 items (shard 0/3)"), "\(logs[0].stdout)")
        let paths = (0..<3).map { scratch.file("results.shard-000\($0)-of-0003.jsonl") }
        for (s, path) in paths.enumerated() {
            // Item i (under both steerings) is shard i % 3's, its lines as the unsharded run wrote them.
            let expected = (0..<10).filter { ($0 % 5) % 3 == s }
            #expect(try Self.lines(path) == expected.map { wholeLines[$0] }, "shard \(s)")
            let manifest = try ShardCommandTests.manifest(path)
            #expect(manifest["command"] as? String == "eval" && manifest["input_lines"] as? Int == 10
                    && manifest["line_indices"] as? [Int] == expected && manifest["shards"] as? Int == 3, "\(manifest)")
        }
        #expect(!FileManager.default.fileExists(atPath: out), "no unsharded results file appears")

        // Any order, manifests included (a glob of results.shard-*).
        let given = try FileManager.default.contentsOfDirectory(atPath: scratch.path).filter { $0.hasPrefix("results.shard-") }
        #expect(given.count == 6)
        try ShardCommandTests.run(["merge"] + given.sorted().reversed().map(scratch.file) + ["--out", merged])
        #expect(try ShardCommandTests.bytes(merged) == ShardCommandTests.bytes(whole))

        let again = try ShardCommandTests.run(command(["--shard", "1/3"]))
        #expect(again.stderr.contains("already complete") && again.stderr.contains("skipped"), "\(again.stderr)")
        try FileManager.default.removeItem(atPath: merged)
        try SteeringCommandTests.fails(["merge", paths[0], paths[2], "--out", merged], containing: ["1 of 3 shards missing: 1", "results.shard-0001-of-0003.jsonl"])
        #expect(!FileManager.default.fileExists(atPath: merged))
    }

    /// Persona, steerings given prompt first: a shard resumed from a shorter run ends in canonical
    /// order; a shard killed mid-write has no manifest, merge refuses it, and its re-run resumes
    /// from its results file to the same bytes.
    @Test func personaShardsResumeAndMergeIntoTheUnshardedBytes() throws {
        let scratch = try Scratch()
        let whole = scratch.file("whole.jsonl"), out = scratch.file("persona.jsonl"), merged = scratch.file("merged.jsonl")
        let command = { (extra: [String]) in Self.eval("persona", steer: ["prompt", "none"], limit: 3, out: out, ["--progress"] + extra) }
        try ShardCommandTests.run(Self.eval("persona", steer: ["prompt", "none"], limit: 3, out: whole))
        #expect(try Self.lines(whole).map { try Self.field($0, "steer_key") } == ["prompt", "prompt", "prompt", "none", "none", "none"])
        let paths = (0..<2).map { scratch.file("persona.shard-000\($0)-of-0002.jsonl") }
        // Shard 0 first ran over 2 items (item 0 under both steerings); the run over 3 resumes
        // from them and appends item 2's answers, then puts the file in canonical order.
        try ShardCommandTests.run(Self.eval("persona", steer: ["prompt", "none"], limit: 2, out: out, ["--shard", "0/2"]))
        for s in 0..<2 { try ShardCommandTests.run(command(["--shard", "\(s)/2"])) }
        let complete = try ShardCommandTests.bytes(paths[0])
        let wholeLines = try Self.lines(whole)
        #expect(try Self.lines(paths[0]) == [0, 2, 3, 5].map { wholeLines[$0] })

        // Killed after its first answers: the output is cut mid-line and has no manifest yet.
        try complete.prefix(complete.count / 2).write(to: URL(fileURLWithPath: paths[0]))
        try FileManager.default.removeItem(atPath: paths[0] + ".shard.json")
        try SteeringCommandTests.fails(["merge"] + paths + ["--out", merged], containing: [paths[0], "has no shard manifest"])
        let resumed = try ShardCommandTests.run(command(["--shard", "0/2"]))
        #expect(resumed.stderr.contains("from the results file") && resumed.stderr.contains("shard 0/2 complete"), "\(resumed.stderr)")
        #expect(try ShardCommandTests.bytes(paths[0]) == complete)
        try ShardCommandTests.run(["merge"] + paths + ["--out", merged])
        #expect(try ShardCommandTests.bytes(merged) == ShardCommandTests.bytes(whole))
    }

    /// A resumed run appends what is missing after what was there, then rewrites its file into the
    /// order a fresh run writes, so it ends with the fresh run's bytes.
    @Test func aResumedRunEndsInTheFreshRunsOrder() throws {
        let scratch = try Scratch()
        let fresh = scratch.file("fresh.jsonl"), out = scratch.file("resumed.jsonl")
        try ShardCommandTests.run(Self.eval("ifeval-format", steer: ["none", "prompt"], limit: 4, out: fresh))
        try ShardCommandTests.run(Self.eval("ifeval-format", steer: ["none", "prompt"], limit: 2, out: out))
        let first = try Self.lines(out)
        let resumed = try ShardCommandTests.run(Self.eval("ifeval-format", steer: ["none", "prompt"], limit: 4, out: out, ["--progress"]))
        #expect(resumed.stderr.contains("(4 from the results file)"), "\(resumed.stderr)")
        #expect(try ShardCommandTests.bytes(out) == ShardCommandTests.bytes(fresh))
        // The kept lines are the first run's, byte for byte (none 0-1 then prompt 0-1 there).
        #expect(try Self.lines(out).filter(first.contains).count == 4)
        // Lines of other runs stay where they are: a run of some of the answers changes nothing,
        // one of all of them in another steering order puts them in its order.
        try ShardCommandTests.run(Self.eval("ifeval-format", steer: ["prompt"], limit: 1, out: out))
        #expect(try ShardCommandTests.bytes(out) == ShardCommandTests.bytes(fresh))
        try ShardCommandTests.run(Self.eval("ifeval-format", steer: ["prompt", "none"], limit: 4, out: out))
        let fromFresh = try Self.lines(fresh)
        #expect(try Self.lines(out) == Array(fromFresh[4...] + fromFresh[..<4]))
        try ShardCommandTests.run(Self.eval("ifeval-format", steer: ["none"], limit: 2, out: out))
        #expect(try Self.lines(out) == Array(fromFresh[4...] + fromFresh[..<4]))
    }

    @Test func badShardRequestsAreOneLineErrors() throws {
        let scratch = try Scratch()
        let out = scratch.file("results.jsonl"), merged = scratch.file("merged.jsonl")
        try SteeringCommandTests.fails(Self.eval("persona", steer: ["none"], limit: 2, out: out, ["--shard", "0/2", "--report", scratch.file("r.html")]),
                                       containing: ["--report", "shard 0/2", "--shard none"])
        try SteeringCommandTests.fails(["eval", "--protocol", "persona", "--model", Self.lab, "--steer", "none", "--shard", "0/2", "--backend", "cpu"],
                                       containing: ["--out", "standard output"])
        try SteeringCommandTests.fails(["eval", "compare", "--protocol", "persona", "--model", Self.lab, "--steer", scratch.file("s.safetensors"), "--shard", "0/2"],
                                       containing: ["Unknown option", "--shard"])
        // More shards than items: shard 2/3 of 2 items is empty, and the merge still holds every answer.
        let whole = scratch.file("whole.jsonl")
        try ShardCommandTests.run(Self.eval("persona", steer: ["none"], limit: 2, out: whole))
        for s in 0..<3 { try ShardCommandTests.run(Self.eval("persona", steer: ["none"], limit: 2, out: out, ["--shard", "\(s)/3"])) }
        let paths = (0..<3).map { scratch.file("results.shard-000\($0)-of-0003.jsonl") }
        #expect(try ShardCommandTests.bytes(paths[2]).isEmpty && ShardCommandTests.manifest(paths[2])["lines"] as? Int == 0)
        try ShardCommandTests.run(["merge"] + paths + ["--out", merged])
        #expect(try ShardCommandTests.bytes(merged) == ShardCommandTests.bytes(whole))
        // A shard's file holding answers of another run (here item 1 of 2, past --limit 1) is refused
        // before the old manifest is touched.
        let other = Self.eval("persona", steer: ["none"], limit: 1, out: scratch.file("results.jsonl"), ["--shard", "1/3"])
        try SteeringCommandTests.fails(other, containing: [paths[1], "not shard 1/3's", "another --out"])
        #expect(FileManager.default.fileExists(atPath: paths[1] + ".shard.json"))
    }
}
