#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import TillerCore
import TillerModels

/// What `__metadata__["tiller.capture"]` of a capture file says (docs/steering.md, "Capture and
/// analysis"): the format version, the captured layers, the hidden size, the row and triplet
/// counts, the model's fingerprint and the triplets file it was made from.
public struct CaptureInfo: Sendable, Equatable {
    public static let metadataKey = "tiller.capture"
    public static let formatVersion = 1

    public var version: Int
    /// Captured layers, ascending (0-based: the residual stream after block L).
    public var layers: [Int]
    public var hiddenSize: Int
    public var rows: Int
    public var triplets: Int
    public var model: ModelFingerprint
    /// The triplets JSONL the capture was made from, as given on the command line.
    public var source: String

    public init(layers: [Int], hiddenSize: Int, rows: Int, triplets: Int, model: ModelFingerprint, source: String,
                version: Int = CaptureInfo.formatVersion) {
        self.version = version
        self.layers = layers
        self.hiddenSize = hiddenSize
        self.rows = rows
        self.triplets = triplets
        self.model = model
        self.source = source
    }

    /// The JSON, keys in the documented order.
    public var json: String {
        let q = SafetensorsWriter.jsonString
        let modelJSON = "{\"architecture\":\(q(model.architecture)),\"model_type\":\(q(model.modelType)),"
            + "\"hidden_size\":\(model.hiddenSize),\"layer_count\":\(model.layerCount),"
            + "\"weights_header_hash\":\(q(model.weightsHeaderHash))}"
        return "{\"version\":\(version),\"layers\":[\(layers.map(String.init).joined(separator: ","))],"
            + "\"hidden_size\":\(hiddenSize),\"rows\":\(rows),\"triplets\":\(triplets),\"model\":\(modelJSON),"
            + "\"source\":\(q(source))}"
    }

    /// Reads the JSON back, failing in one line naming `path`.
    public init(json: String, path: String) throws {
        self = try Self.read(json: json, path: path, requireModel: true).info
    }

    /// The one reader of the metadata JSON. Checks the version, the types of every key, that the
    /// layers are distinct, ascending and not empty, and that the model (when recorded) agrees with
    /// the hidden size and has every captured layer. `requireModel: false` accepts a description
    /// without "model" (fitting needs none; `model` is then nil and `info.model` a placeholder
    /// that names no checkpoint).
    static func read(json: String, path: String, requireModel: Bool) throws -> (info: CaptureInfo, model: ModelFingerprint?) {
        func bad(_ detail: String) -> TillerError { .io(path: path, detail: "\(CaptureInfo.metadataKey): \(detail)") }
        guard let object = (try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [String: Any] else {
            throw bad("not a JSON object")
        }
        func int(_ o: [String: Any], _ key: String) throws -> Int {
            guard let n = o[key] as? NSNumber, String(cString: n.objCType) != "c", let v = Int(exactly: n.doubleValue) else {
                throw bad("\"\(key)\" must be an integer")
            }
            return v
        }
        func string(_ o: [String: Any], _ key: String) throws -> String {
            guard let s = o[key] as? String else { throw bad("\"\(key)\" must be a string") }
            return s
        }
        let version = try int(object, "version")
        guard version == Self.formatVersion else {
            throw bad("unknown capture format version \(version) (this Tiller reads version \(Self.formatVersion))")
        }
        guard let layerList = object["layers"] as? [NSNumber] else { throw bad("\"layers\" must be a list of integers") }
        let layers = try layerList.map { n -> Int in
            guard String(cString: n.objCType) != "c", let v = Int(exactly: n.doubleValue), v >= 0 else {
                throw bad("\"layers\" must hold layer indices >= 0")
            }
            return v
        }
        guard !layers.isEmpty else { throw bad("\"layers\" is empty: the capture holds no layer") }
        guard Set(layers).count == layers.count, layers == layers.sorted() else { throw bad("\"layers\" must be ascending and distinct") }
        let hiddenSize = try int(object, "hidden_size"), rows = try int(object, "rows"), triplets = try int(object, "triplets")
        guard hiddenSize > 0, rows >= 0, triplets >= 0 else { throw bad("hidden_size must be positive, rows and triplets not negative") }
        let source = try string(object, "source")

        var recorded: ModelFingerprint?
        if let value = object["model"] {
            guard let model = value as? [String: Any] else { throw bad("\"model\" must be an object") }
            let fingerprint = ModelFingerprint(architecture: try string(model, "architecture"), modelType: try string(model, "model_type"),
                                               hiddenSize: try int(model, "hidden_size"), layerCount: try int(model, "layer_count"),
                                               weightsHeaderHash: try string(model, "weights_header_hash"))
            guard fingerprint.hiddenSize == hiddenSize else {
                throw bad("hidden_size \(hiddenSize) differs from the model's hidden size \(fingerprint.hiddenSize)")
            }
            if let layer = layers.first(where: { $0 >= fingerprint.layerCount }) {
                throw bad("layer \(layer) is captured, but the model has \(fingerprint.layerCount) layers")
            }
            recorded = fingerprint
        } else if requireModel {
            throw bad("\"model\" must be an object")
        }
        let placeholder = ModelFingerprint(architecture: "", modelType: "", hiddenSize: hiddenSize, layerCount: 0, weightsHeaderHash: "")
        let info = CaptureInfo(layers: layers, hiddenSize: hiddenSize, rows: rows, triplets: triplets,
                               model: recorded ?? placeholder, source: source, version: version)
        return (info, recorded)
    }
}

/// Names of a capture file's tensors.
public enum CaptureTensor {
    public static let tokens = "tokens", example = "example", position = "position", role = "role"
    public static func h(_ layer: Int) -> String { "layers.\(layer).h" }
    public static func delta(_ layer: Int) -> String { "layers.\(layer).delta" }
}

/// Where everything of a capture file lies, known before the first row is computed: the header
/// (with `__metadata__`), each tensor's byte offset in the file, and the file's size.
public struct CaptureLayout: Sendable {
    public let info: CaptureInfo
    /// The 8-byte header length and the JSON header, padded with spaces to a multiple of 8.
    public let header: [UInt8]
    /// Tensor name -> byte offset of its first element in the file.
    public let offsets: [String: Int]
    public let fileSize: Int

