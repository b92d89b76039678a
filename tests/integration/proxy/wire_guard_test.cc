// The protections of proxy/sofia/wire_guard.h on real loopback sockets: head line limit (UDP and
// TCP), connection limits (total, per source), the descriptor limit, the message deadline.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "proxy/sofia/loop.h"
#include "proxy/sofia/sip_proxy.h"
#include "proxy/store/memory_binding_store.h"
#include "tests/integration/proxy/sip_peer.h"

namespace pushgate::proxy::testing {
namespace {

constexpr absl::Duration kWait = absl::Seconds(3);

uint64_t Counter(const std::string& name, const std::string& label, const std::string& value) {
  return metrics::Registry::Default().GetCounter(name, "", {{label, value}}).Value();
}
uint64_t HeadLinesRefused(const std::string& transport) {
  return Counter("pushgate_proxy_header_lines_refused_total", "transport", transport);
}
uint64_t ConnectionsRefused(const std::string& reason) {
  return Counter("pushgate_proxy_connections_refused_total", "reason", reason);
}
uint64_t TimedOut() {
  return metrics::Registry::Default()
      .GetCounter("pushgate_proxy_connections_timed_out_total", "")
      .Value();
}

// `request` with `lines` more header lines (short unknown ones: "Zz:a"; one letter names are
// compact forms) before its Content-Length.
std::string WithExtraLines(std::string request, int lines) {
  std::string extra;
  extra.reserve(static_cast<size_t>(lines) * 6);
  for (int i = 0; i < lines; ++i) extra += "Zz:a\r\n";
  request.insert(request.find("Content-Length"), extra);
  return request;
}

// A TCP connection from `source` (an address of the loopback network) to 127.0.0.1:`port`.
int Connect(uint16_t port, const char* source = "127.0.0.1") {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in local{};
  local.sin_family = AF_INET;
  inet_pton(AF_INET, source, &local.sin_addr);
  sockaddr_in peer{};
  peer.sin_family = AF_INET;
  peer.sin_port = htons(port);
  inet_pton(AF_INET, "127.0.0.1", &peer.sin_addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0 ||
      connect(fd, reinterpret_cast<sockaddr*>(&peer), sizeof peer) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

bool SendAll(int fd, absl::string_view text) {
  while (!text.empty()) {
    ssize_t n = send(fd, text.data(), text.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    text.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Succeeds when the proxy closes (or resets) the connection within `timeout`; what it sends
// before is skipped.
::testing::AssertionResult ClosedWithin(int fd, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  char buf[4096];
  while (absl::Now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    const int ms = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now())) + 1;
    if (poll(&p, 1, ms) <= 0) continue;
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n == 0 || (n < 0 && errno == ECONNRESET)) return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure()
         << "the proxy kept the connection open for " << absl::FormatDuration(timeout);
}

::testing::AssertionResult OpenFor(int fd, absl::Duration window) {
  if (ClosedWithin(fd, window)) {
    return ::testing::AssertionFailure() << "the proxy closed the connection";
  }
  return ::testing::AssertionSuccess();
}

// CPU time of the calling thread.
absl::Duration ThreadCpu() {
  rusage ru{};
  getrusage(RUSAGE_THREAD, &ru);
  return absl::DurationFromTimeval(ru.ru_utime) + absl::DurationFromTimeval(ru.ru_stime);
}

class WireGuardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    StartProxy([](sofia::SipProxyOptions&) {});
  }

  void StartProxy(const std::function<void(sofia::SipProxyOptions&)>& customize) {
    if (proxy_) {
      proxy_.reset();
      loop_->Call([this] { store_.reset(); });
      loop_->Stop();
    }
    auto loop = sofia::SofiaLoop::Start();
    ASSERT_TRUE(loop.ok()) << loop.status();
    loop_ = std::move(*loop);
    store_ = loop_->Call(
        []() -> std::unique_ptr<BindingStore> { return std::make_unique<MemoryBindingStore>(); });
    sofia::SipProxyOptions options;
    options.listen = {{Transport::kUdp, "127.0.0.1", 0}, {Transport::kTcp, "127.0.0.1", 0}};
    options.backend_uri = absl::StrCat("sip:127.0.0.1:", backend_.port());
    options.masquerade_secret = "wire-guard-test";
    options.t1 = absl::Milliseconds(20);
    options.transaction_timeout = absl::Milliseconds(600);
    options.rate_limit.requests = 0;
    customize(options);
    auto proxy = sofia::SipProxy::Create(*loop_, options, *store_, RealClock::Get());
    ASSERT_TRUE(proxy.ok()) << proxy.status();
    proxy_ = std::move(*proxy);
    for (const TransportInfo& l : proxy_->Listening()) {
      if (l.transport == Transport::kUdp) udp_port_ = l.port;
      if (l.transport == Transport::kTcp) tcp_port_ = l.port;
    }
    ASSERT_NE(udp_port_, 0);
    ASSERT_NE(tcp_port_, 0);
  }

  void TearDown() override {
    for (int fd : fds_) close(fd);
    proxy_.reset();
    if (loop_) {
      loop_->Call([this] { store_.reset(); });
      loop_->Stop();
    }
  }

  int Open(const char* source = "127.0.0.1") {
    int fd = Connect(tcp_port_, source);
    if (fd >= 0) fds_.push_back(fd);
    return fd;
  }

  std::string Options(absl::string_view call_id) {
    return MakeRequest("OPTIONS", "sip:someone@example.org", phone_.port(), call_id);
  }
  // The same over TCP (the Via names the transport).
  std::string TcpOptions(absl::string_view call_id) {
    std::string r = Options(call_id);
    r.replace(r.find("SIP/2.0/UDP"), 11, "SIP/2.0/TCP");
    return r;
  }

  // The phone's request `call_id` reached the backend (what else arrives there is skipped).
  ::testing::AssertionResult BackendGets(absl::string_view call_id) {
    SipText at_backend;
    SipMatch match{absl::StrCat("request with Call-ID ", call_id), [&](const SipText& m) {
                     return !m.IsResponse() && m.Header("Call-ID") == call_id;
                   }};
    return backend_.WaitFor(match, at_backend, kWait);
  }

  absl::Duration LoopCpu() {
    return loop_->Call([] { return ThreadCpu(); });
  }

  UdpPeer backend_;
  UdpPeer phone_;
  std::unique_ptr<sofia::SofiaLoop> loop_;
  std::unique_ptr<BindingStore> store_;
  std::unique_ptr<sofia::SipProxy> proxy_;
  uint16_t udp_port_ = 0;
  uint16_t tcp_port_ = 0;
  std::vector<int> fds_;
};

TEST_F(WireGuardTest, DatagramWithTooManyHeaderLinesIsDroppedAndTheNextIsServed) {
  const uint64_t refused = HeadLinesRefused("udp");
  phone_.SendTo(udp_port_, WithExtraLines(Options("many-lines"), 300));
  phone_.SendTo(udp_port_, WithExtraLines(Options("within"), 200));  // 208 lines: accepted
  SipText answer;
  ASSERT_TRUE(BackendGets("within"))
      << HeadLinesRefused("udp") - refused << " refused; "
      << phone_.WaitForMessage(answer, absl::Milliseconds(100)) << answer.text();
  EXPECT_EQ(HeadLinesRefused("udp"), refused + 1);
  SipMatch dropped{"the dropped request",
                   [](const SipText& m) { return m.Header("Call-ID") == "many-lines"; }};
  EXPECT_TRUE(backend_.ExpectNoneWithin(dropped, absl::Milliseconds(200)));
}

TEST_F(WireGuardTest, DatagramFullOfHeaderLinesCostsLittleLoopTime) {
  // max_message_size (64 KiB) of short header lines: ~10,750 lines. sofia alone spent about
  // a second of the loop on one (quadratic in the lines); dropped before parsing, it is a scan.
  const std::string hostile = WithExtraLines(Options("hostile"), 10750);
  ASSERT_LT(hostile.size(), 65000u);
  constexpr int kRounds = 20;
  const absl::Duration before = LoopCpu();
  for (int i = 0; i < kRounds; ++i) phone_.SendTo(udp_port_, hostile);
  phone_.SendTo(udp_port_, Options("after"));
  ASSERT_TRUE(BackendGets("after"));
  const absl::Duration hostile_cpu = (LoopCpu() - before) / kRounds;
  // A normal request for comparison, per byte.
  const std::string normal = Options("normal-0");
  const absl::Duration before_normal = LoopCpu();
  for (int i = 0; i < kRounds; ++i) {
    const std::string call_id = absl::StrCat("normal-", i);
    phone_.SendTo(udp_port_, Options(call_id));
    ASSERT_TRUE(BackendGets(call_id));
  }
  const absl::Duration normal_cpu = (LoopCpu() - before_normal) / kRounds;
  // The worst input sofia still parses: 256 head lines (the default limit), short ones.
  const std::string at_limit = WithExtraLines(Options("at-limit-0"), 256 - 8);
  const absl::Duration before_limit = LoopCpu();
  for (int i = 0; i < kRounds; ++i) {
    const std::string call_id = absl::StrCat("at-limit-", i);
    phone_.SendTo(udp_port_, WithExtraLines(Options(call_id), 256 - 8));
    ASSERT_TRUE(BackendGets(call_id));
  }
  const absl::Duration limit_cpu = (LoopCpu() - before_limit) / kRounds;
  const double limit_per_byte = absl::ToDoubleNanoseconds(limit_cpu) / at_limit.size();
  const double hostile_per_byte = absl::ToDoubleNanoseconds(hostile_cpu) / hostile.size();
  const double normal_per_byte = absl::ToDoubleNanoseconds(normal_cpu) / normal.size();
  std::printf(
      "hostile datagram (%zu bytes): %.3f ms, %.1f ns/byte; normal request (%zu bytes): "
      "%.3f ms, %.1f ns/byte\n",
      hostile.size(), absl::ToDoubleMilliseconds(hostile_cpu), hostile_per_byte, normal.size(),
      absl::ToDoubleMilliseconds(normal_cpu), normal_per_byte);
  std::printf("request at the line limit (%zu bytes): %.3f ms, %.1f ns/byte\n", at_limit.size(),
              absl::ToDoubleMilliseconds(limit_cpu), limit_per_byte);
  EXPECT_LT(hostile_cpu, absl::Milliseconds(20));
  EXPECT_LT(hostile_per_byte, 10 * normal_per_byte);
  EXPECT_LT(limit_per_byte, 10 * normal_per_byte);

  // A phone's REGISTER, relayed and answered 200 by the backend, bound: the yardstick.
  size_t register_bytes = 0;
  const absl::Duration before_register = LoopCpu();
  for (int i = 0; i < kRounds; ++i) {
    RegisterSpec spec;
    spec.aor_user = absl::StrCat("user", i);
    spec.call_id = absl::StrCat("reg-", i);
    spec.via_port = phone_.port();
    spec.contacts = {absl::StrCat("<sip:", spec.aor_user, "@127.0.0.1:", phone_.port(),
                                  ";pn-provider=fcm;pn-prid=token", i, ";pn-param=project>")};
    const std::string reg = MakeRegister(spec);
    register_bytes = reg.size();
    phone_.SendTo(udp_port_, reg);
    SipText at_backend;
    ASSERT_TRUE(backend_.WaitForRequest("REGISTER", at_backend, kWait));
    backend_.SendTo(udp_port_,
                    MakeResponse(at_backend, 200, "OK",
                                 absl::StrCat("Contact: ", at_backend.Header("Contact"), "\r\n")));
    SipText ok;
    ASSERT_TRUE(phone_.WaitFor(IsFinal(), ok, kWait));
    ASSERT_EQ(ok.Status(), 200) << ok.text();
  }
  const absl::Duration register_cpu = (LoopCpu() - before_register) / kRounds;
  const double register_per_byte = absl::ToDoubleNanoseconds(register_cpu) / register_bytes;
  std::printf("REGISTER round (%zu bytes): %.3f ms, %.1f ns/byte\n", register_bytes,
              absl::ToDoubleMilliseconds(register_cpu), register_per_byte);
  EXPECT_LT(hostile_per_byte, 10 * register_per_byte);
  EXPECT_LT(limit_per_byte, 10 * register_per_byte);
}

TEST_F(WireGuardTest, TcpMessageWithTooManyHeaderLinesClosesTheConnection) {
  const uint64_t refused = HeadLinesRefused("tcp");
  int fd = Open();
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(SendAll(fd, WithExtraLines(TcpOptions("tcp-many-lines"), 300)));
  EXPECT_TRUE(ClosedWithin(fd, kWait));
  EXPECT_EQ(HeadLinesRefused("tcp"), refused + 1);
  // Another connection's request within the limit is served.
  int ok = Open();
  ASSERT_GE(ok, 0);
  ASSERT_TRUE(SendAll(ok, WithExtraLines(TcpOptions("tcp-within"), 200)));
  EXPECT_TRUE(BackendGets("tcp-within"));
}

TEST_F(WireGuardTest, TlsMessageWithTooManyHeaderLinesClosesTheConnection) {
  const std::string dir = absl::StrCat(::testing::TempDir(), "/wire_guard_tls_", getpid());
  ASSERT_TRUE(MakeTlsCertificateDir(dir)) << "openssl could not make a certificate";
  StartProxy([&](sofia::SipProxyOptions& o) {
    o.listen.push_back({Transport::kTls, "127.0.0.1", 0});
    o.tls_certificate_dir = dir;
  });
  uint16_t tls_port = 0;
  for (const TransportInfo& l : proxy_->Listening()) {
    if (l.transport == Transport::kTls) tls_port = l.port;
  }
  ASSERT_NE(tls_port, 0);
  auto tls_options = [&](absl::string_view call_id) {
    std::string r = Options(call_id);
    r.replace(r.find("SIP/2.0/UDP"), 11, "SIP/2.0/TLS");
    return r;
  };
  // Within the limit: served.
  TlsPeer fine(tls_port);
  ASSERT_TRUE(fine.connected()) << "TLS handshake with the proxy failed";
  fine.Send(WithExtraLines(tls_options("tls-within"), 200));
  ASSERT_TRUE(BackendGets("tls-within"));
  // Over it: the connection is closed, the message never relayed.
  const uint64_t refused = HeadLinesRefused("tls");
  TlsPeer hostile(tls_port);
  ASSERT_TRUE(hostile.connected()) << "TLS handshake with the proxy failed";
  hostile.Send(WithExtraLines(tls_options("tls-many-lines"), 300));
  const absl::Time start = absl::Now();
  SipText answer;
  EXPECT_FALSE(hostile.WaitForMessage(answer, kWait)) << answer.text();
  EXPECT_LT(absl::Now() - start, kWait) << "the connection stayed open";
  EXPECT_EQ(HeadLinesRefused("tls"), refused + 1);
  SipMatch dropped{"the refused request",
                   [](const SipText& m) { return m.Header("Call-ID") == "tls-many-lines"; }};
  EXPECT_TRUE(backend_.ExpectNoneWithin(dropped, absl::Milliseconds(100)));
}

TEST_F(WireGuardTest, TlsConnectionWithoutHandshakeIsClosedAfterTheMessageTimeout) {
  const std::string dir = absl::StrCat(::testing::TempDir(), "/wire_guard_tls2_", getpid());
  ASSERT_TRUE(MakeTlsCertificateDir(dir)) << "openssl could not make a certificate";
  StartProxy([&](sofia::SipProxyOptions& o) {
    o.listen.push_back({Transport::kTls, "127.0.0.1", 0});
    o.tls_certificate_dir = dir;
    o.message_timeout = absl::Seconds(1);
  });
  uint16_t tls_port = 0;
  for (const TransportInfo& l : proxy_->Listening()) {
    if (l.transport == Transport::kTls) tls_port = l.port;
  }
  ASSERT_NE(tls_port, 0);
  const uint64_t timed_out = TimedOut();
  int fd = Connect(tls_port);
  ASSERT_GE(fd, 0);
  fds_.push_back(fd);
  EXPECT_TRUE(ClosedWithin(fd, absl::Seconds(4)));
  EXPECT_EQ(TimedOut(), timed_out + 1);
}

TEST_F(WireGuardTest, ConnectionOverThePerSourceLimitIsRefusedAnotherSourceStillConnects) {
  StartProxy([](sofia::SipProxyOptions& o) { o.max_connections_per_source = 2; });
  const uint64_t refused = ConnectionsRefused("per_source");
  int a = Open(), b = Open();
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  int c = Open();
  ASSERT_GE(c, 0);
  EXPECT_TRUE(ClosedWithin(c, kWait));
  EXPECT_EQ(ConnectionsRefused("per_source"), refused + 1);
  EXPECT_TRUE(OpenFor(a, absl::Milliseconds(100)));
  // 127.0.0.2 is another source: it connects, and its request is served.
  int other = Open("127.0.0.2");
  ASSERT_GE(other, 0) << "cannot bind 127.0.0.2";
  ASSERT_TRUE(SendAll(other, TcpOptions("from-other-source")));
  EXPECT_TRUE(BackendGets("from-other-source"));
  EXPECT_TRUE(OpenFor(other, absl::Milliseconds(100)));
  // A closed connection frees its place.
  close(a);
  fds_.erase(fds_.begin());
  ASSERT_TRUE(::testing::AssertionResult([&] {
    const absl::Time deadline = absl::Now() + kWait;
    while (absl::Now() < deadline) {
      int d = Open();
      if (d >= 0 && OpenFor(d, absl::Milliseconds(100))) return true;
    }
    return false;
  }()))
      << "no connection was accepted after one closed";
}

TEST_F(WireGuardTest, ConnectionOverTheTotalLimitIsRefused) {
  StartProxy([](sofia::SipProxyOptions& o) {
    o.max_connections = 2;
    o.max_connections_per_source = 0;
  });
  const uint64_t refused = ConnectionsRefused("total");
  ASSERT_GE(Open(), 0);
  ASSERT_GE(Open("127.0.0.2"), 0);
  int third = Open("127.0.0.3");
  ASSERT_GE(third, 0);
  EXPECT_TRUE(ClosedWithin(third, kWait));
  EXPECT_EQ(ConnectionsRefused("total"), refused + 1);
}

TEST_F(WireGuardTest, AtTheDescriptorLimitTheLoopKeepsServingWithoutSpinning) {
  // Client sockets first (they share the process's descriptors with the proxy), then a limit
  // that leaves the proxy two descriptors for connections.
  std::vector<int> clients;
  for (int i = 0; i < 8; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    clients.push_back(fd);
    fds_.push_back(fd);
  }
  int open_fds = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    (void)entry;
    ++open_fds;
  }
  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  rlimit low = saved;
  low.rlim_cur = static_cast<rlim_t>(open_fds) + 1;  // the directory iterator's own is gone
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  const uint64_t refused = ConnectionsRefused("descriptors");
  sockaddr_in peer{};
  peer.sin_family = AF_INET;
  peer.sin_port = htons(tcp_port_);
  inet_pton(AF_INET, "127.0.0.1", &peer.sin_addr);
  for (int fd : clients) {
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&peer), sizeof peer), 0);
  }
  // The pending connections are refused, not left to make the loop spin.
  const absl::Time deadline = absl::Now() + kWait;
  while (ConnectionsRefused("descriptors") == refused && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_GT(ConnectionsRefused("descriptors"), refused);
  const absl::Duration cpu_before = LoopCpu();
  const absl::Time wall_before = absl::Now();
  absl::SleepFor(absl::Seconds(1));  // the measuring window
  phone_.SendTo(udp_port_, Options("at-the-limit"));
  const bool served = BackendGets("at-the-limit");
  const double share = absl::FDivDuration(LoopCpu() - cpu_before, absl::Now() - wall_before);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &saved), 0);
  EXPECT_TRUE(served) << "the loop stopped serving UDP at the descriptor limit";
  std::printf("loop thread CPU at the descriptor limit: %.1f%%\n", share * 100);
  EXPECT_LT(share, 0.2) << "the loop spins at the descriptor limit";
}

