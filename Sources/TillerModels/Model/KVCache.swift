import Foundation
import TillerCore

/// Keys and values of every layer for a batch of sequences, [B, capacity, Hkv, D] each, with
/// how many positions each sequence holds so far. A forward pass appends to it.
public final class KVCache {
    public let batchSize: Int
    public let capacity: Int
    let keys: [Tensor]
    let values: [Tensor]
    /// Tokens held per sequence: the position the next token of that sequence takes.
    public internal(set) var lengths: [Int]

    init(backend: Backend, layers: Int, batchSize: Int, capacity: Int, kvHeads: Int, headDim: Int) throws {
        guard batchSize > 0, capacity > 0 else {
            throw TillerError.invalidArgument(op: "KVCache", detail: "batch \(batchSize) and capacity \(capacity) must be positive")
        }
        try Self.checkSize(layers: layers, batchSize: batchSize, capacity: capacity, kvHeads: kvHeads, headDim: headDim)
        self.batchSize = batchSize
        self.capacity = capacity
        let shape = [batchSize, capacity, kvHeads, headDim]
        keys = try (0..<layers).map { _ in try backend.empty(shape) }
        values = try (0..<layers).map { _ in try backend.empty(shape) }
        lengths = Array(repeating: 0, count: batchSize)
    }

    /// The capacity comes from user numbers (a context limit, max_position_embeddings, prompt plus
    /// max new tokens): a product that overflows Int would trap and one larger than the machine's
    /// memory would be killed while zeroing, so both are one-line errors instead.
    static func checkSize(layers: Int, batchSize: Int, capacity: Int, kvHeads: Int, headDim: Int) throws {
        var bytes = 2 * DType.f32.byteSize
        var overflow = false
        for factor in [layers, batchSize, capacity, kvHeads, headDim] {
            let (product, over) = bytes.multipliedReportingOverflow(by: max(factor, 0))
            bytes = product
            overflow = overflow || over
        }
        let memory = ProcessInfo.processInfo.physicalMemory
        guard !overflow, UInt64(bytes) <= memory else {
            throw TillerError.invalidArgument(op: "KVCache", detail: "\(batchSize) sequences x \(capacity) positions x \(layers) layers "
                + "need \(overflow ? "more than 2^63 bytes" : "\(bytes >> 20) MiB") of cache, more than this machine's \(memory >> 20) MiB; "
                + "lower --context-limit, --max-new-tokens or --batch-size")
        }
    }

    /// Forgets sequence b (its slot can take a new prompt).
    public func reset(_ b: Int) { lengths[b] = 0 }
}
