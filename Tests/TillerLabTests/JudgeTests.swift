import Testing
@testable import TillerLab

/// The judges on hand-written answers whose scores follow from the rules in docs/lab.md.
@Suite struct JudgeTests {
    let ocean = Fixture.ocean
    let space = Fixture.space

    func concept(_ answer: String) -> ConceptScores { LabJudge.concept(space, topic: ocean, answer: answer) }

    @Test func perfectConceptAnswer() {
        let s = concept("every wave drifts, and the tide is blue. the reef reminds me of the star, which is vast. also, the star shines.")
        #expect(s == ConceptScores(concept: 2, instruction: 2, fluency: 2, aggregate: 2))
    }

    @Test func conceptMissing() {
        let s = concept("every wave drifts, and the tide is blue. people say the reef is deep. the salty shell roars near the tide.")
        #expect(s == ConceptScores(concept: 0, instruction: 2, fluency: 2, aggregate: 0))
    }

    @Test func oneConceptWordScoresOne() {
        let s = concept("every wave drifts, and the tide is blue. people say the star is deep.")
        #expect(s.concept == 1 && s.instruction == 2 && s.fluency == 2)
        #expect(abs(s.aggregate - 1.5) < 1e-12)   // 3 / (1/1 + 1/2 + 1/2)
    }

    @Test func offTopicAnswerHasNoInstructionScore() {
        let s = concept("every star shines, and the planet is vast. also, the comet spins.")
        #expect(s == ConceptScores(concept: 2, instruction: 0, fluency: 2, aggregate: 0))
    }

    @Test func partlyUngrammaticAnswerLosesFluency() {
        let s = concept("star wave the blue. every wave drifts, and the tide is blue. the reef reminds me of the star, which is vast. also, the star shines.")
        #expect(s.concept == 2 && s.instruction == 2 && s.fluency == 1)   // 3 of 4 sentences parse
        #expect(abs(s.aggregate - 1.5) < 1e-12)
    }

    @Test func ungrammaticAnswerScoresZeroButNamesCount() {
        // Names are lexicon words: one each; the sentence is not in the language.
        #expect(concept("i love space and the ocean.") == ConceptScores(concept: 1, instruction: 1, fluency: 0, aggregate: 0))
        #expect(concept("") == ConceptScores(concept: 0, instruction: 0, fluency: 0, aggregate: 0))
        #expect(LabJudge.fluency("every wave drifts, and the tide is blue. blue blue. wave.") == 0)   // 1 of 3
    }

    @Test func gloomyAnswer() {
        let s = LabJudge.persona(Fixture.gloomy, topic: ocean, answer:
            "sadly, every wave drifts, and the tide is bleak. alas, the grim reef roars near the shell. regrettably, people say the tide is dreary.")
        #expect(s == PersonaScores(trait: 100, coherence: 100))
    }

    @Test func halfGloomyAnswer() {
        let s = LabJudge.persona(Fixture.gloomy, topic: ocean, answer: "sadly, every wave drifts, and the tide is blue. people say the reef is deep.")
        #expect(s == PersonaScores(trait: 50, coherence: 100))
        // A trait adjective alone carries the trait too.
        let third = LabJudge.persona(Fixture.gloomy, topic: ocean, answer:
            "every wave drifts, and the tide is blue. people say the reef is grim. the salty shell roars near the tide.")
        #expect(abs(third.trait - 100.0 / 3) < 1e-9 && third.coherence == 100)
    }

    @Test func otherTraitAndOffTopicPersonaAnswers() {
        let cheerful = "happily, every wave drifts, and the tide is lovely. gladly, people say the reef is sunny."
        #expect(LabJudge.persona(Fixture.gloomy, topic: ocean, answer: cheerful) == PersonaScores(trait: 0, coherence: 100))
        #expect(LabJudge.persona(Fixture.cheerful, topic: ocean, answer: cheerful) == PersonaScores(trait: 100, coherence: 100))
        let offTopic = "sadly, the grim star shines near the planet."
        #expect(LabJudge.persona(Fixture.gloomy, topic: ocean, answer: offTopic) == PersonaScores(trait: 100, coherence: 0))
        let halfParsed = "sadly, the grim wave shines near the planet. alas, the wave is very grim."
        #expect(LabJudge.persona(Fixture.gloomy, topic: ocean, answer: halfParsed) == PersonaScores(trait: 100, coherence: 50))
    }

    @Test func capitals() {
        let upper = "EVERY WAVE DRIFTS, AND THE TIDE IS BLUE. PEOPLE SAY THE REEF IS DEEP."
        #expect(LabJudge.format(.capitals, topic: ocean, answer: upper) == FormatScores(pass: true, coherence: 100))
        #expect(!LabJudge.passes(.capitals, answer: "EVERY WAVE drifts, AND THE TIDE IS BLUE."))
        #expect(!LabJudge.passes(.capitals, answer: "123."))
        #expect(!LabJudge.passes(.capitals, answer: ""))
    }

