import Foundation
import TillerCore

/// `--weight-dtype native`: matmul weights of the ggml types the backends multiply in their
/// blocks (Q8_0, Q4_0, Q4_1, Q4_K) are uploaded as stored, never dequantized; the embedding table
/// stays dense (its rows are looked up), and a tied output projection gets its own quantized copy
/// of the table, since it is the largest matmul of a small model.
extension GGUFModelFile {
    /// The TillerCore dtype a ggml type keeps under native loading, or nil.
    static func nativeDType(_ type: GGMLType) -> DType? {
        switch type {
        case .q8_0: return .q8_0
        case .q4_0: return .q4_0
        case .q4_1: return .q4_1
        case .q4_K: return .q4_K
        default: return nil
        }
    }

    /// The weight in its blocks, or nil when it is not kept native (not asked for, the embedding
    /// table, or a type the backends cannot multiply).
    func loadNative(_ name: String, into backend: Backend, expectedShape: [Int], embeddingAllowed: Bool = false) throws -> Tensor? {
        guard keepsQuantizedWeights, embeddingAllowed || name != "model.embed_tokens.weight" else { return nil }
        let (t, shape) = try tensor(name, expectedShape: expectedShape)
        let (type, range) = try loadable(t, hfName: name)
        guard shape.count == 2, let dtype = Self.nativeDType(type) else { return nil }
        let tensor = try backend.empty(shape, dtype)
        let rows = shape[0], rowBytes = type.byteCount(shape[1])
        let heads = try rowPermutationHeads(name, rows: rows)
        try data.withUnsafeBytes { bytes in
            let source = UnsafeRawBufferPointer(rebasing: bytes[range])
            if let heads {
                // unpermuteRows' mapping, moving whole rows of blocks.
                var moved = [UInt8](repeating: 0, count: source.count)
                let d = rows / heads, half = d / 2
                moved.withUnsafeMutableBytes { out in
                    for h in 0..<heads {
                        for i in 0..<half {
                            for j in 0..<2 {
                                let from = (h * d + 2 * i + j) * rowBytes, to = (h * d + j * half + i) * rowBytes
                                out.baseAddress!.advanced(by: to).copyMemory(from: source.baseAddress! + from, byteCount: rowBytes)
                            }
                        }
                    }
                }
                try moved.withUnsafeBytes { try backend.upload($0, to: tensor) }
            } else {
                try backend.upload(source, to: tensor)
            }
            TransformerModel.releaseMappedPages(source)
        }
        return tensor
    }

    func tiedOutputWeight(into backend: Backend, expectedShape: [Int]) throws -> Tensor? {
        guard !has("lm_head.weight") else { return nil }
        return try loadNative("model.embed_tokens.weight", into: backend, expectedShape: expectedShape, embeddingAllowed: true)
    }
}
