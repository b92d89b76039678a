// Shared by the call-half integration tests (call_router_test.cc, replicas_test.cc) and
// bench/calls: test credentials, the emulator's APNs identity, and waiting for a SIP message on a
// scripted peer.
#pragma once

#include <stdlib.h>

#include <cstdlib>
#include <functional>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/file.h"
#include "pusher/emulator/emulator.h"
#include "pusher/service/server.h"
#include "tests/integration/proxy/sip_peer.h"

namespace pushgate::proxy::sofia::calls_test {

using testing::SipText;
using testing::UdpPeer;

inline constexpr char kTeam[] = "TEAM123456";
inline constexpr char kKeyId[] = "KEY1234567";
inline constexpr char kBundle[] = "com.example.phone";
inline const absl::Duration kWait = absl::Seconds(5);

// A directory of test credentials (tests/fakes/make-test-credentials.sh), made once per process.
inline const std::string& CredsDir() {
  static std::string* dir = [] {
    char tmpl[] = "/tmp/pushgate-calls-test-XXXXXX";
    auto* d = new std::string(mkdtemp(tmpl));
    std::string cmd = absl::StrCat("tests/fakes/make-test-credentials.sh ", *d, " >/dev/null");
    if (std::system(cmd.c_str()) != 0) std::abort();
    return d;
  }();
  return *dir;
}

// The content of a file of a credentials directory ("" when it cannot be read: the test then
// fails loudly).
inline std::string Cred(const std::string& name, const std::string& dir = CredsDir()) {
  return ReadFile(absl::StrCat(dir, "/", name)).value_or("");
}

// The APNs emulator's options: TLS and the token key's public half from a credentials directory.
inline pusher::emulator::EmulatorOptions EmulatorWithTestCredentials(
    const std::string& dir = CredsDir()) {
  pusher::emulator::EmulatorOptions o;
  o.tls_cert_pem = Cred("server.pem", dir);
  o.tls_key_pem = Cred("server.key", dir);
  o.apns_keys.push_back({kTeam, kKeyId, Cred("apns-key.pub.pem", dir)});
  o.control_port = -1;
  return o;
}

// A pusher on 127.0.0.1 (any port) sending APNs pushes to the emulator's `h2_port` with the
// token key of a credentials directory; no admin endpoint.
inline pusher::PusherConfig PusherForEmulator(int h2_port, const std::string& dir = CredsDir()) {
  std::string url = absl::StrCat("https://127.0.0.1:", h2_port);
  pusher::PusherConfig cfg;
  cfg.grpc.listen = "127.0.0.1:0";
  cfg.apns.token_keys = {absl::StrCat(kTeam, ":", kKeyId, ":", dir, "/apns-key.p8")};
  cfg.apns.production_url = url;
  cfg.apns.sandbox_url = url;
  cfg.http2.ca_file = dir + "/ca.pem";
  cfg.admin.listen = "";
  return cfg;
}

// Waits for the next message on `peer` that `match` accepts, skipping others (retransmissions,
// 100 Trying...); `from` gets its source port.
inline std::optional<SipText> WaitFor(UdpPeer& peer,
                                      const std::function<bool(const SipText&)>& match,
                                      uint16_t* from = nullptr, absl::Duration timeout = kWait) {
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    uint16_t port = 0;
    auto m = peer.Receive(deadline - absl::Now(), &port);
    if (!m) break;
    if (match(*m)) {
      if (from != nullptr) *from = port;
      return m;
    }
  }
  return std::nullopt;
}
inline std::optional<SipText> WaitFor(UdpPeer& peer,
                                      const std::function<bool(const SipText&)>& match,
                                      absl::Duration timeout) {
  return WaitFor(peer, match, nullptr, timeout);
}
inline auto IsRequest(const std::string& method) {
  return [method](const SipText& m) { return !m.IsResponse() && m.Method() == method; };
}
inline auto IsStatus(int status) {
  return [status](const SipText& m) { return m.IsResponse() && m.Status() == status; };
}
inline auto IsFinal() {
  return [](const SipText& m) { return m.IsResponse() && m.Status() >= 200; };
}

}  // namespace pushgate::proxy::sofia::calls_test
