import TillerCore

extension VulkanBackend {
    public func attention(q: Tensor, k: Tensor, v: Tensor, batch: SequenceBatch, options: AttentionOptions, out: Tensor) throws {
        _ = try OpShapes.attention(q: q, k: k, v: v, batch: batch, options: options, out: out)
        throw TillerError.unsupported("vulkan: attention is not implemented yet")
    }

    public func cacheAppend(_ new: Tensor, into cache: Tensor, batch: SequenceBatch) throws {
        _ = try OpShapes.cacheAppend(new, cache: cache, batch: batch)
        throw TillerError.unsupported("vulkan: cacheAppend is not implemented yet")
    }
}