    public init(info: CaptureInfo) throws {
        self.info = info
        let n = info.rows, d = info.hiddenSize
        var tensors: [(String, String, [Int], Int)] = [
            (CaptureTensor.tokens, "I32", [n], n * 4), (CaptureTensor.example, "I32", [n], n * 4),
            (CaptureTensor.position, "I32", [n], n * 4), (CaptureTensor.role, "I32", [n], n * 4),
        ]
        for layer in info.layers {
            let (bytes, overflow) = (n * 4).multipliedReportingOverflow(by: d)
            guard !overflow else { throw TillerError.invalidArgument(op: "capture", detail: "\(n) rows of \(d) values do not fit in memory addresses") }
            tensors.append((CaptureTensor.h(layer), "F32", [n, d], bytes))
            tensors.append((CaptureTensor.delta(layer), "F32", [n, d], bytes))
        }
        let q = SafetensorsWriter.jsonString
        var parts = ["\"__metadata__\":{\(q(CaptureInfo.metadataKey)):\(q(info.json))}"]
        var dataOffsets: [(String, Int)] = []
        var offset = 0
        for (name, dtype, shape, bytes) in tensors {
            parts.append("\(q(name)):{\"dtype\":\"\(dtype)\",\"shape\":[\(shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + bytes)]}")
            dataOffsets.append((name, offset))
            offset += bytes
        }
        var json = Array("{\(parts.joined(separator: ","))}".utf8)
        while json.count % 8 != 0 { json.append(0x20) }
        var header: [UInt8] = []
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { header += $0 }
        header += json
        self.header = header
        var offsets: [String: Int] = [:]
        for (name, o) in dataOffsets { offsets[name] = header.count + o }
        self.offsets = offsets
        self.fileSize = header.count + offset
    }
}

/// Writes a capture file as it is computed: the header (every offset known) first, then each
/// triplet's rows into each tensor at their place, so only the rows of one pass are ever held in memory. The
/// file is an `OutputFile`: written under a unique temporary name next to the target and renamed
/// when every row is in, so an interrupted capture never leaves a file that looks whole and two
/// captures to one path never mix.
public final class CaptureWriter {
    public let path: String
    public let layout: CaptureLayout
    private var file: OutputFile?
    /// Rows written so far.
    public private(set) var rowsWritten = 0

    public init(path: String, layout: CaptureLayout) throws {
        self.path = path
        self.layout = layout
        let file = try OutputFile(path)
        guard !file.isInPlace else {
            throw TillerError.io(path: path, detail: "is not a regular file (a capture is written at offsets)")
        }
        try file.truncate(to: layout.fileSize)
        try layout.header.withUnsafeBytes { try file.write($0, at: 0) }
        self.file = file
    }

    /// Closes and removes the temporary file (after an error, or when `finish` was never reached).
    public func abandon() {
        file?.discard()
        file = nil
    }

    private func write(_ bytes: UnsafeRawBufferPointer, at offset: Int) throws {
        guard let file else { throw TillerError.io(path: path, detail: "the capture file is closed") }
        try file.write(bytes, at: offset)
    }

