#include "pusher/service/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/file.h"
#include "common/log.h"
#include "common/status.h"
#include "pusher/apns/apns_backend.h"
#include "pusher/core/apns_token.h"
#include "pusher/core/fcm_auth.h"
#include "pusher/core/request_wire.h"
#include "pusher/fcm/fcm_backend.h"
#include "pusher/http2/pool.h"
#include "pusher/provider/retrying_client.h"

namespace pushgate::pusher {
namespace {

absl::StatusOr<std::string> ReadNamedFile(const std::string& path, absl::string_view what) {
  absl::StatusOr<std::string> content = ReadFile(path);
  if (!content.ok())
    return absl::NotFoundError(absl::StrCat(what, " ", content.status().message()));
  return content;
}

// Stands for a credential that could not be loaded: every push to its apps gets AUTH_FAILED
// with the reason, and the health service reports it NOT_SERVING.
class BrokenClient final : public ProviderClient {
 public:
  explicit BrokenClient(std::string problem) : problem_(std::move(problem)) {}
  void Send(v1::PushRequest request, absl::Time, ResultCallback done) override {
    v1::PushResult result;
    result.set_request_id(request.request_id());
    result.set_outcome(v1::AUTH_FAILED);
    result.set_reason(problem_);
    done(std::move(result));
  }
  std::string Problem() const override { return problem_; }
  void Drain(absl::Duration) override {}

 private:
  std::string problem_;
};

RetryPolicy MakeRetryPolicy(const PusherConfig::Retry& r) {
  RetryPolicy p;
  p.initial = r.initial_backoff;
  p.max = r.max_backoff;
  p.max_attempts = r.max_attempts;
  p.multiplier = r.multiplier;
  p.jitter = r.jitter;
  return p;
}

http2::TlsOptions MakeTls(const PusherConfig::Http2& h) {
  http2::TlsOptions tls;
  tls.ca_file = h.ca_file;
  tls.verify_peer = h.verify_peer;
  return tls;
}

http2::PoolOptions MakePool(const PusherConfig::Http2& h, std::string url, std::string name) {
  http2::PoolOptions o;
  o.base_url = std::move(url);
  o.tls = MakeTls(h);
  o.max_connections = h.max_connections_per_pool;
  o.min_connections = h.min_connections_per_pool;
  o.max_queue = static_cast<size_t>(h.max_queue_per_pool);
  o.connect_timeout = h.connect_timeout;
  o.ping_interval = h.ping_interval;
  o.name = std::move(name);
  return o;
}

}  // namespace

PusherServer::PusherServer(const PusherConfig& config, const Clock& clock)
    : config_(config), clock_(clock) {}

PusherServer::~PusherServer() {
  Shutdown(absl::ZeroDuration());  // or waits for the one under way
  scheduler_.Stop();
}

absl::StatusOr<std::unique_ptr<PusherServer>> PusherServer::Create(const PusherConfig& config,
                                                                   const Clock& clock) {
  std::unique_ptr<PusherServer> s(new PusherServer(config, clock));
  std::vector<ApiKeyEntry> clients;
  if (!config.grpc.api_keys_file.empty()) {
    ASSIGN_OR_RETURN(std::string text,
                     ReadNamedFile(config.grpc.api_keys_file, "grpc.api_keys_file"));
    auto parsed = ParseApiKeysFile(text);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(config.grpc.api_keys_file, ": ", parsed.status().message()));
    }
    clients = *std::move(parsed);
  }
  s->authorizer_ = std::make_unique<Authorizer>(std::move(clients));
  s->idempotency_ = std::make_unique<IdempotencyCache>(
      config.idempotency.window, static_cast<size_t>(config.idempotency.max_entries));
  RETURN_IF_ERROR(s->LoadCredentials());
  s->handler_ = std::make_unique<PushHandler>(s->router_, *s->idempotency_, clock);
  ServiceOptions options;
  options.default_deadline = config.grpc.deadline_default;
  options.max_deadline = std::max(config.http2.request_timeout, config.grpc.deadline_default);
  options.max_in_flight_per_stream = config.grpc.stream_backlog;
  s->service_ = std::make_unique<PusherService>(*s->handler_, *s->authorizer_, clock, options);
  return s;
}

namespace {

struct ApnsEnvironment {
  v1::Provider provider;
  const char* name;
  std::string url;
};

std::vector<ApnsEnvironment> ApnsEnvironments(const PusherConfig& config) {
  return {{v1::APNS, "apns", config.apns.production_url},
          {v1::APNS_SANDBOX, "apns_sandbox", config.apns.sandbox_url}};
}

}  // namespace

