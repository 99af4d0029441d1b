import Foundation
import TillerCore
import TillerModels
import TillerSteering

/// The cost of steering (issue 6, item 7): `Generator.generate` with a `SteeringHook` against the
/// same generation without a hook, on the same model, samples interleaved in the same run
/// (`tiller-bench --model DIR --steering`):
///
///   decode, PSR on 1 layer   one sequence, a 16-token prompt, 32 greedy new tokens; one relu PSR
///                            head on the middle layer. Decode tokens / s: the 31 steps after
///                            the one that prefills the prompt.                      >= 0.97x
///   decode, PSR on all       the same with a PSR head on every layer                >= 0.9x
///   batch, 4 kinds           32 sequences, 16-token prompts, 32 new tokens each, one batch whose
///                            sequences take, in turn, no steering, a constant vector, Stolfo's
///                            projection and a PSR head, each steered kind on every layer and
///                            every position. Generated tokens / s, the prompts' pass included,
///                            against an unsteered batch of the same shape.        >= 0.9x
///
/// Heads are random but finite, made here from a fixed seed and scaled to the model's residual
/// stream (measured by one unsteered pass of the prompt): relu heads have w . h of about unit
/// spread and bias 1, so lambda > 0 on most rows (the report's progress lines give the share) and
/// the op really adds alpha * lambda * z; each added vector is a tenth of a typical row's norm.
/// End-of-sequence tokens are ignored so every run generates the same number of tokens.
enum SteeringBench {
    static let decode = (prompt: 16, new: 32)
    static let batch = (sequences: 32, prompt: 16, new: 32)

    static func run(_ bench: BenchRun, modelPath: String, profile: Bool) throws {
        for variant in try ModelBench.variants(modelPath) {
            let name = "steering/\(variant.name)"
            // The shapes name the layer count, known once loaded; these stand-ins hold the rest.
            let shapes = ["decode \(decode.prompt)+\(decode.new), PSR on layer", "decode \(decode.prompt)+\(decode.new), PSR on all",
                          "batch \(batch.sequences)x(\(batch.prompt)+\(batch.new)), 4 kinds on all"]
            guard shapes.contains(where: { bench.selected(name, $0) }) else { continue }
            try runVariant(bench, name: name, directory: variant.directory, dtype: variant.dtype, profile: profile)
        }
    }

