// Emulator state shared by the HTTP/2 loops and the control endpoint.
#include <random>

#include "absl/strings/str_cat.h"
#include "pusher/emulator/internal.h"

namespace pushgate::pusher::emulator::internal {

State::State(const EmulatorOptions& options)
    : options_(options), clock_(options.clock != nullptr ? options.clock : &RealClock::Get()) {}

absl::StatusOr<std::unique_ptr<State>> State::Create(const EmulatorOptions& options) {
  std::unique_ptr<State> s(new State(options));
  for (const ApnsKey& k : options.apns_keys) {
    auto pkey = LoadPublicKeyPem(k.public_key_pem);
    if (!pkey.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("APNs key ", k.team_id, ":", k.key_id, ": ", pkey.status().message()));
    }
    s->apns_keys_.push_back({k, std::move(*pkey)});
  }
  for (const FcmServiceAccount& a : options.fcm_accounts) {
    auto pkey = LoadPublicKeyPem(a.public_key_pem);
    if (!pkey.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("FCM service account ", a.client_email, ": ", pkey.status().message()));
    }
    s->fcm_accounts_.push_back({a, std::move(*pkey)});
  }
  s->SetFaults(options.faults);
  return s;
}

// ----- faults

Faults State::GetFaults() const {
  std::lock_guard<std::mutex> lock(faults_mu_);
  return faults_;
}

void State::SetFaults(const Faults& faults) {
  std::lock_guard<std::mutex> lock(faults_mu_);
  faults_ = faults;
  goaways_fired_ = 0;
  drops_fired_ = 0;
  delay_ms_.store(faults.delay_ms);
  reject_alpn_.store(faults.reject_alpn);
  goaway_armed_.store(faults.goaway_after_streams > 0);
  drop_armed_.store(faults.drop_after_streams > 0);
}

State::FaultDecision State::TakeFault(Provider provider) {
  std::lock_guard<std::mutex> lock(faults_mu_);
  if (faults_.fail_next <= 0) return {};
  const std::string& t = faults_.fail_target;
  const bool match = t == "all" || (t == "send" && provider != Provider::kOAuth) ||
                     (t == "apns" && provider == Provider::kApns) ||
                     (t == "fcm" && provider == Provider::kFcm) ||
                     (t == "oauth" && provider == Provider::kOAuth);
  if (!match) return {};
  --faults_.fail_next;
  return {faults_.fail_status, faults_.retry_after_s};
}

bool State::TakeGoaway(int streams_begun) {
  if (!goaway_armed_.load(std::memory_order_relaxed)) return false;
  std::lock_guard<std::mutex> lock(faults_mu_);
  if (faults_.goaway_after_streams <= 0 || streams_begun < faults_.goaway_after_streams) {
    return false;
  }
  if (faults_.goaway_limit > 0 && goaways_fired_ >= faults_.goaway_limit) return false;
  ++goaways_fired_;
  return true;
}

bool State::TakeDrop(int streams_processed) {
  if (!drop_armed_.load(std::memory_order_relaxed)) return false;
  std::lock_guard<std::mutex> lock(faults_mu_);
  if (faults_.drop_after_streams <= 0 || streams_processed < faults_.drop_after_streams) {
    return false;
  }
  if (faults_.drop_limit > 0 && drops_fired_ >= faults_.drop_limit) return false;
  ++drops_fired_;
  return true;
}

int State::MaxConcurrentStreams() const {
  std::lock_guard<std::mutex> lock(faults_mu_);
  return faults_.max_concurrent_streams > 0 ? faults_.max_concurrent_streams : 1000;
}

// ----- dead tokens

void State::MarkDead(Provider provider, const std::string& token, absl::Time since) {
  std::lock_guard<std::mutex> lock(dead_mu_);
  (provider == Provider::kFcm ? dead_fcm_ : dead_apns_)[token] = since;
}

std::optional<absl::Time> State::DeadSince(Provider provider, const std::string& token) const {
  std::lock_guard<std::mutex> lock(dead_mu_);
  const auto& m = provider == Provider::kFcm ? dead_fcm_ : dead_apns_;
  auto it = m.find(token);
  if (it == m.end()) return std::nullopt;
  return it->second;
}

// ----- credentials

const State::ApnsKeyEntry* State::FindApnsKey(absl::string_view team, absl::string_view kid) const {
  for (const ApnsKeyEntry& e : apns_keys_) {
    if (e.key.team_id == team && e.key.key_id == kid) return &e;
  }
  return nullptr;
}

const State::FcmAccountEntry* State::FindFcmAccount(absl::string_view client_email) const {
  for (const FcmAccountEntry& e : fcm_accounts_) {
    if (e.account.client_email == client_email) return &e;
  }
  return nullptr;
}

std::optional<State::VerifiedApnsJwt> State::CachedApnsJwt(const std::string& jwt) const {
  std::lock_guard<std::mutex> lock(cred_mu_);
  auto it = apns_jwt_cache_.find(jwt);
  if (it == apns_jwt_cache_.end()) return std::nullopt;
  return it->second;
}

