#include "proxy/store/redis_binding_store.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/log.h"
#include "common/metrics.h"

namespace pushgate::proxy {

namespace {

// Compare-and-set: writes ARGV[2] (with PX ARGV[3], "0" = no TTL; "" = delete) only if the key
// still holds ARGV[1]. Returns 1 when written, 0 when the key changed meanwhile.
constexpr absl::string_view kCasScript = R"lua(
local cur = redis.call('GET', KEYS[1]) or ''
if cur ~= ARGV[1] then return 0 end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
elseif ARGV[3] == '0' then
  redis.call('SET', KEYS[1], ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return 1
)lua";

constexpr int kMaxCasAttempts = 8;

std::shared_ptr<spdlog::logger> Logger() {
  static const std::shared_ptr<spdlog::logger> logger = log::Get("proxy.redis");
  return logger;
}

metrics::Counter& CasConflicts() {
  static metrics::Counter& counter = metrics::Registry::Default().GetCounter(
      "pushgate_redis_cas_conflicts_total",
      "Read-modify-write updates (registrations, dead-token removals) retried because another "
      "writer changed the AOR meanwhile");
  return counter;
}

// Milliseconds from `now` until `latest` (at least 1), or "0" for no expiry.
std::string TtlMillis(absl::Time latest, absl::Time now) {
  if (latest == absl::InfiniteFuture()) return "0";
  double ms = std::ceil(absl::ToDoubleMilliseconds(latest - now));
  return absl::StrCat(std::max<int64_t>(1, static_cast<int64_t>(ms)));
}

absl::Time LatestExpiry(const std::vector<Binding>& bindings) {
  absl::Time latest = absl::InfinitePast();
  for (const Binding& b : bindings) latest = std::max(latest, b.expires_at);
  return latest;
}

}  // namespace

absl::StatusOr<std::unique_ptr<RedisBindingStore>> RedisBindingStore::Create(
    EventLoop& loop, RedisStoreConfig config) {
  auto address = ParseRedisAddress(config.address);
  if (!address.ok()) return address.status();
  if (config.connect_timeout <= absl::ZeroDuration() || config.op_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("redis: connect_timeout and op_timeout must be positive");
  }
  if (config.reconnect_min_backoff <= absl::ZeroDuration() ||
      config.reconnect_max_backoff < config.reconnect_min_backoff) {
    return absl::InvalidArgumentError("redis: reconnect backoff must be positive, min <= max");
  }
  if (config.db < 0) return absl::InvalidArgumentError("redis: db must be >= 0");
  std::unique_ptr<RedisBindingStore> store(
      new RedisBindingStore(loop, std::move(config), *std::move(address)));
  store->Start();
  return store;
}

RedisBindingStore::RedisBindingStore(EventLoop& loop, RedisStoreConfig config, RedisAddress address)
    : loop_(loop), config_(std::move(config)), address_(std::move(address)) {
  std::random_device random;
  char id[17];
  std::snprintf(id, sizeof(id), "%08x%08x", random(), random());
  origin_ = id;
  RedisConnection::Options options;
  options.address = address_;
  options.username = config_.username;
  options.password = config_.password;
  options.db = config_.db;
  options.connect_timeout = config_.connect_timeout;
  options.op_timeout = config_.op_timeout;
  options.min_backoff = config_.reconnect_min_backoff;
  options.max_backoff = config_.reconnect_max_backoff;
  options.name = "commands";
  commands_ = std::make_unique<RedisConnection>(loop_, options);
  if (config_.listen_to_other_replicas) {
    options.name = "subscriber";
    subscriber_ = std::make_unique<RedisConnection>(loop_, options);
    subscriber_->SetSubscription(channel(),
                                 [this](absl::string_view payload) { OnMessage(payload); });
  }
}

RedisBindingStore::~RedisBindingStore() {
  subscriber_.reset();
  commands_.reset();
}

void RedisBindingStore::Start() {
  commands_->Start();
  if (subscriber_) subscriber_->Start();
}

bool RedisBindingStore::connected() const { return commands_->up(); }
bool RedisBindingStore::listening() const { return subscriber_ && subscriber_->subscribed(); }
absl::Status RedisBindingStore::last_error() const { return commands_->last_error(); }
absl::Duration RedisBindingStore::RetryAfterHint() const { return commands_->RetryAfter(); }

size_t RedisBindingStore::ApproximateSize() const {
  return size_estimate_ > 0 ? static_cast<size_t>(size_estimate_) : 0;
}

BindingStore::SubscriptionId RedisBindingStore::Subscribe(Listener listener) {
  SubscriptionId id = next_subscription_++;
  listeners_[id] = std::move(listener);
  return id;
}

void RedisBindingStore::Unsubscribe(SubscriptionId id) { listeners_.erase(id); }

void RedisBindingStore::NotifyListeners(const std::string& aor,
                                        const std::vector<Binding>& changed) {
  if (listeners_.empty()) return;
  std::vector<SubscriptionId> ids;
  ids.reserve(listeners_.size());
  for (const auto& [id, listener] : listeners_) ids.push_back(id);
  for (const Binding& binding : changed) {
    for (SubscriptionId id : ids) {
      auto it = listeners_.find(id);
      if (it == listeners_.end()) continue;  // unsubscribed by an earlier listener
      Listener listener = it->second;        // may unsubscribe itself
      listener(aor, binding);
    }
  }
}

void RedisBindingStore::Fetch(const std::string& aor, absl::Time now, FetchDone done) {
  commands_->Command(
      {"GET", AorKey(aor)},
      [aor, now, done = std::move(done)](const absl::StatusOr<const redisReply*>& reply) mutable {
        absl::StatusOr<StoredRecord> record = ReadRecord(reply, "GET", aor);
        if (!record.ok()) {
          done(record.status());
          return;
        }
        std::vector<Binding> live;
        live.reserve(record->bindings.size());
        for (Binding& b : record->bindings) {
          if (!b.expired(now)) live.push_back(std::move(b));
        }
        done(std::move(live));
      });
}

void RedisBindingStore::Replace(const std::string& aor, std::vector<Binding> bindings,
                                absl::Time now, ReplaceDone done) {
  std::vector<Binding> live;
  live.reserve(bindings.size());
  for (Binding& b : bindings) {
    if (b.expired(now)) continue;
    b.aor = aor;
    live.push_back(std::move(b));
  }
  std::string key = AorKey(aor);
  auto on_reply = [this, aor, now, live,
                   done = std::move(done)](const absl::StatusOr<const redisReply*>& reply) mutable {
    absl::StatusOr<StoredRecord> old = ReadRecord(reply, "SET", aor);
    if (old.status().code() == absl::StatusCode::kDataLoss) {
      Logger()->warn("redis: overwrote a corrupt record aor={} error=\"{}\"", aor,
                     old.status().message());
      old = StoredRecord();
    }
    if (!old.ok()) {
      done(old.status());
      return;
    }
    AfterWrite(aor, old->bindings, live, now);
    done(absl::OkStatus());
  };
  if (live.empty()) {
    commands_->Command({"GETDEL", key}, std::move(on_reply));
    return;
  }
  std::string record = EncodeBindings(live);
  std::string ttl = TtlMillis(LatestExpiry(live), now);
  if (ttl == "0") {
    commands_->Command({"SET", key, record, "GET"}, std::move(on_reply));
  } else {
    commands_->Command({"SET", key, record, "PX", ttl, "GET"}, std::move(on_reply));
  }
}

absl::StatusOr<RedisBindingStore::StoredRecord> RedisBindingStore::ReadRecord(
    const absl::StatusOr<const redisReply*>& reply, absl::string_view command,
    const std::string& aor) {
  if (!reply.ok()) return reply.status();
  const redisReply* r = *reply;
  StoredRecord out;
  if (r->type == REDIS_REPLY_NIL) return out;
  if (r->type != REDIS_REPLY_STRING) {
    return absl::InternalError(absl::StrCat("redis: ", command, " of ", aor, ": unexpected reply"));
  }
  out.raw.assign(r->str, r->len);
  absl::StatusOr<std::vector<Binding>> decoded = DecodeBindings(out.raw, aor);
  if (!decoded.ok()) {
    return absl::DataLossError(absl::StrCat("redis: ", aor, ": ", decoded.status().message()));
  }
  out.bindings = *std::move(decoded);
  return out;
}

void RedisBindingStore::AfterWrite(const std::string& aor, const std::vector<Binding>& old,
                                   const std::vector<Binding>& live, absl::Time now) {
  size_estimate_ += static_cast<int64_t>(live.size()) - static_cast<int64_t>(old.size());
  std::vector<Binding> changed;
  for (const Binding& b : live) {
    bool same = std::any_of(old.begin(), old.end(),
                            [&](const Binding& o) { return !o.expired(now) && o == b; });
    if (!same) changed.push_back(b);
  }
  if (changed.empty()) return;
  NotifyListeners(aor, changed);
  if (aor.find('\n') != std::string::npos) return;
  std::string payload = absl::StrCat(origin_, "\n", aor, "\n", EncodeBindings(changed));
  commands_->Command({"PUBLISH", channel(), payload},
                     [aor](const absl::StatusOr<const redisReply*>& published) {
                       if (!published.ok()) {
                         Logger()->debug("redis: PUBLISH failed aor={} error=\"{}\"", aor,
                                         published.status().message());
                       }
                     });
}

void RedisBindingStore::Update(const std::string& aor, absl::Time now, Mutation mutate,
                               ReplaceDone done) {
  UpdateAttempt(UpdateOp{aor, now, std::move(mutate), 0, std::move(done)});
}

// GET, mutate, then the compare-and-set script: written only if the key still holds what was
// read, else read again (another request or replica changed the AOR in between).
void RedisBindingStore::UpdateAttempt(UpdateOp op) {
  std::string key = AorKey(op.aor);
  auto on_read = [this,
                  op = std::move(op)](const absl::StatusOr<const redisReply*>& reply) mutable {
    absl::StatusOr<StoredRecord> old = ReadRecord(reply, "GET", op.aor);
    if (!old.ok()) {
      op.done(old.status());
      return;
    }
    WriteIfUnchanged(std::move(op), *std::move(old));
  };
  commands_->Command({"GET", key}, std::move(on_read));
}

void RedisBindingStore::WriteIfUnchanged(UpdateOp op, StoredRecord old) {
  std::vector<Binding> live_old;
  for (const Binding& b : old.bindings) {
    if (!b.expired(op.now)) live_old.push_back(b);
  }
  std::vector<Binding> live;
  for (Binding& b : op.mutate(std::move(live_old))) {
    if (b.expired(op.now)) continue;
    b.aor = op.aor;
    live.push_back(std::move(b));
  }
  std::string new_record = live.empty() ? std::string() : EncodeBindings(live);
  if (new_record == old.raw) {  // nothing changes (e.g. no such device to remove)
    op.done(absl::OkStatus());
    return;
  }
  std::string ttl = live.empty() ? "0" : TtlMillis(LatestExpiry(live), op.now);
  std::string key = AorKey(op.aor);
  auto on_cas = [this, op = std::move(op), old = std::move(old.bindings),
                 live = std::move(live)](const absl::StatusOr<const redisReply*>& cas) mutable {
    if (!cas.ok()) {
      op.done(cas.status());
      return;
    }
    if ((*cas)->type == REDIS_REPLY_INTEGER && (*cas)->integer == 1) {
      AfterWrite(op.aor, old, live, op.now);
      op.done(absl::OkStatus());
      return;
    }
    CasConflicts().Inc();
    if (++op.attempt >= kMaxCasAttempts) {
      op.done(
          absl::AbortedError(absl::StrCat("redis: ", op.aor, " kept changing during an update")));
      return;
    }
    UpdateAttempt(std::move(op));
  };
  commands_->Command({"EVAL", kCasScript, "1", key, old.raw, new_record, ttl}, std::move(on_cas));
}

void RedisBindingStore::RemoveByPushKey(const std::string& aor, const std::string& push_key,
                                        absl::Time now, RemoveDone done) {
  if (push_key.empty()) {  // "" = no push parameters: not a device to remove
    done(size_t{0});
    return;
  }
  // Counted by the last run of the mutation (the one whose write succeeded).
  auto removed = std::make_shared<size_t>(0);
  Update(
      aor, now,
      [push_key, removed](std::vector<Binding> live) {
        *removed = 0;
        std::vector<Binding> kept;
        for (Binding& b : live) {
          if (b.push_key() == push_key) {
            ++*removed;
          } else {
            kept.push_back(std::move(b));
          }
        }
        return kept;
      },
      [removed, done = std::move(done)](const absl::Status& st) {
        if (!st.ok()) {
          done(st);
          return;
        }
        done(*removed);
      });
}

void RedisBindingStore::OnMessage(absl::string_view payload) {
  size_t first = payload.find('\n');
  if (first == absl::string_view::npos) return;
  absl::string_view origin = payload.substr(0, first);
  if (origin == origin_) return;  // our own Replace: listeners already ran
  size_t second = payload.find('\n', first + 1);
  if (second == absl::string_view::npos) return;
  std::string aor(payload.substr(first + 1, second - first - 1));
  auto bindings = DecodeBindings(payload.substr(second + 1), aor);
  if (!bindings.ok()) {
    Logger()->warn("redis: ignored a malformed registration message aor={} error=\"{}\"", aor,
                   bindings.status().message());
    return;
  }
  NotifyListeners(aor, *bindings);
}

}  // namespace pushgate::proxy
