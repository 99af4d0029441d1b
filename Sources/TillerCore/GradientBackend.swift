/// Gradients of a PSR head set with respect to its parameters, one row per head.
public struct PSRHeadGradients {
    public var w: Tensor    // f32 [K, d]
    public var bias: Tensor // f32 [K]
    public var z: Tensor    // f32 [K, d]

    public init(w: Tensor, bias: Tensor, z: Tensor) {
        self.w = w
        self.bias = bias
        self.z = z
    }
}

/// The backward direction of the forward ops, for training steering heads through a frozen model:
/// gradients flow into activations and head parameters, never into the model's weights.
///
/// Several forward ops need no backward op of their own:
/// - matmul: dL/dx = dL/dout . W, which is `matmul` with the weight's layout flipped (an [N, K]
///   weight read as [K, N]), so 16-bit weights are streamed exactly as in the forward;
/// - rope: the rotation's adjoint is its inverse, `rope` with negated inverse frequencies;
/// - add, mul and scale with frozen second operands: the gradient is the same op on dL/dout.
///
/// Every op here takes the forward's inputs (activations are recomputed, not stored) and the
/// gradient of the loss with respect to the forward's output, and writes the gradient with
/// respect to its inputs. Shapes are checked by `GradientShapes`, so every backend rejects the
/// same inputs with the same one-line error. Sums over rows run in a fixed order: results are
/// the same run to run.
public protocol GradientBackend: Backend {
    /// The adjoint of `attention` (same q, k, v, batch and options), recomputing the softmax per
    /// query row instead of storing the [T, S] probabilities. gradOut: f32 [B, T, Hq, D];
    /// gradQ: [B, T, Hq, D]; gradK, gradV: [B, S, Hkv, D], written whole (zero where no query
    /// reads a key). Padding rows of gradOut are ignored and their gradQ rows are zero.
    func attentionBackward(q: Tensor, k: Tensor, v: Tensor, batch: SequenceBatch, options: AttentionOptions,
                           gradOut: Tensor, gradQ: Tensor, gradK: Tensor, gradV: Tensor) throws

    /// The adjoint of `rmsNorm` with respect to x (the weight is frozen).
    func rmsNormBackward(_ x: Tensor, weight: Tensor, eps: Float, unitOffset: Bool, gradOut: Tensor, gradX: Tensor) throws

    /// The adjoint of `gatedActivation`: gradGate = gradOut * up * act'(gate), gradUp = gradOut * act(gate).
    func gatedActivationBackward(_ kind: GatedActivation, gate: Tensor, up: Tensor, gradOut: Tensor,
                                 gradGate: Tensor, gradUp: Tensor) throws

    /// The adjoint of `softcap` at its input x: gradX = gradOut * (1 - tanh(x / cap)^2).
    func softcapBackward(_ x: Tensor, cap: Float, gradOut: Tensor, gradX: Tensor) throws

    /// The adjoint of `gatherRows`: gradX[indices[m]] += gradOut[m], accumulating into gradX
    /// (rows gathered twice get both), in the order of m.
    func scatterAddRows(_ gradOut: Tensor, indices: Tensor, into gradX: Tensor) throws

    /// The adjoint of `psrHead` on h (the head's input, before it was steered). `gradient` holds
    /// dL/dh_out on entry and dL/dh_in on return (in place, as the forward is). For each row n
    /// with head k = headIndex[n] >= 0, s = w[k] . h[n] + bias[k], lambda = f_k(s):
    /// g = alpha[n] * (gradient[n] . z[k]) + gradLambda[n]; ds = g * f_k'(s) (relu: 0 at s <= 0,
    /// as torch; constant: 0); gradient[n] += ds * w[k]; and the head gradients, written whole
    /// (zero for heads no row uses), sum over their rows in row order:
    /// gradients.w[k] = sum ds * h[n], gradients.bias[k] = sum ds, gradients.z[k] = sum alpha[n] * lambda * gradient_out[n].
    /// gradLambda (f32 [N], optional) is a gradient on lambda itself (the regularizer's).
    func psrHeadBackward(_ h: Tensor, heads: PSRHeads, headIndex: Tensor, alpha: Tensor, gradLambda: Tensor?,
                         gradient: Tensor, gradients: PSRHeadGradients) throws

    /// Fused log-softmax cross-entropy, in place over the logits: for each row n of logits
    /// f32 [N, V] with target t = targets[n] (i32 [N], -1 for a row outside the loss),
    /// loss[n] = logsumexp(logits[n]) - logits[n, t], and logits[n] is replaced by
    /// gradScale[n] * (softmax(logits[n]) - onehot(t)): the gradient of sum_n gradScale[n] * loss[n].
    /// Rows with target -1 get loss 0 and gradient 0. The probabilities are never stored beside
    /// the logits: a caller bounds memory by passing the rows in chunks.
    func crossEntropy(_ logits: Tensor, targets: Tensor, gradScale: Tensor, loss: Tensor) throws
}
