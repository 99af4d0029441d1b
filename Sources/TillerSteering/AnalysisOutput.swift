import Foundation

public extension CaptureAnalysis {
    /// The per-layer table `tiller analyze` prints, then by role, then each steering file's relative
    /// RMSE per layer.
    var table: String {
        func n(_ v: Double?) -> String {
            guard let v, v.isFinite else { return "-" }
            let a = abs(v)
            if v != 0 && (a >= 1e5 || a < 1e-3) { return String(format: "%.3g", v) }
            return String(format: a >= 100 ? "%.1f" : "%.4g", v)
        }
        func p(_ v: Double?) -> String {
            guard let v, v.isFinite else { return "-" }
            return String(format: "%.2f%%", v * 100)
        }
        func row(_ cells: [String], _ widths: [Int]) -> String {
            zip(cells, widths).map { c, w in String(repeating: " ", count: max(0, w - c.count)) + c }.joined(separator: "  ")
        }
        var lines: [String] = []
        lines.append("||Delta_PS|| per token: \(info.rows) rows, \(info.triplets) triplets, hidden size \(info.hiddenSize)")
        let widths = [5, 8, 9, 9, 9, 9, 9, 9, 10, 10, 9]
        lines.append(row(["layer", "rows", "mean", "p10", "p50", "p90", "p99", "max", "max/med", "half-mass", "||h|| p50"], widths))
        for s in layers {
            let a = s.all
            lines.append(row(["\(s.layer)", "\(a.count)", n(a.mean), n(a.p10), n(a.p50), n(a.p90), n(a.p99), n(a.max),
                              n(a.maxOverMedian), p(a.halfMassShare), s.residual.count > 0 ? n(s.residual.p50) : "-"], widths))
        }
        lines.append("")
        lines.append("by role (prompt: shared prompt tokens incl. the last; answer: y')")
        lines.append("(mass: the role's share of sum ||Delta||^2 at the layer; last: the last prompt token alone)")
        let roleWidths = [5, 7, 9, 9, 9, 10, 8, 7, 9, 9, 9, 10, 8, 5, 9, 8]
        lines.append(row(["layer", "prompt", "mean", "p50", "max", "half-mass", "mass", "answer", "mean", "p50", "max", "half-mass", "mass",
                          "last", "mean", "mass"], roleWidths))
        for s in layers {
            let total = s.all.sumOfSquares
            func mass(_ a: NormStatistics) -> String { total > 0 ? p(a.sumOfSquares / total) : "-" }
            lines.append(row(["\(s.layer)", "\(s.prompt.count)", n(s.prompt.mean), n(s.prompt.p50), n(s.prompt.max), p(s.prompt.halfMassShare), mass(s.prompt),
                              "\(s.answer.count)", n(s.answer.mean), n(s.answer.p50), n(s.answer.max), p(s.answer.halfMassShare), mass(s.answer),
                              "\(s.lastPrompt.count)", s.lastPrompt.count > 0 ? n(s.lastPrompt.mean) : "-", mass(s.lastPrompt)], roleWidths))
        }
        for r in replays {
            lines.append("")
            lines.append("\(r.name): method \(r.method), alpha \(r.alpha), location \(r.location)")
            let w = [5, 10, 12, 10, 12]
            lines.append(row(["layer", "rel.RMSE", "rel.RMSE(ans)", "mean proj", "share along z"], w))
            for l in r.layers {
                lines.append(row(["\(l.layer)", n(l.relativeRMSE), n(l.relativeRMSEAnswer), n(l.projection?.mean), p(l.projection?.explainedShare)], w))
            }
        }
        return lines.joined(separator: "\n")
    }

    /// Everything but the per-row values, as JSON (keys sorted; absent values are null).
    func json() throws -> String {
        func v(_ x: Double?) -> Any { x.flatMap { $0.isFinite ? $0 : nil } ?? NSNull() }
        func stats(_ s: NormStatistics) -> [String: Any] {
            ["count": s.count, "mean": v(s.mean), "p10": v(s.p10), "p50": v(s.p50), "p90": v(s.p90), "p99": v(s.p99), "max": v(s.max),
             "max_over_median": v(s.maxOverMedian), "half_mass_share": v(s.halfMassShare), "sum_of_squares": v(s.sumOfSquares)]
        }
        let object: [String: Any] = [
            "capture": [
                "rows": info.rows, "triplets": info.triplets, "layers": info.layers, "hidden_size": info.hiddenSize,
                "source": info.source, "model": info.model.summary,
            ],
            "layers": layers.map { s in
                ["layer": s.layer, "all": stats(s.all), "prompt": stats(s.prompt), "answer": stats(s.answer), "last_prompt": stats(s.lastPrompt),
                 "residual_norm": stats(s.residual)] as [String: Any]
            },
            "steering": replays.map { r in
                ["file": r.name, "method": r.method, "alpha": Double(r.alpha), "location": r.location,
                 "layers": r.layers.map { l in
                     var entry: [String: Any] = ["layer": l.layer, "relative_rmse": v(l.relativeRMSE), "relative_rmse_answer": v(l.relativeRMSEAnswer)]
                     if let p = l.projection {
                         entry["projection_mean"] = v(p.mean)
                         entry["projection_mean_answer"] = v(p.meanAnswer)
                         entry["projection_share"] = v(p.explainedShare)
                     }
                     return entry
                 }] as [String: Any]
            },
        ]
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }
}
