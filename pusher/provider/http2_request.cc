#include "pusher/provider/http2_request.h"

#include <utility>

namespace pushgate::pusher {

http2::Request ToHttp2Request(HttpRequestSpec spec) {
  http2::Request request;
  request.method = std::move(spec.method);
  request.path = std::move(spec.path);
  request.headers = std::move(spec.headers);
  request.body = std::move(spec.body);
  return request;
}

}  // namespace pushgate::pusher
