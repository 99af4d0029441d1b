import Foundation

/// The HTML report of `tiller analyze`: one self-contained page (inline CSS and SVG, no scripts,
/// no external resources) a person reads in a browser: a summary of where Delta_PS's norm sits,
/// per-layer plots and tables, the steering files' relative RMSE, and the text of some triplets
/// with each token coloured by ||Delta_PS|| (and by lambda_t of each replayed PSR head).
public struct CaptureReport {
    public var analysis: CaptureAnalysis
    public var capture: CaptureFile
    /// The text a token is shown as (its decoded piece, special tokens included).
    public var tokenText: (Int32) -> String
    /// Triplets whose tokens are shown.
    public var examples: [Int]
    /// The layer whose ||Delta_PS|| colours the tokens.
    public var colorLayer: Int
    /// Per triplet: a line describing it (e.g. the steered prompt), shown above its tokens.
    public var captions: [Int: String]
    /// The prompts x' and x as the model saw them (nil: not known, e.g. no model given).
    public var rendering: TripletRendering?

    public init(analysis: CaptureAnalysis, capture: CaptureFile, tokenText: @escaping (Int32) -> String, examples: [Int],
                colorLayer: Int, captions: [Int: String] = [:], rendering: TripletRendering? = nil) {
        self.analysis = analysis
        self.capture = capture
        self.tokenText = tokenText
        self.examples = examples
        self.colorLayer = colorLayer
        self.captions = captions
        self.rendering = rendering
    }

    // MARK: Page

