// Endpoint resolution as tables: partitions, each service's partition endpoint and signing region with FIPS and
// dual-stack, and the precedence of the configured URLs (explicit > AWS_ENDPOINT_URL_<SERVICE> > AWS_ENDPOINT_URL >
// the profile's services section > the profile's endpoint_url > the partition), with an injected environment and
// a config file in a temp dir.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "aws/aws.h"

namespace sitesync::aws {
namespace {

namespace fs = std::filesystem;

TEST(PartitionOf, RegionsAndRegexes) {
  struct Case {
    std::string region;
    std::string partition;
  } cases[] = {
      {"us-east-1", "aws"},          {"eu-central-2", "aws"},      {"ap-southeast-7", "aws"},
      {"mx-central-1", "aws"},       {"il-central-1", "aws"},      {"cn-north-1", "aws-cn"},
      {"cn-northwest-1", "aws-cn"},  {"cn-south-9", "aws-cn"},     {"us-gov-west-1", "aws-us-gov"},
      {"us-gov-east-1", "aws-us-gov"}, {"us-gov-north-3", "aws-us-gov"}, {"aws-global", "aws"},
      {"aws-cn-global", "aws-cn"},   {"aws-us-gov-global", "aws-us-gov"},
      // Not of the regex's shape: the SDKs fall back to aws.
      {"cn-north", "aws"},           {"us-gov-west", "aws"},       {"moto", "aws"},
      {"", "aws"},
  };
  for (const auto& c : cases) EXPECT_EQ(PartitionOf(c.region).id, c.partition) << c.region;
  EXPECT_EQ(PartitionOf("cn-north-1").dns_suffix, "amazonaws.com.cn");
  EXPECT_EQ(PartitionOf("us-gov-west-1").dns_suffix, "amazonaws.com");
}

TEST(PartitionEndpoint, EveryServicePartitionFipsAndDualStack) {
  using S = EndpointService;
  struct Case {
    S service;
    std::string region;
    bool fips;
    bool dualstack;
    std::string url;
    std::string signing_region;
  } cases[] = {
      // S3 (endpoint-rule-set-1.json: s3[-fips][.dualstack].REGION.dnsSuffix in every partition).
      {S::kS3, "us-east-1", false, false, "https://s3.us-east-1.amazonaws.com", "us-east-1"},
      {S::kS3, "eu-west-1", true, false, "https://s3-fips.eu-west-1.amazonaws.com", "eu-west-1"},
      {S::kS3, "eu-west-1", false, true, "https://s3.dualstack.eu-west-1.amazonaws.com", "eu-west-1"},
      {S::kS3, "us-east-2", true, true, "https://s3-fips.dualstack.us-east-2.amazonaws.com", "us-east-2"},
      {S::kS3, "cn-north-1", false, false, "https://s3.cn-north-1.amazonaws.com.cn", "cn-north-1"},
      {S::kS3, "cn-northwest-1", false, true, "https://s3.dualstack.cn-northwest-1.amazonaws.com.cn",
       "cn-northwest-1"},
      {S::kS3, "us-gov-west-1", false, false, "https://s3.us-gov-west-1.amazonaws.com", "us-gov-west-1"},
      {S::kS3, "us-gov-east-1", true, false, "https://s3-fips.us-gov-east-1.amazonaws.com", "us-gov-east-1"},
      {S::kS3, "us-gov-west-1", true, true, "https://s3-fips.dualstack.us-gov-west-1.amazonaws.com",
       "us-gov-west-1"},
      // CloudFront: global, signed for the partition's implicit global region.
      {S::kCloudFront, "eu-west-1", false, false, "https://cloudfront.amazonaws.com", "us-east-1"},
      {S::kCloudFront, "us-west-2", true, false, "https://cloudfront-fips.amazonaws.com", "us-east-1"},
      {S::kCloudFront, "us-west-2", false, true, "https://cloudfront.global.api.aws", "us-east-1"},
      {S::kCloudFront, "us-west-2", true, true, "https://cloudfront-fips.global.api.aws", "us-east-1"},
      {S::kCloudFront, "cn-north-1", false, false, "https://cloudfront.cn-northwest-1.amazonaws.com.cn",
       "cn-northwest-1"},
      {S::kCloudFront, "cn-northwest-1", true, false, "https://cloudfront-fips.cn-northwest-1.amazonaws.com.cn",
       "cn-northwest-1"},
      {S::kCloudFront, "cn-north-1", false, true, "https://cloudfront.api.amazonwebservices.com.cn",
       "cn-northwest-1"},
      // STS: regional; in GovCloud the FIPS host is the regular one.
      {S::kSts, "eu-west-1", false, false, "https://sts.eu-west-1.amazonaws.com", "eu-west-1"},
      {S::kSts, "us-east-1", true, false, "https://sts-fips.us-east-1.amazonaws.com", "us-east-1"},
      {S::kSts, "us-east-1", false, true, "https://sts.us-east-1.api.aws", "us-east-1"},
      {S::kSts, "us-east-1", true, true, "https://sts-fips.us-east-1.api.aws", "us-east-1"},
      {S::kSts, "cn-north-1", false, false, "https://sts.cn-north-1.amazonaws.com.cn", "cn-north-1"},
      {S::kSts, "us-gov-west-1", false, false, "https://sts.us-gov-west-1.amazonaws.com", "us-gov-west-1"},
      {S::kSts, "us-gov-west-1", true, false, "https://sts.us-gov-west-1.amazonaws.com", "us-gov-west-1"},
      // The IAM Identity Center portal.
      {S::kSso, "eu-central-1", false, false, "https://portal.sso.eu-central-1.amazonaws.com", "eu-central-1"},
      {S::kSso, "us-east-1", true, false, "https://portal.sso-fips.us-east-1.amazonaws.com", "us-east-1"},
      {S::kSso, "cn-northwest-1", false, false, "https://portal.sso.cn-northwest-1.amazonaws.com.cn",
       "cn-northwest-1"},
      {S::kSso, "us-gov-east-1", true, false, "https://portal.sso.us-gov-east-1.amazonaws.com", "us-gov-east-1"},
  };
  for (const auto& c : cases) {
    auto e = PartitionEndpoint(c.service, c.region, c.fips, c.dualstack);
    ASSERT_TRUE(e.has_value()) << c.url << ": " << e.error().message;
    EXPECT_EQ(e->url, c.url) << c.region << " fips=" << c.fips << " dualstack=" << c.dualstack;
    EXPECT_EQ(e->signing_region, c.signing_region) << c.url;
    EXPECT_FALSE(e->configured);
    EXPECT_NE(e->source.find(PartitionOf(c.region).id), std::string::npos) << e->source;
  }
}

TEST(PartitionEndpoint, CloudFrontInGovCloudIsAClearConfigError) {
  for (const char* region : {"us-gov-west-1", "us-gov-east-1"}) {
    auto e = PartitionEndpoint(EndpointService::kCloudFront, region, false, false);
    ASSERT_FALSE(e.has_value()) << e->url;
    EXPECT_EQ(e.error().code, ErrorCode::kConfig);
    for (const char* words : {"aws-us-gov", region, "--cloudfront-endpoint", "cdn.invalidate"}) {
      EXPECT_NE(e.error().message.find(words), std::string::npos) << e.error().message;
    }
  }
}

TEST(CheckEndpointUrl, NormalizesAndRefusesWhatCannotBeSigned) {
  EXPECT_EQ(CheckEndpointUrl("http://127.0.0.1:5000", "--endpoint", true).value(), "http://127.0.0.1:5000");
  EXPECT_EQ(CheckEndpointUrl("HTTPS://minio.example.com/", "--endpoint", true).value(), "https://minio.example.com");
  EXPECT_EQ(CheckEndpointUrl("https://[::1]:9000//", "x", true).value(), "https://[::1]:9000");
  struct Case {
    std::string url;
    std::string words;
  } cases[] = {
      {"127.0.0.1:9000", "https://host"},       {"ftp://host", "http:// or https://"},
      {"https://", "no host"},                  {"http://:9000", "no host"},
      {"http://key:secret@host", "user info"},  {"http://host/s3", "path"},
      {"http://host/s3/", "'/s3'"},             {"http://host?x=1", "query"},
      {"http://host/#frag", "query or fragment"},
  };
  for (const auto& c : cases) {
    auto cli = CheckEndpointUrl(c.url, "--endpoint", true);
    ASSERT_FALSE(cli.has_value()) << c.url;
    EXPECT_EQ(cli.error().code, ErrorCode::kUsage);
    EXPECT_NE(cli.error().message.find(c.words), std::string::npos) << cli.error().message;
    EXPECT_NE(cli.error().message.find("--endpoint"), std::string::npos) << cli.error().message;
    auto env = CheckEndpointUrl(c.url, "AWS_ENDPOINT_URL_S3", false);
    ASSERT_FALSE(env.has_value());
    EXPECT_EQ(env.error().code, ErrorCode::kConfig);
    EXPECT_NE(env.error().message.find("AWS_ENDPOINT_URL_S3"), std::string::npos);
  }
}

class EndpointSettingsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "sitesync-endpoints-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    vars_["HOME"] = dir_.string();
    vars_["AWS_CONFIG_FILE"] = (dir_ / "config").string();
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  void Config(const std::string& text) { std::ofstream(dir_ / "config", std::ios::binary) << text; }
  EnvLookup Env() const {
    return [vars = vars_](std::string_view name) -> std::optional<std::string> {
      auto it = vars.find(std::string(name));
      if (it == vars.end()) return std::nullopt;
      return it->second;
    };
  }
  Result<EndpointSettings> Load(std::string_view profile = "default") {
    auto shared = LoadSharedConfig(Env());
    if (!shared) return std::unexpected(shared.error());
    return LoadEndpointSettings(Env(), *shared, profile);
  }
  std::string Url(const EndpointSettings& s, EndpointService service, std::string_view region = "eu-west-1",
                  std::optional<ConfiguredUrl> explicit_url = std::nullopt) {
    auto e = ResolveEndpoint(s, service, region, explicit_url);
    return e ? e->url : "error: " + e.error().message;
  }