TEST_F(WireGuardTest, SilentConnectionIsClosedAfterTheMessageTimeout) {
  StartProxy([](sofia::SipProxyOptions& o) { o.message_timeout = absl::Seconds(1); });
  const uint64_t timed_out = TimedOut();
  int fd = Open();
  ASSERT_GE(fd, 0);
  EXPECT_TRUE(ClosedWithin(fd, absl::Seconds(4)));
  EXPECT_EQ(TimedOut(), timed_out + 1);
}

TEST_F(WireGuardTest, MessageDribbledByteByByteIsClosedAfterTheMessageTimeout) {
  StartProxy([](sofia::SipProxyOptions& o) { o.message_timeout = absl::Seconds(1); });
  int fd = Open();
  ASSERT_GE(fd, 0);
  const std::string request = TcpOptions("slow");
  bool closed = false;
  const absl::Time start = absl::Now();
  // One byte every 200 ms: sofia's own timeout restarts at each byte.
  for (size_t i = 0; i < request.size() / 2 && !closed; ++i) {
    if (!SendAll(fd, request.substr(i, 1))) break;
    closed = ClosedWithin(fd, absl::Milliseconds(200));
  }
  EXPECT_TRUE(closed) << "a half-sent message kept its connection "
                      << absl::FormatDuration(absl::Now() - start);
  EXPECT_LT(absl::Now() - start, absl::Seconds(4));
}

TEST_F(WireGuardTest, ConnectionBetweenMessagesIsNotTimedOut) {
  StartProxy([](sofia::SipProxyOptions& o) { o.message_timeout = absl::Seconds(1); });
  int fd = Open();
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(SendAll(fd, TcpOptions("first")));
  ASSERT_TRUE(BackendGets("first"));
  EXPECT_TRUE(OpenFor(fd, absl::Milliseconds(2500)));
  ASSERT_TRUE(SendAll(fd, TcpOptions("second")));
  EXPECT_TRUE(BackendGets("second"));
}

}  // namespace
}  // namespace pushgate::proxy::testing
