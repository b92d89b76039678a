// Shared by the call-half integration tests (call_router_test.cc, replicas_test.cc) and
// bench/calls: test credentials, the emulator's APNs identity, and waiting for a SIP message on a
// scripted peer (AssertionResult waits, as in sip_peer.h).
#pragma once

#include <stdlib.h>

#include <cstdlib>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/file.h"
#include "pusher/emulator/emulator.h"
#include "pusher/service/server.h"
#include "tests/integration/proxy/sip_peer.h"

namespace pushgate::proxy::sofia::calls_test {

using testing::IsFinal;
using testing::IsRequest;
using testing::IsStatus;
using testing::SipMatch;
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
// 100 Trying...); `out` gets it and `from` its source port. On timeout the result says what never
// arrived and what did (SipPeer::WaitFor).
inline ::testing::AssertionResult WaitFor(UdpPeer& peer, const SipMatch& match, SipText& out,
                                          uint16_t* from = nullptr,
                                          absl::Duration timeout = kWait) {
  return peer.WaitFor(match, out, timeout, from);
}
inline ::testing::AssertionResult WaitFor(UdpPeer& peer, const SipMatch& match, SipText& out,
                                          absl::Duration timeout) {
  return peer.WaitFor(match, out, timeout);
}
// For a wait whose message the test does not look at.
inline ::testing::AssertionResult WaitFor(UdpPeer& peer, const SipMatch& match,
                                          absl::Duration timeout = kWait) {
  SipText ignored;
  return peer.WaitFor(match, ignored, timeout);
}
// Succeeds when nothing `match` accepts reaches `peer` within `window`.
inline ::testing::AssertionResult ExpectNone(UdpPeer& peer, const SipMatch& match,
                                             absl::Duration window) {
  return peer.ExpectNoneWithin(match, window);
}
// At least `n` pushes reached `emulator` (counting since its last Reset) within `timeout`;
// otherwise says how many did.
inline ::testing::AssertionResult WaitForPushes(const pusher::emulator::Emulator& emulator,
                                                size_t n, absl::Duration timeout = kWait) {
  if (emulator.WaitForReceived(n, timeout)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "expected " << n << " push(es) at the emulator within " << absl::FormatDuration(timeout)
         << "; it received " << emulator.Received().size();
}

// A response to a request of this method (by its CSeq).
inline SipMatch IsResponseTo(const std::string& method) {
  return {absl::StrCat("response to the ", method), [method](const SipText& m) {
            return m.IsResponse() && absl::StrContains(m.Header("CSeq"), method);
          }};
}

}  // namespace pushgate::proxy::sofia::calls_test
