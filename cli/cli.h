// cli/: the command line, the config file and the output. main() wires these to the modules.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "aws/aws.h"
#include "cdn/cdn.h"
#include "sitemap/sitemap.h"
#include "sync/sync.h"

namespace sitesync::cli {

/// Exit codes (CLI.md): 0 ok; 1 an operation failed after retries; 2 usage, config or input error; 3 refused
/// by a safety guard.
enum ExitCode : int { kExitOk = 0, kExitFailed = 1, kExitUsage = 2, kExitRefused = 3 };

/// Every setting, from the command line and the config file. Unset optionals take the defaults of CLI.md.
struct Settings {
  std::string command;  ///< "sync", "plan", "watch", "invalidate", "sitemap", "init" or "check".
  std::optional<std::string> source;
  std::optional<std::string> destination;
  std::optional<std::string> region;
  std::optional<std::string> endpoint;
  std::optional<std::string> profile;
  std::optional<std::string> compare;
  std::optional<bool> path_style;
  std::optional<bool> delete_stale;
  std::optional<std::int64_t> max_deletes;
  std::optional<double> max_delete_fraction;  ///< In [0, 1]; 1 turns the fraction and empty-SOURCE guards off.
  std::optional<int> jobs;
  std::vector<std::string> exclude;
  std::vector<std::string> include;
  std::vector<sitemap::HeaderRule> headers;
  // CloudFront (cdn.* in the config).
  std::optional<std::string> distribution;  ///< An ID, or "auto".
  std::optional<std::string> cloudfront_endpoint;
  std::optional<bool> invalidate;
  std::optional<bool> wait;
  std::optional<std::string> index_document;
  std::optional<bool> bare_alias;
  std::optional<std::int64_t> max_paths;
  std::optional<std::int64_t> max_wildcards;
  std::optional<std::string> url_prefix;      ///< cdn.url_prefix: the URL path the DEST prefix is served under.
  std::vector<std::string> cdn_skip;          ///< cdn.skip: globs of keys never invalidated.
  std::optional<bool> invalidate_new;         ///< cdn.invalidate_new (true): invalidate keys uploaded as new.
  std::vector<std::string> invalidate_paths;  ///< The PATH... of `sitesync invalidate`.
  bool discard_owed = false;                  ///< `sitesync invalidate --discard-owed`.
  // watch.* in the config.
  std::optional<std::int64_t> debounce_ms;
  std::optional<std::int64_t> max_delay_ms;
  std::optional<std::int64_t> poll_ms;            ///< --poll MS: stat snapshots instead of inotify; 0: inotify.
  std::optional<std::int64_t> rescan_interval_s;  ///< Unwatchable folders (ENOSPC) are rescanned this often.
  std::optional<std::int64_t> delete_delay_ms;  ///< watch.delete_delay_ms: quiet time before a delete (2000).
  // sitemap.* in the config; --base-url and -o of `sitesync sitemap`.
  std::optional<bool> sitemap_enabled;
  std::optional<std::string> base_url;
  std::optional<std::string> sitemap_output;  ///< -o FILE; relative to SOURCE when from the config.

  // TLS (issue 13): --ca-bundle / ca_bundle (relative to the config file's folder), --no-verify-ssl.
  std::optional<std::string> ca_bundle;
  bool no_verify_ssl = false;

