// bench/calls: the call half of the gateway in one process, on loopback: a real nta agent with
// CallRouter, the MemoryBindingStore, the real pusher (gRPC) and the APNs emulator (TLS/HTTP/2),
// a scripted caller and phones (UDP). Measures:
//   1. calls/s to awake phones (INVITE -> fork -> phone 200 -> caller 200), window of W calls;
//   2. at a paced rate, INVITE in -> push request at the emulator (p50/p99, push delay 0);
//   3. re-registration (the store's listener fires) -> INVITE out to the new contact (p50/p99).
// Prints one line: BENCH calls calls_per_s=.. invite_to_push_p50_ms=.. invite_to_push_p99_ms=..
//   register_to_invite_p50_ms=.. register_to_invite_p99_ms=.. rate=.. errors=..
// Usage: calls_bench <credentials dir> [awake_calls] [sleeping_calls] [rate]
#include <sofia-sip/nta.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/su_tag.h>
#include <sofia-sip/tport.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/clock.h"
#include "common/log.h"
#include "proxy/core/push_params.h"
#include "proxy/core/sip_uri.h"
#include "proxy/push/grpc_push_client.h"
#include "proxy/sofia/call_router.h"
#include "proxy/sofia/loop.h"
#include "proxy/store/memory_binding_store.h"
#include "pusher/emulator/emulator.h"
#include "pusher/service/server.h"
#include "tests/integration/calls/calls_support.h"
#include "tests/integration/proxy/sip_peer.h"

namespace pushgate::proxy::sofia {
namespace {

using testing::MakeResponse;
using testing::SipText;
using testing::UdpPeer;
namespace emu = pusher::emulator;
using calls_test::kBundle;
using calls_test::kTeam;

std::string Aor(int i) { return absl::StrCat("sip:u", i, "@example.org"); }

Binding MakeBinding(int i, uint16_t port, bool voip) {
  Binding b;
  b.aor = Aor(i);
  std::string uri = absl::StrCat("sip:u", i, "@127.0.0.1:", port);
  if (voip) {
    absl::StrAppend(&uri, ";pn-provider=apns;pn-prid=", absl::StrFormat("%064x", i),
                    ";pn-param=", kTeam, ".", kBundle, ".voip");
  }
  b.contact = *ParseUri(uri);
  if (voip) b.push = *ParsePushParams(b.contact);
  b.instance_id = absl::StrCat("<urn:uuid:", i, ">");
  b.received = TransportInfo{Transport::kUdp, "127.0.0.1", port};
  b.expires_at = absl::Now() + absl::Hours(1);
  return b;
}

std::string Invite(int i, uint16_t proxy_port, uint16_t via_port, const std::string& call_id) {
  return absl::StrCat("INVITE sip:u", i, "@127.0.0.1:", proxy_port, " SIP/2.0\r\n",
                      "Via: SIP/2.0/UDP 127.0.0.1:", via_port, ";branch=z9hG4bK-", call_id,
                      ";rport\r\nMax-Forwards: 70\r\nFrom: <sip:caller@example.org>;tag=c", call_id,
                      "\r\nTo: <sip:u", i, "@example.org>\r\nCall-ID: ", call_id,
                      "\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n");
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  size_t idx = static_cast<size_t>(std::lround(p * static_cast<double>(v.size() - 1)));
  return v[std::min(idx, v.size() - 1)];
}

class Bench {
 public:
  nta_agent_t* agent = nullptr;
  nta_leg_t* leg = nullptr;
  uint16_t port = 0;
  std::unique_ptr<SofiaLoop> loop;
  std::unique_ptr<GrpcPushClient> push;
  MemoryBindingStore store;
  std::unique_ptr<CallRouter> router;

  static int OnStray(nta_agent_magic_t*, nta_agent_t* a, msg_t* msg, sip_t*) noexcept {
    nta_msg_discard(a, msg);
    return 0;
  }
  static int OnRequest(nta_leg_magic_t* magic, nta_leg_t*, nta_incoming_t* irq,
                       const sip_t* sip) noexcept {
    auto* b = reinterpret_cast<Bench*>(magic);
    sip_method_t m = sip->sip_request->rq_method;
    if (b->router->IsOurRoute(sip)) {
      b->router->HandleInDialog(irq, sip);
    } else if (m == sip_method_invite || m == sip_method_message) {
      std::string user =
          sip->sip_request->rq_url->url_user ? sip->sip_request->rq_url->url_user : "";
      b->router->HandleIncoming(irq, sip,
                                CallTarget::Aor(absl::StrCat("sip:", user, "@example.org")));
    } else {
      if (m != sip_method_ack) nta_incoming_treply(irq, SIP_481_NO_TRANSACTION, TAG_END());
      nta_incoming_destroy(irq);
    }
    return 0;
  }

