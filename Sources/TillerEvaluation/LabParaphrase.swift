import TillerCore
import TillerLab
import TillerModels
import TillerSteering

/// The PSR paper's "equivalent prompt" yardstick: Delta_PS of the steering text in other words
/// (`LabTarget.paraphraseText`) against Delta_PS of the text itself, as a relative RMSE over the
/// rows both captures share. A trained head whose relative RMSE is near this one reproduces the
/// prompt about as closely as a rewording of the prompt does.
enum LabParaphrase {
    /// sqrt(sum ||Delta'_t - Delta_t||^2 / sum ||Delta_t||^2) at `layer` over the positions of xy'
    /// that both the prompt and its paraphrase share with x (each triplet captured alone, so its
    /// rows are known). nil when no row is shared or Delta is zero everywhere.
    /// `paraphrase` gives the other x' (tests put the prompt itself there).
    static func relativeRMSE(_ examples: [LabExample], prompted: [CaptureTriplet], layer: Int, evaluation: LabEvaluation, source: String,
                             paraphrase: (LabExample) -> [LabMessage] = LabParaphrase.messages) throws -> Double? {
        let paraphrased = try LabComparison.prepare(examples, evaluation: evaluation, source: source + " (paraphrased)",
                                                    steeredMessages: paraphrase)
        let capture = try ActivationCapture(model: evaluation.model, layers: [layer])
        let d = evaluation.model.hiddenSize
        var total = RelativeRMSE()
        for (original, paraphrase) in zip(prompted, paraphrased) {
            let a = try capture.capture(original), b = try capture.capture(paraphrase)
            var rowOfPosition: [Int32: Int] = [:]
            for (r, position) in b.positions.enumerated() { rowOfPosition[position] = r }
            for (r, position) in a.positions.enumerated() {
                guard let s = rowOfPosition[position] else { continue }
                let delta = Array(a.delta[0][(r * d)..<((r + 1) * d)])
                let other = Array(b.delta[0][(s * d)..<((s + 1) * d)])
                let row = RelativeRMSE.of(intervention: other, delta: delta)
                total.errorSquared += row.errorSquared
                total.deltaSquared += row.deltaSquared
            }
        }
        return total.value
    }

    /// x' with the paraphrased steering text in the example's placement.
    static func messages(_ example: LabExample) -> [LabMessage] {
        LabPrompt.messages(question: example.question, steeringText: example.target?.paraphraseText, placement: example.placement)
    }
}
