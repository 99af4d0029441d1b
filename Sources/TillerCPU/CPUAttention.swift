import COpenBLAS
import TillerCore

extension CPUBackend {
    /// Stacked query rows per block: the query heads that share a KV head are stacked into one
    /// matrix (rows ordered by position, then head), so each block is two large sgemms against
    /// keys it reads once. Blocks see keys 0 ..< their last position only, so the work done is
    /// the causal half plus half a block per row.
    static let attentionRowsPerBlock = 256

    /// Attention as two sgemms per (sequence, KV head, query block) with a vectorised masked
    /// softmax between them. Blocks run in parallel on all cores with single-threaded BLAS inside,
    /// which beats letting OpenBLAS thread the many medium-sized products.
    public func attention(q: Tensor, k: Tensor, v: Tensor, batch: SequenceBatch, options: AttentionOptions, out: Tensor) throws {
        let dims = try OpShapes.attention(q: q, k: k, v: v, batch: batch, options: options, out: out)
        let qp = try floats("attention", q), kp = try floats("attention", k)
        let vp = try floats("attention", v), op = try floats("attention", out)
        if batchInvariant {
            attentionPerRow(qp: qp, kp: kp, vp: vp, op: op, dims: dims, batch: batch, options: options)
            return
        }
        let (hq, hkv, d, t, s, group) = (dims.queryHeads, dims.kvHeads, dims.headDim, dims.queryLength, dims.cacheLength, dims.group)
        if t == 1, (0..<dims.batch).allSatisfy({ batch.starts[$0] < Self.oneRowMaxKeys }) {
            attentionOneRow(qp: qp, kp: kp, vp: vp, op: op, dims: dims, batch: batch, options: options)
            return
        }
        let positionsPerBlock = max(1, Self.attentionRowsPerBlock / group)

        struct Block { var sequence, kvHead, firstRow, rowCount: Int }
        var blocks: [Block] = []
        for b in 0..<dims.batch {
            // Padding rows never see a key: they come out as zeros.
            if batch.lengths[b] < t {
                (op + (b * t + batch.lengths[b]) * hq * d).update(repeating: 0, count: (t - batch.lengths[b]) * hq * d)
            }
            for g in 0..<hkv {
                var r = 0
                while r < batch.lengths[b] {
                    blocks.append(Block(sequence: b, kvHead: g, firstRow: r, rowCount: min(positionsPerBlock, batch.lengths[b] - r)))
                    r += positionsPerBlock
                }
            }
        }
        guard !blocks.isEmpty else { return }

        let stackedRows = positionsPerBlock * group
        let tasks = min(Parallel.workers, blocks.count)
        let scale = options.scale, window = options.slidingWindow, cap = options.softcap
        BLASLock.shared.withLock {
            let saved = openblas_get_num_threads()
            openblas_set_num_threads(1)
            defer { openblas_set_num_threads(saved) }
            Parallel.chunks(tasks) { taskRange in
                let queries = UnsafeMutablePointer<Float>.allocate(capacity: stackedRows * d)
                let outputs = UnsafeMutablePointer<Float>.allocate(capacity: stackedRows * d)
                let scores = UnsafeMutablePointer<Float>.allocate(capacity: stackedRows * s)
                let inverseSums = UnsafeMutablePointer<Float>.allocate(capacity: stackedRows)
                defer { queries.deallocate(); outputs.deallocate(); scores.deallocate(); inverseSums.deallocate() }
                for task in taskRange {
                    // Blocks are dealt round-robin so long and short blocks spread evenly.
                    for index in stride(from: task, to: blocks.count, by: tasks) {
                        let block = blocks[index]
                        let b = block.sequence, g = block.kvHead
                        let rows = block.rowCount * group
                        let firstPosition = batch.starts[b] + block.firstRow
                        let keyEnd = firstPosition + block.rowCount
                        let keyStart = window.map { max(0, firstPosition - $0 + 1) } ?? 0
                        let keyCount = keyEnd - keyStart
                        // The group's heads are adjacent within a position: one copy per position.
                        for r in 0..<block.rowCount {
                            let source = qp + ((b * t + block.firstRow + r) * hq + g * group) * d
                            (queries + r * group * d).update(from: source, count: group * d)
                        }
                        let kBlock = kp + ((b * s + keyStart) * hkv + g) * d
                        let vBlock = vp + ((b * s + keyStart) * hkv + g) * d
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(keyCount), Int32(d),
                                    scale, queries, Int32(d), kBlock, Int32(hkv * d), 0, scores, Int32(keyCount))
                        for row in 0..<rows {
                            let position = firstPosition + row / group
                            let lo = (window.map { max(0, position - $0 + 1) } ?? 0) - keyStart
                            let hi = position - keyStart + 1
                            let line = scores + row * keyCount
                            if let cap { mapVectors(line + lo, line + lo, hi - lo) { cap * vtanh($0 * (1 / cap)) } }
                            inverseSums[row] = maskedExp(line, lo, hi, keyCount)
                        }
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(d), Int32(keyCount),
                                    1, scores, Int32(keyCount), vBlock, Int32(hkv * d), 0, outputs, Int32(d))
                        for r in 0..<block.rowCount {
                            let destination = op + ((b * t + block.firstRow + r) * hq + g * group) * d
                            for i in 0..<group {
                                let inverse = inverseSums[r * group + i]
                                mapVectors(outputs + (r * group + i) * d, destination + i * d, d) { $0 * inverse }
                            }
                        }
                    }
                }
            }
        }
    }
}

