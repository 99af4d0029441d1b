import Foundation
import TillerCore
import TillerModels

/// OpenAI's response and chunk objects, written by hand (a fixed shape, strings escaped with
/// `JSONEscaping`). Each also carries a "tiller" object with the generated token ids and
/// Tiller's own stop reason, which OpenAI clients ignore.
struct OpenAIResponses {
    let chat: Bool
    let id: String
    let model: String
    let created = Int(Date().timeIntervalSince1970)

    init(chat: Bool, model: String) {
        self.chat = chat
        self.model = model
        id = (chat ? "chatcmpl-" : "cmpl-") + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
    }

    /// OpenAI's two reasons: the model stopped by itself ("stop") or ran out of room ("length").
    static func finishReason(_ reason: StopReason) -> String {
        switch reason {
        case .maxTokens, .capacity, .promptTooLong: return "length"
        case .eos, .stopString, .nonFinite: return "stop"
        }
    }

    private var head: String {
        let object = chat ? "chat.completion" : "text_completion"
        return "\"id\": \(JSONEscaping.quoted(id)), \"object\": \"\(object)\", \"created\": \(created), \"model\": \(JSONEscaping.quoted(model))"
    }

    private func usage(prompt: Int, completion: Int) -> String {
        "{\"prompt_tokens\": \(prompt), \"completion_tokens\": \(completion), \"total_tokens\": \(prompt + completion)}"
    }

    private func tiller(_ result: GenerationResult) -> String {
        "{\"stop_reason\": \"\(result.stopReason.rawValue)\", \"ids\": [\(result.ids.map(String.init).joined(separator: ", "))]}"
    }

    /// The whole response of a non-streaming request.
    func complete(_ result: GenerationResult, promptTokens: Int) -> String {
        let text = JSONEscaping.quoted(result.completion), reason = Self.finishReason(result.stopReason)
        let choice = chat
            ? "{\"index\": 0, \"message\": {\"role\": \"assistant\", \"content\": \(text)}, \"logprobs\": null, \"finish_reason\": \"\(reason)\"}"
            : "{\"index\": 0, \"text\": \(text), \"logprobs\": null, \"finish_reason\": \"\(reason)\"}"
        return "{\(head), \"choices\": [\(choice)], \"usage\": \(usage(prompt: promptTokens, completion: result.ids.count)), "
            + "\"tiller\": \(tiller(result))}"
    }

    private func chunkHead() -> String {
        "\"id\": \(JSONEscaping.quoted(id)), \"object\": \"\(chat ? "chat.completion.chunk" : "text_completion")\", "
            + "\"created\": \(created), \"model\": \(JSONEscaping.quoted(model))"
    }

    /// One server-sent event carrying a piece of text (the first chat chunk also says the role).
    func chunk(_ text: String, first: Bool = false) -> String {
        let choice: String
        if chat {
            let role = first ? "\"role\": \"assistant\", " : ""
            choice = "{\"index\": 0, \"delta\": {\(role)\"content\": \(JSONEscaping.quoted(text))}, \"logprobs\": null, \"finish_reason\": null}"
        } else {
            choice = "{\"index\": 0, \"text\": \(JSONEscaping.quoted(text)), \"logprobs\": null, \"finish_reason\": null}"
        }
        return "data: {\(chunkHead()), \"choices\": [\(choice)]}\n\n"
    }

    /// The last chunk: the finish reason (and the rest of the text, if any), then the usage
    /// chunk when asked for, then [DONE].
    func end(_ result: GenerationResult, text: String, promptTokens: Int, includeUsage: Bool) -> String {
        let reason = Self.finishReason(result.stopReason)
        let choice = chat
            ? "{\"index\": 0, \"delta\": {\"content\": \(JSONEscaping.quoted(text))}, \"logprobs\": null, \"finish_reason\": \"\(reason)\"}"
            : "{\"index\": 0, \"text\": \(JSONEscaping.quoted(text)), \"logprobs\": null, \"finish_reason\": \"\(reason)\"}"
        var out = "data: {\(chunkHead()), \"choices\": [\(choice)], \"tiller\": \(tiller(result))}\n\n"
        if includeUsage {
            out += "data: {\(chunkHead()), \"choices\": [], \"usage\": \(usage(prompt: promptTokens, completion: result.ids.count))}\n\n"
        }
        return out + "data: [DONE]\n\n"
    }

    /// An error after the stream began (a timeout, the server shutting down): an error event, then [DONE].
    static func streamError(_ error: APIError) -> String {
        "data: \(error.json)\n\ndata: [DONE]\n\n"
    }
}
