import Foundation
import TillerCore
import TillerModels

/// Which model a steering file was made for: enough to refuse a file made for another model
/// before it steers anything. Two checkpoints have the same fingerprint when they have the same
/// architecture, hidden size and layer count and byte-identical safetensors headers (tensor
/// names, dtypes, shapes, offsets and `__metadata__`), so the same weights converted to another
/// dtype, or re-sharded, count as another model. The tensor data itself is not hashed: reading
/// every weight to open a steering file would cost more than the steering.
public struct ModelFingerprint: Sendable, Equatable {
    /// config.json's `architectures[0]`, e.g. "LlamaForCausalLM".
    public var architecture: String
    /// config.json's `model_type`, e.g. "llama" (what llama.cpp and repeng call the model's
    /// architecture in a control vector's `controlvector.model_hint`).
    public var modelType: String
    public var hiddenSize: Int
    public var layerCount: Int
    /// "fnv1a64:" and 16 hex digits: FNV-1a (64-bit) over every safetensors file's 8-byte header
    /// length and JSON header, the files in the order of their names.
    public var weightsHeaderHash: String

    public init(architecture: String, modelType: String, hiddenSize: Int, layerCount: Int, weightsHeaderHash: String) {
        self.architecture = architecture
        self.modelType = modelType
        self.hiddenSize = hiddenSize
        self.layerCount = layerCount
        self.weightsHeaderHash = weightsHeaderHash
    }

    /// The fingerprint of a checkpoint directory (config.json plus model.safetensors or the shards
    /// of model.safetensors.index.json). Reads the config and the headers only.
    /// A GGUF model file is fingerprinted the same way, over its header (magic, metadata and
    /// tensor table: everything before the tensor data).
    public init(directory: String) throws {
        if GGUFModelFile.isGGUF(directory) {
            let file = try GGUFModelFile(path: directory)
            let architecture = try file.architecture()
            var hash = FNV1a64()
            file.withHeaderBytes { hash.add($0) }
            self.init(architecture: architecture.rawValue, modelType: file.config.modelType ?? Self.defaultModelType(architecture),
                      hiddenSize: file.config.hiddenSize, layerCount: file.config.numHiddenLayers, weightsHeaderHash: hash.text)
            return
        }
        let checkpoint = try CheckpointDirectory(path: directory)
        let configPath = (checkpoint.path as NSString).appendingPathComponent(CheckpointDirectory.configFileName)
        let config = try ModelConfig.parse(try checkpoint.configData(), path: configPath)
        let architecture = try Architecture.of(config, path: configPath)
        var hash = FNV1a64()
        for file in checkpoint.files {
            try Self.hashHeader(of: file.path, into: &hash)
        }
        self.init(architecture: architecture.rawValue,
                  modelType: config.modelType ?? Self.defaultModelType(architecture),
                  hiddenSize: config.hiddenSize, layerCount: config.numHiddenLayers,
                  weightsHeaderHash: hash.text)
    }

    /// One line for messages: "LlamaForCausalLM, hidden size 64, 2 layers, weights fnv1a64:...".
    public var summary: String {
        "\(architecture), hidden size \(hiddenSize), \(layerCount) layer\(layerCount == 1 ? "" : "s"), weights \(weightsHeaderHash)"
    }

    static func defaultModelType(_ architecture: Architecture) -> String {
        switch architecture {
        case .llama: return "llama"
        case .qwen2: return "qwen2"
        case .gemma2: return "gemma2"
        case .mistral: return "mistral"
        }
    }

    /// Feeds the header length prefix and the JSON header of a safetensors file (already
    /// validated by `SafetensorsFile`) to the hash.
    static func hashHeader(of path: String, into hash: inout FNV1a64) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw TillerError.io(path: path, detail: "cannot open to fingerprint the checkpoint")
        }
        defer { try? handle.close() }
        do {
            let prefix = try handle.read(upToCount: 8) ?? Data()
            guard prefix.count == 8 else { throw TillerError.io(path: path, detail: "too short to fingerprint") }
            var length: UInt64 = 0
            for (k, b) in prefix.enumerated() { length |= UInt64(b) << (8 * UInt64(k)) }
            guard length <= UInt64(SafetensorsFile.maxHeaderBytes) else {
                throw TillerError.io(path: path, detail: "safetensors header length \(length) is absurdly large")
            }
            let header = try handle.read(upToCount: Int(length)) ?? Data()
            guard header.count == Int(length) else { throw TillerError.io(path: path, detail: "header truncated while fingerprinting") }
            hash.add(prefix)
            hash.add(header)
        } catch let error as TillerError {
            throw error
        } catch {
            throw TillerError.io(path: path, detail: "cannot read to fingerprint the checkpoint (\(ErrorReason.file(error, path: path)))")
        }
    }
}

/// FNV-1a, 64-bit: small, dependency-free and plenty to tell checkpoints apart (it is not a
/// defence against someone forging a header).
struct FNV1a64 {
    private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    mutating func add<Bytes: Sequence>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        for b in bytes {
            value ^= UInt64(b)
            value = value &* 0x0000_0100_0000_01b3
        }
    }

    var text: String {
        let hex = String(value, radix: 16)
        return "fnv1a64:" + String(repeating: "0", count: 16 - hex.count) + hex
    }
}
