// Replace+Fetch throughput of RedisBindingStore against a local redis-server (one store = one
// client connection, operations pipelined up to --window outstanding pairs).
//
//   proxy_redis_store_bench [--pairs N] [--window W] [--address unix:/path|tcp://h:p]
//
// Without --address it starts its own redis-server on a unix socket in a temp dir.
// Prints: BENCH redis_store pairs=N window=W seconds=S pairs_per_s=X ops_per_s=2X
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "proxy/core/registrar.h"
#include "proxy/store/poll_event_loop.h"
#include "proxy/store/redis_binding_store.h"
#include "tests/unit/proxy/store/redis_test_server.h"

using pushgate::proxy::Binding;
using pushgate::proxy::MakeBinding;
using pushgate::proxy::ParseContacts;
using pushgate::proxy::PollEventLoop;
using pushgate::proxy::RedisBindingStore;
using pushgate::proxy::RedisStoreConfig;
using pushgate::proxy::RegisterRequest;

int main(int argc, char** argv) {
  int pairs = 100000;
  int window = 256;
  std::string address;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--pairs") == 0) pairs = std::atoi(argv[i + 1]);
    if (std::strcmp(argv[i], "--window") == 0) window = std::atoi(argv[i + 1]);
    if (std::strcmp(argv[i], "--address") == 0) address = argv[i + 1];
  }
  std::unique_ptr<pushgate::proxy::testing::RedisTestServer> server;
  if (address.empty()) {
    server = std::make_unique<pushgate::proxy::testing::RedisTestServer>();
    absl::Status started = server->Start();
    if (!started.ok()) {
      std::fprintf(stderr, "redis-server: %s\n", started.ToString().c_str());
      return 1;
    }
    address = server->address();
  }
  PollEventLoop loop;
  RedisStoreConfig config;
  config.address = address;
  config.op_timeout = absl::Seconds(5);
  auto store = RedisBindingStore::Create(loop, config);
  if (!store.ok() || !loop.RunUntil([&] { return (*store)->connected(); }, absl::Seconds(5))) {
    std::fprintf(stderr, "cannot connect to %s\n", address.c_str());
    return 1;
  }
  absl::Time now = absl::Now();
  auto contacts = ParseContacts(
      "<sip:u@192.0.2.1:5060;transport=tcp;pn-provider=apns;pn-prid="
      "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef;"
      "pn-param=ABCD123456.org.example.phone.voip>;+sip.instance=\"<urn:uuid:1>\"");
  if (!contacts.ok()) return 1;

  int issued = 0;
  int completed = 0;
  int failures = 0;
  std::function<void()> issue = [&] {
    int i = issued++;
    std::string aor = absl::StrCat("sip:user", i % 10000, "@example.org");
    RegisterRequest r;
    r.aor = aor;
    r.call_id = absl::StrCat("call-", i);
    r.cseq = static_cast<uint32_t>(i);
    Binding b = MakeBinding(r, contacts->contacts.at(0), absl::Hours(1), now);
    (*store)->Replace(aor, {b}, now, [&](const absl::Status& s) {
      if (!s.ok()) ++failures;
    });
    (*store)->Fetch(aor, now, [&](absl::StatusOr<std::vector<Binding>> got) {
      if (!got.ok() || got->size() != 1) ++failures;
      ++completed;
      if (issued < pairs) issue();
    });
  };
  absl::Time start = absl::Now();
  for (int w = 0; w < window && issued < pairs; ++w) issue();
  bool done = loop.RunUntil([&] { return completed == pairs; }, absl::Seconds(120));
  double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  store->reset();
  if (!done || failures > 0) {
    std::fprintf(stderr, "completed %d/%d, failures %d\n", completed, pairs, failures);
    return 1;
  }
  std::printf("BENCH redis_store pairs=%d window=%d seconds=%.3f pairs_per_s=%.0f ops_per_s=%.0f\n",
              pairs, window, seconds, pairs / seconds, 2 * pairs / seconds);
  return 0;
}
