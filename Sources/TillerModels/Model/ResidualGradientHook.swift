import TillerCore

/// The backward counterpart of `ResidualStreamHook`: a hook that changed the residual stream in
/// the forward pass (the steering layer's heads) hands the gradient on through its change, and
/// adds its own loss terms where it sees the stream. TillerModels knows nothing of what the hook
/// does; training steering heads lives above it.
public protocol ResidualGradientHook: ResidualStreamHook {
    /// Called by `TransformerModel.backward` for each block from the last down to the lowest asked
    /// for. On entry `gradient` (f32 [B * T, hidden]) is dL/d`steered`, the stream after block
    /// `layer` as the forward pass left it (after `afterBlock`); the hook adds the gradients of any
    /// loss terms it computes on `steered`, then turns it in place into dL/d`residual`, the stream
    /// as block `layer` produced it (recomputed, before `afterBlock`), accumulating the gradients
    /// of its own parameters.
    func afterBlockBackward(_ layer: Int, residual: Tensor, steered: Tensor, gradient: Tensor,
                            step: ForwardStep, backend: any GradientBackend) throws
}

/// What a training forward pass keeps for the backward: the stream entering every block (memory
/// layers x rows x hidden) and the stream after the last one; each block is recomputed from its
/// saved input during the backward, unless the pass could keep every block's activations.
public struct SavedForward {
    public let step: ForwardStep
    /// Token ids and positions of the padded rows, as the forward uploaded them.
    let ids: Tensor, positions: Tensor
    /// blockInputs[l]: the stream entering block l (the embeddings for l = 0, else the stream
    /// after block l - 1 and its hook).
    let blockInputs: [Tensor]
    /// The stream after the last block and its hook, before the final norm.
    public let final: Tensor
    /// Every block's activations (distinct, the output before the hook) when the pass kept them
    /// (`TransformerModel.trainingActivationBudget`): the backward then recomputes nothing.
    let activations: [BlockActivations]?

    /// The stream after block `layer` and its hook: h[layer] of the objectives.
    public func residual(after layer: Int) -> Tensor {
        layer + 1 < blockInputs.count ? blockInputs[layer + 1] : final
    }
}
