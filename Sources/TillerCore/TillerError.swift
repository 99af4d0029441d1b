/// Every failure Tiller reports on bad input. Each case renders as one line that names the op or
/// file and the offending values; nothing on user input may trap.
public enum TillerError: Error, CustomStringConvertible, Equatable {
    case shapeMismatch(op: String, detail: String)
    case dtypeMismatch(op: String, detail: String)
    case emptyTensor(op: String, name: String)
    case indexOutOfRange(op: String, detail: String)
    case wrongBackend(op: String, detail: String)
    case invalidArgument(op: String, detail: String)
    case unsupported(String)
    case backendUnavailable(String)
    /// The device failed while working (lost, out of memory): the work since the last
    /// synchronisation is gone, but the process is not.
    case deviceFailure(String)
    case io(path: String, detail: String)
    /// A number a user gave (a flag, a JSON field) outside what Tiller accepts; see NumericRange.
    case outOfRange(name: String, value: String, allowed: String)

    public var description: String {
        switch self {
        case let .shapeMismatch(op, detail): return "\(op): shape mismatch: \(detail)"
        case let .dtypeMismatch(op, detail): return "\(op): dtype mismatch: \(detail)"
        case let .emptyTensor(op, name): return "\(op): tensor '\(name)' is empty"
        case let .indexOutOfRange(op, detail): return "\(op): index out of range: \(detail)"
        case let .wrongBackend(op, detail): return "\(op): tensor lives on another backend: \(detail)"
        case let .invalidArgument(op, detail): return "\(op): invalid argument: \(detail)"
        case let .unsupported(what): return "unsupported: \(what)"
        case let .backendUnavailable(what): return "backend unavailable: \(what)"
        case let .deviceFailure(what): return "device failure: \(what)"
        case let .io(path, detail): return "\(path): \(detail)"
        case let .outOfRange(name, value, allowed): return "\(name): \(value) is out of range (allowed \(allowed))"
        }
    }
}
