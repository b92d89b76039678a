// Text that leaves through protobuf (a string field must be valid UTF-8, or serialization fails)
// comes from SIP, where a display name may legally be Latin-1 or any bytes. Pure, thread-safe.
#pragma once

#include <string>

#include "absl/strings/string_view.h"

namespace pushgate {

// `text` with every byte that does not belong to a well-formed UTF-8 sequence (RFC 3629: no
// overlong forms, no surrogates, nothing above U+10FFFF) replaced by U+FFFD. Valid input is
// returned unchanged.
std::string ToValidUtf8(absl::string_view text);

}  // namespace pushgate
