import Foundation

/// The few Python string and `re` operations IFEval's checkers are written in, with Python's
/// meaning, so each checker here reads like the original rule (google-research
/// instruction_following_eval/instructions.py) and agrees with it on the same answer.
enum PythonText {
    /// `str.strip()`: whitespace (and newlines) off both ends.
    static func strip(_ s: String) -> String {
        s.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// `str.strip(chars)`: any of `chars` off both ends.
    static func strip(_ s: String, _ chars: Set<Character>) -> String {
        var text = Substring(s)
        while let first = text.first, chars.contains(first) { text = text.dropFirst() }
        while let last = text.last, chars.contains(last) { text = text.dropLast() }
        return String(text)
    }

    /// Python's "cased" characters: letters that have case (categories Lu, Ll, Lt).
    private static func caseOf(_ scalar: Unicode.Scalar) -> (cased: Bool, upper: Bool, lower: Bool) {
        let p = scalar.properties
        let title = p.generalCategory == .titlecaseLetter
        return (p.isUppercase || p.isLowercase || title, p.isUppercase, p.isLowercase)
    }

    /// `str.isupper()`: at least one cased character and none of them lowercase (or titlecase).
    static func isUpper(_ s: String) -> Bool {
        var sawCased = false
        for scalar in s.unicodeScalars {
            let c = caseOf(scalar)
            guard c.cased else { continue }
            if !c.upper || c.lower { return false }
            sawCased = true
        }
        return sawCased
    }

    /// `str.islower()`: at least one cased character and none of them uppercase (or titlecase).
    static func isLower(_ s: String) -> Bool {
        var sawCased = false
        for scalar in s.unicodeScalars {
            let c = caseOf(scalar)
            guard c.cased else { continue }
            if !c.lower || c.upper { return false }
            sawCased = true
        }
        return sawCased
    }

    /// `re.findall(pattern, s)` for a pattern without groups: the non-overlapping matches, left
    /// to right. `multiline` is `re.MULTILINE` (^ and $ at every line).
    static func findAll(_ pattern: String, in s: String, multiline: Bool = false) -> [String] {
        let regex = compiled(pattern, multiline: multiline)
        let ns = s as NSString
        return regex.matches(in: s, range: NSRange(location: 0, length: ns.length)).map { ns.substring(with: $0.range) }
    }

    /// The number of pieces `re.split(pattern, s)` returns minus one: the number of matches.
    static func countMatches(_ pattern: String, in s: String) -> Int {
        compiled(pattern, multiline: false).numberOfMatches(in: s, range: NSRange(location: 0, length: (s as NSString).length))
    }

    /// The patterns are the checkers' own constants (and escaped user text), so one that does not
    /// compile is a bug here, not bad input.
    private static func compiled(_ pattern: String, multiline: Bool) -> NSRegularExpression {
        do {
            return try NSRegularExpression(pattern: pattern, options: multiline ? [.anchorsMatchLines] : [])
        } catch {
            preconditionFailure("IFEval pattern \(pattern) does not compile: \(error)")
        }
    }

    /// The words of `nltk.word_tokenize` closely enough to count all-capital words: whitespace
    /// separates tokens, leading and trailing punctuation are tokens of their own, and English
    /// contractions split as the Treebank tokenizer splits them ("DON'T" -> "DO", "N'T";
    /// "IT'S" -> "IT", "'S"); a hyphenated word stays one token, as the original's comment says.
    static func wordTokens(_ s: String) -> [String] {
        let punctuation = Set("\"'`.,;:!?()[]{}<>«»“”‘’…")
        var tokens: [String] = []
        for raw in s.split(whereSeparator: { $0.isWhitespace }) {
            var word = Substring(raw)
            var leading: [String] = [], trailing: [String] = []
            while let first = word.first, punctuation.contains(first) {
                leading.append(String(first))
                word = word.dropFirst()
            }
            while let last = word.last, punctuation.contains(last) {
                trailing.insert(String(last), at: 0)
                word = word.dropLast()
            }
            tokens += leading
            if !word.isEmpty { tokens += splitContraction(String(word)) }
            tokens += trailing
        }
        return tokens
    }

    private static func splitContraction(_ word: String) -> [String] {
        let lower = word.lowercased()
        for suffix in ["n't", "'s", "'re", "'ve", "'ll", "'d", "'m"] where lower.hasSuffix(suffix) && lower.count > suffix.count {
            let cut = word.index(word.endIndex, offsetBy: -suffix.count)
            return [String(word[..<cut]), String(word[cut...])]
        }
        return [word]
    }
}
