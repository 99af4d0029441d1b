import Foundation

/// Foundation's and Codable's errors in words a user can act on. Their own descriptions are
/// dumps ("The operation could not be completed. (NSCocoaErrorDomain error 512.)",
/// "typeMismatch(Swift.Int, Swift.DecodingError.Context(codingPath: ...))") that name neither the
/// file nor the key; every place that catches one turns it into a `TillerError` with these reasons.
public enum ErrorReason {
    /// Why reading or writing `path` failed: from the file system's state where that says more
    /// than the error (a directory, a missing parent), else from the error's POSIX code.
    public static func file(_ error: Error, path: String) -> String {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        if fm.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue { return "is a directory" }
        let parent = (path as NSString).deletingLastPathComponent
        if !parent.isEmpty, !fm.fileExists(atPath: parent, isDirectory: &isDirectory) { return "its directory \(parent) does not exist" }
        if !parent.isEmpty, !isDirectory.boolValue { return "\(parent) is not a directory" }
        return foundationReason(error) ?? oneLine("\(error)")
    }

    /// What is wrong with a decoded document, naming the key path ("rope_scaling.factor").
    public static func decoding(_ error: Error) -> String {
        guard let error = error as? DecodingError else { return oneLine(error) }
        func key(_ context: DecodingError.Context, _ last: CodingKey? = nil) -> String {
            let path = (context.codingPath + (last.map { [$0] } ?? [])).map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
            return path.isEmpty ? "the document" : "\"" + path.joined(separator: ".").replacingOccurrences(of: ".[", with: "[") + "\""
        }
        switch error {
        case let .keyNotFound(k, context): return "missing \(key(context, k))"
        case let .valueNotFound(type, context): return "\(key(context)) is null, expected \(typeName(type))"
        case let .typeMismatch(type, context): return "wrong type for \(key(context)), expected \(typeName(type))"
        case let .dataCorrupted(context):
            // The parser's own messages ("Parsed JSON number <1e999> does not fit in Int") carry
            // the value; a document that is not JSON at all has an empty coding path.
            if context.codingPath.isEmpty { return "not valid JSON" }
            return "bad value for \(key(context)): \(oneLine(context.debugDescription))"
        @unknown default: return oneLine(error)
        }
    }

    /// `decoding(error)` for a document whose bytes are at hand: Foundation's JSONDecoder reports a
    /// number too large for its field (`"hidden_size": 1e300` for an Int) as "not valid JSON" with
    /// no key, so a document that JSONSerialization reads is searched for that number instead.
    public static func decoding(_ error: Error, json data: Data) -> String {
        guard case let DecodingError.dataCorrupted(context)? = error as? DecodingError, context.codingPath.isEmpty,
              let document = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) else {
            return decoding(error)
        }
        func huge(_ value: Any, _ path: String) -> String? {
            if let object = value as? [String: Any] {
                for key in object.keys.sorted() {
                    if let found = huge(object[key]!, path.isEmpty ? key : path + "." + key) { return found }
                }
            } else if let list = value as? [Any] {
                for (i, item) in list.enumerated() { if let found = huge(item, path + "[\(i)]") { return found } }
            } else if let number = value as? NSNumber, !(value is Bool), abs(number.doubleValue) >= 9.2e18 {
                return "\"\(path)\": \(number) does not fit a 64-bit integer"
            }
            return nil
        }
        return huge(document, "") ?? "a value does not fit its field"
    }

    /// Any error's description on one line (the last line of defence for errors no one named).
    public static func oneLine(_ error: Error) -> String {
        if let tiller = error as? TillerError { return tiller.description }
        let ns = error as NSError
        if [NSCocoaErrorDomain, NSPOSIXErrorDomain].contains(ns.domain) {
            if let path = (ns.userInfo[NSFilePathErrorKey] as? String) ?? (ns.userInfo[NSURLErrorKey] as? URL)?.path {
                return "\(path): \(file(error, path: path))"
            }
            return foundationReason(error) ?? "file system error \(ns.code)"
        }
        return oneLine("\(error)")
    }

    /// The reason a Foundation file error carries: its errno, else its Cocoa code in words.
    static func foundationReason(_ error: Error) -> String? {
        if let code = posixCode(error) { return String(cString: strerror(code)).lowercased() }
        guard let cocoa = error as? CocoaError else { return nil }
        switch cocoa.code {
        case .fileNoSuchFile, .fileReadNoSuchFile: return "no such file"
        case .fileReadNoPermission, .fileWriteNoPermission: return "permission denied"
        case .fileWriteOutOfSpace: return "no space left on the device"
        case .fileWriteVolumeReadOnly: return "read-only file system"
        case .fileReadTooLarge: return "too large to read"
        case .fileReadCorruptFile: return "unreadable"
        case .fileWriteFileExists: return "a file of that name already exists"
        default: return "file system error \(cocoa.code.rawValue)"
        }
    }

    static func oneLine(_ text: String) -> String {
        text.split(whereSeparator: \.isNewline).joined(separator: " ")
    }

    /// The POSIX errno behind a Foundation error, where it keeps one.
    static func posixCode(_ error: Error) -> Int32? {
        if let posix = error as? POSIXError { return posix.code.rawValue }
        let ns = error as NSError
        if ns.domain == NSPOSIXErrorDomain { return Int32(ns.code) }
        if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return Int32(underlying.code)
        }
        return nil
    }

    static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is Int.Type, is Int32.Type, is Int64.Type, is UInt64.Type: return "an integer"
        case is Double.Type, is Float.Type: return "a number"
        case is String.Type: return "a string"
        case is Bool.Type: return "true or false"
        default:
            // Everything else Tiller decodes is a list or a keyed object.
            return "\(type)".hasPrefix("Array") ? "a list" : "an object"
        }
    }
}
