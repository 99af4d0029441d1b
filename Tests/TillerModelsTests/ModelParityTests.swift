import Foundation
import Testing
import TillerCore
import TillerModels

/// The four architectures against transformers (float32, eager attention): logits within 1e-4
/// relative, on every backend, for one sequence, for a padded batch of different lengths, and
/// for the residual stream at the hook point.
@Suite(.serialized) struct ModelParityTests {
    static let tolerance: Float = 1e-4

    /// Runs body with exclusive use of the backend when it is the shared Vulkan one.
    func using<R>(_ backend: any Backend, _ body: () throws -> R) rethrows -> R {
        guard backend === ModelFixtures.sharedVulkan else { return try body() }
        ModelFixtures.vulkanLock.lock()
        defer { ModelFixtures.vulkanLock.unlock() }
        return try body()
    }

    @Test(arguments: ModelFixtures.architectures)
    func logitsMatchTransformers(architecture: String) throws {
        let reference = try ModelFixtures.reference(architecture)
        let ids = try reference.ints("ids"), expected = try reference.floats("logits")
        for backend in ModelFixtures.backends() {
            try using(backend) {
                let model = try TransformerModel.load(directory: ModelFixtures.directory(architecture), backend: backend)
                let cache = try model.makeCache(batchSize: 1, capacity: 32)
                let output = try model.forward([ids], cache: cache, logits: .all)
                let error = ModelFixtures.relativeError(try backend.floats(output.logits), expected)
                #expect(error <= Self.tolerance, "\(architecture) on \(backend.name): relative error \(error)")
            }
        }
    }

    /// The residual stream after each block, read through the hook, equals transformers' decoder
    /// layer outputs: the place steering will act on is the place transformers means.
    @Test(arguments: ModelFixtures.architectures)
    func residualStreamAtTheHook(architecture: String) throws {
        let reference = try ModelFixtures.reference(architecture)
        let ids = try reference.ints("ids"), expected = try reference.floats("residual_after_block")
        let backend = ModelFixtures.backends()[1]
        let model = try TransformerModel.load(directory: ModelFixtures.directory(architecture), backend: backend)
        let recorder = ResidualRecorder()
        _ = try model.forward([ids], cache: try model.makeCache(batchSize: 1, capacity: 32), logits: .last, hook: recorder)
        let perLayer = ids.count * model.hiddenSize
        #expect(recorder.layers.count == model.layerCount)
        for (layer, values) in recorder.layers.enumerated() {
            let want = Array(expected[(layer * perLayer)..<((layer + 1) * perLayer)])
            let error = ModelFixtures.relativeError(values, want)
            #expect(error <= Self.tolerance, "\(architecture) layer \(layer): relative error \(error)")
        }
    }

    /// Three sequences of different lengths in one padded batch give each sequence the logits it
    /// gets alone: padding never leaks.
    @Test(arguments: ModelFixtures.architectures)
    func paddedBatchMatchesEachSequenceAlone(architecture: String) throws {
        let reference = try ModelFixtures.reference(architecture)
        let batchIDs = try reference.ints("batch_ids"), lengths = try reference.ints("batch_lengths").map(Int.init)
        let expected = try reference.floats("batch_logits")
        let t = batchIDs.count / lengths.count
        let sequences = lengths.enumerated().map { b, n in Array(batchIDs[(b * t)..<(b * t + n)]) }
        for backend in ModelFixtures.backends().dropFirst() {
            try using(backend) {
                let model = try TransformerModel.load(directory: ModelFixtures.directory(architecture), backend: backend)
                let vocab = model.vocabularySize
                let output = try model.forward(sequences, cache: try model.makeCache(batchSize: sequences.count, capacity: 32), logits: .all)
                let logits = try backend.floats(output.logits)
                for (row, (sequence, position)) in output.rows.enumerated() {
                    let got = Array(logits[(row * vocab)..<((row + 1) * vocab)])
                    let base = (sequence * t + position) * vocab
                    let error = ModelFixtures.relativeError(got, Array(expected[base..<(base + vocab)]))
                    #expect(error <= Self.tolerance, "\(architecture) on \(backend.name): sequence \(sequence) position \(position): \(error)")
                }
            }
        }
    }

