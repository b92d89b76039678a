// The registration half of the gateway end to end on loopback: a phone (raw UDP/TCP socket)
// REGISTERs through the real sofia agent to a scripted backend registrar (raw UDP socket).
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sofia-sip/nta.h>
#include <sofia-sip/su_tag.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "proxy/core/contact.h"
#include "proxy/core/masquerade.h"
#include "proxy/core/sip_uri.h"
#include "proxy/sofia/call_router.h"
#include "proxy/sofia/loop.h"
#include "proxy/sofia/sip_proxy.h"
#include "proxy/store/memory_binding_store.h"
#include "tests/integration/proxy/sip_peer.h"

namespace pushgate::proxy::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr absl::Duration kWait = absl::Seconds(3);
constexpr char kToken[] = "9f3c5e7a1b2d4f6081a3c5e7f9b1d3f5a7c9e1b3d5f7a9c1e3b5d7f9a1c3e5b7";
constexpr char kSecret[] = "integration-test-secret";

std::string ApnsContact(uint16_t port, absl::string_view user = "alice",
                        absl::string_view extra = "") {
  return absl::StrCat("<sip:", user, "@127.0.0.1:", port, ";pn-provider=apns;pn-prid=", kToken,
                      ";pn-param=ABCD123456.org.example.phone.voip>", extra);
}

// A store whose backend is down (Redis unreachable).
class UnavailableStore final : public BindingStore {
 public:
  void Fetch(const std::string&, absl::Time, FetchDone done) override {
    done(absl::UnavailableError("store down"));
  }
  void Replace(const std::string&, std::vector<Binding>, absl::Time, ReplaceDone done) override {
    done(absl::UnavailableError("store down"));
  }
  void Update(const std::string&, absl::Time, Mutation, ReplaceDone done) override {
    done(absl::UnavailableError("store down"));
  }
  void RemoveByPushKey(const std::string&, const std::string&, absl::Time,
                       RemoveDone done) override {
    done(absl::UnavailableError("store down"));
  }
  size_t ApproximateSize() const override { return 0; }
  SubscriptionId Subscribe(Listener) override { return 1; }
  void Unsubscribe(SubscriptionId) override {}
};

// An asynchronous store like Redis: each operation takes effect when called, its answer comes
// back on the loop `delay` later (a network round trip).
class DelayedStore final : public BindingStore {
 public:
  DelayedStore(sofia::SofiaLoop& loop, unsigned delay_ms) : loop_(loop), delay_ms_(delay_ms) {}
  void Fetch(const std::string& aor, absl::Time now, FetchDone done) override {
    inner_.Fetch(aor, now, [this, done](const absl::StatusOr<std::vector<Binding>>& b) {
      loop_.RunAfter(delay_ms_, [done, b] { done(b); });
    });
  }
  void Replace(const std::string& aor, std::vector<Binding> bindings, absl::Time now,
               ReplaceDone done) override {
    inner_.Replace(aor, std::move(bindings), now, [this, done](const absl::Status& st) {
      loop_.RunAfter(delay_ms_, [done, st] { done(st); });
    });
  }
  void Update(const std::string& aor, absl::Time now, Mutation mutate, ReplaceDone done) override {
    inner_.Update(aor, now, std::move(mutate), [this, done](const absl::Status& st) {
      loop_.RunAfter(delay_ms_, [done, st] { done(st); });
    });
  }
  void RemoveByPushKey(const std::string& aor, const std::string& push_key, absl::Time now,
                       RemoveDone done) override {
    inner_.RemoveByPushKey(aor, push_key, now, [this, done](const absl::StatusOr<size_t>& n) {
      loop_.RunAfter(delay_ms_, [done, n] { done(n); });
    });
  }
  size_t ApproximateSize() const override { return inner_.ApproximateSize(); }
  SubscriptionId Subscribe(Listener listener) override { return inner_.Subscribe(listener); }
  void Unsubscribe(SubscriptionId id) override { inner_.Unsubscribe(id); }
  MemoryBindingStore& inner() { return inner_; }  // answers at once, for checks

 private:
  sofia::SofiaLoop& loop_;
  unsigned delay_ms_;
  MemoryBindingStore inner_;
};

bool Ipv6LoopbackAvailable() {
  int fd = socket(AF_INET6, SOCK_DGRAM, 0);
  if (fd < 0) return false;
  sockaddr_in6 sa{};
  sa.sin6_family = AF_INET6;
  sa.sin6_addr = in6addr_loopback;
  bool ok = bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0;
  close(fd);
  return ok;
}

class RegisterRelayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    StartProxy([](sofia::SipProxyOptions&) {});
  }

  void StartProxy(const std::function<void(sofia::SipProxyOptions&)>& customize,
                  bool failing_store = false) {
    auto loop = sofia::SofiaLoop::Start();
    ASSERT_TRUE(loop.ok()) << loop.status();
    loop_ = std::move(*loop);
    store_ = loop_->Call([this, failing_store]() -> std::unique_ptr<BindingStore> {
      if (failing_store) return std::make_unique<UnavailableStore>();
      if (store_delay_ms_ > 0) return std::make_unique<DelayedStore>(*loop_, store_delay_ms_);
      return std::make_unique<MemoryBindingStore>();
    });
    sofia::SipProxyOptions options;
    options.listen = {{Transport::kUdp, "127.0.0.1", 0}, {Transport::kTcp, "127.0.0.1", 0}};
    if (Ipv6LoopbackAvailable()) options.listen.push_back({Transport::kUdp, "::1", 0});
    options.backend_uri = absl::StrCat("sip:127.0.0.1:", backend_.port());
    options.masquerade_secret = kSecret;
    options.t1 = absl::Milliseconds(20);
    options.transaction_timeout = absl::Milliseconds(600);
    options.registrar.min_expires = absl::Seconds(60);
    customize(options);
    auto proxy = sofia::SipProxy::Create(*loop_, options, *store_, RealClock::Get());
    ASSERT_TRUE(proxy.ok()) << proxy.status();
    proxy_ = std::move(*proxy);
    for (const TransportInfo& l : proxy_->Listening()) {
      if (l.transport == Transport::kUdp && l.host == "127.0.0.1") udp_port_ = l.port;
      if (l.transport == Transport::kUdp && l.host == "::1") udp6_port_ = l.port;
      if (l.transport == Transport::kTcp) tcp_port_ = l.port;
    }
    ASSERT_NE(udp_port_, 0);
    ASSERT_NE(tcp_port_, 0);
  }

  void TearDown() override {
    proxy_.reset();
    if (loop_) {
      loop_->Call([this] { store_.reset(); });
      loop_->Stop();
    }
  }

  std::vector<Binding> Bindings(const std::string& aor) {
    return loop_->Call([&] {
      std::vector<Binding> out;
      BindingStore* store = store_.get();
      if (auto* delayed = dynamic_cast<DelayedStore*>(store)) store = &delayed->inner();
      store->Fetch(aor, absl::Now(), [&](absl::StatusOr<std::vector<Binding>> b) {
        ASSERT_TRUE(b.ok()) << b.status();
        out = *b;
      });
      return out;
    });
  }

  static uint64_t Registrations(const std::string& result) {
    return metrics::Registry::Default()
        .GetCounter("pushgate_proxy_registrations_total", "REGISTER requests handled, by result.",
                    {{"result", result}})
        .Value();
  }

  // Sends `request` from the phone, expects it at the backend (returned).
  SipText ForwardedToBackend(const std::string& request) {
    phone_.SendTo(udp_port_, request);
    SipText at_backend;
    EXPECT_TRUE(backend_.WaitForFinalOrRequest(at_backend, kWait))
        << "the backend never received the request";
    return at_backend;
  }

  ::testing::AssertionResult PhoneAndDeskRegister(UdpPeer& desk, SipText& reg_phone,
                                                  SipText& reg_desk);

  SipText PhoneGets() {
    SipText r;
    EXPECT_TRUE(phone_.WaitForFinalOrRequest(r, kWait))
        << "the phone never received a final response";
    return r;
  }

  // Registers the phone with `contact` (the backend grants 300 s) and returns the masqueraded
  // contact URI the backend saw (nullopt after a reported failure).
  std::optional<Uri> RegisteredMaskedUri(const std::string& contact) {
    RegisterSpec spec;
    spec.via_port = phone_.port();
    spec.contacts = {contact};
    SipText reg = ForwardedToBackend(MakeRegister(spec));
    BackendAccepts(reg, 300);
    if (int status = PhoneGets().Status(); status != 200) {
      ADD_FAILURE() << "the phone's REGISTER got " << status << ", not 200";
      return std::nullopt;
    }
    auto masked = ParseContact(reg.Header("Contact"));
    if (!masked.ok()) {
      ADD_FAILURE() << masked.status();
      return std::nullopt;
    }
    return masked->uri;
  }

  // Answers a forwarded REGISTER with 200, granting `expires` to each contact it carries.
  void BackendAccepts(const SipText& reg, int expires) {
    std::string contacts;
    for (const std::string& value : reg.Headers("Contact")) {
      auto parsed = ParseContacts(value);
      ASSERT_TRUE(parsed.ok()) << parsed.status() << " in " << value;
      if (parsed->wildcard) continue;
      for (Contact c : parsed->contacts) {
        uint32_t asked = c.expires().value_or(3600);
        if (asked == 0) continue;  // removed: a registrar lists only live bindings
        c.SetParam("expires", absl::StrCat(std::min<uint32_t>(asked, expires)));
        absl::StrAppend(&contacts, "Contact: ", FormatContact(c), "\r\n");
      }
    }
    backend_.SendTo(udp_port_, MakeResponse(reg, 200, "OK", contacts));
  }

  UdpPeer backend_;
  UdpPeer phone_;
  std::unique_ptr<sofia::SofiaLoop> loop_;
  void RestartProxy(const std::function<void(sofia::SipProxyOptions&)>& customize,
                    bool failing_store = false) {
    proxy_.reset();
    loop_->Call([this] { store_.reset(); });
    loop_->Stop();
    StartProxy(customize, failing_store);
  }

  unsigned store_delay_ms_ = 0;  // > 0: a DelayedStore (asynchronous like Redis)
  std::unique_ptr<BindingStore> store_;
  std::unique_ptr<sofia::SipProxy> proxy_;
  uint16_t udp6_port_ = 0;
  uint16_t udp_port_ = 0;
  uint16_t tcp_port_ = 0;
};

