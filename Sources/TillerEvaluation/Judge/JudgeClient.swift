import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import TillerCore

/// A judge behind any OpenAI-compatible chat endpoint (POST {url}/chat/completions; `tiller serve`,
/// vLLM, llama.cpp's server, OpenAI): each prompt is one user message at temperature 0, the answer
/// read strictly (`RatingParser`) with one retry in the same conversation when it is not a bare
/// number. Requests run `concurrency` at a time, each with a timeout; a 429, a 5xx or a failed
/// connection is retried with exponential back-off (honouring Retry-After) up to `attempts` times,
/// after which the run stops with one line (what was written so far stays, and a re-run resumes).
/// Every answer is cached on disk (`JudgeCache`), so a re-run pays for nothing twice.
public final class JudgeClient {
    public struct Configuration: Sendable {
        /// The base URL (".../v1"); a URL already ending in /chat/completions is taken as is.
        public var url: URL
        public var model: String
        public var concurrency = 4
        public var timeout: Double = 60
        public var attempts = 5
        /// The first back-off, doubled after each failed attempt.
        public var backoff: Double = 0.5
        public var maxTokens = 16
        /// Sent as a bearer token when set (TILLER_JUDGE_API_KEY).
        public var apiKey: String?

        public init(url: URL, model: String) {
            self.url = url
            self.model = model
        }

        public var endpoint: URL {
            url.path.hasSuffix("/chat/completions") ? url : url.appendingPathComponent("chat/completions")
        }
    }

    /// One judged prompt: the rating (nil when the answers could not be read or it was a refusal)
    /// and every answer the judge gave, in order.
    public struct Judgment: Sendable, Equatable {
        public var metric: String
        public var rating: Int?
        public var refusal: Bool
        public var answers: [String]
        public var cached: Bool

        public var json: [String: Any] {
            var object: [String: Any] = ["metric": metric, "answers": answers, "refusal": refusal, "cached": cached]
            object["rating"] = rating.map { $0 as Any } ?? NSNull()
            return object
        }
    }

    public let configuration: Configuration
    public let cache: JudgeCache?
    private let session: URLSession

    public init(_ configuration: Configuration, cache: JudgeCache?) {
        self.configuration = configuration
        self.cache = cache
        let sessionConfiguration = URLSessionConfiguration.ephemeral
        sessionConfiguration.timeoutIntervalForRequest = configuration.timeout
        sessionConfiguration.timeoutIntervalForResource = configuration.timeout * 2
        session = URLSession(configuration: sessionConfiguration)
    }

    /// Judges every prompt, `concurrency` at a time; results in the prompts' order. The same prompt
    /// twice (the same answer at two alphas, say) is asked once. Throws the first request that
    /// failed every attempt.
    public func judge(_ all: [JudgePrompts.Prompt]) throws -> [Judgment] {
        var firstIndex: [JudgePrompts.Prompt: Int] = [:], prompts: [JudgePrompts.Prompt] = []
        let slot = all.map { prompt -> Int in
            if let known = firstIndex[prompt] { return known }
            firstIndex[prompt] = prompts.count
            prompts.append(prompt)
            return prompts.count - 1
        }
        let judged = try judgeDistinct(prompts)
        return slot.map { judged[$0] }
    }

