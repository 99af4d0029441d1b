import ArgumentParser
import Foundation
import TillerCore
import TillerCPU
import TillerVulkan

/// What every benchmark needs: the backend under test, the timing plan, the filter, and a
/// place to put its rows (with a progress line on stderr, since a full run takes a while).
final class BenchRun {
    let backend: Backend
    let plan: TimingPlan
    let quick: Bool
    let filter: String?
    private(set) var rows: [Row] = []

    init(backend: Backend, plan: TimingPlan, quick: Bool, filter: String?) {
        self.backend = backend
        self.plan = plan
        self.quick = quick
        self.filter = filter
    }

    /// The filter matches the name or the shape ("matmul/bf16", "psr", "M=512", "T=2048").
    func selected(_ name: String, _ shape: String) -> Bool {
        guard let filter, !filter.isEmpty else { return true }
        return "\(name) \(shape)".localizedCaseInsensitiveContains(filter)
    }

    func record(_ row: Row) {
        rows.append(row)
        let line = "[\(rows.count)] \(row.name) \(row.shape): \(formatFigure(row.figure)) \(row.unit)"
            + " vs \(formatFigure(row.reference.figure)) \(row.reference.name) = \(String(format: "%.2fx", row.ratio))"
            + (row.targets.isEmpty ? "" : "  [" + row.targets.map(\.text).joined(separator: "; ") + "]")
        progress(line)
    }

    func progress(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tiller-bench",
        abstract: "Throughput of the CPU backend, each figure beside a reference measured in the same run.",
        discussion: """
            Benchmarks: matmul/f32, matmul/bf16 (through the Backend protocol, against direct \
            cblas_sgemm), matmul/q8_0, matmul/q4_0, matmul/q4_1, matmul/q4_K (weights kept in ggml \
            blocks, against the same values dequantized to f32 and bf16), attention/causal (against a square sgemm), psr/1-head and psr/4-heads \
            (against memcpy). With --model, the model suite instead: prefill, decode and a 32-prompt \
            batch through TransformerModel.forward with f32 and bf16 weights, against transformers' \
            figures (--transformers, from Benchmarks/TillerBench/compare_transformers.py), and peak \
            resident memory; on a GGUF file also against llama.cpp on the same file at each variant's \
            precision (--llamacpp, from Benchmarks/TillerBench/compare_llamacpp.py). With --model and --steering, the steering suite: generation with a \
            SteeringHook (one PSR head on one layer, heads on every layer, a 32-sequence batch mixing \
            four kinds of steering) against the same generation unsteered, samples interleaved. \
            With --model and --capture, the capture suite: tiller capture teacher-forcing 14 triplets \
            (all layers, one layer) against plain prefill of the same sequences in the same batches. \
            Progress goes to stderr, the report to stdout.
            """,
        version: Tiller.version)

    @Flag(help: "Print a JSON document instead of the table.")
    var json = false

    @Option(help: "Timed samples per figure; the median is reported (default 7, 3 with --quick).")
    var repeats: Int?

    @Option(help: "Untimed warm-up samples before the timed ones.")
    var warmup = 2

    @Option(help: "Run only benchmarks whose name or shape contains this (e.g. matmul/bf16, psr, M=512).")
    var filter: String?

    @Flag(help: "Fewer shapes, repeats and shorter samples: a smoke run of a few seconds.")
    var quick = false

    @Option(help: "cpu (the CPU suite) or vulkan (the GPU suite: 4096-sized matmuls, T = 4096 attention, a large PSR head).")
    var backend = "cpu"

    @Option(help: "Vulkan device: index or part of its name.")
    var device: String?

    @Option(help: "GPU suite: JSON of PyTorch figures measured in the same run (Benchmarks/gpu_reference.py writes it).")
    var torch: String?

    @Option(help: "Model suite: a checkpoint directory, or the parent with f32/ and bf16/ that scripts/fixtures/make_speed_checkpoint.py writes. Runs the model suite instead of the kernel suites.")
    var model: String?

