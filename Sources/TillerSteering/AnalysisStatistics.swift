import Foundation

/// Summary of a set of non-negative per-token values (norms of Delta_PS): count, mean, quantiles,
/// the max/median ratio and how concentrated the squared norm is.
public struct NormStatistics: Sendable, Equatable {
    public var count: Int
    public var mean: Double
    public var p10: Double
    public var p50: Double
    public var p90: Double
    public var p99: Double
    public var max: Double
    /// max / median; nil when there are no values or the median is 0.
    public var maxOverMedian: Double?
    /// The smallest fraction of the rows whose squared norms sum to at least half of the total
    /// squared norm (the largest rows first); nil when there are no values or all are 0. 0.5 means
    /// the norm is spread evenly; a small value means a few tokens carry most of it.
    public var halfMassShare: Double?
    /// Sum of the squared values.
    public var sumOfSquares: Double

    public static let empty = NormStatistics(count: 0, mean: 0, p10: 0, p50: 0, p90: 0, p99: 0, max: 0,
                                             maxOverMedian: nil, halfMassShare: nil, sumOfSquares: 0)

    public init(count: Int, mean: Double, p10: Double, p50: Double, p90: Double, p99: Double, max: Double,
                maxOverMedian: Double?, halfMassShare: Double?, sumOfSquares: Double) {
        self.count = count
        self.mean = mean
        self.p10 = p10
        self.p50 = p50
        self.p90 = p90
        self.p99 = p99
        self.max = max
        self.maxOverMedian = maxOverMedian
        self.halfMassShare = halfMassShare
        self.sumOfSquares = sumOfSquares
    }

    /// The statistics of `values` (norms: non-negative). Quantiles interpolate linearly between
    /// the sorted values (numpy's default: q at index q * (n - 1)).
    public init<S: Sequence>(_ values: S) where S.Element == Float {
        let sorted = values.map(Double.init).sorted()
        guard !sorted.isEmpty else { self = .empty; return }
        let n = sorted.count
        let sum = sorted.reduce(0, +)
        let squares = sorted.map { $0 * $0 }
        let total = squares.reduce(0, +)
        let median = Self.quantile(sorted, 0.5)
        self.init(count: n, mean: sum / Double(n), p10: Self.quantile(sorted, 0.1), p50: median,
                  p90: Self.quantile(sorted, 0.9), p99: Self.quantile(sorted, 0.99), max: sorted[n - 1],
                  maxOverMedian: median > 0 ? sorted[n - 1] / median : nil,
                  halfMassShare: Self.halfMassShare(squaresAscending: squares, total: total), sumOfSquares: total)
    }

    /// q-quantile of ascending values, linear interpolation.
    public static func quantile(_ sorted: [Double], _ q: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        let position = q * Double(sorted.count - 1)
        let lower = Int(position.rounded(.down)), upper = Swift.min(lower + 1, sorted.count - 1)
        let fraction = position - Double(lower)
        return sorted[lower] + (sorted[upper] - sorted[lower]) * fraction
    }

    /// Smallest k / n such that the k largest squares sum to >= half the total.
    static func halfMassShare(squaresAscending squares: [Double], total: Double) -> Double? {
        guard !squares.isEmpty, total > 0 else { return nil }
        var running = 0.0, k = 0
        for s in squares.reversed() {
            running += s
            k += 1
            if running >= 0.5 * total { break }
        }
        return Double(k) / Double(squares.count)
    }
}

/// The relative RMSE of an intervention I against Delta_PS over a set of rows:
/// sqrt(sum_t ||I_t - D_t||^2 / sum_t ||D_t||^2). 1 means no better than doing nothing (I = 0),
/// 0 a perfect match. Accumulate the two sums over rows, then read `value`.
public struct RelativeRMSE: Sendable, Equatable {
    public var errorSquared: Double = 0
    public var deltaSquared: Double = 0

    public init(errorSquared: Double = 0, deltaSquared: Double = 0) {
        self.errorSquared = errorSquared
        self.deltaSquared = deltaSquared
    }

    /// nil when Delta is zero on every row.
    public var value: Double? { deltaSquared > 0 ? (errorSquared / deltaSquared).squareRoot() : nil }

    /// Adds rows from their norms: ||I_t - D_t|| and ||D_t||.
    public mutating func add(errorNorms: [Float], deltaNorms: [Float]) {
        for e in errorNorms { errorSquared += Double(e) * Double(e) }
        for n in deltaNorms { deltaSquared += Double(n) * Double(n) }
    }

    /// Directly from row-major intervention and delta rows (plain loops: for tests and small data;
    /// `CaptureAnalyzer` computes the norms on the backend).
    public static func of(intervention: [Float], delta: [Float]) -> RelativeRMSE {
        precondition(intervention.count == delta.count)
        var r = RelativeRMSE()
        for (i, d) in zip(intervention, delta) {
            let e = Double(i) - Double(d)
            r.errorSquared += e * e
            r.deltaSquared += Double(d) * Double(d)
        }
        return r
    }
}
