import Foundation

/// Plain-text layout for terminal reports: fixed columns and word wrapping, ASCII only, so the output
/// reads the same in any terminal and in a log file.
enum TextLayout {
    /// The widest line the reports write.
    static let width = 100

    static func padRight(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
    }

    static func padLeft(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : String(repeating: " ", count: width - text.count) + text
    }

    /// `text` after a label column: the first line starts with the label padded to `indent`
    /// characters, later lines with spaces, words wrapped so no line passes `width` (a longer word
    /// gets a line of its own). Newlines in the text are shown as "\n" so an answer stays one block.
    static func labelled(_ label: String, _ text: String, indent: Int, width: Int = TextLayout.width) -> [String] {
        let words = text.replacingOccurrences(of: "\n", with: "\\n ").split(separator: " ", omittingEmptySubsequences: true)
        var lines: [String] = []
        var line = padRight(label, indent)
        var empty = true
        for word in words {
            if !empty && line.count + 1 + word.count > width {
                lines.append(line)
                line = String(repeating: " ", count: indent)
                empty = true
            }
            line += (empty ? "" : " ") + word
            empty = false
        }
        if empty { line += text.isEmpty ? "(empty)" : "" }
        lines.append(line)
        return lines
    }

    /// A metric value as the tables show it: 0-100 scales with one decimal, the rest with two.
    static func value(_ metric: String, _ value: Double) -> String {
        String(format: percentMetrics.contains(metric) ? "%.1f" : "%.2f", value)
    }

    /// Metrics on a 0-100 scale.
    static let percentMetrics: Set<String> = ["trait", "coherence"]
}
