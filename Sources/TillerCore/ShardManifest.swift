import Foundation

/// The sidecar a shard writes next to its output once the output is complete ("OUT.shard.json",
/// docs/cluster.md). The output itself stays exactly what the unsharded command writes for those
/// lines (so it is usable alone, and the merge is byte-identical to the unsharded run); the
/// manifest says which run and shard it belongs to and how to tell it whole: its byte count and
/// SHA-256. An output without a manifest, or whose bytes no longer match it, is not complete.
public struct ShardManifest: Codable, Equatable, Sendable {
    public static let formatVersion = 1
    public static let suffix = ".shard.json"

    /// The output format, which says how `tiller merge` joins the shards.
    public enum Format: String, Codable, Sendable {
        /// One output line per input line, in input order (generate, lab eval --answers).
        case jsonLines = "jsonl"
        /// A capture file (safetensors): the rows of each triplet, in triplet order.
        case capture
    }

    public var version: Int
    public var runID: String
    /// The command that wrote the shard ("generate", "capture", "lab eval").
    public var command: String
    public var format: Format
    public var shard: Int
    public var shards: Int
    /// Lines of the whole input; this shard holds lines shard, shard + shards, ... of them.
    public var inputLines: Int
    /// Input lines this shard holds.
    public var lines: Int
    /// Which input lines (0-based, ascending) when the split is not by line index modulo the
    /// shard count: a capture splits by the unsharded run's batches (docs/cluster.md).
    public var indices: [Int]?
    /// The output's file name (in the manifest's directory).
    public var file: String
    public var bytes: Int
    public var sha256: String

    enum CodingKeys: String, CodingKey {
        case version, runID = "run_id", command, format, shard, shards, inputLines = "input_lines", lines, indices = "line_indices", file, bytes, sha256
    }

    public init(runID: String, command: String, format: Format, shard: Shard, inputLines: Int, lines: Int, indices: [Int]? = nil,
                file: String, bytes: Int, sha256: String) {
        version = Self.formatVersion
        self.runID = runID
        self.command = command
        self.format = format
        self.shard = shard.index
        self.shards = shard.count
        self.inputLines = inputLines
        self.lines = lines
        self.indices = indices
        self.file = file
        self.bytes = bytes
        self.sha256 = sha256
    }

    /// The manifest path of a shard output.
    public static func path(for output: String) -> String { output + suffix }

    /// Describes the complete output at `output` (hashing it) for `write`.
    public static func describing(_ output: String, runID: String, command: String, format: Format, shard: Shard,
                                  inputLines: Int, indices: [Int]? = nil) throws -> ShardManifest {
        ShardManifest(runID: runID, command: command, format: format, shard: shard, inputLines: inputLines,
                      lines: indices?.count ?? Shard.lineCount(shard: shard.index, of: shard.count, total: inputLines), indices: indices,
                      file: (output as NSString).lastPathComponent, bytes: try fileSize(output), sha256: try SHA256.hex(file: output))
    }

    /// Writes the manifest of `output` beside it (atomically, as every output).
    public func write(for output: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try OutputFile.write(try encoder.encode(self) + Data("\n".utf8), to: Self.path(for: output))
    }

    /// The manifest of `output`, or nil when there is none; a manifest that cannot be read is a
    /// one-line error naming it.
    public static func read(for output: String) throws -> ShardManifest? {
        let path = path(for: output)
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw TillerError.io(path: path, detail: "cannot read (\(ErrorReason.file(error, path: path)))")
        }
        let manifest: ShardManifest
        do { manifest = try JSONDecoder().decode(ShardManifest.self, from: data) } catch {
            throw TillerError.io(path: path, detail: "not a shard manifest (\(ErrorReason.decoding(error, json: data)))")
        }
        guard manifest.version == formatVersion else {
            throw TillerError.io(path: path, detail: "unknown shard manifest version \(manifest.version) (this Tiller reads version \(formatVersion))")
        }
        guard manifest.shards >= 1, manifest.shard >= 0, manifest.shard < manifest.shards, manifest.inputLines >= 0,
              manifest.lines == manifest.indices?.count ?? Shard.lineCount(shard: manifest.shard, of: manifest.shards, total: manifest.inputLines) else {
            throw TillerError.io(path: path, detail: "shard \(manifest.shard)/\(manifest.shards) of \(manifest.inputLines) input lines cannot hold \(manifest.lines) lines")
        }
        if let indices = manifest.indices {
            guard zip(indices, indices.dropFirst()).allSatisfy({ $0 < $1 }), indices.allSatisfy({ $0 >= 0 && $0 < manifest.inputLines }) else {
                throw TillerError.io(path: path, detail: "\"line_indices\" must be ascending input lines below \(manifest.inputLines)")
            }
        }
        return manifest
    }

    /// Why `output` is not the complete file this manifest describes, or nil when it is: its size
    /// and SHA-256 must match (a truncated, killed or later changed output does not).
    public func mismatch(_ output: String) throws -> String? {
        guard FileManager.default.fileExists(atPath: output) else { return "the output is missing" }
        let size = try Self.fileSize(output)
        guard size == bytes else { return "it has \(size) bytes, the manifest records \(bytes) (truncated or changed)" }
        let hash = try SHA256.hex(file: output)
        guard hash == sha256 else { return "its SHA-256 is \(hash.prefix(16))..., the manifest records \(sha256.prefix(16))... (changed)" }
        return nil
    }

    static func fileSize(_ path: String) throws -> Int {
        do {
            return (try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue ?? 0
        } catch {
            throw TillerError.io(path: path, detail: "cannot read (\(ErrorReason.file(error, path: path)))")
        }
    }
}

public extension Shard {
    /// How many of `total` lines shard `shard` of `count` holds.
    static func lineCount(shard: Int, of count: Int, total: Int) -> Int {
        shard < total ? (total - shard + count - 1) / count : 0
    }
}
