import Foundation
import Testing

/// Bad files given to every command: each must fail with one `Error:` line naming the file (or
/// the key), never Foundation's "Error Domain=..." / "NSCocoaErrorDomain error 512" or a
/// Codable `DecodingError` dump.
@Suite struct ErrorMessageTests {
    /// The bad inputs, made once: a missing path, a directory, files that are not what they claim.
    final class BadInputs {
        let scratch: SteeringCommandTests.Scratch
        let model: ModelCommandTests.ModelDir
        var missing: String { scratch.file("missing/nothing.jsonl") }
        var directory: String { scratch.file("a-directory") }
        var garbage: String { scratch.file("garbage.safetensors") }
        var prompts: String { scratch.file("prompts.jsonl") }
        var triplets: String { scratch.file("triplets.jsonl") }

        init() throws {
            scratch = try SteeringCommandTests.Scratch()
            model = try ModelCommandTests.ModelDir()
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try Data("not a safetensors file at all".utf8).write(to: URL(fileURLWithPath: garbage))
            try ModelCommandTests.write(["{\"prompt\": \"hi\"}"], to: prompts)
            try ModelCommandTests.write(["{\"steered\": \"be loud: hi\", \"unsteered\": \"hi\", \"completion\": \"yo\"}"], to: triplets)
        }

        /// A copy of the fixture model with its config.json or weights replaced.
        func brokenModel(config: String? = nil, truncateWeights: Bool = false) throws -> String {
            let path = scratch.file("model-\(UUID().uuidString)")
            try FileManager.default.copyItem(atPath: model.path, toPath: path)
            if let config { try Data(config.utf8).write(to: URL(fileURLWithPath: path + "/config.json")) }
            if truncateWeights {
                let weights = URL(fileURLWithPath: path + "/model.safetensors")
                try Data(try Data(contentsOf: weights).prefix(200)).write(to: weights)
            }
            return path
        }
    }

    /// The fixture's config.json with one key replaced by raw JSON text.
    static func config(_ key: String, _ json: String) throws -> String {
        let url = ModelCommandTests.fixtures.appendingPathComponent("models/llama/config.json")
        var object = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        object[key] = "__VALUE__"
        let text = String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
        return text.replacingOccurrences(of: "\"__VALUE__\"", with: json)
    }

    static func expectClean(_ arguments: [String], naming words: [String], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let result = try TillerProcess.run(arguments)
        #expect(!result.signalled, "\(arguments): killed by a signal", sourceLocation: sourceLocation)
        for dump in ["Error Domain", "NSCocoaErrorDomain", "DecodingError", "Fatal error", "Context(codingPath"] {
            #expect(!result.stderr.contains(dump), "\(arguments): \(result.stderr)", sourceLocation: sourceLocation)
        }
        ModelCommandTests.expectOneLineError(result, containing: words, sourceLocation: sourceLocation)
    }

    @Test func missingFilesAndDirectories() throws {
        let bad = try BadInputs()
        let m = bad.model.path, out = bad.scratch.file("out")
        for path in [bad.missing, bad.directory] {
            try Self.expectClean(["generate", "--model", m, "--prompts", path, "--out", out], naming: [path])
            try Self.expectClean(["capture", "--model", m, "--triplets", path, "--layers", "0", "--out", out], naming: [path])
            try Self.expectClean(["analyze", "--capture", path], naming: [path])
            try Self.expectClean(["fit", "--method", "diffmean", "--capture", path, "--layer", "0", "--model", m, "--out", out], naming: [path])
            try Self.expectClean(["steer", "export-gguf", "--in", path, "--out", out], naming: [path])
            try Self.expectClean(["steer", "import-gguf", "--in", path, "--model", m, "--out", out], naming: [path])
            try Self.expectClean(["lab", "eval", "--kind", "concept", "--steer", "prompt", "--heldout", path], naming: [path])
            try Self.expectClean(["generate", "--model", m, "--prompts", bad.prompts, "--out", out, "--steer", path], naming: [path])
            try Self.expectClean(["analyze", "--capture", path, "--steer", bad.garbage], naming: [path])
        }
        for model in [bad.missing, bad.directory + "/nothing", bad.garbage] {
            try Self.expectClean(["tokenize", "--model", model, "--text", "hi"], naming: [model])
            try Self.expectClean(["logits", "--model", model, "--ids", "1", "--out", out], naming: [model])
        }
    }

