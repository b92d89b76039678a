// The pushgate-proxy executable: flags, configuration errors, admin endpoint, a REGISTER through
// the real process, graceful SIGTERM.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "tests/integration/proxy/eventually.h"
#include "tests/integration/proxy/sip_peer.h"

namespace pushgate::proxy::testing {
namespace {

using ::testing::HasSubstr;

struct Child {
  pid_t pid = -1;
  std::string out_path;
  std::string err_path;
};

std::string TempPath(const std::string& name) {
  return absl::StrCat(::testing::TempDir(), "/proxy_main_", getpid(), "_", name);
}

Child SpawnBinary(const std::string& binary, const std::vector<std::string>& args,
                  const std::vector<std::string>& env = {}) {
  static int n = 0;
  Child c;
  c.out_path = TempPath(absl::StrCat("out", n));
  c.err_path = TempPath(absl::StrCat("err", n++));
  c.pid = fork();
  if (c.pid == 0) {
    FILE* out = freopen(c.out_path.c_str(), "w", stdout);
    FILE* err = freopen(c.err_path.c_str(), "w", stderr);
    (void)out;
    (void)err;
    for (const std::string& e : env) putenv(const_cast<char*>(e.c_str()));
    std::vector<char*> argv;
    std::string bin = binary;
    argv.push_back(bin.data());
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(bin.c_str(), argv.data());
    _exit(127);
  }
  return c;
}

Child Spawn(const std::vector<std::string>& args, const std::vector<std::string>& env = {}) {
  return SpawnBinary(PUSHGATE_PROXY_BINARY, args, env);
}

// Exit code (128 + signal when killed), or -1 if it did not exit within `timeout`. Waits on a
// pidfd (readable when the child exits); polls only where pidfd_open is unavailable.
int WaitExit(const Child& c, std::chrono::milliseconds timeout) {
  auto reap = [&c]() -> std::optional<int> {
    int status = 0;
    if (waitpid(c.pid, &status, WNOHANG) != c.pid) return std::nullopt;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  };
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, c.pid, 0));
  if (pidfd >= 0) {
    pollfd pfd{pidfd, POLLIN, 0};
    poll(&pfd, 1, static_cast<int>(timeout.count()));
    close(pidfd);
    return reap().value_or(-1);
  }
  std::optional<int> code;
  (void)Eventually([&] { return (code = reap()).has_value(); }, absl::FromChrono(timeout),
                   "the child exiting");
  return code.value_or(-1);
}

