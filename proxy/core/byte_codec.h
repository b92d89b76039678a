// The compact binary encoding shared by binding records and masquerade values: varints
// (LEB128), zigzag signed integers, length-prefixed strings; and the base64url text form of
// masquerade values. Internal to proxy/core.
#pragma once

#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace pushgate::proxy::bytes {

inline void AppendVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

inline void AppendString(std::string& out, absl::string_view s) {
  AppendVarint(out, s.size());
  out.append(s.data(), s.size());
}

class Writer {
 public:
  void Byte(uint8_t b) { out_.push_back(static_cast<char>(b)); }
  void Varint(uint64_t v) { AppendVarint(out_, v); }
  void Signed(int64_t v) {
    Varint((static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63));
  }
  void String(absl::string_view s) { AppendString(out_, s); }
  void Float(float f) {
    uint32_t bits = 0;
    std::memcpy(&bits, &f, sizeof bits);
    for (int i = 0; i < 4; ++i) Byte(static_cast<uint8_t>(bits >> (8 * i)));
  }
  void Time(absl::Time t) { Signed(absl::ToUnixNanos(t)); }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

class Reader {
 public:
  explicit Reader(absl::string_view data) : data_(data) {}
  bool Byte(uint8_t& b) {
    if (data_.empty()) return false;
    b = static_cast<uint8_t>(data_.front());
    data_.remove_prefix(1);
    return true;
  }
  bool Varint(uint64_t& v) {
    v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      uint8_t b = 0;
      if (!Byte(b)) return false;
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return true;
    }
    return false;
  }
  template <typename T>
  bool Uint(T& out) {
    uint64_t v = 0;
    if (!Varint(v) || v > std::numeric_limits<T>::max()) return false;
    out = static_cast<T>(v);
    return true;
  }
  bool Signed(int64_t& out) {
    uint64_t v = 0;
    if (!Varint(v)) return false;
    out = static_cast<int64_t>((v >> 1) ^ (~(v & 1) + 1));
    return true;
  }
  bool String(std::string& s) {
    uint64_t n = 0;
    if (!Varint(n) || n > data_.size()) return false;
    s.assign(data_.data(), n);
    data_.remove_prefix(n);
    return true;
  }
  bool Float(float& f) {
    uint32_t bits = 0;
    for (int i = 0; i < 4; ++i) {
      uint8_t b = 0;
      if (!Byte(b)) return false;
      bits |= static_cast<uint32_t>(b) << (8 * i);
    }
    std::memcpy(&f, &bits, sizeof f);
    return true;
  }
  bool Time(absl::Time& t) {
    int64_t nanos = 0;
    if (!Signed(nanos)) return false;
    t = absl::FromUnixNanos(nanos);
    return true;
  }
  bool empty() const { return data_.empty(); }
  size_t remaining() const { return data_.size(); }

 private:
  absl::string_view data_;
};

// base64url (RFC 4648 section 5) without padding.
inline std::string Base64UrlEncode(absl::string_view data) {
  return absl::WebSafeBase64Escape(data);
}

// The bytes of `text`, which must be the canonical unpadded base64url spelling, so that one value
// has exactly one: absl::WebSafeBase64Unescape alone also accepts '=' padding, whitespace and
// non-zero trailing bits, so the result is encoded again and must give `text` back. nullopt
// otherwise.
inline std::optional<std::string> Base64UrlDecode(absl::string_view text) {
  std::string out;
  if (!absl::WebSafeBase64Unescape(text, &out)) return std::nullopt;
  if (absl::WebSafeBase64Escape(out) != text) return std::nullopt;
  return out;
}

}  // namespace pushgate::proxy::bytes
