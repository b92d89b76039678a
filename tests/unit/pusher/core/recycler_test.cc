#include "pusher/core/recycler.h"

#include <gtest/gtest.h>

#include <string>

namespace pushgate::pusher {
namespace {

TEST(Recycler, EmptyGivesAFreshMessage) {
  Recycler<v1::PushRequest> recycler(4);
  v1::PushRequest request = recycler.Take();
  EXPECT_EQ(request.ByteSizeLong(), 0u);
  EXPECT_EQ(recycler.size(), 0u);
}

// Whether this protobuf build hands memory on: built for debugging or a sanitizer it may copy
// in a move (PROTOBUF_FORCE_COPY_IN_MOVE) or free in a clear, and then only content is handed on.
bool ParsingAMovedMessageReusesItsMemory() {
  v1::PushRequest a;
  a.set_request_id(std::string(40, 'x'));
  const char* memory = a.request_id().data();
  v1::PushRequest b(std::move(a));
  v1::PushRequest next;
  next.set_request_id(std::string(40, 'y'));
  return b.ParseFromString(next.SerializeAsString()) && b.request_id().data() == memory;
}

TEST(Recycler, ParsingIntoARecycledMessageReusesItsMemory) {
  Recycler<v1::PushRequest> recycler(4);
  v1::PushRequest first;
  first.set_request_id(std::string(40, 'a'));
  first.set_call_id(std::string(30, 'b'));
  const char* id_memory = first.request_id().data();
  const char* call_id_memory = first.call_id().data();
  recycler.Give(std::move(first));
  ASSERT_EQ(recycler.size(), 1u);

  v1::PushRequest sent;
  sent.set_request_id(std::string(40, 'c'));
  sent.set_call_id(std::string(30, 'd'));
  v1::PushRequest reused = recycler.Take();
  EXPECT_EQ(recycler.size(), 0u);
  ASSERT_TRUE(reused.ParseFromString(sent.SerializeAsString()));
  EXPECT_EQ(reused.request_id(), sent.request_id());  // content is the new message's
  EXPECT_EQ(reused.call_id(), sent.call_id());
  // Top-level strings only: parsing clears first, and the generated Clear() deletes a
  // sub-message (the destination), whose strings are then allocated anew.
  if (ParsingAMovedMessageReusesItsMemory()) {
    EXPECT_EQ(reused.request_id().data(), id_memory);  // in the old message's strings
    EXPECT_EQ(reused.call_id().data(), call_id_memory);
  }
}

TEST(Recycler, KeepsAtMostItsCapacity) {
  Recycler<v1::PushResult> recycler(2);
  for (int i = 0; i < 5; ++i) recycler.Give(v1::PushResult());
  EXPECT_EQ(recycler.size(), 2u);
  recycler.Take();
  recycler.Take();
  recycler.Take();  // empty again: a fresh one
  EXPECT_EQ(recycler.size(), 0u);
}

}  // namespace
}  // namespace pushgate::pusher
