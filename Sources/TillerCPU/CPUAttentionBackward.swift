import COpenBLAS
import TillerCore

extension CPUBackend {
    /// Stacked query rows per block of the backward. Each block holds three [rows, keys] scratch
    /// matrices (scores, then P; dP, then dS; tanh of the capped scores), so fewer rows than the
    /// forward keeps them in cache; long caches shrink the block further.
    static let attentionBackwardRowsPerBlock = 128
    static let attentionBackwardScratchFloats = 1 << 19

    /// Flash-attention style: per lane (AttentionBackwardLanes), per block of query rows with the
    /// group's heads stacked as in the forward, the softmax is recomputed from one sgemm
    /// (S = scale Q K^T, soft-capped and masked as in the forward), then dP = dO V^T,
    /// dS = P (dP - rowsum(P dP)) (times 1 - tanh^2 under a soft-cap, and the scale), and three
    /// more sgemms: dQ = dS K, dK += dS^T Q, dV += P^T dO. Only [block rows, keys] is ever held.
    public func attentionBackward(q: Tensor, k: Tensor, v: Tensor, batch: SequenceBatch, options: AttentionOptions,
                                  gradOut: Tensor, gradQ: Tensor, gradK: Tensor, gradV: Tensor) throws {
        let op = "attentionBackward"
        let dims = try GradientShapes.attentionBackward(q: q, k: k, v: v, batch: batch, options: options,
                                                        gradOut: gradOut, gradQ: gradQ, gradK: gradK, gradV: gradV)
        let qp = try floats(op, q), kp = try floats(op, k), vp = try floats(op, v), gp = try floats(op, gradOut)
        let dqp = try floats(op, gradQ), dkp = try floats(op, gradK), dvp = try floats(op, gradV)
        let (hq, hkv, d, t, s, group) = (dims.queryHeads, dims.kvHeads, dims.headDim, dims.queryLength, dims.cacheLength, dims.group)
        let plan = AttentionBackwardLanes(dims: dims, batch: batch, window: options.slidingWindow)

        for b in 0..<dims.batch {
            // Padding rows read no key: their gradQ is zero.
            let length = batch.lengths[b]
            if length < t { (dqp + (b * t + length) * hq * d).update(repeating: 0, count: (t - length) * hq * d) }
            // Sequences summing straight into gradK/gradV start from zero (keys no query reads stay so).
            if !plan.reduced[b] {
                (dkp + b * s * hkv * d).update(repeating: 0, count: s * hkv * d)
                (dvp + b * s * hkv * d).update(repeating: 0, count: s * hkv * d)
            }
        }
        guard !plan.lanes.isEmpty else { return }

        let keySpan = max(1, plan.widestKeyRange)
        let rowsPerBlock = max(1, min(Self.attentionBackwardRowsPerBlock, Self.attentionBackwardScratchFloats / keySpan))
        let positionsPerBlock = max(1, rowsPerBlock / group)
        let stackedRows = positionsPerBlock * group
        let partialK = UnsafeMutablePointer<Float>.allocate(capacity: max(1, plan.partialFloats))
        let partialV = UnsafeMutablePointer<Float>.allocate(capacity: max(1, plan.partialFloats))
        defer { partialK.deallocate(); partialV.deallocate() }

        let tasks = min(Parallel.workers, plan.lanes.count)
        BLASLock.shared.withLock {
            let saved = openblas_get_num_threads()
            openblas_set_num_threads(1)
            defer { openblas_set_num_threads(saved) }
            Parallel.chunks(tasks) { taskRange in
                let scratch = AttentionBackwardScratch(rows: stackedRows, keys: keySpan, headDim: d, softcap: options.softcap != nil)
                defer { scratch.deallocate() }
                for task in taskRange {
                    // Lanes are dealt round-robin, so each thread gets a mix of sequences and heads.
                    for index in stride(from: task, to: plan.lanes.count, by: tasks) {
                        let lane = plan.lanes[index]
                        let b = lane.sequence, g = lane.kvHead
                        // Where this lane's dK/dV sums go: its scratch, or gradK/gradV themselves.
                        let accK: UnsafeMutablePointer<Float>, accV: UnsafeMutablePointer<Float>, ldAcc: Int
                        if let offset = lane.partial {
                            (accK, accV, ldAcc) = (partialK + offset, partialV + offset, d)
                            accK.update(repeating: 0, count: lane.keyCount * d)
                            accV.update(repeating: 0, count: lane.keyCount * d)
                        } else {
                            let row = ((b * s + lane.keyStart) * hkv + g) * d
                            (accK, accV, ldAcc) = (dkp + row, dvp + row, hkv * d)
                        }
                        var firstRow = lane.firstRow
                        while firstRow < lane.firstRow + lane.rowCount {
                            let count = min(positionsPerBlock, lane.firstRow + lane.rowCount - firstRow)
                            let block = AttentionBackwardBlock(
                                sequence: b, kvHead: g, group: group, firstRow: firstRow, positions: count,
                                firstPosition: batch.starts[b] + firstRow, laneKeyStart: lane.keyStart)
                            block.run(dims: dims, options: options, scratch: scratch, q: qp, k: kp, v: vp, gradOut: gp,
                                      gradQ: dqp, accK: accK, accV: accV, ldAcc: ldAcc)
                            firstRow += count
                        }
                    }
                }
            }
        }
        plan.reduce(partialK: partialK, partialV: partialV, gradK: dkp, gradV: dvp, dims: dims)
    }
}

