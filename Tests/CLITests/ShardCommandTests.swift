import Foundation
import Testing

/// Sharded batch jobs as a cluster runs them (docs/cluster.md): `--shard I/N` or the job array's
/// environment on generate, capture and lab eval, `tiller merge` against the unsharded run's
/// output, re-runs that skip complete shards and redo broken ones, and every refusal of a bad
/// shard set. On the lab model, with a DiffMean steering file fitted from a small corpus.
@Suite struct ShardCommandTests {
    typealias Scratch = SteeringCommandTests.Scratch
    static let labModel = SteeringCommandTests.labModel

    /// Made once: 12 held-out prompts, 30 training triplets, a steering file fitted on them.
    final class Setup {
        let scratch: Scratch
        var prompts: String { scratch.file("prompts.jsonl") }
        var triplets: String { scratch.file("triplets.jsonl") }
        var steering: String { scratch.file("steer.safetensors") }

        init() throws {
            scratch = try Scratch()
            let corpus = scratch.file("corpus")
            try SteeringCommandTests.ok(["lab", "corpus", "--seed", "3", "--out", corpus, "--train", "30", "--heldout", "12"])
            let heldout = try String(contentsOfFile: corpus + "/heldout.jsonl", encoding: .utf8).split(separator: "\n")
            let prompts = try heldout.enumerated().map { i, line -> String in
                let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
                let messages = try #require(object["messages"] as? [[String: String]]).filter { $0["role"] != "assistant" }
                let data = try JSONSerialization.data(withJSONObject: ["id": "q\(i)", "messages": messages], options: [.sortedKeys])
                return String(decoding: data, as: UTF8.self)
            }
            try ModelCommandTests.write(prompts, to: self.prompts)
            try FileManager.default.copyItem(atPath: corpus + "/train.jsonl", toPath: triplets)
            let capture = scratch.file("fit-capture.safetensors")
            try SteeringCommandTests.ok(["capture", "--model", labModel, "--triplets", triplets, "--layers", "2", "--out", capture, "--backend", "cpu"])
            try SteeringCommandTests.ok(["fit", "--method", "diffmean", "--capture", capture, "--layer", "2", "--model", labModel,
                                         "--out", steering, "--backend", "cpu"])
        }
    }

    static let shared = Result { try Setup() }

    /// `tiller generate --steer` over the prompts, 12 new tokens, into `out`.
    static func generate(_ setup: Setup, out: String, _ extra: [String] = []) -> [String] {
        ["generate", "--model", labModel, "--prompts", setup.prompts, "--steer", setup.steering + ":4", "--max-new-tokens", "12",
         "--out", out, "--backend", "cpu"] + extra
    }

    @discardableResult
    static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> TillerProcess.Result {
        let result = try TillerProcess.run(arguments, environment: environment)
        guard result.status == 0 else {
            throw SteeringCommandTests.Failure(description: "tiller \(arguments.joined(separator: " ")) exited with \(result.status): \(result.stderr)")
        }
        return result
    }

    static func bytes(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }

