#include "pusher/core/request_wire.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/utf8.h"

namespace pushgate::pusher {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::internal::WireFormatLite;
using google::protobuf::io::CodedInputStream;

constexpr int kMaxDepth = 8;  // PushRequest nests three deep (request, destination / map entry)

absl::Status Malformed(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("request: ", what));
}

std::string PathOf(absl::string_view prefix, const FieldDescriptor* field) {
  return prefix.empty() ? field->name() : absl::StrCat(prefix, ".", field->name());
}

// Walks one message's fields: checks every string (also in nested messages) is UTF-8 and that
// the encoding is one protobuf accepts. `descriptor` may be null for an unknown nested field,
// whose contents are skipped.
struct Largest {
  std::string path;
  size_t bytes = 0;
};

absl::Status CheckMessage(absl::string_view wire, const Descriptor* descriptor,
                          absl::string_view prefix, int depth, Largest& largest) {
  if (depth > kMaxDepth) return Malformed("nested too deeply");
  CodedInputStream in(reinterpret_cast<const uint8_t*>(wire.data()), static_cast<int>(wire.size()));
  while (true) {
    const uint32_t tag = in.ReadTag();
    if (tag == 0) {
      if (!in.ExpectAtEnd()) return Malformed("a field tag is malformed or zero");
      return absl::OkStatus();
    }
    const int number = WireFormatLite::GetTagFieldNumber(tag);
    const auto wire_type = WireFormatLite::GetTagWireType(tag);
    const FieldDescriptor* field = descriptor ? descriptor->FindFieldByNumber(number) : nullptr;
    switch (wire_type) {
      case WireFormatLite::WIRETYPE_LENGTH_DELIMITED: {
        uint32_t length = 0;
        if (!in.ReadVarint32(&length) || static_cast<int64_t>(length) > in.BytesUntilLimit()) {
          return Malformed(
              absl::StrCat("field ", number, " claims more bytes than the request holds"));
        }
        std::string copy;
        if (!in.ReadString(&copy, static_cast<int>(length))) {
          return Malformed(absl::StrCat("field ", number, " is truncated"));
        }
        if (field == nullptr) break;
        if (field->type() != FieldDescriptor::TYPE_MESSAGE && length > largest.bytes) {
          largest = {PathOf(prefix, field), length};
        }
        if (field->type() == FieldDescriptor::TYPE_STRING) {
          if (auto bad = FirstInvalidUtf8(copy)) {
            return absl::InvalidArgumentError(
                absl::StrCat(PathOf(prefix, field), ": is not valid UTF-8 (byte ", *bad, ")"));
          }
        } else if (field->type() == FieldDescriptor::TYPE_MESSAGE) {
          // A map entry's fields are named after the map: "data.key", "data.value".
          RETURN_IF_ERROR(
              CheckMessage(copy, field->message_type(), PathOf(prefix, field), depth + 1, largest));
        }
        // A known field with another wire type is kept as an unknown field by protobuf too.
        break;
      }
      case WireFormatLite::WIRETYPE_START_GROUP:
      case WireFormatLite::WIRETYPE_END_GROUP:
        return Malformed(absl::StrCat("field ", number, " uses a group"));
      default:  // varint, fixed64, fixed32: nothing to check but that they are whole
        if (!WireFormatLite::SkipField(&in, tag)) {
          return Malformed(absl::StrCat("field ", number, " is truncated or of an unknown type"));
        }
    }
  }
}

}  // namespace

absl::StatusOr<v1::PushRequest> ParsePushRequest(absl::string_view wire) {
  // The walk is linear and allocates one field at a time: it runs before the size check so the
  // answer can name the field that made the request too large.
  Largest largest;
  RETURN_IF_ERROR(CheckMessage(wire, v1::PushRequest::descriptor(), "", 0, largest));
  if (wire.size() > kMaxRequestBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        largest.path.empty() ? "request" : largest.path, ": the request is ", wire.size(),
        " bytes, at most ", kMaxRequestBytes,
        largest.path.empty() ? "" : absl::StrCat(" (this field holds ", largest.bytes, ")")));
  }
  v1::PushRequest request;
  if (!request.ParseFromArray(wire.data(), static_cast<int>(wire.size()))) {
    // The walk accepted what protobuf refused: a case the walk does not know (say so).
    return Malformed("is not a valid PushRequest encoding");
  }
  return request;
}

std::string PeekRequestId(absl::string_view wire) {
  CodedInputStream in(reinterpret_cast<const uint8_t*>(wire.data()), static_cast<int>(wire.size()));
  constexpr uint32_t kRequestIdTag =
      (v1::PushRequest::kRequestIdFieldNumber << 3) | WireFormatLite::WIRETYPE_LENGTH_DELIMITED;
  std::string id;
  while (const uint32_t tag = in.ReadTag()) {
    if (tag == kRequestIdTag) {
      uint32_t length = 0;
      if (!in.ReadVarint32(&length) || length > 64 ||
          !in.ReadString(&id, static_cast<int>(length))) {
        return {};
      }
      continue;  // the last occurrence wins, as in protobuf
    }
    if (!WireFormatLite::SkipField(&in, tag)) break;
  }
  return IsValidUtf8(id) ? id : std::string();
}

}  // namespace pushgate::pusher
