// The APNs provider API, FCM v1 send and OAuth2 token endpoint logic: one complete request in,
// the answer the real service would give out.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <random>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/log.h"
#include "pusher/core/jwt.h"
#include "pusher/emulator/internal.h"

namespace pushgate::pusher::emulator::internal {
namespace {

constexpr absl::string_view kApnsPrefix = "/3/device/";
constexpr absl::string_view kFcmPrefix = "/v1/projects/";
constexpr absl::string_view kFcmSuffix = "/messages:send";
constexpr absl::string_view kFcmErrorType = "type.googleapis.com/google.firebase.fcm.v1.FcmError";
constexpr absl::string_view kJwtBearerGrant = "urn:ietf:params:oauth:grant-type:jwt-bearer";

std::mt19937_64& Rng() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return rng;
}

bool IsHex(absl::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return absl::ascii_isxdigit(c); });
}

bool AllDigits(absl::string_view s) {
  return !s.empty() &&
         std::all_of(s.begin(), s.end(), [](char c) { return absl::ascii_isdigit(c); });
}

// "Bearer xyz" / "bearer xyz" -> "xyz"; nullopt when the scheme is not bearer.
std::optional<std::string> BearerToken(const std::string* header) {
  if (header == nullptr) return std::nullopt;
  absl::string_view v = *header;
  if (v.size() < 7 || !absl::EqualsIgnoreCase(v.substr(0, 7), "bearer ")) return std::nullopt;
  v.remove_prefix(7);
  v = absl::StripAsciiWhitespace(v);
  if (v.empty()) return std::nullopt;
  return std::string(v);
}

H2Response Json(int status, std::string body) {
  H2Response r;
  r.status = status;
  r.headers.emplace_back("content-type", "application/json");
  r.body = std::move(body);
  return r;
}

// ---------------------------------------------------------------------------------------------
// APNs

H2Response ApnsAnswer(int status, absl::string_view reason, const std::string& apns_id,
                      ReceivedRequest* rec, int64_t timestamp_ms = -1) {
  H2Response r;
  r.status = status;
  r.headers.emplace_back("apns-id", apns_id);
  rec->apns_id = apns_id;
  rec->status = status;
  if (!reason.empty()) {
    rec->reason = std::string(reason);
    r.headers.emplace_back("content-type", "application/json");
    if (timestamp_ms >= 0) {
      r.body = absl::StrCat("{\"reason\":\"", reason, "\",\"timestamp\":", timestamp_ms, "}");
    } else {
      r.body = absl::StrCat("{\"reason\":\"", reason, "\"}");
    }
  }
  return r;
}

// Suffixes that name a per-purpose topic of one bundle id.
constexpr absl::string_view kTopicSuffixes[] = {".voip", ".complication", ".voip-ptt",
                                                ".push-type.liveactivity"};

bool TopicAllowedForBundles(absl::string_view topic, const std::vector<std::string>& bundles) {
  for (const std::string& b : bundles) {
    if (topic == b) return true;
    if (absl::StartsWith(topic, b)) {
      absl::string_view rest = topic.substr(b.size());
      for (absl::string_view suffix : kTopicSuffixes) {
        if (rest == suffix) return true;
      }
    }
  }
  return false;
}

bool IsKnownPushType(absl::string_view t) {
  static constexpr absl::string_view kTypes[] = {
      "alert",        "background", "location",     "voip",       "complication",
      "fileprovider", "mdm",        "liveactivity", "pushtotalk", "controls"};
  return std::find(std::begin(kTypes), std::end(kTypes), t) != std::end(kTypes);
}

// Verifies an APNs provider token; returns the team on success, else the 403 reason.
struct ApnsAuthResult {
  std::string team;
  absl::string_view reason;  // empty when fine
  int status = 403;
};