TEST_F(RegisterRelayTest, RegisterMasqueradesForBackendAndBindsOriginalOnResponse) {
  RegisterSpec spec;
  spec.via_port = phone_.port();
  spec.contacts = {
      ApnsContact(phone_.port(), "alice",
                  ";+sip.instance=\"<urn:uuid:00000000-0000-0000-0000-000000000001>\"")};
  SipText reg = ForwardedToBackend(MakeRegister(spec));
  ASSERT_EQ(reg.Method(), "REGISTER");

  // The backend sees one contact, pointing at the gateway, carrying no push parameter.
  std::vector<std::string> contacts = reg.Headers("Contact");
  ASSERT_EQ(contacts.size(), 1u) << reg.text();
  EXPECT_THAT(reg.text(), Not(HasSubstr("pn-")));
  EXPECT_THAT(reg.text(), Not(HasSubstr(kToken)));
  EXPECT_THAT(contacts[0], HasSubstr(absl::StrCat("@127.0.0.1:", udp_port_)));
  EXPECT_THAT(contacts[0], HasSubstr(";pgw="));
  EXPECT_THAT(contacts[0], HasSubstr("expires=600"));
  // Our Via on top of the phone's.
  ASSERT_EQ(reg.Headers("Via").size(), 2u) << reg.text();
  EXPECT_THAT(reg.Headers("Via")[1], HasSubstr(absl::StrCat("127.0.0.1:", phone_.port())));
  EXPECT_EQ(reg.Header("Max-Forwards"), "69");
  EXPECT_TRUE(Bindings("sip:alice@example.org").empty()) << "bound before the backend answered";

  BackendAccepts(reg, 300);
  SipText ok = PhoneGets();
  ASSERT_EQ(ok.Status(), 200) << ok.text();
  // The phone gets back its own contact with the expiry the backend granted.
  std::vector<std::string> answered = ok.Headers("Contact");
  ASSERT_EQ(answered.size(), 1u) << ok.text();
  EXPECT_THAT(answered[0], HasSubstr(absl::StrCat("pn-prid=", kToken)));
  EXPECT_THAT(answered[0], HasSubstr(absl::StrCat("@127.0.0.1:", phone_.port())));
  EXPECT_THAT(answered[0], HasSubstr("expires=300"));
  EXPECT_THAT(ok.text(), Not(HasSubstr("pgw=")));
  EXPECT_THAT(ok.Header("Feature-Caps"), HasSubstr("+sip.pns=\"apns\"")) << ok.text();
  EXPECT_EQ(ok.Headers("Via").size(), 1u) << ok.text();
  EXPECT_THAT(ok.Header("To"), HasSubstr("tag=b1"));

  std::vector<Binding> bindings = Bindings("sip:alice@example.org");
  ASSERT_EQ(bindings.size(), 1u);
  const Binding& b = bindings[0];
  ASSERT_TRUE(b.push.has_value());
  EXPECT_EQ(b.push->prid, kToken);
  EXPECT_EQ(b.contact.port, phone_.port());
  EXPECT_EQ(b.instance_id, "<urn:uuid:00000000-0000-0000-0000-000000000001>");
  EXPECT_EQ(b.received.transport, Transport::kUdp);
  EXPECT_EQ(b.received.host, "127.0.0.1");
  EXPECT_EQ(b.received.port, phone_.port());
  EXPECT_TRUE(b.flow_token.empty());
  absl::Duration left = b.expires_at - absl::Now();
  EXPECT_GT(left, absl::Seconds(290));
  EXPECT_LE(left, absl::Seconds(300));

  // The masqueraded contact the backend stored restores to the phone's address.
  auto masked = ParseContact(contacts[0]);
  ASSERT_TRUE(masked.ok());
  auto target = MasqueradeCodec(kSecret).Restore(masked->uri);
  ASSERT_TRUE(target.ok()) << target.status();
  EXPECT_EQ(target->original.port, phone_.port());
  EXPECT_EQ(target->aor, "sip:alice@example.org");
}

TEST_F(RegisterRelayTest, RefreshKeepsOneBindingWithNewExpiry) {
  RegisterSpec spec;
  spec.via_port = phone_.port();
  spec.contacts = {ApnsContact(phone_.port())};
  BackendAccepts(ForwardedToBackend(MakeRegister(spec)), 120);
  ASSERT_EQ(PhoneGets().Status(), 200);
  ASSERT_EQ(Bindings("sip:alice@example.org").size(), 1u);

  spec.cseq = 2;
  BackendAccepts(ForwardedToBackend(MakeRegister(spec)), 500);
  SipText ok = PhoneGets();
  ASSERT_EQ(ok.Status(), 200);
  EXPECT_THAT(ok.Header("Contact"), HasSubstr("expires=500"));
  std::vector<Binding> bindings = Bindings("sip:alice@example.org");
  ASSERT_EQ(bindings.size(), 1u);
  EXPECT_EQ(bindings[0].cseq, 2u);
  EXPECT_GT(bindings[0].expires_at - absl::Now(), absl::Seconds(490));
}

TEST_F(RegisterRelayTest, DeregisterRemovesBindingAfterBackendAccepts) {
  RegisterSpec spec;
  spec.via_port = phone_.port();
  spec.contacts = {ApnsContact(phone_.port())};
  BackendAccepts(ForwardedToBackend(MakeRegister(spec)), 300);
  ASSERT_EQ(PhoneGets().Status(), 200);

  spec.cseq = 2;
  spec.contacts = {ApnsContact(phone_.port(), "alice", ";expires=0")};
  SipText reg = ForwardedToBackend(MakeRegister(spec));
  ASSERT_EQ(reg.Headers("Contact").size(), 1u);
  EXPECT_THAT(reg.Header("Contact"), HasSubstr("expires=0"));
  EXPECT_THAT(reg.text(), Not(HasSubstr("pn-")));
  EXPECT_EQ(Bindings("sip:alice@example.org").size(), 1u) << "removed before the backend agreed";
  BackendAccepts(reg, 300);
  SipText ok = PhoneGets();
  ASSERT_EQ(ok.Status(), 200) << ok.text();
  EXPECT_TRUE(ok.Headers("Contact").empty()) << ok.text();
  EXPECT_TRUE(Bindings("sip:alice@example.org").empty());
}

TEST_F(RegisterRelayTest, WildcardRemovesEveryBinding) {
  RegisterSpec spec;
  spec.via_port = phone_.port();
  spec.contacts = {ApnsContact(phone_.port()),
                   absl::StrCat("<sip:alice@127.0.0.1:", phone_.port(), ";transport=tcp>")};
  BackendAccepts(ForwardedToBackend(MakeRegister(spec)), 300);
  ASSERT_EQ(PhoneGets().Status(), 200);
  ASSERT_EQ(Bindings("sip:alice@example.org").size(), 2u);

  spec.cseq = 2;
  spec.contacts = {"*"};
  spec.expires = 0;
  SipText reg = ForwardedToBackend(MakeRegister(spec));
  EXPECT_EQ(reg.Header("Contact"), "*");
  EXPECT_EQ(reg.Header("Expires"), "0");
  backend_.SendTo(udp_port_, MakeResponse(reg, 200, "OK"));
  ASSERT_EQ(PhoneGets().Status(), 200);
  EXPECT_TRUE(Bindings("sip:alice@example.org").empty());
}

TEST_F(RegisterRelayTest, BackendRefusalsAreRelayedAndBindNothing) {
  for (int status : {403, 500}) {
    SCOPED_TRACE(status);
    RegisterSpec spec;
    spec.via_port = phone_.port();
    spec.call_id = absl::StrCat("refused-", status);
    spec.contacts = {ApnsContact(phone_.port())};
    SipText reg = ForwardedToBackend(MakeRegister(spec));
    backend_.SendTo(udp_port_,
                    MakeResponse(reg, status, status == 403 ? "Forbidden" : "Server Error",
                                 "Contact: <sip:leak@10.9.9.9;pgw=x>\r\n"));
    SipText answer = PhoneGets();
    EXPECT_EQ(answer.Status(), status) << answer.text();
    EXPECT_TRUE(answer.Headers("Contact").empty()) << answer.text();
    EXPECT_TRUE(Bindings("sip:alice@example.org").empty());
  }
}

TEST_F(RegisterRelayTest, DigestChallengeReachesThePhone) {
  RegisterSpec spec;
  spec.via_port = phone_.port();
  spec.contacts = {ApnsContact(phone_.port())};
  SipText reg = ForwardedToBackend(MakeRegister(spec));
  backend_.SendTo(udp_port_, MakeResponse(reg, 401, "Unauthorized",
                                          "WWW-Authenticate: Digest realm=\"example.org\", "
                                          "nonce=\"abc\", algorithm=MD5\r\n"));
  SipText answer = PhoneGets();
  EXPECT_EQ(answer.Status(), 401);
  EXPECT_THAT(answer.Header("WWW-Authenticate"), HasSubstr("nonce=\"abc\""));
  EXPECT_TRUE(Bindings("sip:alice@example.org").empty());
}

