// The maximum message size ([limits] max_message_size) for every message of a TCP/TLS stream.
//
// sofia-sip (1.12.11, Debian 12) forgets it on pipelined messages: when one read from a
// connection holds the end of one message and the start of the next, tport parses the rest in a
// message made by msg_next(), which copies the unparsed bytes but not the message's maximum
// size. That message's body is then allocated at the size its Content-Length claims: 2^31 or
// more trips an assertion in su_alloc (SIGABRT), 4294967295 a SIGSEGV, and anything below
// allocates up to 2 GiB per connection. Found by the live hostile test (tests/e2e/hostile).
//
// sofia is a shared library that calls msg_next through its PLT, so this definition in the
// executable interposes: it calls sofia's own and gives the new message its predecessor's
// limit (TPTAG_MAXSIZE from NTATAG_MAXSIZE). The library target forces this object into every
// executable that links it (LINKER:--undefined=msg_next in proxy/sofia/CMakeLists.txt).
#include <dlfcn.h>
#include <sofia-sip/msg.h>

extern "C" msg_t* msg_next(msg_t* msg) {
  using MsgNext = msg_t* (*)(msg_t*);
  static const auto sofia_msg_next = reinterpret_cast<MsgNext>(dlsym(RTLD_NEXT, "msg_next"));
  if (sofia_msg_next == nullptr) return nullptr;  // no next message: tport reads a fresh one
  const usize_t limit = msg_maxsize(msg, 0);      // 0: only read it
  msg_t* next = sofia_msg_next(msg);
  if (next != nullptr && limit != 0) msg_maxsize(next, limit);
  return next;
}
