import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The one way Tiller writes a file a user names. The bytes go to a uniquely named temporary file
/// beside the target (".NAME.tiller-XXXXXXXX"), which `commit` fsyncs and renames into place, so a
/// failed, interrupted or concurrent run never leaves a half-written target: the previous file
/// stays whole until the new one is complete, and two runs to the same path each replace it with
/// their own whole file. A symlink is followed (its target is replaced, the link stays); a target
/// that is not a regular file (a terminal, a pipe, /dev/stdout) is written in place, streaming;
/// "-" is standard output where the caller allows it. Temporaries are removed by `discard`, by
/// deinit and on SIGINT/SIGTERM/SIGHUP (`TemporaryFiles`).
public final class OutputFile {
    /// Where the bytes of a path end up.
    public enum Destination: Equatable {
        /// Standard output ("-").
        case standardOutput
        /// An existing file that is not a regular file (a device, a FIFO): written in place.
        case inPlace(String)
        /// A regular file (existing or not), replaced by rename; the absolute path with every
        /// symlink resolved, and the existing file's permissions.
        case replace(target: String, mode: mode_t?)
    }

    /// The path as the user gave it (for messages).
    public let path: String
    public let destination: Destination
    private var fd: Int32
    private var temporary: String?
    private var slot: Int?

    /// Opens `path` for writing; nothing at `path` changes before `commit`. "-" is standard output
    /// when `allowStandardOutput`, else refused. Fails in one line naming the path.
    public init(_ path: String, allowStandardOutput: Bool = false) throws {
        self.path = path
        destination = try Self.destination(of: path, allowStandardOutput: allowStandardOutput)
        switch destination {
        case .standardOutput:
            fd = STDOUT_FILENO
        case .inPlace(let special):
            fd = open(special, O_WRONLY | O_CLOEXEC)
            guard fd >= 0 else { throw TillerError.io(path: path, detail: "cannot open for writing: \(Self.reason())") }
        case .replace(let target, let mode):
            let directory = (target as NSString).deletingLastPathComponent
            let name = (target as NSString).lastPathComponent
            var opened: (Int32, String)?
            for _ in 0..<100 {
                let suffix = String(UInt64.random(in: 0...UInt64(UInt32.max)), radix: 16)
                let candidate = directory + "/." + name + ".tiller-" + suffix
                // The mode is 0666 less the umask, as for any new file; an existing file's is kept below.
                let d = open(candidate, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o666)
                if d >= 0 { opened = (d, candidate); break }
                if errno != EEXIST { throw TillerError.io(path: path, detail: "cannot create a file in \(directory): \(Self.reason())") }
            }
            guard let (d, candidate) = opened else {
                throw TillerError.io(path: path, detail: "cannot create a temporary file in \(directory)")
            }
            fd = d
            temporary = candidate
            slot = TemporaryFiles.register(candidate)
            if let mode { _ = fchmod(d, mode) }
        }
    }

    deinit { discard() }

    /// True when the bytes go straight to the target (standard output, a device, a FIFO): such an
    /// output cannot be written at offsets and is not atomic.
    public var isInPlace: Bool {
        if case .replace = destination { return false }
        return true
    }

    /// Appends bytes.
    public func write(_ data: Data) throws {
        try data.withUnsafeBytes { try write($0) }
    }

