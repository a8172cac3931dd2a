#include "core/kvcomp/spec.h"

#include <gtest/gtest.h>

#include "core/kvcomp/pipeline.h"
#include "core/kvcomp/registry.h"

namespace kvcomp {
namespace {

TEST(SpecTest, ParsesChainsArgsAndKeys) {
  auto p = ParseSpec(" zstd(3) + foo(a=1, b=x+y(2)) + bar ");
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_EQ(p->size(), 3u);
  EXPECT_EQ((*p)[0].name, "zstd");
  EXPECT_EQ(SpecNode::Scalar((*p)[0].args[0]), "3");
  EXPECT_EQ((*p)[1].args[0].key, "a");
  EXPECT_EQ((*p)[1].args[1].value.size(), 2u);
  EXPECT_EQ(FormatSpec(*p), "zstd(3)+foo(a=1,b=x+y(2))+bar");
  EXPECT_EQ(FormatSpec(*ParseSpec("bounded(cos=0.9999,rel_mae=0.01)")),
            "bounded(cos=0.9999,rel_mae=0.01)");
}

TEST(SpecTest, RejectsMalformedWithOffsets) {
  for (const char* bad : {"", "zstd(", "zstd(3", "zstd)3", "+zstd", "zstd++x", "zstd(3,)",
                          "a(b(c(d(e(f(g(h(i(j(k(l(m(n(o(p(q(r))))))))))))))))))", "zs td"}) {
    auto p = ParseSpec(bad);
    EXPECT_FALSE(p.ok()) << bad;
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  auto p = ParseSpec("zstd(3]");
  EXPECT_NE(p.status().message().find("offset 6"), std::string::npos) << p.status();
}

TEST(SpecTest, UnknownCodecAndBadParamsNameTheToken) {
  auto a = Pipeline::FromSpec("nosuch(1)");
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(a.status().message().find("nosuch"), std::string::npos);
  for (const char* bad : {"zstd(99)", "zstd(x)", "zstd(3,4)", "zstd(level=3,level=4)",
                          "zstd(speed=1)", "zstd(1.5)"}) {
    auto b = Pipeline::FromSpec(bad);
    ASSERT_FALSE(b.ok()) << bad;
    EXPECT_EQ(b.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(b.status().message().find("zstd"), std::string::npos) << b.status();
  }
}

TEST(SpecTest, CanonicalSpecRoundTrips) {
  for (const StageInfo* info : {StageRegistry::Get().FindByName("zstd")}) {
    ASSERT_NE(info, nullptr);
  }
  auto p = Pipeline::FromSpec("zstd(level=-5)");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->Spec(), "zstd(-5)");
  EXPECT_EQ(Pipeline::FromSpec(p->Spec())->Spec(), "zstd(-5)");
  EXPECT_EQ(Pipeline::FromSpec("zstd")->Spec(), "zstd(3)");
}

}  // namespace
}  // namespace kvcomp
