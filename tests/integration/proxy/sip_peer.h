// Scripted SIP peers for integration tests: raw UDP/TCP sockets on 127.0.0.1 that send SIP text
// and wait (with a deadline) for what the proxy sends them. Parsing is plain text: header lines
// by name, so a test sees exactly what went over the wire.
//
// Waits follow Envoy's fake_upstream.h: they fill an out-parameter and return an
// ::testing::AssertionResult that, on timeout, says what was expected and what did arrive
// (ASSERT_TRUE(peer.WaitForRequest("INVITE", invite))). "Nothing arrives" is a wait that must
// time out (EXPECT_TRUE(peer.ExpectNothingWithin(absl::Milliseconds(100)))).
// Threads: a peer is used by one thread (the test's); it never touches the proxy's loop.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

struct ssl_ctx_st;
struct ssl_st;

namespace pushgate::proxy::testing {

// One SIP message as text, with accessors for the start line and headers.
class SipText {
 public:
  SipText() = default;
  explicit SipText(std::string text) : text_(std::move(text)) {}

  const std::string& text() const { return text_; }
  std::string StartLine() const;
  bool IsResponse() const { return text_.rfind("SIP/2.0 ", 0) == 0; }
  int Status() const;          // 0 for a request
  std::string Reason() const;  // reason phrase of a response
  std::string Method() const;  // "" for a response
  std::string RequestUri() const;
  // Values of every header line with this name (full or compact form, case-insensitive).
  std::vector<std::string> Headers(absl::string_view name) const;
  std::string Header(absl::string_view name) const;  // first one, "" if absent
  // Every header line, for building responses: {"Via", "SIP/2.0/UDP ..."}.
  std::vector<std::pair<std::string, std::string>> AllHeaders() const;

 private:
  std::string text_;
};

// What a wait accepts: a predicate and what it is called in a failure message ("INVITE request").
struct SipMatch {
  std::string what;
  std::function<bool(const SipText&)> accepts;
};
SipMatch AnyMessage();
SipMatch IsRequest(absl::string_view method);  // a request of this method
SipMatch IsStatus(int status);                 // a response with this status
SipMatch IsFinal();                            // a final response (>= 200)
SipMatch IsFinalOrRequest();                   // anything but a provisional response

inline const absl::Duration kDefaultWait = absl::Seconds(5);

// The waits every peer offers, on top of the transport's one-message receive.
class SipPeer {
 public:
  virtual ~SipPeer() = default;

  // The next message `match` accepts, skipping the others (retransmissions, 100 Trying...);
  // `from_port` gets its source port (UDP). On timeout: what was expected and what arrived.
  ::testing::AssertionResult WaitFor(const SipMatch& match, SipText& out,
                                     absl::Duration timeout = kDefaultWait,
                                     uint16_t* from_port = nullptr);
  // The next message of any kind.
  ::testing::AssertionResult WaitForMessage(SipText& out, absl::Duration timeout = kDefaultWait);
  ::testing::AssertionResult WaitForRequest(absl::string_view method, SipText& out,
                                            absl::Duration timeout = kDefaultWait);
  // Skips provisional responses: the next request or final response.
  ::testing::AssertionResult WaitForFinalOrRequest(SipText& out,
                                                   absl::Duration timeout = kDefaultWait);
  // Succeeds when nothing `match` accepts arrives within `window`; fails naming what did.
  ::testing::AssertionResult ExpectNoneWithin(const SipMatch& match, absl::Duration window);
  // Succeeds when nothing at all arrives within `window`.
  ::testing::AssertionResult ExpectNothingWithin(absl::Duration window);
  // Succeeds when no request or final response arrives within `window` (provisionals ignored).
  ::testing::AssertionResult ExpectNoFinalOrRequestWithin(absl::Duration window);

