// Hand-run probe (not part of ctest): RSS growth per binding in MemoryBindingStore.
//   build/<dir>/tests/unit/proxy/store/proxy_store_memory_probe [count]
// Each binding is realistic: an RFC 8599 APNs contact with a 64-hex token and pn-param, a
// +sip.instance, an IPv4 received address, a flow token and a Call-ID, one per AOR.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
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
  using namespace pushgate::proxy;
  const int count = argc > 1 ? std::atoi(argv[1]) : 1'000'000;
  const absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  MemoryBindingStore store;
  const long before = RssBytes();
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
    store.Replace(r.aor, std::move(bindings), now, [](absl::Status) {});
  }
  const long after = RssBytes();
  std::printf("sizeof(Binding)=%zu sizeof(Uri)=%zu sizeof(PushParams)=%zu\n", sizeof(Binding),
              sizeof(Uri), sizeof(PushParams));
  std::printf("bindings=%zu rss_before=%ld rss_after=%ld bytes_per_binding=%.1f\n",
              store.ApproximateSize(), before, after,
              count > 0 ? static_cast<double>(after - before) / count : 0.0);
  return 0;
}
