// Limits applied to SIP bytes before sofia-sip parses them (proxy/sofia/wire_guard.h carries them
// out on the sockets). sofia's message extraction costs time quadratic in the number of header
// lines of one kind (1k/4k/16k lines in one message: 11/78/1,269 ms of the loop), so the number
// of lines in a message's head is bounded before the message reaches it, in one linear pass.
//
// - HeadScanner follows a byte stream (TCP, or one UDP datagram) message by message: CRLF
//   keep-alives between messages, the head line by line (start line and header lines, up to the
//   empty line), then Content-Length bytes of body (RFC 3261 18.3: a stream message must carry
//   Content-Length; "l" is its compact form). It counts the lines of each head and says when one
//   exceeds the limit (a line counts when its LF arrives; a bare CR is ignored). Memory: a few
//   words, whatever the input; time: linear in the bytes.
// - ConnectionCounter counts open connections in total and per source address against their
//   limits.
//
// Pure logic: no sockets, no clocks. Not thread-safe (the caller locks).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"

namespace pushgate::proxy {

class HeadScanner {
 public:
  // `max_lines`: most lines a message head may have (start line included); 0: no limit.
  explicit HeadScanner(size_t max_lines) : max_lines_(max_lines) {}

  // Feeds the next bytes of the stream. False once some head exceeded the limit (and from then
  // on: the stream is condemned, later bytes are not looked at).
  bool Feed(absl::string_view bytes);

  bool over_limit() const { return over_; }
  // A message has begun and not yet ended (its head or body is incomplete).
  bool in_message() const { return state_ != State::kBetween; }
  // Messages begun so far (the first byte of a head starts one).
  uint64_t messages_begun() const { return begun_; }
  // Lines of the current (or last) head so far.
  size_t head_lines() const { return lines_; }

 private:
  enum class State { kBetween, kHead, kBody };
  // Where a head line stands in its Content-Length check.
  enum class Field { kName, kBeforeColon, kBeforeValue, kValue, kAfterValue, kOther };

  void StartLine();
  void EndLine();
  void NameChar(char c);

  size_t max_lines_;
  State state_ = State::kBetween;
  bool over_ = false;
  uint64_t begun_ = 0;
  size_t lines_ = 0;
  size_t line_length_ = 0;  // bytes of the current line, CR excluded
  Field field_ = Field::kName;
  char name_[16] = {};  // the current line's field name, lower case, while it may be Content-Length
  size_t name_length_ = 0;
  bool content_length_seen_ = false;
  uint64_t value_ = 0;        // the Content-Length value being read
  uint64_t body_length_ = 0;  // of the current message
  uint64_t body_left_ = 0;
};

// True when `datagram` (one whole message) has at most `max_lines` head lines (0: no limit).
bool DatagramWithinLines(absl::string_view datagram, size_t max_lines);

enum class ConnectionVerdict {
  kAccepted,
  kTotalLimit,   // max_total connections are open
  kSourceLimit,  // max_per_source connections from this address are open
};

// "total", "per_source" (the reason label of a refused connection); "" for kAccepted.
absl::string_view ConnectionVerdictName(ConnectionVerdict verdict);

class ConnectionCounter {
 public:
  // 0: no limit.
  ConnectionCounter(size_t max_total, size_t max_per_source)
      : max_total_(max_total), max_per_source_(max_per_source) {}

  // Counts a new connection from `source` when within the limits; an `exempt` source (a trusted
  // backend) is always accepted, and counted.
  ConnectionVerdict TryOpen(absl::string_view source, bool exempt = false);
  // A connection counted by TryOpen closed.
  void Close(absl::string_view source);

  size_t total() const { return total_; }
  size_t from(absl::string_view source) const;

 private:
  size_t max_total_;
  size_t max_per_source_;
  size_t total_ = 0;
  absl::flat_hash_map<std::string, size_t> per_source_;
};

}  // namespace pushgate::proxy
