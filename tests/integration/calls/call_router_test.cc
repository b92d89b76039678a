// Incoming calls on loopback: a real nta agent with CallRouter, scripted phones and caller (UDP),
// the MemoryBindingStore, and pushes through the real pusher (gRPC) to the APNs emulator (TLS,
// HTTP/2). The agent's request dispatch here stands in for SipProxy's (which restores the AOR
// from the masquerade value before calling HandleIncoming).
#include "proxy/sofia/call_router.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sofia-sip/nta.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/su_tag.h>
#include <sofia-sip/tport.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <functional>
#include <memory>
#include <set>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "proxy/core/push_params.h"
#include "proxy/core/sip_uri.h"
#include "proxy/push/grpc_push_client.h"
#include "proxy/sofia/flow_table.h"
#include "proxy/sofia/loop.h"
#include "proxy/sofia/sip_proxy.h"
#include "proxy/store/memory_binding_store.h"
#include "pusher/emulator/emulator.h"
#include "pusher/service/server.h"
#include "tests/integration/calls/calls_support.h"
#include "tests/integration/proxy/eventually.h"
#include "tests/integration/proxy/sip_peer.h"

namespace pushgate::proxy::sofia {
namespace {

using testing::Eventually;
using testing::MakeResponse;
using testing::SipText;
using testing::UdpPeer;
namespace emu = pusher::emulator;
using namespace calls_test;  // NOLINT(google-build-using-namespace): test helpers

constexpr char kAor[] = "sip:alice@example.org";
const std::string kToken(64, 'b');

// A port nothing listens on (TCP): the pusher-down case.
// Fails the test (and returns 0) when no port could be taken.
uint16_t ClosedPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) {
    ADD_FAILURE() << "ClosedPort: socket failed";
    return 0;
  }
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
                  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0;
  close(fd);
  if (!ok) {
    ADD_FAILURE() << "ClosedPort: could not bind a loopback TCP port";
    return 0;
  }
  return ntohs(a.sin_port);
}

uint64_t PushCount(const std::string& result) {
  return metrics::Registry::Default()
      .GetCounter("pushgate_proxy_call_pushes_total", "", {{"result", result}})
      .Value();
}

// The caller's INVITE (or another request of the same dialog).
struct Dialog {
  std::string call_id;
  std::string from_tag;
  std::string to;  // To header value (with the callee's tag once answered)
  std::string via_branch;
  std::string request_uri;
};

std::string Request(const std::string& method, const std::string& request_uri, int cseq,
                    const Dialog& d, uint16_t via_port, const std::string& via_branch,
                    const std::string& extra = "") {
  return absl::StrCat(method, " ", request_uri, " SIP/2.0\r\n",
                      "Via: SIP/2.0/UDP 127.0.0.1:", via_port, ";branch=", via_branch, ";rport\r\n",
                      "Max-Forwards: 70\r\n",
                      "From: \"Bob\" <sip:bob@example.org>;tag=", d.from_tag, "\r\n", "To: ", d.to,
                      "\r\n", "Call-ID: ", d.call_id, "\r\n", "CSeq: ", cseq, " ", method, "\r\n",
                      extra, "Content-Length: 0\r\n\r\n");
}

// A phone without push parameters (reached by its contact only) at 127.0.0.1:`port`.
Binding PlainPhone(uint16_t port) {
  Binding b;
  b.aor = kAor;
  b.contact = *ParseUri(absl::StrCat("sip:alice@127.0.0.1:", port));
  b.instance_id = absl::StrCat("<urn:uuid:00000000-0000-0000-0000-0000000", port, ">");
  b.received = TransportInfo{Transport::kUdp, "127.0.0.1", port};
  b.expires_at = absl::Now() + absl::Hours(1);
  b.call_id = absl::StrCat("reg-", port);
  b.cseq = 1;
  return b;
}

class CallsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ports = emulator_.Start(EmulatorWithTestCredentials());
    ASSERT_TRUE(ports.ok()) << ports.status();
    pusher::PusherConfig cfg = PusherForEmulator(ports->h2);
    cfg.retry.initial_backoff = absl::Milliseconds(20);
    cfg.retry.max_backoff = absl::Milliseconds(200);
    auto server = pusher::PusherServer::Create(cfg, RealClock::Get());
    ASSERT_TRUE(server.ok()) << server.status();
    pusher_ = *std::move(server);
    auto port = pusher_->Start();
    ASSERT_TRUE(port.ok()) << port.status();
    pusher_port_ = *port;
    auto loop = SofiaLoop::Start();
    ASSERT_TRUE(loop.ok()) << loop.status();
    loop_ = *std::move(loop);
  }

  // Starts the agent and the router; pushes go to `push_target` (the real pusher by default).
  void StartRouter(std::string push_target = "", ForkPolicy policy = DefaultPolicy()) {
    if (push_target.empty()) push_target = absl::StrCat("dns:///127.0.0.1:", pusher_port_);
    GrpcPushClientOptions po;
    po.target = push_target;
    SofiaLoop* loop = loop_.get();
    push_ = std::make_unique<GrpcPushClient>(
        po, [loop](std::function<void()> fn) { loop->Post(std::move(fn)); });
    bool ok = loop_->Call([&] {
      agent_ = nta_agent_create(loop_->root(), URL_STRING_MAKE("sip:127.0.0.1:*;transport=udp"),
                                &CallsTest::OnStray, nullptr, NTATAG_UA(0), NTATAG_SIP_T1(100),
                                NTATAG_SERVER_RPORT(1), NTATAG_CLIENT_RPORT(1), NTATAG_EXTRA_100(0),
                                NTATAG_CANCEL_487(0), NTATAG_PASS_408(1), TAG_END());
      if (agent_ == nullptr) return false;
      const su_addrinfo_t* ai = tport_get_address(tport_primaries(nta_agent_tports(agent_)));
      auto hp = SockaddrToHostPort(ai->ai_addr);
      if (!hp) return false;
      port_ = hp->second;
      if (nta_agent_add_tport(agent_, URL_STRING_MAKE("sip:127.0.0.1:*;transport=tcp"), TAG_END()) <
          0) {
        return false;
      }
      for (tport_t* tp = tport_primaries(nta_agent_tports(agent_)); tp != nullptr;
           tp = tport_next(tp)) {
        if (TportTransport(tp) == Transport::kTcp) {
          tcp_port_ = SockaddrToHostPort(tport_get_address(tp)->ai_addr)->second;
        }
      }
      leg_ =
          nta_leg_tcreate(agent_, &CallsTest::OnRequest, reinterpret_cast<nta_leg_magic_t*>(this),
                          NTATAG_NO_DIALOG(1), TAG_END());
      CallRouterOptions options;
      options.fork = policy;
      options.push_timeout = push_timeout_;
      options.record_route = absl::StrCat("sip:127.0.0.1:", port_, ";transport=udp");
      options.linger = absl::Seconds(2);
      router_ = std::make_unique<CallRouter>(
          *loop_, agent_, store_, push_.get(), RealClock::Get(), options,
          [this](const std::string& token) { return flows_.Lookup(token, absl::Now()); });
      return true;
    });
    ASSERT_TRUE(ok) << "agent creation failed";
  }

  static ForkPolicy DefaultPolicy() {
    ForkPolicy p;
    p.call_timeout = absl::Seconds(8);
    return p;
  }

  void TearDown() override {
    sip_proxy_.reset();
    if (loop_) {
      loop_->Call([&] {
        router_.reset();
        flows_ = FlowTable("closed");
        if (leg_ != nullptr) nta_leg_destroy(leg_);
        if (agent_ != nullptr) nta_agent_destroy(agent_);
        return 0;
      });
      if (push_) push_->Drain(absl::Seconds(2));
      push_.reset();
      loop_->Stop();
    }
    if (pusher_) pusher_->Shutdown(absl::Seconds(2));
    emulator_.Stop();
  }

  static int OnStray(nta_agent_magic_t*, nta_agent_t* agent, msg_t* msg, sip_t*) noexcept {
    nta_msg_discard(agent, msg);
    return 0;
  }
  // Stands in for SipProxy's dispatch: in-dialog by our Route, CANCEL without a transaction ->
  // 481, INVITE/MESSAGE -> the call router (the AOR as SipProxy restores it).
  static int OnRequest(nta_leg_magic_t* magic, nta_leg_t*, nta_incoming_t* irq,
                       const sip_t* sip) noexcept {
    auto* t = reinterpret_cast<CallsTest*>(magic);
    sip_method_t method = sip->sip_request->rq_method;
    if (t->router_->IsOurRoute(sip)) {
      t->router_->HandleInDialog(irq, sip);
    } else if (method == sip_method_options) {
      // Stands in for a REGISTER over TCP: remembers the connection as a flow.
      TportRef tp = TportRef::Adopt(nta_incoming_transport(t->agent_, irq, nullptr));
      t->flow_token_ = t->flows_.Register(tp.get(), absl::Now() + absl::Hours(1));
      nta_incoming_treply(irq, SIP_200_OK, TAG_END());
      nta_incoming_destroy(irq);
    } else if (method == sip_method_cancel) {
      nta_incoming_treply(irq, SIP_481_NO_TRANSACTION, TAG_END());
      nta_incoming_destroy(irq);
    } else if (method == sip_method_ack) {
      nta_incoming_destroy(irq);
    } else if (method == sip_method_invite || method == sip_method_message) {
      t->router_->HandleIncoming(irq, sip, CallTarget::Aor(kAor));
    } else {
      nta_incoming_treply(irq, SIP_405_METHOD_NOT_ALLOWED, TAG_END());
      nta_incoming_destroy(irq);
    }
    return 0;
  }

  // An iOS VoIP phone's binding at 127.0.0.1:`port`.
  static Binding Phone(
      uint16_t port, const std::string& token = kToken,
      const std::string& instance = "<urn:uuid:00000000-0000-0000-0000-000000000001>") {
    Binding b;
    b.aor = kAor;
    auto uri =
        ParseUri(absl::StrCat("sip:alice@127.0.0.1:", port, ";pn-provider=apns;pn-prid=", token,
                              ";pn-param=", kTeam, ".", kBundle, ".voip"));
    b.contact = *uri;
    b.push = *ParsePushParams(b.contact);
    b.instance_id = instance;
    b.received = TransportInfo{Transport::kUdp, "127.0.0.1", port};
    b.expires_at = absl::Now() + absl::Hours(1);
    b.call_id = absl::StrCat("reg-", port);
    b.cseq = 1;
    return b;
  }

  void Store(std::vector<Binding> bindings) {
    loop_
        ->Call([&] {
          absl::Status result = absl::InternalError("not called");
          store_.Replace(kAor, std::move(bindings), absl::Now(),
                         [&](absl::Status s) { result = std::move(s); });
          return result;
        })
        .IgnoreError();
  }
  size_t StoredBindings() {
    return loop_->Call([&] {
      size_t n = 999;
      store_.Fetch(kAor, absl::Now(), [&](const absl::StatusOr<std::vector<Binding>>& b) {
        if (b.ok()) n = b->size();
      });
      return n;
    });
  }
  size_t OpenCalls() {
    return loop_->Call([&] { return router_->OpenCalls(); });
  }

  Dialog NewDialog(const std::string& call_id) {
    Dialog d;
    d.call_id = call_id;
    std::string token = call_id.substr(0, call_id.find('@'));
    d.from_tag = absl::StrCat("ft-", token);
    d.to = "<sip:alice@example.org>";
    d.via_branch = absl::StrCat("z9hG4bK-inv-", token);
    d.request_uri = absl::StrCat("sip:alice@127.0.0.1:", port_);
    return d;
  }
  void SendInvite(UdpPeer& caller, const Dialog& d) {
    caller.SendTo(port_, Request("INVITE", d.request_uri, 1, d, caller.port(), d.via_branch));
  }
  // Stores `phone` as a plain (push-less) binding of alice, sends the caller's INVITE and waits
  // for it at the phone (`invite`: as the phone got it).
  ::testing::AssertionResult InviteToPlainPhone(UdpPeer& caller, UdpPeer& phone, const Dialog& d,
                                                SipText& invite) {
    Store({PlainPhone(phone.port())});
    SendInvite(caller, d);
    return WaitFor(phone, IsRequest("INVITE"), invite);
  }

  std::vector<emu::ReceivedRequest> ApnsPushes() {
    std::vector<emu::ReceivedRequest> out;
    for (auto& r : emulator_.Received()) {
      if (r.provider == emu::Provider::kApns) out.push_back(r);
    }
    return out;
  }

  emu::Emulator emulator_;
  std::unique_ptr<pusher::PusherServer> pusher_;
  int pusher_port_ = 0;
  std::unique_ptr<SofiaLoop> loop_;
  std::unique_ptr<GrpcPushClient> push_;
  MemoryBindingStore store_;
  nta_agent_t* agent_ = nullptr;
  nta_leg_t* leg_ = nullptr;
  uint16_t port_ = 0;
  uint16_t tcp_port_ = 0;
  absl::Duration push_timeout_ = absl::Seconds(5);
  FlowTable flows_{"t"};
  std::string flow_token_;  // loop thread
  std::unique_ptr<CallRouter> router_;
  std::unique_ptr<SipProxy> sip_proxy_;  // the registration path, when a test needs it
};

