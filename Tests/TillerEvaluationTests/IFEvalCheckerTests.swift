import Foundation
import Testing
@testable import TillerEvaluation

/// IFEval's checkers on answers written by hand, each expectation worked out from IFEval's rule
/// (instructions.py) as written, with near misses beside every pass: one character, one line or
/// one count away from following the instruction.
@Suite struct IFEvalCheckerTests {
    static func instruction(_ id: String, _ kwargs: [String: Any] = [:]) throws -> IFEvalInstruction {
        try IFEvalInstruction(id: id, kwargs: kwargs)
    }

    /// Expects `passes` to pass and `misses` to fail the strict rule.
    static func expect(_ instruction: IFEvalInstruction, passes: [String], misses: [String],
                       sourceLocation: SourceLocation = #_sourceLocation) {
        for answer in passes {
            #expect(instruction.verdict(answer) == .passed, "\(instruction.id) should pass: \(answer.debugDescription)", sourceLocation: sourceLocation)
        }
        for answer in misses {
            #expect(instruction.verdict(answer) == .failed, "\(instruction.id) should fail: \(answer.debugDescription)", sourceLocation: sourceLocation)
        }
    }

    @Test func highlightedSections() throws {
        let two = try Self.instruction("detectable_format:number_highlighted_sections", ["num_highlights": 2])
        Self.expect(two, passes: ["Mornings: *wake early* and *stretch*.", "**Bold one** and *italic two*", "*a*\n*b*"],
                    misses: ["Only *one* highlight.", "Empty ** and * * do not count, *one* does.", "*spans\nlines* and *one*",
                             "**bold** alone"])
    }

    @Test func endPhrase() throws {
        let end = try Self.instruction("startend:end_checker", ["end_phrase": "Any other questions?"])
        Self.expect(end, passes: ["Tea is steeped. Any other questions?", "tea. any other questions?  \n",
                                  "\"Steep it well. Any other questions?\""],
                    misses: ["Any other questions? Thanks.", "Tea. Any other questions", "Tea. Any other question?"])
    }

    @Test func noComma() throws {
        let rule = try Self.instruction("punctuation:no_comma")
        Self.expect(rule, passes: ["No commas here. None at all!", "Fullwidth ，is not ASCII"],
                    misses: ["One, comma.", "Trailing comma,"])
    }

    @Test func quotation() throws {
        let rule = try Self.instruction("startend:quotation")
        Self.expect(rule, passes: ["\"Wrapped.\"", "  \"Wrapped with spaces.\"\n", "\"\""],
                    misses: ["\"", "\"Open only.", "Close only.\"", "“Curly quotes.”"])
    }

    @Test func lowercaseAndCapitals() throws {
        let lower = try Self.instruction("change_case:english_lowercase")
        Self.expect(lower, passes: ["all lowercase, even 42 numbers.", "ünïcode lower é"],
                    misses: ["all lowercase but one Capital.", "12345 !!!", "", "i am fine. I am fine."])
        let upper = try Self.instruction("change_case:english_capital")
        Self.expect(upper, passes: ["ALL CAPITALS, 42 TIMES!", "ÉCOLE"],
                    misses: ["ALL CAPITALS BUT ONE x.", "...", "Title Case"])
    }

    @Test func bulletLists() throws {
        let three = try Self.instruction("detectable_format:number_bullet_lists", ["num_bullets": 3])
        Self.expect(three, passes: ["Tips:\n* one\n* two\n* three", "- a\n- b\n  * c", "* one\n- two\n---"],
                    misses: ["* one\n* two", "* one\n* two\n* three\n* four", "**bold**\n* one\n* two",
                             "1. one\n2. two\n3. three"])
    }

    @Test func title() throws {
        let rule = try Self.instruction("detectable_format:title")
        Self.expect(rule, passes: ["<<Morning>>\nText.", "Text then <<a title>> inline"],
                    misses: ["<< >>\nText.", "<<>>", "<<broken\ntitle>>", "<Single brackets>", "No title."])
    }

    @Test func constrainedResponse() throws {
        let rule = try Self.instruction("detectable_format:constrained_response")
        Self.expect(rule, passes: ["My answer is yes.", "I think so. My answer is maybe. Because."],
                    misses: ["My answer is yes", "my answer is no.", "Yes."])
    }

