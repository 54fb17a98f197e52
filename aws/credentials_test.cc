// The credential chain's file and environment part (no network) and ResolveRegion against files in a temp dir and an injected environment (never the real
// one): precedence, profiles, file locations, the INI dialect, and the messages for broken or missing setups.
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

/// A fetcher for a machine with no container endpoint, no IMDS and no STS: the chain then ends at the shared files.
class NoNetworkFetcher final : public CredentialFetcher {
 public:
  Result<Credentials> AssumeRole(const Credentials&, const AssumeRoleParams&, const StsTarget&) override {
    return Fail(ErrorCode::kCredentials, "no STS in this test");
  }
  Result<Credentials> AssumeRoleWithWebIdentity(const WebIdentityParams&, const StsTarget&) override {
    return Fail(ErrorCode::kCredentials, "no STS in this test");
  }
  Result<Credentials> SsoRoleCredentials(const SsoParams&) override {
    return Fail(ErrorCode::kCredentials, "no SSO portal in this test");
  }
  Result<Credentials> ContainerCredentials() override { return Fail(ErrorCode::kNotFound, "no container"); }
  Result<Credentials> InstanceCredentials() override { return Fail(ErrorCode::kNotFound, "no IMDS"); }
  Result<Credentials> ProcessCredentials(const std::string&, const std::string&) override {
    return Fail(ErrorCode::kCredentials, "no process in this test");
  }
};

/// The credentials the chain resolves for `profile` (explicit when non-empty), the network left out.
Result<Credentials> LoadCredentials(std::string_view profile, const EnvLookup& env) {
  CredentialChainOptions options;
  options.profile = std::string(profile);
  options.env = env;
  options.region = "us-east-1";
  options.sts = [](std::string_view region) { return StsTarget{"https://sts.invalid", std::string(region)}; };
  options.sso_endpoint = [](std::string_view) { return std::string("https://sso.invalid"); };
  auto provider = ResolveCredentialChain(options, std::make_shared<NoNetworkFetcher>());
  if (!provider) return std::unexpected(provider.error());
  return (*provider)->Get(false);
}

constexpr std::string_view kFileSecret = "fileSECRETfileSECRETfileSECRET0000000000";
constexpr std::string_view kConfigSecret = "configSECRETconfigSECRETconfigSECRET0000";
constexpr std::string_view kEnvSecret = "envSECRETenvSECRETenvSECRETenvSECRET0000";

class CredentialsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "sitesync-credentials-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    home_ = tmpl;
    vars_["HOME"] = home_.string();
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(home_, ec);
  }

  /// Writes `text` to `relative` under the fake HOME and returns the full path.
  std::string Write(const std::string& relative, const std::string& text) {
    const fs::path path = home_ / relative;
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << text;
    return path.string();
  }

  EnvLookup Env() const {
    return [vars = vars_](std::string_view name) -> std::optional<std::string> {
      auto it = vars.find(std::string(name));
      if (it == vars.end()) return std::nullopt;
      return it->second;
    };
  }

  /// Asserts a failure of `code` whose message has every one of `needles` and no secret.
  void ExpectError(const Result<Credentials>& result, ErrorCode code, std::vector<std::string> needles) {
    ASSERT_FALSE(result.has_value()) << "unexpectedly found credentials from " << result->source;
    EXPECT_EQ(result.error().code, code) << result.error().message;
    for (const std::string& needle : needles) {
      EXPECT_NE(result.error().message.find(needle), std::string::npos)
          << "message lacks \"" << needle << "\": " << result.error().message;
    }
    ExpectNoSecret(result.error().message);
  }

  static void ExpectNoSecret(const std::string& message) {
    for (std::string_view secret : {kFileSecret, kConfigSecret, kEnvSecret}) {
      EXPECT_EQ(message.find(secret), std::string::npos) << "secret leaked: " << message;
    }
  }

  fs::path home_;
  std::map<std::string, std::string> vars_;
};

std::string Profile(const std::string& header, const std::string& key_id, std::string_view secret) {
  return header + "\naws_access_key_id = " + key_id + "\naws_secret_access_key = " + std::string(secret) + "\n";
}

// ---------------------------------------------------------------------------------------------------------------
// Precedence
// ---------------------------------------------------------------------------------------------------------------