    /// Appends bytes.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard fd >= 0 else { throw TillerError.io(path: path, detail: "the output file is closed") }
        var done = 0
        while done < bytes.count {
            let n = systemWrite(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw TillerError.io(path: path, detail: "cannot write: \(Self.reason())") }
            done += n
        }
    }

    /// Writes bytes at an offset (regular files only: the capture writer fills tensors in place).
    public func write(_ bytes: UnsafeRawBufferPointer, at offset: Int) throws {
        guard fd >= 0 else { throw TillerError.io(path: path, detail: "the output file is closed") }
        guard !isInPlace else { throw TillerError.io(path: path, detail: "is not a regular file (this output is written at offsets)") }
        var done = 0
        while done < bytes.count {
            let n = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset + done))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw TillerError.io(path: path, detail: "cannot write: \(Self.reason())") }
            done += n
        }
    }

    /// Sets the file's size (regular files only).
    public func truncate(to size: Int) throws {
        guard fd >= 0, !isInPlace else { throw TillerError.io(path: path, detail: "is not a regular file (this output is written at offsets)") }
        guard ftruncate(fd, off_t(size)) == 0 else {
            throw TillerError.io(path: path, detail: "cannot size the file to \(size) bytes: \(Self.reason())")
        }
    }

    /// Makes the written bytes the file at `path`: fsync, rename over the target, fsync of the
    /// directory (so the rename survives a crash). On failure the target is left as it was.
    public func commit() throws {
        guard fd >= 0 else { throw TillerError.io(path: path, detail: "the output file is closed") }
        guard let temporary, case .replace(let target, _) = destination else {
            if fd != STDOUT_FILENO { close(fd) }
            fd = -1
            return
        }
        defer { discard() }
        guard fsync(fd) == 0 else { throw TillerError.io(path: path, detail: "cannot write: \(Self.reason())") }
        let closed = close(fd)
        fd = -1
        guard closed == 0 else { throw TillerError.io(path: path, detail: "cannot write: \(Self.reason())") }
        guard rename(temporary, target) == 0 else {
            throw TillerError.io(path: path, detail: "cannot move the new file into place: \(Self.reason())")
        }
        self.temporary = nil
        let directory = open((target as NSString).deletingLastPathComponent, O_RDONLY | O_CLOEXEC)
        if directory >= 0 {
            _ = fsync(directory)
            close(directory)
        }
    }

    /// Closes and removes the temporary file, leaving the target as it was (after an error; also
    /// done by deinit when `commit` was never reached).
    public func discard() {
        if fd >= 0 {
            if fd != STDOUT_FILENO { close(fd) }
            fd = -1
        }
        if let temporary {
            unlink(temporary)
            self.temporary = nil
        }
        if let slot {
            TemporaryFiles.unregister(slot)
            self.slot = nil
        }
    }

    /// Writes a whole file the same way (`allowStandardOutput` as for `init`).
    public static func write(_ data: Data, to path: String, allowStandardOutput: Bool = false) throws {
        let file = try OutputFile(path, allowStandardOutput: allowStandardOutput)
        try file.write(data)
        try file.commit()
    }

    /// Where `path`'s bytes would go, or a one-line error when they cannot: a directory, a parent
    /// directory that does not exist, "-" where standard output is not allowed.
    public static func destination(of path: String, allowStandardOutput: Bool = false) throws -> Destination {
        if path == "-" {
            guard allowStandardOutput else {
                throw TillerError.io(path: path, detail: "this output cannot go to standard output; give a file name")
            }
            return .standardOutput
        }
        guard !path.isEmpty else { throw TillerError.io(path: "''", detail: "an empty output path") }
        var info = stat()
        if stat(path, &info) == 0 {
            switch info.st_mode & S_IFMT {
            case S_IFDIR: throw TillerError.io(path: path, detail: "is a directory")
            case S_IFREG:
                guard let real = realpath(path, nil) else { throw TillerError.io(path: path, detail: "cannot resolve: \(reason())") }
                defer { free(real) }
                return .replace(target: String(cString: real), mode: info.st_mode & 0o7777)
            default:
                return .inPlace(path)
            }
        }
        guard errno == ENOENT else { throw TillerError.io(path: path, detail: "cannot write: \(reason())") }
        if path.hasSuffix("/") { throw TillerError.io(path: path, detail: "no such directory") }
        // Nothing there yet, or a symlink to nothing: follow the links by hand to the name to create.
        var current = path
        for _ in 0..<40 {
            var link = stat()
            guard lstat(current, &link) == 0, link.st_mode & S_IFMT == S_IFLNK else { break }
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let n = readlink(current, &buffer, buffer.count - 1)
            guard n > 0 else { throw TillerError.io(path: path, detail: "cannot read the symlink \(current): \(reason())") }
            let destination = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            current = destination.hasPrefix("/") ? destination : ((current as NSString).deletingLastPathComponent as NSString).appendingPathComponent(destination)
        }
        var parent = (current as NSString).deletingLastPathComponent
        if parent.isEmpty { parent = "." }
        let name = (current as NSString).lastPathComponent
        var parentInfo = stat()
        guard stat(parent, &parentInfo) == 0 else { throw TillerError.io(path: path, detail: "the directory \(parent) does not exist") }
        guard parentInfo.st_mode & S_IFMT == S_IFDIR else { throw TillerError.io(path: path, detail: "\(parent) is not a directory") }
        guard access(parent, W_OK) == 0 else { throw TillerError.io(path: path, detail: "cannot write in \(parent): \(reason())") }
        guard let real = realpath(parent, nil) else { throw TillerError.io(path: path, detail: "cannot resolve \(parent): \(reason())") }
        defer { free(real) }
        let root = String(cString: real)
        return .replace(target: (root == "/" ? "" : root) + "/" + name, mode: nil)
    }

    private func systemWrite(_ fd: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
        #if canImport(Glibc)
        return Glibc.write(fd, bytes, count)
        #else
        return Darwin.write(fd, bytes, count)
        #endif
    }

    static func reason() -> String { String(cString: strerror(errno)) }
}

