import Foundation
import TillerLab

/// The printed form of a sweep (`tiller lab eval --steer FILE --factors ...`).
public extension LabSweepResult {
    /// The selection half: the headline score at every factor (the kept one marked with *), wrapped
    /// to 100 columns, then the factor kept.
    func selectionTable() -> [String] {
        guard !selectionScores.isEmpty else {
            return ["one factor (\(LabComparison.factorText(chosenFactor))): nothing to choose, the first half is not asked"]
        }
        var lines = ["factor sweep on the first half (\(selectionIDs.count) examples): \(LabHeadline.name(report.kind))"]
        let width = 7, perLine = (TextLayout.width - 8) / width
        for start in stride(from: 0, to: factors.count, by: perLine) {
            var factorLine = TextLayout.padRight("factor", 8), scoreLine = TextLayout.padRight("score", 8)
            for i in start..<min(start + perLine, factors.count) {
                factorLine += TextLayout.padLeft(LabComparison.factorText(factors[i]) + (i == chosenIndex ? "*" : ""), width)
                scoreLine += TextLayout.padLeft(String(format: "%.3f", selectionScores[i]), width)
            }
            lines += [factorLine, scoreLine]
        }
        lines.append("kept factor \(LabComparison.factorText(chosenFactor)) (alpha \(LabComparison.factorText(Double(chosenAlpha)))); "
                     + "the other half (\(report.rows.count) examples) at it: headline \(String(format: "%.3f", headline))")
        return lines
    }
}
