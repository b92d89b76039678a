#include "proxy/core/request_route.h"

#include <string>

#include "gtest/gtest.h"

namespace pushgate::proxy {
namespace {

// Facts of an ordinary request from a phone: parsed, Max-Forwards 70, a backend configured.
RequestFacts Phone(Method method) {
  RequestFacts f;
  f.method = method;
  f.max_forwards = 70;
  f.has_backend = true;
  return f;
}

struct Case {
  const char* name;
  RequestFacts facts;
  const char* expected;  // DebugString of the route
};

RequestFacts With(RequestFacts f, void (*change)(RequestFacts&)) {
  change(f);
  return f;
}

class ClassifyTest : public ::testing::TestWithParam<Case> {};

TEST_P(ClassifyTest, Routes) {
  EXPECT_EQ(DebugString(Classify(GetParam().facts)), GetParam().expected) << GetParam().name;
}

const Case kCases[] = {
    {"unparsed", With(Phone(Method::kInvite), [](RequestFacts& f) { f.parsed = false; }),
     "reject(400 bad_request)"},
    // Step 0: our Record-Route on top.
    {"in dialog allowed",
     With(Phone(Method::kOther),
          [](RequestFacts& f) {
            f.has_call_handler = f.our_route = f.in_dialog_allowed = true;
            f.max_forwards = 0;  // the call handler decides
          }),
     "in_dialog"},
    {"in dialog denied",
     With(Phone(Method::kOther), [](RequestFacts& f) { f.has_call_handler = f.our_route = true; }),
     "reject(403 relay_denied)"},
    {"in dialog denied ACK is dropped",
     With(Phone(Method::kAck), [](RequestFacts& f) { f.has_call_handler = f.our_route = true; }),
     "drop(relay_denied)"},
    {"our route without a call handler is not a dialog of ours",
     With(Phone(Method::kOther), [](RequestFacts& f) { f.our_route = f.in_dialog_allowed = true; }),
     "relay_to_backend"},
    // ACK outside our dialogs.
    {"phone ACK to the backend", Phone(Method::kAck), "forward_ack"},
    {"ACK before Max-Forwards and draining",
     With(Phone(Method::kAck), [](RequestFacts& f) { f.max_forwards = 0, f.draining = true; }),
     "forward_ack"},
    {"backend ACK absorbed",
     With(Phone(Method::kAck), [](RequestFacts& f) { f.from_trusted_backend = true; }),
     "absorb_ack"},
    {"ACK without backend absorbed",
     With(Phone(Method::kAck), [](RequestFacts& f) { f.has_backend = false; }), "absorb_ack"},
    // Step 1.
    {"Max-Forwards 0", With(Phone(Method::kRegister), [](RequestFacts& f) { f.max_forwards = 0; }),
     "reject(483 too_many_hops)"},
    {"no Max-Forwards is fine",
     With(Phone(Method::kRegister), [](RequestFacts& f) { f.max_forwards.reset(); }), "register"},
    {"draining", With(Phone(Method::kRegister), [](RequestFacts& f) { f.draining = true; }),
     "reject(503 draining)"},
    {"Max-Forwards before draining",
     With(Phone(Method::kInvite), [](RequestFacts& f) { f.max_forwards = 0, f.draining = true; }),
     "reject(483 too_many_hops)"},
    // Step 2.
    {"REGISTER", Phone(Method::kRegister), "register"},
    {"REGISTER ignores request URI facts",
     With(Phone(Method::kRegister), [](RequestFacts& f) { f.masquerade_marker = true; }),
     "register"},
    // Step 3.
    {"stray CANCEL", Phone(Method::kCancel), "reject(481 no_transaction)"},
    {"bad request URI",
     With(Phone(Method::kInvite), [](RequestFacts& f) { f.request_uri_valid = false; }),
     "reject(400 bad_request)"},
    // Step 4.
    {"forged masquerade",
     With(Phone(Method::kInvite),
          [](RequestFacts& f) {
            f.masquerade_marker = true;
            f.has_call_handler = true;
            f.from_trusted_backend = true;
          }),
     "reject(403 bad_masquerade)"},
    {"valid masquerade to the AOR",
     With(Phone(Method::kInvite),
          [](RequestFacts& f) {
            f.masquerade_marker = f.masquerade_valid = true;
            f.has_call_handler = f.from_trusted_backend = true;
          }),
     "to_aor"},
    {"valid masquerade without a call handler",
     With(Phone(Method::kInvite),
          [](RequestFacts& f) { f.masquerade_marker = f.masquerade_valid = true; }),
     "reject(480 not_routed)"},
    // Step 5.
    {"backend request without masquerade",
     With(Phone(Method::kInvite), [](RequestFacts& f) { f.from_trusted_backend = true; }),
     "reject(404 backend_unknown_target)"},
    // Step 6.
    {"phone INVITE to the backend", Phone(Method::kInvite), "relay_to_backend"},
    {"phone INVITE with a call handler is record-routed",
     With(Phone(Method::kInvite), [](RequestFacts& f) { f.has_call_handler = true; }),
     "relay_to_backend+rr"},
    {"only INVITE is record-routed",
     With(Phone(Method::kOther), [](RequestFacts& f) { f.has_call_handler = true; }),
     "relay_to_backend"},
    {"no backend, allowed domain",
     With(Phone(Method::kOther),
          [](RequestFacts& f) {
            f.has_backend = false;
            f.relay_domain_allowed = true;
          }),
     "relay_to_request_uri"},
    {"no backend, other domain: not an open relay",
     With(Phone(Method::kInvite), [](RequestFacts& f) { f.has_backend = false; }),
     "reject(403 relay_denied)"},
};

INSTANTIATE_TEST_SUITE_P(ProcessingOrder, ClassifyTest, ::testing::ValuesIn(kCases));

TEST(MethodOfTest, KnownAndOther) {
  EXPECT_EQ(MethodOf("REGISTER"), Method::kRegister);
  EXPECT_EQ(MethodOf("INVITE"), Method::kInvite);
  EXPECT_EQ(MethodOf("ACK"), Method::kAck);
  EXPECT_EQ(MethodOf("CANCEL"), Method::kCancel);
  EXPECT_EQ(MethodOf("BYE"), Method::kOther);
  EXPECT_EQ(MethodOf("register"), Method::kOther);  // methods are case-sensitive
}

TEST(NextHopTransportTest, TheBackendsElseTheRequestUris) {
  const Uri tcp_backend = *ParseUri("sip:backend.example.org;transport=tcp");
  const Uri tls_uri = *ParseUri("sips:alice@example.org");
  EXPECT_EQ(NextHopTransport(tcp_backend, tls_uri), Transport::kTcp);
  EXPECT_EQ(NextHopTransport(std::nullopt, tls_uri), Transport::kTls);
  EXPECT_EQ(NextHopTransport(std::nullopt, *ParseUri("sip:a@example.org")), Transport::kUdp);
  EXPECT_EQ(NextHopTransport(std::nullopt, *ParseUri("sip:a@example.org;transport=ws")),
            Transport::kUdp);
}

}  // namespace
}  // namespace pushgate::proxy
