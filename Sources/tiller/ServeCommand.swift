import ArgumentParser
import Foundation
import TillerCore
import TillerCPU
import TillerModels
import TillerServe

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the model over an OpenAI-compatible HTTP API, steering each request its own way.",
        discussion: """
            POST /v1/chat/completions and /v1/completions (streaming or not), GET /v1/models, \
            /health and /metrics. A request may add "steering": [{"name": NAME, "alpha": 4, \
            "location": "answer_only"}, ...] with names from --steer-file and --steer-dir; requests \
            share batches (continuous batching), and each gets the tokens `tiller generate \
            --batch-invariant` gives it alone. SIGTERM or SIGINT stops accepting requests, lets those \
            in flight finish (up to --shutdown-timeout) and exits 0. See docs/serve.md.
            """)

    @Option(help: "The model directory (config.json, *.safetensors, tokenizer.json).")
    var model: String

    @Option(help: "Address to listen on (loopback by default: put a proxy in front to expose it).")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on (0: any free port; the line on stderr says which).")
    var port = 8080

    @Option(help: ArgumentHelp("Offer a steering file under a name (repeatable).", valueName: "name=path"))
    var steerFile: [String] = []

    @Option(help: ArgumentHelp("Offer every *.safetensors and *.gguf file of a folder, named by its file name (repeatable).", valueName: "dir"))
    var steerDir: [String] = []

    @Option(help: "Most requests decoded together (KV cache slots, each a whole context).")
    var maxBatch = 8

    @Option(help: "Most requests waiting for a slot; more get 429 with Retry-After.")
    var maxQueue = 64

    @Option(help: "Require Authorization: Bearer KEY on /v1 requests (default: TILLER_API_KEY, else none).")
    var apiKey: String?

    @Option(help: "Most tokens per sequence, prompt and completion together (default: max_position_embeddings).")
    var contextLimit: Int?

    @Option(help: "Most tokens a request may ask for (max_tokens).")
    var maxTokensLimit = 4096

    @Option(help: "Tokens generated for a request that gives no max_tokens (default: 256, at most --max-tokens-limit).")
    var defaultMaxTokens: Int?

    @Option(help: "Largest request body in bytes (413 past it).")
    var maxBodyBytes = 1 << 20

    @Option(help: "Seconds a request may take from arrival to its last token (504 past it).")
    var requestTimeout: Double = 600

    @Option(help: "Seconds SIGTERM waits for requests in flight before cancelling them.")
    var shutdownTimeout: Double = 30

    @Option(help: "Most prompt tokens a request feeds per step while others decode.")
    var prefillChunk = 64

    @Option(help: "The model name /v1/models lists (default: the model directory's name).")
    var servedModelName: String?

    @Flag(help: "Load the model and steering files, print what would be served and exit without listening.")
    var check = false

    @OptionGroup var backendOptions: BackendOptions

    func validate() throws {
        try NumericOptions.check("--port", port, 0...65535)
        try NumericOptions.check("--max-batch", maxBatch, NumericOptions.batchSize)
        try NumericOptions.check("--max-queue", maxQueue, 0...1_000_000)
        if let contextLimit { try NumericOptions.check("--context-limit", contextLimit, NumericOptions.contextLimit) }
        try NumericOptions.check("--max-tokens-limit", maxTokensLimit, NumericOptions.tokenCount)
        if let defaultMaxTokens { try NumericOptions.check("--default-max-tokens", defaultMaxTokens, 0...maxTokensLimit) }
        try NumericOptions.check("--max-body-bytes", maxBodyBytes, 1...(1 << 30))
        try NumericOptions.check("--request-timeout", requestTimeout, 0.001...1e7)
        try NumericOptions.check("--shutdown-timeout", shutdownTimeout, 0...1e6)
        try NumericOptions.check("--prefill-chunk", prefillChunk, 1...(1 << 20))
        if let apiKey, apiKey.isEmpty { throw ValidationError("--api-key must not be empty") }
        do { _ = try GenerateSteering.names(steerFile) } catch { throw ValidationError("\(error)") }
    }

    func run() throws {
        try ModelDirectory.check(model)
        let tokenizer = try ModelDirectory.tokenizer(model)
        let template = try? ChatTemplate(directory: model)
        let named = try GenerateSteering.names(steerFile).sorted { $0.key < $1.key }.map { (name: $0.key, path: $0.value) }
        let catalog = try SteeringCatalog(modelDirectory: model, named: named, directories: steerDir)
        let backend = try backendOptions.make()
        // Every row computed the same whatever shares its pass: a request's tokens do not depend
        // on the batch (docs/serve.md).
        (backend as? CPUBackend)?.batchInvariant = true
        let transformer = try TransformerModel.load(directory: model, backend: backend)
        let generator = try Generator(model: transformer, tokenizer: tokenizer, batchSize: maxBatch, contextLimit: contextLimit)
        let metrics = ServeMetrics(slotCount: maxBatch)
        let scheduler = try BatchScheduler(generator: generator, slots: maxBatch, prefillChunk: prefillChunk,
                                           interventions: catalog.interventions, maxQueue: maxQueue, metrics: metrics)
        var configuration = ServeConfiguration()
        configuration.host = host
        configuration.port = port
        configuration.modelName = servedModelName ?? URL(fileURLWithPath: model).standardizedFileURL.lastPathComponent
        configuration.apiKey = apiKey ?? ProcessInfo.processInfo.environment["TILLER_API_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        configuration.maxTokensLimit = maxTokensLimit
        configuration.defaultMaxTokens = defaultMaxTokens ?? min(256, maxTokensLimit)
        configuration.maxBodyBytes = maxBodyBytes
        configuration.requestTimeout = requestTimeout
        configuration.shutdownTimeout = shutdownTimeout
        let summary = "\(configuration.modelName) on \(backend.name), \(maxBatch) slots of \(generator.contextLimit) tokens, "
            + "steering: \(catalog.names.isEmpty ? "none" : catalog.names.joined(separator: ", "))"
        if check {
            print("tiller serve: would serve \(summary)")
            return
        }
        let engine = ServeEngine(configuration: configuration, scheduler: scheduler, catalog: catalog, metrics: metrics,
                                 tokenizer: tokenizer, template: template)
        let server = TillerServer(engine: engine)
        let done = DispatchSemaphore(value: 0)
        let failure = FailureBox()
        let host = self.host
        Task {
            do {
                try await server.run { port in
                    printError("tiller serve: listening on http://\(host):\(port) (\(summary))")
                }
            } catch {
                failure.error = error
            }
            done.signal()
        }
        done.wait()
        if let error = failure.error { throw TillerError.io(path: "\(host):\(port)", detail: "cannot serve (\(error))") }
        printError("tiller serve: stopped")
    }
}

/// Carries the server task's error to the waiting command.
private final class FailureBox: @unchecked Sendable {
    var error: Error?
}
