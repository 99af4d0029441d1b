extension WeightSource {
    /// Where the text model's tensors are named from: "model." (a causal LM), or for a multimodal
    /// checkpoint's language model "language_model.model." (as transformers saves
    /// Gemma3ForConditionalGeneration) or "model.language_model." (as some 4.x versions did).
    /// "model." when none holds the embeddings (the loader then names the missing tensor).
    func textModelPrefix() -> String {
        ["model.", "language_model.model.", "model.language_model."].first { has($0 + "embed_tokens.weight") } ?? "model."
    }

    /// The output projection's name beside the text model under `prefix`.
    func lmHeadName(textModelPrefix prefix: String) -> String {
        prefix == "language_model.model." ? "language_model.lm_head.weight" : "lm_head.weight"
    }
}
