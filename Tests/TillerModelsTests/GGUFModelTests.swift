import Foundation
import Testing
import TillerCore
@testable import TillerModels

/// GGUF model files (Tests/Fixtures/gguf, written by scripts/fixtures/make_gguf_fixtures.py with
/// gguf-py from the parity checkpoints): every block type against gguf-py's dequantization, every
/// architecture's logits against transformers run on the dequantized weights, on every backend.
@Suite(.serialized) struct GGUFModelTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/gguf")
    static func path(_ name: String) -> String { root.appendingPathComponent(name).path }
    static let architectures = ["llama", "qwen2", "gemma2", "mistral"]

    func using<R>(_ backend: any Backend, _ body: () throws -> R) rethrows -> R {
        guard backend === ModelFixtures.sharedVulkan else { return try body() }
        ModelFixtures.vulkanLock.lock()
        defer { ModelFixtures.vulkanLock.unlock() }
        return try body()
    }

    static func floats(_ file: SafetensorsFile, _ name: String) throws -> [Float] {
        let raw = file.bytes(try file.entry(name))
        return (0..<(raw.count / 4)).map { raw.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) }
    }

    /// Each of the 13 types, 2 rows of 512 values (random blocks for the K-quants), against gguf-py.
    @Test func everyBlockTypeMatchesGGUFPy() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: Self.path("blocks.gguf")))
        let reference = try SafetensorsFile(path: Self.path("blocks.reference.safetensors"))
        try data.withUnsafeBytes { bytes in
            let reader = try GGUFReader(bytes, path: "blocks.gguf")
            #expect(reader.tensors.count == 13)
            for t in reader.tensors {
                let type = try #require(GGMLType(rawValue: t.type))
                let range = try #require(t.byteRange)
                #expect(range.count == type.byteCount(t.elementCount))
                var got = [Float](repeating: .nan, count: t.elementCount)
                try got.withUnsafeMutableBufferPointer {
                    try GGMLDequantize.run(type, bytes.baseAddress! + range.lowerBound, count: t.elementCount, into: $0.baseAddress!)
                }
                let want = try Self.floats(reference, t.name)
                let error = ModelFixtures.relativeError(got, want)
                #expect(error <= 1e-6, "\(t.name): relative error \(error)")
            }
        }
    }

    /// Dequantized to f32, each file's logits are transformers' on gguf-py's dequantized weights:
    /// the config from the metadata, llama.cpp's names, the q/k un-permutation (llama, mistral),
    /// Gemma's 1 + w norms, Llama 3's rope_freqs and every 32-block type.
    @Test(arguments: architectures)
    func logitsMatchTheDequantizedReference(architecture: String) throws {
        let reference = try SafetensorsFile(path: Self.path("\(architecture).reference.safetensors"))
        let ids = try Self.floats(reference, "ids").map { $0.bitPattern }.map { Int32(bitPattern: $0) }
        let expected = try Self.floats(reference, "logits")
        for backend in ModelFixtures.backends() {
            try using(backend) {
                let model = try TransformerModel.load(directory: Self.path("\(architecture).gguf"), backend: backend, weightDType: .f32)
                let cache = try model.makeCache(batchSize: 1, capacity: 32)
                let output = try model.forward([ids], cache: cache, logits: .all)
                let error = ModelFixtures.relativeError(try backend.floats(output.logits), expected)
                #expect(error <= ModelParityTests.tolerance, "\(architecture).gguf on \(backend.name): relative error \(error)")
            }
        }
    }

    /// Quantized tensors load as bf16 by default: close to the f32 logits, not equal.
    @Test func quantizedTensorsDefaultToBF16() throws {
        let reference = try SafetensorsFile(path: Self.path("llama.reference.safetensors"))
        let ids = try Self.floats(reference, "ids").map { Int32(bitPattern: $0.bitPattern) }
        let backend = ModelFixtures.backends()[1]
        let model = try TransformerModel.load(directory: Self.path("llama.gguf"), backend: backend)
        #expect(model.layers[0].q.dtype == .bf16)
        #expect(model.finalNorm.dtype == .f32)
        let cache = try model.makeCache(batchSize: 1, capacity: 32)
        let output = try model.forward([ids], cache: cache, logits: .all)
        let error = ModelFixtures.relativeError(try backend.floats(output.logits), try Self.floats(reference, "logits"))
        #expect(error > 0 && error < 2e-2, "bf16 relative error \(error)")
    }

    /// A BF16 GGUF of the llama-bf16 checkpoint gives that checkpoint's transformers logits.
    @Test func bf16FileMatchesItsCheckpoint() throws {
        let reference = try ModelFixtures.reference("llama-bf16")
        let ids = try reference.ints("ids"), expected = try reference.floats("logits")
        for backend in ModelFixtures.backends().dropFirst() {
            try using(backend) {
                let model = try TransformerModel.load(directory: Self.path("llama-bf16.gguf"), backend: backend)
                #expect(model.layers[1].down.dtype == .bf16)
                let cache = try model.makeCache(batchSize: 1, capacity: 32)
                let output = try model.forward([ids], cache: cache, logits: .all)
                let error = ModelFixtures.relativeError(try backend.floats(output.logits), expected)
                #expect(error <= ModelParityTests.tolerance, "llama-bf16.gguf on \(backend.name): relative error \(error)")
            }
        }
    }

    /// The configuration read from the metadata is the checkpoint's config.json.
    @Test(arguments: architectures)
    func configMatchesTheCheckpoint(architecture: String) throws {
        let file = try GGUFModelFile(path: Self.path("\(architecture).gguf"))
        let directory = ModelFixtures.directory(architecture)
        let json = try Data(contentsOf: URL(fileURLWithPath: directory + "/config.json"))
        let want = try ModelConfig.parse(json, path: "config.json")
        let got = file.config
        #expect(try file.architecture() == (try Architecture.of(want, path: "config.json")))
        #expect(got.hiddenSize == want.hiddenSize && got.intermediateSize == want.intermediateSize)
        #expect(got.numHiddenLayers == want.numHiddenLayers && got.numAttentionHeads == want.numAttentionHeads)
        #expect(got.kvHeads == want.kvHeads && got.resolvedHeadDim == want.resolvedHeadDim && got.vocabSize == want.vocabSize)
        #expect(got.rmsNormEps.map(Float.init) == want.rmsNormEps.map(Float.init))
        #expect(got.resolvedRopeTheta == want.resolvedRopeTheta)
        #expect((got.tieWordEmbeddings ?? true) == (want.tieWordEmbeddings ?? true))
        let gotTraits = try file.architecture().traits(got), wantTraits = try Architecture.of(want, path: "").traits(want)
        #expect((0..<got.numHiddenLayers).map(gotTraits.slidingWindow) == (0..<want.numHiddenLayers).map(wantTraits.slidingWindow))
        // Gemma's attention scale is stored as an f32 (attention.scale), the rest exactly.
        #expect(abs(gotTraits.attentionScale - wantTraits.attentionScale) <= 1e-6 * wantTraits.attentionScale)
        #expect(gotTraits.attentionSoftcap == wantTraits.attentionSoftcap && gotTraits.finalLogitSoftcap == wantTraits.finalLogitSoftcap)
    }

    /// The byte-level vocabulary of the fixtures: each byte is its own token, specials are whole.
    @Test func tokenizerFromTheMetadata() throws {
        let tokenizer = try GGUFModelFile(path: Self.path("llama.gguf")).tokenizer()
        #expect(try tokenizer.encode("hi!", addSpecialTokens: true) == [104, 105, 33])
        #expect(tokenizer.bosTokenID == 1 && tokenizer.eosTokenIDs == [2])
        #expect(try tokenizer.encode("a<eos>", addSpecialTokens: false) == [97, 2])
        #expect(tokenizer.decode([104, 105, 33]) == "hi!")
    }

    /// A tensor of a type Tiller does not load is a one-line error naming it and its type.
    @Test func unsupportedTensorTypeIsOneLine() throws {
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Self.path("qwen2.gguf"))))
        // The tensor table entry of blk.0.ffn_up.weight: name, n_dims (u32), ne (2 x u64), type.
        let name = Array("blk.0.ffn_up.weight".utf8)
        let at = try #require((0..<(bytes.count - name.count)).first { bytes[$0..<($0 + name.count)].elementsEqual(name) })
        let typeAt = at + name.count + 4 + 16
        #expect(bytes[typeAt] == 3) // Q4_1
        bytes[typeAt] = 24 // I8: fewer bytes than Q4_1, so still within the file
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("tiller-gguf-\(UUID().uuidString).gguf")
        try Data(bytes).write(to: scratch)
        defer { try? FileManager.default.removeItem(at: scratch) }
        #expect {
            _ = try TransformerModel.load(directory: scratch.path, backend: ModelFixtures.backends()[1])
        } throws: { error in
            let text = "\(error)"
            return text.contains("blk.0.ffn_up.weight") && text.contains("I8") && !text.contains("\n")
        }
    }

    /// Thousands of mutated headers and tensor tables: every one opens, or fails with a one-line
    /// error; none crashes. The config, tokenizer and tensor checks run on what opens.
    @Test func mutatedModelFilesNeverCrash() throws {
        let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Self.path("qwen2.gguf"))))
        let headerEnd = try original.withUnsafeBytes { try GGUFReader($0, path: "x").dataStart }
        var rng = SplitMix64(seed: 12)
        var opened = 0
        for i in 0..<2000 {
            var bytes = original
            for _ in 0..<(1 + Int(rng.next() % 4)) {
                let at = Int(rng.next() % UInt64(headerEnd))
                switch rng.next() % 3 {
                case 0: bytes[at] ^= UInt8(truncatingIfNeeded: 1 << (rng.next() % 8))
                case 1: bytes[at] = UInt8(truncatingIfNeeded: rng.next())
                default:
                    // A count, length or dimension made huge or zero.
                    let value: UInt64 = [0, 1, UInt64.max, UInt64(Int64.max), 1 << 40][Int(rng.next() % 5)]
                    for k in 0..<8 where at + k < bytes.count { bytes[at + k] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(k))) }
                }
            }
            if i % 7 == 0 { bytes = Array(bytes.prefix(Int(rng.next() % UInt64(bytes.count)))) }
            do {
                let file = try GGUFModelFile(data: Data(bytes), path: "fuzz.gguf")
                opened += 1
                _ = try? file.tokenizer()
                _ = try? file.architecture()
                for name in file.tensors.keys.sorted().prefix(3) { _ = try? file.tensor(name, expectedShape: nil) }
            } catch {
                #expect(!"\(error)".contains("\n"))
            }
        }
        #expect(opened > 0)
    }
}

