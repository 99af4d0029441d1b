import TillerCore

extension CaptureData {
    /// Refuses, in one line naming the file and the tensor, a layer whose chosen rows hold NaN or
    /// Inf (in h or Delta_PS), or whose Delta_PS is zero on every chosen row: every method would
    /// fit nothing (or NaN) and report a perfect relative RMSE. A host scan of the mapped rows,
    /// cheap next to any fit.
    public func checkFinite(layer: Int, rows: [Int]) throws {
        let d = hiddenSize
        var anyNonZero = false
        for delta in [false, true] {
            let name = delta ? CaptureTensor.delta(layer) : CaptureTensor.h(layer)
            let values = try capture.bytes(layer: layer, delta: delta, rows: 0..<rowCount).bindMemory(to: Float.self)
            for r in rows {
                for i in (r * d)..<(r * d + d) {
                    let v = values[i]
                    guard v.isFinite else {
                        throw TillerError.io(path: path, detail: "'\(name)' holds \(v) at row \(r): the capture went non-finite; capture again with a smaller steering")
                    }
                    if delta && v != 0 { anyNonZero = true }
                }
            }
        }
        guard anyNonZero else {
            throw TillerError.io(path: path, detail: "'\(CaptureTensor.delta(layer))' is zero on every selected row: the steered and unsteered prompts gave the same activations, nothing to fit")
        }
    }
}
