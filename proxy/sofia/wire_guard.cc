// The interposed socket calls of wire_guard.h. glibc's fortified inline recv/recvfrom must not
// meet our definitions of the same functions.
#undef _FORTIFY_SOURCE
#include "proxy/sofia/wire_guard.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/metrics.h"
#include "proxy/core/route_set.h"
#include "proxy/core/transport.h"
#include "proxy/core/wire_limits.h"

namespace pushgate::proxy::sofia {

struct WireGuard::State {
  State(WireLimits l, const Clock& c)
      : limits(std::move(l)),
        clock(c),
        counter(limits.max_connections, limits.max_connections_per_source) {}
  WireLimits limits;
  const Clock& clock;
  bool active = true;
  ConnectionCounter counter;
  absl::Time last_log = absl::InfinitePast();  // of a refusal (at most one a minute)
  uint64_t unlogged = 0;                       // refusals since
};

namespace {

using State = WireGuard::State;

constexpr int kMaxGuardedFd = 1 << 20;  // descriptors above are never guarded
constexpr absl::Duration kLogInterval = absl::Minutes(1);

// Which descriptors have an entry: the only thing a call on any other descriptor reads.
std::atomic<uint8_t> g_guarded[kMaxGuardedFd];

bool Guarded(int fd) {
  return fd >= 0 && fd < kMaxGuardedFd && g_guarded[fd].load(std::memory_order_acquire) != 0;
}

enum class Kind { kStreamListener, kDatagramListener, kConnection };

struct Entry {
  std::shared_ptr<State> guard;
  Kind kind = Kind::kConnection;
  bool tls = false;    // its SIP text comes out of SSL_read (the socket carries ciphertext)
  std::string source;  // connections: the peer's IP
  HeadScanner scanner{0};
  bool shut = false;  // shut down by Sweep or the head limit
  // Sweep: the message waited for (messages_begun; 0: the first byte) and since when.
  uint64_t waited_message = 0;
  absl::Time waiting_since = absl::InfinitePast();
};

struct Tables {
  std::mutex mu;
  absl::flat_hash_map<int, Entry> entries;  // guarded by mu
  int reserve_fd = -1;                      // guarded by mu
};

Tables& tables() {
  static auto* t = new Tables;  // never destroyed: close() may run during exit
  return *t;
}

struct Capturing {
  std::shared_ptr<State> guard;
  bool tls = false;
};
thread_local Capturing* t_capturing = nullptr;

template <typename F>
F Next(const char* name) {
  void* f = dlsym(RTLD_NEXT, name);
  if (f == nullptr) std::abort();  // libc always has them
  return reinterpret_cast<F>(f);
}

using AcceptFn = int (*)(int, sockaddr*, socklen_t*);
using BindFn = int (*)(int, const sockaddr*, socklen_t);
using RecvFn = ssize_t (*)(int, void*, size_t, int);
using RecvfromFn = ssize_t (*)(int, void*, size_t, int, sockaddr*, socklen_t*);
using RecvmsgFn = ssize_t (*)(int, msghdr*, int);
using CloseFn = int (*)(int);
using SslReadFn = int (*)(SSL*, void*, int);

struct Real {
  AcceptFn accept = Next<AcceptFn>("accept");
  BindFn bind = Next<BindFn>("bind");
  RecvFn recv = Next<RecvFn>("recv");
  RecvfromFn recvfrom = Next<RecvfromFn>("recvfrom");
  RecvmsgFn recvmsg = Next<RecvmsgFn>("recvmsg");
  CloseFn close = Next<CloseFn>("close");
  SslReadFn ssl_read = Next<SslReadFn>("SSL_read");
};

const Real& real() {
  static const Real r;
  return r;
}

metrics::Counter& Refused(absl::string_view reason) {
  return metrics::Registry::Default().GetCounter(
      "pushgate_proxy_connections_refused_total",
      "TCP/TLS connections accepted and closed at once, by reason: total (limits.max_connections), "
      "per_source (limits.max_connections_per_source), descriptors (the process's descriptor "
      "limit).",
      {{"reason", std::string(reason)}});
}

metrics::Counter& HeadLinesRefused(absl::string_view transport) {
  return metrics::Registry::Default().GetCounter(
      "pushgate_proxy_header_lines_refused_total",
      "Messages with more head lines than limits.max_header_lines, refused before parsing, by "
      "transport (udp: the datagram dropped; tcp: the connection closed).",
      {{"transport", std::string(transport)}});
}

metrics::Counter& TimedOut() {
  static metrics::Counter& c = metrics::Registry::Default().GetCounter(
      "pushgate_proxy_connections_timed_out_total",
      "TCP connections shut down for not sending a complete message within "
      "limits.message_timeout (of their opening, or of the message's first byte).");
  return c;
}

// The peer's IP ("::ffff:a.b.c.d" as "a.b.c.d"); "" when unknown.
std::string SourceOf(int fd, const sockaddr* addr, const socklen_t* len) {
  sockaddr_storage ss{};
  socklen_t n = sizeof ss;
  if (addr != nullptr && len != nullptr && *len > 0 && *len <= sizeof ss) {
    std::memcpy(&ss, addr, *len);
  } else if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &n) != 0) {
    return "";
  }
  char text[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr, text, sizeof text);
  } else if (ss.ss_family == AF_INET6) {
    const in6_addr& a = reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(&a)) {
      inet_ntop(AF_INET, &a.s6_addr[12], text, sizeof text);
    } else {
      inet_ntop(AF_INET6, &a, text, sizeof text);
    }
  }
  return text;
}

