#include "pusher/http2/call.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pushgate::http2 {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Pair;

TEST(Call, ReadsTheBodyInPiecesAndSaysWhenItEnds) {
  Call call(Request{"POST", "/p", {}, "0123456789", absl::InfiniteFuture()}, [](const Result&) {});
  uint8_t buf[4];
  bool eof = true;
  EXPECT_EQ(call.ReadBody(buf, 4, &eof), 4u);
  EXPECT_FALSE(eof);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(buf), 4), "0123");
  EXPECT_EQ(call.ReadBody(buf, 4, &eof), 4u);
  EXPECT_FALSE(eof);
  EXPECT_EQ(call.ReadBody(buf, 4, &eof), 2u);
  EXPECT_TRUE(eof);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(buf), 2), "89");
}

TEST(Call, FinalHeaderBlockReplacesAnInformationalOne) {
  Call call(Request{}, [](const Result&) {});
  call.OnResponseHeader(":status", "100");
  call.OnResponseHeader("x-early", "1");
  call.OnResponseHeader(":status", "200");
  call.OnResponseHeader("apns-id", "abc");
  call.OnResponseHeader(":other-pseudo", "ignored");
  Response r = call.TakeResponse();
  EXPECT_EQ(r.status, 200);
  EXPECT_THAT(r.headers, ElementsAre(Pair("apns-id", "abc")));
}

TEST(Call, BodyBeyondTheLimitIsRefused) {
  Call call(Request{}, [](const Result&) {});
  EXPECT_TRUE(call.AppendBody("12345", 8));
  EXPECT_TRUE(call.AppendBody("678", 8));
  EXPECT_FALSE(call.AppendBody("9", 8));
  EXPECT_EQ(call.TakeResponse().body, "12345678");
}

TEST(Call, ReplayForgetsTheStreamAndTheResponse) {
  Call call(Request{"POST", "/p", {}, "body", absl::InfiniteFuture()}, [](const Result&) {});
  uint8_t buf[8];
  bool eof = false;
  call.ReadBody(buf, 2, &eof);
  call.OnStreamStarted(nullptr, 7);
  call.OnHeadersSent();
  call.OnResponseHeader(":status", "503");
  call.OnResponseComplete();
  call.ResetForReplay();
  EXPECT_EQ(call.stream_id(), 0);
  EXPECT_FALSE(call.headers_sent());
  EXPECT_FALSE(call.response_complete());
  EXPECT_EQ(call.ReadBody(buf, 8, &eof), 4u) << "the body is sent again from its start";
  EXPECT_EQ(call.TakeResponse().status, 0);
}

TEST(Call, LogLineRedactsTheDeviceToken) {
  const std::string token(64, 'a');
  Request r;
  r.path = "/3/device/" + token;
  Call call(std::move(r), [](const Result&) {});
  EXPECT_THAT(call.LogLine(), HasSubstr("POST /3/device/"));
  EXPECT_THAT(call.LogLine(), Not(HasSubstr(token)));
}

TEST(Call, TheCallbackIsTakenOnce) {
  int calls = 0;
  Call call(Request{}, [&calls](const Result&) { ++calls; });
  ResponseCallback cb = call.TakeCallback();
  cb(Result(Response{}));
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace pushgate::http2
