import Foundation
import Testing
import TillerCore
@testable import TillerModels

/// The tokenizer's stages one at a time, against outputs of the Hugging Face `tokenizers` library
/// (0.23) written down by hand, for features the trained fixtures do not reach.
@Suite struct TokenizerComponentTests {
    private func pieces(_ pre: TokPreTokenizer, _ text: String) -> [String] {
        pre.apply([TokPiece(bytes: Array(text.utf8), atStart: true)]).map { String(decoding: $0.bytes, as: UTF8.self) }
    }

    @Test func splitBehaviors() throws {
        let regex = TokPattern.regex(try TokRegex("-+|x"))
        let text = "-a--bx-c-xx"
        let expected: [(TokSplitBehavior, Bool, [String])] = [
            (.removed, false, ["a", "b", "c"]),
            (.removed, true, ["-", "--", "x", "-", "-", "x", "x"]),
            (.isolated, false, ["-", "a", "--", "b", "x", "-", "c", "-", "x", "x"]),
            (.isolated, true, ["-", "a", "--", "b", "x", "-", "c", "-", "x", "x"]),
            (.mergedWithPrevious, false, ["-", "a--", "bx", "-", "c-", "x", "x"]),
            (.mergedWithPrevious, true, ["-a", "--b", "x", "-c", "-", "x", "x"]),
            (.mergedWithNext, false, ["-a", "--b", "x", "-c", "-", "x", "x"]),
            (.mergedWithNext, true, ["-", "a--", "bx", "-", "c-", "x", "x"]),
            (.contiguous, false, ["-", "a", "--", "b", "x-", "c", "-xx"]),
            (.contiguous, true, ["-", "a", "--", "b", "x-", "c", "-xx"]),
        ]
        for (behavior, invert, want) in expected {
            #expect(pieces(.split(pattern: regex, behavior: behavior, invert: invert), text) == want, "\(behavior) \(invert)")
        }
        #expect(TokSplitBehavior(json: "merged_with_previous") == .mergedWithPrevious)
        #expect(TokSplitBehavior(json: "MergedWithNext") == .mergedWithNext)
        #expect(TokSplitBehavior(json: "sideways") == nil)
    }

