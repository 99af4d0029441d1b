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
            special tokens again, as apply_chat_template(tokenize=True) does.
            """)

    @Option(help: "The model directory (tokenizer.json, tokenizer_config.json).")
    var model: String

    @Option(help: "The text to encode.")
    var text: String

    @Flag(help: "Wrap the text as one user message in the model's chat template.")
    var chat = false

    func run() throws {
        let tokenizer = try ModelDirectory.tokenizer(model)
        let ids: [Int32]
        if chat {
            let template = try ChatTemplate(directory: model)
            ids = try ModelDirectory.chatIDs([ChatMessage(role: "user", content: text)], template: template, tokenizer: tokenizer)
        } else {
            ids = try tokenizer.encode(text, addSpecialTokens: true)
        }
        print(try jsonLine(["ids": ids]))
    }
}
