import Foundation
import TillerCore
import TillerModels

/// A llama.cpp control vector: one direction per layer, added to the residual stream at every
/// position (docs/steering.md, "Control vectors (GGUF)").
///
/// Layer convention: the tensor `direction.N` is added by llama.cpp to the output of its block N
/// (0-based `il`, after the feed-forward residual add: `l_out`), which is Tiller's layer N, "the
/// residual stream after block N". So `directions` is keyed by the number in the tensor's name and
/// by Tiller's layer alike. llama.cpp refuses `direction.0` (it never steers block 0's output);
/// repeng writes it only when asked for layer 0 and applies it there, so it is imported as
/// layer 0, but not exported.
public struct ControlVector: Sendable, Equatable {
    /// `controlvector.model_hint`: the model's architecture as llama.cpp names it ("llama",
    /// "qwen2", "gemma2"), which is transformers' `model_type` for the supported families.
    public var modelHint: String
    /// Layer (0-based, the residual after that block) -> direction of n_embd values.
    public var directions: [Int: [Float]]
    /// The method that made it, when the file says (Tiller writes `tiller.method`).
    public var method: String?

    public init(modelHint: String, directions: [Int: [Float]], method: String? = nil) {
        self.modelHint = modelHint
        self.directions = directions
        self.method = method
    }

    public var layers: [Int] { directions.keys.sorted() }
    /// n_embd (nil when there are no directions).
    public var hiddenSize: Int? { directions.values.first?.count }

    /// The GGUF general.architecture of a control vector.
    public static let architecture = "controlvector"
    static let alignment = 32
    /// Bounds for reading: a control vector is small, a model file passed by mistake is not read
    /// past its header.
    static let maxLayer = 1 << 20

    // MARK: From and to interventions

    /// The control vector of an intervention made of constant heads: direction N = alpha * z at
    /// layer N (alpha is multiplied in, so llama.cpp at strength 1 adds what Tiller adds at the
    /// file's alpha). Other heads (PSR, Stolfo) depend on the activation and cannot be one; layer
    /// 0 cannot be one either (llama.cpp refuses direction.0).
    public init(intervention: Intervention, modelHint: String) throws {
        func bad(_ detail: String) -> TillerError { .invalidArgument(op: "control vector export", detail: detail) }
        guard !intervention.heads.isEmpty else { throw bad("the intervention has no heads") }
        var directions: [Int: [Float]] = [:]
        var size: Int? = nil
        for layer in intervention.layers {
            let head = intervention.heads[layer]!
            guard head.activation == .constant else {
                throw bad("layer \(layer) has a \(SteeringFile.activationName(head.activation)) head; only constant heads (DiffMean, CAA, PCA, control vectors) can be exported as a control vector")
            }
            guard layer >= 1 else {
                throw bad("layer \(layer): llama.cpp never steers the output of block 0 and refuses direction.0; drop that layer to export")
            }
            if let size, size != head.z.count {
                throw bad("layer \(layer) has \(head.z.count) values but another layer \(size)")
            }
            size = head.z.count
            let v = head.z.map { intervention.alpha * $0 }
            if let i = v.firstIndex(where: { !$0.isFinite }) {
                throw bad("layer \(layer): alpha * z is \(v[i]) at index \(i)")
            }
            directions[layer] = v
        }
        self.init(modelHint: modelHint, directions: directions, method: intervention.method)
    }

    /// Layers a control vector cannot hold: 0, since llama.cpp refuses direction.0 (it never
    /// steers block 0's output; docs/steering.md, "The layer-index convention").
    public static func unrepresentableLayers(_ intervention: Intervention) -> [Int] {
        intervention.layers.filter { $0 < 1 }
    }

    /// The intervention without the layers a control vector cannot hold, and which those were.
    public static func droppingUnrepresentableLayers(_ intervention: Intervention) -> (intervention: Intervention, dropped: [Int]) {
        let dropped = unrepresentableLayers(intervention)
        var kept = intervention
        for layer in dropped { kept.heads[layer] = nil }
        return (kept, dropped)
    }

