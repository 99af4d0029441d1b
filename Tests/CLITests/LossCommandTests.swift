import Foundation
import Testing
import TillerCore
import TillerSteering

/// `tiller loss` as users run it: the objectives and the gradients it writes against PyTorch
/// autograd (Tests/Fixtures/gradients, scripts/fixtures/make_gradient_fixtures.py), and its errors.
@Suite struct LossCommandTests {
    typealias S = SteeringCommandTests

    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/gradients")

    /// A fixture's triplets as a triplets file, and each of its steering files written for `model`.
    static func inputs(_ fixture: [String: Any], model: ModelCommandTests.ModelDir, in dir: S.Scratch) throws -> (triplets: String, files: [String: String]) {
        let triplets = dir.file("triplets.jsonl")
        let lines = try (fixture["triplets"] as? [[String: Any]] ?? []).map { try S.jsonLine($0) }
        try (lines.joined(separator: "\n") + "\n").write(toFile: triplets, atomically: true, encoding: .utf8)
        var files: [String: String] = [:]
        let fingerprint = try ModelFingerprint(directory: model.path)
        for file in fixture["files"] as? [[String: Any]] ?? [] {
            let name = try #require(file["name"] as? String)
            var heads: [Int: SteeringHead] = [:]
            for (layer, value) in try #require(file["heads"] as? [String: [String: Any]]) {
                let kind = value["activation"] as? String
                heads[Int(layer)!] = SteeringHead(w: try #require(value["w"] as? [Double]).map(Float.init),
                                                  bias: Float(try #require(value["bias"] as? Double)),
                                                  z: try #require(value["z"] as? [Double]).map(Float.init),
                                                  activation: kind == "relu" ? .relu : kind == "identity" ? .identity : .constant)
            }
            let location = try #require(file["location"] as? String), alpha = try #require(file["alpha"] as? Double)
            let intervention = Intervention(method: "psr", heads: heads, location: SteeringLocation(name: location)!, alpha: Float(alpha))
            files[name] = dir.file("\(name).safetensors")
            try SteeringFile.save(intervention, model: fingerprint, to: files[name]!)
        }
        return (triplets, files)
    }

    @Test(arguments: ["llama", "qwen2", "gemma2", "mistral", "llama-bf16"])
    func lossMatchesAutograd(_ architecture: String) throws {
        let data = try Data(contentsOf: Self.fixtures.appendingPathComponent("\(architecture).json"))
        let fixture = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let model = try ModelCommandTests.ModelDir(architecture: architecture)
        let dir = try S.Scratch()
        let (triplets, files) = try Self.inputs(fixture, model: model, in: dir)
        for expected in try #require(fixture["cases"] as? [[String: Any]]) {
            let objective = try #require(expected["objective"] as? String), c = try #require(expected["regularizer_weight"] as? Double)
            let fileName = try #require(expected["file"] as? String)
            let file = try #require(files[fileName])
            let gradients = dir.file("g.safetensors")
            let run = try S.ok(["loss", "--model", model.path, "--steer", file, "--triplets", triplets, "--objective", objective,
                                "--regularizer", "\(c)", "--gradients", gradients, "--batch-size", "3", "--backend", "cpu"])
            let printed = try S.jsonObject(run.stdout)
            let label = "\(architecture) \(expected["file"]!) \(objective) C=\(c)"
            for (key, want) in [("loss", "loss"), ("objective", "objective_value"), ("regularizer", "regularizer")] {
                let got = try #require(printed[key] as? Double, "\(label): \(run.stdout)")
                let reference = try #require(expected[want] as? Double)
                #expect(abs(got - reference) <= 1e-4 * max(abs(reference), key == "regularizer" ? 1 : 1e-6), "\(label): \(key) \(got), autograd \(reference)")
            }
            #expect(printed["positions"] as? Int == expected["positions"] as? Int && printed["triplets"] as? Int == 4, "\(label): \(run.stdout)")
            let written = try ModelCommandTests.readSafetensors(gradients)
            let reference = try #require(expected["gradients"] as? [String: [Double]])
            #expect(Set(written.keys) == Set(reference.keys), "\(label): tensors \(written.keys.sorted())")
            for (name, want) in reference {
                let layer = name.split(separator: ".")[1]
                let scale = reference.filter { $0.key.hasPrefix("layers.\(layer).") }.values.flatMap { $0 }.map(abs).max() ?? 0
                let got = written[name]?.values ?? []
                let worst = zip(got, want).map { abs(Double($0) - $1) }.max() ?? .infinity
                #expect(got.count == want.count && worst <= 1e-4 * max(scale, 1e-6), "\(label): \(name) differs by \(worst) (largest \(scale))")
            }
        }
    }

    @Test func badInput() throws {
        let data = try Data(contentsOf: Self.fixtures.appendingPathComponent("llama.json"))
        let fixture = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let model = try ModelCommandTests.ModelDir()
        let dir = try S.Scratch()
        let (triplets, files) = try Self.inputs(fixture, model: model, in: dir)
        let file = try #require(files["relu-identity"])
        let base = ["loss", "--model", model.path, "--steer", file, "--triplets", triplets, "--backend", "cpu"]
        try S.fails(base + ["--objective", "kl"], containing: ["--objective", "kl"])
        try S.fails(base + ["--objective", "mse", "--location", "everywhere"], containing: ["--location", "everywhere"])
        try S.fails(base + ["--objective", "mse", "--regularizer=-1"], containing: ["--regularizer", "-1"])
        // The gradients never overwrite an input.
        let before = try Data(contentsOf: URL(fileURLWithPath: file))
        try S.fails(base + ["--objective", "mse", "--gradients", file], containing: ["--gradients", file])
        #expect(try Data(contentsOf: URL(fileURLWithPath: file)) == before)
        // A typo'd triplet key, and a steering file made for another model.
        let typo = dir.file("typo.jsonl")
        try "{\"steered\": [5, 6], \"unsteered\": [6], \"completion\": [7], \"alpah\": 1}\n".write(toFile: typo, atomically: true, encoding: .utf8)
        try S.fails(["loss", "--model", model.path, "--steer", file, "--triplets", typo, "--objective", "ll", "--backend", "cpu"],
                    containing: ["\(typo):1", "alpah", "alpha"])
        let other = try ModelCommandTests.ModelDir(architecture: "qwen2")
        try S.fails(["loss", "--model", other.path, "--steer", file, "--triplets", triplets, "--objective", "ll", "--backend", "cpu"],
                    containing: [file])
    }
}