    @Test func json() throws {
        let rule = try Self.instruction("detectable_format:json_format")
        Self.expect(rule, passes: ["{\"a\": 1}", "```json\n{\"a\": [1, 2]}\n```", "```\n[1, 2]\n```", "42", "\"text\"",
                                   "{\"x\": NaN, \"y\": -Infinity, \"z\": \"\\u00e9\\n\", \"w\": [true, false, null, -0.5e+3]}"],
                    misses: ["{\"a\": 1,}", "[1, 2,]", "Here: {\"a\": 1}", "```json\n{a: 1}\n```", "", "```json\n```",
                             "{\"a\": 01}", "{'a': 1}", "{\"a\": 1} {\"b\": 2}", "\"tab\there\"", "[1.]",
                             String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)])
    }

    @Test func capitalWordFrequency() throws {
        let atLeast = try Self.instruction("change_case:capital_word_frequency", ["capital_frequency": 3, "capital_relation": "at least"])
        // "I" is a capital word, as Python's "I".isupper(); "DON'T" splits into "DO" and "N'T" as nltk's tokenizer.
        Self.expect(atLeast, passes: ["THIS IS VERY loud.", "I LOVE IT", "I DON'T stop.", "U.S. NASA WELL-KNOWN"],
                    misses: ["THIS IS quiet.", "Two WORDS ONLy", "123 456 789", "NASA's GOAL"])
        let lessThan = try Self.instruction("change_case:capital_word_frequency", ["capital_frequency": 2, "capital_relation": "less than"])
        Self.expect(lessThan, passes: ["One WORD.", "none here"], misses: ["TWO WORDS", "I AM"])
    }

    @Test func multipleSections() throws {
        let rule = try Self.instruction("detectable_format:multiple_sections", ["section_spliter": "Section", "num_sections": 2])
        Self.expect(rule, passes: ["Section 1\nA\nSection 2\nB", "Intro\nSection 1 A Section 22 B Section 3 C"],
                    misses: ["Section 1\nA\nSECTION 2\nB", "Section one\nA\nSection two", "Section 1 only"])
    }

    @Test func looseRuleDropsFirstAndLastLinesAndAsterisks() throws {
        let end = try Self.instruction("startend:end_checker", ["end_phrase": "That is all."])
        let answer = "Tea is steeped. That is all.\n(Hope this helps!)"
        #expect(end.verdict(answer) == .failed)
        #expect(end.looseVerdict(answer) == .passed)
        let lower = try Self.instruction("change_case:english_lowercase")
        #expect(lower.verdict("Sure! Here it is:\nall lower text") == .failed)
        #expect(lower.looseVerdict("Sure! Here it is:\nall lower text") == .passed)
        #expect(lower.looseVerdict("Sure!\nStill Capital\nEnd") == .failed)
    }

    @Test func responseLanguageIsUnavailable() throws {
        let rule = try Self.instruction("language:response_language", ["language": "fr"])
        guard case .unavailable(let why) = rule.verdict("Bonjour") else { Issue.record("expected unavailable"); return }
        #expect(why.contains("language identifier"))
        #expect(rule.verdict("Bonjour").pass == nil)
    }

    @Test func kwargsAreChecked() throws {
        // IFEval's own data writes every key, null when unused: nulls are ignored.
        let nulls = try Self.instruction("punctuation:no_comma", ["num_highlights": NSNull(), "end_phrase": NSNull()])
        #expect(nulls.kwargs.isEmpty)
        func problem(_ id: String, _ kwargs: [String: Any]) -> String {
            do {
                _ = try IFEvalInstruction(id: id, kwargs: kwargs)
                return "no error"
            } catch {
                return "\(error)"
            }
        }
        #expect(problem("detectable_format:number_bullet_lists", [:]).contains("\"num_bullets\""))
        #expect(problem("detectable_format:number_bullet_lists", ["num_bullets": "3"]).contains("\"num_bullets\""))
        #expect(problem("detectable_format:number_bullet_lists", ["num_bullets": 2.5]).contains("wrong type"))
        #expect(problem("detectable_format:number_bullet_lists", ["num_bullets": true]).contains("wrong type"))
        #expect(problem("detectable_format:number_bullet_lists", ["num_bullets": -1]).contains("out of range"))
        #expect(problem("detectable_format:number_bullet_lists", ["num_bulets": 3]).contains("did you mean \"num_bullets\""))
        #expect(problem("change_case:capital_word_frequency", ["capital_frequency": 3, "capital_relation": "at most"]).contains("\"at most\""))
        #expect(problem("startend:end_checker", ["end_phrase": "  "]).contains("empty"))
        #expect(problem("punctuation:no_commas", [:]).contains("unknown instruction id \"punctuation:no_commas\""))
        #expect(throws: IFEvalInstruction.Unsupported.self) { try IFEvalInstruction(id: "keywords:existence", kwargs: ["keywords": ["a"]]) }
    }
}
