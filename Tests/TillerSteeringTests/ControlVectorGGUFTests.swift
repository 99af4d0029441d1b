import Foundation
import Testing
import TillerCore
@testable import TillerSteering

/// llama.cpp control vectors: Tiller's writer and reader agree, a file laid out by hand as
/// llama.cpp and repeng write them is read with the documented layer mapping (direction.N is the
/// residual after block N), what cannot be a control vector is refused, and no mutation of a
/// valid file crashes the reader.
@Suite struct ControlVectorGGUFTests {
    typealias F = SteeringFileFixtures

    // MARK: Round trips

    @Test func roundTripThroughGGUF() throws {
        let model = F.synthetic(hiddenSize: 64, layerCount: 8)
        let v3 = F.values(64, seed: 3), v5 = F.values(64, seed: 5), v7 = F.values(64, seed: 7)
        let intervention = Intervention(method: "diffmean", heads: [3: .constant(v3), 5: .constant(v5), 7: .constant(v7)],
                                        location: .all, alpha: 1)
        let vector = try ControlVector(intervention: intervention, modelHint: model.modelType)
        let dir = try SteeringTempDirectory()
        defer { dir.cleanup() }
        let path = dir.file("cv.gguf")
        try vector.write(to: path)

        let read = try ControlVector.read(path: path)
        #expect(read == vector)
        #expect(read.modelHint == "llama")
        #expect(read.layers == [3, 5, 7])
        #expect(read.method == "diffmean")
        let back = try read.intervention(for: model, path: path)
        #expect(back == intervention)
    }

    @Test func alphaIsMultipliedIntoTheDirections() throws {
        let model = try F.fingerprint("llama")
        let z = F.values(64, seed: 11)
        let intervention = Intervention(method: "caa", heads: [1: .constant(z)], location: .answerOnly, alpha: -2.5)
        let vector = try ControlVector(intervention: intervention, modelHint: model.modelType)
        #expect(vector.directions[1] == z.map { -2.5 * $0 })
        #expect(ControlVector.exportNotes(intervention).count == 2)
        let back = try ControlVector.decode(try vector.encode(), path: "mem.gguf").intervention(for: model, path: "mem.gguf")
        #expect(back.alpha == 1 && back.location == .all)
        #expect(back.heads[1] == .constant(z.map { -2.5 * $0 }))
    }

    @Test func onlyConstantHeadsAboveLayerZeroExport() throws {
        for activation in [PSRActivation.relu, .identity] {
            let iv = Intervention(method: "psr", heads: [1: F.head(activation, size: 64, seed: 1)])
            let error = #expect(throws: TillerError.self) { try ControlVector(intervention: iv, modelHint: "llama") }
            #expect(error?.description.contains("constant") == true, "\(error?.description ?? "")")
        }
        let zero = Intervention(method: "diffmean", heads: [0: .constant(F.values(64, seed: 1)), 1: .constant(F.values(64, seed: 2))])
        let error = #expect(throws: TillerError.self) { try ControlVector(intervention: zero, modelHint: "llama") }
        #expect(error?.description.contains("direction.0") == true)
    }

    /// The bytes Tiller's writer must produce, laid out by hand from ggml's GGUF description.
    @Test func writerProducesTheDocumentedLayout() throws {
        let a = F.values(5, seed: 1), b = F.values(5, seed: 2)
        var h = HandBytes()
        h.raw(Array("GGUF".utf8)); h.u32(3); h.u64(2); h.u64(4)
        h.string("general.architecture"); h.u32(8); h.string("controlvector")
        h.string("controlvector.model_hint"); h.u32(8); h.string("qwen2")
        h.string("controlvector.layer_count"); h.u32(4); h.u32(2)
        h.string("tiller.method"); h.u32(8); h.string("pca")
        h.string("direction.1"); h.u32(1); h.u64(5); h.u32(0); h.u64(0)
        h.string("direction.4"); h.u32(1); h.u64(5); h.u32(0); h.u64(32)  // 20 bytes padded to 32
        h.pad(32)
        for x in a { h.f32(x) }
        h.pad(32)
        for x in b { h.f32(x) }
        h.pad(32)
        let vector = ControlVector(modelHint: "qwen2", directions: [4: b, 1: a], method: "pca")
        #expect([UInt8](try vector.encode()) == h.bytes)
    }

    // MARK: Files from llama.cpp and repeng

