import TillerCore

extension VulkanBackend {
    public func embedding(table: Tensor, ids: Tensor, scale: Float, out: Tensor) throws {
        _ = try OpShapes.embedding(table: table, ids: ids, out: out)
        throw TillerError.unsupported("vulkan: embedding is not implemented yet")
    }

    public func rmsNorm(_ x: Tensor, weight: Tensor, eps: Float, unitOffset: Bool, out: Tensor) throws {
        _ = try OpShapes.rmsNorm(x, weight: weight, out: out)
        throw TillerError.unsupported("vulkan: rmsNorm is not implemented yet")
    }

    public func rope(_ x: Tensor, positions: Tensor, inverseFrequencies: Tensor) throws {
        _ = try OpShapes.rope(x, positions: positions, inverseFrequencies: inverseFrequencies)
        throw TillerError.unsupported("vulkan: rope is not implemented yet")
    }

    public func gatedActivation(_ kind: GatedActivation, gate: Tensor, up: Tensor, out: Tensor) throws {
        try OpShapes.unary("gatedActivation", gate, out: out)
        throw TillerError.unsupported("vulkan: gatedActivation is not implemented yet")
    }

    public func softmax(_ x: Tensor, out: Tensor) throws {
        try OpShapes.unary("softmax", x, out: out)
        throw TillerError.unsupported("vulkan: softmax is not implemented yet")
    }

    public func gatherRows(_ x: Tensor, indices: Tensor, out: Tensor) throws {
        _ = try OpShapes.gatherRows(x, indices: indices, out: out)
        throw TillerError.unsupported("vulkan: gatherRows is not implemented yet")
    }

    public func argmax(_ x: Tensor, out: Tensor) throws {
        _ = try OpShapes.rowReduce("argmax", x, out: out, outDType: .i32)
        throw TillerError.unsupported("vulkan: argmax is not implemented yet")
    }

    public func topK(_ x: Tensor, k: Int, values: Tensor, indices: Tensor) throws {
        _ = try OpShapes.topK(x, k: k, values: values, indices: indices)
        throw TillerError.unsupported("vulkan: topK is not implemented yet")
    }
}