// The child exits with `code` within `timeout`; otherwise says what it did instead.
::testing::AssertionResult ExitsWith(const Child& c, int code, std::chrono::milliseconds timeout) {
  int got = WaitExit(c, timeout);
  if (got == code) return ::testing::AssertionSuccess();
  if (got == -1) {
    return ::testing::AssertionFailure() << "pid " << c.pid << " did not exit within "
                                         << timeout.count() << "ms (expected " << code << ")";
  }
  return ::testing::AssertionFailure()
         << "pid " << c.pid << " exited with " << got << ", expected " << code;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A port free right now (bound then released).
int FreePort(int type) {
  int fd = socket(AF_INET, type, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  (void)bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  socklen_t len = sizeof(sa);
  getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  close(fd);
  return ntohs(sa.sin_port);
}

TEST(ProxyMain, DumpDefaultDocumentsEveryKeyAndExitsZero) {
  Child c = Spawn({"--dump-default"});
  ASSERT_TRUE(ExitsWith(c, 0, std::chrono::seconds(10)));
  std::string out = ReadFile(c.out_path);
  for (const char* key : {"[sip]",
                          "listen",
                          "advertise",
                          "tls_certificate_dir",
                          "backend",
                          "trusted_backends",
                          "domains",
                          "insert_domain",
                          "masquerade_secret",
                          "masquerade_secret_file",
                          "[registrar]",
                          "min_expires",
                          "max_expires",
                          "default_expires",
                          "max_contacts_per_aor",
                          "[store]",
                          "kind",
                          "redis_address",
                          "[admin]",
                          "[log]"}) {
    EXPECT_THAT(out, HasSubstr(key));
  }
}

TEST(ProxyMain, ConfigErrorsExitTwoWithTheKey) {
  std::string path = TempPath("bad.toml");
  std::ofstream(path) << "[sip]\nlisten = [\"udp:1.2.3.4\"]\n";
  Child c = Spawn({"--config", path});
  EXPECT_TRUE(ExitsWith(c, 2, std::chrono::seconds(10)));
  EXPECT_THAT(ReadFile(c.err_path), HasSubstr("sip.listen"));

  std::ofstream(path) << "[registrar]\nmin_expires = \"2h\"\nmax_expires = \"1h\"\n";
  c = Spawn({"--config", path});
  EXPECT_TRUE(ExitsWith(c, 2, std::chrono::seconds(10)));
  EXPECT_THAT(ReadFile(c.err_path), HasSubstr("registrar.min_expires"));

  c = Spawn({"--no-such-flag"});
  EXPECT_TRUE(ExitsWith(c, 2, std::chrono::seconds(10)));

  c = Spawn({"--config", TempPath("missing.toml")});
  EXPECT_TRUE(ExitsWith(c, 2, std::chrono::seconds(10)));
}

TEST(ProxyMain, ServesRegisterAndAdminThenStopsOnSigterm) {
  UdpPeer backend;
  UdpPeer phone;
  int sip_port = FreePort(SOCK_DGRAM);
  int admin_port = FreePort(SOCK_STREAM);
  std::string path = TempPath("good.toml");
  std::ofstream(path) << "[sip]\n"
                      << "listen = [\"udp:127.0.0.1:" << sip_port << "\"]\n"
                      << "backend = \"sip:127.0.0.1:" << backend.port() << "\"\n"
                      << "masquerade_secret = \"main-test\"\n"
                      << "[admin]\nlisten = \"127.0.0.1:" << admin_port << "\"\n"
                      << "bindings = true\n";
  Child c = Spawn({"--config", path}, {"PUSHGATE_LOG_LEVEL=debug"});

  httplib::Client admin("127.0.0.1", admin_port);
  admin.set_connection_timeout(0, 200000);
  ASSERT_TRUE(Eventually(
      [&] {
        auto r = admin.Get("/healthz");
        return r && r->status == 200;
      },
      absl::Seconds(10), "/healthz answering 200", nullptr, absl::Milliseconds(50)))
      << "the admin endpoint never answered; stderr: " << ReadFile(c.err_path);
  auto ready = admin.Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200);

  RegisterSpec spec;
  spec.via_port = phone.port();
  spec.contacts = {absl::StrCat("<sip:alice@127.0.0.1:", phone.port(),
                                ";pn-provider=fcm;pn-prid=tok123;pn-param=proj>")};
  phone.SendTo(static_cast<uint16_t>(sip_port), MakeRegister(spec));
  SipText reg;
  ASSERT_TRUE(backend.WaitForFinalOrRequest(reg, absl::Seconds(3)))
      << "the backend never got the REGISTER; stderr: " << ReadFile(c.err_path);
  EXPECT_THAT(reg.text(), ::testing::Not(HasSubstr("pn-")));
  std::string contact = reg.Header("Contact");
  backend.SendTo(static_cast<uint16_t>(sip_port),
                 MakeResponse(reg, 200, "OK", absl::StrCat("Contact: ", contact, "\r\n")));
  SipText ok;
  ASSERT_TRUE(phone.WaitForFinalOrRequest(ok, absl::Seconds(3)))
      << "the phone never got its answer";
  EXPECT_EQ(ok.Status(), 200);
  EXPECT_THAT(ok.Header("Contact"), HasSubstr("pn-prid=tok123"));

  // The operator's view of the registrar: the phone's own contact, its token redacted.
  auto bindings = admin.Get("/bindings?aor=sip%3Aalice%40example.org");
  ASSERT_TRUE(bindings);
  EXPECT_EQ(bindings->status, 200) << bindings->body;
  EXPECT_THAT(bindings->body, HasSubstr("\"aor\":\"sip:alice@example.org\""));
  EXPECT_THAT(bindings->body, HasSubstr(absl::StrCat("sip:alice@127.0.0.1:", phone.port())));
  EXPECT_THAT(bindings->body, HasSubstr("\"provider\":\"fcm\""));
  EXPECT_THAT(bindings->body, ::testing::Not(HasSubstr("tok123")));
  auto nobody = admin.Get("/bindings?aor=sip%3Anobody%40example.org");
  ASSERT_TRUE(nobody);
  EXPECT_EQ(nobody->status, 200);
  EXPECT_THAT(nobody->body, HasSubstr("\"bindings\":[]"));
  auto bad = admin.Get("/bindings?aor=not-a-uri");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400) << bad->body;
  auto missing = admin.Get("/bindings");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 400);
  EXPECT_THAT(missing->body, HasSubstr("missing query parameter aor"));

  auto metrics = admin.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_THAT(metrics->body, HasSubstr("pushgate_proxy_registrations_total{result=\"ok\"} 1"));
  EXPECT_THAT(metrics->body, HasSubstr("pushgate_proxy_bindings"));

  ASSERT_EQ(kill(c.pid, SIGTERM), 0);
  EXPECT_TRUE(ExitsWith(c, 0, std::chrono::seconds(15))) << ReadFile(c.err_path);
  std::string log = ReadFile(c.out_path) + ReadFile(c.err_path);
  EXPECT_THAT(log, HasSubstr("stopping"));
  EXPECT_THAT(log, ::testing::Not(HasSubstr("tok123")));  // no token in the logs
}

