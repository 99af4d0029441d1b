import Foundation
import Testing

/// `tiller logits --steer`: a llama.cpp control vector (written by gguf-py) applied to the tiny
/// llama fixture gives transformers' logits with the direction added to decoder layer N's output
/// at every position (scripts/fixtures/make_control_vector_fixture.py), which is llama.cpp's
/// layer convention and Tiller's layer N; and bad --steer values are one-line errors.
@Suite struct LogitsSteerTests {
    static let vector = ModelCommandTests.fixtures.appendingPathComponent("gguf/llama-control-vector.gguf").path
    static let reference = ModelCommandTests.fixtures.appendingPathComponent("gguf/llama-control-vector.reference.safetensors").path

    /// The largest |got - want| over the largest |want|.
    static func relativeError(_ got: [Float], _ want: [Float]) -> Float {
        zip(got, want).map { abs($0 - $1) }.max()! / want.map(abs).max()!
    }

    @Test func controlVectorMatchesTransformers() throws {
        let dir = try ModelCommandTests.ModelDir(tokenizer: false), scratch = try SteeringCommandTests.Scratch()
        let reference = try ModelCommandTests.readSafetensors(Self.reference)
        let ids = try #require(reference["ids"]).values.map { String(Int($0)) }.joined(separator: ",")
        let plain = try #require(reference["logits"]), steered = try #require(reference["steered"])
        func logits(_ steer: [String]) throws -> (shape: [Int], values: [Float]) {
            let out = scratch.file("logits-\(steer.count).safetensors")
            let result = try TillerProcess.run(["logits", "--model", dir.path, "--ids", ids, "--out", out, "--backend", "cpu"] + steer)
            #expect(result.status == 0, "\(result.stderr)")
            return try #require(try ModelCommandTests.readSafetensors(out)["logits"])
        }
        let got = try logits(["--steer", Self.vector + ":1.5"])
        #expect(got.shape == steered.shape)
        // The steering moves the logits far more than the tolerance, so adding the direction at
        // another layer, another scale or not at all fails.
        #expect(Self.relativeError(plain.values, steered.values) > 0.05)
        #expect(Self.relativeError(got.values, steered.values) <= 1e-4)
        #expect(Self.relativeError(try logits([]).values, plain.values) <= 1e-4)
    }

    @Test func badSteerIsOneLineError() throws {
        let dir = try ModelCommandTests.ModelDir(tokenizer: false), scratch = try SteeringCommandTests.Scratch()
        let out = scratch.file("l.safetensors")
        func run(_ steer: String) throws -> TillerProcess.Result {
            try TillerProcess.run(["logits", "--model", dir.path, "--ids", "1,2", "--out", out, "--backend", "cpu", "--steer", steer])
        }
        let missing = scratch.file("missing.gguf")
        ModelCommandTests.expectOneLineError(try run(missing), containing: [missing])
        ModelCommandTests.expectOneLineError(try run(Self.vector + ":1e39"), containing: ["--steer", "1e39"])
        let wrongSize = ModelCommandTests.fixtures.appendingPathComponent("gguf/llama.gguf").path
        ModelCommandTests.expectOneLineError(try run(wrongSize), containing: [wrongSize])
        #expect(!FileManager.default.fileExists(atPath: out))
        // --out naming the control vector it reads is refused, and the vector is kept.
        let copy = scratch.file("vector.gguf")
        try FileManager.default.copyItem(atPath: Self.vector, toPath: copy)
        let before = try Data(contentsOf: URL(fileURLWithPath: copy))
        ModelCommandTests.expectOneLineError(
            try TillerProcess.run(["logits", "--model", dir.path, "--ids", "1,2", "--out", copy, "--backend", "cpu", "--steer", copy]),
            containing: [copy])
        #expect(try Data(contentsOf: URL(fileURLWithPath: copy)) == before)
    }
}
