import TillerCore

/// Which combinations are held out of training, drawn from the seed: 20% of the (topic, concept)
/// ordered pairs, 20% of the (trait, topic) pairs, and the question templates q8 and q9.
public struct LabSplits: Sendable, Hashable {
    public struct ConceptPair: Sendable, Hashable { public let topic: LabTopic; public let concept: LabTopic }
    public struct PersonaPair: Sendable, Hashable { public let trait: LabTrait; public let topic: LabTopic }

    /// In lexicon order (not draw order), so world.json reads well.
    public let heldOutConceptPairs: [ConceptPair]
    public let heldOutPersonaPairs: [PersonaPair]
    public let trainConceptPairs: [ConceptPair]
    public let trainPersonaPairs: [PersonaPair]
    public var heldOutQuestionTemplates: [QuestionTemplate] { QuestionTemplate.heldOutTemplates }

    public static let heldOutShare = 0.2

    public static var allConceptPairs: [ConceptPair] {
        Lexicon.topics.flatMap { topic in
            Lexicon.topics.filter { $0 != topic }.map { ConceptPair(topic: topic, concept: $0) }
        }
    }

    public static var allPersonaPairs: [PersonaPair] {
        Lexicon.traits.flatMap { trait in Lexicon.topics.map { PersonaPair(trait: trait, topic: $0) } }
    }

    public init(seed: UInt64) {
        var rng = SplitMix64.stream(seed: seed, purpose: 1)
        let concept = LabSplits.draw(LabSplits.allConceptPairs, rng: &rng) { train in
            // Every topic must still be asked about, and every concept still be steered to, in training.
            Set(train.map(\.topic)).count == Lexicon.topics.count && Set(train.map(\.concept)).count == Lexicon.topics.count
        }
        let persona = LabSplits.draw(LabSplits.allPersonaPairs, rng: &rng) { train in
            Set(train.map(\.trait)).count == Lexicon.traits.count && Set(train.map(\.topic)).count == Lexicon.topics.count
        }
        heldOutConceptPairs = concept.heldOut
        trainConceptPairs = concept.train
        heldOutPersonaPairs = persona.heldOut
        trainPersonaPairs = persona.train
    }

    public func isHeldOut(topic: LabTopic, concept: LabTopic) -> Bool {
        heldOutConceptPairs.contains(ConceptPair(topic: topic, concept: concept))
    }

    public func isHeldOut(trait: LabTrait, topic: LabTopic) -> Bool {
        heldOutPersonaPairs.contains(PersonaPair(trait: trait, topic: topic))
    }

    /// Holds out round(20%) of `all`, redrawing until `coversAll(train)` (with 20% held out this
    /// practically always holds at once; the bound keeps it total).
    private static func draw<P: Hashable>(_ all: [P], rng: inout SplitMix64,
                                          coversAll: ([P]) -> Bool) -> (heldOut: [P], train: [P]) {
        let count = Int((Double(all.count) * heldOutShare).rounded())
        var held = Set<P>()
        for _ in 0..<100 {
            held = Set(rng.shuffled(all).prefix(count))
            if coversAll(all.filter { !held.contains($0) }) { break }
        }
        return (all.filter { held.contains($0) }, all.filter { !held.contains($0) })
    }
}
