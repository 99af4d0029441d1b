import TillerCore

/// An error answered in OpenAI's shape, {"error": {"message", "type", "param", "code"}}, with
/// its HTTP status: the message names the field (`param`) and the value that is wrong.
public struct APIError: Error, CustomStringConvertible, Sendable {
    public let status: Int
    public let message: String
    public let type: String
    public let param: String?
    public let code: String?
    /// Seconds a client should wait before trying again (429), sent as Retry-After.
    public var retryAfter: Int?

    public init(status: Int = 400, _ message: String, type: String = "invalid_request_error", param: String? = nil, code: String? = nil) {
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
    }

    public var description: String { message }

    /// A request field that is missing, of the wrong type or out of range.
    static func field(_ param: String, _ message: String) -> APIError {
        APIError("\(param): \(message)", param: param, code: "invalid_value")
    }

    static func unauthorized() -> APIError {
        APIError(status: 401, "missing or wrong API key (send Authorization: Bearer KEY)", code: "invalid_api_key")
    }

    static func queueFull(_ depth: Int) -> APIError {
        var error = APIError(status: 429, "the server is busy: \(depth) requests are already waiting", type: "rate_limit_error",
                             code: "queue_full")
        error.retryAfter = 1
        return error
    }

    var json: String {
        func quoted(_ s: String?) -> String { s.map { JSONEscaping.quoted($0) } ?? "null" }
        return "{\"error\": {\"message\": \(quoted(message)), \"type\": \(quoted(type)), \"param\": \(quoted(param)), \"code\": \(quoted(code))}}"
    }
}