TEST_F(RegisterRelayTest, BackendTimeoutGives408AndNoBinding) {
  RegisterSpec spec;
  spec.via_port = phone_.port();
  spec.contacts = {ApnsContact(phone_.port())};
  SipText reg = ForwardedToBackend(MakeRegister(spec));  // never answered
  absl::Time sent = absl::Now();
  SipText answer = PhoneGets();
  EXPECT_EQ(answer.Status(), 408) << answer.text();
  EXPECT_LT(absl::Now() - sent, absl::Seconds(2));
  EXPECT_TRUE(Bindings("sip:alice@example.org").empty());
  // A late 200 from the backend changes nothing.
  BackendAccepts(reg, 300);
  EXPECT_TRUE(phone_.ExpectNoFinalOrRequestWithin(absl::Milliseconds(200)));
  EXPECT_TRUE(Bindings("sip:alice@example.org").empty());
  EXPECT_EQ(proxy_->InFlight(), 0u);
}

TEST_F(RegisterRelayTest, TwoContactsInOneRegister) {
  RegisterSpec spec;
  spec.via_port = phone_.port();
  spec.contacts = {ApnsContact(phone_.port(), "alice"),
                   absl::StrCat("<sip:alice-desk@127.0.0.1:", phone_.port() + 1,
                                ";pn-provider=fcm;pn-prid=fcmtoken123;pn-param=my-project>")};
  SipText reg = ForwardedToBackend(MakeRegister(spec));
  std::vector<std::string> contacts = reg.Headers("Contact");
  ASSERT_EQ(contacts.size(), 2u) << reg.text();
  EXPECT_NE(contacts[0], contacts[1]);
  EXPECT_THAT(reg.text(), Not(HasSubstr("pn-")));
  EXPECT_THAT(reg.text(), Not(HasSubstr("fcmtoken123")));
  BackendAccepts(reg, 900);
  SipText ok = PhoneGets();
  ASSERT_EQ(ok.Status(), 200);
  std::vector<std::string> answered = ok.Headers("Contact");
  ASSERT_EQ(answered.size(), 2u) << ok.text();
  EXPECT_THAT(ok.text(), HasSubstr(kToken));
  EXPECT_THAT(ok.text(), HasSubstr("pn-prid=fcmtoken123"));
  EXPECT_EQ(Bindings("sip:alice@example.org").size(), 2u);
}

// The phone and a desk phone of one AOR both send a REGISTER; `reg_phone` and `reg_desk` are
// the copies the backend received (unanswered).
::testing::AssertionResult RegisterRelayTest::PhoneAndDeskRegister(UdpPeer& desk,
                                                                   SipText& reg_phone,
                                                                   SipText& reg_desk) {
  RegisterSpec phone_spec;
  phone_spec.via_port = phone_.port();
  phone_spec.call_id = "reg-phone";
  phone_spec.contacts = {ApnsContact(phone_.port())};
  RegisterSpec desk_spec;
  desk_spec.via_port = desk.port();
  desk_spec.call_id = "reg-desk";
  desk_spec.contacts = {absl::StrCat("<sip:alice@127.0.0.1:", desk.port(), ">")};
  phone_.SendTo(udp_port_, MakeRegister(phone_spec));
  if (::testing::AssertionResult r = backend_.WaitForFinalOrRequest(reg_phone, kWait); !r) {
    return r << " (the phone's REGISTER never reached the backend)";
  }
  desk.SendTo(udp_port_, MakeRegister(desk_spec));
  if (::testing::AssertionResult r = backend_.WaitForFinalOrRequest(reg_desk, kWait); !r) {
    return r << " (the desk's REGISTER never reached the backend)";
  }
  return ::testing::AssertionSuccess();
}

// Two devices of one AOR register at the same time and the store answers asynchronously (Redis):
// the second registration must not overwrite the first one's binding with a stale read.
TEST_F(RegisterRelayTest, ConcurrentRegistrationsOfOneAorKeepBothBindings) {
  store_delay_ms_ = 50;
  RestartProxy([](sofia::SipProxyOptions&) {});
  UdpPeer desk;
  SipText reg_phone, reg_desk;
  ASSERT_TRUE(PhoneAndDeskRegister(desk, reg_phone, reg_desk));
  // Both 2xx back to back: both registrations are in the store at once.
  BackendAccepts(reg_phone, 300);
  BackendAccepts(reg_desk, 300);
  ASSERT_EQ(PhoneGets().Status(), 200);
  SipText desk_ok;
  ASSERT_TRUE(desk.WaitForFinalOrRequest(desk_ok, kWait)) << "the desk never got its 200";
  ASSERT_EQ(desk_ok.Status(), 200) << desk_ok.text();
  EXPECT_EQ(Bindings("sip:alice@example.org").size(), 2u) << "one registration overwrote the other";
  EXPECT_EQ(proxy_->InFlight(), 0u);
}

// Beyond max_pending_registers, the oldest REGISTER still waiting for the backend is answered
// 503 with Retry-After; the newer one goes on and registers.
TEST_F(RegisterRelayTest, TooManyPendingRegistersAnswersTheOldest) {
  RestartProxy([](sofia::SipProxyOptions& o) { o.max_pending_registers = 1; });
  UdpPeer desk;
  SipText reg_phone, reg_desk;
  ASSERT_TRUE(PhoneAndDeskRegister(desk, reg_phone, reg_desk));
  SipText dropped = PhoneGets();
  EXPECT_EQ(dropped.Status(), 503) << dropped.text();
  EXPECT_EQ(dropped.Header("Retry-After"), "5");
  BackendAccepts(reg_desk, 300);
  SipText desk_ok;
  ASSERT_TRUE(desk.WaitForFinalOrRequest(desk_ok, kWait)) << "the desk never got its 200";
  EXPECT_EQ(desk_ok.Status(), 200) << desk_ok.text();
  // The backend's late answer to the dropped one changes nothing.
  BackendAccepts(reg_phone, 300);
  EXPECT_TRUE(phone_.ExpectNoFinalOrRequestWithin(absl::Milliseconds(200)));
  EXPECT_EQ(Bindings("sip:alice@example.org").size(), 1u);
  EXPECT_EQ(proxy_->InFlight(), 0u);
}

TEST_F(RegisterRelayTest, BackendGrantingOnlyOneContactBindsOnlyThatOne) {
  RegisterSpec spec;
  spec.via_port = phone_.port();
  spec.contacts = {ApnsContact(phone_.port(), "alice"),
                   absl::StrCat("<sip:alice-desk@127.0.0.1:", phone_.port() + 1, ">")};
  SipText reg = ForwardedToBackend(MakeRegister(spec));
  ASSERT_EQ(reg.Headers("Contact").size(), 2u);
  // The backend keeps only the first contact.
  auto first = ParseContact(reg.Headers("Contact")[0]);
  ASSERT_TRUE(first.ok());
  first->SetParam("expires", "200");
  backend_.SendTo(
      udp_port_,
      MakeResponse(reg, 200, "OK", absl::StrCat("Contact: ", FormatContact(*first), "\r\n")));
  SipText ok = PhoneGets();
  ASSERT_EQ(ok.Status(), 200);
  ASSERT_EQ(ok.Headers("Contact").size(), 1u) << ok.text();
  EXPECT_THAT(ok.Header("Contact"), HasSubstr("expires=200"));
  std::vector<Binding> bindings = Bindings("sip:alice@example.org");
  ASSERT_EQ(bindings.size(), 1u);
  EXPECT_EQ(bindings[0].contact.user, "alice");
}

TEST_F(RegisterRelayTest, ResponseNeverShowsAnotherPhonesPushParams) {
  // Bob's phone registers first with its token...
  RegisterSpec bob;
  bob.via_port = phone_.port();
  bob.call_id = "bob-1";
  bob.contacts = {ApnsContact(phone_.port(), "alice")};
  BackendAccepts(ForwardedToBackend(MakeRegister(bob)), 300);
  ASSERT_EQ(PhoneGets().Status(), 200);
  // ...then a second device of the same AOR registers: its 200 lists its own contact only.
  UdpPeer other;
  RegisterSpec second;
  second.via_port = other.port();
  second.call_id = "second-1";
  second.contacts = {absl::StrCat("<sip:alice@127.0.0.1:", other.port(),
                                  ";pn-provider=fcm;pn-prid=othertoken;pn-param=proj>")};
  other.SendTo(udp_port_, MakeRegister(second));
  SipText reg;
  ASSERT_TRUE(backend_.WaitForFinalOrRequest(reg, kWait))
      << "the backend never received the second REGISTER";
  BackendAccepts(reg, 300);
  SipText ok;
  ASSERT_TRUE(other.WaitForFinalOrRequest(ok, kWait)) << "the second device never got its answer";
  ASSERT_EQ(ok.Status(), 200);
  EXPECT_THAT(ok.text(), HasSubstr("othertoken"));
  EXPECT_THAT(ok.text(), Not(HasSubstr(kToken)));
  EXPECT_EQ(Bindings("sip:alice@example.org").size(), 2u);
}

TEST_F(RegisterRelayTest, ExpiryBelowMinimumGets423WithoutReachingBackend) {
  RegisterSpec spec;
  spec.via_port = phone_.port();
  spec.contacts = {ApnsContact(phone_.port())};
  spec.expires = 10;
  phone_.SendTo(udp_port_, MakeRegister(spec));
  SipText answer = PhoneGets();
  EXPECT_EQ(answer.Status(), 423) << answer.text();
  EXPECT_EQ(answer.Header("Min-Expires"), "60");
  EXPECT_TRUE(backend_.ExpectNothingWithin(absl::Milliseconds(100)));
}