// The reason the gateway exists: the phone sleeps, the call wakes it with a VoIP push, the phone
// registers again and gets the INVITE at once, answers; ACK and BYE go through the gateway.
TEST_F(CallsTest, SleepingPhoneIsWokenByPushAndGetsTheCallOnReRegister) {
  StartRouter();
  UdpPeer caller, sleeping, awake;
  Store({Phone(sleeping.port())});
  Dialog d = NewDialog("sleeping-1@example.org");
  SendInvite(caller, d);

  SipText first;
  ASSERT_TRUE(WaitFor(sleeping, IsRequest("INVITE"), first))
      << "the registered (sleeping) contact never got the INVITE";
  // Its SIP stack says 100 (nta sends no CANCEL before a provisional response, RFC 3261 9.1).
  sleeping.SendTo(port_, MakeResponse(first, 100, "Trying", "", "s1"));
  SipText trying;
  ASSERT_TRUE(WaitFor(caller, IsStatus(110), trying)) << "the caller never got 110 Push sent";
  EXPECT_EQ(trying.Reason(), "Push sent");
  ASSERT_TRUE(WaitForPushes(emulator_, 1, kWait)) << "the emulator never got the VoIP push";
  auto pushes = ApnsPushes();
  ASSERT_EQ(pushes.size(), 1u);
  EXPECT_EQ(pushes[0].token, kToken);
  EXPECT_EQ(pushes[0].topic, absl::StrCat(kBundle, ".voip"));
  EXPECT_EQ(pushes[0].status, 200);
  EXPECT_NE(pushes[0].body.find(d.call_id), std::string::npos) << pushes[0].body;

  // The phone wakes up and registers again from another port (same device: same instance).
  Store({Phone(awake.port())});
  SipText invite;
  ASSERT_TRUE(WaitFor(awake, IsRequest("INVITE"), invite))
      << "the re-registered contact never got the pending INVITE";
  EXPECT_EQ(invite.Header("Call-ID"), d.call_id);
  EXPECT_THAT(invite.Header("Record-Route"),
              ::testing::HasSubstr(absl::StrCat("127.0.0.1:", port_)));
  EXPECT_EQ(invite.Header("Max-Forwards"), "69");
  EXPECT_EQ(invite.Headers("Record-Route").size(), 1u) << "in and out over UDP: one entry";
  EXPECT_THAT(invite.RequestUri(), ::testing::HasSubstr(absl::StrCat(awake.port())));
  EXPECT_EQ(invite.Headers("Via").size(), 2u) << invite.text();

  std::string contact = absl::StrCat("Contact: <sip:alice@127.0.0.1:", awake.port(),
                                     ">\r\nRecord-Route: ", invite.Header("Record-Route"), "\r\n");
  awake.SendTo(port_, MakeResponse(invite, 180, "Ringing", contact, "ph1"));
  ASSERT_TRUE(WaitFor(caller, IsStatus(180))) << "180 was not relayed to the caller";
  awake.SendTo(port_, MakeResponse(invite, 200, "OK", contact, "ph1"));
  SipText ok;
  ASSERT_TRUE(WaitFor(caller, IsFinal(), ok)) << "the caller never got the final response";
  ASSERT_EQ(ok.Status(), 200) << ok.text();
  EXPECT_THAT(ok.Header("Record-Route"), ::testing::HasSubstr(absl::StrCat(":", port_)));
  EXPECT_EQ(ok.Headers("Via").size(), 1u) << "our Via must be removed";

  // The old branch (the sleeping contact) was cancelled: the device moved to a new contact.
  SipText cancel;
  ASSERT_TRUE(WaitFor(sleeping, IsRequest("CANCEL"), cancel))
      << "the superseded branch (sleeping contact) was never cancelled";
  EXPECT_EQ(cancel.Header("Call-ID"), d.call_id);

  // ACK and BYE through the gateway by loose routing.
  d.to = ok.Header("To");
  std::string route = absl::StrCat("Route: <sip:127.0.0.1:", port_, ";transport=udp;lr>\r\n");
  std::string phone_uri = absl::StrCat("sip:alice@127.0.0.1:", awake.port());
  caller.SendTo(port_, Request("ACK", phone_uri, 1, d, caller.port(), "z9hG4bK-ack-1", route));
  SipText ack;
  ASSERT_TRUE(WaitFor(awake, IsRequest("ACK"), ack)) << "the ACK never reached the phone";
  EXPECT_TRUE(ack.Header("Route").empty()) << "our Route must be consumed: " << ack.text();
  caller.SendTo(port_, Request("BYE", phone_uri, 2, d, caller.port(), "z9hG4bK-bye-1", route));
  SipText bye;
  ASSERT_TRUE(WaitFor(awake, IsRequest("BYE"), bye)) << "the BYE never reached the phone";
  awake.SendTo(port_, MakeResponse(bye, 200, "OK", "", "ph1"));
  SipText bye_ok;
  ASSERT_TRUE(WaitFor(caller, IsFinal(), bye_ok)) << "the BYE's 200 never reached the caller";
  EXPECT_EQ(bye_ok.Status(), 200);
  EXPECT_THAT(bye_ok.Header("CSeq"), ::testing::HasSubstr("BYE"));
}

// The caller gives up before the VoIP phone woke: the caller gets 487; when the phone registers
// within the fork time it still gets the INVITE, then the CANCEL (CallKit shows a missed call).
TEST_F(CallsTest, CancelBeforeWakeDeliversInviteThenCancelToVoipPhone) {
  StartRouter();
  UdpPeer caller, sleeping, awake;
  Store({Phone(sleeping.port())});
  Dialog d = NewDialog("cancel-1@example.org");
  SendInvite(caller, d);
  SipText first;
  ASSERT_TRUE(WaitFor(sleeping, IsRequest("INVITE"), first)) << "no INVITE to the sleeping contact";
  sleeping.SendTo(port_, MakeResponse(first, 100, "Trying", "", "s1"));
  ASSERT_TRUE(WaitForPushes(emulator_, 1, kWait)) << "the emulator never got the VoIP push";

  caller.SendTo(port_, Request("CANCEL", d.request_uri, 1, d, caller.port(), d.via_branch));
  SipText cancel_ok;
  ASSERT_TRUE(WaitFor(caller, IsResponseTo("CANCEL"), cancel_ok))
      << "the CANCEL was never answered";
  EXPECT_EQ(cancel_ok.Status(), 200);
  SipText terminated;
  ASSERT_TRUE(WaitFor(caller, IsStatus(487), terminated))
      << "the caller never got 487 for its INVITE";
  ASSERT_TRUE(WaitFor(sleeping, IsRequest("CANCEL"))) << "the sleeping branch was not cancelled";

  Store({Phone(awake.port())});
  SipText invite;
  ASSERT_TRUE(WaitFor(awake, IsRequest("INVITE"), invite))
      << "the woken VoIP phone never got the missed call's INVITE";
  EXPECT_EQ(invite.Header("Call-ID"), d.call_id);
  awake.SendTo(port_, MakeResponse(invite, 100, "Trying", "", "s2"));
  SipText cancel;
  ASSERT_TRUE(WaitFor(awake, IsRequest("CANCEL"), cancel))
      << "the woken VoIP phone never got the CANCEL after the INVITE";
  EXPECT_EQ(cancel.Header("Call-ID"), d.call_id);
}

