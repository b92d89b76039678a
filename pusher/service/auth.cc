#include "pusher/service/auth.h"

#include <openssl/sha.h>

#include "absl/strings/str_cat.h"
#include "pusher/core/topic.h"

namespace pushgate::pusher {
namespace {

std::string Digest(const std::string& key) {
  unsigned char out[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), out);
  return std::string(reinterpret_cast<char*>(out), sizeof(out));
}

// The app id an api keys file names: bundle id (APNs) or project id (FCM).
std::string AppOf(const v1::Destination& destination) {
  if (destination.provider() == v1::FCM) return destination.app();
  auto topic = ParseApnsPnParamCached(destination.app());
  return topic.ok() ? (*topic)->bundle_id : destination.app();
}

}  // namespace

Authorizer::Authorizer(std::vector<ApiKeyEntry> clients) : clients_(std::move(clients)) {
  for (const ApiKeyEntry& c : clients_) {
    by_key_digest_[Digest(c.key)] = &c;
    by_name_[c.client] = &c;
  }
}

absl::StatusOr<const ApiKeyEntry*> Authorizer::Authenticate(
    const std::optional<std::string>& api_key, const std::optional<std::string>& cert_name) const {
  if (clients_.empty()) return nullptr;
  if (api_key) {
    // Look up the key's digest, never the key: nothing about the key leaks through timing.
    auto it = by_key_digest_.find(Digest(*api_key));
    if (it == by_key_digest_.end()) return absl::UnauthenticatedError("unknown API key");
    return it->second;
  }
  if (cert_name) {
    auto it = by_name_.find(*cert_name);
    if (it != by_name_.end()) return it->second;
    return absl::UnauthenticatedError(
        absl::StrCat("client certificate '", *cert_name, "' names no configured client"));
  }
  return absl::UnauthenticatedError("missing credentials: send the x-api-key metadata");
}

absl::Status Authorizer::CheckApp(const ApiKeyEntry* client, const v1::Destination& destination) {
  if (client == nullptr) return absl::OkStatus();
  std::string app = AppOf(destination);
  if (client->Allows(app)) return absl::OkStatus();
  return absl::PermissionDeniedError(
      absl::StrCat("client '", client->client, "' may not push to app '", app, "'"));
}

}  // namespace pushgate::pusher
