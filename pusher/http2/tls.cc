#include "pusher/http2/tls.h"

#include <openssl/err.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace pushgate::http2 {
namespace {

constexpr unsigned char kAlpnH2[] = {2, 'h', '2'};

absl::Status CheckReadable(const std::string& what, const std::string& path) {
  if (access(path.c_str(), R_OK) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " '", path, "' is not readable: ", strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace

std::string DrainOpenSslErrors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    const char* reason = ERR_reason_error_string(e);
    if (!out.empty()) out += "; ";
    out += reason != nullptr ? reason : buf;
  }
  return out;
}

absl::StatusOr<SslCtxPtr> CreateClientContext(const TlsOptions& options) {
  ERR_clear_error();
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  if (ctx == nullptr) {
    return absl::InternalError(absl::StrCat("SSL_CTX_new failed: ", DrainOpenSslErrors()));
  }
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_COMPRESSION |
                                     SSL_OP_NO_SESSION_RESUMPTION_ON_RENEGOTIATION |
                                     SSL_OP_NO_RENEGOTIATION);
  // No SSL_MODE_RELEASE_BUFFERS: it frees and reallocates the ~17 KB record buffers whenever
  // they empty, i.e. around every read and write of a busy connection; a pool has a handful of
  // connections, so keeping the buffers costs little memory and saves that churn.
  // TLS 1.3 suites in the order most clients (browsers, nghttp2's h2load) offer them: AES-128-GCM
  // first. OpenSSL's own default puts AES-256-GCM first, which costs more per record on both
  // ends for no benefit here.
  if (SSL_CTX_set_ciphersuites(
          ctx.get(),
          "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256") != 1) {
    return absl::InternalError("cannot set the TLS 1.3 cipher suites");
  }
  if (SSL_CTX_set_alpn_protos(ctx.get(), kAlpnH2, sizeof(kAlpnH2)) != 0) {
    return absl::InternalError("cannot set ALPN protocols");
  }

  if (!options.ca_file.empty()) {
    if (absl::Status s = CheckReadable("CA file", options.ca_file); !s.ok()) return s;
    if (SSL_CTX_load_verify_locations(ctx.get(), options.ca_file.c_str(), nullptr) != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot load CA file '", options.ca_file, "': ", DrainOpenSslErrors()));
    }
  } else if (SSL_CTX_set_default_verify_paths(ctx.get()) != 1) {
    return absl::InternalError(
        absl::StrCat("cannot load the system CA store: ", DrainOpenSslErrors()));
  }
  SSL_CTX_set_verify(ctx.get(), options.verify_peer ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);

  if (options.client_cert_file.empty() != options.client_key_file.empty()) {
    return absl::InvalidArgumentError(
        "client_cert_file and client_key_file must be given together");
  }
  if (!options.client_cert_file.empty()) {
    if (absl::Status s = CheckReadable("client certificate", options.client_cert_file); !s.ok()) {
      return s;
    }
    if (absl::Status s = CheckReadable("client key", options.client_key_file); !s.ok()) return s;
    if (SSL_CTX_use_certificate_chain_file(ctx.get(), options.client_cert_file.c_str()) != 1) {
      return absl::InvalidArgumentError(absl::StrCat("cannot load client certificate '",
                                                     options.client_cert_file,
                                                     "': ", DrainOpenSslErrors()));
    }
    if (SSL_CTX_use_PrivateKey_file(ctx.get(), options.client_key_file.c_str(), SSL_FILETYPE_PEM) !=
        1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "cannot load client key '", options.client_key_file, "': ", DrainOpenSslErrors()));
    }
    if (SSL_CTX_check_private_key(ctx.get()) != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("client key '", options.client_key_file,
                       "' does not match the certificate: ", DrainOpenSslErrors()));
    }
  }
  return ctx;
}

}  // namespace pushgate::http2
