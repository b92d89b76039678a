#include "common/net.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

namespace pushgate {

std::optional<std::pair<std::string, uint16_t>> SockaddrToHostPort(const void* sa_ptr) {
  const auto* sa = static_cast<const sockaddr*>(sa_ptr);
  char buf[INET6_ADDRSTRLEN] = {0};
  if (sa->sa_family == AF_INET) {
    const auto* in = static_cast<const sockaddr_in*>(sa_ptr);
    if (!inet_ntop(AF_INET, &in->sin_addr, buf, sizeof(buf))) return std::nullopt;
    return std::make_pair(std::string(buf), ntohs(in->sin_port));
  }
  if (sa->sa_family == AF_INET6) {
    const auto* in6 = static_cast<const sockaddr_in6*>(sa_ptr);
    if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
      in_addr v4;
      std::memcpy(&v4, &in6->sin6_addr.s6_addr[12], sizeof(v4));
      if (!inet_ntop(AF_INET, &v4, buf, sizeof(buf))) return std::nullopt;
    } else if (!inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof(buf))) {
      return std::nullopt;
    }
    return std::make_pair(std::string(buf), ntohs(in6->sin6_port));
  }
  return std::nullopt;
}

}  // namespace pushgate
