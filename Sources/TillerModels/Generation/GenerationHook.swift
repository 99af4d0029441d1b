import TillerCore

/// A residual-stream hook that acts per request during `Generator.generate`: the generator tells
/// it which request each KV-cache slot holds, so it can treat every row of a mixed batch by the
/// request the row belongs to (the steering layer's `SteeringHook` is one).
///
/// Per pass the generator calls, in order: `assign` for every slot that changed (a request
/// admitted, or a finished one's slot freed), then `TransformerModel.forward` with the hook, which
/// calls `prepare(for:backend:)` with the pass's step before its first op and `afterBlock` after
/// every block.
public protocol GenerationHook: ResidualStreamHook {
    /// Slot `slot` now holds request `request` (its index in the list given to `generate`), whose
    /// prompt has `promptLength` tokens and starts at cache position 0; nil: the slot is empty.
    func assign(slot: Int, request: Int?, promptLength: Int)

    /// The slots whose rows this hook's changes made non-finite in the pass that just ran (each
    /// row's sum of squares NaN, Inf or past Float's range); the generator stops their requests
    /// with `StopReason.nonFinite`. Called once after every pass; read with one download.
    func nonFiniteSlots() throws -> [Int]
}

extension GenerationHook {
    /// A hook that changes nothing, or does not check, reports none.
    public func nonFiniteSlots() throws -> [Int] { [] }
}