    /// The reported dump: an --out that is a directory.
    @Test func outputThatIsADirectory() throws {
        let bad = try BadInputs()
        let m = bad.model.path, dir = bad.directory
        try Self.expectClean(["logits", "--model", m, "--ids", "1,2", "--out", dir], naming: [dir])
        try Self.expectClean(["generate", "--model", m, "--prompts", bad.prompts, "--out", dir, "--max-new-tokens", "1"], naming: [dir])
        try Self.expectClean(["capture", "--model", m, "--triplets", bad.triplets, "--layers", "0", "--out", dir], naming: [dir])
        try Self.expectClean(["lab", "corpus", "--seed", "1", "--out", bad.garbage, "--train", "1", "--heldout", "1"], naming: [bad.garbage])
        let capture = bad.scratch.file("capture.safetensors")
        try SteeringCommandTests.ok(["capture", "--model", m, "--triplets", bad.triplets, "--layers", "1", "--out", capture, "--backend", "cpu"])
        try Self.expectClean(["analyze", "--capture", capture, "--out", dir], naming: [dir])
        try Self.expectClean(["fit", "--method", "diffmean", "--capture", capture, "--layer", "1", "--model", m, "--out", dir], naming: [dir])
        let steering = bad.scratch.file("steer.safetensors")
        // Layer 1: llama.cpp never steers block 0's output, so export-gguf refuses a file with it.
        try SteeringCommandTests.ok(["fit", "--method", "diffmean", "--capture", capture, "--layer", "1", "--model", m, "--out", steering])
        try Self.expectClean(["steer", "export-gguf", "--in", steering, "--out", dir], naming: [dir])
    }

    @Test func brokenModelFiles() throws {
        let bad = try BadInputs()
        let out = bad.scratch.file("out")
        let cases: [(model: String, words: [String])] = [
            (try bad.brokenModel(config: "{"), ["config.json"]),
            (try bad.brokenModel(config: "[1, 2]"), ["config.json"]),
            (try bad.brokenModel(config: try Self.config("hidden_size", "\"big\"")), ["config.json", "hidden_size"]),
            (try bad.brokenModel(config: try Self.config("hidden_size", "null")), ["config.json", "hidden_size"]),
            (try bad.brokenModel(config: try Self.config("hidden_size", "1e300")), ["config.json", "hidden_size"]),
            (try bad.brokenModel(config: try Self.config("rope_parameters", "{\"rope_theta\": \"x\"}")), ["config.json", "rope_theta"]),
            (try bad.brokenModel(truncateWeights: true), ["model.safetensors"]),
        ]
        for (model, words) in cases {
            try Self.expectClean(["logits", "--model", model, "--ids", "1", "--out", out], naming: words)
            try Self.expectClean(["generate", "--model", model, "--prompts", bad.prompts, "--out", out], naming: words)
            try Self.expectClean(["lab", "eval", "--model", model, "--kind", "concept", "--steer", "prompt", "--limit", "1"], naming: words)
        }
    }

    /// Corpus lines (lab eval --heldout) are decoded with Codable: the key, not the dump.
    @Test func badCorpusLines() throws {
        let bad = try BadInputs()
        let file = bad.scratch.file("heldout.jsonl")
        let lines: [(line: String, key: String)] = [
            ("{\"id\": 5, \"kind\": \"concept\"}", "id"),
            ("{\"id\": \"x\", \"kind\": \"concept\", \"placement\": \"system\", \"topic\": \"a\", \"question_template\": \"b\", "
                + "\"messages\": [], \"unsteered_messages\": [], \"format\": {\"type\": \"x\", \"n\": 1e300}}", "format.n"),
        ]
        for (line, key) in lines {
            try ModelCommandTests.write([line], to: file)
            try Self.expectClean(["lab", "eval", "--kind", "concept", "--steer", "prompt", "--heldout", file], naming: ["\(file):1", key])
        }
    }

    /// A file the process may not read (only meaningful when not running as root).
    @Test(.enabled(if: getuid() != 0)) func unreadableFile() throws {
        let bad = try BadInputs()
        try FileManager.default.setAttributes([.posixPermissions: 0], ofItemAtPath: bad.prompts)
        defer { try? FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: bad.prompts) }
        try Self.expectClean(["generate", "--model", bad.model.path, "--prompts", bad.prompts, "--out", bad.scratch.file("out")],
                             naming: [bad.prompts])
    }

    @Test func badSteeringFiles() throws {
        let bad = try BadInputs()
        let m = bad.model.path, out = bad.scratch.file("out")
        try Self.expectClean(["generate", "--model", m, "--prompts", bad.prompts, "--out", out, "--steer", bad.garbage], naming: [bad.garbage])
        try Self.expectClean(["steer", "export-gguf", "--in", bad.garbage, "--out", out], naming: [bad.garbage])
        try Self.expectClean(["steer", "import-gguf", "--in", bad.garbage, "--model", m, "--out", out], naming: [bad.garbage])
        try Self.expectClean(["lab", "eval", "--kind", "concept", "--steer", bad.garbage, "--limit", "1"], naming: [bad.garbage])
    }
}
