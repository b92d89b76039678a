#include "pusher/fcm/fcm_backend.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "pusher/core/payload.h"
#include "pusher/http2/pool.h"
#include "pusher/provider/http2_request.h"

namespace pushgate::pusher {
namespace {

// "https://host[:port]/path" -> ("https://host[:port]", "/path").
absl::StatusOr<std::pair<std::string, std::string>> SplitUrl(const std::string& url) {
  size_t scheme = url.find("://");
  if (scheme == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("token URI '", url, "' is not a URL"));
  }
  size_t slash = url.find('/', scheme + 3);
  if (slash == std::string::npos) return std::make_pair(url, std::string("/"));
  return std::make_pair(url.substr(0, slash), url.substr(slash));
}

}  // namespace

absl::StatusOr<std::unique_ptr<FcmBackend>> FcmBackend::Create(ServiceAccount account,
                                                               const std::string& token_uri,
                                                               http2::TlsOptions tls,
                                                               Scheduler& scheduler,
                                                               const Clock& clock) {
  absl::StatusOr<PKey> key = LoadPrivateKeyPem(account.private_key);
  if (!key.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("service account ", account.client_email,
                                                   ": private_key: ", key.status().message()));
  }
  auto split = SplitUrl(token_uri);
  if (!split.ok()) return split.status();
  account.token_uri = token_uri;  // the assertion's audience is where it is sent
  http2::PoolOptions options;
  options.base_url = split->first;
  options.tls = std::move(tls);
  options.max_connections = 1;
  options.max_queue = 64;
  options.name = absl::StrCat("fcm-oauth-", account.project_id);
  auto pool = http2::Pool::Create(std::move(options));
  if (!pool.ok()) {
    return absl::Status(pool.status().code(),
                        absl::StrCat("token URI ", token_uri, ": ", pool.status().message()));
  }
  std::unique_ptr<FcmBackend> backend(
      new FcmBackend(std::move(account), *std::move(key), split->second, scheduler, clock));
  backend->token_pool_ = *std::move(pool);
  return backend;
}

FcmBackend::FcmBackend(ServiceAccount account, PKey key, std::string token_path,
                       Scheduler& scheduler, const Clock& clock)
    : account_(std::move(account)),
      key_(std::move(key)),
      token_path_(std::move(token_path)),
      scheduler_(scheduler),
      clock_(clock) {}

FcmBackend::~FcmBackend() {
  *alive_ = false;
  token_pool_.reset();  // answers a refresh in flight while the members still exist
}

void FcmBackend::Warm() { Refresh(clock_.Now()); }

void FcmBackend::Prepare(const v1::PushRequest& request, absl::Time now,
                         std::function<void(absl::StatusOr<http2::Request>)> done) {
  absl::StatusOr<HttpRequestSpec> spec = BuildFcmRequest(request, account_.project_id);
  if (!spec.ok()) {
    done(spec.status());
    return;
  }
  auto finish = [spec = *std::move(spec),
                 done = std::move(done)](absl::StatusOr<std::string> token) mutable {
    if (!token.ok()) {
      done(token.status());
      return;
    }
    http2::Request http = ToHttp2Request(std::move(spec));
    http.headers.emplace_back("authorization", absl::StrCat("Bearer ", *token));
    done(std::move(http));
  };
  // The token check and the enqueue are one step under mu_, and OnTokenResponse stores the new
  // token and takes the waiters in one step too: a push can no longer miss the refresh that
  // completes between the two and wait for the next one, an hour later (it hung
  // PusherTest.ApiKeysRestrictApps under load).
  std::unique_lock lock(mu_);
  if (std::optional<std::string> token = cache_.Current(now)) {
    lock.unlock();
    if (cache_.NeedsRefresh(now)) Refresh(now);  // ahead of expiry, in the background
    finish(*std::move(token));
    return;
  }
  waiting_.push_back(std::move(finish));
  const bool refresh = cache_.NeedsRefresh(now);
  // No usable token and no refresh allowed yet (backing off after failures), unless one is
  // already in flight: answer now rather than hold the push.
  std::vector<Waiter> refused;
  if (!refresh && cache_.NextRefreshAt() != absl::InfiniteFuture()) refused.swap(waiting_);
  lock.unlock();
  if (refresh) Refresh(now);
  if (refused.empty()) return;
  absl::Status error = cache_.last_error();
  for (Waiter& w : refused) {
    w(absl::UnavailableError(absl::StrCat("no FCM access token yet: ", error.message())));
  }
}