TEST_F(RegisterRelayTest, MalformedContactGets400WithReason) {
  RegisterSpec spec;
  spec.via_port = phone_.port();
  spec.contacts = {absl::StrCat("<sip:alice@127.0.0.1:", phone_.port(), ">;q=1.5")};
  phone_.SendTo(udp_port_, MakeRegister(spec));
  SipText answer = PhoneGets();
  EXPECT_EQ(answer.Status(), 400) << answer.text();
  EXPECT_THAT(answer.Reason(), HasSubstr("q"));
  EXPECT_TRUE(backend_.ExpectNothingWithin(absl::Milliseconds(100)));

  spec.contacts = {absl::StrCat("<sip:alice@127.0.0.1:", phone_.port(),
                                ";pn-provider=apns;pn-prid=nothex!;pn-param=ABCD123456.a.b.voip>")};
  spec.call_id = "bad-push";
  phone_.SendTo(udp_port_, MakeRegister(spec));
  answer = PhoneGets();
  EXPECT_EQ(answer.Status(), 400) << answer.text();
  EXPECT_TRUE(backend_.ExpectNothingWithin(absl::Milliseconds(100)));
}

TEST_F(RegisterRelayTest, TooManyContactsGets403) {
  RegisterSpec spec;
  spec.via_port = phone_.port();
  for (int i = 0; i < 6; ++i) {
    spec.contacts.push_back(absl::StrCat("<sip:alice@127.0.0.1:", 6000 + i, ">"));
  }
  phone_.SendTo(udp_port_, MakeRegister(spec));
  EXPECT_EQ(PhoneGets().Status(), 403);
  EXPECT_TRUE(backend_.ExpectNothingWithin(absl::Milliseconds(100)));
}

