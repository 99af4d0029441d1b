#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Every op of the `Backend` protocol as plain loops over host memory, accumulating in Double.
/// It is the yardstick of the op test suite: slow, obvious, and written to be checked by eye.
public final class ReferenceBackend: HostMemoryBackend {
    public init() {}
    public var name: String { "reference" }
    public var deviceDescription: String { "plain Swift loops on the host" }

    // MARK: Element access

    func host(_ op: String, _ t: Tensor) throws -> UnsafeMutableRawPointer { try hostPointer(op, t) }

    /// Reads a tensor of any float dtype as Double values (quantized blocks dequantized).
    func read(_ op: String, _ t: Tensor) throws -> [Double] {
        let p = try host(op, t)
        if t.dtype.isQuantized {
            return HostEncoding.decode(UnsafeRawBufferPointer(start: p, count: t.byteCount), as: t.dtype).map(Double.init)
        }
        return (0..<t.count).map { Double(HostEncoding.load(p, t.dtype, $0)) }
    }

    func readInts(_ op: String, _ t: Tensor) throws -> [Int] {
        let p = try host(op, t).assumingMemoryBound(to: Int32.self)
        return (0..<t.count).map { Int(p[$0]) }
    }

    func write(_ op: String, _ values: [Double], to t: Tensor) throws {
        let p = try host(op, t).assumingMemoryBound(to: Float.self)
        for i in values.indices { p[i] = Float(values[i]) }
    }

    func writeInts(_ op: String, _ values: [Int], to t: Tensor) throws {
        let p = try host(op, t).assumingMemoryBound(to: Int32.self)
        for i in values.indices { p[i] = Int32(values[i]) }
    }
}
