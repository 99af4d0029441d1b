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

/// A capture file written by `tiller capture` (the format of docs/steering.md, "Capture and
/// analysis"), opened for fitting. A thin layer over `CaptureFile`, which reads and checks the
/// format (the metadata, every tensor's name, dtype and shape, the roles and triplet indices);
/// this adds what fitting needs: row selections by role, the check against the model a steering
/// file is fitted for, and a layer's chosen rows uploaded to a backend. Unlike `CaptureFile`, it
/// accepts a capture whose metadata records no model (the fit then checks shapes only).
///
/// Every problem is one line naming the file and the tensor.
public final class CaptureData {
    /// The `__metadata__` key holding the capture's JSON description.
    public static let metadataKey = CaptureInfo.metadataKey

    public let path: String
    /// N: captured positions over all triplets.
    public let rowCount: Int
    /// d: the model's hidden size.
    public let hiddenSize: Int
    /// The captured layers (0-based: the residual stream after block L), sorted.
    public let layers: [Int]
    /// Per row: 0 prompt, 1 last prompt token, 2 answer.
    public let roles: [Int32]
    /// Per row: the triplet's index.
    public let examples: [Int32]
    /// The model the capture was made with, when its metadata records one.
    public let model: ModelFingerprint?
    /// The capture's JSON description (`__metadata__["tiller.capture"]`) as parsed JSON.
    public let info: [String: Any]?

    let capture: CaptureFile

    public init(path: String) throws {
        let capture = try CaptureFile(path: path, requireModel: false)
        guard capture.rowCount > 0 else {
            throw TillerError.io(path: path, detail: "the capture has no rows (no triplet shares tokens at its end): nothing to fit")
        }
        self.capture = capture
        self.path = path
        rowCount = capture.rowCount
        hiddenSize = capture.hiddenSize
        layers = capture.layers
        roles = capture.role
        examples = capture.example
        model = capture.recordedModel
        info = capture.file.metadata[CaptureInfo.metadataKey]
            .flatMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
    }

    /// The indices of the rows a selection keeps, in file order.
    public func rowIndices(_ rows: FitRows) -> [Int] {
        roles.indices.filter { rows.includes(role: roles[$0]) }
    }

    /// Refuses, naming the file and both models, a capture made with another model than the one
    /// a steering file is being fitted for: a different hidden size, a layer the model does not
    /// have, or (when the capture records it) another architecture or weights header hash.
    public func check(against target: ModelFingerprint) throws {
        try capture.check(against: target)
    }

    /// Layer `layer`'s unsteered activations and Delta_PS at the given rows (indices into the
    /// capture), uploaded to `backend`.
    public func activations(layer: Int, rows: [Int], on backend: any Backend) throws -> LayerActivations {
        guard layers.contains(layer) else { throw capture.notCaptured(layer) }
        guard !rows.isEmpty else {
            throw TillerError.io(path: path, detail: "no rows selected at layer \(layer)")
        }
        if let r = rows.first(where: { $0 < 0 || $0 >= rowCount }) {
            throw TillerError.io(path: path, detail: "row \(r) is outside the capture's \(rowCount) rows")
        }
        try checkFinite(layer: layer, rows: rows)
        let h = try upload(layer: layer, delta: false, rows: rows, backend: backend)
        let delta = try upload(layer: layer, delta: true, rows: rows, backend: backend)
        return try LayerActivations(layer: layer, h: h, delta: delta,
                                    roles: rows.map { roles[$0] }, examples: rows.map { examples[$0] })
    }

    /// Copies the chosen rows of layer `layer`'s h or delta from the mapping into a backend tensor.
    private func upload(layer: Int, delta: Bool, rows: [Int], backend: any Backend) throws -> Tensor {
        let source = try capture.bytes(layer: layer, delta: delta, rows: 0..<rowCount)
        let rowBytes = hiddenSize * 4
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