TEST_F(RegisterRelayTest, ForgedMasqueradeValueIsRefused) {
  // A genuine value, from a registration the backend saw.
  std::optional<Uri> masked = RegisteredMaskedUri(ApnsContact(phone_.port()));
  ASSERT_TRUE(masked);
  std::string genuine = FormatUri(*masked);

  // Tampered: one character of the value changed.
  Uri tampered = *masked;
  std::string value = *Param(tampered, "pgw");
  value[value.size() / 2] = value[value.size() / 2] == 'A' ? 'B' : 'A';
  SetParam(tampered, "pgw", value);
  UdpPeer caller;
  caller.SendTo(udp_port_, MakeRequest("INVITE", FormatUri(tampered), caller.port(), "forged-1"));
  SipText answer;
  ASSERT_TRUE(caller.WaitForFinalOrRequest(answer, kWait)) << "no answer to the forged INVITE";
  EXPECT_EQ(answer.Status(), 403) << answer.text();

  // Made up from scratch.
  caller.SendTo(udp_port_, MakeRequest("INVITE",
                                       absl::StrCat("sip:alice@127.0.0.1:", udp_port_,
                                                    ";pgw=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
                                       caller.port(), "forged-2"));
  ASSERT_TRUE(caller.WaitForFinalOrRequest(answer, kWait)) << "no answer to the made-up INVITE";
  EXPECT_EQ(answer.Status(), 403) << answer.text();

  // The genuine value is accepted (calls are not routed yet: 480), never relayed anywhere.
  caller.SendTo(udp_port_, MakeRequest("INVITE", genuine, caller.port(), "genuine-1"));
  ASSERT_TRUE(caller.WaitForFinalOrRequest(answer, kWait)) << "no answer to the genuine INVITE";
  EXPECT_EQ(answer.Status(), 480) << answer.text();
  EXPECT_TRUE(backend_.ExpectNothingWithin(absl::Milliseconds(100)));
  EXPECT_TRUE(phone_.ExpectNothingWithin(absl::Milliseconds(100)));
}

TEST_F(RegisterRelayTest, OtherRequestsGoOnlyToTheBackend) {
  // A request for some arbitrary host still goes to the backend, never to that host.
  UdpPeer elsewhere;
  phone_.SendTo(udp_port_,
                MakeRequest("OPTIONS", absl::StrCat("sip:someone@127.0.0.1:", elsewhere.port()),
                            phone_.port(), "options-1"));
  SipText at_backend;
  ASSERT_TRUE(backend_.WaitForFinalOrRequest(at_backend, kWait))
      << "the OPTIONS never reached the backend; "
      << phone_.ExpectNothingWithin(absl::Milliseconds(10)).message();
  EXPECT_EQ(at_backend.Method(), "OPTIONS");
  backend_.SendTo(udp_port_, MakeResponse(at_backend, 200, "OK"));
  SipText ok = PhoneGets();
  EXPECT_EQ(ok.Status(), 200);
  EXPECT_EQ(ok.Headers("Via").size(), 1u);
  EXPECT_TRUE(elsewhere.ExpectNothingWithin(absl::Milliseconds(100)));
}

TEST_F(RegisterRelayTest, RequestsFromBackendWithoutMasqueradeGet404) {
  backend_.SendTo(udp_port_, MakeRequest("INVITE", "sip:alice@example.org", backend_.port()));
  SipText answer;
  ASSERT_TRUE(backend_.WaitForFinalOrRequest(answer, kWait)) << "the backend never got an answer";
  EXPECT_EQ(answer.Status(), 404) << answer.text();
}

TEST_F(RegisterRelayTest, DomainNotServedGets403) {
  RestartProxy([](sofia::SipProxyOptions& o) { o.domains = {"example.org"}; });
  RegisterSpec spec;
  spec.via_port = phone_.port();
  spec.domain = "other.net";
  spec.contacts = {ApnsContact(phone_.port())};
  phone_.SendTo(udp_port_, MakeRegister(spec));
  EXPECT_EQ(PhoneGets().Status(), 403);
  EXPECT_TRUE(backend_.ExpectNothingWithin(absl::Milliseconds(100)));
}

TEST_F(RegisterRelayTest, TcpRegistrationKeepsTheFlow) {
  TcpPeer phone(tcp_port_);
  ASSERT_TRUE(phone.connected());
  RegisterSpec spec;
  spec.transport = "TCP";
  spec.via_port = phone.local_port();
  spec.contacts = {absl::StrCat("<sip:alice@127.0.0.1:", phone.local_port(),
                                ";transport=tcp;pn-provider=apns;pn-prid=", kToken,
                                ";pn-param=ABCD123456.org.example.phone.voip>")};
  phone.Send(MakeRegister(spec));
  SipText reg;
  ASSERT_TRUE(backend_.WaitForFinalOrRequest(reg, kWait))
      << "the backend never received the TCP REGISTER";
  // Toward the UDP backend the contact advertises the UDP address.
  EXPECT_THAT(reg.Header("Contact"), HasSubstr(absl::StrCat("127.0.0.1:", udp_port_)));
  BackendAccepts(reg, 300);
  SipText ok;
  ASSERT_TRUE(phone.WaitForMessage(ok, kWait)) << "the phone never got its 200 over TCP";
  EXPECT_EQ(ok.Status(), 200);
  std::vector<Binding> bindings = Bindings("sip:alice@example.org");
  ASSERT_EQ(bindings.size(), 1u);
  EXPECT_EQ(bindings[0].received.transport, Transport::kTcp);
  EXPECT_EQ(bindings[0].received.port, phone.local_port());
  EXPECT_FALSE(bindings[0].flow_token.empty());
}

TEST_F(RegisterRelayTest, DrainingRefusesNewRequests) {
  EXPECT_EQ(proxy_->Drain(absl::Milliseconds(100)), 0u);
  RegisterSpec spec;
  spec.via_port = phone_.port();
  spec.contacts = {ApnsContact(phone_.port())};
  phone_.SendTo(udp_port_, MakeRegister(spec));
  SipText answer = PhoneGets();
  EXPECT_EQ(answer.Status(), 503);
  EXPECT_FALSE(answer.Header("Retry-After").empty());
}

TEST_F(RegisterRelayTest, StoreDownGives503WithRetryAfterAndBackendStillAsked) {
  RestartProxy([](sofia::SipProxyOptions& o) { o.store_retry_after_seconds = 7; },
               /*failing_store=*/true);
  uint64_t before = Registrations("store_error");
  RegisterSpec spec;
  spec.via_port = phone_.port();
  spec.contacts = {ApnsContact(phone_.port())};
  BackendAccepts(ForwardedToBackend(MakeRegister(spec)), 300);
  SipText answer = PhoneGets();
  EXPECT_EQ(answer.Status(), 503) << answer.text();
  EXPECT_EQ(answer.Header("Retry-After"), "7");
  EXPECT_EQ(Registrations("store_error"), before + 1);
}

TEST_F(RegisterRelayTest, CountsRegistrationsByResult) {
  uint64_t ok_before = Registrations("ok");
  uint64_t brief_before = Registrations("interval_too_brief");
  RegisterSpec spec;
  spec.via_port = phone_.port();
  spec.contacts = {ApnsContact(phone_.port())};
  BackendAccepts(ForwardedToBackend(MakeRegister(spec)), 300);
  ASSERT_EQ(PhoneGets().Status(), 200);
  spec.cseq = 2;
  spec.expires = 5;
  phone_.SendTo(udp_port_, MakeRegister(spec));
  ASSERT_EQ(PhoneGets().Status(), 423);
  EXPECT_EQ(Registrations("ok"), ok_before + 1);
  EXPECT_EQ(Registrations("interval_too_brief"), brief_before + 1);
  EXPECT_THAT(metrics::Registry::Default().Expose(),
              HasSubstr("pushgate_proxy_forwarded_requests_total{method=\"REGISTER\"}"));
}

TEST_F(RegisterRelayTest, WithoutBackendTheRequestUriIsResolved) {
  // No configured backend: the REGISTER goes where its request URI points (RFC 3263; a numeric
  // host needs no DNS here).
  RestartProxy([](sofia::SipProxyOptions& o) { o.backend_uri.clear(); });
  RegisterSpec spec;
  spec.via_port = phone_.port();
  spec.contacts = {ApnsContact(phone_.port())};
  std::string reg_text = MakeRegister(spec);
  reg_text.replace(0, reg_text.find(" SIP/2.0"),
                   absl::StrCat("REGISTER sip:127.0.0.1:", backend_.port()));
  SipText reg = ForwardedToBackend(reg_text);
  ASSERT_EQ(reg.Method(), "REGISTER");
  EXPECT_THAT(reg.text(), Not(HasSubstr("pn-")));
  BackendAccepts(reg, 300);
  EXPECT_EQ(PhoneGets().Status(), 200);
  EXPECT_EQ(Bindings("sip:alice@example.org").size(), 1u);
}

TEST_F(RegisterRelayTest, WithoutBackendOtherRequestsAreNotRelayedAnywhere) {
  RestartProxy([](sofia::SipProxyOptions& o) { o.backend_uri.clear(); });
  UdpPeer elsewhere;
  phone_.SendTo(udp_port_,
                MakeRequest("MESSAGE", absl::StrCat("sip:someone@127.0.0.1:", elsewhere.port()),
                            phone_.port(), "message-1"));
  EXPECT_EQ(PhoneGets().Status(), 403);
  EXPECT_TRUE(elsewhere.ExpectNothingWithin(absl::Milliseconds(100)));
}

TEST_F(RegisterRelayTest, Ipv6BackendGetsIpv6MasqueradeAndIpv6PhoneIsBound) {
  if (!Ipv6LoopbackAvailable()) GTEST_SKIP() << "no IPv6 loopback on this machine";
  UdpPeer backend6(/*ipv6=*/true);
  ASSERT_NE(backend6.port(), 0);
  ASSERT_NE(udp6_port_, 0);
  RestartProxy([&](sofia::SipProxyOptions& o) {
    o.backend_uri = absl::StrCat("sip:[::1]:", backend6.port());
  });
  UdpPeer phone6(/*ipv6=*/true);
  RegisterSpec spec;
  spec.via_host = "[::1]";
  spec.via_port = phone6.port();
  spec.contacts = {absl::StrCat("<sip:alice@[::1]:", phone6.port(), ";pn-provider=apns;pn-prid=",
                                kToken, ";pn-param=ABCD123456.org.example.phone.voip>")};
  phone6.SendTo(udp6_port_, MakeRegister(spec));
  SipText reg;
  ASSERT_TRUE(backend6.WaitForFinalOrRequest(reg, kWait))
      << "the IPv6 backend never received the REGISTER";
  EXPECT_THAT(reg.Header("Contact"), HasSubstr(absl::StrCat("@[::1]:", udp6_port_)));
  EXPECT_THAT(reg.text(), Not(HasSubstr("pn-")));
  auto masked = ParseContact(reg.Header("Contact"));
  ASSERT_TRUE(masked.ok()) << masked.status();
  auto target = MasqueradeCodec(kSecret).Restore(masked->uri);
  ASSERT_TRUE(target.ok()) << target.status();
  EXPECT_EQ(target->original.host, "::1");
  EXPECT_EQ(target->original.port, phone6.port());

  std::string contacts;
  masked->SetParam("expires", "300");
  backend6.SendTo(
      udp6_port_,
      MakeResponse(reg, 200, "OK", absl::StrCat("Contact: ", FormatContact(*masked), "\r\n")));
  SipText ok;
  ASSERT_TRUE(phone6.WaitForFinalOrRequest(ok, kWait)) << "the IPv6 phone never got its answer";
  EXPECT_EQ(ok.Status(), 200) << ok.text();
  std::vector<Binding> bindings = Bindings("sip:alice@example.org");
  ASSERT_EQ(bindings.size(), 1u);
  EXPECT_EQ(bindings[0].received.host, "::1");
  EXPECT_EQ(bindings[0].received.port, phone6.port());
}

TEST_F(RegisterRelayTest, InsertDomainModeCarriesTheAorDomain) {
  RestartProxy([](sofia::SipProxyOptions& o) { o.insert_domain = true; });
  RegisterSpec spec;
  spec.via_port = phone_.port();
  spec.contacts = {ApnsContact(phone_.port())};
  SipText reg = ForwardedToBackend(MakeRegister(spec));
  auto masked = ParseContact(reg.Header("Contact"));
  ASSERT_TRUE(masked.ok()) << masked.status();
  EXPECT_EQ(masked->uri.host, "127.0.0.1");
  EXPECT_EQ(masked->uri.port, udp_port_);
  auto target = MasqueradeCodec(kSecret).Restore(masked->uri);
  ASSERT_TRUE(target.ok()) << target.status();
  EXPECT_TRUE(target->insert_domain);
  EXPECT_EQ(target->aor_domain, "example.org");
  BackendAccepts(reg, 300);
  EXPECT_EQ(PhoneGets().Status(), 200);
  EXPECT_EQ(Bindings("sip:alice@example.org").size(), 1u);
}

TEST_F(RegisterRelayTest, DrainLetsPendingRegistrationFinish) {
  RegisterSpec spec;
  spec.via_port = phone_.port();
  spec.contacts = {ApnsContact(phone_.port())};
  SipText reg = ForwardedToBackend(MakeRegister(spec));
  EXPECT_EQ(proxy_->InFlight(), 1u);
  std::thread answer([&] {
    // A delay, not a wait: the answer must come while Drain below is blocked, and the proxy
    // signals nothing when Drain starts waiting.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    BackendAccepts(reg, 300);
  });
  EXPECT_EQ(proxy_->Drain(absl::Seconds(3)), 0u) << "the pending REGISTER did not finish";
  answer.join();
  EXPECT_EQ(PhoneGets().Status(), 200);
  EXPECT_EQ(Bindings("sip:alice@example.org").size(), 1u);
}

TEST_F(RegisterRelayTest, TlsRegistrationKeepsTheFlow) {
  std::string dir = absl::StrCat(::testing::TempDir(), "/proxy_tls_", getpid());
  if (!MakeTlsCertificateDir(dir)) GTEST_SKIP() << "openssl could not make a certificate";
  RestartProxy([&](sofia::SipProxyOptions& o) {
    o.listen.push_back({Transport::kTls, "127.0.0.1", 0});
    o.tls_certificate_dir = dir;
  });
  uint16_t tls_port = 0;
  for (const TransportInfo& l : proxy_->Listening()) {
    if (l.transport == Transport::kTls) tls_port = l.port;
  }
  ASSERT_NE(tls_port, 0);
  TlsPeer phone(tls_port);
  ASSERT_TRUE(phone.connected()) << "TLS handshake with the proxy failed";
  RegisterSpec spec;
  spec.transport = "TLS";
  spec.via_port = phone.local_port();
  spec.contacts = {absl::StrCat("<sip:alice@127.0.0.1:", phone.local_port(),
                                ";transport=tls;pn-provider=apns;pn-prid=", kToken,
                                ";pn-param=ABCD123456.org.example.phone.voip>")};
  phone.Send(MakeRegister(spec));
  SipText reg;
  ASSERT_TRUE(backend_.WaitForFinalOrRequest(reg, kWait))
      << "the backend never received the TLS REGISTER";
  EXPECT_THAT(reg.text(), Not(HasSubstr("pn-")));
  BackendAccepts(reg, 300);
  SipText ok;
  ASSERT_TRUE(phone.WaitForMessage(ok, kWait)) << "the phone never got its 200 over TLS";
  EXPECT_EQ(ok.Status(), 200);
  EXPECT_THAT(ok.Header("Contact"), HasSubstr(kToken));
  std::vector<Binding> bindings = Bindings("sip:alice@example.org");
  ASSERT_EQ(bindings.size(), 1u);
  EXPECT_EQ(bindings[0].received.transport, Transport::kTls);
  EXPECT_EQ(bindings[0].received.port, phone.local_port());
  EXPECT_FALSE(bindings[0].flow_token.empty());
}

TEST_F(RegisterRelayTest, OutboundInviteRelaysRingingAndCancel) {
  phone_.SendTo(udp_port_, MakeRequest("INVITE", "sip:bob@example.org", phone_.port(), "inv-1"));
  SipText invite;
  ASSERT_TRUE(backend_.WaitForFinalOrRequest(invite, kWait))
      << "the INVITE never reached the backend";
  ASSERT_EQ(invite.Method(), "INVITE");
  backend_.SendTo(udp_port_, MakeResponse(invite, 180, "Ringing"));
  SipText ringing;
  ASSERT_TRUE(phone_.WaitForMessage(ringing, kWait)) << "the 180 never reached the phone";
  EXPECT_EQ(ringing.Status(), 180) << ringing.text();

  // The phone cancels: same Via branch, From, Call-ID, CSeq number as its INVITE.
  std::string cancel = absl::StrCat("CANCEL sip:bob@example.org SIP/2.0\r\n");
  SipText original(invite.text());
  // Rebuild from what the phone sent: the backend's copy has our Via on top of the phone's.
  std::vector<std::string> vias = original.Headers("Via");
  ASSERT_EQ(vias.size(), 2u);
  absl::StrAppend(&cancel, "Via: ", vias[1], "\r\n", "Max-Forwards: 70\r\n",
                  "From: ", original.Header("From"), "\r\n", "To: <sip:alice@example.org>\r\n",
                  "Call-ID: inv-1\r\n", "CSeq: 1 CANCEL\r\n", "Content-Length: 0\r\n\r\n");
  phone_.SendTo(udp_port_, cancel);
  SipText cancel_ok;
  ASSERT_TRUE(phone_.WaitForFinalOrRequest(cancel_ok, kWait)) << "the CANCEL was never answered";
  EXPECT_EQ(cancel_ok.Status(), 200) << cancel_ok.text();
  EXPECT_THAT(cancel_ok.Header("CSeq"), HasSubstr("CANCEL"));

  SipText backend_cancel;
  ASSERT_TRUE(backend_.WaitForFinalOrRequest(backend_cancel, kWait))
      << "the CANCEL never reached the backend";
  EXPECT_EQ(backend_cancel.Method(), "CANCEL");
  backend_.SendTo(udp_port_, MakeResponse(backend_cancel, 200, "OK"));
  backend_.SendTo(udp_port_, MakeResponse(invite, 487, "Request Terminated"));
  SipText terminated;
  ASSERT_TRUE(phone_.WaitForFinalOrRequest(terminated, kWait)) << "the 487 never reached the phone";
  EXPECT_EQ(terminated.Status(), 487) << terminated.text();
}

// Timer C (RFC 3261 16.6 step 11): the backend rings but never answers; the INVITE is cancelled
// toward it, the phone gets 408, and no transaction stays in flight.
TEST_F(RegisterRelayTest, OutboundInviteWithoutFinalAnswerIsEndedByTimerC) {
  RestartProxy([](sofia::SipProxyOptions& o) { o.timer_c = absl::Milliseconds(1500); });
  phone_.SendTo(udp_port_, MakeRequest("INVITE", "sip:bob@example.org", phone_.port(), "inv-c"));
  SipText invite;
  ASSERT_TRUE(backend_.WaitForFinalOrRequest(invite, kWait))
      << "the INVITE never reached the backend";
  ASSERT_EQ(invite.Method(), "INVITE");
  backend_.SendTo(udp_port_, MakeResponse(invite, 180, "Ringing"));
  EXPECT_EQ(proxy_->InFlight(), 1u);

  SipText timeout;
  ASSERT_TRUE(phone_.WaitFor(IsFinal(), timeout, kWait)) << "the phone never got a final answer";
  EXPECT_EQ(timeout.Status(), 408) << timeout.text();
  SipText cancel;
  ASSERT_TRUE(backend_.WaitForRequest("CANCEL", cancel, kWait))
      << "the ringing INVITE was never cancelled";
  EXPECT_EQ(cancel.Header("Call-ID"), "inv-c");
  backend_.SendTo(udp_port_, MakeResponse(cancel, 200, "OK"));
  backend_.SendTo(udp_port_, MakeResponse(invite, 487, "Request Terminated"));
  EXPECT_TRUE(phone_.ExpectNoneWithin(IsStatus(487), absl::Milliseconds(300)))
      << "the late 487 must not reach the phone after the 408";
  EXPECT_EQ(proxy_->InFlight(), 0u);
  EXPECT_EQ(metrics::Registry::Default()
                .GetGauge("pushgate_proxy_transactions_in_flight",
                          "Proxied transactions waiting for the backend or the store.")
                .Value(),
            0.0);
}

// Records what the proxy hands to the call half and answers 486.
class RecordingCallHandler final : public sofia::CallHandler {
 public:
  explicit RecordingCallHandler(std::vector<std::string>* aors) : aors_(aors) {}
  void HandleIncoming(nta_incoming_t* irq, const sip_t*, const CallTarget& target) override {
    aors_->push_back(target.aor);
    EXPECT_FALSE(target.whole_aor) << "a masqueraded contact names one phone";
    EXPECT_EQ(target.device_tag.size(), 8u);
    nta_incoming_treply(irq, 486, "Busy Here", TAG_END());
    nta_incoming_destroy(irq);
  }
  bool IsOurRoute(const sip_t*) const override { return false; }
  void HandleInDialog(nta_incoming_t* irq, const sip_t*) override { nta_incoming_destroy(irq); }

 private:
  std::vector<std::string>* aors_;
};

TEST_F(RegisterRelayTest, ValidMasqueradedRequestGoesToTheCallHandler) {
  std::vector<std::string> aors;  // loop thread writes, read after a round trip
  bool got_agent = false;
  bool got_flows = false;
  proxy_->SetCallHandler([&](nta_agent_t* agent, const sofia::FlowLookup& flows) {
    got_agent = agent != nullptr;
    got_flows = static_cast<bool>(flows) && flows("unknown-token") == nullptr;
    return std::make_unique<RecordingCallHandler>(&aors);
  });
  EXPECT_TRUE(got_agent);
  EXPECT_TRUE(got_flows);
  std::optional<Uri> masked = RegisteredMaskedUri(ApnsContact(phone_.port()));
  ASSERT_TRUE(masked);
  backend_.SendTo(udp_port_, MakeRequest("INVITE", FormatUri(*masked), backend_.port(), "call-1"));
  SipText answer;
  ASSERT_TRUE(backend_.WaitForFinalOrRequest(answer, kWait)) << "the INVITE was never answered";
  EXPECT_EQ(answer.Status(), 486) << answer.text();
  std::vector<std::string> seen = loop_->Call([&] { return aors; });
  EXPECT_THAT(seen, ::testing::ElementsAre("sip:alice@example.org"));
}

// In-dialog requests routed by our Record-Route, with the real call half behind the proxy.
class InDialogTest : public RegisterRelayTest {
 protected:
  void SetUp() override {
    RegisterRelayTest::SetUp();
    proxy_->SetCallHandler([this](nta_agent_t* agent, sofia::FlowLookup flows) {
      sofia::CallRouterOptions co;
      co.record_route = absl::StrCat("sip:127.0.0.1:", udp_port_);
      co.route_secret = kSecret;
      co.fork.call_timeout = absl::Seconds(5);
      return std::make_unique<sofia::CallRouter>(*loop_, agent, *store_, nullptr, RealClock::Get(),
                                                 co, std::move(flows));
    });
  }

  std::string OurRoute(absl::string_view params = "") const {
    return absl::StrCat("Route: <sip:127.0.0.1:", udp_port_, params, ";lr>\r\n");
  }
  // `request` with `headers` inserted after its request line.
  static std::string With(const std::string& request, const std::string& headers) {
    size_t eol = request.find("\r\n") + 2;
    return request.substr(0, eol) + headers + request.substr(eol);
  }
};

TEST_F(InDialogTest, ForgedRouteDoesNotMakeUsAnOpenRelay) {
  UdpPeer victim;
  // Anyone can copy our Record-Route: a request "in dialog" toward an arbitrary host is refused.
  phone_.SendTo(udp_port_,
                With(MakeRequest("MESSAGE", absl::StrCat("sip:victim@127.0.0.1:", victim.port()),
                                 phone_.port(), "relay-1"),
                     OurRoute()));
  SipText refused = PhoneGets();
  EXPECT_EQ(refused.Status(), 403) << refused.text();
  EXPECT_EQ(refused.Reason(), "Relaying denied");
  // So is an address forged into our Route's phone parameter (it is signed).
  phone_.SendTo(udp_port_,
                With(MakeRequest("MESSAGE", "sip:victim@example.org", phone_.port(), "relay-2"),
                     OurRoute(";pga=AQIDBAUGBwgJCgsMDQ4PEBESExQVFhc")));
  EXPECT_EQ(PhoneGets().Status(), 403);
  EXPECT_TRUE(victim.ExpectNothingWithin(absl::Milliseconds(200))) << "relayed to the victim";
  // Toward the backend is what a phone's in-dialog request may do.
  phone_.SendTo(udp_port_,
                With(MakeRequest("MESSAGE", absl::StrCat("sip:bob@127.0.0.1:", backend_.port()),
                                 phone_.port(), "relay-3"),
                     OurRoute()));
  SipText at_backend;
  ASSERT_TRUE(backend_.WaitForFinalOrRequest(at_backend, kWait))
      << "the request toward the backend was not relayed";
  EXPECT_EQ(at_backend.Method(), "MESSAGE");
  backend_.SendTo(udp_port_, MakeResponse(at_backend, 200, "OK"));
  EXPECT_EQ(PhoneGets().Status(), 200);
}

TEST_F(InDialogTest, PhoneBehindNatGetsInDialogRequestsAtItsPublicAddress) {
  // The phone registers a private contact; its REGISTER comes from its public address (the
  // phone_ socket). The call reaches it there, and so must the BYE that follows.
  std::optional<Uri> masked = RegisteredMaskedUri("<sip:alice@10.255.0.7:5060>");
  ASSERT_TRUE(masked);
  backend_.SendTo(udp_port_,
                  MakeRequest("INVITE", FormatUri(*masked), backend_.port(), "nat-call"));
  SipText invite;
  ASSERT_TRUE(phone_.WaitForFinalOrRequest(invite, kWait))
      << "the INVITE never reached the phone's public address";
  ASSERT_EQ(invite.Method(), "INVITE");
  std::string rr = invite.Header("Record-Route");
  EXPECT_THAT(rr, HasSubstr(";pga=")) << invite.text();
  phone_.SendTo(udp_port_,
                MakeResponse(invite, 200, "OK", "Contact: <sip:alice@10.255.0.7:5060>\r\n"));
  SipText ok;
  ASSERT_TRUE(backend_.WaitForFinalOrRequest(ok, kWait));
  ASSERT_EQ(ok.Status(), 200) << ok.text();
  // The backend's BYE: request URI = the private contact, Route = our Record-Route.
  backend_.SendTo(udp_port_,
                  With(MakeRequest("BYE", "sip:alice@10.255.0.7:5060", backend_.port(), "nat-call"),
                       absl::StrCat("Route: ", rr, "\r\n")));
  SipText bye;
  ASSERT_TRUE(phone_.WaitForFinalOrRequest(bye, kWait))
      << "the BYE went to the private contact, not the phone";
  EXPECT_EQ(bye.Method(), "BYE");
  EXPECT_EQ(bye.RequestUri(), "sip:alice@10.255.0.7:5060");
  phone_.SendTo(udp_port_, MakeResponse(bye, 200, "OK"));
  SipText bye_ok;
  ASSERT_TRUE(backend_.WaitForFinalOrRequest(bye_ok, kWait));
  EXPECT_EQ(bye_ok.Status(), 200);
  // The phone's own BYE goes the other way (toward the backend), not back to itself.
  phone_.SendTo(udp_port_,
                With(MakeRequest("BYE", absl::StrCat("sip:bob@127.0.0.1:", backend_.port()),
                                 phone_.port(), "nat-call"),
                     absl::StrCat("Route: ", rr, "\r\n")));
  SipText phone_bye;
  ASSERT_TRUE(backend_.WaitForFinalOrRequest(phone_bye, kWait))
      << "the phone's BYE did not reach the backend";
  EXPECT_EQ(phone_bye.Method(), "BYE");
}

TEST_F(InDialogTest, TcpPhoneCallingOutGetsDoubleRecordRouteAndItsByeBack) {
  TcpPeer phone(tcp_port_);
  ASSERT_TRUE(phone.connected());
  std::string invite_text =
      MakeRequest("INVITE", "sip:bob@example.org", phone.local_port(), "out-1");
  invite_text.replace(invite_text.find("SIP/2.0/UDP"), 11, "SIP/2.0/TCP");
  phone.Send(invite_text);
  SipText invite;
  ASSERT_TRUE(backend_.WaitForFinalOrRequest(invite, kWait))
      << "the INVITE never reached the backend";
  // In over TCP, out over UDP: two entries of ours (RFC 5658), the UDP one on top.
  std::vector<std::string> rr = invite.Headers("Record-Route");
  ASSERT_EQ(rr.size(), 2u) << invite.text();
  EXPECT_THAT(rr[0], HasSubstr(absl::StrCat("sip:127.0.0.1:", udp_port_)));
  EXPECT_THAT(rr[1], HasSubstr(absl::StrCat(":", tcp_port_, ";transport=tcp")));
  backend_.SendTo(udp_port_, MakeResponse(invite, 200, "OK",
                                          "Contact: <sip:bob@127.0.0.1:9>\r\n"
                                          "Record-Route: " +
                                              rr[0] + "\r\nRecord-Route: " + rr[1] + "\r\n"));
  SipText ok;
  ASSERT_TRUE(phone.WaitForMessage(ok, kWait)) << "the 200 never reached the phone";
  EXPECT_EQ(ok.Status(), 200);
  // The callee hangs up: its BYE follows the route set (both our entries) to the phone's
  // connection, whatever the phone's contact says.
  backend_.SendTo(udp_port_,
                  With(MakeRequest("BYE", "sip:alice@192.0.2.200:5060", backend_.port(), "out-1"),
                       absl::StrCat("Route: ", rr[0], "\r\nRoute: ", rr[1], "\r\n")));
  SipText bye;
  ASSERT_TRUE(phone.WaitForMessage(bye, kWait))
      << "the BYE never reached the phone over its connection";
  EXPECT_EQ(bye.Method(), "BYE") << bye.text();
  EXPECT_TRUE(bye.Headers("Route").empty())
      << "our Route entries were not consumed: " << bye.text();
}

// Hostile input (issue 13): every message is validated before any handler.

// A request from the phone with `headers` (each line ending in CRLF) between the mandatory ones.
std::string RawRequest(absl::string_view method, absl::string_view uri, uint16_t via_port,
                       absl::string_view call_id, absl::string_view extra,
                       absl::string_view via_params = "", absl::string_view body = "",
                       int content_length = -1) {
  return absl::StrCat(
      method, " ", uri, " SIP/2.0\r\n", "Via: SIP/2.0/UDP 127.0.0.1:", via_port, ";branch=z9hG4bK-",
      call_id, via_params, "\r\n", "From: <sip:alice@example.org>;tag=f1\r\n",
      "To: <sip:alice@example.org>\r\n", "Call-ID: ", call_id, "\r\n", "CSeq: 1 ", method, "\r\n",
      "Contact: <sip:alice@127.0.0.1:", via_port, ">\r\n", extra,
      "Content-Length: ", content_length >= 0 ? content_length : body.size(), "\r\n\r\n", body);
}

TEST_F(RegisterRelayTest, DuplicateMaxForwardsRegisterGets400NamingIt) {
  // Used to crash (SIGSEGV): the register relay read the duplicate as an error header.
  phone_.SendTo(udp_port_, RawRequest("REGISTER", "sip:example.org", phone_.port(), "dup-mf",
                                      "Max-Forwards: 70\r\nMax-Forwards: 69\r\nExpires: 600\r\n"));
  SipText answer = PhoneGets();
  EXPECT_EQ(answer.Status(), 400) << answer.text();
  EXPECT_EQ(answer.Reason(), "Duplicate Max-Forwards");
  EXPECT_TRUE(backend_.ExpectNothingWithin(absl::Milliseconds(100)));
}

TEST_F(RegisterRelayTest, TripleUserAgentIsAnsweredNotRelayed) {
  // Used to abort in msg_serialize (assertion !msg_is_single(h)) when relayed.
  phone_.SendTo(
      udp_port_,
      RawRequest("OPTIONS", "sip:bob@example.org", phone_.port(), "ua3",
                 "Max-Forwards: 70\r\nUser-Agent: a\r\nUser-Agent: b\r\nUser-Agent: c\r\n"));
  SipText answer = PhoneGets();
  EXPECT_EQ(answer.Status(), 400) << answer.text();
  EXPECT_EQ(answer.Reason(), "Duplicate User-Agent");
  EXPECT_TRUE(backend_.ExpectNothingWithin(absl::Milliseconds(100)));
  // Twice plus a malformed header: the same answer.
  phone_.SendTo(udp_port_, RawRequest("OPTIONS", "sip:bob@example.org", phone_.port(), "ua2",
                                      "Max-Forwards: 70\r\nUser-Agent: a\r\nUser-Agent: b\r\n"
                                      "Date: not a date\r\n"));
  EXPECT_EQ(PhoneGets().Reason(), "Duplicate User-Agent");
}

TEST_F(RegisterRelayTest, BackendResponseWithDuplicateHeadersIsNotRelayed) {
  // The backend's (or a caller's through it) response with three User-Agent lines used to abort
  // the proxy when relayed; it is dropped and the phone gets our own answer.
  SipText at_backend = ForwardedToBackend(RawRequest(
      "OPTIONS", "sip:bob@example.org", phone_.port(), "resp-ua3", "Max-Forwards: 70\r\n"));
  backend_.SendTo(udp_port_, MakeResponse(at_backend, 200, "OK",
                                          "User-Agent: a\r\nUser-Agent: b\r\nUser-Agent: c\r\n"));
  SipText answer = PhoneGets();
  EXPECT_NE(answer.Status(), 200) << answer.text();
  EXPECT_TRUE(answer.Headers("User-Agent").size() <= 1u) << answer.text();
  // Still alive: a valid request goes through.
  SipText again = ForwardedToBackend(RawRequest("OPTIONS", "sip:bob@example.org", phone_.port(),
                                                "resp-ok", "Max-Forwards: 70\r\n"));
  EXPECT_EQ(again.Method(), "OPTIONS");
}

TEST_F(RegisterRelayTest, BackendRequestWithDuplicateHeadersIsAnswered) {
  backend_.SendTo(udp_port_,
                  RawRequest("INVITE", "sip:alice@example.org", backend_.port(), "be-dup",
                             "Max-Forwards: 70\r\nUser-Agent: a\r\n"
                             "User-Agent: b\r\nUser-Agent: c\r\n"));
  SipText answer;
  ASSERT_TRUE(backend_.WaitForFinalOrRequest(answer, kWait)) << "the backend never got an answer";
  EXPECT_EQ(answer.Status(), 400) << answer.text();
  EXPECT_EQ(answer.Reason(), "Duplicate User-Agent");
}

TEST_F(RegisterRelayTest, ExpiresBeyond32BitsIsRefusedNotADeregistration) {
  // 4294967296 used to wrap to 0 and remove the binding.
  phone_.SendTo(udp_port_, RawRequest("REGISTER", "sip:example.org", phone_.port(), "exp-big",
                                      "Max-Forwards: 70\r\nExpires: 4294967296\r\n"));
  SipText answer = PhoneGets();
  EXPECT_EQ(answer.Status(), 400) << answer.text();
  EXPECT_EQ(answer.Reason(), "Bad Expires");
  EXPECT_TRUE(backend_.ExpectNothingWithin(absl::Milliseconds(100)));

  std::string reg =
      RawRequest("REGISTER", "sip:example.org", phone_.port(), "exp-param", "Max-Forwards: 70\r\n");
  absl::StrReplaceAll({{">\r\nMax-Forwards", ">;expires=4294967296\r\nMax-Forwards"}}, &reg);
  phone_.SendTo(udp_port_, reg);
  answer = PhoneGets();
  EXPECT_EQ(answer.Status(), 400) << answer.text();
  EXPECT_EQ(answer.Reason(), "Bad Contact expires");
  EXPECT_TRUE(backend_.ExpectNothingWithin(absl::Milliseconds(100)));
}

TEST_F(RegisterRelayTest, NegativeMaxForwardsIsNotForwarded) {
  phone_.SendTo(udp_port_, RawRequest("OPTIONS", "sip:bob@example.org", phone_.port(), "mf-neg",
                                      "Max-Forwards: -1\r\n"));
  SipText answer = PhoneGets();
  EXPECT_EQ(answer.Status(), 400) << answer.text();
  EXPECT_EQ(answer.Reason(), "Bad Max-Forwards");
  EXPECT_TRUE(backend_.ExpectNothingWithin(absl::Milliseconds(100)));
  // Max-Forwards 0 stays 483.
  phone_.SendTo(udp_port_, RawRequest("OPTIONS", "sip:bob@example.org", phone_.port(), "mf-0",
                                      "Max-Forwards: 0\r\n"));
  EXPECT_EQ(PhoneGets().Status(), 483);
}

// A Via maddr from a phone (anyone but the trusted backend) must not aim the proxy's responses
// at a third party (reflection): the Via names the victim's port and maddr its host; the answer
// goes to where the request came from (received/rport), never to the victim.
TEST_F(RegisterRelayTest, ViaMaddrFromAPhoneIsIgnored) {
  UdpPeer victim;
  const std::string maddr = ";rport;maddr=127.0.0.1";
  // Answered by the proxy itself (400).
  phone_.SendTo(udp_port_, RawRequest("REGISTER", "sip:example.org", victim.port(), "maddr-local",
                                      "Max-Forwards: 70\r\nMax-Forwards: 69\r\n", maddr));
  SipText local = PhoneGets();
  EXPECT_EQ(local.Status(), 400) << local.text();
  // Relayed: the backend's 200 goes back to the phone.
  SipText at_backend =
      ForwardedToBackend(RawRequest("OPTIONS", "sip:bob@example.org", victim.port(),
                                    "maddr-relayed", "Max-Forwards: 70\r\n", maddr));
  backend_.SendTo(udp_port_, MakeResponse(at_backend, 200, "OK"));
  SipText relayed = PhoneGets();
  EXPECT_EQ(relayed.Status(), 200) << relayed.text();
  EXPECT_TRUE(victim.ExpectNothingWithin(absl::Milliseconds(200)));
}

}  // namespace
// ---------------------------------------------------------------------------------------------
// Transport limits

