/// Whether a chat template writes a system prompt of its own into a conversation that has none
/// (Qwen2's ChatML templates write "You are a helpful assistant."), and what it writes.
///
/// This matters to prompt steering: a conversation without a system message is rendered with the
/// default one, so "the prompt without the steering system prompt" is really the prompt with the
/// template's default system prompt.
extension ChatTemplate {
    /// Markers no template rewrites (no spaces to trim, no case a filter would change the meaning of).
    static let userMarker = "TillerUserMarker7Q2"
    static let systemMarker = "TillerSystemMarker4K9"

    /// The system prompt the template inserts when a conversation has no system message, or nil
    /// when it inserts none (or inserts an empty one, or takes no system messages at all).
    ///
    /// Found by comparing two renders: [system S, user U] and [user U]. If the second is the first
    /// with S replaced by some text D, the template wrote a system turn around D on its own, and D
    /// is its default system prompt. Templates that put the system prompt inside the first user
    /// turn (Llama 2, Mistral) render [user U] without that part, which is not of this form.
    public func defaultSystemPrompt() -> String? {
        guard let withSystem = try? render([ChatMessage(role: "system", content: Self.systemMarker),
                                            ChatMessage(role: "user", content: Self.userMarker)], addGenerationPrompt: false),
              let userOnly = try? render([ChatMessage(role: "user", content: Self.userMarker)], addGenerationPrompt: false),
              let s = withSystem.range(of: Self.systemMarker),
              let u = withSystem.range(of: Self.userMarker), s.upperBound <= u.lowerBound,
              let uOnly = userOnly.range(of: Self.userMarker) else { return nil }
        let before = withSystem[..<s.lowerBound], between = withSystem[s.upperBound..<u.lowerBound]
        let head = userOnly[..<uOnly.lowerBound]
        guard head.hasPrefix(before), head.hasSuffix(between), head.count >= before.count + between.count else { return nil }
        let inserted = head.dropFirst(before.count).dropLast(between.count)
        return inserted.isEmpty ? nil : String(inserted)
    }
}
