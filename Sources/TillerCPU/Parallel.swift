import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// Splits a range of independent work items across the machine's cores.
enum Parallel {
    static let workers: Int = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))

    /// Calls body on contiguous chunks of 0..<count, at most one chunk per core, each chunk at
    /// least `grain` items (so small problems stay on the calling thread).
    static func chunks(_ count: Int, grain: Int = 1, _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let tasks = min(workers, max(1, count / max(grain, 1)))
        if tasks == 1 { body(0..<count); return }
        DispatchQueue.concurrentPerform(iterations: tasks) { t in
            body((count * t / tasks)..<(count * (t + 1) / tasks))
        }
    }
}