absl::Status PusherServer::LoadCredentials() {
  RETURN_IF_ERROR(LoadApnsTokenKeys());
  RETURN_IF_ERROR(LoadApnsCertificates());
  LoadFcmServiceAccounts();
  return absl::OkStatus();
}

std::shared_ptr<ProviderClient> PusherServer::Broken(const std::string& what,
                                                     const absl::Status& status) {
  std::string problem = absl::StrCat(what, ": ", status.message());
  log::Get("pusher")->error("credential unusable, its apps report NOT_SERVING: {}", problem);
  load_errors_.push_back(problem);
  return std::make_shared<BrokenClient>(problem);
}

absl::Status PusherServer::LoadApnsTokenKeys() {
  RetryPolicy policy = MakeRetryPolicy(config_.retry);
  for (const std::string& entry : config_.apns.token_keys) {
    ASSIGN_OR_RETURN(TokenKeySpec spec, ParseTokenKeySpec(entry));
    std::string what = absl::StrCat("APNs token key ", spec.key_id, " of team ", spec.team_id);
    for (const ApnsEnvironment& env : ApnsEnvironments(config_)) {
      absl::StatusOr<std::shared_ptr<ProviderClient>> client =
          [&]() -> absl::StatusOr<std::shared_ptr<ProviderClient>> {
        ASSIGN_OR_RETURN(std::string pem, ReadNamedFile(spec.key_file, "key file"));
        ASSIGN_OR_RETURN(PKey key, LoadPrivateKeyPem(pem));
        ASSIGN_OR_RETURN(auto signer,
                         ApnsTokenSigner::Create(spec.team_id, spec.key_id, std::move(key),
                                                 config_.apns.token_refresh_age));
        http2::PoolOptions options =
            MakePool(config_.http2, env.url, absl::StrCat(env.name, "-", spec.team_id));
        options.unindexed_headers = {"apns-id"};
        ASSIGN_OR_RETURN(auto pool, http2::Pool::Create(std::move(options)));
        return std::make_shared<RetryingClient>(
            absl::StrCat(env.name, ":", spec.team_id), std::move(pool),
            std::make_unique<ApnsBackend>(env.provider, std::move(signer)), policy, scheduler_,
            clock_);
      }();
      router_.AddApnsTeam(env.provider, spec.team_id,
                          client.ok() ? *client : Broken(what, client.status()));
    }
  }
  return absl::OkStatus();
}

absl::Status PusherServer::LoadApnsCertificates() {
  RetryPolicy policy = MakeRetryPolicy(config_.retry);
  for (const std::string& entry : config_.apns.certificates) {
    ASSIGN_OR_RETURN(CertificateSpec spec, ParseCertificateSpec(entry));
    std::string what = absl::StrCat("APNs certificate of ", spec.bundle_id);
    for (const ApnsEnvironment& env : ApnsEnvironments(config_)) {
      http2::PoolOptions options =
          MakePool(config_.http2, env.url, absl::StrCat(env.name, "-", spec.bundle_id));
      options.tls.client_cert_file = spec.cert_file;
      options.tls.client_key_file = spec.key_file;
      options.unindexed_headers = {"apns-id"};
      auto pool = http2::Pool::Create(std::move(options));
      std::shared_ptr<ProviderClient> client;
      if (pool.ok()) {
        client = std::make_shared<RetryingClient>(
            absl::StrCat(env.name, ":", spec.bundle_id), *std::move(pool),
            std::make_unique<ApnsBackend>(env.provider, spec.bundle_id), policy, scheduler_,
            clock_);
      } else {
        client = Broken(what, pool.status());
      }
      router_.AddApnsBundle(env.provider, spec.bundle_id, client);
    }
  }
  return absl::OkStatus();
}

void PusherServer::LoadFcmServiceAccounts() {
  RetryPolicy policy = MakeRetryPolicy(config_.retry);
  for (const std::string& path : config_.fcm.service_accounts) {
    std::string what = absl::StrCat("FCM service account ", path);
    absl::StatusOr<ServiceAccount> account = [&]() -> absl::StatusOr<ServiceAccount> {
      ASSIGN_OR_RETURN(std::string json, ReadNamedFile(path, "service account"));
      return ParseServiceAccountJson(json);
    }();
    if (!account.ok()) {
      // Without the file we do not know its project: report the service as not ready.
      Broken(what, account.status());
      continue;
    }
    std::string project = account->project_id;
    std::string token_uri = config_.fcm.token_uri_override.empty() ? account->token_uri
                                                                   : config_.fcm.token_uri_override;
    absl::StatusOr<std::shared_ptr<ProviderClient>> client =
        [&]() -> absl::StatusOr<std::shared_ptr<ProviderClient>> {
      ASSIGN_OR_RETURN(auto backend, FcmBackend::Create(*account, token_uri, MakeTls(config_.http2),
                                                        scheduler_, clock_));
      ASSIGN_OR_RETURN(auto pool, http2::Pool::Create(MakePool(config_.http2, config_.fcm.base_url,
                                                               absl::StrCat("fcm-", project))));
      backend->Warm();
      return std::make_shared<RetryingClient>(absl::StrCat("fcm:", project), std::move(pool),
                                              std::move(backend), policy, scheduler_, clock_);
    }();
    router_.AddFcmProject(project, client.ok() ? *client : Broken(what, client.status()));
  }
}