  fs::path dir_;
  std::map<std::string, std::string> vars_;
};

constexpr std::string_view kEveryLayer =
    "[default]\n"
    "region = eu-west-1\n"
    "endpoint_url = http://profile-global:1\n"
    "services = local\n"
    "[services local]\n"
    "s3 =\n"
    "  endpoint_url = http://services-s3:2\n"
    "cloudfront =\n"
    "  endpoint_url = http://services-cloudfront:3\n"
    "sts =\n"
    "  endpoint_url = http://services-sts:4\n"
    "sso =\n"
    "  endpoint_url = http://services-sso:5\n";

TEST_F(EndpointSettingsTest, EachSourceBeatsTheNextForEveryService) {
  using S = EndpointService;
  Config(std::string(kEveryLayer));
  struct Svc {
    S service;
    std::string env;
    std::string from_services;
  } services[] = {{S::kS3, "AWS_ENDPOINT_URL_S3", "http://services-s3:2"},
                  {S::kCloudFront, "AWS_ENDPOINT_URL_CLOUDFRONT", "http://services-cloudfront:3"},
                  {S::kSts, "AWS_ENDPOINT_URL_STS", "http://services-sts:4"},
                  {S::kSso, "AWS_ENDPOINT_URL_SSO", "http://services-sso:5"}};
  for (const auto& svc : services) {
    vars_["AWS_ENDPOINT_URL"] = "http://env-global:6";
    vars_[svc.env] = "http://env-service:7/";
    auto s = Load();
    ASSERT_TRUE(s.has_value()) << s.error().message;
    // The explicit option beats everything, the service's variable the global one, and so on down.
    EXPECT_EQ(Url(*s, svc.service, "eu-west-1", ConfiguredUrl{"http://explicit:8", "--endpoint"}), "http://explicit:8");
    EXPECT_EQ(Url(*s, svc.service), "http://env-service:7") << svc.env;
    auto e = ResolveEndpoint(*s, svc.service, "eu-west-1", std::nullopt);
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->source, svc.env);
    EXPECT_TRUE(e->configured);
    vars_.erase(svc.env);
    s = Load();
    EXPECT_EQ(Url(*s, svc.service), "http://env-global:6");
    vars_.erase("AWS_ENDPOINT_URL");
    s = Load();
    EXPECT_EQ(Url(*s, svc.service), svc.from_services);
    e = ResolveEndpoint(*s, svc.service, "eu-west-1", std::nullopt);
    EXPECT_NE(e->source.find("[services local]"), std::string::npos) << e->source;
    EXPECT_NE(e->source.find("line"), std::string::npos) << e->source;
  }
  // Without the services section the profile's endpoint_url is next.
  Config("[default]\nendpoint_url = http://profile-global:1\n");
  auto s = Load();
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(Url(*s, EndpointService::kS3), "http://profile-global:1");
  EXPECT_NE(ResolveEndpoint(*s, EndpointService::kS3, "eu-west-1", std::nullopt)->source.find("endpoint_url in profile "
                                                                                               "default"),
            std::string::npos);
  // And without anything, the partition.
  Config("[default]\nregion = cn-north-1\n");
  s = Load();
  EXPECT_EQ(Url(*s, EndpointService::kS3, "cn-north-1"), "https://s3.cn-north-1.amazonaws.com.cn");
  EXPECT_FALSE(ResolveEndpoint(*s, EndpointService::kS3, "cn-north-1", std::nullopt)->configured);
}