TEST_F(CredentialsTest, EnvironmentWinsOverFiles) {
  Write(".aws/credentials", Profile("[default]", "AKIDFILE", kFileSecret));
  vars_["AWS_ACCESS_KEY_ID"] = "AKIDENV";
  vars_["AWS_SECRET_ACCESS_KEY"] = kEnvSecret;
  vars_["AWS_SESSION_TOKEN"] = "ENVTOKEN";
  auto c = LoadCredentials("", Env());
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->access_key_id, "AKIDENV");
  EXPECT_EQ(c->secret_access_key, kEnvSecret);
  EXPECT_EQ(c->session_token, "ENVTOKEN");
  EXPECT_EQ(c->source, "environment");
}

// botocore's rule: a profile named explicitly (--profile, profile:) is used even when the environment has keys.
TEST_F(CredentialsTest, AnExplicitProfileBeatsKeysInTheEnvironment) {
  Write(".aws/credentials", Profile("[work]", "AKIDWORK", kFileSecret));
  vars_["AWS_ACCESS_KEY_ID"] = "AKIDENV";
  vars_["AWS_SECRET_ACCESS_KEY"] = kEnvSecret;
  auto c = LoadCredentials("work", Env());
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->access_key_id, "AKIDWORK");
  EXPECT_NE(c->source.find("profile work"), std::string::npos) << c->source;
  ExpectNoSecret(c->source);
}

TEST_F(CredentialsTest, HalfAnEnvironmentIsAnErrorNotASilentFallback) {
  Write(".aws/credentials", Profile("[default]", "AKIDFILE", kFileSecret));
  vars_["AWS_ACCESS_KEY_ID"] = "AKIDENV";
  ExpectError(LoadCredentials("", Env()), ErrorCode::kCredentials, {"AWS_SECRET_ACCESS_KEY"});
  vars_.erase("AWS_ACCESS_KEY_ID");
  vars_["AWS_SECRET_ACCESS_KEY"] = kEnvSecret;
  ExpectError(LoadCredentials("", Env()), ErrorCode::kCredentials, {"AWS_ACCESS_KEY_ID"});
}

TEST_F(CredentialsTest, EmptyVariablesCountAsUnset) {
  Write(".aws/credentials", Profile("[default]", "AKIDFILE", kFileSecret));
  vars_["AWS_ACCESS_KEY_ID"] = "";
  vars_["AWS_SECRET_ACCESS_KEY"] = "";
  vars_["AWS_PROFILE"] = "";
  auto c = LoadCredentials("", Env());
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->access_key_id, "AKIDFILE");
}

TEST_F(CredentialsTest, DefaultProfileFromHomeCredentialsFile) {
  const std::string path = Write(".aws/credentials", Profile("[default]", "AKIDFILE", kFileSecret));
  auto c = LoadCredentials("", Env());
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->access_key_id, "AKIDFILE");
  EXPECT_EQ(c->secret_access_key, kFileSecret);
  EXPECT_TRUE(c->session_token.empty());
  EXPECT_EQ(c->source, "profile default in " + path);
}

TEST_F(CredentialsTest, AwsProfileSelectsTheProfileAndAnExplicitProfileBeatsIt) {
  Write(".aws/credentials", Profile("[default]", "AKIDDEFAULT", kFileSecret) +
                                Profile("[work]", "AKIDWORK", kFileSecret) +
                                Profile("[play]", "AKIDPLAY", kFileSecret));
  vars_["AWS_PROFILE"] = "work";
  auto from_env = LoadCredentials("", Env());
  ASSERT_TRUE(from_env.has_value()) << from_env.error().message;
  EXPECT_EQ(from_env->access_key_id, "AKIDWORK");
  auto explicit_profile = LoadCredentials("play", Env());
  ASSERT_TRUE(explicit_profile.has_value()) << explicit_profile.error().message;
  EXPECT_EQ(explicit_profile->access_key_id, "AKIDPLAY");
  EXPECT_NE(explicit_profile->source.find("profile play"), std::string::npos);
}

TEST_F(CredentialsTest, FileVariablesReplaceTheHomeFiles) {
  Write(".aws/credentials", Profile("[default]", "AKIDHOME", kFileSecret));
  const std::string creds = Write("elsewhere/creds.ini", Profile("[default]", "AKIDELSEWHERE", kFileSecret));
  vars_["AWS_SHARED_CREDENTIALS_FILE"] = creds;
  auto c = LoadCredentials("", Env());
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->access_key_id, "AKIDELSEWHERE");
  EXPECT_EQ(c->source, "profile default in " + creds);

  // Credentials only in a config file named by AWS_CONFIG_FILE; the home config must not be read.
  Write(".aws/config", Profile("[profile ci]", "AKIDHOMECONFIG", kConfigSecret));
  const std::string config = Write("elsewhere/config.ini", Profile("[profile ci]", "AKIDCI", kConfigSecret));
  vars_["AWS_CONFIG_FILE"] = config;
  auto ci = LoadCredentials("ci", Env());
  ASSERT_TRUE(ci.has_value()) << ci.error().message;
  EXPECT_EQ(ci->access_key_id, "AKIDCI");
  EXPECT_EQ(ci->source, "profile ci in " + config);
}

