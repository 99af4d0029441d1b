import Foundation
import Testing
import TillerSteering

/// `tiller serve` on the lab model, as clients use it: concurrent requests (chat and completions,
/// greedy and sampled, steered and not, streamed and not) against `tiller generate
/// --batch-invariant` of each request alone; OpenAI errors naming the field; limits; a fuzz run
/// after which the server still serves; a client that goes away; SIGTERM.
@Suite(.serialized) struct ServeCommandTests {
    static let lab = SteeringCommandTests.labModel

    /// A control vector for the lab model at layer 1 (any direction steers: these tests compare
    /// the server with generate, not with a target behaviour).
    static func writeVector(_ path: String) throws {
        let direction = (0..<SteeringCommandTests.labHiddenSize).map { Float(sin(Double($0) * 0.7)) * 3 }
        try ControlVector(modelHint: "llama", directions: [1: direction]).write(to: path)
    }

    struct Case {
        var chat: Bool
        var text: String
        var seed: Int
        var alpha: Double?
        var stream: Bool
    }

    static let prompts = ["what is pottery?", "tell me about the kiln", "who bakes bread?", "what is a river?",
                          "describe the forest", "what does the potter make?", "why is the clay wet?", "where is the harbor?"]

    /// Every request of `cases`, sent all at once, must get the ids and text generate gives it alone.
    static func expectSoloTokens(_ server: ServeProcess, _ cases: [Case], sampling: [String: Any], flags: [String],
                                 steerFile: String, scratch: SteeringCommandTests.Scratch, maxTokens: Int) throws {
        // generate, each line in a batch of its own.
        let lines = try cases.map { c -> String in
            var line: [String: Any] = ["seed": c.seed]
            if c.chat { line["messages"] = [["role": "user", "content": c.text]] } else { line["prompt"] = c.text }
            if let alpha = c.alpha { line["steer"] = [["file": "loud", "alpha": alpha]] }
            return String(decoding: try JSONSerialization.data(withJSONObject: line), as: UTF8.self)
        }
        let input = scratch.file("prompts-\(UUID().uuidString).jsonl"), output = scratch.file("out-\(UUID().uuidString).jsonl")
        try ModelCommandTests.write(lines, to: input)
        try SteeringCommandTests.ok(["generate", "--model", lab, "--prompts", input, "--out", output, "--batch-size", "1",
                                     "--batch-invariant", "--backend", "cpu", "--steer-file", "loud=\(steerFile)",
                                     "--max-new-tokens", "\(maxTokens)"] + flags)
        let expected = try String(contentsOfFile: output, encoding: .utf8).split(separator: "\n").map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }

