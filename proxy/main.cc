// pushgate-proxy: the SIP side of the gateway. The only place that reads flags.
//
//   pushgate-proxy --config /etc/pushgate/proxy.toml
//   pushgate-proxy --dump-default > proxy.toml
//
// Exit codes: 0 after a graceful stop, 2 for a configuration error, 1 when starting fails.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <future>
#include <map>
#include <memory>
#include <sstream>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/admin_http.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/file.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/shutdown.h"
#include "proxy/config.h"
#include "proxy/core/binding.h"
#include "proxy/core/sip_uri.h"
#include "proxy/push/grpc_push_client.h"
#include "proxy/sofia/call_router.h"
#include "proxy/sofia/loop.h"
#include "proxy/sofia/sip_proxy.h"
#include "proxy/sofia/su_event_loop.h"
#include "proxy/store/memory_binding_store.h"
#include "proxy/store/redis_binding_store.h"

namespace pushgate::proxy {
namespace {

using sofia::SuEventLoop;

constexpr char kUsage[] =
    "usage: pushgate-proxy [--config FILE] [--dump-default]\n"
    "  --config FILE     TOML configuration (environment PUSHGATE_<SECTION>_<KEY> overrides it)\n"
    "  --dump-default    print the default configuration, every key documented, and exit\n";

// Every second: sweeps expired in-memory bindings, publishes the binding count and whether the
// store is reachable (for /readyz).
// `alive` turns false (on the loop thread) before the store is destroyed.
void ScheduleSweep(sofia::SofiaLoop& loop, MemoryBindingStore* memory, RedisBindingStore* redis,
                   std::atomic<bool>& store_up, BindingStore& store, metrics::Gauge& gauge,
                   const bool& alive) {
  loop.RunAfter(1000, [&loop, memory, redis, &store_up, &store, &gauge, &alive] {
    if (!alive) return;
    // 8 of the store's 64 shards a second: a full pass every 8 s at ~1 ms per call at a million
    // bindings, instead of one long stall of the SIP loop (bench/register).
    if (memory != nullptr) memory->SweepSome(RealClock::Get().Now(), 8);
    if (redis != nullptr) store_up = redis->connected();
    gauge.Set(static_cast<double>(store.ApproximateSize()));
    ScheduleSweep(loop, memory, redis, store_up, store, gauge, alive);
  });
}

// GET /bindings?aor=...: the store is read on the SIP loop; the admin thread waits up to 2 s.
AdminServer::Reply BindingsReply(sofia::SofiaLoop& loop, BindingStore& store,
                                 const std::map<std::string, std::string>& query) {
  auto error = [](int status, absl::string_view message) {
    return AdminServer::Reply{status, "application/json",
                              absl::StrCat("{\"error\":\"", log::JsonEscape(message), "\"}\n")};
  };
  auto it = query.find("aor");
  if (it == query.end() || it->second.empty()) {
    return error(400, "missing query parameter aor (e.g. ?aor=sip:alice@example.org)");
  }
  auto uri = ParseUri(it->second);
  if (!uri.ok()) return error(400, absl::StrCat("aor: ", uri.status().message()));
  const std::string aor = AorKey(*uri);
  auto result = std::make_shared<std::promise<absl::StatusOr<std::vector<Binding>>>>();
  std::future<absl::StatusOr<std::vector<Binding>>> fetched = result->get_future();
  bool posted = loop.Post([&store, aor, result] {
    store.Fetch(aor, RealClock::Get().Now(), [result](absl::StatusOr<std::vector<Binding>> b) {
      result->set_value(std::move(b));
    });
  });
  if (!posted) return error(503, "the proxy is stopping");
  if (fetched.wait_for(std::chrono::seconds(2)) != std::future_status::ready) {
    return error(504, "the binding store did not answer within 2 s");
  }
  absl::StatusOr<std::vector<Binding>> bindings = fetched.get();
  if (!bindings.ok()) return error(503, bindings.status().message());
  return AdminServer::Reply{200, "application/json",
                            BindingsJson(aor, *bindings, RealClock::Get().Now()) + "\n"};
}

int Run(int argc, char** argv) {
  ShutdownWatcher shutdown;  // before any thread starts
  // Debian builds Abseil without NDEBUG: every absl::Mutex lock (gRPC's push client included)
  // would run the debug-only deadlock detector under a global lock (as in pushgate-pusher).
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  std::string config_path;
  bool dump = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--config" && i + 1 < argc) {
      config_path = argv[++i];
    } else if (arg.rfind("--config=", 0) == 0) {
      config_path = arg.substr(9);
    } else if (arg == "--dump-default") {
      dump = true;
    } else if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else {
      std::fprintf(stderr, "pushgate-proxy: unknown argument \"%s\"\n%s", arg.c_str(), kUsage);
      return config::kConfigErrorExitCode;
    }
  }

