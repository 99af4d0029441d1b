import Foundation
import TillerCore
import TillerModels

/// Prompt steering captured as activation steering: for each triplet (x, x', y'), x'y' and xy' are
/// teacher-forced in one forward pass (a batch of two), and at each chosen layer the residual
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

    /// One triplet's captured rows, in the order of the rows of xy'.
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

    private var cache: KVCache?

    /// Teacher-forces x'y' and xy' together and returns the shared rows' h and delta per layer.
    public func capture(_ triplet: CaptureTriplet) throws -> Rows {
        let steered = triplet.steeredSequence, unsteered = triplet.unsteeredSequence
        let positions = Array(triplet.rowPositions)
        let m = positions.count
        var rows = Rows(tokens: positions.map { unsteered[$0] }, positions: positions.map { Int32($0) },
                        roles: positions.map { triplet.role(at: $0).rawValue },
                        h: [], delta: [])
        guard m > 0 else {
            rows.h = layers.map { _ in [] }
            rows.delta = rows.h
            return rows
        }
        let longest = max(steered.count, unsteered.count)
        if cache == nil || cache!.capacity < longest {
            cache = try model.makeCache(batchSize: 2, capacity: max(longest, cache?.capacity ?? 0, 64))
        }
        let cache = self.cache!
        cache.reset(0)
        cache.reset(1)
        // Rows of the padded batch [2 * T]: steered sequence 0, unsteered sequence 1.
        let t = longest
        let offset = triplet.steeredOffset
        var indices = positions.map { Int32($0 + offset) }          // steered rows
        indices += positions.map { Int32(t + $0) }                   // unsteered rows
        let hook = try CaptureHook(model: model, layers: layers, indices: indices, rows: m)
        _ = try model.forward([steered, unsteered], cache: cache, logits: .last, hook: hook)
        for k in layers.indices {
            rows.h.append(try model.backend.floats(hook.unsteered[k]))
            rows.delta.append(try model.backend.floats(hook.delta[k]))
        }
        return rows
    }

    /// Sizes of a capture of `triplets` before it runs.
    public func layout(_ triplets: [CaptureTriplet], model fingerprint: ModelFingerprint, source: String) throws -> CaptureLayout {
        let rows = triplets.reduce(0) { $0 + $1.sharedLength }
        return try CaptureLayout(info: CaptureInfo(layers: layers, hiddenSize: model.hiddenSize, rows: rows,
                                                   triplets: triplets.count, model: fingerprint, source: source))
    }

    /// Captures every triplet into `path`, one triplet in memory at a time, calling `progress` with
    /// (triplets done, rows written) after each. The layout is announced through `starting`
    /// before the first forward pass. A triplet whose captured rows hold NaN or Inf is an error at
    /// `label(i)` (default "triplet i"; the command gives "file:line") and nothing is written:
    /// a capture that fits NaN is worse than none.
    @discardableResult
    public func run(_ triplets: [CaptureTriplet], to path: String, model fingerprint: ModelFingerprint, source: String,
                    label: (Int) -> String = { "triplet \($0)" },
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
        do {
            for (i, triplet) in triplets.enumerated() {
                let rows = try capture(triplet)
                for (k, layer) in layers.enumerated() where !(rows.h[k].allSatisfy(\.isFinite) && rows.delta[k].allSatisfy(\.isFinite)) {
                    throw TillerError.io(path: label(i), detail: "the activations at layer \(layer) hold NaN or Inf (the steered or unsteered prompt drives the model out of Float range); nothing written")
                }
                try writer.append(tokens: rows.tokens, example: [Int32](repeating: Int32(i), count: rows.tokens.count),
                                  position: rows.positions, role: rows.roles, h: rows.h, delta: rows.delta)
                progress?(i + 1, writer.rowsWritten)
            }
            try writer.finish()
        } catch {
            writer.abandon()
            throw error
        }
        return layout
    }
}

/// Gathers, at each captured layer, the steered and unsteered rows of the shared suffix and their
/// difference, on the backend (nothing is downloaded during the pass).
final class CaptureHook: ResidualStreamHook {
    let layers: [Int]
    let indexTensor: Tensor
    let gathered: [Tensor]
    /// Per captured layer: h on xy' [m, d] and delta [m, d] (views into `gathered`' scratch).
    var unsteered: [Tensor] = []
    var delta: [Tensor] = []
    let negated: Tensor

    init(model: TransformerModel, layers: [Int], indices: [Int32], rows m: Int) throws {
        let be = model.backend, d = model.hiddenSize
        self.layers = layers
        indexTensor = try be.tensor(ints: indices, shape: [2 * m])
        gathered = try layers.map { _ in try be.empty([2 * m, d]) }
        negated = try be.empty([m, d])
        for g in gathered {
            unsteered.append(try g.slice(rows: m, count: m))
            delta.append(try g.slice(rows: 0, count: m))
        }
    }

    func afterBlock(_ layer: Int, residual: Tensor, step: ForwardStep, backend: Backend) throws {
        guard let k = layers.firstIndex(of: layer) else { return }
        try backend.gatherRows(residual, indices: indexTensor, out: gathered[k])
        // delta = steered - unsteered, written over the steered half.
        try backend.scale(unsteered[k], by: -1, out: negated)
        try backend.add(delta[k], negated, out: delta[k])
    }
}
