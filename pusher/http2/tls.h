// OpenSSL client context for the HTTP/2 pool: TLS 1.2+, ALPN "h2", verification, client cert.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/status.h"
#include "pusher/http2/options.h"

namespace pushgate::http2 {

struct SslCtxDeleter {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxDeleter>;

// Loads the CA bundle (or the system store) and the optional client certificate and key.
// Errors name the file and OpenSSL's reason.
absl::StatusOr<SslCtxPtr> CreateClientContext(const TlsOptions& options);

// Pops every error queued on this thread's OpenSSL error queue: "reason; reason" ("" if none).
std::string DrainOpenSslErrors();

}  // namespace pushgate::http2
