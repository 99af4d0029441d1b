import TillerCore

/// Typed access to metadata (a model file's configuration and vocabulary), with one-line errors
/// naming the file and the key. Arrays were bounds-checked when the header was read; they are
/// decoded here, from the same bytes.
extension GGUFReader {
    func bad(_ key: String, _ detail: String) -> TillerError {
        .io(path: path, detail: "GGUF metadata \(key): \(detail)")
    }

    public func string(_ key: String) throws -> String? {
        guard let v = value(key) else { return nil }
        guard case .string(let s) = v else { throw bad(key, "is \(v.typeName), not a string") }
        return s
    }

    public func integer(_ key: String) throws -> Int? {
        guard let v = value(key) else { return nil }
        guard let n = v.integer else { throw bad(key, "is \(v.typeName), not an integer") }
        return n
    }

    public func number(_ key: String) throws -> Double? {
        guard let v = value(key) else { return nil }
        switch v {
        case .float(let d): return d
        case .unsigned, .signed: return Double(v.integer ?? 0)
        default: throw bad(key, "is \(v.typeName), not a number")
        }
    }

    public func bool(_ key: String) throws -> Bool? {
        guard let v = value(key) else { return nil }
        guard case .bool(let b) = v else { throw bad(key, "is \(v.typeName), not a boolean") }
        return b
    }

    /// An array of strings (the vocabulary, the merges).
    public func strings(_ key: String, in bytes: UnsafeRawBufferPointer) throws -> [String]? {
        guard let v = value(key) else { return nil }
        guard case .array(8, let count, let at) = v else { throw bad(key, "is \(v.typeName) \(Self.elementName(v)), not an array of strings") }
        var c = Cursor(bytes: bytes, path: path)
        c.offset = at
        var out: [String] = []
        out.reserveCapacity(count)
        for i in 0..<count {
            do {
                out.append(try c.string("element \(i) of \(key)"))
            } catch {
                throw bad(key, "element \(i) is not valid UTF-8")
            }
        }
        return out
    }

    /// An array of numbers of any fixed-size numeric element type (scores, token types), as Double.
    public func numbers(_ key: String, in bytes: UnsafeRawBufferPointer) throws -> [Double]? {
        guard let v = value(key) else { return nil }
        guard case .array(let type, let count, let at) = v, let size = Cursor.fixedSize(type), type != 7 else {
            throw bad(key, "is \(v.typeName) \(Self.elementName(v)), not an array of numbers")
        }
        var c = Cursor(bytes: bytes, path: path)
        c.offset = at
        var out: [Double] = []
        out.reserveCapacity(count)
        for _ in 0..<count {
            let value: Double
            switch type {
            case 0: value = Double(try c.u8(key))
            case 1: value = Double(Int8(bitPattern: try c.u8(key)))
            case 2: value = Double(try c.u16(key))
            case 3: value = Double(Int16(bitPattern: try c.u16(key)))
            case 4: value = Double(try c.u32(key))
            case 5: value = Double(Int32(bitPattern: try c.u32(key)))
            case 6: value = Double(Float(bitPattern: try c.u32(key)))
            case 10: value = Double(try c.u64(key))
            case 11: value = Double(Int64(bitPattern: try c.u64(key)))
            case 12: value = Double(bitPattern: try c.u64(key))
            default: try c.skip(size, key); value = 0
            }
            out.append(value)
        }
        return out
    }

    static func elementName(_ v: Value) -> String {
        guard case .array(let type, _, _) = v else { return "" }
        let names: [UInt32: String] = [0: "u8", 1: "i8", 2: "u16", 3: "i16", 4: "u32", 5: "i32", 6: "f32", 7: "bool",
                                       8: "string", 10: "u64", 11: "i64", 12: "f64"]
        return "of \(names[type] ?? "type \(type)")"
    }
}