    /// What llama.cpp's cvector-generator writes (gguf_write_to_file): v3, general.architecture,
    /// model_hint, layer_count as i32, then direction.1 ... direction.(n_layer - 1) as F32, each
    /// padded to the alignment of 32.
    static func llamaCppFile(_ directions: [[Float]], hint: String = "llama") -> [UInt8] {
        var h = HandBytes()
        h.raw(Array("GGUF".utf8)); h.u32(3); h.u64(UInt64(directions.count)); h.u64(3)
        h.string("general.architecture"); h.u32(8); h.string("controlvector")
        h.string("controlvector.model_hint"); h.u32(8); h.string(hint)
        h.string("controlvector.layer_count"); h.u32(5); h.i32(Int32(directions.count))
        let n = directions[0].count
        let stride = (n * 4 + 31) / 32 * 32
        for (i, _) in directions.enumerated() {
            h.string("direction.\(i + 1)"); h.u32(1); h.u64(UInt64(n)); h.u32(0); h.u64(UInt64(i * stride))
        }
        h.pad(32)
        for d in directions {
            for x in d { h.f32(x) }
            h.pad(32)
        }
        return h.bytes
    }

    @Test func readsALlamaCppFileWithTheDocumentedLayerMapping() throws {
        let model = try F.fingerprint("llama")  // 2 layers: llama.cpp writes direction.1 only
        let d1 = F.values(64, seed: 21)
        let dir = try SteeringTempDirectory()
        defer { dir.cleanup() }
        let path = dir.file("llamacpp.gguf")
        try writeFile(path, Self.llamaCppFile([d1]))
        let vector = try ControlVector.read(path: path)
        #expect(vector.modelHint == "llama" && vector.method == nil)
        let iv = try vector.intervention(for: model, path: path)
        // direction.1 is added to the output of block 1 (llama.cpp's il = 1): Tiller's layer 1.
        #expect(iv.heads.keys.sorted() == [1])
        #expect(iv.heads[1] == .constant(d1))
        #expect(iv.method == "control_vector" && iv.alpha == 1 && iv.location == .all)

        // For a deeper model every direction.N lands on layer N.
        let deep = F.synthetic(hiddenSize: 64, layerCount: 5)
        let ds = (1...4).map { F.values(64, seed: UInt64(30 + $0)) }
        let all = try ControlVector.decode(Data(Self.llamaCppFile(ds)), path: "deep.gguf").intervention(for: deep, path: "deep.gguf")
        #expect(all.layers == [1, 2, 3, 4])
        for n in 1...4 { #expect(all.heads[n] == .constant(ds[n - 1])) }

        // The same file on a model too shallow for direction.4 is refused, naming both.
        let error = #expect(throws: TillerError.self) {
            try ControlVector.decode(Data(Self.llamaCppFile(ds)), path: "deep.gguf").intervention(for: model, path: "deep.gguf")
        }
        #expect(error?.description.contains("direction.4") == true && error?.description.contains("2 layers") == true)
        // And a vector of another width, naming both widths.
        let wide = try ControlVector.decode(Data(Self.llamaCppFile([F.values(96, seed: 1)])), path: "wide.gguf")
        let widthError = #expect(throws: TillerError.self) { try wide.intervention(for: model, path: "wide.gguf") }
        #expect(widthError?.description.contains("96") == true && widthError?.description.contains("64") == true)
    }

    /// What repeng's export_gguf writes through gguf-py's GGUFWriter: v3, general.architecture
    /// first, model_hint = config.model_type, layer_count as u32 = the number of directions,
    /// direction.{layer} in the order of the dict (here descending, as repeng's default layers
    /// range(-1, -n_layers, -1) give), plus keys gguf-py may add. Here: version 2, an explicit
    /// general.alignment of 64, a string array and a float, and one F16 direction.
    @Test func readsARepengStyleFileWithOtherLayoutChoices() throws {
        let n = 8
        let d3 = F.values(n, seed: 1), d2 = F.values(n, seed: 2), d1 = F.values(n, seed: 3).map { Float(Float16Bits.round($0)) }
        var h = HandBytes()
        h.raw(Array("GGUF".utf8)); h.u32(2); h.u64(3); h.u64(6)
        h.string("general.architecture"); h.u32(8); h.string("controlvector")
        h.string("general.alignment"); h.u32(4); h.u32(64)
        h.string("controlvector.model_hint"); h.u32(8); h.string("mistral")
        h.string("controlvector.layer_count"); h.u32(4); h.u32(3)
        h.string("general.tags"); h.u32(9); h.u32(8); h.u64(2); h.string("steering"); h.string("repeng")
        h.string("general.scale"); h.u32(6); h.f32(0.5)
        h.string("direction.3"); h.u32(1); h.u64(UInt64(n)); h.u32(0); h.u64(0)
        h.string("direction.2"); h.u32(1); h.u64(UInt64(n)); h.u32(0); h.u64(64)
        h.string("direction.1"); h.u32(2); h.u64(UInt64(n)); h.u64(1); h.u32(1); h.u64(128)  // F16, shape [n, 1]
        h.pad(64)
        for x in d3 { h.f32(x) }
        h.pad(64)
        for x in d2 { h.f32(x) }
        h.pad(64)
        for x in d1 { h.f16(x) }
        h.pad(64)
        let vector = try ControlVector.decode(Data(h.bytes), path: "repeng.gguf")
        #expect(vector.modelHint == "mistral")
        #expect(vector.directions == [1: d1, 2: d2, 3: d3])
        let iv = try vector.intervention(for: F.synthetic(hiddenSize: n, layerCount: 4), path: "repeng.gguf")
        #expect(iv.layers == [1, 2, 3])
    }

