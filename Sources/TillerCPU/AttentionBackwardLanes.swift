import TillerCore

/// How the CPU's attention backward splits its work so that it runs on every core and still
/// gives the same bits run to run.
///
/// dK and dV sum over every query row that reads a key, across query blocks and across the query
/// heads of a GQA group. A lane is one (sequence, KV head, contiguous range of query rows); it runs
/// serially on one thread, so its sums have a fixed order. A sequence with one lane per KV head
/// accumulates straight into gradK and gradV; with several, each lane sums into its own scratch
/// over the keys it reads, and `reduce` adds the lanes in lane order. The lane count depends on
/// the shapes only, never on the number of cores, so the result is the same on any machine.
struct AttentionBackwardLanes {
    struct Lane {
        var sequence, kvHead: Int
        var firstRow, rowCount: Int
        /// The keys the lane's rows read: from the window start of its first row to its last row.
        var keyStart, keyEnd: Int
        /// Offset (in floats) of the lane's partial dK (and, at the same offset, dV) rows in the
        /// scratch; nil when the lane is its (sequence, KV head)'s only one.
        var partial: Int?
        var keyCount: Int { keyEnd - keyStart }
    }

    /// Aim for this many lanes in all: enough for 16 cores. More cost more than they gain: each
    /// lane of a split sequence zeroes, fills and is reduced from [keys, D] scratch for dK and dV
    /// (64 lanes per KV head made T = 512 backward 1.5x slower than 8).
    static let targetLanes = 32
    /// Fewest query rows (positions) worth a lane of their own.
    static let minimumRows = 64
    /// Scratch for partial sums, in floats per dK and per dV (64 MiB each).
    static let partialBudget = 1 << 24

    var lanes: [Lane] = []
    /// Lanes of (sequence b, KV head g): lanes[laneRanges[b * kvHeads + g]].
    var laneRanges: [Range<Int>] = []
    /// Whether sequence b's lanes sum into scratch (several lanes per KV head).
    var reduced: [Bool] = []
    var partialFloats = 0
    var widestKeyRange = 0

    init(dims: AttentionDims, batch: SequenceBatch, window: Int?) {
        let (hkv, d) = (dims.kvHeads, dims.headDim)
        func windowStart(_ position: Int) -> Int { window.map { max(0, position - $0 + 1) } ?? 0 }
        let active = (0..<dims.batch).filter { batch.lengths[$0] > 0 }.count * hkv
        var wanted = active == 0 ? 1 : max(1, (Self.targetLanes + active - 1) / active)
        func lanesFor(_ b: Int, _ wanted: Int) -> Int {
            min(wanted, max(1, batch.lengths[b] / Self.minimumRows))
        }
        // Halve the lanes until the partial sums fit the budget (a bound: every lane reading
        // every key up to the sequence's end).
        while wanted > 1 {
            let bound = (0..<dims.batch).reduce(0) { total, b in
                let count = lanesFor(b, wanted)
                return total + (count > 1 ? count * (batch.starts[b] + batch.lengths[b]) * d * hkv : 0)
            }
            if bound <= Self.partialBudget { break }
            wanted /= 2
        }

        for b in 0..<dims.batch {
            let length = batch.lengths[b], start = batch.starts[b]
            let count = length > 0 ? lanesFor(b, wanted) : 0
            // Split the rows so each lane gets about the same work: a row costs the keys it reads
            // plus a fixed overhead.
            var rowRanges: [Range<Int>] = []
            if count > 0 {
                func work(_ row: Int) -> Int { start + row + 1 - windowStart(start + row) + 16 }
                let total = (0..<length).reduce(0) { $0 + work($1) }
                var first = 0, done = 0
                for row in 0..<length {
                    done += work(row)
                    if done * count >= total * (rowRanges.count + 1) || row == length - 1 {
                        rowRanges.append(first..<(row + 1))
                        first = row + 1
                    }
                }
            }
            let isReduced = rowRanges.count > 1
            reduced.append(isReduced)
            for g in 0..<hkv {
                let begin = lanes.count
                for rows in rowRanges {
                    let keyStart = windowStart(start + rows.lowerBound), keyEnd = start + rows.upperBound
                    var lane = Lane(sequence: b, kvHead: g, firstRow: rows.lowerBound, rowCount: rows.count,
                                    keyStart: keyStart, keyEnd: keyEnd, partial: nil)
                    if isReduced {
                        lane.partial = partialFloats
                        partialFloats += lane.keyCount * d
                    }
                    widestKeyRange = max(widestKeyRange, lane.keyCount)
                    lanes.append(lane)
                }
                laneRanges.append(begin..<lanes.count)
            }
        }
    }

    /// Writes gradK and gradV of the sequences whose lanes summed into scratch: each key row is
    /// the sum of the partials of the lanes that read it, added in lane order (zero if none).
    func reduce(partialK: UnsafePointer<Float>, partialV: UnsafePointer<Float>,
                gradK: UnsafeMutablePointer<Float>, gradV: UnsafeMutablePointer<Float>, dims: AttentionDims) {
        let (s, hkv, d) = (dims.cacheLength, dims.kvHeads, dims.headDim)
        let sequences = (0..<dims.batch).filter { reduced[$0] }
        guard !sequences.isEmpty else { return }
        let rowsPerPair = s
        let items = sequences.count * hkv * rowsPerPair
        Parallel.chunks(items, grain: max(1, CPUBackend.elementGrain / max(1, 4 * d))) { range in
            for item in range {
                let key = item % rowsPerPair, pair = item / rowsPerPair
                let b = sequences[pair / hkv], g = pair % hkv
                let row = ((b * s + key) * hkv + g) * d
                func sum(_ partial: UnsafePointer<Float>, into destination: UnsafeMutablePointer<Float>) {
                    var first = true
                    for lane in lanes[laneRanges[b * hkv + g]] where lane.keyStart <= key && key < lane.keyEnd {
                        let source = partial + lane.partial! + (key - lane.keyStart) * d
                        if first { destination.update(from: source, count: d); first = false } else { axpy(1, source, destination, d) }
                    }
                    if first { destination.update(repeating: 0, count: d) }
                }
                sum(partialK, into: gradK + row)
                sum(partialV, into: gradV + row)
            }
        }
    }
}
