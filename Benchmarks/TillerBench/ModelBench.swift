import Foundation
import TillerCore
import TillerModels
#if canImport(Glibc)
import Glibc
#endif

/// transformers' figures for the model suite, written by Benchmarks/TillerBench/compare_transformers.py
/// on the same machine (PyTorch, 2 threads, f32, use_cache, greedy loop).
struct TransformersReference: Codable {
    var attention: String?
    var threads: Int?
    var prefill_tok_s: Double?
    var decode_tok_s: Double?
    var batch_tok_s: Double?
    var load_seconds: Double?
    var peak_rss_mib: Double?

    static func load(_ path: String) throws -> TransformersReference {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        return try JSONDecoder().decode(TransformersReference.self, from: data)
    }
}

/// Whole-model throughput through `TransformerModel.forward` with a KV cache and greedy argmax on
/// the backend, on a Qwen2.5-0.5B-shaped checkpoint (scripts/fixtures/make_speed_checkpoint.py),
/// with f32 weights and with bf16 weights, against transformers on the same machine:
///
///   prefill  512 prompt tokens in one forward pass                         prompt tokens / s
///   decode   16-token prompt prefilled off the clock, then 32 single-token
///            steps                                                          new tokens / s
///   batch    32 prompts of 16 tokens, 32 generated tokens each, prompts'
///            forward pass included                                          generated tokens / s
///
/// The same workloads and ids as compare_transformers.py. Targets (issue 4): prefill >= 1.2x,
/// decode >= 1.0x in f32 and >= 1.7x with bf16 weights, batch >= 1.5x transformers (f32); peak
/// resident memory (VmHWM) <= 1.15x the checkpoint plus the KV cache.
///
/// With --llamacpp (compare_llamacpp.py, a GGUF file), each workload is also recorded against
/// llama.cpp at the variant's precision (issue 12): >= 1.0x everywhere, native decode >= 0.9x.
/// Load time and peak memory are recorded beside transformers' and llama.cpp's, lower is better.
/// Peak memory is VmHWM reset to the RSS just before loading: a fresh process's own peak when the
/// variant is the first model the process loads (run one variant per process, --filter
/// model/native, to compare it with the others' fresh interpreters); a later variant's figure
/// also holds whatever the earlier ones left resident ("RSS before loading" on stderr says).
enum ModelBench {
    static let prefillTokens = 512
    static let decode = (prompt: 16, new: 32)
    static let batch = (sequences: 32, prompt: 16, new: 32)

    /// The checkpoints to run: a model directory (loaded as is, and converted to bf16), or the
    /// parent make_speed_checkpoint.py writes, with f32/ and bf16/ (each loaded as it is stored).
    static func variants(_ path: String) throws -> [(name: String, directory: String, dtype: DType?)] {
        let fm = FileManager.default
        func has(_ dir: String) -> Bool { fm.fileExists(atPath: dir + "/config.json") }
        // A GGUF file: dequantized to f32 and to bf16, and its quantized weights kept native.
        if GGUFModelFile.isGGUF(path) { return [("f32", path, .f32), ("bf16", path, .bf16), ("native", path, nil)] }
        if has(path + "/f32") {
            var list: [(String, String, DType?)] = [("f32", path + "/f32", nil)]
            list.append(has(path + "/bf16") ? ("bf16", path + "/bf16", .bf16) : ("bf16", path + "/f32", .bf16))
            return list
        }
        guard has(path) else {
            throw TillerError.io(path: path, detail: "no config.json (nor f32/config.json): run scripts/fixtures/make_speed_checkpoint.py")
        }
        return [("f32", path, nil), ("bf16", path, .bf16)]
    }