// RFC 3261 9.1: a branch is not CANCELled before it sent a provisional response. The caller
// cancels while the phone is silent: the phone gets no CANCEL until its 180, then the CANCEL;
// the 180 of the cancelled branch does not reach the caller.
TEST_F(CallsTest, CancelWaitsForTheBranchsProvisionalResponse) {
  StartRouter();
  UdpPeer caller, phone;
  Dialog d = NewDialog("held-cancel-1@example.org");
  SipText invite;
  ASSERT_TRUE(InviteToPlainPhone(caller, phone, d, invite)) << "the phone never got the INVITE";
  caller.SendTo(port_, Request("CANCEL", d.request_uri, 1, d, caller.port(), d.via_branch));
  ASSERT_TRUE(WaitFor(caller, IsStatus(487))) << "the caller never got 487 for its INVITE";
  EXPECT_TRUE(ExpectNone(phone, IsRequest("CANCEL"), absl::Milliseconds(600)))
      << "a CANCEL went to a branch that sent no provisional response yet";

  phone.SendTo(port_, MakeResponse(invite, 180, "Ringing", "", "hc1"));
  SipText cancel;
  ASSERT_TRUE(WaitFor(phone, IsRequest("CANCEL"), cancel))
      << "the branch's 180 did not release the held CANCEL";
  EXPECT_EQ(cancel.Header("Call-ID"), d.call_id);
  EXPECT_EQ(cancel.Header("Via"), invite.Header("Via")) << "CANCEL must match the INVITE's branch";
  phone.SendTo(port_, MakeResponse(cancel, 200, "OK", "", "hc1"));
  phone.SendTo(port_, MakeResponse(invite, 487, "Request Terminated", "", "hc1"));
  ASSERT_TRUE(WaitFor(phone, IsRequest("ACK"))) << "the branch's 487 was never acknowledged";
  EXPECT_TRUE(ExpectNone(caller, IsStatus(180), absl::Milliseconds(300)))
      << "the cancelled branch's 180 was relayed to the caller";
}

// A branch cancelled before any provisional response that then answers with a final response:
// the held CANCEL is dropped (nothing left to cancel), the final response is acknowledged.
TEST_F(CallsTest, HeldCancelIsDroppedWhenTheBranchAnswersFinal) {
  StartRouter();
  UdpPeer caller, phone;
  Dialog d = NewDialog("held-cancel-2@example.org");
  SipText invite;
  ASSERT_TRUE(InviteToPlainPhone(caller, phone, d, invite)) << "the phone never got the INVITE";
  caller.SendTo(port_, Request("CANCEL", d.request_uri, 1, d, caller.port(), d.via_branch));
  ASSERT_TRUE(WaitFor(caller, IsStatus(487))) << "the caller never got 487 for its INVITE";
  phone.SendTo(port_, MakeResponse(invite, 486, "Busy Here", "", "hc2"));
  ASSERT_TRUE(WaitFor(phone, IsRequest("ACK"))) << "the branch's 486 was never acknowledged";
  EXPECT_TRUE(ExpectNone(phone, IsRequest("CANCEL"), absl::Milliseconds(600)))
      << "a CANCEL went to a branch that had already answered finally";
}

// A re-INVITE in the dialog that the caller CANCELs: the gateway CANCELs the relayed re-INVITE
// (once the phone's provisional response came) and the phone's 487 reaches the caller.
TEST_F(CallsTest, CancelledReInviteIsCancelledTowardThePhone) {
  StartRouter();
  UdpPeer caller, phone;
  Dialog d = NewDialog("reinvite-cancel@example.org");
  SipText invite;
  ASSERT_TRUE(InviteToPlainPhone(caller, phone, d, invite)) << "the phone never got the INVITE";
  std::string contact = absl::StrCat("Contact: <sip:alice@127.0.0.1:", phone.port(),
                                     ">\r\nRecord-Route: ", invite.Header("Record-Route"), "\r\n");
  phone.SendTo(port_, MakeResponse(invite, 200, "OK", contact, "ri1"));
  SipText ok;
  ASSERT_TRUE(WaitFor(caller, IsFinal(), ok)) << "the caller never got the 200";
  ASSERT_EQ(ok.Status(), 200) << "the caller never got the 200";
  d.to = ok.Header("To");
  std::string route = absl::StrCat("Route: ", ok.Header("Record-Route"), "\r\n");
  std::string phone_uri = absl::StrCat("sip:alice@127.0.0.1:", phone.port());
  caller.SendTo(port_, Request("ACK", phone_uri, 1, d, caller.port(), "z9hG4bK-ri-ack", route));
  ASSERT_TRUE(WaitFor(phone, IsRequest("ACK"))) << "the ACK never reached the phone";

  const std::string branch = "z9hG4bK-ri-reinvite";
  caller.SendTo(port_, Request("INVITE", phone_uri, 2, d, caller.port(), branch, route));
  SipText reinvite;
  ASSERT_TRUE(WaitFor(phone, IsRequest("INVITE"), reinvite))
      << "the re-INVITE never reached the phone";
  phone.SendTo(port_, MakeResponse(reinvite, 100, "Trying", "", "ri1"));
  caller.SendTo(port_, Request("CANCEL", phone_uri, 2, d, caller.port(), branch, route));
  SipText cancel_ok;
  ASSERT_TRUE(WaitFor(caller, IsResponseTo("CANCEL"), cancel_ok))
      << "the caller's CANCEL was never answered";
  EXPECT_EQ(cancel_ok.Status(), 200);
  SipText cancel;
  ASSERT_TRUE(WaitFor(phone, IsRequest("CANCEL"), cancel))
      << "the relayed re-INVITE was not cancelled toward the phone";
  EXPECT_EQ(cancel.Header("Via"), reinvite.Header("Via"));
  phone.SendTo(port_, MakeResponse(cancel, 200, "OK", "", "ri1"));
  phone.SendTo(port_, MakeResponse(reinvite, 487, "Request Terminated", "", "ri1"));
  SipText terminated;
  ASSERT_TRUE(WaitFor(caller, IsFinal(), terminated))
      << "the re-INVITE's 487 never reached the caller";
  EXPECT_EQ(terminated.Status(), 487);
  EXPECT_THAT(terminated.Header("CSeq"), ::testing::HasSubstr("2 INVITE"));
}

// The pusher reports the token dead (APNs 410): the binding leaves the registrar.
TEST_F(CallsTest, TokenInvalidRemovesTheBinding) {
  StartRouter();
  emulator_.MarkDead(emu::Provider::kApns, kToken);
  UdpPeer caller;
  Binding gone = Phone(ClosedPort());
  gone.flow_token = "closed-flow";  // its connection is gone: only a push could reach it
  Store({gone});
  ASSERT_EQ(StoredBindings(), 1u);
  Dialog d = NewDialog("dead-1@example.org");
  SendInvite(caller, d);
  ASSERT_TRUE(WaitForPushes(emulator_, 1, kWait)) << "the emulator never got the push";
  SipText final_response;
  ASSERT_TRUE(WaitFor(caller, IsFinal(), final_response))
      << "the caller never got a final response";
  EXPECT_EQ(final_response.Status(), 408) << final_response.text();
  EXPECT_TRUE(Eventually([&] { return StoredBindings() == 0; }, kWait,
                         "the binding with the dead token leaving the store",
                         [&] { return absl::StrCat(StoredBindings(), " binding(s) stored"); }))
      << "the binding with the dead token was not removed";
}

// Pusher down: the call still rings the reachable phone; the failure is counted.
TEST_F(CallsTest, PusherDownStillRingsReachablePhone) {
  // The push waits for a pusher until its deadline (wait_for_ready): keep it well inside kWait.
  push_timeout_ = absl::Milliseconds(500);
  StartRouter(absl::StrCat("dns:///127.0.0.1:", ClosedPort()));
  uint64_t errors_before = PushCount("error");
  UdpPeer caller, phone;
  Store({Phone(phone.port())});
  Dialog d = NewDialog("down-1@example.org");
  SendInvite(caller, d);
  SipText invite;
  ASSERT_TRUE(WaitFor(phone, IsRequest("INVITE"), invite))
      << "the reachable phone never got the INVITE";
  EXPECT_TRUE(
      Eventually([&] { return PushCount("error") > errors_before; }, kWait, "a push error counted",
                 [&] { return absl::StrCat(PushCount("error") - errors_before, " new errors"); }))
      << "the failed push was not counted";
  phone.SendTo(
      port_,
      MakeResponse(invite, 200, "OK",
                   absl::StrCat("Contact: <sip:alice@127.0.0.1:", phone.port(), ">\r\n"), "ph2"));
  SipText ok;
  ASSERT_TRUE(WaitFor(caller, IsFinal(), ok)) << "the caller never got the final response";
  EXPECT_EQ(ok.Status(), 200);
}

// A phone only a push could reach, and the push fails (pusher down): the caller is told at
// once, 480 with a Reason naming the failure, not a 408 at the end of the fork time.
TEST_F(CallsTest, SleepingPhoneWhosePushFailsGets480WithReason) {
  push_timeout_ = absl::Milliseconds(300);
  StartRouter(absl::StrCat("dns:///127.0.0.1:", ClosedPort()));
  UdpPeer caller;
  Binding asleep = Phone(ClosedPort());
  asleep.flow_token = "closed-flow";  // its connection is gone: only a push could reach it
  Store({asleep});
  Dialog d = NewDialog("pushfail-1@example.org");
  const absl::Time sent = absl::Now();
  SendInvite(caller, d);
  SipText final_response;
  ASSERT_TRUE(WaitFor(caller, IsFinal(), final_response))
      << "the caller never got a final response";
  EXPECT_EQ(final_response.Status(), 480) << final_response.text();
  EXPECT_THAT(final_response.Header("Reason"),
              ::testing::StartsWith("SIP;cause=480;text=\"Push failed: "))
      << final_response.text();
  EXPECT_LT(absl::Now() - sent, absl::Seconds(3)) << "answered only at the end of the fork";
}

