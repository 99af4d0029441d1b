import Foundation

/// Reading the files users hand to Tiller (JSON Lines of prompts, corpus lines, triplets), with
/// the one-line errors the command line prints.
public enum TextFiles {
    /// The bytes of a regular file; a missing file, a directory or a read error is a one-line
    /// `TillerError.io` naming the path. "-" is standard input, read to its end.
    public static func contents(of path: String) throws -> Data {
        if path == "-" { return FileHandle.standardInput.readDataToEndOfFile() }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else {
            throw TillerError.io(path: path, detail: "no such file")
        }
        do {
            return try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw TillerError.io(path: path, detail: "cannot read (\(ErrorReason.file(error, path: path)))")
        }
    }

    /// The JSON objects of a JSON Lines file's bytes, with their 1-based line numbers; blank lines
    /// are skipped. A line that is not UTF-8, not JSON or not an object is a one-line
    /// `TillerError.io` at "path:line" (`expecting` says what an object should hold).
    public static func jsonObjectLines(_ data: Data, path: String, expecting: String) throws -> [(number: Int, fields: [String: Any])] {
        var objects: [(number: Int, fields: [String: Any])] = []
        for (index, raw) in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            if let fields = try jsonObject(Data(raw), path: path, number: index + 1, expecting: expecting) {
                objects.append((index + 1, fields))
            }
        }
        return objects
    }

    /// One line's object; nil for a blank line.
    static func jsonObject(_ bytes: Data, path: String, number: Int, expecting: String) throws -> [String: Any]? {
        func fail(_ detail: String) -> TillerError { .io(path: "\(path):\(number)", detail: detail) }
        guard let text = String(data: bytes, encoding: .utf8) else { throw fail("not valid UTF-8") }
        if text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { return nil }
        guard let object = try? JSONSerialization.jsonObject(with: bytes, options: [.fragmentsAllowed]) else {
            throw fail("not valid JSON")
        }
        guard let fields = object as? [String: Any] else { throw fail("expected a JSON object with \(expecting)") }
        return fields
    }
}

/// JSON text written by hand (where key order or byte-exact output matters and JSONSerialization
/// gives neither).
public enum JSONEscaping {
    /// A JSON string literal (RFC 8259): quote, backslash and control characters escaped, everything
    /// else (including '/' and non-ASCII) written as is.
    public static func quoted(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
