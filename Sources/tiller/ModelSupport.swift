import Foundation
import TillerCore
import TillerModels

/// Helpers shared by the commands that read a model directory.
enum ModelDirectory {
    /// Fails in one line naming the path unless it is a directory or a GGUF model file.
    static func check(_ path: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw TillerError.io(path: path, detail: "no such model directory")
        }
        guard isDirectory.boolValue || GGUFModelFile.isGGUF(path) else {
            throw TillerError.io(path: path, detail: "not a directory or a GGUF file (pass the model directory or FILE.gguf)")
        }
    }

    /// The tokenizer of a model directory or GGUF file, failing in one line naming what is missing.
    static func tokenizer(_ path: String) throws -> Tokenizer {
        try check(path)
        if GGUFModelFile.isGGUF(path) { return try GGUFModelFile(path: path).tokenizer() }
        let file = (path as NSString).appendingPathComponent("tokenizer.json")
        guard FileManager.default.fileExists(atPath: file) else {
            throw TillerError.io(path: file, detail: "no such file (the model directory has no tokenizer)")
        }
        return try Tokenizer(directory: path)
    }

    /// The model's chat template applied to `messages`, tokenized as transformers'
    /// apply_chat_template(tokenize=True) does: the template writes any BOS itself, so no
    /// special tokens are added again.
    static func chatIDs(_ messages: [ChatMessage], template: ChatTemplate, tokenizer: Tokenizer) throws -> [Int32] {
        let text = try template.render(messages, addGenerationPrompt: true)
        return try tokenizer.encode(text, addSpecialTokens: false)
    }
}

/// Prints a JSON object on one line with keys sorted.
func jsonLine<T: Encodable>(_ value: T) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return String(decoding: try encoder.encode(value), as: UTF8.self)
}
