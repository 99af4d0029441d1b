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

/// The model's chat template: the Jinja2 template in tokenizer_config.json's "chat_template",
/// rendered by Tiller's own interpreter (the Jinja subset chat templates use, with the options
/// and globals transformers gives them) so that `render` returns exactly the text
/// `tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=...)` does.
///
/// The template sees: `messages` (a list of {"role", "content"} dicts), `add_generation_prompt`,
/// `bos_token` / `eos_token` (and `unk_token` / `pad_token`) when the tokenizer config sets them,
/// `tools = none`, `documents = none`, `date_string`, and the globals `raise_exception(message)`,
/// `strftime_now(format)`, `namespace(...)`, `range(...)`, `dict(...)`, `joiner(...)`.
///
/// Dates: transformers' strftime_now reads the clock. Tiller reads `date` instead, which is fixed
/// at 26 July 2024 00:00 (UTC) unless the caller sets it, so prompts are reproducible;
/// `date_string` is `date` formatted as "%d %b %Y" ("26 Jul 2024", the default the Llama 3.1
/// template falls back to when transformers passes no date_string).
///
/// Every failure is a one-line `TillerError.io` naming the template source (the file it came
/// from) and the line and column in the template: syntax errors and unknown filters or tests
/// when the template is loaded, runtime errors and `raise_exception(...)` when it is rendered.
public final class ChatTemplate {
    /// Where the template came from, for error messages.
    public let source: String
    /// The template text.
    public let template: String
    public let bosToken: String?
    public let eosToken: String?
    /// Other special tokens the template may read (unk_token, pad_token).
    public let otherTokens: [String: String]
    /// The date strftime_now and date_string report (read in UTC).
    public var date: Date = ChatTemplate.defaultDate

    /// 26 July 2024 00:00 UTC.
    public static let defaultDate = Date(timeIntervalSince1970: 1_721_952_000)

    private let normalizedSource: [Unicode.Scalar]
    private let parsed: Result<[JinjaNode], JinjaError>

    /// Reads the template and special tokens of a checkpoint or tokenizer directory:
    /// chat_template.jinja when present, else tokenizer_config.json's "chat_template" (a string,
    /// or a list of {"name", "template"} of which "default" is used), as transformers does;
    /// bos_token / eos_token from tokenizer_config.json, else special_tokens_map.json (strings or
    /// {"content": ...} objects). Throws if there is no template or it does not parse.
    public convenience init(directory: String) throws {
        if GGUFModelFile.isGGUF(directory) {
            // A GGUF model file: tokenizer.chat_template and its BOS/EOS tokens.
            let template = try GGUFModelFile(path: directory).chatTemplate()
            self.init(template: template.template, bosToken: template.bosToken, eosToken: template.eosToken, source: template.source)
            return
        }
        let dir = URL(fileURLWithPath: directory)
        let configPath = dir.appendingPathComponent("tokenizer_config.json").path
        let jinjaPath = dir.appendingPathComponent("chat_template.jinja").path
        let fm = FileManager.default
        var config: JSONValue? = nil
        if fm.fileExists(atPath: configPath) {
            config = try Self.readJSON(configPath)
            guard case .object? = config else { throw TillerError.io(path: configPath, detail: "not a JSON object") }
        }
        let template: String
        let source: String
        if fm.fileExists(atPath: jinjaPath) {
            guard let data = fm.contents(atPath: jinjaPath), let text = String(data: data, encoding: .utf8) else {
                throw TillerError.io(path: jinjaPath, detail: "cannot read the file as UTF-8 text")
            }
            template = text
            source = jinjaPath
        } else if let config {
            template = try Self.templateFromConfig(config, path: configPath)
            source = configPath
        } else if fm.fileExists(atPath: directory) {
            throw TillerError.io(path: configPath, detail: "no tokenizer_config.json (and no chat_template.jinja) in the directory")
        } else {
            throw TillerError.io(path: directory, detail: "no such directory")
        }
        // Special tokens: tokenizer_config.json, else the older special_tokens_map.json.
        let mapPath = dir.appendingPathComponent("special_tokens_map.json").path
        var tokenMap: JSONValue? = nil
        if fm.fileExists(atPath: mapPath) { tokenMap = try? Self.readJSON(mapPath) }
        var tokens: [String: String] = [:]
        for key in ["bos_token", "eos_token", "unk_token", "pad_token"] {
            if let value = config?[key] ?? tokenMap?[key] {
                switch value {
                case .string(let s): tokens[key] = s
                case .null: break
                case .object:
                    guard case .string(let s)? = value["content"] else {
                        throw TillerError.io(path: configPath, detail: "\(key) is an object without a \"content\" string")
                    }
                    tokens[key] = s
                default:
                    throw TillerError.io(path: configPath, detail: "\(key) is \(value.kindDescription), expected a string or an object")
                }
            }
        }
        self.init(template: template, bosToken: tokens["bos_token"], eosToken: tokens["eos_token"], source: source,
                  otherTokens: tokens.filter { $0.key != "bos_token" && $0.key != "eos_token" })
        try validate()
    }