TEST_F(EndpointSettingsTest, ServicesOfAnotherServiceDoNotApply) {
  Config("[default]\nservices = only-s3\n[services only-s3]\ns3 =\n  endpoint_url = http://s3-only:9\n");
  auto s = Load();
  ASSERT_TRUE(s.has_value()) << s.error().message;
  EXPECT_EQ(Url(*s, EndpointService::kS3), "http://s3-only:9");
  EXPECT_EQ(Url(*s, EndpointService::kCloudFront), "https://cloudfront.amazonaws.com");
  EXPECT_EQ(Url(*s, EndpointService::kSts), "https://sts.eu-west-1.amazonaws.com");
}

TEST_F(EndpointSettingsTest, TheProfileInUseIsRead) {
  Config(std::string(kEveryLayer) + "[profile other]\nregion = us-west-2\n");
  auto other = Load("other");
  ASSERT_TRUE(other.has_value());
  EXPECT_EQ(Url(*other, EndpointService::kS3), "https://s3.eu-west-1.amazonaws.com");
  auto def = Load("default");
  EXPECT_EQ(Url(*def, EndpointService::kS3), "http://services-s3:2");
  auto missing = Load("nosuchprofile");  // no section: only the environment counts
  ASSERT_TRUE(missing.has_value());
  EXPECT_EQ(Url(*missing, EndpointService::kS3), "https://s3.eu-west-1.amazonaws.com");
}