ApnsAuthResult VerifyProviderToken(const std::string& jwt, State& state) {
  const int64_t now = absl::ToUnixSeconds(state.Now());
  auto check_age = [&](const std::string& team, int64_t iat) -> ApnsAuthResult {
    if (now - iat > 3600) return {team, "ExpiredProviderToken"};
    if (iat - now > 300) return {team, "InvalidProviderToken"};  // issued in the future
    return {team, {}};
  };
  if (auto cached = state.CachedApnsJwt(jwt)) return check_age(cached->team, cached->iat);

  auto decoded = DecodeJwtUnverified(jwt);
  if (!decoded.ok()) return {{}, "InvalidProviderToken"};
  const nlohmann::json& h = decoded->header;
  const nlohmann::json& c = decoded->claims;
  if (!h.is_object() || !c.is_object()) return {{}, "InvalidProviderToken"};
  auto kid = h.find("kid");
  auto iss = c.find("iss");
  auto iat = c.find("iat");
  if (kid == h.end() || !kid->is_string() || iss == c.end() || !iss->is_string() ||
      iat == c.end() || !iat->is_number_integer()) {
    return {{}, "InvalidProviderToken"};
  }
  const std::string team = iss->get<std::string>();
  const State::ApnsKeyEntry* key = state.FindApnsKey(team, kid->get<std::string>());
  if (key == nullptr) return {{}, "InvalidProviderToken"};
  if (!VerifyJwt(jwt, JwtAlg::kEs256, key->pkey).ok()) return {{}, "InvalidProviderToken"};
  const int64_t issued = iat->get<int64_t>();
  ApnsAuthResult age = check_age(team, issued);
  if (!age.reason.empty()) return age;
  if (!state.NoteNewApnsToken(absl::StrCat(team, ":", kid->get<std::string>()), issued)) {
    return {team, "TooManyProviderTokenUpdates", 429};
  }
  state.CacheApnsJwt(jwt, {team, issued});
  return age;
}

// The apns-id of the answer: the request's own when it is a UUID (lower-cased), else a fresh
// one; `bad` is set when the request carried a malformed one.
std::string AnswerApnsId(const H2Request& req, bool* bad) {
  const std::string* header = req.Header("apns-id");
  if (header != nullptr && IsUuid(*header)) {
    *bad = false;
    return absl::AsciiStrToLower(*header);
  }
  *bad = header != nullptr;
  return RandomUuid();
}

// The injected fault due for this request, answered as APNs would; nullopt when none is.
std::optional<H2Response> ApnsFault(State& state, const std::string& apns_id,
                                    ReceivedRequest* rec) {
  const auto fault = state.TakeFault(Provider::kApns);
  if (fault.status == 0) return std::nullopt;
  rec->fault = true;
  absl::string_view reason = fault.status == 429   ? "TooManyRequests"
                             : fault.status == 503 ? "ServiceUnavailable"
                                                   : "InternalServerError";
  H2Response r = ApnsAnswer(fault.status, reason, apns_id, rec);
  if (fault.retry_after_s > 0)
    r.headers.emplace_back("retry-after", absl::StrCat(fault.retry_after_s));
  return r;
}

// Authentication (a provider token wins over the connection's certificate), then the topic
// that authentication allows; nullopt when the request may go on.
std::optional<H2Response> CheckApnsAuthAndTopic(const H2Request& req, const std::string* topic,
                                                State& state, const std::string& apns_id,
                                                ReceivedRequest* rec) {
  std::optional<std::string> team;
  const std::vector<std::string>* cert_topics = nullptr;
  if (const std::string* auth = req.Header("authorization"); auth != nullptr) {
    std::optional<std::string> jwt = BearerToken(auth);
    if (!jwt) return ApnsAnswer(403, "InvalidProviderToken", apns_id, rec);
    ApnsAuthResult result = VerifyProviderToken(*jwt, state);
    if (!result.reason.empty()) return ApnsAnswer(result.status, result.reason, apns_id, rec);
    team = result.team;
  } else if (req.peer != nullptr && req.peer->has_cert) {
    cert_topics = &req.peer->topics;
  } else {
    return ApnsAnswer(403, "MissingProviderToken", apns_id, rec);
  }

  if (topic == nullptr || topic->empty()) return ApnsAnswer(400, "MissingTopic", apns_id, rec);
  if (team) {
    auto it = state.options().apns_topics.find(*team);
    if (it != state.options().apns_topics.end() && !TopicAllowedForBundles(*topic, it->second)) {
      return ApnsAnswer(400, "TopicDisallowed", apns_id, rec);
    }
  } else if (std::find(cert_topics->begin(), cert_topics->end(), *topic) == cert_topics->end()) {
    return ApnsAnswer(400, "TopicDisallowed", apns_id, rec);
  }
  return std::nullopt;
}

