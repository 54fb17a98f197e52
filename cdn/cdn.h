// cdn/: CloudFront invalidation. Exactly the changed paths and their directory aliases, encoded as CloudFront
// wants them, collapsed to wildcards past a budget, one CreateInvalidation per run, and a journal so that an
// owed invalidation is never forgotten.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "aws/aws.h"

namespace sitesync::cdn {

/// The cdn.* settings that shape the path set.
struct PathOptions {
  std::string index_document = "index.html";
  bool bare_alias = true;        ///< Also "/dir" besides "/dir/" for "dir/index.html".
  std::size_t max_paths = 1000;  ///< Past this many exact paths, collapse to wildcards.
  std::size_t max_wildcards = 8;
  /// cdn.skip: keys (relative to the DEST prefix) matching any of these globs (sitemap::GlobMatch syntax, as
  /// exclude) are never invalidated, nor their index-document aliases.
  std::vector<std::string> skip{};
  /// cdn.invalidate_new: false leaves out keys that did not exist in the bucket before the run or batch.
  bool invalidate_new = true;
};

/// Percent-encodes a URL path for CloudFront (uppercase hex): bytes >= 0x80, control bytes, space and
/// `" # % < > [ \ ] ^ ` { | } ~ * ?`; nothing else (CloudFront: encoding other characters makes the
/// invalidation miss). With `keep_trailing_star`, a final '*' stays a wildcard.
[[nodiscard]] std::string EncodePath(std::string_view raw, bool keep_trailing_star = false);

/// The encoded invalidation paths for keys relative to the site root ("a/b/index.html"): "/" + key, plus for an
/// index document "/a/b/" and (bare_alias) "/a/b"; the root index gives "/". Deduplicated and sorted.
[[nodiscard]] std::vector<std::string> InvalidationPaths(std::span<const std::string> rel_keys,
                                                         const PathOptions& options);

/// The keys of `rel_keys` (relative to the DEST prefix) whose paths are owed an invalidation: those no cdn.skip
/// glob matches and, with invalidate_new false, that are not in `new_keys` (keys uploaded as new). Sorted, unique.
[[nodiscard]] std::vector<std::string> KeysToInvalidate(std::span<const std::string> rel_keys,
                                                        std::span<const std::string> new_keys,
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

/// Keys changed under one DEST whose URL paths are not known yet: the distribution could not be read when they
/// were journaled (CloudFront unreachable), so the origin path they are relative to is unknown.
struct UnmappedKeys {
  std::string bucket;
  std::string prefix;             ///< The DEST prefix, "" or ending in '/'.
  std::vector<std::string> keys;  ///< Relative to the prefix, sorted and unique.
};

/// What is owed to one distribution.
struct Owed {
  std::string distribution_id;
  std::string caller_reference;    ///< Made once per batch; reused on every retry of the same batch.
  std::vector<std::string> paths;  ///< Encoded exact paths (or wildcards from `sitesync invalidate`), sorted.
  std::vector<UnmappedKeys> unmapped{};  ///< Owed too; mapped to paths once the distribution answers.

  /// True when nothing at all is owed.
  [[nodiscard]] bool Empty() const { return paths.empty() && unmapped.empty(); }
};

/// The state dir: $XDG_STATE_HOME/sitesync, else $HOME/.local/state/sitesync.
[[nodiscard]] aws::Result<std::filesystem::path> StateDir(const aws::EnvLookup& env);

class Clock;

/// An exclusive flock on the journal folder's lock file, released when destroyed (or when the process ends, so
/// a killed process never leaves it held).
class JournalLock {
 public:
  JournalLock() = default;
  explicit JournalLock(int fd) : fd_(fd) {}
  JournalLock(JournalLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  JournalLock& operator=(JournalLock&& other) noexcept;
  JournalLock(const JournalLock&) = delete;
  JournalLock& operator=(const JournalLock&) = delete;
  ~JournalLock();

 private:
  int fd_ = -1;
};

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
  /// The lock file every process takes (flock) around a read-modify-write of any journal in the folder.
  std::filesystem::path LockFile() const { return dir_ / "journal.lock"; }
  const std::filesystem::path& dir() const { return dir_; }
  /// Takes the lock, waiting up to `timeout` (polling with `clock`) while another process holds it. Fails with
  /// kIo naming the lock file and the way out.
  [[nodiscard]] aws::Result<JournalLock> Lock(Clock& clock, std::chrono::milliseconds timeout) const;
  /// Every distribution that has a journal in the folder (sorted); unreadable names are skipped.
  [[nodiscard]] std::vector<std::string> Distributions() const;

 private:
  std::filesystem::path dir_;
};

/// Adds `paths` to `owed`. When `new_batch` (new content is about to go up), a new CallerReference is made so
/// that CloudFront does not answer with an invalidation made before this content; otherwise the reference is
/// kept (a pure retry). Returns true when anything changed.
bool AddOwed(Owed& owed, std::span<const std::string> paths, bool new_batch);

/// A fresh CallerReference: time plus random bits.
[[nodiscard]] std::string NewCallerReference();
/// The same for the wall-clock time `now` (an injected clock).
[[nodiscard]] std::string NewCallerReference(std::chrono::system_clock::time_point now);

// ---------------------------------------------------------------------------------------------------------------
// CloudFront API
// ---------------------------------------------------------------------------------------------------------------

/// Where CloudFront is called (aws::ResolveEndpoint: cloudfront.amazonaws.com, the aws-cn one, or a configured
/// URL) and the region its requests are signed for.
struct CloudFrontEndpoint {
  std::string endpoint = "https://cloudfront.amazonaws.com";
  std::string region = "us-east-1";  ///< aws: us-east-1; aws-cn: cn-northwest-1.
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

// ---------------------------------------------------------------------------------------------------------------
// Keys to URLs, and the ledger that owns the journal
// ---------------------------------------------------------------------------------------------------------------

/// CloudFront's limit of paths in one invalidation (CreateInvalidation, "Paths"): cdn.max_paths may not exceed it.
inline constexpr std::size_t kMaxInvalidationPaths = 3000;

/// How keys under a DEST become URL paths on one distribution.
struct KeyMapping {
  enum class Source {
    kOrigin,          ///< An S3 origin for the bucket at or above the DEST prefix: the prefix minus its path.
    kConfig,          ///< cdn.url_prefix.
    kOtherBucket,     ///< Its S3 origins are other buckets or other folders: keys relative to the DEST prefix.
    kCustomOrigin,    ///< None of its origins is an S3 bucket (a custom origin): keys relative to the DEST prefix.
    kUnread,          ///< The distribution may not be read (AccessDenied): keys relative to the DEST prefix.
  };
  Source source = Source::kOrigin;
  std::string url_prefix;  ///< "" or ending in '/': the URL path of rel key K is "/" + url_prefix + K.
  std::string origin;      ///< The origin used (domain + origin path), or the list of origins when none is.
};

/// The mapping `auto` uses, for one distribution: the S3 origin of `bucket` (recognised by its domain name, since
/// moto's GetDistribution leaves out S3OriginConfig) whose origin path is the DEST `prefix` or a folder above it
/// gives url_prefix = prefix minus the origin path; else kOtherBucket / kCustomOrigin with url_prefix "" (keys
/// relative to the DEST prefix, what an explicit ID always did before).
[[nodiscard]] KeyMapping MapKeys(const Distribution& distribution, const std::string& bucket,
                                 const std::string& prefix);

/// cdn.url_prefix normalised: "/blog", "blog/", "/blog/" -> "blog/"; "" or "/" -> "". kConfig when it holds a
/// character a URL path cannot (control bytes, '?', '#', '*').
[[nodiscard]] aws::Result<std::string> NormalizeUrlPrefix(std::string_view url_prefix);

/// The reason and the fix for a CloudFront error that retrying will not cure (AccessDenied, NoSuchDistribution,
/// InvalidArgument, BatchTooLarge, TooManyInvalidationsInProgress after its retries, credentials refused); ""
/// for other (transient) errors.
[[nodiscard]] std::string PermanentErrorAdvice(const aws::Error& error, const std::string& distribution_id);

/// The CloudFront calls the ledger makes: one real implementation over aws::HttpClient, fakes in tests.
class CloudFrontApi {
 public:
  virtual ~CloudFrontApi() = default;
  virtual aws::Result<Invalidation> CreateInvalidation(const std::string& distribution_id,
                                                       std::span<const std::string> paths,
                                                       const std::string& caller_reference) = 0;
  virtual aws::Result<Distribution> GetDistribution(const std::string& distribution_id) = 0;
  virtual aws::Result<std::vector<Distribution>> ListDistributions() = 0;
};

/// CloudFrontApi over the aws/ client (which retries transient errors itself).
[[nodiscard]] std::unique_ptr<CloudFrontApi> MakeCloudFrontApi(aws::HttpClient& client, CloudFrontEndpoint endpoint);

/// Time for the ledger: a monotonic clock and a sleep for the bounded lock wait, wall time for CallerReferences.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::chrono::steady_clock::time_point Now() = 0;
  virtual std::chrono::system_clock::time_point WallNow() = 0;
  virtual void SleepFor(std::chrono::milliseconds duration) = 0;
};
/// The real clock.
[[nodiscard]] Clock& SystemClock();

struct LedgerOptions {
  std::filesystem::path state_dir;         ///< StateDir(): where the journal lives.
  std::string distribution;                ///< An ID, or "auto".
  std::string bucket;                      ///< DEST; empty when there is none (`sitesync invalidate` by ID).
  std::string prefix;                      ///< DEST prefix, "" or ending in '/'.
  std::optional<std::string> url_prefix;   ///< cdn.url_prefix, normalised (NormalizeUrlPrefix).
  PathOptions paths;
  std::chrono::milliseconds lock_timeout{30000};
};

/// What a SubmitOwed did.
struct Settlement {
  std::string invalidation_id;          ///< Empty when nothing was submitted (nothing owed).
  std::vector<std::string> submitted;   ///< The paths sent (wildcards when collapsed).
  std::size_t exact_count = 0;          ///< The exact paths they cover.
  bool collapsed = false;
  std::size_t unmapped_left = 0;        ///< Keys still owed whose URL paths wait for the distribution to answer.
  std::string unmapped_reason;          ///< Why (the lookup's error), when unmapped_left > 0.
  std::size_t owed_again = 0;           ///< Keys of failed or unknown changes owed again for the next run (Settle).
};

/// Drops everything owed to `distribution_id` in the journal under `state_dir` (under the lock) and returns what
/// was dropped (`sitesync invalidate --discard-owed`). Needs no CloudFront.
[[nodiscard]] aws::Result<Owed> DiscardOwed(const std::filesystem::path& state_dir, const std::string& distribution_id,
                                            Clock& clock,
                                            std::chrono::milliseconds lock_timeout = std::chrono::seconds(30));

/// The invalidation ledger of one distribution: what is owed (in the journal under the state dir), its
/// CallerReference, submitting it, clearing exactly what CloudFront accepted, and the flock that makes every
/// change a read-modify-write of the file on disk, so that a `watch` and a manual `sync` (or two CI jobs) merge
/// what each owes instead of overwriting it. Also the key -> URL mapping (MapKeys, or cdn.url_prefix).
class Ledger {
 public:
  /// `note` gets the warnings (mapping, lookup failures); it may be empty.
  Ledger(LedgerOptions options, CloudFrontApi& api, Clock& clock, std::function<void(std::string_view)> note);

  /// Finds the distribution (auto: ListDistributions and MatchDistribution) and, with `need_mapping`, how keys
  /// map to URLs (cdn.url_prefix, else GetDistribution and MapKeys). CloudFront failing for a transient reason
  /// does not fail it: keys are journaled unmapped (with auto, under a pending id for the DEST, "auto:BUCKET/
  /// PREFIX") and mapped when CloudFront answers. Fails with kUsage for auto without a single match and for a
  /// distribution that does not exist (nothing changed).
  [[nodiscard]] aws::Result<void> Start(bool need_mapping);

  /// The distribution ID (after Start, or the given ID).
  [[nodiscard]] const std::string& distribution_id() const { return id_; }
  /// The key mapping when known.
  [[nodiscard]] const std::optional<KeyMapping>& mapping() const { return mapping_; }
  /// The journal file of this distribution.
  [[nodiscard]] std::filesystem::path File() const { return journal_.FileFor(id_); }

  /// Journals `rel_keys` (relative to the DEST prefix) as owed, before they change: mapped to URL paths, or
  /// unmapped when the mapping is not known yet. Under the lock, merged with what is on disk; a new
  /// CallerReference (new content). Fails (kIo) when the journal cannot be written or locked within the timeout.
  /// Keys cdn.skip matches, and those in `new_keys` when cdn.invalidate_new is false, are left out
  /// (KeysToInvalidate): they are neither owed nor owed again by Settle.
  [[nodiscard]] aws::Result<void> Owe(std::span<const std::string> rel_keys,
                                      std::span<const std::string> new_keys = {});
  /// Journals URL paths as given (already encoded; `sitesync invalidate`).
  [[nodiscard]] aws::Result<void> OwePaths(std::span<const std::string> paths);

  /// What is owed now, as on disk (no lock: the file is replaced atomically).
  [[nodiscard]] aws::Result<Owed> Peek() const;
  /// The paths a run that changes `rel_keys` would submit, changing nothing (dry run): owed ∪ their paths.
  /// The same keys as Owe are left out.
  [[nodiscard]] aws::Result<PathSet> Preview(std::span<const std::string> rel_keys,
                                             std::span<const std::string> new_keys = {}) const;

  /// One CreateInvalidation for everything owed (collapsed past max_paths). On success removes exactly the paths
  /// submitted from the journal (what another process added meanwhile stays). On failure everything stays owed
  /// and the error names the reason, the fix (PermanentErrorAdvice), the journal file and --discard-owed.
  [[nodiscard]] aws::Result<Settlement> SubmitOwed();

  /// After a run or batch: SubmitOwed, then, once CloudFront has accepted it, the keys this ledger journaled
  /// since the last Settle that `done_keys` (relative to the DEST prefix) does not name are owed again: a change
  /// that failed, was held back or whose answer was lost may still land (or may be retried) after this
  /// invalidation, so the next run or batch invalidates those paths once more. On failure everything stays owed.
  [[nodiscard]] aws::Result<Settlement> Settle(std::span<const std::string> done_keys);

  /// Drops everything owed to the distribution (under the lock) and returns what was dropped.
  [[nodiscard]] aws::Result<Owed> Discard();

 private:
  /// The lock held while `change` reads and rewrites the journal (bounded wait).
  aws::Result<void> Update(const std::function<aws::Result<bool>(Owed&)>& change);
  aws::Result<void> Lookup();
  /// auto: lists the distributions and picks the one for DEST (MatchDistribution); then moves what a run that
  /// could not list them journaled under the DEST's pending id into this distribution's journal.
  aws::Result<void> FindAuto();
  aws::Result<void> AdoptPending();
  [[nodiscard]] bool Pending() const { return id_ == PendingId(); }
  [[nodiscard]] std::string PendingId() const { return "auto:" + options_.bucket + "/" + options_.prefix; }
  std::vector<std::string> PathsOf(std::span<const std::string> rel_keys, const std::string& url_prefix) const;
  /// Maps the unmapped keys of `owed` with the distribution read (or the configured url prefix).
  bool MapUnmapped(Owed& owed) const;

  LedgerOptions options_;
  CloudFrontApi& api_;
  Clock& clock_;
  std::function<void(std::string_view)> note_;
  Journal journal_;
  std::string id_;
  std::optional<KeyMapping> mapping_;
  std::optional<Distribution> distribution_;  ///< Read by Start or SubmitOwed.
  std::string lookup_error_;                  ///< Why the distribution could not be read.
  std::vector<std::string> attempted_;        ///< Keys journaled by Owe since the last Settle, sorted.
};

// ---------------------------------------------------------------------------------------------------------------
// Pacing the invalidations of watch (watch.invalidate_interval_s)
// ---------------------------------------------------------------------------------------------------------------

/// When `watch` submits what its batches owe. With an interval of 0 every batch that owes paths submits them at
/// once (one invalidation per batch). With N > 0 the first batch that owes paths after a submission opens a window
/// of N seconds; the batches in it add their paths, and what is owed when it closes goes in one CreateInvalidation
/// (so at most one every N seconds), or at exit. The paths themselves stay in the journal (Ledger::Owe wrote them
/// before the change; only an accepted CreateInvalidation clears them), so a crash in between loses nothing: the
/// pacer only decides the time. A failed submission is tried again after max(N, 5 s), doubling up to 5 minutes.
class InvalidationPacer {
 public:
  InvalidationPacer(std::chrono::seconds interval, Clock& clock);

  /// True when invalidations are gathered (interval > 0).
  [[nodiscard]] bool Paced() const { return interval_.count() > 0; }
  /// A batch ended: `done` are the keys (relative to the DEST prefix) it uploaded or deleted, `failed` those whose
  /// change failed; `owes` says whether the journal owes anything now. Returns true when the owed paths are to be
  /// submitted now (always, when not paced and something is owed); else they wait for DueAt().
  bool AfterBatch(std::span<const std::string> done, std::span<const std::string> failed, bool owes);
  /// When the gathered paths are due (the window's end, or the retry after a failure); nullopt: nothing waits.
  [[nodiscard]] std::optional<std::chrono::steady_clock::time_point> DueAt() const { return due_; }
  /// True when something waits and its time has come.
  [[nodiscard]] bool Due() const;
  /// True when owed paths wait for the window (what exit must still submit).
  [[nodiscard]] bool Waiting() const { return due_.has_value(); }
  /// How many batches added to what waits.
  [[nodiscard]] std::size_t Batches() const { return batches_; }
  /// The keys changed since the last accepted submission (for Ledger::Settle: the others it attempted are owed
  /// again). A key that failed in a later batch is not in it.
  [[nodiscard]] const std::vector<std::string>& DoneKeys() const { return done_; }
  /// CloudFront accepted the submission: the window closes, the done keys are forgotten, the backoff resets.
  void Submitted();
  /// The submission failed (the paths stay owed): it is tried again after the backoff.
  void Failed();

 private:
  std::chrono::seconds interval_;
  Clock& clock_;
  std::optional<std::chrono::steady_clock::time_point> due_;
  std::vector<std::string> done_;  ///< sorted, unique
  std::size_t batches_ = 0;
  std::chrono::seconds backoff_;
};

// ---------------------------------------------------------------------------------------------------------------
// What invalidations cost this month (`sitesync plan` with a distribution)
// ---------------------------------------------------------------------------------------------------------------

/// CloudFront pricing ("Pay for file invalidation"): the first 1,000 invalidation paths submitted in a month are
/// free, across all the distributions of the AWS account; each path over that costs $0.005. A wildcard path
/// counts as one path.
inline constexpr std::uint64_t kFreeInvalidationPathsPerMonth = 1000;
/// $0.005 a path, in thousandths of a US dollar.
inline constexpr std::uint64_t kInvalidationPathPriceMilliUsd = 5;

/// One entry of ListInvalidations.
struct InvalidationSummary {
  std::string id;
  std::string status;
  std::string create_time;  ///< As CloudFront gives it: ISO 8601 (2026-12-06T08:31:25.123Z).
};

/// An invalidation with its paths (GetInvalidation).
struct InvalidationDetail {
  std::string id;
  std::string status;
  std::string create_time;
  std::vector<std::string> paths;
};

/// One page of ListInvalidations: the summaries, and the marker of the next page ("" on the last).
struct InvalidationPage {
  std::vector<InvalidationSummary> items;
  std::string next_marker;
};

/// Parses a ListInvalidations answer (InvalidationList). kParse when it is not one.
[[nodiscard]] aws::Result<InvalidationPage> ParseInvalidationList(std::string_view xml);
/// Parses a GetInvalidation answer (Invalidation with its InvalidationBatch). kParse when it is not one.
[[nodiscard]] aws::Result<InvalidationDetail> ParseInvalidationDetail(std::string_view xml);

/// The CloudFront calls that read past invalidations: one real implementation over aws::HttpClient, fakes in tests.
class InvalidationHistory {
 public:
  virtual ~InvalidationHistory() = default;
  /// One page of ListInvalidations (newest first, CloudFront says), from `marker` ("" for the first).
  virtual aws::Result<InvalidationPage> ListInvalidations(const std::string& distribution_id,
                                                          const std::string& marker) = 0;
  /// GetInvalidation with its paths.
  virtual aws::Result<InvalidationDetail> GetInvalidation(const std::string& distribution_id,
                                                          const std::string& invalidation_id) = 0;
};

/// InvalidationHistory over the aws/ client.
[[nodiscard]] std::unique_ptr<InvalidationHistory> MakeInvalidationHistory(aws::HttpClient& client,
                                                                           CloudFrontEndpoint endpoint);

/// An ISO 8601 timestamp (YYYY-MM-DDTHH:MM:SS[.fff](Z|+HH:MM|-HH:MM)) as a UTC time; nullopt when malformed.
[[nodiscard]] std::optional<std::chrono::sys_seconds> ParseIsoTime(std::string_view text);

/// The invalidation paths of one distribution in one calendar month (UTC), and what a plan adds to them.
struct MonthCost {
  std::string distribution_id;
  std::string month;              ///< "2026-12": the UTC calendar month of the injected time.
  std::uint64_t invalidations = 0;  ///< Created this month (CreateTime).
  std::uint64_t submitted = 0;    ///< Their paths.
  std::uint64_t planned = 0;      ///< This plan's paths.
  std::uint64_t total = 0;        ///< submitted + planned.
  std::uint64_t above_free = 0;   ///< total minus the 1,000 free ones (0 when under).
  std::uint64_t price_milli_usd = 0;  ///< above_free at $0.005: thousandths of a US dollar.
  std::uint64_t planned_above_free = 0;  ///< The part of this plan's paths that is above the free ones.
};

/// The month's numbers for `submitted` paths already sent and `planned` ones (pure).
[[nodiscard]] MonthCost PriceMonth(std::uint64_t submitted, std::uint64_t planned);

/// Counts the paths of the invalidations of `distribution_id` created in the UTC calendar month of `now`: lists
/// them page by page (Marker / NextMarker; it stops at the first page that reaches back before the month, since
/// CloudFront lists the newest first) and reads each one of the month (GetInvalidation). Fails with the call's
/// error (AccessDenied for cloudfront:ListInvalidations: the caller warns) or kParse.
[[nodiscard]] aws::Result<MonthCost> CountMonth(InvalidationHistory& history, const std::string& distribution_id,
                                                std::chrono::system_clock::time_point now, std::uint64_t planned);

/// "$0.05", "$0.005", "$12.34": a price in thousandths of a US dollar (cents when they suffice).
[[nodiscard]] std::string FormatUsd(std::uint64_t milli_usd);
/// "1,010".
[[nodiscard]] std::string FormatCount(std::uint64_t n);
/// The plan's cost line: "this month (2026-12, UTC): 970 paths submitted to E123 + 40 in this plan = 1,010: 10
/// above the 1,000 free, $0.05 (...)", with the note that the free paths are per AWS account, across
/// distributions, and only this distribution is counted.
[[nodiscard]] std::string CostLine(const MonthCost& cost);

}  // namespace sitesync::cdn