TEST_F(CallsTest, NoBindingIs404) {
  StartRouter();
  UdpPeer caller;
  Dialog d = NewDialog("nobody-1@example.org");
  SendInvite(caller, d);
  SipText final_response;
  ASSERT_TRUE(WaitFor(caller, IsFinal(), final_response))
      << "the caller never got a final response";
  EXPECT_EQ(final_response.Status(), 404);
  EXPECT_TRUE(ApnsPushes().empty());
}

// Two devices; the second answers: the first is cancelled with Reason cause=200; the fork is freed.
TEST_F(CallsTest, FirstAnswerWinsOthersCancelled) {
  ForkPolicy policy = DefaultPolicy();
  policy.push_delay_voip = absl::Seconds(30);  // awake phones: no push within the test
  StartRouter("", policy);
  UdpPeer caller, one, two;
  Store({Phone(one.port(), std::string(64, 'c'), "<urn:uuid:1>"),
         Phone(two.port(), std::string(64, 'd'), "<urn:uuid:2>")});
  Dialog d = NewDialog("two-1@example.org");
  SendInvite(caller, d);
  SipText first;
  ASSERT_TRUE(WaitFor(one, IsRequest("INVITE"), first)) << "device one never got the INVITE";
  one.SendTo(port_, MakeResponse(first, 180, "Ringing", "", "ph0"));
  SipText invite;
  ASSERT_TRUE(WaitFor(two, IsRequest("INVITE"), invite)) << "device two never got the INVITE";
  two.SendTo(
      port_,
      MakeResponse(invite, 200, "OK",
                   absl::StrCat("Contact: <sip:alice@127.0.0.1:", two.port(), ">\r\n"), "ph3"));
  SipText ok;
  ASSERT_TRUE(WaitFor(caller, IsFinal(), ok)) << "the caller never got the 200";
  EXPECT_EQ(ok.Status(), 200);
  SipText cancel;
  ASSERT_TRUE(WaitFor(one, IsRequest("CANCEL"), cancel)) << "device one was not cancelled";
  EXPECT_THAT(cancel.Header("Reason"), ::testing::HasSubstr("cause=200"));
  EXPECT_TRUE(ApnsPushes().empty()) << "no push for awake phones within the delay";
}

// No answer within the call timeout: the best final response (486 over nothing) goes to the
// caller and the branch still ringing is cancelled.
TEST_F(CallsTest, CallTimeoutAnswersBestResponse) {
  ForkPolicy policy = DefaultPolicy();
  policy.call_timeout = absl::Seconds(1);
  policy.push_delay_voip = absl::Seconds(30);
  StartRouter("", policy);
  UdpPeer caller, busy, ringing;
  Store({Phone(busy.port(), std::string(64, 'c'), "<urn:uuid:1>"),
         Phone(ringing.port(), std::string(64, 'd'), "<urn:uuid:2>")});
  Dialog d = NewDialog("timeout-1");
  absl::Time start = absl::Now();
  SendInvite(caller, d);
  SipText to_busy;
  ASSERT_TRUE(WaitFor(busy, IsRequest("INVITE"), to_busy))
      << "the busy device never got the INVITE";
  SipText to_ringing;
  ASSERT_TRUE(WaitFor(ringing, IsRequest("INVITE"), to_ringing))
      << "the ringing device never got the INVITE";
  ringing.SendTo(port_, MakeResponse(to_ringing, 180, "Ringing", "", "r1"));
  busy.SendTo(port_, MakeResponse(to_busy, 486, "Busy Here", "", "b1"));
  SipText final_response;
  ASSERT_TRUE(WaitFor(caller, IsFinal(), final_response))
      << "the caller never got a final response";
  EXPECT_EQ(final_response.Status(), 486) << final_response.text();
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(900)) << "answered before the call timeout";
  ASSERT_TRUE(WaitFor(ringing, IsRequest("CANCEL"))) << "the ringing branch was not cancelled";
}

// 6xx ends the fork at once: relayed to the caller, the other branches cancelled.
TEST_F(CallsTest, GlobalFailureEndsTheFork) {
  ForkPolicy policy = DefaultPolicy();
  policy.push_delay_voip = absl::Seconds(30);
  StartRouter("", policy);
  UdpPeer caller, decline, ringing;
  Store({Phone(decline.port(), std::string(64, 'c'), "<urn:uuid:1>"),
         Phone(ringing.port(), std::string(64, 'd'), "<urn:uuid:2>")});
  Dialog d = NewDialog("decline-1");
  SendInvite(caller, d);
  SipText to_decline;
  ASSERT_TRUE(WaitFor(decline, IsRequest("INVITE"), to_decline))
      << "device one never got the INVITE";
  SipText to_ringing;
  ASSERT_TRUE(WaitFor(ringing, IsRequest("INVITE"), to_ringing))
      << "device two never got the INVITE";
  ringing.SendTo(port_, MakeResponse(to_ringing, 180, "Ringing", "", "r1"));
  decline.SendTo(port_, MakeResponse(to_decline, 603, "Decline", "", "d1"));
  SipText final_response;
  ASSERT_TRUE(WaitFor(caller, IsFinal(), final_response))
      << "the caller never got a final response";
  EXPECT_EQ(final_response.Status(), 603);
  ASSERT_TRUE(WaitFor(ringing, IsRequest("CANCEL"))) << "the ringing branch was not cancelled";
}

// MESSAGE is forked like INVITE (no Record-Route: no dialog).
TEST_F(CallsTest, MessageReachesThePhone) {
  ForkPolicy policy = DefaultPolicy();
  policy.push_delay_voip = absl::Seconds(30);
  StartRouter("", policy);
  UdpPeer caller, phone;
  Store({Phone(phone.port())});
  Dialog d = NewDialog("message-1");
  caller.SendTo(port_, Request("MESSAGE", d.request_uri, 1, d, caller.port(), d.via_branch,
                               "Content-Type: text/plain\r\n"));
  SipText message;
  ASSERT_TRUE(WaitFor(phone, IsRequest("MESSAGE"), message)) << "the phone never got the MESSAGE";
  EXPECT_TRUE(message.Header("Record-Route").empty());
  phone.SendTo(port_, MakeResponse(message, 200, "OK", "", "m1"));
  SipText ok;
  ASSERT_TRUE(WaitFor(caller, IsFinal(), ok))
      << "the caller never got the MESSAGE's final response";
  EXPECT_EQ(ok.Status(), 200);
  EXPECT_TRUE(Eventually([&] { return OpenCalls() == 0; }, kWait, "the finished fork being freed",
                         [&] { return absl::StrCat(OpenCalls(), " open call(s)"); }))
      << "the finished fork was not freed";
}

TEST_F(CallsTest, MaxForwardsZeroIs483) {
  StartRouter();
  UdpPeer caller, phone;
  Store({Phone(phone.port())});
  Dialog d = NewDialog("hops-1");
  std::string invite = Request("INVITE", d.request_uri, 1, d, caller.port(), d.via_branch);
  invite.replace(invite.find("Max-Forwards: 70"), 16, "Max-Forwards: 0");
  caller.SendTo(port_, invite);
  SipText final_response;
  ASSERT_TRUE(WaitFor(caller, IsFinal(), final_response))
      << "the caller never got a final response";
  EXPECT_EQ(final_response.Status(), 483);
  EXPECT_TRUE(phone.ExpectNothingWithin(absl::Milliseconds(200))) << "the phone must not be called";
}

// A binding whose contact is the gateway itself would loop: it is not called.
TEST_F(CallsTest, ContactPointingAtTheGatewayIsNotCalled) {
  StartRouter();
  UdpPeer caller;
  Binding loop = Phone(port_);
  loop.push.reset();
  Store({loop});
  Dialog d = NewDialog("loop-1");
  SendInvite(caller, d);
  SipText final_response;
  ASSERT_TRUE(WaitFor(caller, IsFinal(), final_response))
      << "the caller never got a final response";
  EXPECT_EQ(final_response.Status(), 404) << final_response.text();
}

