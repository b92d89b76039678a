#include "pusher/core/topic.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "pusher/core/apns_token.h"

namespace pushgate::pusher {
namespace {

bool IsBundleLabel(absl::string_view label) {
  if (label.empty()) return false;
  for (char c : label) {
    if (!absl::ascii_isalnum(c) && c != '-') return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<ApnsTopic> ParseApnsPnParam(absl::string_view pn_param) {
  size_t dot = pn_param.find('.');
  if (dot == absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "APNs pn-param '", pn_param, "' must be <TeamID>.<bundle-id>[.voip]: no '.' found"));
  }
  ApnsTopic topic;
  topic.team_id = std::string(pn_param.substr(0, dot));
  if (!IsAppleId(topic.team_id)) {
    return absl::InvalidArgumentError(absl::StrCat("APNs pn-param '", pn_param, "': team id '",
                                                   topic.team_id,
                                                   "' must be 10 characters A-Z/0-9"));
  }
  std::vector<absl::string_view> labels = absl::StrSplit(pn_param.substr(dot + 1), '.');
  if (labels.size() >= 2) {
    absl::string_view last = labels.back();
    if (last == "voip") {
      topic.voip = true;
      labels.pop_back();
    } else if (last == "apns") {
      labels.pop_back();
    } else if (absl::StrContains(last, '&')) {
      for (absl::string_view service : absl::StrSplit(last, '&')) {
        if (service == "voip") topic.voip = true;
      }
      labels.pop_back();
    }
  }
  for (absl::string_view label : labels) {
    if (!IsBundleLabel(label)) {
      return absl::InvalidArgumentError(
          absl::StrCat("APNs pn-param '", pn_param,
                       "': bundle id must be dot-separated labels of letters, digits and '-'"));
    }
  }
  topic.bundle_id = absl::StrJoin(labels, ".");
  return topic;
}

absl::StatusOr<const ApnsTopic*> ParseApnsPnParamCached(absl::string_view pn_param) {
  thread_local std::string last_pn_param;
  thread_local ApnsTopic last_topic;
  thread_local bool valid = false;
  if (valid && pn_param == last_pn_param) return &last_topic;
  absl::StatusOr<ApnsTopic> topic = ParseApnsPnParam(pn_param);
  if (!topic.ok()) return topic.status();
  last_topic = *std::move(topic);
  last_pn_param.assign(pn_param.data(), pn_param.size());
  valid = true;
  return &last_topic;
}

std::string ApnsTopicFor(const ApnsTopic& topic, v1::PushKind kind) {
  if (kind == v1::VOIP) return absl::StrCat(topic.bundle_id, ".voip");
  return topic.bundle_id;
}

absl::StatusOr<std::string> ParseFcmPnParam(absl::string_view pn_param) {
  if (pn_param.empty()) return absl::InvalidArgumentError("FCM pn-param (project id) is empty");
  if (pn_param.size() > 100) {
    return absl::InvalidArgumentError(
        absl::StrCat("FCM project id is ", pn_param.size(), " characters, at most 100"));
  }
  for (char c : pn_param) {
    if (!absl::ascii_isalnum(c) && c != '-' && c != '_' && c != '.' && c != ':') {
      return absl::InvalidArgumentError(absl::StrCat(
          "FCM project id '", pn_param, "' may only hold letters, digits, '-', '_', '.', ':'"));
    }
  }
  return std::string(pn_param);
}

}  // namespace pushgate::pusher
