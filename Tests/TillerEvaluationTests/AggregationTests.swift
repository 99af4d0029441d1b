import Foundation
import Testing
@testable import TillerLab
import TillerModels
@testable import TillerEvaluation

/// The means `tiller lab eval` reports, on scores made by hand.
@Suite struct AggregationTests {
    static let ocean = Lexicon.topic(named: "ocean")!
    static let space = Lexicon.topic(named: "space")!

    static func example(_ id: String, _ placement: LabPlacement, target: LabTarget = .concept(space)) -> LabExample {
        LabExample(id: id, placement: placement, topic: ocean, questionTemplate: QuestionTemplate.trainTemplates[0],
                   question: "tell me about the wave.", questionNoun: "wave", target: target,
                   answer: "", unsteeredAnswer: "")
    }

    static func row(_ id: String, _ placement: LabPlacement, _ scores: LabScores) -> LabEvaluationRow {
        let example = example(id, placement)
        return LabEvaluationRow(example: example, messages: example.promptMessages(steered: true), answer: "",
                                stopReason: .eos, scores: scores)
    }

    static func concept(_ c: Int, _ i: Int, _ f: Int, _ a: Double) -> LabScores {
        .concept(ConceptScores(concept: c, instruction: i, fluency: f, aggregate: a))
    }

    @Test func meansOfEveryMetricInTheJudgesOrder() {
        let means = LabMetricMeans([
            [LabMetric(name: "trait", value: 100), LabMetric(name: "coherence", value: 50)],
            [LabMetric(name: "trait", value: 0), LabMetric(name: "coherence", value: 100)],
            [LabMetric(name: "trait", value: 50), LabMetric(name: "coherence", value: 0)],
        ])
        #expect(means.count == 3)
        #expect(means.means.map(\.name) == ["trait", "coherence"])
        #expect(means["trait"] == 50)
        #expect(means["coherence"] == 50)
        #expect(means["pass"] == nil)
    }

    @Test func noRowsHaveNoMeans() {
        let means = LabMetricMeans([])
        #expect(means.count == 0 && means.means.isEmpty)
    }

    /// A metric some rows lack is averaged over the rows that have it.
    @Test func mixedRowsAverageWhatTheyHave() {
        let means = LabMetricMeans([[LabMetric(name: "pass", value: 1)], [LabMetric(name: "pass", value: 0), LabMetric(name: "x", value: 3)]])
        #expect(means["pass"] == 0.5)
        #expect(means["x"] == 3)
        #expect(means.means.map(\.name) == ["pass", "x"])
    }

    @Test func overallAndPerPlacement() {
        let rows = [
            Self.row("a", .system, Self.concept(2, 2, 2, 2)),
            Self.row("b", .user, Self.concept(0, 2, 2, 0)),
            Self.row("c", .system, Self.concept(1, 2, 1, 1.2)),
            Self.row("d", .user, Self.concept(2, 1, 2, 1.5)),
        ]
        let report = LabEvaluationReport(kind: .concept, steer: .prompt, rows: rows, generation: GenerationProgress())
        #expect(report.overall.count == 4)
        #expect(report.overall.means.map(\.name) == ["concept", "instruction", "fluency", "aggregate"])
        #expect(report.overall["concept"] == 1.25)
        #expect(report.overall["instruction"] == 1.75)
        #expect(report.overall["fluency"] == 1.75)
        #expect(abs(report.overall["aggregate"]! - 1.175) < 1e-12)
        #expect(report.byPlacement.map(\.placement) == [.system, .user])
        let system = report.byPlacement[0].means, user = report.byPlacement[1].means
        #expect(system.count == 2 && user.count == 2)
        #expect(system["concept"] == 1.5 && user["concept"] == 1)
        #expect(abs(system["aggregate"]! - 1.6) < 1e-12 && user["aggregate"] == 0.75)
    }

    /// Format passes count as 1 and 0, so their mean is the pass rate; a placement with no rows is left out.
    @Test func passRateAndMissingPlacement() {
        let rows = [true, false, true, true].enumerated().map { i, pass in
            Self.row("f\(i)", .user, .format(FormatScores(pass: pass, coherence: 100)))
        }
        let report = LabEvaluationReport(kind: .format, steer: .none, rows: rows, generation: GenerationProgress())
        #expect(report.overall["pass"] == 0.75)
        #expect(report.overall["coherence"] == 100)
        #expect(report.byPlacement.map(\.placement) == [.user])
        #expect(report.table().contains("user (4)"))
        #expect(!report.table().contains("system"))
    }

    @Test func jsonCarriesTheMeans() throws {
        let rows = [Self.row("a", .system, Self.concept(2, 2, 2, 2)), Self.row("b", .user, Self.concept(0, 2, 2, 0))]
        let report = LabEvaluationReport(kind: .concept, steer: .prompt, rows: rows, generation: GenerationProgress())
        let text = try report.json(extra: ["model": "m"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(object["kind"] as? String == "concept")
        #expect(object["steer"] as? String == "prompt")
        #expect(object["count"] as? Int == 2)
        #expect(object["model"] as? String == "m")
        #expect((object["metrics"] as? [String: Double])?["concept"] == 1)
        let system = (object["by_placement"] as? [String: Any])?["system"] as? [String: Any]
        #expect((system?["metrics"] as? [String: Double])?["aggregate"] == 2)
        #expect((object["examples"] as? [[String: Any]])?.map { $0["id"] as? String } == ["a", "b"])
    }

    @Test func scoreLines() {
        #expect(LabEvaluationReport.scoreLine(Self.concept(2, 1, 0, 0).metrics.map { LabMetric(name: $0.name, value: $0.value) })
                == "concept 2, instruction 1, fluency 0, aggregate 0.00")
        #expect(LabEvaluationReport.scoreLine([LabMetric(name: "pass", value: 1), LabMetric(name: "coherence", value: 200.0 / 3)])
                == "pass yes, coherence 66.7")
    }
}
