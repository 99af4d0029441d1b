import Foundation
import TillerSteering

/// The HTML report of a run: the table, the curves of every score over alpha for each steering
/// file, and example answers per steering, with each token coloured by lambda_t where a PSR head
/// steered it. One self-contained page (inline SVG, no scripts), built on the analysis report's
/// helpers (ReportHTML, ReportChart).
public struct EvalReport {
    public var proto: EvalProtocol
    public var model: String
    public var source: String
    public var results: [EvalResult]
    public var summary: EvalSummary
    public var judged: Bool
    /// Per steering key, the coloured tokens of its example answers (by result index in `results`).
    public var lambdas: [Int: EvalTokenLambdas] = [:]
    public var examplesPerArm = 3

    public init(proto: EvalProtocol, model: String, source: String, results: [EvalResult], summary: EvalSummary, judged: Bool) {
        self.proto = proto
        self.model = model
        self.source = source
        self.results = results
        self.summary = summary
        self.judged = judged
    }

    /// The results shown as examples: the first `examplesPerArm` of each steering.
    public var exampleIndices: [Int] {
        var count: [String: Int] = [:], chosen: [Int] = []
        for (i, r) in results.enumerated() where count[r.steerKey, default: 0] < examplesPerArm {
            count[r.steerKey, default: 0] += 1
            chosen.append(i)
        }
        return chosen
    }

    public func html() -> String {
        var out = "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>tiller eval: \(ReportHTML.escape(proto.rawValue))</title>\n"
        out += "<style>\(ReportHTML.css)</style></head><body>\n"
        out += "<h1>tiller eval: \(ReportHTML.escape(proto.rawValue))</h1>\n"
        out += "<p class=\"meta\">model <code>\(ReportHTML.escape(model))</code>, prompts: \(ReportHTML.escape(source)), \(results.count) answers</p>\n"
        out += "<div class=\"finding\"><ul>" + summary.notes(judged: judged).map { "<li>\(ReportHTML.escape($0))</li>" }.joined() + "</ul></div>\n"
        out += table()
        out += curves()
        out += examples()
        out += "<p class=\"foot\">Written by tiller eval. docs/evaluation.md describes the protocols, the checkers, the judge prompts and the coherence proxy.</p>\n"
        return out + "</body></html>\n"
    }

    /// A steering key without the file's folder (the whole key is the row's tooltip).
    static func shortName(_ key: String) -> String { (key as NSString).lastPathComponent }

    func table() -> String {
        let metrics = EvalScorer.metricNames(proto)
        var out = "<h2>Scores</h2>\n<table><tr><th>steering</th><th>n</th>" + metrics.map { "<th>\(ReportHTML.escape($0))</th>" }.joined() + "</tr>\n"
        for row in summary.rows {
            out += "<tr><td title=\"\(ReportHTML.escape(row.steerKey))\">\(ReportHTML.escape(row.group.map { "\u{2003}" + $0 } ?? Self.shortName(row.steerKey)))</td><td>\(row.count)</td>"
            for metric in metrics {
                let scale = metric.hasPrefix("pass") ? 100.0 : 1.0
                out += "<td>\(row.mean(metric).map { String(format: "%.3g", $0 * scale) } ?? "-")</td>"
            }
            out += "</tr>\n"
        }
        return out + "</table>\n"
    }

    /// One chart per steering file run at several alphas: each metric's mean over alpha, with the
    /// unsteered and prompt rows as flat dashed lines where the run has them.
    func curves() -> String {
        let rows = summary.rows.filter { $0.group == nil }
        var files: [String] = []
        for r in results where r.mode == "file" {
            let name = (r.steer["file"] as? String ?? "?") + ((r.steer["with_prompt"] as? Bool ?? false) ? " + prompt" : "")
            if !files.contains(name) { files.append(name) }
        }
        let palette = ["#3182bd", "#e6550d", "#31a354", "#756bb1", "#636363"]
        var charts: [String] = []
        for file in files {
            let own = rows.filter { row in
                guard row.mode == "file", let r = results.first(where: { $0.steerKey == row.steerKey }) else { return false }
                let name = (r.steer["file"] as? String ?? "?") + ((r.steer["with_prompt"] as? Bool ?? false) ? " + prompt" : "")
                return name == file
            }.sorted { ($0.alpha ?? 0) < ($1.alpha ?? 0) }
            guard own.count >= 2 else { continue }
            let labels = own.map { String(format: "%g", $0.alpha ?? 0) }
            for metric in EvalScorer.metricNames(proto) where own.contains(where: { $0.mean(metric) != nil }) {
                let scale = metric.hasPrefix("pass") ? 100.0 : 1.0
                var series = [ReportChart.Series(name: metric, color: palette[0], values: own.map { $0.mean(metric).map { $0 * scale } })]
                for (k, reference) in rows.filter({ $0.mode != "file" }).enumerated() {
                    if let v = reference.mean(metric) {
                        series.append(ReportChart.Series(name: Self.shortName(reference.steerKey), color: palette[(k + 1) % palette.count],
                                                         values: own.map { _ in v * scale }, dashed: true))
                    }
                }
                charts.append(ReportChart.lines(title: "\(metric): \(ReportHTML.escape((file as NSString).lastPathComponent))",
                                                xTitle: "alpha", yTitle: metric, xLabels: labels, series: series, logarithmic: false))
            }
        }
        guard !charts.isEmpty else { return "" }
        return "<h2>Scores over alpha</h2>\n<div class=\"charts\">" + charts.joined() + "</div>\n"
    }

    func examples() -> String {
        var out = "<h2>Example answers</h2>\n"
        let metrics = EvalScorer.metricNames(proto)
        for i in exampleIndices {
            let r = results[i]
            let scores = metrics.compactMap { m in (r.metrics[m] ?? nil).map { "\(m) \(String(format: "%.3g", $0))" } }.joined(separator: ", ")
            out += "<div class=\"example\"><div class=\"caption\">\(ReportHTML.escape(r.id)), \(ReportHTML.escape(Self.shortName(r.steerKey))): \(ReportHTML.escape(scores))</div>"
            out += "<div class=\"prompts\"><pre>" + ReportHTML.escape(r.messages.map { "\($0.role): \($0.content)" }.joined(separator: "\n")) + "</pre>"
            if let colored = lambdas[i] {
                let top = colored.tokens.compactMap { $0.lambda }.map { abs(Double($0)) }.max() ?? 0
                out += "<div class=\"tokens\">"
                for token in colored.tokens {
                    let shown = ReportHTML.escape(token.text)
                    if let l = token.lambda {
                        let t = top > 0 ? Double(l) / top : 0
                        out += "<span class=\"tok\(abs(t) > 0.65 ? " dark" : "")\" style=\"background:\(t >= 0 ? ReportHTML.blue(t) : ReportHTML.heat(-t))\" title=\"lambda \(ReportHTML.number(Double(l)))\">\(shown)</span>"
                    } else {
                        out += "<span class=\"tok\" style=\"background:#e8e8e8\" title=\"not steered\">\(shown)</span>"
                    }
                }
                out += "<div class=\"caption\">coloured by &lambda;<sub>t</sub> at layer \(colored.layer), linear from 0 (white) to \(ReportHTML.number(top)) (blue)</div></div>"
            } else {
                out += "<pre>\(ReportHTML.escape(r.response))</pre>"
            }
            out += "</div></div>\n"
        }
        return out
    }
}
