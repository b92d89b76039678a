// Which provider client (credential + HTTP/2 pool) serves a destination.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "pusher/provider/provider_client.h"
#include "pushgate/v1/pusher.pb.h"

namespace pushgate::pusher {

class Router {
 public:
  // APNs token auth: one client per (team, environment) serves every bundle of the team.
  void AddApnsTeam(v1::Provider environment, const std::string& team_id,
                   std::shared_ptr<ProviderClient> client);
  // APNs certificate auth: one client per (bundle, environment); preferred over the team's key.
  void AddApnsBundle(v1::Provider environment, const std::string& bundle_id,
                     std::shared_ptr<ProviderClient> client);
  void AddFcmProject(const std::string& project_id, std::shared_ptr<ProviderClient> client);

  // The client for `destination`. INVALID_ARGUMENT for an unparseable app,
  // FAILED_PRECONDITION "no credentials for ..." when none is configured.
  absl::StatusOr<ProviderClient*> Route(const v1::Destination& destination) const;

  // Every client with the health service name it is reported under ("apns:TEAMID",
  // "apns_sandbox:com.example.app", "fcm:project").
  std::map<std::string, ProviderClient*> Clients() const;

 private:
  using Key = std::pair<int, std::string>;  // provider, team / bundle / project
  std::map<Key, std::shared_ptr<ProviderClient>> teams_;
  std::map<Key, std::shared_ptr<ProviderClient>> bundles_;
  std::map<std::string, std::shared_ptr<ProviderClient>> projects_;
};

}  // namespace pushgate::pusher
