import TillerCore

/// PCA of paired differences, repeng's `pca_diff` (vgel/repeng, repeng/extract.py,
/// `read_representations`): the pairs are (steered, unsteered) activations at the same captured
/// row, the training vectors their differences Delta_t, and the direction is their first principal
/// component:
/// - centered: repeng fits sklearn's `PCA(n_components=1)`, which subtracts the mean of the
///   differences first, so the component is the direction of largest variance of Delta around its
///   mean, not the mean direction (vgel/repeng issue #28 discusses this). `centered: false` gives
///   the first right-singular vector of the raw differences instead.
/// - unit length, as sklearn's `components_`.
/// - sign as repeng fixes it: project both activations of every pair on the direction and flip it
///   when more pairs have the positive (steered) one lower than higher. The steered minus
///   unsteered projection of a pair is Delta_t . v, so this is a majority vote of the signs of
///   Delta_t . v; a tie is broken by the sign of their mean.
///
/// As a head: the constant z = s v with s = mean_t Delta_t . v, so at alpha 1 it adds the mean of
/// Delta's projection on v (the least-squares best multiple of v). z does not depend on the sign
/// of v; the sign only orients `direction`.
public enum PCADirection {
    public struct Result: Sendable {
        /// The unit direction, sign fixed as above.
        public var direction: [Float]
        /// mean_t Delta_t . direction: the head's z is scale * direction.
        public var scale: Float
        /// The component's variance over the total variance of the (centered) differences.
        public var explainedShare: Double
        /// The share of rows with Delta_t . direction > 0 (repeng's "positive larger" mean).
        public var positiveShare: Double
        public var iterations: Int
    }

    /// The first principal component of the rows' differences by power iteration through backend
    /// ops (two passes over Delta per iteration: Delta v, then Delta^T u; the covariance is never
    /// formed). Stops when 1 - |cos| between iterates is below `tolerance`.
    public static func direction(_ data: LayerActivations, centered: Bool = true, maxIterations: Int = 1000,
                                 tolerance: Double = 1e-10, seed: UInt64 = 0x5EED_0FCA, backend: any Backend) throws -> Result {
        let d = data.hiddenSize, m = Double(data.rowCount)
        let delta = data.delta
        let mean = centered ? try FitOps.meanRows(delta, backend: backend) : [Float](repeating: 0, count: d)
        var rng = SplitMix64(seed: seed)
        var v = normalized(rng.uniforms(d, -1, 1))
        var iterations = 0
        var eigen = 0.0
        while iterations < maxIterations {
            iterations += 1
            let shift = Float(FitOps.dot(mean, v))
            let u = try FitOps.rowDots(delta, v, backend: backend).map { $0 - shift }      // (Delta_t - mean) . v
            let uSum = u.reduce(0.0) { $0 + Double($1) }
            var y = try FitOps.weightedSum(delta, u, backend: backend)                       // Delta^T u
            for i in 0..<d { y[i] -= Float(Double(mean[i]) * uSum) }                        // - mean * sum(u)
            let norm = FitOps.norm(y)
            guard norm > 0, norm.isFinite else { break }                                    // no variance at all
            eigen = norm / m
            let next = y.map { Float(Double($0) / norm) }
            let cosine = abs(FitOps.dot(next, v))
            v = next
            if 1 - cosine < tolerance { break }
        }
        // Sign by repeng's vote over pairs, ties by the mean projection.
        let projections = try FitOps.rowDots(delta, v, backend: backend)
        let larger = projections.filter { $0 > 0 }.count, smaller = projections.filter { $0 < 0 }.count
        var scale = projections.reduce(0.0) { $0 + Double($1) } / m
        if smaller > larger || (smaller == larger && scale < 0) {
            v = v.map { -$0 }
            scale = -scale
        }
        let total = try FitOps.rowSquares(delta, backend: backend).reduce(0, +) / m - FitOps.dot(mean, mean)
        return Result(direction: v, scale: Float(scale), explainedShare: total > 0 ? min(1, eigen / total) : 0,
                      positiveShare: Double(max(larger, smaller)) / m, iterations: iterations)
    }

    /// The constant head scale * direction and its relative RMSE on the rows of `data`.
    public static func fit(_ data: LayerActivations, centered: Bool = true, backend: any Backend) throws -> MethodFit {
        let r = try direction(data, centered: centered, backend: backend)
        let head = SteeringHead.constant(r.direction.map { $0 * r.scale })
        return MethodFit(method: .pca, layer: data.layer, head: head, rowCount: data.rowCount,
                         relativeRMSE: try FitEvaluation.relativeRMSE(head, on: data, backend: backend),
                         details: ["scale": Double(r.scale), "explained_share": r.explainedShare,
                                   "positive_share": r.positiveShare, "iterations": Double(r.iterations)])
    }

    static func normalized(_ x: [Float]) -> [Float] {
        let n = FitOps.norm(x)
        return n > 0 ? x.map { Float(Double($0) / n) } : x
    }
}
