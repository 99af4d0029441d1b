/// Qwen3ForCausalLM: Llama's blocks with an RMSNorm over each head of q and of k (q_norm,
/// k_norm, weights [head_dim]) after the projections and before RoPE, no q/k/v biases unless
/// attention_bias, and head_dim from the config (heads x head_dim may differ from hidden_size).
///
/// config.json keys read: hidden_size, intermediate_size, num_hidden_layers, num_attention_heads,
/// num_key_value_heads, head_dim, vocab_size, rms_norm_eps, rope_theta / rope_scaling (or
/// rope_parameters), hidden_act, attention_bias, tie_word_embeddings, and for the sliding window
/// layer_types, or use_sliding_window + sliding_window + max_window_layers.
enum Qwen3 {
    static func traits(_ config: ModelConfig) -> ArchitectureTraits {
        var t = llamaLikeTraits(config, name: "qwen3")
        t.qkNorm = true
        // As Qwen2: a window only with use_sliding_window, on layers from max_window_layers on
        // (layer_types, which transformers 5 writes, overrides this in Architecture.traits).
        if config.useSlidingWindow == true, let window = config.slidingWindow {
            let first = config.maxWindowLayers ?? 0
            t.slidingWindow = { $0 >= first ? window : nil }
        }
        return t
    }
}
