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
#include <optional>
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

// Reads the command line: the config path, or an exit code (--help, --dump-default, errors).
std::optional<int> ParseArgs(int argc, char** argv, std::string* config_path) {
  bool dump = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--config" && i + 1 < argc) {
      *config_path = argv[++i];
    } else if (arg.rfind("--config=", 0) == 0) {
      *config_path = arg.substr(9);
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
  if (dump) {
    ProxyConfig defaults;
    std::fputs(config::Dump(MakeProxySchema(&defaults)).c_str(), stdout);
    return 0;
  }
  return std::nullopt;
}

// The configuration file and environment, the logs, and the SIP proxy's options. Nullopt after
// printing the error (exit kConfigErrorExitCode).
std::optional<sofia::SipProxyOptions> Configure(const std::string& config_path, ProxyConfig& cfg,
                                                SecretSource* secret_source) {
  auto fail = [](absl::string_view prefix, const absl::Status& st) {
    std::fprintf(stderr, "pushgate-proxy: %s%s\n", std::string(prefix).c_str(),
                 std::string(st.message()).c_str());
    return std::nullopt;
  };
  config::Schema schema = MakeProxySchema(&cfg);
  if (absl::Status st = config::Load(schema, config_path, config::ProcessEnv()); !st.ok()) {
    return fail("", st);
  }
  if (absl::Status st = log::Init(cfg.log); !st.ok()) return fail("log: ", st);
  auto options = BuildSipProxyOptions(cfg, secret_source);
  if (!options.ok()) return fail("", options.status());
  if (cfg.store_kind == "redis") {
    if (auto address = ParseRedisAddress(cfg.redis_address); !address.ok()) {
      return fail("store.redis_address: ", address.status());
    }
  }
  return *std::move(options);
}

RedisStoreConfig RedisConfigOf(const ProxyConfig& cfg) {
  RedisStoreConfig redis;
  redis.address = cfg.redis_address;
  redis.username = cfg.redis_username;
  redis.password = cfg.redis_password;
  redis.db = cfg.redis_db;
  redis.op_timeout = cfg.redis_op_timeout;
  redis.key_prefix = cfg.redis_key_prefix;
  return redis;
}

// The binding store, living on the loop thread (created, used and destroyed there).
struct Store {
  std::unique_ptr<SuEventLoop> events;
  std::unique_ptr<BindingStore> store;
  MemoryBindingStore* memory = nullptr;
  RedisBindingStore* redis = nullptr;
  bool alive = true;  // loop thread only; false once released
};

absl::Status OpenStore(sofia::SofiaLoop& loop, const ProxyConfig& cfg, Store& s) {
  auto log = log::Get("proxy");
  return loop.Call([&]() -> absl::Status {
    if (cfg.store_kind == "redis") {
      s.events = std::make_unique<SuEventLoop>(loop.root());
      RedisStoreConfig redis = RedisConfigOf(cfg);
      auto created = RedisBindingStore::Create(*s.events, redis);
      if (!created.ok()) return created.status();
      s.redis = created->get();
      s.store = std::move(*created);
      log->info("store: redis {}", redis.address);
    } else {
      auto created = std::make_unique<MemoryBindingStore>();
      s.memory = created.get();
      s.store = std::move(created);
      log->info("store: memory");
    }
    return absl::OkStatus();
  });
}

void ReleaseStore(sofia::SofiaLoop& loop, Store& s) {
  loop.Call([&] {
    s.alive = false;
    s.store.reset();
    s.events.reset();
  });
}