/// One thread's working memory for attention backward blocks.
struct AttentionBackwardScratch {
    let queries, gradOuts, gradQueries: UnsafeMutablePointer<Float> // [rows, D] each
    let probabilities, gradScores: UnsafeMutablePointer<Float>       // [rows, keys] each
    let tanhs: UnsafeMutablePointer<Float>?                           // [rows, keys] under a soft-cap

    init(rows: Int, keys: Int, headDim: Int, softcap: Bool) {
        queries = .allocate(capacity: rows * headDim)
        gradOuts = .allocate(capacity: rows * headDim)
        gradQueries = .allocate(capacity: rows * headDim)
        probabilities = .allocate(capacity: rows * keys)
        gradScores = .allocate(capacity: rows * keys)
        tanhs = softcap ? .allocate(capacity: rows * keys) : nil
    }

    func deallocate() {
        for p in [queries, gradOuts, gradQueries, probabilities, gradScores] { p.deallocate() }
        tanhs?.deallocate()
    }
}

/// One block of query positions of one (sequence, KV head): the group's query heads stacked,
/// rows ordered by position, then head, as in the forward.
struct AttentionBackwardBlock {
    var sequence, kvHead, group, firstRow, positions, firstPosition, laneKeyStart: Int

    func run(dims: AttentionDims, options: AttentionOptions, scratch: AttentionBackwardScratch,
             q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, gradOut: UnsafePointer<Float>,
             gradQ: UnsafeMutablePointer<Float>, accK: UnsafeMutablePointer<Float>, accV: UnsafeMutablePointer<Float>, ldAcc: Int) {
        let (hq, hkv, d, t, s) = (dims.queryHeads, dims.kvHeads, dims.headDim, dims.queryLength, dims.cacheLength)
        let (b, g) = (sequence, kvHead)
        let window = options.slidingWindow, scale = options.scale, cap = options.softcap
        let rows = positions * group
        let keyStart = window.map { max(0, firstPosition - $0 + 1) } ?? 0
        let keyCount = firstPosition + positions - keyStart
        let (queries, gradOuts, dq) = (scratch.queries, scratch.gradOuts, scratch.gradQueries)
        let (p, ds) = (scratch.probabilities, scratch.gradScores)

        // The group's heads are adjacent within a position: one copy per position.
        for r in 0..<positions {
            let row = ((b * t + firstRow + r) * hq + g * group) * d
            (queries + r * group * d).update(from: q + row, count: group * d)
            (gradOuts + r * group * d).update(from: gradOut + row, count: group * d)
        }
        let kBlock = k + ((b * s + keyStart) * hkv + g) * d
        let vBlock = v + ((b * s + keyStart) * hkv + g) * d
        let ldKV = Int32(hkv * d)

        // P: the forward's scores and masked softmax, normalised.
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(keyCount), Int32(d),
                    scale, queries, Int32(d), kBlock, ldKV, 0, p, Int32(keyCount))
        for row in 0..<rows {
            let (lo, hi) = visibleKeys(row, keyStart: keyStart, window: window)
            let line = p + row * keyCount
            if let cap, let tanhs = scratch.tanhs {
                let th = tanhs + row * keyCount
                mapVectors(line + lo, th + lo, hi - lo) { vtanh($0 * (1 / cap)) }
                mapVectors(th + lo, line + lo, hi - lo) { $0 * cap }
            }
            let inverse = maskedExp(line, lo, hi, keyCount)
            mapVectors(line + lo, line + lo, hi - lo) { $0 * inverse }
        }

