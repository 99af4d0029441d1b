import Foundation
import TillerCore
import TillerModels

/// ||Delta_PS|| statistics of one captured layer: over every row, the prompt rows (roles 0 and 1),
/// the answer rows (role 2) and the last prompt token alone (role 1).
public struct LayerStatistics: Sendable, Equatable {
    public var layer: Int
    public var all: NormStatistics
    public var prompt: NormStatistics
    public var answer: NormStatistics
    public var lastPrompt: NormStatistics
    /// ||h||, the unsteered residual stream at the same rows: the scale Delta is measured against.
    public var residual: NormStatistics

    /// From each row's norm and role (and the norms of h, when known).
    public init(layer: Int, norms: [Float], roles: [Int32], residualNorms: [Float] = []) {
        precondition(norms.count == roles.count)
        self.layer = layer
        residual = NormStatistics(residualNorms)
        all = NormStatistics(norms)
        prompt = NormStatistics(zip(norms, roles).lazy.filter { $0.1 != CaptureRole.answer.rawValue }.map(\.0))
        answer = NormStatistics(zip(norms, roles).lazy.filter { $0.1 == CaptureRole.answer.rawValue }.map(\.0))
        lastPrompt = NormStatistics(zip(norms, roles).lazy.filter { $0.1 == CaptureRole.lastPrompt.rawValue }.map(\.0))
    }
}

/// Delta_PS projected on a head's direction (u = z / ||z||) at one layer.
public struct ProjectionStatistics: Sendable, Equatable {
    public var layer: Int
    /// Mean of Delta_t . u over all rows, and over the answer rows.
    public var mean: Double
    public var meanAnswer: Double?
    /// sum (Delta_t . u)^2 / sum ||Delta_t||^2: the share of Delta's squared norm along u.
    public var explainedShare: Double?
}

/// One steering file replayed on xy' and compared with Delta_PS.
public struct SteeringReplay: Sendable {
    public struct Layer: Sendable, Equatable {
        public var layer: Int
        /// Relative RMSE of the accumulated intervention against Delta_PS over every row and over
        /// the answer rows (nil where Delta is zero throughout).
        public var relativeRMSE: Double?
        public var relativeRMSEAnswer: Double?
        public var all: RelativeRMSE
        public var answer: RelativeRMSE
        /// Delta projected on the head's direction, at captured layers where the file has a head.
        public var projection: ProjectionStatistics?
    }

    /// The steering file (or a name for an in-memory intervention).
    public var name: String
    public var method: String
    public var alpha: Float
    public var location: String
    public var layers: [Layer]
    /// Per layer with a PSR or projection head: lambda_t of each capture row (NaN where the head
    /// did not act), for the report's colouring. Empty when the replay was not run (no model) and
    /// for constant heads (lambda is 1 wherever they act).
    public var lambdas: [Int: [Float]]
    /// Per captured head layer: Delta_t . u of each row.
    public var projections: [Int: [Float]]
}

/// Everything `tiller analyze` computes on a capture.
public struct CaptureAnalysis: Sendable {
    public var info: CaptureInfo
    public var layers: [LayerStatistics]
    /// Per layer: ||Delta_PS|| of each row.
    public var norms: [Int: [Float]]
    public var replays: [SteeringReplay]
}

/// Computes the statistics of a capture with a backend: the per-row norms and projections run as
/// backend reductions (rowNorm, rowDot) over chunks of rows uploaded from the memory-mapped file,
/// and replays of steering files run the model.
public final class CaptureAnalyzer {
    public let capture: CaptureFile
    public let backend: Backend
    /// Rows uploaded per reduction (about 32 MiB of f32).
    public let chunkRows: Int

    public init(capture: CaptureFile, backend: Backend) {
        self.capture = capture
        self.backend = backend
        chunkRows = max(1, (32 << 20) / max(1, capture.hiddenSize * 4))
    }

