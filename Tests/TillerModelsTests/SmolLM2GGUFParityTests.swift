import Foundation
import Testing
import TillerCore
import TillerCPU
@testable import TillerModels

/// SmolLM2-135M-Instruct's GGUF file (Q4_1, dequantized to f32) against transformers' GGUF loader
/// (scripts/fixtures/make_smollm2_gguf_parity.py): the chat prompts tokenize to transformers' ids,
/// the logits agree within 1e-3 relative and the greedy continuations are identical, on the CPU and
/// (one prompt, one pass) on Vulkan. Skipped when the model is not in Tiller's model cache.
@Suite(.serialized, .enabled(if: ModelCache.cached(ModelCache.smolLM2FileName) != nil,
                             "SmolLM2-135M-Instruct.Q4_1.gguf is not in the model cache (see scripts/fixtures/make_smollm2_gguf_parity.py)"))
struct SmolLM2GGUFParityTests {
    static let tolerance: Float = 1e-3

    struct Prompt {
        let ids: [Int32]
        let topIDs: [Int32], topLogits: [Float], lastLogits: [Float], greedy: [Int32]
        let messages: [ChatMessage]
    }

    static func prompts() throws -> [Prompt] {
        let file = try SafetensorsFile(path: GGUFModelTests.path("smollm2-parity.safetensors"))
        func raw(_ name: String) throws -> [UInt32] {
            let bytes = file.bytes(try file.entry(name))
            return (0..<(bytes.count / 4)).map { bytes.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self) }
        }
        let meta = try JSONSerialization.jsonObject(with: Data(try #require(file.metadata["fixture"]).utf8)) as? [String: Any]
        let list = try #require(meta?["prompts"] as? [[String: Any]])
        return try list.indices.map { i in
            let messages = (list[i]["messages"] as? [[String: String]] ?? []).map { ChatMessage(role: $0["role"]!, content: $0["content"]!) }
            return Prompt(ids: try raw("p\(i).ids").map { Int32(bitPattern: $0) },
                          topIDs: try raw("p\(i).topk_ids").map { Int32(bitPattern: $0) },
                          topLogits: try raw("p\(i).topk_logits").map(Float.init(bitPattern:)),
                          lastLogits: try raw("p\(i).last_logits").map(Float.init(bitPattern:)),
                          greedy: try raw("p\(i).greedy").map { Int32(bitPattern: $0) }, messages: messages)
        }
    }

    static var modelPath: String { ModelCache.path(ModelCache.smolLM2FileName) }

    /// Logits of every prompt position at transformers' top 32 ids, and the whole last row.
    static func logitErrors(_ model: TransformerModel, _ p: Prompt) throws -> (top: Float, last: Float, argmax: Int32) {
        let cache = try model.makeCache(batchSize: 1, capacity: p.ids.count + 1)
        let output = try model.forward([p.ids], cache: cache, logits: .all)
        let logits = try model.backend.floats(output.logits)
        let v = model.vocabularySize, k = p.topIDs.count / p.ids.count
        var got: [Float] = []
        for t in 0..<p.ids.count {
            for j in 0..<k { got.append(logits[t * v + Int(p.topIDs[t * k + j])]) }
        }
        let last = Array(logits[((p.ids.count - 1) * v)..<(p.ids.count * v)])
        let argmax = Int32(last.indices.max { last[$0] < last[$1] }!)
        return (ModelFixtures.relativeError(got, p.topLogits), ModelFixtures.relativeError(last, p.lastLogits), argmax)
    }

    static func greedy(_ model: TransformerModel, _ p: Prompt, count: Int) throws -> [Int32] {
        let cache = try model.makeCache(batchSize: 1, capacity: p.ids.count + count + 1)
        let out = try model.backend.empty([1], .i32)
        var next = p.ids, generated: [Int32] = []
        for _ in 0..<count {
            let output = try model.forward([next], cache: cache, logits: .last)
            try model.backend.argmax(output.logits, out: out)
            generated.append(try model.backend.ints(out)[0])
            next = [generated.last!]
        }
        return generated
    }

    @Test func chatPromptsTokenizeAsTransformers() throws {
        let file = try GGUFModelFile(path: Self.modelPath)
        let tokenizer = try file.tokenizer(), template = try file.chatTemplate()
        for p in try Self.prompts() {
            let text = try template.render(p.messages, addGenerationPrompt: true)
            #expect(try tokenizer.encode(text, addSpecialTokens: false) == p.ids)
            #expect(tokenizer.eosTokenIDs.contains(p.greedy.last!) || p.greedy.count == 16)
        }
    }

    @Test func cpuMatchesTransformers() throws {
        let model = try TransformerModel.load(directory: Self.modelPath, backend: CPUBackend(), weightDType: .f32)
        for (i, p) in try Self.prompts().enumerated() {
            let (top, last, _) = try Self.logitErrors(model, p)
            #expect(top <= Self.tolerance && last <= Self.tolerance, "prompt \(i): relative error \(top) (top 32), \(last) (last row)")
            print("SmolLM2 GGUF on cpu, prompt \(i): max relative logit error \(max(top, last))")
            #expect(try Self.greedy(model, p, count: p.greedy.count) == p.greedy, "prompt \(i)")
        }
    }

    @Test(.enabled(if: ModelFixtures.sharedVulkan != nil && ProcessInfo.processInfo.environment["TILLER_TEST_VULKAN"] != "0",
                   "no Vulkan device"))
    func vulkanMatchesTransformersOnAShortPrompt() throws {
        let vulkan = try #require(ModelFixtures.sharedVulkan)
        ModelFixtures.vulkanLock.lock()
        defer { ModelFixtures.vulkanLock.unlock() }
        let model = try TransformerModel.load(directory: Self.modelPath, backend: vulkan, weightDType: .f32)
        let p = try Self.prompts()[0]
        // One pass (lavapipe takes minutes per pass of this model): every position's logits, and
        // the first greedy token as the last row's argmax; decoding on Vulkan is covered by
        // ModelParityTests.
        let (top, last, argmax) = try Self.logitErrors(model, p)
        #expect(top <= Self.tolerance && last <= Self.tolerance, "relative error \(top) (top 32), \(last) (last row)")
        print("SmolLM2 GGUF on \(vulkan.name): max relative logit error \(max(top, last))")
        #expect(argmax == p.greedy[0])
    }
}
