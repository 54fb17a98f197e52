#include <gtest/gtest.h>

#include <map>

#include "cli/cli.h"

namespace sitesync::cli {
namespace {

aws::EnvLookup NoEnv() {
  return [](std::string_view) -> std::optional<std::string> { return std::nullopt; };
}

Settings Base() {
  Settings s;
  s.command = "sync";
  s.source = ::testing::TempDir();
  s.destination = "s3://my-site/blog";
  return s;
}

TEST(Resolve, JobsGivenFixesTheCount) {
  Settings s = Base();
  s.jobs = 8;
  auto r = Resolve(s, NoEnv());
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->jobs, 8);
  EXPECT_FALSE(r->adaptive_jobs);
}

TEST(Resolve, Defaults) {
  auto r = Resolve(Base(), NoEnv());
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->jobs, 64);
  EXPECT_TRUE(r->adaptive_jobs) << "no --jobs, no jobs: the count finds its own level";
  EXPECT_EQ(r->sync.max_deletes, 256);
  EXPECT_EQ(r->sync.max_delete_fraction, 0.5);
  EXPECT_FALSE(r->sync.watching);
  EXPECT_FALSE(r->sync.delete_stale);
  EXPECT_EQ(r->sync.compare, sync::Compare::kSize);
  EXPECT_EQ(r->sync.destination.prefix, "blog/");
  EXPECT_FALSE(r->endpoint.path_style);
  EXPECT_EQ(r->endpoint.region, "us-east-1");
  EXPECT_TRUE(r->endpoint.endpoint.empty());
}

TEST(Resolve, CleanUrlsIndexDocumentAndRedirectsReachTheSync) {
  auto plain = Resolve(Base(), NoEnv());
  ASSERT_TRUE(plain.has_value());
  EXPECT_FALSE(plain->sync.filters.clean_urls);
  EXPECT_EQ(plain->sync.filters.index_document, "index.html");
  EXPECT_TRUE(plain->sync.redirects.empty());
  Settings s = Base();
  s.clean_urls = true;
  s.index_document = "default.htm";
  s.redirects = {{"/old/", "/new/", "redirects[0]"}};
  auto r = Resolve(s, NoEnv());
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_TRUE(r->sync.filters.clean_urls);
  EXPECT_EQ(r->sync.filters.index_document, "default.htm");
  ASSERT_EQ(r->sync.redirects.size(), 1u);
  EXPECT_EQ(r->sync.redirects[0].to, "/new/");
}

TEST(Resolve, CompressRulesReachTheWalkFilters) {
  Settings s = Base();
  s.compress = {{"*.html", sitemap::Encoding::kGzip}, {"*.css", sitemap::Encoding::kBrotli}};
  auto r = Resolve(s, NoEnv());
  ASSERT_TRUE(r.has_value()) << r.error().message;
  ASSERT_EQ(r->sync.filters.compress.size(), 2u);
  EXPECT_EQ(r->sync.filters.compress[0].match, "*.html");
  EXPECT_EQ(r->sync.filters.compress[0].encoding, sitemap::Encoding::kGzip);
  EXPECT_EQ(r->sync.filters.compress[1].encoding, sitemap::Encoding::kBrotli);
  EXPECT_TRUE(Resolve(Base(), NoEnv())->sync.filters.compress.empty());
}

TEST(Resolve, EndpointImpliesPathStyleUnlessSaidOtherwise) {
  Settings s = Base();
  s.endpoint = "http://127.0.0.1:5000";
  EXPECT_TRUE(Resolve(s, NoEnv())->endpoint.path_style);
  s.path_style = false;
  EXPECT_FALSE(Resolve(s, NoEnv())->endpoint.path_style);
}