    static func runVariant(_ bench: BenchRun, name: String, directory: String, dtype: DType?, profile: Bool) throws {
        let profiler = profile ? ProfilingBackend(bench.backend) : nil
        let backend: Backend = profiler ?? bench.backend
        if profile { bench.progress("\(name): --profile times the steered runs' ops only, so their ratios mean nothing") }
        let loadStart = monotonicSeconds()
        let model = try TransformerModel.load(directory: directory, backend: backend, weightDType: dtype)
        let layers = model.layerCount, d = model.hiddenSize, middle = layers / 2
        bench.progress("\(name): loaded \(directory) in \(String(format: "%.1f", monotonicSeconds() - loadStart)) s, "
                       + "\(layers) layers, hidden size \(d)")
        let vocab = model.vocabularySize
        var timedHook: TimedHook?
        /// Whether the profiler (and the hook's timer) count what runs now.
        func setRecording(_ on: Bool) {
            profiler?.recording = on
            timedHook?.recording = on
        }
        func resetProfile() {
            profiler?.reset()
            timedHook?.reset()
        }

        let decodePrompt = ModelBench.tokenIDs(decode.prompt, vocab: vocab, seed: 2)
        let rms = try residualScale(model, prompt: decodePrompt)
        let heads = HeadFactory(hiddenSize: d, rms: rms)

        // Interventions: [0] PSR at the middle layer; [1] PSR on every layer; and for the mixed
        // batch [0] constant, [1] Stolfo, [2] PSR, each on every layer.
        let psrOne = Intervention(method: "psr", heads: [middle: heads.psr(layer: middle, seed: 1)])
        let psrAll = Intervention(method: "psr", heads: Dictionary(uniqueKeysWithValues: (0..<layers).map { ($0, heads.psr(layer: $0, seed: 2)) }))
        let constantAll = Intervention(method: "diffmean", heads: Dictionary(uniqueKeysWithValues: (0..<layers).map { ($0, heads.constant(layer: $0, seed: 3)) }))
        let stolfoAll = Intervention(method: "stolfo", heads: Dictionary(uniqueKeysWithValues: (0..<layers).map { ($0, heads.projection(layer: $0, seed: 4)) }))
        let psrAllMixed = Intervention(method: "psr", heads: Dictionary(uniqueKeysWithValues: (0..<layers).map { ($0, heads.psr(layer: $0, seed: 5)) }))

        let greedy = GenerationOptions(maxNewTokens: decode.new)
        let decodeGenerator = try Generator(model: model, batchSize: 1, eosTokenIDs: [])
        let decodeRequest = [GenerationRequest(promptIDs: decodePrompt, options: greedy)]

        /// Decode seconds of one generation: from the end of the first step (the prompt's pass and
        /// the first token) to the end. `recording` brackets the part the profiler counts.
        func decodeRun(_ hook: GenerationHook?, recording: Bool) throws -> Double {
            var firstStep: Double?
            let results = try decodeGenerator.generate(decodeRequest, hook: hook, progress: { _ in
                if firstStep == nil {
                    firstStep = monotonicSeconds()
                    setRecording(recording)
                }
            })
            let end = monotonicSeconds()
            setRecording(false)
            guard results[0].ids.count == decode.new, let firstStep else {
                throw TillerError.invalidArgument(op: "bench", detail: "decode generated \(results[0].ids.count) of \(decode.new) tokens")
            }
            return end - firstStep
        }

        let decodeShape = "decode \(decode.prompt)+\(decode.new)"
        let decodeCases: [(shape: String, intervention: Intervention, target: Double)] = [
            ("\(decodeShape), PSR on layer \(middle) of \(layers)", psrOne, 0.97),
            ("\(decodeShape), PSR on all \(layers) layers", psrAll, 0.9),
        ]
        for c in decodeCases where bench.selected(name, c.shape) {
            let steering = try SteeringHook(model: model, interventions: [c.intervention], requests: [SequenceSteering([SteeringApplication(intervention: 0)])])
            try reportLambdas(bench, name: name, shape: c.shape, hook: steering, request: 0, steeredLayers: c.intervention.heads.count) {
                _ = try decodeGenerator.generate(decodeRequest, hook: steering)
            }
            timedHook = profile ? TimedHook(steering) : nil
            let hook: GenerationHook = timedHook ?? steering
            let m = try measurePairs(bench.plan, beforeTimed: resetProfile, reference: { try decodeRun(nil, recording: false) },
                                     steered: { try decodeRun(hook, recording: true) })
            record(bench, name: name, shape: c.shape, tokens: decode.new - 1, m, target: c.target)
            if let profiler { printProfile(bench, name: name, shape: c.shape, profiler: profiler, hook: timedHook, m: m) }
        }

        let batchShape = "batch \(batch.sequences)x(\(batch.prompt)+\(batch.new)), 4 kinds on all \(layers) layers"
        if bench.selected(name, batchShape) {
            let prompts = (0..<batch.sequences).map { ModelBench.tokenIDs(batch.prompt, vocab: vocab, seed: UInt64(100 + $0)) }
            let requests = prompts.map { GenerationRequest(promptIDs: $0, options: GenerationOptions(maxNewTokens: batch.new)) }
            // Sequence i: unsteered, constant, Stolfo, PSR, unsteered, ...
            let steeringOf = (0..<batch.sequences).map { i in
                i % 4 == 0 ? SequenceSteering.unsteered : SequenceSteering([SteeringApplication(intervention: i % 4 - 1)])
            }
            let steering = try SteeringHook(model: model, interventions: [constantAll, stolfoAll, psrAllMixed], requests: steeringOf)
            let generator = try Generator(model: model, batchSize: batch.sequences, eosTokenIDs: [])
            try reportLambdas(bench, name: name, shape: batchShape + " (a PSR sequence)", hook: steering, request: 3, steeredLayers: layers) {
                _ = try generator.generate(requests, hook: steering)
            }
            timedHook = profile ? TimedHook(steering) : nil
            let hook: GenerationHook = timedHook ?? steering
            func batchRun(_ hook: GenerationHook?) throws -> Double {
                setRecording(hook != nil)
                let start = monotonicSeconds()
                let results = try generator.generate(requests, hook: hook)
                let seconds = monotonicSeconds() - start
                setRecording(false)
                let generated = results.reduce(0) { $0 + $1.ids.count }
                guard generated == batch.sequences * batch.new else {
                    throw TillerError.invalidArgument(op: "bench", detail: "the batch generated \(generated) of \(batch.sequences * batch.new) tokens")
                }
                return seconds
            }
            let m = try measurePairs(bench.plan, beforeTimed: resetProfile, reference: { try batchRun(nil) }, steered: { try batchRun(hook) })
            record(bench, name: name, shape: batchShape, tokens: batch.sequences * batch.new, m, target: 0.9)
            if let profiler { printProfile(bench, name: name, shape: batchShape, profiler: profiler, hook: timedHook, m: m) }
        }
        withExtendedLifetime(model) {}
    }

