import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
#if canImport(Glibc)
import Glibc
#endif

/// A `tiller serve` started on an ephemeral loopback port for one test, and a small HTTP client
/// for it. The port is read from the line the server prints on stderr once it listens.
final class ServeProcess {
    let process = Process()
    let port: Int
    private let log = Log()

    /// What the server printed on stderr so far.
    private final class Log: @unchecked Sendable {
        let lock = NSLock()
        var text = ""
        var port: Int?
    }

    struct Failure: Error, CustomStringConvertible { let description: String }

    init(_ arguments: [String]) throws {
        process.executableURL = TillerProcess.binary
        process.arguments = ["serve", "--port", "0", "--backend", "cpu"] + arguments
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        // Read stderr on a thread of its own until the process ends (a full pipe would block it).
        let found = DispatchSemaphore(value: 0)
        let handle = err.fileHandleForReading, log = self.log
        Thread.detachNewThread {
            var signalled = false
            while true {
                let data = handle.availableData
                if data.isEmpty { break }
                let text = log.lock.withLock { log.text += String(decoding: data, as: UTF8.self); return log.text }
                if !signalled, let range = text.range(of: #"listening on http://127\.0\.0\.1:(\d+)"#, options: .regularExpression) {
                    log.lock.withLock { log.port = Int(text[range].split(separator: ":").last!) }
                    signalled = true
                    found.signal()
                }
            }
            if !signalled { found.signal() }
        }
        _ = found.wait(timeout: .now() + 60)
        guard let port = log.lock.withLock({ log.port }) else {
            process.terminate()
            throw Failure(description: "tiller serve did not start: \(log.lock.withLock { log.text })")
        }
        self.port = port
    }

    var stderr: String { log.lock.withLock { log.text } }

    /// SIGTERM, then the exit status (nil: still running after `timeout` seconds, then killed).
    func terminate(timeout: Double = 30) -> Int32? {
        kill(process.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        guard !process.isRunning else { kill(process.processIdentifier, SIGKILL); return nil }
        return process.terminationStatus
    }

    deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }

    struct Response {
        let status: Int
        let headers: [String: String]
        let body: Data
        var text: String { String(decoding: body, as: UTF8.self) }
        var json: [String: Any]? { try? JSONSerialization.jsonObject(with: body) as? [String: Any] }
        /// The "error" object of an error response.
        var error: [String: Any]? { json?["error"] as? [String: Any] }
    }

    static let session: URLSession = {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.httpMaximumConnectionsPerHost = 64
        configuration.timeoutIntervalForRequest = 120
        return URLSession(configuration: configuration)
    }()

    /// One request, waited for; nil when the connection failed.
    func send(_ path: String, method: String = "POST", body: Data? = nil, headers: [String: String] = [:]) -> Response? {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
        request.httpMethod = method
        request.httpBody = body
        for (key, value) in headers { request.setValue(value, forHTTPHeaderField: key) }
        if body != nil && headers["Content-Type"] == nil { request.setValue("application/json", forHTTPHeaderField: "Content-Type") }
        let done = DispatchSemaphore(value: 0)
        let box = ResponseBox()
        Self.session.dataTask(with: request) { data, response, _ in
            if let http = response as? HTTPURLResponse {
                var fields: [String: String] = [:]
                for (key, value) in http.allHeaderFields { fields["\(key)".lowercased()] = "\(value)" }
                box.value = Response(status: http.statusCode, headers: fields, body: data ?? Data())
            }
            done.signal()
        }.resume()
        done.wait()
        return box.value
    }

    func post(_ path: String, _ object: [String: Any], headers: [String: String] = [:]) throws -> Response {
        let body = try JSONSerialization.data(withJSONObject: object)
        guard let response = send(path, body: body, headers: headers) else { throw Failure(description: "no response to \(object)") }
        return response
    }

    private final class ResponseBox: @unchecked Sendable { var value: Response? }

    /// Runs `body(i)` for i in 0..<count, each on a thread of its own, all at once (concurrentPerform
    /// would run only as many at a time as the machine has cores).
    static func concurrently(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
        let group = DispatchGroup()
        for i in 0..<count {
            group.enter()
            Thread.detachNewThread { body(i); group.leave() }
        }
        group.wait()
    }

    /// The server-sent events of a streamed response, without the final [DONE].
    static func events(_ response: Response) -> (chunks: [[String: Any]], done: Bool) {
        var chunks: [[String: Any]] = [], done = false
        for line in response.text.split(separator: "\n") where line.hasPrefix("data: ") {
            let payload = line.dropFirst(6)
            if payload == "[DONE]" { done = true; continue }
            if let object = try? JSONSerialization.jsonObject(with: Data(payload.utf8)) as? [String: Any] { chunks.append(object) }
        }
        return (chunks, done)
    }

    /// Sends raw bytes on a fresh connection, reads until `readBytes` arrived, then closes: a
    /// client that goes away in the middle of a response.
    func abandon(_ request: String, afterReading readBytes: Int) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "no socket") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw Failure(description: "cannot connect") }
        let bytes = Array(request.utf8)
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        var received = 0
        var buffer = [UInt8](repeating: 0, count: 4096)
        while received < readBytes {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            received += n
        }
    }
}
