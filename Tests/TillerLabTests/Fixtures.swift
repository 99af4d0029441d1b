@testable import TillerLab

/// One corpus shared by the tests (generation takes a moment in a debug build). Smaller than the
/// default so the suite stays quick; the split rules do not depend on the counts.
enum Fixture {
    static let corpus: LabCorpus? = try? LabCorpus(seed: 1, trainCount: 8_000, heldoutCount: 1_000)
    static var examples: [LabExample] { (corpus?.train ?? []) + (corpus?.heldout ?? []) }

    static let ocean = Lexicon.topic(named: "ocean")!
    static let space = Lexicon.topic(named: "space")!
    static let gloomy = Lexicon.trait(named: "gloomy")!
    static let cheerful = Lexicon.trait(named: "cheerful")!
}