absl::StatusOr<int> PusherServer::Start() {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  std::shared_ptr<grpc::ServerCredentials> credentials;
  const auto& g = config_.grpc;
  if (!g.tls_cert_file.empty()) {
    grpc::SslServerCredentialsOptions ssl(
        g.client_ca_file.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                 : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    ASSIGN_OR_RETURN(std::string cert, ReadNamedFile(g.tls_cert_file, "grpc.tls_cert_file"));
    ASSIGN_OR_RETURN(std::string key, ReadNamedFile(g.tls_key_file, "grpc.tls_key_file"));
    ssl.pem_key_cert_pairs.push_back({key, cert});
    if (!g.client_ca_file.empty()) {
      ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadNamedFile(g.client_ca_file, "grpc.client_ca_file"));
    }
    credentials = grpc::SslServerCredentials(ssl);
  } else {
    credentials = grpc::InsecureServerCredentials();
  }
  grpc::ServerBuilder builder;
  // Requests above kMaxRequestBytes are answered INVALID_ARGUMENT naming their largest field;
  // above this gRPC refuses them itself (RESOURCE_EXHAUSTED) before they are buffered whole.
  builder.SetMaxReceiveMessageSize(kMaxGrpcReceiveBytes);
  int port = 0;
  builder.AddListeningPort(g.listen, credentials, &port);
  builder.RegisterService(service_.get());
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", g.listen));
  }
  {
    std::lock_guard lock(health_mu_);
    server_ = std::move(server);
  }
  {
    std::lock_guard lock(shutdown_mu_);
    started_ = true;
  }
  UpdateHealth();
  log::Get("pusher")->info("listening on {} (port {}, {})", g.listen, port,
                           g.tls_cert_file.empty()    ? "plaintext"
                           : g.client_ca_file.empty() ? "TLS"
                                                      : "mutual TLS");
  return port;
}

void PusherServer::UpdateHealth() {
  {
    std::lock_guard lock(health_mu_);
    if (!server_ || !*alive_) return;
    grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService();
    if (health == nullptr) return;
    health->SetServingStatus("", true);
    health->SetServingStatus("pushgate.v1.Pusher", true);
    for (const auto& [name, client] : router_.Clients()) {
      health->SetServingStatus(name, client->Problem().empty());
    }
  }
  std::weak_ptr<bool> alive = alive_;
  scheduler_.RunAt(clock_.Now() + absl::Seconds(5), [this, alive] {
    auto a = alive.lock();
    if (a && *a) UpdateHealth();
  });
}

std::string PusherServer::Problems() const {
  std::vector<std::string> problems = load_errors_;
  for (const auto& [name, client] : router_.Clients()) {
    std::string p = client->Problem();
    if (!p.empty() && std::find(problems.begin(), problems.end(), p) == problems.end()) {
      problems.push_back(absl::StrCat(name, ": ", p));
    }
  }
  return absl::StrJoin(problems, "; ");
}

void PusherServer::Shutdown(absl::Duration drain) {
  {
    std::unique_lock lock(shutdown_mu_);
    if (shutdown_started_) {
      shutdown_cv_.wait(lock, [this] { return shutdown_done_; });
      return;
    }
    shutdown_started_ = true;
  }
  grpc::Server* server;
  {
    std::lock_guard lock(health_mu_);
    *alive_ = false;  // no health update from now on
    server = server_.get();
    if (server != nullptr) {
      if (auto* health = server->GetHealthCheckService()) health->Shutdown();
    }
  }
  if (server != nullptr) {
    server->Shutdown(absl::ToChronoTime(absl::Now() + drain));
    for (const auto& [name, client] : router_.Clients()) client->Drain(drain);
    server->Wait();
    std::lock_guard lock(health_mu_);
    server_.reset();
  }
  // Notified under the lock: a waiter may destroy this object as soon as it can lock again.
  std::lock_guard lock(shutdown_mu_);
  shutdown_done_ = true;
  shutdown_cv_.notify_all();
}

void PusherServer::Wait() {
  std::unique_lock lock(shutdown_mu_);
  if (!started_) return;
  shutdown_cv_.wait(lock, [this] { return shutdown_done_; });
}

}  // namespace pushgate::pusher
