#include "proxy/core/wire_limits.h"

#include <algorithm>

namespace pushgate::proxy {
namespace {

// Content-Length values are clamped here: sofia refuses anything near it (max_message_size).
constexpr uint64_t kMaxBody = uint64_t{1} << 40;

bool IsSpace(char c) { return c == ' ' || c == '\t'; }
char Lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

}  // namespace

void HeadScanner::StartLine() {
  line_length_ = 0;
  field_ = Field::kName;
  name_length_ = 0;
  value_ = 0;
}

void HeadScanner::NameChar(char c) {
  auto is_content_length = [this] {
    const absl::string_view name(name_, name_length_);
    return name == "content-length" || name == "l";
  };
  switch (field_) {
    case Field::kName:
      if (c == ':') {
        field_ = is_content_length() ? Field::kBeforeValue : Field::kOther;
      } else if (IsSpace(c)) {
        field_ = name_length_ > 0 && is_content_length() ? Field::kBeforeColon : Field::kOther;
      } else if (name_length_ < sizeof name_) {
        name_[name_length_++] = Lower(c);
      } else {
        field_ = Field::kOther;
      }
      break;
    case Field::kBeforeColon:
      if (c == ':') {
        field_ = Field::kBeforeValue;
      } else if (!IsSpace(c)) {
        field_ = Field::kOther;
      }
      break;
    case Field::kBeforeValue:
    case Field::kValue:
      if (c >= '0' && c <= '9') {
        field_ = Field::kValue;
        value_ = std::min(kMaxBody, value_ * 10 + static_cast<uint64_t>(c - '0'));
      } else if (IsSpace(c) && field_ == Field::kValue) {
        field_ = Field::kAfterValue;
      } else if (!IsSpace(c)) {
        field_ = Field::kOther;
      }
      break;
    case Field::kAfterValue:
      if (!IsSpace(c)) field_ = Field::kOther;
      break;
    case Field::kOther:
      break;
  }
}

void HeadScanner::EndLine() {
  if (line_length_ == 0) {  // the empty line: the head is complete
    body_left_ = body_length_;
    state_ = body_left_ > 0 ? State::kBody : State::kBetween;
    return;
  }
  ++lines_;
  if (max_lines_ > 0 && lines_ > max_lines_) over_ = true;
  if ((field_ == Field::kValue || field_ == Field::kAfterValue) && !content_length_seen_) {
    content_length_seen_ = true;
    body_length_ = value_;
  }
  StartLine();
}

bool HeadScanner::Feed(absl::string_view bytes) {
  size_t i = 0;
  while (i < bytes.size() && !over_) {
    const char c = bytes[i];
    switch (state_) {
      case State::kBetween:
        ++i;
        if (c == '\r' || c == '\n') break;  // keep-alive
        state_ = State::kHead;
        ++begun_;
        lines_ = 0;
        content_length_seen_ = false;
        body_length_ = 0;
        StartLine();
        ++line_length_;  // the start line's first byte
        break;
      case State::kHead:
        ++i;
        if (c == '\n') {
          EndLine();
        } else if (c != '\r') {
          ++line_length_;
          if (lines_ > 0) NameChar(c);  // header lines (the start line has no field name)
        }
        break;
      case State::kBody: {
        const uint64_t take = std::min<uint64_t>(body_left_, bytes.size() - i);
        i += static_cast<size_t>(take);
        body_left_ -= take;
        if (body_left_ == 0) state_ = State::kBetween;
        break;
      }
    }
  }
  return !over_;
}

bool DatagramWithinLines(absl::string_view datagram, size_t max_lines) {
  // The scanner stops at the first head over the limit: only the first one counts here (what
  // follows it without Content-Length is body on UDP, not another message).
  HeadScanner scanner(max_lines);
  scanner.Feed(datagram);
  return !(scanner.over_limit() && scanner.messages_begun() == 1);
}

absl::string_view ConnectionVerdictName(ConnectionVerdict verdict) {
  switch (verdict) {
    case ConnectionVerdict::kAccepted:
      return "";
    case ConnectionVerdict::kTotalLimit:
      return "total";
    case ConnectionVerdict::kSourceLimit:
      return "per_source";
  }
  return "";
}

ConnectionVerdict ConnectionCounter::TryOpen(absl::string_view source, bool exempt) {
  if (!exempt && max_total_ > 0 && total_ >= max_total_) return ConnectionVerdict::kTotalLimit;
  size_t& n = per_source_[source];
  if (!exempt && max_per_source_ > 0 && n >= max_per_source_) {
    return ConnectionVerdict::kSourceLimit;
  }
  ++n;
  ++total_;
  return ConnectionVerdict::kAccepted;
}

void ConnectionCounter::Close(absl::string_view source) {
  auto it = per_source_.find(source);
  if (it == per_source_.end() || it->second == 0) return;
  if (--it->second == 0) per_source_.erase(it);
  --total_;
}

size_t ConnectionCounter::from(absl::string_view source) const {
  auto it = per_source_.find(source);
  return it == per_source_.end() ? 0 : it->second;
}

}  // namespace pushgate::proxy
