// Protections on the proxy's SIP sockets below sofia-sip, which has no hook for them
// (libsofia-sip-ua 1.12.11 reads its sockets itself and parses what it read at once):
//   - a message head with more than max_header_lines lines (sofia's parse is quadratic in them)
//     never reaches sofia: a UDP datagram is dropped, a TCP connection is closed (the read fails
//     with ECONNRESET, so sofia closes it itself);
//   - connections over max_connections in total or max_connections_per_source from one address
//     are accepted and closed at once, before sofia sees them;
//   - at the process's descriptor limit (accept fails with EMFILE/ENFILE) the pending connection
//     is taken with a reserved descriptor and closed, so the listening socket stops being
//     readable (else the level-triggered loop spins at 100% CPU); logged at most once a minute;
//   - a TCP/TLS connection that sends nothing, or does not complete a message, within
//     message_timeout is shut down (sofia's TPTAG_TIMEOUT counts from the last byte received, so
//     a byte now and then kept a half-sent message open for ever; a connection that never sent
//     a byte waited for the idle timeout).
//
// How: this file defines accept, bind, recv, recvfrom, recvmsg, close and SSL_read for the whole
// process
// (symbol interposition: the executable's definitions come before libc's, for sofia too) and
// forwards each to the next definition (dlsym RTLD_NEXT). Only descriptors registered here are
// looked at: sockets sofia binds inside a WireGuard::Capture scope (the listeners) and the
// connections accepted on them; any other descriptor (gRPC, Redis, admin HTTP, test clients)
// costs one atomic load (SSL_read: one SSL_get_fd too). TLS: the plaintext SSL_read returns to
// sofia is checked as TCP bytes are (a TLS connection that never completes its handshake is a
// silent one).
// The decisions are proxy/core/wire_limits.h's.
//
// Threads: registered descriptors are read and accepted on their proxy's loop thread; the
// tables are behind one mutex (uncontended: one loop per proxy). Any thread may call close.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/clock.h"

namespace pushgate::proxy::sofia {

// The defaults and their reasons are in proxy/config.cc ([limits]).
struct WireLimits {
  size_t max_header_lines = 256;                       // 0: no limit
  size_t max_connections = 2048;                       // 0: no limit
  size_t max_connections_per_source = 64;              // 0: no limit
  absl::Duration message_timeout = absl::Seconds(20);  // 0: none
  // Trusted backends (IsTrustedBackend entries): their connections are never refused by a
  // connection limit (they still count toward the total).
  std::vector<std::string> trusted;
};

class WireGuard final {
 public:
  WireGuard(WireLimits limits, const Clock& clock);
  // Unregisters its listeners; their connections pass through unguarded from then on.
  ~WireGuard();
  WireGuard(const WireGuard&) = delete;
  WireGuard& operator=(const WireGuard&) = delete;

  // While one lives, every socket the calling thread binds is one of this guard's listeners.
  // `tls`: its SIP text comes out of SSL_read, not out of the socket.
  class Capture final {
   public:
    Capture(WireGuard& guard, bool tls);
    ~Capture();
    Capture(const Capture&) = delete;
    Capture& operator=(const Capture&) = delete;
  };

  // Loop thread, about once a second: shuts down connections past message_timeout.
  void Sweep(absl::Time now);

  // Connections open on this guard's listeners (tests).
  size_t connections() const;

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace pushgate::proxy::sofia