// A phone on TCP (behind NAT: its contact is not reachable) gets the call over its own
// connection, and so does the caller's BYE (the flow rides in our Record-Route).
TEST_F(CallsTest, TcpPhoneGetsCallAndByeOverItsOwnConnection) {
  ForkPolicy policy = DefaultPolicy();
  policy.push_delay_voip = absl::Seconds(30);
  StartRouter("", policy);
  testing::TcpPeer phone(tcp_port_);
  ASSERT_TRUE(phone.connected());
  phone.Send(absl::StrCat("OPTIONS sip:127.0.0.1:", tcp_port_,
                          " SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:", phone.local_port(),
                          ";branch=z9hG4bK-opt1\r\nMax-Forwards: 70\r\n",
                          "From: <sip:alice@example.org>;tag=o1\r\nTo: <sip:alice@example.org>\r\n",
                          "Call-ID: flow-1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"));
  SipText options_ok;
  ASSERT_TRUE(phone.WaitForMessage(options_ok)) << "no answer to the phone's OPTIONS";
  std::string token = loop_->Call([&] { return flow_token_; });
  ASSERT_FALSE(token.empty());
  Binding b = Phone(ClosedPort());
  // Its contact: nothing listens there; only its connection reaches it.
  b.contact = *ParseUri(absl::StrCat("sip:alice@127.0.0.1:", ClosedPort(), ";transport=tcp"));
  b.push.reset();
  b.flow_token = token;
  b.received = TransportInfo{Transport::kTcp, "127.0.0.1", phone.local_port()};
  Store({b});
  UdpPeer caller;
  Dialog d = NewDialog("tcp-1");
  SendInvite(caller, d);
  SipText invite;
  ASSERT_TRUE(phone.WaitForRequest("INVITE", invite)) << "no INVITE over the phone's connection";
  // In over UDP, out over TCP: double record-routing (RFC 5658), our TCP side on top (naming
  // the phone's flow), our UDP side below it.
  std::vector<std::string> rrs = invite.Headers("Record-Route");
  ASSERT_EQ(rrs.size(), 2u) << invite.text();
  EXPECT_THAT(rrs[0], ::testing::HasSubstr(absl::StrCat("127.0.0.1:", tcp_port_)));
  EXPECT_THAT(rrs[0], ::testing::HasSubstr("transport=tcp"));
  EXPECT_THAT(rrs[0], ::testing::HasSubstr(absl::StrCat("pgf=", token)));
  EXPECT_THAT(rrs[1], ::testing::HasSubstr(absl::StrCat("127.0.0.1:", port_)));
  EXPECT_THAT(rrs[1], ::testing::Not(::testing::HasSubstr("pgf=")));
  // Behind NAT: the contact it gives is not where its connection comes from.
  const uint16_t nat_port = ClosedPort();
  std::string contact = absl::StrCat("Contact: <sip:alice@127.0.0.1:", nat_port,
                                     ";transport=tcp>\r\nRecord-Route: ", rrs[0],
                                     "\r\nRecord-Route: ", rrs[1], "\r\n");
  phone.Send(MakeResponse(invite, 200, "OK", contact, "tp1"));
  SipText ok;
  ASSERT_TRUE(WaitFor(caller, IsFinal(), ok)) << "the caller never got the final response";
  ASSERT_EQ(ok.Status(), 200);
  std::vector<std::string> caller_rrs = ok.Headers("Record-Route");
  ASSERT_EQ(caller_rrs.size(), 2u) << ok.text();
  d.to = ok.Header("To");
  // The caller's route set: the Record-Route entries in reverse order (our UDP side first).
  std::string routes = absl::StrCat("Route: ", caller_rrs[1], "\r\nRoute: ", caller_rrs[0], "\r\n");
  std::string phone_uri = absl::StrCat("sip:alice@127.0.0.1:", nat_port, ";transport=tcp");
  caller.SendTo(port_, Request("BYE", phone_uri, 2, d, caller.port(), "z9hG4bK-tcpbye", routes));
  SipText bye;
  ASSERT_TRUE(phone.WaitForRequest("BYE", bye)) << "the BYE did not take the phone's connection";
  EXPECT_TRUE(bye.Headers("Route").empty())
      << "both our Route entries must be consumed: " << bye.text();
  phone.Send(MakeResponse(bye, 200, "OK", "", "tp1"));
  SipText bye_ok;
  ASSERT_TRUE(WaitFor(caller, IsFinal(), bye_ok)) << "the BYE's 200 never reached the caller";
  EXPECT_EQ(bye_ok.Status(), 200);
}

// A non-VoIP iOS app: an alert push while ringing, and a "missed call" alert push when the caller
// gives up before the phone woke.
TEST_F(CallsTest, AlertAppGetsMissedCallPushWhenCallerCancels) {
  ForkPolicy policy = DefaultPolicy();
  policy.push_delay_other = absl::ZeroDuration();
  StartRouter("", policy);
  UdpPeer caller, sleeping;
  Binding b = Phone(sleeping.port());
  b.contact = *ParseUri(absl::StrCat("sip:alice@127.0.0.1:", sleeping.port(),
                                     ";pn-provider=apns;pn-prid=", kToken, ";pn-param=", kTeam, ".",
                                     kBundle));
  b.push = *ParsePushParams(b.contact);
  Store({b});
  Dialog d = NewDialog("alert-1");
  SendInvite(caller, d);
  SipText first;
  ASSERT_TRUE(WaitFor(sleeping, IsRequest("INVITE"), first))
      << "no INVITE to the registered contact";
  sleeping.SendTo(port_, MakeResponse(first, 100, "Trying", "", "s1"));
  ASSERT_TRUE(WaitForPushes(emulator_, 1, kWait)) << "the emulator never got the alert push";
  caller.SendTo(port_, Request("CANCEL", d.request_uri, 1, d, caller.port(), d.via_branch));
  ASSERT_TRUE(WaitFor(caller, IsStatus(487))) << "the caller never got 487";
  ASSERT_TRUE(WaitForPushes(emulator_, 2, kWait)) << "the emulator never got the missed call push";
  auto pushes = ApnsPushes();
  ASSERT_EQ(pushes.size(), 2u);
  EXPECT_EQ(pushes[0].topic, kBundle);
  EXPECT_NE(pushes[0].body.find("IC_MSG"), std::string::npos) << pushes[0].body;
  EXPECT_NE(pushes[1].body.find("MISSED_CALL"), std::string::npos) << pushes[1].body;
}

// Fork late through the real registration path: the phone registers again through SipProxy
// (REGISTER relayed to a scripted backend, bound on its 200), the store's listener reaches the
// open fork, and the pending INVITE goes to the new contact.
TEST_F(CallsTest, ReRegistrationThroughSipProxyDeliversPendingInvite) {
  StartRouter();
  UdpPeer backend, caller, sleeping, awake;
  SipProxyOptions options;
  options.listen = {{Transport::kUdp, "127.0.0.1", 0}};
  options.backend_uri = absl::StrCat("sip:127.0.0.1:", backend.port());
  options.masquerade_secret = "0123456789abcdef0123456789abcdef";
  options.registrar.min_expires = absl::Seconds(60);
  auto proxy = SipProxy::Create(*loop_, options, store_, RealClock::Get());
  ASSERT_TRUE(proxy.ok()) << proxy.status();
  sip_proxy_ = *std::move(proxy);
  uint16_t proxy_port = sip_proxy_->Listening().at(0).port;

  Store({Phone(sleeping.port())});
  Dialog d = NewDialog("rereg-1");
  SendInvite(caller, d);
  ASSERT_TRUE(WaitFor(sleeping, IsRequest("INVITE"))) << "no INVITE to the sleeping contact";
  ASSERT_TRUE(WaitForPushes(emulator_, 1, kWait)) << "the emulator never got the VoIP push";

  testing::RegisterSpec spec;
  spec.via_port = awake.port();
  spec.contacts = {
      absl::StrCat("<sip:alice@127.0.0.1:", awake.port(), ";pn-provider=apns;pn-prid=", kToken,
                   ";pn-param=", kTeam, ".", kBundle,
                   ".voip>;+sip.instance=\"<urn:uuid:00000000-0000-0000-0000-000000000001>\"")};
  awake.SendTo(proxy_port, testing::MakeRegister(spec));
  SipText reg;
  ASSERT_TRUE(WaitFor(backend, IsRequest("REGISTER"), reg)) << "the backend never got the REGISTER";
  std::string contacts;
  for (const std::string& c : reg.Headers("Contact")) {
    absl::StrAppend(&contacts, "Contact: ", c, "\r\n");
  }
  backend.SendTo(proxy_port, MakeResponse(reg, 200, "OK", contacts));
  SipText invite;
  ASSERT_TRUE(WaitFor(awake, IsRequest("INVITE"), invite))
      << "the re-registered phone never got the pending INVITE";
  EXPECT_EQ(invite.Header("Call-ID"), d.call_id);
  EXPECT_THAT(invite.RequestUri(), ::testing::HasSubstr(absl::StrCat(awake.port())));
  awake.SendTo(
      port_,
      MakeResponse(invite, 200, "OK",
                   absl::StrCat("Contact: <sip:alice@127.0.0.1:", awake.port(), ">\r\n"), "rr1"));
  SipText ok;
  ASSERT_TRUE(WaitFor(caller, IsFinal(), ok)) << "the caller never got the final response";
  EXPECT_EQ(ok.Status(), 200);
}

// The requests `peer` receives until one of method `last` (included), in order (retransmissions
// of the same request kept): "ACK", "BYE".
std::vector<SipText> RequestsUntil(UdpPeer& peer, const std::string& last) {
  std::vector<SipText> out;
  SipText m;
  while (peer.WaitFor(testing::IsFinalOrRequest(), m, kWait)) {
    if (m.IsResponse()) continue;
    out.push_back(m);
    if (m.Method() == last) break;
  }
  return out;
}
std::vector<std::string> Methods(const std::vector<SipText>& requests) {
  std::vector<std::string> out;
  out.reserve(requests.size());
  for (const SipText& r : requests) out.push_back(r.Method());
  return out;
}
uint64_t ReleasedCount(const std::string& reason) {
  return metrics::Registry::Default()
      .GetCounter("pushgate_proxy_call_released_answers_total", "", {{"reason", reason}})
      .Value();
}
// The CSeq number of a request or response.
int CSeqOf(const SipText& m) { return std::atoi(m.Header("CSeq").c_str()); }

