import Foundation
import TillerCore

/// The tokenizer of a GGUF model file, built from its `tokenizer.ggml.*` metadata as the
/// tokenizer.json that transformers' GGUF loader would make of it, then read by the one
/// `Tokenizer` (no second tokenizer):
/// - `tokenizer.ggml.model` "gpt2": byte-level BPE with `merges`; the pre-tokenizer is the one
///   llama.cpp uses for `tokenizer.ggml.pre` (llama-vocab.cpp), e.g. "smollm" isolates each digit
///   before the GPT-2 split;
/// - "llama": SentencePiece-style BPE with byte fallback; merges are made from the token scores as
///   transformers does when a file has none (every split of a token into two tokens, ranked by the
///   token's score), with SentencePiece's legacy normalizer (prepend and replace spaces by U+2581).
/// Token type 3 (control) becomes a special added token and 4 (user defined) a plain added token;
/// BOS and EOS come from `tokenizer.ggml.bos_token_id`/`eos_token_id` (and `eot_token_id` also
/// ends generation), `add_bos_token` decides whether `encode` puts BOS in front.
enum GGUFTokenizer {
    /// The tokenizer.json, tokenizer_config.json and generation_config.json this file stands for.
    struct Inputs {
        var tokenizerJSON, configJSON, generationConfigJSON: Data
        var path: String
    }

