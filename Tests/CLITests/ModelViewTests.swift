import Foundation
import Testing

/// Seeing what the model sees: `tiller inspect`, `tokenize --pieces` / `--render` and
/// `detokenize`, each checked against values the test works out itself (config.json and the
/// safetensors headers read here, transformers' chat renders, GPT-2's byte alphabet).
@Suite struct ModelViewTests {
    static let fixtures = ModelCommandTests.fixtures
    typealias Scratch = SteeringCommandTests.Scratch

    static func ok(_ arguments: [String], input: Data? = nil) throws -> TillerProcess.Result {
        let result = try TillerProcess.run(arguments, input: input)
        guard result.status == 0 else {
            throw SteeringCommandTests.Failure(description: "tiller \(arguments.joined(separator: " ")) exited with \(result.status): \(result.stderr)")
        }
        return result
    }

    static func json(_ path: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
    }

    /// transformers' render of one case of a chat fixture.
    static func transformersRender(family: String, name: String) throws -> (messages: [[String: String]], text: String) {
        let file = try json(fixtures.appendingPathComponent("chat/\(family)/expected.json").path)
        let cases = try #require(file["cases"] as? [[String: Any]])
        let found = try #require(cases.first { $0["name"] as? String == name }, "no case \(name)")
        return (try #require(found["messages"] as? [[String: String]]), try #require(found["expected"] as? String))
    }

    /// A model directory: a fixture checkpoint with the chat fixture's tokenizer_config.json of `family`.
    static func modelWithTemplate(_ architecture: String, family: String, in dir: Scratch) throws -> String {
        let path = dir.file("model-\(architecture)-\(family)")
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        for file in ["config.json", "model.safetensors"] {
            try FileManager.default.copyItem(atPath: fixtures.appendingPathComponent("models/\(architecture)/\(file)").path, toPath: path + "/" + file)
        }
        try FileManager.default.copyItem(atPath: fixtures.appendingPathComponent("chat/\(family)/tokenizer_config.json").path,
                                         toPath: path + "/tokenizer_config.json")
        return path
    }

    // MARK: inspect

    /// Every fixture checkpoint and the lab model: the JSON report against config.json and the
    /// safetensors header as read here.
    @Test(arguments: ["llama", "llama-bf16", "qwen2", "gemma2", "mistral", "qwen3", "gemma3", "lab"])
    func inspectReportsTheConfigAndTheHeaders(model name: String) throws {
        let path = name == "lab" ? SteeringCommandTests.labModel : Self.fixtures.appendingPathComponent("models/\(name)").path
        let report = try SteeringCommandTests.jsonObject(try Self.ok(["inspect", "--model", path, "--json"]).stdout)
        let config = try Self.json(path + "/config.json")
        let header = try SteeringCommandTests.Safetensors(path + "/model.safetensors").header

        for (key, configKey) in [("layers", "num_hidden_layers"), ("hidden_size", "hidden_size"), ("intermediate_size", "intermediate_size"),
                                 ("attention_heads", "num_attention_heads"), ("key_value_heads", "num_key_value_heads"),
                                 ("vocab_size", "vocab_size"), ("context", "max_position_embeddings")] {
            #expect(report[key] as? Int == config[configKey] as? Int, "\(name): \(key)")
        }
        let heads = try #require(config["num_attention_heads"] as? Int)
        #expect(report["head_dim"] as? Int == (config["head_dim"] as? Int ?? (config["hidden_size"] as! Int) / heads))
        #expect(report["architecture"] as? String == (config["architectures"] as? [String])?.first && report["supported"] as? Bool == true)
        // Gemma 3's rope_parameters are nested by layer type: the global layers' are `rope`, the
        // sliding layers' `sliding_rope`.
        let ropeParameters = try #require(config["rope_parameters"] as? [String: Any])
        let rope = ropeParameters["full_attention"] as? [String: Any] ?? ropeParameters
        let slidingRope = ropeParameters["sliding_attention"] as? [String: Any]
        #expect((report["rope"] as? [String: Any])?["theta"] as? Double == rope["rope_theta"] as? Double)
        #expect((report["rope"] as? [String: Any])?["type"] as? String == rope["rope_type"] as? String)
        #expect((report["rope"] as? [String: Any])?["factor"] as? Double == rope["factor"] as? Double, "\(name)")
        #expect((report["sliding_rope"] as? [String: Any])?["theta"] as? Double == slidingRope?["rope_theta"] as? Double, "\(name)")
        #expect(report["qk_norm"] as? Bool == header.keys.contains { $0.hasSuffix("self_attn.q_norm.weight") }, "\(name)")

        // Parameters: every tensor's elements, a tied output projection once (none is stored here).
        let tensors = header.filter { $0.key != "__metadata__" }.compactMap { $0.value as? [String: Any] }
        let tied = config["tie_word_embeddings"] as? Bool ?? false
        let counted = header.filter { $0.key != "__metadata__" && !(tied && $0.key == "lm_head.weight") }.compactMap { $0.value as? [String: Any] }
        let parameters = counted.map { ($0["shape"] as? [Int] ?? []).reduce(1, *) }.reduce(0, +)
        #expect(report["parameters"] as? Int == parameters, "\(name)")
        #expect(report["tensors"] as? Int == tensors.count && report["tied_embeddings"] as? Bool == tied)
        var dtypes: [String: Int] = [:]
        for t in tensors { dtypes[t["dtype"] as? String ?? "?", default: 0] += 1 }
        #expect(report["dtypes"] as? [String: Int] == dtypes, "\(name)")

        // Sliding windows: transformers 5's layer_types where given, else Mistral's window on every layer.
        let layers = try #require(config["num_hidden_layers"] as? Int)
        let window = config["sliding_window"] as? Int
        var windows: [Int?] = Array(repeating: nil, count: layers)
        if let types = config["layer_types"] as? [String] {
            windows = types.map { $0 == "sliding_attention" ? window : nil }
        } else if config["model_type"] as? String == "mistral" {
            windows = Array(repeating: window, count: layers)
        }
        let reported = (report["sliding_windows"] as? [Any])?.map { $0 as? Int }
        #expect(reported ?? Array(repeating: nil, count: layers) == windows, "\(name): \(String(describing: report["sliding_windows"]))")
        #expect(report["attention_softcap"] as? Double == config["attn_logit_softcapping"] as? Double)
        #expect(report["final_logit_softcap"] as? Double == config["final_logit_softcapping"] as? Double)

        // The lab model's template writes no system prompt of its own; the fixtures have no template.
        #expect(report["default_system_prompt"] is NSNull)
        #expect((report["chat_template"] is NSNull) == (name != "lab"))
        #expect(report["tokenizer"] as? Bool == (name == "lab"))

        // The table says the same in words.
        let table = try Self.ok(["inspect", "--model", path]).stdout
        #expect(table.contains("layers:") && table.contains("parameters:") && table.contains(String(parameters).suffix(3)), "\(table)")
        #expect(table.contains("sliding layers: theta") == (slidingRope != nil) && table.contains("q/k norms:") == (report["qk_norm"] as? Bool == true),
                "\(table)")
    }