        // dP = dO V^T, then dS in its place.
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(keyCount), Int32(d),
                    1, gradOuts, Int32(d), vBlock, ldKV, 0, ds, Int32(keyCount))
        for row in 0..<rows {
            let (lo, hi) = visibleKeys(row, keyStart: keyStart, window: window)
            let pLine = p + row * keyCount, dsLine = ds + row * keyCount
            let mean = dot(pLine + lo, dsLine + lo, hi - lo)
            if let tanhs = scratch.tanhs {
                let th = tanhs + row * keyCount
                gradScoreRow(pLine + lo, dsLine + lo, th + lo, hi - lo, mean: mean, scale: scale)
            } else {
                gradScoreRow(pLine + lo, dsLine + lo, nil, hi - lo, mean: mean, scale: scale)
            }
            // Masked keys: P is zero there, and so is dS.
            if lo > 0 { dsLine.update(repeating: 0, count: lo) }
            if hi < keyCount { (dsLine + hi).update(repeating: 0, count: keyCount - hi) }
        }

        // dQ = dS K (the scale is in dS), copied to the stacked rows' places.
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(d), Int32(keyCount),
                    1, ds, Int32(keyCount), kBlock, ldKV, 0, dq, Int32(d))
        for r in 0..<positions {
            (gradQ + ((b * t + firstRow + r) * hq + g * group) * d).update(from: dq + r * group * d, count: group * d)
        }
        // dK += dS^T Q and dV += P^T dO over the block's keys.
        let accOffset = (keyStart - laneKeyStart) * ldAcc
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(keyCount), Int32(d), Int32(rows),
                    1, ds, Int32(keyCount), queries, Int32(d), 1, accK + accOffset, Int32(ldAcc))
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(keyCount), Int32(d), Int32(rows),
                    1, p, Int32(keyCount), gradOuts, Int32(d), 1, accV + accOffset, Int32(ldAcc))
    }

    /// The keys stacked row `row` reads, relative to the block's first key: lo..<hi.
    @inline(__always) func visibleKeys(_ row: Int, keyStart: Int, window: Int?) -> (Int, Int) {
        let position = firstPosition + row / group
        return ((window.map { max(0, position - $0 + 1) } ?? 0) - keyStart, position - keyStart + 1)
    }
}

/// dS over one row's visible keys, in place over dP: P (dP - mean) scale, times 1 - tanh^2 of the
/// capped score when there is a soft-cap.
@inline(__always) func gradScoreRow(_ p: UnsafePointer<Float>, _ ds: UnsafeMutablePointer<Float>, _ th: UnsafePointer<Float>?,
                                    _ n: Int, mean: Float, scale: Float) {
    let meanV = Vec(repeating: mean), scaleV = Vec(repeating: scale)
    var i = 0
    if let th {
        while i + 16 <= n {
            let t = loadVec(th + i)
            storeVec(loadVec(p + i) * (loadVec(ds + i) - meanV) * scaleV * (1 - t * t), ds + i)
            i += 16
        }
        while i < n { ds[i] = p[i] * (ds[i] - mean) * scale * (1 - th[i] * th[i]); i += 1 }
    } else {
        while i + 16 <= n { storeVec(loadVec(p + i) * (loadVec(ds + i) - meanV) * scaleV, ds + i); i += 16 }
        while i < n { ds[i] = p[i] * (ds[i] - mean) * scale; i += 1 }
    }
}
