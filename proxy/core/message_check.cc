#include "proxy/core/message_check.h"

#include <array>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace pushgate::proxy {
namespace {

constexpr std::array<absl::string_view, 5> kMandatory = {"Via", "From", "To", "Call-ID", "CSeq"};
constexpr std::array<absl::string_view, 4> kNumeric = {"Max-Forwards", "Expires", "CSeq",
                                                       "Content-Length"};

bool In(absl::string_view name, const auto& list) {
  for (absl::string_view n : list) {
    if (absl::EqualsIgnoreCase(n, name)) return true;
  }
  return false;
}

const HeaderCount* Find(const MessageFacts& facts, absl::string_view name) {
  for (const HeaderCount& h : facts.headers) {
    if (absl::EqualsIgnoreCase(h.name, name)) return &h;
  }
  return nullptr;
}

}  // namespace

bool IsMandatoryHeader(absl::string_view name) { return In(name, kMandatory); }

bool IsCheckedHeader(absl::string_view name) {
  return In(name, kMandatory) || In(name, kNumeric) || absl::EqualsIgnoreCase(name, "Content-Type");
}

std::optional<uint32_t> ParseUint32(absl::string_view text) {
  text = absl::StripAsciiWhitespace(text);
  if (text.empty()) return std::nullopt;
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<uint64_t>(c - '0');
    if (value > std::numeric_limits<uint32_t>::max()) return std::nullopt;
  }
  return static_cast<uint32_t>(value);
}

CheckResult CheckMessage(const MessageFacts& facts) {
  for (const HeaderCount& h : facts.headers) {
    if (h.single && h.count > 1) return CheckResult::Fail(absl::StrCat("Duplicate ", h.name));
  }
  for (absl::string_view name : kMandatory) {
    const HeaderCount* h = Find(facts, name);
    if (h == nullptr || h->count == 0) return CheckResult::Fail(absl::StrCat("Missing ", name));
  }
  for (const RawNumber& n : facts.numbers) {
    if (!ParseUint32(n.value)) return CheckResult::Fail(absl::StrCat("Bad ", n.name));
  }
  for (const HeaderCount& h : facts.headers) {
    if (h.malformed && IsCheckedHeader(h.name)) {
      return CheckResult::Fail(absl::StrCat("Bad ", h.name));
    }
  }
  if (facts.datagram && facts.content_length && *facts.content_length > facts.body_size) {
    return CheckResult::Fail("Bad Content-Length");
  }
  return CheckResult::Ok();
}

}  // namespace pushgate::proxy
