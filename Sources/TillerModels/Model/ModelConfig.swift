import Foundation
import TillerCore

/// config.json of a Hugging Face causal LM, the fields the supported families use.
/// Keys are transformers' snake_case names.
public struct ModelConfig: Codable, Sendable {
    public var architectures: [String]?
    public var modelType: String?
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var numKeyValueHeads: Int?
    public var headDim: Int?
    public var vocabSize: Int
    public var rmsNormEps: Double?
    public var ropeTheta: Double?
    public var ropeScaling: RopeScalingConfig?
    /// transformers 5 writes rope_theta and the scaling together under rope_parameters.
    public var ropeParameters: RopeScalingConfig?
    /// transformers 5 names each layer's attention: "sliding_attention" or "full_attention".
    public var layerTypes: [String]?
    public var maxPositionEmbeddings: Int?
    public var tieWordEmbeddings: Bool?
    public var slidingWindow: Int?
    public var useSlidingWindow: Bool?
    public var maxWindowLayers: Int?
    public var attentionBias: Bool?
    public var hiddenAct: String?
    public var hiddenActivation: String?
    public var queryPreAttnScalar: Double?
    public var attnLogitSoftcapping: Double?
    public var finalLogitSoftcapping: Double?
    /// Gemma 3 in transformers 4's configs: the sliding layers' rope base (transformers 5 writes
    /// it as rope_parameters.sliding_attention.rope_theta).
    public var ropeLocalBaseFreq: Double?
    /// Gemma 3 without layer_types: every sliding_window_pattern-th layer is global.
    public var slidingWindowPattern: Int?
    /// EmbeddingGemma's bidirectional attention (refused: Tiller runs causal models).
    public var useBidirectionalAttention: Bool?
    public var bosTokenId: Int?
    public var eosTokenId: TokenIDs?

    enum CodingKeys: String, CodingKey {
        case architectures, modelType = "model_type", hiddenSize = "hidden_size", intermediateSize = "intermediate_size"
        case numHiddenLayers = "num_hidden_layers", numAttentionHeads = "num_attention_heads"
        case numKeyValueHeads = "num_key_value_heads", headDim = "head_dim", vocabSize = "vocab_size"
        case rmsNormEps = "rms_norm_eps", ropeTheta = "rope_theta", ropeScaling = "rope_scaling"
        case ropeParameters = "rope_parameters", layerTypes = "layer_types"
        case maxPositionEmbeddings = "max_position_embeddings", tieWordEmbeddings = "tie_word_embeddings"
        case slidingWindow = "sliding_window", useSlidingWindow = "use_sliding_window", maxWindowLayers = "max_window_layers"
        case attentionBias = "attention_bias", hiddenAct = "hidden_act", hiddenActivation = "hidden_activation"
        case queryPreAttnScalar = "query_pre_attn_scalar", attnLogitSoftcapping = "attn_logit_softcapping"
        case finalLogitSoftcapping = "final_logit_softcapping", bosTokenId = "bos_token_id", eosTokenId = "eos_token_id"
        case ropeLocalBaseFreq = "rope_local_base_freq", slidingWindowPattern = "sliding_window_pattern"
        case useBidirectionalAttention = "use_bidirectional_attention"
    }