  bool Start(int pusher_port) {
    auto l = SofiaLoop::Start();
    if (!l.ok()) return false;
    loop = *std::move(l);
    GrpcPushClientOptions po;
    po.target = absl::StrCat("dns:///127.0.0.1:", pusher_port);
    SofiaLoop* lp = loop.get();
    push = std::make_unique<GrpcPushClient>(
        po, [lp](std::function<void()> fn) { lp->Post(std::move(fn)); });
    return loop->Call([&] {
      agent = nta_agent_create(loop->root(), URL_STRING_MAKE("sip:127.0.0.1:*;transport=udp"),
                               &Bench::OnStray, nullptr, NTATAG_UA(0), NTATAG_SERVER_RPORT(1),
                               NTATAG_CLIENT_RPORT(1), NTATAG_EXTRA_100(0), NTATAG_CANCEL_487(0),
                               NTATAG_PASS_408(1), TAG_END());
      if (agent == nullptr) return false;
      const su_addrinfo_t* ai = tport_get_address(tport_primaries(nta_agent_tports(agent)));
      port = SockaddrToHostPort(ai->ai_addr)->second;
      leg = nta_leg_tcreate(agent, &Bench::OnRequest, reinterpret_cast<nta_leg_magic_t*>(this),
                            NTATAG_NO_DIALOG(1), TAG_END());
      CallRouterOptions o;
      o.record_route = absl::StrCat("sip:127.0.0.1:", port, ";transport=udp");
      o.linger = absl::Seconds(2);
      router = std::make_unique<CallRouter>(*loop, agent, store, push.get(), RealClock::Get(), o,
                                            [](const std::string&) -> tport_t* { return nullptr; });
      return true;
    });
  }
  void Stop() {
    loop->Call([&] {
      router.reset();
      nta_leg_destroy(leg);
      nta_agent_destroy(agent);
      return 0;
    });
    push->Drain(absl::Seconds(2));
    loop->Stop();
  }
  void Replace(const Binding& b) {
    loop->Post([this, b] { store.Replace(b.aor, {b}, absl::Now(), [](const absl::Status&) {}); });
  }
};

// Answers every INVITE with 200 (the awake phone) and records when each Call-ID's INVITE came.
class Phone {
 public:
  explicit Phone(uint16_t proxy_port) : proxy_port_(proxy_port) {
    thread_ = std::thread([this] { Run(); });
  }
  ~Phone() {
    stop_ = true;
    thread_.join();
  }
  uint16_t port() const { return peer_.port(); }
  std::map<std::string, absl::Time> Arrivals() {
    std::lock_guard<std::mutex> lock(mu_);
    return arrivals_;
  }

