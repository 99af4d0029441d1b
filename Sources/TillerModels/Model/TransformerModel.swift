import Foundation
import TillerCore
#if canImport(Glibc)
import Glibc
#endif

/// The weights of one decoder block, as loaded (matmul weights keep their 16-bit storage).
struct LayerWeights {
    var inputNorm, postAttentionNorm: Tensor
    var preFeedforwardNorm, postFeedforwardNorm: Tensor?
    var q, k, v, o: Tensor
    var qBias, kBias, vBias: Tensor?
    /// Per-head RMSNorm weights [head_dim] of q and k (Qwen3, Gemma 3).
    var qNorm, kNorm: Tensor?
    var gate, up, down: Tensor
    /// This layer's rotary inverse frequencies [head_dim / 2] (shared by layers with one schedule).
    var inverseFrequencies: Tensor
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
    /// Most bytes a training forward pass spends keeping every block's activations so the backward
    /// recomputes none (faster by about a forward pass); above it each block is recomputed from
    /// its saved input (memory layers x rows x hidden plus one block). 0 always recomputes.
    public var trainingActivationBudget = 2 << 30
    /// Each layer's inverse frequencies negated: rope with them is the adjoint (the inverse) of
    /// rope. Made by the first backward pass.
    var negatedInverseFrequencies: [Tensor]?

    public var hiddenSize: Int { config.hiddenSize }
    public var vocabularySize: Int { config.vocabSize }
    public var layerCount: Int { config.numHiddenLayers }

    /// Loads config.json and the weights of a Hugging Face model directory. `weightDType`
    /// converts the matmul and embedding weights on load (e.g. an f32 checkpoint run in bf16).
    /// A GGUF model file (`GGUFModelFile`) is accepted in place of the directory; with
    /// `keepQuantized` (`--weight-dtype native`) its Q8_0, Q4_0, Q4_1 and Q4_K matmul weights stay
    /// in their blocks and `weightDType` applies to the rest.
    public static func load(directory: String, backend: Backend, weightDType: DType? = nil,
                            keepQuantized: Bool = false) throws -> TransformerModel {
        if GGUFModelFile.isGGUF(directory) {
            let file = try GGUFModelFile(path: directory)
            file.keepsQuantizedWeights = keepQuantized
            return try TransformerModel(config: file.config, architecture: try file.architecture(), checkpoint: file,
                                        backend: backend, weightDType: weightDType, configPath: directory,
                                        frequencyDivisors: try file.ropeFrequencyFactors())
        }
        let checkpoint = try CheckpointDirectory(path: directory)
        let configPath = directory + "/config.json"
        let config = try ModelConfig.parse(try checkpoint.configData(), path: configPath)
        let architecture = try Architecture.of(config, path: configPath)
        try checkpoint.checkLayerCount(config.numHiddenLayers, configPath: configPath)
        return try TransformerModel(config: config, architecture: architecture, checkpoint: checkpoint,
                                    backend: backend, weightDType: weightDType, configPath: configPath)
    }

