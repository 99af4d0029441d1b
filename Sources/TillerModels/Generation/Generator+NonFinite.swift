import TillerCore

extension Generator {
    /// The rows of `logits` holding a NaN or an Inf: the dot product of a row with zeros is 0
    /// when every value is finite and NaN otherwise (Inf * 0 and NaN * 0 are NaN in IEEE
    /// arithmetic, which every backend keeps: no fast-math, no skipped zero products). One small
    /// op and a download of one value per row.
    func nonFiniteRows(_ logits: Tensor) throws -> Set<Int> {
        let backend = model.backend
        guard logits.rank == 2, logits.shape[0] > 0 else { return [] }
        let width = logits.shape[1]
        if zeroRow?.shape != [width] { zeroRow = try backend.tensor([Float](repeating: 0, count: width), shape: [width]) }
        let dots = try backend.empty([logits.shape[0]])
        try backend.rowDot(logits, zeroRow!, out: dots)
        var rows = Set<Int>()
        for (row, value) in try backend.floats(dots).enumerated() where !value.isFinite { rows.insert(row) }
        return rows
    }
}