  ProxyConfig cfg;
  config::Schema schema = MakeProxySchema(&cfg);
  if (dump) {
    std::fputs(config::Dump(schema).c_str(), stdout);
    return 0;
  }
  if (absl::Status st = config::Load(schema, config_path, config::ProcessEnv()); !st.ok()) {
    std::fprintf(stderr, "pushgate-proxy: %s\n", std::string(st.message()).c_str());
    return config::kConfigErrorExitCode;
  }
  if (absl::Status st = log::Init(cfg.log); !st.ok()) {
    std::fprintf(stderr, "pushgate-proxy: log: %s\n", std::string(st.message()).c_str());
    return config::kConfigErrorExitCode;
  }
  auto log = log::Get("proxy");
  SecretSource secret_source = SecretSource::kConfigured;
  auto options = BuildSipProxyOptions(cfg, &secret_source);
  if (!options.ok()) {
    std::fprintf(stderr, "pushgate-proxy: %s\n", std::string(options.status().message()).c_str());
    return config::kConfigErrorExitCode;
  }
  RedisStoreConfig redis;
  redis.address = cfg.redis_address;
  redis.username = cfg.redis_username;
  redis.password = cfg.redis_password;
  redis.db = cfg.redis_db;
  redis.op_timeout = cfg.redis_op_timeout;
  redis.key_prefix = cfg.redis_key_prefix;
  if (cfg.store_kind == "redis") {
    if (auto address = ParseRedisAddress(redis.address); !address.ok()) {
      std::fprintf(stderr, "pushgate-proxy: store.redis_address: %s\n",
                   std::string(address.status().message()).c_str());
      return config::kConfigErrorExitCode;
    }
  }
  if (secret_source == SecretSource::kGenerated) {
    log->warn(
        "no sip.masquerade_secret configured: generated a random one; replicas must share one "
        "secret and contacts registered before a restart will be refused");
  }

