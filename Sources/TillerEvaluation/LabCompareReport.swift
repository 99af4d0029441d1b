import Foundation
import TillerLab
import TillerSteering
import TillerTraining

/// `tiller lab compare`'s outputs: one table (rows: unsteered, prompt and each method; columns: the
/// targets), as plain text, as markdown, and as JSON with every number.
public extension LabComparison {
    /// The methods' rows in table order.
    var methodOrder: [String] {
        var order = ["unsteered", "prompt"] + settings.methods.map(\.rawValue) + settings.trained.map(\.rawValue)
        if results.contains(where: { $0.kind == .format }) {
            order += settings.trained.filter { $0.method == .psr }.map { LabComparison.stackedName($0.rawValue) }
        }
        return order
    }

    /// The numbers the claims are checked on (`LabClaims`).
    var claimScores: [LabClaims.TargetScores] {
        results.map { result in
            LabClaims.TargetScores(kind: result.kind, target: result.target.name,
                                   traitAtC80: result.matched.compactMapValues { $0.first { $0.level == "C80" }?.trait },
                                   headline: Dictionary(result.cells.map { ($0.method, $0.headline) }, uniquingKeysWith: { $1 }),
                                   relativeRMSE: Dictionary(result.replayed.map { ($0.method, $0.relativeRMSE) }, uniquingKeysWith: { $1 }))
        }
    }

    var verdicts: [LabClaims.Verdict] { LabClaims.verdicts(claimScores) }