// Both devices answer: the first 2xx reaches the caller; the second cannot be taken any more
// (RFC 3261 16.7 step 9 relays only what the caller can take): the gateway, which sent that
// INVITE, ACKs it and ends that dialog with a BYE (RFC 3261 15), so the phone is not left in a
// call with nobody.
TEST_F(CallsTest, SecondAnswerIsAckedAndEndedByTheGateway) {
  ForkPolicy policy = DefaultPolicy();
  policy.push_delay_voip = absl::Seconds(30);
  StartRouter("", policy);
  const uint64_t released_before = ReleasedCount("answered_elsewhere");
  UdpPeer caller, one, two;
  Store({Phone(one.port(), std::string(64, 'c'), "<urn:uuid:1>"),
         Phone(two.port(), std::string(64, 'd'), "<urn:uuid:2>")});
  Dialog d = NewDialog("both-1");
  SendInvite(caller, d);
  SipText to_one;
  ASSERT_TRUE(WaitFor(one, IsRequest("INVITE"), to_one)) << "device one never got the INVITE";
  SipText to_two;
  ASSERT_TRUE(WaitFor(two, IsRequest("INVITE"), to_two)) << "device two never got the INVITE";
  one.SendTo(port_, MakeResponse(to_one, 200, "OK", "Contact: <sip:one@127.0.0.1>\r\n", "o1"));
  SipText first;
  ASSERT_TRUE(WaitFor(caller, IsStatus(200), first)) << "the caller never got the first 200";
  EXPECT_THAT(first.Header("To"), ::testing::HasSubstr("tag=o1"));
  const std::string two_contact = absl::StrCat("Contact: <sip:two@127.0.0.1:", two.port(), ">\r\n");
  two.SendTo(port_, MakeResponse(to_two, 200, "OK", two_contact, "t2"));

  std::vector<SipText> got = RequestsUntil(two, "BYE");
  std::vector<std::string> methods = Methods(got);
  // Device two may first see the CANCEL of its branch (it crossed its 200): ignored here.
  std::erase(methods, "CANCEL");
  ASSERT_THAT(methods, ::testing::ElementsAre("ACK", "BYE")) << "the second answer was not ended";
  const SipText& ack = got[got.size() - 2];
  const SipText& bye = got.back();
  EXPECT_EQ(ack.RequestUri(), absl::StrCat("sip:two@127.0.0.1:", two.port()));
  EXPECT_EQ(CSeqOf(ack), CSeqOf(to_two));
  EXPECT_EQ(bye.Header("Call-ID"), d.call_id);
  EXPECT_THAT(bye.Header("To"), ::testing::HasSubstr("tag=t2"));
  EXPECT_THAT(bye.Header("From"), ::testing::HasSubstr(d.from_tag));
  EXPECT_EQ(CSeqOf(bye), CSeqOf(to_two) + 1);
  two.SendTo(port_, MakeResponse(bye, 200, "OK", "", "t2"));
  EXPECT_TRUE(ExpectNone(caller, IsStatus(200), absl::Milliseconds(300)))
      << "the second 200 reached the caller too";
  EXPECT_EQ(ReleasedCount("answered_elsewhere") - released_before, 1u);

  // The phone repeats its 200 (our ACK was lost, say): ACKed again, no second BYE.
  two.SendTo(port_, MakeResponse(to_two, 200, "OK", two_contact, "t2"));
  ASSERT_TRUE(WaitFor(two, IsRequest("ACK"))) << "a retransmitted 200 was not ACKed again";
  EXPECT_TRUE(ExpectNone(two, IsRequest("BYE"), absl::Milliseconds(300)));
  EXPECT_EQ(ReleasedCount("answered_elsewhere") - released_before, 1u);
}

// The caller hangs up while the phone rings; the phone answers 200 after the CANCEL was sent to
// it (the CANCEL crossed its answer): the caller has its 487, the phone gets ACK then BYE.
TEST_F(CallsTest, AnswerAfterTheCallerCancelledIsAckedAndEnded) {
  StartRouter();
  const uint64_t released_before = ReleasedCount("caller_gone");
  UdpPeer caller, phone;
  Dialog d = NewDialog("crossed-1@example.org");
  SipText invite;
  ASSERT_TRUE(InviteToPlainPhone(caller, phone, d, invite)) << "the phone never got the INVITE";
  phone.SendTo(port_, MakeResponse(invite, 180, "Ringing", "", "x1"));
  ASSERT_TRUE(WaitFor(caller, IsStatus(180))) << "180 was not relayed";
  caller.SendTo(port_, Request("CANCEL", d.request_uri, 1, d, caller.port(), d.via_branch));
  ASSERT_TRUE(WaitFor(caller, IsStatus(487))) << "the caller never got 487 for its INVITE";
  SipText cancel;
  ASSERT_TRUE(WaitFor(phone, IsRequest("CANCEL"), cancel)) << "the branch was not cancelled";
  phone.SendTo(
      port_,
      MakeResponse(invite, 200, "OK",
                   absl::StrCat("Contact: <sip:alice@127.0.0.1:", phone.port(), ">\r\n"), "x1"));
  phone.SendTo(port_, MakeResponse(cancel, 200, "OK", "", "x1"));
  std::vector<SipText> got = RequestsUntil(phone, "BYE");
  ASSERT_THAT(Methods(got), ::testing::ElementsAre("ACK", "BYE"))
      << "the phone's answer to a call the caller left was not ended";
  EXPECT_EQ(got[1].Header("Call-ID"), d.call_id);
  EXPECT_THAT(got[1].Header("To"), ::testing::HasSubstr("tag=x1"));
  phone.SendTo(port_, MakeResponse(got[1], 200, "OK", "", "x1"));
  EXPECT_TRUE(ExpectNone(caller, IsStatus(200), absl::Milliseconds(300)))
      << "a 200 reached the caller after its 487";
  EXPECT_EQ(ReleasedCount("caller_gone") - released_before, 1u);
}

// The caller hangs up while an iOS phone is being woken; the woken phone gets the INVITE and
// the CANCEL (CallKit), but answers 200 before the CANCEL reaches it: ACK, then BYE.
TEST_F(CallsTest, WokenPhoneAnsweringTheCancelledCallIsAckedAndEnded) {
  StartRouter();
  const uint64_t released_before = ReleasedCount("caller_gone");
  UdpPeer caller, sleeping, awake;
  Store({Phone(sleeping.port())});
  Dialog d = NewDialog("woken-cancel-1@example.org");
  SendInvite(caller, d);
  ASSERT_TRUE(WaitFor(sleeping, IsRequest("INVITE"))) << "no INVITE to the sleeping contact";
  ASSERT_TRUE(WaitForPushes(emulator_, 1, kWait)) << "the emulator never got the VoIP push";
  caller.SendTo(port_, Request("CANCEL", d.request_uri, 1, d, caller.port(), d.via_branch));
  ASSERT_TRUE(WaitFor(caller, IsStatus(487))) << "the caller never got 487 for its INVITE";

  Store({Phone(awake.port())});
  SipText invite;
  ASSERT_TRUE(WaitFor(awake, IsRequest("INVITE"), invite)) << "the woken phone got no INVITE";
  awake.SendTo(port_, MakeResponse(invite, 100, "Trying", "", "w1"));
  SipText cancel;
  ASSERT_TRUE(WaitFor(awake, IsRequest("CANCEL"), cancel)) << "the woken phone got no CANCEL";
  // CallKit answered before the CANCEL arrived: 200 to the INVITE, then 200 to the CANCEL.
  awake.SendTo(
      port_,
      MakeResponse(invite, 200, "OK",
                   absl::StrCat("Contact: <sip:alice@127.0.0.1:", awake.port(), ">\r\n"), "w1"));
  awake.SendTo(port_, MakeResponse(cancel, 200, "OK", "", "w1"));
  std::vector<SipText> got = RequestsUntil(awake, "BYE");
  ASSERT_THAT(Methods(got), ::testing::ElementsAre("ACK", "BYE"))
      << "the woken phone was left in a call with nobody";
  awake.SendTo(port_, MakeResponse(got[1], 200, "OK", "", "w1"));
  EXPECT_EQ(ReleasedCount("caller_gone") - released_before, 1u);
}

// Pusher slow (the provider takes 3 s, our deadline is 300 ms): the push fails and is counted,
// the reachable phone rings and answers all the same.
TEST_F(CallsTest, PusherSlowStillRingsReachablePhone) {
  emu::Faults faults;
  faults.delay_ms = 3000;
  emulator_.SetFaults(faults);
  push_timeout_ = absl::Milliseconds(300);
  StartRouter();
  uint64_t errors_before = PushCount("error");
  UdpPeer caller, phone;
  Store({Phone(phone.port())});
  Dialog d = NewDialog("slow-1");
  SendInvite(caller, d);
  SipText invite;
  ASSERT_TRUE(WaitFor(phone, IsRequest("INVITE"), invite))
      << "the reachable phone never got the INVITE";
  phone.SendTo(port_, MakeResponse(invite, 180, "Ringing", "", "sl1"));
  ASSERT_TRUE(WaitFor(caller, IsStatus(180))) << "180 was not relayed";
  EXPECT_TRUE(
      Eventually([&] { return PushCount("error") > errors_before; }, kWait, "a push error counted",
                 [&] { return absl::StrCat(PushCount("error") - errors_before, " new errors"); }))
      << "the push past its deadline was not counted";
  phone.SendTo(
      port_,
      MakeResponse(invite, 200, "OK",
                   absl::StrCat("Contact: <sip:alice@127.0.0.1:", phone.port(), ">\r\n"), "sl1"));
  SipText ok;
  ASSERT_TRUE(WaitFor(caller, IsFinal(), ok)) << "the caller never got the final response";
  EXPECT_EQ(ok.Status(), 200);
  emulator_.SetFaults(emu::Faults{});
}

// The whole gateway path in SipProxy: the phone registers through it (masqueraded contact at the
// backend); the backend calls the masqueraded contact; SipProxy restores it and hands the call to
// CallRouter, which rings the phone and pushes it; 200, ACK and BYE go through.
class GatewayTest : public CallsTest {
 protected:
  void StartGateway() {
    StartRouter();  // the push client (and a spare agent)
    SipProxyOptions options;
    options.listen = {{Transport::kUdp, "127.0.0.1", 0}};
    options.backend_uri = absl::StrCat("sip:127.0.0.1:", backend_.port());
    options.masquerade_secret = "0123456789abcdef0123456789abcdef";
    options.registrar.min_expires = absl::Seconds(60);
    auto proxy = SipProxy::Create(*loop_, options, store_, RealClock::Get());
    ASSERT_TRUE(proxy.ok()) << proxy.status();
    sip_proxy_ = *std::move(proxy);
    gw_port_ = sip_proxy_->Listening().at(0).port;
    CallRouterOptions co;
    co.fork = gateway_policy_;
    co.record_route = absl::StrCat("sip:127.0.0.1:", gw_port_);
    co.linger = absl::Seconds(2);
    GrpcPushClient* push = push_.get();
    sip_proxy_->SetCallHandler([this, co, push](nta_agent_t* agent, FlowLookup flows) {
      return std::make_unique<CallRouter>(*loop_, agent, store_, push, RealClock::Get(), co,
                                          std::move(flows));
    });
  }
  // Registers `phone` through the gateway (iOS VoIP with `token`, and `instance` when not
  // empty); returns the masqueraded contact the backend stored.
  std::string Register(UdpPeer& phone, const std::string& token = kToken,
                       const std::string& instance = "") {
    testing::RegisterSpec spec;
    spec.via_port = phone.port();
    spec.call_id = absl::StrCat("reg-", phone.port());
    spec.contacts = {
        absl::StrCat("<sip:alice@127.0.0.1:", phone.port(), ";pn-provider=apns;pn-prid=", token,
                     ";pn-param=", kTeam, ".", kBundle, ".voip>",
                     instance.empty() ? "" : absl::StrCat(";+sip.instance=\"", instance, "\""))};
    phone.SendTo(gw_port_, testing::MakeRegister(spec));
    SipText reg;
    if (::testing::AssertionResult r = WaitFor(backend_, IsRequest("REGISTER"), reg); !r) {
      ADD_FAILURE() << "the backend never got the REGISTER: " << r.message();
      return "";
    }
    std::string contacts;
    for (const std::string& c : reg.Headers("Contact")) {
      absl::StrAppend(&contacts, "Contact: ", c, "\r\n");
    }
    backend_.SendTo(gw_port_, MakeResponse(reg, 200, "OK", contacts));
    EXPECT_TRUE(WaitFor(phone, IsStatus(200))) << "the phone's REGISTER got no 200";
    std::string contact = reg.Header("Contact");
    size_t lt = contact.find('<'), gt = contact.find('>');
    return contact.substr(lt + 1, gt - lt - 1);
  }
  UdpPeer backend_;
  uint16_t gw_port_ = 0;
  ForkPolicy gateway_policy_ = DefaultPolicy();
};

