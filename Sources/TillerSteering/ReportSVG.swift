import Foundation

/// Small inline SVG line charts for the analysis report: categorical x (layers), linear or log y,
/// a legend, no scripts and no external resources.
public enum ReportChart {
    public struct Series {
        public var name: String
        public var color: String
        public var values: [Double?]
        public var dashed: Bool

        public init(name: String, color: String, values: [Double?], dashed: Bool = false) {
            self.name = name
            self.color = color
            self.values = values
            self.dashed = dashed
        }
    }

    /// A line chart with markers. Values that are nil, non-finite or (on a log axis) not positive
    /// leave a gap.
    public static func lines(title: String, xTitle: String, yTitle: String, xLabels: [String], series: [Series],
                             logarithmic: Bool, yRange: ClosedRange<Double>? = nil, width: Int = 540, height: Int = 320,
                             legendWidth: Double = 118) -> String {
        let left = 64.0, right = 16.0, top = 34.0, bottom = 48.0
        let plotW = Double(width) - left - right - legendWidth, plotH = Double(height) - top - bottom
        func usable(_ v: Double?) -> Double? {
            guard let v, v.isFinite, !logarithmic || v > 0 else { return nil }
            return v
        }
        let all = series.flatMap { $0.values.compactMap(usable) }
        var lo = yRange?.lowerBound ?? (all.min() ?? (logarithmic ? 0.1 : 0))
        var hi = yRange?.upperBound ?? (all.max() ?? 1)
        if logarithmic {
            lo = pow(10, floor(log10(max(lo, 1e-12))))
            hi = pow(10, ceil(log10(max(hi, lo * 10))))
        } else {
            if yRange == nil { lo = min(0, lo) }
            if hi <= lo { hi = lo + 1 }
            if yRange == nil { hi = niceCeiling(hi) }
        }
        func y(_ v: Double) -> Double {
            let f = logarithmic ? (log10(v) - log10(lo)) / (log10(hi) - log10(lo)) : (v - lo) / (hi - lo)
            return top + plotH * (1 - min(max(f, 0), 1))
        }
        let n = max(xLabels.count, 1)
        func x(_ i: Int) -> Double { n == 1 ? left + plotW / 2 : left + plotW * (0.04 + 0.92 * Double(i) / Double(n - 1)) }

        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\" role=\"img\" aria-label=\"\(ReportHTML.escape(title))\">"
        svg += "<rect x=\"0\" y=\"0\" width=\"\(width)\" height=\"\(height)\" fill=\"#ffffff\"/>"
        svg += text(left + plotW / 2, 20, title, anchor: "middle", size: 14, weight: "600")
        // Grid and y ticks.
        for tick in ticks(lo: lo, hi: hi, logarithmic: logarithmic) {
            let ty = y(tick.value)
            svg += "<line x1=\"\(f(left))\" y1=\"\(f(ty))\" x2=\"\(f(left + plotW))\" y2=\"\(f(ty))\" stroke=\"\(tick.major ? "#d0d0d0" : "#eeeeee")\" stroke-width=\"1\"/>"
            if tick.major || !logarithmic {
                svg += text(left - 6, ty + 4, label(tick.value), anchor: "end", size: 11)
            }
        }
        svg += "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(plotW))\" height=\"\(f(plotH))\" fill=\"none\" stroke=\"#888888\"/>"
        // X labels (thinned when crowded).
        let every = max(1, Int((Double(n) * 28 / plotW).rounded(.up)))
        for (i, name) in xLabels.enumerated() where i % every == 0 || i == n - 1 {
            svg += text(x(i), top + plotH + 16, name, anchor: "middle", size: 11)
        }
        svg += text(left + plotW / 2, Double(height) - 10, xTitle, anchor: "middle", size: 12)
        svg += "<text x=\"14\" y=\"\(f(top + plotH / 2))\" font-size=\"12\" text-anchor=\"middle\" font-family=\"sans-serif\" fill=\"#333\" transform=\"rotate(-90 14 \(f(top + plotH / 2)))\">\(ReportHTML.escape(yTitle + (logarithmic ? " (log scale)" : "")))</text>"
        // Series.
        for s in series {
            var segments: [[(Double, Double)]] = [[]]
            for (i, v) in s.values.enumerated() {
                if let v = usable(v) { segments[segments.count - 1].append((x(i), y(v))) } else if !segments.last!.isEmpty { segments.append([]) }
            }
            let dash = s.dashed ? " stroke-dasharray=\"5 4\"" : ""
            for segment in segments where segment.count > 1 {
                let points = segment.map { "\(f($0.0)),\(f($0.1))" }.joined(separator: " ")
                svg += "<polyline points=\"\(points)\" fill=\"none\" stroke=\"\(s.color)\" stroke-width=\"2\"\(dash)/>"
            }
            for (i, v) in s.values.enumerated() {
                guard let v = usable(v) else { continue }
                svg += "<circle cx=\"\(f(x(i)))\" cy=\"\(f(y(v)))\" r=\"3\" fill=\"\(s.color)\"><title>\(ReportHTML.escape("\(s.name), \(xLabels.indices.contains(i) ? xLabels[i] : "\(i)"): \(label(v, precise: true))"))</title></circle>"
            }
        }
        // Legend.
        let lx = left + plotW + 14
        for (k, s) in series.enumerated() {
            let ly = top + 10 + Double(k) * 18
            let dash = s.dashed ? " stroke-dasharray=\"5 4\"" : ""
            svg += "<line x1=\"\(f(lx))\" y1=\"\(f(ly))\" x2=\"\(f(lx + 22))\" y2=\"\(f(ly))\" stroke=\"\(s.color)\" stroke-width=\"2\"\(dash)/>"
            svg += text(lx + 28, ly + 4, s.name, anchor: "start", size: 11)
        }
        return svg + "</svg>"
    }