    /// A ChatML template that writes "You are a helpful assistant." into a conversation without a
    /// system message (Qwen2's, as transformers renders it); Llama 3's writes none.
    @Test func inspectFindsTheDefaultSystemPrompt() throws {
        let dir = try Scratch()
        let qwen = try Self.modelWithTemplate("qwen2", family: "qwen2", in: dir)
        let render = try Self.transformersRender(family: "qwen2", name: "single_user/nogen").text
        // transformers' render of [user "Hello!"]: the system turn it wrote holds the default.
        let start = try #require(render.range(of: "<|im_start|>system\n")), end = try #require(render.range(of: "<|im_end|>"))
        let expected = String(render[start.upperBound..<end.lowerBound])
        let report = try SteeringCommandTests.jsonObject(try Self.ok(["inspect", "--model", qwen, "--json"]).stdout)
        #expect(report["default_system_prompt"] as? String == expected && !expected.isEmpty)
        #expect(try Self.ok(["inspect", "--model", qwen]).stdout.contains("default system prompt: \"\(expected)\""))

        let llama = try Self.modelWithTemplate("llama", family: "llama3", in: dir)
        let plain = try SteeringCommandTests.jsonObject(try Self.ok(["inspect", "--model", llama, "--json"]).stdout)
        #expect(plain["default_system_prompt"] is NSNull && plain["chat_template"] is String)
    }

    @Test func inspectBadInput() throws {
        let missing = "/nonexistent/tiller-model-\(UUID().uuidString)"
        try SteeringCommandTests.fails(["inspect", "--model", missing], containing: [missing])
        let dir = try Scratch()
        try "{\"hidden_size\": 64}".write(toFile: dir.file("config.json"), atomically: true, encoding: .utf8)
        try SteeringCommandTests.fails(["inspect", "--model", dir.path], containing: [dir.path, "model.safetensors"])

        // A tokenizer_config.json without a template is a model without one; a template that does
        // not parse is reported (the rest of the report still stands).
        let model = try ModelCommandTests.ModelDir()
        let config = model.file("tokenizer_config.json")
        try "{\"eos_token\": \"<|endoftext|>\"}".write(toFile: config, atomically: true, encoding: .utf8)
        let bare = try SteeringCommandTests.jsonObject(try Self.ok(["inspect", "--model", model.path, "--json"]).stdout)
        #expect(bare["chat_template"] is NSNull && bare["chat_template_error"] is NSNull && bare["tokenizer"] as? Bool == true)
        try "{\"chat_template\": \"{% for m in %}\"}".write(toFile: config, atomically: true, encoding: .utf8)
        let broken = try SteeringCommandTests.jsonObject(try Self.ok(["inspect", "--model", model.path, "--json"]).stdout)
        #expect((broken["chat_template_error"] as? String)?.contains(config) == true, "\(broken)")
        let table = try Self.ok(["inspect", "--model", model.path]).stdout
        #expect(table.split(separator: "\n").contains { $0.hasPrefix("chat template:") && $0.contains("unreadable: \(config)") }, "\(table)")
    }

