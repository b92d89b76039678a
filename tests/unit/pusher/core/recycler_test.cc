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

TEST(Recycler, ParsingIntoARecycledMessageReusesItsMemory) {
  Recycler<v1::PushRequest> recycler(4);
  v1::PushRequest first;
  first.set_request_id(std::string(40, 'a'));
  first.mutable_destination()->set_device_token(std::string(64, 'b'));
  const char* id_memory = first.request_id().data();
  const char* token_memory = first.destination().device_token().data();
  recycler.Give(std::move(first));
  ASSERT_EQ(recycler.size(), 1u);

  v1::PushRequest sent;
  sent.set_request_id(std::string(40, 'c'));
  sent.mutable_destination()->set_device_token(std::string(64, 'd'));
  v1::PushRequest reused = recycler.Take();
  EXPECT_EQ(recycler.size(), 0u);
  ASSERT_TRUE(reused.ParseFromString(sent.SerializeAsString()));
  EXPECT_EQ(reused.request_id(), sent.request_id());  // content is the new message's
  EXPECT_EQ(reused.destination().device_token(), sent.destination().device_token());
  EXPECT_EQ(reused.request_id().data(), id_memory);  // in the old message's strings
  EXPECT_EQ(reused.destination().device_token().data(), token_memory);
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