// apns-push-type (returned in `push_type`), apns-priority, apns-expiration and
// apns-collapse-id; nullopt when they are all fine.
std::optional<H2Response> CheckApnsHeaders(const H2Request& req, const std::string& topic,
                                           std::string* push_type, const std::string& apns_id,
                                           ReceivedRequest* rec) {
  *push_type = "alert";
  if (const std::string* pt = req.Header("apns-push-type"); pt != nullptr) *push_type = *pt;
  if (!IsKnownPushType(*push_type)) return ApnsAnswer(400, "InvalidPushType", apns_id, rec);
  const bool topic_is_voip = absl::EndsWith(topic, ".voip");
  if ((*push_type == "voip") != topic_is_voip) return ApnsAnswer(400, "BadTopic", apns_id, rec);

  int priority = 10;
  if (const std::string* p = req.Header("apns-priority"); p != nullptr) {
    if (*p == "5") {
      priority = 5;
    } else if (*p == "10") {
      priority = 10;
    } else {
      return ApnsAnswer(400, "BadPriority", apns_id, rec);
    }
  }
  if (*push_type == "background" && priority != 5) {
    return ApnsAnswer(400, "BadPriority", apns_id, rec);
  }
  if (const std::string* e = req.Header("apns-expiration"); e != nullptr) {
    if (!AllDigits(*e) || e->size() > 18) return ApnsAnswer(400, "BadExpirationDate", apns_id, rec);
  }
  if (const std::string* c = req.Header("apns-collapse-id"); c != nullptr && c->size() > 64) {
    return ApnsAnswer(400, "BadCollapseId", apns_id, rec);
  }
  return std::nullopt;
}

// The JSON payload and its size limit for the push type; nullopt when fine.
std::optional<H2Response> CheckApnsPayload(const std::string& body, const std::string& push_type,
                                           const std::string& apns_id, ReceivedRequest* rec) {
  if (body.empty()) return ApnsAnswer(400, "PayloadEmpty", apns_id, rec);
  const size_t limit = push_type == "voip" ? 5120 : 4096;
  if (body.size() > limit) return ApnsAnswer(413, "PayloadTooLarge", apns_id, rec);
  absl::string_view trimmed = absl::StripLeadingAsciiWhitespace(body);
  if (trimmed.empty() || trimmed.front() != '{' || !nlohmann::json::accept(body)) {
    return ApnsAnswer(400, "BadPayload", apns_id, rec);
  }
  return std::nullopt;
}

H2Response HandleApns(const H2Request& req, State& state, ReceivedRequest* rec) {
  rec->provider = Provider::kApns;
  absl::string_view token = absl::string_view(req.path).substr(kApnsPrefix.size());
  rec->token = std::string(token);
  const std::string* topic = req.Header("apns-topic");
  if (topic != nullptr) rec->topic = *topic;
  bool bad_apns_id = false;
  const std::string apns_id = AnswerApnsId(req, &bad_apns_id);

  if (req.method != "POST") return ApnsAnswer(405, "MethodNotAllowed", apns_id, rec);
  if (token.empty() || absl::StrContains(token, '/')) {
    return ApnsAnswer(404, "BadPath", apns_id, rec);
  }
  if (auto r = ApnsFault(state, apns_id, rec)) return *std::move(r);
  if (auto r = CheckApnsAuthAndTopic(req, topic, state, apns_id, rec)) return *std::move(r);
  if (token.size() < 64 || token.size() > 200 || token.size() % 2 != 0 || !IsHex(token)) {
    return ApnsAnswer(400, "BadDeviceToken", apns_id, rec);
  }
  if (bad_apns_id) return ApnsAnswer(400, "BadMessageId", apns_id, rec);
  std::string push_type;
  if (auto r = CheckApnsHeaders(req, *topic, &push_type, apns_id, rec)) return *std::move(r);
  if (auto r = CheckApnsPayload(req.body, push_type, apns_id, rec)) return *std::move(r);

  if (auto since = state.DeadSince(Provider::kApns, rec->token)) {
    return ApnsAnswer(410, "Unregistered", apns_id, rec, absl::ToUnixMillis(*since));
  }
  return ApnsAnswer(200, {}, apns_id, rec);
}