    // MARK: tokenize --pieces / --render, detokenize

    /// Pieces are the byte-level symbols of the ids; mapped back to bytes through GPT-2's alphabet
    /// they are the text. detokenize gives the text back, from --ids or from tokenize's output on stdin.
    @Test func piecesAndDetokenizeRoundTrip() throws {
        let dir = try ModelCommandTests.ModelDir()
        let text = "Grüße, tiny world! 世界 \u{1F389}"
        let result = try Self.ok(["tokenize", "--model", dir.path, "--text", text, "--pieces"])
        let object = try SteeringCommandTests.jsonObject(result.stdout)
        let ids = try #require(object["ids"] as? [Int]), pieces = try #require(object["pieces"] as? [String])
        #expect(ids == ModelCommandTests.byteIDs(text, dir.vocabulary) && pieces.count == ids.count)
        let byteOf = Dictionary(uniqueKeysWithValues: ModelCommandTests.byteSymbols.enumerated().map { ($0.element, UInt8($0.offset)) })
        let bytes = pieces.joined().map { byteOf[String($0)] }
        #expect(bytes.allSatisfy { $0 != nil } && String(decoding: bytes.compactMap { $0 }, as: UTF8.self) == text)

        let back = try Self.ok(["detokenize", "--model", dir.path, "--ids", ids.map(String.init).joined(separator: ",")])
        #expect(try SteeringCommandTests.jsonObject(back.stdout)["text"] as? String == text)
        let plain = try Self.ok(["tokenize", "--model", dir.path, "--text", text]).stdout
        let piped = try Self.ok(["detokenize", "--model", dir.path], input: Data(plain.utf8))
        #expect(try SteeringCommandTests.jsonObject(piped.stdout)["text"] as? String == text)
        let list = try Self.ok(["detokenize", "--model", dir.path], input: Data("[\(ids.map(String.init).joined(separator: ", "))]".utf8))
        #expect(try SteeringCommandTests.jsonObject(list.stdout)["text"] as? String == text)

        // A chat prompt: the template's BOS is a special token, kept or skipped.
        let chat = try SteeringCommandTests.jsonObject(try Self.ok(["tokenize", "--model", dir.path, "--text", "hi", "--chat"]).stdout)
        let chatIDs = try #require(chat["ids"] as? [Int]).map(String.init).joined(separator: " ")
        let rendered = "<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>"
        #expect(try SteeringCommandTests.jsonObject(try Self.ok(["detokenize", "--model", dir.path, "--ids", chatIDs]).stdout)["text"] as? String
                == "<|endoftext|>" + rendered)
        #expect(try SteeringCommandTests.jsonObject(try Self.ok(["detokenize", "--model", dir.path, "--ids", chatIDs, "--skip-special-tokens"]).stdout)["text"] as? String
                == rendered)
    }

    /// --render prints exactly what transformers' apply_chat_template renders (the default system
    /// prompt included), and --chat encodes exactly that text.
    @Test func renderMatchesTransformers() throws {
        let dir = try Scratch()
        let qwen = try Self.modelWithTemplate("qwen2", family: "qwen2", in: dir)
        let (messages, expected) = try Self.transformersRender(family: "qwen2", name: "single_user/gen")
        let user = try #require(messages.first?["content"])
        let rendered = try Self.ok(["tokenize", "--model", qwen, "--text", user, "--render"]).stdout
        #expect(rendered == expected)

        let model = try ModelCommandTests.ModelDir()
        let text = try Self.ok(["tokenize", "--model", model.path, "--text", "hi there", "--render"]).stdout
        #expect(text == "<|endoftext|><|start_header_id|>user<|end_header_id|>\n\nhi there<|eot_id|>")
        let ids = try SteeringCommandTests.jsonObject(try Self.ok(["tokenize", "--model", model.path, "--text", "hi there", "--chat"]).stdout)["ids"] as? [Int]
        #expect(ids == [0] + ModelCommandTests.byteIDs(String(text.dropFirst("<|endoftext|>".count)), model.vocabulary))
    }

    @Test func detokenizeBadInput() throws {
        let dir = try ModelCommandTests.ModelDir()
        try SteeringCommandTests.fails(["detokenize", "--model", dir.path, "--ids", "1,999"], containing: ["999", "vocabulary"])
        try SteeringCommandTests.fails(["detokenize", "--model", dir.path, "--ids", "1,x"], containing: ["\"x\"", "--ids"])
        try SteeringCommandTests.fails(["detokenize", "--model", dir.path, "--ids=-3"], containing: ["\"-3\""])
        try SteeringCommandTests.fails(["detokenize", "--model", dir.path, "--ids", "[1, true]"], containing: ["true is not a token id"])
        let empty = try TillerProcess.run(["detokenize", "--model", dir.path], input: Data())
        ModelCommandTests.expectOneLineError(empty, containing: ["standard input", "no token ids"])
        try SteeringCommandTests.fails(["tokenize", "--model", dir.path, "--text", "x", "--render", "--pieces"], containing: ["--pieces"])
    }
}
