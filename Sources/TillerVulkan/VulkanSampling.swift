import TillerCore

/// Sampling support on Vulkan: argmax and top-k.
extension VulkanBackend {
    /// Columns one top-k work group sorts in shared memory (8 bytes each); rows up to this
    /// wide take a single dispatch.
    static let topKTile = 512

    public func argmax(_ x: Tensor, out: Tensor) throws {
        let (rows, c) = try OpShapes.rowReduce("argmax", x, out: out, outDType: .i32)
        try check32("argmax", x.count)
        let size = Self.rowGroup(c)
        try dispatch("argmax", SPIRV.argmax, specialization: [UInt32(size)],
                     bindings: [(x, .read), (out, .write)],
                     push: [UInt32(rows), UInt32(c)], groups: rowGroups(rows))
    }

    /// Top-k by tiles. Stage 1 (top_k.comp): one work group per (row, tile of up to 512 columns)
    /// bitonic-sorts the tile in shared memory, O(T log^2 T) compare-exchanges on T/2 threads.
    /// A row of one tile is then done. Otherwise each tile's best min(k, T) go to scratch and
    /// stage 2 (top_k_merge.comp) gives every candidate its rank in the row by binary searches
    /// in the other tiles' sorted lists, and the k ranked below k scatter to their slots:
    /// at most tiles * min(k, T) * (tiles - 1) * log2(min(k, T)) reads per row, far fewer in
    /// practice since a candidate stops once its rank reaches k. Correct for every k <= C.
    public func topK(_ x: Tensor, k: Int, values: Tensor, indices: Tensor) throws {
        let (rows, c) = try OpShapes.topK(x, k: k, values: values, indices: indices)
        try check32("topK", x.count)
        var tile = 64
        while tile < Self.topKTile && tile < c { tile <<= 1 }
        let tiles = (c + tile - 1) / tile
        let sort: [UInt32] = [UInt32(tile / 2), UInt32(tile)]
        if tiles == 1 {
            try dispatch("topK", SPIRV.topK, specialization: sort,
                         bindings: [(x, .read), (values, .write), (indices, .write)],
                         push: [UInt32(rows), UInt32(c), 1, UInt32(k)], groups: rowGroups(rows))
            return
        }
        let kk = min(k, tile)
        let count = rows * tiles * kk
        try check32("topK", count)
        // Scratch: candidate values, then their columns. The stream keeps the buffer alive
        // until the recorded work completes.
        let scratch = try makeBuffer(byteCount: count * 8)
        let candidateValues = try Tensor(buffer: scratch, byteOffset: 0, shape: [count], dtype: .f32)
        let candidateIndices = try Tensor(buffer: scratch, byteOffset: count * 4, shape: [count], dtype: .i32)
        try dispatch("topK", SPIRV.topK, specialization: sort,
                     bindings: [(x, .read), (candidateValues, .write), (candidateIndices, .write)],
                     push: [UInt32(rows), UInt32(c), UInt32(tiles), UInt32(kk)], groups: rowGroups(rows * tiles))
        let size = Self.transformerGroup
        try dispatch("topK", SPIRV.topKMerge, specialization: [UInt32(size)],
                     bindings: [(candidateValues, .read), (candidateIndices, .read), (values, .write), (indices, .write)],
                     push: [UInt32(rows), UInt32(c), UInt32(tiles), UInt32(kk), UInt32(k), UInt32(tile)],
                     groups: groups(count, size))
    }
}
