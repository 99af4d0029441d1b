import Foundation
import Testing
import TillerCore
import TillerCPU
import TillerModels
@testable import TillerEvaluation

/// The pieces of `tiller eval` below the command line: the committed prompt sets, the judge's
/// rating parser, AxBench's aggregate, and the coherence proxy against transformers' logits.
@Suite struct EvalProtocolTests {
    @Test func committedPromptSetsLoadWithEnoughItems() throws {
        for proto in EvalProtocol.allCases {
            let (items, skipped, _) = try PromptSets.load(proto, path: nil)
            #expect((100...200).contains(items.count), "\(proto.rawValue): \(items.count) items")
            #expect(skipped == 0)
            for item in items {
                #expect(item.bare != nil && item.bare != item.prompted, "\(item.id)")
            }
        }
        let format = try PromptSets.load(.ifevalFormat, path: nil).items
        // Every checkable format instruction is in the set (response language needs a language identifier).
        let ids = Set(format.flatMap { item -> [String] in
            guard case .instructions(let list) = item.target else { return [] }
            return list.map(\.id)
        })
        #expect(ids == Set(IFEvalInstruction.supportedIDs).subtracting(["language:response_language"]))
        let persona = try PromptSets.load(.persona, path: nil).items
        #expect(Set(persona.map(\.target.group)).count >= 2)
        #expect(persona.allSatisfy { $0.prompted.first?.role == "system" })
        let concepts = try PromptSets.load(.concept, path: nil).items
        let perConcept = Dictionary(grouping: concepts, by: \.target.group).mapValues(\.count)
        #expect(perConcept.values.allSatisfy { $0 == 10 }, "AxBench asks 10 instructions per concept")
    }

    @Test func ifevalOwnLayoutIsRead() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tiller-ifeval-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("input_data.jsonl").path
        // IFEval's data: integer keys, every kwarg key present with nulls, instructions outside the subset.
        try """
            {"key": 1000, "prompt": "Write a poem. Do not use commas.", "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{"num_highlights": null, "end_phrase": null}]}
            {"key": 1001, "prompt": "Write 300 words.", "instruction_id_list": ["length_constraints:number_words"], "kwargs": [{"num_words": 300, "relation": "at least"}]}
            {"key": 1002, "prompt": "Two things.", "instruction_id_list": ["startend:quotation", "change_case:english_capital"], "kwargs": [{}, {}]}

            """.write(toFile: path, atomically: true, encoding: .utf8)
        let (items, skipped, _) = try PromptSets.load(.ifevalFormat, path: path)
        #expect(items.map(\.id) == ["1000", "1002"])
        #expect(skipped == 1)
        #expect(items[0].bare == nil)
        #expect(items[1].target.group == "startend:quotation+change_case:english_capital")

        func problem(_ line: String) -> String {
            do {
                try (line + "\n").write(toFile: path, atomically: true, encoding: .utf8)
                _ = try PromptSets.load(.ifevalFormat, path: path)
                return "no error"
            } catch {
                return "\(error)"
            }
        }
        #expect(problem(#"{"key": 1, "prompt": "x", "instruction_id_list": ["punctuation:no_comma"], "kwargs": []}"#).contains(":1"))
        #expect(problem(#"{"key": 1, "prompt": "x", "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}], "qestion": "y"}"#).contains("did you mean \"question\""))
        #expect(problem(#"{"key": 1, "prompt": "x", "instruction_id_list": ["nope:nope"], "kwargs": [{}]}"#).contains("unknown instruction id"))
        #expect(problem(#"{"key": 1, "prompt": "", "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]}"#).contains("\"prompt\""))
        #expect(problem(#"{"key": 1, "prompt": "x", "instruction_id_list": ["length_constraints:number_words"], "kwargs": [{}]}"#).contains("none of its 1 lines uses only instructions Tiller checks"))
    }

    @Test func ratingsAreReadStrictly() {
        func read(_ text: String, _ scale: ClosedRange<Int> = 0...100, refusal: Bool = false) -> RatingParser.Rating? {
            RatingParser.parse(text, scale: scale, allowsRefusal: refusal)
        }
        #expect(read("73") == .value(73))
        #expect(read(" 73.\n") == .value(73))
        #expect(read("**100**") == .value(100))
        #expect(read("0") == .value(0))
        #expect(read("101") == nil)
        #expect(read("-5") == nil)
        #expect(read("73/100") == nil)
        #expect(read("I'd say 73") == nil)
        #expect(read("7 3") == nil)
        #expect(read("73.5") == nil)
        #expect(read("") == nil)
        #expect(read("REFUSAL") == nil)
        #expect(read("refusal", refusal: true) == .refusal)
        #expect(read("2", 0...2) == .value(2))
        #expect(read("3", 0...2) == nil)
        #expect(read("٣") == nil, "digits of other scripts are not ratings")
    }

    @Test func axBenchAggregateIsTheHarmonicMeanAndZeroWithAnyZero() {
        #expect(EvalScores.aggregate(concept: 2, instruction: 2, fluency: 2) == 2)
        #expect(EvalScores.aggregate(concept: 0, instruction: 2, fluency: 2) == 0)
        #expect(abs(EvalScores.aggregate(concept: 1, instruction: 2, fluency: 2) - 1.5) < 1e-12)
        #expect(abs(EvalScores.aggregate(concept: 1, instruction: 1, fluency: 2) - 1.2) < 1e-12)
    }

    @Test func coherenceProxyMapsPerplexity() {
        #expect(CoherenceProxy.score(meanNLL: 0) == 100)
        #expect(abs(CoherenceProxy.score(meanNLL: log(10)) - 100.0 * 2 / 3) < 1e-9)
        #expect(CoherenceProxy.score(meanNLL: log(1000)) == 0)
        #expect(CoherenceProxy.score(meanNLL: 50) == 0)
        #expect(CoherenceProxy.score(meanNLL: .infinity) == 0)
    }

    /// The proxy's NLL on the tiny llama equals the one computed from transformers' logits of the
    /// same ids (Tests/Fixtures/models/llama/reference.safetensors).
    @Test func coherenceProxyMatchesTransformersLogits() throws {
        let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/models/llama").path
        let reference = try SafetensorsFile(path: directory + "/reference.safetensors")
        func values<T>(_ name: String, _ type: T.Type) throws -> [T] {
            let raw = reference.bytes(try reference.entry(name))
            return (0..<(raw.count / 4)).map { raw.loadUnaligned(fromByteOffset: $0 * 4, as: T.self) }
        }
        let ids = try values("ids", Int32.self), logits = try values("logits", Float.self)
        let vocabulary = logits.count / ids.count
        let split = 8
        var expected = 0.0
        for p in (split - 1)..<(ids.count - 1) {
            let row = logits[(p * vocabulary)..<((p + 1) * vocabulary)].map(Double.init)
            let peak = row.max()!
            expected += peak + log(row.map { exp($0 - peak) }.reduce(0, +)) - row[Int(ids[p + 1])]
        }
        expected /= Double(ids.count - split)
        let model = try TransformerModel.load(directory: directory, backend: CPUBackend())
        let got = try #require(try CoherenceProxy.meanNLL(model: model, context: Array(ids[..<split]), answer: Array(ids[split...])))
        #expect(abs(got - expected) < 1e-4 * max(1, expected), "\(got) vs \(expected)")
        #expect(try CoherenceProxy.meanNLL(model: model, context: Array(ids[..<split]), answer: []) == .infinity)
    }
}

