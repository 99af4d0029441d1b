import CVulkan
import TillerCore

extension VulkanBackend {
    static let attentionGroup = 128

    /// One dispatch of Shaders/attention.comp: a workgroup per (tile of stacked query rows, KV
    /// head, sequence) with an online softmax over tiles of keys in shared memory. The sequence
    /// starts and lengths travel in a small i32 buffer written by vkCmdUpdateBuffer in the
    /// stream, so the op records without synchronising.
    public func attention(q: Tensor, k: Tensor, v: Tensor, batch: SequenceBatch, options: AttentionOptions, out: Tensor) throws {
        let dims = try OpShapes.attention(q: q, k: k, v: v, batch: batch, options: options, out: out)
        let d = dims.headDim, rows = dims.queryLength * dims.group
        guard dims.batch > 0, rows > 0, d > 0 else { return }
        let (br, bc) = try attentionTiles(op: "attention", headDim: d, rowsPerSequence: rows)
        let tiles = groups(rows, br)  // row tiles over x, overflowing into y (times the KV heads)
        let meta = try metadata(batch.starts + batch.lengths)
        let window = options.slidingWindow.map { UInt32(min($0, Int(Int32.max))) } ?? 0
        let push: [UInt32] = [UInt32(dims.batch), UInt32(dims.queryLength), UInt32(dims.cacheLength),
                              UInt32(dims.queryHeads), UInt32(dims.kvHeads), UInt32(dims.group),
                              window, bits(options.scale), bits(options.softcap ?? 0)]
        try dispatch("attention", SPIRV.attention, specialization: [UInt32(Self.attentionGroup), UInt32(d), UInt32(br), UInt32(bc)],
                     bindings: [(q, .read), (k, .read), (v, .read), (out, .write), (meta, .read)],
                     push: push, groups: (tiles.0, tiles.1 * dims.kvHeads, dims.batch))
    }

    /// Query rows and keys per tile: up to 16 stacked rows (fewer when a sequence has fewer, as
    /// in decoding), 32 keys (16 past a head dim of 128), halved until the tile fits the
    /// device's shared memory. Both stay powers of two, so the key tile divides the workgroup
    /// (the shader's score mapping relies on it).
    func attentionTiles(op: String, headDim d: Int, rowsPerSequence: Int) throws -> (rows: Int, keys: Int) {
        var br = 1
        while br < min(rowsPerSequence, 16) { br *= 2 }
        var bc = d <= 128 ? 32 : 16
        let limit = Int(device.properties.limits.maxComputeSharedMemorySize)
        func bytes() -> Int { 4 * (br * d + bc * (d + 1) + br * bc + 5 * br) }
        while bytes() > limit {
            if bc > 8 { bc /= 2 } else if br > 1 { br /= 2 } else if bc > 1 { bc /= 2 } else {
                throw TillerError.unsupported("vulkan: \(op): head dim \(d) does not fit \(limit) bytes of shared memory")
            }
        }
        return (br, bc)
    }

    /// A fresh i32 tensor holding `values`, written in the command stream (vkCmdUpdateBuffer)
    /// so that nothing synchronises; a host upload past the command's 64 KiB limit.
    func metadata(_ values: [Int]) throws -> Tensor {
        let ints = values.map { Int32(clamping: $0) }
        guard ints.count * 4 <= 65536 else { return try tensor(ints: ints, shape: [ints.count]) }
        let t = try empty([max(ints.count, 1)], .i32)
        guard !ints.isEmpty else { return t }
        let buffer = try vulkanBuffer("metadata", t)
        try stream.use(reads: [], writes: [buffer])
        let cb = try stream.recording()
        ints.withUnsafeBytes { raw in
            vkCmdUpdateBuffer(cb, buffer.allocation.buffer, VkDeviceSize(t.byteOffset), VkDeviceSize(raw.count), raw.baseAddress)
        }
        return t
    }

    /// One transfer command with a copy region per sequence: exact for every dtype.
    public func cacheAppend(_ new: Tensor, into cache: Tensor, batch: SequenceBatch) throws {
        let (b, t, s, row) = try OpShapes.cacheAppend(new, cache: cache, batch: batch)
        let source = try vulkanBuffer("cacheAppend", new), destination = try vulkanBuffer("cacheAppend", cache)
        let rowBytes = row * new.dtype.byteSize
        var regions: [VkBufferCopy] = []
        for seq in 0..<b where batch.lengths[seq] > 0 && rowBytes > 0 {
            regions.append(VkBufferCopy(srcOffset: VkDeviceSize(new.byteOffset + seq * t * rowBytes),
                                        dstOffset: VkDeviceSize(cache.byteOffset + (seq * s + batch.starts[seq]) * rowBytes),
                                        size: VkDeviceSize(batch.lengths[seq] * rowBytes)))
        }
        guard !regions.isEmpty else { return }
        try stream.use(reads: [source], writes: [destination])
        destination.knownIndices.removeAll()
        vkCmdCopyBuffer(try stream.recording(), source.allocation.buffer, destination.allocation.buffer, UInt32(regions.count), regions)
    }
}
