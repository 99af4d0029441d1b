import Testing
@testable import TillerLab

@Suite struct LexiconTests {
    @Test func everyContentWordIsUnique() {
        let words = Lexicon.contentWords
        var seen: [String: Int] = [:]
        for word in words { seen[word, default: 0] += 1 }
        #expect(seen.filter { $0.value > 1 }.keys.sorted() == [])
        #expect(words.count == 16 * 11 + 4 * 7)
    }

    @Test func shapesAreAsSpecified() {
        #expect(Lexicon.topics.count == 16)
        for topic in Lexicon.topics {
            #expect(topic.nouns.count == 4 && topic.adjectives.count == 3 && topic.verbs.count == 3, "\(topic)")
        }
        #expect(Lexicon.traits.map(\.name) == ["gloomy", "cheerful", "rude", "pompous"])
        for trait in Lexicon.traits { #expect(trait.adverbs.count == 3 && trait.adjectives.count == 3) }
        #expect(Lexicon.closingPhrases.count == 5)
    }

    @Test func contentWordsAreLowerCaseSingleWords() {
        for word in Lexicon.contentWords {
            #expect(!word.isEmpty && word.allSatisfy { $0.isASCII && $0.isLowercase }, "\(word)")
        }
    }

    /// Template, closing-phrase, question and prompt words never count for a topic or trait, so the
    /// judges only ever count what the grammar's slots (or a prompt's named target) put there.
    @Test func contentWordsAreDisjointFromEveryOtherWord() {
        let content = Set(Lexicon.contentWords)
        var other = Set(Lexicon.functionWords)
        for phrase in Lexicon.closingPhrases { other.formUnion(LabText.words(phrase)) }
        for template in Grammar.allTemplates {
            other.formUnion(LabText.words(template.pattern).filter { !["n", "a", "v"].contains($0) })
        }
        for question in QuestionTemplate.all {
            other.formUnion(LabText.words(question.text).filter { !["noun", "adj", "topic"].contains($0) })
        }
        for prompt in LabTarget.promptTemplates + LabTarget.paraphraseTemplates {
            other.formUnion(LabText.words(prompt.text).filter { !["concept", "trait", "phrase", "n"].contains($0) })
        }
        #expect(content.intersection(other).sorted() == [])
    }
}