    public func html() -> String {
        let info = analysis.info
        var out = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8">
            <title>Delta_PS analysis: \(ReportHTML.escape((capture.path as NSString).lastPathComponent))</title>
            <style>\(ReportHTML.css)</style></head><body>
            <h1>Prompt steering as activation steering: &Delta;<sub>PS</sub></h1>
            <p class="meta">Capture <code>\(ReportHTML.escape(capture.path))</code>: \(info.rows) rows from \(info.triplets) triplets \
            (source <code>\(ReportHTML.escape(info.source))</code>), layers \(ReportHTML.escape(info.layers.map(String.init).joined(separator: ", "))), \
            hidden size \(info.hiddenSize). Model: \(ReportHTML.escape(info.model.summary)).</p>
            <p class="meta">&Delta;<sub>PS</sub> at a token is the residual stream after a block on the steered sequence x&prime;y&prime; \
            minus the same on the unsteered xy&prime;, at the positions the two share (the end of the prompt and the answer y&prime;).</p>

            """
        out += systemPromptNote()
        out += summary()
        out += "<h2>Per layer</h2>\n<div class=\"charts\">" + quantileChart() + ratioChart() + "</div>\n"
        out += layerTable()
        out += roleTable()
        out += tokenTable()
        if !analysis.replays.isEmpty { out += replaySection() }
        out += promptSection()
        out += tokenSection()
        out += "<p class=\"foot\">Written by tiller analyze. Quantiles interpolate linearly; \"half-mass share\" is the smallest fraction of rows whose squared norms sum to half of the total.</p>\n"
        return out + "</body></html>\n"
    }

    func stats(_ layer: Int) -> LayerStatistics? { analysis.layers.first { $0.layer == layer } }

    func summary() -> String {
        guard let peak = analysis.layers.max(by: { ($0.all.maxOverMedian ?? 0) < ($1.all.maxOverMedian ?? 0) }), analysis.info.rows > 0 else {
            return "<p class=\"finding\">The capture has no rows.</p>\n"
        }
        var items: [String] = []
        items.append("The largest max/median ratio of ||&Delta;|| is <b>\(ReportHTML.number(peak.all.maxOverMedian))</b> at layer \(peak.layer) (median \(ReportHTML.number(peak.all.p50)), max \(ReportHTML.number(peak.all.max))).")
        let shares = analysis.layers.compactMap { s in s.all.halfMassShare.map { (s.layer, $0) } }
        if let lo = shares.min(by: { $0.1 < $1.1 }), let hi = shares.max(by: { $0.1 < $1.1 }) {
            items.append("Half of the total ||&Delta;||&sup2; is carried by <b>\(ReportHTML.percent(lo.1))</b> of the tokens at layer \(lo.0) and \(ReportHTML.percent(hi.1)) at layer \(hi.0) (50% would mean evenly spread).")
        }
        if let s = stats(colorLayer), s.answer.count > 0, s.prompt.count > 0 {
            items.append("At layer \(colorLayer): median ||&Delta;|| \(ReportHTML.number(s.prompt.p50)) on shared prompt tokens, \(ReportHTML.number(s.answer.p50)) on answer tokens, mean \(ReportHTML.number(s.lastPrompt.mean)) on the last prompt token.")
        }
        return "<div class=\"finding\"><ul>" + items.map { "<li>\($0)</li>" }.joined() + "</ul></div>\n"
    }

    func quantileChart() -> String {
        let layers = analysis.layers
        let series: [ReportChart.Series] = [
            .init(name: "p10", color: "#9ecae1", values: layers.map { $0.all.p10 }),
            .init(name: "median", color: "#3182bd", values: layers.map { $0.all.p50 }),
            .init(name: "p90", color: "#fd8d3c", values: layers.map { $0.all.p90 }),
            .init(name: "p99", color: "#e6550d", values: layers.map { $0.all.p99 }),
            .init(name: "max", color: "#a50f15", values: layers.map { $0.all.max }),
            .init(name: "mean", color: "#555555", values: layers.map { $0.all.mean }, dashed: true),
        ]
        return ReportChart.lines(title: "||\u{394}PS|| per token: quantiles", xTitle: "layer (residual after block)", yTitle: "||\u{394}PS||",
                                 xLabels: layers.map { "\($0.layer)" }, series: series, logarithmic: true)
    }

    func ratioChart() -> String {
        let layers = analysis.layers
        let series: [ReportChart.Series] = [
            .init(name: "max / median", color: "#a50f15", values: layers.map { $0.all.maxOverMedian }),
            .init(name: "p99 / median", color: "#e6550d", values: layers.map { $0.all.p50 > 0 ? $0.all.p99 / $0.all.p50 : nil }),
            .init(name: "half-mass %", color: "#3182bd", values: layers.map { $0.all.halfMassShare.map { $0 * 100 } }, dashed: true),
        ]
        return ReportChart.lines(title: "Concentration of ||\u{394}PS||", xTitle: "layer (residual after block)", yTitle: "ratio / percent of tokens",
                                 xLabels: layers.map { "\($0.layer)" }, series: series, logarithmic: true)
    }

    func layerTable() -> String {
        var rows = ""
        for s in analysis.layers {
            let a = s.all
            rows += "<tr><td>\(s.layer)</td><td>\(a.count)</td><td>\(ReportHTML.number(a.mean))</td><td>\(ReportHTML.number(a.p10))</td><td>\(ReportHTML.number(a.p50))</td><td>\(ReportHTML.number(a.p90))</td><td>\(ReportHTML.number(a.p99))</td><td>\(ReportHTML.number(a.max))</td><td>\(ReportHTML.number(a.maxOverMedian))</td><td>\(ReportHTML.percent(a.halfMassShare))</td><td>\(s.residual.count > 0 ? ReportHTML.number(s.residual.p50) : "-")</td></tr>\n"
        }
        return """
            <table><caption>||&Delta;<sub>PS</sub>|| over all captured tokens</caption>
            <thead><tr><th>layer</th><th>rows</th><th>mean</th><th>p10</th><th>median</th><th>p90</th><th>p99</th><th>max</th><th>max/median</th><th>half-mass share</th><th>median ||h||</th></tr></thead>
            <tbody>\(rows)</tbody></table>

            """
    }

    func roleTable() -> String {
        var rows = ""
        for s in analysis.layers {
            let total = s.all.sumOfSquares
            func mass(_ a: NormStatistics) -> String { total > 0 ? ReportHTML.percent(a.sumOfSquares / total) : "-" }
            func cells(_ a: NormStatistics) -> String {
                a.count == 0 ? "<td>0</td><td>-</td><td>-</td><td>-</td><td>-</td><td>-</td>"
                    : "<td>\(a.count)</td><td>\(ReportHTML.number(a.mean))</td><td>\(ReportHTML.number(a.p50))</td><td>\(ReportHTML.number(a.max))</td><td>\(ReportHTML.percent(a.halfMassShare))</td><td>\(mass(a))</td>"
            }
            let last = s.lastPrompt
            rows += "<tr><td>\(s.layer)</td>\(cells(s.prompt))\(cells(s.answer))<td>\(last.count)</td><td>\(last.count == 0 ? "-" : ReportHTML.number(last.mean))</td><td>\(mass(last))</td></tr>\n"
        }
        return """
            <table><caption>By role: shared prompt tokens (including the last), answer tokens, and the last prompt token alone; "mass" is the role's share of &Sigma;||&Delta;||&sup2; at the layer</caption>
            <thead><tr><th rowspan="2">layer</th><th colspan="6">prompt</th><th colspan="6">answer</th><th colspan="3">last prompt token</th></tr>
            <tr><th>rows</th><th>mean</th><th>median</th><th>max</th><th>half-mass</th><th>mass</th><th>rows</th><th>mean</th><th>median</th><th>max</th><th>half-mass</th><th>mass</th><th>rows</th><th>mean</th><th>mass</th></tr></thead>
            <tbody>\(rows)</tbody></table>

            """
    }

    /// The token ids that carry the most of sum ||Delta||^2 at the colour layer, with their share,
    /// count and mean norm, split by role (prompt / answer).
    func tokenTable(limit: Int = 12) -> String {
        guard let norms = analysis.norms[colorLayer], !norms.isEmpty else { return "" }
        struct Key: Hashable { var token: Int32; var answer: Bool }
        var sums: [Key: (count: Int, squares: Double, norms: Double)] = [:]
        var total = 0.0
        for r in norms.indices {
            let v = Double(norms[r])
            let key = Key(token: capture.tokens[r], answer: capture.role[r] == CaptureRole.answer.rawValue)
            var entry = sums[key] ?? (0, 0, 0)
            entry.count += 1
            entry.squares += v * v
            entry.norms += v
            sums[key] = entry
            total += v * v
        }
        guard total > 0 else { return "" }
        let top = sums.sorted { $0.value.squares > $1.value.squares }.prefix(limit)
        let rowShare = Double(top.reduce(0) { $0 + $1.value.count }) / Double(norms.count)
        let massShare = top.reduce(0.0) { $0 + $1.value.squares } / total
        var rows = ""
        for (key, entry) in top {
            let text = tokenText(key.token).replacingOccurrences(of: "\n", with: "\u{21B5}")
            rows += "<tr><td><code>\(ReportHTML.escape(text))</code></td><td>\(key.answer ? "answer" : "prompt")</td><td>\(entry.count)</td><td>\(ReportHTML.number(entry.norms / Double(entry.count)))</td><td>\(ReportHTML.percent(entry.squares / total))</td></tr>\n"
        }
        return """
            <table><caption>Tokens carrying the most of &Sigma;||&Delta;||&sup2; at layer \(colorLayer): these \(top.count) (token, role) pairs are \(ReportHTML.percent(rowShare)) of the rows and carry \(ReportHTML.percent(massShare))</caption>
            <thead><tr><th>token</th><th>role</th><th>rows</th><th>mean ||&Delta;||</th><th>share of &Sigma;||&Delta;||&sup2;</th></tr></thead>
            <tbody>\(rows)</tbody></table>

            """
    }

    func replaySection() -> String {
        var out = "<h2>Steering files against &Delta;<sub>PS</sub></h2>\n"
        out += "<p>Each file is applied to xy&prime; (its own location and alpha) and the change it makes to the residual stream at each captured layer, accumulated over its heads at that layer and below, is compared with &Delta;<sub>PS</sub> row by row: relative RMSE = sqrt(&Sigma;||I<sub>t</sub> &minus; &Delta;<sub>t</sub>||&sup2; / &Sigma;||&Delta;<sub>t</sub>||&sup2;); 1.0 is no better than doing nothing.</p>\n"
        let palette = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666"]
        let replayed = analysis.replays.filter { r in r.layers.contains { $0.relativeRMSE != nil } }
        if !replayed.isEmpty {
            let series = replayed.enumerated().map { k, r in
                ReportChart.Series(name: ReportHTML.shortName(r.name), color: palette[k % palette.count],
                                   values: r.layers.map(\.relativeRMSE))
            } + [ReportChart.Series(name: "nothing (1.0)", color: "#999999", values: analysis.layers.map { _ in 1 }, dashed: true)]
            let top = max(1.2, (replayed.flatMap { $0.layers.compactMap(\.relativeRMSE) }.max() ?? 1) * 1.05)
            out += "<div class=\"charts\">" + ReportChart.lines(title: "Relative RMSE against \u{394}PS", xTitle: "layer (residual after block)", yTitle: "relative RMSE",
                                                                 xLabels: analysis.layers.map { "\($0.layer)" }, series: series, logarithmic: false,
                                                                 yRange: 0...ReportChart.niceCeiling(top), width: 640, legendWidth: 190) + "</div>\n"
        }
        var rows = ""
        for r in analysis.replays {
            for l in r.layers {
                let p = l.projection
                rows += "<tr><td>\(ReportHTML.escape((r.name as NSString).lastPathComponent))</td><td>\(ReportHTML.escape(r.method))</td><td>\(ReportHTML.number(Double(r.alpha)))</td><td>\(ReportHTML.escape(r.location))</td><td>\(l.layer)</td><td>\(ReportHTML.number(l.relativeRMSE))</td><td>\(ReportHTML.number(l.relativeRMSEAnswer))</td><td>\(p.map { ReportHTML.number($0.mean) } ?? "-")</td><td>\(ReportHTML.percent(p?.explainedShare))</td></tr>\n"
            }
        }
        out += """
            <table><caption>Per steering file and captured layer (projection: &Delta;<sub>t</sub> &middot; z/||z|| at the file's head layers)</caption>
            <thead><tr><th>file</th><th>method</th><th>alpha</th><th>location</th><th>layer</th><th>rel. RMSE</th><th>rel. RMSE (answer)</th><th>mean projection</th><th>share of ||&Delta;||&sup2; along z</th></tr></thead>
            <tbody>\(rows)</tbody></table>

            """
        return out
    }

    // MARK: Tokens

    func tokenSection() -> String {
        guard let norms = analysis.norms[colorLayer] else { return "" }
        let shown = examples.filter { capture.exampleRows.indices.contains($0) && !capture.exampleRows[$0].isEmpty }
        guard !shown.isEmpty else { return "" }
        // A logarithmic colour scale from the layer's p10 (white) to the largest value shown (red):
        // ||Delta|| spans orders of magnitude, and a linear scale would leave all but a few tokens white.
        let top = shown.flatMap { capture.exampleRows[$0].map { Double(norms[$0]) } }.max() ?? 1
        let floor = max(stats(colorLayer)?.all.p10 ?? 0, top * 1e-4, 1e-30)
        func level(_ v: Double) -> Double {
            guard top > floor, v > floor else { return 0 }
            return min(1, log(v / floor) / log(top / floor))
        }
        var out = "<h2>Tokens coloured by ||&Delta;<sub>PS</sub>|| at layer \(colorLayer)</h2>\n"
        out += "<p>Only the shared positions are captured: the end of the prompt (<span class=\"tok prompt sample\">boxed</span>) and the answer y&prime;. Hover a token for its values. "
            + "Colour is logarithmic in ||&Delta;||, from the layer's 10th percentile \(ReportHTML.number(floor)) (white) to \(ReportHTML.number(top)), the largest among the tokens shown; the middle of the bar is \(ReportHTML.number((floor * top).squareRoot())).</p>\n"
        out += legend(from: "#ffffff", via: "#fdae61", to: "#d7191c", low: ReportHTML.number(floor), high: ReportHTML.number(top))
        for e in shown {
            out += "<div class=\"example\"><div class=\"caption\">Triplet \(e)\(captions[e].map { ": " + ReportHTML.escape($0) } ?? "")</div><div class=\"tokens\">"
            for r in capture.exampleRows[e] {
                let v = Double(norms[r])
                let t = level(v)
                var tip = "position \(capture.position[r]), \(ReportHTML.roleName(capture.role[r])), token \(capture.tokens[r]), ||\u{394}|| \(ReportHTML.number(v))"
                for l in analysis.layers where l.layer != colorLayer {
                    if let n = analysis.norms[l.layer]?[r] { tip += "; layer \(l.layer): \(ReportHTML.number(Double(n)))" }
                }
                out += token(r, color: ReportHTML.heat(t), dark: t > 0.65, tip: tip)
            }
            out += "</div></div>\n"
        }
        for replay in analysis.replays {
            for layer in replay.lambdas.keys.sorted() {
                guard let lambdas = replay.lambdas[layer], lambdas.contains(where: { !$0.isNaN }) else { continue }
                let values = shown.flatMap { capture.exampleRows[$0].map { lambdas[$0] } }.filter { !$0.isNaN }
                let top = Double(values.map { abs($0) }.max() ?? 0)
                out += "<h2>Tokens coloured by &lambda;<sub>t</sub> of \(ReportHTML.escape((replay.name as NSString).lastPathComponent)) (\(ReportHTML.escape(replay.method))) at layer \(layer)</h2>\n"
                out += "<p>&lambda;<sub>t</sub> = f(w &middot; h<sub>t</sub> + b) as computed during the replay on xy&prime;; grey: the head does not act there (its location). Blue is positive, red negative, linear up to \(ReportHTML.number(top)).</p>\n"
                out += legend(from: "#ffffff", via: "#92c5de", to: "#0571b0", low: "0", high: ReportHTML.number(top))
                for e in shown {
                    out += "<div class=\"example\"><div class=\"caption\">Triplet \(e)</div><div class=\"tokens\">"
                    for r in capture.exampleRows[e] {
                        let l = lambdas[r]
                        let tip = "position \(capture.position[r]), \(ReportHTML.roleName(capture.role[r])), lambda \(l.isNaN ? "none" : ReportHTML.number(Double(l))), ||\u{394}|| at layer \(colorLayer) \(ReportHTML.number(Double(norms[r])))"
                        if l.isNaN {
                            out += token(r, color: "#e8e8e8", dark: false, tip: tip)
                        } else {
                            let t = top > 0 ? Double(l) / top : 0
                            out += token(r, color: t >= 0 ? ReportHTML.blue(t) : ReportHTML.heat(-t), dark: abs(t) > 0.65, tip: tip)
                        }
                    }
                    out += "</div></div>\n"
                }
            }
        }
        return out
    }

    func token(_ r: Int, color: String, dark: Bool, tip: String) -> String {
        let role = capture.role[r]
        let classes = "tok" + (role == CaptureRole.answer.rawValue ? "" : " prompt") + (dark ? " dark" : "")
        let raw = tokenText(capture.tokens[r])
        let newline = raw.hasSuffix("\n")
        let shown = ReportHTML.escape(raw.replacingOccurrences(of: "\n", with: "\u{21B5}"))
        return "<span class=\"\(classes)\" style=\"background:\(color)\" title=\"\(ReportHTML.escape(tip))\">\(shown.isEmpty ? "&#8203;" : shown)</span>" + (newline ? "<br>" : "")
    }

    func legend(from: String, via: String, to: String, low: String, high: String) -> String {
        "<div class=\"legend\"><span>\(ReportHTML.escape(low))</span><span class=\"bar\" style=\"background:linear-gradient(to right, \(from), \(via), \(to))\"></span><span>\(ReportHTML.escape(high))</span></div>\n"
    }
}

/// HTML helpers of the report.
public enum ReportHTML {
    /// Text for HTML content and attribute values: & < > " ' escaped.
    public static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default:
                if c.value < 0x20 && c != "\n" && c != "\t" { out += "&#\(0x2400 + c.value);" } else { out.unicodeScalars.append(c) }
            }
        }
        return out
    }

    public static func number(_ v: Double?) -> String {
        guard let v, v.isFinite else { return "-" }
        if v == 0 { return "0" }
        let a = abs(v)
        if a >= 1e5 || a < 1e-3 { return String(format: "%.3g", v) }
        if a >= 100 { return String(format: "%.1f", v) }
        return String(format: "%.3g", v)
    }

    static func percent(_ v: Double?) -> String {
        guard let v, v.isFinite else { return "-" }
        return String(format: v < 0.1 ? "%.2f%%" : "%.1f%%", v * 100)
    }

    /// A file's name without folder and extension, at most 22 characters, for a chart legend.
    static func shortName(_ path: String) -> String {
        var name = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        if name.count > 22 { name = String(name.prefix(21)) + "\u{2026}" }
        return name
    }

    static func roleName(_ role: Int32) -> String {
        switch CaptureRole(rawValue: role) {
        case .prompt: return "shared prompt token"
        case .lastPrompt: return "last prompt token"
        case .answer: return "answer token"
        case nil: return "role \(role)"
        }
    }

    static func mix(_ a: (Double, Double, Double), _ b: (Double, Double, Double), _ t: Double) -> (Double, Double, Double) {
        (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t, a.2 + (b.2 - a.2) * t)
    }

    static func rgb(_ c: (Double, Double, Double)) -> String {
        String(format: "#%02x%02x%02x", Int(c.0.rounded()), Int(c.1.rounded()), Int(c.2.rounded()))
    }

    /// White -> orange -> red for t in [0, 1].
    public static func heat(_ t: Double) -> String {
        let t = min(max(t, 0), 1)
        let white = (255.0, 255.0, 255.0), orange = (253.0, 174.0, 97.0), red = (215.0, 25.0, 28.0)
        return rgb(t < 0.5 ? mix(white, orange, t * 2) : mix(orange, red, (t - 0.5) * 2))
    }

    /// White -> light blue -> blue for t in [0, 1].
    public static func blue(_ t: Double) -> String {
        let t = min(max(t, 0), 1)
        let white = (255.0, 255.0, 255.0), light = (146.0, 197.0, 222.0), dark = (5.0, 113.0, 176.0)
        return rgb(t < 0.5 ? mix(white, light, t * 2) : mix(light, dark, (t - 0.5) * 2))
    }

    public static let css = """
        body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:24px auto;max-width:1120px;color:#222;line-height:1.45;padding:0 16px}
        h1{font-size:22px;margin-bottom:4px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd;padding-bottom:3px}
        p{font-size:14px}.meta{color:#555;font-size:13px;margin:4px 0}code{font-size:12px;background:#f4f4f4;padding:1px 3px;border-radius:3px}
        .finding{background:#fff8e6;border-left:4px solid #e6a100;padding:6px 14px;margin:14px 0;font-size:14px}
        .finding ul{margin:4px 0;padding-left:18px}
        .charts{display:flex;flex-wrap:wrap;gap:16px;margin:10px 0}.charts svg{border:1px solid #e4e4e4}
        table{border-collapse:collapse;margin:14px 0;font-size:13px}caption{text-align:left;font-weight:600;padding:4px 0}
        th,td{border:1px solid #d8d8d8;padding:3px 8px;text-align:right}th{background:#f3f3f3}td:first-child{text-align:left}
        .example{margin:10px 0 14px}.caption{font-size:12px;color:#555;margin-bottom:3px}
        .tokens{font-family:Menlo,Consolas,"DejaVu Sans Mono",monospace;font-size:13px;line-height:1.9;white-space:pre-wrap;word-break:break-word}
        .tok{padding:1px 0;border-radius:2px}.tok.prompt{outline:1px solid #9a9a9a;outline-offset:-1px}
        .tok.dark{color:#fff}.tok.sample{padding:0 3px}
        .legend{display:flex;align-items:center;gap:8px;font-size:12px;color:#555;margin:4px 0 8px}
        .legend .bar{display:inline-block;width:220px;height:12px;border:1px solid #ccc}
        .foot{color:#777;font-size:12px;margin-top:30px}
        .finding.warning{background:#fdecea;border-left-color:#c62828}
        .prompts{display:grid;grid-template-columns:1fr 1fr;gap:10px;margin:6px 0 14px}
        .prompts pre{margin:2px 0;background:#f7f7f7;border:1px solid #e0e0e0;padding:6px;font-size:12px;white-space:pre-wrap;word-break:break-word}
        """
}
