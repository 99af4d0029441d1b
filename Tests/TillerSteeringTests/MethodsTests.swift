import Foundation
import Testing
import TillerCore
import TillerCPU
import TillerModels
@testable import TillerSteering

/// The methods fitted from a capture without gradients through the model (DiffMean, PCA of paired
/// differences, Stolfo's projection, a local PSR head), on synthetic captures whose structure is
/// known: Delta_t = c_t v + noise with c_t = ReLU(a . h_t + b0) and heavy-tailed h. Plus
/// hand-computed small cases, and captures that are missing a layer or misshapen.
@Suite struct MethodsTests {
    let backend: any Backend = CPUBackend()

    // MARK: Synthetic captures

    /// A capture with a known rule. Per example: `promptRows` rows of role 0, one of role 1, the
    /// rest role 2. h_t = offset + s_t g_t (g standard normal, s_t log-normal: heavy tails; one
    /// coordinate with a large mean, as residual streams have); c_t = ReLU(a . h_t + b0);
    /// Delta_t = c_t v + noise * e_t.
    struct Synthetic {
        var d: Int
        var h: [Float] = []
        var delta: [Float] = []
        var roles: [Int32] = []
        var examples: [Int32] = []
        var c: [Double] = []
        var v: [Float] = []
        var rows: Int { roles.count }

        init(d: Int = 24, examples: Int = 80, rowsPerExample: Int = 20, promptRows: Int = 3, tail: Double = 0.8,
             activeShare: Double = 0.3, noise: Float = 0.02, seed: UInt64 = 1) {
            self.d = d
            var normal = Normal(rng: SplitMix64(seed: seed &+ 99))
            v = (0..<d).map { _ in normal.next() }
            let vNorm = Float(FitOps.norm(v))
            v = v.map { 2 * $0 / vNorm }                               // |v| = 2
            var offset = (0..<d).map { _ in 3 * normal.next() }
            offset[0] = 50
            var a = (0..<d).map { _ in normal.next() }
            let aNorm = Float(FitOps.norm(a))
            a = a.map { $0 / aNorm }
            // b0 so that about `activeShare` of the rows are active (a . g is standard normal).
            let z = Self.normalQuantile(1 - activeShare)
            let b0 = -FitOps.dot(a, offset) - z
            for e in 0..<examples {
                for r in 0..<rowsPerExample {
                    let s = exp(tail * Double(normal.next()))
                    let row = (0..<d).map { offset[$0] + Float(s) * normal.next() }
                    let ct = max(0, FitOps.dot(a, row) + b0)
                    h += row
                    delta += (0..<d).map { v[$0] * Float(ct) + noise * normal.next() }
                    c.append(ct)
                    roles.append(r < promptRows ? 0 : (r == promptRows ? 1 : 2))
                    self.examples.append(Int32(e))
                }
            }
        }

        static func normalQuantile(_ p: Double) -> Double {
            // Bisection on the normal CDF (erf), plenty for a test.
            var lo = -8.0, hi = 8.0
            for _ in 0..<100 {
                let mid = (lo + hi) / 2
                if 0.5 * (1 + erf(mid / 2.squareRoot())) < p { lo = mid } else { hi = mid }
            }
            return (lo + hi) / 2
        }

        func rowValues(_ x: [Float], _ t: Int) -> ArraySlice<Float> { x[(t * d)..<((t + 1) * d)] }

        /// The rows a selection keeps, as activations on a backend.
        func activations(_ rows: FitRows, layer: Int = 1, backend: any Backend) throws -> LayerActivations {
            let keep = roles.indices.filter { rows.includes(role: roles[$0]) }
            return try LayerActivations.upload(layer: layer, h: keep.flatMap { rowValues(h, $0) }, delta: keep.flatMap { rowValues(delta, $0) },
                                               hiddenSize: d, roles: keep.map { roles[$0] }, examples: keep.map { examples[$0] }, on: backend)
        }
    }

