import Foundation
import TillerCore

/// A tokenizer read from a Hugging Face tokenizer.json (and, optionally, tokenizer_config.json),
/// giving the same ids and text as the `tokenizers` library for the layouts Llama-family checkpoints
/// use:
/// - byte-level BPE (GPT-2, Llama 3, Qwen2): the ByteLevel pre-tokenizer, or Split regexes followed by
///   ByteLevel, `ignore_merges`;
/// - SentencePiece-style BPE with byte fallback (Llama 2, Mistral, Gemma): the Prepend / Replace
///   normalizers or the Metaspace pre-tokenizer, and the Replace / ByteFallback / Fuse / Strip /
///   Metaspace decoders;
/// - added and special tokens with their lstrip / rstrip / single_word / normalized flags, and the
///   TemplateProcessing post-processor (BOS / EOS) for `encode(_:addSpecialTokens:)`.
///
/// The pipeline is the reference's: added tokens are cut out of the raw text, each stretch between
/// them is normalized (normalized added tokens are then cut out of that), pre-tokenized into words,
/// and each word goes through the BPE merges. Regexes run with Swift Regex on Unicode scalars.
///
/// Encoding and decoding are safe to call from several threads at once (the word cache is locked).
public final class Tokenizer {
    let model: TokBPE
    let added: TokAddedVocabulary
    let normalizer: TokNormalizer?
    let preTokenizer: TokPreTokenizer?
    let postProcessor: TokPostProcessor?
    /// nil: tokens are joined with spaces, as the reference does without a decoder.
    let decoder: TokDecoder?
    let specialContents: Set<[UInt8]>
    /// Whether the decoder has a ByteFallback step: a run of "<0xAB>" tokens is then decoded as a
    /// whole (all of it, or one U+FFFD per byte), so the streaming decoder holds such runs back.
    let holdsByteRuns: Bool

    /// The id of the beginning-of-sequence token: tokenizer_config.json's bos_token, or (without a
    /// config) the first token the post-processor puts in front of a sequence.
    public let bosTokenID: Int32?
    /// Ids that end generation: tokenizer_config.json's eos_token, then any eos_token_id of a
    /// generation_config.json next to it (init(directory:) only); without a config, the added special
    /// tokens with a conventional end-of-text name.
    public let eosTokenIDs: [Int32]
    /// One more than the largest id of the vocabulary or of an added token.
    public let vocabularySize: Int
    /// tokenizer_config.json's chat_template (the default one, when it lists several).
    public let chatTemplate: String?

    /// Reads `directory`/tokenizer.json, and `directory`/tokenizer_config.json and
    /// `directory`/generation_config.json when they exist. A GGUF model file is read as
    /// `init(gguf:)` does.
    public convenience init(directory: String) throws {
        if GGUFModelFile.isGGUF(directory) {
            try self.init(gguf: try GGUFModelFile(path: directory))
            return
        }
        let dir = URL(fileURLWithPath: directory)
        let tokenizerPath = dir.appendingPathComponent("tokenizer.json").path
        let configPath = dir.appendingPathComponent("tokenizer_config.json").path
        let generationPath = dir.appendingPathComponent("generation_config.json").path
        let fm = FileManager.default
        guard fm.fileExists(atPath: tokenizerPath) else {
            throw TillerError.io(path: tokenizerPath, detail: "no such file")
        }
        guard let tokenizerData = fm.contents(atPath: tokenizerPath) else {
            throw TillerError.io(path: tokenizerPath, detail: "cannot be read")
        }
        var configData: Data? = nil
        if fm.fileExists(atPath: configPath) {
            guard let data = fm.contents(atPath: configPath) else {
                throw TillerError.io(path: configPath, detail: "cannot be read")
            }
            configData = data
        }
        let generationData = fm.fileExists(atPath: generationPath) ? fm.contents(atPath: generationPath) : nil
        try self.init(tokenizerJSON: tokenizerData, configJSON: configData, generationConfigJSON: generationData,
                      tokenizerPath: tokenizerPath, configPath: configPath)
    }

