import Foundation
import Testing
import TillerCore
import TillerModels
@testable import TillerSteering

/// Steering files: what is saved is what is loaded (every activation, location, alpha, notes),
/// with the model's fingerprint; and a file made for another model, or holding a NaN, a missing or
/// extra tensor, or an unknown format, is refused in one line naming the file and the values.
@Suite struct SteeringFileTests {
    typealias F = SteeringFileFixtures

    // MARK: Fingerprints

    @Test func fingerprintOfFixtureCheckpoints() throws {
        let llama = try F.fingerprint("llama")
        #expect(llama.architecture == "LlamaForCausalLM")
        #expect(llama.modelType == "llama")
        #expect(llama.hiddenSize == 64)
        #expect(llama.layerCount == 2)
        #expect(llama.weightsHeaderHash.hasPrefix("fnv1a64:") && llama.weightsHeaderHash.count == 8 + 16)
        #expect(try F.fingerprint("llama") == llama, "the fingerprint is deterministic")

        let qwen = try F.fingerprint("qwen2")
        #expect(qwen.architecture == "Qwen2ForCausalLM")
        #expect(qwen.weightsHeaderHash != llama.weightsHeaderHash)
        // Same weights in another dtype are another checkpoint.
        #expect(try F.fingerprint("llama-bf16").weightsHeaderHash != llama.weightsHeaderHash)
        // The single-file path of a checkpoint fingerprints the same.
        #expect(try ModelFingerprint(directory: F.directory("llama") + "/model.safetensors") == llama)
    }

    @Test func fnv1a64MatchesPublishedVectors() {
        var empty = FNV1a64()
        empty.add([UInt8]())
        #expect(empty.text == "fnv1a64:cbf29ce484222325")
        var a = FNV1a64()
        a.add(Array("a".utf8))
        #expect(a.text == "fnv1a64:af63dc4c8601ec8c")
        var foobar = FNV1a64()
        foobar.add(Array("foobar".utf8))
        #expect(foobar.text == "fnv1a64:85944171f73967e8")
    }

    @Test func fingerprintOfMissingDirectoryIsOneLine() {
        let error = #expect(throws: TillerError.self) { try ModelFingerprint(directory: "/nonexistent/tiller-model") }
        #expect(error?.description.contains("/nonexistent/tiller-model") == true)
    }

    // MARK: Round trips

    static let cases: [(PSRActivation, PSRActivation, SteeringLocation, Float)] = [
        (.constant, .relu, .all, 1),
        (.relu, .identity, .answerOnly, -2.75),
        (.identity, .constant, .questionAndAnswer, 0.1),
        (.constant, .constant, .all, 3.4028235e38),
    ]

    @Test(arguments: 0..<cases.count)
    func roundTripKeepsEverything(_ index: Int) throws {
        let (first, second, location, alpha) = Self.cases[index]
        let model = try F.fingerprint("llama")
        let intervention = Intervention(
            method: "method-\(index)",
            heads: [0: F.head(first, size: 64, seed: UInt64(10 * index)), 1: F.head(second, size: 64, seed: UInt64(10 * index + 5))],
            location: location, alpha: alpha)
        let notes = ["tiller.source": "test \(index)", "comment": "quotes \" and \\ and / and ünïcödé\nnew line"]
        let dir = try SteeringTempDirectory()
        defer { dir.cleanup() }
        let path = dir.file("s.safetensors")
        try SteeringFile.save(intervention, model: model, metadata: notes, to: path)

        let read = try SteeringFile.read(path: path)
        #expect(read.intervention == intervention)
        #expect(read.model == model)
        #expect(read.metadata == notes)
        #expect(read.intervention.alpha.bitPattern == alpha.bitPattern)
        #expect(try SteeringFile.load(path: path, for: model) == intervention)
        // Writing what was read gives the same bytes.
        #expect(try read.encode() == (try Data(contentsOf: URL(fileURLWithPath: path))))

        // It is an ordinary safetensors file with the documented names and metadata.
        let raw = try SafetensorsFile(path: path)
        #expect(raw.tensorNames == ["layers.0.bias", "layers.0.w", "layers.0.z", "layers.1.bias", "layers.1.w", "layers.1.z"])
        let json = try #require(raw.metadata["tiller.steering"])
        #expect(json.contains("\"hook_point\":\"residual_post_block\""))
        #expect(json.contains("\"format_version\":1"))
        #expect(json.contains("\"location\":\"\(location.name)\""))
    }

