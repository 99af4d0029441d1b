import Foundation
import TillerCore

/// A llama.cpp GGUF model file used as a checkpoint: `--model FILE.gguf` wherever a model
/// directory works. The header is read (bounds-checked) by the same `GGUFReader` as control
/// vectors; the configuration comes from the metadata (`GGUFModelConfig`), the tokenizer and chat
/// template from `tokenizer.*` (`GGUFTokenizer`), and the tensors are served by their Hugging
/// Face names and layout: q/k rows of Llama-style models un-permuted, Gemma norms back to w
/// (llama.cpp stores 1 + w), every supported type dequantized at load into the weight dtype
/// (default: as stored for F32/F16/BF16, bf16 for quantized tensors), a slab of rows at a time.
public final class GGUFModelFile: @unchecked Sendable {
    public let path: String
    public let reader: GGUFReader
    public let config: ModelConfig
    /// llama.cpp's name of the architecture (general.architecture).
    public let ggufArchitecture: String
    /// Hugging Face name -> the GGUF tensor.
    let tensors: [String: GGUFReader.TensorInfo]
    /// The file, memory-mapped.
    let data: Data
    /// Whether Q8_0, Q4_0, Q4_1 and Q4_K matmul weights stay in their blocks
    /// (`--weight-dtype native`, GGUFModelFile+Native.swift).
    public var keepsQuantizedWeights = false

    /// Whether `path` names a GGUF file (a regular file starting with the magic "GGUF"), as
    /// opposed to a checkpoint directory.
    public static func isGGUF(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue,
              let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        return (try? handle.read(upToCount: 4)).map { Array($0) == GGUFReader.magic } ?? false
    }

    public convenience init(path: String) throws {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        } catch {
            throw TillerError.io(path: path, detail: "cannot read the GGUF model file (\(ErrorReason.file(error, path: path)))")
        }
        try self.init(data: data, path: path)
    }

    /// A GGUF file's bytes (memory-mapped by `init(path:)`), `path` for messages.
    init(data: Data, path: String) throws {
        self.path = path
        self.data = data
        reader = try data.withUnsafeBytes { try GGUFReader($0, path: path) }
        let arch = try reader.string("general.architecture") ?? ""
        ggufArchitecture = arch
        if arch == "controlvector" {
            throw TillerError.io(path: path, detail: "this is a control vector, not a model file (pass it to --steer)")
        }
        let gemma = GGUFModelConfig.storesUnitOffsetNorms(arch)
        var mapped: [String: GGUFReader.TensorInfo] = [:]
        var blocks = 0
        for t in reader.tensors {
            guard let (name, block) = GGUFTensorNames.huggingFace(t.name, gemma: gemma) else { continue }
            mapped[name] = t
            if let block { blocks = max(blocks, block + 1) }
        }
        tensors = mapped
        var vocabulary = 0
        if case .array(_, let count, _)? = reader.value("tokenizer.ggml.tokens") { vocabulary = count }
        let embeddingRows = mapped["model.embed_tokens.weight"]?.dims.last ?? vocabulary
        let json = try GGUFModelConfig.json(reader, vocabularySize: embeddingRows, tied: mapped["lm_head.weight"] == nil)
        config = try ModelConfig.parse(try JSONSerialization.data(withJSONObject: json), path: path)
        guard blocks <= config.numHiddenLayers else {
            throw TillerError.io(path: path, detail: "\(arch).block_count = \(config.numHiddenLayers), but the file holds tensors of \(blocks) blocks (blk.0 to blk.\(blocks - 1))")
        }
    }

    /// The architecture the configuration names, or a one-line error for one Tiller lacks.
    public func architecture() throws -> Architecture { try Architecture.of(config, path: path) }

    public func tokenizer() throws -> Tokenizer { try Tokenizer(gguf: self) }

    func tokenizerInputs() throws -> GGUFTokenizer.Inputs {
        try data.withUnsafeBytes { try GGUFTokenizer.make(reader, bytes: $0) }
    }

    /// The chat template (tokenizer.chat_template) with the BOS and EOS token strings, as
    /// tokenizer_config.json would give them.
    public func chatTemplate() throws -> ChatTemplate {
        guard let text = try reader.string("tokenizer.chat_template") else {
            throw TillerError.io(path: path, detail: "no tokenizer.chat_template in the GGUF metadata (the model has no chat template)")
        }
        let tokens = try data.withUnsafeBytes { try reader.strings("tokenizer.ggml.tokens", in: $0) } ?? []
        func token(_ key: String) throws -> String? {
            guard let id = try reader.integer(key) else { return nil }
            return tokens.indices.contains(id) ? tokens[id] : nil
        }
        let template = ChatTemplate(template: text, bosToken: try token("tokenizer.ggml.bos_token_id"),
                                    eosToken: try token("tokenizer.ggml.eos_token_id"), source: path + " (tokenizer.chat_template)")
        try template.validate()
        return template
    }

    /// The bytes before the tensor data (magic, metadata and tensor table): what a model
    /// fingerprint hashes.
    public func withHeaderBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try data.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[0..<min(reader.dataStart, $0.count)])) }
    }

    /// llama.cpp's rope_freqs.weight (Llama 3's frequency factors), when the file has it.
    func ropeFrequencyFactors() throws -> [Float]? {
        guard let t = reader.tensors.first(where: { $0.name == "rope_freqs.weight" }) else { return nil }
        return try dequantized(t, hfName: "rope_freqs.weight")
    }

    /// The f32 values of a whole tensor.
    func dequantized(_ t: GGUFReader.TensorInfo, hfName: String) throws -> [Float] {
        let (type, range) = try loadable(t, hfName: hfName)
        return try data.withUnsafeBytes { bytes in
            try [Float](unsafeUninitializedCapacity: t.elementCount) { buffer, initialized in
                try GGMLDequantize.run(type, bytes.baseAddress! + range.lowerBound, count: t.elementCount, into: buffer.baseAddress!)
                initialized = t.elementCount
            }
        }
    }

    func loadable(_ t: GGUFReader.TensorInfo, hfName: String) throws -> (GGMLType, Range<Int>) {
        guard let type = GGMLType(rawValue: t.type), type.isLoadable, let range = t.byteRange else {
            throw TillerError.unsupported("tensor '\(JSONValue.excerpt(t.name))' (\(hfName)) in \(path) has type \(GGUFReader.typeName(t.type)); Tiller loads F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K and Q6_K")
        }
        return (type, range)
    }
}

