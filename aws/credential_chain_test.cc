// ResolveCredentialChain over a fake fetcher (scripted answers, counted calls) and a fake clock, with the shared
// files in a temp HOME: the order of the sources and who beats whom, assumed-role chains and their errors,
// credential_source, SSO's token cache, credential_process, and the provider's refresh rules.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "aws/aws.h"

namespace sitesync::aws {
namespace {

namespace fs = std::filesystem;
using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;
using TimePoint = std::chrono::system_clock::time_point;

constexpr std::string_view kFileSecret = "fileSECRETfileSECRETfileSECRET0000000000";
constexpr std::string_view kEnvSecret = "envSECRETenvSECRETenvSECRETenvSECRET0000";
constexpr std::string_view kWebToken = "eyJWEBIDENTITYTOKEN.payload.signature";
constexpr std::string_view kSsoToken = "aoaSSOACCESSTOKENaoaSSOACCESSTOKEN";

/// Records every call and answers from a script; when a script is empty: temporary credentials that expire
/// `lifetime` after the fake clock's now (STS, SSO, process), or kNotFound (container, IMDS).
class FakeFetcher final : public CredentialFetcher {
 public:
  explicit FakeFetcher(const TimePoint* now) : now_(now) {}

  struct AssumeRoleCall {
    Credentials source;
    AssumeRoleParams params;
    StsTarget sts;
  };

  Result<Credentials> AssumeRole(const Credentials& source, const AssumeRoleParams& params,
                                 const StsTarget& sts) override {
    assume_role_calls.push_back({source, params, sts});
    return Answer(assume_role_answers, "ASIAROLE", assume_role_calls.size());
  }
  Result<Credentials> AssumeRoleWithWebIdentity(const WebIdentityParams& params, const StsTarget& sts) override {
    web_identity_calls.push_back(params);
    web_identity_sts.push_back(sts);
    return Answer(web_identity_answers, "ASIAWEB", web_identity_calls.size());
  }
  Result<Credentials> SsoRoleCredentials(const SsoParams& params) override {
    sso_calls.push_back(params);
    return Answer(sso_answers, "ASIASSO", sso_calls.size());
  }
  Result<Credentials> ContainerCredentials() override {
    ++container_calls;
    if (container_answers.empty()) return Fail(ErrorCode::kNotFound, "AWS_CONTAINER_CREDENTIALS_* not set");
    return Answer(container_answers, "", 0);
  }
  Result<Credentials> InstanceCredentials() override {
    ++instance_calls;
    if (instance_answers.empty()) return Fail(ErrorCode::kNotFound, "AWS_EC2_METADATA_DISABLED is true");
    return Answer(instance_answers, "", 0);
  }
  Result<Credentials> ProcessCredentials(const std::string& command, const std::string& profile) override {
    process_calls.emplace_back(command, profile);
    return Answer(process_answers, "ASIAPROC", process_calls.size());
  }

  /// Temporary credentials named `key_id` that expire at `expiration`.
  static Credentials Temporary(const std::string& key_id, TimePoint expiration) {
    Credentials c;
    c.access_key_id = key_id;
    c.secret_access_key = "tempSECRET-" + key_id;
    c.session_token = "tempTOKEN-" + key_id;
    c.source = "set by the fetcher (the chain names the source itself)";
    c.expiration = expiration;
    return c;
  }

  std::deque<Result<Credentials>> assume_role_answers, web_identity_answers, sso_answers, container_answers,
      instance_answers, process_answers;
  std::vector<AssumeRoleCall> assume_role_calls;
  std::vector<WebIdentityParams> web_identity_calls;
  std::vector<StsTarget> web_identity_sts;
  std::vector<SsoParams> sso_calls;
  std::vector<std::pair<std::string, std::string>> process_calls;
  int container_calls = 0;
  int instance_calls = 0;
  std::chrono::seconds lifetime = hours(1);

 private:
  Result<Credentials> Answer(std::deque<Result<Credentials>>& script, const std::string& prefix, std::size_t n) {
    if (!script.empty()) {
      Result<Credentials> next = std::move(script.front());
      script.pop_front();
      return next;
    }
    return Temporary(prefix + std::to_string(n), *now_ + lifetime);
  }
  const TimePoint* now_;
};

class ChainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "sitesync-chain-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    home_ = tmpl;
    vars_["HOME"] = home_.string();
    fetcher_ = std::make_shared<FakeFetcher>(&now_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(home_, ec);
  }

  std::string Write(const std::string& relative, const std::string& text) {
    const fs::path path = home_ / relative;
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << text;
    return path.string();
  }
  std::string CredentialsFile() const { return (home_ / ".aws/credentials").string(); }
  std::string ConfigFile() const { return (home_ / ".aws/config").string(); }

  CredentialChainOptions Options(std::string profile = "") {
    CredentialChainOptions o;
    o.profile = std::move(profile);
    o.env = [vars = vars_](std::string_view name) -> std::optional<std::string> {
      auto it = vars.find(std::string(name));
      if (it == vars.end()) return std::nullopt;
      return it->second;
    };
    o.region = "eu-west-3";
    o.sts = [](std::string_view region) {
      return StsTarget{"https://sts-test." + std::string(region) + ".example", std::string(region)};
    };
    o.sso_endpoint = [](std::string_view region) { return "https://sso-test." + std::string(region) + ".example"; };
    o.now = [this] { return now_; };
    return o;
  }

