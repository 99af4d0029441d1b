import Foundation
import TillerCore

/// One message of a conversation, as in transformers' apply_chat_template.
public struct ChatMessage: Codable, Sendable, Equatable {
    public var role: String
    public var content: String
    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }
}

/// The model's chat template (tokenizer_config.json's chat_template). Placeholder until the
/// template interpreter lands: it throws.
public final class ChatTemplate {
    public init(directory: String) throws {
        throw TillerError.unsupported("chat templates are not implemented yet")
    }

    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool = true) throws -> String {
        throw TillerError.unsupported("chat templates are not implemented yet")
    }
}
