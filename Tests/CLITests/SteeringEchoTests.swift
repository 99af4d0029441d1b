import Foundation
import Testing

/// What steering did, made visible: `generate` output lines echo the input line's id, the steering
/// applied and the seed; `steer export-gguf` says what llama.cpp will not do as Tiller did (layer
/// 0, the location); `analyze` shows the rendered prompts and a chat template's default system prompt.
@Suite struct SteeringEchoTests {
    typealias Scratch = SteeringCommandTests.Scratch
    @discardableResult
    static func ok(_ arguments: [String]) throws -> TillerProcess.Result { try SteeringCommandTests.ok(arguments) }
    static func object(_ text: String) throws -> [String: Any] { try SteeringCommandTests.jsonObject(text) }
    static func line(_ object: [String: Any]) throws -> String { try SteeringCommandTests.jsonLine(object) }

    /// A steering file's alpha and location as its metadata records them.
    static func recorded(_ path: String) throws -> (alpha: Double, location: String) {
        let meta = try SteeringCommandTests.Safetensors(path).metadata("tiller.steering")
        return (try #require(meta["alpha"] as? Double), try #require(meta["location"] as? String))
    }

    // MARK: generate

    /// A mixed batch: steered by a line's own file (named, with an alpha), by --steer (with
    /// --steer-location), by a mask, and unsteered; ids of several JSON types; a line's seed.
    @Test func outputLinesEchoIdSteeringAndSeed() throws {
        let lab = try SteeringCommandTests.lab()
        let dir = try Scratch()
        let dm = try #require(lab.files["diffmean"]), psr = try #require(lab.files["psr"])
        let question = try #require(lab.questions.first)
        let input: [[String: Any]] = [
            ["id": "first", "messages": question, "steer": "dm:2"],
            ["id": 7, "messages": question],
            ["messages": question, "steer": NSNull(), "seed": 5],
            ["id": ["k": [1, "x"]], "ids": [0, 3, 40, 41, 42], "steer": "dm", "location": ["mask": [0, 1, 0, 1, 1], "generated": false]],
        ]
        let prompts = dir.file("p.jsonl"), out = dir.file("out.jsonl")
        try (try input.map { try Self.line($0) }.joined(separator: "\n") + "\n").write(toFile: prompts, atomically: true, encoding: .utf8)
        try Self.ok(["generate", "--model", SteeringCommandTests.labModel, "--prompts", prompts, "--out", out, "--steer-file", "dm=\(dm)",
                     "--steer", psr, "--steer-location", "all", "--seed", "11", "--max-new-tokens", "4", "--backend", "cpu"])
        let lines = try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n").map { try Self.object(String($0)) }
        try #require(lines.count == input.count)

        let dmFile = try Self.recorded(dm), psrFile = try Self.recorded(psr)
        func steering(_ i: Int) -> [[String: Any]] { lines[i]["steering"] as? [[String: Any]] ?? [["missing": true]] }
        func same(_ a: Any?, _ b: Any) -> Bool { (a as? NSObject)?.isEqual(b) == true }

        #expect(lines[0]["id"] as? String == "first" && lines[0]["seed"] as? Int == 11)
        #expect(steering(0).count == 1 && steering(0)[0]["file"] as? String == "dm" && steering(0)[0]["alpha"] as? Double == 2
                && steering(0)[0]["location"] as? String == dmFile.location, "\(steering(0))")

        #expect(lines[1]["id"] as? Int == 7 && lines[1]["seed"] as? Int == 11)
        #expect(steering(1).count == 1 && steering(1)[0]["file"] as? String == psr && steering(1)[0]["alpha"] as? Double == psrFile.alpha
                && steering(1)[0]["location"] as? String == "all", "\(steering(1))")

        #expect(lines[2]["id"] == nil && lines[2]["seed"] as? Int == 5 && steering(2).isEmpty, "\(lines[2])")

        #expect(same(lines[3]["id"], ["k": [1, "x"]]), "\(String(describing: lines[3]["id"]))")
        #expect(steering(3).count == 1 && steering(3)[0]["file"] as? String == "dm" && steering(3)[0]["alpha"] as? Double == dmFile.alpha)
        #expect(same(steering(3).first?["location"], ["mask": [0, 1, 0, 1, 1], "generated": false]), "\(steering(3))")

