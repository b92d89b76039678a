// TLS for the emulator's HTTP/2 listener: server context with ALPN h2, optional client
// certificates (APNs certificate auth), and a generated self-signed certificate.
#include <nghttp2/nghttp2.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>

#include "absl/strings/str_cat.h"
#include "pusher/emulator/internal.h"

namespace pushgate::pusher::emulator::internal {
namespace {

std::string OpenSslError() {
  unsigned long e = ERR_get_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  ERR_clear_error();
  return buf;
}

struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;
struct X509Deleter {
  void operator()(X509* x) const { X509_free(x); }
};
using X509Ptr = std::unique_ptr<X509, X509Deleter>;
struct PkeyDeleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};

BioPtr MemBio(const std::string& s) {
  return BioPtr(BIO_new_mem_buf(s.data(), static_cast<int>(s.size())));
}

std::string BioToString(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(len));
}

int AlpnSelect(SSL* ssl, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
               unsigned int inlen, void* arg) noexcept {
  auto* state = static_cast<State*>(arg);
  if (state->RejectAlpn()) {
    ++state->alpn_rejected;
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  if (nghttp2_select_next_protocol(const_cast<unsigned char**>(out), outlen, in, inlen) != 1) {
    ++state->alpn_rejected;
    return SSL_TLSEXT_ERR_ALERT_FATAL;  // no h2 offered: APNs refuses HTTP/1.1
  }
  return SSL_TLSEXT_ERR_OK;
}

std::string NameEntry(X509_NAME* name, int nid) {
  int idx = X509_NAME_get_index_by_NID(name, nid, -1);
  if (idx < 0) return {};
  ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
  unsigned char* utf8 = nullptr;
  int len = ASN1_STRING_to_UTF8(&utf8, data);
  if (len < 0) return {};
  std::string out(reinterpret_cast<char*>(utf8), static_cast<size_t>(len));
  OPENSSL_free(utf8);
  return out;
}

}  // namespace

absl::StatusOr<SSL_CTX*> MakeServerTlsContext(const std::string& cert_pem,
                                              const std::string& key_pem,
                                              const std::string& client_ca_pem, State* state) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr) return absl::InternalError(OpenSslError());
  auto fail = [ctx](absl::string_view what) {
    std::string msg = absl::StrCat(what, ": ", OpenSslError());
    SSL_CTX_free(ctx);
    return absl::InvalidArgumentError(msg);
  };
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_SESSION_RESUMPTION_ON_RENEGOTIATION |
                               SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);

  BioPtr cert_bio = MemBio(cert_pem);
  X509Ptr leaf(PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr));
  if (!leaf) return fail("server certificate");
  if (SSL_CTX_use_certificate(ctx, leaf.get()) != 1) return fail("server certificate");
  // Any further certificates in the PEM form the chain.
  while (X509* extra = PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr)) {
    if (SSL_CTX_add_extra_chain_cert(ctx, extra) != 1) {
      X509_free(extra);
      return fail("server certificate chain");
    }
  }
  ERR_clear_error();  // the loop ends on a "no start line" error
  BioPtr key_bio = MemBio(key_pem);
  std::unique_ptr<EVP_PKEY, PkeyDeleter> key(
      PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  if (!key) return fail("server key");
  if (SSL_CTX_use_PrivateKey(ctx, key.get()) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    return fail("server key");
  }

  if (!client_ca_pem.empty()) {
    X509_STORE* store = SSL_CTX_get_cert_store(ctx);
    STACK_OF(X509_NAME)* names = sk_X509_NAME_new_null();
    BioPtr ca_bio = MemBio(client_ca_pem);
    int count = 0;
    while (X509* ca = PEM_read_bio_X509(ca_bio.get(), nullptr, nullptr, nullptr)) {
      X509_STORE_add_cert(store, ca);
      sk_X509_NAME_push(names, X509_NAME_dup(X509_get_subject_name(ca)));
      X509_free(ca);
      ++count;
    }
    ERR_clear_error();
    if (count == 0) {
      sk_X509_NAME_pop_free(names, X509_NAME_free);
      return fail("client CA");
    }
    SSL_CTX_set_client_CA_list(ctx, names);
    // Certificates are optional (token auth needs none) but must verify when presented.
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    static const unsigned char kSidCtx[] = "pushgate-emulator";
    SSL_CTX_set_session_id_context(ctx, kSidCtx, sizeof(kSidCtx) - 1);
  }
  SSL_CTX_set_alpn_select_cb(ctx, AlpnSelect, state);
  return ctx;
}

