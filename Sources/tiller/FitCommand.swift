import ArgumentParser
import Foundation
import TillerCore
import TillerModels
import TillerSteering

extension FitMethod: ExpressibleByArgument {}
extension FitRows: ExpressibleByArgument {}

struct Fit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fit a steering file from a capture: DiffMean, PCA, Stolfo's projection or a local PSR head.",
        discussion: """
            Reads a capture written by `tiller capture` (the unsteered activations h and Delta_PS per \
            layer) and fits one head per layer, with no gradient through the model: diffmean (the \
            mean of Delta, a constant), pca (repeng's PCA of the paired differences, scaled to the \
            mean projection of Delta), stolfo (the unit mean last-prompt-token difference u and the \
            mean steered projection c_bar; every steered position's projection set to c_bar) or psr \
            (lambda = ReLU(w.h + b) times z, fitted to Delta by full-batch Adam). Each layer is \
            fitted on its own against the accumulated Delta at that layer, so a file with several \
            layers over-steers at alpha 1. Prints each layer's relative RMSE against Delta_PS on \
            the fitted rows (1.0 = no better than nothing). Details: docs/steering.md, "Methods".
            """)

    @Option(help: "The fitting method: diffmean, pca, stolfo or psr.")
    var method: FitMethod

    @Option(help: "The capture (.safetensors) written by `tiller capture`.")
    var capture: String

    @Option(help: ArgumentHelp("The layer to fit (0-based: the residual stream after block L; repeatable).", valueName: "L"))
    var layer: [Int] = []

    @Option(help: ArgumentHelp("Layers to fit: all (every captured layer) or a comma-separated list.", valueName: "all|L,L,..."))
    var layers: String?

    @Option(help: "The captured rows to fit on: answer (the last prompt token and y'), all, or last_prompt.")
    var rows: FitRows = .answer

    @Option(help: "Where the file steers: answer_only, all or question_and_answer.")
    var location: String = "answer_only"

    @Option(help: "Adam steps of the psr fit.")
    var steps: Int = 500

    @Option(help: "Adam's step size of the psr fit (standardised units, decayed linearly to 0).")
    var learningRate: Double = 0.05

    @Option(help: "The model directory the capture was made with (config.json, *.safetensors): the file records its fingerprint.")
    var model: String

    @Option(help: "The steering file to write (.safetensors).")
    var out: String

    @OptionGroup var backendOptions: BackendOptions

    func validate() throws {
        guard !layer.isEmpty || layers != nil else { throw ValidationError("give --layer L (repeatable) or --layers all|L,L,...") }
        guard layer.isEmpty || layers == nil else { throw ValidationError("give --layer or --layers, not both") }
        guard SteeringLocation(name: location) != nil else {
            throw ValidationError("--location must be answer_only, all or question_and_answer, not \(location)")
        }
        for l in layer { try NumericOptions.check("--layer", l, NumericOptions.layerIndex) }
        try NumericOptions.check("--steps", steps, NumericOptions.fitSteps)
        try NumericOptions.check("--learning-rate", learningRate, NumericOptions.learningRate)
    }

    func run() throws {
        try ModelDirectory.check(model)
        try OutputPaths.check(out, inputs: [("--capture", capture)], modelDirectory: model)
        let fingerprint = try ModelFingerprint(directory: model)
        let data = try CaptureData(path: capture)
        try data.check(against: fingerprint)
        let chosen = try chosenLayers(data)
        let backend = try backendOptions.make()
        let rowIndices = data.rowIndices(rows)
        guard !rowIndices.isEmpty else {
            throw TillerError.io(path: capture, detail: "no \(rows.rawValue) rows in the capture (\(data.rowCount) rows)")
        }
        let options = LocalPSROptions(steps: steps, learningRate: learningRate)

        var heads: [Int: SteeringHead] = [:]
        var rmse: [(Int, Double)] = []
        for l in chosen {
            let activations = try data.activations(layer: l, rows: rowIndices, on: backend)
            let fit: MethodFit
            var line: String
            if method == .psr {
                let result = try LocalPSR.fit(activations, backend: backend, options: options)
                fit = result.fit
                line = "layer \(l): relative RMSE \(Self.fmt(fit.relativeRMSE)) (DiffMean on the same rows \(Self.fmt(result.diffMean.relativeRMSE)); "
                    + "lambda > 0 on \(Self.fmt(result.activeShare * 100, 1))% of rows; best step \(result.bestStep) of \(steps))"
            } else {
                fit = try method.fit(activations, backend: backend)
                line = "layer \(l): relative RMSE \(Self.fmt(fit.relativeRMSE))"
                switch method {
                case .pca: line += " (scale \(Self.fmt(fit.details["scale"] ?? 0)), explained share \(Self.fmt(fit.details["explained_share"] ?? 0)))"
                case .stolfo: line += " (c_bar \(Self.fmt(fit.details["c_bar"] ?? 0)) over \(Int(fit.details["examples"] ?? 0)) last prompt tokens)"
                default: line += " (|z| \(Self.fmt(fit.details["norm"] ?? 0)))"
                }
            }
            print(line + " on \(fit.rowCount) rows")
            heads[l] = fit.head
            rmse.append((l, fit.relativeRMSE))
        }

        let intervention = Intervention(method: method.rawValue, heads: heads, location: SteeringLocation(name: location)!, alpha: 1)
        let q = SafetensorsWriter.jsonString
        let rmseJSON = rmse.map { "\"\($0.0)\":\($0.1.isFinite ? "\($0.1)" : "null")" }.joined(separator: ",")
        var fitJSON = "{\"capture\":\(q((capture as NSString).lastPathComponent)),\"rows\":\(q(rows.rawValue)),\"relative_rmse\":{\(rmseJSON)}"
        if method == .psr { fitJSON += ",\"steps\":\(steps),\"learning_rate\":\(learningRate)" }
        fitJSON += "}"
        try SteeringFile.save(intervention, model: fingerprint, metadata: ["tiller.fit": fitJSON], to: out)
        if chosen.count > 1 {
            printError("note: each layer was fitted alone against the accumulated Delta_PS; steering all \(chosen.count) layers at alpha 1 adds each layer's fit on top of the earlier ones")
        }
        print("wrote \(out): \(method.rawValue), \(chosen.count) layer\(chosen.count == 1 ? "" : "s") (\(chosen.map(String.init).joined(separator: ","))), location \(location), alpha 1")
    }

    func chosenLayers(_ data: CaptureData) throws -> [Int] {
        var list = layer
        if let layers {
            if layers == "all" {
                list = data.layers
            } else {
                list = try layers.split(separator: ",").map {
                    guard let l = Int($0.trimmingCharacters(in: .whitespaces)) else {
                        throw ValidationError("--layers must be all or a comma-separated list of layers, not \(layers)")
                    }
                    return l
                }
            }
        }
        if let missing = list.first(where: { !data.layers.contains($0) }) {
            throw TillerError.io(path: capture, detail: "\(layers == nil ? "--layer" : "--layers") \(missing): no tensor 'layers.\(missing).h': the capture holds layers \(data.layers.map(String.init).joined(separator: ", "))")
        }
        return Array(Set(list)).sorted()
    }

    static func fmt(_ x: Double, _ digits: Int = 4) -> String { String(format: "%.\(digits)f", x) }
}