TEST_F(CredentialsTest, TildeInFileVariablesMeansHome) {
  Write("custom/creds", Profile("[default]", "AKIDTILDE", kFileSecret));
  vars_["AWS_SHARED_CREDENTIALS_FILE"] = "~/custom/creds";
  auto c = LoadCredentials("", Env());
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->access_key_id, "AKIDTILDE");
  EXPECT_EQ(c->source, "profile default in " + (home_ / "custom/creds").string());
}

TEST_F(CredentialsTest, ConfigFileUsesProfilePrefixExceptForDefault) {
  Write(".aws/config", Profile("[work]", "AKIDNOTAPROFILE", kConfigSecret) +  // Not profile "work" in config.
                           Profile("[profile work]", "AKIDWORK", kConfigSecret) +
                           Profile("[default]", "AKIDDEFAULT", kConfigSecret) + "region = eu-west-1\n");
  auto work = LoadCredentials("work", Env());
  ASSERT_TRUE(work.has_value()) << work.error().message;
  EXPECT_EQ(work->access_key_id, "AKIDWORK");
  EXPECT_EQ(work->secret_access_key, kConfigSecret);
  EXPECT_EQ(work->source, "profile work in " + (home_ / ".aws/config").string());
  auto def = LoadCredentials("", Env());
  ASSERT_TRUE(def.has_value()) << def.error().message;
  EXPECT_EQ(def->access_key_id, "AKIDDEFAULT");
}

TEST_F(CredentialsTest, CredentialsFileWinsOverConfigFile) {
  Write(".aws/credentials", Profile("[work]", "AKIDCREDS", kFileSecret));
  Write(".aws/config", Profile("[profile work]", "AKIDCONFIG", kConfigSecret));
  auto c = LoadCredentials("work", Env());
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->access_key_id, "AKIDCREDS");
}

TEST_F(CredentialsTest, ProfileWithoutKeysInCredentialsFileFallsThroughToConfig) {
  Write(".aws/credentials", "[work]\nregion = us-west-2\n");
  Write(".aws/config", Profile("[profile work]", "AKIDCONFIG", kConfigSecret));
  auto c = LoadCredentials("work", Env());
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->access_key_id, "AKIDCONFIG");
}

TEST_F(CredentialsTest, SessionTokenFromFileIncludingTheLegacyName) {
  Write(".aws/credentials", Profile("[a]", "AKIDA", kFileSecret) + "aws_session_token = TOKENA\n" +
                                Profile("[b]", "AKIDB", kFileSecret) + "aws_security_token = TOKENB\n");
  auto a = LoadCredentials("a", Env());
  ASSERT_TRUE(a.has_value()) << a.error().message;
  EXPECT_EQ(a->session_token, "TOKENA");
  auto b = LoadCredentials("b", Env());
  ASSERT_TRUE(b.has_value()) << b.error().message;
  EXPECT_EQ(b->session_token, "TOKENB");
}

// ---------------------------------------------------------------------------------------------------------------
// The INI dialect
// ---------------------------------------------------------------------------------------------------------------

TEST_F(CredentialsTest, CommentsWhitespaceCaseCrlfAndNestedBlocks) {
  Write(".aws/credentials",
        "\xEF\xBB\xBF# written by aws configure\r\n"
        "; another comment\r\n"
        "\r\n"
        "  [ default ]   # trailing comment\r\n"
        "AWS_ACCESS_KEY_ID=AKIDSPACED   ; inline comment\r\n"
        "\taws_secret_access_key :   " +
            std::string(kFileSecret) +
            "  \r\n"
            "aws_session_token = tok#en-with-hash\r\n"
            "s3 =\r\n"
            "    aws_access_key_id = AKIDNESTED\r\n"
            "    max_concurrent_requests = 20\r\n");
  auto c = LoadCredentials("", Env());
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->access_key_id, "AKIDSPACED");  // The nested "s3 =" block does not override it.
  EXPECT_EQ(c->secret_access_key, kFileSecret);
  EXPECT_EQ(c->session_token, "tok#en-with-hash");  // '#' only starts a comment after white space.
}