    // MARK: Malformed files

    func message(_ bytes: [UInt8]) -> String {
        do {
            _ = try ControlVector.decode(Data(bytes), path: "bad.gguf")
            Issue.record("decoded a malformed file")
            return ""
        } catch let error as TillerError {
            let text = error.description
            #expect(text.hasPrefix("bad.gguf: "), "\(text)")
            #expect(!text.contains("\n"), "\(text)")
            return text
        } catch {
            Issue.record("not a TillerError: \(error)")
            return ""
        }
    }

    /// A valid file with one direction of 4 values, its pieces patched by the caller.
    func file(version: UInt32 = 3, tensorCount: UInt64 = 1, kvCount: UInt64 = 1, kv: (inout HandBytes) -> Void = {
        $0.string("general.architecture"); $0.u32(8); $0.string("controlvector")
    }, name: String = "direction.1", nDims: UInt32 = 1, dims: [UInt64] = [4], type: UInt32 = 0, offset: UInt64 = 0,
              data: Int = 16) -> [UInt8] {
        var h = HandBytes()
        h.raw(Array("GGUF".utf8)); h.u32(version); h.u64(tensorCount); h.u64(kvCount)
        kv(&h)
        h.string(name); h.u32(nDims); for d in dims { h.u64(d) }; h.u32(type); h.u64(offset)
        h.pad(32)
        for i in 0..<data / 4 { h.f32(Float(i) + 0.5) }
        return h.bytes
    }

    @Test func theBaseOfTheMalformedCasesIsValid() throws {
        #expect(try ControlVector.decode(Data(file()), path: "ok.gguf").directions == [1: [0.5, 1.5, 2.5, 3.5]])
    }

    @Test func malformedFilesAreOneLineErrors() {
        #expect(message([]).contains("too short"))
        #expect(message(Array("GGML".utf8) + [UInt8](repeating: 0, count: 40)).contains("not a GGUF file"))
        #expect(message(file(version: 1)).contains("version 1"))
        #expect(message(file(version: 3 << 24)).contains("big-endian"))
        #expect(message(file(version: 7)).contains("version 7"))
        #expect(message(file(tensorCount: 1 << 60)).contains("tensor count"))
        #expect(message(file(kvCount: UInt64.max)).contains("metadata count"))
        #expect(message(file(kv: { $0.u64(1 << 62) })).contains("claims"))
        #expect(message(file(kv: { $0.string("k"); $0.u32(99) })).contains("unknown value type 99"))
        #expect(message(file(kv: { $0.string("k"); $0.u32(9); $0.u32(9); $0.u64(1) })).contains("nested"))
        #expect(message(file(kv: { $0.string("k"); $0.u32(9); $0.u32(4); $0.u64(1 << 61) })).contains("absurd"))
        #expect(message(file(kv: { $0.string("k"); $0.u32(9); $0.u32(8); $0.u64(3); $0.u64(1 << 40) })).contains("claims"))
        #expect(message(file(kvCount: 1, kv: { $0.string("general.architecture"); $0.u32(8); $0.string("llama") })).contains("not a control vector"))
        #expect(message(file(kvCount: 1, kv: { $0.string("general.alignment"); $0.u32(4); $0.u32(48) })).contains("alignment"))
        #expect(message(file(kvCount: 2, kv: { h in for _ in 0..<2 { h.string("a"); h.u32(4); h.u32(1) } })).contains("twice"))
        #expect(message(file(name: "layer.1")).contains("direction.N"))
        #expect(message(file(name: "direction.-1")).contains("direction.N"))
        #expect(message(file(name: "direction.99999999999")).contains("direction.N"))
        #expect(message(file(nDims: 5, dims: [4, 1, 1, 1, 1])).contains("5 dimensions"))
        #expect(message(file(nDims: 2, dims: [2, 2])).contains("shape"))
        #expect(message(file(dims: [UInt64.max])).contains("absurd dimension"))
        #expect(message(file(nDims: 2, dims: [1 << 30, 1 << 30])).contains("outside the file"))
        #expect(message(file(type: 2)).contains("Q4_0"))
        #expect(message(file(type: 28)).contains("F64"))
        #expect(message(file(offset: 32)).contains("outside the file"))
        #expect(message(file(offset: 7)).contains("alignment"))
        #expect(message(file(offset: UInt64.max)).contains("offset"))
        #expect(message(file(dims: [5])).contains("outside the file"))
        #expect(message(file(data: 8)).contains("outside the file"))
        #expect(message(file(tensorCount: 0)).contains("no direction tensors"))
        var nan = file()
        nan.replaceSubrange(nan.count - 8..<nan.count - 4, with: [0x00, 0x00, 0xC0, 0x7F])
        #expect(message(nan).contains("nan"))
        var utf8 = file(name: "direction.1")
        if let i = utf8.firstIndex(of: UInt8(ascii: "d")) { utf8[i] = 0xFF }
        #expect(message(utf8).contains("UTF-8"))
    }

