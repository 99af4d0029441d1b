import Foundation
import TillerCore
import TillerModels
import TillerSteering

/// The cost of `tiller capture` (issue 11, item 6): `ActivationCapture.run` teacher-forcing
/// triplets with given completions into a capture file, against plain prefill of the same
/// sequences (`TransformerModel.forward` with a KV cache and the last rows' logits, no hook) in
/// the same batches, samples interleaved in the same run (`tiller-bench --model DIR --capture`):
///
///   14 triplets, all layers    every layer captured, the file written and committed (fsync),
///                              as the command does                                     >= 0.8x
///   14 triplets, one layer     the middle layer only (the pass stops after it)          >= 0.8x
///   one triplet per pass       all layers, each triplet alone in its pass (a batch of two
///                              sequences, as capture ran before it batched) against prefill
///                              of the same batches of two: for comparison, no target
///
/// Figures are teacher-forced tokens per second: both sequences of every triplet, x'y' and xy'.
/// The triplets are made here from a fixed seed with the lengths of a small lab capture (prompts
/// of 30-70 tokens sharing their last 20-40, completions of 30-60: about 2,400 tokens in all).
enum CaptureBench {
    static let tripletCount = 14

    static func run(_ bench: BenchRun, modelPath: String, profile: Bool) throws {
        // Capture runs the checkpoint as stored (the command converts nothing).
        guard let variant = try ModelBench.variants(modelPath).first else { return }
        let name = "capture/\(variant.name)"
        let profiler = profile ? ProfilingBackend(bench.backend) : nil
        let backend: Backend = profiler ?? bench.backend
        if profile { bench.progress("\(name): --profile times the capture runs' ops only, so their ratios mean nothing") }
        let loadStart = monotonicSeconds()
        let model = try TransformerModel.load(directory: variant.directory, backend: backend)
        let fingerprint = try ModelFingerprint(directory: variant.directory)
        let layers = model.layerCount, middle = layers / 2
        bench.progress("\(name): loaded \(variant.directory) in \(String(format: "%.1f", monotonicSeconds() - loadStart)) s, "
                       + "\(layers) layers, hidden size \(model.hiddenSize)")
        let triplets = makeTriplets(vocab: model.vocabularySize)
        let tokens = triplets.reduce(0) { $0 + $1.steeredSequence.count + $1.unsteeredSequence.count }
        let rows = triplets.reduce(0) { $0 + $1.sharedLength }

        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tiller-bench-capture-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("capture.safetensors").path

        let cases: [(shape: String, layers: [Int], maxBatchRows: Int, target: Double?)] = [
            ("\(tripletCount) triplets (\(tokens) tokens), all \(layers) layers", Array(0..<layers), ActivationCapture.defaultBatchRows, 0.8),
            ("\(tripletCount) triplets (\(tokens) tokens), layer \(middle) of \(layers)", [middle], ActivationCapture.defaultBatchRows, 0.8),
            ("\(tripletCount) triplets (\(tokens) tokens), all \(layers) layers, one triplet per pass", Array(0..<layers), 1, nil),
        ]
        for c in cases where bench.selected(name, c.shape) {
            let capture = try ActivationCapture(model: model, layers: c.layers)
            let plan = capture.batches(triplets, maxRows: c.maxBatchRows)
            // Prefill of the same sequences in the same batches, each batch with its own cache
            // made before the clock starts (a prefill's cache is reset, not reallocated).
            let batches = plan.map { indices in indices.map { triplets[$0] }.filter { $0.sharedLength > 0 }.flatMap { [$0.steeredSequence, $0.unsteeredSequence] } }
            let caches = try batches.map { try model.makeCache(batchSize: $0.count, capacity: $0.map(\.count).max() ?? 1) }
            bench.progress("\(name) \(c.shape): \(plan.count) pass(es) of \(batches.map { "\($0.count)x\($0.map(\.count).max() ?? 0)" }.joined(separator: ", ")), \(rows) rows captured")
            func prefill() throws -> Double {
                let start = monotonicSeconds()
                for (batch, cache) in zip(batches, caches) {
                    for s in 0..<batch.count { cache.reset(s) }
                    _ = try backend.floats(try model.forward(batch, cache: cache, logits: .last).logits)
                }
                return monotonicSeconds() - start
            }
            func captureRun() throws -> Double {
                profiler?.recording = true
                defer { profiler?.recording = false }
                let start = monotonicSeconds()
                try capture.run(triplets, to: path, model: fingerprint, source: "bench", maxBatchRows: c.maxBatchRows)
                return monotonicSeconds() - start
            }
            let m = try SteeringBench.measurePairs(bench.plan, beforeTimed: { profiler?.reset() }, reference: prefill, steered: captureRun)
            record(bench, name: name, shape: c.shape, tokens: tokens, m, target: c.target)
            if let profiler {
                let runs = m.steered.samples.count * m.steered.callsPerSample
                let total = m.steered.samples.reduce(0) { $0 + $1 * Double(m.steered.callsPerSample) }
                bench.progress("\(name) \(c.shape): ops of the \(runs) timed capture run(s)")
                for line in profiler.summary(total: total) { bench.progress("  " + line) }
            }
        }
        withExtendedLifetime(model) {}
    }

