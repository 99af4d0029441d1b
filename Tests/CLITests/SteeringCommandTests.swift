import Foundation
import Testing

/// The steering commands run as a user runs them: `tiller lab corpus` -> `capture` -> `analyze` ->
/// `fit` (every method) -> `generate --steer`, `steer export-gguf` / `import-gguf`, and the refusals
/// and bad input of docs/steering.md. On the built-in lab model (text, chat templates) and on the
/// tiny llama parity checkpoint (token ids; its directory gets the byte-level tokenizer of
/// `ModelCommandTests.ModelDir`, as it ships none). Counts are small: the whole suite runs in
/// seconds in a debug build.
@Suite struct SteeringCommandTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let labModel = repository.appendingPathComponent("Sources/TillerLab/Resources/tiller-lab").path
    static let labHiddenSize = 192

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// A temporary directory, removed when the object goes away.
    final class Scratch {
        let path: String
        init() throws {
            path = FileManager.default.temporaryDirectory.appendingPathComponent("tiller-steer-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        }
        func file(_ name: String) -> String { path + "/" + name }
        deinit { try? FileManager.default.removeItem(atPath: path) }
    }

    /// Runs `tiller`, requiring exit status 0.
    @discardableResult
    static func ok(_ arguments: [String]) throws -> TillerProcess.Result {
        let result = try TillerProcess.run(arguments)
        guard result.status == 0 else {
            throw Failure(description: "tiller \(arguments.joined(separator: " ")) exited with \(result.status): \(result.stderr)")
        }
        return result
    }

    /// Runs `tiller` expecting a non-zero exit and exactly one `Error:` line holding every word.
    static func fails(_ arguments: [String], containing words: [String], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let result = try TillerProcess.run(arguments)
        ModelCommandTests.expectOneLineError(result, containing: words, sourceLocation: sourceLocation)
    }

    // MARK: Reading what the commands write

    /// A safetensors file read back by hand: the header and any tensor's bytes.
    struct Safetensors {
        let header: [String: Any]
        let data: Data
        let base: Int

        init(_ path: String) throws {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
            let n = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
            header = try #require(try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + n))) as? [String: Any])
            base = 8 + n
        }

        func entry(_ name: String) throws -> [String: Any] { try #require(header[name] as? [String: Any], "no tensor \(name)") }
        func shape(_ name: String) throws -> [Int] { try #require(try entry(name)["shape"] as? [Int]) }
        func raw(_ name: String) throws -> Data {
            let offsets = try #require(try entry(name)["data_offsets"] as? [Int])
            return data.subdata(in: (base + offsets[0])..<(base + offsets[1]))
        }
        func int32s(_ name: String) throws -> [Int32] {
            try raw(name).withUnsafeBytes { b in (0..<(b.count / 4)).map { Int32(littleEndian: b.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self)) } }
        }
        /// A JSON object stored as a string in `__metadata__`.
        func metadata(_ key: String) throws -> [String: Any] {
            let text = try #require((header["__metadata__"] as? [String: String])?[key], "no __metadata__ key \(key)")
            return try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        }
        /// The byte offset in the file of element `index` of an F32 tensor.
        func offset(_ name: String, element index: Int) throws -> Int {
            base + (try #require(try entry(name)["data_offsets"] as? [Int]))[0] + 4 * index
        }
    }

    /// "layer L: relative RMSE X ..." lines of `tiller fit`.
    static func fitRMSE(_ stdout: String) -> [Int: Double] {
        var out: [Int: Double] = [:]
        for line in stdout.split(separator: "\n") where line.hasPrefix("layer ") {
            let words = line.split(separator: " ")
            if words.count > 4, let layer = Int(words[1].dropLast()), let value = Double(words[4]) { out[layer] = value }
        }
        return out
    }

    static func jsonObject(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    static func jsonLine(_ object: [String: Any]) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
    }

    /// `tiller analyze --json` per layer: the counts equal the capture's rows by role, the
    /// quantiles are ordered, and the ratios agree with them.
    static func checkStatistics(_ report: [String: Any], capture: Safetensors, layers: [Int],
                                sourceLocation: SourceLocation = #_sourceLocation) throws {
        let roles = try capture.int32s("role")
        let expected = ["all": roles.count, "prompt": roles.filter { $0 != 2 }.count,
                        "answer": roles.filter { $0 == 2 }.count, "last_prompt": roles.filter { $0 == 1 }.count]
        let perLayer = try #require(report["layers"] as? [[String: Any]])
        #expect(perLayer.compactMap { $0["layer"] as? Int } == layers, sourceLocation: sourceLocation)
        for stats in perLayer {
            for (group, count) in expected {
                let s = try #require(stats[group] as? [String: Any], "no \(group) statistics")
                #expect(s["count"] as? Int == count, "layer \(stats["layer"] ?? "?") \(group): \(s)", sourceLocation: sourceLocation)
                guard count > 0 else { continue }
                let q = try ["p10", "p50", "p90", "p99", "max"].map { try #require(s[$0] as? Double, "\(group) \($0)") }
                #expect(q[0] >= 0 && zip(q, q.dropFirst()).allSatisfy { $0 <= $1 }, "quantiles out of order: \(q)", sourceLocation: sourceLocation)
                let mean = try #require(s["mean"] as? Double)
                #expect(mean >= q[0] * 0.999 && mean <= q[4] * 1.001, "mean \(mean) outside [p10, max] \(q)", sourceLocation: sourceLocation)
                let half = try #require(s["half_mass_share"] as? Double)
                #expect(half > 0 && half <= 0.5 + 1 / Double(count), "half-mass share \(half)", sourceLocation: sourceLocation)
                if q[1] > 0, let ratio = s["max_over_median"] as? Double {
                    #expect(abs(ratio - q[4] / q[1]) <= 1e-6 * ratio, "max/median \(ratio) vs \(q[4] / q[1])", sourceLocation: sourceLocation)
                }
            }
        }
    }

    /// Runs `tiller generate` on all `lines` at once and on each line alone (same flags), and
    /// returns both outputs, line by line.
    static func generateMixedAndAlone(model: String, lines: [String], flags: [String], in dir: Scratch,
                                      name: String) throws -> (mixed: [String], alone: [String]) {
        func generate(_ lines: [String], _ tag: String) throws -> [String] {
            let prompts = dir.file("\(name)-\(tag).jsonl"), out = dir.file("\(name)-\(tag).out.jsonl")
            try (lines.joined(separator: "\n") + "\n").write(toFile: prompts, atomically: true, encoding: .utf8)
            try ok(["generate", "--model", model, "--prompts", prompts, "--out", out, "--backend", "cpu"] + flags)
            return try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n").map(String.init)
        }
        let mixed = try generate(lines, "mixed")
        let alone = try lines.indices.map { try generate([lines[$0]], "line\($0)").first ?? "" }
        return (mixed, alone)
    }

    // MARK: The lab model, shared by the tests

    /// Made once for the suite: a lab corpus, the triplets of 20 training lines of its most
    /// frequent concept, a capture of them at layers 1 and 2, and one steering file per method.
    final class Lab {
        let dir: Scratch
        let concept: String
        let steeringPrompt: String
        /// Held-out questions (the unsteered prompt's messages without the answer).
        let questions: [[[String: String]]]
        let triplets: String
        let capture: String
        let captureLog: String
        /// Method -> steering file (layers 1 and 2) and what `tiller fit` printed.
        var files: [String: String] = [:]
        var fitOutput: [String: String] = [:]
        static let methods = ["diffmean", "pca", "stolfo", "psr"]
        static var directory: String?

        init() throws {
            dir = try Scratch()
            // The shared instance lives until the process ends, so its directory goes then.
            Self.directory = dir.path
            atexit { if let path = Lab.directory { try? FileManager.default.removeItem(atPath: path) } }
            let corpus = dir.file("corpus")
            try ok(["lab", "corpus", "--seed", "1", "--out", corpus, "--train", "1000", "--heldout", "50"])
            func lines(_ name: String) throws -> [[String: Any]] {
                try String(contentsOfFile: corpus + "/" + name, encoding: .utf8).split(separator: "\n").map { try jsonObject(String($0)) }
            }
            let concepts = try lines("train.jsonl").filter { $0["kind"] as? String == "concept" }
            var counts: [String: Int] = [:]
            for line in concepts { counts[line["concept"] as? String ?? "", default: 0] += 1 }
            let concept = try #require(counts.max { ($0.value, $1.key) < ($1.value, $0.key) }?.key)
            self.concept = concept
            let chosen = Array(concepts.filter { $0["concept"] as? String == concept }.prefix(20))
            #expect(chosen.count == 20)
            steeringPrompt = try #require(chosen.first?["steering_prompt"] as? String)
            triplets = dir.file("triplets.jsonl")
            try (try chosen.map { try jsonLine($0) }.joined(separator: "\n") + "\n").write(toFile: triplets, atomically: true, encoding: .utf8)
            questions = try lines("heldout.jsonl").filter { $0["kind"] as? String == "concept" }.prefix(2).map { line in
                let messages = try #require(line["unsteered_messages"] as? [[String: String]])
                return Array(messages.dropLast())
            }

            capture = dir.file("capture.safetensors")
            captureLog = try ok(["capture", "--model", labModel, "--triplets", triplets, "--layers", "1,2", "--out", capture,
                                 "--backend", "cpu"]).stderr
            for method in Self.methods {
                let out = dir.file("\(method).safetensors")
                let result = try ok(["fit", "--method", method, "--capture", capture, "--layers", "1,2", "--model", labModel,
                                     "--out", out, "--steps", "200", "--backend", "cpu"])
                files[method] = out
                fitOutput[method] = result.stdout
            }
        }
    }

    static let shared = Result { try Lab() }
    static func lab() throws -> Lab { try shared.get() }

    // MARK: capture -> analyze

    @Test func captureAndAnalyzeOnTheLabModel() throws {
        let lab = try Self.lab()
        let capture = try Safetensors(lab.capture)
        let info = try capture.metadata("tiller.capture")
        let rows = try #require(info["rows"] as? Int)
        #expect(info["layers"] as? [Int] == [1, 2] && info["triplets"] as? Int == 20 && info["hidden_size"] as? Int == Self.labHiddenSize)
        #expect(lab.captureLog.contains("capturing \(rows) rows from 20 triplets"), "\(lab.captureLog)")
        for name in ["tokens", "example", "position", "role"] { #expect(try capture.shape(name) == [rows]) }
        for layer in [1, 2] {
            #expect(try capture.shape("layers.\(layer).h") == [rows, Self.labHiddenSize])
            #expect(try capture.shape("layers.\(layer).delta") == [rows, Self.labHiddenSize])
        }
        let roles = try capture.int32s("role")
        #expect(roles.filter { $0 == 1 }.count == 20, "one last prompt token per triplet")
        #expect(roles.filter { $0 == 2 }.count > 20 * 5, "the answers are captured")
        let examples = try capture.int32s("example")
        #expect(examples.first == 0 && examples.last == 19 && zip(examples, examples.dropFirst()).allSatisfy { $0 <= $1 })

        let report = lab.dir.file("report.html")
        let result = try Self.ok(["analyze", "--capture", lab.capture, "--model", Self.labModel, "--out", report, "--json",
                                  "--backend", "cpu"])
        let json = try Self.jsonObject(result.stdout)
        let summary = try #require(json["capture"] as? [String: Any])
        #expect(summary["rows"] as? Int == rows && summary["triplets"] as? Int == 20)
        try Self.checkStatistics(json, capture: capture, layers: [1, 2])
        let html = try String(contentsOfFile: report, encoding: .utf8)
        #expect(html.hasPrefix("<!DOCTYPE html>") || html.lowercased().hasPrefix("<!doctype html>"))
        #expect(html.contains("<svg") && !html.contains("<script"))
        #expect(html.contains(lab.concept) || html.contains("reminds"), "the report shows the answers' tokens")
    }

    // MARK: fit

    @Test func everyMethodFitsAndRecordsTheModel() throws {
        let lab = try Self.lab()
        let captureModel = try #require(try Safetensors(lab.capture).metadata("tiller.capture")["model"] as? [String: Any])
        var rmse: [String: [Int: Double]] = [:]
        for method in Lab.methods {
            let output = try #require(lab.fitOutput[method])
            rmse[method] = Self.fitRMSE(output)
            #expect(rmse[method]?.keys.sorted() == [1, 2], "\(method): \(output)")
            #expect(rmse[method]!.values.allSatisfy { $0.isFinite && $0 >= 0 }, "\(method): \(output)")
            let file = try Safetensors(try #require(lab.files[method]))
            let meta = try file.metadata("tiller.steering")
            #expect(meta["method"] as? String == method && meta["layers"] as? [Int] == [1, 2])
            #expect(meta["location"] as? String == "answer_only" && meta["hook_point"] as? String == "residual_post_block")
            let model = try #require(meta["model"] as? [String: Any])
            #expect(model["weights_header_hash"] as? String == captureModel["weights_header_hash"] as? String)
            #expect(model["hidden_size"] as? Int == Self.labHiddenSize && model["layer_count"] as? Int == 4)
            for layer in [1, 2] { #expect(try file.shape("layers.\(layer).z") == [Self.labHiddenSize]) }
            let fit = try file.metadata("tiller.fit")
            #expect(fit["rows"] as? String == "answer" && fit["capture"] as? String == "capture.safetensors")
        }
        for layer in [1, 2] {
            // A constant's least-squares best (DiffMean) and the best multiple of a direction (PCA)
            // are never worse than nothing; the PSR fit starts at DiffMean and keeps its best step.
            #expect(rmse["diffmean"]![layer]! <= 1 + 1e-6 && rmse["pca"]![layer]! <= 1 + 1e-6, "\(rmse)")
            #expect(rmse["psr"]![layer]! <= rmse["diffmean"]![layer]! + 1e-4, "\(rmse)")
        }
    }

    /// The relative RMSE `tiller fit` prints (the head applied to the captured h) equals the one
    /// `tiller analyze` measures by replaying the file through the model (the steering hook): the
    /// capture, the fit and steered generation agree on what the file does.
    @Test func fitAndReplayAgree() throws {
        let lab = try Self.lab()
        var printed: [String: Double] = [:], files: [String] = []
        for method in ["diffmean", "psr"] {
            let out = lab.dir.file("\(method)-all-rows.safetensors")
            let result = try Self.ok(["fit", "--method", method, "--capture", lab.capture, "--layer", "1", "--rows", "all",
                                      "--location", "all", "--model", Self.labModel, "--out", out, "--steps", "200", "--backend", "cpu"])
            printed[out] = Self.fitRMSE(result.stdout)[1]
            #expect(printed[out] != nil, "\(result.stdout)")
            files.append(out)
        }
        let result = try Self.ok(["analyze", "--capture", lab.capture, "--model", Self.labModel, "--json", "--backend", "cpu"]
                                 + files.flatMap { ["--steer", $0] })
        let replays = try #require(try Self.jsonObject(result.stdout)["steering"] as? [[String: Any]])
        #expect(replays.count == 2)
        for replay in replays {
            let file = try #require(replay["file"] as? String)
            let layers = try #require(replay["layers"] as? [[String: Any]])
            let layer1 = try #require(layers.first { $0["layer"] as? Int == 1 })
            let replayed = try #require(layer1["relative_rmse"] as? Double)
            let fitted = try #require(printed[file])
            #expect(abs(replayed - fitted) < 1e-3, "\(file): fit \(fitted), replay \(replayed)")
            // Layer 2 lies above the head: replayed, not fitted; it must still be measured.
            #expect((layers.first { $0["layer"] as? Int == 2 }?["relative_rmse"] as? Double)?.isFinite == true)
        }
    }

    // MARK: generate --steer

    /// One batch mixing unsteered, DiffMean (named, with an alpha), PSR (a path with :ALPHA),
    /// Stolfo (an object), prompt-steered, and prompt-steered with PCA stacked on it: every line's
    /// output equals running that line alone.
    @Test func mixedBatchEqualsEachLineAlone() throws {
        let lab = try Self.lab()
        let dir = try Scratch()
        let question = try #require(lab.questions.first), other = try #require(lab.questions.last)
        let prompted = [["role": "system", "content": lab.steeringPrompt]] + question
        let lines = try [
            Self.jsonLine(["messages": question]),
            Self.jsonLine(["messages": question, "steer": "dm", "alpha": 4]),
            Self.jsonLine(["messages": other, "steer": "\(lab.files["psr"]!):3"]),
            Self.jsonLine(["messages": question, "steer": ["file": lab.files["stolfo"]!, "alpha": 0.5, "location": "all"]]),
            Self.jsonLine(["messages": prompted]),
            Self.jsonLine(["messages": prompted, "steer": ["dm:2", lab.files["pca"]!]]),
            Self.jsonLine(["messages": other]),
        ]
        let flags = ["--steer-file", "dm=\(lab.files["diffmean"]!)", "--max-new-tokens", "24"]
        let (mixed, alone) = try Self.generateMixedAndAlone(model: Self.labModel, lines: lines, flags: flags, in: dir, name: "lab")
        #expect(mixed.count == lines.count)
        for i in lines.indices {
            #expect(mixed[i] == alone[i], "line \(i + 1) in the batch:\n\(mixed[i])\nalone:\n\(alone[i])")
        }
        // Across lines, the generated tokens (each output line also echoes its own steering).
        func generated(_ line: String) throws -> String {
            let object = try Self.jsonObject(line)
            return "\(object["completion"] ?? "-") \(object["ids"] ?? "-")"
        }
        #expect(try generated(mixed[1]) != generated(mixed[0]), "DiffMean at alpha 4 changes the answer")
        #expect(try generated(mixed[4]) != generated(mixed[0]), "the steering prompt changes the answer")

        // --steer FILE:ALPHA for the run; "steer": null leaves a line unsteered.
        let runLines = try [
            Self.jsonLine(["messages": question]),
            Self.jsonLine(["messages": question, "steer": NSNull()]),
            Self.jsonLine(["messages": other, "steer": "\(lab.files["psr"]!):2"]),
        ]
        let run = try Self.generateMixedAndAlone(model: Self.labModel, lines: runLines,
                                                 flags: ["--steer", "\(lab.files["diffmean"]!):4", "--max-new-tokens", "24"],
                                                 in: dir, name: "run")
        for i in runLines.indices { #expect(run.mixed[i] == run.alone[i], "line \(i + 1): \(run.mixed[i]) vs \(run.alone[i])") }
        #expect(run.mixed[1] == mixed[0], "\"steer\": null is the unsteered answer")
        #expect(try generated(run.mixed[0]) == generated(mixed[1]), "--steer FILE:4 equals the line's own \"steer\" at alpha 4")
    }

    // MARK: control vectors

    @Test func ggufRoundTrip() throws {
        let lab = try Self.lab()
        let dir = try Scratch()
        let original = try #require(lab.files["diffmean"])
        let gguf = dir.file("diffmean.gguf"), back = dir.file("back.safetensors")
        let export = try Self.ok(["steer", "export-gguf", "--in", original, "--out", gguf])
        #expect(export.stdout.contains("2 directions (layers 1,2)") && export.stdout.contains("model hint llama"), "\(export.stdout)")
        #expect(export.stderr.contains("location answer_only"), "the dropped location is noted: \(export.stderr)")
        let bytes = try Data(contentsOf: URL(fileURLWithPath: gguf))
        #expect(bytes.prefix(4) == Data("GGUF".utf8))
        try Self.ok(["steer", "import-gguf", "--in", gguf, "--model", Self.labModel, "--out", back])

        let a = try Safetensors(original), b = try Safetensors(back)
        for layer in [1, 2] {
            #expect(try a.raw("layers.\(layer).z") == b.raw("layers.\(layer).z"), "direction.\(layer) is layer \(layer), bit for bit")
        }
        let meta = try b.metadata("tiller.steering")
        #expect(meta["method"] as? String == "diffmean" && meta["layers"] as? [Int] == [1, 2] && meta["location"] as? String == "all")
        #expect((meta["activations"] as? [String]) == ["constant", "constant"])
        #expect(try (b.metadata("tiller.steering")["model"] as? [String: Any])?["weights_header_hash"] as? String
                == (a.metadata("tiller.steering")["model"] as? [String: Any])?["weights_header_hash"] as? String)

        // Steering with the imported file is steering with the original at every position.
        let question = try #require(lab.questions.first)
        let prompts = dir.file("p.jsonl")
        try (try Self.jsonLine(["messages": question]) + "\n").write(toFile: prompts, atomically: true, encoding: .utf8)
        var outputs: [String] = []
        for (file, location) in [(original, ["--steer-location", "all"]), (back, []), (gguf, [])] {
            let out = dir.file("out-\(outputs.count).jsonl")
            try Self.ok(["generate", "--model", Self.labModel, "--prompts", prompts, "--out", out, "--steer", "\(file):3",
                         "--max-new-tokens", "16", "--backend", "cpu"] + location)
            // The completion and ids (each line also echoes its own file name and location).
            let line = try Self.jsonObject(try String(contentsOfFile: out, encoding: .utf8))
            outputs.append("\(line["completion"] ?? "-") \(line["ids"] ?? "-")")
        }
        #expect(outputs[0] == outputs[1] && outputs[1] == outputs[2], "\(outputs)")

        // `tiller analyze --steer` reads the control vector as the imported file: the same replay.
        let analysis = try Self.ok(["analyze", "--capture", lab.capture, "--model", Self.labModel, "--steer", gguf, "--steer", back,
                                    "--json", "--backend", "cpu"])
        let replays = try #require(try Self.jsonObject(analysis.stdout)["steering"] as? [[String: Any]])
        let rmse = replays.map { ($0["layers"] as? [[String: Any]] ?? []).compactMap { $0["relative_rmse"] as? Double } }
        #expect(rmse.count == 2 && rmse[0].count == 2 && rmse[0] == rmse[1], "\(rmse)")
        #expect(replays.first?["method"] as? String == "diffmean" && replays.first?["location"] as? String == "all")

        // Only constant heads export.
        try Self.fails(["steer", "export-gguf", "--in", lab.files["psr"]!, "--out", dir.file("psr.gguf")],
                       containing: [lab.files["psr"]!, "relu", "constant"])
        #expect(!FileManager.default.fileExists(atPath: dir.file("psr.gguf")))
    }

    // MARK: the tiny llama parity checkpoint, with token ids

    /// capture (ids, one y' sampled) -> analyze -> fit (every method, every layer) -> a mixed
    /// batch of id prompts, sampled, equal to each line alone.
    @Test func tinyLlamaPipelineWithIDs() throws {
        let model = try ModelCommandTests.ModelDir()
        let dir = try Scratch()
        let triplets = dir.file("triplets.jsonl")
        var lines: [String] = []
        for k in 0..<6 {
            let question = (0..<(3 + k % 3)).map { 40 + 7 * k + $0 }
            var triplet: [String: Any] = ["steered": [1, 100, 101, 102 + k % 2] + question, "unsteered": [1] + question]
            if k < 5 { triplet["completion"] = (0..<(4 + k)).map { 60 + 3 * k + $0 } }
            lines.append(try Self.jsonLine(triplet))
        }
        try (lines.joined(separator: "\n") + "\n").write(toFile: triplets, atomically: true, encoding: .utf8)
        let capture = dir.file("capture.safetensors")
        let log = try Self.ok(["capture", "--model", model.path, "--triplets", triplets, "--layers", "all", "--out", capture,
                               "--sample-max-new-tokens", "5", "--backend", "cpu"]).stderr
        #expect(log.contains("sampling y' for 1 triplet"), "\(log)")
        let file = try Safetensors(capture)
        #expect(try file.metadata("tiller.capture")["layers"] as? [Int] == [0, 1])
        #expect(try file.int32s("role").filter { $0 == 1 }.count == 6)

        let analysis = try Self.ok(["analyze", "--capture", capture, "--json", "--backend", "cpu"])
        try Self.checkStatistics(try Self.jsonObject(analysis.stdout), capture: file, layers: [0, 1])

        var steering: [String: String] = [:]
        for method in Lab.methods {
            let out = dir.file("\(method).safetensors")
            let result = try Self.ok(["fit", "--method", method, "--capture", capture, "--layers", "all", "--rows", "all",
                                      "--location", "all", "--model", model.path, "--out", out, "--steps", "100", "--backend", "cpu"])
            #expect(Self.fitRMSE(result.stdout).keys.sorted() == [0, 1], "\(method): \(result.stdout)")
            steering[method] = out
        }

        let prompts = try [
            Self.jsonLine(["ids": [1, 40, 41, 42]]),
            Self.jsonLine(["ids": [1, 40, 41, 42], "steer": steering["diffmean"]!, "alpha": 2]),
            Self.jsonLine(["ids": [1, 100, 101, 102, 40, 41, 42]]),
            Self.jsonLine(["ids": [1, 47, 48], "steer": "\(steering["psr"]!):1.5"]),
            Self.jsonLine(["ids": [1, 47, 48], "steer": [steering["stolfo"]!, "\(steering["pca"]!):-1"], "seed": 9]),
            Self.jsonLine(["ids": [1, 100, 101, 102, 47, 48], "steer": steering["diffmean"]!,
                           "location": ["mask": [0, 0, 0, 0, 1, 1], "generated": false]]),
        ]
        let (mixed, alone) = try Self.generateMixedAndAlone(model: model.path, lines: prompts,
                                                            flags: ["--max-new-tokens", "12", "--temperature", "0.8", "--seed", "3"],
                                                            in: dir, name: "tiny")
        #expect(mixed.count == prompts.count)
        for i in prompts.indices { #expect(mixed[i] == alone[i], "line \(i + 1): \(mixed[i]) vs \(alone[i])") }
    }

    // MARK: refusals

    /// A file made for another model is refused with one line naming both: the lab model's
    /// DiffMean file on the tiny llama (hidden size), and a tiny llama file on the same
    /// checkpoint saved in bf16 (same shapes, another weights header).
    @Test func refusesFilesMadeForAnotherModel() throws {
        let lab = try Self.lab()
        let tiny = try ModelCommandTests.ModelDir()
        let dir = try Scratch()
        let prompts = dir.file("ids.jsonl")
        try "{\"ids\": [1, 5, 9]}\n".write(toFile: prompts, atomically: true, encoding: .utf8)
        let labFile = try #require(lab.files["diffmean"])
        let both = ["hidden size \(Self.labHiddenSize)", "hidden size 64"]
        try Self.fails(["generate", "--model", tiny.path, "--prompts", prompts, "--out", dir.file("o.jsonl"), "--steer", labFile,
                        "--backend", "cpu"], containing: [labFile] + both)
        // The same through a line's own "steer".
        let own = dir.file("own.jsonl")
        try "{\"ids\": [1, 5, 9], \"steer\": \"\(labFile)\"}\n".write(toFile: own, atomically: true, encoding: .utf8)
        try Self.fails(["generate", "--model", tiny.path, "--prompts", own, "--out", dir.file("o.jsonl"), "--backend", "cpu"],
                       containing: [own + ":1", labFile] + both)
        try Self.fails(["fit", "--method", "diffmean", "--capture", lab.capture, "--layer", "1", "--model", tiny.path,
                        "--out", dir.file("f.safetensors"), "--backend", "cpu"], containing: [lab.capture] + both)
        let gguf = dir.file("lab.gguf")
        try Self.ok(["steer", "export-gguf", "--in", labFile, "--out", gguf])
        try Self.fails(["steer", "import-gguf", "--in", gguf, "--model", tiny.path, "--out", dir.file("g.safetensors")],
                       containing: [gguf, "n_embd \(Self.labHiddenSize)", "hidden size 64"])
        try Self.fails(["analyze", "--capture", lab.capture, "--model", tiny.path, "--backend", "cpu"], containing: [lab.capture, tiny.path])

        // Same shapes, another checkpoint: the weights header hashes differ.
        let triplets = dir.file("t.jsonl")
        try "{\"steered\": [1, 100, 40, 41], \"unsteered\": [1, 40, 41], \"completion\": [50, 51, 52]}\n"
            .write(toFile: triplets, atomically: true, encoding: .utf8)
        let capture = dir.file("tiny.safetensors"), tinyFile = dir.file("tiny-dm.safetensors")
        try Self.ok(["capture", "--model", tiny.path, "--triplets", triplets, "--layers", "1", "--out", capture, "--backend", "cpu"])
        try Self.ok(["fit", "--method", "diffmean", "--capture", capture, "--layer", "1", "--model", tiny.path, "--out", tinyFile,
                     "--backend", "cpu"])
        let tinyHash = try #require((try Safetensors(tinyFile).metadata("tiller.steering")["model"] as? [String: Any])?["weights_header_hash"] as? String)
        let bf16 = try ModelCommandTests.ModelDir(architecture: "llama-bf16")
        let result = try TillerProcess.run(["generate", "--model", bf16.path, "--prompts", prompts, "--out", dir.file("o.jsonl"),
                                            "--steer", tinyFile, "--backend", "cpu"])
        ModelCommandTests.expectOneLineError(result, containing: [tinyFile, "another model", tinyHash])
        let hashes = Set(result.stderr.split(separator: " ").filter { $0.contains("fnv1a64:") }
            .map { $0.trimmingCharacters(in: CharacterSet(charactersIn: ";,.()")) })
        #expect(hashes.count == 2, "both fingerprints named: \(result.stderr)")
        try Self.fails(["fit", "--method", "diffmean", "--capture", capture, "--layer", "1", "--model", bf16.path,
                        "--out", dir.file("f.safetensors"), "--backend", "cpu"], containing: [capture, "another model", tinyHash])
    }

    // MARK: bad input: one line, non-zero exit, never a crash

    @Test func badInputIsOneLineError() throws {
        let lab = try Self.lab()
        let dir = try Scratch()
        let prompts = dir.file("p.jsonl")
        try "{\"prompt\": \"hello\"}\n".write(toFile: prompts, atomically: true, encoding: .utf8)
        func generate(steer: String) -> [String] {
            ["generate", "--model", Self.labModel, "--prompts", prompts, "--out", dir.file("o.jsonl"), "--steer", steer, "--backend", "cpu"]
        }

        // Malformed GGUF: an absurd tensor count, truncations of a valid file, text.
        let valid = dir.file("valid.gguf")
        try Self.ok(["steer", "export-gguf", "--in", lab.files["diffmean"]!, "--out", valid])
        let bytes = try Data(contentsOf: URL(fileURLWithPath: valid))
        var bad: [(String, Data)] = [("absurd.gguf", Data("GGUF".utf8) + Data([3, 0, 0, 0] + [UInt8](repeating: 0xFF, count: 7) + [0x7F]))]
        for n in [3, 12, 40, bytes.count / 2, bytes.count - 1] { bad.append(("cut\(n).gguf", bytes.prefix(n))) }
        bad.append(("text.gguf", Data("direction.1 = [1, 2, 3]\n".utf8)))
        for (name, data) in bad {
            let path = dir.file(name)
            try data.write(to: URL(fileURLWithPath: path))
            try Self.fails(["steer", "import-gguf", "--in", path, "--model", Self.labModel, "--out", dir.file("x.safetensors")],
                           containing: [path])
            try Self.fails(generate(steer: path), containing: [path])
        }

        // A head holding NaN or an infinity, refused at load by every command that reads it.
        let original = try #require(lab.files["diffmean"])
        let file = try Safetensors(original)
        for (name, value) in [("nan", Float.nan), ("inf", -Float.infinity)] {
            var data = file.data
            let at = try file.offset("layers.2.z", element: 7)
            withUnsafeBytes(of: value.bitPattern.littleEndian) { data.replaceSubrange(at..<(at + 4), with: $0) }
            let path = dir.file("\(name).safetensors")
            try data.write(to: URL(fileURLWithPath: path))
            try Self.fails(generate(steer: path), containing: [path, "layers.2.z", "index 7"])
            try Self.fails(["steer", "export-gguf", "--in", path, "--out", dir.file("\(name).gguf")], containing: [path, "layers.2.z"])
            try Self.fails(["analyze", "--capture", lab.capture, "--steer", path, "--backend", "cpu"], containing: [path, "layers.2.z"])
        }

        // A capture JSONL with a broken line: the file and the line named, nothing written.
        let lines = try String(contentsOfFile: lab.triplets, encoding: .utf8).split(separator: "\n").prefix(4).map(String.init)
        let broken = dir.file("broken.jsonl"), out = dir.file("broken.safetensors")
        try ([lines[0], lines[1], lines[2], "{\"steered\": \"a\", \"unsteered\": ", lines[3]].joined(separator: "\n") + "\n")
            .write(toFile: broken, atomically: true, encoding: .utf8)
        try Self.fails(["capture", "--model", Self.labModel, "--triplets", broken, "--layers", "1", "--out", out, "--backend", "cpu"],
                       containing: ["\(broken):4", "JSON"])
        let missingKey = dir.file("missing.jsonl")
        try "{\"steered\": \"a\", \"completion\": \"b\"}\n".write(toFile: missingKey, atomically: true, encoding: .utf8)
        try Self.fails(["capture", "--model", Self.labModel, "--triplets", missingKey, "--layers", "1", "--out", out, "--backend", "cpu"],
                       containing: ["\(missingKey):1", "unsteered"])
        #expect(!FileManager.default.fileExists(atPath: out))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).allSatisfy { !$0.contains(".tiller-") }, "no temporary left")

        // Not a capture, a truncated capture, a layer the capture lacks.
        try Self.fails(["fit", "--method", "diffmean", "--capture", original, "--layer", "1", "--model", Self.labModel,
                        "--out", dir.file("f.safetensors"), "--backend", "cpu"], containing: [original, "not a Tiller capture file"])
        try Self.fails(["analyze", "--capture", original, "--backend", "cpu"], containing: [original, "not a Tiller capture file"])
        let cut = dir.file("cut.safetensors")
        try Data(contentsOf: URL(fileURLWithPath: lab.capture)).prefix(5000).write(to: URL(fileURLWithPath: cut))
        try Self.fails(["fit", "--method", "pca", "--capture", cut, "--layer", "1", "--model", Self.labModel,
                        "--out", dir.file("f.safetensors"), "--backend", "cpu"], containing: [cut])
        try Self.fails(["analyze", "--capture", cut, "--backend", "cpu"], containing: [cut])
        try Self.fails(["fit", "--method", "psr", "--capture", lab.capture, "--layer", "3", "--model", Self.labModel,
                        "--out", dir.file("f.safetensors"), "--backend", "cpu"], containing: [lab.capture, "layers.3.h", "1, 2"])
    }
}