// A raw TCP connection to 127.0.0.1:`port` (-1 on failure).
int ConnectTcp(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd >= 0 && connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// True when the peer closed `fd` within `timeout` (whatever it sent before is skipped).
bool ClosedWithin(int fd, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  char buf[4096];
  while (absl::Now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    int ms = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now())) + 1;
    if (poll(&p, 1, ms) <= 0) continue;
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) return true;
  }
  return false;
}

// An OPTIONS of about `size` bytes (a long Subject pads it).
std::string LargeOptions(uint16_t via_port, const std::string& transport, size_t size,
                         const std::string& call_id = "big-1") {
  std::string text = MakeRequest("OPTIONS", "sip:bob@example.org", via_port, call_id);
  if (transport != "UDP") absl::StrReplaceAll({{"SIP/2.0/UDP", "SIP/2.0/" + transport}}, &text);
  const size_t head = text.find("\r\n") + 2;
  text.insert(head, absl::StrCat("Subject: ", std::string(size - text.size(), 'x'), "\r\n"));
  return text;
}

// sofia asserts (aborts) on a UDP datagram above its maximum size, so the limit never goes below
// 64 KiB, above any datagram: it bounds TCP/TLS messages.
TEST_F(RegisterRelayTest, TcpMessageAboveTheMaximumSizeIsRefused) {
  RestartProxy([](sofia::SipProxyOptions& o) { o.max_message_size = size_t{64} * 1024; });
  // The largest datagram is below the limit: handled (here: relayed), no abort.
  phone_.SendTo(udp_port_, LargeOptions(phone_.port(), "UDP", 65000));
  SipText big;
  ASSERT_TRUE(backend_.WaitForRequest("OPTIONS", big, kWait)) << "a 65000-byte datagram is fine";
  TcpPeer tcp(tcp_port_);
  ASSERT_TRUE(tcp.connected());
  tcp.Send(LargeOptions(tcp.local_port(), "TCP", size_t{80} * 1024, "big-tcp"));
  SipText answer;
  const bool answered = tcp.WaitFor(IsFinal(), answer, absl::Seconds(2));
  EXPECT_TRUE(!answered || answer.Status() == 413) << answer.text();
  const SipMatch tcp_options{"the TCP OPTIONS",
                             [](const SipText& t) { return t.Header("Call-ID") == "big-tcp"; }};
  EXPECT_TRUE(backend_.ExpectNoneWithin(tcp_options, absl::Milliseconds(300)));
  // Still serving.
  phone_.SendTo(udp_port_, LargeOptions(phone_.port(), "UDP", 500, "small"));
  SipText small;
  const SipMatch small_options{"the small OPTIONS",
                               [](const SipText& t) { return t.Header("Call-ID") == "small"; }};
  EXPECT_TRUE(backend_.WaitFor(small_options, small, kWait)) << "the proxy stopped serving";
}

