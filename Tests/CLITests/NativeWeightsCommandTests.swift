import Foundation
import Testing

/// `--weight-dtype native` as a user runs it: `tiller logits` on the llama GGUF fixture with its
/// Q8_0/Q4_0/Q4_1 projections kept in blocks matches transformers' logits on the dequantized
/// weights (Tests/Fixtures/gguf/llama.reference.safetensors) within the parity tolerance.
@Suite struct NativeWeightsCommandTests {
    @Test func logitsWithNativeWeightsMatchTheDequantizedReference() throws {
        let gguf = ModelCommandTests.fixtures.appendingPathComponent("gguf")
        let reference = try ModelCommandTests.readSafetensors(gguf.appendingPathComponent("llama.reference.safetensors").path)
        let ids = try #require(reference["ids"]).values.map { Int($0) }
        let want = try #require(reference["logits"])
        let scratch = try SteeringCommandTests.Scratch()
        let out = scratch.file("logits.safetensors")
        let result = try TillerProcess.run(["logits", "--model", gguf.appendingPathComponent("llama.gguf").path,
                                            "--ids", ids.map(String.init).joined(separator: ","), "--out", out,
                                            "--backend", "cpu", "--weight-dtype", "native"])
        #expect(result.status == 0, "\(result.stderr)")
        let got = try #require(try ModelCommandTests.readSafetensors(out)["logits"])
        #expect(got.values.count == want.values.count)
        let scale = want.values.map(abs).max()!
        let error = zip(got.values, want.values).map { abs($0 - $1) }.max()! / scale
        // The rest of the file (F16 embeddings, BF16 lm_head, Q5 projections) loads as by default:
        // as stored, and bf16 for Q5_0/Q5_1, so the bound is bf16's, not the f32 parity one.
        #expect(error <= 2e-2, "relative error \(error)")
    }
}
