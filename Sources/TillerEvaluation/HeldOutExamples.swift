import Foundation
import TillerCore
import TillerLab

/// Where the held-out examples of an evaluation come from, and how a subset is picked.
public enum HeldOutExamples {
    /// The seed of the corpus a model was trained on when its card does not say.
    public static let defaultSeed: UInt64 = 1

    /// The held-out split of the corpus for `seed`, generated in memory. Always the default split size,
    /// whatever is asked for later: the kinds are shuffled over the whole split, so its size decides
    /// which examples come first, and this keeps them the lines of the default heldout.jsonl.
    public static func corpus(seed: UInt64) throws -> [LabExample] {
        try LabCorpus(seed: seed, trainCount: 0, heldoutCount: LabCorpus.defaultHeldOutCount).heldout
    }

    /// The examples of a corpus file (heldout.jsonl or any corpus JSON Lines file); blank lines are
    /// skipped. Throws one line naming the file and the line that does not parse.
    /// Read line by line: a line longer than `maxLineBytes` is refused as soon as it is seen.
    public static func file(_ path: String, maxLineBytes: Int = JSONLinesReader.defaultMaxLineBytes) throws -> [LabExample] {
        var examples: [LabExample] = []
        try JSONLinesReader.forEachLine(path: path, maxLineBytes: maxLineBytes) { number, bytes in
            guard let line = String(data: bytes, encoding: .utf8) else {
                throw TillerError.io(path: "\(path):\(number)", detail: "not valid UTF-8")
            }
            if line.allSatisfy(\.isWhitespace) { return }
            do {
                examples.append(try LabExample(jsonLine: line))
            } catch let TillerError.invalidArgument(_, detail) {
                throw TillerError.io(path: "\(path):\(number)", detail: detail)
            }
        }
        return examples
    }

    /// The first `limit` examples of `kind`, in the given order: the same list every time.
    public static func select(_ examples: [LabExample], kind: LabKind, limit: Int) -> [LabExample] {
        Array(examples.lazy.filter { $0.kind == kind }.prefix(max(limit, 0)))
    }

    /// The first `limit` examples whose target `target` matches (all of its kind when nil), in the
    /// given order. A steering file made for one target is evaluated on that target's examples.
    public static func select(_ examples: [LabExample], kind: LabKind, target: LabTargetFilter?, limit: Int) -> [LabExample] {
        guard let target else { return select(examples, kind: kind, limit: limit) }
        return Array(examples.lazy.filter { $0.kind == kind && target.matches($0.target) }.prefix(max(limit, 0)))
    }

    /// The corpus seed recorded in a model card (README.md's "- corpus seed: N" line, written by
    /// scripts/lab/train_lab_model.py), or nil when the card is missing or does not say.
    public static func cardSeed(modelDirectory: String) -> UInt64? {
        let card = (modelDirectory as NSString).appendingPathComponent("README.md")
        guard let text = try? String(contentsOfFile: card, encoding: .utf8) else { return nil }
        let marker = "corpus seed:"
        for line in text.split(separator: "\n") {
            guard let range = line.range(of: marker) else { continue }
            let digits = line[range.upperBound...].drop(while: { $0 == " " }).prefix(while: \.isNumber)
            if let seed = UInt64(digits) { return seed }
        }
        return nil
    }
}

/// One steering target, or a family of them, named on the command line (`--target`): a concept's
/// topic name ("pottery"), a trait's name ("gloomy"), a format type ("capitals", "no_commas",
/// "end_with", "sentences", "quotes": any phrase or count) or one format as the reports spell it
/// ("end_with(thank you kindly)", "sentences(2)").
public struct LabTargetFilter: Sendable, Hashable, CustomStringConvertible {
    public let kind: LabKind
    /// The name as given.
    public let name: String
    private let exact: LabTarget?
    private let formatKind: LabFormat.Kind?

    /// Parses `name` as a target of `kind`; throws one line listing the names that kind accepts.
    public init(kind: LabKind, name: String) throws {
        let trimmed = name.trimmingCharacters(in: .whitespaces)
        self.kind = kind
        self.name = trimmed
        var exact: LabTarget?
        var formatKind: LabFormat.Kind?
        switch kind {
        case .concept:
            exact = Lexicon.topic(named: trimmed).map { LabTarget.concept($0) }
        case .persona:
            exact = Lexicon.trait(named: trimmed).map { LabTarget.persona($0) }
        case .format:
            if let type = LabFormat.Kind(rawValue: trimmed) {
                formatKind = type
            } else {
                exact = LabFormat.all.first { $0.description == trimmed }.map { LabTarget.format($0) }
            }
        case .none:
            break
        }
        guard exact != nil || formatKind != nil else {
            throw TillerError.invalidArgument(op: "--target", detail: "\"\(trimmed)\" is not a \(kind.rawValue) target; "
                                              + "\(kind.rawValue) targets: \(LabTargetFilter.names(kind).joined(separator: ", "))")
        }
        self.exact = exact
        self.formatKind = formatKind
    }

    /// A filter for exactly one target.
    public init(_ target: LabTarget) {
        kind = target.kind
        exact = target
        formatKind = nil
        switch target {
        case .concept(let topic): name = topic.name
        case .persona(let trait): name = trait.name
        case .format(let format): name = format.description
        }
    }

    public func matches(_ target: LabTarget?) -> Bool {
        guard let target, target.kind == kind else { return false }
        if let exact { return target == exact }
        if let formatKind, case .format(let format) = target { return format.kind == formatKind }
        return false
    }

    /// The one target it names, when it names one (a format type names several).
    public var target: LabTarget? { exact }

    public var description: String { name }

    /// The names `--target` accepts for a kind.
    public static func names(_ kind: LabKind) -> [String] {
        switch kind {
        case .concept: return Lexicon.topics.map(\.name)
        case .persona: return Lexicon.traits.map(\.name)
        case .format: return LabFormat.Kind.allCases.map(\.rawValue) + LabFormat.all.filter { $0.description != $0.kind.rawValue }.map(\.description)
        case .none: return []
        }
    }
}
