import Foundation
import Testing
import TillerCore
@testable import TillerModels

/// The tokenizer fixtures: small tokenizers trained with the Hugging Face `tokenizers` library and
/// their reference outputs (scripts/fixtures/make_tokenizer_fixtures.py).
enum TokenizerFixtures {
    static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures").appendingPathComponent("tokenizers")

    static let names = ["gpt2", "gpt2-split", "llama3", "qwen2", "llama2", "mistral", "gemma"]

    struct Sample {
        let text: String
        let ids: [Int32]
        let idsNoSpecial: [Int32]
        let decoded: String
        let decodedSkipSpecial: String
    }

    struct DecodeCase {
        let ids: [Int32]
        let decoded: String
        let decodedSkipSpecial: String
    }

    struct Expected {
        let vocabSize: Int
        let bosTokenID: Int32?
        let eosTokenIDs: [Int32]
        let samples: [Sample]
        let decodeCases: [DecodeCase]
    }

    static func directory(_ name: String) -> String { root.appendingPathComponent(name).path }

    static func tokenizer(_ name: String) throws -> Tokenizer { try Tokenizer(directory: directory(name)) }

    /// Read with the tokenizer's own JSON reader: Foundation's JSONSerialization drops a U+FEFF at the
    /// start of a string, and some samples have one there.
    static func expected(_ name: String) throws -> Expected {
        let data = try Data(contentsOf: root.appendingPathComponent(name).appendingPathComponent("expected.json"))
        let json = try JSONValue.parse([UInt8](data))
        func ids(_ value: JSONValue?) throws -> [Int32] {
            try #require(value?.arrayValue).map { Int32(try #require($0.intValue)) }
        }
        func text(_ value: JSONValue?) throws -> String { try #require(value?.stringValue) }
        let samples = try #require(json["samples"]?.arrayValue).map {
            Sample(text: try text($0["text"]), ids: try ids($0["ids"]), idsNoSpecial: try ids($0["ids_no_special"]),
                   decoded: try text($0["decoded"]), decodedSkipSpecial: try text($0["decoded_skip_special"]))
        }
        let cases = try #require(json["decode_cases"]?.arrayValue).map {
            DecodeCase(ids: try ids($0["ids"]), decoded: try text($0["decoded"]),
                       decodedSkipSpecial: try text($0["decoded_skip_special"]))
        }
        return Expected(vocabSize: try #require(json["vocab_size"]?.intValue),
                        bosTokenID: json["bos_token_id"]?.intValue.map { Int32($0) },
                        eosTokenIDs: try ids(json["eos_token_ids"]), samples: samples, decodeCases: cases)
    }
}

/// Strings compared scalar by scalar (Swift's == would call "é" and "e\u{301}" equal).
private func same(_ a: String, _ b: String) -> Bool { Array(a.unicodeScalars) == Array(b.unicodeScalars) }

private func show(_ s: String) -> String {
    s.unicodeScalars.map { $0.isASCII && $0.value >= 0x20 ? String($0) : String(format: "\\u{%X}", $0.value) }.joined()
}

@Suite struct TokenizerTests {
    @Test(arguments: TokenizerFixtures.names)
    func encodeMatchesReference(name: String) throws {
        let tok = try TokenizerFixtures.tokenizer(name)
        let expected = try TokenizerFixtures.expected(name)
        #expect(expected.samples.count > 80)
        for sample in expected.samples {
            let ids = try tok.encode(sample.text)
            #expect(ids == sample.ids, "\(name): encode(\"\(show(sample.text))\")")
            let plain = try tok.encode(sample.text, addSpecialTokens: false)
            #expect(plain == sample.idsNoSpecial, "\(name): encode(\"\(show(sample.text))\", addSpecialTokens: false)")
        }
    }

