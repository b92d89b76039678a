#include "pusher/http2/call.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"

namespace pushgate::http2 {

void Call::ResetForReplay() {
  response_ = Response();
  body_offset_ = 0;
  conn_ = nullptr;
  stream_id_ = 0;
  headers_sent_ = false;
  response_complete_ = false;
}

size_t Call::ReadBody(uint8_t* buf, size_t length, bool* eof) {
  const std::string& body = request_.body;
  size_t n = std::min(length, body.size() - body_offset_);
  std::copy_n(body.data() + body_offset_, n, buf);
  body_offset_ += n;
  *eof = body_offset_ == body.size();
  return n;
}

void Call::OnResponseHeader(absl::string_view name, absl::string_view value) {
  if (name == ":status") {
    int status = 0;
    if (absl::SimpleAtoi(value, &status)) {
      response_.status = status;
      response_.headers.clear();  // a 1xx block is followed by the final one
    }
  } else if (!name.empty() && name[0] != ':') {
    response_.headers.emplace_back(std::string(name), std::string(value));
  }
}

bool Call::AppendBody(absl::string_view data, size_t max_body) {
  if (response_.body.size() + data.size() > max_body) return false;
  response_.body.append(data.data(), data.size());
  return true;
}

std::string Call::LogLine() const {
  const std::string& path = request_.path;
  size_t slash = path.rfind('/');
  std::string shown = slash == std::string::npos
                          ? log::RedactToken(path)
                          : path.substr(0, slash + 1) + log::RedactToken(path.substr(slash + 1));
  return absl::StrCat(request_.method, " ", shown);
}

}  // namespace pushgate::http2
