import Foundation
import TillerCore
import TillerModels

/// A steering file: an `Intervention` and the model it was made for, stored as safetensors
/// (docs/steering.md, "Steering files").
///
/// Tensors, all F32, for each steered layer L (0-based: the residual stream after block L):
/// `layers.L.w` [hidden], `layers.L.bias` [1], `layers.L.z` [hidden]. Everything else is JSON in
/// `__metadata__["tiller.steering"]`: format version, method, hook point, location, alpha, the
/// layers with each head's activation, and the model's fingerprint. Other `__metadata__` keys are
/// free-form notes (`metadata`), kept as they are.
///
/// Reading checks everything a file could get wrong, each a one-line error naming the file:
/// an unknown format version or hook point, missing, extra or misshapen tensors, a NaN or
/// infinity anywhere in a head (naming the tensor), and, against the model it is loaded for,
/// a different hidden size, a layer the model does not have, or a different fingerprint.
public struct SteeringFile: Sendable, Equatable {
    /// The `__metadata__` key holding the JSON description.
    public static let metadataKey = "tiller.steering"
    /// The format this Tiller writes and reads.
    public static let formatVersion = 1
    /// Where heads act: the residual stream after a block (`ResidualStreamHook.afterBlock`).
    public static let hookPoint = "residual_post_block"

    public var intervention: Intervention
    /// The model the file was made for.
    public var model: ModelFingerprint
    /// Free-form notes stored as further `__metadata__` strings (not `tiller.steering`).
    public var metadata: [String: String]

    public init(intervention: Intervention, model: ModelFingerprint, metadata: [String: String] = [:]) {
        self.intervention = intervention
        self.model = model
        self.metadata = metadata
    }

    // MARK: Writing

    /// The file's bytes. Fails in one line on what a file cannot hold or should not: no heads, a
    /// head whose size is not the model's hidden size, a layer the model does not have, a NaN or
    /// infinity, an explicit mask as location (masks are given per request).
    public func encode() throws -> Data {
        func bad(_ detail: String) -> TillerError { .invalidArgument(op: "steering file", detail: detail) }
        let iv = intervention
        guard !iv.heads.isEmpty else { throw bad("the intervention has no heads") }
        guard !iv.method.isEmpty else { throw bad("the intervention has no method name") }
        if case .mask = iv.location {
            throw bad("an explicit mask cannot be stored as a file's location (use all, answer_only or question_and_answer)")
        }
        guard iv.alpha.isFinite else { throw bad("alpha is \(iv.alpha)") }
        guard metadata[Self.metadataKey] == nil else { throw bad("metadata key \(Self.metadataKey) is reserved") }
        let d = model.hiddenSize
        var entries: [SafetensorsWriter.Entry] = []
        for layer in iv.layers {
            let head = iv.heads[layer]!
            guard layer >= 0, layer < model.layerCount else {
                throw bad("layer \(layer) is not a layer of the model (\(model.layerCount) layers: 0-\(model.layerCount - 1))")
            }
            guard head.w.count == d, head.z.count == d else {
                throw bad("the head at layer \(layer) has w of \(head.w.count) and z of \(head.z.count) values, but the model's hidden size is \(d)")
            }
            let tensors: [(String, [Int], [Float])] = [
                (Self.tensorName(layer, "w"), [d], head.w),
                (Self.tensorName(layer, "bias"), [1], [head.bias]),
                (Self.tensorName(layer, "z"), [d], head.z),
            ]
            for (name, shape, values) in tensors {
                if let i = values.firstIndex(where: { !$0.isFinite }) {
                    throw bad("tensor \(name) has \(values[i]) at index \(i)")
                }
                entries.append(.init(name: name, shape: shape, values: values))
            }
        }
        var all = metadata
        all[Self.metadataKey] = descriptionJSON()
        return try SafetensorsWriter.encode(entries, metadata: all)
    }

    /// Writes the file (atomically), failing in one line naming the path.
    public func write(to path: String) throws {
        let data: Data
        do {
            data = try encode()
        } catch let error as TillerError {
            throw TillerError.io(path: path, detail: "cannot write steering file: \(error)")
        }
        do {
            try data.write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw TillerError.io(path: path, detail: "cannot write (\(ErrorReason.file(error, path: path)))")
        }
    }