    /// Builds a tokenizer from the contents of tokenizer.json and (optionally) tokenizer_config.json.
    public convenience init(tokenizerJSON: Data, configJSON: Data?) throws {
        try self.init(tokenizerJSON: tokenizerJSON, configJSON: configJSON, generationConfigJSON: nil,
                      tokenizerPath: "tokenizer.json", configPath: "tokenizer_config.json")
    }

    init(tokenizerJSON: Data, configJSON: Data?, generationConfigJSON: Data?,
         tokenizerPath: String, configPath: String) throws {
        let loader = TokLoader(path: tokenizerPath)
        let root: JSONValue
        do {
            root = try JSONValue.parse([UInt8](tokenizerJSON))
        } catch let error as JSONValue.ParseError {
            throw loader.fail("not valid JSON: \(error.reason) at byte \(error.offset)")
        }
        guard case .object = root else { throw loader.fail("top level is \(root.kindName), not an object") }

        let normalizer = try loader.normalizer(root["normalizer"], at: "normalizer")
        let model = try loader.model(root["model"])
        let addedTokens = try loader.addedTokens(root["added_tokens"])
        let preTokenizer = try loader.preTokenizer(root["pre_tokenizer"], at: "pre_tokenizer")
        let decoder = try loader.decoder(root["decoder"], at: "decoder")
        var contentToID: [[UInt8]: Int32] = model.vocab
        for t in addedTokens { contentToID[t.content] = t.id }
        let postProcessor = try loader.postProcessor(root["post_processor"], at: "post_processor", ids: contentToID)

        self.model = model
        self.normalizer = normalizer
        self.preTokenizer = preTokenizer
        self.decoder = decoder
        self.holdsByteRuns = decoder?.containsByteFallback ?? false
        self.postProcessor = postProcessor
        self.added = TokAddedVocabulary(tokens: addedTokens, normalizer: normalizer)
        self.specialContents = Set(addedTokens.filter { $0.special }.map { $0.content })
        var maxID = model.tokens.count - 1
        for t in addedTokens { maxID = max(maxID, Int(t.id)) }
        self.vocabularySize = maxID + 1

        // tokenizer_config.json
        var bos: Int32? = nil
        var eos: [Int32] = []
        var template: String? = nil
        if let configJSON {
            let configLoader = TokLoader(path: configPath)
            let config: JSONValue
            do {
                config = try JSONValue.parse([UInt8](configJSON))
            } catch let error as JSONValue.ParseError {
                throw configLoader.fail("not valid JSON: \(error.reason) at byte \(error.offset)")
            }
            guard case .object = config else { throw configLoader.fail("top level is \(config.kindName), not an object") }
            func lookup(_ key: String) -> Int32? {
                guard let value = config[key] else { return nil }
                let content: String?
                if let s = value.stringValue { content = s } else { content = value["content"]?.stringValue }
                guard let content else { return nil }
                return contentToID[TokText.bytes(content)]
            }
            bos = lookup("bos_token")
            if let id = lookup("eos_token") { eos.append(id) }
            if let t = config["chat_template"]?.stringValue {
                template = t
            } else if let list = config["chat_template"]?.arrayValue {
                let named = list.compactMap { item -> (String, String)? in
                    guard let name = item["name"]?.stringValue, let t = item["template"]?.stringValue else { return nil }
                    return (name, t)
                }
                template = named.first(where: { $0.0 == "default" })?.1 ?? named.first?.1
            }
        } else {
            bos = postProcessor?.leadingID
            let conventional = ["</s>", "<|end_of_text|>", "<|eot_id|>", "<|endoftext|>", "<|im_end|>", "<eos>",
                                "<end_of_turn>"]
            for name in conventional {
                if let t = addedTokens.first(where: { $0.special && $0.content == TokText.bytes(name) }) { eos.append(t.id) }
            }
        }
        // generation_config.json (best effort: it belongs to the checkpoint, not to the tokenizer).
        if let generationConfigJSON, let gen = try? JSONValue.parse([UInt8](generationConfigJSON)) {
            var ids: [Int] = []
            if let one = gen["eos_token_id"]?.intValue { ids = [one] }
            if let many = gen["eos_token_id"]?.arrayValue { ids = many.compactMap { $0.intValue } }
            for id in ids where id >= 0 && id < vocabularySize && !eos.contains(Int32(id)) { eos.append(Int32(id)) }
            if bos == nil, let b = gen["bos_token_id"]?.intValue, b >= 0, b < vocabularySize { bos = Int32(b) }
        }
        self.bosTokenID = bos
        self.eosTokenIDs = eos
        self.chatTemplate = template
    }

