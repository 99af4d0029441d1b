import Foundation
import TillerCore
import TillerModels

/// Helpers shared by the commands that read a model directory.
enum ModelDirectory {
    /// Fails in one line naming the path unless it is a directory.
    static func check(_ path: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw TillerError.io(path: path, detail: "no such model directory")
        }
        guard isDirectory.boolValue else {
            throw TillerError.io(path: path, detail: "not a directory (pass the model directory)")
        }
    }

    /// The tokenizer of a model directory, failing in one line naming what is missing.
    static func tokenizer(_ path: String) throws -> Tokenizer {
        try check(path)
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

/// Writes safetensors files: an 8-byte little-endian header length, the JSON header (padded with
/// spaces to 8 bytes), then the tensors' bytes.
enum SafetensorsWriter {
    struct Entry {
        var name: String
        var shape: [Int]
        var values: [Float]
    }

    static func encode(_ entries: [Entry]) -> Data {
        var header: [String] = []
        var offset = 0
        for entry in entries {
            let bytes = entry.values.count * 4
            let shape = entry.shape.map(String.init).joined(separator: ",")
            header.append("\(jsonString(entry.name)):{\"dtype\":\"F32\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + bytes)]}")
            offset += bytes
        }
        var json = Array("{\(header.joined(separator: ","))}".utf8)
        while json.count % 8 != 0 { json.append(0x20) }
        var data = Data()
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(contentsOf: json)
        for entry in entries {
            entry.values.map { $0.bitPattern.littleEndian }.withUnsafeBytes { data.append(contentsOf: $0) }
        }
        return data
    }

    static func write(_ entries: [Entry], to path: String) throws {
        do {
            try encode(entries).write(to: URL(fileURLWithPath: path))
        } catch {
            throw TillerError.io(path: path, detail: "cannot write (\(error.localizedDescription))")
        }
    }

    /// A JSON string literal.
    static func jsonString(_ s: String) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: [s], options: [.withoutEscapingSlashes])) ?? Data("[\"\"]".utf8)
        let array = String(decoding: data, as: UTF8.self)
        return String(array.dropFirst().dropLast())
    }
}

/// Prints a JSON object on one line with keys sorted.
func jsonLine<T: Encodable>(_ value: T) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return String(decoding: try encoder.encode(value), as: UTF8.self)
}
