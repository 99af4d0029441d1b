import Foundation
import TillerCore
import TillerModels

/// Prompt steering captured as activation steering: for each triplet (x, x', y'), x'y' and xy' are
/// teacher-forced in one forward pass (with other triplets' pairs, batched), and at each chosen layer the residual
/// stream of the shared suffix is kept: h (on xy') and Delta_PS = residual(x'y') - residual(xy') at
/// the aligned rows. The format of the file: `CaptureLayout`, docs/steering.md.
public final class ActivationCapture {
    public let model: TransformerModel
    public let layers: [Int]

    /// `layers`: layer indices (0-based, the residual after block L), any order, no repeats.
    public init(model: TransformerModel, layers: [Int]) throws {
        guard !layers.isEmpty else { throw TillerError.invalidArgument(op: "capture", detail: "no layers to capture") }
        if let bad = layers.first(where: { $0 < 0 || $0 >= model.layerCount }) {
            throw TillerError.invalidArgument(op: "capture", detail: "layer \(bad): the model has \(model.layerCount) layers (0-\(model.layerCount - 1))")
        }
        guard Set(layers).count == layers.count else {
            throw TillerError.invalidArgument(op: "capture", detail: "layers \(layers) name a layer twice")
        }
        self.model = model
        self.layers = layers.sorted()
    }

    /// Captured rows: one triplet's, in the order of the rows of xy', or a batch's, triplet after triplet.
    public struct Rows {
        public var tokens: [Int32]
        public var positions: [Int32]
        public var roles: [Int32]
        /// Per captured layer (ascending): h [rows, hidden] and delta [rows, hidden], row-major.
        public var h: [[Float]]
        public var delta: [[Float]]
    }

    /// Checks a triplet against the model: ids in the vocabulary, both sequences within the context.
    public func check(_ triplet: CaptureTriplet, context: Int? = nil) throws {
        let limit = context ?? model.config.maxPositionEmbeddings ?? Int.max
        for (name, ids) in [("the steered sequence x'y'", triplet.steeredSequence), ("the unsteered sequence xy'", triplet.unsteeredSequence)] {
            if let bad = ids.first(where: { $0 < 0 || Int($0) >= model.vocabularySize }) {
                throw TillerError.invalidArgument(op: "capture", detail: "\(name) has token id \(bad), outside the model's vocabulary of \(model.vocabularySize)")
            }
            guard ids.count <= limit else {
                throw TillerError.invalidArgument(op: "capture", detail: "\(name) has \(ids.count) tokens, the model's context holds \(limit)")
            }
        }
    }

    /// Teacher-forces x'y' and xy' together and returns the shared rows' h and delta per layer.
    public func capture(_ triplet: CaptureTriplet) throws -> Rows {
        try capture(batch: [triplet])
    }

    /// Teacher-forces every triplet's x'y' and xy' in one padded pass (no KV cache, no logits,
    /// no block above the highest captured layer) and returns their shared rows in triplet order,
    /// one triplet after another (in the order given), as one `Rows`. Each row's values are those
    /// of its triplet captured alone up to float rounding: every op is per row or per sequence,
    /// but BLAS rounds a product's rows differently at different row counts.
    public func capture(batch triplets: [CaptureTriplet]) throws -> Rows {
        var rows = Rows(tokens: [], positions: [], roles: [], h: layers.map { _ in [] }, delta: layers.map { _ in [] })
        // Triplets that share no rows take no part in the pass.
        let live = triplets.filter { $0.sharedLength > 0 }
        guard !live.isEmpty else { return rows }
        var sequences: [[Int32]] = []
        for triplet in live {
            sequences.append(triplet.steeredSequence)
            sequences.append(triplet.unsteeredSequence)
        }
        // Triplet j's steered sequence is 2j, its unsteered one 2j + 1. Gathered: every steered
        // row, then every unsteered row.
        var steeredRows: [(sequence: Int, row: Int)] = [], unsteeredRows: [(sequence: Int, row: Int)] = []
        for (j, triplet) in live.enumerated() {
            let unsteered = sequences[2 * j + 1]
            let positions = triplet.rowPositions, offset = triplet.steeredOffset
            rows.tokens += positions.map { unsteered[$0] }
            rows.positions += positions.map { Int32($0) }
            rows.roles += positions.map { triplet.role(at: $0).rawValue }
            steeredRows += positions.map { (2 * j, $0 + offset) }
            unsteeredRows += positions.map { (2 * j + 1, $0) }
        }
        let hook = try CaptureHook(model: model, layers: layers, rows: steeredRows + unsteeredRows)
        try model.residualPass(sequences, through: layers.last!, hook: hook)
        for k in layers.indices {
            rows.h[k] = try model.backend.floats(hook.unsteered[k])
            rows.delta[k] = try model.backend.floats(hook.delta[k])
        }
        return rows
    }

