// cdn/: CloudFront invalidation. Exactly the changed paths and their directory aliases, encoded as CloudFront
// wants them, collapsed to wildcards past a budget, one CreateInvalidation per run, and a journal so that an
// owed invalidation is never forgotten.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "aws/aws.h"

namespace sitesync::cdn {

/// The cdn.* settings that shape the path set.
struct PathOptions {
  std::string index_document = "index.html";
  bool bare_alias = true;        ///< Also "/dir" besides "/dir/" for "dir/index.html".
  std::size_t max_paths = 1000;  ///< Past this many exact paths, collapse to wildcards.
  std::size_t max_wildcards = 8;
};

/// Percent-encodes a URL path for CloudFront (uppercase hex): bytes >= 0x80, control bytes, space and
/// `" # % < > [ \ ] ^ ` { | } ~ * ?`; nothing else (CloudFront: encoding other characters makes the
/// invalidation miss). With `keep_trailing_star`, a final '*' stays a wildcard.
[[nodiscard]] std::string EncodePath(std::string_view raw, bool keep_trailing_star = false);

/// The encoded invalidation paths for keys relative to the site root ("a/b/index.html"): "/" + key, plus for an
/// index document "/a/b/" and (bare_alias) "/a/b"; the root index gives "/". Deduplicated and sorted.
[[nodiscard]] std::vector<std::string> InvalidationPaths(std::span<const std::string> rel_keys,
                                                         const PathOptions& options);

/// A set of paths to submit, and whether it was collapsed.
struct PathSet {
  std::vector<std::string> paths;
  bool collapsed = false;
  std::size_t exact_count = 0;  ///< How many exact paths there were before collapsing.
};

/// `exact` as is when it has at most max_paths entries. Else at most max_wildcards "/dir/*" wildcards ("/*" at
/// worst) that cover every exact path, each as deep as the budget allows (the deepest folder holding two or more
/// is merged first); bare folder aliases ("/blog" beside "/blog/") and root-level paths that no wildcard covers
/// stay exact when they fit in max_paths, rather than forcing "/*".
[[nodiscard]] PathSet Collapse(std::span<const std::string> exact, const PathOptions& options);

/// True when the wildcard or exact path `pattern` covers `path` (CloudFront: a '*' at the end matches any rest).
[[nodiscard]] bool Covers(std::string_view pattern, std::string_view path);

// ---------------------------------------------------------------------------------------------------------------
// The journal of owed paths (one file per distribution under the state dir)
// ---------------------------------------------------------------------------------------------------------------

/// What is owed to one distribution.
struct Owed {
  std::string distribution_id;
  std::string caller_reference;    ///< Made once per batch; reused on every retry of the same batch.
  std::vector<std::string> paths;  ///< Encoded exact paths (or wildcards from `sitesync invalidate`), sorted.
};

/// The state dir: $XDG_STATE_HOME/sitesync, else $HOME/.local/state/sitesync.
[[nodiscard]] aws::Result<std::filesystem::path> StateDir(const aws::EnvLookup& env);

class Journal {
 public:
  explicit Journal(std::filesystem::path dir) : dir_(std::move(dir)) {}

  /// What is owed to `distribution_id`, or an empty Owed when nothing is. Fails with kIo/kParse naming the file.
  [[nodiscard]] aws::Result<Owed> Load(const std::string& distribution_id) const;
  /// Writes `owed` atomically (temp file, fsync, rename, fsync of the folder).
  [[nodiscard]] aws::Result<void> Save(const Owed& owed) const;
  /// Removes the entry: CloudFront has accepted it.
  [[nodiscard]] aws::Result<void> Clear(const std::string& distribution_id) const;

  std::filesystem::path FileFor(const std::string& distribution_id) const;

 private:
  std::filesystem::path dir_;
};

/// Adds `paths` to `owed`. When `new_batch` (new content is about to go up), a new CallerReference is made so
/// that CloudFront does not answer with an invalidation made before this content; otherwise the reference is
/// kept (a pure retry). Returns true when anything changed.
bool AddOwed(Owed& owed, std::span<const std::string> paths, bool new_batch);

/// A fresh CallerReference: time plus random bits.
[[nodiscard]] std::string NewCallerReference();

// ---------------------------------------------------------------------------------------------------------------
// CloudFront API
// ---------------------------------------------------------------------------------------------------------------

struct CloudFrontEndpoint {
  std::string endpoint = "https://cloudfront.amazonaws.com";
};

struct Invalidation {
  std::string id;
  std::string status;  ///< "InProgress" or "Completed".
};

/// CreateInvalidation for `paths` with `caller_reference` (CloudFront returns the existing invalidation for a
/// repeated reference with the same paths).
[[nodiscard]] aws::Result<Invalidation> CreateInvalidation(aws::HttpClient& client, const CloudFrontEndpoint& endpoint,
                                                           const std::string& distribution_id,
                                                           std::span<const std::string> paths,
                                                           const std::string& caller_reference);

[[nodiscard]] aws::Result<Invalidation> GetInvalidation(aws::HttpClient& client, const CloudFrontEndpoint& endpoint,
                                                        const std::string& distribution_id,
                                                        const std::string& invalidation_id);

/// Polls GetInvalidation until Completed or `timeout`; `progress` gets the status and elapsed time per poll.
[[nodiscard]] aws::Result<Invalidation> WaitForInvalidation(
    aws::HttpClient& client, const CloudFrontEndpoint& endpoint, const std::string& distribution_id,
    const std::string& invalidation_id, std::chrono::seconds timeout,
    const std::function<void(const Invalidation&, std::chrono::seconds elapsed)>& progress);

/// A distribution's S3-facing origins.
struct Origin {
  std::string domain;  ///< e.g. "my-site.s3.amazonaws.com".
  std::string path;    ///< Origin path, "" or "/site".
};
struct Distribution {
  std::string id;
  std::string domain;  ///< d123.cloudfront.net
  std::vector<Origin> origins;
};

/// Every distribution (ListDistributions, paged), with origins; when a summary has no origins (moto), they are
/// read with GetDistribution.
[[nodiscard]] aws::Result<std::vector<Distribution>> ListDistributions(aws::HttpClient& client,
                                                                       const CloudFrontEndpoint& endpoint);

/// One distribution with its origins (GetDistribution). kNotFound (service code NoSuchDistribution) when the
/// account has no distribution with that ID; kParse when the answer is not a Distribution.
[[nodiscard]] aws::Result<Distribution> GetDistribution(aws::HttpClient& client, const CloudFrontEndpoint& endpoint,
                                                        const std::string& distribution_id);

/// The bucket named by an S3 origin domain (BUCKET.s3.amazonaws.com, BUCKET.s3.REGION.amazonaws.com,
/// BUCKET.s3-website-REGION.amazonaws.com, BUCKET.s3-website.REGION.amazonaws.com), or nullopt.
[[nodiscard]] std::optional<std::string> BucketOfOriginDomain(std::string_view domain);

/// A distribution chosen for a bucket and prefix, and the part of the prefix that is part of URLs.
struct Match {
  std::string distribution_id;
  std::string url_prefix;  ///< DEST prefix minus the origin path ("" when the origin path is the prefix).
};

/// Picks the one distribution whose origin is `bucket` and whose origin path is the DEST `prefix` (or a folder
/// above it). None or several: kUsage naming the candidates.
[[nodiscard]] aws::Result<Match> MatchDistribution(std::span<const Distribution> distributions,
                                                   const std::string& bucket, const std::string& prefix);

}  // namespace sitesync::cdn
