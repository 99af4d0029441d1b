import Foundation
import Testing

/// `--model FILE.gguf` through the binary: logits, tokenize, generate, inspect, --weight-dtype,
/// and one-line errors for files that are not GGUF models (Tests/Fixtures/gguf).
@Suite struct GGUFModelCommandTests {
    static func gguf(_ name: String) -> String { ModelCommandTests.fixtures.appendingPathComponent("gguf/\(name)").path }

    /// `tiller logits` on a quantized GGUF file, dequantized to f32, gives transformers' logits on
    /// the dequantized weights (make_gguf_fixtures.py).
    @Test func logitsOfAGGUFFile() throws {
        let reference = try ModelCommandTests.readSafetensors(Self.gguf("qwen2.reference.safetensors"))
        let ids = try #require(reference["ids"]).values.map { Int($0) }
        let want = try #require(reference["logits"])
        let scratch = try SteeringCommandTests.Scratch()
        let out = scratch.file("logits.safetensors")
        let result = try TillerProcess.run(["logits", "--model", Self.gguf("qwen2.gguf"), "--ids", ids.map(String.init).joined(separator: ","),
                                            "--out", out, "--backend", "cpu", "--weight-dtype", "f32"])
        #expect(result.status == 0, "\(result.stderr)")
        let got = try #require(try ModelCommandTests.readSafetensors(out)["logits"])
        #expect(got.shape == want.shape)
        let error = zip(got.values, want.values).map { abs($0 - $1) }.max()! / want.values.map(abs).max()!
        #expect(error <= 1e-4, "relative error \(error)")
    }

    @Test func tokenizeAndGenerateWithTheFilesVocabulary() throws {
        let tokenized = try TillerProcess.run(["tokenize", "--model", Self.gguf("llama.gguf"), "--text", "hi!"])
        #expect(tokenized.status == 0, "\(tokenized.stderr)")
        #expect(tokenized.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == #"{"ids":[104,105,33]}"#)
        let scratch = try SteeringCommandTests.Scratch()
        let prompts = scratch.file("in.jsonl"), out = scratch.file("out.jsonl")
        try ModelCommandTests.write([#"{"prompt": "hello"}"#], to: prompts)
        let result = try TillerProcess.run(["generate", "--model", Self.gguf("mistral.gguf"), "--prompts", prompts, "--out", out,
                                            "--max-new-tokens", "4", "--backend", "cpu", "--weight-dtype", "bf16"])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = try ModelCommandTests.readLines(out)
        #expect(lines.count == 1 && lines.first?.ids.count ?? 0 > 0)
    }

    @Test func inspectReadsTheMetadata() throws {
        let result = try TillerProcess.run(["inspect", "--model", Self.gguf("gemma2.gguf"), "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(json["architecture"] as? String == "Gemma2ForCausalLM")
        #expect(json["layers"] as? Int == 2 && json["hidden_size"] as? Int == 64)
        #expect((json["dtypes"] as? [String: Int])?["Q4_0"] == 2)
    }

    @Test func badModelFilesAreOneLine() throws {
        let scratch = try SteeringCommandTests.Scratch()
        let text = scratch.file("model.txt")
        try Data("not a model".utf8).write(to: URL(fileURLWithPath: text))
        ModelCommandTests.expectOneLineError(try TillerProcess.run(["tokenize", "--model", text, "--text", "x"]),
                                             containing: [text, "not a directory or a GGUF file"])
        let truncated = scratch.file("truncated.gguf")
        let bytes = try Data(contentsOf: URL(fileURLWithPath: Self.gguf("llama.gguf")))
        try bytes.prefix(5000).write(to: URL(fileURLWithPath: truncated))
        ModelCommandTests.expectOneLineError(try TillerProcess.run(["logits", "--model", truncated, "--ids", "1,2", "--out", scratch.file("l.safetensors"),
                                                                    "--backend", "cpu"]),
                                             containing: [truncated, "GGUF"])
        ModelCommandTests.expectOneLineError(try TillerProcess.run(["logits", "--model", Self.gguf("llama.gguf"), "--ids", "1", "--out", scratch.file("l.safetensors"),
                                                                    "--weight-dtype", "f8"]),
                                             containing: ["weight-dtype", "f8"])
        // A control vector is not a model.
        let blocks = Self.gguf("blocks.gguf")
        ModelCommandTests.expectOneLineError(try TillerProcess.run(["tokenize", "--model", blocks, "--text", "x"]),
                                             containing: [blocks])
    }
}

extension GGUFModelCommandTests {
    /// The steering pipeline on a GGUF model file: capture -> fit DiffMean -> export as a llama.cpp
    /// control vector -> generate steered by the control vector, equal to steering by the file;
    /// a file made for one GGUF file is refused on another (its header is the fingerprint).
    @Test func steeringPipelineOnAGGUFModel() throws {
        let model = Self.gguf("llama.gguf")
        let dir = try SteeringCommandTests.Scratch()
        let triplets = dir.file("triplets.jsonl")
        var lines: [String] = []
        for k in 0..<4 {
            let question = (0..<(3 + k % 2)).map { 40 + 7 * k + $0 }
            let triplet: [String: Any] = ["steered": [1, 100, 101] + question, "unsteered": [1] + question,
                                          "completion": (0..<4).map { 60 + 3 * k + $0 }]
            lines.append(try SteeringCommandTests.jsonLine(triplet))
        }
        try (lines.joined(separator: "\n") + "\n").write(toFile: triplets, atomically: true, encoding: .utf8)
        let capture = dir.file("capture.safetensors"), steering = dir.file("diffmean.safetensors"), vector = dir.file("diffmean.gguf")
        _ = try SteeringCommandTests.ok(["capture", "--model", model, "--triplets", triplets, "--layers", "1", "--out", capture, "--backend", "cpu"])
        _ = try SteeringCommandTests.ok(["fit", "--method", "diffmean", "--capture", capture, "--layer", "1", "--rows", "all", "--location", "all",
                                         "--model", model, "--out", steering, "--backend", "cpu"])
        _ = try SteeringCommandTests.ok(["steer", "export-gguf", "--in", steering, "--out", vector])
        let prompts = dir.file("in.jsonl")
        try ModelCommandTests.write([#"{"ids": [1, 40, 41, 42]}"#, #"{"ids": [1, 47, 48]}"#], to: prompts)
        var outputs: [[ModelCommandTests.Line]] = []
        for file in [steering, vector] {
            let out = dir.file("out-\(outputs.count).jsonl")
            _ = try SteeringCommandTests.ok(["generate", "--model", model, "--prompts", prompts, "--out", out, "--steer", file,
                                             "--max-new-tokens", "6", "--backend", "cpu"])
            outputs.append(try ModelCommandTests.readLines(out))
        }
        #expect(outputs[0] == outputs[1])
        try SteeringCommandTests.fails(["generate", "--model", Self.gguf("llama-bf16.gguf"), "--prompts", prompts, "--out", dir.file("x.jsonl"),
                                        "--steer", steering, "--backend", "cpu"], containing: [steering])
    }
}
