// Hand-run probe (not part of ctest): RSS growth per binding in MemoryBindingStore.
//   build/<dir>/bench/register/proxy_store_memory_probe [count] (bench/register/run.sh runs it)
// Each binding is realistic: an RFC 8599 APNs contact with a 64-hex token and pn-param, a
// +sip.instance, an IPv4 received address, a flow token and a Call-ID, one per AOR.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "proxy/core/masquerade.h"
#include "proxy/core/registrar.h"
#include "proxy/store/memory_binding_store.h"

namespace {

long RssBytes() {
  std::ifstream statm("/proc/self/statm");
  long size = 0;
  long resident = 0;
  statm >> size >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

}  // namespace

int main(int argc, char** argv) {
  using pushgate::proxy::ApplyRegistration;
  using pushgate::proxy::Binding;
  using pushgate::proxy::Contact;
  using pushgate::proxy::MasqueradeCodec;
  using pushgate::proxy::MemoryBindingStore;
  using pushgate::proxy::ParseContact;
  using pushgate::proxy::ParseContacts;
  using pushgate::proxy::PushParams;
  using pushgate::proxy::RegisterRequest;
  using pushgate::proxy::RegistrarPolicy;
  using pushgate::proxy::Transport;
  using pushgate::proxy::Uri;
  const int count = argc > 1 ? std::atoi(argv[1]) : 1'000'000;
  const absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  MemoryBindingStore store;
  const long before = RssBytes();
  const absl::Time started = absl::Now();  // hand-run tool: wall time is what we report
  for (int i = 0; i < count; ++i) {
    const std::string user = absl::StrCat("user", i);
    RegisterRequest r;
    r.aor = absl::StrCat("sip:", user, "@example.org");
    const std::string token = absl::StrFormat("%064x", static_cast<unsigned>(i) * 2654435761u);
    auto list = ParseContacts(
        absl::StrCat("<sip:", user, "@10.", (i >> 16) & 255, ".", (i >> 8) & 255, ".", i & 255,
                     ":5060;transport=tcp;pn-provider=apns;pn-prid=", token,
                     ";pn-param=ABCD123456.org.example.phone.voip>;+sip.instance=\"<urn:uuid:",
                     absl::StrFormat("%08x-0000-1000-8000-%012x", i, i), ">\";reg-id=1"));
    if (!list.ok()) {
      std::fprintf(stderr, "%s\n", std::string(list.status().message()).c_str());
      return 1;
    }
    r.contacts = *list;
    r.call_id = absl::StrFormat("%016x@pushgate-probe", i);
    r.cseq = 1;
    r.source = {Transport::kTcp,
                absl::StrCat("10.", (i >> 16) & 255, ".", (i >> 8) & 255, ".", i & 255),
                static_cast<uint16_t>(40000 + i % 20000)};
    r.flow_token = absl::StrCat("tcp-", i);
    std::vector<Binding> bindings =
        ApplyRegistration({}, r, {absl::Hours(1)}, now, RegistrarPolicy{});
    store.Replace(r.aor, std::move(bindings), now, [](const absl::Status&) {});
  }
  const long after = RssBytes();
  const absl::Duration insert_time = absl::Now() - started;

  // CPU cost of the masquerade codec (HMAC-SHA256 per call), same order of magnitude.
  MasqueradeCodec codec(MasqueradeCodec::GenerateSecret());
  const Contact contact = *ParseContact("<sip:user1@198.51.100.7:50123;transport=tcp>");
  const absl::Time codec_started = absl::Now();
  const int codec_rounds = count < 200'000 ? count : 200'000;
  size_t ok = 0;
  for (int i = 0; i < codec_rounds; ++i) {
    const Uri masq =
        codec.Masquerade(contact, {Transport::kTcp, "203.0.113.5", 5060}, std::nullopt,
                         {Transport::kTcp, "198.51.100.7", 50123}, "sip:user1@example.org");
    ok += codec.Restore(masq).ok() ? 1 : 0;
  }
  const absl::Duration codec_time = absl::Now() - codec_started;
  std::printf("sizeof(Binding)=%zu sizeof(Uri)=%zu sizeof(PushParams)=%zu\n", sizeof(Binding),
              sizeof(Uri), sizeof(PushParams));
  std::printf("bindings=%zu rss_before=%ld rss_after=%ld bytes_per_binding=%.1f\n",
              store.ApproximateSize(), before, after,
              count > 0 ? static_cast<double>(after - before) / count : 0.0);
  const absl::Time sweep_started = absl::Now();
  const size_t swept_none = store.Sweep(now + absl::Minutes(30));
  const absl::Duration sweep_none_time = absl::Now() - sweep_started;
  const absl::Time shard_started = absl::Now();
  const size_t swept_shard = store.SweepSome(now + absl::Minutes(30));
  const absl::Duration shard_time = absl::Now() - shard_started;
  std::printf("sweep_some_one_shard_ms=%.2f (removed %zu)\n",
              absl::ToDoubleMilliseconds(shard_time), swept_shard);
  const absl::Time sweep_all_started = absl::Now();
  const size_t swept_all = store.Sweep(now + absl::Hours(2));
  const absl::Duration sweep_all_time = absl::Now() - sweep_all_started;
  std::printf("sweep_nothing_ms=%.1f (removed %zu) sweep_everything_ms=%.1f (removed %zu)\n",
              absl::ToDoubleMilliseconds(sweep_none_time), swept_none,
              absl::ToDoubleMilliseconds(sweep_all_time), swept_all);
  std::printf("register+store_us=%.2f masquerade+restore_us=%.2f (restored %zu/%d)\n",
              absl::ToDoubleMicroseconds(insert_time) / (count > 0 ? count : 1),
              absl::ToDoubleMicroseconds(codec_time) / (codec_rounds > 0 ? codec_rounds : 1), ok,
              codec_rounds);
  return 0;
}
