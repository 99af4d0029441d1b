import Foundation
import Testing
import TillerCore
import TillerCPU
import TillerModels

/// `CPUBackend.batchInvariant`: a sequence's logits are the same bits whether it runs alone
/// (its prompt in one pass, then one token per pass) or in a padded batch beside other sequences,
/// its prompt fed in chunks while others decode; and `DecodingSession` (what `tiller serve` runs)
/// gives each request the generator's tokens for it alone.
@Suite struct BatchInvarianceTests {
    static func model(_ architecture: String, invariant: Bool) throws -> TransformerModel {
        let backend = CPUBackend()
        backend.batchInvariant = invariant
        return try TransformerModel.load(directory: ModelFixtures.directory(architecture), backend: backend)
    }

    /// The logits of `prompt` and then of each of `follow`, fed one per pass, alone.
    static func alone(_ model: TransformerModel, _ prompt: [Int32], _ follow: [Int32]) throws -> [[Float]] {
        let cache = try model.makeCache(batchSize: 1, capacity: 64)
        var rows = [try model.backend.floats(try model.forward([prompt], cache: cache).logits)]
        for token in follow { rows.append(try model.backend.floats(try model.forward([[token]], cache: cache).logits)) }
        return rows
    }

    /// The same sequence in slot 2 of four: its prompt in chunks of 3 while the others prefill
    /// prompts of other lengths and decode, then one token per pass.
    static func batched(_ model: TransformerModel, _ prompt: [Int32], _ follow: [Int32], others: [[Int32]]) throws -> [[Float]] {
        let cache = try model.makeCache(batchSize: 4, capacity: 64)
        var left = prompt[...], pending = Array(follow.reversed())
        var otherLeft = others.map { $0[...] }
        var rows: [[Float]] = []
        var step = 0
        while rows.count < follow.count + 1 {
            var tokens = [[Int32]](repeating: [], count: 4)
            for (o, slot) in [0, 1, 3].enumerated() {
                // Others: prompt chunks of 5, then one token a pass, in and out of the batch.
                if !otherLeft[o].isEmpty {
                    tokens[slot] = Array(otherLeft[o].prefix(5))
                    otherLeft[o] = otherLeft[o].dropFirst(5)
                } else if (step + o) % 3 != 0 {
                    tokens[slot] = [Int32((step * 7 + o) % 200 + 3)]
                }
            }
            let ours: Bool
            if !left.isEmpty {
                tokens[2] = Array(left.prefix(3))
                left = left.dropFirst(3)
                ours = left.isEmpty
            } else {
                tokens[2] = [pending.removeLast()]
                ours = true
            }
            let output = try model.forward(tokens, cache: cache)
            if ours, let row = output.rows.firstIndex(where: { $0.sequence == 2 }) {
                let all = try model.backend.floats(output.logits), width = model.vocabularySize
                rows.append(Array(all[(row * width)..<((row + 1) * width)]))
            }
            step += 1
        }
        return rows
    }

    @Test(arguments: ["llama", "llama-bf16", "qwen2", "gemma2"])
    func aRowsLogitsDoNotDependOnTheBatch(architecture: String) throws {
        let model = try Self.model(architecture, invariant: true)
        let ids = try ModelFixtures.reference("llama").ints("ids").map { $0 % Int32(model.vocabularySize) }
        let prompt = Array(ids.prefix(11)), follow = Array(ids.dropFirst(11).prefix(6))
        let others = [Array(ids.suffix(7)), Array(ids.prefix(17).reversed()), [ids[3]]]
        let solo = try Self.alone(model, prompt, follow)
        let mixed = try Self.batched(model, prompt, follow, others: others)
        #expect(solo.count == mixed.count)
        for (i, (a, b)) in zip(solo, mixed).enumerated() {
            let differing = zip(a, b).filter { $0.bitPattern != $1.bitPattern }.count
            #expect(differing == 0, "\(architecture): row \(i) differs in \(differing) of \(a.count) logits")
        }
    }

    /// Requests joining a session at different steps, prompts fed two tokens a step, greedy and
    /// sampled: each gets what the generator gives it alone.
    @Test func aSessionGivesEachRequestItsSoloTokens() throws {
        let model = try Self.model("llama", invariant: true)
        let prompts = try GenerationTests.prompts()
        let requests = prompts.enumerated().map { i, prompt in
            GenerationRequest(promptIDs: prompt, options: GenerationOptions(maxNewTokens: 6 + i % 3, temperature: i % 2 == 0 ? 0 : 1.1,
                                                                             topP: i % 3 == 0 ? 0.9 : 1, seed: UInt64(40 + i)))
        }
        let generator = try Generator(model: model, batchSize: 1, textStream: GenerationTests.letters)
        let solo = try requests.map { try generator.generate([$0])[0] }
        let session = try DecodingSession(generator: generator, slots: 3, prefillChunk: 2)
        var results = [GenerationResult?](repeating: nil, count: requests.count)
        var slotRequest = [Int: Int](), next = 0, step = 0
        while results.contains(where: { $0 == nil }) {
            // One request joins every other step while a slot is free.
            if step % 2 == 0, next < requests.count, let slot = session.freeSlots.first {
                if let done = try session.admit(requests[next], slot: slot) { results[next] = done } else { slotRequest[slot] = next }
                next += 1
            }
            for event in try session.step() {
                if case .finished(let slot, let result, _) = event { results[slotRequest[slot]!] = result }
            }
            step += 1
            try #require(step < 1000)
        }
        for (i, result) in results.enumerated() {
            #expect(result?.ids == solo[i].ids, "request \(i)")
            #expect(result?.completion == solo[i].completion && result?.stopReason == solo[i].stopReason, "request \(i)")
        }
    }
}