  bool dry_run = false;
  bool force = false;  ///< --force: upload every file, changed or not.
  bool refresh_headers = false;  ///< --refresh-headers: HEAD objects without a record entry, fix their headers.
  std::vector<sitemap::CompressRule> compress;  ///< compress: [{match, encoding}]
  std::vector<sitemap::Redirect> redirects;     ///< redirects: [{from, to}]
  std::optional<bool> clean_urls;               ///< clean_urls (false)
  std::optional<std::int64_t> invalidate_interval_s;  ///< watch.invalidate_interval_s (0: every batch)
  bool json = false;
  bool quiet = false;
  bool verbose = false;
  std::optional<std::string> config_path;
  /// Options given on the command line that mean nothing to this command ("--delete" for invalidate): accepted
  /// so that scripts can pass one option set to every command, and named in a -v note.
  std::vector<std::string> ignored_options;
};

/// What parsing the command line decided.
struct ParsedArgs {
  Settings settings;
  std::optional<int> exit_now;  ///< Set for --help / --version / a usage error: exit with this code.
};

/// Parses argv with CLI11. Prints help, version or the usage error itself (help to stdout, errors to stderr).
ParsedArgs ParseCommandLine(int argc, const char* const* argv);

/// Loads a sitesync.yaml into `into` (only keys not already set on the command line are taken; lists are
/// prepended). A relative `source` is taken relative to the config file's folder. Fails with kConfig naming the
/// file, the line and the problem.
[[nodiscard]] aws::Result<void> LoadConfig(const std::string& path, Settings& into);

/// The sync options resolved from settings, with defaults and validation (kUsage on bad values).
struct Resolved {
  sync::SyncOptions sync;
  sync::S3Endpoint endpoint;
  std::string endpoint_source;  ///< Where the S3 endpoint came from, for -v ("AWS_ENDPOINT_URL_S3", ...).
  int jobs = 64;
  /// No --jobs and no jobs: the number in flight finds its own level (aws::ClientOptions::adaptive_in_flight).
  bool adaptive_jobs = true;
};
[[nodiscard]] aws::Result<Resolved> Resolve(const Settings& settings, const aws::EnvLookup& env);

/// The CloudFront side of a run, resolved from settings.
struct CdnResolved {
  bool enabled = false;          ///< A distribution is set and invalidation is not turned off.
  std::string distribution;      ///< An ID, or "auto".
  cdn::CloudFrontEndpoint endpoint;
  cdn::PathOptions paths;
  bool wait = false;
  std::optional<std::string> url_prefix;  ///< cdn.url_prefix, normalised ("" or ending in '/').
  std::string endpoint_source;  ///< Where `endpoint` came from, for -v (set by the ResolveCdn that takes `env`).
};
/// The CloudFront settings, with `endpoint` from --cloudfront-endpoint only (no environment is read).
[[nodiscard]] aws::Result<CdnResolved> ResolveCdn(const Settings& settings);
/// The same, with the endpoint resolved like the AWS CLI (aws::ResolveEndpoint: --cloudfront-endpoint,
/// AWS_ENDPOINT_URL_CLOUDFRONT, AWS_ENDPOINT_URL, the profile's services / endpoint_url, the partition's, signed
/// for its global region) when CloudFront will be called. kConfig for CloudFront in GovCloud, bad settings.
[[nodiscard]] aws::Result<CdnResolved> ResolveCdn(const Settings& settings, const aws::EnvLookup& env);

/// The TLS settings and User-Agent every HTTP client of a run shares, resolved into `options`: the CA bundle from
/// --ca-bundle, else `ca_bundle` in sitesync.yaml, else AWS_CA_BUNDLE, else the chosen profile's `ca_bundle` in the
/// shared config file (else the system's CAs); verify_tls off for --no-verify-ssl; User-Agent sitesync/VERSION.
/// Fails with kConfig naming a bundle file that is missing or unreadable (and where it was set), or a malformed
/// shared config file.
[[nodiscard]] aws::Result<void> ApplyTransportSettings(const Settings& settings, const aws::EnvLookup& env,
                                                       aws::ClientOptions& options);

/// The warning printed to stderr on every run with --no-verify-ssl (even with -q).
inline constexpr const char* kNoVerifySslWarning =
    "WARNING: --no-verify-ssl: TLS certificates and host names are NOT verified. Anyone on the network path can "
    "pose as the server, read what is sent and change what is published. Use --ca-bundle FILE (or AWS_CA_BUNDLE) "
    "with the CA that signed the server's certificate instead.";

/// Runs the command; returns the exit code.
int Run(const Settings& settings);

}  // namespace sitesync::cli
