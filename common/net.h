// Socket address helpers shared by the proxy (sofia's addresses) and the pusher (resolver).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

namespace pushgate {

// Formats an IP address and port of a sockaddr ("192.0.2.1", 5060); IPv6 without brackets, an
// IPv4-mapped IPv6 address as IPv4. Nullopt for other families.
std::optional<std::pair<std::string, uint16_t>> SockaddrToHostPort(const void* sockaddr);

}  // namespace pushgate
