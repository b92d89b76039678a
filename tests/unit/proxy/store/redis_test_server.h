// A real redis-server for tests: started on a unix socket in a fresh temp dir (no persistence),
// stopped by pid. Also a tiny synchronous hiredis client to inspect or disturb it.
// Linux only (inotify, pidfd).
#pragma once

#include <hiredis/hiredis.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace pushgate::proxy::testing {

class RedisTestServer {
 public:
  // `extra_args`: more redis-server options, e.g. {"--requirepass", "secret"}.
  explicit RedisTestServer(std::vector<std::string> extra_args = {})
      : extra_args_(std::move(extra_args)) {
    char tmpl[] = "/tmp/pushgate-redis-XXXXXX";
    const char* dir = mkdtemp(tmpl);
    dir_ = dir != nullptr ? dir : "";
    socket_ = dir_ + "/redis.sock";
  }
  ~RedisTestServer() {
    Stop();
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }
  RedisTestServer(const RedisTestServer&) = delete;
  RedisTestServer& operator=(const RedisTestServer&) = delete;

  // Starts redis-server and waits (at most 10 s) until it logs that it accepts connections. The
  // wait sleeps on events: a change in the temp dir (inotify: the log grows) or the server's exit
  // (pidfd).
  absl::Status Start() {
    if (dir_.empty()) return absl::InternalError("mkdtemp failed");
    if (pid_ > 0) return absl::OkStatus();
    std::vector<std::string> args = {
        "redis-server", "--port",    "0",       "--unixsocket", socket_, "--unixsocketperm",
        "700",          "--save",    "",        "--appendonly", "no",    "--dir",
        dir_,           "--logfile", LogPath(), "--daemonize",  "no"};
    args.insert(args.end(), extra_args_.begin(), extra_args_.end());
    // Watched before the fork so that no write to the log can be missed; a restart appends to
    // the same log, so only what comes after `log_start` counts.
    Fd inotify(inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
    if (inotify.get() < 0 || inotify_add_watch(inotify.get(), dir_.c_str(), IN_MODIFY) < 0) {
      return absl::InternalError("inotify on the redis-server temp dir failed");
    }
    const size_t log_start = ReadLog().size();
    pid_t pid = fork();
    if (pid < 0) return absl::InternalError("fork failed");
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive a crashed test
      std::vector<char*> argv;
      argv.reserve(args.size() + 1);
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execvp("redis-server", argv.data());
      _exit(127);
    }
    pid_ = pid;
    // (<sys/pidfd.h> of glibc 2.36 lacks extern "C": the system call directly.)
    Fd exited(static_cast<int>(syscall(SYS_pidfd_open, pid_, 0)));
    absl::Status ready = WaitUntilReady(inotify.get(), exited.get(), log_start, absl::Seconds(10));
    if (!ready.ok()) Stop();
    return ready;
  }

