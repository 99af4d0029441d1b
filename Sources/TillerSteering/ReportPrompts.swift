/// The report's view of the prompts: x' and x as the model saw them, and the note on a chat
/// template's default system prompt, which changes what Delta_PS compares.
extension CaptureReport {
    /// A visible warning at the top of the report when the chat template wrote its default system
    /// prompt into x (empty otherwise).
    func systemPromptNote() -> String {
        guard let rendering, let note = rendering.note else { return "" }
        return "<div class=\"finding warning\"><b>Default system prompt.</b> " + ReportHTML.escape(note.prefix(1).uppercased() + note.dropFirst())
            + ". The rendered prompts below show it.</div>\n"
    }

    /// The first triplets' x' and x as rendered text, side by side (all of it HTML-escaped).
    func promptSection() -> String {
        var out = "<h2>Prompts as the model saw them</h2>\n"
        guard let rendering else {
            return out + "<p>Run tiller analyze with --model (and the triplets file the capture records, or --triplets) to see x&prime; and x rendered as the model saw them.</p>\n"
        }
        guard !rendering.shown.isEmpty else { return out + "<p>No triplets to show.</p>\n" }
        out += "<p>The first \(rendering.shown.count) of \(rendering.total) triplets: chat prompts as the model's chat template renders them (with the generation prompt), "
            + "other prompts as their token ids decode (special tokens included).</p>\n"
        for t in rendering.shown {
            let flag = t.unsteeredHasDefaultSystemPrompt ? " (x got the template's default system prompt)" : ""
            out += "<div class=\"caption\">Triplet \(t.index)\(flag)</div><div class=\"prompts\">"
                + "<div><b>x&prime; (steered)</b><pre>\(ReportHTML.escape(t.steered))</pre></div>"
                + "<div><b>x (unsteered)</b><pre>\(ReportHTML.escape(t.unsteered))</pre></div></div>\n"
        }
        return out
    }
}
