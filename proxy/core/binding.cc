#include "proxy/core/binding.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "proxy/core/byte_codec.h"

namespace pushgate::proxy {
namespace {

using bytes::Reader;
using bytes::Writer;

constexpr uint8_t kRecordVersion = 1;
enum PushTag : uint8_t { kNoPush = 0, kDerivedPush = 1, kExplicitPush = 2 };

void WriteUri(Writer& w, const Uri& uri) {
  if (uri.scheme == "sip") {
    w.Byte(0);
  } else if (uri.scheme == "sips") {
    w.Byte(1);
  } else {
    w.Byte(2);
    w.String(uri.scheme);
  }
  w.String(uri.user);
  w.String(uri.password);
  w.String(uri.host);
  w.Varint(uri.port ? static_cast<uint64_t>(*uri.port) + 1 : 0);
  w.Varint(uri.params.size());
  for (const auto& [name, value] : uri.params) {
    w.String(name);
    w.String(value);
  }
  w.String(uri.headers);
}

bool ReadUri(Reader& r, Uri& uri) {
  uint8_t scheme = 0;
  if (!r.Byte(scheme)) return false;
  if (scheme == 0) {
    uri.scheme = "sip";
  } else if (scheme == 1) {
    uri.scheme = "sips";
  } else if (scheme != 2 || !r.String(uri.scheme)) {
    return false;
  }
  uint32_t port = 0;
  size_t count = 0;
  if (!r.String(uri.user) || !r.String(uri.password) || !r.String(uri.host) || !r.Uint(port) ||
      port > 65536 || !r.Uint(count)) {
    return false;
  }
  if (port != 0) uri.port = static_cast<uint16_t>(port - 1);
  if (count > r.remaining() / 2) return false;  // each parameter takes at least 2 bytes
  uri.params.resize(count);
  for (auto& [name, value] : uri.params) {
    if (!r.String(name) || !r.String(value)) return false;
  }
  return r.String(uri.headers);
}

void WritePush(Writer& w, const PushParams& p) {
  w.Byte(p.provider);
  w.String(p.provider_name);
  w.String(p.prid);
  w.String(p.remote_prid);
  w.String(p.param);
  w.Byte(static_cast<uint8_t>((p.voip ? 1 : 0) | (p.legacy ? 2 : 0) | (p.silent ? 4 : 0) |
                              (p.timeout_seconds ? 8 : 0)));
  w.String(p.msg_str);
  w.String(p.call_str);
  if (p.timeout_seconds) w.Varint(*p.timeout_seconds);
}

bool ReadPush(Reader& r, PushParams& p) {
  uint8_t provider = 0;
  uint8_t flags = 0;
  if (!r.Byte(provider) || provider > PushParams::kOther || !r.String(p.provider_name) ||
      !r.String(p.prid) || !r.String(p.remote_prid) || !r.String(p.param) || !r.Byte(flags) ||
      !r.String(p.msg_str) || !r.String(p.call_str)) {
    return false;
  }
  p.provider = static_cast<PushParams::Provider>(provider);
  p.voip = flags & 1;
  p.legacy = flags & 2;
  p.silent = flags & 4;
  if (flags & 8) {
    uint32_t t = 0;
    if (!r.Uint(t)) return false;
    p.timeout_seconds = t;
  }
  return true;
}

}  // namespace

std::string Binding::push_key() const { return push ? PushKey(*push) : std::string(); }

std::string DeviceKey(const Binding& binding) {
  if (!binding.instance_id.empty()) return absl::StrCat("instance:", binding.instance_id);
  std::string key = binding.push_key();
  return key.empty() ? key : absl::StrCat("push:", key);
}

std::string EncodeBindings(const std::vector<Binding>& bindings) {
  Writer w;
  w.Byte(kRecordVersion);
  w.Varint(bindings.size());
  for (const Binding& b : bindings) {
    WriteUri(w, b.contact);
    w.String(b.instance_id);
    w.Varint(b.reg_id);
    w.Float(b.q);
    if (!b.push) {
      w.Byte(kNoPush);
    } else {
      auto derived = ParsePushParams(b.contact);
      if (derived.ok() && *derived && **derived == *b.push) {
        w.Byte(kDerivedPush);
      } else {
        w.Byte(kExplicitPush);
        WritePush(w, *b.push);
      }
    }
    w.Byte(static_cast<uint8_t>(b.received.transport));
    w.String(b.received.host);
    w.Varint(b.received.port);
    w.String(b.flow_token);
    w.Time(b.expires_at);
    w.String(b.call_id);
    w.Varint(b.cseq);
    w.Time(b.updated_at);
  }
  return w.Take();
}

absl::StatusOr<std::vector<Binding>> DecodeBindings(absl::string_view record,
                                                    absl::string_view aor) {
  auto corrupt = [](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("binding record: ", why));
  };
  Reader r(record);
  uint8_t version = 0;
  if (!r.Byte(version)) return corrupt("empty");
  if (version != kRecordVersion) return corrupt(absl::StrCat("unknown version ", version));
  size_t count = 0;
  // Each binding takes well over 16 bytes: refuse counts the record cannot hold.
  if (!r.Uint(count) || count > record.size() / 16 + 1) return corrupt("bad count");
  std::vector<Binding> out(count);
  for (Binding& b : out) {
    b.aor = std::string(aor);
    uint8_t push_tag = 0;
    uint8_t transport = 0;
    if (!ReadUri(r, b.contact) || !r.String(b.instance_id) || !r.Uint(b.reg_id) || !r.Float(b.q) ||
        !r.Byte(push_tag)) {
      return corrupt("truncated contact");
    }
    if (push_tag == kDerivedPush) {
      auto derived = ParsePushParams(b.contact);
      if (!derived.ok() || !*derived) return corrupt("push parameters no longer parse");
      b.push = **derived;
    } else if (push_tag == kExplicitPush) {
      b.push.emplace();
      if (!ReadPush(r, *b.push)) return corrupt("truncated push parameters");
    } else if (push_tag != kNoPush) {
      return corrupt("bad push tag");
    }
    if (!r.Byte(transport) || transport > static_cast<uint8_t>(Transport::kTls) ||
        !r.String(b.received.host) || !r.Uint(b.received.port) || !r.String(b.flow_token) ||
        !r.Time(b.expires_at) || !r.String(b.call_id) || !r.Uint(b.cseq) || !r.Time(b.updated_at)) {
      return corrupt("truncated binding");
    }
    b.received.transport = static_cast<Transport>(transport);
  }
  if (!r.empty()) return corrupt("trailing bytes");
  return out;
}

