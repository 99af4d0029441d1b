/// world.json: everything about the language a person or the Python trainer may want without reading
/// Swift — the lexicon, the templates, the prompt texts, the chat format and the seed's splits.
extension LabCorpus {
    public var worldJSON: String {
        let strings = { (items: [String]) in JSONText.array(items.map(JSONText.string)) }
        let topics = Lexicon.topics.map { topic in
            JSONText.object([("name", .string(topic.name)), ("nouns", strings(topic.nouns)),
                             ("adjectives", strings(topic.adjectives)), ("verbs", strings(topic.verbs))])
        }
        let traits = Lexicon.traits.map { trait in
            JSONText.object([("name", .string(trait.name)), ("adverbs", strings(trait.adverbs)),
                             ("adjectives", strings(trait.adjectives))])
        }
        let sentenceTemplates = (Grammar.answerTemplates + [Grammar.bridge, Grammar.also]).map { template in
            JSONText.object([("id", .string(template.id)), ("pattern", .string(template.pattern)),
                             ("comma", .bool(template.hasComma))])
        }
        let questions = QuestionTemplate.all.map { q in
            JSONText.object([("id", .string(q.id)), ("text", .string(q.text)), ("held_out", .bool(q.heldOut))])
        }
        let prompts = LabTarget.promptTemplates.map { ($0.key, JSONText.string($0.text)) }
        let conceptPairs = splits.heldOutConceptPairs.map {
            JSONText.object([("topic", .string($0.topic.name)), ("concept", .string($0.concept.name))])
        }
        let personaPairs = splits.heldOutPersonaPairs.map {
            JSONText.object([("trait", .string($0.trait.name)), ("topic", .string($0.topic.name))])
        }
        let chat: [(String, JSONText)] = [
            ("bos", .string("<|bos|>")), ("eos", .string("<|end|>")),
            ("special_tokens", strings(["<|bos|>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>", "<|pad|>"])),
            ("message", .string("<|{role}|>\n{content}<|end|>\n")), ("generation_prompt", .string("<|assistant|>\n")),
        ]
        let world: [(String, JSONText)] = [
            ("name", .string("tiller-lab")),
            ("seed", .uint(seed)),
            ("counts", .object([("train", .int(train.count)), ("heldout", .int(heldout.count))])),
            ("topics", .array(topics)),
            ("traits", .array(traits)),
            ("closing_phrases", strings(Lexicon.closingPhrases)),
            ("function_words", strings(Lexicon.functionWords)),
            ("sentence_templates", .array(sentenceTemplates)),
            ("question_templates", .array(questions)),
            ("steering_prompts", .object(prompts)),
            ("format_sentence_counts", .array(LabFormat.sentenceCounts.map(JSONText.int))),
            ("splits", .object([
                ("heldout_concept_pairs", .array(conceptPairs)),
                ("heldout_persona_pairs", .array(personaPairs)),
                ("heldout_question_templates", strings(QuestionTemplate.heldOutIDs)),
            ])),
            ("chat", .object(chat)),
        ]
        return JSONText.object(world).pretty + "\n"
    }
}