void State::CacheApnsJwt(const std::string& jwt, VerifiedApnsJwt v) {
  std::lock_guard<std::mutex> lock(cred_mu_);
  if (apns_jwt_cache_.size() >= 4096) apns_jwt_cache_.clear();
  apns_jwt_cache_[jwt] = std::move(v);
}

bool State::NoteNewApnsToken(const std::string& team_kid, int64_t iat) {
  std::lock_guard<std::mutex> lock(cred_mu_);
  auto it = last_new_token_iat_.find(team_kid);
  if (options_.strict_token_updates && it != last_new_token_iat_.end() &&
      iat < it->second + int64_t{20} * 60) {
    return false;
  }
  last_new_token_iat_[team_kid] = iat;
  ++provider_tokens_seen_;
  return true;
}

std::string State::IssueAccessToken(const FcmAccountEntry* account, absl::Time expiry) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%016llx%016llx", static_cast<unsigned long long>(rng()),
                static_cast<unsigned long long>(rng()));
  std::string token = absl::StrCat("ya29.emu.", buf);
  std::lock_guard<std::mutex> lock(cred_mu_);
  if (access_tokens_.size() >= 65536) {
    const absl::Time now = Now();
    for (auto it = access_tokens_.begin(); it != access_tokens_.end();) {
      it = it->second.expiry <= now ? access_tokens_.erase(it) : std::next(it);
    }
  }
  access_tokens_[token] = {account, expiry};
  ++access_tokens_issued_;
  return token;
}

const State::FcmAccountEntry* State::LookupAccessToken(const std::string& token,
                                                       absl::Time now) const {
  std::lock_guard<std::mutex> lock(cred_mu_);
  auto it = access_tokens_.find(token);
  if (it == access_tokens_.end() || it->second.expiry <= now) return nullptr;
  return it->second.account;
}

// ----- records and stats

void State::Record(ReceivedRequest r) {
  {
    std::lock_guard<std::mutex> lock(rec_mu_);
    r.seq = next_seq_++;
    ++total_since_reset_;
    ++by_path_[StatsPath(r.path)];
    ++by_status_[r.status];
    if (!r.reason.empty()) ++by_reason_[r.reason];
    ++by_connection_[r.connection_id];
    if (r.fault) ++faults_injected_;
    if (options_.max_records > 0) {
      if (records_.size() >= options_.max_records) records_.pop_front();
      records_.push_back(std::move(r));
    }
  }
  rec_cv_.notify_all();
}

std::vector<ReceivedRequest> State::Received(uint64_t since) const {
  std::lock_guard<std::mutex> lock(rec_mu_);
  std::vector<ReceivedRequest> out;
  for (const ReceivedRequest& r : records_) {
    if (r.seq > since) out.push_back(r);
  }
  return out;
}

bool State::WaitForReceived(size_t n, absl::Duration timeout) const {
  std::unique_lock<std::mutex> lock(rec_mu_);
  return rec_cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                          [&] { return total_since_reset_ >= n; });
}

nlohmann::json State::Stats() const {
  nlohmann::json j;
  {
    std::lock_guard<std::mutex> lock(rec_mu_);
    j["requests"] = total_since_reset_;
    j["last_seq"] = next_seq_ - 1;
    j["faults_injected"] = faults_injected_;
    nlohmann::json paths = nlohmann::json::object();
    for (const auto& [k, v] : by_path_) paths[k] = v;
    nlohmann::json statuses = nlohmann::json::object();
    for (const auto& [k, v] : by_status_) statuses[std::to_string(k)] = v;
    nlohmann::json reasons = nlohmann::json::object();
    for (const auto& [k, v] : by_reason_) reasons[k] = v;
    nlohmann::json conns = nlohmann::json::object();
    for (const auto& [k, v] : by_connection_) conns[std::to_string(k)] = v;
    j["by_path"] = std::move(paths);
    j["by_status"] = std::move(statuses);
    j["by_reason"] = std::move(reasons);
    j["by_connection"] = std::move(conns);
  }
  j["connections"] = {
      {"accepted", connections_accepted.load()}, {"open", connections_open.load()},
      {"tls_failures", tls_failures.load()},     {"alpn_rejected", alpn_rejected.load()},
      {"goaway_sent", goaways_sent.load()},      {"dropped", connections_dropped.load()}};
  j["streams_refused"] = streams_refused.load();
  {
    std::lock_guard<std::mutex> lock(cred_mu_);
    j["apns_provider_tokens"] = provider_tokens_seen_;
    j["oauth_tokens_issued"] = access_tokens_issued_;
  }
  return j;
}

void State::Reset() {
  SetFaults(options_.faults);
  {
    std::lock_guard<std::mutex> lock(dead_mu_);
    dead_apns_.clear();
    dead_fcm_.clear();
  }
  {
    std::lock_guard<std::mutex> lock(rec_mu_);
    records_.clear();
    total_since_reset_ = 0;
    by_path_.clear();
    by_status_.clear();
    by_reason_.clear();
    by_connection_.clear();
    faults_injected_ = 0;
  }
  goaways_sent = 0;
  connections_dropped = 0;
  streams_refused = 0;
  tls_failures = 0;
  alpn_rejected = 0;
  connections_accepted = 0;
}

}  // namespace pushgate::pusher::emulator::internal
