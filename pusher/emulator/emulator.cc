#include "pusher/emulator/emulator.h"

#include <httplib.h>
#include <openssl/ssl.h>

#include <future>
#include <memory>
#include <mutex>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "pusher/emulator/internal.h"

namespace pushgate::pusher::emulator {

const char* ProviderName(Provider p) {
  switch (p) {
    case Provider::kApns:
      return "apns";
    case Provider::kFcm:
      return "fcm";
    case Provider::kOAuth:
      return "oauth";
    case Provider::kUnknown:
      break;
  }
  return "unknown";
}

nlohmann::json FaultsToJson(const Faults& f) {
  return {{"delay_ms", f.delay_ms},         {"fail_next", f.fail_next},
          {"fail_status", f.fail_status},   {"retry_after_s", f.retry_after_s},
          {"fail_target", f.fail_target},   {"goaway_after_streams", f.goaway_after_streams},
          {"goaway_limit", f.goaway_limit}, {"drop_after_streams", f.drop_after_streams},
          {"drop_limit", f.drop_limit},     {"max_concurrent_streams", f.max_concurrent_streams},
          {"reject_alpn", f.reject_alpn}};
}

absl::Status ApplyFaultsJson(const nlohmann::json& j, Faults* f) {
  if (!j.is_object()) return absl::InvalidArgumentError("faults: expected a JSON object");
  Faults out = *f;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    const nlohmann::json& v = it.value();
    auto int_field = [&](int* target, int min, int max) -> absl::Status {
      if (!v.is_number_integer() || v.get<int64_t>() < min || v.get<int64_t>() > max) {
        return absl::InvalidArgumentError(
            absl::StrCat("faults: '", k, "' must be an integer in [", min, ", ", max, "]"));
      }
      *target = v.get<int>();
      return absl::OkStatus();
    };
    absl::Status s;
    if (k == "delay_ms") {
      s = int_field(&out.delay_ms, 0, 600000);
    } else if (k == "fail_next") {
      s = int_field(&out.fail_next, 0, 1 << 30);
    } else if (k == "fail_status") {
      s = int_field(&out.fail_status, 400, 599);
      if (s.ok() && out.fail_status != 429 && out.fail_status != 500 && out.fail_status != 503) {
        s = absl::InvalidArgumentError("faults: 'fail_status' must be 429, 500 or 503");
      }
    } else if (k == "retry_after_s") {
      s = int_field(&out.retry_after_s, 0, 86400);
    } else if (k == "fail_target") {
      const std::string t = v.is_string() ? v.get<std::string>() : "";
      if (t != "send" && t != "apns" && t != "fcm" && t != "oauth" && t != "all") {
        s = absl::InvalidArgumentError(
            "faults: 'fail_target' must be one of send, apns, fcm, oauth, all");
      } else {
        out.fail_target = t;
      }
    } else if (k == "goaway_after_streams") {
      s = int_field(&out.goaway_after_streams, 0, 1 << 30);
    } else if (k == "goaway_limit") {
      s = int_field(&out.goaway_limit, 0, 1 << 30);
    } else if (k == "drop_after_streams") {
      s = int_field(&out.drop_after_streams, 0, 1 << 30);
    } else if (k == "drop_limit") {
      s = int_field(&out.drop_limit, 0, 1 << 30);
    } else if (k == "max_concurrent_streams") {
      s = int_field(&out.max_concurrent_streams, 0, 1 << 30);
    } else if (k == "reject_alpn") {
      if (!v.is_boolean()) {
        s = absl::InvalidArgumentError("faults: 'reject_alpn' must be a boolean");
      } else {
        out.reject_alpn = v.get<bool>();
      }
    } else {
      s = absl::InvalidArgumentError(absl::StrCat("faults: unknown field '", k, "'"));
    }
    if (!s.ok()) return s;
  }
  *f = out;
  return absl::OkStatus();
}

nlohmann::json ReceivedToJson(const ReceivedRequest& r) {
  nlohmann::json headers = nlohmann::json::object();
  for (const auto& [k, v] : r.headers) headers[k] = v;
  nlohmann::json j = {{"seq", r.seq},
                      {"provider", ProviderName(r.provider)},
                      {"method", r.method},
                      {"path", r.path},
                      {"headers", std::move(headers)},
                      {"body", r.body},
                      {"token", r.token},
                      {"topic", r.topic},
                      {"time_ms", absl::ToUnixMillis(r.time)},
                      {"connection", r.connection_id},
                      {"stream", r.stream_id},
                      {"status", r.status},
                      {"reason", r.reason},
                      {"fault", r.fault}};
  if (!r.apns_id.empty()) {
    j[r.provider == Provider::kFcm ? "message_name" : "apns_id"] = r.apns_id;
  }
  return j;
}

