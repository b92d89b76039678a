// Fork late across replicas: two gateway replicas (each a SofiaLoop with SipProxy + CallRouter and
// its own RedisBindingStore) share one real redis-server started by the test; pushes go through
// the real pusher to the APNs emulator. The replica that holds a call's fork hears of the phone's
// new registration through Redis pub/sub when the phone registers through the other replica.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <functional>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/clock.h"
#include "proxy/push/grpc_push_client.h"
#include "proxy/sofia/call_router.h"
#include "proxy/sofia/loop.h"
#include "proxy/sofia/sip_proxy.h"
#include "proxy/sofia/su_event_loop.h"
#include "proxy/store/redis_binding_store.h"
#include "pusher/emulator/emulator.h"
#include "pusher/service/server.h"
#include "tests/integration/calls/calls_support.h"
#include "tests/integration/proxy/eventually.h"
#include "tests/integration/proxy/sip_peer.h"
#include "tests/unit/proxy/store/redis_test_server.h"

namespace pushgate::proxy::sofia {
namespace {

using testing::Eventually;
using testing::MakeResponse;
using testing::SipText;
using testing::UdpPeer;
namespace emu = pusher::emulator;
using namespace calls_test;  // NOLINT(google-build-using-namespace): test helpers

constexpr char kSecret[] = "0123456789abcdef0123456789abcdef";
constexpr char kInstance[] = "<urn:uuid:00000000-0000-0000-0000-00000000ab01>";
const std::string kToken(64, 'c');

std::string Request(const std::string& method, const std::string& request_uri, int cseq,
                    const std::string& call_id, const std::string& to, uint16_t via_port,
                    const std::string& branch, const std::string& extra = "") {
  return absl::StrCat(method, " ", request_uri, " SIP/2.0\r\n",
                      "Via: SIP/2.0/UDP 127.0.0.1:", via_port, ";branch=", branch, ";rport\r\n",
                      "Max-Forwards: 70\r\n", "From: <sip:bob@example.org>;tag=caller-1\r\n",
                      "To: ", to, "\r\n", "Call-ID: ", call_id, "\r\n", "CSeq: ", cseq, " ", method,
                      "\r\n", extra, "Content-Length: 0\r\n\r\n");
}

class ReplicasTest : public ::testing::Test {
 protected:
  struct Replica {
    std::unique_ptr<SofiaLoop> loop;
    std::unique_ptr<SuEventLoop> events;
    std::unique_ptr<RedisBindingStore> store;
    std::unique_ptr<GrpcPushClient> push;
    std::unique_ptr<SipProxy> proxy;
    uint16_t port = 0;
  };

  void SetUp() override {
    ASSERT_TRUE(redis_.Start().ok()) << "redis-server did not start (is it installed?)";
    auto ports = emulator_.Start(EmulatorWithTestCredentials());
    ASSERT_TRUE(ports.ok()) << ports.status();
    pusher::PusherConfig cfg = PusherForEmulator(ports->h2);
    auto server = pusher::PusherServer::Create(cfg, RealClock::Get());
    ASSERT_TRUE(server.ok()) << server.status();
    pusher_ = *std::move(server);
    auto port = pusher_->Start();
    ASSERT_TRUE(port.ok()) << port.status();
    pusher_port_ = *port;
  }

  void TearDown() override {
    for (Replica* r : {&a_, &b_}) {
      r->proxy.reset();  // its CallRouter first
      if (r->loop) {
        r->loop->Call([&] {
          r->store.reset();
          r->events.reset();
          return 0;
        });
      }
      if (r->push) r->push->Drain(absl::Seconds(2));
      r->push.reset();
      if (r->loop) r->loop->Stop();
    }
    if (pusher_) pusher_->Shutdown(absl::Seconds(2));
    emulator_.Stop();
  }

