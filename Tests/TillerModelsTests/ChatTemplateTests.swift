import Foundation
import Testing
import TillerCore
@testable import TillerModels

/// The fixtures written by scripts/fixtures/make_chat_fixtures.py with transformers.
enum ChatFixtures {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/chat")
    static let families = ["llama3", "llama3.1", "llama3.2", "qwen2", "qwen2.5", "gemma2", "mistral-v0.1", "mistral-v0.3", "llama2"]

    static func directory(_ family: String) -> String { root.appendingPathComponent(family).path }

    static func json(_ path: String) throws -> JSONValue {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        return try data.withUnsafeBytes { try JSONValue.parse($0) }
    }

    static func value(_ j: JSONValue) -> JinjaValue {
        switch j {
        case .object(let members):
            var d = JinjaDict()
            for (k, v) in members { d.set(string: k, value(v)) }
            return .dict(d)
        case .array(let items): return .list(items.map(value))
        case .string(let s): return .string(s)
        case .number(let i, let text): return i.map { .int($0) } ?? .double(Double(text) ?? .nan)
        case .bool(let b): return .bool(b)
        case .null: return .none
        }
    }

    static func string(_ j: JSONValue?) -> String? {
        if case .string(let s)? = j { return s }
        return nil
    }

    static func cases(_ doc: JSONValue) -> [JSONValue] {
        if case .array(let items)? = doc["cases"] { return items }
        return []
    }

    /// Where two strings first differ, for a readable failure.
    static func difference(_ got: String, _ expected: String) -> String? {
        let a = Array(got.unicodeScalars), b = Array(expected.unicodeScalars)
        guard a != b else { return nil }
        var i = 0
        while i < a.count && i < b.count && a[i] == b[i] { i += 1 }
        func around(_ s: [Unicode.Scalar]) -> String {
            var v = String.UnicodeScalarView()
            v.append(contentsOf: s[max(0, i - 30)..<min(s.count, i + 40)])
            return JSONValue.excerpt(String(v), limit: 200)
        }
        return "first difference at scalar \(i) (lengths \(a.count) vs \(b.count)): got «\(around(a))», expected «\(around(b))»"
    }
}

@Suite struct ChatTemplateTests {
    @Test(arguments: ChatFixtures.families)
    func rendersLikeTransformers(family: String) throws {
        let dir = ChatFixtures.directory(family)
        let template = try ChatTemplate(directory: dir)
        let doc = try ChatFixtures.json(dir + "/expected.json")
        let cases = ChatFixtures.cases(doc)
        #expect(cases.count >= 18)
        for c in cases {
            let name = ChatFixtures.string(c["name"]) ?? "?"
            guard case .array(let rawMessages)? = c["messages"], case .bool(let generation)? = c["add_generation_prompt"] else {
                Issue.record("\(family)/\(name): malformed case")
                continue
            }
            var variables: [String: JinjaValue] = ["messages": ChatFixtures.value(.array(rawMessages)),
                                                   "add_generation_prompt": .bool(generation)]
            if case .object(let extra)? = c["variables"] {
                for (k, v) in extra { variables[k] = ChatFixtures.value(v) }
            }
            // Conversations of plain role/content messages also go through the public API.
            var plain: [ChatMessage]? = []
            for m in rawMessages {
                guard case .object(let members) = m, members.count == 2,
                      let role = ChatFixtures.string(m["role"]), let content = ChatFixtures.string(m["content"]) else { plain = nil; break }
                plain?.append(ChatMessage(role: role, content: content))
            }
            if c["variables"] != nil { plain = nil }

            if let expected = ChatFixtures.string(c["expected"]) {
                let got = try template.render(variables: variables)
                if let diff = ChatFixtures.difference(got, expected) { Issue.record("\(family)/\(name): \(diff)") }
                if let plain {
                    let viaAPI = try template.render(plain, addGenerationPrompt: generation)
                    if let diff = ChatFixtures.difference(viaAPI, expected) { Issue.record("\(family)/\(name) (public API): \(diff)") }
                }
            } else if let message = ChatFixtures.string(c["error"]) {
                do {
                    _ = try template.render(variables: variables)
                    Issue.record("\(family)/\(name): rendered, transformers raised \(message)")
                } catch let error as TillerError {
                    let text = error.description
                    #expect(text.contains("raised an exception"), "\(family)/\(name): \(text)")
                    #expect(text.contains(message), "\(family)/\(name): \(text)")
                    #expect(text.contains(dir + "/tokenizer_config.json"), "\(family)/\(name): \(text)")
                    #expect(!text.contains("\n"))
                }
                if let plain {
                    #expect(throws: TillerError.self) { try template.render(plain, addGenerationPrompt: generation) }
                }
            } else {
                Issue.record("\(family)/\(name): case has neither expected nor error")
            }
        }
    }