void FcmBackend::Refresh(absl::Time now) {
  if (!cache_.RefreshStarted()) return;  // someone else is refreshing
  absl::StatusOr<std::string> assertion = BuildOAuthAssertion(account_, key_, now);
  if (!assertion.ok()) {
    OnTokenResponse(absl::UnauthenticatedError(
        absl::StrCat("cannot sign the OAuth assertion: ", assertion.status().message())));
    return;
  }
  http2::Request request;
  request.path = token_path_;
  request.headers = {{"content-type", "application/x-www-form-urlencoded"}};
  request.body = OAuthTokenRequestBody(*assertion);
  request.deadline = now + absl::Seconds(30);
  token_pool_->Submit(std::move(request), [this](http2::Result result) {
    if (result.ok()) {
      OnTokenResponse(*std::move(result));
    } else {
      OnTokenResponse(result.status());
    }
  });
}

void FcmBackend::OnTokenResponse(absl::StatusOr<http2::Response> response) {
  absl::Time now = clock_.Now();
  absl::StatusOr<AccessToken> token =
      response.ok() ? ParseOAuthTokenResponse(response->status, response->body, now)
                    : absl::StatusOr<AccessToken>(absl::UnavailableError(
                          absl::StrCat("token endpoint: ", response.status().message())));
  std::vector<Waiter> waiters;
  absl::StatusOr<std::string> answer;
  const absl::Duration lifetime = token.ok() ? token->expires_at - now : absl::ZeroDuration();
  {
    std::lock_guard lock(mu_);  // the cache and the waiters change together (see Prepare)
    if (token.ok()) {
      answer = token->token;
      problem_.clear();
      cache_.Set(*std::move(token));
    } else {
      answer = token.status();
      if (token.status().code() == absl::StatusCode::kUnauthenticated) {
        problem_ = absl::StrCat("FCM OAuth refused the service account ", account_.client_email,
                                ": ", token.status().message());
      }
      cache_.RefreshFailed(now, answer.status());
    }
    waiters.swap(waiting_);
  }
  if (answer.ok()) {
    log::Get("pusher.fcm")
        ->info("project={} access token refreshed, expires in {}", account_.project_id,
               absl::FormatDuration(lifetime));
  } else {
    log::Get("pusher.fcm")
        ->warn("project={} access token refresh failed: {}", account_.project_id,
               answer.status().message());
  }
  for (Waiter& w : waiters) w(answer);
  ScheduleRefresh();
}

void FcmBackend::ScheduleRefresh() {
  absl::Time at = cache_.NextRefreshAt();
  if (at == absl::InfiniteFuture()) return;
  std::weak_ptr<bool> alive = alive_;
  scheduler_.RunAt(at, [this, alive] {
    auto lock = alive.lock();
    if (lock && *lock && cache_.NeedsRefresh(clock_.Now())) Refresh(clock_.Now());
  });
}

bool FcmBackend::OnAuthRejected(absl::string_view reason, absl::Time now) {
  std::lock_guard lock(mu_);
  problem_ = absl::StrCat("FCM refused the credential: ", reason);
  if (absl::StrContains(reason, "UNAUTHENTICATED") || absl::StrContains(reason, "401")) {
    cache_.Invalidate();  // the access token itself was refused: fetch another and retry once
    return true;
  }
  return false;
}

void FcmBackend::OnAccepted() {
  std::lock_guard lock(mu_);
  problem_.clear();
}

std::string FcmBackend::Problem() const {
  std::lock_guard lock(mu_);
  return problem_;
}

}  // namespace pushgate::pusher
