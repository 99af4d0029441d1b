import Foundation
import Testing
import TillerCore
import TillerCPU
@testable import TillerModels

/// The error a throwing expression raised, as a TillerError (nil, recorded as an issue, otherwise).
private func tillerError(_ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) -> TillerError? {
    do {
        try body()
        Issue.record("expected a TillerError, nothing was thrown", sourceLocation: sourceLocation)
        return nil
    } catch let e as TillerError {
        return e
    } catch {
        Issue.record("expected a TillerError, got \(type(of: error)): \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

private func expectError(_ body: () throws -> Void, mentions words: [String], sourceLocation: SourceLocation = #_sourceLocation) {
    guard let e = tillerError(body, sourceLocation: sourceLocation) else { return }
    let text = e.description
    #expect(!text.contains("\n"), "error is not one line: \(text)", sourceLocation: sourceLocation)
    for w in words {
        #expect(text.contains(w), "error does not mention \(w): \(text)", sourceLocation: sourceLocation)
    }
}

/// Values that exercise rounding in every 16-bit format.
private func sampleValues(_ n: Int, seed: UInt64) -> [Float] {
    var rng = SplitMix64(seed: seed)
    return rng.uniforms(n, -3, 3)
}

@Suite struct SafetensorsFileTests {
    @Test func roundTripKeepsStorageDtypeOnEveryBackend() throws {
        let dir = try SafetensorsTempDirectory()
        defer { dir.cleanup() }
        let a = sampleValues(6, seed: 1), b = sampleValues(8, seed: 2), c = sampleValues(4, seed: 3)
        try writeSafetensors(dir.file("model.safetensors"), [
            ("a.f32", "F32", [2, 3], safetensorsBytes(a, as: .f32)),
            ("b.f16", "F16", [8], safetensorsBytes(b, as: .f16)),
            ("c.bf16", "BF16", [2, 1, 2], safetensorsBytes(c, as: .bf16)),
        ], metadata: ["format": "pt"])
        let ckpt = try CheckpointDirectory(path: dir.path)
        #expect(ckpt.tensorNames == ["a.f32", "b.f16", "c.bf16"])
        for backend in SafetensorsTestBackends.all() {
            try SafetensorsTestBackends.with(backend) {
                let ta = try ckpt.load("a.f32", into: backend)
                let tb = try ckpt.load("b.f16", into: backend)
                let tc = try ckpt.load("c.bf16", into: backend, expectedShape: [2, 1, 2])
                #expect(ta.dtype == .f32 && ta.shape == [2, 3], "\(backend.name)")
                #expect(tb.dtype == .f16 && tb.shape == [8], "\(backend.name)")
                #expect(tc.dtype == .bf16 && tc.shape == [2, 1, 2], "\(backend.name)")
                try backend.synchronize()
                #expect(try backend.bytes(ta) == safetensorsBytes(a, as: .f32), "\(backend.name)")
                #expect(try backend.bytes(tb) == safetensorsBytes(b, as: .f16), "\(backend.name)")
                #expect(try backend.bytes(tc) == safetensorsBytes(c, as: .bf16), "\(backend.name)")
                #expect(try backend.floats(ta) == a, "\(backend.name)")
                #expect(try backend.floats(tb) == b.map { HalfConversion.f16ToFloat(HalfConversion.floatToF16($0)) }, "\(backend.name)")
                #expect(try backend.floats(tc) == c.map { HalfConversion.bf16ToFloat(HalfConversion.floatToBF16($0)) }, "\(backend.name)")
            }
        }
    }

    @Test(arguments: [true, false])
    func conversionsOnLoadMatchHalfConversion(padded: Bool) throws {
        // Unpadded, with a 1-byte tensor first: every tensor starts at an odd address.
        let dir = try SafetensorsTempDirectory()
        defer { dir.cleanup() }
        let v = sampleValues(5, seed: 7) + [0, -0.0, 65504, 1e-7, .infinity]
        let f16Bits = v.map(HalfConversion.floatToF16)
        let bf16Bits = v.map(HalfConversion.floatToBF16)
        let odd: [SafetensorsTestTensor] = padded ? [] : [("odd", "U8", [1], [7])]
        try writeSafetensors(dir.file("model.safetensors"), odd + [
            ("w32", "F32", [10], safetensorsBytes(v, as: .f32)),
            ("w16", "F16", [10], safetensorsBytes(v, as: .f16)),
            ("wbf", "BF16", [10], safetensorsBytes(v, as: .bf16)),
        ], pad: padded)
        let ckpt = try CheckpointDirectory(path: dir.path)
        for backend in SafetensorsTestBackends.all() {
            try SafetensorsTestBackends.with(backend) {
                let to16 = try ckpt.load("w32", into: backend, as: .f16)
                let toBF = try ckpt.load("w32", into: backend, as: .bf16)
                let from16 = try ckpt.load("w16", into: backend, as: .f32)
                let fromBF = try ckpt.load("wbf", into: backend, as: .f32)
                let f16ToBF = try ckpt.load("w16", into: backend, as: .bf16)
                let same = try ckpt.load("w32", into: backend, as: .f32)
                try backend.synchronize()
                #expect(to16.dtype == .f16 && toBF.dtype == .bf16 && from16.dtype == .f32 && f16ToBF.dtype == .bf16)
                #expect(try backend.bytes(to16) == f16Bits.withUnsafeBytes { Array($0) }, "\(backend.name)")
                #expect(try backend.bytes(toBF) == bf16Bits.withUnsafeBytes { Array($0) }, "\(backend.name)")
                #expect(try backend.floats(from16) == f16Bits.map(HalfConversion.f16ToFloat), "\(backend.name)")
                #expect(try backend.floats(fromBF) == bf16Bits.map(HalfConversion.bf16ToFloat), "\(backend.name)")
                #expect(try backend.bytes(f16ToBF) == f16Bits.map { HalfConversion.floatToBF16(HalfConversion.f16ToFloat($0)) }.withUnsafeBytes { Array($0) })
                #expect(try backend.floats(same) == v, "\(backend.name)")
            }
        }
        expectError({ _ = try ckpt.load("w32", into: ReferenceBackend(), as: .i32) }, mentions: ["w32", "model.safetensors"])
    }

    @Test func entriesMetadataAndViews() throws {
        let dir = try SafetensorsTempDirectory()
        defer { dir.cleanup() }
        let path = dir.file("weights.safetensors")
        try writeSafetensors(path, [
            ("scalar", "F32", [], safetensorsBytes([2.5], as: .f32)),
            ("empty", "F16", [0, 3], []),
            ("m", "BF16", [3, 2], safetensorsBytes([1, 2, 3, 4, 5, 6], as: .bf16)),
            ("ids", "I64", [2], [UInt8](repeating: 1, count: 16)),
        ], metadata: ["format": "pt", "note": "quote \" and \\ and\nnewline"])
        let file = try SafetensorsFile(path: path)
        #expect(file.path == path)
        #expect(file.metadata == ["format": "pt", "note": "quote \" and \\ and\nnewline"])
        #expect(Set(file.entries.keys) == ["scalar", "empty", "m"])
        #expect(file.unsupportedEntries == ["ids": "I64"])
        #expect(file.dataByteCount == 4 + 12 + 16)
        let m = try #require(file.entries["m"])
        #expect(m.name == "m" && m.dtype == .bf16 && m.shape == [3, 2] && m.byteRange == 4..<16)
        #expect(HostEncoding.decode(file.bytes(m), as: .bf16) == [1, 2, 3, 4, 5, 6])
        let scalar = try #require(file.entries["scalar"])
        #expect(scalar.shape == [] && scalar.byteRange == 0..<4)
        #expect(HostEncoding.decode(file.bytes(scalar), as: .f32) == [2.5])
        #expect(file.entries["empty"]?.byteRange.isEmpty == true)
        #expect(file.bytes(file.entries["empty"]!).count == 0)

        let ckpt = try CheckpointDirectory(path: path) // a lone file is accepted too
        let backend = ReferenceBackend()
        #expect(try ckpt.load("empty", into: backend).shape == [0, 3])
        #expect(try backend.floats(ckpt.load("scalar", into: backend)) == [2.5])
        #expect(try backend.floats(ckpt.load("m", into: backend, as: .f32)) == [1, 2, 3, 4, 5, 6])
    }

    @Test func unsupportedDtypeIsReportedWhenAskedFor() throws {
        let dir = try SafetensorsTempDirectory()
        defer { dir.cleanup() }
        try writeSafetensors(dir.file("model.safetensors"), [
            ("w", "F32", [2], safetensorsBytes([1, 2], as: .f32)),
            ("q.weight", "I8", [4], [1, 2, 3, 4]),
            ("f8", "F8_E4M3", [2], [0, 0]),
        ])
        let ckpt = try CheckpointDirectory(path: dir.path)
        #expect(ckpt.has("q.weight") && ckpt.has("f8") && ckpt.has("w"))
        #expect(ckpt.tensorNames == ["f8", "q.weight", "w"])
        expectError({ _ = try ckpt.entry("q.weight") }, mentions: ["unsupported dtype I8", "q.weight", "model.safetensors"])
        expectError({ _ = try ckpt.load("f8", into: ReferenceBackend()) }, mentions: ["F8_E4M3", "f8", "model.safetensors"])
        #expect(try ckpt.entry("w").shape == [2])
    }

    @Test func shardedDirectoryThroughTheIndex() throws {
        let dir = try SafetensorsTempDirectory()
        defer { dir.cleanup() }
        let e = sampleValues(12, seed: 11), n = sampleValues(4, seed: 12), l = sampleValues(12, seed: 13)
        let shard1 = "model-00001-of-00002.safetensors", shard2 = "model-00002-of-00002.safetensors"
        try writeSafetensors(dir.file(shard1), [
            ("model.embed_tokens.weight", "BF16", [3, 4], safetensorsBytes(e, as: .bf16)),
            ("model.norm.weight", "F32", [4], safetensorsBytes(n, as: .f32)),
        ])
        try writeSafetensors(dir.file(shard2), [
            ("lm_head.weight", "F16", [3, 4], safetensorsBytes(l, as: .f16)),
        ])
        let index = """
        {"metadata": {"total_size": 84},
         "weight_map": {"lm_head.weight": "\(shard2)", "model.embed_tokens.weight": "\(shard1)", "model.norm.weight": "\(shard1)"}}
        """
        try writeBytes(dir.file("model.safetensors.index.json"), Array(index.utf8))
        try writeBytes(dir.file("config.json"), Array("{\"hidden_size\": 4}".utf8))

        let ckpt = try CheckpointDirectory(path: dir.path)
        #expect(ckpt.path == dir.path)
        #expect(ckpt.tensorNames == ["lm_head.weight", "model.embed_tokens.weight", "model.norm.weight"])
        #expect(ckpt.files.count == 2)
        #expect(try ckpt.file(for: "lm_head.weight").path.hasSuffix(shard2))
        #expect(try ckpt.file(for: "model.norm.weight").path.hasSuffix(shard1))
        #expect(try ckpt.entry("model.embed_tokens.weight").dtype == .bf16)
        #expect(String(decoding: try ckpt.configData(), as: UTF8.self) == "{\"hidden_size\": 4}")
        for backend in SafetensorsTestBackends.all() {
            try SafetensorsTestBackends.with(backend) {
                let emb = try ckpt.load("model.embed_tokens.weight", into: backend, as: .f32, expectedShape: [3, 4])
                let norm = try ckpt.load("model.norm.weight", into: backend, expectedShape: [4])
                let head = try ckpt.load("lm_head.weight", into: backend, expectedShape: [3, 4])
                try backend.synchronize()
                #expect(try backend.floats(emb) == e.map { HalfConversion.bf16ToFloat(HalfConversion.floatToBF16($0)) })
                #expect(try backend.floats(norm) == n)
                #expect(head.dtype == .f16)
                #expect(try backend.floats(head) == l.map { HalfConversion.f16ToFloat(HalfConversion.floatToF16($0)) })
            }
        }
    }

    @Test func tiedAndMissingTensors() throws {
        let dir = try SafetensorsTempDirectory()
        defer { dir.cleanup() }
        try writeSafetensors(dir.file("model.safetensors"), [
            ("model.embed_tokens.weight", "F32", [2, 2], safetensorsBytes([1, 2, 3, 4], as: .f32)),
        ])
        let ckpt = try CheckpointDirectory(path: dir.path)
        // A tied checkpoint has no lm_head: callers check `has` and fall back to the embedding.
        #expect(!ckpt.has("lm_head.weight"))
        #expect(ckpt.has("model.embed_tokens.weight"))
        expectError({ _ = try ckpt.entry("lm_head.weight") }, mentions: ["lm_head.weight", dir.path])
        expectError({ _ = try ckpt.load("model.layers.0.mlp.up_proj.weight", into: ReferenceBackend()) },
                    mentions: ["model.layers.0.mlp.up_proj.weight", dir.path])
    }

    @Test func expectedShapeContradictingTheWeights() throws {
        let dir = try SafetensorsTempDirectory()
        defer { dir.cleanup() }
        try writeSafetensors(dir.file("model.safetensors"), [
            ("model.layers.0.self_attn.q_proj.weight", "F16", [4, 2], safetensorsBytes([Float](repeating: 1, count: 8), as: .f16)),
        ])
        let ckpt = try CheckpointDirectory(path: dir.path)
        expectError({ _ = try ckpt.load("model.layers.0.self_attn.q_proj.weight", into: CPUBackend(), expectedShape: [2, 4]) },
                    mentions: ["model.layers.0.self_attn.q_proj.weight", "model.safetensors", "[4, 2]", "[2, 4]"])
    }

    @Test func missingFilesAreNamed() throws {
        let dir = try SafetensorsTempDirectory()
        defer { dir.cleanup() }
        expectError({ _ = try CheckpointDirectory(path: dir.path) }, mentions: [dir.path, "model.safetensors"])
        expectError({ _ = try CheckpointDirectory(path: dir.path + "/nowhere") }, mentions: ["nowhere"])
        expectError({ _ = try SafetensorsFile(path: dir.file("absent.safetensors")) }, mentions: ["absent.safetensors"])
        expectError({ _ = try SafetensorsFile(path: dir.path) }, mentions: [dir.path])

        try writeSafetensors(dir.file("model.safetensors"), [("w", "F32", [1], safetensorsBytes([1], as: .f32))])
        let ckpt = try CheckpointDirectory(path: dir.path)
        expectError({ _ = try ckpt.configData() }, mentions: [dir.path + "/config.json"])

        // An index that names a missing shard, a tensor its shard lacks, or is not JSON.
        let index = dir.file("model.safetensors.index.json")
        try writeBytes(index, Array(#"{"weight_map": {"w": "model-00002.safetensors"}}"#.utf8))
        expectError({ _ = try CheckpointDirectory(path: dir.path) }, mentions: ["model.safetensors.index.json", "model-00002.safetensors"])
        try writeBytes(index, Array(#"{"weight_map": {"w": "model.safetensors", "v": "model.safetensors"}}"#.utf8))
        expectError({ _ = try CheckpointDirectory(path: dir.path) }, mentions: ["'v'", "model.safetensors"])
        try writeBytes(index, Array(#"{"weight_map": {"w": "../model.safetensors"}}"#.utf8))
        expectError({ _ = try CheckpointDirectory(path: dir.path) }, mentions: ["model.safetensors.index.json", "../model.safetensors"])
        try writeBytes(index, Array(#"{"weight_map": ["#.utf8))
        expectError({ _ = try CheckpointDirectory(path: dir.path) }, mentions: ["model.safetensors.index.json", "JSON"])
        try writeBytes(index, Array(#"{"metadata": {}}"#.utf8))
        expectError({ _ = try CheckpointDirectory(path: dir.path) }, mentions: ["model.safetensors.index.json", "weight_map"])
    }
}

/// A corrupted file and what its error must say besides the file name.
struct SafetensorsCorruption: Sendable, CustomStringConvertible {
    let label: String
    let bytes: [UInt8]
    let mentions: [String]
    var description: String { label }

    init(_ label: String, _ bytes: [UInt8], mentions: [String] = []) {
        self.label = label
        self.bytes = bytes
        self.mentions = mentions
    }

    /// A header (as text) over `dataBytes` zero bytes.
    init(_ label: String, header: String, dataBytes: Int = 8, mentions: [String] = []) {
        self.init(label, safetensorsFileBytes(header: Array(header.utf8), data: [UInt8](repeating: 0, count: dataBytes)), mentions: mentions)
    }

    static func lengthPrefix(_ n: UInt64, rest: [UInt8]) -> [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: n >> (8 * UInt64($0))) } + rest
    }

    static let valid = #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#

    static let all: [SafetensorsCorruption] = [
        .init("empty file", []),
        .init("shorter than the length prefix", [1, 0, 0]),
        .init("header length past the end", lengthPrefix(UInt64(valid.utf8.count + 9), rest: Array(valid.utf8) + [UInt8](repeating: 0, count: 8)),
              mentions: ["past the end"]),
        .init("absurd header length", lengthPrefix(UInt64.max, rest: Array(valid.utf8)), mentions: ["absurdly large"]),
        .init("header length just over the limit", lengthPrefix(100_000_001, rest: Array(valid.utf8)), mentions: ["absurdly large"]),
        .init("zero header length", lengthPrefix(0, rest: [])),
        .init("not JSON", header: #"{"w": {"dtype": "F32", "#, mentions: ["JSON"]),
        .init("garbage after the JSON", header: #"{} x"#, mentions: ["JSON"]),
        .init("not an object", header: "[1, 2]", mentions: ["not a JSON object"]),
        .init("a string", header: "\"hello\"", mentions: ["not a JSON object"]),
        .init("invalid UTF-8 in a name", safetensorsFileBytes(header: Array(#"{""#.utf8) + [0xFF, 0xFE] + Array(#"":{}}"#.utf8), data: []),
              mentions: ["UTF-8"]),
        .init("deep nesting", header: #"{"w":"# + String(repeating: "[", count: 5000) + String(repeating: "]", count: 5000) + "}",
              mentions: ["nested"]),
        .init("entry not an object", header: #"{"w": 3}"#, mentions: ["'w'"]),
        .init("missing dtype", header: #"{"w":{"shape":[2],"data_offsets":[0,8]}}"#, mentions: ["'w'", "dtype"]),
        .init("missing shape", header: #"{"w":{"dtype":"F32","data_offsets":[0,8]}}"#, mentions: ["'w'", "shape"]),
        .init("missing data_offsets", header: #"{"w":{"dtype":"F32","shape":[2]}}"#, mentions: ["'w'", "data_offsets"]),
        .init("dtype not a string", header: #"{"w":{"dtype":5,"shape":[2],"data_offsets":[0,8]}}"#, mentions: ["'w'", "dtype"]),
        .init("shape not an array", header: #"{"w":{"dtype":"F32","shape":"2","data_offsets":[0,8]}}"#, mentions: ["'w'", "shape"]),
        .init("fractional dimension", header: #"{"w":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}}"#, mentions: ["'w'", "integer"]),
        .init("negative dimension", header: #"{"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#, mentions: ["'w'", "negative"]),
        .init("shape product overflows", header: #"{"w":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,8]}}"#,
              mentions: ["'w'", "too many"]),
        .init("byte count overflows", header: #"{"w":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,8]}}"#,
              mentions: ["'w'"]),
        .init("data_offsets with three entries", header: #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4,8]}}"#,
              mentions: ["'w'", "data_offsets"]),
        .init("data_offsets not numbers", header: #"{"w":{"dtype":"F32","shape":[2],"data_offsets":["0","8"]}}"#,
              mentions: ["'w'", "data_offsets"]),
        .init("offset beyond Int", header: #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,99999999999999999999999]}}"#,
              mentions: ["'w'", "data_offsets"]),
        .init("negative offset", header: #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}}"#, mentions: ["'w'", "negative"]),
        .init("offsets outside the data section", header: #"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#,
              mentions: ["'w'", "outside the data section"]),
        .init("begin after end", header: #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#, mentions: ["'w'", "begin after end"]),
        .init("overlapping tensors", header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
              dataBytes: 12, mentions: ["'a'", "'b'", "overlap"]),
        .init("overlap hidden behind an empty tensor", header: #"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},"e":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}"#,
              dataBytes: 16, mentions: ["'a'", "'b'", "overlap"]),
        .init("byte count differs from the shape", header: #"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#,
              mentions: ["'w'", "12", "8"]),
        .init("unsupported dtype of the wrong size", header: #"{"w":{"dtype":"I64","shape":[2],"data_offsets":[0,8]}}"#,
              mentions: ["'w'", "I64"]),
        .init("duplicate tensor name", header: #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
              mentions: ["duplicate", "w"]),
        .init("metadata not an object", header: #"{"__metadata__": [1]}"#, mentions: ["__metadata__"]),
        .init("metadata value not a string", header: #"{"__metadata__": {"format": 1}}"#, mentions: ["__metadata__", "format"]),
        .init("control character in a name", header: "{\"a\u{1}b\":{}}", mentions: ["control character"]),
        .init("lone surrogate", header: #"{"\ud800":{}}"#, mentions: ["surrogate"]),
    ]
}

@Suite struct SafetensorsCorruptionTests {
    @Test(arguments: SafetensorsCorruption.all)
    func corruptionIsAnErrorNamingTheFile(_ corruption: SafetensorsCorruption) throws {
        let dir = try SafetensorsTempDirectory()
        defer { dir.cleanup() }
        let path = dir.file("corrupt.safetensors")
        try writeBytes(path, corruption.bytes)
        expectError({ _ = try SafetensorsFile(path: path) }, mentions: ["corrupt.safetensors"] + corruption.mentions)
        // The same file as a checkpoint's model.safetensors fails the same way.
        try writeBytes(dir.file("model.safetensors"), corruption.bytes)
        expectError({ _ = try CheckpointDirectory(path: dir.path) }, mentions: ["model.safetensors"] + corruption.mentions)
    }

    @Test func theValidBaseOfTheCorruptionsParses() throws {
        let dir = try SafetensorsTempDirectory()
        defer { dir.cleanup() }
        let path = dir.file("ok.safetensors")
        try writeBytes(path, safetensorsFileBytes(header: Array(SafetensorsCorruption.valid.utf8), data: [UInt8](repeating: 0, count: 8)))
        #expect(try SafetensorsFile(path: path).entries["w"]?.shape == [2])
        // Gaps between tensors and trailing bytes are tolerated.
        try writeBytes(path, safetensorsFileBytes(header: Array(#"{"a":{"dtype":"F16","shape":[1],"data_offsets":[2,4]}}"#.utf8),
                                                  data: [UInt8](repeating: 0, count: 10)))
        #expect(try SafetensorsFile(path: path).entries["a"]?.byteRange == 2..<4)
    }
}

@Suite struct SafetensorsFuzzTests {
    /// Mutates the header and length prefix of a valid file thousands of times: every result
    /// must either parse (and then every entry reads and loads from inside the mapping) or throw
    /// a TillerError. A trap fails the whole test run.
    @Test func mutatedHeadersNeverCrash() throws {
        let dir = try SafetensorsTempDirectory()
        defer { dir.cleanup() }
        let base = safetensorsFileBytes([
            ("model.embed_tokens.weight", "BF16", [3, 4], safetensorsBytes(sampleValues(12, seed: 1), as: .bf16)),
            ("model.norm.weight", "F32", [4], safetensorsBytes(sampleValues(4, seed: 2), as: .f32)),
            ("lm_head.weight", "F16", [2, 3], safetensorsBytes(sampleValues(6, seed: 3), as: .f16)),
            ("q", "I8", [5], [1, 2, 3, 4, 5]),
            ("e", "F32", [0, 7], []),
        ], metadata: ["format": "pt"])
        let headerEnd = 8 + Int(base[0]) + Int(base[1]) << 8
        let path = dir.file("fuzz.safetensors")
        let backend = ReferenceBackend()
        var rng = SplitMix64(seed: 0x5AFE_7E50)
        func random(_ n: Int) -> Int { Int(rng.next() % UInt64(max(n, 1))) }

        var parsed = 0, rejected = 0, loaded = 0
        let iterations = 3000
        for _ in 0..<iterations {
            var bytes = base
            for _ in 0...random(3) {
                let end = min(headerEnd, bytes.count)
                switch random(10) {
                case 0: // bit flip in prefix or header
                    if end > 0 { bytes[random(end)] ^= UInt8(1) << UInt8(random(8)) }
                case 1: // random byte replacement
                    if end > 0 { bytes[random(end)] = UInt8(truncatingIfNeeded: rng.next()) }
                case 2: // truncation at a random point
                    bytes.removeLast(random(bytes.count + 1))
                case 3: // garbage appended to the file
                    bytes += (0..<random(64)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                case 4: // garbage inserted into the header
                    if end > 8 {
                        bytes.insert(contentsOf: (0..<1 + random(8)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }, at: 8 + random(end - 8))
                    }
                case 5: // a digit replaced or two digits swapped
                    let digits = (8..<max(end, 8)).filter { bytes[$0] >= 0x30 && bytes[$0] <= 0x39 }
                    if let d = digits.randomElement(using: &rng) {
                        if random(2) == 0, let e = digits.randomElement(using: &rng) {
                            bytes.swapAt(d, e)
                        } else {
                            bytes[d] = UInt8(0x30 + random(10))
                        }
                    }
                case 6: // a structural character inserted
                    let specials: [UInt8] = Array("{}[]\",:-.0e\\ ".utf8)
                    if end > 8 { bytes.insert(specials[random(specials.count)], at: 8 + random(end - 8)) }
                case 7: // header length prefix: a small change or a random value
                    if bytes.count >= 8 {
                        var n: UInt64 = 0
                        for k in 0..<8 { n |= UInt64(bytes[k]) << (8 * UInt64(k)) }
                        switch random(3) {
                        case 0: n = n &+ UInt64(random(17)) &- 8
                        case 1: n = rng.next() >> UInt64(random(64))
                        default: n = UInt64(random(bytes.count + 16))
                        }
                        for k in 0..<8 { bytes[k] = UInt8(truncatingIfNeeded: n >> (8 * UInt64(k))) }
                    }
                case 8: // a digit inserted into a number (offsets and shapes grow)
                    let digits = (8..<max(end, 8)).filter { bytes[$0] >= 0x30 && bytes[$0] <= 0x39 }
                    if let d = digits.randomElement(using: &rng) { bytes.insert(UInt8(0x30 + random(10)), at: d) }
                default: // a header byte deleted
                    if end > 8 { bytes.remove(at: 8 + random(end - 8)) }
                }
            }
            try writeBytes(path, bytes)
            do {
                let file = try SafetensorsFile(path: path)
                parsed += 1
                #expect(file.fileByteCount == bytes.count)
                for entry in file.entries.values {
                    #expect(entry.byteRange.lowerBound >= 0 && entry.byteRange.upperBound <= file.dataByteCount)
                    let view = file.bytes(entry)
                    #expect(view.count == entry.count * entry.dtype.byteSize)
                    var sum: UInt8 = 0
                    for b in view { sum &+= b } // touches every byte of the view
                    _ = sum
                }
                let ckpt = try CheckpointDirectory(path: path)
                for name in ckpt.tensorNames {
                    guard file.entries[name] != nil else {
                        #expect(throws: TillerError.self) { try ckpt.entry(name) }
                        continue
                    }
                    let t = try ckpt.load(name, into: backend, as: .f32)
                    #expect(t.count == file.entries[name]!.count)
                    loaded += 1
                }
            } catch is TillerError {
                rejected += 1
            }
        }
        // The mutations must exercise both outcomes.
        #expect(parsed > 50, "parsed \(parsed), rejected \(rejected)")
        #expect(rejected > iterations / 2, "parsed \(parsed), rejected \(rejected)")
        #expect(loaded > 0)
    }
}
