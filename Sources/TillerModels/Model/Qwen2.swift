/// Qwen2ForCausalLM: Llama's blocks with biases on the q, k and v projections. Its sliding
/// window applies only when use_sliding_window is set, to layers from max_window_layers on.
enum Qwen2 {
    static func traits(_ config: ModelConfig) -> ArchitectureTraits {
        var t = llamaLikeTraits(config, name: "qwen2")
        t.qkvBias = true
        if config.useSlidingWindow == true, let window = config.slidingWindow {
            let first = config.maxWindowLayers ?? 0
            t.slidingWindow = { $0 >= first ? window : nil }
        }
        return t
    }
}
