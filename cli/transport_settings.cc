// The settings every HTTP client of a run shares: the CA bundle and verification (issue 13, point 5) and the
// User-Agent. Proxies are not here: curl reads HTTPS_PROXY / HTTP_PROXY / ALL_PROXY / NO_PROXY itself.
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "cli/cli.h"

#ifndef SITESYNC_VERSION
#define SITESYNC_VERSION "0.0.0"
#endif

namespace sitesync::cli {
namespace {

// Where the CA bundle came from, for messages.
struct BundleSetting {
  std::string path;
  std::string from;
};

// The bundle in the AWS CLI's order, with --ca-bundle and sitesync.yaml first; std::nullopt: the system's CAs.
aws::Result<std::optional<BundleSetting>> ChooseBundle(const Settings& s, const aws::EnvLookup& env) {
  if (s.ca_bundle) {
    return BundleSetting{*s.ca_bundle, s.config_path ? "--ca-bundle or ca_bundle in " + *s.config_path
                                                     : std::string("--ca-bundle")};
  }
  if (auto v = env("AWS_CA_BUNDLE"); v && !v->empty()) return BundleSetting{*v, "AWS_CA_BUNDLE"};
  auto shared = aws::LoadSharedConfig(env);
  if (!shared) return std::unexpected(shared.error());
  const std::string profile = aws::ChosenProfile(s.profile.value_or(""), env);
  if (const aws::ConfigSection* section = shared->ConfigProfile(profile)) {
    if (const aws::ConfigValue* v = section->Find("ca_bundle")) {
      return BundleSetting{v->value, fmt::format("ca_bundle of profile {} in {}:{}", profile, section->file, v->line)};
    }
  }
  return std::optional<BundleSetting>();
}

}  // namespace

aws::Result<void> ApplyTransportSettings(const Settings& s, const aws::EnvLookup& env, aws::ClientOptions& options) {
  options.user_agent = "sitesync/" SITESYNC_VERSION;
  options.verify_tls = !s.no_verify_ssl;
  auto bundle = ChooseBundle(s, env);
  if (!bundle) return std::unexpected(bundle.error());
  if (!*bundle) return {};
  const BundleSetting& b = **bundle;
  // Checked here so that a wrong path is a config error before anything is sent (curl would only say "error
  // setting certificate file" on the first HTTPS request).
  std::error_code ec;
  const bool regular = std::filesystem::is_regular_file(b.path, ec);
  std::string why;
  if (!regular) {
    why = std::filesystem::exists(b.path, ec) ? "not a regular file" : std::strerror(ENOENT);
  } else if (::access(b.path.c_str(), R_OK) != 0) {
    why = std::strerror(errno);
  }
  if (!why.empty()) {
    return aws::Fail(aws::ErrorCode::kConfig,
                     fmt::format("CA bundle {} (from {}) cannot be read: {}; give the path of a PEM file of the CA "
                                 "that signed the server's certificate",
                                 b.path, b.from, why));
  }
  options.ca_bundle = b.path;
  return {};
}

}  // namespace sitesync::cli
