import Foundation

/// IFEval's detectable_format rules (instructions.py: HighlightSectionChecker, BulletListChecker,
/// TitleChecker, ConstrainedResponseChecker, JsonFormat, SectionChecker).
enum DetectableFormatRules {
    /// The options of constrained_response, word for word.
    static let constrainedOptions = ["My answer is yes.", "My answer is no.", "My answer is maybe."]

    /// Highlighted sections: every *text* (no newline or asterisk inside) with some non-space text,
    /// plus every **text** likewise; a bold span counts once, as in IFEval (its single-asterisk
    /// matches are the empty "**" pairs).
    static func highlightedSections(_ response: String) -> Int {
        let single = PythonText.findAll(#"\*[^\n\*]*\*"#, in: response).filter {
            !PythonText.strip(PythonText.strip($0, ["*"])).isEmpty
        }
        let double = PythonText.findAll(#"\*\*[^\n\*]*\*\*"#, in: response).filter {
            !PythonText.strip(String($0.dropFirst(2).dropLast(2))).isEmpty
        }
        return single.count + double.count
    }

    /// Markdown bullets: lines starting (after spaces) with "*" followed by a non-asterisk, or with
    /// "-" (so a "---" rule counts too, as in IFEval).
    static func bulletLists(_ response: String) -> Int {
        PythonText.findAll(#"^\s*\*[^\*].*$"#, in: response, multiline: true).count
            + PythonText.findAll(#"^\s*-.*$"#, in: response, multiline: true).count
    }

    /// A title: <<text>> on one line with some non-space text inside.
    static func hasTitle(_ response: String) -> Bool {
        PythonText.findAll(#"<<[^\n]+>>"#, in: response).contains { title in
            var inner = Substring(title)
            while inner.first == "<" { inner = inner.dropFirst() }
            while inner.last == ">" { inner = inner.dropLast() }
            return !PythonText.strip(String(inner)).isEmpty
        }
    }

    /// Contains one of the three options (anywhere, exactly as written).
    static func isConstrainedResponse(_ response: String) -> Bool {
        let text = PythonText.strip(response)
        return constrainedOptions.contains { text.contains($0) }
    }

    /// Parses as JSON (any value, as json.loads reads it) once stripped of a Markdown code fence.
    static func isJSON(_ response: String) -> Bool {
        var text = PythonText.strip(response)
        for fence in ["```json", "```Json", "```JSON"] where text.hasPrefix(fence) {
            text.removeFirst(fence.count)
            break
        }
        if text.hasPrefix("```") { text.removeFirst(3) }
        if text.hasSuffix("```") { text.removeLast(3) }
        text = PythonText.strip(text)
        return StrictJSON.isValid(text)
    }

    /// Sections: how many times "SPLITTER N" (optional spaces around, N digits) occurs. IFEval puts
    /// the splitter into its pattern unescaped; here it is matched literally (the same for its
    /// own splitters, "Section" and "SECTION"), and case-sensitively as there.
    static func sections(_ response: String, splitter: String) -> Int {
        PythonText.countMatches(#"\s?"# + NSRegularExpression.escapedPattern(for: splitter) + #"\s?\d+\s?"#, in: response)
    }
}
