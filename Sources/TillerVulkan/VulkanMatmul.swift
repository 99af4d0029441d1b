import TillerCore

extension VulkanBackend {
    public func matmul(_ x: Tensor, _ w: Tensor, layout: WeightLayout, bias: Tensor?, accumulate: Bool, out: Tensor) throws {
        _ = try OpShapes.matmul(x, w, layout: layout, bias: bias, out: out)
        throw TillerError.unsupported("vulkan: matmul is not implemented yet")
    }
}
