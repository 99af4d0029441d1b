import Foundation
import Testing
@testable import TillerModels

/// `ChatTemplate.defaultSystemPrompt()` on every chat fixture, against transformers' render of a
/// conversation with only a user message: the ChatML families (Qwen2, Qwen2.5) write a system turn
/// there, whose text is the default; the others write none of their own (Llama 3.1/3.2 write a
/// system header with dates into every conversation, with or without a system message, which is
/// not a default system prompt: a given one goes after it).
@Suite struct DefaultSystemPromptTests {
    static let chatML: Set<String> = ["qwen2", "qwen2.5"]

    @Test(arguments: ChatFixtures.families)
    func matchesTransformersRender(family: String) throws {
        let doc = try ChatFixtures.json(ChatFixtures.directory(family) + "/expected.json")
        let userOnly = try #require(ChatFixtures.cases(doc).first { ChatFixtures.string($0["name"]) == "single_user/nogen" })
        let render = try #require(ChatFixtures.string(userOnly["expected"]))
        var expected: String? = nil
        if Self.chatML.contains(family) {
            let start = try #require(render.range(of: "<|im_start|>system\n")), end = try #require(render.range(of: "<|im_end|>"))
            expected = String(render[start.upperBound..<end.lowerBound])
            #expect(expected?.isEmpty == false)
        }
        let template = try ChatTemplate(directory: ChatFixtures.directory(family))
        #expect(template.defaultSystemPrompt() == expected, "\(family)")
    }

    /// Templates written here: one that writes a default system turn into conversations without a
    /// system message, one that takes no system message at all (raises), one that drops them.
    @Test func handWrittenTemplates() throws {
        let chatML = ChatTemplate(template: "{% if messages[0]['role'] != 'system' %}[system]Be kind.[/]{% endif %}{% for m in messages %}[{{ m['role'] }}]{{ m['content'] }}[/]{% endfor %}",
                                  bosToken: nil, eosToken: nil)
        #expect(chatML.defaultSystemPrompt() == "Be kind.")
        let refuses = ChatTemplate(template: "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('no system') }}{% endif %}{{ m['content'] }}{% endfor %}",
                                   bosToken: nil, eosToken: nil)
        #expect(refuses.defaultSystemPrompt() == nil)
        let drops = ChatTemplate(template: "{% for m in messages %}{% if m['role'] != 'system' %}{{ m['content'] }}{% endif %}{% endfor %}",
                                 bosToken: nil, eosToken: nil)
        #expect(drops.defaultSystemPrompt() == nil)
    }
}
