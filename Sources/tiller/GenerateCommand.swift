import ArgumentParser
import Foundation
import TillerCore
import TillerCPU
import TillerModels
import TillerSteering

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Continue every prompt of a JSON Lines file, in batches.",
        discussion: """
            Each input line is {"prompt": "..."} (encoded with the tokenizer's special tokens), \
            {"messages": [{"role": ..., "content": ...}, ...]} (rendered through the model's chat \
            template with the generation prompt) or {"ids": [...]} (token ids as they are); an optional "seed" overrides --seed for its line. The \
            output has one line per input line, in input order: {"completion": ..., "ids": [...], \
            "stop_reason": "eos" | "stop_string" | "max_tokens" | "capacity" | "prompt_too_long" | \
            "non_finite", "seed": ..., "steering": [...]}, with the input line's "id" when it has one and \
            each steering file applied as {"file", "alpha", "location"}. Every prompt samples from its \
            own generator seeded with --seed, so its output does not depend on the batch. A prompt that \
            fills the context is skipped with a warning ("prompt_too_long"; an error with --strict); a \
            line whose activations become NaN or Inf (a huge alpha) stops with "non_finite" and a \
            warning naming the line and its steering.

            Steering. --steer FILE[:ALPHA] steers every line (repeat it to stack files, applied in \
            order); ALPHA replaces the file's alpha. FILE is a Tiller steering file (.safetensors) or \
            a llama.cpp/repeng control vector (.gguf), refused when made for another model. \
            --steer-file NAME=PATH gives a file a short name for the lines. A line may steer itself: \
            "steer": "NAME" or "NAME:ALPHA" (a --steer-file name or a path), \
            {"file": NAME, "alpha": 2.0, "location": ...}, or a list of these (stacked); it then \
            replaces --steer for that line, and "steer": null (or []) leaves the line unsteered. \
            A line's "alpha" replaces the alpha of its files (or of --steer's), and its "location" \
            their location: "all", "answer_only" (the last prompt token and every generated one), \
            "question_and_answer" (everything after the system prompt) or {"mask": [0/1 per prompt \
            token], "generated": true|false (default true)}. For question_and_answer, a "messages" \
            line's system prompt is its leading system messages; other lines may give \
            "system_length" (tokens), else they have none. Prompt steering is the prompt's own \
            text, so a line can stack a file on top of it. Steered and unsteered lines share \
            batches; each line's output is what it gets alone.
            """)

    @Option(help: "The model directory (config.json, *.safetensors, tokenizer.json).")
    var model: String

    @Option(help: "The input JSON Lines file (- for standard input).")
    var prompts: String

    @Option(help: "The output JSON Lines file (- for standard output).")
    var out: String

    @Option(help: "Most new tokens per prompt.")
    var maxNewTokens: Int = 128

    @Option(help: "0 decodes greedily; > 0 samples from softmax(logits / temperature).")
    var temperature: Float = 0

    @Option(help: "Sample among the k most likely tokens only (0: all).")
    var topK: Int = 0

    @Option(help: "Nucleus sampling: keep the most likely tokens up to this probability mass (1: all).")
    var topP: Float = 1

    @Option(help: "Seed of every prompt's sampler (a line's \"seed\" overrides it).")
    var seed: UInt64 = 0

    @Option(help: "Most prompts decoded together (KV cache slots).")
    var batchSize: Int = 8

    @Option(help: "Most tokens per sequence, prompt and completion together (default: max_position_embeddings).")
    var contextLimit: Int?

    @Option(name: .customLong("stop"), help: "End a completion at this text, which is left out (repeatable).")
    var stops: [String] = []

    @Option(help: ArgumentHelp("Steer every line (unless it has its own \"steer\") with this steering file; ALPHA replaces the file's alpha (repeatable: stacked in order).",
                               valueName: "file[:alpha]"))
    var steer: [String] = []

    @Option(help: ArgumentHelp("Where --steer acts: all, answer_only or question_and_answer (default: each file's own).",
                               valueName: "location"))
    var steerLocation: String?

    @Option(help: ArgumentHelp("Name a steering file for the prompts' \"steer\" keys (repeatable).", valueName: "name=path"))
    var steerFile: [String] = []

    @Flag(help: "Show the progress bar even when stderr is not a terminal.")
    var progress = false

    @Flag(help: "A prompt that does not fit the context is an error, not a warning and a skipped line.")
    var strict = false

    @Flag(help: "On the CPU, compute every row the same bits whatever shares its batch (as `tiller serve` does); slower prefill.")
    var batchInvariant = false

    @OptionGroup var jsonLines: JSONLinesOptions

    @OptionGroup var sharding: ShardOptions

    @OptionGroup var backendOptions: BackendOptions

    func validate() throws {
        try NumericOptions.check("--max-new-tokens", maxNewTokens, NumericOptions.tokenCount)
        try NumericOptions.checkTemperature("--temperature", temperature)
        try NumericOptions.check("--top-k", topK, NumericOptions.anyCount)
        try NumericOptions.checkTopP("--top-p", topP)
        try NumericOptions.check("--batch-size", batchSize, NumericOptions.batchSize)
        if let contextLimit { try NumericOptions.check("--context-limit", contextLimit, NumericOptions.contextLimit) }
        if stops.contains(where: \.isEmpty) { throw ValidationError("--stop must not be empty") }
        for value in steer {
            do { _ = try SteerEntry(parsing: value) } catch { throw ValidationError("--steer: \(error)") }
        }
        if let steerLocation, SteeringLocation(name: steerLocation) == nil {
            throw ValidationError("--steer-location must be all, answer_only or question_and_answer")
        }
        do { _ = try GenerateSteering.names(steerFile) } catch { throw ValidationError("\(error)") }
    }

    func run() throws {
        try ModelDirectory.check(model)
        // A shard (docs/cluster.md) generates its lines only, into its own output.
        let shard = try sharding.resolve(command: "generate", format: .jsonLines, out: out, inputs: [prompts])
        if try shard?.skipIfComplete() == true { return }
        let out = shard?.output ?? self.out
        let allLines = try PromptFile.read(prompts, maxLineBytes: jsonLines.maxLineBytes)
        let lines = shard?.select(allLines) ?? allLines
        try OutputPaths.check(out, inputs: inputs(lines), modelDirectory: model, allowStandardOutput: true)
        let tokenizer = try ModelDirectory.tokenizer(model)
        var template: ChatTemplate?
        let options = GenerationOptions(maxNewTokens: maxNewTokens, temperature: temperature, topK: topK, topP: topP,
                                        seed: seed, stopStrings: stops)
        let runSteering = try steer.map {
            var entry = try SteerEntry(parsing: $0)
            entry.location = steerLocation.flatMap(SteeringLocation.init(name:))
            return entry
        }
        let steering = GenerateSteering(modelDirectory: model, named: try GenerateSteering.names(steerFile))
        for entry in runSteering { _ = try steering.intervention(entry.name) }
        var requests: [GenerationRequest] = [], lineSteering: [SequenceSteering] = []
        for line in lines {
            let ids: [Int32]
            var systemLength = 0
            do {
                switch line.prompt {
                case .text(let text):
                    ids = try tokenizer.encode(text, addSpecialTokens: true)
                case .messages(let messages):
                    if template == nil { template = try ChatTemplate(directory: model) }
                    ids = try ModelDirectory.chatIDs(messages, template: template!, tokenizer: tokenizer)
                    if line.systemLength == nil {
                        systemLength = try ModelDirectory.systemLength(messages, ids: ids, template: template!, tokenizer: tokenizer)
                    }
                case .ids(let given):
                    ids = given
                }
            } catch {
                throw TillerError.io(path: "\(prompts):\(line.number)", detail: "\(error)")
            }
            do {
                let sequence = try steering.steering(line: line, run: runSteering, systemLength: systemLength)
                if sequence.applications.isEmpty, line.alpha != nil || line.location != nil {
                    throw SteerEntry.Problem("\(line.alpha != nil ? "\"alpha\"" : "\"location\"") given, but nothing steers this line")
                }
                for application in sequence.applications {
                    if case .mask(let mask, _) = application.location, mask.count > ids.count {
                        throw SteerEntry.Problem("the mask has \(mask.count) values for a prompt of \(ids.count) tokens")
                    }
                }
                lineSteering.append(sequence)
            } catch let problem as SteerEntry.Problem {
                throw TillerError.io(path: "\(prompts):\(line.number)", detail: problem.description)
            } catch let TillerError.io(path, detail) {
                throw TillerError.io(path: "\(prompts):\(line.number)", detail: "\(path): \(detail)")
            }
            guard !ids.isEmpty else {
                throw TillerError.io(path: "\(prompts):\(line.number)", detail: "the prompt encodes to no tokens")
            }
            var lineOptions = options
            if let seed = line.seed { lineOptions.seed = seed }
            requests.append(GenerationRequest(promptIDs: ids, options: lineOptions))
        }

        let echoes = lines.indices.map {
            OutputLine.Echo(line: lines[$0], entries: steering.entries(line: lines[$0], run: runSteering), sequence: lineSteering[$0],
                            interventions: steering.interventions, seed: requests[$0].options.seed)
        }

        let backend = try backendOptions.make()
        if batchInvariant { (backend as? CPUBackend)?.batchInvariant = true }
        let transformer = try TransformerModel.load(directory: model, backend: backend, weightDType: backendOptions.weightDType?.dtype,
                                                    keepQuantized: backendOptions.keepsQuantizedWeights)
        for (i, request) in requests.enumerated() {
            if let bad = request.promptIDs.first(where: { Int($0) >= transformer.vocabularySize }) {
                throw TillerError.io(path: "\(prompts):\(lines[i].number)",
                                     detail: "token id \(bad) is outside the model's vocabulary of \(transformer.vocabularySize)")
            }
        }
        let generator = try Generator(model: transformer, tokenizer: tokenizer, batchSize: batchSize, contextLimit: contextLimit)
        try GenerateWarnings.checkPromptLengths(requests, lines: lines, path: prompts, contextLimit: generator.contextLimit, strict: strict)
        // Only a run that steers something takes the hook (an unsteered one keeps the pass that
        // computes the last block for the last rows only).
        let hook = lineSteering.contains { !$0.applications.isEmpty }
            ? try SteeringHook(model: transformer, interventions: steering.interventions, requests: lineSteering) : nil

        // Lines are written in input order as soon as every earlier one is done.
        let writer = try OrderedLineWriter(path: out)
        let bar = ProgressBar(enabled: progress || ProgressBar.stderrIsTerminal)
        var last = GenerationProgress(generatedTokens: 0, promptTokens: 0, finishedRequests: 0,
                                      totalRequests: requests.count, elapsed: 0)
        try generator.generate(requests, hook: hook, progress: { p in
            last = p
            bar.update(p)
        }, onResult: { index, result in
            if result.stopReason == .nonFinite {
                printError(GenerateWarnings.nonFinite(path: prompts, line: lines[index].number, steering: lineSteering[index], files: steering))
            }
            writer.add(index, OutputLine(completion: result.completion, ids: result.ids, stop_reason: result.stopReason.rawValue, echo: echoes[index]))
        })
        bar.close(last)
        try writer.close(expected: requests.count)
        try shard?.finish(inputLines: allLines.count)
        printError(String(format: "tiller: %d prompts, %d prompt tokens, %d new tokens in %.2f s (%.1f tok/s) on %@",
                          requests.count, last.promptTokens, last.generatedTokens, last.elapsed,
                          last.tokensPerSecond, backend.name))
    }
}

/// Writes results as JSON lines in index order, holding back those that finish early.
final class OrderedLineWriter {
    let path: String
    private let file: OutputFile
    private var held: [Int: String] = [:]
    private var next = 0
    private var failure: Error?

    init(path: String) throws {
        self.path = path
        file = try OutputFile(path, allowStandardOutput: true)
    }

    func add(_ index: Int, _ line: OutputLine) {
        guard failure == nil else { return }
        do {
            held[index] = try jsonLine(line)
            while let text = held.removeValue(forKey: next) {
                try file.write(Data((text + "\n").utf8))
                next += 1
            }
        } catch {
            failure = error
        }
    }

    func close(expected: Int) throws {
        if let failure {
            file.discard()
            throw failure as? TillerError ?? TillerError.io(path: path, detail: "cannot write (\(ErrorReason.file(failure, path: path)))")
        }
        guard next == expected else {
            file.discard()
            throw TillerError.io(path: path, detail: "wrote \(next) of \(expected) lines")
        }
        try file.commit()
    }
}