    static func manifest(_ output: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: bytes(output + ".shard.json")) as? [String: Any])
    }

    /// Shards 0, 1, 2 of 3 of a steered generation into `directory`/gen.jsonl: the first by
    /// --shard, the second from a Slurm array's variables (--array=1-3), the third from a
    /// Kubernetes Indexed Job's; returns the shard paths and what each printed.
    static func generateShards(_ setup: Setup, directory: String) throws -> (paths: [String], logs: [String]) {
        let out = directory + "/gen.jsonl"
        let logs = [
            try run(generate(setup, out: out, ["--shard", "0/3"])).stderr,
            try run(generate(setup, out: out), environment: ["SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_MAX": "3",
                                                             "SLURM_ARRAY_TASK_COUNT": "3", "SLURM_ARRAY_TASK_STEP": "1"]).stderr,
            try run(generate(setup, out: out), environment: ["JOB_COMPLETION_INDEX": "2", "TILLER_SHARD_COUNT": "3"]).stderr,
        ]
        return ((0..<3).map { directory + "/gen.shard-000\($0)-of-0003.jsonl" }, logs)
    }

    @Test func generateShardsMergeIntoTheUnshardedBytes() throws {
        let setup = try Self.shared.get()
        let scratch = try Scratch()
        let whole = scratch.file("whole.jsonl")
        try Self.run(Self.generate(setup, out: whole))
        let (paths, logs) = try Self.generateShards(setup, directory: scratch.path)
        #expect(logs[0].contains("shard 0/3 (from --shard)"), "\(logs[0])")
        #expect(logs[1].contains("shard 1/3 (from SLURM_ARRAY_TASK_ID=2"), "\(logs[1])")
        #expect(logs[2].contains("shard 2/3 (from JOB_COMPLETION_INDEX=2, TILLER_SHARD_COUNT=3)"), "\(logs[2])")
        // Each shard holds its lines (i % 3 == shard) as the unsharded run writes them.
        let wholeLines = try String(contentsOfFile: whole, encoding: .utf8).split(separator: "\n")
        #expect(wholeLines.count == 12)
        let runID = try Self.manifest(paths[0])["run_id"] as? String
        for (s, path) in paths.enumerated() {
            let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
            #expect(lines == stride(from: s, to: 12, by: 3).map { wholeLines[$0] })
            let manifest = try Self.manifest(path)
            #expect(manifest["shard"] as? Int == s && manifest["shards"] as? Int == 3 && manifest["lines"] as? Int == 4
                    && manifest["input_lines"] as? Int == 12 && manifest["run_id"] as? String == runID)
        }
        // Any order, manifests included (what a glob of gen.shard-* gives).
        let merged = scratch.file("merged.jsonl")
        let shardFiles = try FileManager.default.contentsOfDirectory(atPath: scratch.path).filter { $0.hasPrefix("gen.shard-") }
        #expect(shardFiles.count == 6)
        try Self.run(["merge"] + shardFiles.sorted().reversed().map(scratch.file) + ["--out", merged])
        #expect(try Self.bytes(merged) == Self.bytes(whole))
    }

    @Test func aResubmittedArraySkipsCompleteShardsAndRedoesBrokenOnes() throws {
        let setup = try Self.shared.get()
        let scratch = try Scratch()
        let whole = scratch.file("whole.jsonl")
        try Self.run(Self.generate(setup, out: whole))
        let (paths, _) = try Self.generateShards(setup, directory: scratch.path)
        let out = scratch.file("gen.jsonl"), merged = scratch.file("merged.jsonl")
        let before = try FileManager.default.attributesOfItem(atPath: paths[1])[.modificationDate] as? Date

        let again = try Self.run(Self.generate(setup, out: out, ["--shard", "1/3"]))
        #expect(again.stderr.contains("already complete") && again.stderr.contains("skipped"), "\(again.stderr)")
        #expect(try FileManager.default.attributesOfItem(atPath: paths[1])[.modificationDate] as? Date == before)

        // A shard cut short (a task killed while copying it out, a full disk) is not complete:
        // merge refuses it and the re-run redoes it.
        let damaged = try Self.bytes(paths[1])
        try damaged.prefix(damaged.count / 2).write(to: URL(fileURLWithPath: paths[1]))
        try SteeringCommandTests.fails(["merge"] + paths + ["--out", merged], containing: [paths[1], "incomplete shard 1/3", "truncated"])
        let redone = try Self.run(Self.generate(setup, out: out, ["--shard", "1/3"]))
        #expect(!redone.stderr.contains("skipped") && redone.stderr.contains("shard 1/3 complete"), "\(redone.stderr)")

        // A task killed before its manifest was written left an output that does not count.
        try FileManager.default.removeItem(atPath: paths[2] + ".shard.json")
        try SteeringCommandTests.fails(["merge"] + paths + ["--out", merged], containing: [paths[2], "has no shard manifest"])
        let rerun = try Self.run(Self.generate(setup, out: out, ["--shard", "2/3"]))
        #expect(!rerun.stderr.contains("skipped"), "\(rerun.stderr)")
        try Self.run(["merge"] + paths + ["--out", merged])
        #expect(try Self.bytes(merged) == Self.bytes(whole))
        #expect(!FileManager.default.fileExists(atPath: out), "no unsharded output appears")
    }

    @Test func mergeRefusesBadShardSets() throws {
        let setup = try Self.shared.get()
        let scratch = try Scratch()
        let (paths, _) = try Self.generateShards(setup, directory: scratch.path)
        let merged = scratch.file("merged.jsonl")

        try SteeringCommandTests.fails(["merge", paths[0], paths[2], "--out", merged], containing: ["1 of 3 shards missing: 1", "gen.shard-0001-of-0003.jsonl"])
        // The same shard from another directory (two tasks given one index).
        let copies = scratch.file("copies")
        try FileManager.default.createDirectory(atPath: copies, withIntermediateDirectories: true)
        for suffix in ["", ".shard.json"] { try FileManager.default.copyItem(atPath: paths[0] + suffix, toPath: copies + "/gen.shard-0000-of-0003.jsonl" + suffix) }
        try SteeringCommandTests.fails(["merge"] + paths + [copies + "/gen.shard-0000-of-0003.jsonl", "--out", merged],
                                       containing: ["shard 0/3 is given twice", paths[0]])
        // A shard of another run (other options: another derived run id; or another --run-id).
        let other = scratch.file("other")
        try FileManager.default.createDirectory(atPath: other, withIntermediateDirectories: true)
        try Self.run(Self.generate(setup, out: other + "/gen.jsonl", ["--shard", "1/3", "--run-id", "sweep-7"]))
        try SteeringCommandTests.fails(["merge", paths[0], other + "/gen.shard-0001-of-0003.jsonl", paths[2], "--out", merged],
                                       containing: ["from run sweep-7", "different runs"])
        try SteeringCommandTests.fails(["merge"] + paths + ["--out", paths[1] + ".shard.json"], containing: ["refusing to overwrite an input"])
        // A shard whose bytes changed after it was written.
        var changed = try Self.bytes(paths[2])
        changed[changed.count - 3] ^= 1
        try changed.write(to: URL(fileURLWithPath: paths[2]))
        try SteeringCommandTests.fails(["merge"] + paths + ["--out", merged], containing: [paths[2], "SHA-256", "changed"])
        try SteeringCommandTests.fails(["merge", scratch.file("nothing.jsonl"), "--out", merged], containing: ["nothing.jsonl", "does not exist"])
        #expect(!FileManager.default.fileExists(atPath: merged), "a refused merge writes nothing")
    }

    @Test func badShardRequestsAreOneLineErrors() throws {
        let setup = try Self.shared.get()
        let scratch = try Scratch()
        let out = scratch.file("gen.jsonl")
        try SteeringCommandTests.fails(Self.generate(setup, out: out, ["--shard", "3/3"]), containing: ["--shard", "0-2"])
        try SteeringCommandTests.fails(Self.generate(setup, out: out, ["--shard", "two"]), containing: ["--shard", "I/N"])
        try SteeringCommandTests.fails(Self.generate(setup, out: "-", ["--shard", "0/2"]), containing: ["--out", "standard output"])
        try SteeringCommandTests.fails(Self.generate(setup, out: out, ["--run-id", "a b"]), containing: ["--run-id"])
        let k8s = try TillerProcess.run(Self.generate(setup, out: out), environment: ["JOB_COMPLETION_INDEX": "0"])
        ModelCommandTests.expectOneLineError(k8s, containing: ["JOB_COMPLETION_INDEX", "TILLER_SHARD_COUNT"])
        // --shard none: the whole input, whatever the environment says.
        let whole = try Self.run(Self.generate(setup, out: out, ["--shard", "none"]), environment: ["JOB_COMPLETION_INDEX": "0"])
        #expect(!whole.stderr.contains("shard"), "\(whole.stderr)")
        #expect(try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n").count == 12)
        let lab = ["lab", "eval", "--model", Self.labModel, "--kind", "concept", "--steer", "prompt", "--limit", "4", "--max-new-tokens", "4", "--backend", "cpu"]
        try SteeringCommandTests.fails(lab + ["--shard", "0/2"], containing: ["--answers", "standard output"])
        try SteeringCommandTests.fails(["lab", "eval", "--model", Self.labModel, "--kind", "concept", "--steer", setup.steering, "--factors", "1,2",
                                        "--limit", "4", "--answers", scratch.file("a.jsonl"), "--shard", "0/2", "--backend", "cpu"],
                                       containing: ["--factors", "shard 0/2"])
    }

    /// Capture shards run the unsharded run's passes (a triplet's last bits depend on its padded
    /// pass), so their merge is the unsharded capture byte for byte; each shard alone is a capture
    /// of its own triplets. 30 triplets at a budget of 1024 padded rows make several passes.
    @Test func captureShardsMergeIntoTheUnshardedBytes() throws {
        let setup = try Self.shared.get()
        let scratch = try Scratch()
        let whole = scratch.file("cap.safetensors"), merged = scratch.file("merged.safetensors")
        let capture = ["capture", "--model", Self.labModel, "--triplets", setup.triplets, "--layers", "1,2", "--backend", "cpu", "--out", whole]
        try Self.run(capture)
        let shards = (0..<2).map { scratch.file("cap.shard-000\($0)-of-0002.safetensors") }
        var held: [Int] = []
        for (s, shard) in shards.enumerated() {
            try Self.run(capture + ["--shard", "\(s)/2"])
            let lines = try #require(try Self.manifest(shard)["line_indices"] as? [Int])
            let alone = try SteeringCommandTests.Safetensors(shard)
            #expect(try alone.metadata("tiller.capture")["triplets"] as? Int == lines.count)
            #expect(!lines.isEmpty && lines.count < 30, "shard \(s) holds \(lines.count) triplets")
            held += lines
        }
        #expect(held.sorted() == Array(0..<30), "every triplet in exactly one shard: \(held)")
        try Self.run(["merge"] + shards + ["--out", merged])
        #expect(try Self.bytes(merged) == Self.bytes(whole), "the merged capture differs from the unsharded one")
        try SteeringCommandTests.fails(["merge", shards[0], scratch.file("cap.shard-0000-of-0002.safetensors"), "--out", merged], containing: ["1 of 2 shards missing"])
    }

    /// With a y' to sample, a shard cannot know the other triplets' lengths: it says so and
    /// splits by line. The merge has the unsharded layout, tokens, positions and roles; the
    /// activations agree to float rounding.
    @Test func captureShardsThatSampleSplitByLine() throws {
        let setup = try Self.shared.get()
        let scratch = try Scratch()
        // Three triplets without a completion (sampled), one with.
        let lines = try String(contentsOfFile: setup.triplets, encoding: .utf8).split(separator: "\n").prefix(4).enumerated().map { i, line -> String in
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let steered = try #require(object["messages"] as? [[String: String]]), unsteered = try #require(object["unsteered_messages"] as? [[String: String]])
            var triplet: [String: Any] = ["steered": Array(steered.dropLast()), "unsteered": Array(unsteered.dropLast())]
            if i == 3 { triplet["completion"] = steered.last?["content"] }
            return String(decoding: try JSONSerialization.data(withJSONObject: triplet, options: [.sortedKeys]), as: UTF8.self)
        }
        let triplets = scratch.file("sample.jsonl")
        try ModelCommandTests.write(lines, to: triplets)
        let whole = scratch.file("cap.safetensors"), merged = scratch.file("merged.safetensors")
        let capture = ["capture", "--model", Self.labModel, "--triplets", triplets, "--layers", "2", "--sample-max-new-tokens", "6",
                       "--backend", "cpu", "--out", whole]
        try Self.run(capture)
        for s in 0..<2 {
            let result = try Self.run(capture + ["--shard", "\(s)/2"])
            #expect(result.stderr.contains("split by line"), "\(result.stderr)")
        }
        try Self.run(["merge", scratch.file("cap.shard-0000-of-0002.safetensors"), scratch.file("cap.shard-0001-of-0002.safetensors"), "--out", merged])
        let a = try SteeringCommandTests.Safetensors(whole), b = try SteeringCommandTests.Safetensors(merged)
        #expect(a.data.prefix(a.base) == b.data.prefix(b.base), "the headers differ")
        let tables = try ModelCommandTests.readSafetensors(whole), mergedTables = try ModelCommandTests.readSafetensors(merged)
        for (name, (shape, values)) in tables {
            let other = try #require(mergedTables[name])
            #expect(other.shape == shape, "\(name)")
            let scale = values.map(abs).max() ?? 1
            let worst = zip(values, other.values).map { abs($0 - $1) }.max() ?? 0
            #expect(worst <= 1e-4 * max(scale, 1), "\(name): largest difference \(worst) of \(scale)")
        }
    }

    @Test func labEvalAnswerShardsMergeIntoTheUnshardedBytes() throws {
        let scratch = try Scratch()
        let answers = scratch.file("answers.jsonl")
        let lab = ["lab", "eval", "--model", Self.labModel, "--kind", "concept", "--steer", "prompt", "--limit", "5", "--max-new-tokens", "10",
                   "--backend", "cpu", "--answers", answers]
        try Self.run(lab)
        var shards: [String] = []
        for s in 0..<2 {
            let result = try Self.run(lab + ["--shard", "\(s)/2"])
            #expect(result.stdout.contains("the first \(s == 0 ? 3 : 2) concept examples"), "\(result.stdout)")
            shards.append(scratch.file("answers.shard-000\(s)-of-0002.jsonl"))
        }
        let merged = scratch.file("merged.jsonl")
        try Self.run(["merge"] + shards + ["--out", merged])
        let lines = try String(contentsOfFile: answers, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 5 && lines.allSatisfy { $0.contains("\"scores\"") && $0.contains("\"answer\"") })
        #expect(try Self.bytes(merged) == Self.bytes(answers))
    }
}
