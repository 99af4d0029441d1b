import TillerCore
import TillerModels

/// The steering file's heads in a training pass. Forward: each steered layer's head acts on the
/// steered rows (one head per layer, as in a steering file), its lambda kept. Backward: at every
/// compared layer the MSE term's gradient joins the stream's, then the head's adjoint hands the
/// gradient on and writes the head's parameter gradients.
final class HeadTrainingHook: ResidualGradientHook {
    /// Layer -> that layer's head as a one-head `PSRHeads`.
    let heads: [Int: PSRHeads]
    /// i32 [n]: 0 for a steered row, -1 for the others (padding included).
    let headIndex: Tensor
    /// f32 [n]: the file's alpha times the triplet's.
    let alpha: Tensor
    /// Layer -> lambda of every row (0 where no head acts), written by the forward.
    let lambdas: [Int: Tensor]
    /// Layer -> the regularizer's gradient on lambda, set between forward and backward.
    var lambdaGradients: [Int: Tensor] = [:]
    /// Layer -> the head's parameter gradients, written by the backward.
    let gradients: [Int: PSRHeadGradients]
    let mse: MSETerms?

    /// The MSE's terms in one batch: the compared rows of the steered pass and, per compared
    /// layer, minus the prompted stream at the aligned rows.
    struct MSETerms {
        let rows: Tensor
        let negatedTargets: [Int: Tensor]
        /// d(loss)/d(difference) = 2 / (all compared positions) * difference.
        let gradientScale: Float
        /// Layer -> each compared row's squared distance, written by the backward.
        let squaredDistances: [Int: Tensor]
        let differences: Tensor
    }

    init(heads: [Int: PSRHeads], headIndex: Tensor, alpha: Tensor, rows n: Int, mse: MSETerms?, backend: Backend) throws {
        self.heads = heads
        self.headIndex = headIndex
        self.alpha = alpha
        self.mse = mse
        var lambdas: [Int: Tensor] = [:], gradients: [Int: PSRHeadGradients] = [:]
        for (layer, head) in heads {
            lambdas[layer] = try backend.empty([n])
            gradients[layer] = PSRHeadGradients(w: try backend.empty(head.w.shape), bias: try backend.empty(head.bias.shape),
                                                z: try backend.empty(head.z.shape))
        }
        self.lambdas = lambdas
        self.gradients = gradients
    }

    func afterBlock(_ layer: Int, residual: Tensor, step: ForwardStep, backend: Backend) throws {
        guard let head = heads[layer] else { return }
        try backend.psrHead(residual, heads: head, headIndex: headIndex, alpha: alpha, lambda: lambdas[layer]!)
    }

    func afterBlockBackward(_ layer: Int, residual: Tensor, steered: Tensor, gradient: Tensor,
                            step: ForwardStep, backend be: any GradientBackend) throws {
        if let mse, let negated = mse.negatedTargets[layer] {
            try be.gatherRows(steered, indices: mse.rows, out: mse.differences)
            try be.add(mse.differences, negated, out: mse.differences)
            try be.rowDot(mse.differences, mse.differences, out: mse.squaredDistances[layer]!)
            try be.scale(mse.differences, by: mse.gradientScale, out: mse.differences)
            try be.scatterAddRows(mse.differences, indices: mse.rows, into: gradient)
        }
        if let head = heads[layer] {
            try be.psrHeadBackward(residual, heads: head, headIndex: headIndex, alpha: alpha, gradLambda: lambdaGradients[layer],
                                   gradient: gradient, gradients: gradients[layer]!)
        }
    }
}
