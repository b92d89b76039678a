#include "pusher/service/router.h"

#include "absl/strings/str_cat.h"
#include "pusher/core/topic.h"

namespace pushgate::pusher {
namespace {

std::string EnvName(int provider) { return provider == v1::APNS_SANDBOX ? "apns_sandbox" : "apns"; }

}  // namespace

void Router::AddApnsTeam(v1::Provider environment, const std::string& team_id,
                         std::shared_ptr<ProviderClient> client) {
  teams_[{environment, team_id}] = std::move(client);
}

void Router::AddApnsBundle(v1::Provider environment, const std::string& bundle_id,
                           std::shared_ptr<ProviderClient> client) {
  bundles_[{environment, bundle_id}] = std::move(client);
}

void Router::AddFcmProject(const std::string& project_id, std::shared_ptr<ProviderClient> client) {
  projects_[project_id] = std::move(client);
}

absl::StatusOr<ProviderClient*> Router::Route(const v1::Destination& destination) const {
  switch (destination.provider()) {
    case v1::APNS:
    case v1::APNS_SANDBOX: {
      absl::StatusOr<const ApnsTopic*> parsed = ParseApnsPnParamCached(destination.app());
      if (!parsed.ok()) return parsed.status();
      const ApnsTopic* topic = *parsed;
      if (!bundles_.empty()) {
        if (auto it = bundles_.find({destination.provider(), topic->bundle_id});
            it != bundles_.end()) {
          return it->second.get();
        }
      }
      if (auto it = teams_.find({destination.provider(), topic->team_id}); it != teams_.end()) {
        return it->second.get();
      }
      return absl::FailedPreconditionError(
          absl::StrCat("no credentials for ", EnvName(destination.provider()), " app '",
                       destination.app(), "' (neither a certificate for ", topic->bundle_id,
                       " nor a token key for team ", topic->team_id, ")"));
    }
    case v1::FCM: {
      auto project = ParseFcmPnParam(destination.app());
      if (!project.ok()) return project.status();
      if (auto it = projects_.find(*project); it != projects_.end()) return it->second.get();
      return absl::FailedPreconditionError(
          absl::StrCat("no credentials for fcm project '", *project, "'"));
    }
    default:
      return absl::InvalidArgumentError("destination.provider is unspecified");
  }
}

std::map<std::string, ProviderClient*> Router::Clients() const {
  std::map<std::string, ProviderClient*> out;
  for (const auto& [key, client] : teams_)
    out[absl::StrCat(EnvName(key.first), ":", key.second)] = client.get();
  for (const auto& [key, client] : bundles_)
    out[absl::StrCat(EnvName(key.first), ":", key.second)] = client.get();
  for (const auto& [project, client] : projects_) out[absl::StrCat("fcm:", project)] = client.get();
  return out;
}

}  // namespace pushgate::pusher