    /// Padded rows (sequences times the longest) one pass may hold: enough for sgemm to run
    /// near its peak (it does from a few hundred rows), small enough that triplets of similar
    /// lengths fill a pass with little padding.
    public static let defaultBatchRows = 1024
    /// Bytes of captured rows (h and delta over every captured layer) one pass may hold, on the
    /// backend and again on the host: a 7B model's 32 layers take 1 MiB a row.
    public static let defaultBatchBytes = 256 << 20

    /// The triplets captured in one pass each (indices, each triplet once): sorted by length, so
    /// a pass pads its sequences little, and cut as many as fit in `maxRows` padded rows and
    /// `maxBytes` of captured rows, at least one. Triplets that share no rows come first and
    /// cost nothing (they take no part in a pass).
    public func batches(_ triplets: [CaptureTriplet], maxRows: Int = ActivationCapture.defaultBatchRows,
                        maxBytes: Int = ActivationCapture.defaultBatchBytes) -> [[Int]] {
        let rowBytes = 2 * layers.count * model.hiddenSize * MemoryLayout<Float>.size
        func length(_ t: CaptureTriplet) -> Int {
            t.sharedLength == 0 ? 0 : max(t.steeredSequence.count, t.unsteeredSequence.count)
        }
        let lengths = triplets.map(length)
        let order = triplets.indices.sorted { (lengths[$0], $0) < (lengths[$1], $1) }
        var result: [[Int]] = [], current: [Int] = []
        var pairs = 0, captured = 0
        for i in order {
            let m = triplets[i].sharedLength, live = m == 0 ? 0 : 1
            // Sorted: this triplet is the batch's longest.
            if !current.isEmpty && (2 * (pairs + live) * lengths[i] > maxRows || (captured + m) * rowBytes > maxBytes) {
                result.append(current)
                (current, pairs, captured) = ([], 0, 0)
            }
            current.append(i)
            pairs += live
            captured += m
        }
        if !current.isEmpty { result.append(current) }
        return result
    }

    /// Sizes of a capture of `triplets` before it runs.
    public func layout(_ triplets: [CaptureTriplet], model fingerprint: ModelFingerprint, source: String) throws -> CaptureLayout {
        let rows = triplets.reduce(0) { $0 + $1.sharedLength }
        return try CaptureLayout(info: CaptureInfo(layers: layers, hiddenSize: model.hiddenSize, rows: rows,
                                                   triplets: triplets.count, model: fingerprint, source: source))
    }

    /// Captures every triplet into `path`, a batch of triplets (`batches`) in memory at a time,
    /// each triplet's rows written at their place in triplet order, calling `progress` with
    /// (triplets done, rows written) after each triplet. The layout is
    /// announced through `starting` before the first forward pass. A triplet whose captured rows
    /// hold NaN or Inf is an error at `label(i)` (default "triplet i"; the command gives
    /// "file:line") and nothing is written: a capture that fits NaN is worse than none. `plan`
    /// fixes the passes (indices into `triplets`, each once) instead of `batches`: a shard runs
    /// the whole run's passes, so its rows have the whole run's bits (docs/cluster.md).
    @discardableResult
    public func run(_ triplets: [CaptureTriplet], to path: String, model fingerprint: ModelFingerprint, source: String,
                    label: (Int) -> String = { "triplet \($0)" },
                    maxBatchRows: Int = ActivationCapture.defaultBatchRows,
                    plan: [[Int]]? = nil,
                    starting: ((CaptureLayout) -> Void)? = nil,
                    progress: ((Int, Int) -> Void)? = nil) throws -> CaptureLayout {
        for (i, triplet) in triplets.enumerated() {
            do { try check(triplet) } catch let error as TillerError {
                throw TillerError.invalidArgument(op: "capture", detail: "triplet \(i): \(CapturePreparer.detail(error))")
            }
        }
        let layout = try self.layout(triplets, model: fingerprint, source: source)
        starting?(layout)
        let writer = try CaptureWriter(path: path, layout: layout)
        // Triplet i's rows start at row firstRow[i] of the file (triplet order), wherever its pass runs.
        var firstRow = [Int](), total = 0
        for triplet in triplets {
            firstRow.append(total)
            total += triplet.sharedLength
        }
        let d = model.hiddenSize
        var done = 0
        do {
            for indices in plan ?? batches(triplets, maxRows: maxBatchRows) {
                let rows = try capture(batch: indices.map { triplets[$0] })
                let counts = indices.map { triplets[$0].sharedLength }
                if let (i, layer) = firstNonFinite(rows, rowCounts: counts) {
                    throw TillerError.io(path: label(indices[i]), detail: "the activations at layer \(layer) hold NaN or Inf (the steered or unsteered prompt drives the model out of Float range); nothing written")
                }
                var r0 = 0
                for (i, m) in zip(indices, counts) {
                    let rowSpan = r0..<(r0 + m), span = (r0 * d)..<((r0 + m) * d)
                    try writer.write(atRow: firstRow[i], tokens: Array(rows.tokens[rowSpan]), example: [Int32](repeating: Int32(i), count: m),
                                     position: Array(rows.positions[rowSpan]), role: Array(rows.roles[rowSpan]),
                                     h: rows.h.map { Array($0[span]) }, delta: rows.delta.map { Array($0[span]) })
                    r0 += m
                    done += 1
                    progress?(done, writer.rowsWritten)
                }
            }
            try writer.finish()
        } catch {
            writer.abandon()
            throw error
        }
        return layout
    }