    @Test func jinjaFeaturesMatchTransformers() throws {
        let doc = try ChatFixtures.json(ChatFixtures.root.appendingPathComponent("features/cases.json").path)
        guard case .object(let rawVariables)? = doc["variables"] else { Issue.record("no variables"); return }
        var variables: [String: JinjaValue] = [:]
        for (k, v) in rawVariables { variables[k] = ChatFixtures.value(v) }
        let cases = ChatFixtures.cases(doc)
        #expect(cases.count >= 60)
        for c in cases {
            let name = ChatFixtures.string(c["name"]) ?? "?"
            guard let source = ChatFixtures.string(c["template"]) else { Issue.record("\(name): no template"); continue }
            let template = ChatTemplate(template: source, bosToken: "<s>", eosToken: "</s>", source: "features/\(name)")
            var variables = variables
            if case .object(let extra)? = c["variables"] {
                for (k, v) in extra { variables[k] = ChatFixtures.value(v) }
            }
            if let expected = ChatFixtures.string(c["expected"]) {
                do {
                    let got = try template.render(variables: variables)
                    if let diff = ChatFixtures.difference(got, expected) { Issue.record("\(name): \(diff)") }
                } catch {
                    Issue.record("\(name): threw \(error)")
                }
            } else {
                do {
                    let got = try template.render(variables: variables)
                    Issue.record("\(name): rendered \(JSONValue.excerpt(got)), transformers failed with \(ChatFixtures.string(c["error"]) ?? "?")")
                } catch let error as TillerError {
                    let text = error.description
                    #expect(text.hasPrefix("features/\(name): chat template"), "\(name): \(text)")
                    #expect(!text.contains("\n"), "\(name): \(text)")
                } catch {
                    Issue.record("\(name): threw a non-TillerError \(error)")
                }
            }
        }
    }

    // MARK: errors

    @Test func unterminatedTagIsASyntaxErrorWithPosition() throws {
        let template = ChatTemplate(template: "Hello\n{% for m in messages %}{{ m.content }", bosToken: nil, eosToken: nil, source: "my-template")
        #expect(throws: TillerError.self) { try template.validate() }
        do {
            _ = try template.render([ChatMessage(role: "user", content: "hi")])
            Issue.record("rendered an unterminated template")
        } catch let error as TillerError {
            let text = error.description
            #expect(text.hasPrefix("my-template: chat template syntax error at line 2"), "\(text)")
            #expect(!text.contains("\n"))
        }
        let block = ChatTemplate(template: "{% if true %}never closed", bosToken: nil, eosToken: nil)
        #expect(throws: TillerError.self) { try block.validate() }
        let comment = ChatTemplate(template: "a {# never closed", bosToken: nil, eosToken: nil)
        do { try comment.validate(); Issue.record("no error") } catch let error as TillerError {
            #expect(error.description.contains("Missing end of comment tag"))
            #expect(error.description.contains("line 1, column 3"), "\(error)")
        }
    }