    static func run(_ bench: BenchRun, modelPath: String, reference: TransformersReference?,
                    llamacpp: LlamaCppReference? = nil, profile: Bool = false) throws {
        let repeats = bench.plan.repeats
        for variant in try variants(modelPath) {
            let name = "model/\(variant.name)"
            let shapes = ["prefill T=\(prefillTokens)", "decode \(decode.prompt)+\(decode.new)",
                          "batch \(batch.sequences)x(\(batch.prompt)+\(batch.new))", "load", "peak RSS"]
            guard shapes.contains(where: { bench.selected(name, $0) }) else { continue }
            try runVariant(bench, name: name, directory: variant.directory, dtype: variant.dtype,
                           repeats: repeats, reference: reference, llamacpp: llamacpp, profile: profile)
        }
    }

    /// One checkpoint: load, the three workloads, then the peak memory of this variant alone
    /// (the kernel's high-water mark is reset before loading).
    static func runVariant(_ bench: BenchRun, name: String, directory: String, dtype: DType?, repeats: Int,
                           reference: TransformersReference?, llamacpp: LlamaCppReference? = nil,
                           profile: Bool) throws {
        let isBF16 = dtype == .bf16
        let profiler = profile ? ProfilingBackend(bench.backend) : nil
        let backend: Backend = profiler ?? bench.backend
        MemoryStats.resetPeak()
        let loadStart = monotonicSeconds()
        let isGGUF = GGUFModelFile.isGGUF(directory)
        let rssBeforeLoad = MemoryStats.current.rss
        let model = try TransformerModel.load(directory: directory, backend: backend, weightDType: dtype,
                                              keepQuantized: name.hasSuffix("/native"))
        let loadSeconds = monotonicSeconds() - loadStart
        let variant = String(name.dropFirst("model/".count))
        let llama = llamacpp?.variants[variant]
        let llamaLabel = llamacpp?.label(variant)
        let checkpointBytes = isGGUF ? (try FileManager.default.attributesOfItem(atPath: directory)[.size] as? Int ?? 0)
            : try CheckpointDirectory(path: directory).files.reduce(0) { $0 + $1.fileByteCount }
        bench.progress("\(name): loaded \(directory) in \(String(format: "%.1f", loadSeconds)) s, "
                       + "\(formatFigure(Double(checkpointBytes) / 1048576)) MiB of safetensors, RSS \(formatFigure(MemoryStats.current.rss)) MiB")
        var maxCacheBytes = 0
        func cache(_ b: Int, _ capacity: Int) throws -> KVCache {
            let c = model.config
            let bytes = 2 * c.numHiddenLayers * b * capacity * (c.numKeyValueHeads ?? c.numAttentionHeads)
                * (c.headDim ?? c.hiddenSize / c.numAttentionHeads) * 4
            maxCacheBytes = max(maxCacheBytes, bytes)
            return try model.makeCache(batchSize: b, capacity: capacity)
        }
        let vocab = model.vocabularySize
        let argmaxOut = try backend.empty([batch.sequences], .i32)

        /// Greedy next tokens from the logits rows (one per sequence), on the backend.
        func next(_ output: ForwardOutput) throws -> [[Int32]] {
            let rows = output.logits.shape[0]
            let out = try argmaxOut.slice(rows: 0, count: rows)
            try backend.argmax(output.logits, out: out)
            return try backend.ints(out).map { [$0] }
        }

        /// Median seconds of `repeats` timed runs after one warm-up; `body` returns its own timed
        /// seconds. With --profile, the timed runs' ops are added up and printed.
        func measure(_ shape: String, _ body: () throws -> Double) throws -> (median: Double, fastest: Double) {
            _ = try body()
            profiler?.reset()
            let samples = try (0..<repeats).map { _ in try body() }.sorted()
            if let profiler {
                bench.progress("\(name) \(shape): ops over \(repeats) timed run(s)")
                for line in profiler.summary(total: samples.reduce(0, +)) { bench.progress("  " + line) }
            }
            let memory = MemoryStats.current
            bench.progress("\(name) \(shape): RSS \(formatFigure(memory.rss)) MiB, peak \(formatFigure(memory.peak)) MiB so far")
            let mid = samples.count / 2
            return (samples.count % 2 == 1 ? samples[mid] : (samples[mid - 1] + samples[mid]) / 2, samples[0])
        }

        func startClock() -> Double { profiler?.recording = true; return monotonicSeconds() }
        func stopClock(_ start: Double) -> Double { profiler?.recording = false; return monotonicSeconds() - start }

        func record(_ shape: String, tokens: Int, _ m: (median: Double, fastest: Double), reference ref: Double?,
                    target: Double?, calls: Int, llama llamaFigure: Double?) {
            let figure = Double(tokens) / m.median
            let referenceFigure = ReferenceFigure(name: ref == nil ? "none (no --transformers)" : "transformers f32",
                                                  figure: ref ?? .nan, seconds: ref.map { Double(tokens) / $0 } ?? .nan)
            var row = Row(name: name, shape: shape, figure: figure, unit: "tok/s", seconds: m.median,
                          fastestSeconds: m.fastest, callsPerSample: calls, reference: referenceFigure,
                          ratio: figure / referenceFigure.figure, targets: [])
            if let target, ref != nil { row.targets.append(Target(metric: "ratio", value: row.ratio, atLeast: target)) }
            bench.record(row)
            // The same figure against llama.cpp at this variant's precision (issue 12): every
            // workload >= 1.0x, and native decode >= 0.9x on the same quantized file.
            if let llamaLabel, let llamaFigure = llamaFigure {
                var row = row
                row.reference = ReferenceFigure(name: llamaLabel, figure: llamaFigure, seconds: Double(tokens) / llamaFigure)
                row.ratio = figure / llamaFigure
                row.targets = [Target(metric: "ratio", value: row.ratio, atLeast: 1.0)]
                if variant == "native" && shape.hasPrefix("decode") {
                    row.targets.append(Target(metric: "ratio", value: row.ratio, atLeast: 0.9))
                }
                bench.record(row)
            }
        }

        let prefillShape = "prefill T=\(prefillTokens)"
        if bench.selected(name, prefillShape) {
            let ids = tokenIDs(prefillTokens, vocab: vocab, seed: 1)
            let m = try measure(prefillShape) {
                let c = try cache(1, prefillTokens)
                let start = startClock()
                _ = try next(try model.forward([ids], cache: c))
                return stopClock(start)
            }
            record(prefillShape, tokens: prefillTokens, m, reference: reference?.prefill_tok_s,
                   target: isBF16 ? nil : 1.2, calls: 1, llama: llama?.prefill_tok_s)
        }

        let decodeShape = "decode \(decode.prompt)+\(decode.new)"
        if bench.selected(name, decodeShape) {
            let prompt = tokenIDs(decode.prompt, vocab: vocab, seed: 2)
            let m = try measure(decodeShape) {
                let c = try cache(1, decode.prompt + decode.new)
                var tokens = try next(try model.forward([prompt], cache: c))
                let start = startClock()
                for _ in 0..<decode.new { tokens = try next(try model.forward(tokens, cache: c)) }
                return stopClock(start)
            }
            record(decodeShape, tokens: decode.new, m, reference: reference?.decode_tok_s,
                   target: isBF16 ? 1.7 : 1.0, calls: decode.new, llama: llama?.decode_tok_s)
        }

        let batchShape = "batch \(batch.sequences)x(\(batch.prompt)+\(batch.new))"
        if bench.selected(name, batchShape) {
            let prompts = (0..<batch.sequences).map { tokenIDs(batch.prompt, vocab: vocab, seed: UInt64(100 + $0)) }
            let m = try measure(batchShape) {
                let c = try cache(batch.sequences, batch.prompt + batch.new)
                let start = startClock()
                var tokens = try next(try model.forward(prompts, cache: c))
                for _ in 1..<batch.new { tokens = try next(try model.forward(tokens, cache: c)) }
                return stopClock(start)
            }
            record(batchShape, tokens: batch.sequences * batch.new, m, reference: reference?.batch_tok_s,
                   target: isBF16 ? nil : 1.5, calls: batch.new, llama: llama?.batch_tok_s)
        }

        // Peak resident memory of this variant (load and every workload above) against the
        // checkpoint plus the largest KV cache it used.
        if bench.selected(name, "peak RSS") {
            let peak = MemoryStats.current.peak
            let allowance = Double(checkpointBytes + maxCacheBytes) / 1048576
            let row = Row(name: name, shape: "peak RSS", figure: peak, unit: "MiB", seconds: .nan, fastestSeconds: .nan,
                          callsPerSample: 0,
                          reference: ReferenceFigure(name: "checkpoint+KV", figure: allowance, seconds: .nan),
                          ratio: peak / allowance,
                          targets: [Target(metric: "1.15(ckpt+KV)/peak", value: 1.15 * allowance / peak, atLeast: 1)])
            bench.record(row)
            recordAgainstOthers(bench, name: name, shape: "peak RSS", figure: peak, unit: "MiB",
                                others: [("transformers f32", reference?.peak_rss_mib), (llamaLabel, llama?.peak_rss_mib)])
            bench.progress("\(name): RSS before loading \(formatFigure(rssBeforeLoad)) MiB"
                           + ((llama?.rss_before_load_mib).map { ", llama.cpp's interpreter \(formatFigure($0)) MiB" } ?? ""))
        }
        if bench.selected(name, "load") {
            recordAgainstOthers(bench, name: name, shape: "load", figure: loadSeconds, unit: "s",
                                others: [("transformers f32", reference?.load_seconds), (llamaLabel, llama?.load_seconds)],
                                alone: true)
        }
        withExtendedLifetime(model) {}
    }