    struct Normal {
        var rng: SplitMix64
        var spare: Float?
        mutating func next() -> Float {
            if let s = spare { spare = nil; return s }
            var u1 = Double(rng.next() >> 11) / Double(1 << 53)
            if u1 < 1e-300 { u1 = 1e-300 }
            let u2 = Double(rng.next() >> 11) / Double(1 << 53)
            let r = (-2 * log(u1)).squareRoot()
            spare = Float(r * sin(2 * .pi * u2))
            return Float(r * cos(2 * .pi * u2))
        }
    }

    static func cosine(_ a: [Float], _ b: [Float]) -> Double { FitOps.dot(a, b) / (FitOps.norm(a) * FitOps.norm(b)) }

    // MARK: DiffMean

    @Test func diffMeanHandComputed() throws {
        let data = try LayerActivations.upload(layer: 0, h: [0, 0, 1, 1, -2, 3], delta: [1, 2, 3, 4, 5, -6], hiddenSize: 2,
                                               roles: [0, 1, 2], on: backend)
        let all = try DiffMean.fit(data, backend: backend)
        #expect(all.head.z == [3, 0])
        #expect(all.head.activation == .constant && all.head.w == [0, 0] && all.head.bias == 0)
        // The answer rows (roles 1 and 2): z = mean([3, 4], [5, -6]) = [4, -1].
        let answer = try LayerActivations.upload(layer: 0, h: [1, 1, -2, 3], delta: [3, 4, 5, -6], hiddenSize: 2, roles: [1, 2], on: backend)
        let fit = try DiffMean.fit(answer, backend: backend)
        #expect(fit.head.z == [4, -1])
        // Errors [-1, 5] and [1, -5]: 52 over sum ||Delta||^2 = 25 + 61.
        #expect(abs(fit.relativeRMSE - (52.0 / 86).squareRoot()) < 1e-6)
        // The set form: mean(h + Delta) - mean(h) at the same rows is the same vector.
        let steered = try backend.tensor([4, 5, 3, -3], shape: [2, 2])
        #expect(try DiffMean.vector(positive: steered, negative: answer.h, backend: backend) == [4, -1])
        // Two row sets of different sizes, and rows of one tensor.
        let pos = try backend.tensor([1, 1, 3, 3], shape: [2, 2]), neg = try backend.tensor([0, 0, 1, 1, 2, 2], shape: [3, 2])
        #expect(try DiffMean.vector(positive: pos, negative: neg, backend: backend) == [1, 1])
        #expect(try DiffMean.vector(positive: neg, positiveRows: [2], negative: neg, negativeRows: [0, 1], backend: backend) == [1.5, 1.5])
        #expect(throws: TillerError.self) { try DiffMean.vector(positive: neg, positiveRows: [3], negative: neg, backend: backend) }
    }

    @Test func diffMeanRecoversMeanShift() throws {
        let s = Synthetic()
        let data = try s.activations(.answer, backend: backend)
        let fit = try DiffMean.fit(data, backend: backend)
        let kept = s.roles.indices.filter { s.roles[$0] != 0 }
        let meanC = kept.reduce(0.0) { $0 + s.c[$1] } / Double(kept.count)
        let expected = s.v.map { Float(meanC) * $0 }
        let error = FitOps.norm(zip(fit.head.z, expected).map { $0 - $1 }) / FitOps.norm(expected)
        #expect(error < 0.01, "z = mean(c) v, relative error \(error)")
        // alpha 1 is its best scale: any other alpha is worse.
        for alpha: Float in [0.8, 1.25] {
            #expect(try FitEvaluation.relativeRMSE(fit.head, on: data, alpha: alpha, backend: backend) > fit.relativeRMSE)
        }
    }

    // MARK: PCA