extension GGUFModelFile: WeightSource {
    func has(_ name: String) -> Bool { tensors[name] != nil }

    func tensor(_ name: String, expectedShape: [Int]?) throws -> (GGUFReader.TensorInfo, shape: [Int]) {
        guard let t = tensors[name] else {
            throw TillerError.io(path: path, detail: "the GGUF file has no tensor for \(name) (llama.cpp's \(Self.ggufName(name)))")
        }
        let shape = Array(t.dims.reversed())
        if let expectedShape, expectedShape != shape {
            throw TillerError.shapeMismatch(op: "checkpoint", detail: "tensor '\(JSONValue.excerpt(t.name))' in \(path) has shape \(shape) (ggml ne \(t.dims)) but the metadata implies \(expectedShape)")
        }
        return (t, shape)
    }

    func loadWeight(_ name: String, into backend: Backend, as dtype: DType?, expectedShape: [Int]) throws -> Tensor {
        if let native = try loadNative(name, into: backend, expectedShape: expectedShape) { return native }
        return try load(name, into: backend, as: dtype, expectedShape: expectedShape)
    }

    func load(_ name: String, into backend: Backend, as dtype: DType?, expectedShape: [Int]?) throws -> Tensor {
        let (t, shape) = try tensor(name, expectedShape: expectedShape)
        let (type, range) = try loadable(t, hfName: name)
        let target = dtype ?? Self.defaultDType(type)
        guard target.isFloatingPoint else {
            throw TillerError.unsupported("loading tensor '\(JSONValue.excerpt(t.name))' from \(path) as \(target): weights load as f32, f16 or bf16")
        }
        let tensor = try backend.empty(shape, target)
        let rows = shape.count > 1 ? shape[0] : 1
        let rowElements = rows > 0 ? t.elementCount / rows : 0
        let permuteHeads = try rowPermutationHeads(name, rows: shape[0])
        let subtractOne = GGUFModelConfig.storesUnitOffsetNorms(ggufArchitecture) && name.hasSuffix("norm.weight")
        // Whole tensors when rows move or the backend has no host pointer; else slabs of ~16 MiB
        // of f32, each slab's pages of the mapping handed back once read.
        let wholeTensor = permuteHeads != nil || tensor.hostPointer == nil || rows <= 1
        let rowsPerSlab = wholeTensor ? max(rows, 1) : max(1, (16 << 20) / max(4 * rowElements, 1))
        let rowBytes = rows > 0 ? type.byteCount(rowElements) : 0
        try data.withUnsafeBytes { bytes in
            var r0 = 0
            while r0 < max(rows, 1) {
                let count = min(rowsPerSlab, max(rows, 1) - r0)
                let n = shape.count > 1 ? count * rowElements : t.elementCount
                let start = range.lowerBound + r0 * rowBytes
                var values = try [Float](unsafeUninitializedCapacity: n) { buffer, initialized in
                    try GGMLDequantize.run(type, bytes.baseAddress! + start, count: n, into: buffer.baseAddress!)
                    initialized = n
                }
                if let heads = permuteHeads { values = Self.unpermuteRows(values, rows: shape[0], heads: heads) }
                if subtractOne { for i in values.indices { values[i] -= 1 } }
                let destination = wholeTensor ? tensor : try tensor.slice(rows: r0, count: count)
                try values.withUnsafeBytes {
                    try CheckpointDirectory.convert($0, from: .f32, to: target, count: n) { try backend.upload($0, to: destination) }
                }
                TransformerModel.releaseMappedPages(UnsafeRawBufferPointer(rebasing: bytes[start..<(start + type.byteCount(n))]))
                r0 += count
            }
        }
        return tensor
    }

