import Testing
@testable import TillerLab

@Suite struct GrammarTests {
    @Test func templatesKeepCommaAndCommaFreeForms() {
        #expect(Grammar.commaTemplates.map(\.id) == ["T2", "T3"])
        #expect(Grammar.commaFreeTemplates.map(\.id) == ["T1", "T4", "T5"])
    }

    @Test func parsesEveryFormATransformProduces() {
        let cases: [(String, String, String?, [String])] = [
            ("the salty wave drifts near the reef.", "T1", nil, ["salty", "wave", "drifts", "reef"]),
            ("EVERY WAVE ROARS, AND THE TIDE IS DEEP.", "T2", nil, ["wave", "roars", "tide", "deep"]),
            ("sadly, in the bleak reef, the shell sparkles.", "T3", "sadly", ["bleak", "reef", "shell", "sparkles"]),
            ("people say the star is blue.", "T4", nil, ["star", "blue"]),
            ("the tide roars together with the comet.", "T5", nil, ["tide", "roars", "comet"]),
            ("the wave reminds me of the star, which is vast.", "bridge", nil, ["wave", "star", "vast"]),
            ("also, the star shines.", "also", nil, ["star", "shines"]),
            ("over and out.", "close", nil, []),
            ("  The End.  ", "close", nil, []),
        ]
        for (sentence, id, adverb, words) in cases {
            let parsed = Grammar.parse(sentence)
            #expect(parsed == ParsedSentence(templateID: id, adverb: adverb, slotWords: words), "\(sentence)")
        }
    }

    @Test func rejectsWhatIsNotInTheLanguage() {
        for sentence in ["", ".", "the salty wave drifts near the reef", "the wave salty drifts near the reef.",
                         "the salty ocean drifts near the reef.", "every wave roars and the tide is deep.",
                         "hello, the wave roars.", "sadly the wave roars together with the reef.",
                         "the salty wave drifts near the reef. people say the star is blue."] {
            #expect(Grammar.parse(sentence) == nil, "\(sentence)")
        }
    }

    @Test func splitsSentencesAfterTerminatorAndWhitespace() {
        #expect(Grammar.sentences(of: "a. b! c? d") == ["a.", "b!", "c?", "d"])
        #expect(Grammar.sentences(of: "the wave drifts.the tide") == ["the wave drifts.the tide"])
        #expect(Grammar.sentences(of: "  ") == [])
    }

    @Test func everyGeneratedAnswerParses() throws {
        let examples = Fixture.examples
        #expect(examples.count == 9_000)
        for example in examples {
            for answer in [example.answer, example.unsteeredAnswer] {
                let sentences = LabJudge.sentences(answer)
                #expect(!sentences.isEmpty)
                for sentence in sentences where Grammar.parse(sentence) == nil {
                    Issue.record("\(example.id): does not parse: \(sentence)")
                }
            }
        }
    }
}
