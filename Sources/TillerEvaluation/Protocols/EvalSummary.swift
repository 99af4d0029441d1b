import Foundation

/// The means of a run's results per steering (arm), overall and per group (instruction id, trait,
/// concept), over the answers each metric could be had for.
public struct EvalSummary {
    public struct Row {
        public var steerKey: String
        public var mode: String
        public var alpha: Double?
        public var group: String?
        public var count: Int
        /// metric -> (mean, how many answers had it)
        public var means: [String: (mean: Double, count: Int)]

        public func mean(_ metric: String) -> Double? { means[metric]?.mean }
    }

    public var proto: EvalProtocol
    public var rows: [Row]
    public var coherenceSource: String

    public init(proto: EvalProtocol, results: [EvalResult], perGroup: Bool = false) {
        self.proto = proto
        coherenceSource = Set(results.map(\.coherenceSource)).sorted().joined(separator: "+")
        var order: [String] = [], byKey: [String: [EvalResult]] = [:]
        for result in results {
            if byKey[result.steerKey] == nil { order.append(result.steerKey) }
            byKey[result.steerKey, default: []].append(result)
        }
        var rows: [Row] = []
        for key in order {
            let group = byKey[key]!
            rows.append(Self.row(key, group, proto: proto, name: nil))
            if perGroup {
                var groups: [String] = []
                for r in group where !groups.contains(r.group) { groups.append(r.group) }
                for g in groups { rows.append(Self.row(key, group.filter { $0.group == g }, proto: proto, name: g)) }
            }
        }
        self.rows = rows
    }

    static func row(_ key: String, _ results: [EvalResult], proto: EvalProtocol, name: String?) -> Row {
        var means: [String: (mean: Double, count: Int)] = [:]
        for metric in EvalScorer.metricNames(proto) {
            let values = results.compactMap { $0.metrics[metric] ?? nil }
            if !values.isEmpty { means[metric] = (values.reduce(0, +) / Double(values.count), values.count) }
        }
        return Row(steerKey: key, mode: results.first?.mode ?? "?", alpha: results.first?.alpha, group: name,
                   count: results.count, means: means)
    }

    /// The table: one line per steering (and group), the protocol's metrics as columns; a metric
    /// no answer had is "-". pass rates are shown in percent.
    public func table() -> String {
        let metrics = EvalScorer.metricNames(proto)
        var lines: [[String]] = [["steering", "n"] + metrics]
        for row in rows {
            let name = row.group.map { "  " + $0 } ?? (row.steerKey as NSString).lastPathComponent
            lines.append([name, "\(row.count)"] + metrics.map { metric in
                guard let mean = row.mean(metric) else { return "-" }
                let scale = metric.hasPrefix("pass") ? 100.0 : 1.0
                return String(format: metric == "aggregate" || ["concept", "instruction", "fluency"].contains(metric) ? "%.3f" : "%.1f", mean * scale)
            })
        }
        let widths = lines[0].indices.map { c in lines.map { $0[c].count }.max() ?? 0 }
        return lines.map { line in
            line.enumerated().map { c, cell in
                c == 0 ? cell.padding(toLength: widths[c], withPad: " ", startingAt: 0)
                       : String(repeating: " ", count: widths[c] - cell.count) + cell
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }

    /// What the table's scores are and where they come from, in a few lines.
    public func notes(judged: Bool) -> [String] {
        var notes: [String] = []
        if coherenceSource == "judge" {
            notes.append("coherence: the judge's rating, 0-100")
        } else {
            notes.append("coherence: proxy (\(judged ? "--coherence proxy" : "no --judge-url")): 100 * (1 - ln(perplexity) / ln(1000)) of the answer under the unsteered model given the bare request, clamped to 0-100 (docs/evaluation.md)")
        }
        switch proto {
        case .ifevalFormat:
            notes.append("pass, pass_loose: IFEval's strict and loose checkers, percent of answers; change_case is checked for case only (no language identifier)")
        case .persona:
            if !judged { notes.append("trait: needs a judge (--judge-url, --judge-model); not scored") }
        case .concept:
            if !judged { notes.append("concept, instruction, fluency, aggregate: need a judge (--judge-url, --judge-model); not scored") }
        }
        return notes
    }
}