namespace {

void JsonAnswer(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

// POST /dead-tokens {"provider":"apns"|"fcm","tokens":[...],"timestamp_ms":optional}
void MarkDeadTokens(internal::State* st, const httplib::Request& req, httplib::Response& res) {
  nlohmann::json body = nlohmann::json::parse(req.body, nullptr, false);
  if (body.is_discarded() || !body.is_object() || !body.contains("tokens") ||
      !body["tokens"].is_array()) {
    JsonAnswer(res, 400, {{"error", "expected {\"provider\":\"apns|fcm\",\"tokens\":[...]}"}});
    return;
  }
  const std::string provider = body.value("provider", "apns");
  if (provider != "apns" && provider != "fcm") {
    JsonAnswer(res, 400, {{"error", "provider must be apns or fcm"}});
    return;
  }
  absl::Time since = st->Now();
  if (body.contains("timestamp_ms") && body["timestamp_ms"].is_number_integer()) {
    since = absl::FromUnixMillis(body["timestamp_ms"].get<int64_t>());
  }
  int n = 0;
  for (const auto& t : body["tokens"]) {
    if (!t.is_string()) continue;
    st->MarkDead(provider == "fcm" ? Provider::kFcm : Provider::kApns, t.get<std::string>(), since);
    ++n;
  }
  JsonAnswer(res, 200, {{"marked", n}});
}

// The control API's routes, each answering from `st`.
void AddControlRoutes(httplib::Server& server, internal::State* st) {
  server.Get("/received", [st](const httplib::Request& req, httplib::Response& res) {
    uint64_t since = 0;
    if (req.has_param("since") && !absl::SimpleAtoi(req.get_param_value("since"), &since)) {
      JsonAnswer(res, 400, {{"error", "since must be a non-negative integer"}});
      return;
    }
    nlohmann::json arr = nlohmann::json::array();
    for (const ReceivedRequest& r : st->Received(since)) arr.push_back(ReceivedToJson(r));
    JsonAnswer(res, 200, {{"received", std::move(arr)}});
  });
  server.Get("/stats", [st](const httplib::Request&, httplib::Response& res) {
    JsonAnswer(res, 200, st->Stats());
  });
  server.Get("/faults", [st](const httplib::Request&, httplib::Response& res) {
    JsonAnswer(res, 200, FaultsToJson(st->GetFaults()));
  });
  server.Post("/faults", [st](const httplib::Request& req, httplib::Response& res) {
    nlohmann::json body = nlohmann::json::parse(req.body, nullptr, false);
    Faults f = st->GetFaults();
    absl::Status s = body.is_discarded() ? absl::InvalidArgumentError("body is not JSON")
                                         : ApplyFaultsJson(body, &f);
    if (!s.ok()) {
      JsonAnswer(res, 400, {{"error", std::string(s.message())}});
      return;
    }
    st->SetFaults(f);
    JsonAnswer(res, 200, FaultsToJson(f));
  });
  server.Post("/dead-tokens", [st](const httplib::Request& req, httplib::Response& res) {
    MarkDeadTokens(st, req, res);
  });
  server.Post("/reset", [st](const httplib::Request&, httplib::Response& res) {
    st->Reset();
    JsonAnswer(res, 200, {{"reset", true}});
  });
}

}  // namespace

class Emulator::Impl {
 public:
  ~Impl() { Stop(); }

  absl::StatusOr<BoundPorts> Start(EmulatorOptions options) {
    if (options.tls_cert_pem.empty() != options.tls_key_pem.empty()) {
      return absl::InvalidArgumentError("TLS certificate and key must be given together");
    }
    if (options.tls_cert_pem.empty()) {
      auto generated = internal::GenerateSelfSigned();
      if (!generated.ok()) return generated.status();
      options.tls_cert_pem = generated->first;
      options.tls_key_pem = generated->second;
    }
    ca_pem_ = options.tls_cert_pem;
    auto state = internal::State::Create(options);
    if (!state.ok()) return state.status();
    state_ = std::move(*state);
    auto ctx = internal::MakeServerTlsContext(options.tls_cert_pem, options.tls_key_pem,
                                              options.client_ca_pem, state_.get());
    if (!ctx.ok()) return ctx.status();
    ssl_ctx_ = *ctx;
    h2_ = std::make_unique<internal::H2Server>(state_.get(), ssl_ctx_);
    auto h2_port = h2_->Start(options.h2_host, options.h2_port, options.threads);
    if (!h2_port.ok()) {
      Stop();
      return h2_port.status();
    }
    ports_.h2 = *h2_port;
    if (options.control_port >= 0) {
      auto control = StartControl(options.control_host, options.control_port);
      if (!control.ok()) {
        Stop();
        return control.status();
      }
      ports_.control = *control;
    }
    log::Get("pusher.emulator")
        ->info("event=started h2_port={} control_port={} threads={}", ports_.h2, ports_.control,
               options.threads);
    return ports_;
  }