    @Option(help: "Model suite: JSON of transformers' figures on the same checkpoint (Benchmarks/TillerBench/compare_transformers.py writes it).")
    var transformers: String?

    @Option(help: "Model suite on a GGUF file: JSON of llama.cpp's figures on the same file (Benchmarks/TillerBench/compare_llamacpp.py writes it); each workload is also compared with llama.cpp at the variant's precision.")
    var llamacpp: String?

    @Flag(help: "Model and steering suites: time every backend op of the timed runs (the steered ones in the steering suite, whose ratios then mean nothing) and print where the time goes (stderr).")
    var profile = false

    @Flag(help: "With --model: the training suite instead of the model suite: one forward + backward of the MSE (heads on every layer) and LL (one head) objectives against PyTorch autograd (--autograd).")
    var training = false

    @Option(help: "Training suite: JSON of PyTorch autograd's figures for a workload (Benchmarks/TillerBench/compare_autograd.py writes it; repeat for mse, ll, epoch-mse and epoch-ll).")
    var autograd: [String] = []

    @Flag(help: "With --model: the steering suite instead of the model suite: steered generation against unsteered (e.g. --model Sources/TillerLab/Resources/tiller-lab --steering --quick).")
    var steering = false

    @Flag(help: "With --model: the serving suite instead of the model suite: tiller serve's continuous batching at 1, 8 and 32 concurrent clients against tiller generate of the same prompts as one batch (e.g. --model /tmp/qwen-0.5b-random --serve).")
    var serve = false

    @Flag(help: "With --model: the capture suite instead of the model suite: tiller capture's teacher forcing of triplets (all layers, one layer) against plain prefill of the same sequences (e.g. --model /tmp/qwen-0.5b-random --capture).")
    var capture = false

    func validate() throws {
        if transformers != nil && model == nil { throw ValidationError("--transformers needs --model") }
        if steering && model == nil {
            throw ValidationError("--steering needs --model DIR (e.g. Sources/TillerLab/Resources/tiller-lab, or /tmp/qwen-0.5b-random)")
        }
        if serve && model == nil { throw ValidationError("--serve needs --model DIR (e.g. /tmp/qwen-0.5b-random)") }
        if serve && (capture || steering || training) { throw ValidationError("--serve, --capture, --steering and --training are separate suites: give one") }
        if capture && model == nil { throw ValidationError("--capture needs --model DIR (e.g. Sources/TillerLab/Resources/tiller-lab, or /tmp/qwen-0.5b-random)") }
        if capture && (steering || training) { throw ValidationError("--capture, --steering and --training are separate suites: give one") }
        if steering && transformers != nil { throw ValidationError("--transformers is for the model suite, not --steering") }
        if llamacpp != nil && (model == nil || steering || serve || capture || training) {
            throw ValidationError("--llamacpp is for the model suite: give --model FILE.gguf and no other suite")
        }
        if training && model == nil { throw ValidationError("--training needs --model DIR (e.g. /tmp/qwen-0.5b-random)") }
        if !autograd.isEmpty && !training { throw ValidationError("--autograd is for the training suite (--training)") }
        if let repeats, repeats < 1 { throw ValidationError("--repeats must be at least 1") }
        if warmup < 0 { throw ValidationError("--warmup must not be negative") }
    }