extension CPUBackend {
    /// Decode steps (one query row per sequence) over at most this many keys take the direct path.
    static let oneRowMaxKeys = 256

    /// Attention for one query row per sequence, per (sequence, KV head): dot products with the
    /// keys, the masked softmax numerator, and a weighted sum of the value rows, with no sgemm
    /// calls. Over a few dozen keys the two sgemms per block and their setup cost more than the
    /// arithmetic: 73 us per layer for 14 heads over 48 keys, 3% of a bf16 decode step.
    func attentionOneRow(qp: UnsafeMutablePointer<Float>, kp: UnsafeMutablePointer<Float>, vp: UnsafeMutablePointer<Float>,
                         op: UnsafeMutablePointer<Float>, dims: AttentionDims, batch: SequenceBatch, options: AttentionOptions) {
        let (hq, hkv, d, s, group) = (dims.queryHeads, dims.kvHeads, dims.headDim, dims.cacheLength, dims.group)
        let scale = options.scale, window = options.slidingWindow, cap = options.softcap
        let pairs = dims.batch * hkv
        let keysPerPair = (0..<dims.batch).map { batch.lengths[$0] > 0 ? batch.starts[$0] + 1 : 0 }.max() ?? 0
        Parallel.chunks(pairs, grain: max(1, 4096 / max(1, group * keysPerPair * d))) { range in
            let scores = UnsafeMutablePointer<Float>.allocate(capacity: max(1, Self.oneRowMaxKeys))
            defer { scores.deallocate() }
            for pair in range {
                let b = pair / hkv, g = pair % hkv
                let rowOut = op + (b * hq + g * group) * d
                guard batch.lengths[b] > 0 else {
                    // Padding rows never see a key: they come out as zeros.
                    rowOut.update(repeating: 0, count: group * d)
                    continue
                }
                let position = batch.starts[b]
                let keyStart = window.map { max(0, position - $0 + 1) } ?? 0
                let count = position + 1 - keyStart
                for i in 0..<group {
                    let query = qp + (b * hq + g * group + i) * d
                    for j in 0..<count {
                        scores[j] = scale * dot(query, kp + ((b * s + keyStart + j) * hkv + g) * d, d)
                    }
                    if let cap { mapVectors(scores, scores, count) { cap * vtanh($0 * (1 / cap)) } }
                    let inverse = 1 / expMinusMax(scores, count)
                    let output = rowOut + i * d
                    output.update(repeating: 0, count: d)
                    for j in 0..<count { axpy(scores[j], vp + ((b * s + keyStart + j) * hkv + g) * d, output, d) }
                    mapVectors(output, output, d) { $0 * inverse }
                }
            }
        }
    }
}

/// Replaces row[lo..<hi] by exp(row - max) and zeroes the rest of the row; returns 1 / sum.
@inline(__always) func maskedExp(_ row: UnsafeMutablePointer<Float>, _ lo: Int, _ hi: Int, _ count: Int) -> Float {
    let total = expMinusMax(row + lo, hi - lo)
    if lo > 0 { row.update(repeating: 0, count: lo) }
    if hi < count { (row + hi).update(repeating: 0, count: count - hi) }
    return 1 / total
}
