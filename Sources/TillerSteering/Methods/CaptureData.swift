import Foundation
import TillerCore
import TillerModels

/// Which captured rows a method is fitted on, by the capture's `role` tensor (0: a shared prompt
/// token before the last one, 1: the last prompt token, 2: a token of y').
public enum FitRows: String, Sendable, CaseIterable {
    /// The last prompt token and the answer (roles 1 and 2): the rows `answer_only` steers.
    case answer
    /// Every captured row.
    case all
    /// The last prompt token of each triplet only (role 1).
    case lastPrompt = "last_prompt"

    public func includes(role: Int32) -> Bool {
        switch self {
        case .answer: return role == 1 || role == 2
        case .all: return true
        case .lastPrompt: return role == 1
        }
    }
}

/// A capture file written by `tiller capture` (the format of /docs/steering.md, "Captures"), opened
/// for fitting: the row tensors are read at open time and every layer's `h` and `delta` is checked
/// (present, F32, [rows, hidden]); a layer's rows are read into backend tensors on request.
///
/// Every problem is one line naming the file and the tensor.
public final class CaptureData {
    /// The `__metadata__` key holding the capture's JSON description.
    public static let metadataKey = "tiller.capture"

    public let path: String
    /// N: captured positions over all triplets.
    public let rowCount: Int
    /// d: the model's hidden size.
    public let hiddenSize: Int
    /// The captured layers (0-based: the residual stream after block L), sorted.
    public let layers: [Int]
    /// Per row: 0 prompt, 1 last prompt token, 2 answer.
    public let roles: [Int32]
    /// Per row: the triplet's index (all 0 when the file has no `example` tensor).
    public let examples: [Int32]
    /// The model the capture was made with, when its metadata names one completely.
    public let model: ModelFingerprint?
    /// The capture's JSON description (`__metadata__["tiller.capture"]`), when present.
    public let info: [String: Any]?

    private let file: SafetensorsFile

    public init(path: String) throws {
        let file = try SafetensorsFile(path: path)
        func bad(_ detail: String) -> TillerError { .io(path: path, detail: detail) }
        self.file = file
        self.path = path

        var description: [String: Any]? = nil
        if let json = file.metadata[Self.metadataKey] {
            guard let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] else {
                throw bad("\"\(Self.metadataKey)\" metadata is not a JSON object")
            }
            if let version = object["version"] as? Int, version != 1 {
                throw bad("unknown capture format version \(version) (this Tiller reads version 1)")
            }
            description = object
        }
        self.info = description

        // Rows: the role tensor is the one every method needs.
        let roles = try Self.integers(file, "role", path: path, rows: nil)
        let n = roles.count
        guard n > 0 else { throw bad("tensor 'role' has no rows: the capture is empty") }
        if let bad = roles.first(where: { !(0...2).contains($0) }) {
            throw TillerError.io(path: path, detail: "tensor 'role' holds \(bad); roles are 0 (prompt), 1 (last prompt token), 2 (answer)")
        }
        self.roles = roles
        rowCount = n
        examples = file.entries["example"] == nil ? [Int32](repeating: 0, count: n)
            : try Self.integers(file, "example", path: path, rows: n)
        for name in ["tokens", "position"] where file.entries[name] != nil {
            _ = try Self.integers(file, name, path: path, rows: n)
        }

        // Layers: from the tensor names, and from the metadata when it lists them.
        var found = Set<Int>()
        for name in file.tensorNames where name.hasPrefix("layers.") {
            let parts = name.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 3, let layer = Int(parts[1]), layer >= 0, parts[2] == "h" || parts[2] == "delta" else {
                throw bad("unexpected tensor '\(JSONText.excerpt(name))' (captures hold layers.L.h and layers.L.delta)")
            }
            found.insert(layer)
        }
        if let listed = description?["layers"] as? [Any] {
            for value in listed {
                guard let layer = value as? Int else { throw bad("\"\(Self.metadataKey)\" metadata: \"layers\" must be integers") }
                found.insert(layer)
            }
        }
        guard !found.isEmpty else { throw bad("no layers.L.h / layers.L.delta tensors: the capture holds no layer") }
        layers = found.sorted()

