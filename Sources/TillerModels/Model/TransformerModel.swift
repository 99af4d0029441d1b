import Foundation
import TillerCore

/// The weights of one decoder block, as loaded (matmul weights keep their 16-bit storage).
struct LayerWeights {
    var inputNorm, postAttentionNorm: Tensor
    var preFeedforwardNorm, postFeedforwardNorm: Tensor?
    var q, k, v, o: Tensor
    var qBias, kBias, vBias: Tensor?
    var gate, up, down: Tensor
}

/// Which rows of the final hidden state become logits.
public enum LogitRows {
    /// Every real (non-padding) token, sequence by sequence.
    case all
    /// The last new token of each sequence that has one: what generation needs.
    case last
}

/// Logits and the (sequence, position) each row belongs to.
public struct ForwardOutput {
    public let logits: Tensor
    public let rows: [(sequence: Int, position: Int)]
}

/// A Llama-family decoder-only transformer, written only against the `Backend` protocol, so it
/// runs unchanged on every backend.
public final class TransformerModel {
    public let config: ModelConfig
    public let architecture: Architecture
    public let traits: ArchitectureTraits
    public let backend: Backend
    let embedding: Tensor
    let finalNorm: Tensor
    let lmHead: Tensor
    let layers: [LayerWeights]
    let inverseFrequencies: Tensor

    public var hiddenSize: Int { config.hiddenSize }
    public var vocabularySize: Int { config.vocabSize }
    public var layerCount: Int { config.numHiddenLayers }

    /// Loads config.json and the weights of a Hugging Face model directory. `weightDType`
    /// converts the matmul and embedding weights on load (e.g. an f32 checkpoint run in bf16).
    public static func load(directory: String, backend: Backend, weightDType: DType? = nil) throws -> TransformerModel {
        let checkpoint = try CheckpointDirectory(path: directory)
        let configPath = directory + "/config.json"
        let config = try ModelConfig.parse(try checkpoint.configData(), path: configPath)
        let architecture = try Architecture.of(config, path: configPath)
        return try TransformerModel(config: config, architecture: architecture, checkpoint: checkpoint,
                                    backend: backend, weightDType: weightDType, configPath: configPath)
    }

    init(config: ModelConfig, architecture: Architecture, checkpoint: CheckpointDirectory, backend: Backend,
         weightDType: DType?, configPath: String) throws {
        self.config = config
        self.architecture = architecture
        self.traits = architecture.traits(config)
        self.backend = backend
        let d = config.hiddenSize, f = config.intermediateSize, v = config.vocabSize
        let hq = config.numAttentionHeads, hkv = config.kvHeads, hd = config.resolvedHeadDim

        func weight(_ name: String, _ shape: [Int]) throws -> Tensor {
            try checkpoint.load(name, into: backend, as: weightDType, expectedShape: shape)
        }
        func norm(_ name: String) throws -> Tensor { try checkpoint.load(name, into: backend, expectedShape: [d]) }
        func bias(_ name: String, _ n: Int) throws -> Tensor { try checkpoint.load(name, into: backend, as: .f32, expectedShape: [n]) }

        embedding = try weight("model.embed_tokens.weight", [v, d])
        finalNorm = try norm("model.norm.weight")
        if checkpoint.has("lm_head.weight") {
            lmHead = try weight("lm_head.weight", [v, d])
        } else if config.tieWordEmbeddings ?? true {
            lmHead = embedding
        } else {
            throw TillerError.io(path: checkpoint.path, detail: "no lm_head.weight and tie_word_embeddings is false")
        }
        let traits = self.traits
        layers = try (0..<config.numHiddenLayers).map { i in
            let p = "model.layers.\(i)."
            return LayerWeights(
                inputNorm: try norm(p + "input_layernorm.weight"),
                postAttentionNorm: try norm(p + "post_attention_layernorm.weight"),
                preFeedforwardNorm: traits.sandwichNorms ? try norm(p + "pre_feedforward_layernorm.weight") : nil,
                postFeedforwardNorm: traits.sandwichNorms ? try norm(p + "post_feedforward_layernorm.weight") : nil,
                q: try weight(p + "self_attn.q_proj.weight", [hq * hd, d]),
                k: try weight(p + "self_attn.k_proj.weight", [hkv * hd, d]),
                v: try weight(p + "self_attn.v_proj.weight", [hkv * hd, d]),
                o: try weight(p + "self_attn.o_proj.weight", [d, hq * hd]),
                qBias: traits.qkvBias ? try bias(p + "self_attn.q_proj.bias", hq * hd) : nil,
                kBias: traits.qkvBias ? try bias(p + "self_attn.k_proj.bias", hkv * hd) : nil,
                vBias: traits.qkvBias ? try bias(p + "self_attn.v_proj.bias", hkv * hd) : nil,
                gate: try weight(p + "mlp.gate_proj.weight", [f, d]),
                up: try weight(p + "mlp.up_proj.weight", [f, d]),
                down: try weight(p + "mlp.down_proj.weight", [d, f]))
        }
        let frequencies = try config.ropeScalingKind(path: configPath)
            .inverseFrequencies(theta: config.resolvedRopeTheta, headDim: hd)
        inverseFrequencies = try backend.tensor(frequencies, shape: [hd / 2])
    }

