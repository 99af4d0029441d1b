import TillerLab
import TillerModels

/// Whether an evaluation prompts with the steering text or asks the bare question.
public enum LabSteerMode: String, Sendable, CaseIterable {
    case prompt, none

    public var steered: Bool { self == .prompt }
}

/// One metric's name and value, in the judges' fixed order (see `LabScores.metrics`).
public struct LabMetric: Sendable, Hashable {
    public let name: String
    public let value: Double

    public init(name: String, value: Double) {
        self.name = name
        self.value = value
    }
}

/// One evaluated example: what was asked, what the model answered, and the judges' scores against the
/// example's target (unsteered answers are judged against the same target).
public struct LabEvaluationRow: Sendable {
    public let example: LabExample
    /// The messages the model was prompted with.
    public let messages: [LabMessage]
    public let answer: String
    public let stopReason: StopReason
    public let scores: LabScores

    public init(example: LabExample, messages: [LabMessage], answer: String, stopReason: StopReason, scores: LabScores) {
        self.example = example
        self.messages = messages
        self.answer = answer
        self.stopReason = stopReason
        self.scores = scores
    }

    public var metrics: [LabMetric] { scores.metrics.map { LabMetric(name: $0.name, value: $0.value) } }
}

/// Means of every metric over a group of rows.
public struct LabMetricMeans: Sendable {
    public let count: Int
    /// In the judges' order; empty for no rows.
    public let means: [LabMetric]

    /// Averages every metric over `rows`; a metric missing from some rows (a mixed list) is averaged
    /// over the rows that have it, and metrics keep the order they are first met in.
    public init(_ rows: [[LabMetric]]) {
        var names: [String] = []
        var sums: [String: (total: Double, count: Int)] = [:]
        for metrics in rows {
            for metric in metrics {
                if sums[metric.name] == nil { names.append(metric.name) }
                let sum = sums[metric.name] ?? (0, 0)
                sums[metric.name] = (sum.total + metric.value, sum.count + 1)
            }
        }
        count = rows.count
        means = names.map { name in
            let sum = sums[name]!
            return LabMetric(name: name, value: sum.total / Double(sum.count))
        }
    }

    public subscript(name: String) -> Double? { means.first { $0.name == name }?.value }
}

/// An evaluation's result: the rows and the metric means, overall and per placement.
public struct LabEvaluationReport: Sendable {
    public let kind: LabKind
    public let steer: LabSteerMode
    public let rows: [LabEvaluationRow]
    public let overall: LabMetricMeans
    /// System then user; a placement with no rows is left out.
    public let byPlacement: [(placement: LabPlacement, means: LabMetricMeans)]
    public let generation: GenerationProgress

    public init(kind: LabKind, steer: LabSteerMode, rows: [LabEvaluationRow], generation: GenerationProgress) {
        self.kind = kind
        self.steer = steer
        self.rows = rows
        self.generation = generation
        overall = LabMetricMeans(rows.map(\.metrics))
        byPlacement = [LabPlacement.system, .user].compactMap { placement in
            let group = rows.filter { $0.example.placement == placement }
            return group.isEmpty ? nil : (placement, LabMetricMeans(group.map(\.metrics)))
        }
    }
}
