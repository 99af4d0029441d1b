/// The evaluation protocols of the PSR paper (docs/evaluation.md): IFEval's single-instruction
/// format subset (Stolfo et al.), Persona Vectors' persona steering and AxBench's concept steering.
public enum EvalProtocol: String, Sendable, CaseIterable {
    case ifevalFormat = "ifeval-format"
    case persona
    case concept

    /// The committed prompt set's file name.
    public var promptSetName: String { rawValue + ".jsonl" }
}
