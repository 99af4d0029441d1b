import ArgumentParser
import Foundation
import TillerCore
import TillerModels
import TillerSteering

struct Capture: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Capture prompt steering as activation steering: Delta_PS and the unsteered residual stream per layer.",
        discussion: """
            Each input line is a triplet {"steered": P, "unsteered": P, "completion": C}: P is a string \
            (a raw prompt, encoded with the tokenizer's special tokens), a list of {"role", "content"} \
            messages (rendered through the chat template with the generation prompt) or a list of token \
            ids; C (y') is a string or token ids, and when absent is sampled from the steered prompt x' \
            (greedy unless --sample-temperature > 0). Lines of `tiller lab corpus` files are read directly: \
            x' = "messages" and x = "unsteered_messages" without their answers, y' = the steered answer. \
            Both x'y' and xy' are teacher-forced in one batch; the positions they share at their end \
            (the end of the prompt and y') are written to a safetensors file: tokens, example, position, \
            role, and layers.L.h and layers.L.delta per layer (docs/steering.md, "Capture and analysis").
            """)

    @Option(help: "The model directory (config.json, *.safetensors, tokenizer.json).")
    var model: String

    @Option(help: "The triplets (JSON Lines; - for standard input).")
    var triplets: String

    @Option(help: "Layers to capture: comma-separated indices (0-based, the residual after block L) or \"all\".")
    var layers: String

    @Option(help: "The capture file to write (.safetensors).")
    var out: String

    @OptionGroup var sampling: CompletionSampling

    @Option(help: "Seed of the sampler for y'.")
    var seed: UInt64 = 0

    @Option(help: "Prompts decoded together when sampling y'.")
    var batchSize: Int = 8

    @Flag(help: "Show the progress bar even when stderr is not a terminal.")
    var progress = false

    @OptionGroup var jsonLines: JSONLinesOptions

    @OptionGroup var sharding: ShardOptions

    @OptionGroup var backendOptions: BackendOptions

    func validate() throws {
        try NumericOptions.check("--batch-size", batchSize, NumericOptions.batchSize)
    }

    /// "all" or "1,2,5" for a model of `count` layers (one-line errors naming --layers).
    static func parseLayers(_ text: String, count: Int, command: String = "capture") throws -> [Int] {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed == "all" { return Array(0..<count) }
        var layers: [Int] = []
        for part in trimmed.split(separator: ",", omittingEmptySubsequences: false) {
            let item = part.trimmingCharacters(in: .whitespaces)
            guard let layer = Int(item) else {
                throw TillerError.invalidArgument(op: command, detail: "--layers: \"\(item)\" is not a layer index (give e.g. 1,2 or all)")
            }
            guard layer >= 0, layer < count else {
                throw TillerError.invalidArgument(op: command, detail: "--layers: layer \(layer) does not exist, the model has \(count) layers (0-\(count - 1))")
            }
            guard !layers.contains(layer) else { throw TillerError.invalidArgument(op: command, detail: "--layers: layer \(layer) is given twice") }
            layers.append(layer)
        }
        return layers.sorted()
    }

    func run() throws {
        try ModelDirectory.check(model)
        // A shard (docs/cluster.md) captures its triplets only, into its own file.
        let shard = try sharding.resolve(command: "capture", format: .capture, out: out, inputs: [triplets])
        if try shard?.skipIfComplete() == true { return }
        let out = shard?.output ?? self.out
        try OutputPaths.check(out, inputs: [("--triplets", triplets)], modelDirectory: model)
        let allLines = try CaptureInput.read(triplets, maxLineBytes: jsonLines.maxLineBytes)
        guard !allLines.isEmpty else { throw TillerError.io(path: triplets, detail: "no triplets (the file has no lines)") }
        let tokenizer = try ModelDirectory.tokenizer(model)
        let preparer = CapturePreparer(tokenizer: tokenizer, templateDirectory: model)
        let backend = try backendOptions.make()
        let transformer = try TransformerModel.load(directory: model, backend: backend, weightDType: backendOptions.weightDType?.dtype,
                                                    keepQuantized: backendOptions.keepsQuantizedWeights)
        let chosen = try Self.parseLayers(layers, count: transformer.layerCount)
        let fingerprint = try ModelFingerprint(directory: model)
        let (indices, plan) = try shard.map {
            try CaptureSharding.select($0, lines: allLines, preparer: preparer, capture: ActivationCapture(model: transformer, layers: chosen), path: triplets)
        } ?? (Array(allLines.indices), nil)
        let lines = indices.map { allLines[$0] }

        let toSample = lines.filter { $0.completion == nil }.count
        var generator: Generator?
        let bar = ProgressBar(enabled: progress || ProgressBar.stderrIsTerminal)
        if toSample > 0 {
            printError("tiller: sampling y' for \(toSample) triplet\(toSample == 1 ? "" : "s") (\(sampling.summary))")
            generator = try Generator(model: transformer, tokenizer: tokenizer, batchSize: batchSize)
        }
        var last = GenerationProgress()
        let prepared = try preparer.prepare(lines, path: triplets, generator: generator,
                                            options: sampling.options(seed: seed),
                                            progress: { p in last = p; bar.update(p) })
        if toSample > 0 { bar.close(last) }

        let capture = try ActivationCapture(model: transformer, layers: chosen)
        for (i, triplet) in prepared.enumerated() {
            do { try capture.check(triplet) } catch let error as TillerError {
                throw TillerError.io(path: "\(triplets):\(lines[i].number)", detail: CaptureCommandSupport.detail(error))
            }
        }
        let started = DispatchTime.now().uptimeNanoseconds
        func elapsed() -> Double { Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9 }
        var status = GenerationProgress(totalRequests: prepared.count)
        let layout = try capture.run(prepared, to: out, model: fingerprint, source: triplets,
                                     label: { "\(triplets):\(lines[$0].number)" }, plan: plan, starting: { layout in
            let empty = prepared.filter { $0.sharedLength == 0 }.count
            printError("tiller: capturing \(layout.info.rows) rows from \(prepared.count) triplet\(prepared.count == 1 ? "" : "s"), layers \(chosen.map(String.init).joined(separator: ",")), hidden size \(layout.info.hiddenSize): \(CaptureCommandSupport.size(layout.fileSize)) (\(layout.fileSize) bytes) into \(out)"
                + (empty > 0 ? "; \(empty) triplet\(empty == 1 ? " shares" : "s share") no tokens at the end" : ""))
        }, progress: { done, rows in
            status.finishedRequests = done
            status.generatedTokens = rows
            status.elapsed = elapsed()
            bar.update(status)
        })
        bar.close(status)
        try shard?.finish(inputLines: allLines.count, indices: plan == nil ? nil : indices)
        printError(String(format: "tiller: wrote %@: %d rows, %d triplet%@, %@ in %.2f s on %@", out, layout.info.rows, prepared.count, prepared.count == 1 ? "" : "s",
                          CaptureCommandSupport.size(layout.fileSize), elapsed(), backend.name))
    }
}

enum CaptureCommandSupport {
    static func size(_ bytes: Int) -> String {
        let b = Double(bytes)
        if b >= Double(1 << 30) { return String(format: "%.2f GiB", b / Double(1 << 30)) }
        if b >= Double(1 << 20) { return String(format: "%.1f MiB", b / Double(1 << 20)) }
        if b >= Double(1 << 10) { return String(format: "%.1f KiB", b / Double(1 << 10)) }
        return "\(bytes) B"
    }

    static func detail(_ error: TillerError) -> String {
        if case let .invalidArgument(_, detail) = error { return detail }
        return "\(error)"
    }
}
