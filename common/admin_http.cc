#include "common/admin_http.h"

#include <httplib.h>

#include <chrono>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace pushgate {
namespace {

void Answer(const AdminServer::Check& check, httplib::Response& res) {
  std::string problem = check ? check() : "";
  if (problem.empty()) {
    res.status = 200;
    res.set_content("ok\n", "text/plain");
  } else {
    res.status = 503;
    res.set_content(problem + "\n", "text/plain");
  }
}

}  // namespace

AdminServer::AdminServer(metrics::Registry& registry, Check live, Check ready)
    : registry_(registry), live_(std::move(live)), ready_(std::move(ready)) {}

AdminServer::~AdminServer() { Stop(); }

absl::StatusOr<int> AdminServer::Start(const std::string& host, int port) {
  server_ = std::make_unique<httplib::Server>();
  server_->new_task_queue = [] { return new httplib::ThreadPool(2); };
  // No SO_REUSEPORT (httplib's default): a port already taken must be an error, not shared.
  server_->set_socket_options([](int sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  server_->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(registry_.Expose(), "text/plain; version=0.0.4; charset=utf-8");
  });
  server_->Get("/healthz",
               [this](const httplib::Request&, httplib::Response& res) { Answer(live_, res); });
  server_->Get("/readyz",
               [this](const httplib::Request&, httplib::Response& res) { Answer(ready_, res); });
  for (const auto& [path, handler] : routes_) {
    // An init-capture: clang (clang-tidy 14) cannot capture a structured binding by name.
    server_->Get(path, [handler = handler](const httplib::Request& req, httplib::Response& res) {
      std::map<std::string, std::string> query;
      for (const auto& [name, value] : req.params) query.emplace(name, value);
      Reply reply = handler(query);
      res.status = reply.status;
      res.set_content(reply.body, reply.content_type);
    });
  }
  int bound = port;
  if (port == 0) {
    bound = server_->bind_to_any_port(host);
  } else if (!server_->bind_to_port(host, port)) {
    bound = -1;
  }
  if (bound < 0) {
    server_.reset();
    return absl::UnavailableError(
        absl::StrCat("admin HTTP: cannot listen on ", host, ":", port, ": ", std::strerror(errno)));
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  // stop() is a no-op until the loop runs: wait for it so Stop() right after Start() works.
  while (!server_->is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return bound;
}

void AdminServer::AddGet(std::string path, Handler handler) {
  routes_.emplace_back(std::move(path), std::move(handler));
}

void AdminServer::Stop() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
  server_.reset();
}

}  // namespace pushgate
