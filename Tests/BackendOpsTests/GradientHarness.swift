// The op suite's gradient mode, in the manner of test-backend-ops' grad mode: every backward op
// is checked twice. (1) On the reference, its analytic gradient against finite differences of
// the reference's own forward op, the loss and the difference quotients in Double. (2) On every
// backend that implements `GradientBackend`, its gradient against the reference's analytic one,
// with the guard bytes, unchanged inputs and NMSE thresholds of the forward suite.

import Testing
import TillerCore

/// A float input of a gradient case. Differentiable inputs are perturbed by the finite
/// differences; the others (frozen weights, alphas) only feed the op.
struct GradientInput {
    var name: String
    var values: [Float]
    var shape: [Int]
    var dtype: DType = .f32
    var differentiable = true
}

/// One backward op on one set of inputs. `forward` runs the forward op and makes its outputs
/// (with `run.output`); the scalar the gradient is of is sum_i seeds[i] . output_i. `backward`
/// runs the backward op and makes, in the order of the differentiable inputs, one output per
/// gradient (it may make further outputs after them, which only the backend comparison reads).
/// Integer inputs (indices, targets) are captured by the closures and uploaded with `run.input`.
struct GradientCase {
    var name: String
    var inputs: [GradientInput]
    var seeds: [[Float]]
    var forward: (OpRun, [Tensor]) throws -> Void
    var backward: (OpRun, [Tensor]) throws -> Void
    /// Elements of each differentiable input whose difference quotient is taken (all when the
    /// input is small; a fixed random sample above, to bound the forward runs).
    var sampledElements = 48
    /// Step of the central differences, relative to max(1, |x|).
    var step = 1e-2
    /// Cases above this many input elements are sized for the backends' blocking and threading:
    /// they compare backends only (the small ones check the maths against finite differences).
    static let finiteDifferenceLimit = 4_000
    var finiteDifferences: Bool { inputs.reduce(0) { $0 + $1.values.count } <= Self.finiteDifferenceLimit }
}

extension OpRun {
    /// The backend under test as a `GradientBackend`, or an error naming it.
    var gradients: any GradientBackend {
        get throws {
            guard let backend = backend as? any GradientBackend else {
                throw TillerError.unsupported("\(backend.name) has no backward ops")
            }
            return backend
        }
    }

    func inputs(_ inputs: [GradientInput]) throws -> [Tensor] {
        try inputs.map { try input($0.values, $0.shape, $0.dtype) }
    }
}

/// The backends whose gradients are compared with the reference's.
func gradientBackendsUnderTest() -> [any Backend] {
    backendsUnderTest().filter { $0 is any GradientBackend }
}

enum GradientTolerance {
    /// Analytic against finite differences: the 4-point stencil's truncation error is O(step^4),
    /// but every forward output is rounded to f32, so the quotients carry ~1e-7 / step relative
    /// noise. A wrong term in a gradient gives NMSE of 1e-3 and more.
    static let finiteDifference = 1e-6
}

/// The sum of seeds . outputs of one forward run on the reference, in Double.
private func referenceLoss(_ c: GradientCase, _ values: [[Float]]) throws -> Double {
    let run = OpRun(ReferenceBackend())
    let tensors = try zip(c.inputs, values).map { try run.input($1, $0.shape, $0.dtype) }
    try c.forward(run, tensors)
    let outputs = try run.finish().values
    var loss = 0.0
    for (seed, (_, output)) in zip(c.seeds, outputs) {
        guard case .floats(let out) = output else { continue }
        for (s, o) in zip(seed, out) { loss += Double(s) * Double(o) }
    }
    return loss
}

/// Runs both checks of a gradient case, recording an issue per problem.
func checkGradients(_ c: GradientCase, maxNMSE: Double, sourceLocation: SourceLocation = #_sourceLocation) {
    for message in finiteDifferenceProblems(c) + compareWithReference(c.name, maxNMSE: maxNMSE, backends: gradientBackendsUnderTest(), { run in
        try c.backward(run, try run.inputs(c.inputs))
    }) {
        Issue.record(Comment(rawValue: "\(message) (seed \(TestSeed.value); replay with \(TestSeed.replay))"), sourceLocation: sourceLocation)
    }
}

/// The reference's analytic gradients against its finite differences.
func finiteDifferenceProblems(_ c: GradientCase) -> [String] {
    guard c.finiteDifferences else { return [] }
    do {
        let run = OpRun(ReferenceBackend())
        try c.backward(run, try run.inputs(c.inputs))
        let analytic = try run.finish().values
        var problems: [String] = []
        var rng = caseRNG("finite differences \(c.name)")
        for (slot, index) in c.inputs.indices.filter({ c.inputs[$0].differentiable }).enumerated() {
            guard slot < analytic.count, case .floats(let gradient) = analytic[slot].values else {
                return ["[\(c.name)] the backward made no gradient for \(c.inputs[index].name)"]
            }
            let input = c.inputs[index]
            let elements = input.values.count <= c.sampledElements
                ? Array(input.values.indices) : Array(rng.shuffled(input.values.count).prefix(c.sampledElements))
            var numeric: [Float] = [], expected: [Float] = []
            for element in elements {
                let x = Double(input.values[element]), h = c.step * max(1, abs(x))
                func loss(_ offset: Double) throws -> Double {
                    var values = c.inputs.map(\.values)
                    values[index][element] = Float(x + offset)
                    return try referenceLoss(c, values)
                }
                // The perturbed value is rounded to f32: divide by the step actually taken.
                let step = Double(Float(x + h)) - x, step2 = Double(Float(x + 2 * h)) - x
                let back = x - Double(Float(x - h)), back2 = x - Double(Float(x - 2 * h))
                let near = (try loss(h) - loss(-h)) / (step + back)
                let far = (try loss(2 * h) - loss(-2 * h)) / (step2 + back2)
                numeric.append(Float((4 * near - far) / 3))
                expected.append(gradient[element])
            }
            let error = nmse(expected, numeric)
            if !(error <= GradientTolerance.finiteDifference) {
                let worst = numeric.indices.max { abs(numeric[$0] - expected[$0]) < abs(numeric[$1] - expected[$1]) } ?? 0
                problems.append("[\(c.name)] reference gradient of \(input.name) against finite differences: NMSE \(error) > \(GradientTolerance.finiteDifference); element \(elements[worst]): analytic \(expected[worst]), numeric \(numeric[worst])")
            }
        }
        return problems
    } catch {
        return ["[\(c.name)] on reference: threw \(error)"]
    }
}