// ---------------------------------------------------------------------------------------------
// FCM v1

const char* GoogleStatusName(int code) {
  switch (code) {
    case 400:
      return "INVALID_ARGUMENT";
    case 401:
      return "UNAUTHENTICATED";
    case 403:
      return "PERMISSION_DENIED";
    case 404:
      return "NOT_FOUND";
    case 429:
      return "RESOURCE_EXHAUSTED";
    case 503:
      return "UNAVAILABLE";
    default:
      return "INTERNAL";
  }
}

// `error_code` empty: no FcmError detail (as for authentication failures).
H2Response FcmError(int code, absl::string_view message, absl::string_view error_code,
                    ReceivedRequest* rec) {
  nlohmann::json err = {{"code", code}, {"message", message}, {"status", GoogleStatusName(code)}};
  if (!error_code.empty()) {
    err["details"] = nlohmann::json::array({{{"@type", kFcmErrorType}, {"errorCode", error_code}}});
  }
  rec->status = code;
  rec->reason = std::string(error_code.empty() ? GoogleStatusName(code) : error_code);
  return Json(code, nlohmann::json{{"error", std::move(err)}}.dump());
}

bool IsValidTtl(const std::string& ttl) {
  // Duration in seconds with up to nine fractional digits: "30s", "3.5s".
  if (ttl.size() < 2 || ttl.back() != 's') return false;
  absl::string_view num = absl::string_view(ttl).substr(0, ttl.size() - 1);
  std::vector<absl::string_view> parts = absl::StrSplit(num, '.');
  if (parts.size() > 2 || !AllDigits(parts[0])) return false;
  return parts.size() == 1 || (AllDigits(parts[1]) && parts[1].size() <= 9);
}

bool IsPlausibleFcmToken(const std::string& t) {
  if (t.size() < 20 || t.size() > 4096) return false;
  return std::all_of(t.begin(), t.end(), [](char c) {
    return absl::ascii_isalnum(c) || c == '_' || c == '-' || c == ':' || c == '.';
  });
}

// The injected fault due for this request, answered as FCM would; nullopt when none is.
std::optional<H2Response> FcmFault(State& state, ReceivedRequest* rec) {
  const auto fault = state.TakeFault(Provider::kFcm);
  if (fault.status == 0) return std::nullopt;
  rec->fault = true;
  absl::string_view code = fault.status == 429   ? "QUOTA_EXCEEDED"
                           : fault.status == 503 ? "UNAVAILABLE"
                                                 : "INTERNAL";
  absl::string_view msg = fault.status == 429 ? "Quota exceeded for the project."
                                              : "The service is currently unavailable.";
  H2Response r = FcmError(fault.status, msg, code, rec);
  if (fault.retry_after_s > 0)
    r.headers.emplace_back("retry-after", absl::StrCat(fault.retry_after_s));
  return r;
}

// The bearer access token must be one issued for an account of `project`; nullopt when it is.
std::optional<H2Response> CheckFcmAuth(const H2Request& req, const std::string& project,
                                       State& state, ReceivedRequest* rec) {
  std::optional<std::string> bearer = BearerToken(req.Header("authorization"));
  const State::FcmAccountEntry* account =
      bearer ? state.LookupAccessToken(*bearer, state.Now()) : nullptr;
  if (account == nullptr) {
    return FcmError(401,
                    "Request had invalid authentication credentials. Expected OAuth 2 access "
                    "token, login cookie or other valid authentication credential.",
                    {}, rec);
  }
  if (account->account.project_id != project) {
    return FcmError(403, "SenderId mismatch", "SENDER_ID_MISMATCH", rec);
  }
  return std::nullopt;
}

