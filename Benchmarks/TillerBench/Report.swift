import Foundation
import TillerCore
import TillerCPU

/// A goal from the project issue, checked against one row.
struct Target: Codable {
    /// What is compared: "ratio" (the row's ratio to its reference), "GFLOP/s", "bf16 vs f32"...
    var metric: String
    var value: Double
    var threshold: Double
    var pass: Bool

    init(metric: String, value: Double, atLeast threshold: Double) {
        self.metric = metric
        self.value = value
        self.threshold = threshold
        // A NaN (a zero-time reference, say) must not pass silently.
        pass = value >= threshold
    }

    var text: String {
        "\(metric) \(formatFigure(value)) >= \(String(format: "%g", threshold)) \(pass ? "PASS" : "MISS")"
    }
}

/// The reference measured beside a row, in the same run and the same unit.
struct ReferenceFigure: Codable {
    var name: String
    var figure: Double
    var seconds: Double
}

/// One line of the report.
struct Row: Codable {
    var name: String
    var shape: String
    var figure: Double
    var unit: String
    /// Median seconds per call.
    var seconds: Double
    var fastestSeconds: Double
    var callsPerSample: Int
    var reference: ReferenceFigure
    /// figure / reference.figure
    var ratio: Double
    var targets: [Target]
}

/// Everything that describes where and how the figures were taken.
struct MachineInfo: Codable {
    var cpu: String
    var cores: Int
    var openblas: String
    var openblasConfig: String
    var backend: String
    var date: String
    /// 1-minute load average when the run started and when it ended: figures taken on a busy
    /// machine (a concurrent build, say) say more about the neighbour than about the code.
    var loadAverageBefore: Double
    var loadAverageAfter: Double

    static func current(backend: Backend, start: Date, loadBefore: Double) -> MachineInfo {
        MachineInfo(cpu: cpuModel() ?? "unknown", cores: sysconf(Int32(_SC_NPROCESSORS_ONLN)),
                    openblas: OpenBLASRuntime.summary, openblasConfig: OpenBLASRuntime.config,
                    backend: "\(backend.name): \(backend.deviceDescription)",
                    date: ISO8601DateFormatter().string(from: start),
                    loadAverageBefore: loadBefore, loadAverageAfter: loadAverage())
    }

    static func loadAverage() -> Double {
        var load = [0.0]
        return getloadavg(&load, 1) == 1 ? load[0] : .nan
    }

    static func cpuModel() -> String? {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("model name") {
            if let colon = line.firstIndex(of: ":") {
                return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        return nil
    }
}

struct Settings: Codable {
    var repeats: Int
    var warmup: Int
    var minSampleSeconds: Double
    var quick: Bool
    var filter: String?
}

struct TargetSummary: Codable {
    var pass: Int
    var miss: Int
    var missed: [String]
}

struct ReportDocument: Codable {
    var tool = "tiller-bench"
    var version = Tiller.version
    var machine: MachineInfo
    var settings: Settings
    var rows: [Row]
    var targets: TargetSummary
}

/// Three significant figures or one decimal, whichever reads better at that size.
func formatFigure(_ x: Double) -> String {
    guard x.isFinite else { return "\(x)" }
    let magnitude = abs(x)
    if magnitude >= 100 { return String(format: "%.1f", x) }
    if magnitude >= 10 { return String(format: "%.2f", x) }
    return String(format: "%.3f", x)
}

enum Report {
    static func summary(_ rows: [Row]) -> TargetSummary {
        let targets = rows.flatMap { row in row.targets.map { (row, $0) } }
        let missed = targets.filter { !$0.1.pass }.map { "\($0.0.name) \($0.0.shape): \($0.1.text)" }
        return TargetSummary(pass: targets.count - missed.count, miss: missed.count, missed: missed)
    }

    static func json(_ document: ReportDocument) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return String(decoding: try encoder.encode(document), as: UTF8.self)
    }

    /// The aligned table, with the machine and timing settings above it so a pasted table
    /// carries its own context.
    static func table(_ document: ReportDocument) -> String {
        let m = document.machine, s = document.settings
        var lines = [
            "tiller-bench \(document.version)  \(m.date)",
            "cpu:     \(m.cpu), \(m.cores) cores, load average \(String(format: "%.2f", m.loadAverageBefore)) before, \(String(format: "%.2f", m.loadAverageAfter)) after",
            "blas:    \(m.openblas)",
            "timing:  median of \(s.repeats) samples after \(s.warmup) warm-up, each sample >= \(formatFigure(s.minSampleSeconds * 1000)) ms"
                + (s.quick ? " (quick)" : "") + (s.filter.map { ", filter \"\($0)\"" } ?? ""),
            "ratio:   figure / reference figure, both measured in this run, samples interleaved",
            "",
        ]
        let header = ["benchmark", "shape", "figure", "unit", "reference", "ratio", "target"]
        let body = document.rows.map { row in
            [row.name, row.shape, formatFigure(row.figure), row.unit,
             "\(formatFigure(row.reference.figure)) \(row.reference.name)",
             String(format: "%.2fx", row.ratio),
             row.targets.isEmpty ? "-" : row.targets.map(\.text).joined(separator: "; ")]
        }
        // Numbers right-aligned, words left-aligned.
        let rightAligned: Set<Int> = [2, 5]
        var widths = header.map(\.count)
        for cells in body { for (i, cell) in cells.enumerated() { widths[i] = max(widths[i], cell.count) } }
        func render(_ cells: [String]) -> String {
            cells.enumerated().map { i, cell in
                let pad = String(repeating: " ", count: widths[i] - cell.count)
                return rightAligned.contains(i) ? pad + cell : (i == cells.count - 1 ? cell : cell + pad)
            }.joined(separator: "  ")
        }
        lines.append(render(header))
        lines.append(render(widths.map { String(repeating: "-", count: $0) }))
        var previousGroup: Substring? = nil
        for (row, cells) in zip(document.rows, body) {
            // A blank line between benchmark families (matmul, attention, psr).
            let group = row.name.split(separator: "/").first
            if let previousGroup, previousGroup != group { lines.append("") }
            previousGroup = group
            lines.append(render(cells))
        }
        let t = document.targets
        lines.append("")
        lines.append("targets: \(t.pass) pass, \(t.miss) miss")
        for miss in t.missed { lines.append("  MISS \(miss)") }
        return lines.joined(separator: "\n")
    }
}