// Closes at once, with a reset rather than a FIN (no TIME_WAIT kept for a refused peer).
void Abort(int fd) {
  linger l{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  real().close(fd);
}

// One line a minute at most for refusals of `guard`; the rest are counted in it.
void LogRefusal(State& guard, absl::string_view what) {
  const absl::Time now = guard.clock.Now();
  if (now - guard.last_log < kLogInterval) {
    ++guard.unlogged;
    return;
  }
  log::Get("proxy.wire")
      ->warn("{} ({} more refusals since the last such line, see pushgate_proxy_*_refused_total)",
             what, guard.unlogged);
  guard.last_log = now;
  guard.unlogged = 0;
}

void OpenReserve(Tables& t) {
  if (t.reserve_fd < 0) t.reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

// accept() failed for lack of descriptors: the pending connection stays and keeps the listening
// socket readable. Takes it with the reserved descriptor and closes it.
void RefuseAtDescriptorLimit(int listener, int error) {
  Tables& t = tables();
  std::shared_ptr<State> guard;
  {
    std::lock_guard<std::mutex> lock(t.mu);
    auto it = t.entries.find(listener);
    if (it != t.entries.end()) guard = it->second.guard;
    Refused("descriptors").Inc();
    if (t.reserve_fd >= 0) {
      real().close(t.reserve_fd);
      t.reserve_fd = -1;
      const int s = real().accept(listener, nullptr, nullptr);
      if (s >= 0) Abort(s);
      OpenReserve(t);
    }
    if (guard != nullptr) {
      LogRefusal(*guard, absl::StrCat("connection refused: out of descriptors (",
                                      std::strerror(error), "); raise the descriptor limit"));
    }
  }
}

// A connection accepted on a guarded listener: counted, or refused (-1).
int Admit(int listener, int s, const sockaddr* addr, const socklen_t* len) {
  Tables& t = tables();
  const std::string source = SourceOf(s, addr, len);
  std::lock_guard<std::mutex> lock(t.mu);
  auto it = t.entries.find(listener);
  if (it == t.entries.end() || !it->second.guard->active) return s;
  std::shared_ptr<State> guard = it->second.guard;
  const bool tls = it->second.tls;
  const bool exempt =
      IsTrustedBackend(guard->limits.trusted, TransportInfo{Transport::kTcp, source, 0});
  const ConnectionVerdict verdict = guard->counter.TryOpen(source, exempt);
  if (verdict != ConnectionVerdict::kAccepted) {
    Refused(ConnectionVerdictName(verdict)).Inc();
    Abort(s);
    LogRefusal(*guard, absl::StrCat("connection refused: reason=", ConnectionVerdictName(verdict),
                                    " source=", source));
    return -1;
  }
  if (s >= kMaxGuardedFd) {
    guard->counter.Close(source);
    return s;
  }
  if (auto stale = t.entries.find(s); stale != t.entries.end()) {  // closed behind our back
    if (stale->second.kind == Kind::kConnection) stale->second.guard->counter.Close(source);
    t.entries.erase(stale);
  }
  Entry e;
  e.guard = std::move(guard);
  e.kind = Kind::kConnection;
  e.tls = tls;
  e.source = source;
  e.scanner = HeadScanner(e.guard->limits.max_header_lines);
  t.entries.emplace(s, std::move(e));
  g_guarded[s].store(1, std::memory_order_release);
  return s;
}

// Bytes sofia just read from a guarded descriptor (`decrypted`: through SSL_read). -1 (errno set)
// when they are refused.
ssize_t Inspect(int fd, const iovec* iov, size_t iovlen, ssize_t n, bool decrypted = false) {
  Tables& t = tables();
  std::lock_guard<std::mutex> lock(t.mu);
  auto it = t.entries.find(fd);
  if (it == t.entries.end()) return n;
  Entry& e = it->second;
  if (!e.guard->active || e.tls != decrypted || e.kind == Kind::kStreamListener) return n;
  if (e.kind == Kind::kDatagramListener) {
    std::string joined;
    absl::string_view datagram;
    if (iovlen == 1) {
      datagram = absl::string_view(static_cast<const char*>(iov[0].iov_base), n);
    } else {
      for (size_t i = 0; i < iovlen && joined.size() < static_cast<size_t>(n); ++i) {
        joined.append(static_cast<const char*>(iov[i].iov_base),
                      std::min(iov[i].iov_len, static_cast<size_t>(n) - joined.size()));
      }
      datagram = joined;
    }
    if (DatagramWithinLines(datagram, e.guard->limits.max_header_lines)) return n;
    HeadLinesRefused("udp").Inc();
    LogRefusal(*e.guard, "datagram dropped: too many header lines");
    errno = EAGAIN;  // sofia drops its buffer and waits for the next datagram
    return -1;
  }
  size_t left = static_cast<size_t>(n);
  for (size_t i = 0; i < iovlen && left > 0; ++i) {
    const size_t take = std::min(iov[i].iov_len, left);
    if (!e.scanner.Feed(absl::string_view(static_cast<const char*>(iov[i].iov_base), take))) {
      break;
    }
    left -= take;
  }
  if (!e.scanner.over_limit()) return n;
  if (!e.shut) {
    e.shut = true;
    HeadLinesRefused(e.tls ? "tls" : "tcp").Inc();
    shutdown(fd, SHUT_RDWR);
    LogRefusal(*e.guard,
               absl::StrCat("connection closed: too many header lines, source=", e.source));
  }
  errno = ECONNRESET;  // sofia reports the error and closes the connection itself
  return -1;
}

ssize_t InspectBuffer(int fd, void* buf, ssize_t n) {
  iovec v{buf, static_cast<size_t>(n)};
  return Inspect(fd, &v, 1, n);
}

void Forget(int fd) {
  Tables& t = tables();
  std::lock_guard<std::mutex> lock(t.mu);
  g_guarded[fd].store(0, std::memory_order_release);
  auto it = t.entries.find(fd);
  if (it == t.entries.end()) return;
  if (it->second.kind == Kind::kConnection) it->second.guard->counter.Close(it->second.source);
  t.entries.erase(it);
}

}  // namespace

WireGuard::WireGuard(WireLimits limits, const Clock& clock)
    : state_(std::make_shared<State>(std::move(limits), clock)) {
  // Connections beyond the descriptor limit are refused anyway; say so once, at the start.
  rlimit nofile{};
  constexpr rlim_t kOtherDescriptors = 128;  // listeners, gRPC, Redis, admin, logs
  const rlim_t wanted = static_cast<rlim_t>(state_->limits.max_connections) + kOtherDescriptors;
  if (state_->limits.max_connections > 0 && getrlimit(RLIMIT_NOFILE, &nofile) == 0 &&
      nofile.rlim_cur != RLIM_INFINITY && nofile.rlim_cur < wanted) {
    log::Get("proxy.wire")
        ->warn(
            "descriptor limit {} is below limits.max_connections + {}: connections past it "
            "are refused (pushgate_proxy_connections_refused_total{{reason=\"descriptors\"}}); "
            "raise it (ulimit -n, LimitNOFILE=)",
            static_cast<uint64_t>(nofile.rlim_cur), static_cast<uint64_t>(kOtherDescriptors));
  }
}

WireGuard::~WireGuard() {
  std::lock_guard<std::mutex> lock(tables().mu);
  state_->active = false;
}

WireGuard::Capture::Capture(WireGuard& guard, bool tls) {
  t_capturing = new Capturing{guard.state_, tls};
  (void)real();  // resolve the real functions now, not inside a call
}

WireGuard::Capture::~Capture() {
  delete t_capturing;
  t_capturing = nullptr;
}

void WireGuard::Sweep(absl::Time now) {
  const absl::Duration timeout = state_->limits.message_timeout;
  if (timeout <= absl::ZeroDuration()) return;
  Tables& t = tables();
  std::lock_guard<std::mutex> lock(t.mu);
  for (auto& [fd, e] : t.entries) {
    if (e.guard != state_ || e.kind != Kind::kConnection || e.shut) continue;
    const bool waiting = e.scanner.messages_begun() == 0 || e.scanner.in_message();
    if (!waiting) {
      e.waiting_since = absl::InfinitePast();
      continue;
    }
    if (e.waiting_since == absl::InfinitePast() || e.waited_message != e.scanner.messages_begun()) {
      e.waited_message = e.scanner.messages_begun();
      e.waiting_since = now;
      continue;
    }
    if (now - e.waiting_since < timeout) continue;
    // sofia sees the end of the stream and closes the connection itself.
    e.shut = true;
    TimedOut().Inc();
    shutdown(fd, SHUT_RDWR);
    LogRefusal(*state_, absl::StrCat("connection closed: no complete message within ",
                                     absl::FormatDuration(timeout), ", source=", e.source));
  }
}

size_t WireGuard::connections() const {
  std::lock_guard<std::mutex> lock(tables().mu);
  return state_->counter.total();
}

}  // namespace pushgate::proxy::sofia