        var answers = [(ids: [Int], text: String)?](repeating: nil, count: cases.count)
        let lock = NSLock()
        ServeProcess.concurrently(cases.count) { i in
            let c = cases[i]
            var body: [String: Any] = ["model": "anything", "max_tokens": maxTokens, "seed": c.seed, "stream": c.stream]
            body.merge(sampling) { $1 }
            if c.chat { body["messages"] = [["role": "user", "content": c.text]] } else { body["prompt"] = c.text }
            if let alpha = c.alpha { body["steering"] = [["name": "loud", "alpha": alpha]] }
            guard let response = try? server.post(c.chat ? "/v1/chat/completions" : "/v1/completions", body),
                  response.status == 200 else { return }
            var answer: (ids: [Int], text: String)?
            if c.stream {
                let (chunks, done) = ServeProcess.events(response)
                guard done else { return }
                let text = chunks.compactMap { chunk -> String? in
                    let choice = (chunk["choices"] as? [[String: Any]])?.first
                    return c.chat ? (choice?["delta"] as? [String: Any])?["content"] as? String : choice?["text"] as? String
                }.joined()
                let ids = chunks.compactMap { ($0["tiller"] as? [String: Any])?["ids"] as? [Int] }.first ?? []
                answer = (ids, text)
            } else if let json = response.json, let choice = (json["choices"] as? [[String: Any]])?.first {
                let text = c.chat ? (choice["message"] as? [String: Any])?["content"] as? String : choice["text"] as? String
                answer = ((json["tiller"] as? [String: Any])?["ids"] as? [Int] ?? [], text ?? "")
            }
            lock.withLock { answers[i] = answer }
        }
        for (i, c) in cases.enumerated() {
            let answer = try #require(answers[i], "no answer to \(c)")
            #expect(answer.ids == expected[i]["ids"] as? [Int], "\(c): server \(answer.ids), generate \(expected[i]["ids"] ?? "")")
            #expect(answer.text == expected[i]["completion"] as? String, "\(c)")
        }
    }

    @Test func concurrentRequestsGetTheTokensOfTheirSoloRun() throws {
        let scratch = try SteeringCommandTests.Scratch()
        let vector = scratch.file("loud.gguf")
        try Self.writeVector(vector)
        // Three slots for eight requests at once: requests wait, join running batches between
        // steps and prefill in chunks of 3 tokens beside others' decoding.
        let server = try ServeProcess(["--model", Self.lab, "--max-batch", "3", "--prefill-chunk", "3", "--steer-file", "loud=\(vector)"])
        var cases: [Case] = []
        for (i, prompt) in Self.prompts.enumerated() {
            cases.append(Case(chat: i % 2 == 0, text: prompt, seed: 10 + i, alpha: i % 3 == 0 ? nil : Double(i % 3) * 8, stream: i % 4 < 2))
        }
        try Self.expectSoloTokens(server, cases, sampling: [:], flags: [], steerFile: vector, scratch: scratch, maxTokens: 12)
        try Self.expectSoloTokens(server, cases, sampling: ["temperature": 0.9, "top_p": 0.95], flags: ["--temperature", "0.9", "--top-p", "0.95"],
                                  steerFile: vector, scratch: scratch, maxTokens: 12)
        #expect(server.terminate() == 0)
    }

    @Test func badRequestsGetOpenAIErrorsNamingTheField() throws {
        let scratch = try SteeringCommandTests.Scratch()
        let vector = scratch.file("loud.gguf")
        try Self.writeVector(vector)
        let server = try ServeProcess(["--model", Self.lab, "--steer-file", "loud=\(vector)", "--max-tokens-limit", "100",
                                       "--max-body-bytes", "4096"])
        let chat: [String: Any] = ["messages": [["role": "user", "content": "hi"]], "max_tokens": 2]
        func with(_ key: String, _ value: Any) -> [String: Any] { var body = chat; body[key] = value; return body }
        let cases: [(body: [String: Any], param: String, words: [String])] = [
            (with("steering", [["name": "pirate"]]), "steering[0].name", ["pirate", "loud"]),
            (with("steering", [["name": "loud", "alpha": 1e9]]), "steering[0].alpha", ["out of range"]),
            (with("steering", [["name": "loud", "location": "everywhere"]]), "steering[0].location", ["everywhere"]),
            (with("steering", "loud"), "steering", ["list"]),
            (with("max_tokens", "3"), "max_tokens", ["integer"]),
            (with("max_tokens", 101), "max_tokens", ["101"]),
            (with("max_tokens", -1), "max_tokens", ["-1"]),
            (with("temperature", 7), "temperature", ["7"]),
            (with("top_p", 0), "top_p", ["0"]),
            (with("n", 2), "n", ["n = 1"]),
            (with("stream", "yes"), "stream", ["true or false"]),
            (with("stop", [1]), "stop[0]", ["string"]),
            (with("messages", "hi"), "messages", ["array"]),
            (with("messages", [["content": "hi"]]), "messages[0].role", ["missing"]),
            (with("seed", 1.5), "seed", ["1.5"]),
            (with("messages", [["role": "user", "content": String(repeating: "clay ", count: 300)]]), "messages", ["context"]),
        ]
        for c in cases {
            let response = try server.post("/v1/chat/completions", c.body)
            #expect(response.status == 400, "\(c.body): \(response.status) \(response.text)")
            #expect(response.error?["param"] as? String == c.param, "\(response.text)")
            #expect(response.error?["type"] as? String == "invalid_request_error", "\(response.text)")
            for word in c.words { #expect((response.error?["message"] as? String)?.contains(word) == true, "\(word): \(response.text)") }
        }
        let completions = try server.post("/v1/completions", ["max_tokens": 2])
        #expect(completions.status == 400 && completions.error?["param"] as? String == "prompt", "\(completions.text)")
        // Not JSON, invalid UTF-8, not an object, too large.
        for bytes in [Array("{\"messages\": [".utf8), [0x7B, 0x22, 0xFF, 0xFE, 0x22, 0x3A, 0x31, 0x7D], Array("[1, 2]".utf8)] {
            let response = try #require(server.send("/v1/chat/completions", body: Data(bytes)))
            #expect(response.status == 400 && response.error?["code"] as? String == "invalid_json", "\(response.text)")
        }
        let large = try #require(server.send("/v1/chat/completions", body: Data(repeating: 0x20, count: 5000)))
        #expect(large.status == 413, "\(large.text)")
        let ok = try server.post("/v1/chat/completions", chat)
        #expect(ok.status == 200, "\(ok.text)")
        #expect(server.terminate() == 0)
    }

    @Test func authQueueAndTimeoutLimits() throws {
        let server = try ServeProcess(["--model", Self.lab, "--api-key", "sekret", "--max-batch", "1", "--max-queue", "1"])
        let body: [String: Any] = ["prompt": "what is pottery?", "max_tokens": 2]
        #expect(try server.post("/v1/completions", body).status == 401)
        #expect(try server.post("/v1/completions", body, headers: ["Authorization": "Bearer sekreT"]).status == 401)
        #expect(try server.post("/v1/completions", body, headers: ["Authorization": "Bearer sekret!"]).status == 401)
        #expect(server.send("/v1/models", method: "GET")?.status == 401)
        #expect(server.send("/health", method: "GET")?.status == 200)
        let authorized = ["Authorization": "Bearer sekret"]
        #expect(try server.post("/v1/completions", body, headers: authorized).status == 200)
        // One slot and one place in the queue: of many long requests at once, some are refused.
        let long: [String: Any] = ["prompt": "what is pottery?", "max_tokens": 200]
        var statuses = [Int](repeating: 0, count: 8), retryAfter = [String?](repeating: nil, count: 8)
        let lock = NSLock()
        ServeProcess.concurrently(8) { i in
            let response = try? server.post("/v1/completions", long, headers: authorized)
            lock.withLock { statuses[i] = response?.status ?? 0; retryAfter[i] = response?.headers["retry-after"] }
        }
        #expect(statuses.contains(200) && statuses.contains(429) && statuses.allSatisfy { $0 == 200 || $0 == 429 }, "\(statuses)")
        for (status, retry) in zip(statuses, retryAfter) where status == 429 { #expect(retry == "1") }
        #expect(server.terminate() == 0)

        let slow = try ServeProcess(["--model", Self.lab, "--request-timeout", "0.2", "--prefill-chunk", "1"])
        let timedOut = try slow.post("/v1/completions", ["prompt": String(repeating: "clay ", count: 40), "max_tokens": 200])
        #expect(timedOut.status == 504 && timedOut.error?["code"] as? String == "timeout", "\(timedOut.status) \(timedOut.text)")
        #expect(slow.terminate() == 0)
    }

    /// Thousands of mutated requests (bytes flipped, cut, repeated, values swapped for other
    /// types): every one gets an HTTP answer, never a 5xx or a dropped connection, and the
    /// server answers a clean request afterwards.
    @Test func fuzzedRequestsLeaveTheServerServing() throws {
        let server = try ServeProcess(["--model", Self.lab, "--max-batch", "4", "--max-tokens-limit", "4"])
        let seeds = [
            #"{"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}], "max_tokens": 2, "steering": [{"name": "x", "alpha": 1}]}"#,
            #"{"prompt": "what is clay?", "max_tokens": 2, "temperature": 0.5, "top_p": 0.9, "seed": 7, "stop": ["\n", "."], "stream": true}"#,
            #"{"prompt": [1, 2, 3], "max_tokens": 1, "n": 1, "stream_options": {"include_usage": true}, "stream": true}"#,
        ].map { Array($0.utf8) }
        let replacements = [Array("null".utf8), Array("[]".utf8), Array("{}".utf8), Array("-1e999".utf8), Array("\"\u{0}\"".utf8),
                            Array("9223372036854775808".utf8), [0xC3], [0xFF], Array("[[[[[[[[[[".utf8), Array("\"\\ud800\"".utf8)]
        var random = SystemRandomNumberGenerator()
        var bodies: [[UInt8]] = []
        for i in 0..<2000 {
            var body = seeds[i % seeds.count]
            for _ in 0..<(1 + i % 4) {
                guard !body.isEmpty else { break }
                let at = Int.random(in: 0..<body.count, using: &random)
                switch Int.random(in: 0..<5, using: &random) {
                case 0: body[at] = UInt8.random(in: 0...255, using: &random)
                case 1: body = Array(body[..<at])
                case 2: body.insert(contentsOf: replacements.randomElement(using: &random)!, at: at)
                case 3: body.remove(at: at)
                default: body.insert(contentsOf: body[at...].prefix(8), at: at)
                }
            }
            bodies.append(body)
        }
        var failures: [String] = []
        let lock = NSLock()
        ServeProcess.concurrently(4) { worker in
            for (i, body) in bodies.enumerated() where i % 4 == worker {
                let path = i % 2 == 0 ? "/v1/chat/completions" : "/v1/completions"
                let response = server.send(path, body: Data(body))
                let status = response?.status ?? 0
                if status == 0 || status >= 500 {
                    lock.withLock { failures.append("\(status) for \(String(decoding: body, as: UTF8.self)): \(response?.text ?? "")") }
                }
            }
        }
        #expect(failures.isEmpty, "\(failures.count) failures, first: \(failures.prefix(3))")
        let clean = try server.post("/v1/completions", ["prompt": "what is clay?", "max_tokens": 2])
        #expect(clean.status == 200, "\(clean.text)")
        #expect(server.send("/metrics", method: "GET")?.text.contains("tiller_requests_total") == true)
        #expect(server.terminate() == 0)
    }

    /// A streaming client that goes away frees its slot: with one slot, the next request is
    /// served long before the abandoned one would have finished, and the server generated far
    /// fewer tokens than the abandoned request asked for.
    @Test func aClientThatGoesAwayFreesItsSlot() throws {
        let server = try ServeProcess(["--model", Self.lab, "--max-batch", "1", "--max-tokens-limit", "100000"])
        let body = #"{"prompt": "what is pottery?", "max_tokens": 200, "stream": true, "temperature": 1}"#
        let request = "POST /v1/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            + "Content-Length: \(body.utf8.count)\r\n\r\n" + body
        try server.abandon(request, afterReading: 600)
        let next = try server.post("/v1/completions", ["prompt": "what is clay?", "max_tokens": 2])
        #expect(next.status == 200, "\(next.text)")
        let metrics = try #require(server.send("/metrics", method: "GET")).text
        let generated = metrics.split(separator: "\n").first { $0.hasPrefix("tiller_generated_tokens_total ") }
            .flatMap { Double($0.split(separator: " ").last!) } ?? -1
        #expect(generated >= 0 && generated < 150, "generated \(generated) tokens:\n\(metrics)")
        #expect(server.terminate() == 0)
    }

    /// SIGTERM lets a request in flight finish, then the server exits 0.
    @Test func sigtermFinishesRequestsInFlightAndExitsZero() throws {
        let server = try ServeProcess(["--model", Self.lab, "--prefill-chunk", "1"])
        let response = ServeProcess.ResponseBoxed()
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            response.value = try? server.post("/v1/completions", ["prompt": "what is pottery?", "max_tokens": 200, "stream": true,
                                                                  "temperature": 1, "seed": 3])
            done.signal()
        }
        // The request is in flight once the server has counted it.
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline, server.send("/metrics", method: "GET")?.text.contains("tiller_requests_total 1") != true { usleep(5000) }
        #expect(server.terminate() == 0)
        done.wait()
        let streamed = try #require(response.value)
        #expect(streamed.status == 200 && ServeProcess.events(streamed).done, "\(streamed.text.suffix(300))")
    }

    @Test func checkLoadsEverythingAndExitsWithoutListening() throws {
        let scratch = try SteeringCommandTests.Scratch()
        try Self.writeVector(scratch.file("loud.gguf"))
        let result = try SteeringCommandTests.ok(["serve", "--model", Self.lab, "--steer-dir", scratch.path, "--check", "--backend", "cpu"])
        #expect(result.stdout.contains("steering: loud"), "\(result.stdout)")
        try SteeringCommandTests.fails(["serve", "--model", Self.lab, "--steer-file", "a=\(scratch.file("missing.gguf"))", "--check"],
                                       containing: ["missing.gguf"])
    }
}

extension ServeProcess {
    final class ResponseBoxed: @unchecked Sendable { var value: ServeProcess.Response? }
}