    @Test func commas() {
        #expect(LabJudge.passes(.noCommas, answer: "the salty wave drifts near the reef. people say the tide is blue."))
        #expect(!LabJudge.passes(.noCommas, answer: "every wave drifts, and the tide is blue."))
        #expect(!LabJudge.passes(.noCommas, answer: "  "))
    }

    @Test func endWith() {
        let check = { (answer: String) in LabJudge.passes(.endWith("over and out"), answer: answer) }
        #expect(check("every wave drifts, and the tide is blue. over and out."))
        #expect(check("every wave drifts, and the tide is blue. over and out"))
        #expect(check("\"every wave drifts, and the tide is blue. over and out.\"  "))
        #expect(check("every wave drifts, and the tide is blue. \"over and out\"."))
        #expect(check("EVERY WAVE DRIFTS. OVER AND OUT!\n"))
        #expect(!check("over and out. every wave drifts, and the tide is blue."))
        #expect(!check("every wave drifts, and the tide is blue. bover and out."))
        #expect(!check("every wave drifts, and the tide is blue. over and out.."))
        #expect(LabJudge.passes(.endWith("the end"), answer: "the end."))
    }

    @Test func sentenceCounts() {
        let two = "every wave drifts, and the tide is blue. people say the reef is deep."
        #expect(LabJudge.passes(.sentences(2), answer: two))
        #expect(LabJudge.passes(.sentences(2), answer: "\"" + two + "\""))
        #expect(!LabJudge.passes(.sentences(1), answer: two))
        #expect(!LabJudge.passes(.sentences(4), answer: two))
        #expect(LabJudge.passes(.sentences(4), answer: "a. b! c? d"))
        #expect(!LabJudge.passes(.sentences(1), answer: ""))
    }

    @Test func quotes() {
        let quoted = "\"every wave drifts, and the tide is blue.\""
        #expect(LabJudge.format(.quotes, topic: ocean, answer: quoted) == FormatScores(pass: true, coherence: 100))
        #expect(LabJudge.passes(.quotes, answer: " " + quoted + "\n"))
        #expect(!LabJudge.passes(.quotes, answer: "\"\""))
        #expect(!LabJudge.passes(.quotes, answer: "\" \""))
        #expect(!LabJudge.passes(.quotes, answer: "\""))
        #expect(!LabJudge.passes(.quotes, answer: "\"every wave drifts, and the tide is blue."))
        #expect(!LabJudge.passes(.quotes, answer: "\"every wave drifts, and the tide is blue.\"."))
    }

    @Test func scoresDispatchOnTheTargetAndNameTheirMetrics() {
        let scores = LabJudge.score(target: .persona(Fixture.gloomy), topic: ocean, answer: "sadly, people say the tide is grim.")
        #expect(scores == .persona(PersonaScores(trait: 100, coherence: 100)))
        #expect(scores.metrics.map(\.name) == ["trait", "coherence"])
        #expect(LabScores.format(FormatScores(pass: true, coherence: 50)).metrics.map(\.value) == [1, 50])
    }

    /// Every steered answer the corpus holds gets full marks for its target.
    @Test func generatedSteeredAnswersScorePerfectly() throws {
        for example in Fixture.examples {
            switch LabJudge.score(example: example, answer: example.answer) {
            case nil: #expect(example.kind == .none)
            case .concept(let s)?: #expect(s == ConceptScores(concept: 2, instruction: 2, fluency: 2, aggregate: 2), "\(example.id)")
            case .persona(let s)?: #expect(s == PersonaScores(trait: 100, coherence: 100), "\(example.id)")
            case .format(let s)?: #expect(s == FormatScores(pass: true, coherence: 100), "\(example.id)")
            }
        }
    }

    /// The baseline the steering is measured against: unsteered answers score concept 0 for every other
    /// concept, trait 0 for every trait, and fail every format, while staying fluent and on topic.
    @Test func unsteeredHeldOutAnswersScoreZeroOnEveryTarget() throws {
        let heldout = try #require(Fixture.corpus?.heldout)
        for example in heldout.prefix(400) {
            let answer = example.unsteeredAnswer
            for concept in Lexicon.topics where concept != example.topic {
                let s = LabJudge.concept(concept, topic: example.topic, answer: answer)
                #expect(s.concept == 0 && s.instruction == 2 && s.fluency == 2 && s.aggregate == 0, "\(example.id) \(concept)")
            }
            for trait in Lexicon.traits {
                #expect(LabJudge.persona(trait, topic: example.topic, answer: answer) == PersonaScores(trait: 0, coherence: 100))
            }
            for format in LabFormat.all {
                #expect(LabJudge.format(format, topic: example.topic, answer: answer) == FormatScores(pass: false, coherence: 100),
                        "\(example.id) \(format)")
            }
        }
    }
}
