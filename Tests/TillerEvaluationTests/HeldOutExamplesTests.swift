import Foundation
import Testing
import TillerCore
import TillerLab
@testable import TillerEvaluation

/// Which examples an evaluation runs: the same ones every time, from memory or from heldout.jsonl.
@Suite struct HeldOutExamplesTests {
    static let heldout: [LabExample] = (try? HeldOutExamples.corpus(seed: 1)) ?? []

    static func temporaryFile(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tiller-heldout-\(UUID().uuidString).jsonl").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func theDefaultSplitOfTheSeed() throws {
        #expect(Self.heldout.count == LabCorpus.defaultHeldOutCount)
        #expect(Self.heldout.allSatisfy { $0.id.hasPrefix("heldout-") })
        #expect(try HeldOutExamples.corpus(seed: 1).map(\.id) == Self.heldout.map(\.id))
        #expect(try HeldOutExamples.corpus(seed: 2).map(\.question) != Self.heldout.map(\.question))
    }

    @Test(arguments: [LabKind.concept, .persona, .format])
    func selectTakesTheFirstOfTheKindInOrder(kind: LabKind) throws {
        let chosen = HeldOutExamples.select(Self.heldout, kind: kind, limit: 12)
        #expect(chosen.count == 12)
        #expect(chosen.allSatisfy { $0.kind == kind })
        #expect(chosen == Array(Self.heldout.filter { $0.kind == kind }.prefix(12)))
        #expect(chosen == HeldOutExamples.select(try HeldOutExamples.corpus(seed: 1), kind: kind, limit: 12))
        // A smaller limit is a prefix of a larger one, so results at different limits compare.
        #expect(HeldOutExamples.select(Self.heldout, kind: kind, limit: 5) == Array(chosen.prefix(5)))
        // Both placements occur among the first few.
        #expect(Set(chosen.map(\.placement)) == [.system, .user])
    }

    @Test func selectStopsAtWhatThereIs() {
        let few = Array(Self.heldout.prefix(8))
        let kind = few[0].kind
        #expect(HeldOutExamples.select(few, kind: kind, limit: 100).count == few.filter { $0.kind == kind }.count)
        #expect(HeldOutExamples.select(few, kind: kind, limit: 0).isEmpty)
    }

    /// heldout.jsonl as `tiller lab corpus` writes it gives the examples generated in memory.
    @Test func theFileGivesTheSameExamples() throws {
        let corpus = try LabCorpus(seed: 1, trainCount: 0, heldoutCount: 40)
        let path = try Self.temporaryFile(corpus.heldoutJSONL + "\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(try HeldOutExamples.file(path) == corpus.heldout)
    }

    @Test func aBadLineIsNamedWithItsFile() throws {
        let corpus = try LabCorpus(seed: 1, trainCount: 0, heldoutCount: 3)
        let lines = corpus.heldoutJSONL.split(separator: "\n").map(String.init)
        let path = try Self.temporaryFile([lines[0], "", lines[1], "{\"id\": \"x\"}", lines[2]].joined(separator: "\n"))
        defer { try? FileManager.default.removeItem(atPath: path) }
        do {
            _ = try HeldOutExamples.file(path)
            Issue.record("a bad line was accepted")
        } catch {
            let text = String(describing: error)
            #expect(text.hasPrefix("\(path):4: "), "\(text)")
            #expect(!text.contains("\n"))
        }
        #expect(throws: TillerError.io(path: "/nonexistent/heldout.jsonl", detail: "no such file")) {
            try HeldOutExamples.file("/nonexistent/heldout.jsonl")
        }
    }

    @Test func theModelCardNamesTheCorpusSeed() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tiller-card-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(HeldOutExamples.cardSeed(modelDirectory: dir) == nil)
        try "# tiller-lab\n\n## Corpus\n\n- command: `tiller lab corpus --seed 7 --out DIR`\n- corpus seed: 7\n"
            .write(toFile: dir + "/README.md", atomically: true, encoding: .utf8)
        #expect(HeldOutExamples.cardSeed(modelDirectory: dir) == 7)
        try "- corpus seed: unknown\n".write(toFile: dir + "/README.md", atomically: true, encoding: .utf8)
        #expect(HeldOutExamples.cardSeed(modelDirectory: dir) == nil)
    }

    /// The demo shows two questions per kind, one per placement.
    @Test func theDemoTourPicksTwoPerKind() {
        let tour = DemoTour.select(Self.heldout)
        #expect(tour.map(\.kind) == [.concept, .concept, .persona, .persona, .format, .format])
        #expect(tour.map(\.placement) == [.system, .user, .system, .user, .system, .user])
        #expect(tour[4].format?.kind != tour[5].format?.kind)
        #expect(DemoTour.select(Self.heldout).map(\.id) == tour.map(\.id))
    }
}