    /// Saves an intervention made for `model`.
    public static func save(_ intervention: Intervention, model: ModelFingerprint, metadata: [String: String] = [:], to path: String) throws {
        try SteeringFile(intervention: intervention, model: model, metadata: metadata).write(to: path)
    }

    static func tensorName(_ layer: Int, _ part: String) -> String { "layers.\(layer).\(part)" }

    /// The JSON of `__metadata__["tiller.steering"]`, keys in a fixed order.
    func descriptionJSON() -> String {
        let iv = intervention
        let layers = iv.layers
        let q = SafetensorsWriter.jsonString
        let activations = layers.map { q(Self.activationName(iv.heads[$0]!.activation)) }
        let modelJSON = "{\"architecture\":\(q(model.architecture)),\"model_type\":\(q(model.modelType)),"
            + "\"hidden_size\":\(model.hiddenSize),\"layer_count\":\(model.layerCount),"
            + "\"weights_header_hash\":\(q(model.weightsHeaderHash))}"
        return "{\"format_version\":\(Self.formatVersion),\"method\":\(q(iv.method)),\"hook_point\":\(q(Self.hookPoint)),"
            + "\"location\":\(q(iv.location.name)),\"alpha\":\(Self.exactText(iv.alpha)),"
            + "\"layers\":[\(layers.map(String.init).joined(separator: ","))],"
            + "\"activations\":[\(activations.joined(separator: ","))],\"model\":\(modelJSON)}"
    }

    /// The shortest decimal that reads back as exactly `x` (through Double, as JSON readers do).
    static func exactText(_ x: Float) -> String {
        let short = "\(x)"
        if let d = Double(short), Float(d) == x { return short }
        return "\(Double(x))"
    }

    static func activationName(_ a: PSRActivation) -> String {
        switch a {
        case .relu: return "relu"
        case .identity: return "identity"
        case .constant: return "constant"
        }
    }

    static func activation(named name: String) -> PSRActivation? {
        switch name {
        case "relu": return .relu
        case "identity": return .identity
        case "constant": return .constant
        default: return nil
        }
    }

    // MARK: Reading

    /// Reads and checks a steering file on its own (not against a model).
    public static func read(path: String) throws -> SteeringFile {
        let file = try SafetensorsFile(path: path)
        func bad(_ detail: String) -> TillerError { .io(path: path, detail: detail) }

        guard let json = file.metadata[metadataKey] else {
            throw bad("not a Tiller steering file (no \"\(metadataKey)\" in the safetensors __metadata__)")
        }
        let description = try MetadataObject(json: json, path: path)

        // The version first: a newer file may mean anything by the rest.
        let version = try description.int("format_version")
        guard version == formatVersion else {
            throw bad("unknown steering file format version \(version) (this Tiller reads version \(formatVersion))")
        }
        let hook = try description.string("hook_point")
        guard hook == hookPoint else {
            throw bad("unknown hook point \"\(JSONText.excerpt(hook))\" (this Tiller steers at \(hookPoint))")
        }
        let method = try description.string("method")
        guard !method.isEmpty else { throw bad("\"method\" is empty") }
        let locationName = try description.string("location")
        guard let location = SteeringLocation(name: locationName) else {
            throw bad("unknown location \"\(JSONText.excerpt(locationName))\" (all, answer_only, question_and_answer)")
        }
        let alphaValue = try description.double("alpha")
        let alpha = Float(alphaValue)
        guard alpha.isFinite else { throw bad("alpha \(alphaValue) is not a finite f32") }

        let modelObject = try description.object("model")
        let model = ModelFingerprint(
            architecture: try modelObject.string("architecture"), modelType: try modelObject.string("model_type"),
            hiddenSize: try modelObject.int("hidden_size"), layerCount: try modelObject.int("layer_count"),
            weightsHeaderHash: try modelObject.string("weights_header_hash"))
        guard model.hiddenSize > 0, model.layerCount > 0 else {
            throw bad("model hidden_size \(model.hiddenSize) and layer_count \(model.layerCount) must be positive")
        }

        let layers = try description.intArray("layers")
        let activationNames = try description.stringArray("activations")
        guard !layers.isEmpty else { throw bad("\"layers\" is empty: the file steers nothing") }
        guard activationNames.count == layers.count else {
            throw bad("\"layers\" lists \(layers.count) layers but \"activations\" \(activationNames.count)")
        }
        guard Set(layers).count == layers.count else { throw bad("\"layers\" lists a layer twice: \(layers)") }
        if let layer = layers.first(where: { $0 < 0 || $0 >= model.layerCount }) {
            throw bad("layer \(layer) is not a layer of the model the file was made for (\(model.layerCount) layers)")
        }

        var expected = Set<String>()
        var heads: [Int: SteeringHead] = [:]
        let d = model.hiddenSize
        for (layer, activationName) in zip(layers, activationNames) {
            guard let activation = activation(named: activationName) else {
                throw bad("layer \(layer): unknown activation \"\(JSONText.excerpt(activationName))\" (relu, identity, constant)")
            }
            let w = try floats(file, tensorName(layer, "w"), shapes: [[d]], path: path)
            let bias = try floats(file, tensorName(layer, "bias"), shapes: [[1], []], path: path)
            let z = try floats(file, tensorName(layer, "z"), shapes: [[d]], path: path)
            expected.formUnion(["w", "bias", "z"].map { tensorName(layer, $0) })
            heads[layer] = SteeringHead(w: w, bias: bias[0], z: z, activation: activation)
        }
        if let extra = file.tensorNames.first(where: { !expected.contains($0) }) {
            throw bad("unexpected tensor '\(JSONText.excerpt(extra))' (the metadata lists layers \(layers.sorted()))")
        }

        var notes = file.metadata
        notes[metadataKey] = nil
        return SteeringFile(intervention: Intervention(method: method, heads: heads, location: location, alpha: alpha),
                            model: model, metadata: notes)
    }

