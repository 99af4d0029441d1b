import Foundation
import TillerCore

/// A checkpoint in the Hugging Face layout: a directory holding `config.json` and either one
/// `model.safetensors` or the shards listed in `model.safetensors.index.json` ("weight_map":
/// tensor name -> shard file name). Every shard is memory-mapped and its header validated when
/// the directory is opened; tensor data is read only when a tensor is loaded.
///
/// A path to a single `.safetensors` file is accepted too; its directory is then the checkpoint
/// directory (for `config.json`).
public final class CheckpointDirectory: @unchecked Sendable {
    public static let singleFileName = "model.safetensors"
    public static let indexFileName = "model.safetensors.index.json"
    public static let configFileName = "config.json"

    /// The checkpoint directory.
    public let path: String
    /// The opened safetensors files, in the order of their names.
    public let files: [SafetensorsFile]
    /// Which file holds each tensor.
    private let location: [String: SafetensorsFile]

    public init(path: String) throws {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw TillerError.io(path: path, detail: "checkpoint not found: no such file or directory")
        }
        if !isDirectory.boolValue {
            // A lone safetensors file.
            let file = try SafetensorsFile(path: path)
            self.path = (path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent
            files = [file]
            location = Self.index(file)
            return
        }
        self.path = path
        let indexPath = Self.join(path, Self.indexFileName)
        let singlePath = Self.join(path, Self.singleFileName)
        if fm.fileExists(atPath: indexPath) {
            (files, location) = try Self.openSharded(directory: path, indexPath: indexPath)
        } else if fm.fileExists(atPath: singlePath) {
            let file = try SafetensorsFile(path: singlePath)
            files = [file]
            location = Self.index(file)
        } else {
            throw TillerError.io(path: path, detail: "no \(Self.singleFileName) or \(Self.indexFileName) in the checkpoint directory")
        }
    }

    /// Every tensor name in the checkpoint, sorted.
    public var tensorNames: [String] { location.keys.sorted() }

    /// Whether the checkpoint has a tensor of this name (whatever its dtype).
    public func has(_ name: String) -> Bool { location[name] != nil }

    /// The file holding a tensor.
    public func file(for name: String) throws -> SafetensorsFile {
        guard let file = location[name] else {
            throw TillerError.io(path: path, detail: "tensor '\(JSONValue.excerpt(name))' is not in the checkpoint (\(location.count) tensors in \(files.count) file\(files.count == 1 ? "" : "s"))")
        }
        return file
    }

    public func entry(_ name: String) throws -> SafetensorsEntry {
        try file(for: name).entry(name)
    }

    /// The tensor's bytes as stored, a view into its file's mapping (valid while this object lives).
    public func bytes(_ name: String) throws -> UnsafeRawBufferPointer {
        let file = try file(for: name)
        return file.bytes(try file.entry(name))
    }

    /// Uploads a tensor to the backend, keeping f16/bf16 storage unless `as` asks for another dtype
    /// (f32 <-> f16/bf16 conversion on the host). Checks `expectedShape` when given: a config that
    /// contradicts the weights gets an error naming the tensor, the file, and both shapes.
    public func load(_ name: String, into backend: Backend, as dtype: DType? = nil, expectedShape: [Int]? = nil) throws -> Tensor {
        let file = try file(for: name)
        let entry = try file.entry(name)
        if let expected = expectedShape, expected != entry.shape {
            throw TillerError.shapeMismatch(
                op: "checkpoint",
                detail: "tensor '\(JSONValue.excerpt(name))' in \(file.path) has shape \(entry.shape) but the config implies \(expected)")
        }
        let target = dtype ?? entry.dtype
        guard target.isFloatingPoint else {
            throw TillerError.unsupported("loading tensor '\(JSONValue.excerpt(name))' from \(file.path) as \(target): weights load as f32, f16 or bf16")
        }
        let source = file.bytes(entry)
        let tensor = try backend.empty(entry.shape, target)
        if target == entry.dtype {
            try backend.upload(source, to: tensor)
        } else {
            try Self.convert(source, from: entry.dtype, to: target, count: entry.count) { try backend.upload($0, to: tensor) }
        }
        return tensor
    }

    /// The bytes of config.json (an error naming the path when it is missing).
    public func configData() throws -> Data {
        let configPath = Self.join(path, Self.configFileName)
        guard FileManager.default.fileExists(atPath: configPath) else {
            throw TillerError.io(path: configPath, detail: "missing \(Self.configFileName) in the checkpoint directory")
        }
        do {
            return try Data(contentsOf: URL(fileURLWithPath: configPath))
        } catch {
            throw TillerError.io(path: configPath, detail: "cannot read \(Self.configFileName): \(ErrorReason.file(error, path: configPath))")
        }
    }

    // MARK: Opening

    static func join(_ directory: String, _ name: String) -> String {
        directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }

    private static func index(_ file: SafetensorsFile) -> [String: SafetensorsFile] {
        var map: [String: SafetensorsFile] = [:]
        for name in file.entries.keys { map[name] = file }
        for name in file.unsupportedEntries.keys { map[name] = file }
        return map
    }

