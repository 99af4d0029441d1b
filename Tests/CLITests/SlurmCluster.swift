import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A real one-node Slurm cluster on loopback for the tests (Debian's slurm-wlm and munge, which
/// scripts/install-deps.sh installs): its own munged, slurmctld and slurmd, with a minimal
/// slurm.conf, every state, spool, log and socket file in a scratch directory and free ports, so
/// it touches nothing of the machine's own Slurm. `start` throws `Unavailable` with a one-line
/// reason where Slurm cannot run (not installed, not root, a daemon that does not come up).
final class SlurmCluster {
    struct Unavailable: Error, CustomStringConvertible {
        let description: String
    }

    /// Short, as munge's socket path must fit in sun_path.
    let directory: String
    let environment: [String: String]
    private var daemons: [Daemon] = []
    private let tools: [String: String]

    static let toolNames = ["munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo"]

    private init(directory: String, tools: [String: String]) {
        self.directory = directory
        self.tools = tools
        environment = ["SLURM_CONF": directory + "/slurm.conf"]
    }

    deinit { stop() }

    static func start() throws -> SlurmCluster {
        var tools: [String: String] = [:]
        for name in toolNames {
            guard let path = ["/usr/sbin/", "/usr/bin/", "/usr/local/sbin/", "/usr/local/bin/"].map({ $0 + name })
                .first(where: FileManager.default.isExecutableFile(atPath:)) else {
                throw Unavailable(description: "\(name) is not installed (apt-get install slurm-wlm munge)")
            }
            tools[name] = path
        }
        // slurmd starts each task as the job's user: only root can.
        guard getuid() == 0 else { throw Unavailable(description: "slurmd needs root to launch jobs, and this runs as uid \(getuid())") }
        var template = Array("/tmp/tiller-slurm-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw Unavailable(description: "cannot make a scratch directory in /tmp") }
        let cluster = SlurmCluster(directory: String(cString: made), tools: tools)
        do {
            try cluster.boot()
        } catch {
            cluster.stop()
            throw error
        }
        return cluster
    }

    private func boot() throws {
        let d = directory
        for sub in ["state", "spool", "log"] { try FileManager.default.createDirectory(atPath: "\(d)/\(sub)", withIntermediateDirectories: true) }
        // A key of its own, so the test needs nothing of /etc/munge.
        let key = Data((0..<1024).map { _ in UInt8.random(in: 0...255) })
        try key.write(to: URL(fileURLWithPath: d + "/munge.key"))
        chmod(d + "/munge.key", 0o400)
        // In the foreground, as each daemon here: a process of this test, stopped by its own id.
        daemons.append(try spawn("munged", ["--foreground", "--socket=\(d)/munge.sock", "--pid-file=\(d)/munged.pid",
                                            "--log-file=\(d)/log/munged.log", "--seed-file=\(d)/munge.seed",
                                            "--key-file=\(d)/munge.key", "--force"], log: d + "/log/munged.out"))
        let socketDeadline = Date().addingTimeInterval(10)
        while !FileManager.default.fileExists(atPath: d + "/munge.sock") {
            guard daemons[0].isRunning, Date() < socketDeadline else { throw Unavailable(description: "munged did not start: \(lastLine(d + "/log"))") }
            usleep(50_000)
        }
        let ports = try Self.freePorts(2)
        let cpus = ProcessInfo.processInfo.activeProcessorCount
        let config = """
            ClusterName=tiller-test
            SlurmctldHost=localhost
            SlurmUser=root
            SlurmdUser=root
            AuthType=auth/munge
            CredType=cred/munge
            AuthInfo=socket=\(d)/munge.sock
            SlurmctldPort=\(ports[0])
            SlurmdPort=\(ports[1])
            StateSaveLocation=\(d)/state
            SlurmdSpoolDir=\(d)/spool
            SlurmctldPidFile=\(d)/slurmctld.pid
            SlurmdPidFile=\(d)/slurmd.pid
            SlurmctldLogFile=\(d)/log/slurmctld.log
            SlurmdLogFile=\(d)/log/slurmd.log
            ProctrackType=proctrack/linuxproc
            TaskPlugin=task/none
            SelectType=select/cons_tres
            SelectTypeParameters=CR_CPU
            SchedulerType=sched/builtin
            JobCompType=jobcomp/none
            AccountingStorageType=accounting_storage/none
            JobAcctGatherType=jobacct_gather/none
            MpiDefault=none
            ReturnToService=2
            KillWait=5
            NodeName=localhost NodeAddr=127.0.0.1 CPUs=\(cpus) State=UNKNOWN
            PartitionName=test Nodes=localhost Default=YES MaxTime=INFINITE State=UP

            """
        try config.write(toFile: d + "/slurm.conf", atomically: true, encoding: .utf8)
        daemons.append(try spawn("slurmctld", ["-D", "-c"], log: d + "/log/slurmctld.out"))
        daemons.append(try spawn("slurmd", ["-D", "-N", "localhost"], log: d + "/log/slurmd.out"))
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if let state = try? output("sinfo", ["-h", "-o", "%T"]), state.trimmingCharacters(in: .whitespacesAndNewlines) == "idle" { return }
            if let dead = daemons.first(where: { !$0.isRunning }) {
                throw Unavailable(description: "\(dead.name) exited: \(lastLine(directory + "/log"))")
            }
            usleep(200_000)
        }
        throw Unavailable(description: "the node did not become idle in 30 s: \(lastLine(directory + "/log"))")
    }

    /// Stops the daemons this cluster started (by their own process ids) and removes its directory.
    func stop() {
        // slurmd and slurmctld first (they talk to munged while they shut down), munged last.
        for daemon in daemons.reversed() where daemon.isRunning {
            kill(daemon.pid, SIGTERM)
            let deadline = Date().addingTimeInterval(5)
            while daemon.isRunning && Date() < deadline { usleep(20_000) }
            if daemon.isRunning {
                kill(daemon.pid, SIGKILL)
                var status: Int32 = 0
                waitpid(daemon.pid, &status, 0)
            }
        }
        daemons = []
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Runs a Slurm client tool with this cluster's configuration; what it printed on stdout.
    @discardableResult
    func output(_ tool: String, _ arguments: [String]) throws -> String {
        let result = try capture(tool, arguments)
        guard result.status == 0 else {
            throw Unavailable(description: "\(tool) \(arguments.joined(separator: " ")) exited with \(result.status): \(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        return result.stdout
    }

    /// Submits `script` as an array job (`--array`), each task's output in the directory as
    /// task-JOB-TASK.log; returns the job id.
    func submit(_ script: String, array: String) throws -> String {
        let path = directory + "/job-\(UUID().uuidString.prefix(8)).sh"
        try ("#!/bin/sh\n" + script + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o755)
        let id = try output("sbatch", ["--parsable", "--array=\(array)", "--output=\(directory)/task-%A-%a.log", "--chdir=\(directory)", path])
        return String(id.split(separator: ";")[0]).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// True while any task of `job` is pending or running.
    func isActive(_ job: String) throws -> Bool {
        !(try output("squeue", ["-h", "-j", job, "-o", "%i"])).trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
    }

    /// Waits until `job` has left the queue (polling squeue), at most `timeout` seconds.
    func wait(_ job: String, timeout: TimeInterval) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while try isActive(job) {
            guard Date() < deadline else {
                _ = try? capture("scancel", [job])
                throw Unavailable(description: "job \(job) did not finish in \(Int(timeout)) s")
            }
            usleep(100_000)
        }
    }

    /// What the tasks of `job` printed.
    func logs(_ job: String) -> String {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasPrefix("task-\(job)-") }.sorted().map {
            "\($0): " + ((try? String(contentsOfFile: directory + "/" + $0, encoding: .utf8)) ?? "")
        }.joined(separator: "\n")
    }

    /// Runs a client tool to completion, its output through files. Every process here is
    /// started with posix_spawn and reaped with waitpid on its own id: Foundation's Process
    /// stalled (a zombie never reaped) once the long-running daemons were its children too.
    private func capture(_ tool: String, _ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        let name = UUID().uuidString.prefix(8)
        let out = "\(directory)/log/\(tool)-\(name).out", err = "\(directory)/log/\(tool)-\(name).err"
        defer { unlink(out); unlink(err) }
        let pid = try Self.spawn(tools[tool] ?? tool, arguments, environment: environment, stdout: out, stderr: err)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return (code, (try? String(contentsOfFile: out, encoding: .utf8)) ?? "", (try? String(contentsOfFile: err, encoding: .utf8)) ?? "")
    }

    private func spawn(_ tool: String, _ arguments: [String], log: String) throws -> Daemon {
        Daemon(name: tool, pid: try Self.spawn(tools[tool]!, arguments, environment: environment, stdout: log, stderr: log))
    }

    /// posix_spawn with standard input from /dev/null, the outputs into files, and the signal
    /// mask and the handled signals reset (the test runner's must not reach the daemons).
    static func spawn(_ path: String, _ arguments: [String], environment extra: [String: String], stdout: String, stderr: String) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t(), all = sigset_t()
        sigemptyset(&empty)
        sigfillset(&all)
        sigdelset(&all, SIGKILL)
        sigdelset(&all, SIGSTOP)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let environment = ProcessInfo.processInfo.environment.merging(extra) { $1 }.map { "\($0.key)=\($0.value)" }
        let argv = ([path] + arguments).map { strdup($0) } + [nil], envp = environment.map { strdup($0) } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var pid: pid_t = 0
        let failed = posix_spawn(&pid, path, &actions, &attributes, argv, envp)
        guard failed == 0 else { throw Unavailable(description: "cannot start \(path): \(String(cString: strerror(failed)))") }
        return pid
    }

    struct Daemon {
        let name: String
        let pid: pid_t
        /// Not exited yet (an exited one is reaped here).
        var isRunning: Bool {
            var status: Int32 = 0
            return waitpid(pid, &status, WNOHANG) == 0
        }
    }

    /// The last error a daemon logged, for the one-line reason.
    private func lastLine(_ logs: String) -> String {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: logs)) ?? []
        let lines = names.sorted().flatMap { name in
            ((try? String(contentsOfFile: logs + "/" + name, encoding: .utf8)) ?? "").split(separator: "\n")
                .filter { $0.contains("error") || $0.contains("fatal") }.map { "\(name): \($0)" }
        }
        return lines.last ?? "no error logged"
    }

    /// Ports nothing listens on now (bound to port 0 and released).
    static func freePorts(_ count: Int) throws -> [Int] {
        var sockets: [Int32] = [], ports: [Int] = []
        defer { sockets.forEach { close($0) } }
        for _ in 0..<count {
            let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard s >= 0 else { throw Unavailable(description: "cannot open a socket") }
            sockets.append(s)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = 0
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafeMutablePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, length) == 0 && getsockname(s, $0, &length) == 0 }
            }
            guard bound else { throw Unavailable(description: "cannot find a free port on 127.0.0.1") }
            ports.append(Int(UInt16(bigEndian: address.sin_port)))
        }
        return ports
    }
}