    /// The values of a head tensor: F32, one of the allowed shapes, every value finite.
    static func floats(_ file: SafetensorsFile, _ name: String, shapes: [[Int]], path: String) throws -> [Float] {
        if let dtype = file.unsupportedEntries[name] {
            throw TillerError.io(path: path, detail: "tensor '\(name)' is \(JSONText.excerpt(dtype)), steering heads are stored as f32")
        }
        guard let entry = file.entries[name] else {
            throw TillerError.io(path: path, detail: "missing tensor '\(name)' (the metadata lists its layer)")
        }
        guard entry.dtype == .f32 else {
            throw TillerError.io(path: path, detail: "tensor '\(name)' is \(entry.dtype), steering heads are stored as f32")
        }
        guard shapes.contains(entry.shape) else {
            throw TillerError.io(path: path, detail: "tensor '\(name)' has shape \(entry.shape), expected \(shapes[0])")
        }
        let raw = file.bytes(entry)
        let values = (0..<entry.count).map { raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self) }
            .map { Float(bitPattern: UInt32(littleEndian: $0)) }
        if let i = values.firstIndex(where: { !$0.isFinite }) {
            throw TillerError.io(path: path, detail: "tensor '\(name)' has \(values[i]) at index \(i): a head with NaN or infinity is refused")
        }
        return values
    }

    // MARK: Checking against a model

    /// Refuses, in one line naming the file and both values, a file made for another model: a
    /// different hidden size, a layer the model does not have, or (when `requireSameWeights`)
    /// another architecture, layer count or weights header hash.
    public func check(against target: ModelFingerprint, path: String, requireSameWeights: Bool = true) throws {
        func bad(_ detail: String) -> TillerError { .io(path: path, detail: detail) }
        guard model.hiddenSize == target.hiddenSize else {
            throw bad("steering file made for hidden size \(model.hiddenSize) (\(model.summary)), but the model has hidden size \(target.hiddenSize) (\(target.summary))")
        }
        if let layer = intervention.layers.first(where: { $0 >= target.layerCount }) {
            throw bad("steering file steers layer \(layer) (made for \(model.layerCount) layers), but the model has \(target.layerCount) layers (0-\(target.layerCount - 1))")
        }
        guard requireSameWeights else { return }
        guard model.layerCount == target.layerCount else {
            throw bad("steering file made for \(model.layerCount) layers (\(model.summary)), but the model has \(target.layerCount) (\(target.summary))")
        }
        guard model.architecture == target.architecture, model.weightsHeaderHash == target.weightsHeaderHash else {
            throw bad("steering file made for another model: \(model.summary); this model: \(target.summary)")
        }
    }

    /// Reads a steering file and checks it against the model it is loaded for.
    public static func load(path: String, for model: ModelFingerprint, requireSameWeights: Bool = true) throws -> Intervention {
        let file = try read(path: path)
        try file.check(against: model, path: path, requireSameWeights: requireSameWeights)
        return file.intervention
    }
}

