import Foundation
import Testing

/// The judge client of `tiller eval` against a stand-in OpenAI-compatible server on loopback
/// (Tests/Fixtures/judge/stub_judge.py, started here): ratings reach the results, every answer is
/// kept, the cache answers a re-run, and the failure paths (429s, garbage answers, a server that
/// stops mid-run, a 4xx) end as documented. The same tests against `tiller serve` come with it.
@Suite(.serialized) struct EvalJudgeTests {
    /// The stub server, stopped when released.
    final class StubJudge {
        let process = Process()
        let port: Int
        let log: String
        var url: String { "http://127.0.0.1:\(port)/v1" }

        init(_ arguments: [String] = [], log: String) throws {
            self.log = log
            let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("Fixtures/judge/stub_judge.py").path
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", script, "--log", log] + arguments
            let out = Pipe()
            process.standardOutput = out
            try process.run()
            // The first line is the port it bound.
            var text = ""
            while !text.contains("\n") {
                let chunk = out.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                text += String(decoding: chunk, as: UTF8.self)
            }
            port = try #require(Int(text.trimmingCharacters(in: .whitespacesAndNewlines)), "stub printed \(text)")
        }

        /// Requests the server received.
        var requests: Int {
            ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").count
        }

        /// SIGKILL: the test runner's threads may block SIGTERM, and a child inherits that mask.
        deinit {
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
    }

    static func persona(_ judge: StubJudge, out: String, cache: String, limit: Int = 3, extra: [String] = []) throws -> TillerProcess.Result {
        try TillerProcess.run(["eval", "--protocol", "persona", "--model", SteeringCommandTests.labModel, "--steer", "prompt",
                               "--limit", "\(limit)", "--max-new-tokens", "8", "--backend", "cpu", "--out", out,
                               "--judge-url", judge.url, "--judge-model", "stub", "--judge-cache", cache] + extra)
    }

    static func judgments(_ line: [String: Any]) -> [String: [String: Any]] {
        var byMetric: [String: [String: Any]] = [:]
        for j in line["judge"] as? [[String: Any]] ?? [] { byMetric[j["metric"] as? String ?? ""] = j }
        return byMetric
    }

    /// The stub rates the trait as the answer's length modulo 101 and coherence as 100 minus that.
    @Test func ratingsAndAnswersReachTheResultsAndTheCacheAnswersAReRun() throws {
        let scratch = try SteeringCommandTests.Scratch()
        let judge = try StubJudge(log: scratch.file("log"))
        let cache = scratch.file("cache.jsonl")
        let first = try Self.persona(judge, out: scratch.file("a.jsonl"), cache: cache)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout.contains("coherence: the judge's rating"))
        let lines = try EvalCommandTests.lines(scratch.file("a.jsonl"))
        #expect(lines.count == 3)
        for line in lines {
            let response = try #require(line["response"] as? String)
            let expected = response.unicodeScalars.count % 101
            let scores = try #require(line["scores"] as? [String: Any])
            #expect(scores["trait"] as? Double == Double(expected))
            #expect(scores["coherence"] as? Double == Double(100 - expected))
            #expect(line["coherence_source"] as? String == "judge")
            let byMetric = Self.judgments(line)
            #expect(byMetric["trait"]?["answers"] as? [String] == ["\(expected)"])
            #expect(byMetric["trait"]?["cached"] as? Bool == false)
        }
        #expect(judge.requests == 6)
        // A second run (another results file) asks the judge nothing.
        let second = try Self.persona(judge, out: scratch.file("b.jsonl"), cache: cache)
        #expect(second.status == 0, "\(second.stderr)")
        #expect(judge.requests == 6)
        let again = try EvalCommandTests.lines(scratch.file("b.jsonl"))
        #expect(again.allSatisfy { line in Self.judgments(line).values.allSatisfy { $0["cached"] as? Bool == true } })
        #expect(again.map { $0["scores"] as? [String: Double] ?? [:] } == lines.map { $0["scores"] as? [String: Double] ?? [:] })
    }

