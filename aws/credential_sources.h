// The pieces of the network credential sources (aws/credential_sources.cc) that are pure or touch only a child
// process, declared here so that credential_sources_test.cc can drive them without a network. Private to aws/.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "aws/aws.h"

namespace sitesync::aws {

/// An ISO 8601 UTC time as STS, IMDS, the container endpoint and credential_process write it:
/// "2026-12-06T06:00:00Z", with optional fractional seconds ("...00.359Z") and a "Z", "+HH:MM" or "+HHMM" offset.
/// Fails with kParse naming `what` (never the value: it sits beside secrets).
[[nodiscard]] Result<std::chrono::system_clock::time_point> ParseIso8601(std::string_view text,
                                                                         std::string_view what);

/// The credentials in an STS answer (AssumeRole, AssumeRoleWithWebIdentity): <`result`><Credentials> with
/// AccessKeyId, SecretAccessKey, SessionToken, Expiration. `what` names the call in messages. Fails with kParse.
[[nodiscard]] Result<Credentials> ParseStsCredentials(std::string_view xml, std::string_view result,
                                                      std::string_view what);

/// IAM Identity Center's GetRoleCredentials answer: {"roleCredentials": {accessKeyId, secretAccessKey,
/// sessionToken, expiration (epoch milliseconds)}}. Fails with kParse.
[[nodiscard]] Result<Credentials> ParseSsoCredentials(std::string_view json, std::string_view what);

/// The container endpoint's and IMDS's answer: {AccessKeyId, SecretAccessKey, Token, Expiration}; an IMDS answer
/// with a "Code" other than "Success" is refused with its Code and Message. Fails with kParse (bad JSON, a field
/// missing) or kCredentials (an error Code).
[[nodiscard]] Result<Credentials> ParseMetadataCredentials(std::string_view json, std::string_view what);

/// credential_process output: {"Version": 1, AccessKeyId, SecretAccessKey, SessionToken?, Expiration?}. Fails
/// with kCredentials naming `what` (bad JSON, another Version, a field missing); never quotes the output.
[[nodiscard]] Result<Credentials> ParseProcessCredentials(std::string_view json, std::string_view what);

/// A URL split for HttpRequest: endpoint "scheme://host[:port]", decoded path and query.
struct SplitUrl {
  std::string scheme;  ///< "http" or "https", lowercase.
  std::string host;    ///< Without brackets for IPv6, lowercase.
  std::string endpoint;
  std::string path = "/";
  std::vector<std::pair<std::string, std::string>> query;
};

/// Splits an absolute http(s) URL. Fails with kConfig naming `what` when it is not one.
[[nodiscard]] Result<SplitUrl> SplitHttpUrl(std::string_view url, std::string_view what);

/// Whether AWS_CONTAINER_CREDENTIALS_FULL_URI may be called, as botocore decides: any https URL, and over http only
/// a loopback address (127.0.0.0/8, ::1, "localhost") or the container hosts 169.254.170.2, 169.254.170.23 and
/// fd00:ec2::23 (a plain http URL elsewhere would hand the authorization token to anyone on the path).
[[nodiscard]] bool ContainerHostAllowed(const SplitUrl& url);

/// The test-only override of the relative URI's host (http://169.254.170.2): "http://127.0.0.1:PORT". No AWS SDK
/// documents one, so the name is sitesync's own; it is read only when AWS_CONTAINER_CREDENTIALS_RELATIVE_URI is set.
inline constexpr std::string_view kContainerHostOverrideEnv = "SITESYNC_CONTAINER_CREDENTIALS_HOST";

/// What a finished child process left.
struct ProcessResult {
  int exit_status = 0;     ///< The exit code when it exited.
  int signal = 0;          ///< The signal that ended it, 0 when it exited.
  bool timed_out = false;  ///< It ran longer than allowed and was killed (with its process group).
  std::string out;         ///< Its standard output (at most the limit).
  std::string err_tail;    ///< The end of its standard error (a few KiB).
};

/// Runs `/bin/sh -c command` with stdin inherited, stdout captured up to `max_output` bytes (more is an error)
/// and stderr's tail kept; kills the child's process group after `timeout`. Fails with kCredentials naming `what`
/// when it cannot start, writes too much, or fails to be waited for.
[[nodiscard]] Result<ProcessResult> RunShellCommand(const std::string& command, std::chrono::milliseconds timeout,
                                                    std::size_t max_output, std::string_view what);

/// The last non-empty line of `text`, trimmed and cut to about 300 bytes (for a failing helper's stderr).
[[nodiscard]] std::string LastLine(std::string_view text);

}  // namespace sitesync::aws
