import Foundation
import TillerCore

/// `tiller merge` of capture shards. Each shard is a whole capture file of its own triplets
/// (numbered 0..<its count, so `analyze` and `fit` read it alone); the merge lays out the file the
/// unsharded capture writes (the same `CaptureInfo`, rows in triplet order, each row's "example"
/// its triplet's index in the whole input) and copies every triplet's rows into place, one triplet
/// at a time, so the result has the unsharded run's bytes.
public enum CaptureShardMerge {
    public static func merge(_ set: ShardSet, to out: String) throws {
        let files = try set.members.map { try CaptureFile(path: $0.path) }
        let first = files[0]
        for (file, member) in zip(files, set.members) {
            guard file.info.triplets == member.manifest.lines else {
                throw TillerError.io(path: file.path, detail: "holds \(file.info.triplets) triplets, the manifest records \(member.manifest.lines)")
            }
            var a = file.info, b = first.info
            (a.rows, a.triplets, b.rows, b.triplets) = (0, 0, 0, 0)
            guard a == b else {
                throw TillerError.io(path: file.path, detail: "was captured with other settings than \(first.path) (layers, model or triplets file differ): \(file.info.json)")
            }
        }
        var info = first.info
        info.rows = files.reduce(0) { $0 + $1.info.rows }
        info.triplets = set.inputLines
        let writer = try CaptureWriter(path: out, layout: try CaptureLayout(info: info))
        do {
            var row = 0
            for triplet in 0..<set.inputLines {
                let (s, k) = set.place(triplet)
                let file = files[s], rows = file.exampleRows[k], m = rows.count
                guard m > 0 else { continue }
                var h: [[Float]] = [], delta: [[Float]] = []
                for layer in info.layers {
                    h.append(try file.floats(layer: layer, delta: false, rows: rows))
                    delta.append(try file.floats(layer: layer, delta: true, rows: rows))
                }
                try writer.write(atRow: row, tokens: Array(file.tokens[rows]), example: [Int32](repeating: Int32(triplet), count: m),
                                 position: Array(file.position[rows]), role: Array(file.role[rows]), h: h, delta: delta)
                row += m
            }
            try writer.finish()
        } catch {
            writer.abandon()
            throw error
        }
    }
}