TEST(ProxyMain, GeneratedSecretIsWarnedAbout) {
  int sip_port = FreePort(SOCK_DGRAM);
  std::string path = TempPath("nosecret.toml");
  std::ofstream(path) << "[sip]\nlisten = [\"udp:127.0.0.1:" << sip_port
                      << "\"]\n[admin]\nlisten = \"\"\n";
  Child c = Spawn({"--config", path});
  std::string log;
  // Its log is the only sign that it started: read until "started" (or give up and let the
  // assertions below say what is missing).
  (void)Eventually(
      [&] {
        log = ReadFile(c.out_path) + ReadFile(c.err_path);
        return log.find("started") != std::string::npos;
      },
      absl::Seconds(5), "the proxy logging \"started\"", nullptr, absl::Milliseconds(50));
  kill(c.pid, SIGTERM);
  EXPECT_TRUE(ExitsWith(c, 0, std::chrono::seconds(15)));
  log = ReadFile(c.out_path) + ReadFile(c.err_path);
  EXPECT_THAT(log, HasSubstr("replicas must share"));
}

// Something accepts TCP connections on 127.0.0.1:`port` within `timeout`.
::testing::AssertionResult WaitTcp(int port, std::chrono::milliseconds timeout) {
  return Eventually(
      [port] {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_port = htons(static_cast<uint16_t>(port));
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        bool ok = connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0;
        close(fd);
        return ok;
      },
      absl::FromChrono(timeout), absl::StrCat("a TCP listener on 127.0.0.1:", port), nullptr,
      absl::Milliseconds(20));
}

// A pushgate-proxy process on free ports with the given extra config, and its peers.
struct RunningProxy {
  Child child;
  int sip_port = 0;
  int admin_port = 0;
};

RunningProxy StartProxy(uint16_t backend_port, const std::string& extra_config) {
  RunningProxy p;
  p.sip_port = FreePort(SOCK_DGRAM);
  p.admin_port = FreePort(SOCK_STREAM);
  std::string path = TempPath(absl::StrCat("proxy", p.sip_port, ".toml"));
  std::ofstream(path) << "[sip]\n"
                      << "listen = [\"udp:127.0.0.1:" << p.sip_port << "\"]\n"
                      << "backend = \"sip:127.0.0.1:" << backend_port << "\"\n"
                      << "masquerade_secret = \"main-test\"\n"
                      << "[admin]\nlisten = \"127.0.0.1:" << p.admin_port << "\"\n"
                      << extra_config;
  p.child = Spawn({"--config", path});
  return p;
}

::testing::AssertionResult WaitHealthy(const RunningProxy& p) {
  httplib::Client admin("127.0.0.1", p.admin_port);
  admin.set_connection_timeout(0, 200000);
  return Eventually(
      [&] {
        auto r = admin.Get("/healthz");
        return r && r->status == 200;
      },
      absl::Seconds(10), absl::StrCat("/healthz on port ", p.admin_port, " answering 200"), nullptr,
      absl::Milliseconds(50));
}