absl::StatusOr<std::pair<std::string, std::string>> GenerateSelfSigned() {
  std::unique_ptr<EVP_PKEY, PkeyDeleter> key(EVP_EC_gen("P-256"));
  if (!key) return absl::InternalError(absl::StrCat("key generation: ", OpenSslError()));
  X509Ptr x(X509_new());
  X509_set_version(x.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x.get()), static_cast<long>(time(nullptr)));
  X509_gmtime_adj(X509_getm_notBefore(x.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x.get()), 10L * 365 * 24 * 3600);
  X509_set_pubkey(x.get(), key.get());
  X509_NAME* name = X509_get_subject_name(x.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("pushgate"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("pushgate-emulator"), -1, -1,
                             0);
  X509_set_issuer_name(x.get(), name);
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, x.get(), x.get(), nullptr, nullptr, 0);
  const std::pair<int, const char*> exts[] = {
      {NID_basic_constraints, "critical,CA:TRUE"},
      {NID_key_usage, "critical,digitalSignature,keyCertSign"},
      {NID_ext_key_usage, "serverAuth"},
      {NID_subject_key_identifier, "hash"},
      {NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1"},
  };
  for (const auto& [nid, value] : exts) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, nid, value);
    if (ext == nullptr) return absl::InternalError(absl::StrCat("extension: ", OpenSslError()));
    X509_add_ext(x.get(), ext, -1);
    X509_EXTENSION_free(ext);
  }
  if (X509_sign(x.get(), key.get(), EVP_sha256()) == 0) {
    return absl::InternalError(absl::StrCat("signing: ", OpenSslError()));
  }
  BioPtr cert_out(BIO_new(BIO_s_mem()));
  BioPtr key_out(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(cert_out.get(), x.get());
  PEM_write_bio_PrivateKey(key_out.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  return std::make_pair(BioToString(cert_out.get()), BioToString(key_out.get()));
}

PeerAuth PeerAuthFromSsl(SSL* ssl, const EmulatorOptions& options) {
  PeerAuth auth;
  X509* cert = SSL_get0_peer_certificate(ssl);
  if (cert == nullptr || SSL_get_verify_result(ssl) != X509_V_OK) return auth;
  auth.has_cert = true;
  X509_NAME* name = X509_get_subject_name(cert);
  std::string uid = NameEntry(name, NID_userId);
  std::string cn = NameEntry(name, NID_commonName);
  auth.subject = !uid.empty() ? uid : cn;
  auto mapped = options.cert_topics.find(auth.subject);
  if (mapped == options.cert_topics.end() && !cn.empty()) mapped = options.cert_topics.find(cn);
  if (mapped != options.cert_topics.end()) {
    auth.topics = mapped->second;
    return auth;
  }
  // Apple's certificates: UID = bundle id, CN = "Apple Push Services: <bundle id>".
  std::string bundle = uid;
  if (bundle.empty()) {
    size_t colon = cn.rfind(": ");
    bundle = colon == std::string::npos ? cn : cn.substr(colon + 2);
  }
  if (!bundle.empty()) {
    auth.topics = {bundle, bundle + ".voip", bundle + ".complication"};
  }
  return auth;
}

}  // namespace pushgate::pusher::emulator::internal
