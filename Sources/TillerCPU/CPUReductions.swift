import TillerCore

extension CPUBackend {
    public func argmax(_ x: Tensor, out: Tensor) throws {
        let (rows, c) = try OpShapes.rowReduce("argmax", x, out: out, outDType: .i32)
        let xp = try floats("argmax", x), op = try int32s("argmax", out)
        Parallel.chunks(rows, grain: max(1, Self.elementGrain / c)) { range in
            for r in range {
                let row = xp + r * c
                var best = 0
                for i in 1..<c where row[i] > row[best] { best = i }
                op[r] = Int32(best)
            }
        }
    }

    public func topK(_ x: Tensor, k: Int, values: Tensor, indices: Tensor) throws {
        let (rows, c) = try OpShapes.topK(x, k: k, values: values, indices: indices)
        let xp = try floats("topK", x), vp = try floats("topK", values), ip = try int32s("topK", indices)
        Parallel.chunks(rows, grain: 1) { range in
            for r in range {
                // Insertion into a sorted list of the best k: O(C k) worst case, O(C) typically.
                let row = xp + r * c, vals = vp + r * k, idx = ip + r * k
                var filled = 0
                for i in 0..<c {
                    let v = row[i]
                    if filled == k && !(v > vals[k - 1]) { continue }
                    var slot = min(filled, k - 1)
                    while slot > 0 && v > vals[slot - 1] {
                        vals[slot] = vals[slot - 1]
                        idx[slot] = idx[slot - 1]
                        slot -= 1
                    }
                    vals[slot] = v
                    idx[slot] = Int32(i)
                    if filled < k { filled += 1 }
                }
            }
        }
    }

    public func rowDot(_ a: Tensor, _ b: Tensor, out: Tensor) throws {
        let (rows, c, broadcast) = try OpShapes.rowDot(a, b, out: out)
        let ap = try floats("rowDot", a), bp = try floats("rowDot", b), op = try floats("rowDot", out)
        Parallel.chunks(rows, grain: max(1, Self.elementGrain / c)) { range in
            for r in range { op[r] = dot(ap + r * c, broadcast ? bp : bp + r * c, c) }
        }
    }

    public func rowNorm(_ x: Tensor, out: Tensor) throws {
        let (rows, c) = try OpShapes.rowReduce("rowNorm", x, out: out)
        let xp = try floats("rowNorm", x), op = try floats("rowNorm", out)
        Parallel.chunks(rows, grain: max(1, Self.elementGrain / c)) { range in
            for r in range { op[r] = sumOfSquares(xp + r * c, c).squareRoot() }
        }
    }

    public func meanRows(_ x: Tensor, indices: Tensor, out: Tensor) throws {
        let (m, d, n) = try OpShapes.meanRows(x, indices: indices, out: out)
        let index = try checkedIndices("meanRows", "indices", indices, 0..<Int32(n))
        let xp = try floats("meanRows", x), op = try floats("meanRows", out)
        op.update(repeating: 0, count: d)
        for r in 0..<m { axpy(1, xp + Int(index[r]) * d, op, d) }
        mapVectors(op, op, d) { $0 * (1 / Float(m)) }
    }
}
