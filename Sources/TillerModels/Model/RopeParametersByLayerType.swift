/// rope_scaling / rope_parameters read in either shape: flat (`{"rope_type", "rope_theta", ...}`)
/// or, as transformers 5 writes Gemma 3's, nested by layer type (`{"sliding_attention": {...},
/// "full_attention": {...}}`, kept in `byLayerType`). A nested object that held flat keys too
/// would be ambiguous; transformers never writes one, and the flat keys then win.
extension ModelConfig.RopeScalingConfig {
    /// The layer types transformers nests rope parameters under.
    static let layerTypeKeys = ["sliding_attention", "full_attention"]

    struct LayerTypeKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        ropeTheta = try c.decodeIfPresent(Double.self, forKey: .ropeTheta)
        ropeType = try c.decodeIfPresent(String.self, forKey: .ropeType)
        type = try c.decodeIfPresent(String.self, forKey: .type)
        factor = try c.decodeIfPresent(Double.self, forKey: .factor)
        lowFreqFactor = try c.decodeIfPresent(Double.self, forKey: .lowFreqFactor)
        highFreqFactor = try c.decodeIfPresent(Double.self, forKey: .highFreqFactor)
        originalMaxPositionEmbeddings = try c.decodeIfPresent(Double.self, forKey: .originalMaxPositionEmbeddings)
        let nested = try decoder.container(keyedBy: LayerTypeKey.self)
        var byType: [String: Self] = [:]
        for key in Self.layerTypeKeys {
            // A layer type given as null is the default schedule, as transformers reads it.
            if let value = try nested.decodeIfPresent(Self.self, forKey: LayerTypeKey(stringValue: key)) { byType[key] = value }
        }
        byLayerType = byType.isEmpty ? nil : byType
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(ropeTheta, forKey: .ropeTheta)
        try c.encodeIfPresent(ropeType, forKey: .ropeType)
        try c.encodeIfPresent(type, forKey: .type)
        try c.encodeIfPresent(factor, forKey: .factor)
        try c.encodeIfPresent(lowFreqFactor, forKey: .lowFreqFactor)
        try c.encodeIfPresent(highFreqFactor, forKey: .highFreqFactor)
        try c.encodeIfPresent(originalMaxPositionEmbeddings, forKey: .originalMaxPositionEmbeddings)
        var nested = encoder.container(keyedBy: LayerTypeKey.self)
        for (key, value) in byLayerType ?? [:] { try nested.encode(value, forKey: LayerTypeKey(stringValue: key)) }
    }
}
