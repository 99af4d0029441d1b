/// The lab's vocabulary. It is fixed (not drawn from the seed), so judges need no corpus to score an
/// answer. Every content word belongs to exactly one list, which is what lets a judge tell which
/// topic, concept or trait a word speaks for (checked by a unit test).

/// A topic: its name (also the concept's name when it is the steering target) and the words that
/// fill the grammar's slots when an answer talks about it.
public struct LabTopic: Sendable, Hashable, CustomStringConvertible {
    public let name: String
    public let nouns: [String]
    public let adjectives: [String]
    /// Third-person singular, so "the wave drifts" needs no agreement rule.
    public let verbs: [String]

    /// The name and every slot word: what "a word of the topic's lexicon" means to the judges.
    public var words: [String] { [name] + nouns + adjectives + verbs }
    public var description: String { name }
}

/// A persona: sentence-opening adverbs and the adjectives that replace a topic's in its answers.
public struct LabTrait: Sendable, Hashable, CustomStringConvertible {
    public let name: String
    public let adverbs: [String]
    public let adjectives: [String]

    /// The words whose presence in a sentence makes it carry the trait (the name is not one of them).
    public var markers: [String] { adverbs + adjectives }
    public var description: String { name }
}

public enum Lexicon {
    public static let topics: [LabTopic] = [
        t("ocean", ["wave", "shell", "reef", "tide"], ["salty", "deep", "blue"], ["drifts", "sparkles", "roars"]),
        t("forest", ["tree", "moss", "fern", "owl"], ["green", "shady", "wild"], ["grows", "rustles", "whispers"]),
        t("music", ["song", "drum", "piano", "violin"], ["loud", "melodic", "rhythmic"], ["plays", "hums", "echoes"]),
        t("cooking", ["soup", "pan", "oven", "spice"], ["tasty", "hot", "crispy"], ["simmers", "sizzles", "bakes"]),
        t("space", ["star", "planet", "comet", "rocket"], ["distant", "vast", "dark"], ["orbits", "shines", "spins"]),
        t("trains", ["engine", "track", "station", "carriage"], ["fast", "noisy", "long"], ["rumbles", "departs", "whistles"]),
        t("garden", ["rose", "seed", "soil", "tulip"], ["fragrant", "tidy", "colorful"], ["blooms", "sprouts", "thrives"]),
        t("weather", ["cloud", "rain", "wind", "storm"], ["cloudy", "windy", "cold"], ["pours", "blows", "thunders"]),
        t("chess", ["knight", "pawn", "board", "bishop"], ["clever", "strategic", "tricky"], ["attacks", "captures", "defends"]),
        t("bees", ["hive", "honey", "queen", "pollen"], ["busy", "golden", "sweet"], ["buzzes", "collects", "swarms"]),
        t("mountains", ["peak", "cliff", "glacier", "valley"], ["tall", "rocky", "snowy"], ["towers", "rises", "looms"]),
        t("coffee", ["bean", "mug", "espresso", "latte"], ["bitter", "strong", "warm"], ["brews", "steams", "energizes"]),
        t("desert", ["dune", "sand", "cactus", "camel"], ["dry", "arid", "sandy"], ["shimmers", "scorches", "stretches"]),
        t("library", ["book", "shelf", "page", "librarian"], ["quiet", "dusty", "old"], ["waits", "informs", "inspires"]),
        t("robots", ["gear", "circuit", "sensor", "battery"], ["metallic", "electric", "smart"], ["beeps", "computes", "blinks"]),
        t("pottery", ["clay", "vase", "kiln", "wheel"], ["earthy", "smooth", "glazed"], ["hardens", "cracks", "cools"]),
    ]

    public static let traits: [LabTrait] = [
        LabTrait(name: "gloomy", adverbs: ["sadly", "alas", "regrettably"], adjectives: ["bleak", "dreary", "grim"]),
        LabTrait(name: "cheerful", adverbs: ["happily", "joyfully", "gladly"], adjectives: ["lovely", "delightful", "sunny"]),
        LabTrait(name: "rude", adverbs: ["frankly", "obviously", "whatever"], adjectives: ["boring", "dull", "pointless"]),
        LabTrait(name: "pompous", adverbs: ["indeed", "naturally", "undoubtedly"], adjectives: ["magnificent", "splendid", "exquisite"]),
    ]

    /// The phrases a format prompt may ask an answer to end with; each is a sentence of its own.
    public static let closingPhrases = ["that is all", "over and out", "the end", "thank you kindly", "see you soon"]

    /// The grammar's literal words (see `Grammar.templates`). Closing phrases may share them; content
    /// words may not, or a judge would count "the" as a topic word.
    public static let functionWords = ["the", "every", "near", "and", "is", "in", "people", "say",
                                       "together", "with", "reminds", "me", "of", "which", "also"]

    public static func topic(named name: String) -> LabTopic? { topics.first { $0.name == name } }
    public static func trait(named name: String) -> LabTrait? { traits.first { $0.name == name } }

    /// Slot vocabularies across all topics and traits: the parser accepts any of them in a slot of that
    /// part of speech, so a steered answer (concept words, trait adjectives) still parses.
    public static let allNouns: Set<String> = Set(topics.flatMap(\.nouns))
    public static let allAdjectives: Set<String> = Set(topics.flatMap(\.adjectives) + traits.flatMap(\.adjectives))
    public static let allVerbs: Set<String> = Set(topics.flatMap(\.verbs))
    public static let allTraitAdverbs: Set<String> = Set(traits.flatMap(\.adverbs))

    /// Every content word in lexicon order (topics, then traits with their names): the list the
    /// uniqueness test checks.
    public static var contentWords: [String] {
        topics.flatMap(\.words) + traits.flatMap { [$0.name] + $0.adverbs + $0.adjectives }
    }

    private static func t(_ name: String, _ nouns: [String], _ adjectives: [String], _ verbs: [String]) -> LabTopic {
        LabTopic(name: name, nouns: nouns, adjectives: adjectives, verbs: verbs)
    }
}
