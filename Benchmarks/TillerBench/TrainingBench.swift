import Foundation
import TillerCore
import TillerModels
import TillerSteering
import TillerTraining

/// PyTorch autograd's figures for one training workload, written by
/// Benchmarks/TillerBench/compare_autograd.py on the same machine.
struct AutogradReference: Codable {
    var workload: String
    var threads: Int?
    var tok_s: Double
    var loss: Double?
    var peak_rss_mib: Double?

    static func load(_ path: String) throws -> AutogradReference {
        try JSONDecoder().decode(AutogradReference.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
    }
}

/// One forward + backward step of the training objectives (docs/training.md) through
/// `ObjectiveEvaluator`, on the Qwen2.5-0.5B-shaped checkpoint with f32 weights, against PyTorch
/// autograd on the same work (compare_autograd.py: the same triplets, heads and objectives):
///
///   mse  a relu head on every layer; the prompted run, the steered run and the MSE over every layer
///   ll   one relu head at the middle layer; the steered run and -log p(y' | x)
///
///   epoch-mse, epoch-ll  a training epoch of the same objective through `Trainer` (as `tiller
///        train`): 16 triplets in shuffled batches of 4, each batch's forward, backward and AdamW step
///
/// 4 triplets (16 for an epoch): x of 48 tokens and x' of 64 sharing their last 8, y' of 64. Figures: steered tokens
/// (sum of |xy'|) per second, and the peak resident memory of the step (VmHWM reset after loading,
/// as the script does). Targets (issue 10): >= 1.0x PyTorch's tokens/s, peak <= 1.2x PyTorch's.
/// The step's loss is printed beside PyTorch's: the same work gives the same loss.
enum TrainingBench {
    static let triplets = 4, x = 48, xPrime = 64, shared = 8, y = 64
    static let epochTriplets = 16, epochBatch = 4

    static func workload(vocab: Int, count: Int = triplets) -> [TrainingTriplet] {
        (0..<count).map { i in
            let header = ModelBench.tokenIDs(shared, vocab: vocab, seed: UInt64(200 + i))
            let x = ModelBench.tokenIDs(x - shared, vocab: vocab, seed: UInt64(100 + i)) + header
            let xp = ModelBench.tokenIDs(xPrime - shared, vocab: vocab, seed: UInt64(300 + i)) + header
            return TrainingTriplet(ids: CaptureTriplet(steeredPrompt: xp, unsteeredPrompt: x,
                                                       completion: ModelBench.tokenIDs(y, vocab: vocab, seed: UInt64(400 + i))))
        }
    }

    /// The script's heads: w = 0.02 sin(0.37 i + l), bias 0.05, z = 0.02 cos(0.11 i + 2 l).
    static func head(_ layer: Int, _ d: Int) -> SteeringHead {
        SteeringHead(w: (0..<d).map { Float(0.02 * sin(0.37 * Double($0) + Double(layer))) }, bias: 0.05,
                     z: (0..<d).map { Float(0.02 * cos(0.11 * Double($0) + 2 * Double(layer))) }, activation: .relu)
    }