  Result<std::shared_ptr<CredentialProvider>> Resolve(std::string profile = "") {
    return ResolveCredentialChain(Options(std::move(profile)), fetcher_);
  }

  /// The credentials of a chain that must resolve.
  Credentials Got(const Result<std::shared_ptr<CredentialProvider>>& provider) {
    EXPECT_TRUE(provider.has_value()) << provider.error().message;
    if (!provider) return {};
    Result<Credentials> c = (*provider)->Get(false);
    EXPECT_TRUE(c.has_value()) << c.error().message;
    return c ? *c : Credentials{};
  }

  void ExpectError(const Result<std::shared_ptr<CredentialProvider>>& result, ErrorCode code,
                   const std::vector<std::string>& needles) {
    ASSERT_FALSE(result.has_value()) << "unexpectedly resolved";
    EXPECT_EQ(result.error().code, code) << result.error().message;
    for (const std::string& needle : needles) {
      EXPECT_NE(result.error().message.find(needle), std::string::npos)
          << "message lacks \"" << needle << "\": " << result.error().message;
    }
    for (std::string_view secret : {kFileSecret, kEnvSecret, kWebToken, kSsoToken}) {
      EXPECT_EQ(result.error().message.find(secret), std::string::npos) << "secret leaked: " << result.error().message;
    }
  }

  void SetEnvKeys() {
    vars_["AWS_ACCESS_KEY_ID"] = "AKIDENV";
    vars_["AWS_SECRET_ACCESS_KEY"] = kEnvSecret;
  }

  static std::string Keys(const std::string& key_id) {
    return "aws_access_key_id = " + key_id + "\naws_secret_access_key = " + std::string(kFileSecret) + "\n";
  }