  // SIGKILL + wait (also works while SIGSTOPped).
  void Stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    std::error_code ec;
    std::filesystem::remove(socket_, ec);
  }
  void Pause() {
    if (pid_ > 0) kill(pid_, SIGSTOP);
  }
  void Resume() {
    if (pid_ > 0) kill(pid_, SIGCONT);
  }

  bool running() const { return pid_ > 0; }
  const std::string& socket_path() const { return socket_; }
  std::string address() const { return "unix:" + socket_; }

  // One synchronous command; the reply as text ("(nil)", integers in decimal, arrays joined by
  // ","), or an error.
  absl::StatusOr<std::string> Command(const std::vector<std::string>& args,
                                      const std::string& password = "") const {
    return Command(args, password, absl::Seconds(2));
  }

  // Until the server stops answering (a command from another client blocks it, e.g. DEBUG
  // SLEEP): a PING that gets no answer within 50 ms. DEADLINE_EXCEEDED if it kept answering.
  absl::Status UntilBlocked(absl::Duration timeout) const {
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      if (!Command({"PING"}, "", absl::Milliseconds(50)).ok()) return absl::OkStatus();
    }
    return absl::DeadlineExceededError(
        absl::StrCat("redis-server kept answering PING for ", absl::FormatDuration(timeout)));
  }

 private:
  absl::StatusOr<std::string> Command(const std::vector<std::string>& args,
                                      const std::string& password, absl::Duration limit) const {
    timeval timeout = absl::ToTimeval(limit);
    redisContext* c = redisConnectUnixWithTimeout(socket_.c_str(), timeout);
    if (c == nullptr || c->err != 0) {
      std::string why = c != nullptr ? c->errstr : "alloc";
      if (c != nullptr) redisFree(c);
      return absl::UnavailableError(why);
    }
    redisSetTimeout(c, timeout);
    if (!password.empty()) {
      auto* r = static_cast<redisReply*>(redisCommand(c, "AUTH %s", password.c_str()));
      if (r != nullptr) freeReplyObject(r);
    }
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const std::string& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    auto* r = static_cast<redisReply*>(
        redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data()));
    if (r == nullptr) {
      std::string why = c->errstr;
      redisFree(c);
      return absl::UnavailableError(why);
    }
    absl::StatusOr<std::string> out = Text(r);
    freeReplyObject(r);
    redisFree(c);
    return out;
  }

  static absl::StatusOr<std::string> Text(const redisReply* r) {
    switch (r->type) {
      case REDIS_REPLY_NIL:
        return std::string("(nil)");
      case REDIS_REPLY_INTEGER:
        return absl::StrCat(r->integer);
      case REDIS_REPLY_ERROR:
        return absl::InternalError(std::string(r->str, r->len));
      case REDIS_REPLY_ARRAY: {
        std::string out;
        for (size_t i = 0; i < r->elements; ++i) {
          auto t = Text(r->element[i]);
          if (!t.ok()) return t;
          absl::StrAppend(&out, i ? "," : "", *t);
        }
        return out;
      }
      default:
        return std::string(r->str, r->len);
    }
  }

  // Owns a file descriptor.
  class Fd {
   public:
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd() {
      if (fd_ >= 0) close(fd_);
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const { return fd_; }

   private:
    int fd_;
  };

  std::string LogPath() const { return dir_ + "/redis.log"; }
  std::string ReadLog() const {
    std::ifstream in(LogPath());
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }

  // Until the log says it is ready to accept connections after `log_start` (then PING must answer),
  // the server exits, or `timeout` passes.
  absl::Status WaitUntilReady(int inotify, int exited, size_t log_start, absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    // "Ready to accept connections" (Redis 6), "ready to accept connections at <socket>" (7).
    while (absl::AsciiStrToLower(ReadLog()).find("ready to accept connections", log_start) ==
           std::string::npos) {
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) {
        return absl::DeadlineExceededError(
            absl::StrCat("redis-server never logged \"Ready to accept connections\" within ",
                         absl::FormatDuration(timeout), " (see ", LogPath(), ")"));
      }
      pollfd fds[2] = {{inotify, POLLIN, 0}, {exited, POLLIN, 0}};
      poll(fds, exited >= 0 ? 2 : 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
      if (exited >= 0 && fds[1].revents != 0) {
        int status = 0;
        waitpid(pid_, &status, 0);
        pid_ = -1;
        return absl::InternalError(
            absl::StrCat("redis-server exited at start (see ", LogPath(), ")"));
      }
      char events[4096];
      while (read(inotify, events, sizeof(events)) > 0) {
      }
    }
    if (!Ping()) return absl::InternalError("redis-server is ready but does not answer PING");
    return absl::OkStatus();
  }

  bool Ping() const {
    auto r = Command({"PING"});
    return r.ok() || absl::StartsWith(r.status().message(), "NOAUTH");
  }

  std::vector<std::string> extra_args_;
  std::string dir_;
  std::string socket_;
  pid_t pid_ = -1;
};

}  // namespace pushgate::proxy::testing
