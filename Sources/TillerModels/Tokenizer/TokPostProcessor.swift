// Post-processors: what encode(_, addSpecialTokens: true) adds around the ids (BOS / EOS).

indirect enum TokPostProcessor {
    case sequence([TokPostProcessor])
    /// TemplateProcessing's "single" template: literal ids around the sequence.
    case template(before: [Int32], after: [Int32])
    /// BertProcessing / RobertaProcessing: cls ids + sequence + sep ids.
    case clsSep(cls: Int32, sep: Int32)
    /// ByteLevel only trims offsets: no ids change.
    case passThrough

    func process(_ ids: [Int32]) -> [Int32] {
        switch self {
        case let .sequence(steps):
            var current = ids
            for step in steps { current = step.process(current) }
            return current
        case let .template(before, after):
            return before + ids + after
        case let .clsSep(cls, sep):
            return [cls] + ids + [sep]
        case .passThrough:
            return ids
        }
    }

    /// The first id this processor puts in front of a sequence, if any (a BOS, when no config names one).
    var leadingID: Int32? {
        switch self {
        case let .sequence(steps):
            for step in steps { if let id = step.leadingID { return id } }
            return nil
        case let .template(before, _): return before.first
        case let .clsSep(cls, _): return cls
        case .passThrough: return nil
        }
    }
}
