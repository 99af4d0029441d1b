import Foundation
import TillerCore

/// Runs many generation requests over one model with continuous batching.
///
/// Up to `batchSize` sequences share ONE KV cache, one slot each. Every step runs one forward pass
/// over all live slots: a newly admitted request contributes its whole prompt (prompts of any
/// lengths prefill together, and alongside the one-token decode steps of the others), a decoding
/// request its last token; logits are computed only for each sequence's last row. When a sequence
/// finishes, its slot is reset and the next waiting request takes it.
///
/// A request's tokens depend only on its prompt and options: every request samples from its own
/// SplitMix64 seeded from its seed alone, so its output is the same whether it runs alone or in
/// any batch (as far as the backend computes a row the same whatever the batch).
public final class Generator {
    public let model: TransformerModel
    /// Most sequences decoded together (KV cache slots).
    public let batchSize: Int
    /// Most tokens one sequence may hold, prompt and generated together (stop reason `capacity`).
    public let contextLimit: Int
    /// Token ids that end a sequence (stop reason `eos`).
    public let eosTokenIDs: Set<Int32>
    let makeStream: TextStreamFactory?
    /// A row of zeros as wide as the vocabulary, for `nonFiniteRows`.
    var zeroRow: Tensor?

    /// - Parameters:
    ///   - contextLimit: default: config.json's max_position_embeddings (else 4096). The KV cache
    ///     is sized for the longest request (prompt + max new tokens) up to this limit.
    ///   - eosTokenIDs: default: config.json's eos_token_id.
    ///   - textStream: decodes generated ids to text (the completion and stop strings need it);
    ///     without it completions are empty and stop strings are refused.
    public init(model: TransformerModel, batchSize: Int = 8, contextLimit: Int? = nil,
                eosTokenIDs: Set<Int32>? = nil, textStream: TextStreamFactory? = nil) throws {
        guard batchSize > 0 else {
            throw TillerError.invalidArgument(op: "generate", detail: "batch size \(batchSize) must be positive")
        }
        let limit = contextLimit ?? model.config.maxPositionEmbeddings ?? 4096
        guard limit > 0 else {
            throw TillerError.invalidArgument(op: "generate", detail: "context limit \(limit) must be positive")
        }
        self.model = model
        self.batchSize = batchSize
        self.contextLimit = limit
        self.eosTokenIDs = eosTokenIDs ?? Set((model.config.eosTokenId?.values ?? []).map { Int32(truncatingIfNeeded: $0) })
        self.makeStream = textStream
    }

