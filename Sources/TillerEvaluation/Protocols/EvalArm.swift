import TillerSteering

/// How the answers of a run are steered: not at all (the bare request), by the prompt (the
/// prompt-steered request), or by a steering file at a strength, on the bare request or stacked on
/// the prompt-steered one (PSR + prompt).
public struct EvalArm: Sendable {
    public enum Mode: String, Sendable { case none, prompt, file }

    public var mode: Mode
    /// The steering file's path (mode file).
    public var file: String?
    public var intervention: Intervention?
    /// The strength (mode file): the alpha the heads are applied with.
    public var alpha: Float?
    /// Mode file: steer the prompt-steered request rather than the bare one.
    public var withPrompt: Bool

    public static let none = EvalArm(mode: .none, file: nil, intervention: nil, alpha: nil, withPrompt: false)
    public static let prompt = EvalArm(mode: .prompt, file: nil, intervention: nil, alpha: nil, withPrompt: false)

    public static func file(_ path: String, _ intervention: Intervention, alpha: Float, withPrompt: Bool) -> EvalArm {
        EvalArm(mode: .file, file: path, intervention: intervention, alpha: alpha, withPrompt: withPrompt)
    }

    /// Whether the request asked is the prompt-steered one.
    public var prompted: Bool { mode == .prompt || withPrompt }

    /// The same file at another strength.
    public func at(alpha: Float) -> EvalArm {
        var copy = self
        copy.alpha = alpha
        return copy
    }

    /// What a results line records, and what resuming matches lines by: "none", "prompt",
    /// "FILE@ALPHA" or "FILE@ALPHA+prompt".
    public var key: String {
        switch mode {
        case .none, .prompt: return mode.rawValue
        case .file: return "\(file ?? "?")@\(alpha.map { "\($0)" } ?? "?")" + (withPrompt ? "+prompt" : "")
        }
    }

    /// The results line's "steer" object.
    public var json: [String: Any] {
        var object: [String: Any] = ["mode": mode.rawValue]
        if let file { object["file"] = file }
        if let alpha { object["alpha"] = Double(alpha) }
        if mode == .file { object["with_prompt"] = withPrompt }
        if let intervention {
            object["method"] = intervention.method
            object["layers"] = intervention.layers
            object["location"] = intervention.location.name
        }
        return object
    }
}