        var d = description?["hidden_size"] as? Int
        for layer in layers {
            for part in ["h", "delta"] {
                let name = "layers.\(layer).\(part)"
                let entry: SafetensorsEntry
                do {
                    entry = try file.entry(name)
                } catch {
                    throw bad("no tensor '\(name)' (layer \(layer) needs both layers.\(layer).h and layers.\(layer).delta)")
                }
                guard entry.dtype == .f32 else { throw bad("tensor '\(name)' is \(entry.dtype), captures are F32") }
                let width = d ?? (entry.shape.count == 2 ? entry.shape[1] : -1)
                guard entry.shape == [n, width], width > 0 else {
                    throw bad("tensor '\(name)' has shape \(entry.shape), expected [\(n), \(d.map(String.init) ?? "hidden")] (rows from 'role')")
                }
                d = width
            }
        }
        hiddenSize = d!

        if let m = description?["model"] as? [String: Any], let architecture = m["architecture"] as? String,
           let hash = m["weights_header_hash"] as? String, let hidden = m["hidden_size"] as? Int,
           let layerCount = m["layer_count"] as? Int {
            model = ModelFingerprint(architecture: architecture, modelType: m["model_type"] as? String ?? "",
                                     hiddenSize: hidden, layerCount: layerCount, weightsHeaderHash: hash)
        } else {
            model = nil
        }
    }

    /// The indices of the rows a selection keeps, in file order.
    public func rowIndices(_ rows: FitRows) -> [Int] {
        roles.indices.filter { rows.includes(role: roles[$0]) }
    }

    /// Refuses, naming the file and both models, a capture made with another model than the one
    /// a steering file is being fitted for: a different hidden size, a layer the model does not
    /// have, or (when the capture records it) another weights header hash.
    public func check(against target: ModelFingerprint) throws {
        func bad(_ detail: String) -> TillerError { .io(path: path, detail: detail) }
        guard hiddenSize == target.hiddenSize else {
            throw bad("the capture has hidden size \(hiddenSize), but the model has \(target.hiddenSize) (\(target.summary))")
        }
        if let layer = layers.first(where: { $0 >= target.layerCount }) {
            throw bad("the capture holds layer \(layer), but the model has \(target.layerCount) layers (\(target.summary))")
        }
        if let model, model.weightsHeaderHash != target.weightsHeaderHash || model.architecture != target.architecture {
            throw bad("the capture was made with another model: \(model.summary); this model: \(target.summary)")
        }
    }

    /// Layer `layer`'s unsteered activations and Delta_PS at the given rows (indices into the
    /// capture), uploaded to `backend`.
    public func activations(layer: Int, rows: [Int], on backend: any Backend) throws -> LayerActivations {
        guard layers.contains(layer) else {
            throw TillerError.io(path: path, detail: "no tensor 'layers.\(layer).h': the capture holds layers \(layers.map(String.init).joined(separator: ", "))")
        }
        guard !rows.isEmpty else {
            throw TillerError.io(path: path, detail: "no rows selected at layer \(layer)")
        }
        if let r = rows.first(where: { $0 < 0 || $0 >= rowCount }) {
            throw TillerError.io(path: path, detail: "row \(r) is outside the capture's \(rowCount) rows")
        }
        let h = try upload("layers.\(layer).h", rows: rows, backend: backend)
        let delta = try upload("layers.\(layer).delta", rows: rows, backend: backend)
        return try LayerActivations(layer: layer, h: h, delta: delta,
                                    roles: rows.map { roles[$0] }, examples: rows.map { examples[$0] })
    }

    /// Copies the chosen rows of an F32 [N, d] tensor from the mapping into a backend tensor.
    private func upload(_ name: String, rows: [Int], backend: any Backend) throws -> Tensor {
        let entry = try file.entry(name)
        let source = file.bytes(entry)
        let rowBytes = hiddenSize * 4
        guard source.count == rowCount * rowBytes else {
            throw TillerError.io(path: path, detail: "tensor '\(name)' holds \(source.count) bytes, expected \(rowCount * rowBytes)")
        }
        let out = try backend.empty([rows.count, hiddenSize])
        if rows.count == rowCount, rows.elementsEqual(0..<rowCount) {
            try backend.upload(source, to: out)
            return out
        }
        var staged = [UInt8](repeating: 0, count: rows.count * rowBytes)
        staged.withUnsafeMutableBytes { dst in
            for (k, r) in rows.enumerated() {
                dst.baseAddress!.advanced(by: k * rowBytes)
                    .copyMemory(from: source.baseAddress!.advanced(by: r * rowBytes), byteCount: rowBytes)
            }
        }
        try staged.withUnsafeBytes { try backend.upload($0, to: out) }
        return out
    }

    /// A per-row integer tensor (`role`, `example`, ...): I32 as the format says (F32 holding
    /// integers is accepted too), one value per row.
    static func integers(_ file: SafetensorsFile, _ name: String, path: String, rows: Int?) throws -> [Int32] {
        let entry: SafetensorsEntry
        do {
            entry = try file.entry(name)
        } catch {
            throw TillerError.io(path: path, detail: "no tensor '\(name)' (a capture has role, example, position and tokens per row)")
        }
        guard entry.shape.count == 1, rows == nil || entry.shape[0] == rows! else {
            throw TillerError.io(path: path, detail: "tensor '\(name)' has shape \(entry.shape), expected [\(rows.map(String.init) ?? "rows")]")
        }
        let raw = file.bytes(entry)
        switch entry.dtype {
        case .i32:
            return (0..<entry.count).map { Int32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self)) }
        case .f32:
            return try (0..<entry.count).map {
                let x = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self)))
                guard x == x.rounded(), abs(x) < 2e9 else {
                    throw TillerError.io(path: path, detail: "tensor '\(name)' holds \(x) at index \($0), not an integer")
                }
                return Int32(x)
            }
        default:
            throw TillerError.io(path: path, detail: "tensor '\(name)' is \(entry.dtype), expected I32")
        }
    }
}