    /// Appends one triplet's rows: per row its token, triplet index, position and role; per
    /// captured layer (in `layout.info.layers` order) h and delta, each [rows, hidden] row-major.
    public func append(tokens: [Int32], example: [Int32], position: [Int32], role: [Int32], h: [[Float]], delta: [[Float]]) throws {
        try write(atRow: rowsWritten, tokens: tokens, example: example, position: position, role: role, h: h, delta: delta)
    }

    /// Writes rows at row `r0` of every tensor, as `append` does at the end: for a capture that
    /// computes triplets out of order (batched by length). Each row must be written once.
    public func write(atRow r0: Int, tokens: [Int32], example: [Int32], position: [Int32], role: [Int32], h: [[Float]], delta: [[Float]]) throws {
        let m = tokens.count, d = layout.info.hiddenSize, layers = layout.info.layers
        guard file != nil else { throw TillerError.io(path: path, detail: "the capture file is closed") }
        guard example.count == m, position.count == m, role.count == m, h.count == layers.count, delta.count == layers.count,
              h.allSatisfy({ $0.count == m * d }), delta.allSatisfy({ $0.count == m * d }) else {
            throw TillerError.shapeMismatch(op: "capture", detail: "\(m) rows with mismatched per-row or per-layer arrays")
        }
        guard r0 >= 0, r0 + m <= layout.info.rows, rowsWritten + m <= layout.info.rows else {
            throw TillerError.invalidArgument(op: "capture", detail: "rows \(r0)..<\(r0 + m), \(rowsWritten + m) rows in all: the file was laid out for \(layout.info.rows)")
        }
        guard m > 0 else { return }
        for (name, values) in [(CaptureTensor.tokens, tokens), (CaptureTensor.example, example),
                               (CaptureTensor.position, position), (CaptureTensor.role, role)] {
            try values.map { $0.littleEndian }.withUnsafeBytes { try write($0, at: layout.offsets[name]! + r0 * 4) }
        }
        for (k, layer) in layers.enumerated() {
            try h[k].withUnsafeBytes { try write($0, at: layout.offsets[CaptureTensor.h(layer)]! + r0 * d * 4) }
            try delta[k].withUnsafeBytes { try write($0, at: layout.offsets[CaptureTensor.delta(layer)]! + r0 * d * 4) }
        }
        rowsWritten += m
    }

    /// Checks every row was written and moves the file into place.
    public func finish() throws {
        guard rowsWritten == layout.info.rows else {
            throw TillerError.io(path: path, detail: "wrote \(rowsWritten) of \(layout.info.rows) rows")
        }
        guard let file else { throw TillerError.io(path: path, detail: "the capture file is closed") }
        self.file = nil
        try file.commit()
    }
}

/// A capture file read back (memory-mapped): the metadata, the per-row tensors and views of each
/// layer's h and delta. The one reader of the format: `tiller analyze` uses it directly and the
/// fitting methods through `CaptureData`. Every check is made on open: the metadata (`CaptureInfo`),
/// each tensor's name, dtype and shape (no tensor missing, none extra), the triplet index and the
/// role of every row; each problem is one line naming the file and the tensor.
public final class CaptureFile {
    public let path: String
    public let file: SafetensorsFile
    public let info: CaptureInfo
    public let tokens: [Int32]
    public let example: [Int32]
    public let position: [Int32]
    public let role: [Int32]
    /// Rows of triplet e: rows are written in triplet order, so each triplet's rows are contiguous.
    public let exampleRows: [Range<Int>]
    /// The model the metadata records; nil only when opened with `requireModel: false` and the
    /// metadata has none (then `info.model` is a placeholder).
    let recordedModel: ModelFingerprint?

    public convenience init(path: String) throws {
        try self.init(path: path, requireModel: true)
    }