    // MARK: Heads

    /// Per layer, the root mean square of the residual stream's entries after that block, over
    /// the prompt's positions in one unsteered pass: the scale the random heads are made at.
    static func residualScale(_ model: TransformerModel, prompt: [Int32]) throws -> [Float] {
        final class Probe: ResidualStreamHook {
            var rms: [Float]
            init(_ layers: Int) { rms = [Float](repeating: 1, count: layers) }
            func afterBlock(_ layer: Int, residual: Tensor, step: ForwardStep, backend: Backend) throws {
                let values = try backend.floats(residual)
                let mean = values.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(max(1, values.count))
                if mean.isFinite, mean > 0 { rms[layer] = Float(mean.squareRoot()) }
            }
        }
        let probe = Probe(model.layerCount)
        let cache = try model.makeCache(batchSize: 1, capacity: prompt.count)
        _ = try model.forward([prompt], cache: cache, hook: probe)
        return probe.rms
    }

    struct HeadFactory {
        let hiddenSize: Int
        let rms: [Float]

        func unit(_ seed: UInt64) -> [Float] {
            var rng = SplitMix64(seed: seed)
            let v = rng.uniforms(hiddenSize)
            let norm = v.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
            return v.map { Float(Double($0) / norm) }
        }

        /// A typical row's norm at `layer`.
        func rowNorm(_ layer: Int) -> Float { rms[layer] * Float(hiddenSize).squareRoot() }

        /// relu(w . h + 1) with w . h spread about 1 (w = a unit direction over the row norm
        /// scaled to the per-entry RMS): lambda > 0 on about 5 rows in 6; z a tenth of a row.
        func psr(layer: Int, seed: UInt64) -> SteeringHead {
            let s = UInt64(layer) &* 0x1000 &+ seed &* 0x10_0000
            let w = unit(s + 1).map { $0 / rms[layer] }
            let z = unit(s + 2).map { $0 * 0.1 * rowNorm(layer) }
            return SteeringHead(w: w, bias: 1, z: z, activation: .relu)
        }

        func constant(layer: Int, seed: UInt64) -> SteeringHead {
            let s = UInt64(layer) &* 0x1000 &+ seed &* 0x10_0000
            return .constant(unit(s + 1).map { $0 * 0.1 * rowNorm(layer) })
        }

        /// Every position's projection on a random unit direction set to a tenth of a row's norm.
        func projection(layer: Int, seed: UInt64) -> SteeringHead {
            let s = UInt64(layer) &* 0x1000 &+ seed &* 0x10_0000
            return .projection(u: unit(s + 1), cBar: 0.1 * rowNorm(layer))
        }
    }