 protected:
  // One message, or nullopt after `timeout` (or when the connection is gone).
  virtual std::optional<SipText> ReceiveOne(absl::Duration timeout, uint16_t* from_port) = 0;
  // "UDP peer 127.0.0.1:5062", for failure messages.
  virtual std::string Describe() const = 0;
};

// Builds a response to `request`: its Via, From, Call-ID and CSeq, its To with `to_tag`, then
// `extra_headers` ("Contact: <...>;expires=60\r\n" lines).
std::string MakeResponse(const SipText& request, int status, absl::string_view reason,
                         absl::string_view extra_headers = "", absl::string_view to_tag = "b1");

class UdpPeer final : public SipPeer {
 public:
  explicit UdpPeer(bool ipv6 = false);  // binds 127.0.0.1:0 or [::1]:0
  ~UdpPeer() override;
  UdpPeer(const UdpPeer&) = delete;
  UdpPeer& operator=(const UdpPeer&) = delete;

  uint16_t port() const { return port_; }
  void SendTo(uint16_t port, absl::string_view text);
  // The next datagram (and its source port), or nullopt after `timeout`: the raw primitive for
  // tools that poll (bench/calls); tests use the waits of SipPeer.
  std::optional<SipText> Receive(absl::Duration timeout, uint16_t* from_port = nullptr);

 private:
  std::optional<SipText> ReceiveOne(absl::Duration timeout, uint16_t* from_port) override {
    return Receive(timeout, from_port);
  }
  std::string Describe() const override;

  int fd_ = -1;
  bool ipv6_ = false;
  uint16_t port_ = 0;
};

class TcpPeer final : public SipPeer {
 public:
  explicit TcpPeer(uint16_t server_port);  // connects to 127.0.0.1:server_port
  ~TcpPeer() override;
  TcpPeer(const TcpPeer&) = delete;
  TcpPeer& operator=(const TcpPeer&) = delete;

  bool connected() const { return fd_ >= 0; }
  uint16_t local_port() const { return local_port_; }
  void Send(absl::string_view text);

 private:
  std::optional<SipText> ReceiveOne(absl::Duration timeout, uint16_t* from_port) override;
  std::string Describe() const override;

  int fd_ = -1;
  uint16_t local_port_ = 0;
  std::string buffer_;
};

// A TLS client connection (no certificate verification: the test made the server's certificate).
class TlsPeer final : public SipPeer {
 public:
  explicit TlsPeer(uint16_t server_port);
  ~TlsPeer() override;
  TlsPeer(const TlsPeer&) = delete;
  TlsPeer& operator=(const TlsPeer&) = delete;

  bool connected() const { return ssl_ != nullptr; }
  uint16_t local_port() const { return local_port_; }
  void Send(absl::string_view text);

 private:
  std::optional<SipText> ReceiveOne(absl::Duration timeout, uint16_t* from_port) override;
  std::string Describe() const override;

  int fd_ = -1;
  uint16_t local_port_ = 0;
  ssl_ctx_st* ctx_ = nullptr;
  ssl_st* ssl_ = nullptr;
  std::string buffer_;
};

// Writes agent.pem (key + self-signed certificate for 127.0.0.1) and cafile.pem into `dir` with
// the openssl command. False if that failed.
bool MakeTlsCertificateDir(const std::string& dir);

// A REGISTER from a phone. `contacts` are full Contact header values; `transport` names the Via.
struct RegisterSpec {
  std::string aor_user = "alice";
  std::string domain = "example.org";
  std::vector<std::string> contacts;
  std::optional<int> expires = 600;
  std::string call_id = "reg-call-1";
  int cseq = 1;
  std::string transport = "UDP";
  std::string via_host = "127.0.0.1";
  uint16_t via_port = 0;
  std::string extra_headers;
};
std::string MakeRegister(const RegisterSpec& spec);

// A request of any method to `request_uri`.
std::string MakeRequest(absl::string_view method, absl::string_view request_uri, uint16_t via_port,
                        absl::string_view call_id = "req-call-1");

}  // namespace pushgate::proxy::testing