    @Test func pcaHandComputed() throws {
        // Differences on the line [1, 1]: the component is [1, 1]/sqrt 2, three of four pairs vote +.
        let line = try LayerActivations.upload(layer: 2, h: [Float](repeating: 0.5, count: 8), delta: [1, 1, 2, 2, 3, 3, -1, -1],
                                               hiddenSize: 2, roles: [2, 2, 2, 2], on: backend)
        let r = try PCADirection.direction(line, backend: backend)
        let s = Float(0.5).squareRoot()
        #expect(abs(r.direction[0] - s) < 1e-6 && abs(r.direction[1] - s) < 1e-6)
        let root2 = Float(2).squareRoot()
        #expect(abs(r.scale - 5 * root2 / 4) < 1e-5)
        #expect(abs(r.positiveShare - 0.75) < 1e-12)
        let fit = try PCADirection.fit(line, backend: backend)
        #expect(abs(fit.head.z[0] - 1.25) < 1e-5 && abs(fit.head.z[1] - 1.25) < 1e-5)
        // repeng's vote, not the mean, orients the direction: two of three pairs project lower,
        // so the direction is -[1, 1] and the scale negative; z is the same either way.
        let vote = try LayerActivations.upload(layer: 2, h: [Float](repeating: 0, count: 6), delta: [-1, -1, -2, -2, 10, 10],
                                               hiddenSize: 2, roles: [2, 2, 2], on: backend)
        let v = try PCADirection.direction(vote, backend: backend)
        #expect(v.direction[0] < 0 && v.direction[1] < 0)
        #expect(abs(v.scale + 7 * root2 / 3) < 1e-5)
        let z = try PCADirection.fit(vote, backend: backend).head.z
        #expect(abs(z[0] - 7.0 / 3) < 1e-5 && abs(z[1] - 7.0 / 3) < 1e-5)
    }

    @Test func pcaRecoversDirectionWithSign() throws {
        let s = Synthetic()
        let data = try s.activations(.answer, backend: backend)
        let r = try PCADirection.direction(data, backend: backend)
        let cos = Self.cosine(r.direction, s.v)
        #expect(cos > 0.999, "PC1 = +v/|v|: cos \(cos)")
        #expect(abs(FitOps.norm(r.direction) - 1) < 1e-5)
        #expect(r.explainedShare > 0.9)
        // Negated differences give the opposite direction (the sign follows the pairs).
        let flipped = try LayerActivations.upload(layer: 1, h: try backend.floats(data.h), delta: try backend.floats(data.delta).map { -$0 },
                                                  hiddenSize: s.d, roles: data.roles, on: backend)
        #expect(Self.cosine(try PCADirection.direction(flipped, backend: backend).direction, s.v) < -0.999)
        // The head adds the mean projection of Delta on the direction.
        let fit = try PCADirection.fit(data, backend: backend)
        let meanDelta = try DiffMean.vector(data, backend: backend)
        let projected = FitOps.dot(meanDelta, r.direction)
        #expect(abs(Double(r.scale) - projected) < 1e-4 * abs(projected))
        #expect(abs(FitOps.norm(fit.head.z) - abs(projected)) < 1e-4 * abs(projected))
        // Uncentered: the first singular vector, here also v.
        #expect(Self.cosine(try PCADirection.direction(data, centered: false, backend: backend).direction, s.v) > 0.999)
    }

    // MARK: Stolfo

