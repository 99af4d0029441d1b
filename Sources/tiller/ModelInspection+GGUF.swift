import Foundation
import TillerCore
import TillerModels

extension ModelInspection {
    /// `tiller inspect` of a GGUF model file: the configuration from its metadata, its tensors
    /// counted by ggml type ("Q4_1": 210, ...), the tokenizer and chat template from tokenizer.*.
    init(gguf path: String) throws {
        let file = try GGUFModelFile(path: path)
        try self.init(model: path, config: file.config, configPath: path)
        var dtypes: [String: Int] = [:]
        var parameters = 0
        for t in file.reader.tensors {
            dtypes[GGUFReader.typeName(t.type), default: 0] += 1
            parameters += t.elementCount
        }
        self.parameters = parameters
        self.dtypes = dtypes
        tensors = file.reader.tensors.count
        weightFiles = 1
        weightBytes = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        tokenizer = file.reader.value("tokenizer.ggml.model") != nil
        if file.reader.value("tokenizer.chat_template") != nil { readChatTemplate(path) }
    }
}