    // MARK: - Encoding

    /// The ids of `text`; with `addSpecialTokens`, the post-processor's BOS / EOS around them.
    public func encode(_ text: String, addSpecialTokens: Bool = true) throws -> [Int32] {
        var ids: [Int32] = []
        ids.reserveCapacity(text.utf8.count / 3 + 4)
        let whole = TokPiece(bytes: Array(text.utf8), atStart: true)
        for segment in added.split(whole, normalizedSet: false) {
            switch segment {
            case let .token(id):
                ids.append(id)
            case var .text(piece):
                if let normalizer { piece.bytes = normalizer.normalize(piece.bytes) }
                for inner in added.split(piece, normalizedSet: true) {
                    switch inner {
                    case let .token(id):
                        ids.append(id)
                    case let .text(stretch):
                        let words = preTokenizer?.apply([stretch]) ?? [stretch]
                        for word in words { ids += model.tokenize(word.bytes) }
                    }
                }
            }
        }
        if addSpecialTokens, let postProcessor { ids = postProcessor.process(ids) }
        return ids
    }

    // MARK: - Decoding

    /// The text of `ids`. Ids that are not in the vocabulary are skipped; with `skipSpecialTokens`,
    /// special tokens are too.
    public func decode(_ ids: [Int32], skipSpecialTokens: Bool = false) -> String {
        String(decoding: decodeBytes(tokenStrings(ids, skipSpecialTokens: skipSpecialTokens)), as: UTF8.self)
    }

    /// A decoder fed one id at a time that returns text as soon as it is final (never half a character).
    public func makeStreamingDecoder(skipSpecialTokens: Bool = false) -> StreamingDecoder {
        StreamingDecoder(tokenizer: self, skipSpecialTokens: skipSpecialTokens)
    }

    /// The id of a token string (added tokens first, then the vocabulary).
    public func tokenID(_ token: String) -> Int32? {
        let bytes = TokText.bytes(token)
        return added.byContent[bytes] ?? model.vocab[bytes]
    }

    /// The token string of an id (as stored: byte-level stand-ins, "▁", "<0xAB>"; a normalized added
    /// token in its normalized form, as the reference gives it), or nil.
    public func tokenString(_ id: Int32) -> String? {
        if let t = added.decodeForm[id] { return TokText.string(t) }
        return model.token(id).map(TokText.string)
    }

    /// Whether `id` is an added token marked special.
    public func isSpecialToken(_ id: Int32) -> Bool { added.isSpecial(id) }

    /// The token strings of `ids` as UTF-8, with unknown ids (and special ones, if asked) left out.
    func tokenStrings(_ ids: [Int32], skipSpecialTokens: Bool) -> [[UInt8]] {
        var out: [[UInt8]] = []
        out.reserveCapacity(ids.count)
        for id in ids {
            guard let token = added.decodeForm[id] ?? model.token(id) else { continue }
            if skipSpecialTokens && specialContents.contains(token) { continue }
            out.append(token)
        }
        return out
    }

    /// Runs the decoder over token strings.
    func decodeBytes(_ tokens: [[UInt8]]) -> [UInt8] {
        guard let decoder else {
            var out: [UInt8] = []
            for (i, t) in tokens.enumerated() {
                if i > 0 { out.append(0x20) }
                out += t
            }
            return out
        }
        return decoder.decodeChain(tokens).flatMap { $0 }
    }

}

// Immutable after init, apart from the BPE word cache, which is locked.
extension Tokenizer: @unchecked Sendable {}
