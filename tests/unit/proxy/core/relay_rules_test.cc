#include "proxy/core/relay_rules.h"

#include <gtest/gtest.h>

#include <string>

namespace pushgate::proxy {
namespace {

using Action = ResponseRelay::Action;

TEST(RelayRulesTest, MaxForwardsIsDecrementedAndCapped) {
  struct Case {
    std::optional<uint32_t> received;
    uint32_t forwarded;
  };
  const Case cases[] = {{std::nullopt, 69}, {70, 69}, {5, 4}, {1, 0}, {0, 0}, {255, 69}};
  for (const Case& c : cases) {
    EXPECT_EQ(ForwardedMaxForwards(c.received), c.forwarded) << c.received.value_or(-1);
  }
}

TEST(RelayRulesTest, TooManyHopsOnlyAtZeroAndNeverForAck) {
  EXPECT_TRUE(TooManyHops(0, false));
  EXPECT_FALSE(TooManyHops(0, true));
  EXPECT_FALSE(TooManyHops(1, false));
  EXPECT_FALSE(TooManyHops(std::nullopt, false));
}

Binding PhoneBinding(const std::string& contact, TransportInfo received, std::string flow) {
  Binding b;
  b.contact = *ParseUri(contact);
  b.received = std::move(received);
  b.flow_token = std::move(flow);
  return b;
}

TEST(RelayRulesTest, BranchGoesOverTheFlowElseWhereTheRegisterCameFrom) {
  const TransportInfo nat{Transport::kUdp, "198.51.100.7", 40000};
  const TransportInfo tls{Transport::kTls, "2001:db8::7", 40001};
  struct Case {
    const char* name;
    Binding binding;
    bool flow_live;
    bool via_flow;
    std::string next_hop;
    std::optional<Transport> transport;
    bool signs_phone;
  };
  const Case cases[] = {
      {"live flow", PhoneBinding("sip:a@10.0.0.5;transport=tcp", tls, "f1"), true, true, "",
       Transport::kTcp, false},
      {"dead flow: the address it came from", PhoneBinding("sip:a@10.0.0.5", tls, "f1"), false,
       false, "sips:[2001:db8::7]:40001;transport=tls", Transport::kTls, true},
      {"udp behind nat", PhoneBinding("sip:a@10.0.0.5", nat, ""), false, false,
       "sip:198.51.100.7:40000;transport=udp", Transport::kUdp, true},
      {"no source: the contact", PhoneBinding("sip:a@10.0.0.5;transport=tcp", {}, ""), false, false,
       "", Transport::kTcp, false},
      {"no source, bad transport", PhoneBinding("sip:a@10.0.0.5;transport=ws", {}, ""), false,
       false, "", std::nullopt, false},
  };
  for (const Case& c : cases) {
    BranchHop hop =
        BranchHopFor(c.binding, c.flow_live,
                     c.flow_live ? std::optional<Transport>(Transport::kTcp) : std::nullopt);
    EXPECT_EQ(hop.via_flow, c.via_flow) << c.name;
    EXPECT_EQ(hop.next_hop, c.next_hop) << c.name;
    EXPECT_EQ(hop.transport, c.transport) << c.name;
    EXPECT_EQ(hop.phone.has_value(), c.signs_phone) << c.name;
  }
}

TEST(RelayRulesTest, BranchReachableNeedsALiveFlowOnlyWithAFlowToken) {
  EXPECT_TRUE(BranchReachable(PhoneBinding("sip:a@10.0.0.5", {}, ""), false));
  EXPECT_TRUE(BranchReachable(PhoneBinding("sip:a@10.0.0.5", {}, "f1"), true));
  EXPECT_FALSE(BranchReachable(PhoneBinding("sip:a@10.0.0.5", {}, "f1"), false));
}

TEST(RelayRulesTest, InDialogNextHop) {
  const std::string loose = "sip:bob@10.0.0.5";
  const TransportInfo phone{Transport::kUdp, "198.51.100.7", 40000};
  const TransportInfo backend{Transport::kUdp, "192.0.2.10", 5060};
  EXPECT_EQ(InDialogNextHop(loose, true, std::nullopt, backend), loose);
  EXPECT_EQ(InDialogNextHop(loose, false, std::nullopt, backend), loose);
  EXPECT_EQ(InDialogNextHop(loose, false, phone, backend), "sip:198.51.100.7:40000;transport=udp");
  EXPECT_EQ(InDialogNextHop(loose, false, phone, std::nullopt),
            "sip:198.51.100.7:40000;transport=udp");
  // From the phone itself: toward the caller.
  EXPECT_EQ(InDialogNextHop(loose, false, phone, phone), loose);
}

// The reason phrase of our own answer ("" when the response is relayed or ignored).
std::string AnswerReason(const ResponseRelay& r) {
  return r.action == Action::kAnswer ? std::string(Describe(r.outcome).reason) : "";
}

TEST(RelayRulesTest, InDialogResponses) {
  struct Case {
    int status;
    bool internal;
    Action action;
    std::string reason;
    bool done;
  };
  const Case cases[] = {
      {100, false, Action::kIgnore, "", false},
      {180, false, Action::kRelay, "", false},
      {200, false, Action::kRelay, "", true},
      {486, false, Action::kRelay, "", true},
      {408, true, Action::kAnswer, "Request Timeout", true},
      {503, true, Action::kAnswer, "Unreachable", true},
  };
  for (const Case& c : cases) {
    ResponseRelay r = RelayResponse(c.status, c.internal);
    EXPECT_EQ(r.action, c.action) << c.status;
    EXPECT_EQ(r.status, c.status) << c.status;
    EXPECT_EQ(AnswerReason(r), c.reason) << c.status;
    EXPECT_EQ(r.done, c.done) << c.status;
  }
}

TEST(RelayRulesTest, ForkResponses) {
  struct Case {
    int status;
    bool have_response;
    bool final_sent;
    Action action;
    int answer_status;
    std::string reason;
  };
  const Case cases[] = {
      {180, true, false, Action::kRelay, 180, ""},
      {200, true, false, Action::kRelay, 200, ""},
      {200, true, true, Action::kRelay, 200, ""},  // every 2xx goes on
      {486, true, false, Action::kRelay, 486, ""},
      {486, true, true, Action::kIgnore, 486, ""},  // one non-2xx final only
      {408, false, false, Action::kAnswer, 408, "Request Timeout"},
      {503, false, false, Action::kAnswer, 500, "No answer"},
      {503, false, true, Action::kIgnore, 503, ""},
  };
  for (const Case& c : cases) {
    ResponseRelay r = ForkResponse(c.status, c.have_response, c.final_sent);
    EXPECT_EQ(r.action, c.action) << c.status << " final_sent=" << c.final_sent;
    EXPECT_EQ(r.status, c.answer_status) << c.status;
    EXPECT_EQ(AnswerReason(r), c.reason) << c.status;
  }
}

}  // namespace
}  // namespace pushgate::proxy
