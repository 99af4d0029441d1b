import Foundation
import TillerLab

/// `tiller lab eval`'s readable output: the metric means (overall and per placement) and a few rows.
public extension LabEvaluationReport {
    /// The table of means: one line per metric, one column for all examples and one per placement.
    /// "pass" (format) is a pass rate in 0...1; concept metrics are on 0...2; trait and coherence 0...100.
    func table() -> String {
        let groups = [("all", overall)] + byPlacement.map { ($0.placement.rawValue, $0.means) }
        let nameWidth = max(12, (overall.means.map(\.name.count).max() ?? 0) + 2)
        var lines = [TextLayout.padRight("metric", nameWidth)
            + groups.map { TextLayout.padLeft("\($0.0) (\($0.1.count))", 14) }.joined()]
        for metric in overall.means {
            lines.append(TextLayout.padRight(metric.name, nameWidth) + groups.map { group in
                TextLayout.padLeft(group.1[metric.name].map { TextLayout.value(metric.name, $0) } ?? "-", 14)
            }.joined())
        }
        return lines.joined(separator: "\n")
    }

    /// The first `count` rows: id, placement, target, the prompt, the answer and its scores.
    func examples(_ count: Int) -> String {
        var lines: [String] = []
        for row in rows.prefix(max(count, 0)) {
            let target = row.example.target.map(String.init(describing:)) ?? "none"
            lines.append("\(row.example.id)  \(row.example.placement.rawValue)  \(target)")
            for message in row.messages {
                lines += TextLayout.labelled("  \(message.role)", message.content, indent: 13)
            }
            lines += TextLayout.labelled("  answer", row.answer, indent: 13)
            lines += TextLayout.labelled("  scores", LabEvaluationReport.scoreLine(row.metrics), indent: 13)
        }
        return lines.joined(separator: "\n")
    }

    /// "concept 2, instruction 2, fluency 2, aggregate 2.00", "pass yes, coherence 100.0": integer
    /// scores without decimals.
    static func scoreLine(_ metrics: [LabMetric]) -> String {
        metrics.map { metric in
            let text: String
            switch metric.name {
            case "pass": text = metric.value >= 1 ? "yes" : "no"
            case "concept", "instruction", "fluency": text = String(Int(metric.value))
            default: text = TextLayout.value(metric.name, metric.value)
            }
            return "\(metric.name) \(text)"
        }.joined(separator: ", ")
    }
}
