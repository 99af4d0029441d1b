import Foundation
import TillerCore

/// How the local PSR fit runs.
public struct LocalPSROptions: Sendable, Equatable {
    /// Full-batch Adam steps on (w, b).
    public var steps: Int
    /// Adam's step size, in standardised units (w acts on activations scaled to unit variance per
    /// coordinate; b is the coefficient's offset, 1 at the start), decayed linearly to 0.
    public var learningRate: Double
    public var beta1: Double
    public var beta2: Double
    public var epsilon: Double
    /// Seeds the small random w used only when mean Delta is exactly zero (nothing else to start from).
    public var seed: UInt64

    public init(steps: Int = 500, learningRate: Double = 0.05, beta1: Double = 0.9, beta2: Double = 0.999,
                epsilon: Double = 1e-8, seed: UInt64 = 0x5EED_05B5) {
        self.steps = steps
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.seed = seed
    }
}

/// A PSR head fitted locally at one layer: lambda_t = ReLU(w . h_t + b), minimising
/// mean_t ||lambda_t z - Delta_t||^2 over (w, b, z) only, with h the unsteered activations and Delta
/// Delta_PS at that layer (the accumulated target: what the prompt changed at this layer). No
/// gradient goes through the model; the full objectives (later layers, log-likelihood, all-layer
/// chaining) are the training layer's.
///
/// How (docs/steering.md, "Methods"):
/// - The activations are standardised per coordinate over the fit rows (mean mu_i, standard
///   deviation sigma_i; constant coordinates are dropped), so one step size suits every model;
///   the fitted (w, b) are folded back: w_i / sigma_i and b - sum_i w_i mu_i / sigma_i.
/// - z is eliminated exactly: for given lambda the best z is Delta^T lambda / (lambda . lambda), a
///   least-squares solve, so each step sets z to it and takes an Adam step on (w, b) with the
///   gradient at that z (which is the gradient of the reduced loss). Per step, through backend
///   ops: H w (rowDot), Delta^T lambda and H^T g ([1, M] x [M, d] matmuls), Delta z (rowDot).
/// - Hand-written gradient: with p_t = w . h_t + b, lambda_t = max(0, p_t),
///   g_t = dL/dp_t = (2/M) (lambda_t |z|^2 - z . Delta_t) [p_t > 0], dL/dw = H^T g, dL/db = sum g.
/// - Start: w = 0, b = 1, so lambda = 1 everywhere and z = mean Delta: exactly DiffMean. The best
///   iterate is kept, so the fit is never worse than DiffMean on its rows (up to rounding).
/// - Finally (w, b, z) are rescaled by c = mean_t lambda_t (lambda / c, z * c, which changes
///   nothing steered): z is then the mean intervention over the fit rows, comparable to DiffMean's
///   vector, and alpha keeps its meaning.
public enum LocalPSR {
    public struct Result: Sendable {
        public var fit: MethodFit
        /// DiffMean's constant head on the same rows (its own best scale: alpha 1).
        public var diffMean: MethodFit
        /// The relative RMSE of the fit at every step (from the loss; step 0 is DiffMean).
        public var history: [Double]
        public var bestStep: Int
        /// The share of rows with lambda > 0.
        public var activeShare: Double
    }

