// ApplyTransportSettings: where the CA bundle comes from (--ca-bundle > ca_bundle in sitesync.yaml > AWS_CA_BUNDLE >
// the profile's ca_bundle), a bundle that cannot be read, --no-verify-ssl, the User-Agent. Files in a temp dir and
// an injected environment only.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "cli/cli.h"

namespace sitesync::cli {
namespace {

namespace fs = std::filesystem;

class TransportSettingsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "sitesync-tls-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    for (const char* name : {"cli.pem", "yaml.pem", "env.pem", "profile.pem", "other.pem"}) {
      std::ofstream(dir_ / name) << "-----BEGIN CERTIFICATE-----\n";
    }
    std::ofstream(dir_ / "config") << "[default]\nca_bundle = " << (dir_ / "profile.pem").string()
                                   << "\n[profile other]\nca_bundle = " << (dir_ / "other.pem").string() << "\n";
    vars_["AWS_CONFIG_FILE"] = (dir_ / "config").string();
    vars_["AWS_SHARED_CREDENTIALS_FILE"] = (dir_ / "credentials").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  aws::EnvLookup Env() const {
    return [vars = vars_](std::string_view name) -> std::optional<std::string> {
      auto it = vars.find(std::string(name));
      if (it == vars.end()) return std::nullopt;
      return it->second;
    };
  }
  aws::Result<aws::ClientOptions> Apply(const Settings& s) const {
    aws::ClientOptions options;
    if (auto ok = ApplyTransportSettings(s, Env(), options); !ok) return std::unexpected(ok.error());
    return options;
  }
  std::string Path(const char* name) const { return (dir_ / name).string(); }

  fs::path dir_;
  std::map<std::string, std::string> vars_;
};

TEST_F(TransportSettingsTest, BundlePrecedenceOptionThenConfigThenEnvironmentThenProfile) {
  Settings s;
  EXPECT_EQ(Apply(s)->ca_bundle, Path("profile.pem")) << "the default profile's ca_bundle";
  s.profile = "other";
  EXPECT_EQ(Apply(s)->ca_bundle, Path("other.pem")) << "the chosen profile's";
  vars_["AWS_CA_BUNDLE"] = Path("env.pem");
  EXPECT_EQ(Apply(s)->ca_bundle, Path("env.pem")) << "AWS_CA_BUNDLE beats the profile";

  const fs::path yaml = dir_ / "sitesync.yaml";
  std::ofstream(yaml) << "ca_bundle: yaml.pem\n";
  Settings from_config;
  ASSERT_TRUE(LoadConfig(yaml.string(), from_config).has_value());
  EXPECT_EQ(from_config.ca_bundle, Path("yaml.pem")) << "relative to the config file's folder";
  EXPECT_EQ(Apply(from_config)->ca_bundle, Path("yaml.pem")) << "sitesync.yaml beats AWS_CA_BUNDLE";

  Settings from_cli;
  from_cli.ca_bundle = Path("cli.pem");
  ASSERT_TRUE(LoadConfig(yaml.string(), from_cli).has_value());
  EXPECT_EQ(Apply(from_cli)->ca_bundle, Path("cli.pem")) << "--ca-bundle beats sitesync.yaml";
}

TEST_F(TransportSettingsTest, NoBundleAnywhereMeansTheSystemsCas) {
  vars_["AWS_CONFIG_FILE"] = Path("missing-config");
  auto o = Apply(Settings{});
  ASSERT_TRUE(o.has_value()) << o.error().message;
  EXPECT_TRUE(o->ca_bundle.empty());
  EXPECT_TRUE(o->verify_tls);
}

TEST_F(TransportSettingsTest, AMissingBundleIsAConfigErrorNamingItAndWhereItWasSet) {
  vars_["AWS_CA_BUNDLE"] = Path("nope.pem");
  auto o = Apply(Settings{});
  ASSERT_FALSE(o.has_value());
  EXPECT_EQ(o.error().code, aws::ErrorCode::kConfig);
  EXPECT_NE(o.error().message.find(Path("nope.pem")), std::string::npos) << o.error().message;
  EXPECT_NE(o.error().message.find("AWS_CA_BUNDLE"), std::string::npos) << o.error().message;

  vars_.erase("AWS_CA_BUNDLE");
  Settings s;
  s.ca_bundle = dir_.string();  // a folder
  o = Apply(s);
  ASSERT_FALSE(o.has_value());
  EXPECT_NE(o.error().message.find("not a regular file"), std::string::npos) << o.error().message;

  std::ofstream(dir_ / "config") << "[default]\nca_bundle = " << Path("gone.pem") << "\n";
  o = Apply(Settings{});
  ASSERT_FALSE(o.has_value());
  EXPECT_NE(o.error().message.find("ca_bundle of profile default in " + Path("config") + ":2"), std::string::npos)
      << o.error().message;
}

TEST_F(TransportSettingsTest, NoVerifySslTurnsVerificationOffAndUserAgentNamesTheVersion) {
  Settings s;
  auto o = Apply(s);
  ASSERT_TRUE(o.has_value());
  EXPECT_TRUE(o->verify_tls);
  EXPECT_TRUE(o->user_agent.starts_with("sitesync/")) << o->user_agent;
  EXPECT_GT(o->user_agent.size(), std::string_view("sitesync/").size());
  s.no_verify_ssl = true;
  EXPECT_FALSE(Apply(s)->verify_tls);
}

TEST_F(TransportSettingsTest, ConfigRefusesAnEmptyCaBundle) {
  const fs::path yaml = dir_ / "sitesync.yaml";
  std::ofstream(yaml) << "ca_bundle: ''\n";
  Settings s;
  auto ok = LoadConfig(yaml.string(), s);
  ASSERT_FALSE(ok.has_value());
  EXPECT_NE(ok.error().message.find("ca_bundle"), std::string::npos) << ok.error().message;
}

}  // namespace
}  // namespace sitesync::cli
