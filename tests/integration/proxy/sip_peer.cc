#include "tests/integration/proxy/sip_peer.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace pushgate::proxy::testing {
namespace {

std::string CompactName(absl::string_view name) {
  static const std::pair<const char*, const char*> kCompact[] = {
      {"via", "v"},     {"from", "f"},           {"to", "t"},           {"call-id", "i"},
      {"contact", "m"}, {"content-length", "l"}, {"content-type", "c"}, {"supported", "k"}};
  std::string lower = absl::AsciiStrToLower(name);
  for (const auto& [full, compact] : kCompact) {
    if (lower == full) return compact;
  }
  return lower;
}

sockaddr_in Loopback(uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return sa;
}

int MillisLeft(std::chrono::steady_clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

std::string Unique() {
  static std::atomic<int> n{0};
  return absl::StrCat(getpid(), "x", n.fetch_add(1));
}

// "nothing", or the start lines of what did arrive.
std::string Arrived(const std::vector<std::string>& start_lines) {
  if (start_lines.empty()) return "nothing";
  return absl::StrCat(start_lines.size(), " other message(s): ", absl::StrJoin(start_lines, " | "));
}

}  // namespace

std::string SipText::StartLine() const { return text_.substr(0, text_.find("\r\n")); }

int SipText::Status() const {
  if (!IsResponse()) return 0;
  int status = 0;
  (void)absl::SimpleAtoi(StartLine().substr(8, 3), &status);
  return status;
}

std::string SipText::Reason() const {
  std::string line = StartLine();
  return line.size() > 12 ? line.substr(12) : "";
}

std::string SipText::Method() const {
  if (IsResponse()) return "";
  std::string line = StartLine();
  return line.substr(0, line.find(' '));
}

std::string SipText::RequestUri() const {
  std::vector<std::string> parts = absl::StrSplit(StartLine(), ' ');
  return parts.size() >= 2 ? parts[1] : "";
}

std::vector<std::pair<std::string, std::string>> SipText::AllHeaders() const {
  std::vector<std::pair<std::string, std::string>> out;
  absl::string_view head = text_;
  size_t end = head.find("\r\n\r\n");
  if (end != absl::string_view::npos) head = head.substr(0, end);
  bool first = true;
  for (absl::string_view line : absl::StrSplit(head, "\r\n")) {
    if (first) {
      first = false;
      continue;
    }
    size_t colon = line.find(':');
    if (colon == absl::string_view::npos) continue;
    out.emplace_back(std::string(absl::StripAsciiWhitespace(line.substr(0, colon))),
                     std::string(absl::StripAsciiWhitespace(line.substr(colon + 1))));
  }
  return out;
}

std::vector<std::string> SipText::Headers(absl::string_view name) const {
  std::vector<std::string> out;
  std::string want = CompactName(name);
  for (const auto& [n, v] : AllHeaders()) {
    if (CompactName(n) == want) out.push_back(v);
  }
  return out;
}

std::string SipText::Header(absl::string_view name) const {
  std::vector<std::string> all = Headers(name);
  return all.empty() ? "" : all.front();
}

SipMatch AnyMessage() {
  return {"SIP message", [](const SipText&) { return true; }};
}

SipMatch IsRequest(absl::string_view method) {
  return {absl::StrCat(method, " request"), [m = std::string(method)](const SipText& t) {
            return !t.IsResponse() && t.Method() == m;
          }};
}

SipMatch IsStatus(int status) {
  return {absl::StrCat(status, " response"),
          [status](const SipText& t) { return t.IsResponse() && t.Status() == status; }};
}

SipMatch IsFinal() {
  return {"final response", [](const SipText& t) { return t.IsResponse() && t.Status() >= 200; }};
}

SipMatch IsFinalOrRequest() {
  return {"request or final response",
          [](const SipText& t) { return !t.IsResponse() || t.Status() >= 200; }};
}

::testing::AssertionResult SipPeer::WaitFor(const SipMatch& match, SipText& out,
                                            absl::Duration timeout, uint16_t* from_port) {
  absl::Time deadline = absl::Now() + timeout;
  std::vector<std::string> skipped;
  for (;;) {
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) break;
    uint16_t port = 0;
    std::optional<SipText> m = ReceiveOne(left, &port);
    if (!m) break;
    if (match.accepts(*m)) {
      if (from_port != nullptr) *from_port = port;
      out = *std::move(m);
      return ::testing::AssertionSuccess();
    }
    skipped.push_back(m->StartLine());
  }
  return ::testing::AssertionFailure()
         << "no " << match.what << " reached " << Describe() << " within "
         << absl::FormatDuration(timeout) << "; it received " << Arrived(skipped);
}

::testing::AssertionResult SipPeer::WaitForMessage(SipText& out, absl::Duration timeout) {
  return WaitFor(AnyMessage(), out, timeout);
}

::testing::AssertionResult SipPeer::WaitForRequest(absl::string_view method, SipText& out,
                                                   absl::Duration timeout) {
  return WaitFor(IsRequest(method), out, timeout);
}