    init(path: String, requireModel: Bool) throws {
        self.path = path
        let file = try SafetensorsFile(path: path)
        func bad(_ detail: String) -> TillerError { .io(path: path, detail: detail) }
        guard let json = file.metadata[CaptureInfo.metadataKey] else {
            throw bad("not a Tiller capture file (no \"\(CaptureInfo.metadataKey)\" in the safetensors __metadata__)")
        }
        let (info, recorded) = try CaptureInfo.read(json: json, path: path, requireModel: requireModel)
        self.file = file
        self.info = info
        recordedModel = recorded
        let n = info.rows, d = info.hiddenSize
        func check(_ name: String, _ dtype: DType, _ shape: [Int]) throws -> SafetensorsEntry {
            let entry: SafetensorsEntry
            do {
                entry = try file.entry(name)
            } catch {
                if file.unsupportedEntries[name] != nil { throw error }   // present, in a dtype Tiller cannot hold: says which
                let layer = name.hasPrefix("layers.") ? " (every captured layer has layers.L.h and layers.L.delta)" : ""
                throw bad("missing tensor '\(name)'\(layer)")
            }
            guard entry.dtype == dtype, entry.shape == shape else {
                throw bad("tensor '\(name)' is \(entry.dtype) \(entry.shape), expected \(dtype) \(shape) (\(n) rows, hidden size \(d))")
            }
            return entry
        }
        func ints(_ name: String) throws -> [Int32] {
            let raw = file.bytes(try check(name, .i32, [n]))
            return (0..<n).map { Int32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self)) }
        }
        tokens = try ints(CaptureTensor.tokens)
        let example = try ints(CaptureTensor.example)
        position = try ints(CaptureTensor.position)
        let role = try ints(CaptureTensor.role)
        self.example = example
        self.role = role
        var expected: Set<String> = [CaptureTensor.tokens, CaptureTensor.example, CaptureTensor.position, CaptureTensor.role]
        for layer in info.layers {
            _ = try check(CaptureTensor.h(layer), .f32, [n, d])
            _ = try check(CaptureTensor.delta(layer), .f32, [n, d])
            expected.formUnion([CaptureTensor.h(layer), CaptureTensor.delta(layer)])
        }
        if let extra = file.tensorNames.first(where: { !expected.contains($0) }) {
            throw bad("unexpected tensor '\(JSONText.excerpt(extra))' (the metadata lists layers \(info.layers.map(String.init).joined(separator: ", ")))")
        }
        if let r = role.firstIndex(where: { CaptureRole(rawValue: $0) == nil }) {
            throw bad("tensor 'role' holds \(role[r]) at row \(r); roles are 0 (prompt), 1 (last prompt token), 2 (answer)")
        }
        var ranges = [Range<Int>](repeating: 0..<0, count: info.triplets)
        var r = 0
        while r < n {
            let e = Int(example[r])
            guard e >= 0, e < info.triplets else { throw bad("tensor 'example' says row \(r) belongs to triplet \(e), the capture has \(info.triplets)") }
            var end = r
            while end < n, example[end] == example[r] { end += 1 }
            guard ranges[e].isEmpty else { throw bad("tensor 'example': the rows of triplet \(e) are not contiguous") }
            ranges[e] = r..<end
            r = end
        }
        exampleRows = ranges
    }

    public var rowCount: Int { info.rows }
    public var hiddenSize: Int { info.hiddenSize }
    public var layers: [Int] { info.layers }

    /// The error for a layer the capture does not hold, naming the tensor asked for.
    func notCaptured(_ layer: Int, delta: Bool = false) -> TillerError {
        .io(path: path, detail: "no tensor '\(delta ? CaptureTensor.delta(layer) : CaptureTensor.h(layer))': "
            + "the capture holds layers \(layers.map(String.init).joined(separator: ", "))")
    }

    /// The bytes of layer `layer`'s h (`delta: false`) or delta, rows `rows`: f32 row-major.
    public func bytes(layer: Int, delta: Bool, rows: Range<Int>) throws -> UnsafeRawBufferPointer {
        guard layers.contains(layer) else { throw notCaptured(layer, delta: delta) }
        guard rows.lowerBound >= 0, rows.upperBound <= rowCount else {
            throw TillerError.indexOutOfRange(op: "capture", detail: "rows \(rows) of \(rowCount)")
        }
        let entry = try file.entry(delta ? CaptureTensor.delta(layer) : CaptureTensor.h(layer))
        let all = file.bytes(entry), row = hiddenSize * 4
        return UnsafeRawBufferPointer(rebasing: all[(rows.lowerBound * row)..<(rows.upperBound * row)])
    }

    /// Layer `layer`'s h or delta, rows `rows`, as floats.
    public func floats(layer: Int, delta: Bool, rows: Range<Int>) throws -> [Float] {
        let raw = try bytes(layer: layer, delta: delta, rows: rows)
        return (0..<(raw.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
    }

    /// Refuses, naming the file and both models, a model other than the capture's: another
    /// hidden size, too few layers, or (when the capture records a model) another architecture or
    /// weights header hash.
    func check(against target: ModelFingerprint) throws {
        func bad(_ detail: String) -> TillerError { .io(path: path, detail: detail) }
        let madeWith = recordedModel.map { " (made with \($0.summary))" } ?? ""
        guard hiddenSize == target.hiddenSize else {
            throw bad("the capture has hidden size \(hiddenSize)\(madeWith), but the model has \(target.hiddenSize) (\(target.summary))")
        }
        if let layer = layers.first(where: { $0 >= target.layerCount }) {
            throw bad("the capture holds layer \(layer)\(madeWith), but the model has \(target.layerCount) layers (\(target.summary))")
        }
        if let model = recordedModel, model.weightsHeaderHash != target.weightsHeaderHash || model.architecture != target.architecture {
            throw bad("the capture was made with another model: \(model.summary); this model: \(target.summary)")
        }
    }
}
