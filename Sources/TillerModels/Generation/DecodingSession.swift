import Foundation
import TillerCore

/// What one slot did in a `DecodingSession.step`.
public enum SlotEvent: Sendable, Equatable {
    /// The slot's request generated a token; `text` is the completion's text that became final
    /// with it (whole UTF-8 characters, never a piece that could still turn into a stop string).
    case token(slot: Int, id: Int32, text: String)
    /// The slot's request ended (the slot is free again); `text` is the rest of its completion
    /// not given in `.token` events, `result` what `Generator.generate` returns for it.
    case finished(slot: Int, result: GenerationResult, text: String)
}

/// The generator's decoding loop, opened up for requests that come and go: a server admits a
/// request into a free KV-cache slot between steps, calls `step` in a loop, and releases a slot
/// whose client went away. `Generator.generate` is the closed form of the same loop.
///
/// A step is one forward pass over every live slot: a decoding slot feeds its last token, a slot
/// still reading its prompt the next `prefillChunk` tokens of it (so a long prompt does not stall
/// the others for a whole prefill), and only a slot whose prompt is complete samples. Each
/// request samples with its own SplitMix64 from its seed, checks NaN/Inf and stops exactly as in
/// `Generator.generate`, so its tokens are the generator's for that request alone whenever the
/// backend computes a row the same whatever else the pass holds (a batch-invariant CPU backend).
public final class DecodingSession {
    public let generator: Generator
    /// Most prompt tokens one slot feeds per step.
    public let prefillChunk: Int
    public var slotCount: Int { slots.count }
    let cache: KVCache
    var slots: [ActiveSequence?]
    /// Per slot: its prompt tokens not yet through the model, and its request's cache capacity.
    var promptLeft: [ArraySlice<Int32>]
    var capacities: [Int]
    /// Per slot: bytes of the completion's text already given in events.
    var emitted: [Int]
    /// Told which request each slot holds (its request index is the slot itself); steers the
    /// passes that `step` lets it.
    public let hook: GenerationHook?

    /// - Parameters:
    ///   - slots: KV-cache slots (most requests decoded together); each holds a whole context.
    ///   - prefillChunk: most prompt tokens a slot feeds per step (every step pads each slot to
    ///     the longest feed, so this also bounds a step's padded rows at slots x prefillChunk).
    public init(generator: Generator, slots: Int, prefillChunk: Int = 64, hook: GenerationHook? = nil) throws {
        guard slots > 0, prefillChunk > 0 else {
            throw TillerError.invalidArgument(op: "serve", detail: "slots \(slots) and prefill chunk \(prefillChunk) must be positive")
        }
        self.generator = generator
        self.prefillChunk = prefillChunk
        self.hook = hook
        cache = try generator.model.makeCache(batchSize: slots, capacity: generator.contextLimit)
        self.slots = Array(repeating: nil, count: slots)
        promptLeft = Array(repeating: [], count: slots)
        capacities = Array(repeating: 0, count: slots)
        emitted = Array(repeating: 0, count: slots)
    }

    /// Slots holding no request.
    public var freeSlots: [Int] { slots.indices.filter { slots[$0] == nil } }
    /// Whether no slot holds a request (a step would do nothing).
    public var isIdle: Bool { slots.allSatisfy { $0 == nil } }

    /// Checks `request` as `Generator.generate` does; a one-line `TillerError` when it cannot run.
    public func check(_ request: GenerationRequest) throws {
        try request.options.validate()
        guard !request.promptIDs.isEmpty else {
            throw TillerError.invalidArgument(op: "generate", detail: "the prompt is empty")
        }
        let vocabulary = generator.model.vocabularySize
        if let bad = request.promptIDs.first(where: { $0 < 0 || Int($0) >= vocabulary }) {
            throw TillerError.indexOutOfRange(op: "generate", detail: "token \(bad), vocabulary \(vocabulary)")
        }
        if generator.makeStream == nil && !request.options.stopStrings.isEmpty {
            throw TillerError.invalidArgument(op: "generate", detail: "stop strings need a tokenizer to decode text")
        }
    }