/// One layer of a capture at some rows, on a backend: what every method is fitted from.
public struct LayerActivations {
    public let layer: Int
    /// f32 [M, d]: the unsteered residual stream after block `layer`.
    public let h: Tensor
    /// f32 [M, d]: Delta_PS, steered minus unsteered, at the same rows.
    public let delta: Tensor
    /// Per row: the capture's role (0 prompt, 1 last prompt token, 2 answer).
    public let roles: [Int32]
    /// Per row: the triplet's index.
    public let examples: [Int32]

    public init(layer: Int, h: Tensor, delta: Tensor, roles: [Int32], examples: [Int32]) throws {
        guard h.rank == 2, h.dtype == .f32, delta.dtype == .f32, delta.shape == h.shape, h.shape[0] > 0, h.shape[1] > 0 else {
            throw TillerError.shapeMismatch(op: "capture layer \(layer)", detail: "h \(h) and delta \(delta) must both be f32 [rows, hidden]")
        }
        guard roles.count == h.shape[0], examples.count == h.shape[0] else {
            throw TillerError.shapeMismatch(op: "capture layer \(layer)", detail: "\(roles.count) roles and \(examples.count) examples for \(h.shape[0]) rows")
        }
        self.layer = layer
        self.h = h
        self.delta = delta
        self.roles = roles
        self.examples = examples
    }

    /// From host values (row-major [M, d]); tests and small tools.
    public static func upload(layer: Int, h: [Float], delta: [Float], hiddenSize d: Int, roles: [Int32],
                              examples: [Int32]? = nil, on backend: any Backend) throws -> LayerActivations {
        let m = roles.count
        return try LayerActivations(layer: layer, h: backend.tensor(h, shape: [m, d]), delta: backend.tensor(delta, shape: [m, d]),
                                    roles: roles, examples: examples ?? [Int32](repeating: 0, count: m))
    }

    public var rowCount: Int { h.shape[0] }
    public var hiddenSize: Int { h.shape[1] }

    /// Indices (into these rows) of the rows with a role.
    public func rows(role: Int32) -> [Int] { roles.indices.filter { roles[$0] == role } }
}