absl::Time EarliestExpiry(const std::vector<Binding>& bindings) {
  absl::Time earliest = absl::InfiniteFuture();
  for (const Binding& b : bindings) earliest = std::min(earliest, b.expires_at);
  return earliest;
}

std::string BindingsJson(absl::string_view aor, const std::vector<Binding>& bindings,
                         absl::Time now) {
  nlohmann::json list = nlohmann::json::array();
  for (const Binding& b : bindings) {
    Uri contact = b.contact;
    contact.params.erase(std::remove_if(contact.params.begin(), contact.params.end(),
                                        [](const auto& p) { return IsPushParamName(p.first); }),
                         contact.params.end());
    nlohmann::json j = {
        {"contact", FormatUri(contact)},
        {"instance", b.instance_id},
        {"reg_id", b.reg_id},
        {"q", b.q},
        {"received", DebugString(b.received)},
        {"flow", !b.flow_token.empty()},
        {"expires_in_s", std::max<int64_t>(0, absl::ToInt64Seconds(b.expires_at - now))},
        {"call_id", b.call_id},
        {"cseq", b.cseq},
    };
    if (b.push) {
      j["push"] = {{"provider", b.push->provider_name},
                   {"param", b.push->param},
                   {"token", log::RedactToken(b.push->prid)},
                   {"voip", b.push->voip}};
    }
    list.push_back(std::move(j));
  }
  nlohmann::json out = {{"aor", std::string(aor)}, {"bindings", std::move(list)}};
  // Replace, not throw, on invalid UTF-8 from a phone's Call-ID or contact.
  return out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string DebugString(const Binding& b) {
  std::string out = absl::StrCat("aor=", b.aor, " contact_host=", b.contact.host);
  if (b.contact.port) absl::StrAppend(&out, ":", *b.contact.port);
  if (!b.instance_id.empty()) absl::StrAppend(&out, " instance=", b.instance_id);
  if (b.reg_id != 0) absl::StrAppend(&out, " reg_id=", b.reg_id);
  absl::StrAppend(&out, " received=", DebugString(b.received));
  if (b.push) {
    absl::StrAppend(&out, " push=", b.push->provider_name,
                    " token=", log::RedactToken(b.push->prid));
  }
  absl::StrAppend(&out, " expires_at=", absl::FormatTime(b.expires_at, absl::UTCTimeZone()));
  return out;
}

}  // namespace pushgate::proxy
