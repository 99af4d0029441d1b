#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import TillerCore

/// One tensor of a safetensors file.
public struct SafetensorsEntry: Sendable, Equatable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    /// Where the tensor's bytes lie within the data section (after the header).
    public let byteRange: Range<Int>

    /// Number of elements (the product of the shape).
    public var count: Int { shape.reduce(1, *) }
}

/// A memory-mapped safetensors file: an 8-byte little-endian header length N, N bytes of JSON
/// describing each tensor ({"name": {"dtype", "shape", "data_offsets": [begin, end]}, ...,
/// "__metadata__": {str: str}}), then the data section the offsets point into.
///
/// The file is mapped read-only once; `bytes(_:)` hands out views into that mapping, which stays
/// alive as long as this object. The header is validated completely at open time (every entry's
/// shape, dtype size and offsets, no overlaps), so any entry of `entries` can be read without
/// further checks. Tensor data in the mapping is not necessarily aligned to its element size.
///
/// Tensors whose dtype Tiller cannot hold (I8, U8, F64, I64, BOOL, F8_E4M3, ...) are validated
/// too but kept out of `entries`; `entry(_:)` names their dtype when asked for one.
public final class SafetensorsFile: @unchecked Sendable {
    /// Headers larger than this are refused, as the reference implementation does.
    public static let maxHeaderBytes = 100_000_000

    public let path: String
    public let entries: [String: SafetensorsEntry]
    public let metadata: [String: String]
    /// Tensors present in the file with a dtype Tiller does not support: name -> dtype as written.
    public let unsupportedEntries: [String: String]
    /// Size of the data section in bytes.
    public let dataByteCount: Int
    /// Size of the whole file in bytes.
    public let fileByteCount: Int