    /// One untimed run recording the lambdas of `request`, to show the heads do work: the share
    /// of (layer, position) rows with lambda > 0 and that every lambda is finite.
    static func reportLambdas(_ bench: BenchRun, name: String, shape: String, hook: SteeringHook, request: Int,
                              steeredLayers: Int, _ run: () throws -> Void) throws {
        hook.recordedRequest = request
        defer { hook.recordedRequest = nil }
        try run()
        let lambdas = try hook.recordedLambdas().map(\.lambda)
        guard lambdas.allSatisfy(\.isFinite) else {
            throw TillerError.invalidArgument(op: "bench", detail: "\(shape): a lambda is not finite")
        }
        let positive = lambdas.filter { $0 > 0 }.count
        bench.progress("\(name) \(shape): lambda > 0 on \(positive) of \(lambdas.count) rows "
                       + "(\(String(format: "%.0f", 100 * Double(positive) / Double(max(1, lambdas.count))))%, \(steeredLayers) layer(s)), "
                       + "mean lambda \(formatFigure(Double(lambdas.reduce(0, +)) / Double(max(1, lambdas.count))))")
    }

    // MARK: Timing

    /// Unsteered (reference) and steered timings: seconds per run, and per round the ratio of the
    /// round's two samples.
    struct Pairs {
        var reference: Measurement
        var steered: Measurement
        /// reference seconds / steered seconds, per round (the steered speed relative to the reference).
        var roundRatios: [Double] { zip(reference.samples, steered.samples).map { $0 / $1 } }
    }

    /// `measureInterleaved` for bodies that return the seconds they count themselves (a decode
    /// leaves out its prompt's pass), interleaved run by run: a warm-up run of each side picks how
    /// many runs make a sample of at least `minSampleSeconds` (the slower side decides, both take
    /// that many), and a round takes one sample of each side by alternating single runs, the side
    /// that goes first alternating too, so both samples of a round see the same minutes of a
    /// shared machine and neither side always runs on a cache or clock the other left.
    static func measurePairs(_ plan: TimingPlan, beforeTimed: () -> Void = {}, reference: () throws -> Double,
                             steered: () throws -> Double) throws -> Pairs {
        func body(_ i: Int) throws -> Double { i == 0 ? try reference() : try steered() }
        let slowest = max(try body(0), try body(1), 1e-7)
        let calls = min(10_000, max(1, Int((plan.minSampleSeconds / slowest).rounded(.up))))
        var order = 0
        func round() throws -> (Double, Double) {
            var totals = (0.0, 0.0)
            for _ in 0..<calls {
                for i in (order % 2 == 0 ? [0, 1] : [1, 0]) {
                    let seconds = try body(i)
                    if i == 0 { totals.0 += seconds } else { totals.1 += seconds }
                }
                order += 1
            }
            return (totals.0 / Double(calls), totals.1 / Double(calls))
        }
        for _ in 0..<plan.warmup { _ = try round() }
        beforeTimed()
        var samples: [[Double]] = [[], []]
        for _ in 0..<max(1, plan.repeats) {
            let (a, b) = try round()
            samples[0].append(a)
            samples[1].append(b)
            // With an even number of runs per sample the next round would start on the same
            // side; step once more so rounds alternate too.
            if calls % 2 == 0 { order += 1 }
        }
        return Pairs(reference: Measurement(samples: samples[0], callsPerSample: calls),
                     steered: Measurement(samples: samples[1], callsPerSample: calls))
    }

