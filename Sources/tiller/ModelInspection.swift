import Foundation
import TillerCore
import TillerModels

/// What `tiller inspect` reports about a model directory, read from config.json, the safetensors
/// headers (no weights are read: the files are only mapped, so a large model is as quick as a
/// small one) and the tokenizer files. Keys are what `--json` prints.
struct ModelInspection: Encodable {
    var model: String
    var architecture: String?
    var modelType: String?
    /// Whether Tiller runs this architecture.
    var supported: Bool
    var layers: Int
    var hiddenSize: Int
    var intermediateSize: Int
    var attentionHeads: Int
    var keyValueHeads: Int
    var headDim: Int
    var vocabSize: Int
    /// max_position_embeddings (nil when the config does not say).
    var context: Int?
    /// The rope of the global (full-attention) layers; `slidingRope` that of the sliding layers
    /// when they have their own (Gemma 3), else nil.
    var rope: Rope
    var slidingRope: Rope?
    /// Whether q and k are RMS-normed per head before RoPE (Qwen3, Gemma 3).
    var qkNorm: Bool
    /// Per layer: the sliding window, or nil for full attention (nil when no layer has one).
    var slidingWindows: [Int?]?
    var attentionSoftcap: Double?
    var finalLogitSoftcap: Double?
    var activation: String?
    var rmsNormEps: Double?
    var tiedEmbeddings: Bool
    /// Elements of every tensor, a tied output projection that is stored anyway counted once.
    var parameters: Int
    /// Tensors whose dtype Tiller cannot load (not in `parameters`: their headers give no shape Tiller keeps).
    var uncountedTensors: Int
    /// dtype as safetensors writes it -> number of tensors.
    var dtypes: [String: Int]
    var tensors: Int
    var weightFiles: Int
    var weightBytes: Int
    var tokenizer: Bool
    var chatTemplate: String?
    /// The system prompt the chat template writes when a conversation has none (nil: none).
    var defaultSystemPrompt: String?
    /// Why the template could not be read (nil when it was, or when there is none).
    var chatTemplateError: String?

    struct Rope: Encodable {
        var theta: Double
        var type: String
        var factor: Double?

        init(theta: Double, type: String, factor: Double?) {
            (self.theta, self.type, self.factor) = (theta, type, factor)
        }

        init(_ schedule: RotarySchedule) {
            switch schedule.scaling {
            case .none: self.init(theta: schedule.theta, type: "default", factor: nil)
            case let .linear(factor): self.init(theta: schedule.theta, type: "linear", factor: factor)
            case let .llama3(factor, _, _, _): self.init(theta: schedule.theta, type: "llama3", factor: factor)
            }
        }
    }

    enum CodingKeys: String, CodingKey {
        case model, architecture, modelType = "model_type", supported, layers, hiddenSize = "hidden_size"
        case intermediateSize = "intermediate_size", attentionHeads = "attention_heads", keyValueHeads = "key_value_heads"
        case headDim = "head_dim", vocabSize = "vocab_size", context, rope, slidingRope = "sliding_rope", qkNorm = "qk_norm"
        case slidingWindows = "sliding_windows"
        case attentionSoftcap = "attention_softcap", finalLogitSoftcap = "final_logit_softcap", activation
        case rmsNormEps = "rms_norm_eps", tiedEmbeddings = "tied_embeddings", parameters
        case uncountedTensors = "uncounted_tensors", dtypes, tensors, weightFiles = "weight_files", weightBytes = "weight_bytes"
        case tokenizer, chatTemplate = "chat_template", defaultSystemPrompt = "default_system_prompt"
        case chatTemplateError = "chat_template_error"
    }

