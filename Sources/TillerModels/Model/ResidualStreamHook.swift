import TillerCore

/// Where a forward pass is in a batch: sequence b's rows are b * rowsPerSequence + t for
/// t < batch.lengths[b], at positions batch.starts[b] + t; other rows are padding.
public struct ForwardStep {
    public let batch: SequenceBatch
    public let rowsPerSequence: Int
}

/// The documented hook point of the residual stream: called after every block with the stream
/// x: f32 [B * T, hidden], during prefill and decode alike. A hook may read it or change it in
/// place through backend ops (the steering layer applies its PSR heads here); its work is
/// recorded in order with the rest of the forward pass.
public protocol ResidualStreamHook: AnyObject {
    func afterBlock(_ layer: Int, residual: Tensor, step: ForwardStep, backend: Backend) throws
}
