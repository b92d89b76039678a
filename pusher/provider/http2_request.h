// The HTTP/2 request for a provider request built by pusher/core (APNs and FCM share it).
#pragma once

#include "pusher/core/payload.h"
#include "pusher/http2/client.h"

namespace pushgate::pusher {

// Moves the spec's method, path, headers and body into a request (no deadline: the caller sets
// it).
http2::Request ToHttp2Request(HttpRequestSpec spec);

}  // namespace pushgate::pusher
