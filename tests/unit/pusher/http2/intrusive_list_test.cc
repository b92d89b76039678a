#include "pusher/http2/intrusive_list.h"

#include <memory>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pushgate::http2 {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

struct Item {
  explicit Item(int v) : value(v) {}
  int value;
  IntrusiveListNode<Item> a{this};
  IntrusiveListNode<Item> b{this};
};

std::vector<int> Values(const IntrusiveList<Item>& list) {
  std::vector<int> out;
  for (Item* i = list.front(); i != nullptr; i = list.Next(i)) out.push_back(i->value);
  return out;
}

std::vector<int> ValuesBackwards(const IntrusiveList<Item>& list) {
  std::vector<int> out;
  for (Item* i = list.back(); i != nullptr; i = list.Prev(i)) out.push_back(i->value);
  return out;
}

TEST(IntrusiveList, EmptyListHasNoEnds) {
  IntrusiveList<Item> list(&Item::a);
  EXPECT_TRUE(list.empty());
  EXPECT_EQ(list.front(), nullptr);
  EXPECT_EQ(list.back(), nullptr);
}

TEST(IntrusiveList, InsertsAtBothEndsAndBeforeAnElement) {
  IntrusiveList<Item> list(&Item::a);
  Item one(1), two(2), three(3), four(4);
  list.PushBack(&two);
  list.PushFront(&one);
  list.PushBack(&four);
  list.InsertBefore(&four, &three);
  EXPECT_THAT(Values(list), ElementsAre(1, 2, 3, 4));
  EXPECT_THAT(ValuesBackwards(list), ElementsAre(4, 3, 2, 1));
  EXPECT_TRUE(list.Contains(&three));
  list.Remove(&one);
  list.Remove(&three);
  list.Remove(&three);  // no-op when not listed
  EXPECT_FALSE(list.Contains(&three));
  EXPECT_THAT(Values(list), ElementsAre(2, 4));
  list.Remove(&two);
  list.Remove(&four);
  EXPECT_TRUE(list.empty());
}

TEST(IntrusiveList, AnElementIsInTwoListsAtOnceThroughTwoNodes) {
  IntrusiveList<Item> by_a(&Item::a), by_b(&Item::b);
  Item one(1), two(2);
  by_a.PushBack(&one);
  by_a.PushBack(&two);
  by_b.PushBack(&two);
  by_b.PushBack(&one);
  EXPECT_THAT(Values(by_a), ElementsAre(1, 2));
  EXPECT_THAT(Values(by_b), ElementsAre(2, 1));
  by_a.Remove(&two);
  EXPECT_THAT(Values(by_a), ElementsAre(1));
  EXPECT_THAT(Values(by_b), ElementsAre(2, 1));
}

TEST(IntrusiveList, DestroyedElementLeavesItsLists) {
  IntrusiveList<Item> by_a(&Item::a), by_b(&Item::b);
  Item one(1), three(3);
  {
    auto two = std::make_unique<Item>(2);
    by_a.PushBack(&one);
    by_a.PushBack(two.get());
    by_a.PushBack(&three);
    by_b.PushBack(two.get());
  }
  EXPECT_THAT(Values(by_a), ElementsAre(1, 3));
  EXPECT_THAT(Values(by_b), IsEmpty());
  EXPECT_TRUE(by_b.empty());
}

}  // namespace
}  // namespace pushgate::http2
