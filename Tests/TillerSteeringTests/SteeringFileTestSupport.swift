import Foundation
import TillerCore
@testable import TillerSteering

/// The tiny checkpoints written by scripts/fixtures/make_model_fixtures.py (Tests/Fixtures/models).
enum SteeringFileFixtures {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/models")

    static func directory(_ name: String) -> String { root.appendingPathComponent(name).path }

    static func fingerprint(_ name: String) throws -> ModelFingerprint {
        try ModelFingerprint(directory: directory(name))
    }

    /// A made-up model, for sizes the fixtures do not have.
    static func synthetic(hiddenSize: Int = 64, layerCount: Int) -> ModelFingerprint {
        ModelFingerprint(architecture: "LlamaForCausalLM", modelType: "llama", hiddenSize: hiddenSize,
                         layerCount: layerCount, weightsHeaderHash: "fnv1a64:0123456789abcdef")
    }

    static func values(_ n: Int, seed: UInt64, scale: Float = 1) -> [Float] {
        var rng = SplitMix64(seed: seed)
        return rng.uniforms(n, -scale, scale)
    }

    static func head(_ activation: PSRActivation, size: Int, seed: UInt64) -> SteeringHead {
        switch activation {
        case .constant: return .constant(values(size, seed: seed))
        case .identity: return .projection(u: values(size, seed: seed), cBar: 0.375)
        case .relu: return SteeringHead(w: values(size, seed: seed), bias: -0.125, z: values(size, seed: seed + 1), activation: .relu)
        }
    }
}

/// A scratch directory removed by `cleanup()`.
struct SteeringTempDirectory {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory.path + "/tiller-steering-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func file(_ name: String) -> String { path + "/" + name }

    func cleanup() { try? FileManager.default.removeItem(atPath: path) }
}

/// Little-endian bytes written by hand, to build GGUF files independently of the writer under test.
struct HandBytes {
    var bytes: [UInt8] = []

    mutating func raw(_ b: [UInt8]) { bytes += b }
    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u32(_ v: UInt32) { for k in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * UInt32(k)))) } }
    mutating func i32(_ v: Int32) { u32(UInt32(bitPattern: v)) }
    mutating func u64(_ v: UInt64) { for k in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(k)))) } }
    mutating func f32(_ v: Float) { u32(v.bitPattern) }
    mutating func f16(_ v: Float) {
        let h = HalfConversion.floatToF16(v)
        bytes.append(UInt8(truncatingIfNeeded: h))
        bytes.append(UInt8(truncatingIfNeeded: h >> 8))
    }
    /// A GGUF string: u64 length, UTF-8 bytes.
    mutating func string(_ s: String) { u64(UInt64(s.utf8.count)); bytes += Array(s.utf8) }
    mutating func zeros(_ n: Int) { bytes += [UInt8](repeating: 0, count: n) }
    mutating func pad(_ alignment: Int) { while bytes.count % alignment != 0 { bytes.append(0) } }
}

/// Writes bytes to a file (tests only).
func writeFile(_ path: String, _ bytes: [UInt8]) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}