    @Test func everyTruncationIsAnError() {
        let valid = Self.llamaCppFile([F.values(12, seed: 1), F.values(12, seed: 2)])
        // Up to the last tensor's last byte (the padding after it is not needed).
        let needed = valid.count - (64 - 48)
        for length in 0..<needed {
            #expect(!message(Array(valid[0..<length])).isEmpty, "truncated to \(length) bytes")
        }
        #expect(throws: Never.self) { try ControlVector.decode(Data(valid[0..<needed]), path: "ok.gguf") }
    }

    @Test func modelFilesAndMissingFilesAreOneLineErrors() throws {
        let error = #expect(throws: TillerError.self) { try ControlVector.read(path: "/nonexistent/cv.gguf") }
        #expect(error?.description.hasPrefix("/nonexistent/cv.gguf") == true)
        let st = #expect(throws: TillerError.self) { try ControlVector.read(path: F.directory("llama") + "/model.safetensors") }
        #expect(st?.description.contains("not a GGUF file") == true)
    }

    /// Thousands of mutations of valid files (bytes flipped, counts and lengths overwritten with
    /// large values, cut short, bytes inserted and removed): each reads or fails with a one-line
    /// TillerError, never traps.
    @Test func mutatedFilesNeverCrash() throws {
        let seed = UInt64(ProcessInfo.processInfo.environment["TILLER_TEST_SEED"] ?? "") ?? 0x6609_F00D
        var rng = SplitMix64(seed: seed)
        let bases: [[UInt8]] = [
            Self.llamaCppFile([F.values(16, seed: 1), F.values(16, seed: 2), F.values(16, seed: 3)]),
            [UInt8](try ControlVector(modelHint: "qwen2", directions: [2: F.values(8, seed: 4), 5: F.values(8, seed: 5)], method: "pca").encode()),
        ]
        var decoded = 0, refused = 0
        let interesting: [UInt64] = [0, 1, 2, 3, 4, 8, 9, 12, 13, 30, 31, 32, 0xFF, 0xFFFF, 0x7FFF_FFFF, 0xFFFF_FFFF,
                                     1 << 32, 1 << 40, 1 << 62, UInt64(Int64.max), UInt64.max]
        for round in 0..<4000 {
            var bytes = bases[round % bases.count]
            let mutations = 1 + Int(rng.next() % 4)
            for _ in 0..<mutations where !bytes.isEmpty {
                let at = Int(rng.next() % UInt64(bytes.count))
                switch rng.next() % 6 {
                case 0: bytes[at] ^= UInt8(1 << (rng.next() % 8))
                case 1: bytes[at] = UInt8(truncatingIfNeeded: rng.next())
                case 2:  // an interesting little-endian u32 or u64
                    let v = interesting[Int(rng.next() % UInt64(interesting.count))]
                    let width = rng.next() % 2 == 0 ? 4 : 8
                    for k in 0..<width where at + k < bytes.count { bytes[at + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(k))) }
                case 3: bytes.removeSubrange(at..<bytes.count)
                case 4: bytes.insert(UInt8(truncatingIfNeeded: rng.next()), at: at)
                default: bytes.remove(at: at)
                }
            }
            do {
                _ = try ControlVector.decode(Data(bytes), path: "fuzz.gguf")
                decoded += 1
            } catch let error as TillerError {
                #expect(!error.description.contains("\n"))
                refused += 1
            } catch {
                Issue.record("seed \(seed) round \(round): not a TillerError: \(error)")
            }
        }
        #expect(decoded > 50 && refused > 1000, "decoded \(decoded), refused \(refused) (seed \(seed))")
    }
}

/// Rounds a float to the nearest f16 and back, so F16 data can be compared exactly.
enum Float16Bits {
    static func round(_ x: Float) -> Float { HalfConversion.f16ToFloat(HalfConversion.floatToF16(x)) }
}