  auto loop = sofia::SofiaLoop::Start();
  if (!loop.ok()) {
    log->critical("sofia loop: {}", loop.status().message());
    return 1;
  }
  sofia::SofiaLoop& sofia_loop = **loop;
  // The store lives on the loop thread (created, used and destroyed there).
  std::unique_ptr<SuEventLoop> events;
  std::unique_ptr<BindingStore> store;
  MemoryBindingStore* memory = nullptr;
  RedisBindingStore* redis_store = nullptr;
  absl::Status store_status = sofia_loop.Call([&]() -> absl::Status {
    if (cfg.store_kind == "redis") {
      events = std::make_unique<SuEventLoop>(sofia_loop.root());
      auto created = RedisBindingStore::Create(*events, redis);
      if (!created.ok()) return created.status();
      redis_store = created->get();
      store = std::move(*created);
      log->info("store: redis {}", redis.address);
    } else {
      auto created = std::make_unique<MemoryBindingStore>();
      memory = created.get();
      store = std::move(created);
      log->info("store: memory");
    }
    return absl::OkStatus();
  });
  bool store_alive = true;  // loop thread only
  auto release_store = [&] {
    sofia_loop.Call([&] {
      store_alive = false;
      store.reset();
      events.reset();
    });
  };
  if (!store_status.ok()) {
    log->critical("store: {}", store_status.message());
    return 1;
  }
  auto proxy = sofia::SipProxy::Create(sofia_loop, *options, *store, RealClock::Get());
  if (!proxy.ok()) {
    log->critical("cannot start the SIP proxy: {}", proxy.status().message());
    release_store();
    return 1;
  }
  // The call half: fork, pushes through the pusher, fork late.
  std::unique_ptr<GrpcPushClient> push;
  if (!cfg.push_target.empty()) {
    GrpcPushClientOptions po;
    po.target = cfg.push_target;
    if (!cfg.push_api_key_file.empty()) {
      absl::StatusOr<std::string> key = ReadFile(cfg.push_api_key_file);
      if (!key.ok()) {
        log->critical("push.api_key_file: {}", key.status().message());
        proxy->reset();
        release_store();
        return config::kConfigErrorExitCode;
      }
      po.api_key = std::string(absl::StripAsciiWhitespace(*key));
    }
    push = std::make_unique<GrpcPushClient>(
        po, [&sofia_loop](std::function<void()> fn) { sofia_loop.Post(std::move(fn)); });
    log->info("pusher: {}", cfg.push_target);
  } else {
    log->warn("no push.target: sleeping phones will not be woken");
  }
  {
    sofia::CallRouterOptions co;
    co.fork.call_timeout = cfg.fork_call_timeout;
    co.fork.push_delay_voip = cfg.fork_push_delay_voip;
    co.fork.push_delay_other = cfg.fork_push_delay_other;
    co.fork.alert_repeat_interval = cfg.fork_alert_repeat_interval;
    co.fork.send_110_push_sent = cfg.push_send_110;
    co.push_timeout = cfg.push_timeout;
    co.route_secret = options->masquerade_secret;
    co.legacy_apns_team = cfg.push_legacy_apns_team;
    // Our Record-Route per transport, from the advertised addresses (behind NAT or in a
    // container they differ from the listeners); the first one is the default.
    for (Transport t : {Transport::kUdp, Transport::kTcp, Transport::kTls}) {
      auto a = (*proxy)->Advertised(t);
      if (!a.ok()) continue;
      std::string host = IsIpv6Literal(a->host) ? absl::StrCat("[", a->host, "]") : a->host;
      std::string uri =
          absl::StrCat(t == Transport::kTls ? "sips:" : "sip:", host, ":", a->port,
                       t == Transport::kUdp ? "" : absl::StrCat(";transport=", TransportName(t)));
      if (co.record_route.empty()) co.record_route = uri;
      co.record_route_by_transport[t] = uri;
    }
    PushClient* push_client = push.get();
    BindingStore* store_ptr = store.get();
    (*proxy)->SetCallHandler(
        [&, push_client, store_ptr](nta_agent_t* agent, sofia::FlowLookup flows) {
          return std::make_unique<sofia::CallRouter>(sofia_loop, agent, *store_ptr, push_client,
                                                     RealClock::Get(), co, std::move(flows));
        });
    log->info("calls: record-route {}", co.record_route);
  }
  metrics::Gauge& bindings = metrics::Registry::Default().GetGauge(
      "pushgate_proxy_bindings", "Bindings in the registrar (may include not yet swept ones).");
  std::atomic<bool> store_up{true};
  sofia_loop.Call([&] {
    ScheduleSweep(sofia_loop, memory, redis_store, store_up, *store, bindings, store_alive);
  });

  std::atomic<bool> draining{false};
  std::unique_ptr<AdminServer> admin;
  if (!cfg.admin_listen.empty()) {
    auto hp = ParseHostPort(cfg.admin_listen);
    admin = std::make_unique<AdminServer>(
        metrics::Registry::Default(), [] { return std::string(); },
        [&draining, &store_up] {
          if (draining.load()) return std::string("draining");
          if (!store_up.load()) return std::string("binding store unavailable");
          return std::string();
        });
    if (cfg.admin_bindings) {
      BindingStore* store_ptr = store.get();
      admin->AddGet("/bindings",
                    [&sofia_loop, store_ptr](const std::map<std::string, std::string>& query) {
                      return BindingsReply(sofia_loop, *store_ptr, query);
                    });
    }
    auto port = admin->Start(hp->first, hp->second);
    if (!port.ok()) {
      log->critical("admin endpoint {}: {}", cfg.admin_listen, port.status().message());
      proxy->reset();
      release_store();
      return 1;
    }
    log->info("admin endpoint on {}:{}", hp->first, *port);
  }

  std::promise<int> stop;
  std::future<int> stopped = stop.get_future();
  shutdown.Start([&stop](int signo) { stop.set_value(signo); });
  log->info("pushgate-proxy started");
  int signo = stopped.get();
  draining = true;
  size_t left = (*proxy)->Drain(cfg.drain_timeout);
  log->info("stopping (signal {}), {} transaction(s) cut short", signo, left);
  if (admin) admin->Stop();
  proxy->reset();  // the call handler goes with it, before the push client
  if (push) push->Drain(absl::Seconds(2));
  push.reset();
  release_store();
  loop->reset();
  return 0;
}

}  // namespace
}  // namespace pushgate::proxy

int main(int argc, char** argv) { return pushgate::proxy::Run(argc, argv); }
