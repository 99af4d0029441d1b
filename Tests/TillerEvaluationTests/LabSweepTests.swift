import Foundation
import Testing
import TillerCore
@testable import TillerLab
@testable import TillerEvaluation

/// The factor sweep's choice (AxBench: choose on one half, score the other) on scores made by hand,
/// and the target filter that keeps a steering file's examples.
@Suite struct LabSweepTests {
    static func concept(_ c: Int, _ i: Int, _ f: Int) -> LabScores {
        let values = [c, i, f].map(Double.init)
        let aggregate = values.contains(0) ? 0 : 3 / values.map { 1 / $0 }.reduce(0, +)
        return .concept(ConceptScores(concept: c, instruction: i, fluency: f, aggregate: aggregate))
    }

    static func persona(_ trait: Double, _ coherence: Double) -> LabScores {
        .persona(PersonaScores(trait: trait, coherence: coherence))
    }

    static func format(_ pass: Bool, _ coherence: Double) -> LabScores {
        .format(FormatScores(pass: pass, coherence: coherence))
    }

    @Test func axBenchFactors() throws {
        #expect(LabSweep.axBenchFactors == [0.2, 0.4, 0.6, 0.8, 1, 1.2, 1.4, 1.6, 1.8, 2, 2.5, 3, 4, 5])
        #expect(try LabSweep.parseFactors("axbench") == LabSweep.axBenchFactors)
        #expect(try LabSweep.parseFactors(" 2, 0.5 ,1") == [0.5, 1, 2])
        for bad in ["", "1,,2", "0", "-1", "1,1", "x", "inf"] {
            #expect(throws: TillerError.self, "\(bad)") { try LabSweep.parseFactors(bad) }
        }
    }

    @Test func halvesChooseOnTheFirstAndScoreTheRest() {
        #expect(LabSweep.halves(12) == (0..<6, 6..<12))
        #expect(LabSweep.halves(13) == (0..<6, 6..<13))
        #expect(LabSweep.halves(2) == (0..<1, 1..<2))
        #expect(LabSweep.halves(1) == (0..<0, 0..<1))
    }

    @Test func chooseTakesTheBestScoreAndTheSmallestFactorOnATie() {
        #expect(LabSweep.choose(factors: [0.5, 1, 2], scores: [0.1, 0.9, 0.3]) == 1)
        #expect(LabSweep.choose(factors: [0.5, 1, 2], scores: [0.4, 0.4, 0.4]) == 0)
        // Unsorted factors: the tie still goes to the smallest factor, not the first listed.
        #expect(LabSweep.choose(factors: [4, 1, 2], scores: [0.7, 0.7, 0.2]) == 1)
        #expect(LabSweep.choose(factors: [3], scores: [0]) == 0)
    }

    @Test func headlinePerKind() {
        // concept: the mean of each answer's harmonic mean (AxBench), not of the parts.
        #expect(LabHeadline.score(kind: .concept, scores: [Self.concept(2, 2, 2), Self.concept(0, 2, 2)]) == 1)
        #expect(abs(LabHeadline.score(kind: .concept, scores: [Self.concept(1, 2, 2)]) - 1.5) < 1e-12)
        // persona: the harmonic mean of the mean trait and the mean coherence, on 0-1.
        let persona = LabHeadline.score(kind: .persona, scores: [Self.persona(100, 50), Self.persona(0, 100)])
        #expect(abs(persona - 2 * 0.5 * 0.75 / 1.25) < 1e-12)
        #expect(LabHeadline.score(kind: .persona, scores: [Self.persona(0, 100)]) == 0)
        // format: pass rate times mean coherence / 100.
        let format = LabHeadline.score(kind: .format, scores: [Self.format(true, 100), Self.format(false, 50)])
        #expect(abs(format - 0.5 * 0.75) < 1e-12)
    }