        // The echo is a valid "steer" value: fed back without --steer, a line gets the same output.
        var again = input[1]
        again["steer"] = lines[1]["steering"]
        try (try Self.line(again) + "\n").write(toFile: prompts, atomically: true, encoding: .utf8)
        try Self.ok(["generate", "--model", SteeringCommandTests.labModel, "--prompts", prompts, "--out", out, "--seed", "11",
                     "--max-new-tokens", "4", "--backend", "cpu"])
        let replayed = try Self.object(try String(contentsOfFile: out, encoding: .utf8))
        #expect(replayed["completion"] as? String == lines[1]["completion"] as? String && same(replayed["ids"], lines[1]["ids"] as Any))
    }

    // MARK: export-gguf

    /// A file steering every layer of the tiny llama (0 and 1): refused without --drop-layer-0
    /// (one line naming the flag), exported with it (layer 1 only, bit for bit); a file at the
    /// fit's default location gets one line saying llama.cpp steers every position.
    @Test func exportDropsLayerZeroWhenAsked() throws {
        let model = try ModelCommandTests.ModelDir()
        let dir = try Scratch()
        let triplets = dir.file("triplets.jsonl")
        let lines = try (0..<4).map { k in
            try Self.line(["steered": [1, 100, 101, 40 + k, 41, 42], "unsteered": [1, 40 + k, 41, 42], "completion": [60 + k, 61, 62, 63]])
        }
        try (lines.joined(separator: "\n") + "\n").write(toFile: triplets, atomically: true, encoding: .utf8)
        let capture = dir.file("capture.safetensors")
        try Self.ok(["capture", "--model", model.path, "--triplets", triplets, "--layers", "all", "--out", capture, "--backend", "cpu"])
        let everyLayer = dir.file("all.safetensors"), answerOnly = dir.file("answer.safetensors")
        try Self.ok(["fit", "--method", "diffmean", "--capture", capture, "--layers", "all", "--location", "all", "--model", model.path,
                     "--out", everyLayer, "--backend", "cpu"])
        try Self.ok(["fit", "--method", "diffmean", "--capture", capture, "--layers", "1", "--model", model.path,
                     "--out", answerOnly, "--backend", "cpu"])
        #expect(try SteeringCommandTests.Safetensors(everyLayer).metadata("tiller.steering")["layers"] as? [Int] == [0, 1])

        let gguf = dir.file("all.gguf")
        try SteeringCommandTests.fails(["steer", "export-gguf", "--in", everyLayer, "--out", gguf], containing: [everyLayer, "layer 0", "--drop-layer-0"])
        #expect(!FileManager.default.fileExists(atPath: gguf))

        let export = try Self.ok(["steer", "export-gguf", "--in", everyLayer, "--out", gguf, "--drop-layer-0"])
        let notes = export.stderr.split(separator: "\n").filter { $0.hasPrefix("note:") }
        #expect(notes.count == 1 && notes[0].contains("dropped layer 0"), "location all: only the dropped layer is noted: \(export.stderr)")
        #expect(export.stdout.contains("1 direction (layers 1)"), "\(export.stdout)")
        let back = dir.file("back.safetensors")
        try Self.ok(["steer", "import-gguf", "--in", gguf, "--model", model.path, "--out", back])
        let original = try SteeringCommandTests.Safetensors(everyLayer), imported = try SteeringCommandTests.Safetensors(back)
        #expect(try imported.metadata("tiller.steering")["layers"] as? [Int] == [1])
        #expect(try imported.raw("layers.1.z") == original.raw("layers.1.z"), "layer 1 read back bit for bit (alpha 1)")

        let located = try Self.ok(["steer", "export-gguf", "--in", answerOnly, "--out", dir.file("answer.gguf")])
        let locationNotes = located.stderr.split(separator: "\n").filter { $0.contains("every position") }
        #expect(locationNotes.count == 1 && locationNotes[0].hasPrefix("note:") && locationNotes[0].contains("answer_only")
                && locationNotes[0].contains("--location all") && locationNotes[0].contains("--steer-location all"), "\(located.stderr)")
    }

    // MARK: analyze

    static func escaped(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
            .replacingOccurrences(of: "\"", with: "&quot;").replacingOccurrences(of: "'", with: "&#39;")
    }

    /// The tiny llama with Qwen2's ChatML template, which writes a default system prompt into x:
    /// the report shows x' and x as transformers renders them (escaped) and says what Delta_PS
    /// then compares; without --model it says how to see them.
    @Test func reportShowsRenderedPromptsAndTheDefaultSystemPrompt() throws {
        let model = try ModelCommandTests.ModelDir()
        let template = try ModelViewTests.json(ModelViewTests.fixtures.appendingPathComponent("chat/qwen2/tokenizer_config.json").path)
        let config: [String: Any] = ["bos_token": NSNull(), "eos_token": "<|endoftext|>", "chat_template": try #require(template["chat_template"] as? String)]
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: model.file("tokenizer_config.json")))

        // (x', x), short enough for the fixture's 128 positions.
        let pairs = [("system_user/gen", "single_user/gen"), ("system_user/gen", "empty_content/gen")]
        let renders = try pairs.map { (try ModelViewTests.transformersRender(family: "qwen2", name: $0.0), try ModelViewTests.transformersRender(family: "qwen2", name: $0.1)) }
        let dir = try Scratch()
        let triplets = dir.file("triplets.jsonl"), capture = dir.file("capture.safetensors"), report = dir.file("report.html")
        let lines = try renders.map { try Self.line(["steered": $0.0.messages, "unsteered": $0.1.messages, "completion": "ok."]) }
        try (lines.joined(separator: "\n") + "\n").write(toFile: triplets, atomically: true, encoding: .utf8)
        try Self.ok(["capture", "--model", model.path, "--triplets", triplets, "--layers", "1", "--out", capture, "--backend", "cpu"])

        let result = try Self.ok(["analyze", "--capture", capture, "--model", model.path, "--out", report, "--backend", "cpu"])
        let html = try String(contentsOfFile: report, encoding: .utf8)
        for (steered, unsteered) in renders {
            #expect(html.contains(Self.escaped(steered.text)), "x' of \(steered.messages) as transformers renders it")
            #expect(html.contains(Self.escaped(unsteered.text)), "x of \(unsteered.messages) as transformers renders it")
        }
        #expect(!html.contains("<|im_start|>"), "every rendered prompt is escaped")
        #expect(html.contains("Default system prompt") && html.contains(Self.escaped("\"You are a helpful assistant.\""))
                && html.contains("2 of 2 triplets"), "the note")
        let notes = result.stderr.split(separator: "\n").filter { $0.hasPrefix("note:") && $0.contains("default system prompt") }
        #expect(notes.count == 1, "\(result.stderr)")

        // Without --model the report cannot render the prompts, and says so.
        try Self.ok(["analyze", "--capture", capture, "--out", report, "--backend", "cpu"])
        let bare = try String(contentsOfFile: report, encoding: .utf8)
        #expect(bare.contains("with --model") && !bare.contains("Default system prompt"))
    }
}