/// The bisection of the matched-coherence comparison on coherence curves known in closed form.
@Suite struct EvalMatchedCoherenceTests {
    @Test func bisectionFindsTheLargestCoherentAlpha() throws {
        // Arm 0: coherence 100 - 10 alpha (80 at alpha 2); arm 1: always 90 (keeps the maximum);
        // arm 2: always 50 (never coherent); score = 7 alpha.
        let curves: [(Double) -> Double] = [{ 100 - 10 * $0 }, { _ in 90 }, { _ in 50 }]
        var calls = 0
        let steps = 6
        let points = try EvalMatchedCoherence.search(arms: 3, target: 80, level: "C80", maxAlpha: 4, steps: steps) { pairs in
            calls += 1
            return pairs.map { (curves[$0.arm]($0.alpha), 7 * $0.alpha) }
        }
        #expect(calls <= steps + 1)
        let a0 = try #require(points[0].alpha)
        #expect(a0 <= 2 && a0 >= 2 - 4 / pow(2, Double(steps)), "\(a0)")
        #expect(points[0].score == 7 * a0 && (points[0].coherence ?? 0) >= 80)
        #expect(points[1].alpha == 4)
        #expect(points[2].alpha == nil && points[2].score == nil)
    }
}

/// AxBench's factor choice on judged aggregates made by hand.
@Suite struct EvalFactorSelectionTests {
    static func line(_ id: String, concept: String, alpha: Double, aggregate: Double) -> EvalResult {
        EvalResult(json: ["protocol": "concept", "model": "m", "id": id, "group": concept, "steer_key": "f@\(alpha)",
                          "steer": ["mode": "file", "file": "f.safetensors", "alpha": alpha, "with_prompt": false] as [String: Any],
                          "response": "r", "scores": ["aggregate": aggregate]])!
    }

    @Test func choosesOnTheFirstHalfAndScoresTheOther() throws {
        // Concept x: items a, b choose (alpha 2 wins 2.0 to 1.0); c, d are scored at alpha 2: (1.5 + 0.5) / 2.
        // Concept y: a tie on the first half keeps the smaller alpha; its second half at alpha 1 is 0.9.
        var results: [EvalResult] = []
        let x: [String: [Double: Double]] = ["a": [1: 1, 2: 2], "b": [1: 1, 2: 2], "c": [1: 0.1, 2: 1.5], "d": [1: 0.1, 2: 0.5]]
        let y: [String: [Double: Double]] = ["e": [1: 1, 2: 1], "f": [1: 0.9, 2: 2], "g": [1: 0.9, 2: 0]]
        for alpha in [1.0, 2.0] {
            for id in ["a", "b", "c", "d"] { results.append(Self.line(id, concept: "x", alpha: alpha, aggregate: x[id]![alpha]!)) }
            for id in ["e", "f", "g"] { results.append(Self.line(id, concept: "y", alpha: alpha, aggregate: y[id]![alpha]!)) }
        }
        let selection = EvalFactorSelection.select(results)
        #expect(selection.count == 1)
        let choices = try #require(selection.first?.choices)
        #expect(choices.map(\.concept) == ["x", "y"])
        #expect(choices.map(\.alpha) == [2, 1])
        #expect(abs(choices[0].score - 1.0) < 1e-12 && abs(choices[1].score - 0.9) < 1e-12)
        #expect(abs((selection.first?.mean ?? 0) - 0.95) < 1e-12)
    }
}
