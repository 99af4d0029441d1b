import TillerLab

/// One prompt of a protocol: what is asked bare (x) and with its steering text (x'), and what the
/// scores need (the instructions to check, the trait, the concept).
public struct EvalItem: Sendable, Equatable {
    public var id: String
    /// The bare request: IFEval's question without its instruction, Persona Vectors' question,
    /// AxBench's instruction. nil when the input file gives only the instructed prompt (IFEval's
    /// own layout).
    public var bare: [LabMessage]?
    /// The prompt-steered request: the question with its instruction, the question under the
    /// trait's system prompt, the instruction asking for the concept.
    public var prompted: [LabMessage]
    public var target: EvalTarget

    public init(id: String, bare: [LabMessage]?, prompted: [LabMessage], target: EvalTarget) {
        self.id = id
        self.bare = bare
        self.prompted = prompted
        self.target = target
    }

    /// The text a judge is shown as the question: the bare request's user text (else the prompted one's).
    public var question: String {
        (bare ?? prompted).last { $0.role == "user" }?.content ?? ""
    }
}

/// What a protocol scores an answer against.
public enum EvalTarget: Sendable, Equatable {
    /// IFEval: the instructions every answer is checked against.
    case instructions([IFEvalInstruction])
    /// Persona Vectors: the trait and its description (what the judge looks for).
    case trait(name: String, description: String)
    /// AxBench: the concept and the instruction the answer must still follow.
    case concept(name: String, instruction: String)

    /// The group an item is averaged in: the trait, the concept, or the (first) instruction id.
    public var group: String {
        switch self {
        case .instructions(let list): return list.map(\.id).joined(separator: "+")
        case .trait(let name, _): return name
        case .concept(let name, _): return name
        }
    }
}
