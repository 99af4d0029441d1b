import Foundation
import TillerCore

/// How one request is decoded. transformers' semantics: temperature, then top-k, then top-p.
public struct GenerationOptions: Sendable, Equatable {
    /// Most tokens to generate (0: none).
    public var maxNewTokens: Int
    /// 0 decodes greedily (the backend's argmax); > 0 samples from softmax(logits / temperature).
    public var temperature: Float
    /// Sample among the k most likely tokens only (0: the whole vocabulary).
    public var topK: Int
    /// Keep the smallest set of most likely tokens whose probability reaches topP (1: all).
    public var topP: Float
    /// Seeds this request's own SplitMix64: its output depends on the seed alone, never on
    /// which other requests share its batch.
    public var seed: UInt64
    /// Generation ends when the decoded text contains one of these; it is cut from the completion.
    public var stopStrings: [String]

    public init(maxNewTokens: Int = 128, temperature: Float = 0, topK: Int = 0, topP: Float = 1,
                seed: UInt64 = 0, stopStrings: [String] = []) {
        self.maxNewTokens = maxNewTokens
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.seed = seed
        self.stopStrings = stopStrings
    }

    /// Throws a one-line error for a value no decoding can use.
    public func validate() throws {
        func bad(_ detail: String) -> TillerError { .invalidArgument(op: "generate", detail: detail) }
        guard maxNewTokens >= 0 else { throw bad("max new tokens \(maxNewTokens) must be >= 0") }
        guard temperature >= 0, temperature.isFinite else { throw bad("temperature \(temperature) must be >= 0") }
        guard topK >= 0 else { throw bad("top-k \(topK) must be >= 0") }
        guard topP > 0, topP <= 1 else { throw bad("top-p \(topP) must be in (0, 1]") }
        if stopStrings.contains(where: \.isEmpty) { throw bad("a stop string is empty") }
    }

    var isGreedy: Bool { temperature == 0 }
}

/// One prompt (already tokenized) and how to continue it.
public struct GenerationRequest: Sendable, Equatable {
    public var promptIDs: [Int32]
    public var options: GenerationOptions

    public init(promptIDs: [Int32], options: GenerationOptions = GenerationOptions()) {
        self.promptIDs = promptIDs
        self.options = options
    }
}

/// Why a request stopped.
public enum StopReason: String, Sendable, Codable, Equatable {
    /// It generated an end-of-sequence token (kept in `ids`, not in the text).
    case eos
    /// Its decoded text reached a stop string (the tokens stay in `ids`; the text ends before it).
    case stopString = "stop_string"
    /// It generated maxNewTokens tokens.
    case maxTokens = "max_tokens"
    /// Prompt plus generated tokens filled the context (the KV cache capacity).
    case capacity
    /// The prompt alone fills the context (the generator's context limit): nothing was generated.
    case promptTooLong = "prompt_too_long"
    /// The logits, or a row of the residual stream the hook changed, held NaN or Inf (or a sum of
    /// squares past Float's range, which the next RMSNorm would turn into Inf): the request
    /// stops before the token such a pass would give, instead of reading token 0 off garbage.
    case nonFinite = "non_finite"
}

/// What one request produced.
public struct GenerationResult: Sendable, Equatable {
    /// The decoded new tokens, cut before a stop string, without the EOS token.
    public var completion: String
    /// Every generated token id, in order (an EOS token that ended it included).
    public var ids: [Int32]
    public var stopReason: StopReason

    public init(completion: String, ids: [Int32], stopReason: StopReason) {
        self.completion = completion
        self.ids = ids
        self.stopReason = stopReason
    }
}

/// Where a generation run stands, reported after every decoding step.
public struct GenerationProgress: Sendable {
    /// New tokens generated so far, over all requests.
    public var generatedTokens: Int
    /// Prompt tokens run through the model so far.
    public var promptTokens: Int
    public var finishedRequests: Int
    public var totalRequests: Int
    /// Seconds since the run began.
    public var elapsed: Double

    public init(generatedTokens: Int = 0, promptTokens: Int = 0, finishedRequests: Int = 0, totalRequests: Int = 0,
                elapsed: Double = 0) {
        self.generatedTokens = generatedTokens
        self.promptTokens = promptTokens
        self.finishedRequests = finishedRequests
        self.totalRequests = totalRequests
        self.elapsed = elapsed
    }

    /// New tokens per second.
    public var tokensPerSecond: Double { elapsed > 0 ? Double(generatedTokens) / elapsed : 0 }
}

/// Turns a request's generated ids into text as they come: `push` returns the text that is now
/// complete, `finish` whatever was held back (an unfinished UTF-8 sequence, say).
public struct TextStream {
    public let push: (Int32) -> String
    public let finish: () -> String

    public init(push: @escaping (Int32) -> String, finish: @escaping () -> String) {
        self.push = push
        self.finish = finish
    }
}

/// Makes one fresh `TextStream` per request.
public typealias TextStreamFactory = () -> TextStream