::testing::AssertionResult SipPeer::WaitForFinalOrRequest(SipText& out, absl::Duration timeout) {
  return WaitFor(IsFinalOrRequest(), out, timeout);
}

::testing::AssertionResult SipPeer::ExpectNoneWithin(const SipMatch& match, absl::Duration window) {
  SipText unexpected;
  if (!WaitFor(match, unexpected, window)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << Describe() << " expected no " << match.what << " within "
                                       << absl::FormatDuration(window) << " but received:\n"
                                       << unexpected.text();
}

::testing::AssertionResult SipPeer::ExpectNothingWithin(absl::Duration window) {
  return ExpectNoneWithin(AnyMessage(), window);
}

::testing::AssertionResult SipPeer::ExpectNoFinalOrRequestWithin(absl::Duration window) {
  return ExpectNoneWithin(IsFinalOrRequest(), window);
}

std::string MakeResponse(const SipText& request, int status, absl::string_view reason,
                         absl::string_view extra_headers, absl::string_view to_tag) {
  std::string out = absl::StrCat("SIP/2.0 ", status, " ", reason, "\r\n");
  for (const auto& [name, value] : request.AllHeaders()) {
    std::string n = CompactName(name);
    if (n == "v" || n == "f" || n == "i" || n == "cseq") {
      absl::StrAppend(&out, name, ": ", value, "\r\n");
    } else if (n == "t") {
      absl::StrAppend(&out, name, ": ", value,
                      absl::StrContains(value, ";tag=") ? "" : absl::StrCat(";tag=", to_tag),
                      "\r\n");
    }
  }
  absl::StrAppend(&out, extra_headers, "Content-Length: 0\r\n\r\n");
  return out;
}

UdpPeer::UdpPeer(bool ipv6) : ipv6_(ipv6) {
  if (ipv6) {
    fd_ = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in6 sa{};
    sa.sin6_family = AF_INET6;
    sa.sin6_addr = in6addr_loopback;
    if (bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) return;
    socklen_t len = sizeof(sa);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len);
    port_ = ntohs(sa.sin6_port);
    return;
  }
  fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa = Loopback(0);
  if (bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) return;
  socklen_t len = sizeof(sa);
  getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len);
  port_ = ntohs(sa.sin_port);
}

UdpPeer::~UdpPeer() {
  if (fd_ >= 0) close(fd_);
}