H2Response FcmInvalid(absl::string_view message, ReceivedRequest* rec) {
  return FcmError(400, message, "INVALID_ARGUMENT", rec);
}

// The body's known fields and its "message" object (returned in `msg`); nullopt when fine.
std::optional<H2Response> CheckFcmBodyFields(const nlohmann::json& body, const nlohmann::json** msg,
                                             ReceivedRequest* rec) {
  if (body.is_discarded() || !body.is_object()) {
    return FcmInvalid("Invalid JSON payload received.", rec);
  }
  for (auto it = body.begin(); it != body.end(); ++it) {
    if (it.key() != "message" && it.key() != "validate_only") {
      return FcmInvalid(absl::StrCat("Invalid JSON payload received. Unknown name \"", it.key(),
                                     "\": Cannot find field."),
                        rec);
    }
  }
  auto msg_it = body.find("message");
  if (msg_it == body.end() || !msg_it->is_object()) {
    return FcmInvalid("Request contains an invalid argument.", rec);
  }
  static const char* kFields[] = {"name", "data",        "notification", "android", "webpush",
                                  "apns", "fcm_options", "token",        "topic",   "condition"};
  for (auto it = msg_it->begin(); it != msg_it->end(); ++it) {
    if (std::none_of(std::begin(kFields), std::end(kFields),
                     [&](const char* f) { return it.key() == f; })) {
      return FcmInvalid(absl::StrCat("Invalid JSON payload received. Unknown name \"", it.key(),
                                     "\" at 'message': Cannot find field."),
                        rec);
    }
  }
  *msg = &*msg_it;
  return std::nullopt;
}

// Exactly one target; a token target is recorded in `rec->token`. nullopt when fine.
std::optional<H2Response> CheckFcmTarget(const nlohmann::json& msg, ReceivedRequest* rec) {
  const int targets = static_cast<int>(msg.contains("token")) +
                      static_cast<int>(msg.contains("topic")) +
                      static_cast<int>(msg.contains("condition"));
  if (targets != 1) return FcmInvalid("Request contains an invalid argument.", rec);
  if (msg.contains("token")) {
    const nlohmann::json& t = msg["token"];
    if (!t.is_string()) return FcmInvalid("Invalid value at 'message.token' (TYPE_STRING)", rec);
    rec->token = t.get<std::string>();
    if (!IsPlausibleFcmToken(rec->token)) {
      return FcmInvalid("The registration token is not a valid FCM registration token", rec);
    }
  }
  return std::nullopt;
}

// message.android: its priority and ttl; nullopt when fine.
std::optional<H2Response> CheckFcmAndroid(const nlohmann::json& android, ReceivedRequest* rec) {
  if (!android.is_object()) return FcmInvalid("Invalid value at 'message.android'", rec);
  if (auto p = android.find("priority"); p != android.end()) {
    const std::string pr = p->is_string() ? absl::AsciiStrToLower(p->get<std::string>()) : "";
    if (pr != "normal" && pr != "high") {
      return FcmInvalid("Invalid value at 'message.android.priority' (TYPE_ENUM)", rec);
    }
  }
  if (auto ttl = android.find("ttl"); ttl != android.end()) {
    if (!ttl->is_string() || !IsValidTtl(ttl->get<std::string>())) {
      return FcmInvalid(
          "Invalid value at 'message.android.ttl' (type.googleapis.com/"
          "google.protobuf.Duration): Illegal duration format",
          rec);
    }
  }
  return std::nullopt;
}

// message.data, message.notification, message.android and the payload size; nullopt when fine.
std::optional<H2Response> CheckFcmPayload(const nlohmann::json& msg, ReceivedRequest* rec) {
  size_t payload_size = 0;
  if (auto d = msg.find("data"); d != msg.end()) {
    if (!d->is_object()) return FcmInvalid("Invalid value at 'message.data' (Map)", rec);
    for (auto it = d->begin(); it != d->end(); ++it) {
      if (!it.value().is_string()) {
        return FcmInvalid(
            absl::StrCat("Invalid value at 'message.data[", it.key(), "].value' (TYPE_STRING)"),
            rec);
      }
      payload_size += it.key().size() + it.value().get_ref<const std::string&>().size();
    }
  }
  if (auto n = msg.find("notification"); n != msg.end()) {
    if (!n->is_object()) return FcmInvalid("Invalid value at 'message.notification'", rec);
    payload_size += n->dump().size();
  }
  if (auto a = msg.find("android"); a != msg.end()) {
    if (auto r = CheckFcmAndroid(*a, rec)) return r;
  }
  if (payload_size > 4096) return FcmInvalid("Android message is too big", rec);
  return std::nullopt;
}

