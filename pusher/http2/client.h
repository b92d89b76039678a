// What a user of the HTTP/2 client sees: a request, its response or a typed failure, and the
// Client interface (implemented by http2::Pool; tests use tests/fakes/fake_http2_client.h).
//
// A failure carries a FailureReason (in the style of Envoy's StreamResetReason) next to its
// status: callers decide from the reason, above all from MayHaveBeenDelivered(), whether sending
// again could deliver twice. The status keeps the message users read; no decision may depend on
// its text.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace pushgate::http2 {

struct Request {
  std::string method = "POST";
  std::string path;  // "/3/device/<token>"
  // Regular headers only (no pseudo-headers); names are sent lowercased.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  absl::Time deadline = absl::InfiniteFuture();
};

struct Response {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // without pseudo-headers
  std::string body;
  // The first header with this name (case-insensitive), "" when absent.
  std::string Header(absl::string_view name) const;
};

// Why a request got no response. The first group never reached the server (sending again cannot
// deliver twice); the second may have been processed by it.
enum class FailureReason : uint8_t {
  // Never reached the server.
  kQueueFull,           // RESOURCE_EXHAUSTED: the client's queue is full
  kShutdown,            // UNAVAILABLE: the client is shutting down
  kInvalidRequest,      // INVALID_ARGUMENT: malformed, or refused by the HTTP/2 library
  kTlsFailure,          // UNAVAILABLE: no connection (certificate, handshake, ALPN)
  kNotSent,             // INTERNAL: the HTTP/2 library could not send the request
  kDeadlineBeforeSent,  // DEADLINE_EXCEEDED before the request was sent
  // May have been processed by the server.
  kDeadlineAfterSent,  // DEADLINE_EXCEEDED waiting for the response
  kConnectionLost,     // UNAVAILABLE: the connection died after the request was sent
  kStreamReset,        // UNAVAILABLE: the server reset the stream (not REFUSED_STREAM)
  kResponseTooLarge,   // INTERNAL: the server answered with more than the client accepts
};

// True when the server may have processed the request: sending it again may deliver it twice.
bool MayHaveBeenDelivered(FailureReason reason);
// "queue_full", "connection_lost", ... (for logs and test output).
absl::string_view FailureReasonName(FailureReason reason);
std::ostream& operator<<(std::ostream& os, FailureReason reason);

struct Failure {
  FailureReason reason;
  absl::Status status;  // never OK; its message is what users read
};

// A response, or the failure that replaced it.
class Result {
 public:
  // Implicit, so that a response or a failure is returned or passed as a Result.
  // NOLINTNEXTLINE(google-explicit-constructor)
  Result(Response response) : value_(std::move(response)) {}
  // NOLINTNEXTLINE(google-explicit-constructor)
  Result(Failure failure) : value_(std::move(failure)) {}
  Result(FailureReason reason, absl::Status status) : value_(Failure{reason, std::move(status)}) {}

  bool ok() const { return value_.index() == 0; }
  // The response; only when ok().
  Response& operator*() & { return *std::get_if<Response>(&value_); }
  const Response& operator*() const& { return *std::get_if<Response>(&value_); }
  Response&& operator*() && { return std::move(*std::get_if<Response>(&value_)); }
  Response* operator->() { return std::get_if<Response>(&value_); }
  const Response* operator->() const { return std::get_if<Response>(&value_); }
  // The failure; only when !ok().
  const Failure& failure() const { return *std::get_if<Failure>(&value_); }
  FailureReason reason() const { return failure().reason; }
  // OK with a response, else the failure's status.
  absl::Status status() const { return ok() ? absl::OkStatus() : failure().status; }

 private:
  std::variant<Response, Failure> value_;
};
std::ostream& operator<<(std::ostream& os, const Result& result);

// Called exactly once: on the client's thread, or (for requests still pending when the client is
// destroyed) possibly on the destroying thread.
using ResponseCallback = std::function<void(Result)>;

class Client {
 public:
  virtual ~Client() = default;
  // Thread-safe, never blocks; `callback` runs exactly once, never inside Submit's caller frame
  // unless the client is shut down.
  virtual void Submit(Request request, ResponseCallback callback) = 0;
  // Waits until no request is queued or in flight (including ones submitted meanwhile), or the
  // timeout passed. Must not be called from a callback.
  virtual void Drain(absl::Duration timeout) = 0;
};

}  // namespace pushgate::http2
