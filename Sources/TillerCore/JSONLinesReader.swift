import Foundation

/// JSON Lines files read line by line in 1 MiB chunks, so a line above a size limit is refused
/// as soon as it passes it: a file that is one huge line (or not text at all) costs the limit in
/// memory, not its size.
public enum JSONLinesReader {
    /// The longest line read by default (`--max-line-bytes`): far above any prompt or triplet a
    /// context can hold, far below what would exhaust memory.
    public static let defaultMaxLineBytes = 16 << 20
    static let chunkBytes = 1 << 20

    /// Calls `body` with every line's 1-based number and bytes (without the newline) of the file
    /// at `path` ("-": standard input). A missing file or a directory is a `TillerError.io`
    /// naming the path; a line longer than `maxLineBytes` one at "path:line".
    public static func forEachLine(path: String, maxLineBytes: Int = defaultMaxLineBytes,
                                   _ body: (Int, Data) throws -> Void) throws {
        let handle: FileHandle
        if path == "-" {
            handle = FileHandle.standardInput
        } else {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else {
                throw TillerError.io(path: path, detail: "no such file")
            }
            guard let opened = FileHandle(forReadingAtPath: path) else { throw TillerError.io(path: path, detail: "cannot read") }
            handle = opened
        }
        defer { if path != "-" { try? handle.close() } }
        var line = Data(), number = 1
        while true {
            let chunk: Data
            do {
                chunk = try handle.read(upToCount: chunkBytes) ?? Data()
            } catch {
                throw TillerError.io(path: path, detail: "cannot read (\(ErrorReason.file(error, path: path)))")
            }
            if chunk.isEmpty { break }
            var start = chunk.startIndex
            while start < chunk.endIndex {
                let end = chunk[start...].firstIndex(of: UInt8(ascii: "\n")) ?? chunk.endIndex
                guard line.count + (end - start) <= maxLineBytes else {
                    throw TillerError.io(path: "\(path):\(number)",
                                         detail: "line longer than \(describe(bytes: maxLineBytes)) (--max-line-bytes)")
                }
                line.append(chunk[start..<end])
                if end == chunk.endIndex { break }
                try body(number, line)
                line.removeAll(keepingCapacity: true)
                number += 1
                start = end + 1
            }
        }
        if !line.isEmpty { try body(number, line) }
    }

    /// "16 MiB", "1 KiB" or "100 bytes".
    public static func describe(bytes: Int) -> String {
        if bytes >= 1 << 20, bytes % (1 << 20) == 0 { return "\(bytes >> 20) MiB" }
        if bytes >= 1 << 10, bytes % (1 << 10) == 0 { return "\(bytes >> 10) KiB" }
        return "\(bytes) bytes"
    }
}

extension TextFiles {
    /// The JSON objects of a JSON Lines file ("-": standard input) with their 1-based line
    /// numbers, read line by line (`JSONLinesReader`); the same objects and errors as
    /// `jsonObjectLines(_:path:expecting:)` on its bytes, plus a line above `maxLineBytes` refused.
    public static func jsonObjectLines(path: String, expecting: String,
                                       maxLineBytes: Int = JSONLinesReader.defaultMaxLineBytes) throws -> [(number: Int, fields: [String: Any])] {
        var objects: [(number: Int, fields: [String: Any])] = []
        try JSONLinesReader.forEachLine(path: path, maxLineBytes: maxLineBytes) { number, bytes in
            if let fields = try jsonObject(bytes, path: path, number: number, expecting: expecting) {
                objects.append((number, fields))
            }
        }
        return objects
    }
}