// The interposed functions (see the header). errno is kept as the real call left it unless a
// refusal sets it.
extern "C" {

int bind(int fd, const sockaddr* addr, socklen_t len) noexcept {
  using namespace pushgate::proxy::sofia;  // NOLINT(google-build-using-namespace)
  const int rc = real().bind(fd, addr, len);
  if (rc != 0 || t_capturing == nullptr || fd < 0 || fd >= kMaxGuardedFd) return rc;
  const int saved = errno;
  int type = 0;
  socklen_t n = sizeof type;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &n) == 0 &&
      (type == SOCK_STREAM || type == SOCK_DGRAM)) {
    Tables& t = tables();
    std::lock_guard<std::mutex> lock(t.mu);
    Entry e;
    e.guard = t_capturing->guard;
    e.kind = type == SOCK_STREAM ? Kind::kStreamListener : Kind::kDatagramListener;
    e.tls = t_capturing->tls;
    t.entries.insert_or_assign(fd, std::move(e));
    g_guarded[fd].store(1, std::memory_order_release);
    OpenReserve(t);
  }
  errno = saved;
  return rc;
}

int accept(int fd, sockaddr* addr, socklen_t* len) {
  using namespace pushgate::proxy::sofia;  // NOLINT(google-build-using-namespace)
  const int s = real().accept(fd, addr, len);
  if (!Guarded(fd)) return s;
  if (s < 0) {
    const int error = errno;
    if (error != EMFILE && error != ENFILE) return s;
    RefuseAtDescriptorLimit(fd, error);
    errno = 0;  // sofia reports nothing for error 0
    return -1;
  }
  const int admitted = Admit(fd, s, addr, len);
  if (admitted < 0) errno = 0;
  return admitted;
}

