import Foundation
import Testing

/// `tiller tokenize`, `logits` and `generate` run as a user runs them, on a fixture model.
///
/// The fixture checkpoints (Tests/Fixtures/models) have a 256-token vocabulary and no tokenizer,
/// and every fixture tokenizer has more than 256 ids. So each test builds a model directory of its
/// own: the llama fixture's config.json and model.safetensors plus the gpt2 fixture tokenizer cut
/// to its ids below 256 (<|endoftext|> = 0 and 255 byte-level symbols, no merges: one token per
/// byte), so every id the model can produce decodes.
@Suite struct ModelCommandTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")
    static let chatTemplate = "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n{{ m['content'] }}<|eot_id|>{% endfor %}"

    /// A temporary model directory; removed when the returned object goes away.
    final class ModelDir {
        let path: String
        /// The byte-level vocabulary kept (symbol -> id).
        let vocabulary: [String: Int]

        init(architecture: String = "llama", tokenizer: Bool = true) throws {
            let fm = FileManager.default
            path = fm.temporaryDirectory.appendingPathComponent("tiller-model-\(UUID().uuidString)").path
            try fm.createDirectory(atPath: path, withIntermediateDirectories: true)
            let source = fixtures.appendingPathComponent("models/\(architecture)")
            for file in ["config.json", "model.safetensors"] {
                try fm.copyItem(atPath: source.appendingPathComponent(file).path, toPath: path + "/" + file)
            }
            let data = try Data(contentsOf: fixtures.appendingPathComponent("tokenizers/gpt2/tokenizer.json"))
            var json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
            var model = try #require(json["model"] as? [String: Any])
            let vocab = try #require(model["vocab"] as? [String: Int]).filter { $0.value < 256 }
            model["vocab"] = vocab
            model["merges"] = [Any]()
            json["model"] = model
            json["added_tokens"] = try #require(json["added_tokens"] as? [[String: Any]]).filter { ($0["id"] as? Int ?? 999) < 256 }
            vocabulary = vocab
            guard tokenizer else { return }
            try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: path + "/tokenizer.json"))
            let config: [String: Any] = ["bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "chat_template": chatTemplate]
            try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: path + "/tokenizer_config.json"))
        }

        func file(_ name: String) -> String { path + "/" + name }

        deinit { try? FileManager.default.removeItem(atPath: path) }
    }

    /// GPT-2's byte-level alphabet: byte b is the symbol bytes_to_unicode() gives it.
    static let byteSymbols: [String] = {
        var printable = Array(0x21...0x7E) + Array(0xA1...0xAC) + Array(0xAE...0xFF)
        var symbols = [Int](repeating: 0, count: 256)
        for b in printable { symbols[b] = b }
        var next = 256
        for b in 0..<256 where !printable.contains(b) {
            symbols[b] = next
            next += 1
            printable.append(b)
        }
        return symbols.map { String(UnicodeScalar(UInt32($0))!) }
    }()

    /// The ids this tokenizer gives a text without special tokens: one per UTF-8 byte.
    static func byteIDs(_ text: String, _ vocabulary: [String: Int]) -> [Int] {
        text.utf8.map { vocabulary[byteSymbols[Int($0)]] ?? -1 }
    }

    static func errorLines(_ result: TillerProcess.Result) -> [Substring] {
        result.stderr.split(separator: "\n").filter { $0.hasPrefix("Error:") }
    }

    static func expectOneLineError(_ result: TillerProcess.Result, containing words: [String],
                                   sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(result.status != 0, sourceLocation: sourceLocation)
        let errors = errorLines(result)
        #expect(errors.count == 1, "\(result.stderr)", sourceLocation: sourceLocation)
        for word in words {
            #expect(errors.first?.contains(word) == true, "\(word) not in \(result.stderr)", sourceLocation: sourceLocation)
        }
        #expect(!result.stderr.contains("Fatal error") && !result.stderr.contains("crashed"), sourceLocation: sourceLocation)
    }

    struct IDs: Decodable { let ids: [Int] }

    struct Line: Decodable, Equatable {
        let completion: String
        let ids: [Int32]
        let stop_reason: String
    }

    static func readLines(_ path: String) throws -> [Line] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        return try text.split(separator: "\n").map { try JSONDecoder().decode(Line.self, from: Data($0.utf8)) }
    }

    static func write(_ lines: [String], to path: String) throws {
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
    }

    // MARK: tokenize

    @Test func tokenizePrintsIDs() throws {
        let dir = try ModelDir()
        let text = "Hello, tiny world!"
        let result = try TillerProcess.run(["tokenize", "--model", dir.path, "--text", text])
        #expect(result.status == 0, "\(result.stderr)")
        let ids = try JSONDecoder().decode(IDs.self, from: Data(result.stdout.utf8)).ids
        #expect(ids == Self.byteIDs(text, dir.vocabulary))
        #expect(result.stdout.hasPrefix("{\"ids\":["))
    }

    /// --chat renders one user message through the template and adds no special tokens again:
    /// the ids are the template's BOS (an added token) once, then the rendered text byte by byte.
    @Test func tokenizeChat() throws {
        let dir = try ModelDir()
        let result = try TillerProcess.run(["tokenize", "--model", dir.path, "--text", "hi there", "--chat"])
        #expect(result.status == 0, "\(result.stderr)")
        let ids = try JSONDecoder().decode(IDs.self, from: Data(result.stdout.utf8)).ids
        let rendered = "<|start_header_id|>user<|end_header_id|>\n\nhi there<|eot_id|>"
        #expect(ids == [0] + Self.byteIDs(rendered, dir.vocabulary), "the template's BOS once, then the text byte by byte")
    }

    @Test func tokenizeErrorsNameThePath() throws {
        let missing = "/nonexistent/tiller-model-\(UUID().uuidString)"
        Self.expectOneLineError(try TillerProcess.run(["tokenize", "--model", missing, "--text", "x"]), containing: [missing])
        let dir = try ModelDir(tokenizer: false)
        Self.expectOneLineError(try TillerProcess.run(["tokenize", "--model", dir.path, "--text", "x"]),
                                containing: [dir.file("tokenizer.json")])
    }

    // MARK: logits

    /// Reads the F32 tensors of a safetensors file: name -> (shape, values).
    static func readSafetensors(_ path: String) throws -> [String: (shape: [Int], values: [Float])] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let bytes = [UInt8](data)
        try #require(bytes.count >= 8)
        let headerLength = (0..<8).reduce(0) { $0 | Int(bytes[$1]) << (8 * $1) }
        try #require(8 + headerLength <= bytes.count)
        let header = try #require(try JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + headerLength)])) as? [String: Any])
        var tensors: [String: (shape: [Int], values: [Float])] = [:]
        for (name, value) in header where name != "__metadata__" {
            let entry = try #require(value as? [String: Any])
            let offsets = try #require(entry["data_offsets"] as? [Int])
            let shape = try #require(entry["shape"] as? [Int])
            #expect(entry["dtype"] as? String == "F32" || entry["dtype"] as? String == "I32")
            let start = 8 + headerLength + offsets[0], end = 8 + headerLength + offsets[1]
            try #require(end <= bytes.count && (end - start) == shape.reduce(1, *) * 4)
            let values = stride(from: start, to: end, by: 4).map { i -> Float in
                let raw = UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24
                return entry["dtype"] as? String == "I32" ? Float(Int32(bitPattern: raw)) : Float(bitPattern: raw)
            }
            tensors[name] = (shape, values)
        }
        return tensors
    }

    @Test(arguments: ["llama", "gemma2"])
    func logitsMatchTheReference(architecture: String) throws {
        let dir = try ModelDir(architecture: architecture, tokenizer: false)
        let reference = try Self.readSafetensors(Self.fixtures.appendingPathComponent("models/\(architecture)/reference.safetensors").path)
        let ids = try #require(reference["ids"]).values.map { Int($0) }
        let want = try #require(reference["logits"])
        let scratch = try SteeringCommandTests.Scratch()  // outputs may not go into the model directory
        let out = scratch.file("logits.safetensors")
        let result = try TillerProcess.run(["logits", "--model", dir.path, "--ids", ids.map(String.init).joined(separator: ","),
                                            "--out", out, "--backend", "cpu"])
        #expect(result.status == 0, "\(result.stderr)")
        let written = try Self.readSafetensors(out)
        #expect(Array(written.keys) == ["logits"])
        let got = try #require(written["logits"])
        #expect(got.shape == [ids.count, 256])
        #expect(got.shape == want.shape)
        let scale = want.values.map(abs).max()!
        let error = zip(got.values, want.values).map { abs($0 - $1) }.max()! / scale
        #expect(error <= 1e-4, "relative error \(error)")
    }

    @Test func logitsBadInput() throws {
        let dir = try ModelDir(tokenizer: false), scratch = try SteeringCommandTests.Scratch()
        let out = scratch.file("l.safetensors")
        Self.expectOneLineError(try TillerProcess.run(["logits", "--model", dir.path, "--ids", "1,x,3", "--out", out, "--backend", "cpu"]),
                                containing: ["\"x\""])
        Self.expectOneLineError(try TillerProcess.run(["logits", "--model", dir.path, "--ids", "1,256", "--out", out, "--backend", "cpu"]),
                                containing: ["256"])
        let missing = "/nonexistent/tiller-model-\(UUID().uuidString)"
        Self.expectOneLineError(try TillerProcess.run(["logits", "--model", missing, "--ids", "1", "--out", out, "--backend", "cpu"]),
                                containing: [missing])
        try FileManager.default.removeItem(atPath: dir.file("model.safetensors"))
        Self.expectOneLineError(try TillerProcess.run(["logits", "--model", dir.path, "--ids", "1", "--out", out, "--backend", "cpu"]),
                                containing: [dir.path])
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    // MARK: generate

    struct Greedy: Decodable {
        struct Case: Decodable { let prompt_ids: [Int32]; let greedy_ids: [Int32] }
        let max_new_tokens: Int
        let cases: [Case]
    }

    /// Prompts of different lengths (text, ids, chat messages), batched two at a time: one output line per
    /// input line, in input order; the id prompts reproduce transformers' greedy continuations;
    /// every line is what the prompt gives alone.
    @Test func generateWritesLinesInOrder() throws {
        let dir = try ModelDir()
        let greedy = try JSONDecoder().decode(Greedy.self, from: Data(contentsOf: Self.fixtures.appendingPathComponent("models/llama/greedy.json")))
        let input = [
            "{\"prompt\": \"Hello\"}",
            "{\"ids\": \(greedy.cases[0].prompt_ids)}",
            "{\"prompt\": \"A much longer prompt, with punctuation and / slashes.\"}",
            "",
            "{\"prompt\": \"x\"}",
            "{\"ids\": \(greedy.cases[1].prompt_ids)}",
            "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}",
        ]
        let scratch = try SteeringCommandTests.Scratch()  // outputs may not go into the model directory
        let inPath = dir.file("in.jsonl"), outPath = scratch.file("out.jsonl")
        try Self.write(input, to: inPath)
        let result = try TillerProcess.run(["generate", "--model", dir.path, "--prompts", inPath, "--out", outPath,
                                            "--max-new-tokens", "\(greedy.max_new_tokens)", "--batch-size", "2", "--backend", "cpu"])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = try Self.readLines(outPath)
        #expect(lines.count == 6)
        guard lines.count == 6 else { return }
        #expect(lines[1].ids == greedy.cases[0].greedy_ids)
        #expect(lines[4].ids == greedy.cases[1].greedy_ids)
        for line in lines {
            #expect(["eos", "max_tokens"].contains(line.stop_reason))
            #expect(line.stop_reason == "eos" || line.ids.count == greedy.max_new_tokens)
        }
        // The summary line, and no progress bar when stderr is not a terminal.
        let summary = result.stderr.split(separator: "\n").filter { $0.hasPrefix("tiller: 6 prompts") }
        #expect(summary.count == 1 && summary[0].contains("tok/s"), "\(result.stderr)")
        #expect(!result.stderr.contains("["), "\(result.stderr)")

        // Each prompt alone gives the same line.
        for (i, text) in input.filter({ !$0.isEmpty }).enumerated() {
            try Self.write([text], to: inPath)
            let alone = try TillerProcess.run(["generate", "--model", dir.path, "--prompts", inPath, "--out", outPath,
                                               "--max-new-tokens", "\(greedy.max_new_tokens)", "--backend", "cpu"])
            #expect(alone.status == 0, "\(alone.stderr)")
            #expect(try Self.readLines(outPath) == [lines[i]], "prompt \(i)")
        }
    }

    /// Seeded sampling with stop strings and a progress bar: the batch does not change a line,
    /// stop strings are cut from the completion.
    @Test func generateSamplingIsBatchInvariant() throws {
        let dir = try ModelDir()
        let scratch = try SteeringCommandTests.Scratch()  // outputs may not go into the model directory
        let inPath = dir.file("in.jsonl"), outPath = scratch.file("out.jsonl")
        let prompts = ["{\"prompt\": \"Once upon a time\"}", "{\"prompt\": \"Hi\"}", "{\"prompt\": \"The quick brown fox jumps\"}"]
        let options = ["--max-new-tokens", "16", "--temperature", "1.2", "--top-k", "50", "--top-p", "0.95", "--seed", "42", "--backend", "cpu"]
        try Self.write(prompts, to: inPath)
        let batched = try TillerProcess.run(["generate", "--model", dir.path, "--prompts", inPath, "--out", outPath,
                                             "--batch-size", "3", "--progress"] + options)
        #expect(batched.status == 0, "\(batched.stderr)")
        #expect(batched.stderr.contains("tok/s"))
        let lines = try Self.readLines(outPath)
        #expect(lines.count == 3)
        for (i, prompt) in prompts.enumerated() {
            try Self.write([prompt], to: inPath)
            #expect(try TillerProcess.run(["generate", "--model", dir.path, "--prompts", inPath, "--out", outPath] + options).status == 0)
            #expect(try Self.readLines(outPath) == [lines[i]], "prompt \(i)")
        }

        // A line's "seed" overrides --seed: the same seed repeats the line, another one changes it.
        try Self.write([prompts[0], "{\"prompt\": \"Once upon a time\", \"seed\": 42}", "{\"prompt\": \"Once upon a time\", \"seed\": 7}"], to: inPath)
        #expect(try TillerProcess.run(["generate", "--model", dir.path, "--prompts", inPath, "--out", outPath, "--batch-size", "2"] + options).status == 0)
        let seeded = try Self.readLines(outPath)
        #expect(seeded.count == 3 && seeded[0] == lines[0] && seeded[1] == lines[0] && seeded[2] != lines[0])

        // A stop string taken from a completion (a printable ASCII character past its start) cuts it
        // before its first occurrence.
        var picked: (index: Int, stop: String)?
        for (i, line) in lines.enumerated() where picked == nil {
            if let c = line.completion.dropFirst(2).first(where: { $0.isASCII && ("!"..."~").contains($0) }) {
                picked = (i, String(c))
            }
        }
        let (index, stop) = try #require(picked, "no printable ASCII in \(lines)")
        try Self.write([prompts[index]], to: inPath)
        let cut = try TillerProcess.run(["generate", "--model", dir.path, "--prompts", inPath, "--out", outPath, "--stop", stop] + options)
        #expect(cut.status == 0, "\(cut.stderr)")
        let stopped = try Self.readLines(outPath)
        let full = lines[index].completion
        let expected = String(full[..<full.firstIndex(of: Character(stop))!])
        #expect(stopped.count == 1 && stopped[0].stop_reason == "stop_string", "\(stopped)")
        #expect(stopped.first?.completion == expected, "stop \(stop) in \(full)")
        #expect(stopped.first.map { lines[index].ids.starts(with: $0.ids) } == true)
    }

    @Test func generateRejectsMalformedJSONL() throws {
        let dir = try ModelDir()
        let scratch = try SteeringCommandTests.Scratch()  // outputs may not go into the model directory
        let inPath = dir.file("in.jsonl"), outPath = scratch.file("out.jsonl")
        let cases: [([String], Int, String)] = [
            (["{\"prompt\": \"ok\"}", "{\"prompt\": \"ok\"}", "{not json"], 3, "JSON"),
            (["{\"prompt\": \"ok\"}", "{\"text\": \"wrong key\"}"], 2, "prompt"),
            (["[1, 2]"], 1, "object"),
            (["{\"prompt\": 5}"], 1, "prompt"),
            (["{\"messages\": [{\"role\": \"user\"}]}"], 1, "messages"),
            (["{\"prompt\": \"a\", \"messages\": []}"], 1, "both"),
            (["{\"ids\": [1, 999]}"], 1, "999"),
            (["{\"prompt\": \"ok\"}", "{\"prompt\": \"ok\", \"seed\": \"x\"}"], 2, "seed"),
            (["{\"prompt\": \"ok\", \"seed\": -1}"], 1, "seed"),
        ]
        for (lines, number, word) in cases {
            try Self.write(lines, to: inPath)
            let result = try TillerProcess.run(["generate", "--model", dir.path, "--prompts", inPath, "--out", outPath, "--backend", "cpu"])
            Self.expectOneLineError(result, containing: ["in.jsonl:\(number):", word])
        }
        let missing = dir.file("missing.jsonl")
        Self.expectOneLineError(try TillerProcess.run(["generate", "--model", dir.path, "--prompts", missing, "--out", outPath]),
                                containing: [missing])
        let noModel = "/nonexistent/tiller-model-\(UUID().uuidString)"
        try Self.write(["{\"prompt\": \"ok\"}"], to: inPath)
        Self.expectOneLineError(try TillerProcess.run(["generate", "--model", noModel, "--prompts", inPath, "--out", outPath]),
                                containing: [noModel])
    }
}