/// Small helpers for the JSON in a steering file's metadata (Foundation's reader; the keys are
/// plain ASCII, so its String-keyed dictionaries lose nothing here).
enum JSONText {
    static func excerpt(_ s: String, limit: Int = 80) -> String {
        var out = ""
        for (n, scalar) in s.unicodeScalars.enumerated() {
            if n >= limit { return out + "..." }
            if scalar.value < 0x20 || scalar.value == 0x7F {
                out += "\\u{\(String(scalar.value, radix: 16))}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}

/// A JSON object from the metadata, with typed getters whose errors name the file and the key.
struct MetadataObject {
    let members: [String: Any]
    let path: String
    let context: String

    init(json: String, path: String) throws {
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: Data(json.utf8), options: [])
        } catch {
            throw TillerError.io(path: path, detail: "\"\(SteeringFile.metadataKey)\" metadata is not valid JSON")
        }
        guard let object = parsed as? [String: Any] else {
            throw TillerError.io(path: path, detail: "\"\(SteeringFile.metadataKey)\" metadata is not a JSON object")
        }
        self.init(members: object, path: path, context: "")
    }

    init(members: [String: Any], path: String, context: String) {
        self.members = members
        self.path = path
        self.context = context
    }

    private func bad(_ key: String, _ what: String) -> TillerError {
        .io(path: path, detail: "steering metadata \"\(context)\(key)\" \(what)")
    }

    private func value(_ key: String) throws -> Any {
        guard let v = members[key] else { throw bad(key, "is missing") }
        return v
    }

    /// A JSON number as the nearest Double, or nil for anything else (Foundation bridges booleans
    /// to NSNumber too: they have the objCType "c"). Long literals come back as NSDecimalNumber,
    /// whose doubleValue is not correctly rounded, so those are read from their decimal text.
    static func number(_ v: Any) -> Double? {
        guard let n = v as? NSNumber, String(cString: n.objCType) != "c" else { return nil }
        if let decimal = n as? NSDecimalNumber, let d = Double(decimal.stringValue) { return d }
        return n.doubleValue
    }

    static func integer(_ v: Any) -> Int? {
        guard let d = number(v) else { return nil }
        guard d.isFinite, d == d.rounded(), abs(d) < 9e15 else { return nil }
        return Int(d)
    }

    func string(_ key: String) throws -> String {
        guard let s = try value(key) as? String else { throw bad(key, "must be a string") }
        return s
    }

    func int(_ key: String) throws -> Int {
        guard let i = Self.integer(try value(key)) else { throw bad(key, "must be an integer") }
        return i
    }

    func double(_ key: String) throws -> Double {
        guard let d = Self.number(try value(key)) else { throw bad(key, "must be a number") }
        return d
    }

    func object(_ key: String) throws -> MetadataObject {
        guard let o = try value(key) as? [String: Any] else { throw bad(key, "must be an object") }
        return MetadataObject(members: o, path: path, context: context + key + ".")
    }

    func intArray(_ key: String) throws -> [Int] {
        guard let a = try value(key) as? [Any] else { throw bad(key, "must be an array of integers") }
        return try a.map { guard let i = Self.integer($0) else { throw bad(key, "must be an array of integers") }; return i }
    }

    func stringArray(_ key: String) throws -> [String] {
        guard let a = try value(key) as? [Any] else { throw bad(key, "must be an array of strings") }
        return try a.map { guard let s = $0 as? String else { throw bad(key, "must be an array of strings") }; return s }
    }
}