TEST_F(GatewayTest, BackendCallToMasqueradedContactRingsAndPushesThePhone) {
  StartGateway();
  UdpPeer phone;
  std::string masqueraded = Register(phone);
  ASSERT_THAT(masqueraded, ::testing::HasSubstr("pgw="));
  Dialog d = NewDialog("gw-1");
  d.request_uri = masqueraded;
  backend_.SendTo(gw_port_, Request("INVITE", masqueraded, 1, d, backend_.port(), d.via_branch));
  SipText invite;
  ASSERT_TRUE(WaitFor(phone, IsRequest("INVITE"), invite))
      << "the phone never got the backend's call";
  EXPECT_THAT(invite.RequestUri(), ::testing::HasSubstr(absl::StrCat(":", phone.port())));
  EXPECT_THAT(invite.RequestUri(), ::testing::HasSubstr("pn-prid"));
  EXPECT_THAT(invite.Header("Record-Route"), ::testing::HasSubstr(absl::StrCat(":", gw_port_)));
  ASSERT_TRUE(WaitForPushes(emulator_, 1, kWait)) << "no VoIP push for the call";
  EXPECT_NE(ApnsPushes().at(0).body.find(d.call_id), std::string::npos);
  std::string contact = absl::StrCat("Contact: <sip:alice@127.0.0.1:", phone.port(),
                                     ">\r\nRecord-Route: ", invite.Header("Record-Route"), "\r\n");
  phone.SendTo(gw_port_, MakeResponse(invite, 200, "OK", contact, "gw1"));
  SipText ok;
  ASSERT_TRUE(WaitFor(backend_, IsFinal(), ok)) << "the backend never got the final response";
  ASSERT_EQ(ok.Status(), 200) << ok.text();
  d.to = ok.Header("To");
  std::string route = absl::StrCat("Route: ", ok.Header("Record-Route"), "\r\n");
  std::string phone_uri = absl::StrCat("sip:alice@127.0.0.1:", phone.port());
  backend_.SendTo(gw_port_,
                  Request("ACK", phone_uri, 1, d, backend_.port(), "z9hG4bK-gwack", route));
  ASSERT_TRUE(WaitFor(phone, IsRequest("ACK"))) << "the ACK never reached the phone";
  backend_.SendTo(gw_port_,
                  Request("BYE", phone_uri, 2, d, backend_.port(), "z9hG4bK-gwbye", route));
  SipText bye;
  ASSERT_TRUE(WaitFor(phone, IsRequest("BYE"), bye)) << "the BYE never reached the phone";
  phone.SendTo(gw_port_, MakeResponse(bye, 200, "OK", "", "gw1"));
  SipText bye_ok;
  ASSERT_TRUE(WaitFor(backend_, IsFinal(), bye_ok)) << "the BYE's 200 never came back";
  EXPECT_EQ(bye_ok.Status(), 200);
}

// Outbound-proxy use: a phone's INVITE goes to the backend with our Record-Route.
TEST_F(GatewayTest, PhoneInviteToBackendIsRecordRouted) {
  StartGateway();
  UdpPeer phone;
  Dialog d = NewDialog("out-1");
  d.request_uri = "sip:bob@example.org";
  phone.SendTo(gw_port_, Request("INVITE", d.request_uri, 1, d, phone.port(), d.via_branch));
  SipText invite;
  ASSERT_TRUE(WaitFor(backend_, IsRequest("INVITE"), invite))
      << "the backend never got the phone's INVITE";
  EXPECT_THAT(invite.Header("Record-Route"), ::testing::HasSubstr(absl::StrCat(":", gw_port_)));
  backend_.SendTo(gw_port_, MakeResponse(invite, 486, "Busy Here", "", "bk1"));
  SipText busy;
  ASSERT_TRUE(WaitFor(phone, IsFinal(), busy)) << "the phone never got the final response";
  EXPECT_EQ(busy.Status(), 486);
}

namespace two_phones {

// One phone of alice: an iOS VoIP app with its own token and instance, asleep or awake. Asleep,
// it ignores what reaches its old socket; woken, it registers again from a new one.
struct TestPhone {
  std::string token;
  std::string instance;
  std::unique_ptr<UdpPeer> first = std::make_unique<UdpPeer>();  // as registered first
  std::unique_ptr<UdpPeer> woken;                                // after the push
  std::string masqueraded;                                       // its contact at the backend
  std::vector<SipText> seen;                                     // every message it got
};

// Distinct INVITE transactions (by Via branch: UDP retransmissions count once).
size_t Invites(const std::vector<SipText>& seen) {
  std::set<std::string> branches;
  for (const SipText& m : seen) {
    if (!m.IsResponse() && m.Method() == "INVITE") branches.insert(m.Header("Via"));
  }
  return branches.size();
}
size_t CountRequests(const std::vector<SipText>& seen, const std::string& method) {
  std::set<std::string> distinct;
  for (const SipText& m : seen) {
    if (!m.IsResponse() && m.Method() == method) {
      distinct.insert(absl::StrCat(m.Header("Via"), m.Header("CSeq")));
    }
  }
  return distinct.size();
}

// The backend (Kamailio, Asterisk...) holds alice's two masqueraded contacts and forks a call
// to each: two INVITEs, one per contact, same Call-ID, other Via branches. Counts what every
// phone gets, the pushes per token, and the 110s at the backend.
class TwoPhonesTest : public GatewayTest {
 protected:
  void SetUp() override {
    GatewayTest::SetUp();
    // An awake phone rings within a second and is not pushed; a sleeping one is, after it.
    gateway_policy_.push_delay_voip = absl::Seconds(1);
    StartGateway();
    phones_[0].token = std::string(64, 'e');
    phones_[0].instance = "<urn:uuid:00000000-0000-0000-0000-00000000000e>";
    phones_[1].token = std::string(64, 'f');
    phones_[1].instance = "<urn:uuid:00000000-0000-0000-0000-00000000000f>";
    for (TestPhone& p : phones_) {
      p.masqueraded = Register(*p.first, p.token, p.instance);
      ASSERT_THAT(p.masqueraded, ::testing::HasSubstr("pgw="));
    }
    ASSERT_NE(phones_[0].masqueraded, phones_[1].masqueraded);
    emulator_.Reset();
  }

