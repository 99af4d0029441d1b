import ArgumentParser
import Foundation
import TillerCore
import TillerModels
import TillerSteering
import TillerTraining

struct Loss: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The training objectives of a steering file's heads over triplets, and their gradients.",
        discussion: """
            Runs each triplet (x, x', y') through the frozen model twice, as docs/training.md defines: \
            x'y' unsteered (PS) and xy' with the file's heads at their location, alpha = the file's \
            alpha times the line's "alpha" (AS). --objective mse compares the residual streams of AS and \
            PS at the steered positions xy' shares with x'y', from the file's lowest layer to the last; \
            --objective ll scores y' under AS. --regularizer C adds C times the dead-ReLU term. Prints one \
            JSON object (loss, objective, regularizer, triplets, positions, ...) and, with --gradients, \
            writes d loss / d every tensor of the steering file under its name (F32). Triplet lines are \
            those of `tiller capture` (a missing completion is sampled from x' as capture does).
            """)

    @Option(help: "The model directory (config.json, *.safetensors, tokenizer.json).")
    var model: String

    @Option(help: "The steering file (.safetensors) whose heads are evaluated.")
    var steer: String

    @Option(help: "The triplets (JSON Lines, as `tiller capture` reads them; \"-\" reads stdin).")
    var triplets: String

    @Option(help: "mse (imitate the prompted residual stream) or ll (the prompted response's likelihood).")
    var objective: String

    @Option(help: ArgumentHelp("Where the heads act: all, answer_only or question_and_answer (default: the file's own).",
                               valueName: "location"))
    var location: String?

    @Option(help: "C, the weight of the dead-ReLU regularizer (0: none).")
    var regularizer: Float = 0

    @Option(help: "Write the gradients here (.safetensors, the steering file's tensor names).")
    var gradients: String?

    @Option(help: "Triplets run together (a padded batch; the result does not depend on it).")
    var batchSize: Int = 8

    @OptionGroup var sampling: CompletionSampling

    @Option(help: "Seed of the sampler for y'.")
    var seed: UInt64 = 0

    @OptionGroup var jsonLines: JSONLinesOptions
    @OptionGroup var backendOptions: BackendOptions

    func validate() throws {
        guard Objective(rawValue: objective) != nil else { throw ValidationError("--objective must be mse or ll, not \"\(objective)\"") }
        if let location, SteeringLocation(name: location) == nil {
            throw ValidationError("--location must be all, answer_only or question_and_answer, not \"\(location)\"")
        }
        try NumericOptions.check("--regularizer", regularizer, 0...1e6)
        try NumericOptions.check("--batch-size", batchSize, NumericOptions.batchSize)
    }

    func run() throws {
        try ModelDirectory.check(model)
        if let gradients {
            try OutputPaths.check(gradients, flag: "--gradients", inputs: [("--triplets", triplets), ("--steer", steer)], modelDirectory: model)
        }
        let lines = try CaptureInput.read(triplets, maxLineBytes: jsonLines.maxLineBytes)
        guard !lines.isEmpty else { throw TillerError.io(path: triplets, detail: "no triplets (the file has no lines)") }
        let fingerprint = try ModelFingerprint(directory: model)
        var intervention = try SteeringFile.load(path: steer, for: fingerprint)
        if let location { intervention.location = SteeringLocation(name: location)! }

        let tokenizer = try ModelDirectory.tokenizer(model)
        let backend = try backendOptions.make()
        let transformer = try TransformerModel.load(directory: model, backend: backend, weightDType: backendOptions.weightDType?.dtype,
                                                    keepQuantized: backendOptions.keepsQuantizedWeights)
        let triplets = try TrainingTriplets.prepare(lines, path: self.triplets, modelDirectory: model, model: transformer,
                                                    tokenizer: tokenizer, sampling: sampling, seed: seed, batchSize: batchSize)
        let evaluator = try ObjectiveEvaluator(model: transformer, intervention: intervention, objective: Objective(rawValue: objective)!,
                                               regularizerWeight: regularizer, batchSize: batchSize)
        let started = DispatchTime.now().uptimeNanoseconds
        let result = try evaluator.evaluate(triplets)
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9

        if let gradients {
            var entries: [SafetensorsWriter.Entry] = []
            for layer in intervention.layers {
                let g = result.gradients[layer]!
                entries.append(.init(name: "layers.\(layer).w", shape: [g.w.count], values: g.w))
                entries.append(.init(name: "layers.\(layer).bias", shape: [1], values: [g.bias]))
                entries.append(.init(name: "layers.\(layer).z", shape: [g.z.count], values: g.z))
            }
            try SafetensorsWriter.write(entries, metadata: ["objective": objective, "steering_file": steer, "loss": "\(result.loss)"], to: gradients)
        }
        let report = LossReport(loss: result.loss, objective: result.objective, regularizer: result.regularizer,
                                regularizer_weight: Double(regularizer), objective_kind: objective, triplets: result.triplets,
                                positions: result.positions, layers: intervention.layers, location: intervention.location.name,
                                gradients: gradients, seconds: seconds, backend: backend.name)
        print(try jsonLine(report))
    }
}

/// What `tiller loss` prints.
struct LossReport: Encodable {
    var loss: Double
    /// L, the objective's value.
    var objective: Double
    /// R, the regularizer's value (before its weight).
    var regularizer: Double
    var regularizer_weight: Double
    var objective_kind: String
    var triplets: Int
    var positions: Int
    var layers: [Int]
    var location: String
    var gradients: String?
    var seconds: Double
    var backend: String
}