  void Stop() {
    if (control_) control_->stop();
    if (control_thread_.joinable()) control_thread_.join();
    control_.reset();
    if (h2_) h2_->Stop();
    h2_.reset();
    if (ssl_ctx_ != nullptr) SSL_CTX_free(ssl_ctx_);
    ssl_ctx_ = nullptr;
  }

  absl::StatusOr<int> StartControl(const std::string& host, int port) {
    control_ = std::make_unique<httplib::Server>();
    // httplib has no "listening" callback, and its stop() does nothing until the listen loop has
    // marked itself running; it makes its task queue right after that, once per listen. That is
    // the event Start waits for, so that a Stop() right after Start() cannot hang.
    auto running = std::make_shared<ListenStarted>();
    std::future<void> started = running->promise.get_future();
    control_->new_task_queue = [running] {
      running->Signal();
      return new httplib::ThreadPool(2);
    };
    control_->set_socket_options([](int sock) {
      int yes = 1;
      setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    });
    AddControlRoutes(*control_, state_.get());

    int bound = port;
    if (port == 0) {
      bound = control_->bind_to_any_port(host);
    } else if (!control_->bind_to_port(host, port)) {
      bound = -1;
    }
    if (bound <= 0) {
      return absl::UnavailableError(
          absl::StrCat("control HTTP: cannot listen on ", host, ":", port));
    }
    control_thread_ = std::thread([this, running] {
      control_->listen_after_bind();
      running->Signal();  // a listen that failed before its loop must not leave Start waiting
    });
    started.wait();
    return bound;
  }

  // Set once, by whichever comes first: the listen loop starting or the listen thread ending.
  struct ListenStarted {
    std::once_flag once;
    std::promise<void> promise;
    void Signal() {
      std::call_once(once, [this] { promise.set_value(); });
    }
  };

  std::unique_ptr<internal::State> state_;
  SSL_CTX* ssl_ctx_ = nullptr;
  std::unique_ptr<internal::H2Server> h2_;
  std::unique_ptr<httplib::Server> control_;
  std::thread control_thread_;
  std::string ca_pem_;
  BoundPorts ports_;
};

Emulator::Emulator() : impl_(std::make_unique<Impl>()) {}
Emulator::~Emulator() = default;

absl::StatusOr<BoundPorts> Emulator::Start(EmulatorOptions options) {
  if (impl_->state_ != nullptr) return absl::FailedPreconditionError("emulator already started");
  return impl_->Start(std::move(options));
}

void Emulator::Stop() { impl_->Stop(); }
std::string Emulator::ca_pem() const { return impl_->ca_pem_; }
BoundPorts Emulator::ports() const { return impl_->ports_; }

std::vector<ReceivedRequest> Emulator::Received(uint64_t since) const {
  if (!impl_->state_) return {};
  return impl_->state_->Received(since);
}

bool Emulator::WaitForReceived(size_t n, absl::Duration timeout) const {
  return impl_->state_ && impl_->state_->WaitForReceived(n, timeout);
}

nlohmann::json Emulator::Stats() const {
  return impl_->state_ ? impl_->state_->Stats() : nlohmann::json::object();
}

void Emulator::SetFaults(const Faults& faults) {
  if (impl_->state_) impl_->state_->SetFaults(faults);
}

Faults Emulator::GetFaults() const { return impl_->state_ ? impl_->state_->GetFaults() : Faults{}; }

void Emulator::MarkDead(Provider provider, const std::string& token, absl::Time since) {
  if (!impl_->state_) return;
  if (since == absl::InfinitePast()) since = impl_->state_->Now();
  impl_->state_->MarkDead(provider, token, since);
}

void Emulator::Reset() {
  if (impl_->state_) impl_->state_->Reset();
}

}  // namespace pushgate::pusher::emulator
