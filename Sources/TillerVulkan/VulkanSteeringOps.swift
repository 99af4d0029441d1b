import TillerCore

extension VulkanBackend {
    public func psrHead(_ h: Tensor, heads: PSRHeads, headIndex: Tensor, alpha: Tensor, lambda: Tensor) throws {
        _ = try OpShapes.psrHead(h, heads: heads, headIndex: headIndex, alpha: alpha, lambda: lambda)
        throw TillerError.unsupported("vulkan: psrHead is not implemented yet")
    }

    public func rowDot(_ a: Tensor, _ b: Tensor, out: Tensor) throws {
        _ = try OpShapes.rowDot(a, b, out: out)
        throw TillerError.unsupported("vulkan: rowDot is not implemented yet")
    }

    public func rowNorm(_ x: Tensor, out: Tensor) throws {
        _ = try OpShapes.rowReduce("rowNorm", x, out: out)
        throw TillerError.unsupported("vulkan: rowNorm is not implemented yet")
    }

    public func meanRows(_ x: Tensor, indices: Tensor, out: Tensor) throws {
        _ = try OpShapes.meanRows(x, indices: indices, out: out)
        throw TillerError.unsupported("vulkan: meanRows is not implemented yet")
    }
}
