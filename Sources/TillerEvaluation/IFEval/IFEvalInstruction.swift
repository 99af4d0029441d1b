import Foundation
import TillerCore

/// One IFEval instruction with its arguments, as IFEval's input lines name it
/// (`instruction_id_list` and the matching `kwargs` object), checked by a rule written here after
/// IFEval's own (google-research instruction_following_eval, instructions.py; docs/evaluation.md
/// lists every rule and where it differs).
public struct IFEvalInstruction: Sendable, Equatable {
    public let id: String
    public let check: IFEvalCheck
    /// The arguments that were given (null ones left out), echoed into the results.
    public let kwargs: [String: IFEvalArgument]

    /// The instructions Tiller checks: the single-instruction format subset of Stolfo et al. (and
    /// response language, which needs a language identifier and is reported as unavailable).
    public static let supportedIDs = [
        "detectable_format:number_highlighted_sections", "startend:end_checker", "punctuation:no_comma",
        "startend:quotation", "change_case:english_lowercase", "detectable_format:number_bullet_lists",
        "detectable_format:title", "change_case:english_capital", "detectable_format:constrained_response",
        "detectable_format:json_format", "change_case:capital_word_frequency", "detectable_format:multiple_sections",
        "language:response_language",
    ]

    /// IFEval's other instruction ids: valid in its input files, not checked by Tiller (a line
    /// that uses one is skipped with a note rather than refused).
    public static let otherIFEvalIDs: Set<String> = [
        "keywords:existence", "keywords:frequency", "keywords:forbidden_words", "keywords:letter_frequency",
        "length_constraints:number_sentences", "length_constraints:number_paragraphs", "length_constraints:number_words",
        "length_constraints:nth_paragraph_first_word", "detectable_content:number_placeholders",
        "detectable_content:postscript", "combination:two_responses", "combination:repeat_prompt",
    ]

    /// The relations IFEval compares counts with.
    public static let relations = ["less than", "at least"]

    /// Builds the instruction `id` from its kwargs object (keys with a null value are ignored, as
    /// IFEval's own data writes every key of every instruction). A missing, mistyped or unknown
    /// argument, or an id Tiller does not check, is a `Problem` that names it.
    public init(id: String, kwargs: [String: Any]) throws {
        var given: [String: IFEvalArgument] = [:]
        for (key, value) in kwargs where !(value is NSNull) {
            if let text = value as? String {
                given[key] = .string(text)
            } else if let number = value as? NSNumber, String(cString: number.objCType) != "c",
                      let integer = Int(exactly: number.doubleValue) {
                given[key] = .int(integer)
            } else if let list = value as? [String] {
                given[key] = .strings(list)
            } else {
                throw Problem("\(id): kwarg \(JSONEscaping.quoted(key)) has a value of the wrong type")
            }
        }
        func expect(_ keys: [String]) throws {
            if let detail = KeySuggestion.unknownKey(in: given, known: keys) { throw Problem("\(id): kwargs: \(detail)") }
        }
        func int(_ key: String, _ range: ClosedRange<Int>) throws -> Int {
            guard case .int(let value)? = given[key] else { throw Problem("\(id): needs the integer kwarg \(JSONEscaping.quoted(key))") }
            guard range.contains(value) else {
                throw Problem("\(id): kwarg \(JSONEscaping.quoted(key)) is \(value), out of range (allowed \(range.lowerBound)...\(range.upperBound))")
            }
            return value
        }
        func string(_ key: String) throws -> String {
            guard case .string(let value)? = given[key] else { throw Problem("\(id): needs the string kwarg \(JSONEscaping.quoted(key))") }
            return value
        }
        // The counts are bounded so a typo such as 1e9 is refused rather than checked.
        let counts = 0...1_000_000
        switch id {
        case "detectable_format:number_highlighted_sections":
            try expect(["num_highlights"])
            check = .highlightedSections(minimum: try int("num_highlights", counts))
        case "startend:end_checker":
            try expect(["end_phrase"])
            let phrase = PythonText.strip(try string("end_phrase"))
            guard !phrase.isEmpty else { throw Problem("\(id): kwarg \"end_phrase\" is empty") }
            check = .endPhrase(phrase)
        case "punctuation:no_comma": try expect([]); check = .noComma
        case "startend:quotation": try expect([]); check = .quotation
        case "change_case:english_lowercase": try expect([]); check = .lowercase
        case "change_case:english_capital": try expect([]); check = .capital
        case "detectable_format:title": try expect([]); check = .title
        case "detectable_format:constrained_response": try expect([]); check = .constrainedResponse
        case "detectable_format:json_format": try expect([]); check = .json
        case "detectable_format:number_bullet_lists":
            try expect(["num_bullets"])
            check = .bulletLists(exactly: try int("num_bullets", counts))
        case "change_case:capital_word_frequency":
            try expect(["capital_frequency", "capital_relation"])
            let relation = try string("capital_relation")
            guard let parsed = IFEvalRelation(rawValue: relation) else {
                throw Problem("\(id): kwarg \"capital_relation\" is \(JSONEscaping.quoted(relation)) (allowed \"less than\", \"at least\")")
            }
            check = .capitalWordFrequency(frequency: try int("capital_frequency", counts), relation: parsed)
        case "detectable_format:multiple_sections":
            try expect(["section_spliter", "num_sections"])
            let splitter = PythonText.strip(try string("section_spliter"))
            guard !splitter.isEmpty else { throw Problem("\(id): kwarg \"section_spliter\" is empty") }
            check = .sections(splitter: splitter, minimum: try int("num_sections", counts))
        case "language:response_language":
            try expect(["language"])
            check = .responseLanguage(try string("language"))
        default:
            if Self.otherIFEvalIDs.contains(id) { throw Unsupported(id: id) }
            throw Problem("unknown instruction id \(JSONEscaping.quoted(id)) (Tiller checks \(Self.supportedIDs.joined(separator: ", ")))")
        }
        self.id = id
        self.kwargs = given
    }

