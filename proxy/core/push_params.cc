#include "proxy/core/push_params.h"

#include <algorithm>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/status.h"

namespace pushgate::proxy {
namespace {

absl::Status Bad(absl::string_view what) { return absl::InvalidArgumentError(what); }

bool IsHexToken(absl::string_view t) {
  return !t.empty() && std::all_of(t.begin(), t.end(), absl::ascii_isxdigit);
}

bool IsFcmToken(absl::string_view t) {
  return !t.empty() && std::all_of(t.begin(), t.end(), [](char c) {
    return absl::ascii_isalnum(c) || c == '_' || c == ':' || c == '-' || c == '.';
  });
}

bool IsTeamId(absl::string_view t) {
  return t.size() == 10 && std::all_of(t.begin(), t.end(), absl::ascii_isalnum);
}

// The services suffix of an APNs pn-param ("voip", "remote", "remote&voip", "voip&remote").
bool IsServiceList(absl::string_view s) {
  if (s.empty()) return false;
  for (absl::string_view part : absl::StrSplit(s, '&')) {
    if (part != "voip" && part != "remote") return false;
  }
  return true;
}

std::optional<std::string> Decoded(const Uri& uri, absl::string_view name) {
  auto v = Param(uri, name);
  if (!v) return std::nullopt;
  return PercentDecode(*v);
}

// Splits "<TeamID>.<bundle>[.<services>]" -> services ("" when none).
absl::string_view ServicesOf(absl::string_view param) {
  const size_t last = param.rfind('.');
  if (last == absl::string_view::npos) return {};
  absl::string_view tail = param.substr(last + 1);
  return IsServiceList(tail) ? tail : absl::string_view();
}

absl::Status ParseLegacyExtras(const Uri& uri, PushParams& push) {
  if (auto v = Decoded(uri, "pn-msg-str")) push.msg_str = *v;
  if (auto v = Decoded(uri, "pn-call-str")) push.call_str = *v;
  if (auto v = Param(uri, "pn-silent")) {
    push.silent =
        !(*v == "0" || absl::EqualsIgnoreCase(*v, "false") || absl::EqualsIgnoreCase(*v, "no"));
  }
  if (auto v = Param(uri, "pn-timeout")) {
    uint32_t t = 0;
    if (v->empty() || !std::all_of(v->begin(), v->end(), absl::ascii_isdigit) ||
        !absl::SimpleAtoi(*v, &t)) {
      return Bad(absl::StrCat("invalid pn-timeout \"", *v, "\""));
    }
    push.timeout_seconds = t;
  }
  return absl::OkStatus();
}

absl::Status ParseApnsPrid(absl::string_view prid, absl::string_view services, PushParams& push) {
  if (prid.find(':') == absl::string_view::npos && prid.find('&') == absl::string_view::npos) {
    if (!IsHexToken(prid)) return Bad("pn-prid is not a hexadecimal APNs token");
    push.prid = std::string(prid);
    push.voip = services == "voip";
    return absl::OkStatus();
  }
  std::string voip_token;
  std::string remote_token;
  for (absl::string_view part : absl::StrSplit(prid, '&')) {
    const size_t colon = part.rfind(':');
    if (colon == absl::string_view::npos) {
      return Bad(absl::StrCat("pn-prid entry \"", part.substr(0, 16),
                              "\" is not <token>:remote or <token>:voip"));
    }
    absl::string_view token = part.substr(0, colon);
    absl::string_view type = part.substr(colon + 1);
    if (!IsHexToken(token)) return Bad("pn-prid is not a hexadecimal APNs token");
    if (type == "voip") {
      if (!voip_token.empty()) return Bad("pn-prid has two voip tokens");
      voip_token = std::string(token);
    } else if (type == "remote") {
      if (!remote_token.empty()) return Bad("pn-prid has two remote tokens");
      remote_token = std::string(token);
    } else {
      return Bad(absl::StrCat("pn-prid token type \"", type, "\" is not remote or voip"));
    }
  }
  if (!voip_token.empty()) {
    push.prid = std::move(voip_token);
    push.voip = true;
    if (remote_token != push.prid) push.remote_prid = std::move(remote_token);
  } else {
    push.prid = std::move(remote_token);
    push.voip = false;
  }
  return absl::OkStatus();
}

absl::StatusOr<PushParams> ParseRfc8599(const Uri& uri) {
  PushParams push;
  auto provider = Decoded(uri, "pn-provider");
  auto prid = Decoded(uri, "pn-prid");
  auto param = Decoded(uri, "pn-param");
  if (!provider) {
    return Bad(prid ? "pn-prid without pn-provider" : "pn-param without pn-provider");
  }
  if (provider->empty()) return Bad("empty pn-provider");
  push.provider_name = *provider;
  const std::string lower = absl::AsciiStrToLower(*provider);
  if (lower == "apns") {
    push.provider = PushParams::kApns;
  } else if (lower == "apns.dev") {
    push.provider = PushParams::kApnsSandbox;
  } else if (lower == "fcm") {
    push.provider = PushParams::kFcm;
  } else {
    push.provider = PushParams::kOther;
  }
  if (param) {
    if (param->empty()) return Bad("empty pn-param");
    push.param = *param;
  }
  RETURN_IF_ERROR(ParseLegacyExtras(uri, push));
  if (!prid) return push;  // RFC 8599 capability query
  if (prid->empty()) return Bad("empty pn-prid");
  switch (push.provider) {
    case PushParams::kApns:
    case PushParams::kApnsSandbox: {
      if (!param) return Bad("pn-param missing for APNs (<TeamID>.<bundle-id>)");
      const size_t dot = param->find('.');
      if (dot == std::string::npos || !IsTeamId(absl::string_view(*param).substr(0, dot)) ||
          dot + 1 >= param->size()) {
        return Bad(absl::StrCat("pn-param \"", *param, "\" is not <TeamID>.<bundle-id>"));
      }
      absl::string_view services = ServicesOf(*param);
      // The bundle id must remain once the team id and services are removed.
      if (absl::string_view(*param).size() - dot - 1 <=
          (services.empty() ? 0 : services.size() + 1)) {
        return Bad(absl::StrCat("pn-param \"", *param, "\" has no bundle id"));
      }
      RETURN_IF_ERROR(ParseApnsPrid(*prid, services, push));
      break;
    }
    case PushParams::kFcm:
      if (!IsFcmToken(*prid)) return Bad("pn-prid is not a valid FCM token");
      push.prid = *prid;
      break;
    case PushParams::kOther:
      push.prid = *prid;
      break;
  }
  return push;
}

absl::StatusOr<PushParams> ParseLegacy(const Uri& uri) {
  PushParams push;
  push.legacy = true;
  auto type = Decoded(uri, "pn-type");
  auto tok = Decoded(uri, "pn-tok");
  auto app = Decoded(uri, "app-id");
  if (!type) return Bad(tok ? "pn-tok without pn-type" : "app-id without pn-type");
  if (type->empty()) return Bad("empty pn-type");
  push.provider_name = *type;
  if (!tok || tok->empty()) return Bad(absl::StrCat("pn-type \"", *type, "\" without pn-tok"));
  if (!app || app->empty()) return Bad(absl::StrCat("pn-type \"", *type, "\" without app-id"));
  push.param = *app;
  RETURN_IF_ERROR(ParseLegacyExtras(uri, push));
  const std::string lower = absl::AsciiStrToLower(*type);
  if (lower == "apple") {
    absl::string_view id = *app;
    push.provider = PushParams::kApns;
    if (absl::ConsumeSuffix(&id, ".dev")) {
      push.provider = PushParams::kApnsSandbox;
    } else {
      absl::ConsumeSuffix(&id, ".prod");
    }
    push.voip = absl::EndsWith(id, ".voip");
    if (!IsHexToken(*tok)) return Bad("pn-tok is not a hexadecimal APNs token");
  } else if (lower == "google" || lower == "firebase" || lower == "android") {
    push.provider = PushParams::kFcm;
    if (!IsFcmToken(*tok)) return Bad("pn-tok is not a valid FCM token");
  } else {
    push.provider = PushParams::kOther;
  }
  push.prid = *tok;
  return push;
}

}  // namespace

bool IsPushParamName(absl::string_view name) {
  return absl::StartsWithIgnoreCase(name, "pn-") || absl::EqualsIgnoreCase(name, "app-id");
}

absl::StatusOr<std::optional<PushParams>> ParsePushParams(const Uri& uri) {
  const bool rfc =
      HasParam(uri, "pn-provider") || HasParam(uri, "pn-prid") || HasParam(uri, "pn-param");
  const bool legacy =
      HasParam(uri, "pn-type") || HasParam(uri, "pn-tok") || HasParam(uri, "app-id");
  if (rfc) {
    ASSIGN_OR_RETURN(PushParams push, ParseRfc8599(uri));
    return std::optional<PushParams>(std::move(push));
  }
  if (legacy) {
    ASSIGN_OR_RETURN(PushParams push, ParseLegacy(uri));
    return std::optional<PushParams>(std::move(push));
  }
  return std::optional<PushParams>();
}

std::string PushParams::ApnsTeamId() const {
  if (legacy) return "";
  const size_t dot = param.find('.');
  return dot == std::string::npos ? "" : param.substr(0, dot);
}

std::string PushParams::ApnsBundleId() const {
  absl::string_view id = param;
  if (legacy) {
    if (!absl::ConsumeSuffix(&id, ".dev")) absl::ConsumeSuffix(&id, ".prod");
    absl::ConsumeSuffix(&id, ".voip");
    return std::string(id);
  }
  const size_t dot = id.find('.');
  if (dot == absl::string_view::npos) return std::string(id);
  id.remove_prefix(dot + 1);
  absl::string_view services = ServicesOf(id);
  if (!services.empty() && id.size() > services.size()) {
    id.remove_suffix(services.size() + 1);
  }
  return std::string(id);
}

std::string PushParams::ApnsTopic() const {
  std::string bundle = ApnsBundleId();
  if (voip) absl::StrAppend(&bundle, ".voip");
  return bundle;
}

std::string PushKey(const PushParams& push) {
  if (push.prid.empty()) return "";
  absl::string_view family;
  std::string app;
  switch (push.provider) {
    case PushParams::kApns:
      family = "apns";
      app = push.ApnsBundleId();
      break;
    case PushParams::kApnsSandbox:
      family = "apns.dev";
      app = push.ApnsBundleId();
      break;
    case PushParams::kFcm:
      family = "fcm";
      app = push.param;
      break;
    case PushParams::kOther:
      return absl::StrCat(absl::AsciiStrToLower(push.provider_name), "|", push.param, "|",
                          push.prid);
  }
  return absl::StrCat(family, "|", app, "|", push.prid);
}

}  // namespace pushgate::proxy
