import TillerCore

/// Where a model's weights come from, by their Hugging Face names and layout: a checkpoint
/// directory of safetensors files, or a GGUF model file (dequantized and mapped back on load).
protocol WeightSource: AnyObject {
    /// The directory or file, for messages.
    var path: String { get }
    func has(_ name: String) -> Bool
    /// A matmul or embedding weight in `dtype` (nil: as stored, or the source's default), shape
    /// checked, streamed so that the process never holds it twice.
    func loadWeight(_ name: String, into backend: Backend, as dtype: DType?, expectedShape: [Int]) throws -> Tensor
    /// A norm or bias.
    func load(_ name: String, into backend: Backend, as dtype: DType?, expectedShape: [Int]?) throws -> Tensor
    /// The output projection of a model with tied embeddings when it is held apart from the
    /// embedding table (quantized weights kept native: the table stays dense for row lookups,
    /// the projection in its blocks), or nil to share the embedding.
    func tiedOutputWeight(into backend: Backend, expectedShape: [Int]) throws -> Tensor?
}

extension WeightSource {
    func tiedOutputWeight(into backend: Backend, expectedShape: [Int]) throws -> Tensor? { nil }
}

extension CheckpointDirectory: WeightSource {
    func loadWeight(_ name: String, into backend: Backend, as dtype: DType?, expectedShape: [Int]) throws -> Tensor {
        try TransformerModel.loadStreaming(self, name, into: backend, as: dtype, expectedShape: expectedShape)
    }
}

extension WeightSource {
    /// A norm or bias as stored (the form CheckpointDirectory's callers use).
    func load(_ name: String, into backend: Backend, expectedShape: [Int]?) throws -> Tensor {
        try load(name, into: backend, as: nil, expectedShape: expectedShape)
    }
}