    /// A lower-is-better figure (seconds, MiB) beside the other tools' ones: one row each, the
    /// ratio Tiller / other (below 1: Tiller uses less), no target. Without any other figure and
    /// with `alone`, one row with a NaN reference, so Tiller's own figure is still in the report.
    static func recordAgainstOthers(_ bench: BenchRun, name: String, shape: String, figure: Double, unit: String,
                                    others: [(name: String?, figure: Double?)], alone: Bool = false) {
        var present = others.compactMap { o in o.name.flatMap { n in o.figure.map { (n, $0) } } }
        if present.isEmpty && alone { present = [("none (no --transformers, --llamacpp)", .nan)] }
        for (other, value) in present {
            bench.record(Row(name: name, shape: shape, figure: figure, unit: unit, seconds: .nan, fastestSeconds: .nan,
                             callsPerSample: 0, reference: ReferenceFigure(name: other + " (lower is better)", figure: value, seconds: .nan),
                             ratio: figure / value, targets: []))
        }
    }

    /// The benchmark's token ids, the same as compare_transformers.py's: a 64-bit LCG (Knuth's MMIX
    /// constants), its high bits taken modulo a slice of the vocabulary, never id 0.
    static func tokenIDs(_ count: Int, vocab: Int, seed: UInt64) -> [Int32] {
        var state = seed
        let range = UInt64(min(vocab, 32000) - 1)
        return (0..<count).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int32(1 + (state >> 33) % range)
        }
    }
}

/// Resident memory from /proc/self/status, in MiB.
enum MemoryStats {
    static var current: (rss: Double, peak: Double) {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return (.nan, .nan) }
        func kib(_ key: String) -> Double {
            for line in text.split(separator: "\n") where line.hasPrefix(key + ":") {
                let digits = line.dropFirst(key.count + 1).filter { $0.isNumber }
                return (Double(String(digits)) ?? .nan) / 1024
            }
            return .nan
        }
        return (kib("VmRSS"), kib("VmHWM"))
    }

    /// Resets VmHWM to the current RSS (Linux >= 4.0: "5" to /proc/self/clear_refs).
    static func resetPeak() {
        guard let file = fopen("/proc/self/clear_refs", "w") else { return }
        fputs("5", file)
        fclose(file)
    }
}
