import Foundation
import Hummingbird
import ServiceLifecycle
import TillerCore
import TillerModels

/// `tiller serve`: the OpenAI-compatible HTTP API over a `ServeEngine`, run by a ServiceGroup so
/// SIGTERM and SIGINT stop accepting connections, let requests in flight finish (up to
/// `shutdownTimeout`, then cancel them) and return normally.
public final class TillerServer: @unchecked Sendable {
    public let engine: ServeEngine
    var configuration: ServeConfiguration { engine.configuration }

    public init(engine: ServeEngine) {
        self.engine = engine
    }

    /// Serves until SIGTERM/SIGINT. `onListening` gets the bound port (the real one for port 0).
    public func run(onListening: @escaping @Sendable (Int) -> Void) async throws {
        let router = Router()
        addRoutes(router)
        let app = Application(router: router,
                              configuration: .init(address: .hostname(configuration.host, port: configuration.port),
                                                   serverName: "tiller"),
                              onServerRunning: { channel in onListening(channel.localAddress?.port ?? -1) })
        var group = ServiceGroupConfiguration(services: [.init(service: app)], gracefulShutdownSignals: [.sigterm, .sigint],
                                              logger: app.logger)
        group.maximumGracefulShutdownDuration = .milliseconds(Int64(configuration.shutdownTimeout * 1000))
        engine.scheduler.start()
        defer { engine.scheduler.stop() }
        try await ServiceGroup(configuration: group).run()
    }

    func addRoutes(_ router: Router<BasicRequestContext>) {
        router.get("/health") { _, _ in Self.json("{\"status\": \"ok\"}") }
        router.get("/metrics") { [engine] _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                     body: ResponseBody(byteBuffer: ByteBuffer(string: engine.metrics.text())))
        }
        router.get("/v1/models") { [engine] request, _ in
            guard engine.authorized(request.headers[.authorization]) else { return Self.error(.unauthorized()) }
            let name = JSONEscaping.quoted(engine.configuration.modelName)
            return Self.json("{\"object\": \"list\", \"data\": [{\"id\": \(name), \"object\": \"model\", \"created\": 0, \"owned_by\": \"tiller\"}]}")
        }
        router.post("/v1/chat/completions") { [self] request, _ in await complete(request, chat: true) }
        router.post("/v1/completions") { [self] request, _ in await complete(request, chat: false) }
    }

    /// A completion request from its body to its response; every failure is an OpenAI error.
    func complete(_ request: Request, chat: Bool) async -> Response {
        engine.metrics.requests.increment()
        guard engine.authorized(request.headers[.authorization]) else { return rejected(.unauthorized()) }
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: configuration.maxBodyBytes)
        } catch {
            return rejected(APIError(status: 413, "the body is larger than \(configuration.maxBodyBytes) bytes (--max-body-bytes)",
                                     code: "body_too_large"))
        }
        let job: Job, parsed: CompletionRequest
        do {
            parsed = try CompletionRequest(body: Array(buffer: body), chat: chat)
            job = try engine.job(parsed)
            try engine.scheduler.submit(job)
        } catch let error as APIError {
            return rejected(error)
        } catch {
            return rejected(APIError("\(error)"))
        }
        let responses = OpenAIResponses(chat: chat, model: configuration.modelName)
        let promptTokens = job.request.promptIDs.count
        if parsed.stream {
            return stream(job, responses, promptTokens: promptTokens, includeUsage: parsed.includeUsage)
        }
        // Task cancellation (shutdown past its deadline) ends the stream; the job is then cancelled.
        for await event in job.events {
            switch event {
            case .token: continue
            case .finished(let result, _):
                return Self.json(responses.complete(result, promptTokens: promptTokens))
            case .failed(let error):
                return rejected(error)
            }
        }
        job.cancel()
        return rejected(APIError(status: 503, "the request was cancelled (the server is shutting down)", type: "server_error",
                                 code: "cancelled"))
    }

    /// Server-sent events: a chunk per token with new text, then the end chunk and [DONE]. A write
    /// that fails (the client went away) cancels the job, which frees its batch slot.
    func stream(_ job: Job, _ responses: OpenAIResponses, promptTokens: Int, includeUsage: Bool) -> Response {
        let body = ResponseBody { writer in
            do {
                var first = responses.chat
                if first {
                    try await writer.write(ByteBuffer(string: responses.chunk("", first: true)))
                    first = false
                }
                loop: for await event in job.events {
                    switch event {
                    case .token(_, let text):
                        guard !text.isEmpty else { continue }
                        try await writer.write(ByteBuffer(string: responses.chunk(text)))
                    case .finished(let result, let text):
                        try await writer.write(ByteBuffer(string: responses.end(result, text: text, promptTokens: promptTokens,
                                                                              includeUsage: includeUsage)))
                        break loop
                    case .failed(let error):
                        try await writer.write(ByteBuffer(string: OpenAIResponses.streamError(error)))
                        break loop
                    }
                }
                job.cancel()
                try await writer.finish(nil)
            } catch {
                job.cancel()
                throw error
            }
        }
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: body)
    }

    func rejected(_ error: APIError) -> Response {
        engine.metrics.rejected.increment()
        return Self.error(error)
    }

    static func error(_ error: APIError) -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let retry = error.retryAfter { headers[.retryAfter] = "\(retry)" }
        return Response(status: .init(code: error.status), headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: error.json)))
    }

    static func json(_ text: String) -> Response {
        Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }
}