  // One gateway replica on its own loop, sharing the Redis registrar, the masquerade secret, the
  // backend and the pusher with the other.
  void StartReplica(Replica& r) {
    auto loop = SofiaLoop::Start();
    ASSERT_TRUE(loop.ok()) << loop.status();
    r.loop = *std::move(loop);
    RedisStoreConfig rc;
    rc.address = redis_.address();
    rc.key_prefix = "replicas-test:";
    absl::Status created = r.loop->Call([&]() -> absl::Status {
      r.events = std::make_unique<SuEventLoop>(*r.loop);
      auto store = RedisBindingStore::Create(*r.events, rc);
      if (!store.ok()) return store.status();
      r.store = *std::move(store);
      return absl::OkStatus();
    });
    ASSERT_TRUE(created.ok()) << created;
    SipProxyOptions options;
    options.listen = {{Transport::kUdp, "127.0.0.1", 0}};
    options.backend_uri = absl::StrCat("sip:127.0.0.1:", backend_.port());
    options.masquerade_secret = kSecret;
    options.registrar.min_expires = absl::Seconds(60);
    auto proxy = SipProxy::Create(*r.loop, options, *r.store, RealClock::Get());
    ASSERT_TRUE(proxy.ok()) << proxy.status();
    r.proxy = *std::move(proxy);
    r.port = r.proxy->Listening().at(0).port;
    GrpcPushClientOptions po;
    po.target = absl::StrCat("dns:///127.0.0.1:", pusher_port_);
    SofiaLoop* lp = r.loop.get();
    r.push = std::make_unique<GrpcPushClient>(
        po, [lp](std::function<void()> fn) { lp->Post(std::move(fn)); });
    CallRouterOptions co;
    co.fork.call_timeout = absl::Seconds(10);
    co.record_route = absl::StrCat("sip:127.0.0.1:", r.port);
    co.linger = absl::Seconds(2);
    PushClient* push = r.push.get();
    RedisBindingStore* store = r.store.get();
    r.proxy->SetCallHandler([lp, store, push, co](nta_agent_t* agent, FlowLookup flows) {
      return std::make_unique<CallRouter>(*lp, agent, *store, push, RealClock::Get(), co,
                                          std::move(flows));
    });
    // Registrations published before the subscriber connection is up would be missed.
    ASSERT_TRUE(Eventually(
        [&] { return r.loop->Call([&] { return r.store->connected() && r.store->listening(); }); },
        kWait, "a replica's Redis store connecting and subscribing",
        [&] {
          return r.loop->Call([&] {
            return absl::StrCat("connected=", r.store->connected(),
                                " listening=", r.store->listening());
          });
        }));
  }

  // `phone` registers through `replica` (the backend accepts); returns the masqueraded contact
  // the backend stored.
  std::string Register(UdpPeer& phone, const Replica& replica, int cseq) {
    testing::RegisterSpec spec;
    spec.via_port = phone.port();
    spec.cseq = cseq;
    spec.call_id = absl::StrCat("reg-", phone.port());
    spec.contacts = {absl::StrCat("<sip:alice@127.0.0.1:", phone.port(),
                                  ";pn-provider=apns;pn-prid=", kToken, ";pn-param=", kTeam, ".",
                                  kBundle, ".voip>;+sip.instance=\"", kInstance, "\"")};
    phone.SendTo(replica.port, testing::MakeRegister(spec));
    uint16_t from = 0;
    SipText reg;
    if (::testing::AssertionResult r = WaitFor(backend_, IsRequest("REGISTER"), reg, &from); !r) {
      ADD_FAILURE() << "the backend never got the REGISTER: " << r.message();
      return "";
    }
    EXPECT_EQ(from, replica.port) << "the REGISTER did not come from the replica it went through";
    std::string contacts;
    for (const std::string& c : reg.Headers("Contact")) {
      absl::StrAppend(&contacts, "Contact: ", c, "\r\n");
    }
    backend_.SendTo(replica.port, MakeResponse(reg, 200, "OK", contacts));
    EXPECT_TRUE(WaitFor(phone, IsStatus(200))) << "the phone's REGISTER got no 200";
    std::string contact = reg.Header("Contact");
    size_t lt = contact.find('<'), gt = contact.find('>');
    return contact.substr(lt + 1, gt - lt - 1);
  }