    /// Whether `response` follows the instruction, by IFEval's strict rule.
    public func verdict(_ response: String) -> IFEvalVerdict { check.verdict(response) }

    /// IFEval's loose rule: the strict rule on the response and on variants of it without its
    /// first line, its last line, both, and each of those without asterisks; followed when any is.
    public func looseVerdict(_ response: String) -> IFEvalVerdict {
        let lines = response.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let withoutFirst = lines.dropFirst().joined(separator: "\n")
        let withoutLast = lines.dropLast().joined(separator: "\n")
        let withoutBoth = lines.dropFirst().dropLast().joined(separator: "\n")
        let variants = [response, withoutFirst, withoutLast, withoutBoth]
        var all = variants
        all += variants.map { $0.replacingOccurrences(of: "*", with: "") }
        var result = IFEvalVerdict.failed
        for variant in all where !PythonText.strip(variant).isEmpty {
            switch verdict(variant) {
            case .passed: return .passed
            case .unavailable(let why): result = .unavailable(why)
            case .failed: continue
            }
        }
        return result
    }

    /// A bad instruction or argument, in words (the caller adds the file and line).
    public struct Problem: Error, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    /// A valid IFEval instruction that Tiller does not check.
    public struct Unsupported: Error, CustomStringConvertible {
        public let id: String
        public var description: String { "\(id) is an IFEval instruction outside the format subset Tiller checks" }
    }
}

/// An argument value of an instruction's kwargs.
public enum IFEvalArgument: Sendable, Equatable {
    case int(Int)
    case string(String)
    case strings([String])

    /// The value as JSONSerialization writes it.
    public var jsonObject: Any {
        switch self {
        case .int(let v): return v
        case .string(let v): return v
        case .strings(let v): return v
        }
    }
}

/// IFEval's comparison of a count with a threshold.
public enum IFEvalRelation: String, Sendable, Equatable {
    case lessThan = "less than"
    case atLeast = "at least"

    func holds(_ count: Int, _ threshold: Int) -> Bool {
        self == .lessThan ? count < threshold : count >= threshold
    }
}

/// Followed, not followed, or not checkable here (and why).
public enum IFEvalVerdict: Sendable, Equatable {
    case passed
    case failed
    case unavailable(String)

    /// true, false, or nil when unavailable (a results line's `pass`).
    public var pass: Bool? {
        switch self {
        case .passed: return true
        case .failed: return false
        case .unavailable: return nil
        }
    }
}
