import ArgumentParser
import Foundation
import TillerModels
import TillerSteering

/// `tiller logits --steer`: the steering files (or .gguf control vectors) every position of the
/// ids is steered with, read and checked against the model as `tiller generate` reads them.
enum LogitsSteering {
    /// Checks each --steer value's form (FILE or FILE:ALPHA).
    static func validate(_ values: [String]) throws -> [SteerEntry] {
        try values.map { value in
            do { return try SteerEntry(parsing: value) } catch { throw ValidationError("--steer: \(error)") }
        }
    }

    /// The hook that steers the one sequence of `tokens.count` ids, nil without --steer. Every
    /// application acts at every position (location all, whatever the file says): raw ids are not
    /// split into system prompt, question and answer, and a llama.cpp control vector, the thing to
    /// compare with, acts everywhere too.
    static func hook(_ entries: [SteerEntry], model: TransformerModel, modelDirectory: String, tokenCount: Int) throws -> SteeringHook? {
        guard !entries.isEmpty else { return nil }
        let steering = GenerateSteering(modelDirectory: modelDirectory, named: [:])
        let applications = try entries.map {
            SteeringApplication(intervention: try steering.intervention($0.name), alpha: $0.alpha, location: .all)
        }
        let hook = try SteeringHook(model: model, interventions: steering.interventions, requests: [SequenceSteering(applications)])
        hook.assign(slot: 0, request: 0, promptLength: tokenCount)
        return hook
    }
}
