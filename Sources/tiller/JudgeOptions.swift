import ArgumentParser
import Foundation
import TillerCore
import TillerEvaluation

/// The judge of `tiller eval`: any OpenAI-compatible chat endpoint (docs/evaluation.md).
struct JudgeOptions: ParsableArguments {
    @Option(help: ArgumentHelp("An OpenAI-compatible endpoint (e.g. http://127.0.0.1:8080/v1) to judge the answers; without it coherence comes from a proxy and judge-only scores are left out.", valueName: "url"))
    var judgeURL: String?

    @Option(help: ArgumentHelp("The model name sent to the judge endpoint.", valueName: "name"))
    var judgeModel: String?

    @Option(help: "Most judge requests in flight at once.")
    var judgeConcurrency = 4

    @Option(help: ArgumentHelp("Seconds before a judge request is given up (and retried).", valueName: "seconds"))
    var judgeTimeout: Double = 60

    @Option(help: "Attempts per judge request on 429, 5xx or a failed connection (with exponential back-off).")
    var judgeAttempts = 5

    @Option(help: ArgumentHelp("The judge's answers cache (JSON Lines; default ~/.cache/tiller/judge-cache.jsonl).", valueName: "file"))
    var judgeCache: String?

    @Option(help: ArgumentHelp("Where coherence comes from: judge (the default with --judge-url) or proxy (the answer's perplexity under the unsteered model; with --judge-url the judge then rates only the trait or concept).", valueName: "judge|proxy"))
    var coherence: EvalScores.CoherenceSource?

    func validate() throws {
        try NumericOptions.check("--judge-concurrency", judgeConcurrency, 1...256)
        try NumericOptions.check("--judge-timeout", judgeTimeout, 0.001...86_400)
        try NumericOptions.check("--judge-attempts", judgeAttempts, 1...100)
        if (judgeURL == nil) != (judgeModel == nil) { throw ValidationError("give --judge-url and --judge-model together") }
        if judgeURL == nil && judgeCache != nil { throw ValidationError("--judge-cache needs --judge-url") }
        if judgeURL == nil && coherence == .judge { throw ValidationError("--coherence judge needs --judge-url") }
    }

    /// The client, or nil without --judge-url.
    func client() throws -> JudgeClient? {
        guard let judgeURL, let judgeModel else { return nil }
        guard let url = URL(string: judgeURL), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme), url.host != nil else {
            throw TillerError.invalidArgument(op: "--judge-url", detail: "\"\(judgeURL)\" is not an http(s) URL")
        }
        var configuration = JudgeClient.Configuration(url: url, model: judgeModel)
        configuration.concurrency = judgeConcurrency
        configuration.timeout = judgeTimeout
        configuration.attempts = judgeAttempts
        if let key = ProcessInfo.processInfo.environment["TILLER_JUDGE_API_KEY"], !key.isEmpty { configuration.apiKey = key }
        let cachePath = judgeCache ?? FileManager.default.homeDirectoryForCurrentUser.path + "/.cache/tiller/judge-cache.jsonl"
        return JudgeClient(configuration, cache: try JudgeCache(path: cachePath))
    }
}

extension EvalScores.CoherenceSource: ExpressibleByArgument {}
