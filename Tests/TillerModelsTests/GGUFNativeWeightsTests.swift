import Foundation
import Testing
import TillerCore
import TillerCPU
@testable import TillerModels

/// `--weight-dtype native` (TransformerModel.load's keepQuantized) on the GGUF fixtures, whose
/// projections are Q8_0 (q, k, and layer 0's down), Q4_0 (gate) and Q4_1 (up, layer 1's down)
/// beside Q5_0/Q5_1 and float tensors (scripts/fixtures/make_gguf_fixtures.py).
@Suite(.serialized) struct GGUFNativeWeightsTests {
    /// The native weights are the same values the dequantized load holds (the kernels compute
    /// d * q + m per weight as the decoders do, at most one rounding apart when fused) and the
    /// products accumulate in f32 in another order, so the logits meet transformers' (run on the
    /// dequantized weights) within the parity tolerance, 1e-4 relative, on every backend; and the
    /// blocks really stay blocks: the layouts are checked, q/k's rows un-permuted by whole rows.
    @Test(arguments: GGUFModelTests.architectures)
    func nativeLogitsMatchTheDequantizedReference(architecture: String) throws {
        let reference = try SafetensorsFile(path: GGUFModelTests.path("\(architecture).reference.safetensors"))
        let ids = try GGUFModelTests.floats(reference, "ids").map { Int32(bitPattern: $0.bitPattern) }
        let expected = try GGUFModelTests.floats(reference, "logits")
        let path = GGUFModelTests.path("\(architecture).gguf")
        for backend in ModelFixtures.backends() {
            try GGUFModelTests().using(backend) {
                let model = try TransformerModel.load(directory: path, backend: backend, weightDType: .f32, keepQuantized: true)
                let layer = model.layers[0]
                #expect(layer.q.dtype == .q8_0 && layer.k.dtype == .q8_0 && layer.gate.dtype == .q4_0 && layer.up.dtype == .q4_1)
                #expect(layer.down.dtype == .q8_0 && model.layers[1].down.dtype == .q4_1)
                // Types the backends do not multiply in blocks load as asked (f32 here).
                #expect(layer.v.dtype == .f32 && layer.o.dtype == .f32 && !model.embedding.dtype.isQuantized)
                let cache = try model.makeCache(batchSize: 1, capacity: 32)
                let native = try backend.floats(try model.forward([ids], cache: cache, logits: .all).logits)
                let error = ModelFixtures.relativeError(native, expected)
                #expect(error <= ModelParityTests.tolerance, "\(architecture).gguf native on \(backend.name): relative error \(error)")
            }
        }
    }

    /// Decode steps (one row per forward: the CPU's int8 kernel, gemv_quant_int8.c) after a
    /// prefill (panels and sgemm, f32): every step's logits against transformers' row at that
    /// position. The reference backend and Vulkan multiply in f32 and keep the parity tolerance;
    /// the CPU rounds x to int8 per 32 values before each quantized projection, a relative error
    /// of ~4e-3 per product (Tolerance.int8Activations in the op suite) that the layers carry to
    /// the logits. These random fixtures (hidden size 64: two x blocks per row, no averaging over
    /// a long row, and Gemma-2's unit-scale embeddings) show 0.7-5e-2 (gemma2 the largest), so the
    /// CPU gets `int8DecodeTolerance`, 2x that; a wrong block, scale or offset term gives O(1).
    static let int8DecodeTolerance: Float = 0.1

    @Test(arguments: GGUFModelTests.architectures)
    func nativeDecodeStepsStayCloseToTheReference(architecture: String) throws {
        let reference = try SafetensorsFile(path: GGUFModelTests.path("\(architecture).reference.safetensors"))
        let ids = try GGUFModelTests.floats(reference, "ids").map { Int32(bitPattern: $0.bitPattern) }
        let expected = try GGUFModelTests.floats(reference, "logits")
        let vocabulary = expected.count / ids.count, prefill = 12
        for backend in ModelFixtures.backends() {
            try GGUFModelTests().using(backend) {
                let model = try TransformerModel.load(directory: GGUFModelTests.path("\(architecture).gguf"), backend: backend,
                                                      weightDType: .f32, keepQuantized: true)
                let cache = try model.makeCache(batchSize: 1, capacity: ids.count)
                _ = try model.forward([Array(ids[..<prefill])], cache: cache)
                let bound = backend is CPUBackend ? Self.int8DecodeTolerance : ModelParityTests.tolerance
                for t in prefill..<ids.count {
                    let logits = try backend.floats(try model.forward([[ids[t]]], cache: cache).logits)
                    let error = ModelFixtures.relativeError(logits, Array(expected[(t * vocabulary)..<((t + 1) * vocabulary)]))
                    #expect(error <= bound, "\(architecture).gguf native decode on \(backend.name), position \(t): relative error \(error)")
                    if ProcessInfo.processInfo.environment["TILLER_TEST_PRINT_NMSE"] != nil {
                        print("\(architecture) \(backend.name) position \(t): relative error \(error)")
                    }
                }
            }
        }
    }

    /// Without the option nothing stays quantized.
    @Test func quantizedOnlyWhenAsked() throws {
        let backend = ModelFixtures.backends()[1]
        let model = try TransformerModel.load(directory: GGUFModelTests.path("llama.gguf"), backend: backend)
        #expect(model.layers.allSatisfy { !$0.q.dtype.isQuantized && !$0.up.dtype.isQuantized })
    }
}
