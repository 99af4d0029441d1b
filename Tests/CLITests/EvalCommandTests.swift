import Foundation
import Testing

/// `tiller eval` as users run it: every protocol on the lab model, a small ifeval-format run on the
/// tiny llama with a steering file at several alphas, resuming from a results file, the report,
/// and the one-line errors.
@Suite struct EvalCommandTests {
    static let lab = SteeringCommandTests.labModel
    typealias Scratch = SteeringCommandTests.Scratch

    static func lines(_ path: String) throws -> [[String: Any]] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map { try SteeringCommandTests.jsonObject(String($0)) }
    }

    static func run(_ arguments: [String]) throws -> TillerProcess.Result {
        try SteeringCommandTests.ok(["eval"] + arguments + ["--backend", "cpu", "--max-new-tokens", "8"])
    }

    /// Each protocol on the lab model, unsteered and prompt-steered: every line holds the prompt, the
    /// response, the steering and the protocol's scores; the checkers' verdicts agree with the rule
    /// recomputed here for the instructions simple enough to restate.
    @Test func everyProtocolRunsOnTheLabModel() throws {
        let scratch = try Scratch()
        for proto in ["ifeval-format", "persona", "concept"] {
            let out = scratch.file("\(proto).jsonl")
            let result = try Self.run(["--protocol", proto, "--model", Self.lab, "--steer", "none", "--steer", "prompt",
                                       "--limit", "3", "--out", out])
            #expect(result.stdout.contains("coherence: proxy"), "\(result.stdout)")
            let lines = try Self.lines(out)
            #expect(lines.count == 6)
            #expect(Set(lines.compactMap { $0["steer_key"] as? String }) == ["none", "prompt"])
            for line in lines {
                let messages = try #require(line["messages"] as? [[String: String]])
                let response = try #require(line["response"] as? String)
                let scores = try #require(line["scores"] as? [String: Any])
                #expect(!messages.isEmpty && line["steer"] is [String: Any])
                let coherence = try #require(scores["coherence"] as? Double)
                #expect((0...100).contains(coherence))
                if let nll = line["mean_nll"] as? Double {
                    // The proxy's documented mapping.
                    #expect(abs(coherence - 100 * min(1, max(0, 1 - nll / log(1000.0)))) < 1e-9)
                }
                switch proto {
                case "ifeval-format":
                    let id = try #require(line["instruction_id"] as? String)
                    #expect(line["kwargs"] is [String: Any])
                    let pass = try #require(line["pass"] as? Bool)
                    if id == "punctuation:no_comma" { #expect(pass == !response.contains(",")) }
                    if id == "detectable_format:number_highlighted_sections" { #expect(pass == false || response.contains("*")) }
                    // The prompt-steered request carries the instruction, the bare one does not.
                    let asked = messages.last?["content"] ?? ""
                    #expect(asked.contains("sections") == (line["steer_key"] as? String == "prompt"))
                case "persona":
                    #expect(scores["trait"] is NSNull, "no judge: no trait score")
                    #expect(result.stdout.contains("trait: needs a judge"))
                    #expect((messages.first?["role"] == "system") == (line["steer_key"] as? String == "prompt"))
                default:
                    #expect(scores["aggregate"] is NSNull)
                    #expect(result.stdout.contains("need a judge"))
                }
            }
        }
    }

    /// The tiny llama (128 positions, a byte-level vocabulary) on IFEval's own layout: a line
    /// outside the format subset is skipped with a note, the steering file runs at each alpha, and
    /// the report holds the table and the curves over alpha.
    @Test func tinyCheckpointRunsIFEvalLayoutWithAFileAtSeveralAlphas() throws {
        let inputs = try ExtremeValueTests.Inputs()
        let prompts = inputs.scratch.file("input_data.jsonl")
        try ModelCommandTests.write([
            #"{"key": 1, "prompt": "Hi. No commas.", "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{"end_phrase": null}]}"#,
            #"{"key": 2, "prompt": "Hi. Say 9 words.", "instruction_id_list": ["length_constraints:number_words"], "kwargs": [{"num_words": 9, "relation": "at least"}]}"#,
            #"{"key": 3, "prompt": "Hi. Quote it.", "instruction_id_list": ["startend:quotation"], "kwargs": [{}]}"#,
        ], to: prompts)
        let out = inputs.scratch.file("results.jsonl"), report = inputs.scratch.file("report.html")
        let result = try Self.run(["--protocol", "ifeval-format", "--model", inputs.model.path, "--prompts", prompts,
                                   "--steer", "prompt", "--steer", inputs.steering, "--with-prompt", "--alpha", "0.5,2",
                                   "--out", out, "--report", report])
        #expect(result.stderr.contains("1 lines of \(prompts) use IFEval instructions outside the format subset"), "\(result.stderr)")
        let lines = try Self.lines(out)
        #expect(lines.count == 6)
        let alphas = lines.compactMap { ($0["steer"] as? [String: Any])?["alpha"] as? Double }
        #expect(alphas.sorted() == [0.5, 0.5, 2, 2])
        #expect(lines.allSatisfy { ($0["steer"] as? [String: Any])?["mode"] as? String != "file" || (($0["steer"] as? [String: Any])?["with_prompt"] as? Bool == true) })
        for line in lines where line["instruction_id"] as? String == "startend:quotation" {
            let text = (line["response"] as? String ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(line["pass"] as? Bool == (text.count > 1 && text.hasPrefix("\"") && text.hasSuffix("\"")))
        }
        let html = try String(contentsOfFile: report, encoding: .utf8)
        #expect(html.contains("<table>") && html.contains("<svg") && html.contains("Scores over alpha"))
        #expect(html.contains("coherence: proxy"))
    }

    /// A re-run resumes: lines already written stay byte for byte and are not generated again; a
    /// last line cut short is dropped and redone; a file of another protocol is refused.
    @Test func resumesFromTheResultsFile() throws {
        let scratch = try Scratch()
        let out = scratch.file("results.jsonl")
        let base = ["--protocol", "ifeval-format", "--model", Self.lab, "--steer", "none", "--out", out, "--progress"]
        _ = try Self.run(base + ["--limit", "2"])
        let first = try String(contentsOfFile: out, encoding: .utf8)
        let resumed = try Self.run(base + ["--limit", "4"])
        #expect(resumed.stderr.contains("(2 from the results file)"), "\(resumed.stderr)")
        #expect(resumed.stderr.contains("ETA"))
        let second = try String(contentsOfFile: out, encoding: .utf8)
        #expect(second.hasPrefix(first))
        #expect(try Self.lines(out).count == 4)
        // An interruption mid-line: half of the last line.
        let cut = String(second.dropLast(40))
        try cut.write(toFile: out, atomically: true, encoding: .utf8)
        let repaired = try Self.run(base + ["--limit", "4"])
        #expect(repaired.stderr.contains("(3 from the results file)"), "\(repaired.stderr)")
        #expect(try Self.lines(out).count == 4)
        #expect(try String(contentsOfFile: out, encoding: .utf8) == second, "greedy answers are the same when redone")
        try SteeringCommandTests.fails(["eval", "--protocol", "persona", "--model", Self.lab, "--steer", "none", "--out", out,
                                        "--limit", "1", "--backend", "cpu"],
                                       containing: [out, "protocol ifeval-format", "another --out"])
        // Other settings would mix two runs in one table.
        try SteeringCommandTests.fails(["eval"] + base + ["--limit", "4", "--max-new-tokens", "9", "--backend", "cpu"],
                                       containing: [out + ":1", "at most 8 new tokens", "asks 9"])
    }

    /// The report colours the answers a PSR head steered by its lambda_t.
    @Test func reportColoursTokensByLambda() throws {
        let lab = try SteeringCommandTests.lab()
        let psr = try #require(lab.files["psr"])
        let scratch = try Scratch()
        let report = scratch.file("report.html")
        _ = try Self.run(["--protocol", "concept", "--model", Self.lab, "--steer", psr, "--alpha", "0.5,1", "--limit", "2",
                          "--report", report])
        let html = try String(contentsOfFile: report, encoding: .utf8)
        #expect(html.contains("coloured by &lambda;<sub>t</sub> at layer 1"), "\(html.prefix(2000))")
        #expect(html.contains("title=\"lambda "))
        #expect(html.contains("<svg"))
    }

    @Test func badInputIsOneLine() throws {
        let scratch = try Scratch()
        let ifeval = scratch.file("ifeval.jsonl")
        try ModelCommandTests.write([#"{"key": 1, "prompt": "Hi.", "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]}"#], to: ifeval)
        let bad = scratch.file("bad.jsonl")
        try ModelCommandTests.write([#"{"key": 1, "prompt": "Hi.", "instruction_id_list": ["detectable_format:number_bullet_lists"], "kwargs": [{"num_bullets": "two"}]}"#], to: bad)
        let cases: [([String], [String])] = [
            (["--protocol", "ifeval-format", "--steer", "prompt", "--with-prompt"], ["--with-prompt"]),
            (["--protocol", "ifeval-format", "--steer", "none", "--alpha", "1"], ["--alpha"]),
            (["--protocol", "ifeval", "--steer", "none"], ["--protocol", "ifeval"]),
            (["--protocol", "persona"], ["--steer"]),
            (["--protocol", "persona", "--steer", "none", "--limit", "0"], ["--limit"]),
            (["--protocol", "persona", "--steer", scratch.file("missing.safetensors")], ["missing.safetensors"]),
            (["--protocol", "persona", "--steer", "none", "--prompts", scratch.file("missing.jsonl")], ["missing.jsonl"]),
            (["--protocol", "ifeval-format", "--steer", "none", "--prompts", ifeval], ["item 1", "--steer prompt"]),
            (["--protocol", "ifeval-format", "--steer", "prompt", "--prompts", bad], ["bad.jsonl:1", "num_bullets"]),
            (["--protocol", "ifeval-format", "--steer", "prompt", "--prompts", ifeval, "--out", ifeval], ["--prompts", "overwrite"]),
            (["--protocol", "persona", "--steer", "none", "--judge-url", "http://127.0.0.1:9"], ["--judge-model"]),
            (["--protocol", "persona", "--steer", "none", "--judge-url", "ftp://x", "--judge-model", "m"], ["--judge-url", "ftp://x"]),
        ]
        for (arguments, words) in cases {
            try SteeringCommandTests.fails(["eval"] + arguments + ["--model", Self.lab, "--backend", "cpu"], containing: words)
        }
    }
}

/// `tiller eval compare`: the table's matched points agree with the answers in the results file.
@Suite struct EvalCompareTests {
    @Test func tableAgreesWithTheResultsFile() throws {
        let lab = try SteeringCommandTests.lab()
        let psr = try #require(lab.files["psr"])
        let scratch = try SteeringCommandTests.Scratch()
        let out = scratch.file("results.jsonl")
        let result = try SteeringCommandTests.ok(["eval", "compare", "--protocol", "ifeval-format", "--model", EvalCommandTests.lab,
                                                  "--steer", psr, "--limit", "3", "--steps", "2", "--max-new-tokens", "8",
                                                  "--out", out, "--backend", "cpu"])
        let row = try #require(result.stdout.split(separator: "\n").first { $0.hasPrefix("psr.safetensors") })
        let cells = row.split(separator: " ").map(String.init)
        #expect(cells.count == 7, "\(row)")
        let lines = try EvalCommandTests.lines(out)
        func means(alpha: Double) -> (pass: Double, coherence: Double, count: Int) {
            let group = lines.filter { (($0["steer"] as? [String: Any])?["alpha"] as? Double) == alpha }
            let scores = group.compactMap { $0["scores"] as? [String: Any] }
            let pass = scores.compactMap { $0["pass"] as? Double }.reduce(0, +) / Double(max(1, scores.count))
            let coherence = scores.compactMap { $0["coherence"] as? Double }.reduce(0, +) / Double(max(1, scores.count))
            return (pass * 100, coherence, group.count)
        }
        // Every level's point: at its alpha, the file's answers give the printed score and coherence.
        for level in 0..<2 {
            let score = cells[1 + 3 * level], alpha = cells[2 + 3 * level], coherence = cells[3 + 3 * level]
            guard let a = Double(alpha) else { #expect(alpha == "none"); continue }
            let m = means(alpha: a)
            #expect(m.count == 3)
            #expect(String(format: "%.1f", m.pass) == score)
            #expect(String(format: "%.1f", m.coherence) == coherence)
        }
        #expect(means(alpha: 4).count == 3, "the bisection starts at --max-alpha")
        #expect(result.stdout.contains("none (unsteered)") && result.stdout.contains("prompt "))
    }
}
