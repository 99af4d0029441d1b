import Foundation
import TillerCore

public extension Generator {
    /// A generator that decodes completions with `tokenizer` (special tokens left out, as
    /// transformers' pipelines do) and stops on config.json's eos_token_id and the tokenizer's
    /// end-of-sequence ids.
    convenience init(model: TransformerModel, tokenizer: Tokenizer, batchSize: Int = 8, contextLimit: Int? = nil) throws {
        try self.init(model: model, batchSize: batchSize, contextLimit: contextLimit,
                      eosTokenIDs: Generator.endOfSequenceIDs(model: model, tokenizer: tokenizer),
                      textStream: Generator.textStream(tokenizer))
    }

    /// config.json's eos_token_id together with the tokenizer's.
    static func endOfSequenceIDs(model: TransformerModel, tokenizer: Tokenizer?) -> Set<Int32> {
        var ids = Set((model.config.eosTokenId?.values ?? []).map { Int32(truncatingIfNeeded: $0) })
        for id in tokenizer?.eosTokenIDs ?? [] { ids.insert(Int32(truncatingIfNeeded: id)) }
        return ids
    }

    /// One streaming decoder of `tokenizer` per request.
    static func textStream(_ tokenizer: Tokenizer, skipSpecialTokens: Bool = true) -> TextStreamFactory {
        return {
            let decoder = DecoderBox(tokenizer.makeStreamingDecoder(skipSpecialTokens: skipSpecialTokens))
            return TextStream(push: { decoder.value.push($0) }, finish: { decoder.value.finish() })
        }
    }
}

/// Holds a streaming decoder (a struct or a class) so closures can share and mutate it.
private final class DecoderBox<Decoder> {
    var value: Decoder
    init(_ value: Decoder) { self.value = value }
}
