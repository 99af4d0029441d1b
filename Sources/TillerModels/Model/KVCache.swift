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
        self.batchSize = batchSize
        self.capacity = capacity
        let shape = [batchSize, capacity, kvHeads, headDim]
        keys = try (0..<layers).map { _ in try backend.empty(shape) }
        values = try (0..<layers).map { _ in try backend.empty(shape) }
        lengths = Array(repeating: 0, count: batchSize)
    }

    /// Forgets sequence b (its slot can take a new prompt).
    public func reset(_ b: Int) { lengths[b] = 0 }
}
