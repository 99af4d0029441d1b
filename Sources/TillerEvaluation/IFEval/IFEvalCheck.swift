import Foundation

/// What an IFEval instruction asks of a response, with its arguments. Each rule is IFEval's
/// `check_following` (instructions.py), in the files named for IFEval's categories:
/// DetectableFormatRules, ChangeCaseRules, StartEndRules, PunctuationRules.
public enum IFEvalCheck: Sendable, Equatable {
    case highlightedSections(minimum: Int)
    case endPhrase(String)
    case noComma
    case quotation
    case lowercase
    case capital
    case title
    case constrainedResponse
    case json
    case bulletLists(exactly: Int)
    case capitalWordFrequency(frequency: Int, relation: IFEvalRelation)
    case sections(splitter: String, minimum: Int)
    case responseLanguage(String)

    /// Why response language cannot be checked: IFEval asks langdetect, and no language identifier
    /// is available to Tiller (none in Swift's Foundation on Linux, none among its dependencies).
    public static let noLanguageIdentifier = "no language identifier is available (IFEval uses langdetect)"

    public func verdict(_ response: String) -> IFEvalVerdict {
        let followed: Bool
        switch self {
        case .highlightedSections(let minimum): followed = DetectableFormatRules.highlightedSections(response) >= minimum
        case .bulletLists(let exactly): followed = DetectableFormatRules.bulletLists(response) == exactly
        case .title: followed = DetectableFormatRules.hasTitle(response)
        case .constrainedResponse: followed = DetectableFormatRules.isConstrainedResponse(response)
        case .json: followed = DetectableFormatRules.isJSON(response)
        case .sections(let splitter, let minimum): followed = DetectableFormatRules.sections(response, splitter: splitter) >= minimum
        case .lowercase: followed = ChangeCaseRules.isLowercase(response)
        case .capital: followed = ChangeCaseRules.isCapital(response)
        case .capitalWordFrequency(let frequency, let relation):
            followed = relation.holds(ChangeCaseRules.capitalWords(response), frequency)
        case .endPhrase(let phrase): followed = StartEndRules.endsWith(response, phrase: phrase)
        case .quotation: followed = StartEndRules.isQuoted(response)
        case .noComma: followed = PunctuationRules.hasNoComma(response)
        case .responseLanguage: return .unavailable(Self.noLanguageIdentifier)
        }
        return followed ? .passed : .failed
    }
}
