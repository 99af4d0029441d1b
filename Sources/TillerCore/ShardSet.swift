import Foundation

/// The shard outputs `tiller merge` is given, checked to be one whole run before anything is
/// written: each has its manifest and still matches it (size and SHA-256), all come from one run
/// (run id, command, format, shard count, input lines), none is given twice, none is missing.
/// Each problem is one line naming the file.
public struct ShardSet {
    public struct Member {
        public let path: String
        public let manifest: ShardManifest
    }

    /// Indexed by shard.
    public let members: [Member]
    public var first: ShardManifest { members[0].manifest }
    public var inputLines: Int { first.inputLines }
    public var format: ShardManifest.Format { first.format }

    /// `paths` are shard outputs or their manifests (OUT.shard.json), in any order.
    public init(_ paths: [String]) throws {
        guard !paths.isEmpty else { throw TillerError.invalidArgument(op: "merge", detail: "no shard outputs given") }
        var found: [Member] = []
        var seen: Set<String> = []
        for given in paths {
            let path = given.hasSuffix(ShardManifest.suffix) ? String(given.dropLast(ShardManifest.suffix.count)) : given
            // A shard named twice by the same path (a glob matching the output and its manifest)
            // is one shard; two files claiming one shard are refused below.
            guard seen.insert(URL(fileURLWithPath: path).standardizedFileURL.path).inserted else { continue }
            guard let manifest = try ShardManifest.read(for: path) else {
                let what = FileManager.default.fileExists(atPath: path) ? "has no shard manifest" : "does not exist and has no shard manifest"
                throw TillerError.io(path: path, detail: "\(what) \(ShardManifest.path(for: path)) (its task did not finish, or it is not a shard output)")
            }
            if let problem = try manifest.mismatch(path) {
                throw TillerError.io(path: path, detail: "incomplete shard \(manifest.shard)/\(manifest.shards): \(problem)")
            }
            if let other = found.first {
                let a = other.manifest, name = other.path
                if manifest.runID != a.runID {
                    throw TillerError.io(path: path, detail: "is from run \(manifest.runID), but \(name) is from run \(a.runID): shards of different runs do not merge")
                }
                if manifest.command != a.command || manifest.format != a.format {
                    throw TillerError.io(path: path, detail: "was written by \(manifest.command) (\(manifest.format.rawValue)), \(name) by \(a.command) (\(a.format.rawValue))")
                }
                if manifest.shards != a.shards || manifest.inputLines != a.inputLines {
                    throw TillerError.io(path: path, detail: "is shard \(manifest.shard) of \(manifest.shards) over \(manifest.inputLines) lines, \(name) of \(a.shards) over \(a.inputLines)")
                }
            }
            if let twin = found.first(where: { $0.manifest.shard == manifest.shard }) {
                throw TillerError.io(path: path, detail: "shard \(manifest.shard)/\(manifest.shards) is given twice (also \(twin.path))")
            }
            found.append(Member(path: path, manifest: manifest))
        }
        let count = found[0].manifest.shards
        if found.count < count {
            let have = Set(found.map(\.manifest.shard))
            let missing = (0..<count).filter { !have.contains($0) }
            let example = try Shard(index: missing[0], count: count).outputPath(found[0].path.replacingOccurrences(
                of: "." + (try Shard(index: found[0].manifest.shard, count: count)).label, with: ""))
            throw TillerError.invalidArgument(op: "merge", detail: "\(missing.count) of \(count) shards missing: \(missing.map(String.init).joined(separator: ", ")) (e.g. \(example))")
        }
        members = found.sorted { $0.manifest.shard < $1.manifest.shard }
        // Where each input line lies; every line in exactly one shard.
        var places = [(shard: Int, position: Int)?](repeating: nil, count: found[0].manifest.inputLines)
        for member in members {
            let m = member.manifest
            let lines = m.indices ?? Array(stride(from: m.shard, to: m.inputLines, by: m.shards))
            for (position, line) in lines.enumerated() {
                if let other = places[line] {
                    throw TillerError.io(path: member.path, detail: "holds input line \(line + 1), which shard \(other.shard) holds too")
                }
                places[line] = (m.shard, position)
            }
        }
        if let line = places.firstIndex(where: { $0 == nil }) {
            throw TillerError.invalidArgument(op: "merge", detail: "input line \(line + 1) of \(places.count) is in none of the shards")
        }
        self.places = places.map { $0! }
    }

    private let places: [(shard: Int, position: Int)]

    /// The shard and the position within it of input line `line` (0-based).
    public func place(_ line: Int) -> (shard: Int, position: Int) { places[line] }
}
