import Foundation
import Testing
import TillerCore
import TillerModels

/// The Generator: greedy decoding reproduces transformers, a request's output does not depend on
/// the batch it runs in (greedy and seeded sampling, continuous batching included), and every
/// stop reason ends a sequence where it should.
@Suite(.serialized) struct GenerationTests {
    /// Runs body with exclusive use of the backend when it is the shared Vulkan one.
    func using<R>(_ backend: any Backend, _ body: () throws -> R) rethrows -> R {
        guard backend === ModelFixtures.sharedVulkan else { return try body() }
        ModelFixtures.vulkanLock.lock()
        defer { ModelFixtures.vulkanLock.unlock() }
        return try body()
    }

    static func cpuModel(_ architecture: String = "llama") throws -> TransformerModel {
        try TransformerModel.load(directory: ModelFixtures.directory(architecture), backend: ModelFixtures.backends()[1])
    }

    /// A stand-in detokenizer: token id n is one letter, so text positions are token positions.
    static func letters() -> TextStream {
        TextStream(push: { String(UnicodeScalar(UInt8(97 + Int($0) % 26))) }, finish: { "" })
    }

    /// Prompts of many lengths (1 to 20) cut from the reference ids.
    static func prompts() throws -> [[Int32]] {
        let ids = try ModelFixtures.reference("llama").ints("ids")
        let lengths = [8, 5, 13, 1, 20, 3, 11]
        var prompts: [[Int32]] = []
        for (i, n) in lengths.enumerated() {
            let rotated: [Int32] = Array(ids[(i * 3)...]) + Array(ids[..<(i * 3)])
            prompts.append(Array(rotated.prefix(n)))
        }
        return prompts
    }

    static func alone(_ model: TransformerModel, _ request: GenerationRequest, textStream: TextStreamFactory? = nil) throws -> GenerationResult {
        try Generator(model: model, batchSize: 1, textStream: textStream).generate([request])[0]
    }

    // MARK: Parity

    /// greedy.json for every architecture, with both prompts in one batch and with one slot
    /// reused (continuous batching through a cache reset).
    @Test(arguments: ModelFixtures.architectures)
    func greedyReproducesTransformers(architecture: String) throws {
        let greedy = try ModelFixtures.greedy(architecture)
        for backend in ModelFixtures.backends().dropFirst() {
            try using(backend) {
                let model = try TransformerModel.load(directory: ModelFixtures.directory(architecture), backend: backend)
                let requests = greedy.cases.map {
                    GenerationRequest(promptIDs: $0.prompt_ids, options: GenerationOptions(maxNewTokens: greedy.max_new_tokens))
                }
                for batchSize in [1, 2, 8] {
                    let results = try Generator(model: model, batchSize: batchSize).generate(requests)
                    for (i, c) in greedy.cases.enumerated() {
                        #expect(results[i].ids == c.greedy_ids, "\(architecture) on \(backend.name), batch \(batchSize), prompt \(i)")
                        #expect(results[i].stopReason == .maxTokens)
                    }
                }
            }
        }
    }

    // MARK: Batch invariance

    /// Prompts of different lengths with different budgets, greedy, run 3 at a time over 7
    /// requests (prefills of new requests join other sequences' decode steps), give each request
    /// exactly what it gets alone.
    @Test(arguments: ["llama", "gemma2", "mistral", "qwen2"])
    func mixedBatchGreedyEqualsAlone(architecture: String) throws {
        let model = try Self.cpuModel(architecture)
        let requests = try Self.prompts().enumerated().map { i, p in
            GenerationRequest(promptIDs: p, options: GenerationOptions(maxNewTokens: [12, 4, 9, 15, 6, 10, 2][i]))
        }
        let alone = try requests.map { try Self.alone(model, $0) }
        for batchSize in [2, 3, 7] {
            let batched = try Generator(model: model, batchSize: batchSize).generate(requests)
            for i in requests.indices {
                #expect(batched[i] == alone[i], "\(architecture) batch \(batchSize) request \(i)")
                #expect(batched[i].ids.count == requests[i].options.maxNewTokens)
            }
        }
    }