    /// What exporting `intervention` loses, one line each, for the command line to print.
    public static func exportNotes(_ intervention: Intervention) -> [String] {
        var notes: [String] = []
        if intervention.location != .all {
            // The one difference that changes every output: say how to get the same positions in Tiller.
            notes.append("the location \(intervention.location.name) is not kept: llama.cpp adds a control vector at every position, so its outputs differ from Tiller's unless Tiller steers every position too (tiller fit --location all, or tiller generate --steer-location all)")
        }
        if intervention.alpha != 1 {
            notes.append("alpha \(intervention.alpha) is multiplied into the directions (llama.cpp scales them again by --control-vector-scaled)")
        }
        return notes
    }

    /// The intervention for a model: constant heads at every position, alpha 1. Refuses, in one
    /// line naming the file and both values, a vector of another hidden size or a layer the model
    /// does not have.
    public func intervention(for model: ModelFingerprint, path: String) throws -> Intervention {
        func bad(_ detail: String) -> TillerError { .io(path: path, detail: detail) }
        guard let size = hiddenSize else { throw bad("the control vector has no direction tensors") }
        guard size == model.hiddenSize else {
            throw bad("control vector has n_embd \(size) (model hint \"\(JSONText.excerpt(modelHint))\"), but the model has hidden size \(model.hiddenSize) (\(model.summary))")
        }
        if let layer = layers.last, layer >= model.layerCount {
            throw bad("control vector has direction.\(layer) (layer \(layer)), but the model has \(model.layerCount) layers (0-\(model.layerCount - 1))")
        }
        var heads: [Int: SteeringHead] = [:]
        for (layer, v) in directions { heads[layer] = .constant(v) }
        return Intervention(method: method ?? "control_vector", heads: heads, location: .all, alpha: 1)
    }

    // MARK: Writing

    /// GGUF v3: general.architecture = "controlvector", controlvector.model_hint (string),
    /// controlvector.layer_count (u32: the number of direction tensors, as repeng and llama.cpp's
    /// cvector-generator write it), tiller.method (string, when known), then one F32 tensor
    /// `direction.N` of n_embd per layer in increasing N, each padded to 32 bytes.
    public func encode() throws -> Data {
        func bad(_ detail: String) -> TillerError { .invalidArgument(op: "control vector export", detail: detail) }
        guard let size = hiddenSize, size > 0 else { throw bad("no directions to write") }
        for (layer, v) in directions {
            guard layer >= 0, layer <= Self.maxLayer else { throw bad("layer \(layer) cannot be written") }
            guard v.count == size else { throw bad("direction.\(layer) has \(v.count) values but another \(size)") }
            if let i = v.firstIndex(where: { !$0.isFinite }) { throw bad("direction.\(layer) has \(v[i]) at index \(i)") }
        }
        var out = GGUFWriter()
        out.bytes += GGUFReader.magic
        out.u32(3)
        let layers = self.layers
        out.u64(UInt64(layers.count))
        var kvs: [(String, (inout GGUFWriter) -> Void)] = [
            ("general.architecture", { $0.u32(8); $0.string(Self.architecture) }),
            ("controlvector.model_hint", { [modelHint] in $0.u32(8); $0.string(modelHint) }),
            ("controlvector.layer_count", { $0.u32(4); $0.u32(UInt32(layers.count)) }),
        ]
        if let method { kvs.append(("tiller.method", { $0.u32(8); $0.string(method) })) }
        out.u64(UInt64(kvs.count))
        for (key, write) in kvs {
            out.string(key)
            write(&out)
        }
        let tensorBytes = size * 4
        let stride = (tensorBytes + Self.alignment - 1) / Self.alignment * Self.alignment
        for (i, layer) in layers.enumerated() {
            out.string("direction.\(layer)")
            out.u32(1)
            out.u64(UInt64(size))
            out.u32(GGUFReader.TensorType.f32.rawValue)
            out.u64(UInt64(i * stride))
        }
        out.pad(to: Self.alignment)
        for layer in layers {
            for x in directions[layer]! { out.u32(x.bitPattern) }
            out.pad(to: Self.alignment)
        }
        return Data(out.bytes)
    }