    @Test func unknownFilterFailsWhenTheTemplateLoads() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tiller-chat-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = #"{"chat_template": "{% for m in messages %}\n{{ m.content | shout }}{% endfor %}", "eos_token": "</s>"}"#
        try config.write(to: dir.appendingPathComponent("tokenizer_config.json"), atomically: true, encoding: .utf8)
        do {
            _ = try ChatTemplate(directory: dir.path)
            Issue.record("loaded a template with an unknown filter")
        } catch let error as TillerError {
            let text = error.description
            #expect(text.hasPrefix(dir.path + "/tokenizer_config.json: chat template syntax error at line 2, column 16"), "\(text)")
            #expect(text.contains("No filter named 'shout'"), "\(text)")
        }
        let unknownTest = ChatTemplate(template: "{{ 1 is shouting }}", bosToken: nil, eosToken: nil)
        #expect(throws: TillerError.self) { try unknownTest.validate() }
    }

    @Test func raiseExceptionNamesTheTemplate() throws {
        let dir = ChatFixtures.directory("gemma2")
        let template = try ChatTemplate(directory: dir)
        let messages = [ChatMessage(role: "user", content: "a"), ChatMessage(role: "user", content: "b")]
        do {
            _ = try template.render(messages)
            Issue.record("rendered a non-alternating conversation")
        } catch let error as TillerError {
            let text = error.description
            #expect(text == "\(dir)/tokenizer_config.json: chat template raised an exception at line 1, column 211: Conversation roles must alternate user/assistant/user/assistant/...", "\(text)")
        }
        let system = [ChatMessage(role: "system", content: "s"), ChatMessage(role: "user", content: "u")]
        #expect(throws: TillerError.self) { try template.render(system) }
    }

    @Test func runtimeErrorsAreOneLineTillerErrors() throws {
        let cases = [
            "{{ undefined_thing + 1 }}", "{{ 'a' + 1 }}", "{{ 1 / 0 }}", "{{ 1 // 0 }}", "{{ 1 % 0 }}",
            "{{ messages() }}", "{{ none.x.y }}", "{% for a, b in [[1]] %}{% endfor %}", "{{ 'x' * 100000000000 }}",
            "{{ range(10000000) }}", "{{ 9223372036854775807 + 1 }}", "{{ 2 ** 100 }}", "{{ -9223372036854775807 - 2 }}",
            "{{ xs | tojson }}", "{{ namespace()|tojson }}", "{% set d = {} %}{% set d.k = 1 %}", "{{ [] < 1 }}",
            "{{ 'abc'.split('') }}", "{{ [1, 2][::0] }}", "{{ 1 in 2 }}", "{{ {[1]: 2} }}", "{{ 'abc'|wordwrap }}",
            "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "{{ '%d' % 'x' }}", "{{ '{}'.format() }}",
        ]
        for source in cases {
            let template = ChatTemplate(template: source, bosToken: nil, eosToken: nil, source: "t")
            do {
                let out = try template.render([ChatMessage(role: "user", content: "hi")])
                Issue.record("\(source) rendered \(JSONValue.excerpt(out))")
            } catch let error as TillerError {
                #expect(error.description.hasPrefix("t: chat template"), "\(source): \(error)")
                #expect(error.description.contains("line 1, column"), "\(source): \(error)")
                #expect(!error.description.contains("\n"))
            }
        }
    }

    @Test func hostileTemplatesNeverTrap() throws {
        var sources = [
            String(repeating: "(", count: 10_000) + "1" + String(repeating: ")", count: 10_000),
            "{{ " + String(repeating: "[", count: 5_000) + " }}",
            "{{ " + String(repeating: "not ", count: 5_000) + "1 }}",
            "{{ " + String(repeating: "-", count: 5_000) + "1 }}",
            "{{ " + Array(repeating: "1", count: 20_000).joined(separator: " + ") + " }}",
            "{{ " + Array(repeating: "'a'", count: 20_000).joined(separator: " ~ ") + " }}",
            "{{ x" + String(repeating: ".a", count: 5_000) + " }}",
            "{{ x" + String(repeating: "|trim", count: 5_000) + " }}",
            String(repeating: "{% if true %}", count: 5_000) + String(repeating: "{% endif %}", count: 5_000),
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            "{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}",
            "{{ '\\N{BULLET}' }}", "{{ '\\x4' }}", "{{ 99999999999999999999999 }}", "{{ 1e999 }}", "{% raw %}", "{{", "{%", "{#",
            "{{ }}", "{% %}", "{% set %}", "{% for %}", "{% for x in %}", "{% endfor %}", "{{ a[ }}", "{{ a[1:2:3:4] }}",
            "{{ (1, }}", "{{ {1: } }}", "{{ 'x' is }}", "{{ x | }}", "{% if x %}{% elif %}{% endif %}", "{{ 1 if }}",
            "{{ f(a=1, 2) }}", "{% macro m(a=1, b) %}{% endmacro %}", "{% break %}", "{{ x.0.1.2 }}", "{{ 0b }}", "{{ 0x }}",
            "\u{0}{{ '\u{0}' }}\r\n\r", "{{ '\u{10FFFF}'|upper }}", "{%- -%}", "{{- -}}", "{#- -#}", "{% set x = y = 1 %}",
            // values that would nest without bound, or loop back on themselves
            "{% set ns = namespace(x=none) %}{% for i in range(100000) %}{% set ns.x = [ns.x] %}{% endfor %}{{ ns.x }}",
            "{% set ns = namespace(x=none) %}{% for i in range(100000) %}{% set ns.x = namespace(y=ns.x) %}{% endfor %}{{ ns.x }}",
            "{% set ns = namespace(x=none) %}{% for i in range(100000) %}{% set ns.x = dict(y=ns.x) %}{% endfor %}{{ ns.x }}",
            "{% set ns = namespace() %}{% set ns.me = ns %}{{ ns }}{{ ns == ns }}",
            "{% set ns = namespace(x=[]) %}{% for i in range(100000) %}{% set ns.x = ns.x|batch(1)|list %}{% endfor %}",
            // extreme numbers
            "{{ '%999999999999999999999d' % 1 }}", "{{ '%.99999999f' % 1 }}", "{{ '%d' % 1e300 }}", "{{ '%x' % -9223372036854775807 }}",
            "{{ range(-9223372036854775807, 9223372036854775807) }}", "{{ range(-9223372036854775807, 9223372036854775807, 9223372036854775807) }}", "{{ range(9223372036854775807, -9223372036854775807, -1) }}",
            "{{ [1, 2, 3][1::9223372036854775807] }}", "{{ [1, 2, 3][::-9223372036854775807] }}", "{{ 'abc'[-9223372036854775807:] }}",
            "{{ [1]|batch(1000000000000, 'x') }}", "{{ 'x'|center(1000000000000) }}", "{{ 'x'.center(1000000000000) }}",
            "{{ 'x'|indent(1000000000000) }}", "{{ 1e308 * 10 }}", "{{ (1e308 * 10)|int }}", "{{ 2.5|round(400) }}",
            "{{ -9223372036854775807 // -1 }}", "{{ (-9223372036854775807 - 1) // -1 }}", "{{ (-9223372036854775807 - 1)|abs }}",
            "{{ 'x' * -5 }}", "{{ [1] * 1000000000000 }}", "{{ 'ab'.zfill(1000000000000) }}",
        ]
        // Deterministic fuzz: random splices of template fragments.
        let fragments = ["{{", "}}", "{%", "%}", "{#", "#}", "-", "+", " ", "\n", "if", "for", "in", "endif", "endfor", "x", "(", ")",
                         "[", "]", "{", "}", "'", "\"", "\\", "|", "trim", "is", "not", "defined", ".", ",", ":", "1", "0.5", "=", "set",
                         "loop", "messages", "~", "*", "**", "//", "%", "==", "else", "raw", "endraw", "macro", "é", "🎉"]
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        for _ in 0..<3_000 {
            var s = ""
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let n = Int(state >> 59) + 1
            for _ in 0..<n {
                state = state &* 6364136223846793005 &+ 1442695040888963407
                s += fragments[Int(state >> 33) % fragments.count]
            }
            sources.append(s)
        }
        for source in sources {
            let template = ChatTemplate(template: source, bosToken: "<s>", eosToken: "</s>")
            do {
                _ = try template.render([ChatMessage(role: "user", content: "hi")])
            } catch let error as TillerError {
                #expect(!error.description.contains("\n"))
            }
        }
    }

    /// The deepest templates the parser accepts render on a thread with a 512 KiB stack.
    @Test func deepestAcceptedNestingFitsASmallStack() throws {
        let sources = [
            "{{ " + String(repeating: "(", count: 23) + "1" + String(repeating: ")", count: 23) + " }}",
            "{{ " + String(repeating: "[", count: 23) + "1" + String(repeating: "]", count: 23) + " }}",
            "{{ 'x'" + String(repeating: "|trim", count: 60) + " }}",
            "{{ " + String(repeating: "not ", count: 60) + "1 }}",
            "{% set d = {'a': 1} %}{{ d" + String(repeating: ".get('b', d)", count: 30) + " }}",
            String(repeating: "{% for i in [1] %}{% if true %}", count: 24) + "x" + String(repeating: "{% endif %}{% endfor %}", count: 24),
            "{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(23) }}",
        ]
        final class Box: @unchecked Sendable { var results: [Result<String, Error>] = [] }
        let box = Box()
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            for source in sources {
                box.results.append(Result { try ChatTemplate(template: source, bosToken: nil, eosToken: nil).render([]) })
            }
            done.signal()
        }
        thread.stackSize = 512 << 10
        thread.start()
        done.wait()
        for (source, result) in zip(sources, box.results) {
            if case .failure(let error) = result { Issue.record("\(source.prefix(40)): \(error)") }
        }
    }

    // MARK: loading

    private func withConfig(_ json: String, _ body: (String) throws -> Void) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tiller-chat-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try json.write(to: dir.appendingPathComponent("tokenizer_config.json"), atomically: true, encoding: .utf8)
        try body(dir.path)
    }

    @Test func templateListUsesDefault() throws {
        let json = #"""
        {"bos_token": {"__type": "AddedToken", "content": "<B>"}, "eos_token": "<E>",
         "chat_template": [{"name": "tool_use", "template": "tools"}, {"name": "default", "template": "{{ bos_token }}{% for m in messages %}{{ m.role }}:{{ m.content }}{{ eos_token }}{% endfor %}"}]}
        """#
        try withConfig(json) { dir in
            let template = try ChatTemplate(directory: dir)
            #expect(template.bosToken == "<B>")
            #expect(template.eosToken == "<E>")
            #expect(try template.render([ChatMessage(role: "user", content: "hi")]) == "<B>user:hi<E>")
        }
        try withConfig(#"{"chat_template": [{"name": "tool_use", "template": "tools"}]}"#) { dir in
            do { _ = try ChatTemplate(directory: dir); Issue.record("no error") } catch let error as TillerError {
                #expect(error.description.contains("no \"default\" entry (it has: tool_use)"), "\(error)")
            }
        }
        try withConfig(#"{"eos_token": "</s>"}"#) { dir in
            #expect(throws: TillerError.self) { try ChatTemplate(directory: dir) }
        }
        try withConfig(#"{"chat_template": 3}"#) { dir in
            #expect(throws: TillerError.self) { try ChatTemplate(directory: dir) }
        }
        try withConfig(#"{"chat_template": "x", "bos_token": 3}"#) { dir in
            #expect(throws: TillerError.self) { try ChatTemplate(directory: dir) }
        }
        try withConfig(#"{"chat_template": "x""#) { dir in
            #expect(throws: TillerError.self) { try ChatTemplate(directory: dir) }
        }
        #expect(throws: TillerError.self) { try ChatTemplate(directory: "/nonexistent/tiller/model") }
    }

    @Test func chatTemplateJinjaFileWins() throws {
        try withConfig(#"{"chat_template": "from config", "eos_token": "</s>"}"#) { dir in
            try "from file {{ eos_token }}\n".write(toFile: dir + "/chat_template.jinja", atomically: true, encoding: .utf8)
            let template = try ChatTemplate(directory: dir)
            #expect(try template.render([]) == "from file </s>")
            #expect(template.source == dir + "/chat_template.jinja")
        }
    }

    @Test func specialTokensMapIsAFallback() throws {
        try withConfig(#"{"chat_template": "{{ bos_token }}|{{ eos_token }}", "eos_token": "<E>"}"#) { dir in
            try #"{"bos_token": {"content": "<B>"}, "eos_token": "<ignored>"}"#.write(toFile: dir + "/special_tokens_map.json", atomically: true, encoding: .utf8)
            #expect(try ChatTemplate(directory: dir).render([]) == "<B>|<E>")
        }
    }

    @Test func datesAreFixedUnlessSet() throws {
        let template = ChatTemplate(template: "{{ date_string }}|{{ strftime_now('%d %B %Y, %A') }}", bosToken: nil, eosToken: nil)
        #expect(try template.render([]) == "26 Jul 2024|26 July 2024, Friday")
        var components = DateComponents()
        components.year = 2025; components.month = 3; components.day = 1; components.hour = 15
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        template.date = calendar.date(from: components)!
        #expect(try template.render([]) == "01 Mar 2025|01 March 2025, Saturday")
        let llama = try ChatTemplate(directory: ChatFixtures.directory("llama3.2"))
        llama.date = template.date
        #expect(try llama.render([ChatMessage(role: "user", content: "hi")]).contains("Today Date: 01 Mar 2025\n"))
    }

    @Test func emptyAndPlainTemplates() throws {
        #expect(try ChatTemplate(template: "", bosToken: nil, eosToken: nil).render([]) == "")
        #expect(try ChatTemplate(template: "plain\n", bosToken: nil, eosToken: nil).render([]) == "plain")
        let bosless = ChatTemplate(template: "[{{ bos_token }}]{{ bos_token is defined }}", bosToken: nil, eosToken: nil)
        #expect(try bosless.render([]) == "[]False")
    }
}