    /// A cache for `batchSize` sequences of up to `capacity` tokens each.
    public func makeCache(batchSize: Int, capacity: Int) throws -> KVCache {
        try KVCache(backend: backend, layers: layerCount, batchSize: batchSize, capacity: capacity,
                    kvHeads: config.kvHeads, headDim: config.resolvedHeadDim)
    }

    /// Runs the new tokens of each sequence (any lengths, empty allowed) through the model,
    /// appending them to the cache, and returns the logits of the requested rows.
    public func forward(_ tokens: [[Int32]], cache: KVCache, logits which: LogitRows = .last,
                        hook: ResidualStreamHook? = nil) throws -> ForwardOutput {
        guard tokens.count == cache.batchSize else {
            throw TillerError.shapeMismatch(op: "forward", detail: "\(tokens.count) sequences for a cache of \(cache.batchSize)")
        }
        let b = tokens.count, t = max(1, tokens.map(\.count).max() ?? 1)
        let batch = SequenceBatch(starts: cache.lengths, lengths: tokens.map(\.count))
        for (i, seq) in tokens.enumerated() where cache.lengths[i] + seq.count > cache.capacity {
            throw TillerError.invalidArgument(op: "forward", detail: "sequence \(i) would hold \(cache.lengths[i] + seq.count) tokens, the cache holds \(cache.capacity)")
        }
        for (i, seq) in tokens.enumerated() {
            if let bad = seq.first(where: { $0 < 0 || Int($0) >= vocabularySize }) {
                throw TillerError.indexOutOfRange(op: "forward", detail: "token \(bad) in sequence \(i), vocabulary \(vocabularySize)")
            }
        }
        let n = b * t, d = hiddenSize
        let hq = config.numAttentionHeads, hkv = config.kvHeads, hd = config.resolvedHeadDim, f = config.intermediateSize
        let eps = Float(config.rmsNormEps ?? 1e-6)
        let step = ForwardStep(batch: batch, rowsPerSequence: t)

        // Padded ids and positions; padding rows take id 0 and run harmlessly: attention never
        // lets a real row see them and they never enter the cache.
        var ids = [Int32](repeating: 0, count: n), positions = [Int32](repeating: 0, count: n)
        for s in 0..<b {
            for r in 0..<t {
                ids[s * t + r] = r < tokens[s].count ? tokens[s][r] : 0
                positions[s * t + r] = Int32(batch.starts[s] + r)
            }
        }
        let be = backend
        let x = try be.empty([n, d]), h = try be.empty([n, d])
        let q = try be.empty([n, hq * hd]), k = try be.empty([n, hkv * hd]), v = try be.empty([n, hkv * hd])
        let attended = try be.empty([n, hq * hd])
        let gate = try be.empty([n, f]), up = try be.empty([n, f])
        let sandwich = traits.sandwichNorms ? try be.empty([n, d]) : nil
        let idTensor = try be.tensor(ints: ids, shape: [n]), positionTensor = try be.tensor(ints: positions, shape: [n])

        try be.embedding(table: embedding, ids: idTensor, scale: traits.embeddingScale, out: x)
        for (index, layer) in layers.enumerated() {
            try be.rmsNorm(x, weight: layer.inputNorm, eps: eps, unitOffset: traits.normUnitOffset, out: h)
            try be.matmul(h, layer.q, layout: .nk, bias: layer.qBias, accumulate: false, out: q)
            try be.matmul(h, layer.k, layout: .nk, bias: layer.kBias, accumulate: false, out: k)
            try be.matmul(h, layer.v, layout: .nk, bias: layer.vBias, accumulate: false, out: v)
            try be.rope(try q.reshaped([n, hq, hd]), positions: positionTensor, inverseFrequencies: inverseFrequencies)
            try be.rope(try k.reshaped([n, hkv, hd]), positions: positionTensor, inverseFrequencies: inverseFrequencies)
            try be.cacheAppend(try k.reshaped([b, t, hkv, hd]), into: cache.keys[index], batch: batch)
            try be.cacheAppend(try v.reshaped([b, t, hkv, hd]), into: cache.values[index], batch: batch)
            let options = AttentionOptions(scale: traits.attentionScale, slidingWindow: traits.slidingWindow(index),
                                           softcap: traits.attentionSoftcap)
            try be.attention(q: try q.reshaped([b, t, hq, hd]), k: cache.keys[index], v: cache.values[index],
                             batch: batch, options: options, out: try attended.reshaped([b, t, hq, hd]))
            try residualAdd(attended, layer.o, norm: layer.postAttentionNorm, sandwich: sandwich, eps: eps, into: x)

            try be.rmsNorm(x, weight: layer.preFeedforwardNorm ?? layer.postAttentionNorm, eps: eps,
                           unitOffset: traits.normUnitOffset, out: h)
            try be.matmul(h, layer.gate, layout: .nk, bias: nil, accumulate: false, out: gate)
            try be.matmul(h, layer.up, layout: .nk, bias: nil, accumulate: false, out: up)
            try be.gatedActivation(traits.activation, gate: gate, up: up, out: gate)
            try residualAdd(gate, layer.down, norm: layer.postFeedforwardNorm, sandwich: sandwich, eps: eps, into: x)
            try hook?.afterBlock(index, residual: x, step: step, backend: be)
        }

        // Logits only for the rows that need them.
        var rows: [(sequence: Int, position: Int)] = [], rowIndex: [Int32] = []
        for s in 0..<b {
            let count = tokens[s].count
            let wanted: Range<Int> = which == .all ? 0..<count : (count > 0 ? (count - 1)..<count : 0..<0)
            for r in wanted {
                rows.append((s, batch.starts[s] + r))
                rowIndex.append(Int32(s * t + r))
            }
        }
        let selected = try be.empty([rows.count, d])
        let logits = try be.empty([rows.count, vocabularySize])
        if !rows.isEmpty {
            try be.gatherRows(x, indices: try be.tensor(ints: rowIndex, shape: [rows.count]), out: selected)
            try be.rmsNorm(selected, weight: finalNorm, eps: eps, unitOffset: traits.normUnitOffset, out: selected)
            try be.matmul(selected, lmHead, layout: .nk, bias: nil, accumulate: false, out: logits)
            if let cap = traits.finalLogitSoftcap { try be.softcap(logits, cap: cap, out: logits) }
        }
        for s in 0..<b { cache.lengths[s] += tokens[s].count }
        return ForwardOutput(logits: logits, rows: rows)
    }

    /// x += W . input, or with sandwich norms (Gemma 2) x += norm(W . input).
    private func residualAdd(_ input: Tensor, _ w: Tensor, norm: Tensor?, sandwich: Tensor?, eps: Float, into x: Tensor) throws {
        if let sandwich, let norm {
            try backend.matmul(input, w, layout: .nk, bias: nil, accumulate: false, out: sandwich)
            try backend.rmsNorm(sandwich, weight: norm, eps: eps, unitOffset: traits.normUnitOffset, out: sandwich)
            try backend.add(x, sandwich, out: x)
        } else {
            try backend.matmul(input, w, layout: .nk, bias: nil, accumulate: true, out: x)
        }
    }
}