    /// Seeded sampling (temperature, top-k, top-p, each request its own settings), mixed with
    /// greedy requests in the same batch, is batch-invariant; it really samples, and the seed
    /// decides the draw.
    @Test(arguments: ["llama", "gemma2"])
    func mixedBatchSamplingEqualsAlone(architecture: String) throws {
        let model = try Self.cpuModel(architecture)
        let settings: [(Float, Int, Float)] = [(1.0, 0, 1.0), (0.8, 40, 1.0), (1.3, 0, 0.9), (0, 0, 1), (1.0, 5, 0.8), (2.0, 0, 1.0), (0.7, 100, 0.95)]
        let requests = try Self.prompts().enumerated().map { i, p in
            GenerationRequest(promptIDs: p, options: GenerationOptions(
                maxNewTokens: 10 + i, temperature: settings[i].0, topK: settings[i].1, topP: settings[i].2, seed: UInt64(1000 + i)))
        }
        let alone = try requests.map { try Self.alone(model, $0) }
        for batchSize in [3, 7] {
            let batched = try Generator(model: model, batchSize: batchSize).generate(requests)
            for i in requests.indices { #expect(batched[i] == alone[i], "\(architecture) batch \(batchSize) request \(i)") }
        }
        // The same prompt: sampling differs from greedy, the same seed repeats, another seed differs.
        var hot = requests[0]
        hot.options.maxNewTokens = 20
        hot.options.temperature = 1.5
        var greedy = hot
        greedy.options.temperature = 0
        var reseeded = hot
        reseeded.options.seed = 7
        let results = try Generator(model: model, batchSize: 4).generate([hot, greedy, reseeded, hot])
        #expect(results[0].ids != results[1].ids)
        #expect(results[0].ids != results[2].ids)
        #expect(results[0] == results[3])
    }

    /// top-k 1 is greedy whatever the temperature; top-p that keeps one token is greedy too.
    @Test func degenerateSamplingIsGreedy() throws {
        let model = try Self.cpuModel()
        let prompt = try Self.prompts()[0]
        let greedy = try Self.alone(model, GenerationRequest(promptIDs: prompt, options: GenerationOptions(maxNewTokens: 10)))
        let topK1 = try Self.alone(model, GenerationRequest(promptIDs: prompt, options: GenerationOptions(maxNewTokens: 10, temperature: 3, topK: 1, seed: 5)))
        let topPTiny = try Self.alone(model, GenerationRequest(promptIDs: prompt, options: GenerationOptions(maxNewTokens: 10, temperature: 0.5, topP: 1e-6, seed: 9)))
        #expect(topK1.ids == greedy.ids)
        #expect(topPTiny.ids == greedy.ids)
    }

    // MARK: Stopping

    @Test func maxTokensAndZero() throws {
        let model = try Self.cpuModel()
        let prompt = try Self.prompts()[1]
        let results = try Generator(model: model, batchSize: 2).generate([
            GenerationRequest(promptIDs: prompt, options: GenerationOptions(maxNewTokens: 3)),
            GenerationRequest(promptIDs: prompt, options: GenerationOptions(maxNewTokens: 0)),
            GenerationRequest(promptIDs: prompt, options: GenerationOptions(maxNewTokens: 1)),
        ])
        #expect(results[0].ids.count == 3 && results[0].stopReason == .maxTokens)
        #expect(results[1].ids.isEmpty && results[1].stopReason == .maxTokens && results[1].completion.isEmpty)
        #expect(results[2].ids == Array(results[0].ids.prefix(1)) && results[2].stopReason == .maxTokens)
    }

    /// An end-of-sequence id ends the sequence: the id is kept, its text is not.
    @Test func eosStops() throws {
        let model = try Self.cpuModel()
        let prompt = try Self.prompts()[0]
        let full = try Generator(model: model, batchSize: 1, eosTokenIDs: [], textStream: Self.letters)
            .generate([GenerationRequest(promptIDs: prompt, options: GenerationOptions(maxNewTokens: 12))])[0]
        let eos = full.ids[4]
        let first = full.ids.firstIndex(of: eos)!
        let stopped = try Generator(model: model, batchSize: 1, eosTokenIDs: [eos], textStream: Self.letters)
            .generate([GenerationRequest(promptIDs: prompt, options: GenerationOptions(maxNewTokens: 12))])[0]
        #expect(stopped.stopReason == .eos)
        #expect(stopped.ids == Array(full.ids[...first]))
        #expect(stopped.completion == String(full.completion.prefix(first)))
        // config.json's eos_token_id (2) is the default.
        #expect(try Generator(model: model).eosTokenIDs == [2])
    }

    /// A stop string ends the sequence as soon as the decoded text holds it, across token
    /// boundaries; the completion ends before it, the ids keep the tokens that made it.
    @Test func stopStrings() throws {
        let model = try Self.cpuModel()
        let prompt = try Self.prompts()[0]
        let full = try Generator(model: model, batchSize: 1, textStream: Self.letters)
            .generate([GenerationRequest(promptIDs: prompt, options: GenerationOptions(maxNewTokens: 12))])[0]
        #expect(full.completion.count == 12 && full.stopReason == .maxTokens)
        let text = Array(full.completion)
        for (start, length) in [(3, 2), (0, 1), (5, 3), (10, 2)] {
            let stop = String(text[start..<(start + length)])
            // Where the stop string first appears in the full text.
            let first = full.completion.range(of: stop)!
            let at = full.completion.distance(from: full.completion.startIndex, to: first.lowerBound)
            let result = try Generator(model: model, batchSize: 2, textStream: Self.letters).generate([
                GenerationRequest(promptIDs: prompt, options: GenerationOptions(maxNewTokens: 12, stopStrings: ["zzzzzz", stop])),
                GenerationRequest(promptIDs: try Self.prompts()[2], options: GenerationOptions(maxNewTokens: 12)),
            ])[0]
            #expect(result.stopReason == .stopString, "\(stop)")
            #expect(result.completion == String(text[..<at]), "\(stop)")
            #expect(result.ids == Array(full.ids.prefix(at + length)), "\(stop)")
        }
        // A stop string that never appears changes nothing.
        let none = try Self.alone(model, GenerationRequest(promptIDs: prompt, options: GenerationOptions(maxNewTokens: 12, stopStrings: ["0"])),
                                  textStream: Self.letters)
        #expect(none == full)
    }

    /// Text the detokenizer holds back until the end is still checked for stop strings.
    @Test func stopStringInTheFinalFlush() throws {
        let model = try Self.cpuModel()
        let prompt = try Self.prompts()[0]
        final class Held { var text = "" }
        let stream: TextStreamFactory = {
            let held = Held()
            return TextStream(push: { held.text += String(UnicodeScalar(UInt8(97 + Int($0) % 26))); return "" },
                              finish: { held.text })
        }
        let full = try Self.alone(model, GenerationRequest(promptIDs: prompt, options: GenerationOptions(maxNewTokens: 8)), textStream: stream)
        #expect(full.completion.count == 8)
        let stop = String(Array(full.completion)[5..<7])
        let cut = try Self.alone(model, GenerationRequest(promptIDs: prompt, options: GenerationOptions(maxNewTokens: 8, stopStrings: [stop])),
                                 textStream: stream)
        #expect(cut.stopReason == .stopString)
        #expect(cut.ids.count == 8)
        #expect(full.completion.hasPrefix(cut.completion) && !cut.completion.contains(stop))
    }

    /// The context limit: prompt plus generated tokens never exceed it; a prompt that fills it
    /// generates nothing (`promptTooLong`); other sequences in the batch are unaffected.
    @Test func capacity() throws {
        let model = try Self.cpuModel()
        let prompts = try Self.prompts()
        let short = prompts[1], long = prompts[4] // 5 and 20 tokens
        let reference = try Self.alone(model, GenerationRequest(promptIDs: short, options: GenerationOptions(maxNewTokens: 12)))
        let generator = try Generator(model: model, batchSize: 2, contextLimit: 9)
        #expect(generator.contextLimit == 9)
        let results = try generator.generate([
            GenerationRequest(promptIDs: short, options: GenerationOptions(maxNewTokens: 12)),
            GenerationRequest(promptIDs: long, options: GenerationOptions(maxNewTokens: 12)),
            GenerationRequest(promptIDs: Array(long.prefix(9)), options: GenerationOptions(maxNewTokens: 12)),
            GenerationRequest(promptIDs: short, options: GenerationOptions(maxNewTokens: 3)),
        ])
        #expect(results[0].stopReason == .capacity && results[0].ids == Array(reference.ids.prefix(4)))
        // A prompt that fills the context on its own has its own stop reason.
        #expect(results[1].stopReason == .promptTooLong && results[1].ids.isEmpty)
        #expect(results[2].stopReason == .promptTooLong && results[2].ids.isEmpty)
        #expect(results[3].stopReason == .maxTokens && results[3].ids == Array(reference.ids.prefix(3)))
        // The default limit is max_position_embeddings (128 for the fixtures).
        #expect(try Generator(model: model).contextLimit == 128)
    }

    // MARK: Progress and bad requests

    @Test func progressCountsEveryToken() throws {
        let model = try Self.cpuModel()
        let requests = try Self.prompts().prefix(4).map { GenerationRequest(promptIDs: $0, options: GenerationOptions(maxNewTokens: 5)) }
        var reports: [GenerationProgress] = []
        var finished: [Int] = []
        let results = try Generator(model: model, batchSize: 2).generate(requests, progress: { reports.append($0) },
                                                                          onResult: { i, _ in finished.append(i) })
        let last = try #require(reports.last)
        #expect(last.generatedTokens == results.map(\.ids.count).reduce(0, +))
        #expect(last.promptTokens == requests.map(\.promptIDs.count).reduce(0, +))
        #expect(last.finishedRequests == 4 && last.totalRequests == 4)
        #expect(last.elapsed > 0)
        #expect(zip(reports, reports.dropFirst()).allSatisfy { $0.generatedTokens <= $1.generatedTokens && $0.elapsed <= $1.elapsed })
        #expect(finished.sorted() == [0, 1, 2, 3])
    }

    @Test func badRequestsThrowBeforeAnyWork() throws {
        let model = try Self.cpuModel()
        let generator = try Generator(model: model, batchSize: 2)
        let good = GenerationRequest(promptIDs: [5, 6], options: GenerationOptions(maxNewTokens: 2))
        let bad: [(GenerationRequest, String)] = [
            (GenerationRequest(promptIDs: []), "empty"),
            (GenerationRequest(promptIDs: [5, 256]), "256"),
            (GenerationRequest(promptIDs: [5, -1]), "-1"),
            (GenerationRequest(promptIDs: [5], options: GenerationOptions(temperature: -1)), "temperature"),
            (GenerationRequest(promptIDs: [5], options: GenerationOptions(topP: 0)), "top-p"),
            (GenerationRequest(promptIDs: [5], options: GenerationOptions(topK: -3)), "top-k"),
            (GenerationRequest(promptIDs: [5], options: GenerationOptions(maxNewTokens: -1)), "max new tokens"),
            (GenerationRequest(promptIDs: [5], options: GenerationOptions(stopStrings: ["x"])), "stop strings"),
        ]
        for (request, word) in bad {
            var called = false
            do {
                try generator.generate([good, request], progress: { _ in called = true })
                Issue.record("no error for \(word)")
            } catch let error as TillerError {
                #expect(error.description.contains("request 1") && error.description.contains(word), "\(error)")
            }
            #expect(!called)
        }
        #expect(throws: TillerError.self) { try Generator(model: model, batchSize: 0) }
        #expect(try generator.generate([]).isEmpty)
    }
}