/// The temporary files of the `OutputFile`s being written, removed if the process is interrupted.
/// The signal handler only reads pre-allocated C strings and calls unlink (both async-signal-safe),
/// then restores the default action and re-raises, so the process still dies of the signal.
enum TemporaryFiles {
    static let capacity = 256
    static let slots: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?> = {
        let slots = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: capacity)
        slots.initialize(repeating: nil, count: capacity)
        return slots
    }()
    static let lock = NSLock()
    static let installed: Bool = {
        _ = slots
        _ = Interruption.flags
        var unblock = sigset_t()
        sigemptyset(&unblock)
        for signalNumber in [SIGINT, SIGTERM, SIGHUP] {
            // A signal the parent chose to ignore (nohup, background jobs) stays ignored.
            let previous = signal(signalNumber, removeTemporariesAndReraise)
            if unsafeBitCast(previous, to: Int.self) == unsafeBitCast(SIG_IGN, to: Int.self) { signal(signalNumber, SIG_IGN) }
            sigaddset(&unblock, signalNumber)
        }
        // A mask inherited blocked (a parent spawning from a worker thread, as Foundation's
        // Process does) would make the run deaf to SIGTERM; this thread takes them.
        pthread_sigmask(SIG_UNBLOCK, &unblock, nil)
        return true
    }()

    /// Remembers a temporary file; nil when every slot is taken (it is then only removed by the
    /// normal paths).
    static func register(_ path: String) -> Int? {
        _ = installed
        lock.lock()
        defer { lock.unlock() }
        for i in 0..<capacity where slots[i] == nil {
            slots[i] = strdup(path)
            return i
        }
        return nil
    }

    static func unregister(_ slot: Int) {
        lock.lock()
        defer { lock.unlock() }
        let copy = slots[slot]
        slots[slot] = nil
        free(copy)
    }
}

/// A long job (training) that can stop cleanly asks for SIGINT and SIGTERM to be deferred: the
/// first one only sets `requested`, which the job polls at a safe point (after a batch, to write a
/// checkpoint and exit); a second one interrupts as usual.
public enum Interruption {
    static let flags: UnsafeMutablePointer<sig_atomic_t> = {
        let flags = UnsafeMutablePointer<sig_atomic_t>.allocate(capacity: 2)
        flags.initialize(repeating: 0, count: 2)
        return flags
    }()

    /// From now on the first SIGINT or SIGTERM is a request, not an interruption.
    public static func deferSignals() {
        _ = flags
        _ = TemporaryFiles.installed
        flags[0] = 1
    }

    /// Whether a deferred SIGINT or SIGTERM has arrived.
    public static var requested: Bool { flags[1] != 0 }
}

private func removeTemporariesAndReraise(_ signalNumber: Int32) {
    let flags = Interruption.flags
    if flags[0] != 0, flags[1] == 0, signalNumber == SIGINT || signalNumber == SIGTERM {
        flags[1] = 1
        return
    }
    let slots = TemporaryFiles.slots
    for i in 0..<TemporaryFiles.capacity {
        if let path = slots[i] { unlink(path) }
    }
    signal(signalNumber, SIG_DFL)
    raise(signalNumber)
}