// The name FCM gives an accepted message (a fixed one for validate_only).
std::string FcmMessageName(const nlohmann::json& body, const std::string& project, State& state) {
  if (auto v = body.find("validate_only"); v != body.end() && v->is_boolean() && v->get<bool>()) {
    return absl::StrCat("projects/", project, "/messages/fake_message_id");
  }
  char id[64];
  std::snprintf(id, sizeof(id), "0:%lld%%%016llx",
                static_cast<long long>(absl::ToUnixMicros(state.Now())),
                static_cast<unsigned long long>(Rng()()));
  return absl::StrCat("projects/", project, "/messages/", id);
}

H2Response HandleFcm(const H2Request& req, State& state, ReceivedRequest* rec) {
  rec->provider = Provider::kFcm;
  absl::string_view rest = absl::string_view(req.path).substr(kFcmPrefix.size());
  const std::string project(rest.substr(0, rest.size() - kFcmSuffix.size()));
  rec->topic = project;
  if (req.method != "POST") {
    return FcmError(404, "Method not found.", {}, rec);
  }
  if (auto r = FcmFault(state, rec)) return *std::move(r);
  if (auto r = CheckFcmAuth(req, project, state, rec)) return *std::move(r);

  nlohmann::json body = nlohmann::json::parse(req.body, nullptr, /*allow_exceptions=*/false);
  const nlohmann::json* msg = nullptr;
  if (auto r = CheckFcmBodyFields(body, &msg, rec)) return *std::move(r);
  if (auto r = CheckFcmTarget(*msg, rec)) return *std::move(r);
  if (auto r = CheckFcmPayload(*msg, rec)) return *std::move(r);

  if (!rec->token.empty()) {
    if (state.DeadSince(Provider::kFcm, rec->token)) {
      return FcmError(404, "Requested entity was not found.", "UNREGISTERED", rec);
    }
  }
  const std::string name = FcmMessageName(body, project, state);
  rec->status = 200;
  rec->apns_id = name;
  return Json(200, nlohmann::json{{"name", name}}.dump());
}

// ---------------------------------------------------------------------------------------------
// OAuth2 token endpoint

H2Response OAuthError(int status, absl::string_view error, absl::string_view description,
                      ReceivedRequest* rec) {
  rec->status = status;
  rec->reason = std::string(error);
  return Json(status, nlohmann::json{{"error", error}, {"error_description", description}}.dump());
}

