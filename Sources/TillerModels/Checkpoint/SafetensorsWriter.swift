import Foundation
import TillerCore

/// Writes safetensors files: an 8-byte little-endian header length N, N bytes of JSON (padded with
/// spaces to a multiple of 8, as the reference writer does) naming each tensor's dtype, shape and
/// byte range, plus an optional `__metadata__` object of strings; then the tensors' bytes, back to
/// back in the order given. Every tensor is F32. What it writes, `SafetensorsFile` reads back.
public enum SafetensorsWriter {
    public struct Entry: Sendable, Equatable {
        public var name: String
        public var shape: [Int]
        public var values: [Float]

        public init(name: String, shape: [Int], values: [Float]) {
            self.name = name
            self.shape = shape
            self.values = values
        }
    }

    /// The whole file. Fails in one line on a tensor whose shape does not hold its values, a
    /// duplicate or reserved name, or a negative dimension.
    public static func encode(_ entries: [Entry], metadata: [String: String] = [:]) throws -> Data {
        var header: [String] = []
        if !metadata.isEmpty {
            let pairs = metadata.keys.sorted().map { "\(jsonString($0)):\(jsonString(metadata[$0]!))" }
            header.append("\"__metadata__\":{\(pairs.joined(separator: ","))}")
        }
        var seen = Set<[UInt8]>()
        var offset = 0
        for entry in entries {
            let shown = "'\(JSONValue.excerpt(entry.name))'"
            guard entry.name != "__metadata__" else {
                throw TillerError.invalidArgument(op: "safetensors", detail: "a tensor cannot be called __metadata__")
            }
            guard seen.insert(Array(entry.name.utf8)).inserted else {
                throw TillerError.invalidArgument(op: "safetensors", detail: "tensor \(shown) is given twice")
            }
            guard entry.shape.allSatisfy({ $0 >= 0 }) else {
                throw TillerError.invalidArgument(op: "safetensors", detail: "tensor \(shown) has a negative dimension in \(entry.shape)")
            }
            var count = 1
            for d in entry.shape {
                let (p, o) = count.multipliedReportingOverflow(by: d)
                guard !o else { throw TillerError.invalidArgument(op: "safetensors", detail: "tensor \(shown): shape \(entry.shape) has too many elements") }
                count = p
            }
            guard count == entry.values.count else {
                throw TillerError.shapeMismatch(op: "safetensors", detail: "tensor \(shown) has shape \(entry.shape) (\(count) values) but \(entry.values.count) values")
            }
            let bytes = entry.values.count * 4
            let shape = entry.shape.map(String.init).joined(separator: ",")
            header.append("\(jsonString(entry.name)):{\"dtype\":\"F32\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + bytes)]}")
            offset += bytes
        }
        var json = Array("{\(header.joined(separator: ","))}".utf8)
        while json.count % 8 != 0 { json.append(0x20) }
        var data = Data()
        data.reserveCapacity(8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(contentsOf: json)
        for entry in entries {
            entry.values.map { $0.bitPattern.littleEndian }.withUnsafeBytes { data.append(contentsOf: $0) }
        }
        return data
    }

    /// Writes the file atomically (a reader never sees half a file), failing in one line naming the path.
    public static func write(_ entries: [Entry], metadata: [String: String] = [:], to path: String) throws {
        let data = try encode(entries, metadata: metadata)
        do {
            try data.write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw TillerError.io(path: path, detail: "cannot write (\(ErrorReason.file(error, path: path)))")
        }
    }

    /// A JSON string literal (`JSONEscaping.quoted`).
    public static func jsonString(_ s: String) -> String { JSONEscaping.quoted(s) }
}