    /// With --coherence proxy the judge rates the trait only, and coherence is the proxy's, the
    /// same as a run with no judge at all gives for the same answers.
    @Test func theProxyCanGiveCoherenceBesideAJudgedTrait() throws {
        let scratch = try SteeringCommandTests.Scratch()
        let judge = try StubJudge(log: scratch.file("log"))
        let run = try Self.persona(judge, out: scratch.file("a.jsonl"), cache: scratch.file("cache.jsonl"), extra: ["--coherence", "proxy"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("coherence: proxy (--coherence proxy)"))
        #expect(judge.requests == 3)
        let unjudged = try TillerProcess.run(["eval", "--protocol", "persona", "--model", SteeringCommandTests.labModel, "--steer", "prompt",
                                              "--limit", "3", "--max-new-tokens", "8", "--backend", "cpu", "--out", scratch.file("b.jsonl")])
        #expect(unjudged.status == 0, "\(unjudged.stderr)")
        let lines = try EvalCommandTests.lines(scratch.file("a.jsonl")), reference = try EvalCommandTests.lines(scratch.file("b.jsonl"))
        #expect(lines.count == 3 && reference.count == 3)
        for (line, plain) in zip(lines, reference) {
            let response = try #require(line["response"] as? String)
            let scores = try #require(line["scores"] as? [String: Any]), plainScores = try #require(plain["scores"] as? [String: Any])
            #expect(line["coherence_source"] as? String == "proxy")
            #expect(scores["trait"] as? Double == Double(response.unicodeScalars.count % 101))
            #expect(scores["coherence"] as? Double == plainScores["coherence"] as? Double)
            #expect(Self.judgments(line).keys.sorted() == ["trait"])
        }
        // A judged-coherence run cannot resume a proxy file, and --coherence judge needs a judge.
        let mixed = try Self.persona(judge, out: scratch.file("a.jsonl"), cache: scratch.file("cache.jsonl"))
        #expect(mixed.status != 0 && mixed.stderr.contains("coherence from the proxy"))
        let noJudge = try TillerProcess.run(["eval", "--protocol", "persona", "--model", SteeringCommandTests.labModel, "--steer", "prompt",
                                             "--coherence", "judge"])
        #expect(noJudge.status != 0 && noJudge.stderr.contains("--coherence judge needs --judge-url"))
    }

    @Test func tooManyRequestsAreRetriedWithBackOff() throws {
        let scratch = try SteeringCommandTests.Scratch()
        let judge = try StubJudge(["--status-first", "3", "429"], log: scratch.file("log"))
        let result = try Self.persona(judge, out: scratch.file("a.jsonl"), cache: scratch.file("cache.jsonl"), limit: 2,
                                      extra: ["--judge-concurrency", "1"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(judge.requests == 4 + 3)
        #expect(try EvalCommandTests.lines(scratch.file("a.jsonl")).allSatisfy { (($0["scores"] as? [String: Any])?["trait"] as? Double) != nil })
    }

    @Test func anUnreadableAnswerIsAskedAgainOnceAndKept() throws {
        let scratch = try SteeringCommandTests.Scratch()
        let once = try StubJudge(["--garbage", "once"], log: scratch.file("log1"))
        #expect(try Self.persona(once, out: scratch.file("a.jsonl"), cache: scratch.file("c1.jsonl"), limit: 2).status == 0)
        #expect(once.requests == 8, "every prompt asked twice")
        for line in try EvalCommandTests.lines(scratch.file("a.jsonl")) {
            let trait = try #require(Self.judgments(line)["trait"])
            let answers = try #require(trait["answers"] as? [String])
            #expect(answers.count == 2 && answers[0].hasPrefix("Let me think"))
            #expect(trait["rating"] as? Int == Int(answers[1]))
        }
        let always = try StubJudge(["--garbage", "always"], log: scratch.file("log2"))
        let result = try Self.persona(always, out: scratch.file("b.jsonl"), cache: scratch.file("c2.jsonl"), limit: 2)
        #expect(result.status == 0, "\(result.stderr)")
        for line in try EvalCommandTests.lines(scratch.file("b.jsonl")) {
            #expect((line["scores"] as? [String: Any])?["trait"] is NSNull, "an unreadable rating is no score, never a guess")
            #expect((Self.judgments(line)["trait"]?["answers"] as? [String])?.count == 2)
        }
        #expect(result.stdout.contains("prompt    2      -          -"), "\(result.stdout)")
    }

    /// The server stops after 3 answers: the run ends with one line naming it; run again against a
    /// live server, the answers cached before the stop are not asked again.
    @Test func aServerStoppedMidRunEndsInOneLineAndTheRerunResumes() throws {
        let scratch = try SteeringCommandTests.Scratch()
        let cache = scratch.file("cache.jsonl"), out = scratch.file("a.jsonl")
        let dying = try StubJudge(["--stop-after", "3"], log: scratch.file("log1"))
        let failed = try Self.persona(dying, out: out, cache: cache, limit: 3,
                                      extra: ["--judge-concurrency", "1", "--judge-attempts", "2", "--judge-timeout", "5"])
        ModelCommandTests.expectOneLineError(failed, containing: [dying.url, "failed 2 attempts"])
        let live = try StubJudge(log: scratch.file("log2"))
        let resumed = try Self.persona(live, out: out, cache: cache, limit: 3)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(live.requests == 6 - 3)
        #expect(try EvalCommandTests.lines(out).count == 3)
    }

    /// Concept with the judge: the stub rates concept 2, instruction 1, fluency 2, so every
    /// aggregate is 3 / (1/2 + 1 + 1/2) = 1.5, and AxBench's choice keeps the smaller alpha.
    @Test func conceptScoresAndAxBenchSelection() throws {
        let lab = try SteeringCommandTests.lab()
        let psr = try #require(lab.files["psr"])
        let scratch = try SteeringCommandTests.Scratch()
        let judge = try StubJudge(log: scratch.file("log"))
        let result = try TillerProcess.run(["eval", "--protocol", "concept", "--model", SteeringCommandTests.labModel,
                                            "--steer", psr, "--alpha", "0.5,1", "--limit", "4", "--max-new-tokens", "8",
                                            "--backend", "cpu", "--out", scratch.file("a.jsonl"), "--by-group",
                                            "--judge-url", judge.url, "--judge-model", "stub", "--judge-cache", scratch.file("c.jsonl")])
        #expect(result.status == 0, "\(result.stderr)")
        for line in try EvalCommandTests.lines(scratch.file("a.jsonl")) {
            let scores = try #require(line["scores"] as? [String: Any])
            #expect(scores["concept"] as? Double == 2 && scores["instruction"] as? Double == 1 && scores["fluency"] as? Double == 2)
            #expect(scores["aggregate"] as? Double == 1.5)
        }
        #expect(result.stdout.contains("AxBench selection of psr.safetensors: aggregate 1.500 over 1 concepts"), "\(result.stdout)")
        #expect(result.stdout.contains("alpha 0.5, 1.500"))
        // Four prompts per answer, each distinct prompt asked once (an answer the same at both
        // alphas, or the same instruction prompt, is not asked twice).
        let distinct = try String(contentsOfFile: scratch.file("c.jsonl"), encoding: .utf8).split(separator: "\n").count
        #expect(judge.requests == distinct && distinct <= 4 * 2 * 4 && distinct >= 4)
    }

    @Test func aClientErrorIsNotRetried() throws {
        let scratch = try SteeringCommandTests.Scratch()
        let judge = try StubJudge(["--status-first", "100", "400"], log: scratch.file("log"))
        let result = try Self.persona(judge, out: scratch.file("a.jsonl"), cache: scratch.file("c.jsonl"), limit: 1,
                                      extra: ["--judge-concurrency", "1"])
        ModelCommandTests.expectOneLineError(result, containing: ["HTTP 400", judge.url])
        #expect(judge.requests == 1)
    }
}
