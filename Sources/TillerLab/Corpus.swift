import Foundation
import TillerCore

/// The lab corpus for a seed: the held-out splits, the train and held-out examples, and the files
/// the trainer reads (train.jsonl, heldout.jsonl, world.json). Byte-for-byte the same for a seed.
public struct LabCorpus: Sendable {
    public static let defaultTrainCount = 40_000
    public static let defaultHeldOutCount = 2_000
    /// Ids have six digits ("train-000001").
    public static let maximumCount = 999_999

    public enum Split: String, Sendable { case train, heldout }

    public let seed: UInt64
    public let splits: LabSplits
    public let train: [LabExample]
    public let heldout: [LabExample]

    /// Throws when a count is negative or above `maximumCount`.
    public init(seed: UInt64, trainCount: Int = defaultTrainCount, heldoutCount: Int = defaultHeldOutCount) throws {
        for (name, count) in [("train", trainCount), ("heldout", heldoutCount)] where !(0...LabCorpus.maximumCount).contains(count) {
            throw TillerError.invalidArgument(op: "lab corpus", detail: "--\(name) must be in 0...\(LabCorpus.maximumCount), got \(count)")
        }
        self.seed = seed
        splits = LabSplits(seed: seed)
        train = LabCorpus.examples(.train, count: trainCount, seed: seed, splits: splits)
        heldout = LabCorpus.examples(.heldout, count: heldoutCount, seed: seed, splits: splits)
    }

    /// The examples of one split. Each split has its own random stream, so the held-out examples do not
    /// depend on the train count. Kinds are exactly balanced (25% each, remainder to the first kinds).
    public static func examples(_ split: Split, count: Int, seed: UInt64, splits: LabSplits) -> [LabExample] {
        var rng = SplitMix64.stream(seed: seed, purpose: split == .train ? 2 : 3)
        let kinds = rng.shuffled((0..<max(count, 0)).map { LabKind.allCases[$0 % LabKind.allCases.count] })
        return kinds.enumerated().map { i, kind in
            example(id: "\(split.rawValue)-\(sixDigits(i + 1))", kind: kind, split: split, splits: splits, rng: &rng)
        }
    }

    /// Train examples use only train pairs and templates. Held-out concept and persona examples use a
    /// held-out pair with a train question template (only the pair is new); held-out none and format
    /// examples use a held-out question template (only the question form is new).
    static func example(id: String, kind: LabKind, split: LabCorpus.Split, splits: LabSplits,
                        rng: inout SplitMix64) -> LabExample {
        let heldOut = split == .heldout
        let trainTemplates = QuestionTemplate.trainTemplates
        let topic: LabTopic
        let target: LabTarget?
        let templates: [QuestionTemplate]
        switch kind {
        case .none:
            topic = rng.pick(Lexicon.topics)
            target = nil
            templates = heldOut ? QuestionTemplate.heldOutTemplates : trainTemplates
        case .concept:
            let pair = rng.pick(heldOut ? splits.heldOutConceptPairs : splits.trainConceptPairs)
            topic = pair.topic
            target = .concept(pair.concept)
            templates = trainTemplates
        case .persona:
            let pair = rng.pick(heldOut ? splits.heldOutPersonaPairs : splits.trainPersonaPairs)
            topic = pair.topic
            target = .persona(pair.trait)
            templates = trainTemplates
        case .format:
            topic = rng.pick(Lexicon.topics)
            target = .format(randomFormat(&rng))
            templates = heldOut ? QuestionTemplate.heldOutTemplates : trainTemplates
        }
        let template = rng.pick(templates)
        let noun = template.hasNoun ? rng.pick(topic.nouns) : nil
        let adjective = template.hasAdjective ? rng.pick(topic.adjectives) : nil
        let placement: LabPlacement = target == nil ? .none : (rng.coin() ? .system : .user)
        let question = template.render(topic: topic, noun: noun ?? "", adjective: adjective ?? "")
        let base = AnswerGenerator.unsteered(topic: topic, noun: noun, adjective: adjective, rng: &rng)
        let unsteered = AnswerGenerator.render(base)
        let answer = target.map {
            AnswerGenerator.steered(base: base, target: $0, topic: topic, noun: noun, adjective: adjective, rng: &rng)
        } ?? unsteered
        return LabExample(id: id, placement: placement, topic: topic, questionTemplate: template, question: question,
                          questionNoun: noun, target: target, answer: answer, unsteeredAnswer: unsteered)
    }

    /// Format types uniform; then a phrase or a sentence count uniform within the type.
    static func randomFormat(_ rng: inout SplitMix64) -> LabFormat {
        switch rng.pick(LabFormat.Kind.allCases) {
        case .capitals: return .capitals
        case .noCommas: return .noCommas
        case .endWith: return .endWith(rng.pick(Lexicon.closingPhrases))
        case .sentences: return .sentences(rng.pick(LabFormat.sentenceCounts))
        case .quotes: return .quotes
        }
    }

    static func sixDigits(_ n: Int) -> String {
        let digits = String(n)
        return String(repeating: "0", count: max(0, 6 - digits.count)) + digits
    }

    // MARK: - Files

    public var trainJSONL: String { LabCorpus.jsonl(train) }
    public var heldoutJSONL: String { LabCorpus.jsonl(heldout) }

    static func jsonl(_ examples: [LabExample]) -> String {
        var text = ""
        for example in examples {
            text += example.jsonLine()
            text += "\n"
        }
        return text
    }

    /// What `write` produced.
    public struct Files: Sendable {
        public let directory: String
        public let trainBytes: Int
        public let heldoutBytes: Int
        public let worldBytes: Int
    }

    /// Writes train.jsonl, heldout.jsonl and world.json into `directory` (created if missing); throws a
    /// one-line `TillerError.io` when it cannot.
    public func write(to directory: String) throws -> Files {
        let url = URL(fileURLWithPath: directory, isDirectory: true)
        do {
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        } catch {
            throw TillerError.io(path: directory, detail: "cannot create the output directory (\(ErrorReason.file(error, path: directory)))")
        }
        var bytes: [Int] = []
        for (name, text) in [("train.jsonl", trainJSONL), ("heldout.jsonl", heldoutJSONL), ("world.json", worldJSON)] {
            let data = Data(text.utf8)
            let file = url.appendingPathComponent(name)
            try OutputFile.write(data, to: file.path)
            bytes.append(data.count)
        }
        return Files(directory: directory, trainBytes: bytes[0], heldoutBytes: bytes[1], worldBytes: bytes[2])
    }
}