    func run() throws {
        if self.backend == "vulkan" { return try runGPU() }
        guard self.backend == "cpu" else { throw ValidationError("--backend must be cpu or vulkan") }
        let backend = CPUBackend()
        // A model workload runs for seconds: one warm-up run and three timed ones (each timed
        // once) are enough; the kernel suites take many short samples.
        // The steering suite's ratios are a few percent from 1, so it takes more rounds (each an
        // unsteered and a steered sample back to back) and lets a sample repeat a short
        // generation (the lab model's) until it lasts long enough to time; the warm-up run of
        // each side chooses how many, and no further warm-up samples are taken.
        let plan = steering || capture
            ? TimingPlan(repeats: repeats ?? (quick ? 3 : 7), warmup: 0, minSampleSeconds: quick ? 0.05 : 0.5)
            : model != nil
            ? TimingPlan(repeats: repeats ?? (quick ? 1 : 3), warmup: 1, minSampleSeconds: 0)
            : TimingPlan(repeats: repeats ?? (quick ? 3 : 7), warmup: warmup, minSampleSeconds: quick ? 0.01 : 0.05)
        let bench = BenchRun(backend: backend, plan: plan, quick: quick, filter: filter)
        bench.progress("tiller-bench: \(OpenBLASRuntime.summary)")

        let startDate = Date(), loadBefore = MachineInfo.loadAverage()
        if loadBefore > 0.5 {
            // Something else is running: absolute figures will suffer more than the ratios,
            // whose two sides share the interference sample by sample.
            bench.progress("warning: load average \(String(format: "%.2f", loadBefore)) before the run; figures may be low")
        }
        let start = monotonicSeconds()
        if let model, training {
            var references: [String: AutogradReference] = [:]
            for path in autograd {
                let reference = try AutogradReference.load(path)
                references[reference.workload] = reference
            }
            try TrainingBench.run(bench, modelPath: model, references: references)
        } else if let model, serve {
            try ServeBench.run(bench, modelPath: model)
        } else if let model, capture {
            try CaptureBench.run(bench, modelPath: model, profile: profile)
        } else if let model, steering {
            try SteeringBench.run(bench, modelPath: model, profile: profile)
        } else if let model {
            let reference = try transformers.map { try TransformersReference.load($0) }
            let llama = try llamacpp.map { try LlamaCppReference.load($0, model: model) }
            try ModelBench.run(bench, modelPath: model, reference: reference, llamacpp: llama, profile: profile)
        } else {
            try MatmulBench.run(bench)
            try QuantizedMatmulBench.run(bench)
            try AttentionBench.run(bench)
            try PSRBench.run(bench)
        }
        bench.progress("done in \(String(format: "%.1f", monotonicSeconds() - start)) s")

        if bench.rows.isEmpty, let filter {
            throw ValidationError("no benchmark matches --filter \"\(filter)\"")
        }
        let document = ReportDocument(
            machine: .current(backend: backend, start: startDate, loadBefore: loadBefore),
            settings: Settings(repeats: plan.repeats, warmup: plan.warmup, minSampleSeconds: plan.minSampleSeconds,
                               quick: quick, filter: filter),
            rows: bench.rows,
            targets: Report.summary(bench.rows))
        print(json ? try Report.json(document) : Report.table(document))
    }
}

extension BenchCommand {
    /// The GPU suite on the Vulkan backend. Matmul and attention are compared with PyTorch
    /// (cuBLAS, SDPA) figures taken on the same machine in the same run; the PSR head with a
    /// device-to-device copy of the same bytes measured here.
    func runGPU() throws {
        let backend = try VulkanBackend(device: device)
        let plan = TimingPlan(repeats: repeats ?? (quick ? 3 : 7), warmup: warmup, minSampleSeconds: quick ? 0.02 : 0.2)
        let bench = BenchRun(backend: backend, plan: plan, quick: quick, filter: filter)
        bench.progress("tiller-bench: vulkan on \(backend.deviceDescription)")
        let references = try torch.map { try TorchReferences.load($0) } ?? TorchReferences()
        let startDate = Date(), loadBefore = MachineInfo.loadAverage()
        try GPUBench.run(bench, vulkan: backend, torch: references)
        if bench.rows.isEmpty, let filter { throw ValidationError("no benchmark matches --filter \"\(filter)\"") }
        let document = ReportDocument(
            machine: .current(backend: backend, start: startDate, loadBefore: loadBefore),
            settings: Settings(repeats: plan.repeats, warmup: plan.warmup, minSampleSeconds: plan.minSampleSeconds,
                               quick: quick, filter: filter),
            rows: bench.rows,
            targets: Report.summary(bench.rows))
        print(json ? try Report.json(document) : Report.table(document))
    }
}