// The pusher's client (null without push.target): completions are posted onto the loop.
absl::StatusOr<std::unique_ptr<GrpcPushClient>> MakePushClient(const ProxyConfig& cfg,
                                                               sofia::SofiaLoop& loop) {
  auto log = log::Get("proxy");
  if (cfg.push_target.empty()) {
    log->warn("no push.target: sleeping phones will not be woken");
    return nullptr;
  }
  GrpcPushClientOptions po;
  po.target = cfg.push_target;
  if (!cfg.push_api_key_file.empty()) {
    absl::StatusOr<std::string> key = ReadFile(cfg.push_api_key_file);
    if (!key.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("push.api_key_file: ", key.status().message()));
    }
    po.api_key = std::string(absl::StripAsciiWhitespace(*key));
  }
  log->info("pusher: {}", cfg.push_target);
  return std::make_unique<GrpcPushClient>(
      po, [&loop](std::function<void()> fn) { loop.Post(std::move(fn)); });
}

// The call half's options: fork timers, pushes, and our Record-Route per transport from the
// advertised addresses (behind NAT or in a container they differ from the listeners); the
// first one is the default.
sofia::CallRouterOptions CallRouterOptionsOf(const ProxyConfig& cfg,
                                             const sofia::SipProxyOptions& options,
                                             const sofia::SipProxy& proxy) {
  sofia::CallRouterOptions co;
  co.fork.call_timeout = cfg.fork_call_timeout;
  co.fork.push_delay_voip = cfg.fork_push_delay_voip;
  co.fork.push_delay_other = cfg.fork_push_delay_other;
  co.fork.alert_repeat_interval = cfg.fork_alert_repeat_interval;
  co.fork.send_110_push_sent = cfg.push_send_110;
  co.push_timeout = cfg.push_timeout;
  co.route_secret = options.masquerade_secret;
  co.legacy_apns_team = cfg.push_legacy_apns_team;
  co.retry_after = sofia::RetryAfterOf(options);
  for (Transport t : {Transport::kUdp, Transport::kTcp, Transport::kTls}) {
    auto a = proxy.Advertised(t);
    if (!a.ok()) continue;
    std::string uri = AddressUri(*a, UriForm::kRecordRoute);
    if (co.record_route.empty()) co.record_route = uri;
    co.record_route_by_transport[t] = uri;
  }
  return co;
}

// The call half: fork, pushes through the pusher, fork late.
void InstallCallRouter(const ProxyConfig& cfg, const sofia::SipProxyOptions& options,
                       sofia::SofiaLoop& loop, sofia::SipProxy& proxy, PushClient* push,
                       BindingStore& store) {
  sofia::CallRouterOptions co = CallRouterOptionsOf(cfg, options, proxy);
  log::Get("proxy")->info("calls: record-route {}", co.record_route);
  proxy.SetCallHandler([&loop, &store, push, co](nta_agent_t* agent, sofia::FlowLookup flows) {
    return std::make_unique<sofia::CallRouter>(loop, agent, store, push, RealClock::Get(), co,
                                               std::move(flows));
  });
}

// The admin endpoint (null when admin.listen is empty): metrics, readiness, bindings.
absl::StatusOr<std::unique_ptr<AdminServer>> StartAdmin(const ProxyConfig& cfg,
                                                        sofia::SofiaLoop& loop, BindingStore* store,
                                                        const std::atomic<bool>& draining,
                                                        const std::atomic<bool>& store_up) {
  if (cfg.admin_listen.empty()) return nullptr;
  auto hp = ParseHostPort(cfg.admin_listen);
  auto admin = std::make_unique<AdminServer>(
      metrics::Registry::Default(), [] { return std::string(); },
      [&draining, &store_up] {
        if (draining.load()) return std::string("draining");
        if (!store_up.load()) return std::string("binding store unavailable");
        return std::string();
      });
  if (cfg.admin_bindings) {
    admin->AddGet("/bindings", [&loop, store](const std::map<std::string, std::string>& query) {
      return BindingsReply(loop, *store, query);
    });
  }
  auto port = admin->Start(hp->first, hp->second);
  if (!port.ok()) {
    return absl::UnavailableError(
        absl::StrCat("admin endpoint ", cfg.admin_listen, ": ", port.status().message()));
  }
  log::Get("proxy")->info("admin endpoint on {}:{}", hp->first, *port);
  return admin;
}

