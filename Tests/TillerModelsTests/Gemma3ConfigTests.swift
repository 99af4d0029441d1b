import Foundation
import Testing
import TillerCore
import TillerCPU
import TillerModels

/// Gemma 3's two config formats and its refusals. The parity fixture's config.json is what
/// transformers 5 writes (rope_parameters nested by layer type, layer_types); most Hub checkpoints
/// still carry transformers 4's keys (rope_theta, rope_scaling, rope_local_base_freq,
/// sliding_window_pattern). Both must give the model transformers computed.
extension ModelLoadingErrorTests {
    @Test func gemma3TransformersFourConfigGivesTheSameLogits() throws {
        let directory = try model("gemma3") { c in
            let nested = c.removeValue(forKey: "rope_parameters") as! [String: [String: Any]]
            c.removeValue(forKey: "layer_types")
            c.removeValue(forKey: "_sliding_window_pattern")
            c["rope_theta"] = nested["full_attention"]!["rope_theta"]
            c["rope_scaling"] = ["rope_type": nested["full_attention"]!["rope_type"]!, "factor": nested["full_attention"]!["factor"]!]
            c["rope_local_base_freq"] = nested["sliding_attention"]!["rope_theta"]
            c["sliding_window_pattern"] = 2  // two layers: layer 0 sliding, layer 1 global
        }
        let reference = try ModelFixtures.reference("gemma3")
        let ids = try reference.ints("ids"), expected = try reference.floats("logits")
        let backend = CPUBackend()
        let loaded = try TransformerModel.load(directory: directory, backend: backend)
        let output = try loaded.forward([ids], cache: try loaded.makeCache(batchSize: 1, capacity: 32), logits: .all)
        let error = ModelFixtures.relativeError(try backend.floats(output.logits), expected)
        #expect(error <= ModelParityTests.tolerance, "relative error \(error)")
    }

    @Test func gemma3SettingsTillerCannotRunAreNamed() throws {
        let cases: [(String, (inout [String: Any]) -> Void)] = [
            ("use_bidirectional_attention", { $0["use_bidirectional_attention"] = true }),
            ("rope_parameters.full_attention.factor", { c in
                var p = c["rope_parameters"] as! [String: [String: Any]]; p["full_attention"]!["factor"] = 0; c["rope_parameters"] = p }),
            ("rope_parameters.sliding_attention.rope_theta", { c in
                var p = c["rope_parameters"] as! [String: [String: Any]]; p["sliding_attention"]!["rope_theta"] = -1; c["rope_parameters"] = p }),
            ("rope_parameters.full_attention", { c in
                var p = c["rope_parameters"] as! [String: [String: Any]]; p["full_attention"]!["rope_type"] = "yarn"; c["rope_parameters"] = p }),
            ("sliding_window_pattern", { $0["sliding_window_pattern"] = 0 }),
            ("rope_local_base_freq", { $0["rope_local_base_freq"] = 0 }),
        ]
        for (key, edit) in cases {
            let message = loadError(try model("gemma3", editing: edit))
            #expect(message.contains("config.json") && message.contains(key.components(separatedBy: ".").last!) && !message.contains("\n"),
                    "\(key): \(message)")
        }
        #expect(loadError(try model("gemma3") { _ in }) == "loaded")
    }

    /// A checkpoint without the q/k norm weights its architecture needs is refused, naming the tensor.
    @Test func qwen3WithoutHeadNormsNamesTheTensor() throws {
        let directory = try model("qwen3") { _ in }
        let source = try SafetensorsFile(path: ModelFixtures.directory("qwen3") + "/model.safetensors")
        var tensors: [SafetensorsWriter.Entry] = []
        for name in source.entries.keys.sorted() where name != "model.layers.1.self_attn.k_norm.weight" {
            let entry = try source.entry(name)
            let raw = source.bytes(entry)
            tensors.append(.init(name: name, shape: entry.shape, values: (0..<(raw.count / 4)).map { raw.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) }))
        }
        try FileManager.default.removeItem(atPath: directory + "/model.safetensors")
        try SafetensorsWriter.write(tensors, to: directory + "/model.safetensors")
        let message = loadError(directory)
        #expect(message.contains("model.layers.1.self_attn.k_norm.weight") && !message.contains("\n"), "\(message)")
    }
}

/// Gemma 3's multimodal checkpoints (Gemma3ForConditionalGeneration): the text model's config in
/// text_config, its tensors under language_model.model. beside a vision tower's, laid out as
/// transformers 5 saves them. On text the model is its text model: the fixture's logits.
extension ModelLoadingErrorTests {
    @Test func gemma3MultimodalCheckpointRunsItsTextModel() throws {
        let directory = try model("gemma3") { c in
            var text = c
            text.removeValue(forKey: "architectures")
            c = ["architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3", "text_config": text,
                 "vision_config": ["hidden_size": 16, "model_type": "siglip_vision_model"], "mm_tokens_per_image": 4,
                 "tie_word_embeddings": true]
        }
        let source = try SafetensorsFile(path: ModelFixtures.directory("gemma3") + "/model.safetensors")
        var tensors: [SafetensorsWriter.Entry] = [
            .init(name: "multi_modal_projector.mm_input_projection_weight", shape: [16, 64], values: (0..<1024).map { Float($0 % 7) * 0.01 }),
            .init(name: "vision_tower.vision_model.post_layernorm.weight", shape: [16], values: Array(repeating: 1, count: 16)),
        ]
        for name in source.entries.keys.sorted() {
            let entry = try source.entry(name)
            let raw = source.bytes(entry)
            tensors.append(.init(name: "language_model." + name, shape: entry.shape,
                                 values: (0..<(raw.count / 4)).map { raw.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) }))
        }
        try FileManager.default.removeItem(atPath: directory + "/model.safetensors")
        try SafetensorsWriter.write(tensors, to: directory + "/model.safetensors")

        let reference = try ModelFixtures.reference("gemma3")
        let ids = try reference.ints("ids"), expected = try reference.floats("logits")
        let backend = CPUBackend()
        let loaded = try TransformerModel.load(directory: directory, backend: backend)
        #expect(loaded.architecture == .gemma3 && loaded.config.architectures == ["Gemma3ForConditionalGeneration"])
        let output = try loaded.forward([ids], cache: try loaded.makeCache(batchSize: 1, capacity: 32), logits: .all)
        let error = ModelFixtures.relativeError(try backend.floats(output.logits), expected)
        #expect(error <= ModelParityTests.tolerance, "relative error \(error)")

        // A text_config missing a size takes transformers' default, which these weights contradict:
        // the loader names the tensor whose shape disagrees.
        let edited = directory + "/config.json"
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: edited))) as! [String: Any]
        var text = config["text_config"] as! [String: Any]
        text.removeValue(forKey: "intermediate_size")
        config["text_config"] = text
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: edited))
        let message = loadError(directory)
        #expect(message.contains("language_model.model.layers.0.mlp") && !message.contains("\n"), "\(message)")
    }
}

extension ModelLoadingErrorTests {
    /// Rope parameters per layer type in a family that has one rope would be ignored: refused.
    @Test func nestedRopeParametersOutsideGemma3AreRefused() throws {
        let message = loadError(try model { c in
            c["rope_parameters"] = ["sliding_attention": ["rope_type": "default", "rope_theta": 10_000.0],
                                    "full_attention": ["rope_type": "default", "rope_theta": 500_000.0]]
        })
        #expect(message.contains("config.json") && message.contains("rope_parameters") && !message.contains("\n"), "\(message)")
    }
}