    /// The selection half's answers per factor decide; what each factor would score elsewhere does
    /// not enter (the caller scores the other half at the chosen factor only).
    @Test func selectOnHandMadeSelectionScores() {
        let factors = [0.2, 1, 2.5, 5]
        // Concept: strength helps up to 2.5, then fluency breaks down.
        let concept: [[LabScores]] = [
            [Self.concept(0, 2, 2), Self.concept(0, 2, 2)],
            [Self.concept(1, 2, 2), Self.concept(0, 2, 2)],
            [Self.concept(2, 2, 2), Self.concept(1, 2, 2)],
            [Self.concept(2, 2, 0), Self.concept(2, 1, 1)],
        ]
        let chosen = LabSweep.select(kind: .concept, factors: factors, scores: concept)
        #expect(chosen.index == 2)
        #expect(chosen.headlines.count == 4)
        #expect(chosen.headlines[0] == 0 && chosen.headlines[3] < chosen.headlines[2])
        // Persona: all trait and no coherence loses to a balance of both.
        let persona: [[LabScores]] = [
            [Self.persona(0, 100)], [Self.persona(60, 90)], [Self.persona(100, 40)], [Self.persona(100, 0)],
        ]
        #expect(LabSweep.select(kind: .persona, factors: factors, scores: persona).index == 1)
        // Format: passing with broken sentences loses to passing with fewer broken ones; ties go low.
        let format: [[LabScores]] = [
            [Self.format(false, 100), Self.format(false, 100)],
            [Self.format(true, 100), Self.format(false, 100)],
            [Self.format(true, 100), Self.format(false, 100)],
            [Self.format(true, 20), Self.format(true, 20)],
        ]
        #expect(LabSweep.select(kind: .format, factors: factors, scores: format).index == 1)
    }

    // MARK: targets

    static let heldout: [LabExample] = (try? HeldOutExamples.corpus(seed: 1)) ?? []

    @Test func targetNamesParse() throws {
        let pottery = try LabTargetFilter(kind: .concept, name: "pottery")
        #expect(pottery.target == .concept(Lexicon.topic(named: "pottery")!))
        #expect(try LabTargetFilter(kind: .persona, name: "gloomy").target == .persona(Lexicon.trait(named: "gloomy")!))
        #expect(try LabTargetFilter(kind: .format, name: "end_with(the end)").target == .format(.endWith("the end")))
        #expect(try LabTargetFilter(kind: .format, name: "sentences(2)").target == .format(.sentences(2)))
        // A format type names every format of the type.
        let endWith = try LabTargetFilter(kind: .format, name: "end_with")
        #expect(endWith.target == nil)
        #expect(endWith.matches(.format(.endWith("see you soon"))) && !endWith.matches(.format(.capitals)))
        // A name of another kind, or none, is one line listing what the kind takes.
        for (kind, name) in [(LabKind.concept, "gloomy"), (.persona, "pottery"), (.format, "end_with(goodbye)"), (.concept, "")] {
            do {
                _ = try LabTargetFilter(kind: kind, name: name)
                Issue.record("\(kind) \(name) accepted")
            } catch {
                let text = "\(error)"
                #expect(!text.contains("\n") && text.contains("\(kind.rawValue) targets:"), "\(text)")
            }
        }
        #expect(try LabComparison.target(named: "cheerful").kind == .persona)
        #expect(try LabComparison.target(named: "capitals").kind == .format)
        #expect(throws: TillerError.self) { try LabComparison.target(named: "nothing") }
    }

    @Test(arguments: [("concept", "pottery"), ("persona", "gloomy"), ("format", "capitals"),
                      ("format", "end_with(thank you kindly)"), ("format", "end_with")])
    func selectKeepsOnlyTheTargetInOrder(kind: String, name: String) throws {
        let kind = LabKind(rawValue: kind)!
        let filter = try LabTargetFilter(kind: kind, name: name)
        let all = Self.heldout.filter { $0.kind == kind && filter.matches($0.target) }
        #expect(all.count >= 12)
        let chosen = HeldOutExamples.select(Self.heldout, kind: kind, target: filter, limit: 12)
        #expect(chosen == Array(all.prefix(12)))
        #expect(chosen.allSatisfy { filter.matches($0.target) })
        // Without a target: the first of the kind, as before.
        #expect(HeldOutExamples.select(Self.heldout, kind: kind, target: nil, limit: 12) == HeldOutExamples.select(Self.heldout, kind: kind, limit: 12))
        // Another kind's filter keeps nothing.
        let other: LabKind = kind == .concept ? .persona : .concept
        #expect(HeldOutExamples.select(Self.heldout, kind: other, target: filter, limit: 12).isEmpty)
    }

    @Test func theDefaultComparisonTargetsHaveExamplesAndTrainTriplets() {
        let targets = LabComparison.defaultTargets()
        #expect(targets.map(\.kind) == [.concept, .concept, .persona, .persona, .format, .format])
        for target in targets {
            #expect(HeldOutExamples.select(Self.heldout, kind: target.kind, target: target, limit: 40).count >= 20, "\(target)")
        }
        let train = LabComparison.trainSplit(seed: 1, targets: targets, count: LabComparison.defaultTrainTriplets)
        #expect(train.allSatisfy { $0.id.hasPrefix("train-") })
        for target in targets {
            #expect(train.filter { target.matches($0.target) }.count >= LabComparison.defaultTrainTriplets, "\(target)")
        }
    }
}