    private let mapping: UnsafeRawPointer
    private let dataStart: Int

    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw TillerError.io(path: path, detail: "cannot open safetensors file: \(Self.errnoString())")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw TillerError.io(path: path, detail: "cannot stat safetensors file: \(Self.errnoString())")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw TillerError.io(path: path, detail: "not a regular file")
        }
        let size = Int(info.st_size)
        guard size >= 8 else {
            throw TillerError.io(path: path, detail: "safetensors file is \(size) bytes, too short for the 8-byte header length")
        }
        guard let raw = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0),
              raw != UnsafeMutableRawPointer(bitPattern: -1) else {
            throw TillerError.io(path: path, detail: "cannot memory-map \(size) bytes: \(Self.errnoString())")
        }
        let base = UnsafeRawPointer(raw)
        do {
            let parsed = try Self.parseHeader(UnsafeRawBufferPointer(start: base, count: size), path: path)
            mapping = base
            fileByteCount = size
            dataStart = parsed.dataStart
            dataByteCount = size - parsed.dataStart
            entries = parsed.entries
            metadata = parsed.metadata
            unsupportedEntries = parsed.unsupported
        } catch {
            munmap(raw, size)
            throw error
        }
    }

    deinit {
        munmap(UnsafeMutableRawPointer(mutating: mapping), fileByteCount)
    }

    /// All tensor names in the file, supported dtype or not, sorted.
    public var tensorNames: [String] { (Array(entries.keys) + Array(unsupportedEntries.keys)).sorted() }

    /// The entry for a tensor, or an error naming the tensor and this file (and the dtype when
    /// the tensor is present but in a dtype Tiller cannot hold).
    public func entry(_ name: String) throws -> SafetensorsEntry {
        if let e = entries[name] { return e }
        if let dtype = unsupportedEntries[name] {
            throw TillerError.io(path: path, detail: "unsupported dtype \(JSONValue.excerpt(dtype)) for tensor '\(JSONValue.excerpt(name))' (Tiller loads F32, F16 and BF16)")
        }
        throw TillerError.io(path: path, detail: "no tensor '\(JSONValue.excerpt(name))' in this file")
    }

    /// The tensor's bytes: a view into the mapping, valid while this object lives. An entry that
    /// does not lie inside this file's data section (one taken from another file) gives an empty view.
    public func bytes(_ entry: SafetensorsEntry) -> UnsafeRawBufferPointer {
        let r = entry.byteRange
        guard r.lowerBound >= 0, r.upperBound <= dataByteCount else {
            return UnsafeRawBufferPointer(start: nil, count: 0)
        }
        return UnsafeRawBufferPointer(start: mapping + dataStart + r.lowerBound, count: r.count)
    }

    // MARK: Parsing

    /// Element size of every safetensors dtype; nil for the ones Tiller cannot hold.
    static func dtypeInfo(_ s: String) -> (dtype: DType?, size: Int?) {
        switch s {
        case "F32": return (.f32, 4)
        case "F16": return (.f16, 2)
        case "BF16": return (.bf16, 2)
        case "BOOL", "U8", "I8", "F8_E4M3", "F8_E5M2", "F8_E8M0": return (nil, 1)
        case "I16", "U16": return (nil, 2)
        case "I32": return (.i32, 4)   // token ids and lengths in reference files
        case "U32": return (nil, 4)
        case "I64", "U64", "F64": return (nil, 8)
        default: return (nil, nil) // sub-byte and unknown dtypes: bounds are still checked
        }
    }

    struct ParsedHeader {
        var dataStart: Int
        var entries: [String: SafetensorsEntry]
        var metadata: [String: String]
        var unsupported: [String: String]
    }

    static func parseHeader(_ file: UnsafeRawBufferPointer, path: String) throws -> ParsedHeader {
        func bad(_ detail: String) -> TillerError { .io(path: path, detail: detail) }

        var length: UInt64 = 0
        for k in 0..<8 { length |= UInt64(file[k]) << (8 * UInt64(k)) }
        let available = file.count - 8
        guard length <= UInt64(maxHeaderBytes) else {
            throw bad("safetensors header length \(length) is absurdly large (limit \(maxHeaderBytes) bytes)")
        }
        guard length <= UInt64(available) else {
            throw bad("safetensors header length \(length) runs past the end of the file (\(available) bytes after the length prefix)")
        }
        let headerLength = Int(length)
        let dataStart = 8 + headerLength
        let dataSize = file.count - dataStart
        let headerBytes = UnsafeRawBufferPointer(rebasing: file[8..<dataStart])

        let json: JSONValue
        do {
            json = try JSONValue.parse(headerBytes)
        } catch let e as JSONValue.ParseError {
            throw bad("safetensors header is not valid JSON: \(e.description)")
        }
        guard case .object(let members) = json else {
            throw bad("safetensors header is \(json.kindDescription), not a JSON object")
        }

        var entries: [String: SafetensorsEntry] = [:]
        var unsupported: [String: String] = [:]
        var metadata: [String: String] = [:]
        var ranges: [(range: Range<Int>, name: String)] = []
        ranges.reserveCapacity(members.count)

        for (name, value) in members {
            let shown = "'\(JSONValue.excerpt(name))'"
            if name == "__metadata__" {
                guard case .object(let pairs) = value else {
                    throw bad("__metadata__ is \(value.kindDescription), not an object of strings")
                }
                for (key, v) in pairs {
                    guard case .string(let s) = v else {
                        throw bad("__metadata__ key '\(JSONValue.excerpt(key))' is \(v.kindDescription), not a string")
                    }
                    metadata[key] = s
                }
                continue
            }
            guard case .object = value else {
                throw bad("tensor \(shown) is described by \(value.kindDescription), not an object")
            }
            guard let dtypeValue = value["dtype"] else { throw bad("tensor \(shown) has no 'dtype'") }
            guard case .string(let dtypeName) = dtypeValue else {
                throw bad("tensor \(shown): 'dtype' is \(dtypeValue.kindDescription), not a string")
            }
            guard let shapeValue = value["shape"] else { throw bad("tensor \(shown) has no 'shape'") }
            guard case .array(let dims) = shapeValue else {
                throw bad("tensor \(shown): 'shape' is \(shapeValue.kindDescription), not an array")
            }
            guard let offsetsValue = value["data_offsets"] else { throw bad("tensor \(shown) has no 'data_offsets'") }
            guard case .array(let offsets) = offsetsValue else {
                throw bad("tensor \(shown): 'data_offsets' is \(offsetsValue.kindDescription), not an array")
            }

            var shape: [Int] = []
            shape.reserveCapacity(dims.count)
            var elementCount = 1
            var countOverflows = false
            for d in dims {
                guard case .number(let int?, _) = d else {
                    throw bad("tensor \(shown): shape entry \(d.kindDescription) is not an integer")
                }
                guard int >= 0 else { throw bad("tensor \(shown): negative dimension \(int) in shape") }
                shape.append(int)
                let (p, o) = elementCount.multipliedReportingOverflow(by: int)
                if o { countOverflows = true } else { elementCount = p }
            }
            let shapeText = "[\(shape.map(String.init).joined(separator: ", "))]"
            if countOverflows { throw bad("tensor \(shown): shape \(shapeText) has too many elements") }

            guard offsets.count == 2 else {
                throw bad("tensor \(shown): 'data_offsets' has \(offsets.count) entries, expected [begin, end]")
            }
            guard case .number(let begin?, let beginText) = offsets[0], case .number(let end?, let endText) = offsets[1] else {
                throw bad("tensor \(shown): 'data_offsets' must be two integers, found \(offsets[0].kindDescription) and \(offsets[1].kindDescription)")
            }
            guard begin >= 0, end >= 0 else {
                throw bad("tensor \(shown): negative data offset in [\(beginText), \(endText)]")
            }
            guard begin <= end else {
                throw bad("tensor \(shown): data_offsets [\(begin), \(end)] begin after end")
            }
            guard end <= dataSize else {
                throw bad("tensor \(shown): data_offsets [\(begin), \(end)] lie outside the data section (\(dataSize) bytes); the file looks truncated")
            }

            let info = dtypeInfo(dtypeName)
            if let size = info.size {
                let (bytes, o) = elementCount.multipliedReportingOverflow(by: size)
                guard !o, bytes == end - begin else {
                    throw bad("tensor \(shown): \(dtypeName) \(shapeText) needs \(o ? "too many" : String(bytes)) bytes but data_offsets [\(begin), \(end)] hold \(end - begin)")
                }
            }
            if let dtype = info.dtype {
                entries[name] = SafetensorsEntry(name: name, dtype: dtype, shape: shape, byteRange: begin..<end)
            } else {
                unsupported[name] = dtypeName
            }
            ranges.append((begin..<end, name))
        }

        // No two tensors may share bytes (empty tensors occupy none).
        ranges.sort { ($0.range.lowerBound, $0.range.upperBound) < ($1.range.lowerBound, $1.range.upperBound) }
        var previous: (range: Range<Int>, name: String)? = nil
        for r in ranges where !r.range.isEmpty {
            if let p = previous, r.range.lowerBound < p.range.upperBound {
                throw bad("tensors '\(JSONValue.excerpt(p.name))' [\(p.range.lowerBound), \(p.range.upperBound)) and '\(JSONValue.excerpt(r.name))' [\(r.range.lowerBound), \(r.range.upperBound)) overlap in the data section")
            }
            previous = r // sorted and not overlapping, so r now ends last
        }

        return ParsedHeader(dataStart: dataStart, entries: entries, metadata: metadata, unsupported: unsupported)
    }

    static func errnoString() -> String {
        String(cString: strerror(errno))
    }
}