    /// Triplets from a fixed seed: x' = A + tail, x = B + tail (A and B end in different tokens, so
    /// exactly tail + y' is shared), ids as `ModelBench.tokenIDs` makes them.
    static func makeTriplets(vocab: Int) -> [CaptureTriplet] {
        (0..<tripletCount).map { i in
            let s = UInt64(1000 + 10 * i)
            let lengths = ModelBench.tokenIDs(4, vocab: 1_000_000, seed: s).map { Int($0) }
            let tail = ModelBench.tokenIDs(20 + lengths[0] % 21, vocab: vocab, seed: s + 1)
            let a = ModelBench.tokenIDs(10 + lengths[1] % 21, vocab: vocab, seed: s + 2)
            var b = ModelBench.tokenIDs(4 + lengths[2] % 7, vocab: vocab, seed: s + 3)
            if a.last == b.last { b[b.count - 1] = a.last! == 1 ? 2 : 1 }
            let completion = ModelBench.tokenIDs(30 + lengths[3] % 31, vocab: vocab, seed: s + 4)
            return CaptureTriplet(steeredPrompt: a + tail, unsteeredPrompt: b + tail, completion: completion)
        }
    }

    /// The row: the capture's figure from the median run, prefill's beside it, and the target
    /// checked on the median of the per-round ratios (both samples of a round taken run by run in
    /// turn, so a neighbour slowing this shared machine slows both sides alike).
    static func record(_ bench: BenchRun, name: String, shape: String, tokens: Int, _ m: SteeringBench.Pairs, target: Double?) {
        let figure = Double(tokens) / m.steered.median
        let reference = ReferenceFigure(name: "prefill", figure: Double(tokens) / m.reference.median, seconds: m.reference.median)
        let ratios = m.roundRatios.sorted()
        let paired = Measurement(samples: ratios, callsPerSample: 1).median
        bench.progress("\(name) \(shape): capture/prefill speed per round "
                       + ratios.map { String(format: "%.3f", $0) }.joined(separator: " ")
                       + String(format: " (median %.3f)", paired)
                       + "; prefill runs " + m.reference.samples.map { String(format: "%.3f", $0) }.joined(separator: " ") + " s"
                       + "; capture runs " + m.steered.samples.map { String(format: "%.3f", $0) }.joined(separator: " ") + " s")
        let row = Row(name: name, shape: shape, figure: figure, unit: "tok/s", seconds: m.steered.median,
                      fastestSeconds: m.steered.fastest, callsPerSample: m.steered.callsPerSample,
                      reference: reference, ratio: figure / reference.figure,
                      targets: target.map { [Target(metric: "paired ratio", value: paired, atLeast: $0)] } ?? [])
        bench.record(row)
    }
}