    /// The first triplet of a batch (its index in the batch) with a NaN or Inf among its rows, and
    /// the first captured layer where it has one; nil when every value is finite.
    private func firstNonFinite(_ rows: Rows, rowCounts: [Int]) -> (triplet: Int, layer: Int)? {
        let d = model.hiddenSize
        // The lowest bad row over every layer decides the triplet.
        var firstRow: Int?
        for k in layers.indices {
            for values in [rows.h[k], rows.delta[k]] {
                if let bad = values.firstIndex(where: { !$0.isFinite }) { firstRow = min(firstRow ?? Int.max, bad / d) }
            }
        }
        guard let firstRow else { return nil }
        var r0 = 0
        for (i, m) in rowCounts.enumerated() {
            if firstRow < r0 + m {
                let span = (r0 * d)..<((r0 + m) * d)
                let k = layers.indices.first { k in
                    !(rows.h[k][span].allSatisfy(\.isFinite) && rows.delta[k][span].allSatisfy(\.isFinite))
                }!
                return (i, layers[k])
            }
            r0 += m
        }
        return nil
    }
}

/// Gathers, at each captured layer, the steered and unsteered rows of the shared suffix and their
/// difference, on the backend (nothing is downloaded during the pass).
final class CaptureHook: ResidualStreamHook {
    let layers: [Int]
    /// The rows to gather as (sequence, row within it): the steered rows, then the unsteered ones.
    /// Their places in the padded batch are known from the pass's step (`prepare`).
    let rows: [(sequence: Int, row: Int)]
    var indexTensor: Tensor?
    let gathered: [Tensor]
    /// Per captured layer: h on xy' [m, d] and delta [m, d] (views into `gathered`' scratch).
    var unsteered: [Tensor] = []
    var delta: [Tensor] = []
    let negated: Tensor

    init(model: TransformerModel, layers: [Int], rows: [(sequence: Int, row: Int)]) throws {
        let be = model.backend, d = model.hiddenSize, m = rows.count / 2
        self.layers = layers
        self.rows = rows
        gathered = try layers.map { _ in try be.empty([2 * m, d]) }
        negated = try be.empty([m, d])
        for g in gathered {
            unsteered.append(try g.slice(rows: m, count: m))
            delta.append(try g.slice(rows: 0, count: m))
        }
    }

    func prepare(for step: ForwardStep, backend: Backend) throws {
        let t = step.rowsPerSequence
        indexTensor = try backend.tensor(ints: rows.map { Int32($0.sequence * t + $0.row) }, shape: [rows.count])
    }

    func afterBlock(_ layer: Int, residual: Tensor, step: ForwardStep, backend: Backend) throws {
        guard let k = layers.firstIndex(of: layer), let indexTensor else { return }
        try backend.gatherRows(residual, indices: indexTensor, out: gathered[k])
        // delta = steered - unsteered, written over the steered half.
        try backend.scale(unsteered[k], by: -1, out: negated)
        try backend.add(delta[k], negated, out: delta[k])
    }
}
