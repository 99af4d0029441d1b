import ArgumentParser
import Foundation
import TillerCore
import TillerModels

struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the token ids of a text as JSON: {\"ids\": [...]}.",
        discussion: """
            Without --chat the text is encoded as transformers' tokenizer(text) does (BOS and other \
            special tokens added per tokenizer.json). With --chat it becomes one user message rendered \
            through the model's chat template with the generation prompt, then encoded without adding \
            special tokens again, as apply_chat_template(tokenize=True) does. --pieces adds each \
            token's string as the vocabulary stores it ("pieces", byte-level or SentencePiece \
            symbols as they are). --render prints the text --chat would encode, exactly as the \
            template writes it (no newline added): any default system prompt it inserts shows there.
            """)

    @Option(help: "The model directory (tokenizer.json, tokenizer_config.json).")
    var model: String

    @Option(help: "The text to encode.")
    var text: String

    @Flag(help: "Wrap the text as one user message in the model's chat template.")
    var chat = false

    @Flag(help: "Also print each token's string as the vocabulary stores it: {\"ids\": [...], \"pieces\": [...]}.")
    var pieces = false

    @Flag(help: "Print the chat template's rendering of the text as one user message (what --chat encodes), not ids.")
    var render = false

    func validate() throws {
        if render && pieces { throw ValidationError("--render prints the rendered text, not tokens: drop --pieces") }
    }

    func run() throws {
        if render {
            // No tokenizer is needed to render; the template's directory is the model's.
            try ModelDirectory.check(model)
            let template = try ChatTemplate(directory: model)
            print(try template.render([ChatMessage(role: "user", content: text)], addGenerationPrompt: true), terminator: "")
            return
        }
        let tokenizer = try ModelDirectory.tokenizer(model)
        let ids: [Int32]
        if chat {
            let template = try ChatTemplate(directory: model)
            ids = try ModelDirectory.chatIDs([ChatMessage(role: "user", content: text)], template: template, tokenizer: tokenizer)
        } else {
            ids = try tokenizer.encode(text, addSpecialTokens: true)
        }
        if pieces {
            struct Pieces: Encodable { var ids: [Int32]; var pieces: [String] }
            print(try jsonLine(Pieces(ids: ids, pieces: ids.map { tokenizer.tokenString($0) ?? "" })))
        } else {
            print(try jsonLine(["ids": ids]))
        }
    }
}
