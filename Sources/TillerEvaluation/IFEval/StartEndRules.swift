/// IFEval's startend rules (instructions.py: EndChecker, QuotationChecker).
enum StartEndRules {
    /// Ends with the phrase, ignoring case, once stripped of spaces and then of double quotes.
    static func endsWith(_ response: String, phrase: String) -> Bool {
        let text = PythonText.strip(PythonText.strip(response), ["\""]).lowercased()
        return text.hasSuffix(PythonText.strip(phrase).lowercased())
    }

    /// Starts and ends with a double quote once stripped (two characters at least).
    static func isQuoted(_ response: String) -> Bool {
        let text = PythonText.strip(response)
        return text.count > 1 && text.first == "\"" && text.last == "\""
    }
}