    static func run(_ bench: BenchRun, modelPath: String, references: [String: AutogradReference]) throws {
        let directory = try ModelBench.variants(modelPath)[0].directory
        let model = try TransformerModel.load(directory: directory, backend: bench.backend)
        let data = workload(vocab: model.vocabularySize)
        let tokens = data.reduce(0) { $0 + $1.ids.unsteeredSequence.count }
        for kind in [Objective.mse, .ll] {
            let name = "training/\(kind.rawValue)"
            let layers = kind == .mse ? Array(0..<model.layerCount) : [model.layerCount / 2]
            let shape = kind == .mse ? "heads on all \(layers.count) layers" : "one head at layer \(layers[0])"
            try epoch(bench, model: model, objective: kind, layers: layers, shape: shape, reference: references["epoch-\(kind.rawValue)"])
            guard bench.selected(name, shape) else { continue }
            var heads: [Int: SteeringHead] = [:]
            for layer in layers { heads[layer] = head(layer, model.hiddenSize) }
            let evaluator = try ObjectiveEvaluator(model: model, intervention: Intervention(method: "psr", heads: heads, location: .answerOnly),
                                                   objective: kind, batchSize: triplets)
            var loss = 0.0
            _ = try evaluator.evaluate(data)  // warm-up
            MemoryStats.resetPeak()
            let samples = try (0..<bench.plan.repeats).map { _ -> Double in
                let start = monotonicSeconds()
                loss = try evaluator.evaluate(data).loss
                return monotonicSeconds() - start
            }.sorted()
            let peak = MemoryStats.current.peak
            let median = samples[samples.count / 2]
            let reference = references[kind.rawValue]
            bench.progress("\(name): loss \(loss)" + (reference?.loss.map { " (PyTorch \($0))" } ?? "") + ", peak RSS \(formatFigure(peak)) MiB")
            bench.record(tokensRow(name, shape, tokens: tokens, samples: samples, reference: reference, referenceName: "PyTorch autograd f32"))
            if let torchPeak = reference?.peak_rss_mib {
                var memory = Row(name: name, shape: "peak RSS", figure: peak, unit: "MiB", seconds: median, fastestSeconds: samples[0],
                                 callsPerSample: 1, reference: ReferenceFigure(name: "PyTorch autograd f32", figure: torchPeak, seconds: .nan),
                                 ratio: peak / torchPeak, targets: [])
                // At most 1.2x PyTorch's peak, written as PyTorch's over Tiller's >= 1 / 1.2.
                memory.targets.append(Target(metric: "PyTorch peak / Tiller peak", value: torchPeak / peak, atLeast: 1 / 1.2))
                bench.record(memory)
            }
        }
    }

    /// One epoch of `Trainer` (forward, backward and AdamW step per batch) against the same loop in
    /// PyTorch (compare_autograd.py --workload epoch-mse / epoch-ll): issue 11's >= 1.0x target.
    static func epoch(_ bench: BenchRun, model: TransformerModel, objective: Objective, layers: [Int], shape: String,
                      reference: AutogradReference?) throws {
        let name = "training/epoch-\(objective.rawValue)"
        let shape = "\(epochTriplets) triplets in batches of \(epochBatch), " + shape
        guard bench.selected(name, shape) else { return }
        let data = workload(vocab: model.vocabularySize, count: epochTriplets)
        let tokens = data.reduce(0) { $0 + $1.ids.unsteeredSequence.count }
        let recipe = TrainingRecipe(method: .psr, objective: objective, layers: layers, epochs: bench.plan.repeats + 1,
                                    batchSize: epochBatch, devShare: 0, dataHash: TrainingRecipe.hash(data))
        let trainer = try Trainer(model: model, recipe: recipe, train: data, dev: [])
        // Each epoch's own seconds (the first is the warm-up), as the trainer times its batches.
        var samples: [Double] = []
        var epochStart = monotonicSeconds()
        var loss = Double.nan
        _ = try trainer.run(progress: { p in
            if p.batch == p.batches {
                samples.append(monotonicSeconds() - epochStart)
                epochStart = monotonicSeconds()
                loss = p.runningLoss
            }
        })
        samples = Array(samples.dropFirst()).sorted()
        bench.progress("\(name): mean loss of the last epoch \(loss)")
        bench.record(tokensRow(name, shape, tokens: tokens, samples: samples, reference: reference,
                               referenceName: "PyTorch autograd f32 + torch.optim.AdamW"))
    }

    /// Steered tokens per second at the median of `samples` (sorted seconds) against PyTorch's,
    /// with the >= 1.0x target when there is a reference.
    static func tokensRow(_ name: String, _ shape: String, tokens: Int, samples: [Double], reference: AutogradReference?,
                          referenceName: String) -> Row {
        let median = samples[samples.count / 2]
        var row = Row(name: name, shape: shape, figure: Double(tokens) / median, unit: "tok/s", seconds: median,
                      fastestSeconds: samples[0], callsPerSample: 1,
                      reference: ReferenceFigure(name: reference == nil ? "none (no --autograd)" : referenceName,
                                                 figure: reference?.tok_s ?? .nan, seconds: reference.map { Double(tokens) / $0.tok_s } ?? .nan),
                      ratio: .nan, targets: [])
        row.ratio = row.figure / row.reference.figure
        if reference != nil { row.targets.append(Target(metric: "ratio", value: row.ratio, atLeast: 1.0)) }
        return row
    }
}