    @Test func alphaIsStoredExactly() throws {
        let model = F.synthetic(layerCount: 1)
        for alpha: Float in [0.1, 1.0 / 3.0, -7.5e-12, 16_777_216, .leastNormalMagnitude, .leastNonzeroMagnitude, .greatestFiniteMagnitude, -0.0, 0.3] {
            let file = SteeringFile(intervention: Intervention(method: "m", heads: [0: .constant(F.values(64, seed: 1))], alpha: alpha), model: model)
            let dir = try SteeringTempDirectory()
            defer { dir.cleanup() }
            try file.write(to: dir.file("a.safetensors"))
            let back = try SteeringFile.read(path: dir.file("a.safetensors")).intervention.alpha
            #expect(back.bitPattern == alpha.bitPattern || (back == 0 && alpha == 0), "alpha \(alpha) came back as \(back)")
        }
    }

    // MARK: Another model

    @Test func fileForAnotherModelIsRefusedNamingBoth() throws {
        let llama = try F.fingerprint("llama"), qwen = try F.fingerprint("qwen2")
        let dir = try SteeringTempDirectory()
        defer { dir.cleanup() }
        let path = dir.file("llama.safetensors")
        try SteeringFile.save(Intervention(method: "diffmean", heads: [1: .constant(F.values(64, seed: 3))]), model: llama, to: path)

        let error = #expect(throws: TillerError.self) { try SteeringFile.load(path: path, for: qwen) }
        let message = error?.description ?? ""
        #expect(message.hasPrefix(path + ":"))
        #expect(message.contains("LlamaForCausalLM") && message.contains("Qwen2ForCausalLM"))
        #expect(message.contains(llama.weightsHeaderHash) && message.contains(qwen.weightsHeaderHash))
        #expect(!message.contains("\n"))

        // Asked not to insist on the same weights, the shapes fit and it loads.
        #expect(try SteeringFile.load(path: path, for: qwen, requireSameWeights: false).heads.keys.sorted() == [1])
        // The same weights in bf16 are another checkpoint too.
        #expect(throws: TillerError.self) { try SteeringFile.load(path: path, for: try F.fingerprint("llama-bf16")) }
    }

