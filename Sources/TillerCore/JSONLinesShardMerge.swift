import Foundation

/// `tiller merge` of JSON Lines shards: the lines back in input order (line i is line i / N of
/// shard i % N), so the result has the bytes the unsharded run writes.
public enum JSONLinesShardMerge {
    /// Writes the merged lines to `out` (an `OutputFile`: nothing changes there unless it all succeeds).
    public static func merge(_ set: ShardSet, to out: String) throws {
        var shards: [[Substring]] = []
        for member in set.members {
            let data: Data
            do { data = try Data(contentsOf: URL(fileURLWithPath: member.path)) } catch {
                throw TillerError.io(path: member.path, detail: "cannot read (\(ErrorReason.file(error, path: member.path)))")
            }
            let text = String(decoding: data, as: UTF8.self)
            guard text.isEmpty || text.hasSuffix("\n") else {
                throw TillerError.io(path: member.path, detail: "does not end with a newline: not a whole JSON Lines output")
            }
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
            guard lines.count == member.manifest.lines else {
                throw TillerError.io(path: member.path, detail: "has \(lines.count) lines, the manifest records \(member.manifest.lines)")
            }
            shards.append(Array(lines))
        }
        let file = try OutputFile(out, allowStandardOutput: true)
        do {
            var buffer = Data()
            for line in 0..<set.inputLines {
                let (s, k) = set.place(line)
                buffer.append(contentsOf: shards[s][k].utf8)
                buffer.append(0x0A)
                if buffer.count >= 1 << 20 {
                    try file.write(buffer)
                    buffer.removeAll(keepingCapacity: true)
                }
            }
            try file.write(buffer)
            try file.commit()
        } catch {
            file.discard()
            throw error
        }
    }
}
