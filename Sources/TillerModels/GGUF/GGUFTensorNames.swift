/// llama.cpp's tensor names (gguf-py's tensor_mapping.py) and the Hugging Face names they stand for.
enum GGUFTensorNames {
    static let global: [String: String] = [
        "token_embd.weight": "model.embed_tokens.weight",
        "output_norm.weight": "model.norm.weight",
        "output.weight": "lm_head.weight",
    ]

    /// blk.N.SUFFIX -> model.layers.N.NAME. Gemma 2 and 3 name their four norms differently:
    /// ffn_norm is the pre-feed-forward norm there, the post-attention norm elsewhere.
    static func block(_ suffix: String, gemma: Bool) -> String? {
        switch suffix {
        case "attn_norm.weight": return "input_layernorm.weight"
        case "ffn_norm.weight": return gemma ? "pre_feedforward_layernorm.weight" : "post_attention_layernorm.weight"
        case "post_attention_norm.weight": return "post_attention_layernorm.weight"
        case "post_ffw_norm.weight": return "post_feedforward_layernorm.weight"
        case "attn_q.weight": return "self_attn.q_proj.weight"
        case "attn_k.weight": return "self_attn.k_proj.weight"
        case "attn_v.weight": return "self_attn.v_proj.weight"
        case "attn_output.weight": return "self_attn.o_proj.weight"
        case "attn_q.bias": return "self_attn.q_proj.bias"
        case "attn_k.bias": return "self_attn.k_proj.bias"
        case "attn_v.bias": return "self_attn.v_proj.bias"
        case "attn_q_norm.weight": return "self_attn.q_norm.weight"
        case "attn_k_norm.weight": return "self_attn.k_norm.weight"
        case "ffn_gate.weight": return "mlp.gate_proj.weight"
        case "ffn_up.weight": return "mlp.up_proj.weight"
        case "ffn_down.weight": return "mlp.down_proj.weight"
        default: return nil
        }
    }

    /// The Hugging Face name of a GGUF tensor and its block (nil for global tensors), or nil
    /// when Tiller has no use for it (rope_freqs is read separately).
    static func huggingFace(_ name: String, gemma: Bool) -> (name: String, block: Int?)? {
        if let global = global[name] { return (global, nil) }
        guard name.hasPrefix("blk.") else { return nil }
        let rest = name.dropFirst(4)
        guard let dot = rest.firstIndex(of: "."), let n = Int(rest[..<dot]), n >= 0,
              let mapped = block(String(rest[rest.index(after: dot)...]), gemma: gemma) else { return nil }
        return ("model.layers.\(n).\(mapped)", n)
    }
}
