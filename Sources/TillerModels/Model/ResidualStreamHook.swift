import TillerCore

/// Where a forward pass is in a batch: sequence b's rows are b * rowsPerSequence + t for
/// t < batch.lengths[b], at positions batch.starts[b] + t; other rows are padding.
public struct ForwardStep: Equatable {
    public let batch: SequenceBatch
    public let rowsPerSequence: Int

    public init(batch: SequenceBatch, rowsPerSequence: Int) {
        self.batch = batch
        self.rowsPerSequence = rowsPerSequence
    }

    /// The step `TransformerModel.forward(tokens, cache:)` runs: each sequence's new tokens after
    /// the `cacheLengths` it already holds, padded to the longest (at least one row).
    public init(tokens: [[Int32]], cacheLengths: [Int]) {
        self.init(batch: SequenceBatch(starts: cacheLengths, lengths: tokens.map(\.count)),
                  rowsPerSequence: max(1, tokens.map(\.count).max() ?? 1))
    }

    /// Rows in the pass: B * T.
    public var rowCount: Int { batch.count * rowsPerSequence }
}

/// The documented hook point of the residual stream: called after every block with the stream
/// x: f32 [B * T, hidden], during prefill and decode alike. A hook may read it or change it in
/// place through backend ops (the steering layer applies its PSR heads here); its work is
/// recorded in order with the rest of the forward pass.
public protocol ResidualStreamHook: AnyObject {
    func afterBlock(_ layer: Int, residual: Tensor, step: ForwardStep, backend: Backend) throws

    /// Called before a pass records its first op, with the step it will run: a hook uploads its
    /// per-row tensors here, so a device backend that records the pass is not made to stop in the
    /// middle of it (an upload waits for recorded work). The `Generator` calls it before every
    /// pass and `TransformerModel.forward` calls it again before its first op.
    /// Calling it twice for the same step must be harmless. Default: nothing.
    func prepare(for step: ForwardStep, backend: Backend) throws
}

public extension ResidualStreamHook {
    func prepare(for step: ForwardStep, backend: Backend) throws {}
}