    // Optionals are written as null rather than left out, so every key is always there.
    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(model, forKey: .model)
        try c.encode(architecture, forKey: .architecture)
        try c.encode(modelType, forKey: .modelType)
        try c.encode(supported, forKey: .supported)
        try c.encode(layers, forKey: .layers)
        try c.encode(hiddenSize, forKey: .hiddenSize)
        try c.encode(intermediateSize, forKey: .intermediateSize)
        try c.encode(attentionHeads, forKey: .attentionHeads)
        try c.encode(keyValueHeads, forKey: .keyValueHeads)
        try c.encode(headDim, forKey: .headDim)
        try c.encode(vocabSize, forKey: .vocabSize)
        try c.encode(context, forKey: .context)
        try c.encode(rope, forKey: .rope)
        try c.encode(slidingRope, forKey: .slidingRope)
        try c.encode(qkNorm, forKey: .qkNorm)
        try c.encode(slidingWindows, forKey: .slidingWindows)
        try c.encode(attentionSoftcap, forKey: .attentionSoftcap)
        try c.encode(finalLogitSoftcap, forKey: .finalLogitSoftcap)
        try c.encode(activation, forKey: .activation)
        try c.encode(rmsNormEps, forKey: .rmsNormEps)
        try c.encode(tiedEmbeddings, forKey: .tiedEmbeddings)
        try c.encode(parameters, forKey: .parameters)
        try c.encode(uncountedTensors, forKey: .uncountedTensors)
        try c.encode(dtypes, forKey: .dtypes)
        try c.encode(tensors, forKey: .tensors)
        try c.encode(weightFiles, forKey: .weightFiles)
        try c.encode(weightBytes, forKey: .weightBytes)
        try c.encode(tokenizer, forKey: .tokenizer)
        try c.encode(chatTemplate, forKey: .chatTemplate)
        try c.encode(defaultSystemPrompt, forKey: .defaultSystemPrompt)
        try c.encode(chatTemplateError, forKey: .chatTemplateError)
    }

    init(directory: String) throws {
        try ModelDirectory.check(directory)
        if GGUFModelFile.isGGUF(directory) {
            try self.init(gguf: directory)
        } else {
            try self.init(checkpoint: directory)
        }
    }

    private init(checkpoint directory: String) throws {
        let checkpoint = try CheckpointDirectory(path: directory)
        let configPath = (directory as NSString).appendingPathComponent(CheckpointDirectory.configFileName)
        let config = try ModelConfig.parse(try checkpoint.configData(), path: configPath)
        try self.init(model: directory, config: config, configPath: configPath)

        var parameters = 0, uncounted = 0, dtypes: [String: Int] = [:]
        for file in checkpoint.files {
            for (name, entry) in file.entries {
                dtypes[entry.dtype.rawValue.uppercased(), default: 0] += 1
                // A tied checkpoint that stores lm_head.weight anyway holds the embedding twice.
                if tiedEmbeddings, name == "lm_head.weight", checkpoint.has("model.embed_tokens.weight") { continue }
                parameters += entry.count
            }
            for dtype in file.unsupportedEntries.values {
                dtypes[dtype, default: 0] += 1
                uncounted += 1
            }
        }
        self.parameters = parameters
        uncountedTensors = uncounted
        self.dtypes = dtypes
        tensors = checkpoint.tensorNames.count
        weightFiles = checkpoint.files.count
        weightBytes = checkpoint.files.reduce(0) { $0 + $1.fileByteCount }

        tokenizer = FileManager.default.fileExists(atPath: (directory as NSString).appendingPathComponent("tokenizer.json"))
        // A template in chat_template.jinja or tokenizer_config.json's "chat_template" (base models
        // have a tokenizer_config.json without one: no template, not an error). A config that is not
        // a JSON object is handed to ChatTemplate, which says what is wrong with it.
        let tokenizerConfig = (directory as NSString).appendingPathComponent("tokenizer_config.json")
        var hasTemplate = FileManager.default.fileExists(atPath: (directory as NSString).appendingPathComponent("chat_template.jinja"))
        if !hasTemplate, FileManager.default.fileExists(atPath: tokenizerConfig) {
            let object = (try? Data(contentsOf: URL(fileURLWithPath: tokenizerConfig))).flatMap { try? JSONSerialization.jsonObject(with: $0) } as? [String: Any]
            hasTemplate = object == nil || object?["chat_template"] != nil
        }
        if hasTemplate { readChatTemplate(directory) }
    }

    /// The chat template's source and default system prompt, or why it cannot be read.
    mutating func readChatTemplate(_ model: String) {
        do {
            let template = try ChatTemplate(directory: model)
            chatTemplate = template.source
            defaultSystemPrompt = template.defaultSystemPrompt()
        } catch {
            chatTemplateError = "\(error)"
        }
    }

    /// What the configuration says; the weights and tokenizer fields are filled in by the caller.
    init(model: String, config: ModelConfig, configPath: String) throws {
        self.model = model
        architecture = config.architectures?.first
        modelType = config.modelType
        let known = try? Architecture.of(config, path: configPath)
        supported = known != nil
        layers = config.numHiddenLayers
        hiddenSize = config.hiddenSize
        intermediateSize = config.intermediateSize
        attentionHeads = config.numAttentionHeads
        keyValueHeads = config.kvHeads
        headDim = config.resolvedHeadDim
        vocabSize = config.vocabSize
        context = config.maxPositionEmbeddings
        let scaling = config.ropeScaling ?? config.ropeParameters
        rope = Rope(theta: config.resolvedRopeTheta, type: scaling?.ropeType ?? scaling?.type ?? "default", factor: scaling?.factor)
        rmsNormEps = config.rmsNormEps
        tiedEmbeddings = config.tieWordEmbeddings ?? false
        if let known {
            // The family's own reading of the config (the window per layer, the soft-caps), as the
            // forward pass uses it.
            let traits = known.traits(config)
            qkNorm = traits.qkNorm
            // Each layer's rope as the model computes it: the global layers' first, then the
            // sliding layers' when it differs (Gemma 3's local base).
            let schedules = try known.rotarySchedules(config, path: configPath)
            if let global = schedules.indices.first(where: { traits.slidingWindow($0) == nil }).map({ schedules[$0] }) ?? schedules.first {
                rope = Rope(global)
                slidingRope = schedules.first { $0 != global }.map(Rope.init)
            }
            let windows = (0..<config.numHiddenLayers).map { traits.slidingWindow($0) }
            slidingWindows = windows.contains { $0 != nil } ? windows : nil
            attentionSoftcap = traits.attentionSoftcap.map(Double.init)
            finalLogitSoftcap = traits.finalLogitSoftcap.map(Double.init)
            activation = traits.activation == .geluTanh ? "gelu_tanh" : "silu"
        } else {
            qkNorm = false
            attentionSoftcap = config.attnLogitSoftcapping
            finalLogitSoftcap = config.finalLogitSoftcapping
            activation = config.hiddenActivation ?? config.hiddenAct
        }
        parameters = 0
        uncountedTensors = 0
        dtypes = [:]
        tensors = 0
        weightFiles = 0
        weightBytes = 0
        tokenizer = false
    }

    /// The report a person reads: one "name: value" line each.
    var text: String {
        func number(_ v: Double?) -> String {
            guard let v else { return "-" }
            return v == v.rounded() && abs(v) < 1e15 ? String(Int(v)) : "\(v)"
        }
        var rows: [(String, String)] = []
        rows.append(("model", model))
        rows.append(("architecture", "\(architecture ?? "(none)") (model_type \(modelType ?? "-"))\(supported ? "" : ", not supported by Tiller")"))
        rows.append(("layers", "\(layers)"))
        rows.append(("hidden size", "\(hiddenSize)"))
        rows.append(("intermediate size", "\(intermediateSize)"))
        rows.append(("attention heads", "\(attentionHeads) (\(keyValueHeads) key/value heads, head dim \(headDim))"))
        rows.append(("vocabulary", "\(vocabSize)"))
        rows.append(("context", context.map { "\($0) tokens (max_position_embeddings)" } ?? "- (no max_position_embeddings)"))
        func describe(_ rope: Rope) -> String { "theta \(number(rope.theta)), \(rope.type)\(rope.factor.map { ", factor \(number($0))" } ?? "")" }
        rows.append(("rope", describe(rope) + (slidingRope.map { " (sliding layers: \(describe($0)))" } ?? "")))
        if qkNorm { rows.append(("q/k norms", "RMSNorm per head before rope")) }
        if let slidingWindows {
            let layers = slidingWindows.enumerated().map { i, w in w.map { "\(i): \($0)" } ?? "\(i): full" }
            rows.append(("sliding window", layers.joined(separator: ", ")))
        } else {
            rows.append(("sliding window", "none (full attention on every layer)"))
        }
        if attentionSoftcap != nil || finalLogitSoftcap != nil {
            rows.append(("soft-caps", "attention \(number(attentionSoftcap)), final logits \(number(finalLogitSoftcap))"))
        }
        rows.append(("activation", activation ?? "-"))
        rows.append(("tied embeddings", tiedEmbeddings ? "yes" : "no"))
        rows.append(("parameters", Self.grouped(parameters) + " (\(Self.short(parameters)))"
                     + (uncountedTensors > 0 ? ", not counting \(uncountedTensors) tensors in dtypes Tiller cannot load" : "")))
        rows.append(("dtypes", dtypes.sorted { $0.key < $1.key }.map { "\($0.key) (\($0.value) tensors)" }.joined(separator: ", ")))
        rows.append(("weights", "\(tensors) tensors in \(weightFiles) file\(weightFiles == 1 ? "" : "s"), \(Self.short(weightBytes, unit: "B"))"))
        rows.append(("tokenizer", tokenizer ? "tokenizer.json" : "none (no tokenizer.json)"))
        if let chatTemplate {
            rows.append(("chat template", (chatTemplate as NSString).lastPathComponent))
            rows.append(("default system prompt", defaultSystemPrompt.map {
                JSONEscaping.quoted($0) + " (written into every conversation that has no system message)"
            } ?? "none"))
        } else {
            rows.append(("chat template", chatTemplateError.map { "unreadable: \($0)" } ?? "none"))
        }
        let width = rows.map(\.0.count).max() ?? 0
        return rows.map { $0.0 + ":" + String(repeating: " ", count: width - $0.0.count + 1) + $0.1 }.joined(separator: "\n")
    }

    /// 1234567 -> "1,234,567".
    static func grouped(_ n: Int) -> String {
        let digits = String(n)
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0, (digits.count - i) % 3 == 0 { out += "," }
            out.append(c)
        }
        return out
    }

    /// 1234567 -> "1.23 M" (with `unit` after the prefix: "1.23 MB").
    static func short(_ n: Int, unit: String = "") -> String {
        let prefixes: [(Double, String)] = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")]
        for (scale, prefix) in prefixes where Double(n) >= scale {
            return String(format: "%.3g", Double(n) / scale) + " " + prefix + unit
        }
        return unit.isEmpty ? "\(n)" : "\(n) \(unit)"
    }
}