    /// Persona at matched coherence in markdown: per steering row and persona target, the trait
    /// score at coherence 80 and at the prompt's coherence, each with its factor.
    func matchedMarkdown() -> String? {
        let persona = results.filter { !$0.matched.isEmpty }
        guard !persona.isEmpty else { return nil }
        var lines = ["| method | " + persona.map { "\($0.target.name): TA@C80 | \($0.target.name): TA@Cp" }.joined(separator: " | ") + " |",
                     "|---|" + persona.map { _ in "---:|---:|" }.joined()]
        for method in methodOrder where persona.contains(where: { $0.matched[method] != nil }) {
            let cells = persona.flatMap { result -> [String] in
                let points = result.matched[method] ?? []
                return ["C80", "Cp"].map { level in
                    points.first { $0.level == level }.map {
                        String(format: "%.0f (coh %.0f)", $0.trait, $0.coherence) + " @\(LabComparison.factorText(($0.factor * 1000).rounded() / 1000))"
                    } ?? "-"
                }
            }
            lines.append("| \(LabComparison.label(method)) | " + cells.joined(separator: " | ") + " |")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// What a column shows for its kind.
    static func metricLabel(_ kind: LabKind) -> String {
        switch kind {
        case .concept: return "aggregate"
        case .persona: return "trait/coherence"
        case .format: return "pass/coherence"
        case .none: return "-"
        }
    }

    /// A cell: concept "1.85", persona "92/100", format "0.95/98"; then "@2.5", the factor kept.
    static func cellText(_ cell: Cell, kind: LabKind) -> String {
        let m = cell.means
        var text: String
        switch kind {
        case .concept: text = String(format: "%.2f", m["aggregate"] ?? 0)
        case .persona: text = String(format: "%.0f/%.0f", m["trait"] ?? 0, m["coherence"] ?? 0)
        case .format: text = String(format: "%.2f/%.0f", m["pass"] ?? 0, m["coherence"] ?? 0)
        case .none: text = "-"
        }
        if let factor = cell.factor { text += " @\(factorText(factor))" }
        return text
    }

    /// The table as plain text: a header of two lines (kind and metric, target) over the rows.
    func table() -> String {
        let headers = results.map { ("\($0.kind.rawValue) \(LabComparison.metricLabel($0.kind))", $0.target.name) }
        let cells = methodOrder.map { method in
            results.map { result in result.cell(method).map { LabComparison.cellText($0, kind: result.kind) } ?? "-" }
        }
        let widths = results.indices.map { i in
            max(headers[i].0.count, headers[i].1.count, cells.map { $0[i].count }.max() ?? 0) + 2
        }
        let first = 11
        var lines = [TextLayout.padRight("", first) + headers.indices.map { TextLayout.padLeft(headers[$0].0, widths[$0]) }.joined(),
                     TextLayout.padRight("method", first) + headers.indices.map { TextLayout.padLeft(headers[$0].1, widths[$0]) }.joined()]
        for (method, row) in zip(methodOrder, cells) {
            lines.append(TextLayout.padRight(LabComparison.label(method), first) + row.indices.map { TextLayout.padLeft(row[$0], widths[$0]) }.joined())
        }
        return lines.joined(separator: "\n")
    }

    /// The settings in one paragraph (for the text output and the markdown).
    func settingsText() -> String {
        let layers = Set(results.map(\.layer)).sorted().map(String.init).joined(separator: ",")
        return "Layer \(layers) of \(layerCount) (0-based, the residual stream after that block); each method fitted "
            + "(rows \(settings.rows.rawValue)) on a capture of the target's first \(settings.trainTriplets) train triplets "
            + "(corpus seed \(seed)), steering at location \(settings.location.name); factors "
            + settings.factors.map(LabComparison.factorText).joined(separator: ",")
            + " multiply alpha 1 (each fit's own scale), the best chosen on the first half of each target's held-out "
            + "examples (at most \(settings.limit)) and scored on the other half, where unsteered and prompt are scored too; "
            + "greedy answers of at most \(settings.maxNewTokens) tokens."
    }

    /// The table in markdown, the settings, and per target the example counts and each fit's
    /// relative RMSE. `command` is shown as the command that produced it.
    func markdown(command: String? = nil, date: String? = nil) -> String {
        var lines: [String] = []
        if let command { lines += ["Command: `\(command)`" + (date.map { " (\($0))" } ?? ""), ""] }
        lines.append("| method | " + results.map { "\($0.kind.rawValue) \($0.target.name): \(LabComparison.metricLabel($0.kind))" }.joined(separator: " | ") + " |")
        lines.append("|---|" + results.map { _ in "---:|" }.joined())
        for method in methodOrder {
            let row = results.map { result in result.cell(method).map { LabComparison.cellText($0, kind: result.kind) } ?? "-" }
            lines.append("| \(LabComparison.label(method)) | " + row.joined(separator: " | ") + " |")
        }
        lines += ["", "Concept: the mean AxBench aggregate (0-2); persona: trait / coherence (0-100); format: pass rate / "
                  + "coherence (0-100); @F: the factor the sweep kept. " + settingsText(), ""]
        if let matched = matchedMarkdown() {
            lines += ["Persona at matched coherence (the PSR paper's TA@C80 and TA@Cp): the trait score on the scored half at the "
                      + "largest factor whose mean coherence is at least 80 (or the prompt's coherence there), found by bisection "
                      + "(\(settings.matchedSteps) steps in 0-\(LabComparison.factorText(settings.factors.max() ?? 1))); @0: no factor was "
                      + "coherent enough, the unsteered answers' scores.", "", matched]
        }
        lines += ["The paper's claims on these numbers (left and right: the two rows' scores):", "", LabClaims.markdown(verdicts)]
        if !settings.trained.isEmpty {
            lines += ["Trained rows: \(settings.training.epochs) epochs of AdamW, learning rate \(settings.training.learningRate) "
                      + "(decayed linearly to 0), batch \(settings.training.batchSize), seed \(settings.training.seed), on every "
                      + "train triplet, heads acting at location \(settings.training.location.name); S- rows: one head at the layer "
                      + "above, A- rows: every layer; ReFT-r1: one direction at the layer above, times its largest latent.", ""]
        }
        lines += ["Relative RMSE against Delta_PS at the compare layer; the last column is the yardstick, the steering prompt in "
                  + "other words (e.g. \"act as a cheerful assistant.\") against the prompt itself.", ""]
        lines.append("| target | train triplets | captured rows | fitted rows | held-out (choose / score) | relative RMSE: "
                     + (settings.methods.map(\.rawValue) + settings.trained.map(\.rawValue)).map(LabComparison.label).joined(separator: " / ")
                     + " | paraphrased prompt |")
        lines.append("|---|---:|---:|---:|---:|---:|---:|")
        for result in results {
            lines.append("| \(result.kind.rawValue) \(result.target.name) | \(result.trainTriplets) | \(result.capturedRows) | \(result.fittedRows) | "
                         + "\(result.selectionCount) / \(result.evaluationCount) | "
                         + (result.fits.map(\.relativeRMSE) + result.replayed.map(\.relativeRMSE)).map { String(format: "%.3f", $0) }.joined(separator: " / ")
                         + " | " + (result.paraphraseRMSE.map { String(format: "%.3f", $0) } ?? "-") + " |")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Every number: settings, and per target the fits and every row's means, factor and selection
    /// scores (keys sorted).
    func json(extra: [String: Any] = [:]) throws -> String {
        var document: [String: Any] = [
            "seed": seed,
            "layer_count": layerCount,
            "train_triplets": settings.trainTriplets,
            "limit": settings.limit,
            "factors": settings.factors,
            "rows": settings.rows.rawValue,
            "location": settings.location.name,
            "max_new_tokens": settings.maxNewTokens,
            "seconds": (seconds * 100).rounded() / 100,
            "generation": ["prompt_tokens": generation.promptTokens, "new_tokens": generation.generatedTokens,
                           "answers": generation.finishedRequests] as [String: Any],
            "targets": results.map { result -> [String: Any] in
                [
                    "kind": result.kind.rawValue,
                    "target": result.target.name,
                    "layer": result.layer,
                    "train_triplets": result.trainTriplets,
                    "captured_rows": result.capturedRows,
                    "fitted_rows": result.fittedRows,
                    "selection_count": result.selectionCount,
                    "evaluation_count": result.evaluationCount,
                    "relative_rmse": Dictionary(result.fits.map { ($0.method.rawValue, $0.relativeRMSE.isFinite ? $0.relativeRMSE : -1) }
                                                + result.replayed.map { ($0.method, $0.relativeRMSE.isFinite ? $0.relativeRMSE : -1) },
                                                uniquingKeysWith: { $1 }),
                    // The equivalent-prompt yardstick (-1: no shared row).
                    "paraphrase_relative_rmse": result.paraphraseRMSE ?? -1,
                    "rows": result.cells.map { cell -> [String: Any] in
                        var row: [String: Any] = [
                            "method": cell.method,
                            "headline": cell.headline,
                            "metrics": Dictionary(cell.means.means.map { ($0.name, $0.value) }, uniquingKeysWith: { $1 }),
                        ]
                        if let factor = cell.factor { row["factor"] = factor }
                        if !cell.selectionScores.isEmpty { row["selection_scores"] = cell.selectionScores }
                        if let points = result.matched[cell.method] {
                            row["matched_coherence"] = points.map {
                                ["level": $0.level, "coherence_target": $0.coherenceTarget, "factor": $0.factor,
                                 "trait": $0.trait, "coherence": $0.coherence] as [String: Any]
                            }
                        }
                        return row
                    },
                ]
            },
        ]
        document["trained"] = settings.trained.map(\.rawValue)
        document["training"] = ["epochs": settings.training.epochs, "learning_rate": settings.training.learningRate,
                                "batch_size": settings.training.batchSize, "location": settings.training.location.name] as [String: Any]
        document["claims"] = verdicts.map { v -> [String: Any] in
            ["claim": v.claim.text, "kind": v.kind.rawValue, "target": v.target, "left_method": v.claim.left,
             "right_method": v.claim.right, "score": v.claim.score == .relativeRMSE ? "relative_rmse" : v.claim.score == .headline ? "headline" : "trait_at_c80",
             "left": v.left, "right": v.right, "holds": v.holds]
        }
        document.merge(extra) { $1 }
        let data = try JSONSerialization.data(withJSONObject: document, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }
}