    @Test(arguments: TokenizerFixtures.names)
    func decodeMatchesReference(name: String) throws {
        let tok = try TokenizerFixtures.tokenizer(name)
        let expected = try TokenizerFixtures.expected(name)
        for sample in expected.samples {
            let decoded = tok.decode(sample.ids)
            #expect(same(decoded, sample.decoded), "\(name): decode \"\(show(decoded))\" vs \"\(show(sample.decoded))\"")
            let skipped = tok.decode(sample.ids, skipSpecialTokens: true)
            #expect(same(skipped, sample.decodedSkipSpecial),
                    "\(name): decode(skip) \"\(show(skipped))\" vs \"\(show(sample.decodedSkipSpecial))\"")
        }
        #expect(expected.decodeCases.count >= 60)
        for c in expected.decodeCases {
            let decoded = tok.decode(c.ids)
            #expect(same(decoded, c.decoded), "\(name): decode(\(c.ids)) \"\(show(decoded))\" vs \"\(show(c.decoded))\"")
            let skipped = tok.decode(c.ids, skipSpecialTokens: true)
            #expect(same(skipped, c.decodedSkipSpecial),
                    "\(name): decode(\(c.ids), skip) \"\(show(skipped))\" vs \"\(show(c.decodedSkipSpecial))\"")
        }
    }

    @Test(arguments: TokenizerFixtures.names)
    func streamingDecodeConcatenatesToFullDecode(name: String) throws {
        let tok = try TokenizerFixtures.tokenizer(name)
        let expected = try TokenizerFixtures.expected(name)
        let sequences = expected.samples.flatMap { [$0.ids, $0.idsNoSpecial] } + expected.decodeCases.map { $0.ids }
        for ids in sequences {
            for skip in [false, true] {
                let full = tok.decode(ids, skipSpecialTokens: skip)
                let stream = tok.makeStreamingDecoder(skipSpecialTokens: skip)
                var pieces = ids.map { stream.push($0) }
                pieces.append(stream.finish())
                let joined = pieces.joined()
                #expect(same(joined, full), "\(name) skip=\(skip) \(ids): \"\(show(joined))\" vs \"\(show(full))\"")
                if !full.unicodeScalars.contains("\u{FFFD}") {
                    #expect(!pieces.contains { $0.unicodeScalars.contains("\u{FFFD}") },
                            "\(name) skip=\(skip) \(ids): a piece has U+FFFD: \(pieces.map(show))")
                }
                // The decoder is reusable after finish().
                let again = ids.map { stream.push($0) }.joined() + stream.finish()
                #expect(same(again, full))
            }
        }
    }

    /// Characters spelled with several tokens come out whole, as soon as they are complete.
    @Test func streamingHoldsBackPartialCharacters() throws {
        for name in ["llama3", "llama2"] {
            let tok = try TokenizerFixtures.tokenizer(name)
            let ids = try tok.encode("a 🙂 b 𠜎", addSpecialTokens: false)
            let stream = tok.makeStreamingDecoder()
            var pieces = ids.map { stream.push($0) }
            pieces.append(stream.finish())
            #expect(pieces.joined() == tok.decode(ids))
            #expect(!pieces.joined().unicodeScalars.contains("\u{FFFD}"))
            #expect(pieces.filter { !$0.isEmpty }.count >= 3, "\(name): \(pieces)")
        }
    }

    @Test(arguments: TokenizerFixtures.names)
    func specialTokenIDsAndVocabularySize(name: String) throws {
        let tok = try TokenizerFixtures.tokenizer(name)
        let expected = try TokenizerFixtures.expected(name)
        #expect(tok.bosTokenID == expected.bosTokenID)
        #expect(tok.eosTokenIDs == expected.eosTokenIDs)
        #expect(tok.vocabularySize == expected.vocabSize)
    }

    @Test func tokenLookups() throws {
        let llama3 = try TokenizerFixtures.tokenizer("llama3")
        let eot = try #require(llama3.tokenID("<|eot_id|>"))
        #expect(llama3.eosTokenIDs == [eot])
        #expect(llama3.tokenString(eot) == "<|eot_id|>")
        #expect(llama3.isSpecialToken(eot))
        #expect(llama3.tokenID("<|no such token|>") == nil)
        #expect(llama3.chatTemplate?.contains("start_header_id") == true)
        let llama2 = try TokenizerFixtures.tokenizer("llama2")
        #expect(llama2.tokenID("<0x41>") != nil)
        #expect(llama2.tokenID("<s>") == llama2.bosTokenID)
        #expect(llama2.decode([-1, 1_000_000]) == "")
    }

    /// Without tokenizer_config.json, BOS comes from the post-processor and EOS from the conventional names.
    @Test func defaultsWithoutConfig() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: TokenizerFixtures.directory("llama3"))
            .appendingPathComponent("tokenizer.json"))
        let tok = try Tokenizer(tokenizerJSON: data, configJSON: nil)
        #expect(tok.bosTokenID == tok.tokenID("<|begin_of_text|>"))
        #expect(tok.eosTokenIDs == [tok.tokenID("<|end_of_text|>")!, tok.tokenID("<|eot_id|>")!])
    }

    /// Long inputs stay fast: one long word (the merge loop), long runs of spaces and of newlines (the
    /// regexes' backtracking), and many repeated words (the cache).
    @Test func longInputsAreNotQuadratic() throws {
        for name in ["llama3", "llama2", "gpt2"] {
            let tok = try TokenizerFixtures.tokenizer(name)
            let longWord = String(repeating: "abcdefghij", count: 2_000)
            let spaces = String(repeating: " ", count: 20_000) + "x" + String(repeating: "\n", count: 20_000)
            let prose = String(repeating: "The quick brown fox jumps over the lazy dog. ", count: 1_000)
            let start = Date()
            for text in [longWord, spaces, prose] {
                let ids = try tok.encode(text, addSpecialTokens: false)
                #expect(same(tok.decode(ids), text) || name == "llama2" && text == spaces)
            }
            let elapsed = Date().timeIntervalSince(start)
            #expect(elapsed < 20, "\(name): \(elapsed) s")
        }
    }

    /// Several threads encoding and decoding with one tokenizer get the same results as one thread.
    @Test func concurrentUseIsSafe() throws {
        let tok = try TokenizerFixtures.tokenizer("llama3")
        let samples = try TokenizerFixtures.expected("llama3").samples
        let lock = NSLock()
        var mismatches = 0
        DispatchQueue.concurrentPerform(iterations: 8) { worker in
            for k in 0..<samples.count {
                let sample = samples[(k + worker * 7) % samples.count]
                let ids = (try? tok.encode(sample.text)) ?? []
                let ok = ids == sample.ids && same(tok.decode(ids), sample.decoded)
                if !ok { lock.lock(); mismatches += 1; lock.unlock() }
            }
        }
        #expect(mismatches == 0)
    }

    // MARK: - Broken files

    private func brokenVariants() throws -> [(String, Data)] {
        let good = try String(contentsOf: URL(fileURLWithPath: TokenizerFixtures.directory("llama3"))
            .appendingPathComponent("tokenizer.json"), encoding: .utf8)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(good.utf8)) as? [String: Any])
        func variant(_ edit: (inout [String: Any]) -> Void) throws -> Data {
            var copy = json
            edit(&copy)
            return try JSONSerialization.data(withJSONObject: copy)
        }
        let cases: [(String, Data)] = [
            ("not JSON", Data("this is not json".utf8)),
            ("empty", Data()),
            ("truncated", Data(good.utf8.prefix(good.utf8.count / 2))),
            ("top-level array", Data("[1, 2, 3]".utf8)),
            ("unknown model type", try variant { j in
                var m = j["model"] as! [String: Any]; m["type"] = "WordPiece"; j["model"] = m }),
            ("missing model", try variant { j in j.removeValue(forKey: "model") }),
            ("missing vocab", try variant { j in
                var m = j["model"] as! [String: Any]; m.removeValue(forKey: "vocab"); j["model"] = m }),
            ("missing merges", try variant { j in
                var m = j["model"] as! [String: Any]; m.removeValue(forKey: "merges"); j["model"] = m }),
            ("merge of unknown tokens", try variant { j in
                var m = j["model"] as! [String: Any]; m["merges"] = [["qqq", "zzz"]]; j["model"] = m }),
            ("merge of a token with a newline", try variant { j in
                var m = j["model"] as! [String: Any]; m["merges"] = [["a\nb", "c"]]; j["model"] = m }),
            ("malformed merge", try variant { j in
                var m = j["model"] as! [String: Any]; m["merges"] = ["a b c"]; j["model"] = m }),
            ("negative id", try variant { j in
                var m = j["model"] as! [String: Any]; m["vocab"] = ["a": -5]; m["merges"] = [] as [Any]; j["model"] = m }),
            ("unknown pre-tokenizer", try variant { j in j["pre_tokenizer"] = ["type": "FancySplit"] }),
            ("unknown decoder", try variant { j in j["decoder"] = ["type": "Telepathy"] }),
            ("unknown normalizer", try variant { j in j["normalizer"] = ["type": "Precompiled", "precompiled_charsmap": "x"] }),
            ("bad regex", try variant { j in
                j["pre_tokenizer"] = ["type": "Split", "pattern": ["Regex": "(unclosed"], "behavior": "Isolated", "invert": false] }),
            ("bad added token", try variant { j in j["added_tokens"] = [["content": "<x>"]] }),
        ]
        return cases
    }

    @Test func brokenTokenizerJSONThrowsNamingTheFile() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("tiller-tok-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: base) }
        for (i, (what, data)) in try brokenVariants().enumerated() {
            let dir = base.appendingPathComponent("case\(i)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            let file = dir.appendingPathComponent("tokenizer.json")
            try data.write(to: file)
            do {
                _ = try Tokenizer(directory: dir.path)
                Issue.record("\(what): no error")
            } catch let TillerError.io(path, detail) {
                #expect(path == file.path, "\(what): \(path)")
                #expect(!detail.isEmpty && !detail.contains("\n"), "\(what): \(detail)")
            } catch {
                Issue.record("\(what): unexpected error \(error)")
            }
            do {
                _ = try Tokenizer(tokenizerJSON: data, configJSON: nil)
                Issue.record("\(what): no error from Data")
            } catch let TillerError.io(path, _) {
                #expect(path.hasSuffix("tokenizer.json"))
            } catch {
                Issue.record("\(what): unexpected error \(error)")
            }
        }
    }

    @Test func missingOrBrokenFilesThrowIOErrors() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("tiller-tok-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: base) }
        #expect(throws: TillerError.self) { _ = try Tokenizer(directory: base.path) }
        let good = URL(fileURLWithPath: TokenizerFixtures.directory("llama2")).appendingPathComponent("tokenizer.json")
        try FileManager.default.copyItem(at: good, to: base.appendingPathComponent("tokenizer.json"))
        try Data("{ nope".utf8).write(to: base.appendingPathComponent("tokenizer_config.json"))
        do {
            _ = try Tokenizer(directory: base.path)
            Issue.record("broken tokenizer_config.json: no error")
        } catch let TillerError.io(path, detail) {
            #expect(path.hasSuffix("tokenizer_config.json"))
            #expect(!detail.contains("\n"))
        }
    }
}