    public static func fit(_ data: LayerActivations, backend: any Backend, options: LocalPSROptions = LocalPSROptions()) throws -> Result {
        guard options.steps >= 0 else { throw TillerError.invalidArgument(op: "psr fit", detail: "steps \(options.steps) < 0") }
        let m = data.rowCount, d = data.hiddenSize, mm = Double(m)
        let delta = data.delta

        // Standardised activations Hs = (H - mu) / sigma.
        let mu = try FitOps.meanRows(data.h, backend: backend)
        let hs: Tensor
        var inverseSigma = [Float](repeating: 0, count: d)
        do {
            let centered = try backend.empty([m, d])
            try backend.add(data.h, try backend.tensor(mu.map { -$0 }, shape: [d]), out: centered)
            let scratch = try backend.empty([m, d])
            try backend.mul(centered, centered, out: scratch)
            let variance = try FitOps.meanRows(scratch, backend: backend)
            let tiny = (variance.max() ?? 0) * 1e-12
            for i in 0..<d where variance[i] > tiny && variance[i] > 0 {
                inverseSigma[i] = 1 / variance[i].squareRoot()
            }
            try backend.mul(centered, try backend.tensor(inverseSigma, shape: [d]), out: scratch)
            hs = scratch
        }

        let deltaSquares = try FitOps.rowSquares(delta, backend: backend).reduce(0, +)
        guard deltaSquares > 0 else {
            throw TillerError.invalidArgument(op: "psr fit", detail: "layer \(data.layer): Delta is zero on all \(m) rows, nothing to fit")
        }
        let meanDelta = try FitOps.meanRows(delta, backend: backend)
        var w = [Double](repeating: 0, count: d), b = 1.0
        if FitOps.norm(meanDelta) == 0 {
            var rng = SplitMix64(seed: options.seed)
            w = rng.uniforms(d, -1, 1).map { Double($0) * 0.01 / Double(d).squareRoot() }
        }

        // (w, b) as one vector for the shared optimiser: Adam without weight decay, the step
        // size decayed linearly to 0 over the steps.
        var optimiser = AdamW(learningRate: options.learningRate, beta1: options.beta1, beta2: options.beta2,
                              epsilon: options.epsilon, weightDecay: 0, plannedSteps: options.steps)
        var best: (loss: Double, w: [Double], b: Double, z: [Float], lambdaMean: Double, active: Double, step: Int)?
        var history: [Double] = []
        for step in 0...options.steps {
            let p = try FitOps.rowDots(hs, w.map { Float($0) }, backend: backend).map { Double($0) + b }
            let lambda = p.map { Float(max(0, $0)) }
            let lambdaSquares = lambda.reduce(0.0) { $0 + Double($1) * Double($1) }
            guard lambdaSquares > 0 else { break }               // every ReLU dead: nothing to follow
            let y = try FitOps.weightedSum(delta, lambda, backend: backend)
            let z = y.map { Float(Double($0) / lambdaSquares) }
            let loss = max(0, deltaSquares - FitOps.dot(y, y) / lambdaSquares) / mm
            history.append((loss * mm / deltaSquares).squareRoot())
            if best == nil || loss < best!.loss {
                let active = Double(lambda.filter { $0 > 0 }.count) / mm
                best = (loss, w, b, z, lambda.reduce(0.0) { $0 + Double($1) } / mm, active, step)
            }
            if step == options.steps { break }

            let s = try FitOps.rowDots(delta, z, backend: backend)
            let zz = FitOps.dot(z, z)
            var g = [Float](repeating: 0, count: m)
            var gb = 0.0
            for t in 0..<m where p[t] > 0 {
                let gt = 2 / mm * (Double(lambda[t]) * zz - Double(s[t]))
                g[t] = Float(gt)
                gb += gt
            }
            let gw = try FitOps.weightedSum(hs, g, backend: backend)

            var parameters = w + [b]
            try optimiser.update(&parameters, gradient: gw.map(Double.init) + [gb])
            w = Array(parameters[0..<d])
            b = parameters[d]
        }
        guard let best, best.lambdaMean > 0 else {
            throw TillerError.invalidArgument(op: "psr fit", detail: "layer \(data.layer): every coefficient is zero at the start")
        }

        // Back to raw activations, then lambda normalised to mean 1 over the fit rows.
        let c = best.lambdaMean
        var rawW = [Float](repeating: 0, count: d)
        var offset = 0.0
        for i in 0..<d {
            let wi = best.w[i] * Double(inverseSigma[i])
            rawW[i] = Float(wi / c)
            offset += wi * Double(mu[i])
        }
        let head = SteeringHead(w: rawW, bias: Float((best.b - offset) / c), z: best.z.map { Float(Double($0) * c) }, activation: .relu)
        let diffMean = try DiffMean.fit(data, backend: backend)
        let rmse = try FitEvaluation.relativeRMSE(head, on: data, backend: backend)
        let fit = MethodFit(method: .psr, layer: data.layer, head: head, rowCount: m, relativeRMSE: rmse,
                            details: ["diffmean_relative_rmse": diffMean.relativeRMSE,
                                      "train_relative_rmse": (best.loss * mm / deltaSquares).squareRoot(),
                                      "active_share": best.active, "best_step": Double(best.step),
                                      "steps": Double(options.steps)])
        return Result(fit: fit, diffMean: diffMean, history: history, bestStep: best.step, activeShare: best.active)
    }
}
