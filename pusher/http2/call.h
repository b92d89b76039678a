// One request on its way through the pool: the request, the response being assembled and where
// the request is (queued, or on a connection's stream). Loop thread only.
//
// Ownership: exactly one owner at a time, by unique_ptr: the pool's queue, then the connection
// carrying its stream, then the pool again to finish it. A Call knows neither the pool nor the
// connection's internals; it may sit in two intrusive lists (queue, deadlines) and leaves them
// when destroyed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "pusher/http2/client.h"
#include "pusher/http2/intrusive_list.h"

namespace pushgate::http2 {

class Connection;

class Call final {
 public:
  Call(Request request, ResponseCallback callback)
      : request_(std::move(request)), callback_(std::move(callback)) {}
  Call(const Call&) = delete;
  Call& operator=(const Call&) = delete;

  const Request& request() const { return request_; }
  absl::Time deadline() const { return request_.deadline; }
  // Takes the callback (to call it once the call is gone).
  ResponseCallback TakeCallback() { return std::move(callback_); }

  // The connection carrying its stream, null while queued.
  Connection* connection() const { return conn_; }
  int32_t stream_id() const { return stream_id_; }
  void OnStreamStarted(Connection* conn, int32_t stream_id) {
    conn_ = conn;
    stream_id_ = stream_id;
  }
  // The request's HEADERS left: from now on the server may process it.
  bool headers_sent() const { return headers_sent_; }
  void OnHeadersSent() { headers_sent_ = true; }
  // The whole response arrived (END_STREAM).
  bool response_complete() const { return response_complete_; }
  void OnResponseComplete() { response_complete_ = true; }
  // Back to its queued state, for sending again (on another stream).
  void ResetForReplay();

  // Copies the next piece of the request body into `buf`; sets `*eof` after the last byte.
  size_t ReadBody(uint8_t* buf, size_t length, bool* eof);
  // One response header (":status" included); a 1xx block is replaced by the final one.
  void OnResponseHeader(absl::string_view name, absl::string_view value);
  // Appends to the response body; false (nothing appended) beyond `max_body` bytes in all.
  bool AppendBody(absl::string_view data, size_t max_body);
  Response TakeResponse() { return std::move(response_); }

  // The request line for logs: method and path, the last path segment (a device token) redacted.
  std::string LogLine() const;

  IntrusiveListNode<Call> queue_node{this};     // in the pool's queue while waiting for a stream
  IntrusiveListNode<Call> deadline_node{this};  // in the pool's deadlines with a finite deadline

 private:
  Request request_;
  ResponseCallback callback_;
  Response response_;
  size_t body_offset_ = 0;
  Connection* conn_ = nullptr;
  int32_t stream_id_ = 0;
  bool headers_sent_ = false;
  bool response_complete_ = false;
};

}  // namespace pushgate::http2
