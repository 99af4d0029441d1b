import TillerCore

extension CPUBackend {
    /// Attention with every query row computed on its own, as `attentionOneRow` computes a decode
    /// row: dot products with the keys it sees, the softmax, a weighted sum of value rows. Its
    /// bits depend on the row's query, keys and values alone, never on how many rows or sequences
    /// share the call (the sgemm path's blocks do: a row's block, and so the products' shapes and
    /// OpenBLAS's kernel and K split, move with the batch). Used when `batchInvariant` is set.
    func attentionPerRow(qp: UnsafeMutablePointer<Float>, kp: UnsafeMutablePointer<Float>, vp: UnsafeMutablePointer<Float>,
                         op: UnsafeMutablePointer<Float>, dims: AttentionDims, batch: SequenceBatch, options: AttentionOptions) {
        let (hq, hkv, d, t, s, group) = (dims.queryHeads, dims.kvHeads, dims.headDim, dims.queryLength, dims.cacheLength, dims.group)
        let scale = options.scale, window = options.slidingWindow, cap = options.softcap
        let items = dims.batch * t * hkv
        Parallel.chunks(items, grain: max(1, 4096 / max(1, group * s * d))) { range in
            let scores = UnsafeMutablePointer<Float>.allocate(capacity: max(1, s))
            defer { scores.deallocate() }
            for item in range {
                let g = item % hkv, r = (item / hkv) % t, b = item / (hkv * t)
                let rowOut = op + ((b * t + r) * hq + g * group) * d
                guard r < batch.lengths[b] else {
                    // Padding rows never see a key: they come out as zeros.
                    rowOut.update(repeating: 0, count: group * d)
                    continue
                }
                let position = batch.starts[b] + r
                let keyStart = window.map { max(0, position - $0 + 1) } ?? 0
                let count = position + 1 - keyStart
                for i in 0..<group {
                    let query = qp + ((b * t + r) * hq + g * group + i) * d
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
