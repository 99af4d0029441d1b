import TillerCore

/// A conversation as the model reads it: rendered by the chat template with the generation
/// prompt and encoded as it stands (the template writes the special tokens). Shared by
/// `tiller generate`'s "messages" lines and `tiller serve`'s chat completions, so both give a
/// conversation the same tokens.
public enum ChatPrompt {
    public static func ids(_ messages: [ChatMessage], template: ChatTemplate, tokenizer: Tokenizer) throws -> [Int32] {
        let text = try template.render(messages, addGenerationPrompt: true)
        return try tokenizer.encode(text, addSpecialTokens: false)
    }

    /// Tokens of a chat prompt that are its system prompt: the leading system messages rendered
    /// alone (no generation prompt), as far as their tokens agree with the whole prompt's. 0 when
    /// the conversation does not start with a system message.
    public static func systemLength(_ messages: [ChatMessage], ids: [Int32], template: ChatTemplate, tokenizer: Tokenizer) throws -> Int {
        let system = messages.prefix { $0.role == "system" }
        guard !system.isEmpty else { return 0 }
        let text = try template.render(Array(system), addGenerationPrompt: false)
        let prefix = try tokenizer.encode(text, addSpecialTokens: false)
        return zip(prefix, ids).prefix { $0 == $1 }.count
    }
}