aws::EnvLookup EnvOf(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

TEST(Resolve, EndpointFromTheEnvironmentLikeTheAwsCli) {
  // AWS_ENDPOINT_URL_S3 alone: used, and path-style as --endpoint is.
  auto r = Resolve(Base(), EnvOf({{"AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9000/"}}));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->endpoint.endpoint, "http://127.0.0.1:9000");
  EXPECT_TRUE(r->endpoint.path_style);
  EXPECT_EQ(r->endpoint_source, "AWS_ENDPOINT_URL_S3");
  // --endpoint beats it; --path-style false still wins over the implied path-style.
  Settings s = Base();
  s.endpoint = "http://127.0.0.1:5000";
  s.path_style = false;
  r = Resolve(s, EnvOf({{"AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9000"}, {"AWS_ENDPOINT_URL", "http://x:1"}}));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->endpoint.endpoint, "http://127.0.0.1:5000");
  EXPECT_FALSE(r->endpoint.path_style);
  // Ignored: the partition's endpoint (left empty, so that it follows the region), virtual-hosted.
  r = Resolve(Base(), EnvOf({{"AWS_ENDPOINT_URL", "http://127.0.0.1:9000"},
                             {"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"}, {"AWS_REGION", "cn-north-1"}}));
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->endpoint.endpoint.empty());
  EXPECT_FALSE(r->endpoint.path_style);
  EXPECT_EQ(r->endpoint.region, "cn-north-1");
  EXPECT_NE(r->endpoint_source.find("aws-cn"), std::string::npos) << r->endpoint_source;
  // FIPS and dual-stack reach the S3 endpoint.
  r = Resolve(Base(), EnvOf({{"AWS_USE_FIPS_ENDPOINT", "true"}, {"AWS_USE_DUALSTACK_ENDPOINT", "true"}}));
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->endpoint.fips);
  EXPECT_TRUE(r->endpoint.dualstack);
  // Config errors: FIPS with a configured endpoint; a path in the URL.
  r = Resolve(Base(), EnvOf({{"AWS_USE_FIPS_ENDPOINT", "true"}, {"AWS_ENDPOINT_URL_S3", "http://h:1"}}));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, aws::ErrorCode::kConfig);
  r = Resolve(Base(), EnvOf({{"AWS_ENDPOINT_URL_S3", "http://h:1/s3"}}));
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("AWS_ENDPOINT_URL_S3"), std::string::npos) << r.error().message;
}

TEST(ResolveCdn, EndpointAndSigningRegionFromThePartitionOrTheEnvironment) {
  Settings s = Base();
  s.distribution = "E2QWRUHAPOMQZL";
  auto c = ResolveCdn(s, EnvOf({{"AWS_REGION", "eu-west-1"}}));
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->endpoint.endpoint, "https://cloudfront.amazonaws.com");
  EXPECT_EQ(c->endpoint.region, "us-east-1");
  c = ResolveCdn(s, EnvOf({{"AWS_REGION", "cn-north-1"}}));
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->endpoint.endpoint, "https://cloudfront.cn-northwest-1.amazonaws.com.cn");
  EXPECT_EQ(c->endpoint.region, "cn-northwest-1");
  c = ResolveCdn(s, EnvOf({{"AWS_REGION", "cn-north-1"}, {"AWS_ENDPOINT_URL_CLOUDFRONT", "http://127.0.0.1:5000"},
                           {"AWS_ENDPOINT_URL", "http://127.0.0.1:9"}}));
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->endpoint.endpoint, "http://127.0.0.1:5000");
  EXPECT_EQ(c->endpoint.region, "cn-northwest-1");
  EXPECT_EQ(c->endpoint_source, "AWS_ENDPOINT_URL_CLOUDFRONT");
  s.cloudfront_endpoint = "http://127.0.0.1:5001";
  c = ResolveCdn(s, EnvOf({{"AWS_ENDPOINT_URL_CLOUDFRONT", "http://127.0.0.1:5000"}}));
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->endpoint.endpoint, "http://127.0.0.1:5001");
  s.cloudfront_endpoint.reset();
  // GovCloud has no CloudFront: a config error when invalidating, nothing when not.
  c = ResolveCdn(s, EnvOf({{"AWS_REGION", "us-gov-west-1"}}));
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().code, aws::ErrorCode::kConfig);
  EXPECT_NE(c.error().message.find("--cloudfront-endpoint"), std::string::npos) << c.error().message;
  s.invalidate = false;
  EXPECT_TRUE(ResolveCdn(s, EnvOf({{"AWS_REGION", "us-gov-west-1"}})).has_value());
}

