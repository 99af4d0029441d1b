import Foundation
import Testing
import TillerCore
import TillerModels

/// Bad model directories give one-line errors naming the file and what is wrong.
@Suite struct ModelLoadingErrorTests {
    /// A copy of a fixture (llama unless named) whose config.json is rewritten by `edit`.
    func model(_ fixture: String = "llama", editing edit: (inout [String: Any]) -> Void) throws -> String {
        let source = ModelFixtures.directory(fixture)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tiller-model-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: source + "/model.safetensors", toPath: directory + "/model.safetensors")
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: source + "/config.json"))) as! [String: Any]
        edit(&config)
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: directory + "/config.json"))
        return directory
    }

    func loadError(_ directory: String) -> String {
        do {
            _ = try TransformerModel.load(directory: directory, backend: ReferenceBackend())
            return "loaded"
        } catch {
            return "\(error)"
        }
    }

    @Test func unknownArchitectureListsTheSupportedOnes() throws {
        let dir = try model { $0["architectures"] = ["GPTNeoXForCausalLM"] }
        let message = loadError(dir)
        #expect(message.contains("GPTNeoXForCausalLM") && message.contains("LlamaForCausalLM") && message.contains("Gemma2ForCausalLM"), "\(message)")
        #expect(message.contains("config.json"))
    }

    @Test func configContradictingTheWeightsNamesTheTensor() throws {
        let dir = try model { $0["intermediate_size"] = 96 }
        let message = loadError(dir)
        #expect(message.contains("gate_proj") && message.contains("model.safetensors"), "\(message)")
    }

    @Test func missingFieldAndBrokenJSON() throws {
        let dir = try model { $0.removeValue(forKey: "hidden_size") }
        #expect(loadError(dir).contains("hidden_size"))
        try Data("{ not json".utf8).write(to: URL(fileURLWithPath: dir + "/config.json"))
        #expect(loadError(dir).contains("config.json"))
    }

    @Test func impossibleHeadCounts() throws {
        let dir = try model { $0["num_key_value_heads"] = 3 }
        let message = loadError(dir)
        #expect(message.contains("num_key_value_heads"), "\(message)")
    }

    @Test func missingTensorIsNamed() throws {
        let dir = try model { $0["num_hidden_layers"] = 3 }
        let message = loadError(dir)
        #expect(message.contains("model.layers.2"), "\(message)")
    }

    @Test func tokensOutsideTheVocabularyAreRejected() throws {
        let model = try TransformerModel.load(directory: ModelFixtures.directory("llama"), backend: ReferenceBackend())
        let cache = try model.makeCache(batchSize: 1, capacity: 8)
        #expect(throws: TillerError.self) { try model.forward([[1, 999]], cache: cache) }
        #expect(throws: TillerError.self) { try model.forward([[Int32](repeating: 1, count: 9)], cache: cache) }
    }
}
