// A real redis-server for tests: started on a unix socket in a fresh temp dir (no persistence),
// stopped by pid. Also a tiny synchronous hiredis client to inspect or disturb it.
#pragma once

#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
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

  // Starts redis-server and waits (at most 10 s) until it answers PING.
  absl::Status Start() {
    if (dir_.empty()) return absl::InternalError("mkdtemp failed");
    if (pid_ > 0) return absl::OkStatus();
    std::vector<std::string> args = {"redis-server", "--port",    "0",
                                     "--unixsocket", socket_,     "--unixsocketperm",
                                     "700",          "--save",    "",
                                     "--appendonly", "no",        "--dir",
                                     dir_,           "--logfile", dir_ + "/redis.log",
                                     "--daemonize",  "no"};
    args.insert(args.end(), extra_args_.begin(), extra_args_.end());
    pid_t pid = fork();
    if (pid < 0) return absl::InternalError("fork failed");
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive a crashed test
      std::vector<char*> argv;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execvp("redis-server", argv.data());
      _exit(127);
    }
    pid_ = pid;
    absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (absl::Now() < deadline) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return absl::InternalError(
            absl::StrCat("redis-server exited at start (see ", dir_, "/redis.log)"));
      }
      if (Ping()) return absl::OkStatus();
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    Stop();
    return absl::DeadlineExceededError("redis-server did not answer PING within 10 s");
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
    timeval timeout{2, 0};
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

 private:
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