    /// Puts `request` into the free slot `slot` and tells the hook. Returns the result at once, leaving the slot free, for a request that needs
    /// no model call (a prompt that fills the context, max new tokens 0), as the generator does.
    public func admit(_ request: GenerationRequest, slot: Int) throws -> GenerationResult? {
        try check(request)
        guard slots.indices.contains(slot), slots[slot] == nil else {
            throw TillerError.invalidArgument(op: "serve", detail: "slot \(slot) is not free")
        }
        if request.promptIDs.count >= generator.contextLimit {
            return GenerationResult(completion: "", ids: [], stopReason: .promptTooLong)
        }
        if request.options.maxNewTokens == 0 { return GenerationResult(completion: "", ids: [], stopReason: .maxTokens) }
        cache.reset(slot)
        let sequence = ActiveSequence(index: slot, request: request, stream: generator.makeStream?())
        sequence.pending = []
        slots[slot] = sequence
        promptLeft[slot] = request.promptIDs[...]
        // As the generator sizes its cache: the longest request, up to the context limit.
        capacities[slot] = min(generator.contextLimit, NumericRange.saturatingSum(request.promptIDs.count, request.options.maxNewTokens))
        emitted[slot] = 0
        hook?.assign(slot: slot, request: slot, promptLength: request.promptIDs.count)
        return nil
    }

    /// Frees `slot` (its client went away): its request ends with no further event.
    public func release(_ slot: Int) {
        guard slots.indices.contains(slot), slots[slot] != nil else { return }
        end(slot)
    }

    private func end(_ slot: Int) {
        slots[slot] = nil
        promptLeft[slot] = []
        cache.reset(slot)
        hook?.assign(slot: slot, request: nil, promptLength: 0)
    }

    /// One forward pass over every live slot; the events of the slots that sampled or ended.
    /// `steer` false runs the pass without the hook (when no live request is steered: the pass
    /// then computes the last block for the last rows only, as `tiller generate` does unsteered).
    public func step(steer: Bool = true) throws -> [SlotEvent] {
        let hook = steer ? self.hook : nil
        guard !isIdle else { return [] }
        // What each slot feeds, and which slots sample from this pass (their prompt is through).
        var tokens = [[Int32]](repeating: [], count: slots.count)
        var samples = Set<Int>()
        for slot in slots.indices {
            guard let sequence = slots[slot] else { continue }
            if promptLeft[slot].isEmpty {
                tokens[slot] = sequence.pending
                samples.insert(slot)
            } else {
                let chunk = promptLeft[slot].prefix(prefillChunk)
                tokens[slot] = Array(chunk)
                promptLeft[slot] = promptLeft[slot].dropFirst(chunk.count)
                if promptLeft[slot].isEmpty { samples.insert(slot) }
            }
        }
        let output = try generator.model.forward(tokens, cache: cache, logits: .last, hook: hook)
        for slot in samples { slots[slot]?.pending = [] }

        var broken = Set<Int>()
        for row in try generator.nonFiniteRows(output.logits) where samples.contains(output.rows[row].sequence) { broken.insert(row) }
        var brokenSlots = Set(try hook?.nonFiniteSlots() ?? [])
        for (row, (slot, _)) in output.rows.enumerated() where brokenSlots.contains(slot) { broken.insert(row) }
        // Rows of slots still reading their prompt are not sampled: no draw from their generator.
        var skipped = broken
        for (row, (slot, _)) in output.rows.enumerated() where !samples.contains(slot) { skipped.insert(row) }
        let next = try generator.chooseTokens(output, slots: slots, skipping: skipped)

        var events: [SlotEvent] = []
        for (row, (slot, _)) in output.rows.enumerated() {
            guard let sequence = slots[slot] else { continue }
            if broken.contains(row) || brokenSlots.contains(slot) {
                brokenSlots.remove(slot)
                events.append(finish(slot, sequence, .nonFinite))
                continue
            }
            guard samples.contains(slot) else { continue }
            if let reason = sequence.accept(next[row], eos: generator.eosTokenIDs, capacity: capacities[slot]) {
                events.append(finish(slot, sequence, reason))
            } else {
                events.append(.token(slot: slot, id: next[row], text: finalText(slot, sequence)))
            }
        }
        return events
    }

    private func finish(_ slot: Int, _ sequence: ActiveSequence, _ reason: StopReason) -> SlotEvent {
        let result = sequence.result(reason)
        let bytes = Array(result.completion.utf8)
        let rest = emitted[slot] < bytes.count ? String(decoding: bytes[emitted[slot]...], as: UTF8.self) : ""
        end(slot)
        return .finished(slot: slot, result: result, text: rest)
    }

    /// The completion's text that can no longer change: all of it but the longest stop string
    /// less one byte (the start of a stop string that may yet complete), cut back to a whole
    /// UTF-8 character.
    private func finalText(_ slot: Int, _ sequence: ActiveSequence) -> String {
        let text = sequence.text
        let holdBack = max(0, (sequence.stops.map(\.count).max() ?? 0) - 1)
        var end = max(emitted[slot], text.count - holdBack)
        while end > emitted[slot], end < text.count, text[end] & 0xC0 == 0x80 { end -= 1 }
        guard end > emitted[slot] else { return "" }
        let piece = String(decoding: text[emitted[slot]..<end], as: UTF8.self)
        emitted[slot] = end
        return piece
    }
}
