#include "proxy/core/wire_limits.h"

#include <gtest/gtest.h>

#include <string>

#include "absl/strings/str_cat.h"

namespace pushgate::proxy {
namespace {

// A request whose head has `extra + 3` lines (start line, Via, Content-Length, `extra` others).
std::string Message(int extra, absl::string_view body = "") {
  std::string m =
      "OPTIONS sip:a@example.org SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.1;branch=z9hG4bK1\r\n";
  for (int i = 0; i < extra; ++i) absl::StrAppend(&m, "X-H: ", i, "\r\n");
  absl::StrAppend(&m, "Content-Length: ", body.size(), "\r\n\r\n", body);
  return m;
}

TEST(HeadScannerTest, CountsTheLinesOfEachHeadAndAcceptsUpToTheLimit) {
  HeadScanner s(10);
  EXPECT_TRUE(s.Feed(Message(7)));  // 10 lines
  EXPECT_EQ(s.head_lines(), 10u);
  EXPECT_FALSE(s.in_message());
  EXPECT_TRUE(s.Feed(Message(7)));  // the count starts again with each message
  EXPECT_EQ(s.messages_begun(), 2u);
  EXPECT_FALSE(s.Feed(Message(8)));  // 11 lines
  EXPECT_TRUE(s.over_limit());
  EXPECT_FALSE(s.Feed("\r\n"));  // condemned for good
}

TEST(HeadScannerTest, FollowsContentLengthSoABodyIsNotCountedAsLines) {
  std::string body;
  for (int i = 0; i < 50; ++i) body += "a=x\r\n";
  HeadScanner s(10);
  EXPECT_TRUE(s.Feed(Message(2, body) + Message(2)));
  EXPECT_EQ(s.messages_begun(), 2u);
  EXPECT_FALSE(s.in_message());
}

TEST(HeadScannerTest, ReadsTheCompactFormAndOddSpacingOfContentLength) {
  const std::string body(40, '\n');  // 40 empty "lines" inside the body
  HeadScanner s(4);
  EXPECT_TRUE(s.Feed(absl::StrCat("MESSAGE sip:a SIP/2.0\r\nl :  40 \r\n\r\n", body)));
  EXPECT_FALSE(s.in_message());
  EXPECT_TRUE(s.Feed(absl::StrCat("MESSAGE sip:a SIP/2.0\r\ncontent-LENGTH:40\r\n\r\n", body)));
  EXPECT_FALSE(s.in_message());
  EXPECT_EQ(s.messages_begun(), 2u);
}

TEST(HeadScannerTest, OtherHeadersEndingInLengthAreNotContentLength) {
  HeadScanner s(0);
  ASSERT_TRUE(s.Feed("A sip:a SIP/2.0\r\nX-Content-Length: 5\r\nlx: 7\r\n\r\n"));
  EXPECT_FALSE(s.in_message());  // no body expected
}

TEST(HeadScannerTest, SameVerdictWhateverTheChunking) {
  const std::string stream = Message(3, "v=0\r\n") + "\r\n\r\n" + Message(6) + Message(9);
  for (size_t chunk = 1; chunk <= 7; ++chunk) {
    HeadScanner s(10);
    bool ok = true;
    for (size_t i = 0; i < stream.size() && ok; i += chunk) ok = s.Feed(stream.substr(i, chunk));
    EXPECT_FALSE(ok) << "chunk " << chunk;  // the third message has 12 lines
    EXPECT_EQ(s.messages_begun(), 3u) << "chunk " << chunk;
  }
}

TEST(HeadScannerTest, KeepAlivesBetweenMessagesStartNothing) {
  HeadScanner s(2);
  EXPECT_TRUE(s.Feed("\r\n\r\n\r\n\r\n"));
  EXPECT_EQ(s.messages_begun(), 0u);
  EXPECT_FALSE(s.in_message());
  EXPECT_TRUE(s.Feed("I"));
  EXPECT_TRUE(s.in_message());
}

TEST(HeadScannerTest, ZeroIsNoLimit) {
  HeadScanner s(0);
  EXPECT_TRUE(s.Feed(Message(5000)));
}

TEST(DatagramWithinLinesTest, CountsTheFirstHeadOnly) {
  EXPECT_TRUE(DatagramWithinLines(Message(7), 10));
  EXPECT_FALSE(DatagramWithinLines(Message(8), 10));
  // A body without Content-Length (allowed on UDP) is not counted.
  std::string no_length = "MESSAGE sip:a SIP/2.0\r\nVia: x\r\n\r\n";
  for (int i = 0; i < 30; ++i) no_length += "line\r\n";
  EXPECT_TRUE(DatagramWithinLines(no_length, 10));
  EXPECT_TRUE(DatagramWithinLines("\r\n\r\nA\nB\nC", 3));
  EXPECT_FALSE(DatagramWithinLines("A\nB\nC\nD\n", 3));
  EXPECT_TRUE(DatagramWithinLines("A\nB\nC\nD", 3));  // a line counts once it ends
  EXPECT_TRUE(DatagramWithinLines(Message(500), 0));
}

TEST(ConnectionCounterTest, RefusesOverTheSourceAndTotalLimits) {
  ConnectionCounter c(3, 2);
  EXPECT_EQ(c.TryOpen("10.0.0.1"), ConnectionVerdict::kAccepted);
  EXPECT_EQ(c.TryOpen("10.0.0.1"), ConnectionVerdict::kAccepted);
  EXPECT_EQ(c.TryOpen("10.0.0.1"), ConnectionVerdict::kSourceLimit);
  EXPECT_EQ(c.TryOpen("10.0.0.2"), ConnectionVerdict::kAccepted);
  EXPECT_EQ(c.TryOpen("10.0.0.3"), ConnectionVerdict::kTotalLimit);
  EXPECT_EQ(c.total(), 3u);
  c.Close("10.0.0.1");
  EXPECT_EQ(c.from("10.0.0.1"), 1u);
  EXPECT_EQ(c.TryOpen("10.0.0.3"), ConnectionVerdict::kAccepted);
  EXPECT_EQ(ConnectionVerdictName(ConnectionVerdict::kSourceLimit), "per_source");
}

TEST(ConnectionCounterTest, AnExemptSourceIsAlwaysAcceptedAndCounted) {
  ConnectionCounter c(2, 1);
  EXPECT_EQ(c.TryOpen("backend"), ConnectionVerdict::kAccepted);
  EXPECT_EQ(c.TryOpen("backend", /*exempt=*/true), ConnectionVerdict::kAccepted);
  EXPECT_EQ(c.TryOpen("backend", /*exempt=*/true), ConnectionVerdict::kAccepted);
  EXPECT_EQ(c.total(), 3u);
  EXPECT_EQ(c.TryOpen("phone"), ConnectionVerdict::kTotalLimit);
}

TEST(ConnectionCounterTest, ClosingForgetsASourceAndIgnoresUnknownOnes) {
  ConnectionCounter c(0, 1);
  EXPECT_EQ(c.TryOpen("a"), ConnectionVerdict::kAccepted);
  c.Close("b");
  EXPECT_EQ(c.total(), 1u);
  c.Close("a");
  EXPECT_EQ(c.total(), 0u);
  EXPECT_EQ(c.from("a"), 0u);
  EXPECT_EQ(c.TryOpen("a"), ConnectionVerdict::kAccepted);
}

}  // namespace
}  // namespace pushgate::proxy