    @Test func otherPreTokenizers() {
        #expect(pieces(.digits(individual: false), "ab123c4½5") == ["ab", "123", "c", "4½5"])
        #expect(pieces(.digits(individual: true), "ab123c4½5") == ["ab", "1", "2", "3", "c", "4", "½", "5"])
        #expect(pieces(.whitespaceSplit, " a  b\u{3000}c\n") == ["a", "b", "c"])
        #expect(pieces(.punctuation(.isolated), "a,b!!c«d»") == ["a", ",", "b", "!", "!", "c", "«", "d", "»"])
        #expect(pieces(.metaspace(replacement: "▁", prependScheme: .always, split: true), "Hey  friend! x")
                == ["▁Hey", "▁", "▁friend!", "▁x"])
        #expect(pieces(.metaspace(replacement: "▁", prependScheme: .first, split: false), "Hello world  x")
                == ["▁Hello▁world▁▁x"])
        // ByteLevel adds the prefix space to every piece that lacks one, not only the first.
        let gpt2Split = TokPattern.regex(try! TokRegex(" ?[a-z]+|,"))
        #expect(pieces(.sequence([.split(pattern: gpt2Split, behavior: .isolated, invert: false),
                                  .byteLevel(addPrefixSpace: true, useRegex: false)]), "Hello, world")
                == ["ĠH", "Ġello", "Ġ,", "Ġworld"])
    }

    /// Swift Regex rejects character-class ranges whose end has a singleton canonical decomposition
    /// (DeepSeek's pre-tokenizer has "\u{1F5F}-\u{1F7D}"); those patterns run on ICU instead.
    @Test func regexWithRangeSwiftRejects() throws {
        let regex = try TokRegex("[\u{1F5F}-\u{1F7D}]+|[a-z]+")
        let text = Array("ab\u{1F60}\u{1F7D}\u{3CE}b".utf8)
        let matched = regex.matches(in: text).map { String(decoding: text[$0], as: UTF8.self) }
        #expect(matched.map { Array($0.unicodeScalars) } == [
            Array("ab".unicodeScalars), Array("\u{1F60}\u{1F7D}".unicodeScalars), Array("b".unicodeScalars)])
        #expect(throws: (any Error).self) { try TokRegex("(unclosed") }
    }

    /// The decoders, on token lists written out by hand.
    @Test func decoders() {
        func run(_ d: TokDecoder, _ tokens: [String]) -> String {
            String(decoding: d.decodeChain(tokens.map { Array($0.utf8) }).flatMap { $0 }, as: UTF8.self)
        }
        let metaspace = TokDecoder.metaspace(replacement: "▁", dropFirstReplacement: true)
        #expect(run(metaspace, ["▁Hello", "▁world", "▁▁x"]) == "Hello world  x")
        #expect(run(metaspace, ["▁▁Hello", "▁x"]) == "Hello x")
        #expect(run(metaspace, ["a▁b", "▁c"]) == "ab c")
        #expect(run(.metaspace(replacement: "▁", dropFirstReplacement: false), ["▁Hello", "▁world"]) == " Hello world")
        #expect(run(.sequence([.byteFallback, .fuse]), ["<0xE4>", "<0xB8>", "a", "<0xE4>", "<0xB8>", "<0xAD>"])
                == "\u{FFFD}\u{FFFD}a中")
        #expect(run(.strip(content: " ", start: 2, stop: 1), ["   a  "]) == " a ")
        #expect(run(.bpeSuffix(Array("</w>".utf8)), ["hel", "lo</w>", "wor", "ld</w>"]) == "hello world")
        // ByteLevel keeps a token with a character outside the byte alphabet as its own UTF-8.
        #expect(run(.byteLevel, ["Hello", "Ġw", "<|x y|>", "\u{E4}"]) == "Hello w<|x y|>\u{FFFD}")
        #expect(TokDecoder.fallbackByte(Array("<0x+F>".utf8)) == 15)
        #expect(TokDecoder.fallbackByte(Array("<0xzz>".utf8)) == nil)
    }

    @Test func normalizers() {
        func run(_ n: TokNormalizer, _ text: String) -> [Unicode.Scalar] {
            Array(String(decoding: n.normalize(Array(text.utf8)), as: UTF8.self).unicodeScalars)
        }
        #expect(run(.nfc, "Cafe\u{301}") == Array("Caf\u{E9}".unicodeScalars))
        #expect(run(.nfd, "Caf\u{E9}") == Array("Cafe\u{301}".unicodeScalars))
        #expect(run(.nfkc, "\u{FB01}") == Array("fi".unicodeScalars))
        #expect(run(.sequence([.nfd, .stripAccents]), "Café") == Array("Cafe".unicodeScalars))
        #expect(run(.lowercase, "HeLLo ÀÉ") == Array("hello àé".unicodeScalars))
        #expect(run(.strip(left: true, right: false), "  a  ") == Array("a  ".unicodeScalars))
        #expect(run(.sequence([.prepend(Array("▁".utf8)), .replace(pattern: .string([0x20]), content: Array("▁".utf8))]),
                    "a b") == Array("▁a▁b".unicodeScalars))
        #expect(run(.prepend(Array("▁".utf8)), "").isEmpty)
    }

    /// Added-token flags, on a tiny hand-written tokenizer.json (the ids are the ones the reference
    /// assigns on loading it: 29 and 30).
    @Test func addedTokenFlags() throws {
        let vocab = (Array("abcdefghijklmnopqrstuvwxyz".unicodeScalars).map { String($0) } + ["Ġ", "Ċ"])
        var vocabJSON = vocab.enumerated().map { "\"\($1)\": \($0)" }.joined(separator: ", ")
        vocabJSON += ", \"ab\": \(vocab.count)"
        let json = """
        {"version": "1.0", "added_tokens": [
          {"id": 29, "content": "<m>", "single_word": false, "lstrip": true, "rstrip": true, "normalized": false, "special": true},
          {"id": 30, "content": "sw", "single_word": true, "lstrip": false, "rstrip": false, "normalized": false, "special": false}],
         "normalizer": null,
         "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
         "post_processor": {"type": "BertProcessing", "sep": ["<m>", 29], "cls": ["<m>", 29]},
         "decoder": {"type": "ByteLevel"},
         "model": {"type": "BPE", "vocab": {\(vocabJSON)}, "merges": [["a", "b"]]}}
        """
        let tok = try Tokenizer(tokenizerJSON: Data(json.utf8), configJSON: nil)
        let g = try #require(tok.tokenID("Ġ"))
        func id(_ s: String) -> Int32 { tok.tokenID(s)! }
        // lstrip / rstrip take the spaces around <m> into the token.
        #expect(try tok.encode("a  <m>  b", addSpecialTokens: false) == [id("a"), 29, id("b")])
        // single_word: "sw" only where it stands alone.
        #expect(try tok.encode("sw xsw sw", addSpecialTokens: false)
                == [30, g, id("x"), id("s"), id("w"), g, 30])
        #expect(try tok.encode("ab", addSpecialTokens: true) == [29, id("ab"), 29])
        #expect(tok.bosTokenID == 29)
        #expect(tok.vocabularySize == 31)
        #expect(tok.decode([id("a"), 29, id("b")], skipSpecialTokens: true) == "ab")
    }
}
