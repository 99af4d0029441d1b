import Foundation
import Testing

/// The judge client of `tiller eval` against a real `tiller serve` on loopback, serving the lab
/// model as the judge (issue 14: the client is tested against the project's own server). The lab
/// model cannot rate anything, which is the point for the failure paths: every answer is
/// unreadable, so each prompt is asked twice, both answers are kept and no score is guessed. A
/// server with one slot and no queue answers concurrent judges with 429s, which the client backs
/// off from; a stopped server ends the run in one line and a new one resumes it from the cache.
@Suite(.serialized) struct EvalJudgeServeTests {
    /// The lab model's 256 positions do not hold a judge prompt: the server runs it past them
    /// (--context-limit; rope extends, the answers are nonsense either way) with short answers.
    static func judgeServer(_ extra: [String] = []) throws -> ServeProcess {
        try ServeProcess(["--model", SteeringCommandTests.labModel, "--context-limit", "1024", "--default-max-tokens", "6",
                          "--served-model-name", "lab-judge"] + extra)
    }

    static func persona(_ server: ServeProcess, out: String, cache: String, limit: Int, extra: [String] = []) throws -> TillerProcess.Result {
        try TillerProcess.run(["eval", "--protocol", "persona", "--model", SteeringCommandTests.labModel, "--steer", "prompt",
                               "--limit", "\(limit)", "--max-new-tokens", "6", "--backend", "cpu", "--out", out,
                               "--judge-url", "http://127.0.0.1:\(server.port)/v1", "--judge-model", "lab-judge",
                               "--judge-cache", cache] + extra)
    }

    static func metric(_ server: ServeProcess, _ name: String) -> Double? {
        guard let text = server.send("/metrics", method: "GET")?.text else { return nil }
        return text.split(separator: "\n").first { $0.hasPrefix(name + " ") || $0.hasPrefix(name + "{") }
            .flatMap { Double($0.split(separator: " ").last ?? "") }
    }

    @Test func unreadableRatingsAreAskedTwiceKeptAndNeverGuessed() throws {
        let scratch = try SteeringCommandTests.Scratch()
        let server = try Self.judgeServer()
        let cache = scratch.file("cache.jsonl"), out = scratch.file("a.jsonl")
        let result = try Self.persona(server, out: out, cache: cache, limit: 2)
        #expect(result.status == 0, "\(result.stderr)")
        let lines = try EvalCommandTests.lines(out)
        #expect(lines.count == 2)
        for line in lines {
            let judged = EvalJudgeTests.judgments(line)
            for metric in ["trait", "coherence"] {
                let answers = try #require(judged[metric]?["answers"] as? [String], "\(metric) in \(line)")
                #expect(answers.count == 2, "an unreadable answer is asked once more")
                #expect(judged[metric]?["rating"] is NSNull)
                #expect((line["scores"] as? [String: Any])?[metric] is NSNull)
            }
        }
        // 2 items x 2 metrics x 2 asks reached the server.
        #expect(Self.metric(server, "tiller_requests_total") == 8)
        // A re-run into another results file is answered from the cache: the server sees nothing new.
        let again = try Self.persona(server, out: scratch.file("b.jsonl"), cache: cache, limit: 2)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(Self.metric(server, "tiller_requests_total") == 8)
        #expect(server.terminate() == 0)
    }

    @Test func aFullServerIsBackedOffFromAndAStoppedOneResumedFromTheCache() throws {
        let scratch = try SteeringCommandTests.Scratch()
        let cache = scratch.file("cache.jsonl"), out = scratch.file("a.jsonl")
        // One slot, no queue: four judges at once get 429s and retry after the server's Retry-After.
        let busy = try Self.judgeServer(["--max-batch", "1", "--max-queue", "0"])
        let result = try Self.persona(busy, out: out, cache: cache, limit: 2, extra: ["--judge-concurrency", "4", "--judge-attempts", "10"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect((Self.metric(busy, "tiller_requests_rejected_total") ?? 0) > 0, "no 429 happened: the test proves nothing")
        #expect(try EvalCommandTests.lines(out).allSatisfy { line in
            EvalJudgeTests.judgments(line).values.allSatisfy { ($0["answers"] as? [String])?.count == 2 }
        })
        // A stopped server: one line naming the judge, nothing half-written.
        let url = "http://127.0.0.1:\(busy.port)/v1"
        #expect(busy.terminate() == 0)
        let more = scratch.file("more.jsonl")
        let failed = try Self.persona(busy, out: more, cache: cache, limit: 3,
                                      extra: ["--judge-attempts", "2", "--judge-timeout", "5"])
        ModelCommandTests.expectOneLineError(failed, containing: [url])
        // A new server (another port): the first two items' judgments come from the cache, only
        // the third is asked.
        let live = try Self.judgeServer()
        let resumed = try Self.persona(live, out: more, cache: cache, limit: 3)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(try EvalCommandTests.lines(more).count == 3)
        #expect(Self.metric(live, "tiller_requests_total") == 4)
        #expect(live.terminate() == 0)
    }
}