ssize_t recv(int fd, void* buf, size_t size, int flags) {
  using namespace pushgate::proxy::sofia;  // NOLINT(google-build-using-namespace)
  const ssize_t n = real().recv(fd, buf, size, flags);
  if (n <= 0 || (flags & (MSG_PEEK | MSG_ERRQUEUE)) != 0 || !Guarded(fd)) return n;
  return InspectBuffer(fd, buf, n);
}

ssize_t recvfrom(int fd, void* buf, size_t size, int flags, sockaddr* addr, socklen_t* len) {
  using namespace pushgate::proxy::sofia;  // NOLINT(google-build-using-namespace)
  const ssize_t n = real().recvfrom(fd, buf, size, flags, addr, len);
  if (n <= 0 || (flags & (MSG_PEEK | MSG_ERRQUEUE)) != 0 || !Guarded(fd)) return n;
  return InspectBuffer(fd, buf, n);
}

ssize_t recvmsg(int fd, msghdr* msg, int flags) {
  using namespace pushgate::proxy::sofia;  // NOLINT(google-build-using-namespace)
  const ssize_t n = real().recvmsg(fd, msg, flags);
  if (n <= 0 || (flags & (MSG_PEEK | MSG_ERRQUEUE)) != 0 || !Guarded(fd)) return n;
  return Inspect(fd, msg->msg_iov, msg->msg_iovlen, n);
}

// sofia decrypts TLS with SSL_read: the plaintext is checked like TCP bytes. Other SSL objects
// (gRPC's, on memory BIOs) have no descriptor and pass through.
int SSL_read(SSL* ssl, void* buf, int num) {
  using namespace pushgate::proxy::sofia;  // NOLINT(google-build-using-namespace)
  const int n = real().ssl_read(ssl, buf, num);
  if (n <= 0) return n;
  const int fd = SSL_get_fd(ssl);
  if (!Guarded(fd)) return n;
  iovec v{buf, static_cast<size_t>(n)};
  return static_cast<int>(Inspect(fd, &v, 1, n, /*decrypted=*/true));
}

int close(int fd) {
  using namespace pushgate::proxy::sofia;  // NOLINT(google-build-using-namespace)
  if (Guarded(fd)) Forget(fd);
  return real().close(fd);
}

}  // extern "C"
