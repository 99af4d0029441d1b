import Foundation

/// One part of a batch job split over a cluster's job array (docs/cluster.md): shard `index` of
/// `count` takes the input lines whose 0-based index i has i % count == index. The split depends
/// only on a line's position and the count, so the same line always lands in the same shard, and
/// interleaving spreads long and short lines over every shard alike.
public struct Shard: Equatable, Sendable, CustomStringConvertible {
    public let index: Int
    public let count: Int

    /// Fails in one line naming `name` unless 0 <= index < count.
    public init(index: Int, count: Int, name: String = "--shard") throws {
        guard count >= 1 else { throw TillerError.invalidArgument(op: name, detail: "the shard count \(count) must be at least 1") }
        guard index >= 0, index < count else {
            throw TillerError.invalidArgument(op: name, detail: "shard \(index) does not exist: a job of \(count) shards has shards 0-\(count - 1)")
        }
        self.index = index
        self.count = count
    }

    /// "I/N": shard I (0-based) of N.
    public init(parsing text: String, name: String = "--shard") throws {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let index = Int(parts[0].trimmingCharacters(in: .whitespaces)),
              let count = Int(parts[1].trimmingCharacters(in: .whitespaces)) else {
            throw TillerError.invalidArgument(op: name, detail: "\"\(text)\" is not I/N (shard I of N, 0-based, e.g. 0/4), or none")
        }
        try self.init(index: index, count: count, name: name)
    }

    public var description: String { "\(index)/\(count)" }

    /// Whether input line `line` (0-based) belongs to this shard.
    public func owns(_ line: Int) -> Bool { line % count == index }

    /// This shard's lines of an input of `total` lines, ascending.
    public func lines(total: Int) -> [Int] { Array(stride(from: index, to: total, by: count)) }

    /// The elements of this shard, in input order.
    public func select<T>(_ items: [T]) -> [T] { lines(total: items.count).map { items[$0] } }

    /// "shard-0003-of-0004": zero-padded to at least 4 digits, so names sort in shard order.
    public var label: String {
        let width = max(4, String(count).count)
        func pad(_ n: Int) -> String { String(repeating: "0", count: max(0, width - String(n).count)) + String(n) }
        return "shard-\(pad(index))-of-\(pad(count))"
    }

    /// Where this shard writes an output the whole run would write at `path`: the label goes before
    /// the extension of the file name ("out.jsonl" -> "out.shard-0003-of-0004.jsonl"; "out" ->
    /// "out.shard-0003-of-0004"), so the shards of one output sit beside it and glob together.
    public func outputPath(_ path: String) -> String {
        let directory = (path as NSString).deletingLastPathComponent
        let name = (path as NSString).lastPathComponent
        let dot = name.lastIndex(of: ".").flatMap { $0 == name.startIndex ? nil : $0 }
        let renamed = dot.map { "\(name[..<$0]).\(label)\(name[$0...])" } ?? "\(name).\(label)"
        return directory.isEmpty ? renamed : (directory as NSString).appendingPathComponent(renamed)
    }

    /// The shard a cluster's job array gives this process, and the variables it was read from;
    /// nil when none is set. Slurm: SLURM_ARRAY_TASK_ID with SLURM_ARRAY_TASK_MIN/STEP and
    /// SLURM_ARRAY_TASK_COUNT (or MAX), so --array=1-8 and --array=0-14:2 number their tasks 0..<N;
    /// or SLURM_ARRAY_TASK_ID itself with TILLER_SHARD_COUNT, which a re-submitted single task
    /// (--array=2, an array of one) needs.
    /// Kubernetes Indexed Job: JOB_COMPLETION_INDEX with TILLER_SHARD_COUNT (the Job's
    /// completions, which Kubernetes does not pass to the pod).
    public static func fromEnvironment(_ environment: [String: String]) throws -> (shard: Shard, source: String)? {
        func number(_ key: String) throws -> Int? {
            guard let text = environment[key] else { return nil }
            guard let value = Int(text.trimmingCharacters(in: .whitespaces)) else {
                throw TillerError.invalidArgument(op: key, detail: "\"\(text)\" is not an integer")
            }
            return value
        }
        if let id = try number("SLURM_ARRAY_TASK_ID") {
            // A stated total wins: a single task re-submitted (--array=2) is an array of one.
            if let stated = try number("TILLER_SHARD_COUNT") {
                return (try Shard(index: id, count: stated, name: "SLURM_ARRAY_TASK_ID"), "SLURM_ARRAY_TASK_ID=\(id), TILLER_SHARD_COUNT=\(stated)")
            }
            let low = try number("SLURM_ARRAY_TASK_MIN") ?? 0, step = max(1, try number("SLURM_ARRAY_TASK_STEP") ?? 1)
            var used = ["SLURM_ARRAY_TASK_ID=\(id)"]
            let count: Int
            if let given = try number("SLURM_ARRAY_TASK_COUNT") {
                count = given
                used.append("SLURM_ARRAY_TASK_COUNT=\(given)")
            } else if let high = try number("SLURM_ARRAY_TASK_MAX") {
                count = (high - low) / step + 1
                used.append("SLURM_ARRAY_TASK_MAX=\(high)")
            } else {
                throw TillerError.invalidArgument(op: "SLURM_ARRAY_TASK_ID", detail: "is set but neither SLURM_ARRAY_TASK_COUNT nor SLURM_ARRAY_TASK_MAX: give --shard I/N")
            }
            if low != 0 { used.append("SLURM_ARRAY_TASK_MIN=\(low)") }
            if step != 1 { used.append("SLURM_ARRAY_TASK_STEP=\(step)") }
            let source = used.joined(separator: ", ")
            if count == 1 && id != 0 {
                throw TillerError.invalidArgument(op: "SLURM_ARRAY_TASK_ID", detail: "task \(id) is an array of one (\(source)), as when one task of a larger array is re-submitted: set TILLER_SHARD_COUNT to the whole array's size, or give --shard I/N")
            }
            guard (id - low) % step == 0, (id - low) / step < count, id >= low else {
                throw TillerError.invalidArgument(op: "SLURM_ARRAY_TASK_ID", detail: "task \(id) is not one of \(count) evenly spaced tasks (\(source)); submit --array=0-\(count - 1) or give --shard I/N")
            }
            return (try Shard(index: (id - low) / step, count: count, name: "SLURM_ARRAY_TASK_ID"), source)
        }
        if let index = try number("JOB_COMPLETION_INDEX") {
            guard let count = try number("TILLER_SHARD_COUNT") else {
                throw TillerError.invalidArgument(op: "JOB_COMPLETION_INDEX", detail: "is set but not TILLER_SHARD_COUNT (the Job's completions): set it, or give --shard I/N or --shard none")
            }
            return (try Shard(index: index, count: count, name: "JOB_COMPLETION_INDEX"),
                    "JOB_COMPLETION_INDEX=\(index), TILLER_SHARD_COUNT=\(count)")
        }
        return nil
    }
}
