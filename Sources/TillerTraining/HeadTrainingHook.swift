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
        try mse?.addGradient(layer, steered: steered, gradient: gradient, backend: be)
        if let head = heads[layer] {
            try be.psrHeadBackward(residual, heads: head, headIndex: headIndex, alpha: alpha, gradLambda: lambdaGradients[layer],
                                   gradient: gradient, gradients: gradients[layer]!)
        }
    }
}
