import Testing
import TillerCore
import TillerCPU

/// The CPU backend widens f16 with integer tricks rather than hardware conversion, so every one
/// of the 65536 half bit patterns goes through it (as an embedding table) and must match the
/// scalar conversion bit for bit (any NaN for NaN).
@Suite struct HalfWideningTests {
    @Test(arguments: [DType.f16, .bf16])
    func everyBitPatternWidensExactly(dtype: DType) throws {
        let cpu = CPUBackend()
        let width = 16, rows = 65536 / width
        let patterns = (0..<65536).map { UInt16($0) }
        let table = try cpu.empty([rows, width], dtype)
        try patterns.withUnsafeBytes { try cpu.upload($0, to: table) }
        let ids = try cpu.tensor(ints: (0..<Int32(rows)).map { $0 }, shape: [rows])
        let out = try cpu.empty([rows, width])
        try cpu.embedding(table: table, ids: ids, scale: 1, out: out)
        let widened = try cpu.floats(out)
        var mismatches = 0
        for (bits, value) in zip(patterns, widened) {
            let expected = dtype == .f16 ? HalfConversion.f16ToFloat(bits) : HalfConversion.bf16ToFloat(bits)
            if expected.isNaN ? !value.isNaN : expected.bitPattern != value.bitPattern {
                mismatches += 1
                if mismatches <= 5 { Issue.record("\(dtype) bits 0x\(String(bits, radix: 16)): got \(value), expected \(expected)") }
            }
        }
        #expect(mismatches == 0)
    }
}
