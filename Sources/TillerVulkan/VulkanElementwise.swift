import CVulkan
import TillerCore

extension VulkanBackend {
    static let elementwiseGroup = 256

    public func add(_ a: Tensor, _ b: Tensor, out: Tensor) throws { try binary("add", 0, a, b, out: out) }
    public func mul(_ a: Tensor, _ b: Tensor, out: Tensor) throws { try binary("mul", 1, a, b, out: out) }

    func binary(_ op: String, _ code: UInt32, _ a: Tensor, _ b: Tensor, out: Tensor) throws {
        let (count, _) = try OpShapes.elementwise(op, a, b, out: out)
        try dispatch(op, SPIRV.elementwiseBinary, specialization: [UInt32(Self.elementwiseGroup), code],
                     bindings: [(a, .read), (b, .read), (out, .write)],
                     push: [UInt32(count), UInt32(b.count)], groups: groups(count, Self.elementwiseGroup))
    }

    public func scale(_ x: Tensor, by factor: Float, out: Tensor) throws {
        try OpShapes.unary("scale", x, out: out)
        try unary("scale", 0, x, parameter: factor, out: out)
    }

    public func softcap(_ x: Tensor, cap: Float, out: Tensor) throws {
        try OpShapes.unary("softcap", x, out: out)
        try Check.softcap(cap)
        try unary("softcap", 1, x, parameter: cap, out: out)
    }

    func unary(_ op: String, _ code: UInt32, _ x: Tensor, parameter: Float, out: Tensor) throws {
        try dispatch(op, SPIRV.elementwiseUnary, specialization: [UInt32(Self.elementwiseGroup), code],
                     bindings: [(x, .read), (out, .write)],
                     push: [UInt32(x.count), bits(parameter)], groups: groups(x.count, Self.elementwiseGroup))
    }

    /// A transfer command in the stream, ordered against the dispatches around it.
    public func copy(_ src: Tensor, to dst: Tensor) throws {
        try OpShapes.copy(src, dst)
        let source = try vulkanBuffer("copy", src), destination = try vulkanBuffer("copy", dst)
        guard src.byteCount > 0 else { return }
        try stream.use(reads: [source], writes: [destination])
        destination.knownIndices.removeAll()
        var region = VkBufferCopy(srcOffset: VkDeviceSize(src.byteOffset), dstOffset: VkDeviceSize(dst.byteOffset), size: VkDeviceSize(src.byteCount))
        vkCmdCopyBuffer(try stream.recording(), source.allocation.buffer, destination.allocation.buffer, 1, &region)
    }
}
