import Testing
import TillerCore

@Suite struct TensorTests {
    let ref = ReferenceBackend()

    @Test func viewsMustFitTheirBuffer() throws {
        let buffer = try ref.makeBuffer(byteCount: 64)
        #expect(throws: TillerError.self) { try Tensor(buffer: buffer, byteOffset: 4, shape: [16], dtype: .f32) }
        #expect(throws: TillerError.self) { try Tensor(buffer: buffer, byteOffset: 2, shape: [2], dtype: .f32) }
        let t = try Tensor(buffer: buffer, byteOffset: 32, shape: [8], dtype: .f32)
        #expect(t.byteCount == 32)
    }

    @Test func sliceAndReshape() throws {
        let t = try ref.tensor((0..<12).map(Float.init), shape: [3, 4])
        #expect(try ref.floats(t.slice(rows: 1, count: 2)) == (4..<12).map(Float.init))
        #expect(try t.reshaped([2, 6]).shape == [2, 6])
        #expect(throws: TillerError.self) { try t.reshaped([5, 2]) }
        #expect(throws: TillerError.self) { try t.slice(rows: 2, count: 2) }
    }

    @Test func storageRoundTripsThroughEachDType() throws {
        let values: [Float] = [0, 1, -2, 0.5, 1024]
        for dtype in [DType.f32, .f16, .bf16] {
            #expect(try ref.floats(ref.tensor(values, shape: [5], dtype: dtype)) == values, "\(dtype)")
        }
    }

    @Test func errorsNameTheOpAndShapes() throws {
        let x = try ref.empty([2, 3]), w = try ref.empty([4, 5]), out = try ref.empty([2, 4])
        do {
            try ref.matmul(x, w, layout: .nk, bias: nil, accumulate: false, out: out)
            Issue.record("a K mismatch must throw")
        } catch let error as TillerError {
            #expect(error.description.contains("matmul") && error.description.contains("[2, 3]") && error.description.contains("[4, 5]"))
        }
    }
}