void Stop(const RunningProxy& p) {
  kill(p.child.pid, SIGTERM);
  EXPECT_TRUE(ExitsWith(p.child, 0, std::chrono::seconds(15))) << ReadFile(p.child.err_path);
}

// Found by the live hostile test (tests/e2e/hostile): a second message in the same TCP read as
// the first one was parsed without the maximum message size (sofia's msg_next drops it), so its
// Content-Length was allocated as claimed: 2^31 aborted the process in su_alloc, 2^32-1 crashed
// it. Now the connection's second message is refused as too large and the proxy keeps serving.
TEST(ProxyMain, PipelinedTcpMessageWithHugeContentLengthDoesNotCrash) {
  UdpPeer backend;
  int sip_port = FreePort(SOCK_STREAM);
  int admin_port = FreePort(SOCK_STREAM);
  std::string path = TempPath("pipelined.toml");
  std::ofstream(path) << "[sip]\n"
                      << "listen = [\"udp:127.0.0.1:" << sip_port
                      << "\", \"tcp:127.0.0.1:" << sip_port << "\"]\n"
                      << "backend = \"sip:127.0.0.1:" << backend.port() << "\"\n"
                      << "masquerade_secret = \"main-test\"\n"
                      << "[admin]\nlisten = \"127.0.0.1:" << admin_port << "\"\n"
                      << "[limits]\nrate_limit_requests = 0\n";
  Child c = Spawn({"--config", path});
  ASSERT_TRUE(WaitTcp(sip_port, std::chrono::seconds(10))) << ReadFile(c.err_path);
  const auto port = static_cast<uint16_t>(sip_port);
  auto options = [](uint16_t via_port, const std::string& call_id) {
    std::string text = MakeRequest("OPTIONS", "sip:bob@example.org", via_port, call_id);
    absl::StrReplaceAll({{"SIP/2.0/UDP", "SIP/2.0/TCP"}}, &text);
    return text;
  };
  for (const char* length : {"2147483648", "4294967295", "1000000000"}) {
    SCOPED_TRACE(length);
    TcpPeer tcp(port);
    ASSERT_TRUE(tcp.connected());
    std::string second = options(tcp.local_port(), absl::StrCat("huge-", length));
    absl::StrReplaceAll({{"Content-Length: 0", absl::StrCat("Content-Length: ", length)}}, &second);
    ASSERT_THAT(second, HasSubstr(absl::StrCat("Content-Length: ", length)));
    // One send: both messages arrive in the same read.
    tcp.Send(options(tcp.local_port(), absl::StrCat("first-", length)) + second + "abc");
    SipText first;
    ASSERT_TRUE(backend.WaitForRequest("OPTIONS", first, absl::Seconds(3)))
        << "the first message was not relayed; stderr: " << ReadFile(c.err_path);
    EXPECT_EQ(first.Header("Call-ID"), absl::StrCat("first-", length));
    backend.SendTo(port, MakeResponse(first, 200, "OK"));
    // Still alive and serving: a fresh connection's request is relayed.
    TcpPeer after(port);
    ASSERT_TRUE(after.connected())
        << "the proxy stopped accepting; stderr: " << ReadFile(c.err_path);
    after.Send(options(after.local_port(), absl::StrCat("after-", length)));
    SipText next;
    const SipMatch after_options{"the OPTIONS sent afterwards", [length](const SipText& t) {
                                   return t.Header("Call-ID") == absl::StrCat("after-", length);
                                 }};
    ASSERT_TRUE(backend.WaitFor(after_options, next, absl::Seconds(3)))
        << "the proxy died or stopped serving; stderr: " << ReadFile(c.err_path);
    backend.SendTo(port, MakeResponse(next, 200, "OK"));
  }
  ASSERT_EQ(kill(c.pid, SIGTERM), 0);
  EXPECT_TRUE(ExitsWith(c, 0, std::chrono::seconds(15))) << ReadFile(c.err_path);
}