    /// Generates a continuation for every request and returns the results in request order.
    /// `progress` is called after every step; `onResult` as each request finishes (in finishing
    /// order, with its index). Throws before any work on an invalid request.
    ///
    /// `hook` watches (and may change) the residual stream of every pass; it is told which request
    /// each slot holds (`GenerationHook.assign`), so it can act per request: the steering layer
    /// steers each request its own way in one batch. A request's output then depends on its
    /// prompt, options and what the hook does to its own rows alone, as without a hook.
    @discardableResult
    public func generate(_ requests: [GenerationRequest],
                         hook: GenerationHook? = nil,
                         progress: ((GenerationProgress) -> Void)? = nil,
                         onResult: ((Int, GenerationResult) -> Void)? = nil) throws -> [GenerationResult] {
        try validate(requests)
        let started = DispatchTime.now().uptimeNanoseconds
        var status = GenerationProgress(generatedTokens: 0, promptTokens: 0, finishedRequests: 0,
                                        totalRequests: requests.count, elapsed: 0)
        var results = [GenerationResult?](repeating: nil, count: requests.count)
        func finish(_ index: Int, _ result: GenerationResult) {
            results[index] = result
            status.finishedRequests += 1
            onResult?(index, result)
        }

        // The cache holds the longest request, up to the context limit. The sum saturates: a
        // max-new-tokens near Int.max means "until the context is full", not an overflow.
        let longest = requests.map { NumericRange.saturatingSum($0.promptIDs.count, $0.options.maxNewTokens) }.max() ?? 0
        let capacity = min(contextLimit, max(longest, 1))
        let slotCount = min(batchSize, max(requests.count, 1))
        var waiting = requests.indices.makeIterator()
        var slots = [ActiveSequence?](repeating: nil, count: slotCount)
        let cache = try model.makeCache(batchSize: slotCount, capacity: capacity)

        /// Fills free slots with waiting requests; those that need no model call end at once.
        func admit() {
            for slot in slots.indices where slots[slot] == nil {
                while let index = waiting.next() {
                    let request = requests[index]
                    if request.promptIDs.count >= contextLimit {
                        finish(index, GenerationResult(completion: "", ids: [], stopReason: .promptTooLong))
                    } else if request.options.maxNewTokens == 0 {
                        finish(index, GenerationResult(completion: "", ids: [], stopReason: .maxTokens))
                    } else if request.promptIDs.count >= capacity {
                        // Not reached: capacity >= min(context limit, prompt + max new tokens).
                        finish(index, GenerationResult(completion: "", ids: [], stopReason: .capacity))
                    } else {
                        cache.reset(slot)
                        slots[slot] = ActiveSequence(index: index, request: request, stream: makeStream?())
                        hook?.assign(slot: slot, request: index, promptLength: request.promptIDs.count)
                        break
                    }
                }
            }
        }

        admit()
        while slots.contains(where: { $0 != nil }) {
            let tokens = slots.map { $0?.pending ?? [] }
            let output = try model.forward(tokens, cache: cache, logits: .last, hook: hook)
            for slot in slots.indices {
                guard let sequence = slots[slot] else { continue }
                if sequence.generated.isEmpty { status.promptTokens += sequence.pending.count }
                sequence.pending = []
            }
            // Requests whose pass went non-finite end here, before the token it would give.
            var broken = try nonFiniteRows(output.logits)
            if let badSlots = try hook?.nonFiniteSlots(), !badSlots.isEmpty {
                for (row, (slot, _)) in output.rows.enumerated() where badSlots.contains(slot) { broken.insert(row) }
            }
            let next = try chooseTokens(output, slots: slots, skipping: broken)
            for (row, (slot, _)) in output.rows.enumerated() {
                guard let sequence = slots[slot] else { continue }
                if broken.contains(row) {
                    finish(sequence.index, sequence.result(.nonFinite))
                    cache.reset(slot)
                    slots[slot] = nil
                    hook?.assign(slot: slot, request: nil, promptLength: 0)
                    continue
                }
                status.generatedTokens += 1
                if let reason = sequence.accept(next[row], eos: eosTokenIDs, capacity: capacity) {
                    finish(sequence.index, sequence.result(reason))
                    cache.reset(slot)
                    slots[slot] = nil
                    hook?.assign(slot: slot, request: nil, promptLength: 0)
                }
            }
            admit()
            status.elapsed = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
            progress?(status)
        }
        status.elapsed = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        progress?(status)
        return results.map { $0! }
    }

    private func validate(_ requests: [GenerationRequest]) throws {
        let vocabulary = model.vocabularySize
        for (i, request) in requests.enumerated() {
            do {
                try request.options.validate()
            } catch let TillerError.invalidArgument(op, detail) {
                throw TillerError.invalidArgument(op: op, detail: "request \(i): \(detail)")
            }
            guard !request.promptIDs.isEmpty else {
                throw TillerError.invalidArgument(op: "generate", detail: "request \(i): the prompt is empty")
            }
            if let bad = request.promptIDs.first(where: { $0 < 0 || Int($0) >= vocabulary }) {
                throw TillerError.indexOutOfRange(op: "generate", detail: "request \(i): token \(bad), vocabulary \(vocabulary)")
            }
            if makeStream == nil && !request.options.stopStrings.isEmpty {
                throw TillerError.invalidArgument(op: "generate", detail: "request \(i): stop strings need a tokenizer to decode text")
            }
        }
    }

