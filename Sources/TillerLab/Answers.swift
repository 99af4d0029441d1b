import TillerCore

/// A sentence before rendering (template and slot fillers), so a transform can swap its adjectives or
/// prefix an adverb without re-parsing text.
struct SentencePlan: Sendable, Hashable {
    var template: SentenceTemplate
    var fillers: [String]
    var adverb: String?

    func render() -> String {
        // Fillers are built from template.slots, so the count always matches.
        let body = template.render(fillers) ?? template.pattern
        guard let adverb else { return body }
        return adverb + ", " + body
    }
}

/// Builds answers: the unsteered answer to a question, and from it the steered answer for a target.
enum AnswerGenerator {
    /// A template filled from the topic's lexicon. Nouns within a sentence are distinct; `noun` (the
    /// question's) takes one of the noun slots and `adjective` the first adjective slot when given.
    static func sentence(_ template: SentenceTemplate, topic: LabTopic, noun: String? = nil,
                         adjective: String? = nil, rng: inout SplitMix64) -> SentencePlan {
        let slots = template.slots
        let nounSlots = slots.indices.filter { slots[$0] == .noun }
        var nouns = rng.shuffled(topic.nouns.filter { $0 != noun })
        if let noun, !nounSlots.isEmpty { nouns.insert(noun, at: rng.index(nounSlots.count)) }
        var nounIterator = nouns.makeIterator()
        var usedAdjective = false
        let fillers = slots.map { slot -> String in
            switch slot {
            case .noun:
                return nounIterator.next() ?? rng.pick(topic.nouns)
            case .adjective:
                if let adjective, !usedAdjective {
                    usedAdjective = true
                    return adjective
                }
                return rng.pick(topic.adjectives)
            case .verb:
                return rng.pick(topic.verbs)
            }
        }
        return SentencePlan(template: template, fillers: fillers, adverb: nil)
    }

    /// Three sentences; the first is a comma template mentioning the question's noun (and adjective),
    /// so every unsteered answer has a comma and answers the question asked.
    static func unsteered(topic: LabTopic, noun: String?, adjective: String?, rng: inout SplitMix64) -> [SentencePlan] {
        var plans = [sentence(rng.pick(Grammar.commaTemplates), topic: topic, noun: noun, adjective: adjective, rng: &rng)]
        for _ in 0..<2 { plans.append(sentence(rng.pick(Grammar.answerTemplates), topic: topic, rng: &rng)) }
        return plans
    }

    static func render(_ plans: [SentencePlan]) -> String {
        plans.map { $0.render() }.joined(separator: " ")
    }

    /// The answer that follows `target`, derived from the unsteered `base` so the pair differs only in
    /// what the steering asks for.
    static func steered(base: [SentencePlan], target: LabTarget, topic: LabTopic, noun: String?,
                        adjective: String?, rng: inout SplitMix64) -> String {
        switch target {
        case .concept(let concept):
            // Sentence 2 bridges from the topic to the concept, sentence 3 stays with the concept.
            let conceptNoun = rng.pick(concept.nouns)
            let bridge = SentencePlan(template: Grammar.bridge,
                                      fillers: [rng.pick(topic.nouns), conceptNoun, rng.pick(concept.adjectives)], adverb: nil)
            let also = SentencePlan(template: Grammar.also, fillers: [conceptNoun, rng.pick(concept.verbs)], adverb: nil)
            return render([base[0], bridge, also])

        case .persona(let trait):
            let plans = base.map { plan -> SentencePlan in
                var plan = plan
                let slots = plan.template.slots
                for i in slots.indices where slots[i] == .adjective { plan.fillers[i] = rng.pick(trait.adjectives) }
                plan.adverb = rng.pick(trait.adverbs)
                return plan
            }
            return render(plans)

        case .format(.capitals):
            return render(base).uppercased()

        case .format(.noCommas):
            var plans = [sentence(rng.pick(Grammar.commaFreeTemplates), topic: topic, noun: noun, adjective: adjective, rng: &rng)]
            for _ in 0..<2 { plans.append(sentence(rng.pick(Grammar.commaFreeTemplates), topic: topic, rng: &rng)) }
            return render(plans)

        case .format(.endWith(let phrase)):
            return render(base) + " " + phrase + "."

        case .format(.sentences(let n)):
            var plans = Array(base.prefix(max(n, 0)))
            while plans.count < n { plans.append(sentence(rng.pick(Grammar.answerTemplates), topic: topic, rng: &rng)) }
            return render(plans)

        case .format(.quotes):
            return "\"" + render(base) + "\""
        }
    }
}
