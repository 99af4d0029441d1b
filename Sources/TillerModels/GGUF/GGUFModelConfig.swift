import Foundation
import TillerCore

/// The Hugging Face configuration of a GGUF model file, from llama.cpp's metadata keys
/// (`general.architecture` = ARCH, then `ARCH.block_count`, `ARCH.embedding_length`,
/// `ARCH.feed_forward_length`, `ARCH.attention.head_count(_kv)`, `ARCH.attention.key_length`,
/// `ARCH.rope.freq_base`, `ARCH.attention.layer_norm_rms_epsilon`, `ARCH.context_length`, ...).
///
/// Architectures (llama.cpp's names): llama (MistralForCausalLM when the file gives
/// `ARCH.attention.sliding_window`, as llama.cpp writes Mistral models as llama), mistral, qwen2,
/// gemma2, and qwen3 / gemma3, whose configurations are mapped here for the families that
/// transformers names Qwen3ForCausalLM and Gemma3ForCausalLM.
enum GGUFModelConfig {
    /// The config.json this file stands for, as JSON (then read by `ModelConfig.parse`, so a GGUF
    /// file gets the same validation as a checkpoint directory).
    static func json(_ reader: GGUFReader, vocabularySize: Int, tied: Bool) throws -> [String: Any] {
        func bad(_ detail: String) -> TillerError { .io(path: reader.path, detail: detail) }
        guard let arch = try reader.string("general.architecture") else {
            throw bad("no general.architecture: not a GGUF model file")
        }
        func required(_ key: String) throws -> Int {
            guard let n = try reader.integer(arch + "." + key) else { throw bad("no \(arch).\(key) in the GGUF metadata") }
            guard n > 0 else { throw bad("\(arch).\(key) = \(n) must be positive") }
            return n
        }
        func optional(_ key: String) throws -> Int? { try reader.integer(arch + "." + key) }
        func real(_ key: String) throws -> Double? { try reader.number(arch + "." + key) }

        let layers = try required("block_count")
        let hidden = try required("embedding_length")
        let heads = try required("attention.head_count")
        var config: [String: Any] = [
            "hidden_size": hidden,
            "intermediate_size": try required("feed_forward_length"),
            "num_hidden_layers": layers,
            "num_attention_heads": heads,
            "num_key_value_heads": try optional("attention.head_count_kv") ?? heads,
            "vocab_size": try optional("vocab_size") ?? vocabularySize,
            "rms_norm_eps": try real("attention.layer_norm_rms_epsilon") ?? 1e-5,
            "rope_theta": try real("rope.freq_base") ?? 10_000,
            "tie_word_embeddings": tied,
        ]
        if let context = try optional("context_length") { config["max_position_embeddings"] = context }
        if let keyLength = try optional("attention.key_length") {
            if let valueLength = try optional("attention.value_length"), valueLength != keyLength {
                throw bad("\(arch).attention.key_length \(keyLength) differs from value_length \(valueLength) (not supported)")
            }
            config["head_dim"] = keyLength
        }
        if let type = try reader.string(arch + ".rope.scaling.type"), type != "none" {
            guard type == "linear", let factor = try real("rope.scaling.factor") else {
                throw bad("\(arch).rope.scaling.type \"\(JSONValue.excerpt(type))\" is not supported (linear, or rope_freqs.weight factors)")
            }
            config["rope_scaling"] = ["rope_type": "linear", "factor": factor]
        }
        let window = try optional("attention.sliding_window")
        switch arch {
        case "llama", "mistral":
            config["model_type"] = window == nil ? "llama" : "mistral"
            config["architectures"] = [window == nil ? "LlamaForCausalLM" : "MistralForCausalLM"]
            if let window { config["sliding_window"] = window }
        case "qwen2":
            config["model_type"] = "qwen2"
            config["architectures"] = ["Qwen2ForCausalLM"]
        case "qwen3":
            // The q/k norms are the tensors attn_q_norm / attn_k_norm.
            config["model_type"] = "qwen3"
            config["architectures"] = ["Qwen3ForCausalLM"]
        case "gemma2", "gemma3":
            config["model_type"] = arch
            config["architectures"] = [arch == "gemma2" ? "Gemma2ForCausalLM" : "Gemma3ForCausalLM"]
            config["hidden_activation"] = "gelu_pytorch_tanh"
            if let window { config["sliding_window"] = window }
            // llama.cpp scales queries by ARCH.attention.scale when the file gives it, else by
            // 1/sqrt(head_dim): query_pre_attn_scalar is 1/scale^2.
            let headDim = (config["head_dim"] as? Int) ?? hidden / heads
            if let scale = try real("attention.scale"), scale > 0 {
                config["query_pre_attn_scalar"] = 1 / (scale * scale)
            } else {
                config["query_pre_attn_scalar"] = headDim
            }
            if let cap = try real("attn_logit_softcapping") { config["attn_logit_softcapping"] = cap }
            if let cap = try real("final_logit_softcapping") { config["final_logit_softcapping"] = cap }
            if arch == "gemma2" {
                // llama.cpp: even layers slide, odd ones attend globally.
                config["layer_types"] = (0..<layers).map { $0 % 2 == 0 ? "sliding_attention" : "full_attention" }
            } else {
                // llama.cpp: every sixth layer is global, the sliding ones use rope base 10000
                // (ARCH.rope.freq_base_swa when given); ARCH.rope.scaling.* is the global layers'.
                config["layer_types"] = (0..<layers).map { ($0 + 1) % 6 == 0 ? "full_attention" : "sliding_attention" }
                config["rope_local_base_freq"] = try real("rope.freq_base_swa") ?? 10_000
            }
        default:
            throw bad("general.architecture \"\(JSONValue.excerpt(arch))\" is not supported (llama, mistral, qwen2, qwen3, gemma2, gemma3)")
        }
        return config
    }

    /// Whether llama.cpp's converter permuted the q/k rows of this architecture for its rotary
    /// layout (convert_hf_to_gguf.py LlamaModel.permute): Llama and Mistral only.
    static func permutesQK(_ architecture: String) -> Bool { architecture == "llama" || architecture == "mistral" }

    /// Whether llama.cpp stores the Gemma norms as 1 + w (its RMSNorm multiplies by the weight).
    static func storesUnitOffsetNorms(_ architecture: String) -> Bool { architecture == "gemma2" || architecture == "gemma3" }
}