    /// Quantized tensors load as bf16 unless asked; float ones keep their dtype.
    static func defaultDType(_ type: GGMLType) -> DType {
        switch type {
        case .f32: return .f32
        case .f16: return .f16
        default: return .bf16
        }
    }

    /// The head count whose rows llama.cpp permuted in this tensor (q: attention heads, k: KV
    /// heads), or nil.
    func rowPermutationHeads(_ name: String, rows: Int) throws -> Int? {
        guard GGUFModelConfig.permutesQK(ggufArchitecture) else { return nil }
        let heads: Int
        if name.hasSuffix("self_attn.q_proj.weight") || name.hasSuffix("self_attn.q_proj.bias") {
            heads = config.numAttentionHeads
        } else if name.hasSuffix("self_attn.k_proj.weight") || name.hasSuffix("self_attn.k_proj.bias") {
            heads = config.kvHeads
        } else {
            return nil
        }
        guard rows % (2 * heads) == 0 else {
            throw TillerError.io(path: path, detail: "\(name) has \(rows) rows, not a multiple of 2 x \(heads) heads")
        }
        return heads
    }

    /// Undoes convert_hf_to_gguf.py's permute: per head of d rows, llama.cpp's row 2i + j holds
    /// Hugging Face's row j * d/2 + i (the two halves of rotate_half interleaved).
    static func unpermuteRows(_ values: [Float], rows: Int, heads: Int) -> [Float] {
        let cols = values.count / rows, d = rows / heads, half = d / 2
        var out = [Float](repeating: 0, count: values.count)
        for h in 0..<heads {
            for i in 0..<half {
                for j in 0..<2 {
                    let from = (h * d + 2 * i + j) * cols, to = (h * d + j * half + i) * cols
                    for c in 0..<cols { out[to + c] = values[from + c] }
                }
            }
        }
        return out
    }

    /// llama.cpp's name for a Hugging Face tensor name (for messages).
    static func ggufName(_ name: String) -> String {
        if let g = GGUFTensorNames.global.first(where: { $0.value == name }) { return g.key }
        let prefix = "model.layers."
        guard name.hasPrefix(prefix) else { return name }
        let rest = name.dropFirst(prefix.count)
        guard let dot = rest.firstIndex(of: ".") else { return name }
        let suffix = String(rest[rest.index(after: dot)...])
        for candidate in ["attn_norm.weight", "ffn_norm.weight", "post_attention_norm.weight", "post_ffw_norm.weight",
                          "attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_output.weight", "attn_q.bias", "attn_k.bias",
                          "attn_v.bias", "attn_q_norm.weight", "attn_k_norm.weight", "ffn_gate.weight", "ffn_up.weight", "ffn_down.weight"]
        where GGUFTensorNames.block(candidate, gemma: false) == suffix || GGUFTensorNames.block(candidate, gemma: true) == suffix {
            return "blk.\(rest[..<dot]).\(candidate)"
        }
        return name
    }
}
