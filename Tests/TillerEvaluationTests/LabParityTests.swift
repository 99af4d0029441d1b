import Foundation
import Testing
import TillerCore
import TillerCPU
import TillerLab
import TillerModels
@testable import TillerEvaluation

/// The built-in lab model in Tiller against transformers. scripts/lab/make_lab_fixtures.py renders
/// held-out lab prompts with the model's chat template, tokenizes them and decodes greedily in
/// PyTorch (Tests/Fixtures/lab/greedy.json); Tiller must render the same text, give the same prompt
/// ids and the same continuation ids. The script picks prompts whose every step has a clear argmax
/// (min_margin), so float rounding between the implementations cannot excuse a difference.
@Suite struct LabParityTests {
    static let fixturePath = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/lab/greedy.json").path
    static var fixtureExists: Bool { FileManager.default.fileExists(atPath: fixturePath) }

    struct Fixture: Decodable {
        struct Case: Decodable {
            let name: String
            let messages: [LabMessage]
            let prompt_text: String
            let prompt_ids: [Int32]
            /// The new ids, ending with the EOS id when the model stopped there.
            let continuation_ids: [Int32]
            /// Per step, the gap between the two largest logits.
            let margins: [Double]
        }
        let model_safetensors_sha256: String
        let tokenizer_json_sha256: String
        let max_new_tokens: Int
        let eos_token_id: Int32
        let cases: [Case]
    }

    @Test func theSHA256IsRight() {
        #expect(SHA256.hex(Data("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hex(Data()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex(Data(repeating: 0x61, count: 1000)).hasPrefix("41edece42d63e8d9bf515a9ba6932e1c"))
    }

    @Test(.enabled(if: LabParityTests.fixtureExists,
                   "Tests/Fixtures/lab/greedy.json is absent: run scripts/lab/make_lab_fixtures.py to write it"))
    func promptAndGreedyIDsMatchTransformers() throws {
        let fixture = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: URL(fileURLWithPath: Self.fixturePath)))
        try #require(!fixture.cases.isEmpty)
        // The fixture was made from the committed model, not whatever TILLER_LAB_MODEL points at.
        let directory = try BuiltInModel.locate(environment: [:])
        for (file, digest) in [("model.safetensors", fixture.model_safetensors_sha256), ("tokenizer.json", fixture.tokenizer_json_sha256)] {
            let actual = SHA256.hex(try Data(contentsOf: URL(fileURLWithPath: directory).appendingPathComponent(file)))
            try #require(actual == digest, "the fixture is stale: \(file) changed; rerun scripts/lab/make_lab_fixtures.py")
        }
        let evaluation = try LabEvaluation.load(directory: directory, backend: CPUBackend())
        // One sequence at a time, as transformers decoded them; EOS is the fixture's.
        let generator = try Generator(model: evaluation.model, batchSize: 1, eosTokenIDs: [fixture.eos_token_id])

        for item in fixture.cases {
            let chat = item.messages.map { ChatMessage(role: $0.role, content: $0.content) }
            #expect(try evaluation.template.render(chat, addGenerationPrompt: true) == item.prompt_text, "\(item.name): prompt text")
            #expect(try evaluation.promptIDs(item.messages) == item.prompt_ids, "\(item.name): prompt ids")
        }
        let options = GenerationOptions(maxNewTokens: fixture.max_new_tokens, temperature: 0)
        let results = try generator.generate(fixture.cases.map { GenerationRequest(promptIDs: $0.prompt_ids, options: options) })
        for (item, result) in zip(fixture.cases, results) {
            let step = zip(result.ids, item.continuation_ids).prefix { $0 == $1 }.count
            let margin = step < item.margins.count ? String(item.margins[step]) : "-"
            #expect(result.ids == item.continuation_ids,
                    "\(item.name): greedy ids differ from step \(step) (transformers' top-2 logit margin there: \(margin))")
        }
    }
}