TEST_F(CredentialsTest, ProfileNameWithExtraSpacesInConfigHeader) {
  Write(".aws/config", Profile("[profile    spaced ]", "AKIDSPACED", kConfigSecret) +
                           Profile("[profile]", "AKIDNOTHING", kConfigSecret) +  // Not a profile; not an error.
                           Profile("[sso-session corp]", "AKIDSSO", kConfigSecret));
  auto c = LoadCredentials("spaced", Env());
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->access_key_id, "AKIDSPACED");
}

TEST_F(CredentialsTest, RepeatedSectionsMergeAndLaterSettingsWin) {
  Write(".aws/credentials",
        "[default]\naws_access_key_id = AKIDOLD\n[other]\nx = y\n[default]\n"
        "aws_access_key_id = AKIDNEW\naws_secret_access_key = " +
            std::string(kFileSecret) + "\n");
  auto c = LoadCredentials("", Env());
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->access_key_id, "AKIDNEW");
}

// ---------------------------------------------------------------------------------------------------------------
// Broken and missing setups
// ---------------------------------------------------------------------------------------------------------------

TEST_F(CredentialsTest, MalformedLineNamesFileAndLineButNotTheText) {
  // Line 3 is a pasted secret with no "name =": the message must point at it without repeating it.
  const std::string path =
      Write(".aws/credentials", "[default]\naws_access_key_id = AKIDFILE\n" + std::string(kFileSecret) + "\n");
  ExpectError(LoadCredentials("", Env()), ErrorCode::kConfig, {path + ":3:"});
}

TEST_F(CredentialsTest, MalformedSectionHeadersAndOrphanSettings) {
  const std::string path = Write(".aws/credentials", "# ok\n[default\naws_access_key_id = X\n");
  ExpectError(LoadCredentials("", Env()), ErrorCode::kConfig, {path + ":2:", "]"});
  Write(".aws/credentials", "\n\naws_access_key_id = AKID\n[default]\n");
  ExpectError(LoadCredentials("", Env()), ErrorCode::kConfig, {path + ":3:", "section"});
  Write(".aws/credentials", "[]\n");
  ExpectError(LoadCredentials("", Env()), ErrorCode::kConfig, {path + ":1:"});
  Write(".aws/credentials", "[default] junk\n");
  ExpectError(LoadCredentials("", Env()), ErrorCode::kConfig, {path + ":1:"});
  Write(".aws/credentials", "[default]\n = " + std::string(kFileSecret) + "\n");
  ExpectError(LoadCredentials("", Env()), ErrorCode::kConfig, {path + ":2:"});
}

TEST_F(CredentialsTest, MalformedConfigFileIsReportedWhenCredentialsFileHasNothing) {
  Write(".aws/credentials", "[other]\naws_access_key_id = AKID\naws_secret_access_key = S\n");
  const std::string config = Write(".aws/config", "[default]\nregion = us-west-2\n[profile x\n");
  ExpectError(LoadCredentials("", Env()), ErrorCode::kConfig, {config + ":3:"});
}

TEST_F(CredentialsTest, HalfCredentialsInAFileNameTheLineAndTheMissingSetting) {
  const std::string path =
      Write(".aws/credentials", "[default]\n\naws_secret_access_key = " + std::string(kFileSecret) + "\n");
  ExpectError(LoadCredentials("", Env()), ErrorCode::kConfig, {path + ":3:", "aws_access_key_id"});
  Write(".aws/credentials", "[default]\naws_access_key_id = AKID\n");
  ExpectError(LoadCredentials("", Env()), ErrorCode::kConfig, {path + ":2:", "aws_secret_access_key"});
}

TEST_F(CredentialsTest, NothingAnywhereNamesEveryPlaceAndTheWayOut) {
  ExpectError(LoadCredentials("", Env()), ErrorCode::kCredentials,
              {"environment", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", (home_ / ".aws/credentials").string(),
               (home_ / ".aws/config").string(), "not found", "aws configure"});
}

TEST_F(CredentialsTest, MissingProfileListsTheProfilesThatExist) {
  Write(".aws/credentials", Profile("[default]", "AKID", kFileSecret) + Profile("[play]", "AKID2", kFileSecret));
  Write(".aws/config", "[profile other]\nregion = eu-west-1\n");
  // A profile named explicitly that is in neither file is a config error (botocore's ProfileNotFound).
  ExpectError(LoadCredentials("work", Env()), ErrorCode::kConfig,
              {"profile work", "no [work] section", "[default]", "[play]", "no [profile work] section",
               "[profile other]", "aws configure --profile work"});
}

