import ArgumentParser
import Foundation
import TillerCore
import TillerModels
import TillerSteering

struct Analyze: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Statistics of a capture's Delta_PS per layer, steering files against it, and an HTML report.",
        discussion: """
            Prints, per captured layer, the count, mean, quantiles, max/median ratio and half-mass share \
            (the smallest fraction of tokens carrying half of the total squared norm) of ||Delta_PS||, \
            overall and by role. With --steer, each steering file's head directions are compared with \
            Delta (projections); with --model too, the file is applied to xy' (x rebuilt from the \
            triplets file, y' from the capture) and the accumulated change of the residual stream is \
            compared with Delta_PS: relative RMSE = sqrt(sum ||I - D||^2 / sum ||D||^2), 1.0 = no better \
            than doing nothing. --out writes a self-contained HTML report.
            """)

    @Option(help: "The capture file (from tiller capture).")
    var capture: String

    @Option(help: "The captured model's directory: token texts and rendered prompts in the report, and replaying --steer files.")
    var model: String?

    @Option(help: "A steering file (.safetensors) or control vector (.gguf) to compare with Delta_PS (repeatable).")
    var steer: [String] = []

    @Option(help: "The triplets file the capture was made from (default: the one it records).")
    var triplets: String?

    @Option(help: "The HTML report to write.")
    var out: String?

    @Flag(help: "Print the statistics as JSON instead of a table.")
    var json = false

    @Option(help: "Triplets shown token by token in the report.")
    var examples: Int = 8

    @Option(help: "The layer whose ||Delta_PS|| colours the tokens (default: the middle captured layer).")
    var colorLayer: Int?

    @OptionGroup var jsonLines: JSONLinesOptions

    @OptionGroup var backendOptions: BackendOptions

    func validate() throws {
        try NumericOptions.check("--examples", examples, NumericOptions.anyCount)
        if let colorLayer { try NumericOptions.check("--color-layer", colorLayer, NumericOptions.layerIndex) }
    }

    func run() throws {
        if let out {
            try OutputPaths.check(out, inputs: [("--capture", capture)] + (triplets.map { [("--triplets", $0)] } ?? []) + steer.map { ("--steer", $0) },
                                  modelDirectory: model)
        }
        let file = try CaptureFile(path: capture)
        let info = file.info
        if let out, triplets == nil {
            try OutputPaths.check(out, inputs: [("the capture's triplets file", info.source)])
        }
        if let colorLayer, !info.layers.contains(colorLayer) {
            throw TillerError.io(path: capture, detail: "--color-layer \(colorLayer) is not captured (layers \(info.layers.map(String.init).joined(separator: ",")))")
        }
        let backend = try backendOptions.make()
        let analyzer = CaptureAnalyzer(capture: file, backend: backend)
        var analysis = try analyzer.analyze()

        var tokenizer: Tokenizer?
        var transformer: TransformerModel?
        var fingerprint: ModelFingerprint?
        if let model {
            tokenizer = try ModelDirectory.tokenizer(model)
            let modelPrint = try ModelFingerprint(directory: model)
            guard modelPrint == info.model else {
                throw TillerError.io(path: capture, detail: "captured on another model: \(info.model.summary); --model \(model) is \(modelPrint.summary)")
            }
            fingerprint = modelPrint
        }

        let source = triplets ?? info.source
        // A --triplets file given here must read cleanly (its errors are the user's to see); the
        // file the capture recorded may have moved since, which only costs the replays' prompts.
        var lines: [CaptureTripletLine]?
        if triplets != nil {
            lines = try CaptureInput.read(source, maxLineBytes: jsonLines.maxLineBytes)
        } else if source != "-" {
            lines = try? CaptureInput.read(source, maxLineBytes: jsonLines.maxLineBytes)
        }
        if !steer.isEmpty {
            var prompts: [[Int32]] = [], systemLengths: [Int] = []
            if let model, let tokenizer {
                guard let lines else { throw TillerError.io(path: source, detail: "cannot read the triplets file to rebuild the prompts (give --triplets)") }
                guard lines.count == info.triplets else {
                    throw TillerError.io(path: source, detail: "\(lines.count) triplets, the capture has \(info.triplets)")
                }
                let preparer = CapturePreparer(tokenizer: tokenizer, templateDirectory: model)
                for line in lines {
                    do {
                        let ids = try preparer.ids(line.unsteered)
                        prompts.append(ids)
                        systemLengths.append(try preparer.systemLength(line.unsteered, ids: ids))
                    } catch let error as TillerError {
                        throw TillerError.io(path: "\(source):\(line.number)", detail: "\(error)")
                    }
                }
                transformer = try TransformerModel.load(directory: model, backend: backend, weightDType: backendOptions.weightDType?.dtype,
                                                    keepQuantized: backendOptions.keepsQuantizedWeights)
            }
            for path in steer {
                // A steering file, or a llama.cpp/repeng control vector read as `generate --steer` reads it.
                let intervention: Intervention
                if path.lowercased().hasSuffix(".gguf") {
                    intervention = try ControlVector.read(path: path).intervention(for: fingerprint ?? info.model, path: path)
                } else {
                    let steering = try SteeringFile.read(path: path)
                    try steering.check(against: fingerprint ?? info.model, path: path)
                    intervention = steering.intervention
                }
                if let transformer {
                    let bar = ProgressBar(enabled: ProgressBar.stderrIsTerminal)
                    let started = DispatchTime.now().uptimeNanoseconds
                    var status = GenerationProgress(totalRequests: info.triplets)
                    do {
                        analysis.replays.append(try analyzer.replay(intervention, name: path, model: transformer, unsteeredPrompts: prompts,
                                                                    systemLengths: systemLengths, norms: analysis.norms, progress: { done in
                            status.finishedRequests = done
                            status.elapsed = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
                            bar.update(status)
                        }))
                    } catch let error as TillerError {
                        throw TillerError.io(path: path, detail: "replaying on \(source): \(error)")
                    }
                    bar.close(status)
                } else {
                    analysis.replays.append(try analyzer.projectionsOnly(intervention, name: path, norms: analysis.norms))
                }
            }
        }

        print(json ? try analysis.json() : analysis.table)

        // x' and x as the model saw them; a default system prompt in x is said here and in the report.
        var rendering: TripletRendering?
        if let model, let tokenizer, let lines, lines.count == info.triplets {
            let chat = lines.contains { if case .messages = $0.unsteered { return true }; if case .messages = $0.steered { return true }; return false }
            let template = try chat ? ChatTemplate(directory: model) : nil
            rendering = TripletRendering(lines: lines, tokenizer: tokenizer, template: template, limit: examples)
            if let note = rendering?.note { printError("note: \(note)") }
        }

        guard let out else { return }
        let layers = info.layers
        let colour = colorLayer ?? (layers.isEmpty ? 0 : layers[layers.count / 2])
        var captions: [Int: String] = [:]
        if let lines, lines.count == info.triplets {
            for (i, line) in lines.enumerated() { captions[i] = Self.caption(line) }
        }
        let shown = Array(file.exampleRows.indices.filter { !file.exampleRows[$0].isEmpty }.prefix(examples))
        let text: (Int32) -> String = { id in tokenizer.map { $0.decode([id], skipSpecialTokens: false) } ?? "[\(id)]" }
        let report = CaptureReport(analysis: analysis, capture: file, tokenText: text, examples: shown, colorLayer: colour, captions: captions,
                                   rendering: rendering)
        try OutputFile.write(Data(report.html().utf8), to: out)
        printError("tiller: wrote \(out)")
    }

    /// The steered prompt of a triplet line in one line, for the report.
    static func caption(_ line: CaptureTripletLine) -> String {
        func describe(_ p: CapturePrompt) -> String {
            switch p {
            case .text(let s): return "\"\(s)\""
            case .ids(let ids): return "\(ids.count) token ids"
            case .messages(let m): return m.map { "\($0.role): \($0.content)" }.joined(separator: " | ")
            }
        }
        return "x\u{2032} = " + describe(line.steered) + "   \u{2014}   x = " + describe(line.unsteered)
    }
}
