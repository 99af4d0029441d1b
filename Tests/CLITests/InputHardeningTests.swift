import Foundation
import Testing

/// Input the CLI must not run quietly wrong on: steering that drives the activations to NaN or
/// Inf, prompts longer than the context, typo'd keys, over-long lines, captures with nothing
/// (or NaN) to fit, and more ids than the context.
@Suite struct InputHardeningTests {
    typealias S = SteeringCommandTests

    static func outputLines(_ path: String) throws -> [[String: Any]] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map { try S.jsonObject(String($0)) }
    }

    /// A copy of a safetensors file with `count` F32 values of `tensor` from `element` on set to `value`.
    static func patched(_ source: String, _ tensor: String, element: Int = 0, count: Int = 1, value: Float, to path: String) throws {
        let file = try S.Safetensors(source)
        var data = file.data
        let at = try file.offset(tensor, element: element)
        for i in 0..<count {
            withUnsafeBytes(of: value.bitPattern.littleEndian) { data.replaceSubrange((at + 4 * i)..<(at + 4 * i + 4), with: $0) }
        }
        try data.write(to: URL(fileURLWithPath: path))
    }

    @Test func hugeSteeringStopsWithNonFiniteAndAWarning() throws {
        let lab = try S.lab()
        let dir = try S.Scratch()
        let dm = try #require(lab.files["diffmean"])
        let prompts = dir.file("p.jsonl"), out = dir.file("o.jsonl")
        try "{\"prompt\": \"hello\"}\n".write(toFile: prompts, atomically: true, encoding: .utf8)
        // An alpha typed past any useful strength is refused before anything runs.
        try S.fails(["generate", "--model", S.labModel, "--prompts", prompts, "--out", out, "--steer", "\(dm):1e30",
                     "--max-new-tokens", "4", "--backend", "cpu"], containing: ["--steer", "out of range"])
        // A file whose z holds 3e38 on every line: finite, but past what the next norm can square.
        let big = dir.file("big.safetensors")
        try Self.patched(dm, "layers.2.z", element: 7, value: 3e38, to: big)
        let run = try S.ok(["generate", "--model", S.labModel, "--prompts", prompts, "--out", out, "--steer", big,
                            "--max-new-tokens", "4", "--backend", "cpu"])
        var lines = try Self.outputLines(out)
        #expect(lines.count == 1 && lines[0]["stop_reason"] as? String == "non_finite" && (lines[0]["ids"] as? [Int])?.isEmpty == true, "\(lines)")
        #expect(run.stderr.contains("\(prompts):1") && run.stderr.contains("non_finite") && run.stderr.contains("big.safetensors"), "\(run.stderr)")

        // A line at the largest alpha allowed on a file whose z holds 1e33 (their product
        // overflows f32), and the 3e38 file, next to an unsteered line.
        let huge = dir.file("huge.safetensors")
        try Self.patched(dm, "layers.2.z", element: 7, value: 1e33, to: huge)
        try ([S.jsonLine(["prompt": "hello", "steer": NSNull()]),
              S.jsonLine(["prompt": "hello", "steer": "huge", "alpha": 1e6]),
              S.jsonLine(["prompt": "hello", "steer": big])].joined(separator: "\n") + "\n").write(toFile: prompts, atomically: true, encoding: .utf8)
        let mixed = try S.ok(["generate", "--model", S.labModel, "--prompts", prompts, "--out", out, "--steer-file", "huge=\(huge)",
                              "--max-new-tokens", "4", "--backend", "cpu"])
        lines = try Self.outputLines(out)
        #expect(lines.map { $0["stop_reason"] as? String } == ["max_tokens", "non_finite", "non_finite"], "\(lines)")
        #expect((lines[0]["ids"] as? [Int])?.count == 4)
        #expect(!mixed.stderr.contains("\(prompts):1:") && mixed.stderr.contains("\(prompts):2:") && mixed.stderr.contains("\(prompts):3:")
                && mixed.stderr.contains("big.safetensors") && mixed.stderr.contains("huge.safetensors"), "\(mixed.stderr)")
    }

    @Test func labEvalWarnsOfNonFiniteAnswers() throws {
        let lab = try S.lab()
        let dm = try #require(lab.files["diffmean"])
        let dir = try S.Scratch()
        let big = dir.file("big.safetensors")
        try Self.patched(dm, "layers.2.z", element: 7, value: 3e38, to: big)
        let run = try S.ok(["lab", "eval", "--kind", "concept", "--steer", big, "--limit", "3", "--max-new-tokens", "4",
                            "--json", "--backend", "cpu"])
        let rows = try #require(try S.jsonObject(run.stdout)["examples"] as? [[String: Any]], "\(run.stdout)")
        #expect(rows.count == 3 && rows.allSatisfy { $0["stop_reason"] as? String == "non_finite" }, "\(rows)")
        #expect(run.stderr.contains("3 of 3 answers stopped with \"non_finite\""), "\(run.stderr)")
        // --heldout is read line by line under --max-line-bytes.
        let heldout = dir.file("h.jsonl")
        try (String(repeating: " ", count: 200) + "\n").write(toFile: heldout, atomically: true, encoding: .utf8)
        try S.fails(["lab", "eval", "--kind", "concept", "--steer", "none", "--heldout", heldout, "--max-line-bytes", "100",
                     "--backend", "cpu"], containing: ["\(heldout):1", "100 bytes"])
    }

    /// A model whose embedding of token 77 is NaN: an unsteered prompt holding it stops with
    /// non_finite through the generator's check of the logits, and a triplet holding it is an
    /// error naming its line, with no capture written.
    @Test func nanWeightsStopGenerationAndCapture() throws {
        let model = try ModelCommandTests.ModelDir()
        let weights = model.file("model.safetensors")
        let d = try S.Safetensors(weights).shape("model.embed_tokens.weight")[1]
        try Self.patched(weights, "model.embed_tokens.weight", element: 77 * d, count: d, value: .nan, to: weights)
        let dir = try S.Scratch()
        let prompts = dir.file("p.jsonl"), out = dir.file("o.jsonl")
        try "{\"ids\": [1, 40, 41]}\n{\"ids\": [1, 77, 41]}\n".write(toFile: prompts, atomically: true, encoding: .utf8)
        let run = try S.ok(["generate", "--model", model.path, "--prompts", prompts, "--out", out, "--max-new-tokens", "3", "--backend", "cpu"])
        let lines = try Self.outputLines(out)
        #expect(lines.map { $0["stop_reason"] as? String } == ["max_tokens", "non_finite"], "\(lines)")
        #expect(run.stderr.contains("\(prompts):2") && run.stderr.contains("unsteered"), "\(run.stderr)")
        let triplets = dir.file("t.jsonl"), capture = dir.file("c.safetensors")
        try ("{\"steered\": [1, 100, 40], \"unsteered\": [1, 40], \"completion\": [60, 61]}\n"
             + "{\"steered\": [1, 100, 40], \"unsteered\": [1, 40], \"completion\": [77, 61]}\n")
            .write(toFile: triplets, atomically: true, encoding: .utf8)
        try S.fails(["capture", "--model", model.path, "--triplets", triplets, "--layers", "all", "--out", capture, "--backend", "cpu"],
                    containing: ["\(triplets):2", "NaN or Inf"])
        #expect(!FileManager.default.fileExists(atPath: capture) && !FileManager.default.fileExists(atPath: capture + ".partial"))
    }

    @Test func typoedKeysAreErrorsSuggestingTheKey() throws {
        let dir = try S.Scratch()
        let prompts = dir.file("p.jsonl"), out = dir.file("o.jsonl")
        try "{\"prompt\": \"hi\"}\n{\"prompt\": \"hi\", \"steeer\": \"x.safetensors\"}\n".write(toFile: prompts, atomically: true, encoding: .utf8)
        try S.fails(["generate", "--model", S.labModel, "--prompts", prompts, "--out", out, "--backend", "cpu"],
                    containing: ["\(prompts):2", "\"steeer\"", "did you mean \"steer\""])
        try "{\"prompt\": \"hi\", \"steer\": {\"file\": \"x\", \"alhpa\": 2}}\n".write(toFile: prompts, atomically: true, encoding: .utf8)
        try S.fails(["generate", "--model", S.labModel, "--prompts", prompts, "--out", out, "--backend", "cpu"],
                    containing: ["\(prompts):1", "\"alhpa\"", "\"alpha\""])
        let triplets = dir.file("t.jsonl"), capture = dir.file("c.safetensors")
        try "{\"steered\": \"a\", \"unsteered\": \"b\", \"complection\": \"c\"}\n".write(toFile: triplets, atomically: true, encoding: .utf8)
        try S.fails(["capture", "--model", S.labModel, "--triplets", triplets, "--layers", "1", "--out", capture, "--backend", "cpu"],
                    containing: ["\(triplets):1", "\"complection\"", "did you mean \"completion\""])
        // A lab corpus line has its own keys.
        let lab = try S.lab()
        let corpusLine = try String(contentsOfFile: lab.triplets, encoding: .utf8).split(separator: "\n")[0]
        var object = try S.jsonObject(String(corpusLine))
        object["placment"] = object.removeValue(forKey: "placement")
        try (try S.jsonLine(object) + "\n").write(toFile: triplets, atomically: true, encoding: .utf8)
        try S.fails(["capture", "--model", S.labModel, "--triplets", triplets, "--layers", "1", "--out", capture, "--backend", "cpu"],
                    containing: ["\(triplets):1", "\"placment\"", "did you mean \"placement\""])
        // analyze --triplets reads its file as strictly as capture does.
        try S.fails(["analyze", "--capture", lab.capture, "--triplets", triplets, "--model", S.labModel, "--out", dir.file("r.html"),
                     "--backend", "cpu"], containing: ["\(triplets):1", "\"placment\""])
    }

    @Test func promptsLongerThanTheContextAreWarnedAndSkipped() throws {
        let dir = try S.Scratch()
        let prompts = dir.file("p.jsonl"), out = dir.file("o.jsonl")
        try "{\"ids\": [5, 6, 7, 8, 9, 10, 11, 12]}\n{\"ids\": [5, 6, 7]}\n".write(toFile: prompts, atomically: true, encoding: .utf8)
        let args = ["generate", "--model", S.labModel, "--prompts", prompts, "--out", out, "--context-limit", "8",
                    "--max-new-tokens", "3", "--backend", "cpu"]
        let run = try S.ok(args)
        let lines = try Self.outputLines(out)
        #expect(lines.map { $0["stop_reason"] as? String }.first == "prompt_too_long" && (lines[0]["ids"] as? [Int])?.isEmpty == true, "\(lines)")
        #expect(lines.count == 2 && lines[1]["stop_reason"] as? String != "prompt_too_long" && (lines[1]["ids"] as? [Int])?.isEmpty == false)
        #expect(run.stderr.contains("\(prompts):1: prompt of 8 tokens does not fit the context of 8") && !run.stderr.contains("\(prompts):2"), "\(run.stderr)")
        try S.fails(args + ["--strict"], containing: ["\(prompts):1", "8 tokens", "--strict"])
    }

    @Test func linesOverTheLimitAreRefused() throws {
        let dir = try S.Scratch()
        let prompts = dir.file("p.jsonl"), out = dir.file("o.jsonl")
        let long = "{\"prompt\": \"" + String(repeating: "a", count: 100) + "\"}"
        try ("{\"prompt\": \"hi\"}\n" + long + "\n").write(toFile: prompts, atomically: true, encoding: .utf8)
        try S.fails(["generate", "--model", S.labModel, "--prompts", prompts, "--out", out, "--max-line-bytes", "64", "--backend", "cpu"],
                    containing: ["\(prompts):2", "64 bytes", "--max-line-bytes"])
        try S.fails(["generate", "--model", S.labModel, "--prompts", prompts, "--out", out, "--max-line-bytes", "0", "--backend", "cpu"],
                    containing: ["--max-line-bytes"])
        // A 17 MiB triplet line, over the 16 MiB default.
        let triplets = dir.file("t.jsonl")
        try Data(("{\"steered\": \"" + String(repeating: "b", count: 17 << 20) + "\", \"unsteered\": \"b\"}\n").utf8)
            .write(to: URL(fileURLWithPath: triplets))
        try S.fails(["capture", "--model", S.labModel, "--triplets", triplets, "--layers", "1", "--out", dir.file("c.safetensors"),
                     "--backend", "cpu"], containing: ["\(triplets):1", "16 MiB", "--max-line-bytes"])
    }

    @Test func fitRefusesZeroAndNonFiniteDelta() throws {
        let lab = try S.lab()
        let dir = try S.Scratch()
        let capture = try S.Safetensors(lab.capture)
        let count = try capture.shape("layers.1.delta").reduce(1, *)
        let zero = dir.file("zero.safetensors"), nan = dir.file("nan.safetensors"), out = dir.file("f.safetensors")
        try Self.patched(lab.capture, "layers.1.delta", count: count, value: 0, to: zero)
        // Every row NaN: whichever rows a method selects hold one.
        try Self.patched(lab.capture, "layers.1.delta", count: count, value: .nan, to: nan)
        for method in ["diffmean", "psr"] {
            try S.fails(["fit", "--method", method, "--capture", zero, "--layer", "1", "--model", S.labModel, "--out", out,
                         "--steps", "5", "--backend", "cpu"], containing: [zero, "layers.1.delta", "zero"])
            try S.fails(["fit", "--method", method, "--capture", nan, "--layer", "1", "--model", S.labModel, "--out", out,
                         "--steps", "5", "--backend", "cpu"], containing: [nan, "layers.1.delta", "nan"])
        }
        #expect(!FileManager.default.fileExists(atPath: out))
        // Layer 2 of the same files is untouched and fits.
        try S.ok(["fit", "--method", "diffmean", "--capture", zero, "--layer", "2", "--model", S.labModel, "--out", out, "--backend", "cpu"])
    }

    @Test func logitsRefusesIDsPastTheContext() throws {
        let dir = try ModelCommandTests.ModelDir(tokenizer: false)
        let scratch = try S.Scratch()
        let out = scratch.file("l.safetensors")
        let ids = Array(repeating: "1", count: 129).joined(separator: ",")
        ModelCommandTests.expectOneLineError(try TillerProcess.run(["logits", "--model", dir.path, "--ids", ids, "--out", out, "--backend", "cpu"]),
                                             containing: ["129", "128", "max_position_embeddings"])
        #expect(!FileManager.default.fileExists(atPath: out))
        try S.ok(["logits", "--model", dir.path, "--ids", Array(repeating: "1", count: 128).joined(separator: ","), "--out", out, "--backend", "cpu"])
    }
}
