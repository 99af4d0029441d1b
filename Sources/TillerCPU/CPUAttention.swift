import COpenBLAS
import TillerCore

extension CPUBackend {
    /// Query rows per block: a block computes scores against keys 0 ..< its last position only,
    /// so the work done is the causal half plus half a block per row.
    static let attentionBlock = 128

    /// Attention as two sgemms per (sequence, head, query block) with a vectorised masked softmax
    /// between them. Blocks run in parallel on all cores with single-threaded BLAS inside, which
    /// beats letting OpenBLAS thread the many small products.
    public func attention(q: Tensor, k: Tensor, v: Tensor, batch: SequenceBatch, options: AttentionOptions, out: Tensor) throws {
        let dims = try OpShapes.attention(q: q, k: k, v: v, batch: batch, options: options, out: out)
        let qp = try floats("attention", q), kp = try floats("attention", k)
        let vp = try floats("attention", v), op = try floats("attention", out)
        let (hq, hkv, d, t, s) = (dims.queryHeads, dims.kvHeads, dims.headDim, dims.queryLength, dims.cacheLength)

        struct Block { var sequence, head, firstRow, rowCount: Int }
        var blocks: [Block] = []
        for b in 0..<dims.batch {
            // Padding rows never see a key: they come out as zeros.
            if batch.lengths[b] < t {
                (op + (b * t + batch.lengths[b]) * hq * d).update(repeating: 0, count: (t - batch.lengths[b]) * hq * d)
            }
            for h in 0..<hq {
                var r = 0
                while r < batch.lengths[b] {
                    blocks.append(Block(sequence: b, head: h, firstRow: r, rowCount: min(Self.attentionBlock, batch.lengths[b] - r)))
                    r += Self.attentionBlock
                }
            }
        }
        guard !blocks.isEmpty else { return }

        let scratchPerTask = Self.attentionBlock * s
        BLASLock.shared.withLock {
            let saved = openblas_get_num_threads()
            openblas_set_num_threads(1)
            defer { openblas_set_num_threads(saved) }
            let tasks = min(Parallel.workers, blocks.count)
            let scale = options.scale, window = options.slidingWindow, cap = options.softcap
            Parallel.chunks(tasks) { taskRange in
                let scores = UnsafeMutablePointer<Float>.allocate(capacity: scratchPerTask)
                let inverseSums = UnsafeMutablePointer<Float>.allocate(capacity: Self.attentionBlock)
                defer { scores.deallocate(); inverseSums.deallocate() }
                for task in taskRange {
                    // Blocks are dealt round-robin so long and short blocks spread evenly.
                    for index in stride(from: task, to: blocks.count, by: tasks) {
                        let block = blocks[index]
                        let b = block.sequence, h = block.head, g = h / dims.group
                        let firstPosition = batch.starts[b] + block.firstRow
                        let keyEnd = firstPosition + block.rowCount
                        let keyStart = window.map { max(0, firstPosition - $0 + 1) } ?? 0
                        let keyCount = keyEnd - keyStart
                        let qBlock = qp + ((b * t + block.firstRow) * hq + h) * d
                        let kBlock = kp + ((b * s + keyStart) * hkv + g) * d
                        let vBlock = vp + ((b * s + keyStart) * hkv + g) * d
                        let oBlock = op + ((b * t + block.firstRow) * hq + h) * d
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(block.rowCount), Int32(keyCount), Int32(d),
                                    scale, qBlock, Int32(hq * d), kBlock, Int32(hkv * d), 0, scores, Int32(keyCount))
                        for i in 0..<block.rowCount {
                            let position = firstPosition + i
                            let lo = (window.map { max(0, position - $0 + 1) } ?? 0) - keyStart
                            let hi = position - keyStart + 1
                            let row = scores + i * keyCount
                            if let cap { mapVectors(row + lo, row + lo, hi - lo) { cap * vtanh($0 * (1 / cap)) } }
                            inverseSums[i] = maskedExp(row, lo, hi, keyCount)
                        }
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(block.rowCount), Int32(d), Int32(keyCount),
                                    1, scores, Int32(keyCount), vBlock, Int32(hkv * d), 0, oBlock, Int32(hq * d))
                        for i in 0..<block.rowCount {
                            let row = oBlock + i * hq * d
                            let inverse = inverseSums[i]
                            mapVectors(row, row, d) { $0 * inverse }
                        }
                    }
                }
            }
        }
    }
}

/// Replaces row[lo..<hi] by exp(row - max) and zeroes the rest of the row; returns 1 / sum.
@inline(__always) func maskedExp(_ row: UnsafeMutablePointer<Float>, _ lo: Int, _ hi: Int, _ count: Int) -> Float {
    let p = row + lo, n = hi - lo
    let total = expMinusMax(p, n)
    if lo > 0 { row.update(repeating: 0, count: lo) }
    if hi < count { (row + hi).update(repeating: 0, count: count - hi) }
    return 1 / total
}
