import Foundation
import TillerLab

/// The demo's printed form, at most 100 columns wide: each question with both answers and their
/// scores one above the other, then one summary line per question.
public extension DemoTour {
    /// The score a summary line shows for each kind, and its scale.
    static func headline(_ kind: LabKind) -> (metric: String, scale: String) {
        switch kind {
        case .concept: return ("aggregate", "0-2")
        case .persona: return ("trait", "0-100")
        default: return ("pass", "no/yes")
        }
    }

    func text() -> String {
        var lines: [String] = []
        for (i, item) in items.enumerated() {
            let example = item.example
            let placement = example.placement == .system ? "in the system message" : "before the question"
            lines.append("\(i + 1). \(example.kind.rawValue): \"\(example.steeringPrompt ?? "")\" (\(placement))")
            lines += TextLayout.labelled("   question", example.question, indent: 14)
            for (label, row) in [("unsteered", item.unsteered), ("steered", item.steered)] {
                lines += TextLayout.labelled("   \(label)", row.answer, indent: 14)
                lines += TextLayout.labelled("", LabEvaluationReport.scoreLine(row.metrics), indent: 14)
            }
            lines.append("")
        }
        lines.append("summary: each question's headline score, unsteered and steered")
        let header = TextLayout.padRight("  #  kind", 13) + TextLayout.padRight("placement", 11)
            + TextLayout.padRight("target", 34) + TextLayout.padRight("score", 18)
            + TextLayout.padLeft("unsteered", 10) + TextLayout.padLeft("steered", 10)
        lines.append(header)
        for (i, item) in items.enumerated() {
            let (metric, scale) = DemoTour.headline(item.example.kind)
            func shown(_ row: LabEvaluationRow) -> String {
                let value = row.metrics.first { $0.name == metric }?.value ?? 0
                return metric == "pass" ? (value >= 1 ? "yes" : "no") : TextLayout.value(metric, value)
            }
            let target = item.example.target.map(String.init(describing:)) ?? "none"
            lines.append(TextLayout.padRight(TextLayout.padLeft("\(i + 1)", 3) + "  " + item.example.kind.rawValue, 13)
                + TextLayout.padRight(item.example.placement.rawValue, 11) + TextLayout.padRight(target, 34)
                + TextLayout.padRight("\(metric) (\(scale))", 18)
                + TextLayout.padLeft(shown(item.unsteered), 10) + TextLayout.padLeft(shown(item.steered), 10))
        }
        return lines.joined(separator: "\n")
    }
}