    public func write(to path: String) throws {
        let data: Data
        do {
            data = try encode()
        } catch let error as TillerError {
            throw TillerError.io(path: path, detail: "cannot write control vector: \(error)")
        }
        try OutputFile.write(data, to: path)
    }

    // MARK: Reading

    /// Reads a control vector GGUF (llama.cpp's, repeng's or Tiller's): versions 2 and 3,
    /// little-endian, F32 directions (F16 and BF16 accepted too). Anything malformed is a one-line
    /// error naming the file, never a crash.
    public static func read(path: String) throws -> ControlVector {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        } catch {
            throw TillerError.io(path: path, detail: "cannot read (\(ErrorReason.file(error, path: path)))")
        }
        return try decode(data, path: path)
    }

    public static func decode(_ data: Data, path: String) throws -> ControlVector {
        try data.withUnsafeBytes { try decode($0, path: path) }
    }

    static func decode(_ bytes: UnsafeRawBufferPointer, path: String) throws -> ControlVector {
        let file = try GGUFReader(bytes, path: path)
        func bad(_ detail: String) -> TillerError { .io(path: path, detail: detail) }

        if let arch = file.value("general.architecture") {
            guard case .string(let name) = arch else { throw bad("general.architecture is \(arch.typeName), not a string") }
            guard name == architecture else {
                throw bad("general.architecture is \"\(JSONText.excerpt(name))\", not \"\(architecture)\": this is not a control vector (a model file?)")
            }
        }
        var hint = ""
        if let h = file.value("controlvector.model_hint") {
            guard case .string(let s) = h else { throw bad("controlvector.model_hint is \(h.typeName), not a string") }
            hint = s
        }
        var method: String? = nil
        if case .string(let s)? = file.value("tiller.method"), !s.isEmpty { method = s }

        guard !file.tensors.isEmpty else { throw bad("no direction tensors") }
        var directions: [Int: [Float]] = [:]
        var size: Int? = nil
        for tensor in file.tensors {
            let shown = "tensor '\(JSONText.excerpt(tensor.name))'"
            guard let layer = Self.layer(ofTensor: tensor.name) else {
                throw bad("\(shown) is not named direction.N (N a layer number up to \(maxLayer))")
            }
            guard GGUFReader.TensorType(rawValue: tensor.type) != nil else {
                throw bad("\(shown) is \(GGUFReader.typeName(tensor.type)); directions must be F32 (F16 and BF16 are accepted too)")
            }
            guard let n = tensor.dims.first, tensor.dims.dropFirst().allSatisfy({ $0 == 1 }), n > 0 else {
                throw bad("\(shown) has shape \(tensor.dims), not one vector of n_embd")
            }
            if let size, size != n {
                throw bad("\(shown) has \(n) values but an earlier direction \(size)")
            }
            size = n
            guard let values = GGUFReader.floats(bytes, tensor) else { throw bad("\(shown) cannot be read") }
            if let i = values.firstIndex(where: { !$0.isFinite }) {
                throw bad("\(shown) has \(values[i]) at index \(i): a direction with NaN or infinity is refused")
            }
            if let earlier = directions[layer] {
                // llama.cpp adds directions that name the same layer ("direction.01" and "direction.1").
                directions[layer] = zip(earlier, values).map { $0 + $1 }
            } else {
                directions[layer] = values
            }
        }
        return ControlVector(modelHint: hint, directions: directions, method: method)
    }

    /// N of "direction.N" (decimal digits only), or nil.
    static func layer(ofTensor name: String) -> Int? {
        let prefix = "direction."
        guard name.hasPrefix(prefix) else { return nil }
        let digits = name.dropFirst(prefix.count)
        guard !digits.isEmpty, digits.count <= 8, digits.allSatisfy({ $0.isASCII && $0.isNumber }),
              let n = Int(digits), n <= maxLayer else { return nil }
        return n
    }
}

/// Little-endian bytes for a GGUF file.
struct GGUFWriter {
    var bytes: [UInt8] = []

    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func string(_ s: String) {
        u64(UInt64(s.utf8.count))
        bytes.append(contentsOf: s.utf8)
    }
    mutating func pad(to alignment: Int) {
        while bytes.count % alignment != 0 { bytes.append(0) }
    }
}
