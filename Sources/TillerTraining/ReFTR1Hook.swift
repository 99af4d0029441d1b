import TillerCore
import TillerModels

/// ReFT-r1 (AxBench's TopKReLUIntervention) in a training pass, built from two PSR heads per
/// layer so it needs no backend op of its own (docs/training.md):
///
/// Forward at a steered layer: a detector head (relu, w, bias 0, alpha 0: the stream unchanged)
/// gives the latents a_t = ReLU(w . h_t); the host picks each sequence's k largest over its steered
/// rows, c_i = their mean; then a constant head with z = w and per-row alpha alpha_i * c_i adds the
/// steering vector to every steered row.
///
/// Backward, with g = dL/dh_out: the constant head's adjoint passes g through and gives
/// dz = sum alpha_i c_i g_t; dL/dc_i = alpha_i sum_t g_t . w (a row dot, summed on the host); the
/// detector's adjoint with alpha 0 and a gradient on its latents (dc_i / k_i on the top rows, the L1
/// weight / |P_i| on the others; relu's slope zeroes it where a_t = 0) adds s_t w into g and gives
/// dw. The tied direction's gradient is dw + dz.
final class ReFTR1Hook: ResidualGradientHook {
    struct Layer {
        /// f32 [1, d]: the direction w.
        let direction: Tensor
        let detector: PSRHeads
        let constant: PSRHeads
        let detectorGradients: PSRHeadGradients
        let constantGradients: PSRHeadGradients
    }

    let layers: [Int: Layer]
    let rows: Int
    let headIndex: Tensor
    /// f32 [rows] of zeros: the detector's alpha.
    let zeros: Tensor
    /// Each sequence's steered rows and alpha (the triplet's).
    let steeredRows: [[Int]]
    let alphas: [Float]
    let topK: Int
    /// d loss / d(a_t) of a steered row outside the top k, before dividing by |P_i|: C / n.
    let l1Gradient: Float
    /// False: only the detectors run (the latents measured on the unsteered stream).
    let steers: Bool
    let mse: MSETerms?
    /// Scratch: lambda of the heads, the rows' g . w.
    let lambda: Tensor, dots: Tensor

    /// Written by the forward, per layer: the latents of every row, each sequence's top rows and
    /// the per-row alpha of the constant head.
    private(set) var latents: [Int: [Float]] = [:]
    private(set) var topRows: [Int: [[Int]]] = [:]
    private var rowAlphas: [Int: Tensor] = [:]
    /// sum over layers and sequences of (1 / |P_i|) sum of the latents outside the top k.
    private(set) var outsideSum = 0.0

    init(directions: [Int: [Float]], batch: TrainingBatch, topK: Int, l1Gradient: Float, steers: Bool, mse: MSETerms?,
         backend be: Backend) throws {
        let d = directions.values.first?.count ?? 0
        let zeroRow = try be.tensor([Float](repeating: 0, count: d), shape: [1, d])
        let relu = try be.tensor(ints: [PSRActivation.relu.rawValue], shape: [1])
        let constant = try be.tensor(ints: [PSRActivation.constant.rawValue], shape: [1])
        var layers: [Int: Layer] = [:]
        for (layer, w) in directions {
            let direction = try be.tensor(w, shape: [1, d])
            let bias = try be.tensor([Float(0)], shape: [1])
            func gradients() throws -> PSRHeadGradients {
                PSRHeadGradients(w: try be.empty([1, d]), bias: try be.empty([1]), z: try be.empty([1, d]))
            }
            layers[layer] = Layer(direction: direction,
                                  detector: PSRHeads(w: direction, bias: bias, z: zeroRow, activation: relu),
                                  constant: PSRHeads(w: zeroRow, bias: bias, z: direction, activation: constant),
                                  detectorGradients: try gradients(), constantGradients: try gradients())
        }
        self.layers = layers
        rows = batch.rows
        headIndex = try batch.headIndex(be)
        zeros = try be.tensor([Float](repeating: 0, count: batch.rows), shape: [batch.rows])
        steeredRows = batch.steeredRows
        alphas = batch.triplets.map(\.alpha)
        self.topK = topK
        self.l1Gradient = l1Gradient
        self.steers = steers
        self.mse = mse
        lambda = try be.empty([batch.rows])
        dots = try be.empty([batch.rows])
    }

