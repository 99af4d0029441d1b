/// MistralForCausalLM: Llama's blocks with a sliding attention window on every layer.
enum Mistral {
    static func traits(_ config: ModelConfig) -> ArchitectureTraits {
        var t = llamaLikeTraits(config, name: "mistral")
        if let window = config.slidingWindow { t.slidingWindow = { _ in window } }
        return t
    }
}