    /// Runs `body` on each chunk of layer `layer`'s delta (or h) uploaded to the backend, gathering
    /// the one value per row it returns.
    private func perRow(layer: Int, delta: Bool = true, _ body: (Tensor, Tensor) throws -> Void) throws -> [Float] {
        let n = capture.rowCount, d = capture.hiddenSize
        var out: [Float] = []
        out.reserveCapacity(n)
        var r0 = 0
        while r0 < n {
            let m = min(chunkRows, n - r0)
            let x = try backend.empty([m, d]), y = try backend.empty([m])
            try backend.upload(try capture.bytes(layer: layer, delta: delta, rows: r0..<(r0 + m)), to: x)
            try body(x, y)
            out += try backend.floats(y)
            r0 += m
        }
        return out
    }

    /// ||Delta_t|| of every row at `layer`.
    public func deltaNorms(layer: Int) throws -> [Float] {
        try perRow(layer: layer) { x, y in try backend.rowNorm(x, out: y) }
    }

    /// ||h_t|| (the unsteered residual) of every row at `layer`.
    public func residualNorms(layer: Int) throws -> [Float] {
        try perRow(layer: layer, delta: false) { x, y in try backend.rowNorm(x, out: y) }
    }

    /// Delta_t . u of every row at `layer`, u = direction / ||direction||.
    public func projections(layer: Int, direction: [Float]) throws -> [Float] {
        guard direction.count == capture.hiddenSize else {
            throw TillerError.shapeMismatch(op: "analyze", detail: "direction of \(direction.count) values, the capture's hidden size is \(capture.hiddenSize)")
        }
        let norm = direction.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        guard norm > 0 else { return [Float](repeating: 0, count: capture.rowCount) }
        let u = try backend.tensor(direction.map { Float(Double($0) / norm) }, shape: [capture.hiddenSize])
        return try perRow(layer: layer) { x, y in try backend.rowDot(x, u, out: y) }
    }

    /// Norms and statistics of every captured layer.
    public func analyze() throws -> CaptureAnalysis {
        var norms: [Int: [Float]] = [:], stats: [LayerStatistics] = []
        for layer in capture.layers {
            let n = try deltaNorms(layer: layer)
            norms[layer] = n
            stats.append(LayerStatistics(layer: layer, norms: n, roles: capture.role, residualNorms: try residualNorms(layer: layer)))
        }
        return CaptureAnalysis(info: capture.info, layers: stats, norms: norms, replays: [])
    }

    /// The projections of Delta on each head's direction at the captured layers the intervention
    /// steers, without running the model.
    public func projections(_ intervention: Intervention, norms: [Int: [Float]]) throws -> ([Int: [Float]], [Int: ProjectionStatistics]) {
        var values: [Int: [Float]] = [:], stats: [Int: ProjectionStatistics] = [:]
        for layer in intervention.layers where capture.layers.contains(layer) {
            let p = try projections(layer: layer, direction: intervention.heads[layer]!.z)
            values[layer] = p
            let answerRows = capture.role.indices.filter { capture.role[$0] == CaptureRole.answer.rawValue }
            let squares = p.reduce(0.0) { $0 + Double($1) * Double($1) }
            let total = (norms[layer] ?? []).reduce(0.0) { $0 + Double($1) * Double($1) }
            stats[layer] = ProjectionStatistics(
                layer: layer, mean: p.isEmpty ? 0 : p.reduce(0.0) { $0 + Double($1) } / Double(p.count),
                meanAnswer: answerRows.isEmpty ? nil : answerRows.reduce(0.0) { $0 + Double(p[$1]) } / Double(answerRows.count),
                explainedShare: total > 0 ? squares / total : nil)
        }
        return (values, stats)
    }