    private func judgeDistinct(_ prompts: [JudgePrompts.Prompt]) throws -> [Judgment] {
        var results = [Judgment?](repeating: nil, count: prompts.count)
        var failure: Error?
        let lock = NSLock()
        var next = 0
        let workers = max(1, min(configuration.concurrency, prompts.count))
        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            while true {
                let index: Int? = lock.withLock {
                    guard failure == nil, next < prompts.count else { return nil }
                    defer { next += 1 }
                    return next
                }
                guard let index else { return }
                do {
                    let judgment = try judge(prompts[index])
                    lock.withLock { results[index] = judgment }
                } catch {
                    lock.withLock { if failure == nil { failure = error } }
                }
            }
        }
        if let failure { throw failure }
        return results.map { $0! }
    }

    /// One prompt: from the cache, else asked (and retried once when unreadable) and cached.
    public func judge(_ prompt: JudgePrompts.Prompt) throws -> Judgment {
        if let answers = cache?.answers(model: configuration.model, prompt: prompt.text) {
            var judgment = Self.read(prompt, answers: answers)
            judgment.cached = true
            return judgment
        }
        var messages: [[String: String]] = [["role": "user", "content": prompt.text]]
        var answers = [try complete(messages)]
        if RatingParser.parse(answers[0], scale: prompt.scale, allowsRefusal: prompt.allowsRefusal) == nil {
            messages.append(["role": "assistant", "content": answers[0]])
            messages.append(["role": "user", "content": JudgePrompts.retry(prompt)])
            answers.append(try complete(messages))
        }
        try cache?.store(model: configuration.model, prompt: prompt.text, answers: answers)
        return Self.read(prompt, answers: answers)
    }

    /// The rating of the last readable answer.
    static func read(_ prompt: JudgePrompts.Prompt, answers: [String]) -> Judgment {
        for answer in answers {
            switch RatingParser.parse(answer, scale: prompt.scale, allowsRefusal: prompt.allowsRefusal) {
            case .value(let v)?: return Judgment(metric: prompt.metric, rating: v, refusal: false, answers: answers, cached: false)
            case .refusal?: return Judgment(metric: prompt.metric, rating: nil, refusal: true, answers: answers, cached: false)
            case nil: continue
            }
        }
        return Judgment(metric: prompt.metric, rating: nil, refusal: false, answers: answers, cached: false)
    }

    /// The assistant's text for a conversation, with retries on 429, 5xx and connection failures.
    func complete(_ messages: [[String: String]]) throws -> String {
        let body: [String: Any] = ["model": configuration.model, "messages": messages, "temperature": 0,
                                   "max_tokens": configuration.maxTokens]
        var request = URLRequest(url: configuration.endpoint)
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        if let key = configuration.apiKey { request.setValue("Bearer \(key)", forHTTPHeaderField: "Authorization") }
        request.httpBody = try JSONSerialization.data(withJSONObject: body)
        request.timeoutInterval = configuration.timeout
        let where_ = configuration.endpoint.absoluteString
        var delay = configuration.backoff
        var lastProblem = ""
        for attempt in 1...max(1, configuration.attempts) {
            let (data, response, error) = send(request)
            var retryAfter: Double?
            if let error {
                lastProblem = "no answer (\(error.localizedDescription))"
            } else if let http = response as? HTTPURLResponse {
                if http.statusCode == 200, let data {
                    return try Self.content(data, from: where_)
                }
                lastProblem = "HTTP \(http.statusCode)"
                guard http.statusCode == 429 || (500...599).contains(http.statusCode) else {
                    throw TillerError.io(path: where_, detail: "the judge answered \(lastProblem)\(Self.snippet(data))")
                }
                retryAfter = (http.value(forHTTPHeaderField: "Retry-After")).flatMap(Double.init)
            } else {
                lastProblem = "no HTTP response"
            }
            if attempt < configuration.attempts {
                // Up to half again at random, so clients refused together do not all return at the
                // same moment and collide again (a server's Retry-After is the same for each).
                Thread.sleep(forTimeInterval: min(30, max(delay, retryAfter ?? 0) * Double.random(in: 1..<1.5)))
                delay *= 2
            }
        }
        throw TillerError.io(path: where_, detail: "the judge failed \(configuration.attempts) attempts, the last: \(lastProblem)")
    }

    private func send(_ request: URLRequest) -> (Data?, URLResponse?, Error?) {
        let done = DispatchSemaphore(value: 0)
        let box = ResponseBox()
        session.dataTask(with: request) { data, response, error in
            box.value = (data, response, error)
            done.signal()
        }.resume()
        done.wait()
        return box.value
    }

    /// The completion handler's result, handed to the waiting thread (the semaphore orders the two).
    private final class ResponseBox: @unchecked Sendable {
        var value: (Data?, URLResponse?, Error?) = (nil, nil, nil)
    }

    /// choices[0].message.content of a chat completion; anything else is a one-line error.
    static func content(_ data: Data, from endpoint: String) throws -> String {
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let choices = object["choices"] as? [[String: Any]], let first = choices.first,
              let message = first["message"] as? [String: Any], let content = message["content"] as? String else {
            throw TillerError.io(path: endpoint, detail: "the judge's answer is not a chat completion (no choices[0].message.content)\(snippet(data))")
        }
        return content
    }

    private static func snippet(_ data: Data?) -> String {
        guard let data, !data.isEmpty else { return "" }
        let text = String(decoding: data.prefix(120), as: UTF8.self).replacingOccurrences(of: "\n", with: " ")
        return ": " + text
    }
}