    static func make(_ reader: GGUFReader, bytes: UnsafeRawBufferPointer) throws -> Inputs {
        let path = reader.path
        func bad(_ detail: String) -> TillerError { .io(path: path, detail: detail) }
        guard let model = try reader.string("tokenizer.ggml.model") else {
            throw bad("no tokenizer.ggml.model: the GGUF file has no tokenizer")
        }
        guard let tokens = try reader.strings("tokenizer.ggml.tokens", in: bytes), !tokens.isEmpty else {
            throw bad("no tokenizer.ggml.tokens: the GGUF file has no vocabulary")
        }
        let types = try reader.numbers("tokenizer.ggml.token_type", in: bytes)
        if let types, types.count != tokens.count {
            throw bad("tokenizer.ggml.token_type has \(types.count) entries but tokenizer.ggml.tokens \(tokens.count)")
        }
        func tokenID(_ key: String) throws -> Int? {
            guard let id = try reader.integer(key) else { return nil }
            guard id >= 0, id < tokens.count else { throw bad("\(key) = \(id) is not a token id (vocabulary of \(tokens.count))") }
            return id
        }
        let bos = try tokenID("tokenizer.ggml.bos_token_id")
        let eos = try tokenID("tokenizer.ggml.eos_token_id")
        let eot = try tokenID("tokenizer.ggml.eot_token_id")
        let unk = try tokenID("tokenizer.ggml.unknown_token_id")

        var json = "{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,"
        json += "\"added_tokens\":[" + addedTokens(tokens, types).joined(separator: ",") + "],"
        let addBOS: Bool
        switch model {
        case "gpt2":
            // No merges: every token is a byte (or an added token).
            let merges = try reader.strings("tokenizer.ggml.merges", in: bytes) ?? []
            let pre = try reader.string("tokenizer.ggml.pre") ?? "default"
            guard let preTokenizer = byteLevelPreTokenizer(pre) else {
                throw bad("tokenizer.ggml.pre \"\(JSONValue.excerpt(pre))\" is not supported (\(supportedPre.joined(separator: ", ")))")
            }
            addBOS = try reader.bool("tokenizer.ggml.add_bos_token") ?? false
            json += "\"normalizer\":null,\"pre_tokenizer\":\(preTokenizer),"
            json += "\"decoder\":{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"trim_offsets\":true,\"use_regex\":true},"
            json += "\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":null,\"fuse_unk\":false,\"byte_fallback\":false,\"ignore_merges\":false,"
            json += "\"vocab\":" + vocabulary(tokens) + ",\"merges\":[" + merges.map(JSONEscaping.quoted).joined(separator: ",") + "]}"
        case "llama":
            guard let scores = try reader.numbers("tokenizer.ggml.scores", in: bytes), scores.count == tokens.count else {
                throw bad("tokenizer.ggml.model is llama but tokenizer.ggml.scores is missing or not one score per token")
            }
            addBOS = try reader.bool("tokenizer.ggml.add_bos_token") ?? true
            let prefix = try reader.bool("tokenizer.ggml.add_space_prefix") ?? true
            let merges = try reader.strings("tokenizer.ggml.merges", in: bytes).map { $0.map(JSONEscaping.quoted) }
                ?? sentencePieceMerges(tokens, scores).map { "[\(JSONEscaping.quoted($0.0)),\(JSONEscaping.quoted($0.1))]" }
            let prepend = prefix ? "{\"type\":\"Prepend\",\"prepend\":\"\u{2581}\"}," : ""
            json += "\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[\(prepend){\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"\u{2581}\"}]},"
            json += "\"pre_tokenizer\":null,"
            let strip = prefix ? ",{\"type\":\"Strip\",\"content\":\" \",\"start\":1,\"stop\":0}" : ""
            json += "\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\",\"pattern\":{\"String\":\"\u{2581}\"},\"content\":\" \"},{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"}\(strip)]},"
            let unkToken = unk.map { JSONEscaping.quoted(tokens[$0]) } ?? "null"
            json += "\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":\(unkToken),\"fuse_unk\":true,\"byte_fallback\":true,\"ignore_merges\":false,"
            json += "\"vocab\":" + vocabulary(tokens) + ",\"merges\":[" + merges.joined(separator: ",") + "]}"
        default:
            throw bad("tokenizer.ggml.model \"\(JSONValue.excerpt(model))\" is not supported (gpt2, llama)")
        }
        if addBOS, let bos {
            let t = JSONEscaping.quoted(tokens[bos])
            json += ",\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\(t),\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}],"
            json += "\"pair\":[],\"special_tokens\":{\(t):{\"id\":\(t),\"ids\":[\(bos)],\"tokens\":[\(t)]}}}"
        } else {
            json += ",\"post_processor\":null"
        }
        json += "}"

        var config: [String] = []
        if let bos { config.append("\"bos_token\":" + JSONEscaping.quoted(tokens[bos])) }
        if let eos { config.append("\"eos_token\":" + JSONEscaping.quoted(tokens[eos])) }
        if let template = try reader.string("tokenizer.chat_template") {
            // Tokenizer.chatTemplate, as tokenizer_config.json's would be.
            config.append("\"chat_template\":" + JSONEscaping.quoted(template))
        }
        let generation = "{\"eos_token_id\":[" + [eos, eot].compactMap { $0.map(String.init) }.joined(separator: ",") + "]}"
        return Inputs(tokenizerJSON: Data(json.utf8), configJSON: Data(("{" + config.joined(separator: ",") + "}").utf8),
                      generationConfigJSON: Data(generation.utf8), path: path + " (tokenizer.ggml.*)")
    }

    /// {"token": id, ...}; a token that appears twice keeps its first id, as llama.cpp does.
    static func vocabulary(_ tokens: [String]) -> String {
        var seen = Set<String>()
        var parts: [String] = []
        parts.reserveCapacity(tokens.count)
        for (id, t) in tokens.enumerated() where seen.insert(t).inserted {
            parts.append(JSONEscaping.quoted(t) + ":" + String(id))
        }
        return "{" + parts.joined(separator: ",") + "}"
    }

    static func addedTokens(_ tokens: [String], _ types: [Double]?) -> [String] {
        guard let types else { return [] }
        var out: [String] = []
        for (id, t) in tokens.enumerated() where (types[id] == 3 || types[id] == 4) && !t.isEmpty {
            let special = types[id] == 3
            out.append("{\"id\":\(id),\"content\":\(JSONEscaping.quoted(t)),\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":\(special)}")
        }
        return out
    }

    // MARK: Byte-level pre-tokenizers (llama.cpp's llama-vocab.cpp, by tokenizer.ggml.pre)

    static let gpt2Pattern = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"
    static let llama3Pattern = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
    static let qwen2Pattern = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
    static let supportedPre = ["default", "gpt2", "smollm", "starcoder", "refact", "llama3", "llama-bpe", "qwen2"]

    static func byteLevelPreTokenizer(_ pre: String) -> String? {
        let byteLevel = { (regex: Bool) in "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":true,\"use_regex\":\(regex)}" }
        func split(_ pattern: String) -> String {
            "{\"type\":\"Split\",\"pattern\":{\"Regex\":\(JSONEscaping.quoted(pattern))},\"behavior\":\"Isolated\",\"invert\":false}"
        }
        switch pre {
        case "default", "gpt2":
            return byteLevel(true)
        case "smollm", "starcoder", "refact":
            // Each digit on its own, then the GPT-2 split.
            return "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Digits\",\"individual_digits\":true},\(byteLevel(true))]}"
        case "llama3", "llama-bpe", "llama-v3":
            return "{\"type\":\"Sequence\",\"pretokenizers\":[\(split(llama3Pattern)),\(byteLevel(false))]}"
        case "qwen2":
            return "{\"type\":\"Sequence\",\"pretokenizers\":[\(split(qwen2Pattern)),\(byteLevel(false))]}"
        default:
            return nil
        }
    }

    // MARK: SentencePiece merges from scores

    /// transformers' GGUFTokenizerSkeleton: for every token, each split into two tokens of the
    /// vocabulary, ordered by the two pieces' scores (highest first); then all of them by the
    /// merged token's score (highest first, stable).
    static func sentencePieceMerges(_ tokens: [String], _ scores: [Double]) -> [(String, String)] {
        var score: [String: Double] = [:]
        for (t, s) in zip(tokens, scores) where score[t] == nil { score[t] = s }
        var merges: [(String, String, Double)] = []
        var seen = Set<String>()
        for (t, s) in zip(tokens, scores) where seen.insert(t).inserted {
            let scalars = Array(t.unicodeScalars)
            guard scalars.count > 1 else { continue }
            var local: [(String, String, Double)] = []
            for i in 1..<scalars.count {
                var l = String.UnicodeScalarView(), r = String.UnicodeScalarView()
                l.append(contentsOf: scalars[..<i]); r.append(contentsOf: scalars[i...])
                let left = String(l), right = String(r)
                if score[left] != nil, score[right] != nil { local.append((left, right, s)) }
            }
            local.sort { (score[$0.0]!, score[$0.1]!) > (score[$1.0]!, score[$1.1]!) }
            merges += local
        }
        let order = merges.indices.sorted { merges[$0].2 != merges[$1].2 ? merges[$0].2 > merges[$1].2 : $0 < $1 }
        return order.map { (merges[$0].0, merges[$0].1) }
    }
}

extension Tokenizer {
    /// The tokenizer of a GGUF model file (`GGUFTokenizer`).
    public convenience init(gguf file: GGUFModelFile) throws {
        let inputs = try file.tokenizerInputs()
        try self.init(tokenizerJSON: inputs.tokenizerJSON, configJSON: inputs.configJSON,
                      generationConfigJSON: inputs.generationConfigJSON, tokenizerPath: inputs.path, configPath: inputs.path)
    }
}
