import Foundation
import Testing
@testable import TillerLab

@Suite struct CorpusTests {
    @Test func sameSeedSameBytesOtherSeedOtherBytes() throws {
        let a = try LabCorpus(seed: 7, trainCount: 400, heldoutCount: 100)
        let b = try LabCorpus(seed: 7, trainCount: 400, heldoutCount: 100)
        let c = try LabCorpus(seed: 8, trainCount: 400, heldoutCount: 100)
        #expect(a.trainJSONL == b.trainJSONL && a.heldoutJSONL == b.heldoutJSONL && a.worldJSON == b.worldJSON)
        #expect(a.trainJSONL != c.trainJSONL && a.heldoutJSONL != c.heldoutJSONL && a.worldJSON != c.worldJSON)
    }

    @Test func heldOutExamplesDoNotDependOnTheTrainCount() throws {
        let small = try LabCorpus(seed: 7, trainCount: 10, heldoutCount: 100)
        let large = try LabCorpus(seed: 7, trainCount: 500, heldoutCount: 100)
        #expect(small.heldoutJSONL == large.heldoutJSONL)
    }

    @Test func splitsHoldOutTwentyPercentAndKeepEveryNameInTrain() throws {
        for seed: UInt64 in [1, 2, 3, 99] {
            let splits = LabSplits(seed: seed)
            #expect(splits.heldOutConceptPairs.count == 48 && splits.trainConceptPairs.count == 192)
            #expect(splits.heldOutPersonaPairs.count == 13 && splits.trainPersonaPairs.count == 51)
            #expect(Set(splits.trainConceptPairs.map(\.topic)).count == 16)
            #expect(Set(splits.trainConceptPairs.map(\.concept)).count == 16)
            #expect(Set(splits.trainPersonaPairs.map(\.trait)).count == 4)
            #expect(Set(splits.trainPersonaPairs.map(\.topic)).count == 16)
        }
    }

    @Test func trainNeverUsesAHeldOutPairOrTemplate() throws {
        let corpus = try #require(Fixture.corpus)
        let splits = corpus.splits
        for example in corpus.train {
            #expect(!example.questionTemplate.heldOut, "\(example.id)")
            if let concept = example.concept { #expect(!splits.isHeldOut(topic: example.topic, concept: concept), "\(example.id)") }
            if let trait = example.trait { #expect(!splits.isHeldOut(trait: trait, topic: example.topic), "\(example.id)") }
        }
        // Every topic, concept and trait still occurs in train.
        #expect(Set(corpus.train.map(\.topic)).count == 16)
        #expect(Set(corpus.train.compactMap(\.concept)).count == 16)
        #expect(Set(corpus.train.compactMap(\.trait)).count == 4)
    }

    @Test func heldOutExamplesUseHeldOutPairsOrTemplates() throws {
        let corpus = try #require(Fixture.corpus)
        for example in corpus.heldout {
            switch example.kind {
            case .concept: #expect(corpus.splits.isHeldOut(topic: example.topic, concept: example.concept!), "\(example.id)")
            case .persona: #expect(corpus.splits.isHeldOut(trait: example.trait!, topic: example.topic), "\(example.id)")
            case .none, .format: #expect(example.questionTemplate.heldOut, "\(example.id)")
            }
        }
    }

    @Test func kindsAreBalancedAndPlacementsMixed() throws {
        let corpus = try #require(Fixture.corpus)
        for kind in LabKind.allCases { #expect(corpus.train.filter { $0.kind == kind }.count == 2_000) }
        let steered = corpus.train.filter { $0.kind != .none }
        let system = steered.filter { $0.placement == .system }.count
        #expect(abs(Double(system) / Double(steered.count) - 0.5) < 0.05)
        #expect(corpus.train.filter { $0.kind == .none }.allSatisfy { $0.placement == .none && $0.answer == $0.unsteeredAnswer })
        let formats = Set(corpus.train.compactMap(\.format))
        #expect(formats == Set(LabFormat.all))
    }

    @Test func linesKeepTheSpecifiedKeyOrderAndReadBack() throws {
        let corpus = try #require(Fixture.corpus)
        let order = ["id", "kind", "placement", "topic", "question_template", "concept", "trait", "format",
                     "steering_prompt", "messages", "unsteered_messages"]
        for example in corpus.heldout {
            let line = example.jsonLine()
            let positions = order.compactMap { line.range(of: "\"\($0)\": ")?.lowerBound }
            #expect(positions == positions.sorted(), "\(line)")
            let back = try LabExample(jsonLine: line)
            #expect(back == example, "\(example.id)")
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            #expect(object["steering_prompt"] as? String == example.steeringPrompt)
        }
    }

    @Test func idsCountFromOneWithSixDigits() throws {
        let corpus = try #require(Fixture.corpus)
        #expect(corpus.train.first?.id == "train-000001" && corpus.train.last?.id == "train-008000")
        #expect(corpus.heldout.first?.id == "heldout-000001")
    }

    @Test func promptsPlaceTheSteeringText() throws {
        let target = LabTarget.format(.endWith("the end"))
        #expect(target.steeringText == "end your answer with \"the end\".")
        #expect(LabTarget.format(.sentences(2)).steeringText == "answer in exactly 2 sentences.")
        #expect(LabPrompt.messages(question: "q?", target: target, placement: .system)
            == [LabMessage(role: "system", content: target.steeringText), LabMessage(role: "user", content: "q?")])
        #expect(LabPrompt.messages(question: "q?", target: target, placement: .user)
            == [LabMessage(role: "user", content: target.steeringText + " q?")])
        #expect(LabPrompt.messages(question: "q?", target: nil, placement: .user) == [LabMessage(role: "user", content: "q?")])
    }

    @Test func badLinesAndCountsAreErrorsNotTraps() {
        let good = Fixture.corpus?.heldout.first?.jsonLine() ?? ""
        for line in ["", "{}", "[1]", good.replacingOccurrences(of: "\"topic\": \"", with: "\"topic\": \"x"),
                     good.replacingOccurrences(of: "\"kind\": \"", with: "\"kind\": \"x"),
                     good.replacingOccurrences(of: "\"role\": \"user\"", with: "\"role\": \"usr\"")] {
            #expect(throws: (any Error).self) { try LabExample(jsonLine: line) }
        }
        #expect(throws: (any Error).self) { try LabCorpus(seed: 1, trainCount: -1, heldoutCount: 1) }
        #expect(throws: (any Error).self) { try LabCorpus(seed: 1, trainCount: 1, heldoutCount: 1_000_000) }
    }

    @Test func writesTheThreeFilesAndFailsInOneLine() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tiller-lab-test-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let corpus = try LabCorpus(seed: 3, trainCount: 20, heldoutCount: 8)
        let files = try corpus.write(to: dir)
        let train = try String(contentsOfFile: dir + "/train.jsonl", encoding: .utf8)
        #expect(train == corpus.trainJSONL && files.trainBytes == train.utf8.count)
        #expect(train.split(separator: "\n").count == 20)
        let world = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/world.json")))
        #expect((world as? [String: Any])?["seed"] as? Int == 3)
        do {
            _ = try corpus.write(to: dir + "/train.jsonl/sub")
            Issue.record("writing under a file succeeded")
        } catch {
            #expect(!String(describing: error).contains("\n"))
        }
    }
}
