import Foundation
import TillerLab

/// `tiller lab eval --json`: one JSON document with the means and every row, keys sorted so the
/// output is stable.
public extension LabEvaluationReport {
    /// {"kind", "steer", "count", "metrics": {name: mean}, "by_placement": {"system"|"user": {"count",
    /// "metrics"}}, "generation": {...}, "examples": [{"id", "placement", "topic", "target", "messages",
    /// "answer", "stop_reason", "scores": {name: value}}]} plus the caller's `extra` keys.
    func json(extra: [String: Any] = [:]) throws -> String {
        var document: [String: Any] = [
            "kind": kind.rawValue,
            "steer": steer.rawValue,
            "count": rows.count,
            "metrics": LabEvaluationReport.object(overall.means),
            "by_placement": Dictionary(uniqueKeysWithValues: byPlacement.map {
                ($0.placement.rawValue, ["count": $0.means.count, "metrics": LabEvaluationReport.object($0.means.means)] as [String: Any])
            }),
            "generation": [
                "prompt_tokens": generation.promptTokens,
                "new_tokens": generation.generatedTokens,
                "seconds": (generation.elapsed * 1000).rounded() / 1000,
            ] as [String: Any],
            "examples": rows.map(LabEvaluationReport.object(row:)),
        ]
        document.merge(extra) { $1 }
        let data = try JSONSerialization.data(withJSONObject: document,
                                              options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }

    /// One row of "examples" (also a line of `tiller lab eval --answers`).
    static func object(row: LabEvaluationRow) -> [String: Any] {
        [
            "id": row.example.id,
            "placement": row.example.placement.rawValue,
            "topic": row.example.topic.name,
            "target": row.example.target.map(String.init(describing:)) ?? "none",
            "messages": row.messages.map { ["role": $0.role, "content": $0.content] },
            "answer": row.answer,
            "stop_reason": row.stopReason.rawValue,
            "scores": LabEvaluationReport.object(row.metrics),
        ]
    }

    /// `tiller lab eval --answers`: one JSON line per row, in row order, keys sorted.
    func answerLines() throws -> String {
        try rows.map { row in
            let data = try JSONSerialization.data(withJSONObject: LabEvaluationReport.object(row: row), options: [.sortedKeys, .withoutEscapingSlashes])
            return String(decoding: data, as: UTF8.self) + "\n"
        }.joined()
    }

    private static func object(_ metrics: [LabMetric]) -> [String: Double] {
        Dictionary(metrics.map { ($0.name, $0.value) }, uniquingKeysWith: { $1 })
    }
}
