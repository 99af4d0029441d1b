/// IFEval's change_case rules (instructions.py: LowercaseLettersEnglishChecker,
/// CapitalLettersEnglishChecker, CapitalWordFrequencyChecker). IFEval also asks langdetect that
/// the response is English; with no language identifier here, only the case is checked
/// (docs/evaluation.md).
enum ChangeCaseRules {
    /// Python's `islower()` of the whole response.
    static func isLowercase(_ response: String) -> Bool { PythonText.isLower(response) }

    /// Python's `isupper()` of the whole response.
    static func isCapital(_ response: String) -> Bool { PythonText.isUpper(response) }

    /// Words (nltk-like tokens) that are all capitals, "I" and "A" included as in IFEval.
    static func capitalWords(_ response: String) -> Int {
        PythonText.wordTokens(response).filter(PythonText.isUpper).count
    }
}
