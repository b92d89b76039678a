// UTF-8 checks for text that leaves through protobuf (proto3 string fields must be UTF-8).
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace pushgate {

// The offset of the first byte that does not start a well-formed UTF-8 sequence (RFC 3629:
// shortest form, no surrogates, at most U+10FFFF), or nullopt when the text is valid UTF-8.
std::optional<size_t> FirstInvalidUtf8(absl::string_view text);

inline bool IsValidUtf8(absl::string_view text) { return !FirstInvalidUtf8(text).has_value(); }

// The text with each ill-formed sequence replaced by U+FFFD (one per maximal bad subpart).
std::string ToValidUtf8(absl::string_view text);

}  // namespace pushgate
