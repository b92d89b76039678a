#include "proxy/core/domain_policy.h"

#include "gtest/gtest.h"

namespace pushgate::proxy {
namespace {

TEST(DomainPolicyTest, StarAllowsEverything) {
  DomainPolicy all = DomainPolicy::AllowAll();
  EXPECT_TRUE(all.allow_all());
  EXPECT_TRUE(all.Allowed("anything.example"));
  EXPECT_TRUE(DomainPolicy({"example.org", "*"}).Allowed("other.net"));
}

TEST(DomainPolicyTest, ExactAndSubdomainEntries) {
  DomainPolicy p({"Example.ORG", "*.voip.example.net."});
  EXPECT_FALSE(p.allow_all());
  EXPECT_TRUE(p.Allowed("example.org"));
  EXPECT_TRUE(p.Allowed("EXAMPLE.org."));
  EXPECT_FALSE(p.Allowed("sub.example.org"));
  EXPECT_FALSE(p.Allowed("badexample.org"));
  EXPECT_TRUE(p.Allowed("a.voip.example.net"));
  EXPECT_FALSE(p.Allowed("voip.example.net"));
  EXPECT_FALSE(p.Allowed("evilvoip.example.net"));
  EXPECT_FALSE(p.Allowed(""));
}

TEST(DomainPolicyTest, EmptyListAllowsNothing) {
  DomainPolicy none({});
  EXPECT_FALSE(none.Allowed("example.org"));
}

}  // namespace
}  // namespace pushgate::proxy