    /// A template given as text. It is parsed here; a syntax error is reported by `validate()`
    /// and by every `render`.
    public init(template: String, bosToken: String?, eosToken: String?, source: String = "chat template",
                otherTokens: [String: String] = [:]) {
        self.template = template
        self.bosToken = bosToken
        self.eosToken = eosToken
        self.source = source
        self.otherTokens = otherTokens
        normalizedSource = JinjaLexer.normalize(template)
        do {
            parsed = .success(try JinjaParser.parse(try JinjaLexer.tokenize(normalizedSource)))
        } catch let error as JinjaError {
            parsed = .failure(error)
        } catch {
            parsed = .failure(JinjaError(kind: .syntax, message: "\(error)", offset: nil))
        }
    }

    /// Throws the template's syntax error, if it has one.
    public func validate() throws {
        if case .failure(let error) = parsed { throw tillerError(error) }
    }

    /// The prompt text for a conversation, exactly as transformers' apply_chat_template renders
    /// it (tokenize=False). addGenerationPrompt appends the header of the assistant's turn.
    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool = true) throws -> String {
        let list = messages.map { m -> JinjaValue in
            var d = JinjaDict()
            d.set(string: "role", .string(m.role))
            d.set(string: "content", .string(m.content))
            return .dict(d)
        }
        return try render(variables: ["messages": .list(list), "add_generation_prompt": .bool(addGenerationPrompt)])
    }

    /// Renders with arbitrary template variables on top of the defaults (messages with tool
    /// calls, tools, ...); used by the tests.
    func render(variables: [String: JinjaValue]) throws -> String {
        let nodes: [JinjaNode]
        switch parsed {
        case .success(let n): nodes = n
        case .failure(let error): throw tillerError(error)
        }
        let now = jinjaDate
        var vars: [String: JinjaValue] = [
            "messages": .list([]),
            "add_generation_prompt": .bool(false),
            "tools": .none,
            "documents": .none,
            "date_string": .string(now.strftime("%d %b %Y")),
        ]
        if let bosToken { vars["bos_token"] = .string(bosToken) }
        if let eosToken { vars["eos_token"] = .string(eosToken) }
        for (k, v) in otherTokens { vars[k] = .string(v) }
        for (k, v) in variables { vars[k] = v }
        do {
            return try JinjaInterpreter(now: now).render(nodes, variables: vars)
        } catch let error as JinjaError {
            throw tillerError(error)
        }
    }

    private var jinjaDate: JinjaDate {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? calendar.timeZone
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        return JinjaDate(year: c.year ?? 2024, month: c.month ?? 7, day: c.day ?? 26,
                         hour: c.hour ?? 0, minute: c.minute ?? 0, second: c.second ?? 0)
    }

    // MARK: errors

    /// Line and column (1-based, in Unicode scalars) of an offset in the normalised source.
    private func lineAndColumn(_ offset: Int) -> (Int, Int) {
        var line = 1, column = 1
        for c in normalizedSource.prefix(max(0, offset)) {
            if c == "\n" { line += 1; column = 1 } else { column += 1 }
        }
        return (line, column)
    }

    private func tillerError(_ error: JinjaError) -> TillerError {
        var position = ""
        if let offset = error.offset {
            let (line, column) = lineAndColumn(offset)
            position = " at line \(line), column \(column)"
        }
        let message = JSONValue.excerpt(error.message, limit: 400)
        let detail: String
        switch error.kind {
        case .syntax: detail = "chat template syntax error\(position): \(message)"
        case .runtime: detail = "chat template error\(position): \(message)"
        case .raised: detail = "chat template raised an exception\(position): \(message)"
        }
        return TillerError.io(path: source, detail: detail)
    }

    // MARK: reading tokenizer_config.json

    private static func readJSON(_ path: String) throws -> JSONValue {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TillerError.io(path: path, detail: "cannot read the file")
        }
        do {
            return try data.withUnsafeBytes { try JSONValue.parse($0) }
        } catch let error as JSONValue.ParseError {
            throw TillerError.io(path: path, detail: error.description)
        }
    }

    private static func templateFromConfig(_ config: JSONValue, path: String) throws -> String {
        guard let value = config["chat_template"] else {
            throw TillerError.io(path: path, detail: "no \"chat_template\" (and no chat_template.jinja next to it)")
        }
        switch value {
        case .string(let s):
            return s
        case .array(let entries):
            var names: [String] = []
            for entry in entries {
                guard case .string(let name)? = entry["name"], case .string(let text)? = entry["template"] else {
                    throw TillerError.io(path: path, detail: "chat_template list entries must be {\"name\": ..., \"template\": ...} objects")
                }
                if name == "default" { return text }
                names.append(name)
            }
            throw TillerError.io(path: path, detail: "chat_template has no \"default\" entry (it has: \(names.map { JSONValue.excerpt($0, limit: 40) }.joined(separator: ", ")))")
        case .null:
            throw TillerError.io(path: path, detail: "chat_template is null")
        default:
            throw TillerError.io(path: path, detail: "chat_template is \(value.kindDescription), expected a string or a list of {name, template}")
        }
    }
}