    @Test func stolfoHandComputed() throws {
        // Two last-prompt rows (one per example) and one answer row.
        let data = try LayerActivations.upload(layer: 0, h: [1, 1, 3, 5, 0, 2], delta: [2, 0, 4, 0, 1, 1], hiddenSize: 2,
                                               roles: [1, 1, 2], examples: [0, 1, 1], on: backend)
        let fit = try StolfoProjection.fit(data, backend: backend)
        // u = normalise(mean([2, 0], [4, 0])) = [1, 0]; c_bar = mean(1 + 2, 3 + 4) = 5.
        #expect(fit.head == SteeringHead.projection(u: [1, 0], cBar: 5))
        // At alpha 1 each row's projection becomes 5: interventions [4, 0], [2, 0], [5, 0] against
        // Deltas [2, 0], [4, 0], [1, 1]: squared errors 4 + 4 + 17 over 4 + 16 + 2.
        #expect(abs(fit.relativeRMSE - (25.0 / 22).squareRoot()) < 1e-6)
        let over = try StolfoProjection.direction(data, cBarRows: .fitRows, backend: backend)
        #expect(abs(over.cBar - 11.0 / 3) < 1e-6)
        // No last-prompt rows: an error naming the layer.
        let answers = try LayerActivations.upload(layer: 4, h: [1, 1], delta: [1, 0], hiddenSize: 2, roles: [2], on: backend)
        #expect(throws: TillerError.self) { try StolfoProjection.fit(answers, backend: backend) }
        do { _ = try StolfoProjection.fit(answers, backend: backend) } catch { #expect("\(error)".contains("layer 4")) }
    }

    @Test func stolfoMatchesHandComputationOnSyntheticCapture() throws {
        let s = Synthetic()
        let data = try s.activations(.answer, backend: backend)
        let fit = try StolfoProjection.fit(data, backend: backend)
        // By hand, in Double: role-1 rows of the whole capture.
        let last = s.roles.indices.filter { s.roles[$0] == 1 }
        var mean = [Double](repeating: 0, count: s.d)
        for t in last { for i in 0..<s.d { mean[i] += Double(s.delta[t * s.d + i]) / Double(last.count) } }
        let norm = mean.reduce(0) { $0 + $1 * $1 }.squareRoot()
        let u = mean.map { $0 / norm }
        var cBar = 0.0
        for t in last { for i in 0..<s.d { cBar += (Double(s.h[t * s.d + i]) + Double(s.delta[t * s.d + i])) * u[i] / Double(last.count) } }
        for i in 0..<s.d {
            #expect(abs(Double(fit.head.z[i]) - u[i]) < 1e-5)
            #expect(fit.head.w[i] == -fit.head.z[i])
        }
        #expect(abs(Double(fit.head.bias) - cBar) < 1e-4 * abs(cBar))
        #expect(fit.head.activation == .identity)
        #expect(Self.cosine(fit.head.z, s.v) > 0.999, "u = v/|v|")
        // The relative RMSE by hand: intervention (c_bar - h.u) u on every fitted row.
        var num = 0.0, den = 0.0
        for t in s.roles.indices where s.roles[t] != 0 {
            let hu = (0..<s.d).reduce(0.0) { $0 + Double(s.h[t * s.d + $1]) * u[$1] }
            for i in 0..<s.d {
                let e = (cBar - hu) * u[i] - Double(s.delta[t * s.d + i])
                num += e * e
                den += Double(s.delta[t * s.d + i]) * Double(s.delta[t * s.d + i])
            }
        }
        #expect(abs(fit.relativeRMSE - (num / den).squareRoot()) < 1e-3 * (num / den).squareRoot())
    }

    // MARK: Local PSR

    @Test func localPSRRecoversReluRuleWhereDiffMeanCannot() throws {
        let s = Synthetic()
        let data = try s.activations(.answer, backend: backend)
        let result = try LocalPSR.fit(data, backend: backend)
        let fit = result.fit
        // The noise floor: the relative RMSE of the true c_t v.
        var noise = 0.0, total = 0.0
        for t in s.roles.indices where s.roles[t] != 0 {
            for i in 0..<s.d {
                let x = Double(s.delta[t * s.d + i])
                total += x * x
                noise += (x - s.c[t] * Double(s.v[i])) * (x - s.c[t] * Double(s.v[i]))
            }
        }
        let floor = (noise / total).squareRoot()
        print("synthetic PSR fit: relative RMSE \(fit.relativeRMSE) (train \(fit.details["train_relative_rmse"]!), noise floor \(floor)), DiffMean \(result.diffMean.relativeRMSE), active share \(result.activeShare), best step \(result.bestStep) of \(result.history.count - 1)")
        #expect(fit.relativeRMSE < 0.1)
        #expect(fit.relativeRMSE < 1.1 * floor)
        #expect(result.diffMean.relativeRMSE > 0.7)
        #expect(fit.relativeRMSE <= result.diffMean.relativeRMSE)
        #expect(abs(result.history[0] - result.diffMean.relativeRMSE) < 1e-4, "step 0 is DiffMean")
        // What psrHead computes from the raw activations agrees with the fit's own loss.
        #expect(abs(fit.relativeRMSE - fit.details["train_relative_rmse"]!) < 2e-3)
        #expect(fit.head.activation == .relu)
        #expect(Self.cosine(fit.head.z, s.v) > 0.999)
        // lambda_t z reproduces c_t v: lambda from the backend's psrHead on raw h.
        let m = data.rowCount
        let heads = try backend.psrHeads(w: fit.head.w, bias: [fit.head.bias], z: fit.head.z, activations: [.relu], dim: s.d)
        let lambda = try backend.empty([m])
        let copy = try backend.empty([m, s.d])
        try backend.copy(data.h, to: copy)
        try backend.psrHead(copy, heads: heads, headIndex: try backend.tensor(ints: [Int32](repeating: 0, count: m), shape: [m]),
                            alpha: try backend.tensor([Float](repeating: 1, count: m), shape: [m]), lambda: lambda)
        let lambdas = try backend.floats(lambda)
        #expect(abs(lambdas.reduce(0.0) { $0 + Double($1) } / Double(m) - 1) < 1e-3, "lambda normalised to mean 1")
        let kept = s.roles.indices.filter { s.roles[$0] != 0 }
        let zNorm = FitOps.norm(fit.head.z)
        var worst = 0.0, scale = 0.0
        for (k, t) in kept.enumerated() { scale = max(scale, s.c[t] * 2); worst = max(worst, abs(Double(lambdas[k]) * zNorm - s.c[t] * 2)) }
        #expect(worst < 0.05 * scale, "max |lambda |z| - c |v|| = \(worst) of \(scale)")
    }

    @Test func localPSRNeverWorseThanDiffMeanOnConstantShift() throws {
        // Delta is one constant vector plus noise: the best head is a constant one, which PSR
        // starts from.
        var s = Synthetic(d: 8, examples: 20, seed: 7)
        var normal = Normal(rng: SplitMix64(seed: 3))
        s.delta = (0..<s.rows * s.d).map { i in Float(i % s.d) * 0.1 + 1 + 0.3 * normal.next() }
        let data = try s.activations(.all, backend: backend)
        let result = try LocalPSR.fit(data, backend: backend, options: LocalPSROptions(steps: 100))
        #expect(result.fit.relativeRMSE <= result.diffMean.relativeRMSE + 1e-4)
    }

    // MARK: Capture files

    /// Writes a capture in the format of `tiller capture`, by hand (I32 row tensors, F32 layers).
    static func writeCapture(_ s: Synthetic, layers: [Int], to path: String, metadataLayers: [Int]? = nil,
                             shapes: [String: [Int]] = [:], omit: Set<String> = [], model: ModelFingerprint? = nil) throws {
        var tensors: [(String, String, [Int], [UInt8])] = []
        func ints(_ name: String, _ v: [Int32]) {
            tensors.append((name, "I32", shapes[name] ?? [v.count], v.withUnsafeBytes { Array($0) }))
        }
        ints("tokens", s.roles.indices.map { Int32($0 % 7) })
        ints("example", s.examples)
        ints("position", s.roles.indices.map { Int32($0 % 20) })
        ints("role", s.roles)
        for layer in layers {
            // Each layer is the synthetic one, scaled, so layers differ.
            let k = Float(layer + 1)
            tensors.append(("layers.\(layer).h", "F32", shapes["layers.\(layer).h"] ?? [s.rows, s.d], s.h.map { $0 * k }.withUnsafeBytes { Array($0) }))
            tensors.append(("layers.\(layer).delta", "F32", shapes["layers.\(layer).delta"] ?? [s.rows, s.d], s.delta.map { $0 * k }.withUnsafeBytes { Array($0) }))
        }
        tensors.removeAll { omit.contains($0.0) }
        var modelJSON = ""
        if let model {
            modelJSON = ",\"model\":{\"architecture\":\"\(model.architecture)\",\"model_type\":\"\(model.modelType)\",\"hidden_size\":\(model.hiddenSize),"
                + "\"layer_count\":\(model.layerCount),\"weights_header_hash\":\"\(model.weightsHeaderHash)\"}"
        }
        let listed = (metadataLayers ?? layers).map(String.init).joined(separator: ",")
        let description = "{\"version\":1,\"layers\":[\(listed)],\"hidden_size\":\(s.d),\"rows\":\(s.rows),\"triplets\":\(Set(s.examples).count)\(modelJSON),\"source\":\"synthetic.jsonl\"}"
        var header = ["\"__metadata__\":{\"tiller.capture\":\(SafetensorsWriter.jsonString(description))}"]
        var offset = 0
        for (name, dtype, shape, bytes) in tensors {
            header.append("\"\(name)\":{\"dtype\":\"\(dtype)\",\"shape\":[\(shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + bytes.count)]}")
            offset += bytes.count
        }
        var json = Array("{\(header.joined(separator: ","))}".utf8)
        while json.count % 8 != 0 { json.append(0x20) }
        var out = HandBytes()
        out.u64(UInt64(json.count))
        out.raw(json)
        for t in tensors { out.raw(t.3) }
        try writeFile(path, out.bytes)
    }

    @Test func captureFileRoundTripAndFits() throws {
        let dir = try SteeringTempDirectory()
        defer { dir.cleanup() }
        let s = Synthetic(examples: 30)
        let path = dir.file("capture.safetensors")
        let model = SteeringFileFixtures.synthetic(hiddenSize: s.d, layerCount: 4)
        try Self.writeCapture(s, layers: [1, 3], to: path, model: model)
        let capture = try CaptureData(path: path)
        #expect(capture.layers == [1, 3])
        #expect(capture.rowCount == s.rows && capture.hiddenSize == s.d)
        #expect(capture.roles == s.roles && capture.examples == s.examples)
        #expect(capture.model == model)
        try capture.check(against: model)

        let rows = capture.rowIndices(.answer)
        #expect(rows == s.roles.indices.filter { s.roles[$0] != 0 })
        #expect(capture.rowIndices(.all).count == s.rows)
        #expect(capture.rowIndices(.lastPrompt).count == 30)
        let layer1 = try capture.activations(layer: 1, rows: rows, on: backend)
        let direct = try s.activations(.answer, backend: backend)
        // writeCapture stores layer L as the synthetic values times L + 1.
        #expect(try backend.floats(layer1.h) == backend.floats(direct.h).map { $0 * 2 })
        #expect(try backend.floats(layer1.delta) == backend.floats(direct.delta).map { $0 * 2 })
        #expect(layer1.roles == direct.roles)
        let all = try capture.activations(layer: 3, rows: capture.rowIndices(.all), on: backend)
        #expect(try backend.floats(all.delta) == s.delta.map { $0 * 4 })

        // Every method through the dispatcher, into a steering file and back.
        var heads: [Int: SteeringHead] = [:]
        for method in FitMethod.allCases {
            let fit = try method.fit(layer1, backend: backend, psr: LocalPSROptions(steps: 50))
            #expect(fit.layer == 1 && fit.rowCount == rows.count && fit.relativeRMSE.isFinite)
            heads[fit.layer] = fit.head
            let out = dir.file("\(method.rawValue).safetensors")
            try SteeringFile.save(Intervention(method: method.rawValue, heads: heads, location: .answerOnly), model: model, to: out)
            let back = try SteeringFile.load(path: out, for: model)
            #expect(back.heads == heads && back.method == method.rawValue && back.location == .answerOnly)
        }
    }

    @Test func captureErrorsNameFileAndTensor() throws {
        let dir = try SteeringTempDirectory()
        defer { dir.cleanup() }
        let s = Synthetic(d: 4, examples: 3)
        func failure(_ body: () throws -> Void) -> String {
            do { try body() } catch { return "\(error)" }
            return "no error"
        }
        func oneLine(_ message: String, _ parts: String...) {
            #expect(!message.contains("\n"), "\(message)")
            for part in parts { #expect(message.contains(part), "'\(part)' in: \(message)") }
        }

        // A layer the capture does not hold.
        let good = dir.file("good.safetensors")
        try Self.writeCapture(s, layers: [1], to: good)
        let capture = try CaptureData(path: good)
        oneLine(failure { _ = try capture.activations(layer: 2, rows: [0], on: backend) }, good, "layers.2.h", "layers 1")
        oneLine(failure { _ = try capture.activations(layer: 1, rows: [s.rows], on: backend) }, good, "row \(s.rows)")
        // Metadata listing a layer whose tensors are missing.
        let listed = dir.file("listed.safetensors")
        try Self.writeCapture(s, layers: [1], to: listed, metadataLayers: [1, 3])
        oneLine(failure { _ = try CaptureData(path: listed) }, listed, "layers.3.h")
        // Only half a layer.
        let half = dir.file("half.safetensors")
        try Self.writeCapture(s, layers: [1], to: half, omit: ["layers.1.delta"])
        oneLine(failure { _ = try CaptureData(path: half) }, half, "layers.1.delta")
        // A misshapen layer tensor.
        let wide = dir.file("wide.safetensors")
        try Self.writeCapture(s, layers: [1], to: wide, shapes: ["layers.1.delta": [s.rows * s.d / 2, 2]])
        oneLine(failure { _ = try CaptureData(path: wide) }, wide, "layers.1.delta", "[\(s.rows * s.d / 2), 2]", "[\(s.rows), \(s.d)]")
        // No role tensor; a role tensor of the wrong shape.
        let noRole = dir.file("norole.safetensors")
        try Self.writeCapture(s, layers: [1], to: noRole, omit: ["role"])
        oneLine(failure { _ = try CaptureData(path: noRole) }, noRole, "'role'")
        let badExample = dir.file("badexample.safetensors")
        try Self.writeCapture(s, layers: [1], to: badExample, shapes: ["example": [s.rows / 2, 2]])
        oneLine(failure { _ = try CaptureData(path: badExample) }, badExample, "'example'", "[\(s.rows / 2), 2]")
        // Made for another model.
        let model = SteeringFileFixtures.synthetic(hiddenSize: s.d, layerCount: 4)
        let other = dir.file("other.safetensors")
        try Self.writeCapture(s, layers: [1], to: other, model: model)
        var target = model
        target.weightsHeaderHash = "fnv1a64:ffffffffffffffff"
        oneLine(failure { try CaptureData(path: other).check(against: target) }, other, model.weightsHeaderHash, target.weightsHeaderHash)
        target = SteeringFileFixtures.synthetic(hiddenSize: 64, layerCount: 4)
        oneLine(failure { try CaptureData(path: good).check(against: target) }, good, "hidden size \(s.d)", "64")
        target = SteeringFileFixtures.synthetic(hiddenSize: s.d, layerCount: 1)
        oneLine(failure { try CaptureData(path: good).check(against: target) }, good, "layer 1", "1 layers")
    }
}
