/// Gemma2ForCausalLM: embeddings scaled by sqrt(hidden), RMSNorm as x * (1 + w), norms before and
/// after both attention and MLP, tanh-GELU, soft-capped attention scores and final logits,
/// q.k scaled by query_pre_attn_scalar^-1/2, and a sliding window on alternate layers (the even
/// ones, as transformers' `is_sliding = not bool(layer_idx % 2)`).
enum Gemma2 {
    static func traits(_ config: ModelConfig) -> ArchitectureTraits {
        var t = llamaLikeTraits(config, name: "gemma2")
        t.normUnitOffset = true
        t.sandwichNorms = true
        t.embeddingScale = Float(config.hiddenSize).squareRoot()
        t.activation = gatedActivation(config.hiddenActivation ?? config.hiddenAct ?? "gelu_pytorch_tanh")
        t.attentionScale = 1 / Float(config.queryPreAttnScalar ?? Double(config.resolvedHeadDim)).squareRoot()
        t.attentionSoftcap = config.attnLogitSoftcapping.map(Float.init)
        t.finalLogitSoftcap = config.finalLogitSoftcapping.map(Float.init)
        if let window = config.slidingWindow { t.slidingWindow = { $0 % 2 == 0 ? window : nil } }
        return t
    }
}
