// CredentialChainSettings: what cli/ hands the credential chain (the explicit profile, the run's region, the STS
// and SSO endpoints from the environment, and no MFA prompt without a terminal).
#include <gtest/gtest.h>
#include <unistd.h>

#include <map>

#include "cli/commands.h"

namespace sitesync::cli {
namespace {

aws::EnvLookup Env(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

TEST(CredentialChainSettings, ProfileOnlyWhenGivenExplicitly) {
  Settings s;
  EXPECT_EQ(CredentialChainSettings(s, Env({{"AWS_PROFILE", "envprofile"}}), "eu-west-1").profile, "");
  s.profile = "site";
  aws::CredentialChainOptions o = CredentialChainSettings(s, Env({}), "eu-west-1");
  EXPECT_EQ(o.profile, "site");
  EXPECT_EQ(o.region, "eu-west-1");
}

TEST(CredentialChainSettings, StsEndpointFromTheEnvironmentThenRegional) {
  Settings s;
  aws::StsTarget plain = CredentialChainSettings(s, Env({}), "eu-west-1").sts("eu-west-1");
  EXPECT_EQ(plain.endpoint, "https://sts.eu-west-1.amazonaws.com");
  EXPECT_EQ(plain.region, "eu-west-1");

  aws::StsTarget general =
      CredentialChainSettings(s, Env({{"AWS_ENDPOINT_URL", "http://127.0.0.1:9000/"}}), "us-east-2").sts("us-east-2");
  EXPECT_EQ(general.endpoint, "http://127.0.0.1:9000");
  EXPECT_EQ(general.region, "us-east-2");

  aws::StsTarget specific = CredentialChainSettings(s, Env({{"AWS_ENDPOINT_URL", "http://general:1"},
                                                            {"AWS_ENDPOINT_URL_STS", "http://sts-only:2"}}),
                                                    "us-east-2")
                                .sts("us-east-2");
  EXPECT_EQ(specific.endpoint, "http://sts-only:2");

  aws::StsTarget ignored =
      CredentialChainSettings(s, Env({{"AWS_ENDPOINT_URL_STS", "http://sts-only:2"},
                                      {"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "TRUE"}}),
                              "ap-south-1")
          .sts("ap-south-1");
  EXPECT_EQ(ignored.endpoint, "https://sts.ap-south-1.amazonaws.com");
}

TEST(CredentialChainSettings, SsoPortalEndpoint) {
  Settings s;
  EXPECT_EQ(CredentialChainSettings(s, Env({}), "us-east-1").sso_endpoint("eu-central-1"),
            "https://portal.sso.eu-central-1.amazonaws.com");
  EXPECT_EQ(CredentialChainSettings(s, Env({{"AWS_ENDPOINT_URL_SSO", "http://127.0.0.1:7"}}), "us-east-1")
                .sso_endpoint("eu-central-1"),
            "http://127.0.0.1:7");
}

TEST(CredentialChainSettings, NoMfaPromptWithoutATerminal) {
  if (::isatty(STDIN_FILENO) == 1) GTEST_SKIP() << "stdin is a terminal here";
  EXPECT_FALSE(CredentialChainSettings(Settings{}, Env({}), "us-east-1").read_mfa_code);
}

}  // namespace
}  // namespace sitesync::cli
