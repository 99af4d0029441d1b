import TillerCore
import TillerModels

/// The prompts of capture triplets as the model saw them, for the analysis report: x' and x as
/// text (a chat prompt as its template renders it, with the generation prompt; a raw or token-id
/// prompt as its ids decode, special tokens included), and whether the chat template wrote its
/// default system prompt into x.
///
/// That last point changes what Delta_PS measures: x without a system message is rendered with
/// the template's default one (Qwen2's "You are a helpful assistant."), so Delta_PS compares x'
/// against x-with-the-default-system-prompt, not against a prompt without any.
public struct TripletRendering: Sendable, Equatable {
    public struct Triplet: Sendable, Equatable {
        /// The triplet's index in the capture.
        public var index: Int
        public var steered: String
        public var unsteered: String
        /// x has no system message and the template wrote its default one into it.
        public var unsteeredHasDefaultSystemPrompt: Bool
    }

    /// The first triplets, rendered.
    public var shown: [Triplet]
    /// Triplets in all.
    public var total: Int
    /// What the chat template writes when a conversation has no system message (nil: nothing).
    public var defaultSystemPrompt: String?
    /// Triplets (of all) whose x got the default system prompt.
    public var defaulted: Int
    /// Of those, the ones whose x' has a system message of its own (which replaces the default).
    public var defaultedWithSteeredSystem: Int

    /// Renders the first `limit` lines and counts, over all of them, the x that get the default
    /// system prompt. A prompt that cannot be rendered shows why instead of failing the report.
    public init(lines: [CaptureTripletLine], tokenizer: Tokenizer, template: ChatTemplate?, limit: Int) {
        let defaultSystem = template?.defaultSystemPrompt()
        defaultSystemPrompt = defaultSystem
        total = lines.count
        func hasSystem(_ prompt: CapturePrompt) -> Bool {
            if case .messages(let messages) = prompt { return messages.contains { $0.role == "system" } }
            return false
        }
        func isChat(_ prompt: CapturePrompt) -> Bool {
            if case .messages = prompt { return true }
            return false
        }
        func defaulted(_ line: CaptureTripletLine) -> Bool {
            defaultSystem != nil && isChat(line.unsteered) && !hasSystem(line.unsteered)
        }
        func text(_ prompt: CapturePrompt) -> String {
            do {
                switch prompt {
                case .messages(let messages):
                    guard let template else { return "(the model has no chat template to render these messages)" }
                    return try template.render(messages, addGenerationPrompt: true)
                case .text(let text): return tokenizer.decode(try tokenizer.encode(text, addSpecialTokens: true))
                case .ids(let ids): return tokenizer.decode(ids)
                }
            } catch {
                return "(cannot render: \(error))"
            }
        }
        shown = lines.prefix(limit).enumerated().map { i, line in
            Triplet(index: i, steered: text(line.steered), unsteered: text(line.unsteered), unsteeredHasDefaultSystemPrompt: defaulted(line))
        }
        let affected = lines.filter(defaulted)
        self.defaulted = affected.count
        defaultedWithSteeredSystem = affected.filter { hasSystem($0.steered) }.count
    }

    /// One line saying what the default system prompt does to Delta_PS here (nil when no x got it).
    public var note: String? {
        guard defaulted > 0, let defaultSystemPrompt else { return nil }
        var text = "the chat template writes the default system prompt \(JSONEscaping.quoted(defaultSystemPrompt)) into a conversation without a system message, "
            + "as x has in \(defaulted) of \(total) triplets: Delta_PS there compares x' against x with that default system prompt, not against a prompt without one"
        if defaultedWithSteeredSystem > 0 {
            text += " (in \(defaultedWithSteeredSystem) of them x' has its own system message, which replaces the default)"
        }
        return text
    }
}