std::string FormDecode(absl::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    int v = 0;
    if (c == '+') {
      out.push_back(' ');
    } else if (c == '%' && i + 2 < in.size() && absl::ascii_isxdigit(in[i + 1]) &&
               absl::ascii_isxdigit(in[i + 2]) && absl::SimpleHexAtoi(in.substr(i + 1, 2), &v)) {
      out.push_back(static_cast<char>(v));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

bool ScopeAllowed(absl::string_view scopes) {
  for (absl::string_view s : absl::StrSplit(scopes, ' ', absl::SkipEmpty())) {
    if (s == "https://www.googleapis.com/auth/firebase.messaging" ||
        s == "https://www.googleapis.com/auth/cloud-platform") {
      return true;
    }
  }
  return false;
}

// The injected fault due for this request, answered as the token endpoint would; nullopt when
// none is.
std::optional<H2Response> OAuthFault(State& state, ReceivedRequest* rec) {
  const auto fault = state.TakeFault(Provider::kOAuth);
  if (fault.status == 0) return std::nullopt;
  rec->fault = true;
  H2Response r =
      OAuthError(fault.status, fault.status == 429 ? "rate_limit_exceeded" : "internal_failure",
                 "Injected fault.", rec);
  if (fault.retry_after_s > 0)
    r.headers.emplace_back("retry-after", absl::StrCat(fault.retry_after_s));
  return r;
}

// The form fields of a token request the endpoint reads.
struct TokenForm {
  std::string grant_type;
  std::string assertion;
  bool has_assertion = false;
};

TokenForm ParseTokenForm(absl::string_view body) {
  TokenForm form;
  for (absl::string_view pair : absl::StrSplit(body, '&', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(pair, absl::MaxSplits('=', 1));
    std::string key = FormDecode(kv.first);
    if (key == "grant_type") form.grant_type = FormDecode(kv.second);
    if (key == "assertion") {
      form.assertion = FormDecode(kv.second);
      form.has_assertion = true;
    }
  }
  return form;
}

// Whether the assertion's "aud" names this endpoint: the token URI as the client wrote it (with
// or without the port of :authority), or one of the configured audiences.
bool AudienceAllowed(const nlohmann::json& claims, const H2Request& req, State& state) {
  auto aud = claims.find("aud");
  if (aud == claims.end() || !aud->is_string()) return false;
  const std::string a = aud->get<std::string>();
  absl::string_view host = req.authority;
  if (size_t colon = host.rfind(':');
      colon != absl::string_view::npos &&
      (host.rfind(']') == absl::string_view::npos || colon > host.rfind(']')) &&
      AllDigits(host.substr(colon + 1))) {
    host = host.substr(0, colon);
  }
  const std::vector<std::string>& audiences = state.options().oauth_audiences;
  return a == absl::StrCat("https://", req.authority, "/token") ||
         a == absl::StrCat("https://", host, "/token") ||
         std::find(audiences.begin(), audiences.end(), a) != audiences.end();
}

// Whether "iat" and "exp" make a short-lived token valid now.
bool TokenTimesValid(const nlohmann::json& claims, int64_t now) {
  auto iat = claims.find("iat");
  auto exp = claims.find("exp");
  if (iat == claims.end() || exp == claims.end() || !iat->is_number_integer() ||
      !exp->is_number_integer()) {
    return false;
  }
  const int64_t i = iat->get<int64_t>();
  const int64_t e = exp->get<int64_t>();
  return !(e <= i || e - i > 3600 || e <= now || i > now + 300);
}

// Decodes and checks the JWT assertion: issuer account (returned in `account`), signature,
// audience, lifetime, scope. nullopt when it grants a token.
std::optional<H2Response> CheckAssertion(const std::string& assertion, const H2Request& req,
                                         State& state, const State::FcmAccountEntry** account,
                                         ReceivedRequest* rec) {
  auto decoded = DecodeJwtUnverified(assertion);
  if (!decoded.ok() || !decoded->claims.is_object()) {
    return OAuthError(400, "invalid_grant", "Invalid JWT: malformed.", rec);
  }
  const nlohmann::json& c = decoded->claims;
  auto iss = c.find("iss");
  if (iss == c.end() || !iss->is_string()) {
    return OAuthError(400, "invalid_grant", "Invalid JWT: missing iss.", rec);
  }
  rec->token = iss->get<std::string>();  // the client email: who asked
  *account = state.FindFcmAccount(rec->token);
  if (*account == nullptr) {
    return OAuthError(400, "invalid_grant", "Invalid grant: account not found", rec);
  }
  rec->topic = (*account)->account.project_id;
  if (!VerifyJwt(assertion, JwtAlg::kRs256, (*account)->pkey).ok()) {
    return OAuthError(400, "invalid_grant", "Invalid JWT Signature.", rec);
  }
  if (!AudienceAllowed(c, req, state)) {
    return OAuthError(400, "invalid_grant", "Invalid JWT: Failed audience check.", rec);
  }
  if (!TokenTimesValid(c, absl::ToUnixSeconds(state.Now()))) {
    return OAuthError(400, "invalid_grant",
                      "Invalid JWT: Token must be a short-lived token (60 minutes) and in a "
                      "reasonable timeframe. Check your iat and exp values in the JWT claim.",
                      rec);
  }
  auto scope = c.find("scope");
  if (scope == c.end() || !scope->is_string() || !ScopeAllowed(scope->get<std::string>())) {
    return OAuthError(400, "invalid_scope", "Invalid OAuth scope or ID token audience provided.",
                      rec);
  }
  return std::nullopt;
}

H2Response HandleOAuth(const H2Request& req, State& state, ReceivedRequest* rec) {
  rec->provider = Provider::kOAuth;
  if (req.method != "POST") {
    return OAuthError(405, "invalid_request", "Only POST is supported.", rec);
  }
  if (auto r = OAuthFault(state, rec)) return *std::move(r);
  const TokenForm form = ParseTokenForm(req.body);
  // The assertion is a credential: keep only its length in the record.
  rec->body = absl::StrCat("grant_type=", form.grant_type,
                           form.has_assertion
                               ? absl::StrCat("&assertion=", log::RedactSecret(form.assertion))
                               : std::string());
  if (form.grant_type != kJwtBearerGrant) {
    return OAuthError(400, "unsupported_grant_type",
                      absl::StrCat("Invalid grant_type: ", form.grant_type), rec);
  }
  if (!form.has_assertion || form.assertion.empty()) {
    return OAuthError(400, "invalid_request", "Missing required parameter: assertion", rec);
  }
  const State::FcmAccountEntry* account = nullptr;
  if (auto r = CheckAssertion(form.assertion, req, state, &account, rec)) return *std::move(r);

  const int64_t lifetime = state.options().token_expires_in_s;
  std::string token = state.IssueAccessToken(account, state.Now() + absl::Seconds(lifetime));
  rec->status = 200;
  return Json(
      200,
      nlohmann::json{{"access_token", token}, {"expires_in", lifetime}, {"token_type", "Bearer"}}
          .dump());
}

}  // namespace

const std::string* H2Request::Header(absl::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return &v;
  }
  return nullptr;
}

std::string StatsPath(absl::string_view path) {
  if (absl::StartsWith(path, kApnsPrefix)) return "/3/device/*";
  return std::string(path);
}

std::string RandomUuid() {
  const uint64_t a = Rng()();
  const uint64_t b = Rng()();
  char buf[37];
  std::snprintf(buf, sizeof(buf), "%08x-%04x-4%03x-%04x-%012llx", static_cast<unsigned>(a >> 32),
                static_cast<unsigned>((a >> 16) & 0xffff), static_cast<unsigned>(a & 0x0fff),
                static_cast<unsigned>(0x8000 | ((b >> 48) & 0x3fff)),
                static_cast<unsigned long long>(b & 0xffffffffffffULL));
  return buf;
}

bool IsUuid(absl::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return false;
    } else if (!absl::ascii_isxdigit(s[i])) {
      return false;
    }
  }
  return true;
}