    /// The rebuilt xy' of triplet `e`: x (its prompt ids, from the triplets file) followed by y',
    /// the capture's answer rows; checked against the capture's rows.
    public func unsteeredSequence(_ e: Int, prompt x: [Int32]) throws -> [Int32] {
        let rows = capture.exampleRows[e]
        var completion: [Int32] = []
        for r in rows {
            let p = Int(capture.position[r]), token = capture.tokens[r]
            if capture.role[r] == CaptureRole.answer.rawValue {
                guard p == x.count + completion.count else {
                    throw TillerError.invalidArgument(op: "analyze", detail: "triplet \(e): answer row at position \(p), expected \(x.count + completion.count): the triplets file does not match the capture")
                }
                completion.append(token)
            } else {
                guard p < x.count, x[p] == token else {
                    throw TillerError.invalidArgument(op: "analyze", detail: "triplet \(e): the prompt token at position \(p) differs from the capture's (\(token)): the triplets file or tokenizer does not match the capture")
                }
                guard (capture.role[r] == CaptureRole.lastPrompt.rawValue) == (p == x.count - 1) else {
                    throw TillerError.invalidArgument(op: "analyze", detail: "triplet \(e): the prompt has \(x.count) tokens, the capture's roles say otherwise")
                }
            }
        }
        return x + completion
    }

    /// Replays `intervention` on every triplet's xy' (x from `unsteeredPrompts`, y' from the
    /// capture) with the steering hook, and compares the accumulated change of the residual stream
    /// at each captured layer (the steered residual minus the capture's h: the method's heads at
    /// that layer and below, and their effects carried up) with Delta_PS, row by row:
    /// relative RMSE = sqrt(sum ||I_t - D_t||^2 / sum ||D_t||^2). Records lambda_t at every head layer.
    /// `model` must be the captured model, on this analyzer's backend.
    public func replay(_ intervention: Intervention, name: String, model: TransformerModel, unsteeredPrompts: [[Int32]],
                       systemLengths: [Int], norms: [Int: [Float]], progress: ((Int) -> Void)? = nil) throws -> SteeringReplay {
        guard model.backend === backend else {
            throw TillerError.wrongBackend(op: "analyze", detail: "the model runs on \(model.backend.name), the analyzer on \(backend.name)")
        }
        guard model.hiddenSize == capture.hiddenSize, capture.layers.allSatisfy({ $0 < model.layerCount }) else {
            throw TillerError.invalidArgument(op: "analyze", detail: "the model (hidden size \(model.hiddenSize), \(model.layerCount) layers) is not the captured one (hidden size \(capture.hiddenSize), layers \(capture.layers))")
        }
        guard unsteeredPrompts.count == capture.info.triplets, systemLengths.count == unsteeredPrompts.count else {
            throw TillerError.invalidArgument(op: "analyze", detail: "\(unsteeredPrompts.count) prompts for a capture of \(capture.info.triplets) triplets")
        }
        let layers = capture.layers, d = capture.hiddenSize
        let steering = try SteeringHook(model: model, interventions: [intervention])
        var all = [RelativeRMSE](repeating: RelativeRMSE(), count: layers.count), answer = all
        var lambdas: [Int: [Float]] = [:]
        // lambda_t is worth showing only where it varies: PSR and projection heads, not constants.
        for layer in intervention.layers where intervention.heads[layer]!.activation != .constant {
            lambdas[layer] = [Float](repeating: .nan, count: capture.rowCount)
        }
        var cache: KVCache?
        for e in 0..<capture.info.triplets {
            defer { progress?(e + 1) }
            let rows = capture.exampleRows[e]
            guard !rows.isEmpty else { continue }
            let x = unsteeredPrompts[e]
            let sequence = try unsteeredSequence(e, prompt: x)
            if cache == nil || cache!.capacity < sequence.count {
                cache = try model.makeCache(batchSize: 1, capacity: max(sequence.count, 64))
            }
            cache!.reset(0)
            try steering.setRequests([SequenceSteering([SteeringApplication(intervention: 0)], systemLength: systemLengths[e])])
            steering.assign(slot: 0, request: 0, promptLength: x.count)
            steering.recordedRequest = nil
            steering.recordedRequest = 0
            let m = rows.count
            let indices = try backend.tensor(ints: rows.map { capture.position[$0] }, shape: [m])
            let hook = ReplayHook(steering: steering, layers: layers, indices: indices,
                                  gathered: try layers.map { _ in try backend.empty([m, d]) })
            try hook.prepare(for: ForwardStep(tokens: [sequence], cacheLengths: [0]), backend: backend)
            _ = try model.forward([sequence], cache: cache!, logits: .last, hook: hook)

            let h = try backend.empty([m, d]), delta = try backend.empty([m, d]), errors = try backend.empty([m])
            let roles = rows.map { capture.role[$0] }
            for (k, layer) in layers.enumerated() {
                // error = (steered - h) - delta, on the backend.
                let g = hook.gathered[k]
                try backend.upload(try capture.bytes(layer: layer, delta: false, rows: rows), to: h)
                try backend.upload(try capture.bytes(layer: layer, delta: true, rows: rows), to: delta)
                try backend.scale(h, by: -1, out: h)
                try backend.add(g, h, out: g)
                try backend.scale(delta, by: -1, out: delta)
                try backend.add(g, delta, out: g)
                try backend.rowNorm(g, out: errors)
                let errorNorms = try backend.floats(errors)
                let deltaNorms = Array((norms[layer] ?? [])[rows])
                all[k].add(errorNorms: errorNorms, deltaNorms: deltaNorms)
                let isAnswer = roles.map { $0 == CaptureRole.answer.rawValue }
                answer[k].add(errorNorms: zip(errorNorms, isAnswer).filter(\.1).map(\.0),
                              deltaNorms: zip(deltaNorms, isAnswer).filter(\.1).map(\.0))
            }
            var rowOfPosition: [Int: Int] = [:]
            for r in rows { rowOfPosition[Int(capture.position[r])] = r }
            for record in try steering.recordedLambdas() {
                guard let r = rowOfPosition[record.position] else { continue }
                lambdas[record.layer]?[r] = record.lambda
            }
        }
        let (projectionValues, projectionStats) = try projections(intervention, norms: norms)
        return SteeringReplay(
            name: name, method: intervention.method, alpha: intervention.alpha, location: intervention.location.name,
            layers: layers.enumerated().map { k, layer in
                SteeringReplay.Layer(layer: layer, relativeRMSE: all[k].value, relativeRMSEAnswer: answer[k].value,
                                     all: all[k], answer: answer[k], projection: projectionStats[layer])
            },
            lambdas: lambdas, projections: projectionValues)
    }