    private static func openSharded(directory: String, indexPath: String) throws -> ([SafetensorsFile], [String: SafetensorsFile]) {
        func bad(_ detail: String) -> TillerError { .io(path: indexPath, detail: detail) }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: indexPath))
        } catch {
            throw bad("cannot read the shard index: \(ErrorReason.file(error, path: indexPath))")
        }
        let json: JSONValue
        do {
            json = try data.withUnsafeBytes { try JSONValue.parse($0) }
        } catch let e as JSONValue.ParseError {
            throw bad("shard index is not valid JSON: \(e.description)")
        }
        guard case .object = json else { throw bad("shard index is \(json.kindDescription), not a JSON object") }
        guard let weightMap = json["weight_map"] else { throw bad("shard index has no 'weight_map'") }
        guard case .object(let pairs) = weightMap else {
            throw bad("'weight_map' is \(weightMap.kindDescription), not an object")
        }

        var shardNames: [String] = []
        var assignment: [(tensor: String, shard: String)] = []
        for (tensor, value) in pairs {
            guard case .string(let shard) = value else {
                throw bad("'weight_map' entry for tensor '\(JSONValue.excerpt(tensor))' is \(value.kindDescription), not a file name")
            }
            let components = shard.split(separator: "/", omittingEmptySubsequences: false)
            guard !shard.isEmpty, !shard.hasPrefix("/"), !components.contains(".."), !shard.contains("\0") else {
                throw bad("'weight_map' names shard '\(JSONValue.excerpt(shard))' for tensor '\(JSONValue.excerpt(tensor))', which is not a file inside the checkpoint directory")
            }
            if !shardNames.contains(shard) { shardNames.append(shard) }
            assignment.append((tensor, shard))
        }
        guard !shardNames.isEmpty else { throw bad("'weight_map' lists no tensors") }

        var opened: [String: SafetensorsFile] = [:]
        for shard in shardNames.sorted() {
            let shardPath = join(directory, shard)
            guard FileManager.default.fileExists(atPath: shardPath) else {
                throw bad("shard \(shard) listed in 'weight_map' is missing (\(shardPath))")
            }
            opened[shard] = try SafetensorsFile(path: shardPath)
        }

        var location: [String: SafetensorsFile] = [:]
        for (tensor, shard) in assignment {
            guard let file = opened[shard] else { continue }
            guard file.entries[tensor] != nil || file.unsupportedEntries[tensor] != nil else {
                throw TillerError.io(path: file.path, detail: "tensor '\(JSONValue.excerpt(tensor))' is listed for this shard in \(indexFileName) but the shard does not hold it")
            }
            location[tensor] = file
        }
        // Tensors a shard holds that the index forgot are still reachable.
        let files = shardNames.sorted().compactMap { opened[$0] }
        for file in files {
            for name in file.entries.keys where location[name] == nil { location[name] = file }
            for name in file.unsupportedEntries.keys where location[name] == nil { location[name] = file }
        }
        return (files, location)
    }

    // MARK: Host conversion

    /// Converts `count` elements between f32, f16 and bf16 (the source may be unaligned: tensor
    /// data in a safetensors file need not be) and hands the converted bytes to `body`.
    static func convert<R>(_ source: UnsafeRawBufferPointer, from: DType, to: DType, count: Int,
                           _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        if count == 0 { return try body(UnsafeRawBufferPointer(start: nil, count: 0)) }
        guard from.isFloatingPoint, to.isFloatingPoint else {
            throw TillerError.unsupported("converting \(from) weights to \(to)")
        }
        guard source.count >= count * from.byteSize, let src = source.baseAddress else {
            throw TillerError.invalidArgument(op: "checkpoint", detail: "\(source.count) bytes for \(count) \(from) values")
        }
        // One loop per pair, with the dtype decisions outside it.
        switch (from, to) {
        case (.f16, .f32), (.bf16, .f32):
            let isF16 = from == .f16
            let out = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                for i in 0..<count {
                    let bits = src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)
                    buffer[i] = isF16 ? HalfConversion.f16ToFloat(bits) : HalfConversion.bf16ToFloat(bits)
                }
                initialized = count
            }
            return try out.withUnsafeBytes(body)
        case (.f32, .f16), (.f32, .bf16):
            let toF16 = to == .f16
            let out = [UInt16](unsafeUninitializedCapacity: count) { buffer, initialized in
                for i in 0..<count {
                    let v = src.loadUnaligned(fromByteOffset: 4 * i, as: Float.self)
                    buffer[i] = toF16 ? HalfConversion.floatToF16(v) : HalfConversion.floatToBF16(v)
                }
                initialized = count
            }
            return try out.withUnsafeBytes(body)
        case (.f16, .bf16), (.bf16, .f16):
            let fromF16 = from == .f16
            let out = [UInt16](unsafeUninitializedCapacity: count) { buffer, initialized in
                for i in 0..<count {
                    let bits = src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)
                    buffer[i] = fromF16 ? HalfConversion.floatToBF16(HalfConversion.f16ToFloat(bits))
                                        : HalfConversion.floatToF16(HalfConversion.bf16ToFloat(bits))
                }
                initialized = count
            }
            return try out.withUnsafeBytes(body)
        default: // same dtype
            return try body(UnsafeRawBufferPointer(start: src, count: count * from.byteSize))
        }
    }
}