    /// The row: the steered figure from the median run, the unsteered one beside it (their
    /// quotient is the ratio column, as in the other suites), and the target checked on the median
    /// of the per-round ratios: each round's two samples were taken run by run in turn, so a
    /// neighbour that slows the machine for minutes (this VM is shared with builds) slows both
    /// sides of a round alike, where the medians of the two sides can come from different minutes.
    static func record(_ bench: BenchRun, name: String, shape: String, tokens: Int, _ m: Pairs, target: Double) {
        let figure = Double(tokens) / m.steered.median
        let reference = ReferenceFigure(name: "unsteered", figure: Double(tokens) / m.reference.median, seconds: m.reference.median)
        let ratios = m.roundRatios.sorted()
        let paired = Measurement(samples: ratios, callsPerSample: 1).median
        let fastest = m.reference.fastest / m.steered.fastest
        bench.progress("\(name) \(shape): steered/unsteered speed per round "
                       + ratios.map { String(format: "%.3f", $0) }.joined(separator: " ")
                       + String(format: " (median %.3f, of the fastest runs %.3f)", paired, fastest)
                       + "; unsteered runs " + m.reference.samples.map { String(format: "%.3f", $0) }.joined(separator: " ") + " s"
                       + "; steered runs " + m.steered.samples.map { String(format: "%.3f", $0) }.joined(separator: " ") + " s")
        let row = Row(name: name, shape: shape, figure: figure, unit: "tok/s", seconds: m.steered.median,
                      fastestSeconds: m.steered.fastest, callsPerSample: m.steered.callsPerSample,
                      reference: reference, ratio: figure / reference.figure,
                      targets: [Target(metric: "paired ratio", value: paired, atLeast: target)])
        bench.record(row)
    }

    // MARK: Profile

    /// With --profile: where the steered runs' time went, per op, and the hook's own share.
    static func printProfile(_ bench: BenchRun, name: String, shape: String, profiler: ProfilingBackend,
                             hook: TimedHook?, m: Pairs) {
        let runs = m.steered.samples.count * m.steered.callsPerSample
        let total = m.steered.samples.reduce(0) { $0 + $1 * Double(m.steered.callsPerSample) }
        bench.progress("\(name) \(shape): ops of the \(runs) timed steered run(s)")
        for line in profiler.summary(total: total) { bench.progress("  " + line) }
        if let hook {
            bench.progress(String(format: "  hook: prepare %.2f ms (%.2f%%) in %d calls, afterBlock %.2f ms (%.2f%%) in %d calls, psrHead included",
                                  hook.prepareSeconds * 1000, 100 * hook.prepareSeconds / total, hook.prepareCalls,
                                  hook.afterBlockSeconds * 1000, 100 * hook.afterBlockSeconds / total, hook.afterBlockCalls))
        }
    }
}

/// Forwards to a steering hook and adds up the time it spends, for --profile.
final class TimedHook: GenerationHook {
    let inner: SteeringHook
    private(set) var prepareSeconds = 0.0, afterBlockSeconds = 0.0
    private(set) var prepareCalls = 0, afterBlockCalls = 0
    /// Only counted while recording (the timed part of a run).
    var recording = false

    init(_ inner: SteeringHook) { self.inner = inner }

    func reset() {
        prepareSeconds = 0; afterBlockSeconds = 0
        prepareCalls = 0; afterBlockCalls = 0
    }

    func assign(slot: Int, request: Int?, promptLength: Int) {
        inner.assign(slot: slot, request: request, promptLength: promptLength)
    }

    func prepare(for step: ForwardStep, backend: Backend) throws {
        guard recording else { return try inner.prepare(for: step, backend: backend) }
        let start = monotonicSeconds()
        defer { prepareSeconds += monotonicSeconds() - start; prepareCalls += 1 }
        try inner.prepare(for: step, backend: backend)
    }

    func afterBlock(_ layer: Int, residual: Tensor, step: ForwardStep, backend: Backend) throws {
        guard recording else { return try inner.afterBlock(layer, residual: residual, step: step, backend: backend) }
        let start = monotonicSeconds()
        defer { afterBlockSeconds += monotonicSeconds() - start; afterBlockCalls += 1 }
        try inner.afterBlock(layer, residual: residual, step: step, backend: backend)
    }
}
