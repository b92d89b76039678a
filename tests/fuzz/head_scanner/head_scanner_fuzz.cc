// HeadScanner and DatagramWithinLines (proxy/core/wire_limits.h): the bytes the proxy reads from
// its SIP sockets before sofia parses them. The first byte sets the line limit (0-63), the second
// the chunk size (1-64) in which the rest is fed a second time.
// Oracles: the verdict and the counts do not depend on how the stream is cut into reads; a head
// within the limit never counts more lines than the limit; a datagram refused by
// DatagramWithinLines is refused by the stream scanner too.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "absl/strings/string_view.h"
#include "proxy/core/wire_limits.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const size_t max_lines = data[0] % 64;
  const size_t chunk = data[1] % 64 + 1;
  const absl::string_view bytes(reinterpret_cast<const char*>(data) + 2, size - 2);

  pushgate::proxy::HeadScanner whole(max_lines);
  const bool whole_ok = whole.Feed(bytes);
  pushgate::proxy::HeadScanner pieces(max_lines);
  bool pieces_ok = true;
  for (size_t i = 0; i < bytes.size() && pieces_ok; i += chunk) {
    pieces_ok = pieces.Feed(bytes.substr(i, chunk));
  }
  if (whole_ok != pieces_ok || whole.over_limit() != pieces.over_limit() ||
      whole.messages_begun() != pieces.messages_begun() ||
      whole.in_message() != pieces.in_message() || whole.head_lines() != pieces.head_lines()) {
    std::abort();  // the verdict depends on the reads' boundaries
  }
  if (max_lines > 0 && !whole.over_limit() && whole.head_lines() > max_lines) std::abort();
  if (max_lines > 0 && whole.over_limit() && whole.head_lines() != max_lines + 1) std::abort();
  if (!pushgate::proxy::DatagramWithinLines(bytes, max_lines) && whole_ok) std::abort();
  return 0;
}