    /// The next token of every logits row: argmax for greedy rows, a draw from the row's own
    /// generator among its top-k / top-p candidates for the others.
    func chooseTokens(_ output: ForwardOutput, slots: [ActiveSequence?], skipping broken: Set<Int>) throws -> [Int32] {
        let backend = model.backend
        let rows = output.rows.count
        guard rows > 0 else { return [] }
        let sequences = output.rows.map { slots[$0.sequence]! }
        var chosen = [Int32](repeating: 0, count: rows)

        let greedyRows = sequences.indices.filter { sequences[$0].request.options.isGreedy }
        if !greedyRows.isEmpty {
            let argmax = try backend.empty([rows], .i32)
            try backend.argmax(output.logits, out: argmax)
            let best = try backend.ints(argmax)
            for row in greedyRows { chosen[row] = best[row] }
        }

        // Broken rows are not sampled: their logits would not sort.
        let sampledRows = sequences.indices.filter { !sequences[$0].request.options.isGreedy && !broken.contains($0) }
        guard !sampledRows.isEmpty else { return chosen }
        let vocabulary = model.vocabularySize
        func candidates(_ options: GenerationOptions) -> Int { options.topK > 0 ? min(options.topK, vocabulary) : vocabulary }
        let k = sampledRows.map { candidates(sequences[$0].request.options) }.max()!
        var source = output.logits
        if sampledRows.count < rows {
            source = try backend.empty([sampledRows.count, vocabulary])
            try backend.gatherRows(output.logits, indices: try backend.tensor(ints: sampledRows.map(Int32.init), shape: [sampledRows.count]), out: source)
        }
        let values = try backend.empty([sampledRows.count, k]), indices = try backend.empty([sampledRows.count, k], .i32)
        try backend.topK(source, k: k, values: values, indices: indices)
        let topValues = try backend.floats(values), topIndices = try backend.ints(indices)
        for (i, row) in sampledRows.enumerated() {
            let sequence = sequences[row], options = sequence.request.options
            // The first k of the row's sorted candidates are exactly its own top-k.
            let kept = Array(topValues[(i * k)..<(i * k + candidates(options))])
            let probabilities = try Sampling.nucleus(sortedLogits: kept, temperature: options.temperature, topP: options.topP)
            let pick = Sampling.draw(probabilities, using: &sequence.random)
            chosen[row] = topIndices[i * k + pick]
        }
        return chosen
    }
}

/// One request while it holds a slot.
final class ActiveSequence {
    let index: Int
    let request: GenerationRequest
    var random: SplitMix64
    /// What the next forward pass feeds: the prompt, then the last generated token.
    var pending: [Int32]
    var generated: [Int32] = []
    let stream: TextStream?
    /// The completion's UTF-8 so far (stop strings are matched on bytes, exactly).
    var text: [UInt8] = []
    let stops: [[UInt8]]
    var stopAt: Int?

    init(index: Int, request: GenerationRequest, stream: TextStream?) {
        self.index = index
        self.request = request
        self.random = SplitMix64(seed: request.options.seed)
        self.pending = request.promptIDs
        self.stream = stream
        self.stops = request.options.stopStrings.map { Array($0.utf8) }
    }

    /// Takes a generated token; returns why the sequence ends, or nil (then it feeds the token next).
    func accept(_ token: Int32, eos: Set<Int32>, capacity: Int) -> StopReason? {
        generated.append(token)
        if eos.contains(token) { return .eos }
        if let stream {
            append(stream.push(token))
            if stopAt != nil { return .stopString }
        }
        if generated.count >= request.options.maxNewTokens { return .maxTokens }
        if request.promptIDs.count + generated.count >= capacity { return .capacity }
        pending = [token]
        return nil
    }

    /// Appends decoded text and looks for a stop string ending in it.
    private func append(_ piece: String) {
        guard !piece.isEmpty, stopAt == nil else { return }
        let before = text.count
        text.append(contentsOf: piece.utf8)
        var first: Int?
        for stop in stops {
            var start = max(0, before - stop.count + 1)
            while start + stop.count <= text.count {
                if text[start..<(start + stop.count)].elementsEqual(stop) {
                    first = min(first ?? start, start)
                    break
                }
                start += 1
            }
        }
        stopAt = first
    }

    func result(_ reason: StopReason) -> GenerationResult {
        var reason = reason
        if stopAt == nil, let stream {
            append(stream.finish())
            if stopAt != nil { reason = .stopString }
        }
        let end = stopAt ?? text.count
        return GenerationResult(completion: String(decoding: text[0..<end], as: UTF8.self), ids: generated, stopReason: reason)
    }
}
