/// LlamaForCausalLM: pre-norm blocks, SiLU-gated MLP, rotary embeddings (with Llama 3's
/// frequency schedule when rope_scaling says so), no biases unless attention_bias.
enum Llama {
    static func traits(_ config: ModelConfig) -> ArchitectureTraits {
        llamaLikeTraits(config, name: "llama")
    }
}