    /// eos_token_id is a number in some configs and a list in others.
    public struct TokenIDs: Codable, Sendable {
        public var values: [Int]
        public init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let one = try? c.decode(Int.self) { values = [one] } else { values = try c.decode([Int].self) }
        }
        public func encode(to encoder: Encoder) throws {
            var c = encoder.singleValueContainer()
            try c.encode(values)
        }
    }

    public struct RopeScalingConfig: Codable, Sendable {
        public var ropeTheta: Double?
        public var ropeType: String?
        public var type: String?
        public var factor: Double?
        public var lowFreqFactor: Double?
        public var highFreqFactor: Double?
        public var originalMaxPositionEmbeddings: Double?
        /// transformers 5 nests Gemma 3's rope_parameters by layer type: one set each under
        /// "sliding_attention" and "full_attention" (nil when the parameters are flat).
        public var byLayerType: [String: RopeScalingConfig]?

        enum CodingKeys: String, CodingKey {
            case ropeTheta = "rope_theta", ropeType = "rope_type", type, factor, lowFreqFactor = "low_freq_factor", highFreqFactor = "high_freq_factor"
            case originalMaxPositionEmbeddings = "original_max_position_embeddings"
        }
    }

    /// Parses config.json, naming the file in any error.
    public static func parse(_ data: Data, path: String) throws -> ModelConfig {
        let config: ModelConfig
        let data = MultimodalTextConfig.flattened(data)
        do {
            config = try JSONDecoder().decode(ModelConfig.self, from: data)
        } catch {
            throw TillerError.io(path: path, detail: ErrorReason.decoding(error, json: data))
        }
        try config.validate(path: path)
        return config
    }

    func validate(path: String) throws {
        func positive(_ name: String, _ value: Int?) throws {
            if let value, value <= 0 { throw TillerError.io(path: path, detail: "\(name) = \(value) must be positive") }
        }
        for (name, value) in [("hidden_size", hiddenSize), ("intermediate_size", intermediateSize), ("num_hidden_layers", numHiddenLayers),
                              ("num_attention_heads", numAttentionHeads), ("vocab_size", vocabSize)] {
            try positive(name, value)
        }
        try positive("num_key_value_heads", numKeyValueHeads)
        try positive("head_dim", headDim)
        try positive("sliding_window", slidingWindow)
        if numAttentionHeads % kvHeads != 0 {
            throw TillerError.io(path: path, detail: "num_attention_heads \(numAttentionHeads) is not a multiple of num_key_value_heads \(kvHeads)")
        }
        if headDim == nil && hiddenSize % numAttentionHeads != 0 {
            throw TillerError.io(path: path, detail: "hidden_size \(hiddenSize) is not a multiple of num_attention_heads \(numAttentionHeads)")
        }
        if resolvedHeadDim % 2 != 0 { throw TillerError.io(path: path, detail: "head_dim \(resolvedHeadDim) must be even for rotary embeddings") }
        try validateValues(path: path)
    }

    public var kvHeads: Int { numKeyValueHeads ?? numAttentionHeads }
    public var resolvedHeadDim: Int { headDim ?? hiddenSize / numAttentionHeads }

    /// rope_theta, from either place transformers writes it.
    public var resolvedRopeTheta: Double { ropeTheta ?? ropeParameters?.ropeTheta ?? 10_000 }

    /// The sliding window of layer i when layer_types says (nil: the architecture decides).
    public func layerWindow(_ i: Int) -> Int?? {
        guard let types = layerTypes, types.indices.contains(i) else { return nil }
        return .some(types[i] == "sliding_attention" ? slidingWindow : nil)
    }

    /// The rotary schedule this config asks for (rope_scaling, or transformers 5's rope_parameters).
    public func ropeScalingKind(path: String) throws -> RoPEScaling {
        try Self.ropeScalingKind(ropeScaling ?? ropeParameters, path: path)
    }

    /// The rotary schedule one set of rope parameters describes (none when nil); errors name `key`.
    public static func ropeScalingKind(_ scaling: RopeScalingConfig?, key: String = "rope_scaling", path: String) throws -> RoPEScaling {
        guard let s = scaling else { return .none }
        switch s.ropeType ?? s.type ?? "default" {
        case "default": return .none
        case "linear":
            return .linear(factor: s.factor ?? 1)
        case "llama3":
            guard let factor = s.factor, let low = s.lowFreqFactor, let high = s.highFreqFactor,
                  let original = s.originalMaxPositionEmbeddings else {
                throw TillerError.io(path: path, detail: "\(key) llama3 needs factor, low_freq_factor, high_freq_factor and original_max_position_embeddings")
            }
            return .llama3(factor: factor, lowFrequencyFactor: low, highFrequencyFactor: high, originalMaxPositions: original)
        case let other:
            throw TillerError.io(path: path, detail: "\(key) type \"\(other)\" is not supported (default, linear, llama3)")
        }
    }
}