TEST_F(RegisterRelayTest, IdleConnectionIsClosedAfterTheIdleTimeout) {
  RestartProxy(
      [](sofia::SipProxyOptions& o) { o.connection_idle_timeout = absl::Milliseconds(300); });
  int fd = ConnectTcp(tcp_port_);
  ASSERT_GE(fd, 0);
  const std::string ping = "\r\n\r\n";
  ASSERT_EQ(send(fd, ping.data(), ping.size(), 0), 4);
  EXPECT_TRUE(ClosedWithin(fd, absl::Seconds(3))) << "an idle connection was kept";
  close(fd);
}

// The idle timeout is for connections without a registered flow: a phone's registered
// connection stays open while its registration lasts, and its CRLF keep-alives (RFC 5626
// 4.4.1) are answered with a CRLF pong.
TEST_F(RegisterRelayTest, RegisteredFlowOutlivesTheIdleTimeoutAndGetsPongs) {
  RestartProxy(
      [](sofia::SipProxyOptions& o) { o.connection_idle_timeout = absl::Milliseconds(300); });
  int fd = ConnectTcp(tcp_port_);
  ASSERT_GE(fd, 0);
  sockaddr_in local{};
  socklen_t len = sizeof(local);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len), 0);
  RegisterSpec spec;
  spec.transport = "TCP";
  spec.via_port = ntohs(local.sin_port);
  spec.contacts = {absl::StrCat("<sip:alice@127.0.0.1:", spec.via_port,
                                ";transport=tcp;pn-provider=apns;pn-prid=", kToken,
                                ";pn-param=ABCD123456.org.example.phone.voip>")};
  const std::string reg = MakeRegister(spec);
  ASSERT_EQ(send(fd, reg.data(), reg.size(), 0), static_cast<ssize_t>(reg.size()));
  SipText at_backend;
  ASSERT_TRUE(backend_.WaitForFinalOrRequest(at_backend, kWait));
  BackendAccepts(at_backend, 300);
  // Reads what arrives within `window` (until the peer closes).
  auto read_for = [fd](absl::Duration window) {
    std::string got;
    const absl::Time deadline = absl::Now() + window;
    char buf[4096];
    while (absl::Now() < deadline) {
      pollfd p{fd, POLLIN, 0};
      int ms = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now())) + 1;
      if (poll(&p, 1, ms) <= 0) continue;
      ssize_t n = recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) return got + "<closed>";
      got.append(buf, static_cast<size_t>(n));
    }
    return got;
  };
  std::string answer = read_for(absl::Milliseconds(500));
  ASSERT_THAT(answer, HasSubstr("SIP/2.0 200 ")) << answer;
  // Three times the idle timeout, silent: still open.
  EXPECT_THAT(read_for(absl::Milliseconds(900)), Not(HasSubstr("<closed>")))
      << "the registered flow was closed as idle";
  const std::string ping = "\r\n\r\n";
  ASSERT_EQ(send(fd, ping.data(), ping.size(), 0), 4);
  EXPECT_EQ(read_for(absl::Milliseconds(300)), "\r\n") << "no pong to the keep-alive";
  close(fd);
}