TEST_F(EndpointSettingsTest, IgnoreConfiguredUrlsSkipsEnvironmentAndConfigButNotTheExplicitOne) {
  Config(std::string(kEveryLayer));
  vars_["AWS_ENDPOINT_URL_S3"] = "http://env-s3:1";
  vars_["AWS_ENDPOINT_URL"] = "http://env-global:2";
  vars_["AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"] = "TRUE";
  auto s = Load();
  ASSERT_TRUE(s.has_value());
  EXPECT_TRUE(s->ignore_configured_urls);
  EXPECT_EQ(Url(*s, EndpointService::kS3), "https://s3.eu-west-1.amazonaws.com");
  EXPECT_EQ(Url(*s, EndpointService::kCloudFront), "https://cloudfront.amazonaws.com");
  EXPECT_EQ(Url(*s, EndpointService::kS3, "eu-west-1", ConfiguredUrl{"http://explicit:3", "--endpoint"}),
            "http://explicit:3");
  // The profile's setting too; the environment's false beats the profile's true.
  vars_.erase("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
  Config(std::string(kEveryLayer) + "ignore_configured_endpoint_urls = true\n");  // lands in [services local]
  s = Load();
  EXPECT_FALSE(s->ignore_configured_urls);
  Config("[default]\nignore_configured_endpoint_urls = true\nendpoint_url = http://profile:4\n");
  s = Load();
  EXPECT_TRUE(s->ignore_configured_urls);
  EXPECT_EQ(Url(*s, EndpointService::kS3), "https://s3.eu-west-1.amazonaws.com");
  vars_["AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"] = "false";
  s = Load();
  EXPECT_FALSE(s->ignore_configured_urls);
  EXPECT_EQ(Url(*s, EndpointService::kS3), "http://env-s3:1");
}

TEST_F(EndpointSettingsTest, FipsAndDualStackFromEnvironmentThenProfile) {
  Config("[default]\nuse_fips_endpoint = true\nuse_dualstack_endpoint = True\n");
  auto s = Load();
  ASSERT_TRUE(s.has_value()) << s.error().message;
  EXPECT_TRUE(s->use_fips);
  EXPECT_TRUE(s->use_dualstack);
  EXPECT_EQ(Url(*s, EndpointService::kS3, "us-east-2"), "https://s3-fips.dualstack.us-east-2.amazonaws.com");
  vars_["AWS_USE_FIPS_ENDPOINT"] = "false";
  s = Load();
  EXPECT_FALSE(s->use_fips);
  EXPECT_EQ(Url(*s, EndpointService::kS3, "us-east-2"), "https://s3.dualstack.us-east-2.amazonaws.com");
  vars_["AWS_USE_DUALSTACK_ENDPOINT"] = "false";
  vars_["AWS_USE_FIPS_ENDPOINT"] = "true";
  s = Load();
  EXPECT_EQ(Url(*s, EndpointService::kS3, "us-gov-west-1"), "https://s3-fips.us-gov-west-1.amazonaws.com");
  EXPECT_EQ(Url(*s, EndpointService::kSts, "us-gov-west-1"), "https://sts.us-gov-west-1.amazonaws.com");
}

TEST_F(EndpointSettingsTest, ConfiguredUrlWithFipsOrDualStackIsRefusedAsTheSdksDo) {
  vars_["AWS_ENDPOINT_URL_S3"] = "http://127.0.0.1:9000";
  vars_["AWS_USE_FIPS_ENDPOINT"] = "true";
  auto s = Load();
  ASSERT_TRUE(s.has_value());
  auto e = ResolveEndpoint(*s, EndpointService::kS3, "us-east-1", std::nullopt);
  ASSERT_FALSE(e.has_value());
  EXPECT_EQ(e.error().code, ErrorCode::kConfig);
  for (const char* words : {"AWS_ENDPOINT_URL_S3", "FIPS", "http://127.0.0.1:9000"}) {
    EXPECT_NE(e.error().message.find(words), std::string::npos) << e.error().message;
  }
  // The chain's STS function still answers (the run checks ResolveEndpoint(kSts) first to report the conflict).
  vars_["AWS_ENDPOINT_URL_STS"] = "http://127.0.0.1:9001";
  s = Load();
  EXPECT_EQ(StsEndpoints(*s)("eu-west-1").endpoint, "http://127.0.0.1:9001");
  vars_.erase("AWS_USE_FIPS_ENDPOINT");
  vars_["AWS_USE_DUALSTACK_ENDPOINT"] = "true";
  s = Load();
  e = ResolveEndpoint(*s, EndpointService::kCloudFront, "us-east-1",
                      ConfiguredUrl{"http://127.0.0.1:5000", "--cloudfront-endpoint"});
  ASSERT_FALSE(e.has_value());
  EXPECT_NE(e.error().message.find("dual-stack"), std::string::npos) << e.error().message;
}

TEST_F(EndpointSettingsTest, ConfiguredCloudFrontIsSignedForThePartitionsGlobalRegion) {
  vars_["AWS_ENDPOINT_URL_CLOUDFRONT"] = "http://127.0.0.1:5000";
  auto s = Load();
  ASSERT_TRUE(s.has_value());
  struct Case {
    std::string region;
    std::string signing;
  } cases[] = {{"eu-west-1", "us-east-1"}, {"cn-north-1", "cn-northwest-1"}, {"us-gov-west-1", "us-east-1"}};
  for (const auto& c : cases) {
    auto e = ResolveEndpoint(*s, EndpointService::kCloudFront, c.region, std::nullopt);
    ASSERT_TRUE(e.has_value()) << e.error().message;
    EXPECT_EQ(e->url, "http://127.0.0.1:5000");
    EXPECT_EQ(e->signing_region, c.signing) << c.region;
  }
  // S3, STS and SSO are signed for the region asked.
  vars_["AWS_ENDPOINT_URL"] = "http://127.0.0.1:5001";
  s = Load();
  EXPECT_EQ(ResolveEndpoint(*s, EndpointService::kS3, "cn-north-1", std::nullopt)->signing_region, "cn-north-1");
  const StsTarget sts = StsEndpoints(*s)("ap-south-1");
  EXPECT_EQ(sts.endpoint, "http://127.0.0.1:5001");
  EXPECT_EQ(sts.region, "ap-south-1");
  EXPECT_EQ(SsoEndpoints(*s)("eu-north-1"), "http://127.0.0.1:5001");
  vars_.erase("AWS_ENDPOINT_URL");
  s = Load();
  EXPECT_EQ(StsEndpoints(*s)("cn-north-1").endpoint, "https://sts.cn-north-1.amazonaws.com.cn");
  EXPECT_EQ(SsoEndpoints(*s)("us-gov-west-1"), "https://portal.sso.us-gov-west-1.amazonaws.com");
}

TEST_F(EndpointSettingsTest, BadSettingsAreConfigErrorsNamingThem) {
  struct Case {
    std::map<std::string, std::string> env;
    std::string config;
    std::vector<std::string> words;
  } cases[] = {
      {{{"AWS_USE_FIPS_ENDPOINT", "1"}}, "", {"AWS_USE_FIPS_ENDPOINT", "true or false"}},
      {{{"AWS_ENDPOINT_URL_S3", "localhost:9000"}}, "", {"AWS_ENDPOINT_URL_S3", "localhost:9000"}},
      {{{"AWS_ENDPOINT_URL", "http://host/prefix"}}, "", {"AWS_ENDPOINT_URL", "path"}},
      {{}, "[default]\nuse_dualstack_endpoint = yes\n", {"use_dualstack_endpoint", "line 2"}},
      {{}, "[default]\nservices = nowhere\n", {"services = nowhere", "[services nowhere]", "line 2"}},
      {{}, "[default]\nendpoint_url = s3.local\n", {"endpoint_url in profile default", "line 2"}},
      {{}, "[default]\nservices = x\n[services x]\ncloudfront =\n  endpoint_url = ftp://x\n",
       {"cloudfront.endpoint_url in [services x]", "line 5"}},
      {{}, "[default]\ns3 =\n  addressing_style = sideways\n", {"addressing_style", "sideways"}},
  };
  for (const auto& c : cases) {
    for (const auto& [k, v] : c.env) vars_[k] = v;
    Config(c.config);
    auto s = Load();
    ASSERT_FALSE(s.has_value()) << c.words[0];
    EXPECT_EQ(s.error().code, ErrorCode::kConfig);
    for (const std::string& w : c.words) EXPECT_NE(s.error().message.find(w), std::string::npos) << s.error().message;
    for (const auto& [k, v] : c.env) vars_.erase(k);
  }
}

TEST_F(EndpointSettingsTest, AddressingStyleFromTheProfile) {
  Config("[default]\ns3 =\n  addressing_style = path\n");
  EXPECT_EQ(Load()->s3_path_style, std::optional<bool>(true));
  Config("[default]\ns3 =\n  addressing_style = virtual\n");
  EXPECT_EQ(Load()->s3_path_style, std::optional<bool>(false));
  Config("[default]\ns3 =\n  addressing_style = auto\n");
  EXPECT_EQ(Load()->s3_path_style, std::nullopt);
}

}  // namespace
}  // namespace sitesync::aws
