import TillerCore

/// What differs between the supported families. Each family is one small description (see
/// Llama.swift, Qwen2.swift, Gemma2.swift, Mistral.swift) over the shared blocks in
/// TransformerModel.swift.
public struct ArchitectureTraits: Sendable {
    public var name: String
    /// q/k/v projections carry biases (Qwen2; Llama when attention_bias is set).
    public var qkvBias: Bool
    /// RMSNorm multiplies by (1 + w) instead of w (Gemma).
    public var normUnitOffset: Bool
    /// Norms after attention and after the MLP too, before each residual add (Gemma 2).
    public var sandwichNorms: Bool
    /// Embeddings are multiplied by this (Gemma: sqrt(hidden_size)).
    public var embeddingScale: Float
    public var activation: GatedActivation
    /// Multiplies q.k (1/sqrt(head_dim), or query_pre_attn_scalar^-1/2 for Gemma 2).
    public var attentionScale: Float
    public var attentionSoftcap: Float?
    public var finalLogitSoftcap: Float?
    /// The sliding window of layer i, or nil for full attention.
    public var slidingWindow: @Sendable (Int) -> Int?
}

/// The supported `architectures` values of config.json.
public enum Architecture: String, CaseIterable, Sendable {
    case llama = "LlamaForCausalLM"
    case qwen2 = "Qwen2ForCausalLM"
    case gemma2 = "Gemma2ForCausalLM"
    case mistral = "MistralForCausalLM"

    /// The architecture config.json names, or an error listing the supported ones.
    public static func of(_ config: ModelConfig, path: String) throws -> Architecture {
        guard let name = config.architectures?.first else {
            throw TillerError.io(path: path, detail: "no \"architectures\" entry; supported: \(supportedList)")
        }
        guard let architecture = Architecture(rawValue: name) else {
            throw TillerError.io(path: path, detail: "architecture \(name) is not supported; supported: \(supportedList)")
        }
        return architecture
    }

    static var supportedList: String { allCases.map(\.rawValue).joined(separator: ", ") }

    public func traits(_ config: ModelConfig) -> ArchitectureTraits {
        var traits: ArchitectureTraits
        switch self {
        case .llama: traits = Llama.traits(config)
        case .qwen2: traits = Qwen2.traits(config)
        case .gemma2: traits = Gemma2.traits(config)
        case .mistral: traits = Mistral.traits(config)
        }
        // transformers 5 lists each layer's attention kind; it wins over the family's default.
        if config.layerTypes != nil {
            let family = traits.slidingWindow
            traits.slidingWindow = { i in config.layerWindow(i) ?? family(i) }
        }
        return traits
    }
}

/// The activation function named by hidden_act / hidden_activation.
func gatedActivation(_ name: String?) -> GatedActivation {
    switch name {
    case "gelu_pytorch_tanh", "gelu_tanh", "gelu": return .geluTanh
    default: return .silu
    }
}

/// The Llama baseline that the other families adjust.
func llamaLikeTraits(_ config: ModelConfig, name: String) -> ArchitectureTraits {
    ArchitectureTraits(
        name: name, qkvBias: config.attentionBias ?? false, normUnitOffset: false, sandwichNorms: false,
        embeddingScale: 1, activation: gatedActivation(config.hiddenAct),
        attentionScale: 1 / Float(config.resolvedHeadDim).squareRoot(),
        attentionSoftcap: nil, finalLogitSoftcap: nil, slidingWindow: { _ in nil })
}
