import CTillerKernels
import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// Splits a range of independent work items across the machine's cores.
enum Parallel {
    static let workers: Int = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))

    /// Calls body on contiguous chunks of 0..<count, at most one chunk per core, each chunk at
    /// least `grain` items (so small problems stay on the calling thread).
    ///
    /// Chunks run on CTillerKernels' persistent pool (tiller_pool_run), whose workers spin
    /// briefly between jobs, so the many short parallel ops of a decode step start without a
    /// kernel wake-up each; when the pool is busy (a nested call, or another thread's job) the
    /// chunks go to Dispatch as before.
    static func chunks(_ count: Int, grain: Int = 1, _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let tasks = min(workers, max(1, count / max(grain, 1)))
        if tasks == 1 { body(0..<count); return }
        let range = { (t: Int) in (count * t / tasks)..<(count * (t + 1) / tasks) }
        withoutActuallyEscaping(body) { body in
            let job = PoolJob(body: body, range: range)
            let context = Unmanaged.passUnretained(job).toOpaque()
            let status = tiller_pool_run(tasks, { context, task in
                let job = Unmanaged<PoolJob>.fromOpaque(context!).takeUnretainedValue()
                job.body(job.range(task))
            }, context)
            withExtendedLifetime(job) {}
            if status != 0 {
                DispatchQueue.concurrentPerform(iterations: tasks) { t in body(range(t)) }
            }
        }
    }
}

/// What a pool task needs: the chunk body and how task numbers map to chunks.
private final class PoolJob {
    let body: (Range<Int>) -> Void
    let range: (Int) -> Range<Int>
    init(body: @escaping (Range<Int>) -> Void, range: @escaping (Int) -> Range<Int>) {
        self.body = body
        self.range = range
    }
}