TEST(ProxyMain, RedisStoreKeepsBindingsAcrossRestartAndRedisDownGives503) {
  if (access("/usr/bin/redis-server", X_OK) != 0) GTEST_SKIP() << "redis-server not installed";
  int redis_port = FreePort(SOCK_STREAM);
  Child redis =
      SpawnBinary("/usr/bin/redis-server", {"--port", absl::StrCat(redis_port), "--bind",
                                            "127.0.0.1", "--save", "", "--appendonly", "no"});
  ASSERT_TRUE(WaitTcp(redis_port, std::chrono::seconds(5))) << "redis-server never listened";
  std::string store =
      absl::StrCat("[store]\nkind = \"redis\"\nredis_address = \"tcp://127.0.0.1:", redis_port,
                   "\"\nredis_key_prefix = \"t", getpid(), ":\"\n");
  UdpPeer backend;
  UdpPeer phone;

  RunningProxy first = StartProxy(backend.port(), store);
  ASSERT_TRUE(WaitHealthy(first)) << ReadFile(first.child.err_path);
  RegisterSpec spec;
  spec.via_port = phone.port();
  spec.contacts = {absl::StrCat("<sip:alice@127.0.0.1:", phone.port(),
                                ";pn-provider=fcm;pn-prid=tok123;pn-param=proj>")};
  phone.SendTo(static_cast<uint16_t>(first.sip_port), MakeRegister(spec));
  SipText reg;
  ASSERT_TRUE(backend.WaitForFinalOrRequest(reg, absl::Seconds(3)))
      << "the backend never got the REGISTER";
  backend.SendTo(
      static_cast<uint16_t>(first.sip_port),
      MakeResponse(reg, 200, "OK", absl::StrCat("Contact: ", reg.Header("Contact"), "\r\n")));
  SipText ok;
  ASSERT_TRUE(phone.WaitForFinalOrRequest(ok, absl::Seconds(3)))
      << "the phone never got its answer";
  ASSERT_EQ(ok.Status(), 200) << ok.text();
  Stop(first);

  // A new process finds the binding in Redis: a REGISTER without Contact lists it.
  RunningProxy second = StartProxy(backend.port(), store);
  ASSERT_TRUE(WaitHealthy(second)) << ReadFile(second.child.err_path);
  RegisterSpec fetch;
  fetch.via_port = phone.port();
  fetch.call_id = "fetch-1";
  fetch.expires.reset();
  phone.SendTo(static_cast<uint16_t>(second.sip_port), MakeRegister(fetch));
  ASSERT_TRUE(backend.WaitForFinalOrRequest(reg, absl::Seconds(3)))
      << "the backend never got the fetch REGISTER";
  EXPECT_TRUE(reg.Headers("Contact").empty());
  backend.SendTo(static_cast<uint16_t>(second.sip_port), MakeResponse(reg, 200, "OK"));
  ASSERT_TRUE(phone.WaitForFinalOrRequest(ok, absl::Seconds(3)))
      << "the phone never got the fetch answer";
  EXPECT_EQ(ok.Status(), 200);
  EXPECT_THAT(ok.Header("Contact"), HasSubstr(absl::StrCat("sip:alice@127.0.0.1:", phone.port())));
  EXPECT_THAT(ok.text(), ::testing::Not(HasSubstr("tok123")));  // push params stay inside

  // Redis goes away: registrations fail with 503 instead of being lost.
  kill(redis.pid, SIGKILL);
  WaitExit(redis, std::chrono::seconds(5));
  spec.cseq = 2;
  phone.SendTo(static_cast<uint16_t>(second.sip_port), MakeRegister(spec));
  ASSERT_TRUE(backend.WaitForFinalOrRequest(reg, absl::Seconds(3)))
      << "the backend never got the REGISTER";
  backend.SendTo(
      static_cast<uint16_t>(second.sip_port),
      MakeResponse(reg, 200, "OK", absl::StrCat("Contact: ", reg.Header("Contact"), "\r\n")));
  ASSERT_TRUE(phone.WaitForFinalOrRequest(ok, absl::Seconds(5)))
      << "the phone never got an answer with Redis down";
  EXPECT_EQ(ok.Status(), 503) << ok.text();
  EXPECT_FALSE(ok.Header("Retry-After").empty());
  httplib::Client admin("127.0.0.1", second.admin_port);
  EXPECT_TRUE(Eventually(
      [&] {
        auto r = admin.Get("/readyz");
        return r && r->status != 200;
      },
      absl::Seconds(5), "/readyz turning unready", nullptr, absl::Milliseconds(50)))
      << "/readyz stayed ready with Redis down";
  Stop(second);
}

}  // namespace
}  // namespace pushgate::proxy::testing