TEST(Resolve, UsageErrors) {
  struct Case {
    std::function<void(Settings&)> edit;
    std::string words;
  } cases[] = {
      {[](Settings& s) { s.source.reset(); }, "no SOURCE"},
      {[](Settings& s) { s.source = "/nonexistent/public"; }, "does not exist"},
      {[](Settings& s) { s.source = "/etc/hostname"; }, "is not a directory"},
      {[](Settings& s) { s.destination.reset(); }, "no DEST"},
      {[](Settings& s) { s.destination = "http://x"; }, "s3://BUCKET"},
      {[](Settings& s) { s.compare = "mtime"; }, "size or checksum"},
      {[](Settings& s) { s.jobs = 0; }, "1 to 1024"},
      {[](Settings& s) { s.max_deletes = -2; }, "-1 for no limit"},
      {[](Settings& s) { s.max_delete_fraction = 1.01; }, "bad max_delete_fraction"},
      {[](Settings& s) { s.max_delete_fraction = -0.5; }, "from 0 to 1"},
      {[](Settings& s) { s.endpoint = "127.0.0.1:9000"; }, "bad endpoint"},
  };
  for (const auto& c : cases) {
    Settings s = Base();
    c.edit(s);
    auto r = Resolve(s, NoEnv());
    ASSERT_FALSE(r.has_value()) << c.words;
    EXPECT_TRUE(r.error().code == aws::ErrorCode::kUsage || r.error().code == aws::ErrorCode::kInput);
    EXPECT_NE(r.error().message.find(c.words), std::string::npos) << r.error().message;
  }
}

TEST(ParseCommandLine, SubcommandsAndFlags) {
  const char* argv[] = {"sitesync", "sync", "public", "s3://b12/x", "--delete", "--max-deletes", "-1",
                        "--exclude", "*.map", "--exclude", "drafts/**", "--json", "--jobs", "8"};
  auto p = ParseCommandLine(static_cast<int>(std::size(argv)), argv);
  ASSERT_FALSE(p.exit_now.has_value());
  EXPECT_EQ(p.settings.command, "sync");
  EXPECT_EQ(*p.settings.source, "public");
  EXPECT_EQ(*p.settings.destination, "s3://b12/x");
  EXPECT_TRUE(*p.settings.delete_stale);
  EXPECT_EQ(*p.settings.max_deletes, -1);
  EXPECT_EQ(p.settings.exclude, (std::vector<std::string>{"*.map", "drafts/**"}));
  EXPECT_TRUE(p.settings.json);
  EXPECT_EQ(*p.settings.jobs, 8);

  const char* fraction[] = {"sitesync", "watch", "public", "s3://b12", "--max-delete-fraction", "0.25"};
  auto f = ParseCommandLine(6, fraction);
  ASSERT_FALSE(f.exit_now.has_value());
  EXPECT_EQ(f.settings.max_delete_fraction, std::optional<double>(0.25));

  const char* plan[] = {"sitesync", "plan", "public", "s3://b12"};
  auto q = ParseCommandLine(4, plan);
  ASSERT_FALSE(q.exit_now.has_value());
  EXPECT_EQ(q.settings.command, "plan");
  EXPECT_TRUE(q.settings.dry_run);
}

TEST(ParseCommandLine, UsageErrorsExitTwo) {
  const char* unknown[] = {"sitesync", "sync", "--bogus"};
  EXPECT_EQ(ParseCommandLine(3, unknown).exit_now, std::optional<int>(kExitUsage));
  const char* none[] = {"sitesync"};
  EXPECT_EQ(ParseCommandLine(1, none).exit_now, std::optional<int>(kExitUsage));
  const char* both[] = {"sitesync", "sync", "--delete", "--no-delete"};
  EXPECT_EQ(ParseCommandLine(4, both).exit_now, std::optional<int>(kExitUsage));
  const char* compare[] = {"sitesync", "sync", "--compare", "mtime"};
  EXPECT_EQ(ParseCommandLine(4, compare).exit_now, std::optional<int>(kExitUsage));
}

}  // namespace
}  // namespace sitesync::cli