TEST_F(CredentialsTest, VariablesNamingMissingFilesAreListed) {
  vars_["AWS_SHARED_CREDENTIALS_FILE"] = (home_ / "nope/creds").string();
  vars_["AWS_CONFIG_FILE"] = (home_ / "nope/config").string();
  ExpectError(LoadCredentials("", Env()), ErrorCode::kCredentials,
              {(home_ / "nope/creds").string() + " (not found)", (home_ / "nope/config").string() + " (not found)"});
}

TEST_F(CredentialsTest, WithoutHomeTheDefaultFilesAreReportedAsUnknown) {
  vars_.erase("HOME");
  ExpectError(LoadCredentials("", Env()), ErrorCode::kCredentials, {"HOME is not set", "aws configure"});
}

TEST_F(CredentialsTest, UnreadableFileIsAConfigError) {
  // A directory where the file should be: fopen succeeds, reading fails (EISDIR). Works as root too.
  fs::create_directories(home_ / "adir");
  vars_["AWS_SHARED_CREDENTIALS_FILE"] = (home_ / "adir").string();
  ExpectError(LoadCredentials("", Env()), ErrorCode::kConfig, {(home_ / "adir").string()});
}

TEST(ProcessEnv, ReadsTheRealEnvironment) {
  ::setenv("SITESYNC_TEST_PROCESS_ENV", "value", 1);
  ::unsetenv("SITESYNC_TEST_PROCESS_ENV_UNSET");
  const EnvLookup env = ProcessEnv();
  EXPECT_EQ(env("SITESYNC_TEST_PROCESS_ENV"), "value");
  EXPECT_EQ(env("SITESYNC_TEST_PROCESS_ENV_UNSET"), std::nullopt);
  ::unsetenv("SITESYNC_TEST_PROCESS_ENV");
}

// ---------------------------------------------------------------------------------------------------------------
// Region
// ---------------------------------------------------------------------------------------------------------------

TEST_F(CredentialsTest, RegionPrecedence) {
  Write(".aws/config", "[default]\nregion = eu-west-1\n[profile work]\nregion = ap-southeast-2\n");
  Write(".aws/credentials", "[default]\nregion = sa-east-1\n");  // Region is read from the config file only.

  EXPECT_EQ(ResolveRegion("", "", Env()), "eu-west-1");
  EXPECT_EQ(ResolveRegion("", "work", Env()), "ap-southeast-2");
  vars_["AWS_PROFILE"] = "work";
  EXPECT_EQ(ResolveRegion("", "", Env()), "ap-southeast-2");
  EXPECT_EQ(ResolveRegion("", "default", Env()), "eu-west-1");  // Explicit profile beats AWS_PROFILE.
  vars_["AWS_DEFAULT_REGION"] = "us-west-1";
  EXPECT_EQ(ResolveRegion("", "", Env()), "us-west-1");
  vars_["AWS_REGION"] = "us-west-2";
  EXPECT_EQ(ResolveRegion("", "", Env()), "us-west-2");
  EXPECT_EQ(ResolveRegion("ca-central-1", "", Env()), "ca-central-1");
}

TEST_F(CredentialsTest, RegionDefaultsToUsEast1) {
  EXPECT_EQ(ResolveRegion("", "", Env()), "us-east-1");  // No files at all.
  Write(".aws/config", "[profile other]\nregion = eu-west-1\n");
  EXPECT_EQ(ResolveRegion("", "", Env()), "us-east-1");  // No region for this profile.
  Write(".aws/config", "[default]\nregion = eu-west-1\nbroken line\n");
  EXPECT_EQ(ResolveRegion("", "", Env()), "us-east-1");  // Malformed: ignored here, reported by LoadCredentials.
  vars_["AWS_REGION"] = "";
  vars_["AWS_DEFAULT_REGION"] = "";
  EXPECT_EQ(ResolveRegion("", "", Env()), "us-east-1");  // Empty variables count as unset.
}

// ---------------------------------------------------------------------------------------------------------------
// LoadSharedConfig: every section kind the AWS CLI reads, nested blocks kept under "parent.name"
// ---------------------------------------------------------------------------------------------------------------