    /// With `.last` and no hook the last block runs only each sequence's last row (plus keys and
    /// values for every row): the padded batch's last-row logits, and the next step's logits from
    /// the cache it leaves, equal transformers' logits at those positions.
    @Test(arguments: ModelFixtures.architectures)
    func lastRowsOnlyMatchTransformers(architecture: String) throws {
        let reference = try ModelFixtures.reference(architecture)
        let batchIDs = try reference.ints("batch_ids"), lengths = try reference.ints("batch_lengths").map(Int.init)
        let expected = try reference.floats("batch_logits")
        let t = batchIDs.count / lengths.count
        // Every sequence but its last token first (the pruned pass), then that token alone.
        let prompts = lengths.enumerated().map { b, n in Array(batchIDs[(b * t)..<(b * t + n - 1)]) }
        for backend in ModelFixtures.backends().dropFirst() {
            try using(backend) {
                let model = try TransformerModel.load(directory: ModelFixtures.directory(architecture), backend: backend)
                let vocab = model.vocabularySize
                let cache = try model.makeCache(batchSize: prompts.count, capacity: 32)
                var first: (output: ForwardOutput, values: [Float])?
                for step in 0..<2 {
                    let input = step == 0 ? prompts : lengths.enumerated().map { b, n in [batchIDs[b * t + n - 1]] }
                    let output = try model.forward(input, cache: cache, logits: .last)
                    let logits = try backend.floats(output.logits)
                    if let first {
                        // Logits a caller still holds are never reused for the next call's.
                        #expect(try backend.floats(first.output.logits) == first.values, "\(architecture) on \(backend.name)")
                    } else {
                        first = (output, logits)
                    }
                    #expect(output.rows.count == prompts.count)
                    for (row, (sequence, position)) in output.rows.enumerated() {
                        let got = Array(logits[(row * vocab)..<((row + 1) * vocab)])
                        let base = (sequence * t + position) * vocab
                        let error = ModelFixtures.relativeError(got, Array(expected[base..<(base + vocab)]))
                        #expect(error <= Self.tolerance, "\(architecture) on \(backend.name) step \(step): sequence \(sequence) position \(position): \(error)")
                    }
                }
            }
        }
    }

    /// Greedy decoding with the KV cache (prefill, then one token at a time) reproduces
    /// transformers' generate(do_sample=False), prompts run together in one batch.
    @Test(arguments: ModelFixtures.architectures)
    func greedyContinuations(architecture: String) throws {
        let greedy = try ModelFixtures.greedy(architecture)
        for backend in ModelFixtures.backends().dropFirst() {
            try using(backend) {
                let model = try TransformerModel.load(directory: ModelFixtures.directory(architecture), backend: backend)
                let cache = try model.makeCache(batchSize: greedy.cases.count, capacity: 64)
                var next = greedy.cases.map(\.prompt_ids)
                var generated = Array(repeating: [Int32](), count: greedy.cases.count)
                let argmaxOut = try backend.empty([greedy.cases.count], .i32)
                for _ in 0..<greedy.max_new_tokens {
                    let output = try model.forward(next, cache: cache, logits: .last)
                    try backend.argmax(output.logits, out: argmaxOut)
                    let tokens = try backend.ints(argmaxOut)
                    for (row, (sequence, _)) in output.rows.enumerated() { generated[sequence].append(tokens[row]) }
                    next = generated.map { [$0.last!] }
                }
                for (i, c) in greedy.cases.enumerated() {
                    #expect(generated[i] == c.greedy_ids, "\(architecture) on \(backend.name), prompt \(i)")
                }
            }
        }
    }
}

/// Copies the residual stream after every block.
final class ResidualRecorder: ResidualStreamHook {
    var layers: [[Float]] = []
    func afterBlock(_ layer: Int, residual: Tensor, step: ForwardStep, backend: Backend) throws {
        layers.append(try backend.floats(residual))
    }
}
