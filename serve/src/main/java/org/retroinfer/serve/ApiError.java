package org.retroinfer.serve;

/**
 * An error answered as OpenAI answers it: an HTTP status and a JSON body
 * {@code {"error": {"message", "type", "param", "code"}}}.
 */
final class ApiError extends RuntimeException {
  final int status;
  final String type;
  final String code;
  final String param;

  ApiError(int status, String type, String code, String param, String message) {
    super(message);
    this.status = status;
    this.type = type;
    this.code = code;
    this.param = param;
  }

  /** 400: the request is malformed or asks for something this server cannot do. */
  static ApiError invalid(String param, String message) {
    return new ApiError(400, "invalid_request_error", null, param, message);
  }

  static ApiError unauthorized(String message) {
    return new ApiError(401, "invalid_request_error", "invalid_api_key", null, message);
  }

  static ApiError notFound(String code, String message) {
    return new ApiError(404, "invalid_request_error", code, null, message);
  }

  static ApiError tooLarge(String message) {
    return new ApiError(413, "invalid_request_error", "request_too_large", null, message);
  }

  static ApiError busy(String message) {
    return new ApiError(429, "rate_limit_error", "queue_full", null, message);
  }

  static ApiError unavailable(String message) {
    return new ApiError(503, "server_error", "shutting_down", null, message);
  }

  /** 502: the remote store failed, so the operation was not done. */
  static ApiError remoteFailed(String message) {
    return new ApiError(502, "server_error", "remote_store_failed", null, message);
  }

  static ApiError internal(String message) {
    return new ApiError(500, "server_error", null, null, message);
  }
}