    @Test func hiddenSizeMismatchNamesBothSizes() throws {
        let dir = try SteeringTempDirectory()
        defer { dir.cleanup() }
        let path = dir.file("wide.safetensors")
        let wide = F.synthetic(hiddenSize: 128, layerCount: 2)
        try SteeringFile.save(Intervention(method: "pca", heads: [0: .constant(F.values(128, seed: 4))]), model: wide, to: path)
        for requireSameWeights in [true, false] {
            let error = #expect(throws: TillerError.self) {
                try SteeringFile.load(path: path, for: try F.fingerprint("llama"), requireSameWeights: requireSameWeights)
            }
            let message = error?.description ?? ""
            #expect(message.hasPrefix(path + ":"))
            #expect(message.contains("hidden size 128") && message.contains("hidden size 64"), "\(message)")
        }
    }

    @Test func layerTheModelLacksIsRefusedNamingBoth() throws {
        let dir = try SteeringTempDirectory()
        defer { dir.cleanup() }
        let path = dir.file("deep.safetensors")
        let deep = F.synthetic(hiddenSize: 64, layerCount: 6)
        try SteeringFile.save(Intervention(method: "psr", heads: [5: F.head(.relu, size: 64, seed: 5)]), model: deep, to: path)
        for requireSameWeights in [true, false] {
            let error = #expect(throws: TillerError.self) {
                try SteeringFile.load(path: path, for: try F.fingerprint("llama"), requireSameWeights: requireSameWeights)
            }
            let message = error?.description ?? ""
            #expect(message.hasPrefix(path + ":"))
            #expect(message.contains("layer 5") && message.contains("6 layers") && message.contains("2 layers"), "\(message)")
        }
        // Layers within reach but another layer count: refused when the weights must match.
        let shallow = dir.file("shallow.safetensors")
        try SteeringFile.save(Intervention(method: "psr", heads: [1: F.head(.relu, size: 64, seed: 6)]), model: deep, to: shallow)
        let error = #expect(throws: TillerError.self) { try SteeringFile.load(path: shallow, for: try F.fingerprint("llama")) }
        #expect(error?.description.contains("6 layers") == true && error?.description.contains("has 2") == true, "\(error?.description ?? "")")
        #expect(try SteeringFile.load(path: shallow, for: try F.fingerprint("llama"), requireSameWeights: false).layers == [1])
    }

    // MARK: Bad files

    /// A file with the tensors and metadata given, bypassing `SteeringFile`'s own checks.
    func writeRaw(_ path: String, _ entries: [SafetensorsWriter.Entry], json: String) throws {
        try SafetensorsWriter.write(entries, metadata: ["tiller.steering": json], to: path)
    }

    func validParts(layers: [Int] = [0, 1]) throws -> (entries: [SafetensorsWriter.Entry], json: String) {
        var heads: [Int: SteeringHead] = [:]
        for l in layers { heads[l] = F.head(.relu, size: 64, seed: UInt64(l)) }
        let file = SteeringFile(intervention: Intervention(method: "psr", heads: heads), model: try F.fingerprint("llama"))
        var entries: [SafetensorsWriter.Entry] = []
        for l in layers {
            let h = heads[l]!
            entries += [.init(name: "layers.\(l).w", shape: [64], values: h.w), .init(name: "layers.\(l).bias", shape: [1], values: [h.bias]),
                        .init(name: "layers.\(l).z", shape: [64], values: h.z)]
        }
        return (entries, file.descriptionJSON())
    }

    func refusal(_ entries: [SafetensorsWriter.Entry], json: String) throws -> String {
        let dir = try SteeringTempDirectory()
        defer { dir.cleanup() }
        let path = dir.file("bad.safetensors")
        try writeRaw(path, entries, json: json)
        let error = #expect(throws: TillerError.self) { try SteeringFile.load(path: path, for: try F.fingerprint("llama")) }
        let message = error?.description ?? ""
        #expect(message.hasPrefix(path + ":"), "\(message)")
        #expect(!message.contains("\n"), "\(message)")
        return message
    }

    @Test func validPartsLoad() throws {
        let (entries, json) = try validParts()
        let dir = try SteeringTempDirectory()
        defer { dir.cleanup() }
        try writeRaw(dir.file("ok.safetensors"), entries, json: json)
        #expect(try SteeringFile.load(path: dir.file("ok.safetensors"), for: try F.fingerprint("llama")).layers == [0, 1])
    }

    @Test(arguments: [Float.nan, .infinity, -.infinity])
    func nonFiniteHeadIsRefusedNamingTheTensor(_ bad: Float) throws {
        for (tensor, index) in [(2, 17), (1, 0), (4, 0)] {  // layers.0.z[17], layers.0.bias, layers.1.bias
            var (entries, json) = try validParts()
            entries[tensor].values[index] = bad
            let message = try refusal(entries, json: json)
            #expect(message.contains("'\(entries[tensor].name)'") && message.contains("\(bad)"), "\(message)")
        }
        // And nothing non-finite is written in the first place.
        let file = SteeringFile(intervention: Intervention(method: "m", heads: [0: .constant([Float](repeating: bad, count: 64))]),
                                model: try F.fingerprint("llama"))
        #expect(throws: TillerError.self) { try file.encode() }
    }

    @Test func unknownFormatVersionIsRefused() throws {
        let (entries, json) = try validParts()
        let message = try refusal(entries, json: json.replacingOccurrences(of: "\"format_version\":1", with: "\"format_version\":2"))
        #expect(message.contains("format version 2") && message.contains("version 1"), "\(message)")
        let missing = try refusal(entries, json: json.replacingOccurrences(of: "\"format_version\":1,", with: ""))
        #expect(missing.contains("format_version"), "\(missing)")
    }

    @Test func missingExtraAndMisshapenTensorsAreRefused() throws {
        let (entries, json) = try validParts()
        var missing = entries
        missing.remove(at: 1)
        #expect(try refusal(missing, json: json).contains("'layers.0.bias'"))

        let extra = entries + [.init(name: "layers.7.w", shape: [64], values: F.values(64, seed: 9))]
        #expect(try refusal(extra, json: json).contains("'layers.7.w'"))

        var short = entries
        short[5] = .init(name: "layers.1.z", shape: [63], values: F.values(63, seed: 9))
        let message = try refusal(short, json: json)
        #expect(message.contains("'layers.1.z'") && message.contains("[63]") && message.contains("[64]"), "\(message)")

        var matrix = entries
        matrix[0] = .init(name: "layers.0.w", shape: [1, 64], values: entries[0].values)
        #expect(try refusal(matrix, json: json).contains("'layers.0.w'"))
    }

    @Test func badMetadataIsRefused() throws {
        let (entries, json) = try validParts()
        #expect(try refusal(entries, json: "{not json").contains("tiller.steering"))
        #expect(try refusal(entries, json: "[1]").contains("not a JSON object"))
        #expect(try refusal(entries, json: json.replacingOccurrences(of: "residual_post_block", with: "attention_out")).contains("attention_out"))
        #expect(try refusal(entries, json: json.replacingOccurrences(of: "\"location\":\"all\"", with: "\"location\":\"everywhere\"")).contains("everywhere"))
        #expect(try refusal(entries, json: json.replacingOccurrences(of: "\"relu\",\"relu\"", with: "\"relu\",\"gelu\"")).contains("gelu"))
        #expect(try refusal(entries, json: json.replacingOccurrences(of: "\"alpha\":1.0", with: "\"alpha\":1e39")).contains("alpha"))
        #expect(try refusal(entries, json: json.replacingOccurrences(of: "\"alpha\":1.0", with: "\"alpha\":\"big\"")).contains("alpha"))
        #expect(try refusal(entries, json: json.replacingOccurrences(of: "\"layers\":[0,1]", with: "\"layers\":[0,0]")).contains("twice"))
        #expect(try refusal(entries, json: json.replacingOccurrences(of: "\"layers\":[0,1]", with: "\"layers\":[0,true]")).contains("layers"))
        #expect(try refusal(entries, json: json.replacingOccurrences(of: "\"layers\":[0,1]", with: "\"layers\":[0,9]")).contains("layer 9"))
        #expect(try refusal(entries, json: json.replacingOccurrences(of: "\"layers\":[0,1]", with: "\"layers\":[0]")).contains("activations"))
    }

    @Test func aCheckpointIsNotASteeringFile() throws {
        let path = F.directory("llama") + "/model.safetensors"
        let error = #expect(throws: TillerError.self) { try SteeringFile.read(path: path) }
        #expect(error?.description.contains("not a Tiller steering file") == true)
        #expect(throws: TillerError.self) { try SteeringFile.read(path: "/nonexistent/steer.safetensors") }
    }

    @Test func unwritableInterventionsAreRefused() throws {
        let model = try F.fingerprint("llama")
        func refused(_ iv: Intervention) -> Bool {
            (try? SteeringFile(intervention: iv, model: model).encode()) == nil
        }
        #expect(refused(Intervention(method: "m", heads: [:])))
        #expect(refused(Intervention(method: "m", heads: [0: .constant(F.values(64, seed: 1))], location: .mask(prompt: [true], generated: true))))
        #expect(refused(Intervention(method: "m", heads: [2: .constant(F.values(64, seed: 1))])))
        #expect(refused(Intervention(method: "m", heads: [0: .constant(F.values(32, seed: 1))])))
        #expect(refused(Intervention(method: "", heads: [0: .constant(F.values(64, seed: 1))])))
        #expect(refused(Intervention(method: "m", heads: [0: .constant(F.values(64, seed: 1))], alpha: .nan)))
    }
}