  testing::RedisTestServer redis_;
  emu::Emulator emulator_;
  std::unique_ptr<pusher::PusherServer> pusher_;
  int pusher_port_ = 0;
  UdpPeer backend_;
  Replica a_, b_;
};

// The call reaches replica A, which holds the fork while the phone sleeps and pushes it; the
// phone wakes up and registers through replica B; A hears of it through Redis and sends the
// INVITE to the new contact itself; the call completes through A (200, ACK, BYE).
TEST_F(ReplicasTest, RegistrationThroughOtherReplicaDeliversTheHeldFork) {
  StartReplica(a_);
  StartReplica(b_);
  UdpPeer sleeping, awake;
  std::string masqueraded = Register(sleeping, a_, 1);
  ASSERT_THAT(masqueraded, ::testing::HasSubstr("pgw="));

  const std::string call_id = "replicas-1@example.org";
  backend_.SendTo(a_.port, Request("INVITE", masqueraded, 1, call_id, "<sip:alice@example.org>",
                                   backend_.port(), "z9hG4bK-rep-inv"));
  uint16_t from = 0;
  SipText first;
  ASSERT_TRUE(WaitFor(sleeping, IsRequest("INVITE"), first, &from))
      << "replica A never tried the registered (sleeping) contact";
  EXPECT_EQ(from, a_.port);
  ASSERT_TRUE(WaitForPushes(emulator_, 1, kWait)) << "replica A never pushed the sleeping phone";

  // The phone wakes up; its REGISTER lands on replica B.
  Register(awake, b_, 2);
  SipText invite;
  ASSERT_TRUE(WaitFor(awake, IsRequest("INVITE"), invite, &from))
      << "the woken phone never got the INVITE held by replica A";
  EXPECT_EQ(from, a_.port) << "the INVITE must come from the replica holding the fork";
  EXPECT_EQ(invite.Header("Call-ID"), call_id);
  EXPECT_THAT(invite.RequestUri(), ::testing::HasSubstr(absl::StrCat(":", awake.port())));
  EXPECT_THAT(invite.Header("Record-Route"), ::testing::HasSubstr(absl::StrCat(":", a_.port)));

  std::string contact = absl::StrCat("Contact: <sip:alice@127.0.0.1:", awake.port(),
                                     ">\r\nRecord-Route: ", invite.Header("Record-Route"), "\r\n");
  awake.SendTo(a_.port, MakeResponse(invite, 200, "OK", contact, "ph-rep"));
  SipText ok;
  ASSERT_TRUE(WaitFor(backend_, IsFinal(), ok, &from))
      << "the caller (backend) never got the final response";
  EXPECT_EQ(ok.Status(), 200) << ok.text();
  EXPECT_EQ(from, a_.port);

  std::string route = absl::StrCat("Route: ", ok.Header("Record-Route"), "\r\n");
  std::string phone_uri = absl::StrCat("sip:alice@127.0.0.1:", awake.port());
  backend_.SendTo(a_.port, Request("ACK", phone_uri, 1, call_id, ok.Header("To"), backend_.port(),
                                   "z9hG4bK-rep-ack", route));
  ASSERT_TRUE(WaitFor(awake, IsRequest("ACK"))) << "the ACK never reached the phone";
  backend_.SendTo(a_.port, Request("BYE", phone_uri, 2, call_id, ok.Header("To"), backend_.port(),
                                   "z9hG4bK-rep-bye", route));
  SipText bye;
  ASSERT_TRUE(WaitFor(awake, IsRequest("BYE"), bye)) << "the BYE never reached the phone";
  awake.SendTo(a_.port, MakeResponse(bye, 200, "OK", "", "ph-rep"));
  SipText bye_ok;
  ASSERT_TRUE(WaitFor(backend_, IsFinal(), bye_ok)) << "the BYE's 200 never came back";
  EXPECT_EQ(bye_ok.Status(), 200);
  // Only one push: the phone registered, the fork stopped pushing.
  EXPECT_EQ(emulator_.Received().size(), 1u);
}

// The caller gives up while the VoIP phone sleeps (fork on A); the phone then registers through
// B: A still sends it the INVITE, then the CANCEL once the phone's 180 arrived (RFC 3261 9.1),
// so CallKit can show the missed call.
TEST_F(ReplicasTest, CancelledCallReachesPhoneRegisteringThroughOtherReplica) {
  StartReplica(a_);
  StartReplica(b_);
  UdpPeer sleeping, awake;
  std::string masqueraded = Register(sleeping, a_, 1);
  const std::string call_id = "replicas-cancel@example.org";
  const std::string branch = "z9hG4bK-rep-cancel";
  backend_.SendTo(a_.port, Request("INVITE", masqueraded, 1, call_id, "<sip:alice@example.org>",
                                   backend_.port(), branch));
  ASSERT_TRUE(WaitFor(sleeping, IsRequest("INVITE"))) << "replica A never tried the sleeping phone";
  ASSERT_TRUE(WaitForPushes(emulator_, 1, kWait)) << "replica A never pushed the sleeping phone";
  backend_.SendTo(a_.port, Request("CANCEL", masqueraded, 1, call_id, "<sip:alice@example.org>",
                                   backend_.port(), branch));
  ASSERT_TRUE(WaitFor(backend_, IsStatus(487)))
      << "the caller's CANCEL did not end the call with 487";

  Register(awake, b_, 2);
  uint16_t from = 0;
  SipText invite;
  ASSERT_TRUE(WaitFor(awake, IsRequest("INVITE"), invite, &from))
      << "the woken VoIP phone never got the missed call's INVITE";
  EXPECT_EQ(from, a_.port);
  EXPECT_EQ(invite.Header("Call-ID"), call_id);
  EXPECT_TRUE(ExpectNone(awake, IsRequest("CANCEL"), absl::Milliseconds(300)))
      << "the CANCEL must wait for the phone's provisional response (RFC 3261 9.1)";
  awake.SendTo(a_.port, MakeResponse(invite, 180, "Ringing", "", "ph-miss"));
  SipText cancel;
  ASSERT_TRUE(WaitFor(awake, IsRequest("CANCEL"), cancel, &from))
      << "the woken VoIP phone never got the CANCEL after the INVITE";
  EXPECT_EQ(from, a_.port);
  EXPECT_EQ(cancel.Header("Call-ID"), call_id);
}

}  // namespace
}  // namespace pushgate::proxy::sofia