    /// `frequencyDivisors`: llama.cpp's rope_freqs tensor (each rotary frequency divided by its
    /// factor), which a GGUF file holds instead of the rope scaling parameters.
    init(config: ModelConfig, architecture: Architecture, checkpoint: any WeightSource, backend: Backend,
         weightDType: DType?, configPath: String, frequencyDivisors: [Float]? = nil) throws {
        self.config = config
        self.architecture = architecture
        self.traits = architecture.traits(config)
        self.backend = backend
        let d = config.hiddenSize, f = config.intermediateSize, v = config.vocabSize
        let hq = config.numAttentionHeads, hkv = config.kvHeads, hd = config.resolvedHeadDim

        func weight(_ name: String, _ shape: [Int]) throws -> Tensor {
            try checkpoint.loadWeight(name, into: backend, as: weightDType, expectedShape: shape)
        }
        func norm(_ name: String) throws -> Tensor { try checkpoint.load(name, into: backend, as: nil, expectedShape: [d]) }
        func bias(_ name: String, _ n: Int) throws -> Tensor { try checkpoint.load(name, into: backend, as: .f32, expectedShape: [n]) }

        // "model." but for a multimodal checkpoint's language model.
        let prefix = checkpoint.textModelPrefix(), lmHeadName = checkpoint.lmHeadName(textModelPrefix: prefix)
        embedding = try weight(prefix + "embed_tokens.weight", [v, d])
        finalNorm = try norm(prefix + "norm.weight")
        if checkpoint.has(lmHeadName) {
            lmHead = try weight(lmHeadName, [v, d])
        } else if config.tieWordEmbeddings ?? true {
            lmHead = try checkpoint.tiedOutputWeight(into: backend, expectedShape: [v, d]) ?? embedding
        } else {
            throw TillerError.io(path: checkpoint.path, detail: "no \(lmHeadName) and tie_word_embeddings is false")
        }
        let traits = self.traits
        // One frequency tensor per distinct schedule (Gemma 3: local and global).
        var frequencyTensors: [(RotarySchedule, Tensor)] = []
        if let divisors = frequencyDivisors {
            guard divisors.count == hd / 2, divisors.allSatisfy({ $0.isFinite && $0 > 0 }) else {
                throw TillerError.io(path: configPath, detail: "rope_freqs.weight has \(divisors.count) factors (\(hd / 2) positive ones expected)")
            }
        }
        let frequencies = try architecture.rotarySchedules(config, path: configPath).map { schedule in
            if let known = frequencyTensors.first(where: { $0.0 == schedule }) { return known.1 }
            var values = schedule.inverseFrequencies(headDim: hd)
            // llama.cpp's rope_freqs (Llama 3 scaling as stored in a GGUF file) divides each frequency.
            if let divisors = frequencyDivisors { values = zip(values, divisors).map { $0 / $1 } }
            let tensor = try backend.tensor(values, shape: [hd / 2])
            frequencyTensors.append((schedule, tensor))
            return tensor
        }
        func headNorm(_ name: String) throws -> Tensor? {
            traits.qkNorm ? try checkpoint.load(name, into: backend, expectedShape: [hd]) : nil
        }
        layers = try (0..<config.numHiddenLayers).map { i in
            let p = prefix + "layers.\(i)."
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
                qNorm: try headNorm(p + "self_attn.q_norm.weight"),
                kNorm: try headNorm(p + "self_attn.k_norm.weight"),
                gate: try weight(p + "mlp.gate_proj.weight", [f, d]),
                up: try weight(p + "mlp.up_proj.weight", [f, d]),
                down: try weight(p + "mlp.down_proj.weight", [d, f]),
                inverseFrequencies: frequencies[i])
        }
    }

    /// Loads one weight like `CheckpointDirectory.load`, but for host-memory tensors a slab of
    /// rows at a time, handing each slab's pages of the memory-mapped file back to the kernel
    /// once copied: the process never holds a tensor twice (mapped and copied), so peak resident
    /// memory stays at about the size of the weights instead of twice it. The file stays in the
    /// page cache. Anything unusual (a shape or dtype error, a device backend) takes
    /// `CheckpointDirectory.load`, with its errors.
    static func loadStreaming(_ checkpoint: CheckpointDirectory, _ name: String, into backend: Backend, as dtype: DType?,
                              expectedShape: [Int]) throws -> Tensor {
        let slabBytes = 16 << 20
        guard let entry = try? checkpoint.entry(name), entry.shape == expectedShape, let rows = entry.shape.first, rows > 0,
              entry.dtype.isFloatingPoint, (dtype ?? entry.dtype).isFloatingPoint,
              let source = try? checkpoint.bytes(name), source.count == entry.count * entry.dtype.byteSize,
              entry.count > 0 else {
            return try checkpoint.load(name, into: backend, as: dtype, expectedShape: expectedShape)
        }
        let target = dtype ?? entry.dtype
        let tensor = try backend.empty(entry.shape, target)
        guard tensor.hostPointer != nil else {
            return try checkpoint.load(name, into: backend, as: dtype, expectedShape: expectedShape)
        }
        let rowElements = entry.count / rows, rowBytes = rowElements * entry.dtype.byteSize
        let rowsPerSlab = max(1, slabBytes / rowBytes)
        var r0 = 0
        while r0 < rows {
            let count = min(rowsPerSlab, rows - r0)
            let slab = UnsafeRawBufferPointer(rebasing: source[(r0 * rowBytes)..<((r0 + count) * rowBytes)])
            let destination = try tensor.slice(rows: r0, count: count)
            try CheckpointDirectory.convert(slab, from: entry.dtype, to: target, count: count * rowElements) {
                try backend.upload($0, to: destination)
            }
            releaseMappedPages(slab)
            r0 += count
        }
        return tensor
    }

    /// Drops the whole pages of a read-only file mapping from this process (they stay in the page
    /// cache; touching them again reads them back).
    static func releaseMappedPages(_ bytes: UnsafeRawBufferPointer) {
        #if os(Linux)
        guard let base = bytes.baseAddress else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (Int(bitPattern: base) + page - 1) / page * page
        let end = (Int(bitPattern: base) + bytes.count) / page * page
        guard end > start, let pointer = UnsafeMutableRawPointer(bitPattern: start) else { return }
        _ = madvise(pointer, end - start, MADV_DONTNEED)
        #endif
    }

    /// Activation buffers kept from one forward call to the next, by role, each as large as the
    /// largest call so far: a decode step allocates (and zero-fills) nothing but its logits. Every
    /// op below overwrites its output in full, so a buffer's old contents never matter. This is
    /// also why one model runs one forward pass at a time.
    private var workspace: [String: DeviceBuffer] = [:]

    /// A tensor of this shape over the workspace buffer for `role`, grown if needed.
    func scratch(_ role: String, _ shape: [Int], _ dtype: DType = .f32) throws -> Tensor {
        let bytes = shape.reduce(1, *) * dtype.byteSize
        if let buffer = workspace[role], buffer.byteCount >= bytes {
            return try Tensor(buffer: buffer, shape: shape, dtype: dtype)
        }
        let buffer = try backend.makeBuffer(byteCount: bytes)
        workspace[role] = buffer
        return try Tensor(buffer: buffer, shape: shape, dtype: dtype)
    }

    /// The buffer the last call's logits were returned in, reused when the caller has let go of
    /// them (a batched decode step's logits are 19 MiB; allocating and zero-filling them every
    /// step cost 4% of it). Logits a caller still holds are never overwritten: a fresh buffer is
    /// made instead.
    private var logitsBuffer: AnyObject?

    private func logitsTensor(_ shape: [Int]) throws -> Tensor {
        let bytes = shape.reduce(1, *) * DType.f32.byteSize
        if var object = logitsBuffer {
            logitsBuffer = nil
            if isKnownUniquelyReferenced(&object), let buffer = object as? DeviceBuffer, buffer.byteCount >= bytes {
                logitsBuffer = object
                return try Tensor(buffer: buffer, shape: shape, dtype: .f32)
            }
        }
        let buffer = try backend.makeBuffer(byteCount: bytes)
        logitsBuffer = buffer
        return try Tensor(buffer: buffer, shape: shape, dtype: .f32)
    }

    /// i32 values uploaded into the workspace buffer for `role`.
    func scratchInts(_ role: String, _ values: [Int32]) throws -> Tensor {
        let t = try scratch(role, [values.count], .i32)
        try values.withUnsafeBytes { try backend.upload($0, to: t) }
        return t
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
        let x = try scratch("x", [n, d]), h = try scratch("h", [n, d])
        let q = try scratch("q", [n, hq * hd]), k = try scratch("k", [n, hkv * hd]), v = try scratch("v", [n, hkv * hd])
        let attended = try scratch("attended", [n, hq * hd])
        let gate = try scratch("gate", [n, f]), up = try scratch("up", [n, f])
        let sandwich = traits.sandwichNorms ? try scratch("sandwich", [n, d]) : nil
        // When only each sequence's last row becomes logits and no hook watches the residual
        // stream, the last block needs keys and values of every row (for the cache) but its
        // queries, attention, output projection and MLP only for those rows: at 512 prompt tokens
        // and 24 layers that is 4% of the work. `final` is then the residual of one row per sequence.
        let lastOnly = which == .last && hook == nil && t > 1 && !layers.isEmpty
        let counts = tokens.map(\.count)

        // Logits only for the rows that need them: rows of x, or of the last-rows residual.
        var rows: [(sequence: Int, position: Int)] = [], rowIndex: [Int32] = []
        for s in 0..<b {
            let count = counts[s]
            let wanted: Range<Int> = which == .all ? 0..<count : (count > 0 ? (count - 1)..<count : 0..<0)
            for r in wanted {
                rows.append((s, batch.starts[s] + r))
                rowIndex.append(Int32(lastOnly ? s : s * t + r))
            }
        }

        // Every index tensor is uploaded before the first op, so a device backend that records
        // the pass is not made to stop in the middle of it.
        let idTensor = try scratchInts("ids", ids), positionTensor = try scratchInts("positions", positions)
        let rowIndexTensor = try scratchInts("rowIndex", rowIndex)
        // One row per sequence for the pruned last block: its last new token (row 0 stands in for
        // a sequence with none, which attention leaves out).
        let lastRows = lastOnly ? try scratchInts("lastRows", (0..<b).map { Int32($0 * t + max(counts[$0] - 1, 0)) }) : nil
        let lastPositions = lastOnly ? try scratchInts("lastPositions", (0..<b).map { Int32(batch.starts[$0] + max(counts[$0] - 1, 0)) }) : nil
        // The hook's per-row tensors go up here too (harmless when the Generator already did it).
        try hook?.prepare(for: step, backend: be)

        try be.embedding(table: embedding, ids: idTensor, scale: traits.embeddingScale, out: x)
        var final = x
        for (index, layer) in layers.enumerated() {
            let pruned = lastOnly && index == layers.count - 1
            try be.rmsNorm(x, weight: layer.inputNorm, eps: eps, unitOffset: traits.normUnitOffset, out: h)
            if !pruned { try be.matmul(h, layer.q, layout: .nk, bias: layer.qBias, accumulate: false, out: q) }
            try be.matmul(h, layer.k, layout: .nk, bias: layer.kBias, accumulate: false, out: k)
            try be.matmul(h, layer.v, layout: .nk, bias: layer.vBias, accumulate: false, out: v)
            if !pruned { try headNorm(q, layer.qNorm, heads: hq, eps: eps, out: q) }
            try headNorm(k, layer.kNorm, heads: hkv, eps: eps, out: k)
            if !pruned { try be.rope(try q.reshaped([n, hq, hd]), positions: positionTensor, inverseFrequencies: layer.inverseFrequencies) }
            try be.rope(try k.reshaped([n, hkv, hd]), positions: positionTensor, inverseFrequencies: layer.inverseFrequencies)
            try be.cacheAppend(try k.reshaped([b, t, hkv, hd]), into: cache.keys[index], batch: batch)
            try be.cacheAppend(try v.reshaped([b, t, hkv, hd]), into: cache.values[index], batch: batch)
            guard pruned, let lastRows, let lastPositions else {
                let block = BlockActivations.inPlace(x: x, h: h, q: q, k: k, v: v, attended: attended, gate: gate, up: up, sandwich: sandwich)
                try attentionAndMLP(layer, index, block, keys: cache.keys[index], values: cache.values[index], batch: batch, rows: t, eps: eps)
                try hook?.afterBlock(index, residual: x, step: step, backend: be)
                continue
            }
            let lastBatch = SequenceBatch(starts: (0..<b).map { batch.starts[$0] + max(counts[$0] - 1, 0) },
                                          lengths: counts.map { min($0, 1) })
            let xLast = try scratch("xLast", [b, d]), hLast = try scratch("hLast", [b, d])
            let qLast = try scratch("qLast", [b, hq * hd])
            try be.gatherRows(x, indices: lastRows, out: xLast)
            try be.gatherRows(h, indices: lastRows, out: hLast)
            try be.matmul(hLast, layer.q, layout: .nk, bias: layer.qBias, accumulate: false, out: qLast)
            try headNorm(qLast, layer.qNorm, heads: hq, eps: eps, out: qLast)
            try be.rope(try qLast.reshaped([b, hq, hd]), positions: lastPositions, inverseFrequencies: layer.inverseFrequencies)
            let block = BlockActivations.inPlace(x: xLast, h: hLast, q: qLast, k: k, v: v,
                                                 attended: try scratch("attendedLast", [b, hq * hd]),
                                                 gate: try scratch("gateLast", [b, f]), up: try scratch("upLast", [b, f]),
                                                 sandwich: traits.sandwichNorms ? try scratch("sandwichLast", [b, d]) : nil)
            try attentionAndMLP(layer, index, block, keys: cache.keys[index], values: cache.values[index], batch: lastBatch, rows: 1, eps: eps)
            final = xLast
        }

        let selected = try scratch("selected", [rows.count, d])
        let logits = try logitsTensor([rows.count, vocabularySize])
        if !rows.isEmpty {
            try be.gatherRows(final, indices: rowIndexTensor, out: selected)
            try be.rmsNorm(selected, weight: finalNorm, eps: eps, unitOffset: traits.normUnitOffset, out: selected)
            try be.matmul(selected, lmHead, layout: .nk, bias: nil, accumulate: false, out: logits)
            if let cap = traits.finalLogitSoftcap { try be.softcap(logits, cap: cap, out: logits) }
        }
        for s in 0..<b { cache.lengths[s] += tokens[s].count }
        return ForwardOutput(logits: logits, rows: rows)
    }
}
