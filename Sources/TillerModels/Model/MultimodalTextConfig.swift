import Foundation

/// Gemma3ForConditionalGeneration (the 4B, 12B and 27B Gemma 3 checkpoints) wraps the text model's
/// config in "text_config" beside a vision tower's; Tiller runs the text model alone (text in,
/// text out: for text-only input the multimodal model is exactly its text model). Hub configs
/// leave many text keys to transformers' Gemma3TextConfig defaults, filled in here the same way.
/// The weights sit under language_model.model. (see `CheckpointDirectory.textModelPrefix`).
enum MultimodalTextConfig {
    /// The architectures whose config.json holds the text model in "text_config", and the text
    /// defaults transformers applies (Gemma3TextConfig's; the rope defaults are in Gemma3.swift).
    static let textDefaults: [String: [String: Any]] = [
        "Gemma3ForConditionalGeneration": [
            "vocab_size": 262_208, "hidden_size": 2304, "intermediate_size": 9216, "num_hidden_layers": 26,
            "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256, "hidden_activation": "gelu_pytorch_tanh",
            "max_position_embeddings": 131_072, "rms_norm_eps": 1e-6, "query_pre_attn_scalar": 256,
            "sliding_window": 4096, "model_type": "gemma3_text",
        ],
    ]

    /// The keys of the outer config that describe the whole model and so win over text_config's.
    static let outerKeys = ["architectures", "tie_word_embeddings", "bos_token_id", "eos_token_id"]

    /// config.json with the text model's config as the top-level object, or `data` unchanged when
    /// it is not such a wrapper (or not JSON: the decoder then says what is wrong).
    static func flattened(_ data: Data) -> Data {
        guard let outer = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
              let name = (outer["architectures"] as? [String])?.first, let defaults = textDefaults[name],
              let text = outer["text_config"] as? [String: Any] else { return data }
        var merged = defaults.merging(text) { _, given in given }
        for key in outerKeys { if let value = outer[key], !(value is NSNull) { merged[key] = value } }
        return (try? JSONSerialization.data(withJSONObject: merged)) ?? data
    }
}