void UdpPeer::SendTo(uint16_t port, absl::string_view text) {
  if (ipv6_) {
    sockaddr_in6 sa{};
    sa.sin6_family = AF_INET6;
    sa.sin6_addr = in6addr_loopback;
    sa.sin6_port = htons(port);
    sendto(fd_, text.data(), text.size(), 0, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
    return;
  }
  sockaddr_in sa = Loopback(port);
  sendto(fd_, text.data(), text.size(), 0, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
}

std::optional<SipText> UdpPeer::Receive(absl::Duration timeout, uint16_t* from_port) {
  auto deadline = std::chrono::steady_clock::now() + absl::ToChronoMilliseconds(timeout);
  pollfd pfd{fd_, POLLIN, 0};
  if (poll(&pfd, 1, MillisLeft(deadline)) <= 0) return std::nullopt;
  char buf[65536];
  sockaddr_in6 from{};
  socklen_t len = sizeof(from);
  ssize_t n = recvfrom(fd_, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &len);
  if (n <= 0) return std::nullopt;
  if (from_port) *from_port = ntohs(from.sin6_port);  // same offset in sockaddr_in
  return SipText(std::string(buf, static_cast<size_t>(n)));
}

std::string UdpPeer::Describe() const {
  return absl::StrCat("UDP peer ", ipv6_ ? "[::1]:" : "127.0.0.1:", port_);
}

TcpPeer::TcpPeer(uint16_t server_port) {
  fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa = Loopback(server_port);
  if (connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    close(fd_);
    fd_ = -1;
    return;
  }
  sockaddr_in local{};
  socklen_t len = sizeof(local);
  getsockname(fd_, reinterpret_cast<sockaddr*>(&local), &len);
  local_port_ = ntohs(local.sin_port);
}

TcpPeer::~TcpPeer() {
  if (fd_ >= 0) close(fd_);
}

void TcpPeer::Send(absl::string_view text) {
  size_t off = 0;
  while (off < text.size()) {
    ssize_t n = send(fd_, text.data() + off, text.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

std::string TcpPeer::Describe() const { return absl::StrCat("TCP peer 127.0.0.1:", local_port_); }

std::optional<SipText> TcpPeer::ReceiveOne(absl::Duration timeout, uint16_t* /*from_port*/) {
  auto deadline = std::chrono::steady_clock::now() + absl::ToChronoMilliseconds(timeout);
  for (;;) {
    size_t end = buffer_.find("\r\n\r\n");
    if (end != std::string::npos) {
      SipText head(buffer_.substr(0, end + 4));
      size_t body = 0;
      (void)absl::SimpleAtoi(head.Header("Content-Length"), &body);
      if (buffer_.size() >= end + 4 + body) {
        SipText msg(buffer_.substr(0, end + 4 + body));
        buffer_.erase(0, end + 4 + body);
        return msg;
      }
    }
    pollfd pfd{fd_, POLLIN, 0};
    if (poll(&pfd, 1, MillisLeft(deadline)) <= 0) return std::nullopt;
    char buf[65536];
    ssize_t n = recv(fd_, buf, sizeof(buf), 0);
    if (n <= 0) return std::nullopt;
    buffer_.append(buf, static_cast<size_t>(n));
  }
}

TlsPeer::TlsPeer(uint16_t server_port) {
  fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa = Loopback(server_port);
  if (connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) return;
  sockaddr_in local{};
  socklen_t len = sizeof(local);
  getsockname(fd_, reinterpret_cast<sockaddr*>(&local), &len);
  local_port_ = ntohs(local.sin_port);
  ctx_ = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_verify(ctx_, SSL_VERIFY_NONE, nullptr);
  SSL* ssl = SSL_new(ctx_);
  SSL_set_fd(ssl, fd_);
  if (SSL_connect(ssl) != 1) {
    SSL_free(ssl);
    return;
  }
  ssl_ = ssl;
}

TlsPeer::~TlsPeer() {
  if (ssl_ != nullptr) {
    SSL_shutdown(ssl_);
    SSL_free(ssl_);
  }
  if (ctx_ != nullptr) SSL_CTX_free(ctx_);
  if (fd_ >= 0) close(fd_);
}

void TlsPeer::Send(absl::string_view text) {
  if (ssl_ != nullptr) SSL_write(ssl_, text.data(), static_cast<int>(text.size()));
}

std::string TlsPeer::Describe() const { return absl::StrCat("TLS peer 127.0.0.1:", local_port_); }

std::optional<SipText> TlsPeer::ReceiveOne(absl::Duration timeout, uint16_t* /*from_port*/) {
  if (ssl_ == nullptr) return std::nullopt;
  auto deadline = std::chrono::steady_clock::now() + absl::ToChronoMilliseconds(timeout);
  for (;;) {
    size_t end = buffer_.find("\r\n\r\n");
    if (end != std::string::npos) {
      SipText head(buffer_.substr(0, end + 4));
      size_t body = 0;
      (void)absl::SimpleAtoi(head.Header("Content-Length"), &body);
      if (buffer_.size() >= end + 4 + body) {
        SipText msg(buffer_.substr(0, end + 4 + body));
        buffer_.erase(0, end + 4 + body);
        return msg;
      }
    }
    if (SSL_pending(ssl_) == 0) {
      pollfd pfd{fd_, POLLIN, 0};
      if (poll(&pfd, 1, MillisLeft(deadline)) <= 0) return std::nullopt;
    }
    char buf[16384];
    int n = SSL_read(ssl_, buf, sizeof(buf));
    if (n <= 0) return std::nullopt;
    buffer_.append(buf, static_cast<size_t>(n));
  }
}

bool MakeTlsCertificateDir(const std::string& dir) {
  std::string cmd = absl::StrCat(
      "mkdir -p '", dir, "' && cd '", dir,
      "' && openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem -days 1 "
      "-subj /CN=127.0.0.1 >/dev/null 2>&1 && cat key.pem cert.pem > agent.pem && "
      "cp cert.pem cafile.pem");
  return std::system(cmd.c_str()) == 0;
}

std::string MakeRegister(const RegisterSpec& spec) {
  std::string aor = absl::StrCat("sip:", spec.aor_user, "@", spec.domain);
  std::string out = absl::StrCat(
      "REGISTER sip:", spec.domain, " SIP/2.0\r\n", "Via: SIP/2.0/", spec.transport, " ",
      spec.via_host, ":", spec.via_port, ";branch=z9hG4bK", Unique(), ";rport\r\n",
      "Max-Forwards: 70\r\n", "From: <", aor, ">;tag=ph", Unique(), "\r\n", "To: <", aor, ">\r\n",
      "Call-ID: ", spec.call_id, "\r\n", "CSeq: ", spec.cseq, " REGISTER\r\n");
  for (const std::string& c : spec.contacts) absl::StrAppend(&out, "Contact: ", c, "\r\n");
  if (spec.expires) absl::StrAppend(&out, "Expires: ", *spec.expires, "\r\n");
  absl::StrAppend(&out, spec.extra_headers, "Content-Length: 0\r\n\r\n");
  return out;
}

std::string MakeRequest(absl::string_view method, absl::string_view request_uri, uint16_t via_port,
                        absl::string_view call_id) {
  return absl::StrCat(method, " ", request_uri, " SIP/2.0\r\n",
                      "Via: SIP/2.0/UDP 127.0.0.1:", via_port, ";branch=z9hG4bK", Unique(),
                      ";rport\r\n", "Max-Forwards: 70\r\n", "From: <sip:caller@example.org>;tag=c",
                      Unique(), "\r\n", "To: <sip:alice@example.org>\r\n", "Call-ID: ", call_id,
                      "\r\n", "CSeq: 1 ", method, "\r\n", "Content-Length: 0\r\n\r\n");
}

}  // namespace pushgate::proxy::testing
