import TillerCore
import TillerModels
import TillerSteering

/// One padded batch of triplets in a training pass, shared by every method's evaluator (the
/// heads of a steering file, ReFT-r1) so the objectives of docs/training.md are computed in one
/// place: the rows the method acts on, the MSE's targets, and the pass itself (the forward with
/// the method's hook, the objective's gradient at the top, the backward).
struct TrainingBatch {
    let triplets: [TrainingTriplet]
    let sequences: [[Int32]]
    /// Rows per padded sequence (T) and in the whole batch (B * T).
    let rowsPerSequence: Int, rows: Int
    /// Each triplet's steered positions P_i, as rows of the padded batch.
    let steeredRows: [[Int]]
    let location: SteeringLocation

    init(_ triplets: [TrainingTriplet], location: SteeringLocation) {
        self.triplets = triplets
        self.location = location
        sequences = triplets.map(\.ids.unsteeredSequence)
        let t = sequences.map(\.count).max() ?? 0
        rowsPerSequence = t
        rows = triplets.count * t
        steeredRows = triplets.enumerated().map { i, triplet in triplet.steeredPositions(location).map { i * t + $0 } }
    }

    /// i32 [rows]: 0 on a steered row, -1 elsewhere (padding included): one head per layer.
    func headIndex(_ backend: Backend) throws -> Tensor {
        var index = [Int32](repeating: -1, count: rows)
        for row in steeredRows.joined() { index[row] = 0 }
        return try backend.tensor(ints: index, shape: [rows])
    }

    /// The MSE's terms over `layers`, from the prompted run (no intervention, no gradient; only
    /// the compared rows kept); nil when no triplet of the batch has a compared position.
    func mseTerms(_ model: TransformerModel, layers: [Int], gradientScale: Float) throws -> MSETerms? {
        let be = model.backend, d = model.hiddenSize, t = rowsPerSequence
        let prompted = triplets.map(\.ids.steeredSequence)
        let tp = prompted.map(\.count).max()!
        var rows: [Int32] = [], promptedRows: [Int32] = []
        for (i, triplet) in triplets.enumerated() {
            for (steered, aligned) in triplet.comparedPositions(location) {
                rows.append(Int32(i * t + steered))
                promptedRows.append(Int32(i * tp + aligned))
            }
        }
        guard !rows.isEmpty else { return nil }
        let saved = try model.trainingForward(prompted)
        let promptedIndex = try be.tensor(ints: promptedRows, shape: [promptedRows.count])
        var negated: [Int: Tensor] = [:], squared: [Int: Tensor] = [:]
        for layer in layers {
            let target = try be.empty([rows.count, d])
            try be.gatherRows(saved.residual(after: layer), indices: promptedIndex, out: target)
            try be.scale(target, by: -1, out: target)
            negated[layer] = target
            squared[layer] = try be.empty([rows.count])
        }
        return MSETerms(rows: try be.tensor(ints: rows, shape: [rows.count]), negatedTargets: negated, gradientScale: gradientScale,
                        squaredDistances: squared, differences: try be.empty([rows.count, d]))
    }

    /// Runs the pass: the forward with `hook`, `afterForward` (host work on what the forward
    /// kept, before any gradient flows), the LL's gradient at the top, the backward down to
    /// `lowest`. Returns this batch's share of the objective (over `positions` of the whole set).
    func run(_ model: TransformerModel, objective: Objective, hook: ResidualGradientHook, mse: MSETerms?, lowest: Int,
             positions: Int, objectiveScale: Double, afterForward: () throws -> Void = {}) throws -> Double {
        let be = model.backend, d = model.hiddenSize, t = rowsPerSequence
        let saved = try model.trainingForward(sequences, hook: hook)
        try afterForward()
        let gradient = try be.tensor([Float](repeating: 0, count: rows * d), shape: [rows, d])
        var value = 0.0
        if objective == .ll {
            var rows: [Int32] = [], targets: [Int32] = []
            for (i, triplet) in triplets.enumerated() {
                let prompt = triplet.ids.unsteeredPrompt.count
                for (j, token) in triplet.ids.completion.enumerated() {
                    rows.append(Int32(i * t + prompt - 1 + j))
                    targets.append(token)
                }
            }
            if !rows.isEmpty {
                let scale = Float(objectiveScale / Double(positions))
                let losses = try model.logitLoss(saved, rows: rows, targets: targets, scales: [Float](repeating: scale, count: rows.count),
                                                 gradient: gradient)
                value = losses.reduce(0.0) { $0 + Double($1) } / Double(positions)
            }
        }
        try model.backward(saved, gradient: gradient, hook: hook, lowest: lowest)
        if let mse {
            for layer in mse.negatedTargets.keys.sorted() {
                value += try be.floats(mse.squaredDistances[layer]!).reduce(0.0) { $0 + Double($1) } / Double(positions)
            }
        }
        return value
    }
}

/// The MSE's terms in one batch: the compared rows of the steered pass and, per compared layer,
/// minus the prompted stream at the aligned rows.
struct MSETerms {
    let rows: Tensor
    let negatedTargets: [Int: Tensor]
    /// d(loss)/d(difference) = 2 / (all compared positions) * difference.
    let gradientScale: Float
    /// Layer -> each compared row's squared distance, written by the backward.
    let squaredDistances: [Int: Tensor]
    let differences: Tensor

    /// At a compared layer: the squared distances, and their gradient added to the stream's.
    func addGradient(_ layer: Int, steered: Tensor, gradient: Tensor, backend be: any GradientBackend) throws {
        guard let negated = negatedTargets[layer] else { return }
        try be.gatherRows(steered, indices: rows, out: differences)
        try be.add(differences, negated, out: differences)
        try be.rowDot(differences, differences, out: squaredDistances[layer]!)
        try be.scale(differences, by: gradientScale, out: differences)
        try be.scatterAddRows(differences, indices: rows, into: gradient)
    }
}

extension Objective {
    /// The objective's normaliser over a whole triplet set: the compared positions (MSE) or the
    /// tokens of y' (LL); an error when there is none.
    func positions(_ triplets: [TrainingTriplet], location: SteeringLocation) throws -> Int {
        let positions: Int
        switch self {
        case .mse: positions = triplets.reduce(0) { $0 + $1.comparedPositions(location).count }
        case .ll: positions = triplets.reduce(0) { $0 + $1.ids.completion.count }
        }
        guard positions > 0 else {
            throw TillerError.invalidArgument(op: "loss", detail: self == .mse
                ? "no triplet has a steered position in the suffix xy' shares with x'y': nothing to compare"
                : "every completion is empty: no token to score")
        }
        return positions
    }
}