  fs::path home_;
  std::map<std::string, std::string> vars_;
  TimePoint now_ = std::chrono::sys_days{std::chrono::year{2026} / 12 / 6} + hours(5);
  std::shared_ptr<FakeFetcher> fetcher_;
};

// ---------------------------------------------------------------------------------------------------------------
// Order and precedence
// ---------------------------------------------------------------------------------------------------------------

TEST_F(ChainTest, EnvironmentKeysComeFirst) {
  Write(".aws/credentials", "[default]\n" + Keys("AKIDFILE"));
  SetEnvKeys();
  vars_["AWS_SESSION_TOKEN"] = "ENVTOKEN";
  Credentials c = Got(Resolve());
  EXPECT_EQ(c.access_key_id, "AKIDENV");
  EXPECT_EQ(c.session_token, "ENVTOKEN");
  EXPECT_EQ(c.source, "environment");
  EXPECT_FALSE(c.expiration);
  EXPECT_EQ(fetcher_->container_calls + fetcher_->instance_calls, 0);
}

TEST_F(ChainTest, AnExplicitProfileBeatsTheEnvironmentAsInBotocore) {
  Write(".aws/credentials", "[default]\n" + Keys("AKIDDEFAULT") + "[site]\n" + Keys("AKIDSITE"));
  SetEnvKeys();
  Credentials c = Got(Resolve("site"));
  EXPECT_EQ(c.access_key_id, "AKIDSITE");
  EXPECT_EQ(c.source, "profile site in " + CredentialsFile());
}

TEST_F(ChainTest, AwsProfileInTheEnvironmentDoesNotSkipTheEnvironmentKeys) {
  Write(".aws/credentials", "[site]\n" + Keys("AKIDSITE"));
  SetEnvKeys();
  vars_["AWS_PROFILE"] = "site";
  EXPECT_EQ(Got(Resolve()).access_key_id, "AKIDENV");
}

TEST_F(ChainTest, HalfTheEnvironmentKeysIsAnError) {
  vars_["AWS_ACCESS_KEY_ID"] = "AKIDENV";
  ExpectError(Resolve(), ErrorCode::kCredentials, {"AWS_SECRET_ACCESS_KEY is not"});
}

TEST_F(ChainTest, EnvironmentWebIdentityComesBeforeTheProfile) {
  Write(".aws/credentials", "[default]\n" + Keys("AKIDFILE"));
  const std::string token_file = Write("token", std::string(kWebToken) + "\n");
  vars_["AWS_WEB_IDENTITY_TOKEN_FILE"] = token_file;
  vars_["AWS_ROLE_ARN"] = "arn:aws:iam::111122223333:role/ci";
  vars_["AWS_ROLE_SESSION_NAME"] = "gitlab-42";
  Credentials c = Got(Resolve());
  EXPECT_EQ(c.access_key_id, "ASIAWEB1");
  EXPECT_EQ(c.source, "web identity (role arn:aws:iam::111122223333:role/ci, token file " + token_file + ")");
  ASSERT_EQ(fetcher_->web_identity_calls.size(), 1u);
  EXPECT_EQ(fetcher_->web_identity_calls[0].token, kWebToken);  // Read from the file, newline dropped.
  EXPECT_EQ(fetcher_->web_identity_calls[0].role_session_name, "gitlab-42");
  EXPECT_EQ(fetcher_->web_identity_sts[0].endpoint, "https://sts-test.eu-west-3.example");
  EXPECT_EQ(fetcher_->web_identity_sts[0].region, "eu-west-3");
}

TEST_F(ChainTest, EnvironmentWebIdentityWithoutARoleIsAConfigError) {
  vars_["AWS_WEB_IDENTITY_TOKEN_FILE"] = Write("token", std::string(kWebToken));
  ExpectError(Resolve(), ErrorCode::kConfig, {"AWS_ROLE_ARN"});
}

TEST_F(ChainTest, AnExplicitProfileIgnoresTheEnvironmentWebIdentity) {
  Write(".aws/credentials", "[site]\n" + Keys("AKIDSITE"));
  vars_["AWS_WEB_IDENTITY_TOKEN_FILE"] = Write("token", std::string(kWebToken));
  vars_["AWS_ROLE_ARN"] = "arn:aws:iam::111122223333:role/ci";
  EXPECT_EQ(Got(Resolve("site")).access_key_id, "AKIDSITE");
  EXPECT_TRUE(fetcher_->web_identity_calls.empty());
}

TEST_F(ChainTest, ProfileWebIdentityTokenFile) {
  const std::string token_file = Write("tok", std::string(kWebToken));
  Write(".aws/config", "[profile oidc]\nrole_arn = arn:aws:iam::1:role/oidc\nweb_identity_token_file = " +
                           token_file + "\nduration_seconds = 1800\n");
  Credentials c = Got(Resolve("oidc"));
  EXPECT_EQ(c.source, "web identity (role arn:aws:iam::1:role/oidc, token file " + token_file + ")");
  ASSERT_EQ(fetcher_->web_identity_calls.size(), 1u);
  EXPECT_EQ(fetcher_->web_identity_calls[0].duration_seconds, 1800);
  EXPECT_TRUE(fetcher_->web_identity_calls[0].role_session_name.starts_with("sitesync-"));
  EXPECT_TRUE(fetcher_->assume_role_calls.empty()) << "role_arn beside web_identity_token_file is not AssumeRole";
}

TEST_F(ChainTest, ContainerCredentialsComeBeforeInstanceMetadata) {
  fetcher_->container_answers.push_back(FakeFetcher::Temporary("ASIACONTAINER", now_ + hours(6)));
  fetcher_->instance_answers.push_back(FakeFetcher::Temporary("ASIAIMDS", now_ + hours(6)));
  Credentials c = Got(Resolve());
  EXPECT_EQ(c.access_key_id, "ASIACONTAINER");
  EXPECT_EQ(c.source, "container credentials endpoint");
  EXPECT_EQ(fetcher_->instance_calls, 0);
}

TEST_F(ChainTest, InstanceMetadataWhenThereIsNoContainer) {
  fetcher_->instance_answers.push_back(FakeFetcher::Temporary("ASIAIMDS", now_ + hours(6)));
  Credentials c = Got(Resolve());
  EXPECT_EQ(c.access_key_id, "ASIAIMDS");
  EXPECT_EQ(c.source, "EC2 instance metadata (IMDSv2)");
  EXPECT_EQ(fetcher_->container_calls, 1);
}

TEST_F(ChainTest, TheProfileComesBeforeContainerAndInstanceMetadata) {
  Write(".aws/config", "[default]\n" + Keys("AKIDCONFIG"));
  fetcher_->container_answers.push_back(FakeFetcher::Temporary("ASIACONTAINER", now_ + hours(6)));
  Credentials c = Got(Resolve());
  EXPECT_EQ(c.access_key_id, "AKIDCONFIG");
  EXPECT_EQ(c.source, "profile default in " + ConfigFile());
  EXPECT_EQ(fetcher_->container_calls, 0);
}

TEST_F(ChainTest, NothingFoundNamesEveryPlaceLookedAt) {
  Write(".aws/credentials", "[other]\n" + Keys("AKIDOTHER"));
  ExpectError(Resolve(), ErrorCode::kCredentials,
              {"no AWS credentials for profile default", "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set",
               "AWS_WEB_IDENTITY_TOKEN_FILE is not set", CredentialsFile() + " (no [default] section; it has [other])",
               ConfigFile() + " (not found)", "container credentials endpoint (AWS_CONTAINER_CREDENTIALS_* not set)",
               "EC2 instance metadata (IMDSv2) (AWS_EC2_METADATA_DISABLED is true)", "aws configure"});
  EXPECT_EQ(fetcher_->container_calls, 1);
  EXPECT_EQ(fetcher_->instance_calls, 1);
}

TEST_F(ChainTest, AContainerEndpointThatFailsStopsTheChain) {
  fetcher_->container_answers.push_back(Fail(ErrorCode::kCredentials, "container endpoint answered 500"));
  fetcher_->instance_answers.push_back(FakeFetcher::Temporary("ASIAIMDS", now_ + hours(6)));
  ExpectError(Resolve(), ErrorCode::kCredentials, {"container endpoint answered 500"});
  EXPECT_EQ(fetcher_->instance_calls, 0);
}

TEST_F(ChainTest, ANamedProfileThatDoesNotExistIsAConfigError) {
  Write(".aws/credentials", "[default]\n" + Keys("AKIDFILE"));
  fetcher_->instance_answers.push_back(FakeFetcher::Temporary("ASIAIMDS", now_ + hours(6)));
  ExpectError(Resolve("typo"), ErrorCode::kConfig, {"profile typo is not in", CredentialsFile()});
  EXPECT_EQ(fetcher_->instance_calls, 0);
}

TEST_F(ChainTest, BrokenConfigFileDoesNotStopEnvironmentKeys) {
  Write(".aws/config", "[default\nregion = x\n");
  SetEnvKeys();
  EXPECT_EQ(Got(Resolve()).source, "environment");
  vars_.erase("AWS_ACCESS_KEY_ID");
  vars_.erase("AWS_SECRET_ACCESS_KEY");
  ExpectError(Resolve(), ErrorCode::kConfig, {ConfigFile() + ":1:"});
}

// ---------------------------------------------------------------------------------------------------------------
// Profiles: static keys, credential_process, SSO
// ---------------------------------------------------------------------------------------------------------------

TEST_F(ChainTest, BotocoreOrderInsideAProfile) {
  // Credentials file keys > credential_process > config file keys.
  Write(".aws/config", "[profile p]\ncredential_process = /bin/get-creds --json\n" + Keys("AKIDCONFIG"));
  Credentials c = Got(Resolve("p"));
  EXPECT_EQ(c.source, "credential_process of profile p");
  EXPECT_EQ(c.access_key_id, "ASIAPROC1");
  ASSERT_EQ(fetcher_->process_calls.size(), 1u);
  EXPECT_EQ(fetcher_->process_calls[0].first, "/bin/get-creds --json");
  EXPECT_EQ(fetcher_->process_calls[0].second, "p");

  Write(".aws/credentials", "[p]\n" + Keys("AKIDFILE"));
  c = Got(Resolve("p"));
  EXPECT_EQ(c.access_key_id, "AKIDFILE");
  EXPECT_EQ(fetcher_->process_calls.size(), 1u);
}

TEST_F(ChainTest, FailingCredentialProcessIsReturned) {
  Write(".aws/config", "[profile p]\ncredential_process = /bin/false\n");
  fetcher_->process_answers.push_back(Fail(ErrorCode::kCredentials, "credential_process of profile p exited 1"));
  ExpectError(Resolve("p"), ErrorCode::kCredentials, {"exited 1"});
}

TEST_F(ChainTest, SsoSessionReadsTheCacheNamedAfterTheSessionName) {
  Write(".aws/config",
        "[profile dev]\nsso_session = my-sso\nsso_account_id = 123456789012\nsso_role_name = Deploy\n"
        "[sso-session my-sso]\nsso_start_url = https://example.awsapps.com/start\nsso_region = eu-central-1\n");
  // sha1("my-sso"), as the AWS CLI names the file.
  Write(".aws/sso/cache/0ad374308c5a4e22f723adf10145eafad7c4031c.json",
        R"({"accessToken": ")" + std::string(kSsoToken) + R"(", "expiresAt": "2026-12-06T08:00:00Z"})");
  Credentials c = Got(Resolve("dev"));
  EXPECT_EQ(c.source, "SSO profile dev (account 123456789012, role Deploy)");
  ASSERT_EQ(fetcher_->sso_calls.size(), 1u);
  const SsoParams& p = fetcher_->sso_calls[0];
  EXPECT_EQ(p.access_token, kSsoToken);
  EXPECT_EQ(p.account_id, "123456789012");
  EXPECT_EQ(p.role_name, "Deploy");
  EXPECT_EQ(p.sso_region, "eu-central-1");
  EXPECT_EQ(p.endpoint, "https://sso-test.eu-central-1.example");
  EXPECT_EQ(p.profile, "dev");
}

TEST_F(ChainTest, LegacySsoReadsTheCacheNamedAfterTheStartUrl) {
  Write(".aws/config",
        "[profile old]\nsso_start_url = https://example.awsapps.com/start\nsso_region = us-west-2\n"
        "sso_account_id = 1234\nsso_role_name = R\n");
  // sha1 of the start URL; the older CLI wrote "UTC" instead of "Z".
  Write(".aws/sso/cache/e8be5486177c5b5392bd9aa76563515b29358e6e.json",
        R"({"accessToken": "tok", "expiresAt": "2026-12-06T05:30:00UTC"})");
  EXPECT_EQ(Got(Resolve("old")).source, "SSO profile old (account 1234, role R)");
}

TEST_F(ChainTest, ExpiredOrMissingSsoTokenSaysHowToLogIn) {
  Write(".aws/config",
        "[profile dev]\nsso_session = my-sso\nsso_account_id = 1234\nsso_role_name = R\n"
        "[sso-session my-sso]\nsso_start_url = https://example.awsapps.com/start\nsso_region = eu-central-1\n");
  ExpectError(Resolve("dev"), ErrorCode::kCredentials, {"0ad374308c5a4e22f723adf10145eafad7c4031c.json",
                                                        "run `aws sso login --profile dev`"});
  Write(".aws/sso/cache/0ad374308c5a4e22f723adf10145eafad7c4031c.json",
        R"({"accessToken": ")" + std::string(kSsoToken) + R"(", "expiresAt": "2026-12-06T04:59:59Z"})");
  ExpectError(Resolve("dev"), ErrorCode::kCredentials, {"expired", "run `aws sso login --profile dev`"});
  EXPECT_TRUE(fetcher_->sso_calls.empty()) << "an expired token is never sent";
}

TEST_F(ChainTest, SsoConfigErrors) {
  Write(".aws/config", "[profile dev]\nsso_session = nope\nsso_account_id = 1\nsso_role_name = R\n"
                       "[profile half]\nsso_account_id = 1\n");
  ExpectError(Resolve("dev"), ErrorCode::kConfig, {"[sso-session nope]"});
  ExpectError(Resolve("half"), ErrorCode::kConfig, {"sso_start_url", "sso_region", "sso_role_name"});
}

// ---------------------------------------------------------------------------------------------------------------
// Assumed roles
// ---------------------------------------------------------------------------------------------------------------

TEST_F(ChainTest, RoleWithSourceProfile) {
  Write(".aws/credentials", "[default]\n" + Keys("AKIDBASE"));
  Write(".aws/config", "[profile deploy]\nrole_arn = arn:aws:iam::1:role/deploy\nsource_profile = default\n"
                       "external_id = ext-7\nduration_seconds = 3600\n");
  Credentials c = Got(Resolve("deploy"));
  EXPECT_EQ(c.access_key_id, "ASIAROLE1");
  EXPECT_EQ(c.source, "assumed role arn:aws:iam::1:role/deploy via profile deploy (source profile default in " +
                          CredentialsFile() + ")");
  ASSERT_EQ(fetcher_->assume_role_calls.size(), 1u);
  const FakeFetcher::AssumeRoleCall& call = fetcher_->assume_role_calls[0];
  EXPECT_EQ(call.source.access_key_id, "AKIDBASE");
  EXPECT_EQ(call.params.role_arn, "arn:aws:iam::1:role/deploy");
  EXPECT_EQ(call.params.external_id, "ext-7");
  EXPECT_EQ(call.params.duration_seconds, 3600);
  const auto epoch = std::chrono::duration_cast<seconds>(now_.time_since_epoch()).count();
  EXPECT_EQ(call.params.role_session_name, "sitesync-" + std::to_string(epoch));
  EXPECT_TRUE(call.params.mfa_serial.empty());
  // The run's region signs the STS call, as botocore's client creator does.
  EXPECT_EQ(call.sts.endpoint, "https://sts-test.eu-west-3.example");
  EXPECT_EQ(call.sts.region, "eu-west-3");
}

TEST_F(ChainTest, ChainedRoles) {
  Write(".aws/credentials", "[base]\n" + Keys("AKIDBASE"));
  Write(".aws/config", "[profile top]\nrole_arn = arn:aws:iam::2:role/top\nsource_profile = mid\n"
                       "role_session_name = me\n"
                       "[profile mid]\nrole_arn = arn:aws:iam::1:role/mid\nsource_profile = base\n");
  Credentials c = Got(Resolve("top"));
  ASSERT_EQ(fetcher_->assume_role_calls.size(), 2u);
  EXPECT_EQ(fetcher_->assume_role_calls[0].params.role_arn, "arn:aws:iam::1:role/mid");
  EXPECT_EQ(fetcher_->assume_role_calls[0].source.access_key_id, "AKIDBASE");
  EXPECT_EQ(fetcher_->assume_role_calls[1].params.role_arn, "arn:aws:iam::2:role/top");
  EXPECT_EQ(fetcher_->assume_role_calls[1].source.access_key_id, "ASIAROLE1");
  EXPECT_EQ(fetcher_->assume_role_calls[1].params.role_session_name, "me");
  EXPECT_EQ(c.access_key_id, "ASIAROLE2");
  EXPECT_EQ(c.source, "assumed role arn:aws:iam::2:role/top via profile top (source assumed role "
                      "arn:aws:iam::1:role/mid via profile mid (source profile base in " +
                          CredentialsFile() + "))");
}

TEST_F(ChainTest, ASourceProfileWithKeysUsesItsKeysNotItsRole) {
  Write(".aws/credentials", "[mid]\n" + Keys("AKIDMID"));
  Write(".aws/config", "[profile top]\nrole_arn = arn:aws:iam::2:role/top\nsource_profile = mid\n"
                       "[profile mid]\nrole_arn = arn:aws:iam::1:role/mid\nsource_profile = nowhere\n");
  Got(Resolve("top"));
  ASSERT_EQ(fetcher_->assume_role_calls.size(), 1u);
  EXPECT_EQ(fetcher_->assume_role_calls[0].source.access_key_id, "AKIDMID");
}

TEST_F(ChainTest, AProfileMayBeItsOwnSourceWhenItHasKeys) {
  Write(".aws/credentials", "[self]\n" + Keys("AKIDSELF") +
                                "role_arn = arn:aws:iam::1:role/r\nsource_profile = self\n");
  Credentials c = Got(Resolve("self"));
  ASSERT_EQ(fetcher_->assume_role_calls.size(), 1u);
  EXPECT_EQ(fetcher_->assume_role_calls[0].source.access_key_id, "AKIDSELF");
  EXPECT_EQ(c.access_key_id, "ASIAROLE1");
}

TEST_F(ChainTest, SourceProfileCycleIsAConfigError) {
  Write(".aws/config", "[profile a]\nrole_arn = arn:aws:iam::1:role/a\nsource_profile = b\n"
                       "[profile b]\nrole_arn = arn:aws:iam::1:role/b\nsource_profile = a\n"
                       "[profile selfish]\nrole_arn = arn:aws:iam::1:role/s\nsource_profile = selfish\n");
  ExpectError(Resolve("a"), ErrorCode::kConfig, {"cycle", "a -> b -> a"});
  ExpectError(Resolve("selfish"), ErrorCode::kConfig, {"selfish -> selfish"});
  EXPECT_TRUE(fetcher_->assume_role_calls.empty());
}

TEST_F(ChainTest, RoleConfigErrors) {
  Write(".aws/credentials", "[default]\n" + Keys("AKIDBASE"));
  Write(".aws/config", "[profile missing]\nrole_arn = arn:aws:iam::1:role/a\nsource_profile = ghost\n"
                       "[profile both]\nrole_arn = arn:aws:iam::1:role/a\nsource_profile = default\n"
                       "credential_source = Environment\n"
                       "[profile neither]\nrole_arn = arn:aws:iam::1:role/a\n"
                       "[profile badsource]\nrole_arn = arn:aws:iam::1:role/a\ncredential_source = Laptop\n"
                       "[profile badduration]\nrole_arn = arn:aws:iam::1:role/a\nsource_profile = default\n"
                       "duration_seconds = soon\n"
                       "[profile empty]\nregion = eu-west-1\n"
                       "[profile toempty]\nrole_arn = arn:aws:iam::1:role/a\nsource_profile = empty\n");
  ExpectError(Resolve("missing"), ErrorCode::kConfig, {"source_profile ghost", "does not exist"});
  ExpectError(Resolve("both"), ErrorCode::kConfig, {"both source_profile", "credential_source"});
  ExpectError(Resolve("neither"), ErrorCode::kConfig, {"neither source_profile nor credential_source"});
  ExpectError(Resolve("badsource"), ErrorCode::kConfig, {"Laptop", "Ec2InstanceMetadata"});
  ExpectError(Resolve("badduration"), ErrorCode::kConfig, {ConfigFile() + ":", "duration_seconds"});
  ExpectError(Resolve("toempty"), ErrorCode::kConfig, {"source_profile empty", "has no credentials"});
  EXPECT_TRUE(fetcher_->assume_role_calls.empty());
}

TEST_F(ChainTest, CredentialSources) {
  Write(".aws/config", "[profile env]\nrole_arn = arn:aws:iam::1:role/e\ncredential_source = Environment\n"
                       "[profile ec2]\nrole_arn = arn:aws:iam::1:role/i\ncredential_source = Ec2InstanceMetadata\n"
                       "[profile ecs]\nrole_arn = arn:aws:iam::1:role/c\ncredential_source = EcsContainer\n");
  SetEnvKeys();
  // Named explicitly, the profile still reads the environment: it asks for it.
  Credentials c = Got(Resolve("env"));
  ASSERT_EQ(fetcher_->assume_role_calls.size(), 1u);
  EXPECT_EQ(fetcher_->assume_role_calls[0].source.access_key_id, "AKIDENV");
  EXPECT_EQ(c.source, "assumed role arn:aws:iam::1:role/e via profile env (source environment)");

  fetcher_->instance_answers.push_back(FakeFetcher::Temporary("ASIAIMDS", now_ + hours(6)));
  c = Got(Resolve("ec2"));
  EXPECT_EQ(fetcher_->assume_role_calls.back().source.access_key_id, "ASIAIMDS");
  EXPECT_EQ(c.source, "assumed role arn:aws:iam::1:role/i via profile ec2 (source EC2 instance metadata (IMDSv2))");

  // A source that is not there is an error here, not a reason to go on.
  ExpectError(Resolve("ecs"), ErrorCode::kCredentials, {"credential_source EcsContainer of profile ecs"});
  fetcher_->container_answers.push_back(FakeFetcher::Temporary("ASIACONT", now_ + hours(6)));
  EXPECT_EQ(Got(Resolve("ecs")).source,
            "assumed role arn:aws:iam::1:role/c via profile ecs (source container credentials endpoint)");
}

TEST_F(ChainTest, MfaCodeIsReadFromTheTerminalOnly) {
  Write(".aws/credentials", "[default]\n" + Keys("AKIDBASE"));
  Write(".aws/config", "[profile mfa]\nrole_arn = arn:aws:iam::1:role/a\nsource_profile = default\n"
                       "mfa_serial = arn:aws:iam::1:mfa/me\n");
  ExpectError(Resolve("mfa"), ErrorCode::kConfig, {"MFA", "terminal"});

  CredentialChainOptions options = Options("mfa");
  std::vector<std::string> asked;
  options.read_mfa_code = [&](std::string_view serial) -> std::optional<std::string> {
    asked.emplace_back(serial);
    return "123456";
  };
  auto provider = ResolveCredentialChain(options, fetcher_);
  ASSERT_TRUE(provider) << provider.error().message;
  ASSERT_EQ(asked, std::vector<std::string>{"arn:aws:iam::1:mfa/me"});
  ASSERT_EQ(fetcher_->assume_role_calls.size(), 1u);
  EXPECT_EQ(fetcher_->assume_role_calls[0].params.mfa_serial, "arn:aws:iam::1:mfa/me");
  EXPECT_EQ(fetcher_->assume_role_calls[0].params.mfa_code, "123456");

  options.read_mfa_code = [](std::string_view) -> std::optional<std::string> { return std::nullopt; };
  ExpectError(ResolveCredentialChain(options, fetcher_), ErrorCode::kCredentials, {"no MFA code"});
}

TEST_F(ChainTest, AWrongSourceSecretFailsTheResolve) {
  Write(".aws/credentials", "[default]\n" + Keys("AKIDBASE"));
  Write(".aws/config", "[profile deploy]\nrole_arn = arn:aws:iam::1:role/deploy\nsource_profile = default\n");
  fetcher_->assume_role_answers.push_back(
      Fail(ErrorCode::kCredentials, "STS AssumeRole arn:aws:iam::1:role/deploy: SignatureDoesNotMatch"));
  ExpectError(Resolve("deploy"), ErrorCode::kCredentials, {"SignatureDoesNotMatch"});
}

// ---------------------------------------------------------------------------------------------------------------
// Refresh
// ---------------------------------------------------------------------------------------------------------------

class RefreshTest : public ChainTest {
 protected:
  void SetUp() override {
    ChainTest::SetUp();
    Write(".aws/credentials", "[default]\n" + Keys("AKIDBASE"));
    Write(".aws/config", "[profile deploy]\nrole_arn = arn:aws:iam::1:role/deploy\nsource_profile = default\n");
  }
};

TEST_F(RefreshTest, FetchesAgainFiveMinutesAheadAndNotOnEveryCall) {
  fetcher_->lifetime = minutes(15);
  auto provider = Resolve("deploy");
  ASSERT_TRUE(provider) << provider.error().message;
  ASSERT_EQ(fetcher_->assume_role_calls.size(), 1u);
  const TimePoint start = now_;
  for (int i = 0; i < 100; ++i) {
    now_ = start + seconds(i * 5);  // Up to 8 min 15 s: 6 min 45 s left, more than 5.
    Result<Credentials> c = (*provider)->Get(false);
    ASSERT_TRUE(c);
    EXPECT_EQ(c->access_key_id, "ASIAROLE1");
  }
  EXPECT_EQ(fetcher_->assume_role_calls.size(), 1u) << "fetched on a call while the credentials were good";
  now_ = start + minutes(10) - seconds(1);  // 5 min 1 s left.
  EXPECT_EQ((*provider)->Get(false)->access_key_id, "ASIAROLE1");
  now_ = start + minutes(10);  // Exactly kCredentialRefreshAhead left.
  EXPECT_EQ((*provider)->Get(false)->access_key_id, "ASIAROLE2");
  EXPECT_EQ(fetcher_->assume_role_calls.size(), 2u);
  EXPECT_EQ((*provider)->Get(false)->access_key_id, "ASIAROLE2");
  EXPECT_EQ(fetcher_->assume_role_calls.size(), 2u);
}

TEST_F(RefreshTest, ForceRefreshFetchesAtOnce) {
  auto provider = Resolve("deploy");
  ASSERT_TRUE(provider);
  EXPECT_EQ((*provider)->Get(true)->access_key_id, "ASIAROLE2");
  EXPECT_EQ((*provider)->Get(false)->access_key_id, "ASIAROLE2");
  EXPECT_EQ(fetcher_->assume_role_calls.size(), 2u);
}

TEST_F(RefreshTest, LongTermKeysAreNeverFetchedAgain) {
  fetcher_->process_answers.push_back([] {
    Credentials c;
    c.access_key_id = "AKIDPROC";
    c.secret_access_key = "s";
    return c;  // No Expiration: long-term.
  }());
  Write(".aws/config", "[profile proc]\ncredential_process = /bin/creds\n");
  auto provider = Resolve("proc");
  ASSERT_TRUE(provider);
  now_ += hours(24 * 30);
  EXPECT_EQ((*provider)->Get(false)->access_key_id, "AKIDPROC");
  EXPECT_EQ((*provider)->Get(true)->access_key_id, "AKIDPROC");
  EXPECT_EQ(fetcher_->process_calls.size(), 1u);

  auto base = Resolve();
  ASSERT_TRUE(base);
  EXPECT_EQ((*base)->Get(true)->access_key_id, "AKIDBASE");
}

TEST_F(RefreshTest, AFailedRefreshKeepsTheHeldCredentialsUntilTheyExpire) {
  fetcher_->lifetime = minutes(20);
  auto provider = Resolve("deploy");
  ASSERT_TRUE(provider);
  const TimePoint start = now_;
  fetcher_->assume_role_answers.push_back(Fail(ErrorCode::kNetwork, "STS unreachable"));
  fetcher_->assume_role_answers.push_back(Fail(ErrorCode::kNetwork, "STS unreachable"));
  fetcher_->assume_role_answers.push_back(Fail(ErrorCode::kNetwork, "STS unreachable"));
  now_ = start + minutes(16);  // 4 min left: due, and the refresh fails.
  EXPECT_EQ((*provider)->Get(false)->access_key_id, "ASIAROLE1");
  EXPECT_EQ(fetcher_->assume_role_calls.size(), 2u);
  now_ += seconds(1);  // Not asked again at once.
  EXPECT_EQ((*provider)->Get(false)->access_key_id, "ASIAROLE1");
  EXPECT_EQ(fetcher_->assume_role_calls.size(), 2u);
  now_ = start + minutes(17);  // Asked again later, fails again, still good.
  EXPECT_EQ((*provider)->Get(false)->access_key_id, "ASIAROLE1");
  EXPECT_EQ(fetcher_->assume_role_calls.size(), 3u);
  now_ = start + minutes(20);  // Expired: the failure is returned.
  Result<Credentials> expired = (*provider)->Get(false);
  ASSERT_FALSE(expired);
  EXPECT_NE(expired.error().message.find("STS unreachable"), std::string::npos) << expired.error().message;
  EXPECT_NE(expired.error().message.find("refresh the credentials from assumed role"), std::string::npos);
  // STS is back: the next call fetches.
  EXPECT_EQ((*provider)->Get(false)->access_key_id, "ASIAROLE5");
}

TEST_F(RefreshTest, AFailedForcedRefreshIsReturned) {
  auto provider = Resolve("deploy");
  ASSERT_TRUE(provider);
  fetcher_->assume_role_answers.push_back(Fail(ErrorCode::kCredentials, "AccessDenied"));
  EXPECT_FALSE((*provider)->Get(true));
}

TEST_F(RefreshTest, ChainedSourceRolesAreRefreshedToo) {
  Write(".aws/config", "[profile top]\nrole_arn = arn:aws:iam::2:role/top\nsource_profile = deploy\n"
                       "[profile deploy]\nrole_arn = arn:aws:iam::1:role/deploy\nsource_profile = default\n");
  fetcher_->lifetime = minutes(15);
  auto provider = Resolve("top");
  ASSERT_TRUE(provider);
  ASSERT_EQ(fetcher_->assume_role_calls.size(), 2u);
  now_ += minutes(11);  // Both are due.
  EXPECT_EQ((*provider)->Get(false)->access_key_id, "ASIAROLE4");
  ASSERT_EQ(fetcher_->assume_role_calls.size(), 4u);
  EXPECT_EQ(fetcher_->assume_role_calls[2].params.role_arn, "arn:aws:iam::1:role/deploy");
  EXPECT_EQ(fetcher_->assume_role_calls[2].source.access_key_id, "AKIDBASE");
  EXPECT_EQ(fetcher_->assume_role_calls[3].source.access_key_id, "ASIAROLE3") << "signed with the fresh source";
}

TEST_F(RefreshTest, ContainerAndInstanceCredentialsAreRefreshedAfterTheResolveReturned) {
  fetcher_->container_answers.push_back(FakeFetcher::Temporary("ASIACONT1", now_ + minutes(30)));
  auto provider = Resolve();  // [default] has static keys: the chain stops there.
  ASSERT_TRUE(provider);
  EXPECT_EQ(fetcher_->container_calls, 0);

  fs::remove(home_ / ".aws/credentials");
  provider = Resolve();
  ASSERT_TRUE(provider) << provider.error().message;
  EXPECT_EQ((*provider)->Get(false)->access_key_id, "ASIACONT1");
  fetcher_->container_answers.push_back(FakeFetcher::Temporary("ASIACONT2", now_ + hours(6)));
  now_ += minutes(26);
  EXPECT_EQ((*provider)->Get(false)->access_key_id, "ASIACONT2");
  EXPECT_EQ(fetcher_->container_calls, 2);

  fetcher_->instance_answers.push_back(FakeFetcher::Temporary("ASIAIMDS1", now_ + minutes(10)));
  auto imds = Resolve();
  ASSERT_TRUE(imds) << imds.error().message;
  fetcher_->instance_answers.push_back(FakeFetcher::Temporary("ASIAIMDS2", now_ + hours(6)));
  EXPECT_EQ((*imds)->Get(true)->access_key_id, "ASIAIMDS2");
  EXPECT_EQ((*imds)->Get(false)->source, "EC2 instance metadata (IMDSv2)");
  EXPECT_EQ(fetcher_->instance_calls, 2);
}

TEST_F(RefreshTest, WebIdentityTokenFileIsReadAgainOnRefresh) {
  const std::string token_file = Write("token", "first-token");
  vars_["AWS_WEB_IDENTITY_TOKEN_FILE"] = token_file;
  vars_["AWS_ROLE_ARN"] = "arn:aws:iam::1:role/ci";
  auto provider = Resolve();
  ASSERT_TRUE(provider);
  Write("token", "rotated-token");
  ASSERT_TRUE((*provider)->Get(true));
  ASSERT_EQ(fetcher_->web_identity_calls.size(), 2u);
  EXPECT_EQ(fetcher_->web_identity_calls[0].token, "first-token");
  EXPECT_EQ(fetcher_->web_identity_calls[1].token, "rotated-token");
}

TEST_F(RefreshTest, SsoRefreshAfterTheLoginExpiredSaysHowToLogIn) {
  Write(".aws/config",
        "[profile dev]\nsso_session = my-sso\nsso_account_id = 1234\nsso_role_name = R\n"
        "[sso-session my-sso]\nsso_start_url = https://example.awsapps.com/start\nsso_region = eu-central-1\n");
  Write(".aws/sso/cache/0ad374308c5a4e22f723adf10145eafad7c4031c.json",
        R"({"accessToken": "tok", "expiresAt": "2026-12-06T05:30:00Z"})");
  auto provider = Resolve("dev");
  ASSERT_TRUE(provider) << provider.error().message;
  now_ += hours(2);
  Result<Credentials> c = (*provider)->Get(false);
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("aws sso login --profile dev"), std::string::npos) << c.error().message;
}

}  // namespace
}  // namespace sitesync::aws
