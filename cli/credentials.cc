// The credential chain of a run, wired: the profile named explicitly (--profile, `profile:`), the run's region
// for STS, the STS and SSO endpoints from the environment, MFA codes from the terminal, and the real fetcher.
// The chain itself (order, refresh) is aws/'s; this file only resolves settings.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "aws/aws.h"
#include "base/unique_fd.h"
#include "cli/commands.h"

namespace sitesync::cli {
namespace {

std::string EnvOr(const aws::EnvLookup& env, std::string_view name) {
  std::optional<std::string> v = env(name);
  return v ? *v : std::string();
}

/// A service's endpoint URL the way the AWS CLI reads it from the environment: AWS_ENDPOINT_URL_<SERVICE>, then
/// AWS_ENDPOINT_URL, unless AWS_IGNORE_CONFIGURED_ENDPOINT_URLS is true; empty: the default.
/// (The full rules, with the profile's services section and the partitions, are the endpoint resolver's.)
std::string ConfiguredEndpoint(const aws::EnvLookup& env, std::string_view service_variable) {
  std::string ignore = EnvOr(env, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
  for (char& c : ignore) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  if (ignore == "true") return {};
  std::string url = EnvOr(env, service_variable);
  if (url.empty()) url = EnvOr(env, "AWS_ENDPOINT_URL");
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

/// Reads one line from the terminal, prompting there (never on stdout, which may be JSON).
std::optional<std::string> ReadMfaCodeFromTty(std::string_view serial) {
  UniqueFd tty(::open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY));
  if (!tty) return std::nullopt;
  const std::string prompt = "Enter MFA code for " + std::string(serial) + ": ";
  if (::write(tty.get(), prompt.data(), prompt.size()) < 0) return std::nullopt;
  std::string code;
  char c = 0;
  while (code.size() < 64) {
    const ssize_t n = ::read(tty.get(), &c, 1);
    if (n <= 0 || c == '\n') break;
    if (c != '\r' && c != ' ') code.push_back(c);
  }
  if (code.empty()) return std::nullopt;
  return code;
}

}  // namespace

aws::CredentialChainOptions CredentialChainSettings(const Settings& settings, const aws::EnvLookup& env,
                                                    const std::string& region) {
  aws::CredentialChainOptions options;
  options.profile = settings.profile.value_or("");
  options.env = env;
  options.region = region;
  options.sts = [env](std::string_view sts_region) {
    aws::StsTarget target;
    target.region = std::string(sts_region);
    target.endpoint = ConfiguredEndpoint(env, "AWS_ENDPOINT_URL_STS");
    if (target.endpoint.empty()) target.endpoint = "https://sts." + target.region + ".amazonaws.com";
    return target;
  };
  options.sso_endpoint = [env](std::string_view sso_region) {
    std::string endpoint = ConfiguredEndpoint(env, "AWS_ENDPOINT_URL_SSO");
    if (endpoint.empty()) endpoint = "https://portal.sso." + std::string(sso_region) + ".amazonaws.com";
    return endpoint;
  };
  // An MFA prompt only where someone can answer it: in CI (stdin not a terminal) a profile with mfa_serial fails
  // with a message saying so, instead of waiting.
  if (::isatty(STDIN_FILENO) == 1) options.read_mfa_code = ReadMfaCodeFromTty;
  return options;
}

aws::Result<std::shared_ptr<aws::CredentialProvider>> ResolveCredentials(const Settings& settings,
                                                                        const aws::EnvLookup& env,
                                                                        const std::string& region,
                                                                        const aws::ClientOptions& transport) {
  aws::ClientOptions fetch_transport;
  fetch_transport.region = region;
  fetch_transport.ca_bundle = transport.ca_bundle;
  fetch_transport.verify_tls = transport.verify_tls;
  fetch_transport.user_agent = transport.user_agent;
  fetch_transport.trace = transport.trace;
  std::shared_ptr<aws::CredentialFetcher> fetcher = aws::NetworkCredentialFetcher(std::move(fetch_transport), env);
  return aws::ResolveCredentialChain(CredentialChainSettings(settings, env, region), std::move(fetcher));
}

}  // namespace sitesync::cli