 private:
  void Run() {
    while (!stop_) {
      auto m = peer_.Receive(absl::Milliseconds(100));
      if (!m || m->IsResponse() || m->Method() != "INVITE") continue;
      {
        std::lock_guard<std::mutex> lock(mu_);
        arrivals_.emplace(m->Header("Call-ID"), absl::Now());
      }
      peer_.SendTo(proxy_port_, MakeResponse(*m, 200, "OK", "", "p1"));
    }
  }
  UdpPeer peer_;
  uint16_t proxy_port_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::map<std::string, absl::Time> arrivals_;
  std::thread thread_;
};

int Main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s <credentials dir> [awake_calls] [sleeping_calls] [rate]\n",
                 argv[0]);
    return 2;
  }
  std::string creds = argv[1];
  int awake_calls = 5000, sleeping_calls = 1000, rate = 200;
  if (argc > 2) (void)absl::SimpleAtoi(argv[2], &awake_calls);
  if (argc > 3) (void)absl::SimpleAtoi(argv[3], &sleeping_calls);
  if (argc > 4) (void)absl::SimpleAtoi(argv[4], &rate);
  log::Get("proxy.calls")->set_level(spdlog::level::warn);

  emu::Emulator emulator;
  auto ports = emulator.Start(calls_test::EmulatorWithTestCredentials(creds));
  if (!ports.ok()) {
    std::fprintf(stderr, "emulator: %s\n", ports.status().ToString().c_str());
    return 1;
  }
  auto server = pusher::PusherServer::Create(calls_test::PusherForEmulator(ports->h2, creds),
                                             RealClock::Get());
  if (!server.ok()) return 1;
  auto pusher_port = (*server)->Start();
  if (!pusher_port.ok()) return 1;

  Bench bench;
  if (!bench.Start(*pusher_port)) return 1;
  int errors = 0;

  // 1. Awake phones: throughput with a window of outstanding calls.
  double calls_per_s = 0;
  {
    Phone phone(bench.port);
    for (int i = 0; i < awake_calls; ++i) bench.Replace(MakeBinding(i, phone.port(), false));
    bench.loop->Call([] { return 0; });
    UdpPeer caller;
    const int window = 100;
    int sent = 0, done = 0;
    absl::Time start = absl::Now();
    while (done < awake_calls) {
      while (sent < awake_calls && sent - done < window) {
        caller.SendTo(bench.port, Invite(sent, bench.port, caller.port(), absl::StrCat("a", sent)));
        ++sent;
      }
      auto m = caller.Receive(absl::Seconds(5));
      if (!m) {
        std::fprintf(stderr, "awake: no answer, %d of %d done\n", done, awake_calls);
        errors += awake_calls - done;
        break;
      }
      if (m->IsResponse() && m->Status() >= 200) {
        if (m->Status() != 200) ++errors;
        ++done;
      }
    }
    calls_per_s = done / absl::ToDoubleSeconds(absl::Now() - start);
  }

  // 2 and 3. Sleeping VoIP phones at `rate` calls/s: push latency, then re-registration latency.
  std::vector<double> push_ms, register_ms;
  {
    UdpPeer sink;  // the phones' old contacts: never answer
    Phone awake(bench.port);
    const int base = 1000000;
    for (int i = 0; i < sleeping_calls; ++i) {
      bench.Replace(MakeBinding(base + i, sink.port(), true));
    }
    bench.loop->Call([] { return 0; });
    UdpPeer caller;
    std::map<std::string, absl::Time> sent_at;
    uint64_t seq_before = 0;
    for (auto& r : emulator.Received()) seq_before = std::max(seq_before, r.seq);
    absl::Time start = absl::Now();
    for (int i = 0; i < sleeping_calls; ++i) {
      absl::Time due = start + absl::Seconds(1) * i / rate;
      if (due > absl::Now()) absl::SleepFor(due - absl::Now());
      std::string id = absl::StrCat("s", i);
      sent_at[id] = absl::Now();
      caller.SendTo(bench.port, Invite(base + i, bench.port, caller.port(), id));
    }
    if (!emulator.WaitForReceived(seq_before + sleeping_calls, absl::Seconds(30))) {
      std::fprintf(stderr, "sleeping: not every push arrived\n");
    }
    std::map<std::string, absl::Time> pushed;
    for (auto& r : emulator.Received(seq_before)) {
      for (auto& [id, t] : sent_at) {
        (void)t;
        if (r.body.find(absl::StrCat("\"", id, "\"")) != std::string::npos) {
          pushed.emplace(id, r.time);
          break;
        }
      }
    }
    for (auto& [id, t] : sent_at) {
      auto it = pushed.find(id);
      if (it == pushed.end()) {
        ++errors;
        continue;
      }
      push_ms.push_back(absl::ToDoubleMilliseconds(it->second - t));
    }
    // The phones wake up and register again (new contact), paced at the same rate.
    std::map<std::string, absl::Time> registered_at;
    start = absl::Now();
    for (int i = 0; i < sleeping_calls; ++i) {
      absl::Time due = start + absl::Seconds(1) * i / rate;
      if (due > absl::Now()) absl::SleepFor(due - absl::Now());
      registered_at[absl::StrCat("s", i)] = absl::Now();
      bench.Replace(MakeBinding(base + i, awake.port(), true));
    }
    absl::SleepFor(absl::Seconds(1));
    auto arrivals = awake.Arrivals();
    for (auto& [id, t] : registered_at) {
      auto it = arrivals.find(id);
      if (it == arrivals.end()) {
        ++errors;
        continue;
      }
      register_ms.push_back(absl::ToDoubleMilliseconds(it->second - t));
    }
  }
  bench.Stop();
  (*server)->Shutdown(absl::Seconds(2));
  emulator.Stop();
  std::printf(
      "BENCH calls calls_per_s=%.0f invite_to_push_p50_ms=%.2f invite_to_push_p99_ms=%.2f "
      "register_to_invite_p50_ms=%.2f register_to_invite_p99_ms=%.2f rate=%d errors=%d\n",
      calls_per_s, Percentile(push_ms, 0.5), Percentile(push_ms, 0.99),
      Percentile(register_ms, 0.5), Percentile(register_ms, 0.99), rate, errors);
  return 0;
}

}  // namespace
}  // namespace pushgate::proxy::sofia

int main(int argc, char** argv) { return pushgate::proxy::sofia::Main(argc, argv); }
