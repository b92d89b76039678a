#include "pusher/core/request_wire.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace pushgate::pusher {
namespace {

using ::testing::HasSubstr;

v1::PushRequest ValidRequest() {
  v1::PushRequest request;
  request.set_request_id("4f1c7a52-8d0e-4b6a-9a53-2f7d1c9e0b11");
  request.mutable_destination()->set_provider(v1::APNS);
  request.mutable_destination()->set_app("TEAM123456.com.example.phone.voip");
  request.mutable_destination()->set_device_token(std::string(64, 'a'));
  request.set_kind(v1::VOIP);
  request.set_caller_display_name("Alice");
  (*request.mutable_data())["k"] = "v";
  return request;
}

// Serializes, then puts `bad` where `marker` was: the client libraries of other languages
// would send such bytes, protobuf's C++ serializer only logs them.
std::string WireWith(v1::PushRequest request, const std::string& marker, const std::string& bad,
                     void (*set)(v1::PushRequest&, const std::string&)) {
  set(request, marker);
  std::string wire = request.SerializeAsString();
  const size_t at = wire.find(marker);
  EXPECT_NE(at, std::string::npos);
  wire.replace(at, marker.size(), bad);  // same length: the length prefix stays right
  return wire;
}

TEST(ParsePushRequestTest, AValidRequestParses) {
  const v1::PushRequest request = ValidRequest();
  auto parsed = ParsePushRequest(request.SerializeAsString());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->SerializeAsString(), request.SerializeAsString());
}

TEST(ParsePushRequestTest, InvalidUtf8IsNamedByField) {
  struct Row {
    const char* field;
    void (*set)(v1::PushRequest&, const std::string&);
  };
  const Row rows[] = {
      {"caller_display_name",
       [](v1::PushRequest& r, const std::string& v) { r.set_caller_display_name(v); }},
      {"destination.app",
       [](v1::PushRequest& r, const std::string& v) { r.mutable_destination()->set_app(v); }},
      {"data.key", [](v1::PushRequest& r, const std::string& v) { (*r.mutable_data())[v] = "x"; }},
      {"data.value",
       [](v1::PushRequest& r, const std::string& v) { (*r.mutable_data())["x"] = v; }},
      {"request_id", [](v1::PushRequest& r, const std::string& v) { r.set_request_id(v); }},
  };
  for (const Row& row : rows) {
    // "ZZZZ" becomes "Jos\xE9": Latin-1, legal in SIP, not UTF-8.
    const std::string wire = WireWith(ValidRequest(), "ZZZZ", "Jos\xE9", row.set);
    auto parsed = ParsePushRequest(wire);
    ASSERT_FALSE(parsed.ok()) << row.field;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << row.field;
    EXPECT_EQ(parsed.status().message(), std::string(row.field) + ": is not valid UTF-8 (byte 3)");
    // protobuf itself refuses these bytes, without saying which field.
    EXPECT_FALSE(v1::PushRequest().ParseFromString(wire)) << row.field;
  }
}

TEST(ParsePushRequestTest, AnOversizedRequestNamesItsLargestField) {
  v1::PushRequest request = ValidRequest();
  request.mutable_destination()->set_app(std::string(size_t{100} * 1024, 'a'));  // a 100 KB topic
  auto parsed = ParsePushRequest(request.SerializeAsString());
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(parsed.status().message(), HasSubstr("destination.app: the request is"));
  EXPECT_THAT(parsed.status().message(), HasSubstr("at most 32768 (this field holds 102400)"));
}

TEST(ParsePushRequestTest, MalformedEncodingsAreInvalidArgument) {
  const std::string valid = ValidRequest().SerializeAsString();
  const std::string cases[] = {
      valid.substr(0, valid.size() - 3),  // truncated inside the data map
      std::string("\x0a\x7f", 2) + "ab",  // request_id claims 127 bytes
      std::string("\x0b", 1),             // a group
      std::string("\x00", 1),             // tag zero
      std::string("\x20\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 11),  // a varint of 11 bytes
  };
  for (const std::string& wire : cases) {
    auto parsed = ParsePushRequest(wire);
    ASSERT_FALSE(parsed.ok());
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(parsed.status().message(), HasSubstr("request"));
  }
}

TEST(ParsePushRequestTest, UnknownFieldsAreKept) {
  std::string wire = ValidRequest().SerializeAsString();
  wire += std::string(
      "\xfa\x01\x03"
      "new",
      6);  // field 31, length-delimited, from a newer client
  auto parsed = ParsePushRequest(wire);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->caller_display_name(), "Alice");
}

TEST(PeekRequestIdTest, ReadsTheIdOfARequestThatFailed) {
  const std::string wire =
      WireWith(ValidRequest(), "ZZZZ", "Jos\xE9",
               [](v1::PushRequest& r, const std::string& v) { r.set_caller_display_name(v); });
  EXPECT_EQ(PeekRequestId(wire), "4f1c7a52-8d0e-4b6a-9a53-2f7d1c9e0b11");
  EXPECT_EQ(PeekRequestId(std::string("\x0a\x04"
                                      "J\xE9zz",
                                      6)),
            "");  // not UTF-8: no id
  EXPECT_EQ(PeekRequestId(""), "");
}

}  // namespace
}  // namespace pushgate::pusher
