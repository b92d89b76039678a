#include "tests/integration/http2/fake_dns.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace pushgate::http2::testing {
namespace {

constexpr uint16_t kTypeA = 1;
constexpr size_t kHeaderSize = 12;

void Put16(std::vector<uint8_t>& out, uint16_t v) {
  out.push_back(static_cast<uint8_t>(v >> 8));
  out.push_back(static_cast<uint8_t>(v & 0xff));
}

// The question's name (dotted, lower case) and the offset just past QTYPE/QCLASS; false when the
// packet is not a query this server understands.
bool ParseQuestion(const uint8_t* p, size_t n, std::string* name, uint16_t* qtype, size_t* end) {
  size_t i = kHeaderSize;
  name->clear();
  while (i < n && p[i] != 0) {
    const size_t len = p[i];
    if (len > 63 || i + 1 + len > n) return false;
    if (!name->empty()) name->push_back('.');
    name->append(reinterpret_cast<const char*>(p + i + 1), len);
    i += 1 + len;
  }
  if (i + 5 > n) return false;
  *qtype = static_cast<uint16_t>(p[i + 1] << 8 | p[i + 2]);
  *end = i + 5;
  absl::AsciiStrToLower(name);
  return true;
}

}  // namespace

absl::StatusOr<std::unique_ptr<FakeDns>> FakeDns::Start(std::string name, bool nxdomain_for_all) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError("socket failed");
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(sin);
  if (bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof(sin)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len) != 0) {
    close(fd);
    return absl::InternalError(absl::StrCat("bind failed: ", strerror(errno)));
  }
  return std::unique_ptr<FakeDns>(
      new FakeDns(fd, ntohs(sin.sin_port), std::move(name), nxdomain_for_all));
}

FakeDns::FakeDns(int fd, int port, std::string name, bool nxdomain_for_all)
    : fd_(fd), port_(port), name_(std::move(name)), nxdomain_for_all_(nxdomain_for_all) {
  thread_ = std::thread([this] { Loop(); });
}

FakeDns::~FakeDns() {
  stop_ = true;
  thread_.join();
  close(fd_);
}

void FakeDns::Loop() {
  uint8_t buf[512];
  while (!stop_) {
    pollfd pfd{fd_, POLLIN, 0};
    if (poll(&pfd, 1, 50) <= 0) continue;
    sockaddr_in from{};
    socklen_t from_len = sizeof(from);
    ssize_t n = recvfrom(fd_, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &from_len);
    if (n < static_cast<ssize_t>(kHeaderSize)) continue;
    std::string qname;
    uint16_t qtype = 0;
    size_t question_end = 0;
    if (!ParseQuestion(buf, static_cast<size_t>(n), &qname, &qtype, &question_end)) continue;
    ++queries_;
    const bool known = !nxdomain_for_all_ && qname == name_;
    const bool answer_a = known && qtype == kTypeA;
    std::vector<uint8_t> out(buf, buf + question_end);      // id, flags, counts, question
    out[2] = static_cast<uint8_t>(0x80 | (buf[2] & 0x01));  // QR, RD as asked
    out[3] = static_cast<uint8_t>(0x80 | (known ? 0 : 3));  // RA, NOERROR or NXDOMAIN
    out[4] = 0, out[5] = 1;                                 // QDCOUNT 1
    out[6] = 0, out[7] = answer_a ? 1 : 0;                  // ANCOUNT
    for (int i = 8; i < 12; ++i) out[i] = 0;                // NSCOUNT, ARCOUNT
    if (answer_a) {
      Put16(out, 0xc00c);  // the question's name
      Put16(out, kTypeA);
      Put16(out, 1);                  // IN
      Put16(out, 0), Put16(out, 60);  // TTL 60 s
      Put16(out, 4);
      for (uint8_t b : {127, 0, 0, 1}) out.push_back(b);
    }
    sendto(fd_, out.data(), out.size(), 0, reinterpret_cast<sockaddr*>(&from), from_len);
  }
}

}  // namespace pushgate::http2::testing
