import Foundation
import TillerCore
import TillerModels
import TillerSteering

/// The limits and names a server runs with (`tiller serve`'s flags).
public struct ServeConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port = 8080
    /// The model name /v1/models lists and responses echo (a request may name any model).
    public var modelName = "tiller"
    /// nil: no authentication. Else every /v1 request needs `Authorization: Bearer KEY`.
    public var apiKey: String?
    public var maxBodyBytes = 1 << 20
    /// Most tokens one request may ask for; a request without max_tokens gets `defaultMaxTokens`.
    public var maxTokensLimit = 4096
    public var defaultMaxTokens = 256
    /// Seconds a request may take from arrival to its last token (504 past it).
    public var requestTimeout: Double = 600
    /// Seconds SIGTERM waits for requests in flight before cancelling them.
    public var shutdownTimeout: Double = 30

    public init() {}
}

/// Turns a parsed request into a job: the prompt's tokens, the decoding options and the steering,
/// each checked against the model and the limits (400s naming the field).
public final class ServeEngine: @unchecked Sendable {
    public let configuration: ServeConfiguration
    public let scheduler: BatchScheduler
    public let catalog: SteeringCatalog
    public let metrics: ServeMetrics
    let tokenizer: Tokenizer
    let template: ChatTemplate?
    /// Tokenizers and templates keep caches: one request encodes at a time.
    private let textLock = NSLock()

    public init(configuration: ServeConfiguration, scheduler: BatchScheduler, catalog: SteeringCatalog, metrics: ServeMetrics,
                tokenizer: Tokenizer, template: ChatTemplate?) {
        self.configuration = configuration
        self.scheduler = scheduler
        self.catalog = catalog
        self.metrics = metrics
        self.tokenizer = tokenizer
        self.template = template
    }

    /// The tokens of a request's prompt and its system prompt's length (for question_and_answer).
    func encode(_ prompt: CompletionRequest.Prompt) throws -> (ids: [Int32], systemLength: Int) {
        try textLock.withLock {
            switch prompt {
            case .text(let text):
                return (try tokenizer.encode(text, addSpecialTokens: true), 0)
            case .ids(let ids):
                return (ids, 0)
            case .messages(let messages):
                guard let template else {
                    throw APIError.field("messages", "the model has no chat template: use /v1/completions")
                }
                let ids: [Int32]
                do { ids = try ChatPrompt.ids(messages, template: template, tokenizer: tokenizer) } catch {
                    throw APIError.field("messages", "the chat template cannot render them (\(error))")
                }
                return (ids, try ChatPrompt.systemLength(messages, ids: ids, template: template, tokenizer: tokenizer))
            }
        }
    }

    /// A queued-ready job for `request`, or a 400 naming what is wrong.
    func job(_ request: CompletionRequest) throws -> Job {
        let promptField: String
        switch request.prompt {
        case .messages: promptField = "messages"
        default: promptField = "prompt"
        }
        let (ids, systemLength) = try encode(request.prompt)
        guard !ids.isEmpty else { throw APIError.field(promptField, "encodes to no tokens") }
        let context = scheduler.contextLimit
        guard ids.count < context else {
            throw APIError.field(promptField, "has \(ids.count) tokens; the context holds \(context) (at least one must be left to generate)")
        }
        let maxTokens = request.maxTokens ?? configuration.defaultMaxTokens
        guard maxTokens <= configuration.maxTokensLimit else {
            throw APIError.field("max_tokens", "\(maxTokens) is more than this server allows (\(configuration.maxTokensLimit))")
        }
        let options = GenerationOptions(maxNewTokens: maxTokens, temperature: request.temperature, topK: request.topK,
                                        topP: request.topP, seed: request.seed, stopStrings: request.stop)
        let generation = GenerationRequest(promptIDs: ids, options: options)
        do { try scheduler.check(generation) } catch { throw APIError.field(promptField, "\(error)") }
        let steering = try catalog.steering(request.steering, systemLength: systemLength)
        return Job(request: generation, steering: steering, timeout: configuration.requestTimeout)
    }

    /// Bearer-token check in constant time: every byte of the longer string is compared, so the
    /// time taken does not tell how much of a guess was right.
    func authorized(_ header: String?) -> Bool {
        guard let key = configuration.apiKey else { return true }
        guard let header, header.hasPrefix("Bearer ") else { return false }
        let given = Array(header.utf8.dropFirst(7)), wanted = Array(key.utf8)
        var difference = UInt8(given.count == wanted.count ? 0 : 1)
        for i in 0..<max(given.count, wanted.count) {
            difference |= (i < given.count ? given[i] : 0) ^ (i < wanted.count ? wanted[i] : 0)
        }
        return difference == 0
    }
}
