/// Text helpers the judges share.
public enum LabText {
    /// The lower-cased words of a text: maximal runs of letters, so "Sadly," and "SADLY" are both "sadly".
    public static func words(_ text: String) -> [String] {
        text.lowercased().split(whereSeparator: { !$0.isLetter }).map(String.init)
    }

    /// The text without surrounding whitespace and, when it both starts and ends with a double quote,
    /// without those quotes: what the parser and the word judges read.
    public static func unquoted(_ text: String) -> String {
        let trimmed = text.trimmingWhitespace()
        guard trimmed.count >= 2, trimmed.hasPrefix("\""), trimmed.hasSuffix("\"") else { return trimmed }
        return String(trimmed.dropFirst().dropLast()).trimmingWhitespace()
    }
}