    struct Tick { var value: Double; var major: Bool }

    static func ticks(lo: Double, hi: Double, logarithmic: Bool) -> [Tick] {
        if logarithmic {
            var out: [Tick] = []
            var decade = lo
            while decade <= hi * 1.0001 {
                out.append(Tick(value: decade, major: true))
                if decade * 10 <= hi * 1.0001 || hi / lo <= 100 {
                    for m in [2.0, 5.0] where decade * m < hi { out.append(Tick(value: decade * m, major: hi / lo <= 100)) }
                }
                decade *= 10
            }
            return out
        }
        let step = niceStep((hi - lo) / 5)
        var out: [Tick] = []
        var v = (lo / step).rounded(.up) * step
        while v <= hi + step * 1e-6 {
            out.append(Tick(value: v, major: true))
            v += step
        }
        return out
    }

    static func niceStep(_ raw: Double) -> Double {
        guard raw > 0, raw.isFinite else { return 1 }
        let p = pow(10, floor(log10(raw)))
        for m in [1.0, 2.0, 2.5, 5.0, 10.0] where m * p >= raw { return m * p }
        return 10 * p
    }

    static func niceCeiling(_ v: Double) -> Double {
        guard v > 0 else { return 1 }
        let step = niceStep(v / 5)
        return (v / step).rounded(.up) * step
    }

    static func f(_ v: Double) -> String { String(format: "%.1f", v) }

    /// A number for an axis or tooltip: 3 significant digits, scientific outside 1e-3 ... 1e5.
    static func label(_ v: Double, precise: Bool = false) -> String {
        if v == 0 { return "0" }
        let a = abs(v)
        if a >= 1e5 || a < 1e-3 { return String(format: precise ? "%.3g" : "%.0e", v) }
        return String(format: "%.\(precise ? 4 : 3)g", v)
    }

    static func text(_ x: Double, _ y: Double, _ s: String, anchor: String, size: Int, weight: String = "400") -> String {
        "<text x=\"\(f(x))\" y=\"\(f(y))\" font-size=\"\(size)\" font-weight=\"\(weight)\" text-anchor=\"\(anchor)\" font-family=\"sans-serif\" fill=\"#333\">\(ReportHTML.escape(s))</text>"
    }
}
