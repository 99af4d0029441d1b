import TillerCore

/// DiffMean / CAA: the mean activation difference with and without the steering prompt, added
/// with a constant coefficient.
///
/// From a capture, z = mean_t Delta_t over the chosen rows, which is mean_t (h_t + Delta_t) -
/// mean_t h_t: the mean of the steered activations minus the mean of the unsteered ones at the
/// same rows. At alpha 1 the head reproduces that mean shift, and alpha 1 is also the best scale of
/// z in the least-squares sense (s* = sum_t z.Delta_t / (M |z|^2) = 1).
public enum DiffMean {
    /// mean_t Delta_t over every row of `data`.
    public static func vector(_ data: LayerActivations, backend: any Backend) throws -> [Float] {
        try FitOps.meanRows(data.delta, backend: backend)
    }

    /// The positive/negative-set form: mean of `positive`'s rows minus mean of `negative`'s rows.
    /// The sets may be two row sets of one tensor or rows of two tensors (two captures, say), of
    /// any sizes; both f32 [*, d] with the same d.
    public static func vector(positive: Tensor, positiveRows: [Int]? = nil, negative: Tensor, negativeRows: [Int]? = nil,
                              backend: any Backend) throws -> [Float] {
        guard positive.rank == 2, negative.rank == 2, positive.shape[1] == negative.shape[1] else {
            throw TillerError.shapeMismatch(op: "diffmean", detail: "positive \(positive) and negative \(negative) must be [rows, d] with the same d")
        }
        for (name, rows, x) in [("positive", positiveRows, positive), ("negative", negativeRows, negative)] {
            if let rows, rows.isEmpty { throw TillerError.invalidArgument(op: "diffmean", detail: "no \(name) rows") }
            if let r = rows?.first(where: { $0 < 0 || $0 >= x.shape[0] }) {
                throw TillerError.indexOutOfRange(op: "diffmean", detail: "\(name) row \(r) of \(x.shape[0])")
            }
        }
        let p = try FitOps.meanRows(positive, positiveRows, backend: backend)
        let n = try FitOps.meanRows(negative, negativeRows, backend: backend)
        return zip(p, n).map { $0 - $1 }
    }

    /// The constant head z = mean Delta on the rows of `data`, and its relative RMSE there.
    public static func fit(_ data: LayerActivations, backend: any Backend) throws -> MethodFit {
        let z = try vector(data, backend: backend)
        let head = SteeringHead.constant(z)
        return MethodFit(method: .diffmean, layer: data.layer, head: head, rowCount: data.rowCount,
                         relativeRMSE: try FitEvaluation.relativeRMSE(head, on: data, backend: backend),
                         details: ["norm": FitOps.norm(z)])
    }
}