    /// A steering file's projections alone (no model to replay it on).
    public func projectionsOnly(_ intervention: Intervention, name: String, norms: [Int: [Float]]) throws -> SteeringReplay {
        let (values, stats) = try projections(intervention, norms: norms)
        return SteeringReplay(name: name, method: intervention.method, alpha: intervention.alpha, location: intervention.location.name,
                              layers: capture.layers.map {
                                  SteeringReplay.Layer(layer: $0, relativeRMSE: nil, relativeRMSEAnswer: nil, all: RelativeRMSE(),
                                                       answer: RelativeRMSE(), projection: stats[$0])
                              },
                              lambdas: [:], projections: values)
    }
}

/// Steering, then gathering the captured rows of each captured layer (after that layer's heads).
final class ReplayHook: ResidualStreamHook {
    let steering: SteeringHook
    let layers: [Int]
    let indices: Tensor
    let gathered: [Tensor]

    init(steering: SteeringHook, layers: [Int], indices: Tensor, gathered: [Tensor]) {
        self.steering = steering
        self.layers = layers
        self.indices = indices
        self.gathered = gathered
    }

    func prepare(for step: ForwardStep, backend: Backend) throws {
        try steering.prepare(for: step, backend: backend)
    }

    func afterBlock(_ layer: Int, residual: Tensor, step: ForwardStep, backend: Backend) throws {
        try steering.afterBlock(layer, residual: residual, step: step, backend: backend)
        guard let k = layers.firstIndex(of: layer) else { return }
        try backend.gatherRows(residual, indices: indices, out: gathered[k])
    }
}
