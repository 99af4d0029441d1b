import TillerCore

/// What differs between the supported families. Each family is one small description (see
/// Llama.swift, Qwen2.swift, Gemma2.swift, Mistral.swift, Qwen3.swift, Gemma3.swift) over the shared blocks in
/// TransformerModel.swift.
public struct ArchitectureTraits: Sendable {
    public var name: String
    /// q/k/v projections carry biases (Qwen2; Llama when attention_bias is set).
    public var qkvBias: Bool
    /// RMSNorm multiplies by (1 + w) instead of w (Gemma).
    public var normUnitOffset: Bool
    /// Norms after attention and after the MLP too, before each residual add (Gemma 2).
    public var sandwichNorms: Bool
    /// An RMSNorm over each head of q and of k (weights q_norm, k_norm [head_dim]) after the
    /// projections, before RoPE (Qwen3, Gemma 3).
    public var qkNorm: Bool = false
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
    case qwen3 = "Qwen3ForCausalLM"
    case gemma3 = "Gemma3ForCausalLM"

    /// The architecture config.json names, or an error listing the supported ones.
    public static func of(_ config: ModelConfig, path: String) throws -> Architecture {
        guard let name = config.architectures?.first else {
            throw TillerError.io(path: path, detail: "no \"architectures\" entry; supported: \(supportedList)")
        }
        guard let architecture = Architecture(rawValue: name) ?? aliases[name] else {
            throw TillerError.io(path: path, detail: "architecture \(name) is not supported; supported: \(supportedList)")
        }
        try architecture.checkSupported(config, path: path)
        return architecture
    }

    /// Checkpoints whose text model is one of the families: Gemma 3's multimodal checkpoints
    /// (config.json's text_config, weights under language_model.model.; see MultimodalTextConfig).
    static let aliases: [String: Architecture] = ["Gemma3ForConditionalGeneration": .gemma3]

    static var supportedList: String { (allCases.map(\.rawValue) + aliases.keys.sorted()).joined(separator: ", ") }

    /// Each layer's rotary embedding: Gemma 3's sliding layers have their own base; every other
    /// family uses rope_theta and rope_scaling on every layer.
    public func rotarySchedules(_ config: ModelConfig, path: String) throws -> [RotarySchedule] {
        if self == .gemma3 { return try Gemma3.rotarySchedules(config, path: path) }
        // Parameters per layer type that this family would not read: refused, not ignored.
        if let nested = config.ropeParameters?.byLayerType {
            throw TillerError.io(path: path, detail: "rope_parameters is nested by layer type (\(nested.keys.sorted().joined(separator: ", "))), which only Gemma 3 uses")
        }
        let all = RotarySchedule(theta: config.resolvedRopeTheta, scaling: try config.ropeScalingKind(path: path))
        return Array(repeating: all, count: config.numHiddenLayers)
    }

    /// Settings this architecture cannot run, as a one-line error naming config.json and the key.
    func checkSupported(_ config: ModelConfig, path: String) throws {
        if self == .gemma3 { try Gemma3.checkSupported(config, path: path) }
    }

    public func traits(_ config: ModelConfig) -> ArchitectureTraits {
        var traits: ArchitectureTraits
        switch self {
        case .llama: traits = Llama.traits(config)
        case .qwen2: traits = Qwen2.traits(config)
        case .gemma2: traits = Gemma2.traits(config)
        case .mistral: traits = Mistral.traits(config)
        case .qwen3: traits = Qwen3.traits(config)
        case .gemma3: traits = Gemma3.traits(config)
        }
        // transformers 5 lists each layer's attention kind; it wins over the family's default.
        if config.layerTypes != nil {
            let family = traits.slidingWindow
            traits.slidingWindow = { i in config.layerWindow(i) ?? family(i) }
        }
        return traits
    }
}

/// One layer's rotary embedding: its base and frequency schedule.
public struct RotarySchedule: Equatable, Sendable {
    public var theta: Double
    public var scaling: RoPEScaling

    public func inverseFrequencies(headDim: Int) -> [Float] { scaling.inverseFrequencies(theta: theta, headDim: headDim) }
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
        name: name, qkvBias: config.attentionBias ?? false, normUnitOffset: false, sandwichNorms: false, qkNorm: false,
        embeddingScale: 1, activation: gatedActivation(config.hiddenAct),
        attentionScale: 1 / Float(config.resolvedHeadDim).squareRoot(),
        attentionSoftcap: nil, finalLogitSoftcap: nil, slidingWindow: { _ in nil })
}
