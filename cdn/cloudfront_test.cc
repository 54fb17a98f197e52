#include <gtest/gtest.h>

#include "cdn/cdn.h"

namespace sitesync::cdn {
namespace {

TEST(BucketOfOriginDomain, S3OriginForms) {
  struct Case {
    std::string domain;
    std::optional<std::string> bucket;
  } cases[] = {
      {"my-site.s3.amazonaws.com", "my-site"},
      {"my-site.s3.eu-west-1.amazonaws.com", "my-site"},
      {"my-site.s3-website-us-east-1.amazonaws.com", "my-site"},
      {"my-site.s3-website.eu-central-1.amazonaws.com", "my-site"},
      {"my.dotted.site.s3.amazonaws.com", "my.dotted.site"},
      {"my.dotted.site.s3.us-west-2.amazonaws.com", "my.dotted.site"},
      {"My-Site.S3.AmazonAWS.com.", "my-site"},
      {"legacy.s3-us-west-2.amazonaws.com", "legacy"},
      {"example.com", std::nullopt},
      {"s3.amazonaws.com", std::nullopt},
      {"bucket.execute-api.us-east-1.amazonaws.com", std::nullopt},
      {"bucket.s3.example.com", std::nullopt},
  };
  for (const auto& c : cases) EXPECT_EQ(BucketOfOriginDomain(c.domain), c.bucket) << c.domain;
}

TEST(BucketOfOriginDomain, EveryPartitionFipsDualStackAndWebsite) {
  struct Case {
    std::string domain;
    std::optional<std::string> bucket;
  } cases[] = {
      // aws-cn: amazonaws.com.cn.
      {"my-site.s3.cn-north-1.amazonaws.com.cn", "my-site"},
      {"my-site.s3.cn-northwest-1.amazonaws.com.cn.", "my-site"},
      {"my.dotted.site.s3.cn-north-1.amazonaws.com.cn", "my.dotted.site"},
      {"my-site.s3-website.cn-north-1.amazonaws.com.cn", "my-site"},
      {"my-site.s3.dualstack.cn-northwest-1.amazonaws.com.cn", "my-site"},
      {"my-site.s3.amazonaws.com.cn", "my-site"},
      // aws-us-gov shares amazonaws.com.
      {"gov-site.s3.us-gov-west-1.amazonaws.com", "gov-site"},
      {"gov-site.s3-fips.us-gov-east-1.amazonaws.com", "gov-site"},
      // Dual-stack and FIPS hosts, and the website endpoints' both forms.
      {"my-site.s3.dualstack.eu-west-1.amazonaws.com", "my-site"},
      {"my.dotted.site.s3.dualstack.us-east-1.amazonaws.com", "my.dotted.site"},
      {"my-site.s3-fips.dualstack.us-east-2.amazonaws.com", "my-site"},
      {"my-site.s3-fips.us-east-2.amazonaws.com", "my-site"},
      {"my-site.s3-website-ap-southeast-2.amazonaws.com", "my-site"},
      {"my-site.s3-website.eu-west-3.amazonaws.com", "my-site"},
      {"my-site.s3-external-1.amazonaws.com", "my-site"},
      // Not S3 origins.
      {"s3.cn-north-1.amazonaws.com.cn", std::nullopt},
      {"s3.dualstack.eu-west-1.amazonaws.com", std::nullopt},
      {"my-site.s3.example.com.cn", std::nullopt},
      {"ap-123456789012.s3-accesspoint.us-east-1.amazonaws.com", std::nullopt},
      {"bucket.elb.cn-north-1.amazonaws.com.cn", std::nullopt},
      {"bucket.s3.amazonaws.co", std::nullopt},
  };
  for (const auto& c : cases) EXPECT_EQ(BucketOfOriginDomain(c.domain), c.bucket) << c.domain;
}

TEST(MatchDistribution, AutoFindsTheBucketsOriginInChina) {
  std::vector<Distribution> ds = {
      {"E1CN", "d1.cloudfront.cn", {{"site.s3.cn-north-1.amazonaws.com.cn", ""}}},
      {"E2CN", "d2.cloudfront.cn", {{"other.s3-website.cn-northwest-1.amazonaws.com.cn", ""}}},
  };
  auto m = MatchDistribution(ds, "site", "blog/");
  ASSERT_TRUE(m.has_value()) << m.error().message;
  EXPECT_EQ(m->distribution_id, "E1CN");
  EXPECT_EQ(m->url_prefix, "blog/");
  auto other = MatchDistribution(ds, "other", "");
  ASSERT_TRUE(other.has_value()) << other.error().message;
  EXPECT_EQ(other->distribution_id, "E2CN");
}

TEST(MatchDistribution, PicksTheOneForBucketAndPrefix) {
  std::vector<Distribution> ds = {
      {"E1", "d1.cloudfront.net", {{"site.s3.amazonaws.com", ""}}},
      {"E2", "d2.cloudfront.net", {{"other.s3.amazonaws.com", ""}}},
      {"E3", "d3.cloudfront.net", {{"site.s3.amazonaws.com", "/blog"}}},
      {"E4", "d4.cloudfront.net", {{"api.example.com", ""}, {"docs.s3.us-east-1.amazonaws.com", "/v2/"}}},
  };
  auto root = MatchDistribution(std::span(ds).first(2), "site", "");
  ASSERT_TRUE(root.has_value()) << root.error().message;
  EXPECT_EQ(root->distribution_id, "E1");
  EXPECT_EQ(root->url_prefix, "");

  auto blog_only = MatchDistribution(std::span(ds).subspan(2, 1), "site", "blog/");
  ASSERT_TRUE(blog_only.has_value());
  EXPECT_EQ(blog_only->distribution_id, "E3");
  EXPECT_EQ(blog_only->url_prefix, "");

  // Origin path above the prefix: the rest of the prefix is part of the URL.
  auto nested = MatchDistribution(std::span(ds).subspan(2, 1), "site", "blog/2024/");
  ASSERT_TRUE(nested.has_value());
  EXPECT_EQ(nested->url_prefix, "2024/");

  auto docs = MatchDistribution(ds, "docs", "v2/");
  ASSERT_TRUE(docs.has_value());
  EXPECT_EQ(docs->distribution_id, "E4");
}

TEST(MatchDistribution, NoneOrSeveralIsAUsageErrorNamingCandidates) {
  std::vector<Distribution> ds = {
      {"E1", "d1", {{"site.s3.amazonaws.com", ""}}},
      {"E5", "d5", {{"site.s3-website-us-east-1.amazonaws.com", ""}}},
      {"E3", "d3", {{"site.s3.amazonaws.com", "/blog"}}},
  };
  auto several = MatchDistribution(ds, "site", "blog/");
  ASSERT_FALSE(several.has_value());
  EXPECT_EQ(several.error().code, aws::ErrorCode::kUsage);
  for (const char* id : {"E1", "E5", "E3"}) EXPECT_NE(several.error().message.find(id), std::string::npos);

  auto none = MatchDistribution(std::span(ds).subspan(2, 1), "site", "");
  ASSERT_FALSE(none.has_value());
  EXPECT_NE(none.error().message.find("E3"), std::string::npos) << none.error().message;
  EXPECT_NE(none.error().message.find("--distribution ID"), std::string::npos);

  auto other = MatchDistribution(ds, "nobody", "");
  ASSERT_FALSE(other.has_value());
  EXPECT_EQ(other.error().code, aws::ErrorCode::kUsage);
}

}  // namespace
}  // namespace sitesync::cdn