  // The backend's fork: INVITE `i` goes to phone i's masqueraded contact.
  void BackendCalls() {
    d_ = NewDialog("two-phones-1");
    for (size_t i = 0; i < 2; ++i) {
      invites_[i] = Request("INVITE", phones_[i].masqueraded, 1, d_, backend_.port(),
                            absl::StrCat("z9hG4bK-fork-", i));
      backend_.SendTo(gw_port_, invites_[i]);
    }
  }
  // The backend CANCELs its branch `i` (another branch answered).
  void BackendCancels(size_t i) {
    backend_.SendTo(gw_port_, Request("CANCEL", phones_[i].masqueraded, 1, d_, backend_.port(),
                                      absl::StrCat("z9hG4bK-fork-", i)));
  }
  // What reached `peer` within `window`, added to `phone.seen`; an awake phone answers every new
  // INVITE 180 at once.
  void Collect(TestPhone& phone, UdpPeer& peer, absl::Duration window, bool awake) {
    const absl::Time end = absl::Now() + window;
    std::set<std::string> rang;
    for (absl::Time now = absl::Now(); now < end; now = absl::Now()) {
      std::optional<SipText> m = peer.Receive(end - now);
      if (!m) break;
      if (awake && !m->IsResponse() && m->Method() == "INVITE" &&
          rang.insert(m->Header("Via")).second) {
        peer.SendTo(gw_port_, MakeResponse(*m, 180, "Ringing", "", tag(phone)));
      }
      phone.seen.push_back(*std::move(m));
    }
  }
  // Both phones at once for `window` (awake[i]: phone i rings), on their current sockets.
  void CollectBoth(absl::Duration window, std::array<bool, 2> awake) {
    const absl::Time end = absl::Now() + window;
    while (absl::Now() < end) {
      for (size_t i = 0; i < 2; ++i) {
        UdpPeer& peer = phones_[i].woken ? *phones_[i].woken : *phones_[i].first;
        Collect(phones_[i], peer, absl::Milliseconds(20), awake[i]);
      }
    }
  }
  // The backend's responses so far (and answers REGISTERs relayed meanwhile).
  void CollectBackend(absl::Duration window) {
    const absl::Time end = absl::Now() + window;
    for (absl::Time now = absl::Now(); now < end; now = absl::Now()) {
      std::optional<SipText> m = backend_.Receive(end - now);
      if (!m) break;
      if (!m->IsResponse() && m->Method() == "REGISTER") {
        std::string contacts;
        for (const std::string& c : m->Headers("Contact")) {
          absl::StrAppend(&contacts, "Contact: ", c, "\r\n");
        }
        backend_.SendTo(gw_port_, MakeResponse(*m, 200, "OK", contacts));
        continue;
      }
      backend_seen_.push_back(*std::move(m));
    }
  }
  size_t BackendStatuses(int status) const {
    return std::count_if(backend_seen_.begin(), backend_seen_.end(), [&](const SipText& m) {
      return m.Status() == status && absl::StrContains(m.Header("CSeq"), "INVITE");
    });
  }
  size_t PushesTo(const TestPhone& phone) {
    auto all = emulator_.Received();
    return std::count_if(all.begin(), all.end(),
                         [&](const emu::ReceivedRequest& r) { return r.token == phone.token; });
  }
  // Phone `i` wakes: registers again from a new socket (the backend answers through
  // CollectBackend's loop, run here).
  void Wake(size_t i) {
    TestPhone& p = phones_[i];
    p.woken = std::make_unique<UdpPeer>();
    testing::RegisterSpec spec;
    spec.via_port = p.woken->port();
    spec.call_id = absl::StrCat("reg-", p.first->port());
    spec.cseq = 2;
    spec.contacts = {absl::StrCat("<sip:alice@127.0.0.1:", p.woken->port(),
                                  ";pn-provider=apns;pn-prid=", p.token, ";pn-param=", kTeam, ".",
                                  kBundle, ".voip>;+sip.instance=\"", p.instance, "\"")};
    p.woken->SendTo(gw_port_, testing::MakeRegister(spec));
    CollectBackend(absl::Milliseconds(200));
  }
  // Phone `i` answers 200 the INVITE it got on its current socket.
  void Answer(size_t i) {
    TestPhone& p = phones_[i];
    UdpPeer& peer = p.woken ? *p.woken : *p.first;
    for (const SipText& m : p.seen) {
      if (m.IsResponse() || m.Method() != "INVITE") continue;
      if (!absl::StrContains(m.RequestUri(), absl::StrCat(":", peer.port()))) continue;
      peer.SendTo(gw_port_,
                  MakeResponse(m, 200, "OK",
                               absl::StrCat("Contact: <sip:alice@127.0.0.1:", peer.port(), ">\r\n"),
                               tag(p)));
      answered_at_ = p.seen.size();
      return;
    }
    ADD_FAILURE() << "phone " << i << " has no INVITE to answer";
  }
  std::string tag(const TestPhone& p) const { return absl::StrCat("ph", p.first->port()); }
  // "phone 0: 1 INVITE(s), 1 push(es)" for failure messages and the report.
  std::string Summary() {
    std::string out;
    for (size_t i = 0; i < 2; ++i) {
      absl::StrAppend(&out, "phone ", i, ": ", Invites(phones_[i].seen), " INVITE(s), ",
                      CountRequests(phones_[i].seen, "CANCEL"), " CANCEL(s), ",
                      PushesTo(phones_[i]), " push(es); ");
    }
    absl::StrAppend(&out, "backend: ", BackendStatuses(110), " x 110");
    return out;
  }

  std::array<TestPhone, 2> phones_;
  Dialog d_;
  std::array<std::string, 2> invites_;
  std::vector<SipText> backend_seen_;
  size_t answered_at_ = 0;
};

TEST_F(TwoPhonesTest, BothAwakeEachRingsOnceAndNobodyIsPushed) {
  BackendCalls();
  CollectBoth(absl::Milliseconds(1800), {true, true});
  CollectBackend(absl::Milliseconds(100));
  RecordProperty("counts", Summary());
  EXPECT_EQ(Invites(phones_[0].seen), 1u) << Summary();
  EXPECT_EQ(Invites(phones_[1].seen), 1u) << Summary();
  EXPECT_EQ(PushesTo(phones_[0]), 0u) << Summary();
  EXPECT_EQ(PushesTo(phones_[1]), 0u) << Summary();
  EXPECT_EQ(BackendStatuses(110), 0u) << Summary();
  EXPECT_EQ(BackendStatuses(180), 2u) << "one 180 per backend branch; " << Summary();
}

TEST_F(TwoPhonesTest, BothAsleepEachIsPushedOnceAndCalledOnceWhenWoken) {
  BackendCalls();
  CollectBoth(absl::Milliseconds(1500), {false, false});
  ASSERT_TRUE(WaitForPushes(emulator_, 2, kWait));
  CollectBoth(absl::Milliseconds(300), {false, false});
  CollectBackend(absl::Milliseconds(100));
  EXPECT_EQ(PushesTo(phones_[0]), 1u) << Summary();
  EXPECT_EQ(PushesTo(phones_[1]), 1u) << Summary();
  EXPECT_EQ(BackendStatuses(110), 2u) << "one 110 per backend branch; " << Summary();
  EXPECT_EQ(Invites(phones_[0].seen), 1u) << "at the sleeping socket; " << Summary();
  EXPECT_EQ(Invites(phones_[1].seen), 1u) << "at the sleeping socket; " << Summary();

  // Phone 0 wakes: it gets its own call once, phone 1 (still asleep) nothing more.
  Wake(0);
  CollectBoth(absl::Milliseconds(600), {true, false});
  EXPECT_EQ(Invites(phones_[0].seen), 2u) << "one more INVITE, at the new socket; " << Summary();
  EXPECT_EQ(Invites(phones_[1].seen), 1u) << Summary();
  Wake(1);
  CollectBoth(absl::Milliseconds(600), {true, true});
  CollectBackend(absl::Milliseconds(100));
  RecordProperty("counts", Summary());
  EXPECT_EQ(Invites(phones_[0].seen), 2u) << Summary();
  EXPECT_EQ(Invites(phones_[1].seen), 2u) << Summary();
  EXPECT_EQ(PushesTo(phones_[0]) + PushesTo(phones_[1]), 2u) << Summary();
}

TEST_F(TwoPhonesTest, OneAwakeOneAsleepOnlyTheSleepingOneIsPushed) {
  BackendCalls();
  CollectBoth(absl::Milliseconds(1500), {true, false});
  ASSERT_TRUE(WaitForPushes(emulator_, 1, kWait));
  CollectBoth(absl::Milliseconds(300), {true, false});
  CollectBackend(absl::Milliseconds(100));
  RecordProperty("counts", Summary());
  EXPECT_EQ(Invites(phones_[0].seen), 1u) << Summary();
  EXPECT_EQ(Invites(phones_[1].seen), 1u) << Summary();
  EXPECT_EQ(PushesTo(phones_[0]), 0u) << "the awake phone rang: no push; " << Summary();
  EXPECT_EQ(PushesTo(phones_[1]), 1u) << Summary();
  EXPECT_EQ(BackendStatuses(110), 1u) << Summary();
}

// Phone 0 answers; the backend relays the 200 upstream and CANCELs its branch to phone 1 (as
// Kamailio does): phone 1 gets that one CANCEL, phone 0 no CANCEL and no new INVITE after its
// answer (no "missed call" on the phone that took the call).
TEST_F(TwoPhonesTest, OnePhoneAnswersTheOtherGetsOneCancelAndTheAnswererNone) {
  BackendCalls();
  CollectBoth(absl::Milliseconds(300), {true, true});
  Answer(0);
  CollectBackend(absl::Milliseconds(300));
  ASSERT_EQ(BackendStatuses(200), 1u) << "the backend never got the 200; " << Summary();
  BackendCancels(1);
  CollectBoth(absl::Milliseconds(1500), {true, true});
  CollectBackend(absl::Milliseconds(100));
  RecordProperty("counts", Summary());
  std::vector<SipText> after(phones_[0].seen.begin() + answered_at_, phones_[0].seen.end());
  EXPECT_EQ(CountRequests(after, "CANCEL"), 0u)
      << "the answering phone got a CANCEL; " << Summary();
  EXPECT_EQ(Invites(after), 0u) << "the answering phone got an INVITE after its answer";
  EXPECT_EQ(CountRequests(phones_[1].seen, "CANCEL"), 1u) << Summary();
  EXPECT_EQ(Invites(phones_[0].seen), 1u) << Summary();
  EXPECT_EQ(Invites(phones_[1].seen), 1u) << Summary();
  EXPECT_EQ(BackendStatuses(200), 1u) << "one 200 at the backend; " << Summary();
  EXPECT_GE(BackendStatuses(487), 1u) << "the cancelled branch ends 487; " << Summary();
}

// A phone that registered again from another port while the backend keeps its old contact (as
// Kamailio does, matching contacts by URI): the backend holds two masqueraded contacts of the
// one phone and forks each call to both. The phone gets the call once, at its current contact;
// the second request is answered 482 (merged request).
TEST_F(GatewayTest, PhoneWithTwoContactsAtTheBackendRingsOnce) {
  StartGateway();
  UdpPeer before, now;
  const std::string instance = "<urn:uuid:00000000-0000-0000-0000-0000000000aa>";
  const std::string old_contact = Register(before, kToken, instance);
  const std::string new_contact = Register(now, kToken, instance);
  ASSERT_NE(old_contact, new_contact);
  Dialog d = NewDialog("stale-contact-1");
  backend_.SendTo(gw_port_, Request("INVITE", old_contact, 1, d, backend_.port(), "z9hG4bK-old"));
  backend_.SendTo(gw_port_, Request("INVITE", new_contact, 1, d, backend_.port(), "z9hG4bK-new"));
  SipText invite;
  ASSERT_TRUE(WaitFor(now, IsRequest("INVITE"), invite)) << "the phone never got the call";
  now.SendTo(gw_port_, MakeResponse(invite, 180, "Ringing", "", "st1"));
  EXPECT_TRUE(ExpectNone(now, IsRequest("INVITE"), absl::Milliseconds(700)))
      << "the phone got the call twice";
  SipText merged;
  EXPECT_TRUE(WaitFor(backend_, IsStatus(482), merged)) << "no 482 for the second request";
  EXPECT_TRUE(ExpectNone(before, IsRequest("INVITE"), absl::Milliseconds(10)))
      << "the old contact was called";
}

}  // namespace two_phones

}  // namespace
}  // namespace pushgate::proxy::sofia