    /// A sequence's top rows: the k largest latents, the earlier row first on ties (which of
    /// several zero latents is chosen changes neither c_i nor any gradient).
    static func top(_ rows: [Int], latents: [Float], k: Int) -> [Int] {
        Array(rows.sorted { latents[$0] > latents[$1] || (latents[$0] == latents[$1] && $0 < $1) }.prefix(k))
    }

    func afterBlock(_ layer: Int, residual: Tensor, step: ForwardStep, backend be: Backend) throws {
        guard let head = layers[layer] else { return }
        try be.psrHead(residual, heads: head.detector, headIndex: headIndex, alpha: zeros, lambda: lambda)
        let a = try be.floats(lambda)
        latents[layer] = a
        guard steers else { return }
        var rowAlpha = [Float](repeating: 0, count: rows), tops: [[Int]] = []
        for (i, sequence) in steeredRows.enumerated() {
            let top = Self.top(sequence, latents: a, k: topK)
            tops.append(top)
            guard !top.isEmpty else { continue }
            let c = top.reduce(0.0) { $0 + Double(a[$1]) } / Double(top.count)
            for row in sequence { rowAlpha[row] = alphas[i] * Float(c) }
            let chosen = Set(top)
            outsideSum += sequence.filter { !chosen.contains($0) }.reduce(0.0) { $0 + Double(a[$1]) } / Double(sequence.count)
        }
        topRows[layer] = tops
        let alphaTensor = try be.tensor(rowAlpha, shape: [rows])
        rowAlphas[layer] = alphaTensor
        try be.psrHead(residual, heads: head.constant, headIndex: headIndex, alpha: alphaTensor, lambda: lambda)
    }

    func afterBlockBackward(_ layer: Int, residual: Tensor, steered: Tensor, gradient: Tensor,
                            step: ForwardStep, backend be: any GradientBackend) throws {
        try mse?.addGradient(layer, steered: steered, gradient: gradient, backend: be)
        guard let head = layers[layer], let rowAlpha = rowAlphas[layer], let tops = topRows[layer] else { return }
        try be.psrHeadBackward(residual, heads: head.constant, headIndex: headIndex, alpha: rowAlpha, gradLambda: nil,
                               gradient: gradient, gradients: head.constantGradients)
        try be.rowDot(gradient, try head.direction.reshaped([head.direction.shape[1]]), out: dots)
        let dots = try be.floats(self.dots)
        var gradLambda = [Float](repeating: 0, count: rows)
        for (i, sequence) in steeredRows.enumerated() where !sequence.isEmpty {
            let dc = Double(alphas[i]) * sequence.reduce(0.0) { $0 + Double(dots[$1]) }
            for row in sequence { gradLambda[row] = l1Gradient / Float(sequence.count) }
            for row in tops[i] { gradLambda[row] = Float(dc / Double(tops[i].count)) }
        }
        try be.psrHeadBackward(residual, heads: head.detector, headIndex: headIndex, alpha: zeros,
                               gradLambda: try be.tensor(gradLambda, shape: [rows]), gradient: gradient, gradients: head.detectorGradients)
    }

    /// d loss / d w of a layer: the detector's dw plus the constant head's dz.
    func directionGradient(_ layer: Int, backend be: Backend) throws -> [Float] {
        let head = layers[layer]!
        return zip(try be.floats(head.detectorGradients.w), try be.floats(head.constantGradients.z)).map { $0 + $1 }
    }
}
