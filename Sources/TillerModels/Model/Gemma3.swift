import TillerCore

/// Gemma3ForCausalLM (model_type gemma3_text): Gemma 2's blocks (embeddings x sqrt(hidden),
/// (1 + w) RMSNorms before and after attention and MLP, tanh-GELU) plus (1 + w) RMSNorms over each
/// head of q and k before RoPE; q.k scaled by query_pre_attn_scalar^-1/2; sliding-window layers
/// (every sliding_window_pattern-th layer, 6 by default, is global) with their own rope base, the
/// global layers with rope_theta and its scaling (linear x8 in the 4B+ checkpoints). No soft-caps
/// unless the config sets them (transformers' defaults are null).
///
/// config.json keys read, beside the common sizes (hidden_size, intermediate_size,
/// num_hidden_layers, num_attention_heads, num_key_value_heads, head_dim, vocab_size,
/// rms_norm_eps, tie_word_embeddings): hidden_activation, query_pre_attn_scalar, sliding_window,
/// layer_types or sliding_window_pattern, attn_logit_softcapping, final_logit_softcapping,
/// use_bidirectional_attention (refused when true), and the rope: transformers 5's rope_parameters
/// nested by layer type ({"sliding_attention": {...}, "full_attention": {...}}), or transformers
/// 4's rope_local_base_freq (sliding layers) and rope_theta + rope_scaling (global layers).
enum Gemma3 {
    /// transformers' Gemma3TextConfig defaults for keys a config may leave out.
    static let defaultPattern = 6, defaultGlobalTheta = 1_000_000.0, defaultLocalTheta = 10_000.0
    static let defaultQueryPreAttnScalar = 256.0

    static func traits(_ config: ModelConfig) -> ArchitectureTraits {
        var t = llamaLikeTraits(config, name: "gemma3")
        t.normUnitOffset = true
        t.sandwichNorms = true
        t.qkNorm = true
        t.embeddingScale = Float(config.hiddenSize).squareRoot()
        t.activation = gatedActivation(config.hiddenActivation ?? config.hiddenAct ?? "gelu_pytorch_tanh")
        t.attentionScale = 1 / Float(config.queryPreAttnScalar ?? defaultQueryPreAttnScalar).squareRoot()
        t.attentionSoftcap = config.attnLogitSoftcapping.map(Float.init)
        t.finalLogitSoftcap = config.finalLogitSoftcapping.map(Float.init)
        if let window = config.slidingWindow { t.slidingWindow = { isSliding(config, $0) ? window : nil } }
        return t
    }

    /// Whether layer i is a sliding (local) layer: layer_types when given, else every
    /// sliding_window_pattern-th layer (counting from 1) is global, as transformers builds them.
    static func isSliding(_ config: ModelConfig, _ i: Int) -> Bool {
        if let types = config.layerTypes, types.indices.contains(i) { return types[i] == "sliding_attention" }
        return (i + 1) % (config.slidingWindowPattern ?? defaultPattern) != 0
    }

    /// The sliding layers' rope (their own base, no scaling) and the global layers' (rope_theta
    /// with its scaling), from either config format.
    static func rotarySchedules(_ config: ModelConfig, path: String) throws -> [RotarySchedule] {
        let nested = config.ropeParameters?.byLayerType
        let localParameters = nested?["sliding_attention"], globalParameters = nested?["full_attention"]
        let global: RotarySchedule
        if nested != nil {
            // transformers folds a rope_scaling given beside nested parameters into full_attention.
            global = RotarySchedule(theta: globalParameters?.ropeTheta ?? config.ropeTheta ?? defaultGlobalTheta,
                                    scaling: try ModelConfig.ropeScalingKind(config.ropeScaling ?? globalParameters,
                                                                             key: config.ropeScaling == nil ? "rope_parameters.full_attention" : "rope_scaling", path: path))
        } else {
            global = RotarySchedule(theta: config.ropeTheta ?? config.ropeParameters?.ropeTheta ?? defaultGlobalTheta,
                                    scaling: try config.ropeScalingKind(path: path))
        }
        let local = RotarySchedule(theta: localParameters?.ropeTheta ?? config.ropeLocalBaseFreq ?? defaultLocalTheta,
                                   scaling: try ModelConfig.ropeScalingKind(localParameters, key: "rope_parameters.sliding_attention", path: path))
        return (0..<config.numHiddenLayers).map { isSliding(config, $0) ? local : global }
    }

    static func checkSupported(_ config: ModelConfig, path: String) throws {
        if config.useBidirectionalAttention == true {
            throw TillerError.io(path: path, detail: "use_bidirectional_attention = true is not supported (an embedding model, not a causal LM)")
        }
    }
}
