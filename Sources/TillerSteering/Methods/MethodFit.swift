import Foundation
import TillerCore

/// The methods fitted from a capture without any gradient through the model (docs/steering.md,
/// "Methods"). Each gives one head per layer.
public enum FitMethod: String, Sendable, CaseIterable {
    case diffmean, pca, stolfo, psr

    /// Fits this method's head on the rows of `data`.
    public func fit(_ data: LayerActivations, backend: any Backend, psr: LocalPSROptions = LocalPSROptions()) throws -> MethodFit {
        switch self {
        case .diffmean: return try DiffMean.fit(data, backend: backend)
        case .pca: return try PCADirection.fit(data, backend: backend)
        case .stolfo: return try StolfoProjection.fit(data, backend: backend)
        case .psr: return try LocalPSR.fit(data, backend: backend, options: psr).fit
        }
    }
}

/// One method's head at one layer, and how faithful it is to Delta_PS on the rows it was fitted on.
public struct MethodFit: Sendable {
    public var method: FitMethod
    public var layer: Int
    public var head: SteeringHead
    /// The rows it was fitted (and measured) on.
    public var rowCount: Int
    /// sqrt(sum_t ||intervention_t - Delta_t||^2 / sum_t ||Delta_t||^2) over those rows at alpha 1,
    /// the intervention computed by the backend's `psrHead` from the unsteered activations, as at
    /// inference (1.0 = no better than doing nothing).
    public var relativeRMSE: Double
    /// Method-specific numbers, named (e.g. "scale", "c_bar", "diffmean_relative_rmse").
    public var details: [String: Double]

    public init(method: FitMethod, layer: Int, head: SteeringHead, rowCount: Int, relativeRMSE: Double, details: [String: Double] = [:]) {
        self.method = method
        self.layer = layer
        self.head = head
        self.rowCount = rowCount
        self.relativeRMSE = relativeRMSE
        self.details = details
    }
}

public enum FitEvaluation {
    /// Rows per chunk when measuring (bounds the scratch tensors to a few MiB per chunk).
    static let chunkRows = 4096

    /// The relative RMSE of a head's accumulated intervention against Delta_PS on every row of
    /// `data`, at strength `alpha`: the head is applied with `psrHead` to a copy of h, exactly as
    /// the steering hook applies it, and (h') - h - Delta is measured. 1.0 = no better than nothing.
    public static func relativeRMSE(_ head: SteeringHead, on data: LayerActivations, alpha: Float = 1, backend: any Backend) throws -> Double {
        let (num, den) = try squaredErrors(head, on: data, alpha: alpha, backend: backend)
        return den > 0 ? (num / den).squareRoot() : (num > 0 ? .infinity : 0)
    }

    /// (sum_t ||h'_t - h_t - Delta_t||^2, sum_t ||Delta_t||^2).
    static func squaredErrors(_ head: SteeringHead, on data: LayerActivations, alpha: Float, backend: any Backend) throws -> (Double, Double) {
        let d = data.hiddenSize
        guard head.hiddenSize == d, head.w.count == d else {
            throw TillerError.shapeMismatch(op: "relative RMSE", detail: "head of size \(head.hiddenSize) for activations of hidden size \(d)")
        }
        let heads = try backend.psrHeads(w: head.w, bias: [head.bias], z: head.z, activations: [head.activation], dim: d)
        var num = 0.0, den = 0.0
        var start = 0
        while start < data.rowCount {
            let m = min(chunkRows, data.rowCount - start)
            let h = try data.h.slice(rows: start, count: m), delta = try data.delta.slice(rows: start, count: m)
            let steered = try backend.empty([m, d]), negated = try backend.empty([m, d]), change = try backend.empty([m, d])
            try backend.copy(h, to: steered)
            try backend.psrHead(steered, heads: heads, headIndex: try backend.tensor(ints: [Int32](repeating: 0, count: m), shape: [m]),
                                alpha: try backend.tensor([Float](repeating: alpha, count: m), shape: [m]),
                                lambda: try backend.empty([m]))
            try backend.scale(h, by: -1, out: negated)
            try backend.add(steered, negated, out: change)          // the intervention h' - h
            try backend.scale(delta, by: -1, out: negated)
            try backend.add(change, negated, out: steered)          // the intervention - Delta
            let errors = try backend.empty([m]), norms = try backend.empty([m])
            try backend.rowNorm(steered, out: errors)
            try backend.rowNorm(delta, out: norms)
            for e in try backend.floats(errors) { num += Double(e) * Double(e) }
            for n in try backend.floats(norms) { den += Double(n) * Double(n) }
            start += m
        }
        return (num, den)
    }
}

/// Small reductions over an [M, d] tensor through backend ops, with host-side vectors.
enum FitOps {
    /// x[t] . v for every row.
    static func rowDots(_ x: Tensor, _ v: [Float], backend: any Backend) throws -> [Float] {
        let out = try backend.empty([x.shape[0]])
        try backend.rowDot(x, try backend.tensor(v, shape: [v.count]), out: out)
        return try backend.floats(out)
    }

    /// sum_t weights[t] * x[t] (a [1, M] x [M, d] matmul).
    static func weightedSum(_ x: Tensor, _ weights: [Float], backend: any Backend) throws -> [Float] {
        let m = x.shape[0], d = x.shape[1]
        let out = try backend.empty([1, d])
        try backend.matmul(try backend.tensor(weights, shape: [1, m]), x, layout: .kn, bias: nil, accumulate: false, out: out)
        return try backend.floats(out)
    }

    /// The mean of the given rows (all rows when nil).
    static func meanRows(_ x: Tensor, _ rows: [Int]? = nil, backend: any Backend) throws -> [Float] {
        let indices = rows ?? Array(0..<x.shape[0])
        let out = try backend.empty([x.shape[1]])
        try backend.meanRows(x, indices: try backend.tensor(ints: indices.map { Int32($0) }, shape: [indices.count]), out: out)
        return try backend.floats(out)
    }

    /// ||x[t]||^2 for every row.
    static func rowSquares(_ x: Tensor, backend: any Backend) throws -> [Double] {
        let out = try backend.empty([x.shape[0]])
        try backend.rowNorm(x, out: out)
        return try backend.floats(out).map { Double($0) * Double($0) }
    }

    static func dot(_ a: [Float], _ b: [Float]) -> Double {
        var s = 0.0
        for i in a.indices { s += Double(a[i]) * Double(b[i]) }
        return s
    }

    static func norm(_ a: [Float]) -> Double { dot(a, a).squareRoot() }
}