// Waits for SIGINT/SIGTERM, then drains and stops everything in order.
void ServeUntilSignal(ShutdownWatcher& shutdown, sofia::SofiaLoop& loop,
                      std::unique_ptr<sofia::SipProxy>& proxy,
                      std::unique_ptr<GrpcPushClient>& push, std::unique_ptr<AdminServer>& admin,
                      Store& store, const ProxyConfig& cfg, std::atomic<bool>& draining) {
  auto log = log::Get("proxy");
  std::promise<int> stop;
  std::future<int> stopped = stop.get_future();
  shutdown.Start([&stop](int signo) { stop.set_value(signo); });
  log->info("pushgate-proxy started");
  int signo = stopped.get();
  draining = true;
  size_t left = proxy->Drain(cfg.drain_timeout);
  log->info("stopping (signal {}), {} transaction(s) cut short", signo, left);
  if (admin) admin->Stop();
  proxy.reset();  // the call handler goes with it, before the push client
  if (push) push->Drain(absl::Seconds(2));
  push.reset();
  ReleaseStore(loop, store);
}

int Run(int argc, char** argv) {
  ShutdownWatcher shutdown;  // before any thread starts
  // Debian builds Abseil without NDEBUG: every absl::Mutex lock (gRPC's push client included)
  // would run the debug-only deadlock detector under a global lock (as in pushgate-pusher).
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  std::string config_path;
  if (std::optional<int> exit_code = ParseArgs(argc, argv, &config_path)) return *exit_code;
  ProxyConfig cfg;
  SecretSource secret_source = SecretSource::kConfigured;
  std::optional<sofia::SipProxyOptions> options = Configure(config_path, cfg, &secret_source);
  if (!options) return config::kConfigErrorExitCode;
  auto log = log::Get("proxy");
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
  Store store;
  if (absl::Status st = OpenStore(sofia_loop, cfg, store); !st.ok()) {
    log->critical("store: {}", st.message());
    return 1;
  }
  if (store.redis != nullptr) {
    // Retry-After of a store failure: no sooner than Redis's next reconnection attempt.
    options->store_retry_hint = [redis = store.redis] { return redis->RetryAfterHint(); };
  }
  auto proxy = sofia::SipProxy::Create(sofia_loop, *options, *store.store, RealClock::Get());
  if (!proxy.ok()) {
    log->critical("cannot start the SIP proxy: {}", proxy.status().message());
    ReleaseStore(sofia_loop, store);
    return 1;
  }
  auto push = MakePushClient(cfg, sofia_loop);
  if (!push.ok()) {
    log->critical("{}", push.status().message());
    proxy->reset();
    ReleaseStore(sofia_loop, store);
    return config::kConfigErrorExitCode;
  }
  InstallCallRouter(cfg, *options, sofia_loop, **proxy, push->get(), *store.store);
  metrics::Gauge& bindings = metrics::Registry::Default().GetGauge(
      "pushgate_proxy_bindings", "Bindings in the registrar (may include not yet swept ones).");
  std::atomic<bool> store_up{true};
  sofia_loop.Call([&] {
    ScheduleSweep(sofia_loop, store.memory, store.redis, store_up, *store.store, bindings,
                  store.alive);
  });
  std::atomic<bool> draining{false};
  auto admin = StartAdmin(cfg, sofia_loop, store.store.get(), draining, store_up);
  if (!admin.ok()) {
    log->critical("{}", admin.status().message());
    proxy->reset();
    ReleaseStore(sofia_loop, store);
    return 1;
  }
  ServeUntilSignal(shutdown, sofia_loop, *proxy, *push, *admin, store, cfg, draining);
  loop->reset();
  return 0;
}

}  // namespace
}  // namespace pushgate::proxy

int main(int argc, char** argv) { return pushgate::proxy::Run(argc, argv); }