H2Response HandleRequest(const H2Request& req, State& state, ReceivedRequest* rec) {
  rec->method = req.method;
  rec->path = req.path;
  rec->headers.reserve(req.headers.size());
  for (const auto& h : req.headers) {
    if (h.first != "authorization") rec->headers.push_back(h);
  }
  rec->body = req.body;

  absl::string_view path = req.path;
  if (absl::StartsWith(path, kApnsPrefix)) return HandleApns(req, state, rec);
  if (absl::StartsWith(path, kFcmPrefix) && absl::EndsWith(path, kFcmSuffix) &&
      path.size() > kFcmPrefix.size() + kFcmSuffix.size() &&
      !absl::StrContains(
          path.substr(kFcmPrefix.size(), path.size() - kFcmPrefix.size() - kFcmSuffix.size()),
          '/')) {
    return HandleFcm(req, state, rec);
  }
  if (path == "/token") return HandleOAuth(req, state, rec);

  // Unknown path: APNs' answer (the emulator mostly stands in for APNs on such paths).
  rec->provider = Provider::kUnknown;
  rec->status = 404;
  rec->reason = "BadPath";
  H2Response r = Json(404, "{\"reason\":\"BadPath\"}");
  r.headers.emplace_back("apns-id", RandomUuid());
  return r;
}

}  // namespace pushgate::pusher::emulator::internal
