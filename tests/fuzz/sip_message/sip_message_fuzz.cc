// libFuzzer harness: a whole SIP message through what the proxy applies to untrusted bytes:
// sofia's parser (as the agent's transport does), the validation facts and rules
// (proxy/sofia/message_facts, proxy/core/message_check), the request classifier
// (proxy/core/request_route), and, for a message that passes, the copy and serialization a relay
// performs (where duplicated single-instance headers used to abort in msg_serialize).
#include <sofia-sip/msg.h>
#include <sofia-sip/msg_buffer.h>
#include <sofia-sip/msg_header.h>
#include <sofia-sip/sip.h>
#include <sofia-sip/sip_header.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "proxy/core/message_check.h"
#include "proxy/core/request_route.h"
#include "proxy/sofia/message_class.h"
#include "proxy/sofia/message_facts.h"

namespace {

using pushgate::proxy::CheckResult;
using pushgate::proxy::Classify;
using pushgate::proxy::MethodOf;
using pushgate::proxy::RequestFacts;

void Run(const uint8_t* data, size_t size, bool datagram) {
  msg_t* msg = msg_create(pushgate::proxy::sofia::ProxyMessageClass(), MSG_FLG_EXTRACT_COPY);
  if (msg == nullptr) return;
  void* buf = msg_buf_alloc(msg, size + 1);
  if (buf == nullptr) {
    msg_destroy(msg);
    return;
  }
  if (size > 0) std::memcpy(buf, data, size);
  msg_buf_commit(msg, size, 1);  // 1: end of stream, as one datagram
  if (msg_extract(msg) > 0) {
    sip_t* sip = sip_object(msg);
    CheckResult check = pushgate::proxy::sofia::CheckSofiaMessage(msg, datagram);
    if (check.ok && sip != nullptr && sip->sip_request != nullptr) {
      RequestFacts facts;
      const char* name = sip->sip_request->rq_method_name;
      facts.method = MethodOf(name != nullptr ? name : "");
      if (sip->sip_max_forwards != nullptr) {
        facts.max_forwards = static_cast<uint32_t>(sip->sip_max_forwards->mf_count);
      }
      facts.has_backend = true;
      (void)Classify(facts);
    }
    if (check.ok) {
      // What every relay does with a message that passed: copy and serialize it.
      if (msg_t* copy = msg_copy(msg)) {
        msg_serialize(copy, reinterpret_cast<msg_pub_t*>(sip_object(copy)));
        msg_destroy(copy);
      }
    }
  }
  msg_destroy(msg);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The first byte picks the transport (UDP: Content-Length is checked against the body).
  if (size == 0) return 0;
  Run(data + 1, size - 1, (data[0] & 1) != 0);
  return 0;
}