TEST_F(CredentialsTest, SharedConfigKeepsProfilesSsoSessionsServicesAndNestedBlocks) {
  const std::string config = Write(".aws/config",
                                   "[default]\nregion = eu-west-1\ns3 =\n  addressing_style = path\n"
                                   "[profile   deploy]\nrole_arn = arn:aws:iam::123456789012:role/deploy\n"
                                   "source_profile = default\nservices = local\n"
                                   "[sso-session corp]\nsso_region = us-east-2\nsso_start_url = https://x/start\n"
                                   "[services local]\ns3 =\n  endpoint_url = http://127.0.0.1:9000\n"
                                   "cloudfront =\n\tendpoint_url = http://127.0.0.1:9001\nsts =\n"
                                   "[unknown thing]\nkey = value\n");
  Write(".aws/credentials", Profile("[deploy]", "AKIDDEPLOY", kFileSecret));
  Result<SharedConfig> shared = LoadSharedConfig(Env());
  ASSERT_TRUE(shared.has_value()) << shared.error().message;
  EXPECT_TRUE(shared->config_exists);
  EXPECT_TRUE(shared->credentials_exists);
  EXPECT_EQ(shared->config_path, config);

  const ConfigSection* def = shared->ConfigProfile("default");
  ASSERT_NE(def, nullptr);
  EXPECT_EQ(def->Get("region"), "eu-west-1");
  EXPECT_EQ(def->Get("s3.addressing_style"), "path");
  EXPECT_EQ(def->Find("addressing_style"), nullptr);

  const ConfigSection* deploy = shared->ConfigProfile("deploy");
  ASSERT_NE(deploy, nullptr);
  EXPECT_EQ(deploy->Get("role_arn"), "arn:aws:iam::123456789012:role/deploy");
  EXPECT_EQ(deploy->Get("services"), "local");
  EXPECT_EQ(deploy->file, config);
  EXPECT_EQ(deploy->line, 5);
  ASSERT_NE(shared->CredentialsProfile("deploy"), nullptr);
  EXPECT_EQ(shared->CredentialsProfile("deploy")->Get("aws_access_key_id"), "AKIDDEPLOY");

  ASSERT_EQ(shared->sso_sessions.count("corp"), 1u);
  EXPECT_EQ(shared->sso_sessions.at("corp").Get("sso_region"), "us-east-2");

  ASSERT_EQ(shared->services.count("local"), 1u);
  const ConfigSection& local = shared->services.at("local");
  EXPECT_EQ(local.Get("s3.endpoint_url"), "http://127.0.0.1:9000");
  EXPECT_EQ(local.Get("cloudfront.endpoint_url"), "http://127.0.0.1:9001");
  EXPECT_EQ(local.Find("sts"), nullptr);  // an empty block has no settings
  EXPECT_EQ(shared->ConfigProfile("unknown thing"), nullptr);
}

TEST_F(CredentialsTest, SharedConfigWithoutFilesIsEmptyAndMalformedNamesFileAndLine) {
  Result<SharedConfig> none = LoadSharedConfig(Env());
  ASSERT_TRUE(none.has_value());
  EXPECT_FALSE(none->config_exists);
  EXPECT_TRUE(none->config_profiles.empty());

  const std::string path = Write(".aws/config", "[services x]\ns3 =\n  endpoint_url = http://h\n[broken\n");
  Result<SharedConfig> bad = LoadSharedConfig(Env());
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code, ErrorCode::kConfig);
  EXPECT_NE(bad.error().message.find(path + ":4:"), std::string::npos) << bad.error().message;
}

TEST_F(CredentialsTest, ChosenProfileIsExplicitThenAwsProfileThenDefault) {
  EXPECT_EQ(ChosenProfile("", Env()), "default");
  vars_["AWS_PROFILE"] = "fromenv";
  EXPECT_EQ(ChosenProfile("", Env()), "fromenv");
  EXPECT_EQ(ChosenProfile("given", Env()), "given");
}

TEST(StaticCredentialsTest, ReturnsTheSameKeysWithOrWithoutForce) {
  Credentials c;
  c.access_key_id = "AKIDSTATIC";
  c.secret_access_key = "secret";
  c.source = "test";
  auto provider = StaticCredentials(c);
  for (bool force : {false, true}) {
    Result<Credentials> got = provider->Get(force);
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->access_key_id, "AKIDSTATIC");
    EXPECT_FALSE(got->expiration.has_value());
  }
}

}  // namespace
}  // namespace sitesync::aws
