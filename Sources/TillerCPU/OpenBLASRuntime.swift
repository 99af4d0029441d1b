import COpenBLAS
#if canImport(Glibc)
import Glibc
#endif

/// OpenBLAS reads its settings once, when the library is loaded, so two of them can only be fixed
/// by re-executing the process with the environment set:
/// - Version 0.3.21 does not know recent Intel CPUs and falls back to its SSE3 "Prescott" kernels,
///   about five times slower: OPENBLAS_CORETYPE picks the right ones.
/// - After each call its worker threads spin for about 2^28 cycles (0.1 s) before sleeping, and
///   on a small machine they steal the cores from Tiller's own parallel kernels that run between
///   matmuls (attention ran at half speed): OPENBLAS_THREAD_TIMEOUT=4 lets them sleep at once,
///   which costs matmul nothing measurable (see docs/performance.md).
/// Values the user set are always respected.
public enum OpenBLASRuntime {
    /// Kernel family OpenBLAS chose ("Prescott", "Haswell", "SkylakeX", ...).
    public static var coreName: String { String(cString: openblas_get_corename()) }
    public static var config: String { String(cString: openblas_get_config()) }
    public static var threads: Int { Int(openblas_get_num_threads()) }

    /// Set by `reexecIfNeeded` in the child so a failed fix cannot loop.
    static let marker = "TILLER_OPENBLAS_REEXEC"

    /// The best OpenBLAS core type this CPU supports, from /proc/cpuinfo flags.
    public static var recommendedCoreType: String? {
        guard let flags = cpuFlags() else { return nil }
        if flags.contains("avx512f") && flags.contains("avx512bw") && flags.contains("avx512vl") { return "SkylakeX" }
        if flags.contains("avx2") && flags.contains("fma") { return "Haswell" }
        if flags.contains("avx") { return "Sandybridge" }
        return nil
    }

    /// Vector width class of a core name: 0 for SSE kernels, 1 AVX, 2 AVX2, 3 AVX-512.
    static func tier(of core: String) -> Int {
        switch core.lowercased() {
        case "skylakex", "cooperlake", "sapphirerapids": return 3
        case "haswell", "zen", "skylake": return 2
        case "sandybridge": return 1
        default: return 0
        }
    }

    /// True when OpenBLAS runs slower kernels than the CPU supports and the user did not choose.
    public static var isOnSlowKernels: Bool {
        guard let best = recommendedCoreType else { return false }
        return tier(of: coreName) < tier(of: best)
    }

    /// A line for `tiller info` and benchmark headers.
    public static var summary: String {
        var line = "OpenBLAS kernels \(coreName), \(threads) threads"
        let names: [String] = ["OPENBLAS_CORETYPE", "OPENBLAS_THREAD_TIMEOUT"]
        let settings = names.compactMap { name -> String? in
            guard let value = getenv(name) else { return nil }
            return "\(name)=\(String(cString: value))"
        }
        if !settings.isEmpty {
            let who = getenv(marker) != nil ? "set by tiller at start-up" : "from the environment"
            line += " (\(settings.joined(separator: ", ")), \(who))"
        }
        if isOnSlowKernels, let best = recommendedCoreType {
            line += "; this CPU supports \(best): set OPENBLAS_CORETYPE=\(best) for about 5x faster matmul"
        }
        return line
    }

    /// Shortest spin OpenBLAS allows (2^4 cycles) before an idle worker sleeps.
    static let threadTimeout = "4"

    /// The environment variables a re-exec would add: empty when OpenBLAS is already set up well.
    public static var environmentFixes: [(name: String, value: String)] {
        var fixes: [(String, String)] = []
        if getenv("OPENBLAS_CORETYPE") == nil, isOnSlowKernels, let best = recommendedCoreType {
            fixes.append(("OPENBLAS_CORETYPE", best))
        }
        if getenv("OPENBLAS_THREAD_TIMEOUT") == nil, threads > 1 {
            fixes.append(("OPENBLAS_THREAD_TIMEOUT", threadTimeout))
        }
        return fixes
    }

    /// Re-executes the current binary once with the `environmentFixes` set. Does nothing when
    /// there are none or in the re-executed child. Returns only when no re-exec happened.
    public static func reexecIfNeeded() {
        let fixes = environmentFixes
        guard !fixes.isEmpty, getenv(marker) == nil else { return }
        for fix in fixes { setenv(fix.name, fix.value, 1) }
        setenv(marker, "1", 1)
        let args = CommandLine.arguments
        var cArgs: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
        execv("/proc/self/exe", &cArgs)
        // execv only returns on failure: carry on as loaded rather than fail.
        for fix in fixes { unsetenv(fix.name) }
        unsetenv(marker)
    }

    static func cpuFlags() -> Set<Substring>? {
        guard let file = fopen("/proc/cpuinfo", "r") else { return nil }
        defer { fclose(file) }
        var line: UnsafeMutablePointer<CChar>? = nil
        var capacity = 0
        defer { free(line) }
        while getline(&line, &capacity, file) > 0 {
            guard let line else { break }
            let text = String(cString: line)
            if text.hasPrefix("flags") {
                guard let colon = text.firstIndex(of: ":") else { return nil }
                return Set(text[text.index(after: colon)...].split(whereSeparator: { $0 == " " || $0 == "\n" }))
            }
        }
        return nil
    }
}

/// Serialises this process's BLAS calls. Attention switches OpenBLAS to one thread while it runs
/// its own blocks in parallel; the lock keeps that global setting from changing under a matmul
/// another thread has in flight. Each call is itself multi-threaded, so little is lost.
final class BLASLock: @unchecked Sendable {
    static let shared = BLASLock()
    private var mutex = pthread_mutex_t()
    private init() { pthread_mutex_init(&mutex, nil) }

    func withLock<R>(_ body: () throws -> R) rethrows -> R {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return try body()
    }
}
