import TillerCore
import TillerModels
import TillerSteering

/// What `tiller generate` says on stderr about lines that get no proper completion, so a skipped
/// or broken line is never only a quiet entry in the output file.
enum GenerateWarnings {
    /// Lines whose prompt alone fills the context: one warning each (the output line gets
    /// "prompt_too_long"), or with `strict` an error at the first, before any work.
    static func checkPromptLengths(_ requests: [GenerationRequest], lines: [PromptFile.Line], path: String,
                                   contextLimit: Int, strict: Bool) throws {
        for (request, line) in zip(requests, lines) where request.promptIDs.count >= contextLimit {
            let detail = "prompt of \(request.promptIDs.count) tokens does not fit the context of \(contextLimit)"
            if strict { throw TillerError.io(path: "\(path):\(line.number)", detail: "\(detail) (--strict)") }
            printError("tiller: warning: \(path):\(line.number): \(detail); skipped")
        }
    }

    /// The warning for a line whose pass went NaN or Inf: its steering (files and alphas) is the
    /// usual cause, so it is named.
    static func nonFinite(path: String, line: Int, steering: SequenceSteering, files: GenerateSteering) -> String {
        let applied = steering.applications.map { application -> String in
            let intervention = files.interventions[application.intervention]
            return "\(files.path(of: application.intervention) ?? intervention.method) alpha \(application.alpha ?? intervention.alpha)"
        }
        let cause = applied.isEmpty ? "unsteered" : "steered by " + applied.joined(separator: ", ")
        return "tiller: warning: \(path):\(line): the activations became NaN or Inf (\(cause)); stopped with \"non_finite\""
    }
}

extension GenerateSteering {
    /// The file intervention `index` was loaded from.
    func path(of index: Int) -> String? {
        indexOfPath.first { $0.value == index }?.key
    }
}