TEST_F(RegisterRelayTest, HalfSentMessageClosesItsConnectionAfterTheDeadline) {
  RestartProxy([](sofia::SipProxyOptions& o) {
    o.connection_idle_timeout = absl::ZeroDuration();  // only the message deadline applies
    o.message_timeout = absl::Milliseconds(300);
  });
  int fd = ConnectTcp(tcp_port_);
  ASSERT_GE(fd, 0);
  const std::string part = "OPTIONS sip:bob@example.org SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1";
  ASSERT_EQ(send(fd, part.data(), part.size(), 0), static_cast<ssize_t>(part.size()));
  EXPECT_TRUE(ClosedWithin(fd, absl::Seconds(3))) << "a half-sent message's connection was kept";
  close(fd);
}

// Per-source rate limit (pike): the phone's fourth request within the window gets 503 with
// Retry-After and never reaches the backend; the backend (trusted) is never limited.
TEST_F(RegisterRelayTest, SourceOverItsBudgetGets503AndTheBackendIsExempt) {
  RestartProxy([](sofia::SipProxyOptions& o) {
    o.rate_limit.requests = 3;
    o.rate_limit.window = absl::Seconds(30);
  });
  for (int i = 0; i < 3; ++i) {
    phone_.SendTo(udp_port_, MakeRequest("OPTIONS", "sip:bob@example.org", phone_.port(),
                                         absl::StrCat("rl-", i)));
    SipText at_backend;
    ASSERT_TRUE(backend_.WaitForRequest("OPTIONS", at_backend, kWait)) << i;
    backend_.SendTo(udp_port_, MakeResponse(at_backend, 200, "OK"));
    SipText ok;
    ASSERT_TRUE(phone_.WaitFor(IsFinal(), ok, kWait)) << i;
    EXPECT_EQ(ok.Status(), 200) << ok.text();
  }
  phone_.SendTo(udp_port_, MakeRequest("OPTIONS", "sip:bob@example.org", phone_.port(), "rl-3"));
  SipText limited;
  ASSERT_TRUE(phone_.WaitFor(IsFinal(), limited, kWait));
  EXPECT_EQ(limited.Status(), 503) << limited.text();
  EXPECT_FALSE(limited.Header("Retry-After").empty()) << limited.text();
  EXPECT_TRUE(backend_.ExpectNoneWithin(IsRequest("OPTIONS"), absl::Milliseconds(300)));
  // The backend's requests (without a masquerade value: 404) are answered, never 503.
  for (int i = 0; i < 6; ++i) {
    backend_.SendTo(udp_port_, MakeRequest("OPTIONS", "sip:nobody@example.org", backend_.port(),
                                           absl::StrCat("be-", i)));
    SipText answer;
    ASSERT_TRUE(backend_.WaitFor(IsFinal(), answer, kWait)) << i;
    EXPECT_NE(answer.Status(), 503) << answer.text();
  }
}

}  // namespace pushgate::proxy::testing
