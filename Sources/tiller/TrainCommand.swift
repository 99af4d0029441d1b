import ArgumentParser
import Foundation
import TillerCore
import TillerModels
import TillerSteering
import TillerTraining

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train steering heads through the frozen model to imitate prompt steering (PSR, Const, ReFT-r1).",
        discussion: """
            The paper's method (docs/training.md): heads on --layers (one layer: S-PSR / S-Const; all: \
            A-PSR / A-Const, chained in one pass) trained with AdamW on the MSE or LL objective over the \
            triplets (lines as `tiller capture` reads them; a missing completion is sampled from x'). \
            Lines whose "coherence" or "attribute" is below --score-threshold are dropped; --dev-share of \
            the rest measures the dev loss after every epoch. Writes the steering file (its metadata \
            holds the recipe and the final losses), OUT.training.json (the losses per epoch) and, after \
            every epoch or on Ctrl-C, OUT.checkpoint.json, which --resume continues exactly. \
            --method reft-r1 is AxBench's ReFT-r1 (one direction per layer, a top-k ReLU latent, an L1 \
            penalty; AxBench's defaults: --topk 8, --l1-coefficient 0.005, learning rate 0.01, no weight \
            decay, 3 epochs), written as a constant head scaled by its largest latent on the training triplets.
            """)

    @Option(help: "psr (lambda = ReLU(w . h + b)), const (lambda = 1) or reft-r1 (AxBench's ReFT-r1).")
    var method: String = "psr"

    @Option(help: "mse (imitate the prompted residual stream) or ll (the prompted response's likelihood).")
    var objective: String

    @Option(help: "Layers with a head: comma-separated indices, or all.")
    var layers: String

    @Option(help: "The model directory (config.json, *.safetensors, tokenizer.json).")
    var model: String

    @Option(help: "The triplets (JSON Lines, as `tiller capture` reads them).")
    var triplets: String

    @Option(help: "The steering file to write (.safetensors).")
    var out: String

    @Option(help: "Where the heads act: answer_only, all or question_and_answer.")
    var location: String = "answer_only"

    @Option(help: "Passes over the training triplets (default 15 for mse, 7 for ll; 3 for reft-r1).")
    var epochs: Int?

    @Option(help: "Triplets per step (a padded batch).")
    var batchSize: Int = 8

    @Option(help: "AdamW's learning rate, decayed linearly to 0 over the run (default 0.001; 0.01 for reft-r1).")
    var learningRate: Double?

    @Option(help: "AdamW's decoupled weight decay (default 1e-6; 0 for reft-r1).")
    var weightDecay: Double?

    @Option(help: "C, the weight of the dead-ReLU regularizer (0: none; not for reft-r1).")
    var regularizer: Float = 0

    @Option(help: "reft-r1: k, the latents per sequence whose mean scales the steering vector (default 8).")
    var topk: Int?

    @Option(help: "reft-r1: the L1 penalty's weight on the latents outside the top k, ramped up from 0 over the run (default 0.005).")
    var l1Coefficient: Double?

    @Flag(help: "Divide the MSE by its value at the initial parameters.")
    var normalizeMSE = false

    @Option(help: "Share of the triplets held out for the dev loss.")
    var devShare: Double = 0.1

    @Option(help: "Drop lines whose \"coherence\" or \"attribute\" is below this.")
    var scoreThreshold: Double = 0.5

    @Option(help: "Seed of the initialisation, the dev split and the shuffles.")
    var seed: UInt64 = 0

    @Flag(help: "Continue the run OUT.checkpoint.json holds.")
    var resume = false

    @OptionGroup var sampling: CompletionSampling

    @Flag(help: "Show the progress bar even when stderr is not a terminal.")
    var progress = false

    @OptionGroup var jsonLines: JSONLinesOptions
    @OptionGroup var backendOptions: BackendOptions

    func validate() throws {
        guard let chosenMethod = TrainingMethod(rawValue: method) else {
            throw ValidationError("--method must be psr, const or reft-r1, not \"\(method)\"")
        }
        if chosenMethod == .reftR1 {
            guard regularizer == 0 else {
                throw ValidationError("--regularizer \(regularizer): the dead-ReLU regularizer is not part of --method reft-r1 (its penalty is --l1-coefficient)")
            }
        } else if topk != nil || l1Coefficient != nil {
            throw ValidationError("--\(topk != nil ? "topk" : "l1-coefficient") applies to --method reft-r1 only, not \(method)")
        }
        if let topk { try NumericOptions.check("--topk", topk, 1...1_000_000) }
        if let l1Coefficient { try NumericOptions.check("--l1-coefficient", l1Coefficient, 0...1e6) }
        guard Objective(rawValue: objective) != nil else { throw ValidationError("--objective must be mse or ll, not \"\(objective)\"") }
        guard SteeringLocation(name: location) != nil else {
            throw ValidationError("--location must be all, answer_only or question_and_answer, not \"\(location)\"")
        }
        if let epochs { try NumericOptions.check("--epochs", epochs, 1...100_000) }
        try NumericOptions.check("--batch-size", batchSize, NumericOptions.batchSize)
        if let learningRate { try NumericOptions.check("--learning-rate", learningRate, NumericOptions.learningRate) }
        if let weightDecay { try NumericOptions.check("--weight-decay", weightDecay, 0...1) }
        try NumericOptions.check("--regularizer", regularizer, 0...1e6)
        try NumericOptions.check("--dev-share", devShare, 0...0.9)
        try NumericOptions.check("--score-threshold", scoreThreshold, 0...1)
    }

    var checkpointPath: String { out + ".checkpoint.json" }
    var logPath: String { out + ".training.json" }

    func run() throws {
        try ModelDirectory.check(model)
        for (flag, path) in [("--out", out), ("--out's checkpoint", checkpointPath), ("--out's log", logPath)] {
            try OutputPaths.check(path, flag: flag, inputs: [("--triplets", triplets)], modelDirectory: model)
        }
        let lines = try CaptureInput.read(triplets, maxLineBytes: jsonLines.maxLineBytes)
        guard !lines.isEmpty else { throw TillerError.io(path: triplets, detail: "no triplets (the file has no lines)") }
        let kept = lines.filter { ($0.coherence ?? 1) >= scoreThreshold && ($0.attribute ?? 1) >= scoreThreshold }
        guard !kept.isEmpty else {
            throw TillerError.io(path: triplets, detail: "all \(lines.count) triplets score below --score-threshold \(scoreThreshold) (\"coherence\" or \"attribute\"): nothing to train on")
        }
        if kept.count < lines.count {
            printError("tiller: dropped \(lines.count - kept.count) of \(lines.count) triplets scoring below \(scoreThreshold) (\"coherence\" or \"attribute\")")
        }

        let tokenizer = try ModelDirectory.tokenizer(model)
        let backend = try backendOptions.make()
        let transformer = try TransformerModel.load(directory: model, backend: backend, weightDType: backendOptions.weightDType?.dtype,
                                                    keepQuantized: backendOptions.keepsQuantizedWeights)
        let chosen = try Capture.parseLayers(layers, count: transformer.layerCount, command: "train")
        let all = try TrainingTriplets.prepare(kept, path: triplets, modelDirectory: model, model: transformer, tokenizer: tokenizer,
                                               sampling: sampling, seed: seed, batchSize: batchSize)
        let (train, dev) = Self.split(all, share: devShare, seed: seed)

        let recipe = TrainingRecipe(method: TrainingMethod(rawValue: method)!, objective: Objective(rawValue: objective)!, layers: chosen,
                                    location: SteeringLocation(name: location)!, epochs: epochs, batchSize: batchSize,
                                    learningRate: learningRate, weightDecay: weightDecay, regularizer: regularizer,
                                    topK: topk, l1Coefficient: l1Coefficient, normalizeMSE: normalizeMSE, devShare: devShare,
                                    scoreThreshold: scoreThreshold, seed: seed,
                                    dataHash: TrainingRecipe.hash(train + dev))
        var checkpoint: TrainingCheckpoint?
        if resume {
            guard FileManager.default.fileExists(atPath: checkpointPath) else {
                throw TillerError.io(path: checkpointPath, detail: "--resume: no checkpoint here (it is written after every epoch and on Ctrl-C)")
            }
            do {
                checkpoint = try JSONDecoder().decode(TrainingCheckpoint.self, from: try TextFiles.contents(of: checkpointPath))
            } catch let error as TillerError {
                throw error
            } catch {
                throw TillerError.io(path: checkpointPath, detail: "not a training checkpoint (\(ErrorReason.decoding(error)))")
            }
        }
        let trainer = try Trainer(model: transformer, recipe: recipe, train: train, dev: dev, checkpoint: checkpoint)
        if let checkpoint {
            printError("tiller: resuming at epoch \(checkpoint.epoch + 1), batch \(checkpoint.batch + 1) from \(checkpointPath)")
        }
        printError("tiller: training \(method) (\(objective)) on layers \(chosen.map(String.init).joined(separator: ",")): \(train.count) triplets, \(dev.count) held out, \(recipe.epochs) epochs of \(Int((Double(train.count) / Double(batchSize)).rounded(.up))) batches on \(backend.name)")

        Interruption.deferSignals()
        let bar = ProgressBar(enabled: progress || ProgressBar.stderrIsTerminal)
        let started = DispatchTime.now().uptimeNanoseconds
        func elapsed() -> Double { Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9 }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let (finished, history) = try trainer.run(progress: { p in
            let done = Double((p.epoch - 1) * p.batches + p.batch) / Double(p.epochs * p.batches)
            bar.draw(fraction: done, "epoch \(p.epoch)/\(p.epochs), batch \(p.batch)/\(p.batches), loss "
                     + String(format: "%.5g, %.1f tok/s, %.1f s", p.runningLoss, p.tokensPerSecond, elapsed()), elapsed: elapsed())
        }, checkpoint: { state in
            try OutputFile.write(try encoder.encode(state), to: checkpointPath)
            if let record = state.history.last, state.batch == 0 {
                bar.finish()
                printError("tiller: epoch \(record.epoch): train loss \(String(format: "%.6g", record.trainLoss))"
                           + (record.devLoss.map { String(format: ", dev loss %.6g", $0) } ?? "")
                           + String(format: ", %.1f tok/s", record.tokensPerSecond))
            }
        }, shouldStop: { Interruption.requested })
        bar.finish()
        guard finished else {
            printError("tiller: interrupted; the run so far is in \(checkpointPath): add --resume to continue it")
            throw ExitCode(130)
        }

        let final = history.last
        let file = try trainer.steeringFile()
        var recipeJSON = String(decoding: try encoder.encode(recipe), as: UTF8.self)
        recipeJSON.removeLast()
        recipeJSON += ",\"final_train_loss\":\(final?.trainLoss ?? .nan),\"final_dev_loss\":\(final?.devLoss.map { "\($0)" } ?? "null")"
        if let maxima = trainer.maxLatents {
            // ReFT-r1's scale per layer, as measured (a value not above 0 took AxBench's fallback).
            recipeJSON += ",\"max_latents\":{" + maxima.keys.sorted().map { "\"\($0)\":\(maxima[$0]!.isFinite ? "\(maxima[$0]!)" : "null")" }.joined(separator: ",") + "}"
            for (layer, value) in maxima.sorted(by: { $0.key < $1.key }) {
                if value > 0 {
                    printError("tiller: layer \(layer): the largest latent on the training triplets is \(value): the constant head is w times it")
                } else {
                    printError("tiller: warning: layer \(layer)'s direction never fires on the training triplets (largest latent \(value)); its constant head is w times \(TrainingMethod.reftDeadDirectionScale), as AxBench does")
                }
            }
        }
        recipeJSON += "}"
        try SteeringFile.save(file, model: try ModelFingerprint(directory: model),
                              metadata: ["tiller.training": recipeJSON], to: out)
        try OutputFile.write(try encoder.encode(TrainingLog(recipe: recipe, epochs: history, seconds: elapsed())), to: logPath)
        try? FileManager.default.removeItem(atPath: checkpointPath)
        print(try jsonLine(TrainingSummary(out: out, log: logPath, epochs: history.count, train_loss: final?.trainLoss,
                                           dev_loss: final?.devLoss, triplets: train.count, held_out: dev.count,
                                           dropped: lines.count - kept.count, seconds: elapsed(), backend: backend.name)))
    }

    /// The held-out share, chosen by the seed (at least one triplet when the share is positive
    /// and there are two or more; never all of them).
    static func split(_ all: [TrainingTriplet], share: Double, seed: UInt64) -> (train: [TrainingTriplet], dev: [TrainingTriplet]) {
        var rng = SplitMix64(seed: seed ^ 0xD5F1_17)
        var order = Array(all.indices)
        for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
        var count = Int((Double(all.count) * share).rounded())
        if share > 0 && all.count >= 2 { count = max(count, 1) }
        count = min(count, all.count - 1)
        let held = Set(order.prefix(count))
        return (all.indices.filter { !held.contains($0) }.map { all[$0] }, all.indices.filter { held.contains($0) }.map { all[$0] })
    }
}

/// OUT.training.json.
struct TrainingLog: Encodable {
    var recipe: TrainingRecipe
    var epochs: [EpochRecord]
    var seconds: Double
}

/// What `tiller train` prints when it finishes.
struct TrainingSummary: Encodable {
    var out: String
    var log: String
    var epochs: Int
    var train_loss: Double?
    var dev_loss: Double?
    var triplets: Int
    var held_out: Int
    var dropped: Int
    var seconds: Double
    var backend: String
}
