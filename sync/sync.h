// sync/: make an S3 prefix equal to a local site folder. One listing, a pure diff, then uploads (assets, then
// HTML), then deletes, all through the aws/ multi loop.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "aws/aws.h"
#include "sitemap/sitemap.h"

namespace sitesync::sync {

/// Where the site goes: a bucket and a key prefix ("" or ending in '/').
struct Destination {
  std::string bucket;
  std::string prefix;
  /// "s3://bucket/prefix" for messages.
  std::string Url() const { return "s3://" + bucket + "/" + prefix; }
};

/// Parses "s3://BUCKET[/PREFIX]"; "s3://b/site" and "s3://b/site/" both give prefix "site/". "//" inside the
/// prefix is kept (S3 keys are not paths). Fails with kUsage naming the expected form.
[[nodiscard]] aws::Result<Destination> ParseDestination(std::string_view text);

/// How the S3 endpoint is addressed.
struct S3Endpoint {
  /// "https://host[:port]" (a configured endpoint); empty: the regional endpoint of the region's partition
  /// (aws::PartitionEndpoint), which follows `region` when it changes.
  std::string endpoint;
  bool path_style = false;  ///< https://host/bucket/key rather than https://bucket.host/key.
  std::string region = "us-east-1";
  bool fips = false;       ///< The partition's FIPS endpoint (use_fips_endpoint); only without `endpoint`.
  bool dualstack = false;  ///< The partition's dual-stack endpoint (use_dualstack_endpoint); only without `endpoint`.
};

enum class Compare { kSize, kChecksum };

/// An object as ListObjectsV2 reports it.
struct RemoteObject {
  std::string key;  ///< Full key, decoded.
  std::uint64_t size = 0;
  std::string etag;  ///< Without quotes.
  std::int64_t last_modified_s = 0;  ///< LastModified from the listing, seconds since the epoch; 0: unknown.
};

/// Why a file is in the plan. kHeadersChanged: only the headers it would get differ from the recorded ones; the
/// object is updated by CopyObject onto itself (MetadataDirective REPLACE), no body sent.
enum class UploadReason { kNew, kSizeChanged, kContentChanged, kForced, kHeadersChanged };

/// Its key is the plan's prefix and the file's key (Plan::KeyOf): a run holds every planned upload until it ends,
/// and a copy of each key was 80 bytes a file more.
struct PlannedUpload {
  sitemap::LocalFile file;
  UploadReason reason = UploadReason::kNew;
};

/// What a run will do. Uploads are ordered: every non-HTML file first, then HTML, each group by key.
struct Plan {
  std::vector<PlannedUpload> uploads;
  std::string prefix;  ///< The destination's key prefix.
  std::vector<std::string> deletes;  ///< Full keys, sorted; only filled when deleting is on.
  std::uint64_t unchanged = 0;
  std::uint64_t upload_bytes = 0;
  /// Index in `uploads` of the first HTML file (== uploads.size() when none).
  std::size_t first_html = 0;

  /// The full key of one of `uploads`.
  [[nodiscard]] std::string KeyOf(const PlannedUpload& up) const { return prefix + std::string(up.file.Key()); }
};

/// What sync knows of a local file's body against its listed object of the same size, before the diff.
enum class Known {
  kUnchanged,       ///< The object holds this body, with the headers the file gets now.
  kContentChanged,  ///< The object holds another body (an edit at the same size).
  kHeadersChanged,  ///< The object holds this body, stored with other headers than the file gets now.
};

struct DiffOptions {
  std::string prefix;
  Compare compare = Compare::kSize;
  bool delete_stale = false;
  /// Remote keys (relative to prefix) that the filters exclude are never deleted (as aws-cli and rclone do).
  const sitemap::WalkOptions* filters = nullptr;
  /// For kChecksum: the local ETag-equivalent by key (LocalFile::Key), for files ChecksumCandidates named. A file missing
  /// here is compared by size only.
  const std::map<std::string, std::string>* local_etags = nullptr;
  /// Folders (relative to prefix) the walk could not read in full: nothing under them is deleted.
  std::span<const std::string> incomplete_folders = {};
  /// --force: every local file is uploaded, the unchanged ones as UploadReason::kForced.
  bool force = false;
  /// What sync learnt of same-size files' bodies before the diff (from the local record, or by hashing), by key
  /// (LocalFile::Key). Takes precedence over local_etags, whatever `compare` is. A file missing here is compared
  /// as `compare` and local_etags say.
  const std::unordered_map<std::string, Known>* known = nullptr;
};

/// What was published for one key, as the local record keeps it.
struct RecordEntry {
  std::uint64_t file_size = 0;  ///< The local file's size on disk when recorded.
  std::int64_t mtime_ns = 0;    ///< Its mtime then.
  std::uint64_t ino = 0;        ///< Its inode then.
  std::uint64_t body_size = 0;  ///< The object's size (the encoded size when compressed).
  std::string md5;              ///< Hex MD5 of the body as uploaded (encoded when compressed).
  std::string etag;             ///< The ETag S3 answered (or listed) for that body, without quotes.
  std::string headers_digest;   ///< HeadersDigest() of the headers the object was stored with.
  bool operator==(const RecordEntry&) const = default;
};

/// The local record of what was published to one destination (a cache: losing it costs a rehash, never
/// correctness): one SQLite file per destination, safe with a watch and a sync writing at once.
class Record {
 public:
  /// Opens the record at `file`, creating it and its folder. Fails with kIo naming the file.
  [[nodiscard]] static aws::Result<std::unique_ptr<Record>> Open(const std::filesystem::path& file);
  /// The record's file for `destination` reached through `endpoint_identity` (the endpoint URL, or the region
  /// for AWS) under `cache_dir` ($XDG_CACHE_HOME/sitesync, else ~/.cache/sitesync).
  [[nodiscard]] static std::filesystem::path FileFor(const std::filesystem::path& cache_dir,
                                                     const Destination& destination,
                                                     std::string_view endpoint_identity);
  virtual ~Record() = default;
  /// Every entry, by key relative to the destination's prefix.
  [[nodiscard]] virtual aws::Result<std::unordered_map<std::string, RecordEntry>> Load() = 0;
  /// Writes `upserts` and removes `erased` (keys relative to the prefix) in one transaction.
  [[nodiscard]] virtual aws::Result<void> Update(std::span<const std::pair<std::string, RecordEntry>> upserts,
                                                 std::span<const std::string> erased) = 0;
};

/// The objects of `remote` under `prefix`, by key relative to it (views into `remote`; others left out).
[[nodiscard]] std::unordered_map<std::string_view, const RemoteObject*> IndexByRelKey(
    std::span<const RemoteObject> remote, std::string_view prefix);

/// The files whose content must be hashed for kChecksum: same size as the remote object, and an ETag that can
/// be compared. Returns (local file index, remote ETag) pairs.
[[nodiscard]] std::vector<std::pair<std::size_t, std::string>> ChecksumCandidates(
    std::span<const sitemap::LocalFile> local, std::span<const RemoteObject> remote, std::string_view prefix);

/// The plan: upload what is missing or differs, delete (when asked) what has no local file. Pure.
[[nodiscard]] Plan Diff(std::span<const sitemap::LocalFile> local, std::span<const RemoteObject> remote,
                        const DiffOptions& options);

/// Receives what a run does, as it happens. Called on the thread that runs the sync.
class Reporter {
 public:
  virtual ~Reporter() = default;
  virtual void OnWarning(std::string_view message) = 0;
  /// An informational line for people, e.g. that the bucket's region is followed. Default: dropped.
  virtual void OnNote(std::string_view message) { static_cast<void>(message); }
  /// The plan is known; nothing has been changed yet.
  virtual void OnPlan(const Plan& plan, bool dry_run) = 0;
  virtual void OnUploaded(std::string_view rel_key, std::uint64_t bytes, bool planned, UploadReason reason) = 0;
  virtual void OnDeleted(std::string_view rel_key, bool planned) = 0;
  virtual void OnError(std::string_view rel_key, std::string_view message) = 0;
  /// A planned upload or delete was held back (not attempted) for `reason`; the next run or batch does it.
  virtual void OnSkipped(std::string_view rel_key, std::string_view reason) {
    static_cast<void>(rel_key);
    static_cast<void>(reason);
  }
  /// Bytes of uploads done so far (whole files), for progress.
  virtual void OnProgress(std::uint64_t files_done, std::uint64_t bytes_done) = 0;
};

struct SyncOptions {
  std::filesystem::path source;
  Destination destination;
  sitemap::WalkOptions filters;
  Compare compare = Compare::kSize;
  bool delete_stale = false;
  std::int64_t max_deletes = 256;  ///< -1: no limit.
  /// Refuse deletes beyond this fraction of the objects under the prefix (when more than kDeleteFloor), or any
  /// delete while SOURCE holds no file; 1 turns both off. See CheckDeletes.
  double max_delete_fraction = 0.5;
  /// For watch: a refusal of the initial sync never advises raising a limit (SOURCE may be mid-rebuild).
  bool watching = false;
  bool dry_run = false;
  /// --force: upload every file, changed or not (in watch, in the initial sync only).
  bool force = false;
  /// --refresh-headers: HEAD the objects that have no record entry and update (CopyObject) those whose headers
  /// differ from what the config gives them.
  bool refresh_headers = false;
  /// The local record (Record::FileFor); empty: none (size-only or checksum as without a record).
  std::filesystem::path record_file;
  /// Redirect objects (generated LocalFiles) published with the site: these (`redirects:`) and the lines of
  /// SOURCE's `_redirects`, read again by the initial sync and every batch (an event on it makes a rescan). A
  /// bad `_redirects` line fails the run or batch with kInput, before anything changes.
  std::vector<sitemap::Redirect> redirects;
  std::uint64_t multipart_threshold = 16ull << 20;
  std::uint64_t part_size = 8ull << 20;
  /// Runs once the plan is known and passed the guards, before the first change (not in a dry run). An error
  /// stops the run with nothing changed: the CDN journal is written here, before any upload.
  std::function<aws::Result<void>(const Plan&)> before_changes;
};

enum class Outcome {
  kOk,       ///< Everything done.
  kFailed,   ///< Some operation failed after retries; the rest was done.
  kRefused,  ///< A safety guard refused the run; nothing was changed.
};

struct SyncResult {
  Outcome outcome = Outcome::kOk;
  std::uint64_t uploaded = 0;
  std::uint64_t deleted = 0;
  std::uint64_t unchanged = 0;
  std::uint64_t failed = 0;
  std::uint64_t bytes_uploaded = 0;
  /// Files whose content was read to compare it (hashed, or encoded and hashed).
  std::uint64_t hashed = 0;
  /// Objects whose headers alone were updated (CopyObject); counted in `uploaded` too.
  std::uint64_t headers_updated = 0;
  /// Without a record entry, size-only: same-size files newer than their objects (mtime against the listing's
  /// LastModified), whose content was not compared; for the summary's note.
  std::uint64_t newer_same_size = 0;
  bool dry_run = false;
  std::string refusal;  ///< Why, when kRefused.
  std::vector<std::string> uploaded_keys;  ///< Relative to the prefix, for the CDN.
  std::vector<std::string> deleted_keys;   ///< Relative to the prefix, for the CDN.
  /// Planned uploads and deletes held back (not attempted): after a failed asset upload, the HTML and the
  /// deletes; after a failed HTML upload, the deletes; in a watch batch, deletes refused by a guard. Nothing was
  /// changed for them, so they owe no invalidation; the next run or batch does them.
  std::uint64_t skipped = 0;
  std::vector<std::string> skipped_keys;  ///< Relative to the prefix.
  /// Every key whose change was attempted, relative to the prefix: uploaded and deleted, and the uploads and
  /// deletes that failed, whose outcome may be unknown (an answer lost after S3 committed the change). The CDN
  /// journal keeps these owed until CloudFront accepts them. Not in a dry run.
  std::vector<std::string> attempted_keys;
  /// Relative to SOURCE, sorted: the paths of the uploads and deletes that failed after their retries (filled by
  /// Session, for the watch loop's retry timer; a refusal of the whole run names none). A key's paths are the
  /// key and, with clean_urls, the page published under it ("about" and "about.html").
  std::vector<std::string> failed_keys;
  /// Answers of the server that asked to slow down (503 SlowDown, 429, throttling codes), all retried; filled by
  /// cli from the transport's counters for the summary.
  std::uint64_t throttled = 0;
};

/// A remote delete count at or below this never trips the fraction guard (a small site's few removals).
inline constexpr std::uint64_t kDeleteFloor = 10;

/// Which delete guards a run trips (all false: the deletes may go).
struct DeleteRefusal {
  bool max_deletes = false;   ///< More than --max-deletes.
  bool fraction = false;      ///< More than kDeleteFloor and more than --max-delete-fraction of the objects.
  bool empty_source = false;  ///< SOURCE holds no file, and something would be deleted.
  explicit operator bool() const { return max_deletes || fraction || empty_source; }
};

/// The delete guards, pure: `deletes` planned of `objects` under the prefix, `source_empty` when SOURCE holds no
/// file to publish. max_deletes -1 is no limit; max_fraction >= 1 turns the fraction and empty-SOURCE checks off.
[[nodiscard]] DeleteRefusal CheckDeletes(std::uint64_t deletes, std::uint64_t objects, bool source_empty,
                                         std::int64_t max_deletes, double max_fraction);

/// Where a refusal happens, for its message.
enum class RefusalContext {
  kRun,         ///< sync or plan: nothing was changed; the message names the options that would let it through.
  kWatchStart,  ///< watch's initial sync: nothing was changed; SOURCE may be mid-rebuild, so no limit is raised.
  kWatchBatch,  ///< a watch batch: its uploads went, its deletes are held back and the next batch retries them.
};

/// The message for a refusal. Only kRun advises raising a limit: in watch, SOURCE may be mid-rebuild, and the
/// advice would delete the live site.
[[nodiscard]] std::string DeleteRefusalMessage(const DeleteRefusal& refusal, std::uint64_t deletes,
                                               std::uint64_t objects, std::int64_t max_deletes, double max_fraction,
                                               const std::string& where, RefusalContext context);

/// Runs one sync. Fails (no change made) with kInput when SOURCE cannot be walked, and with the listing's error
/// when the bucket cannot be listed; operation failures after that are counted in SyncResult, not returned.
[[nodiscard]] aws::Result<SyncResult> RunSync(const SyncOptions& options, const S3Endpoint& endpoint,
                                              aws::HttpClient& client, Reporter& reporter);

/// What a watch batch may do about remote objects whose local file is gone.
enum class BatchDeletes {
  kWith,  ///< Uploads and deletes, as a sync would.
  kHold,  ///< Uploads only; the keys that would be deleted are returned in BatchResult::held_deletes.
  kOnly,  ///< Deletes only (no upload), each decided by this batch's own stat: a file that is back is kept.
};

/// What one watch batch did.
struct BatchResult {
  SyncResult result;
  /// Paths (relative to SOURCE: each held key's paths, as SyncResult::failed_keys) whose delete was held back
  /// (BatchDeletes::kHold), sorted: the deletes-only batch walks them again.
  std::vector<std::string> held_deletes;
};

struct ChecksumChoice;   // sync/s3_client.h
class FollowedEndpoint;  // sync/s3_client.h

/// A sync that keeps the remote listing in memory, for watch mode: the initial sync lists the bucket once, and
/// each batch is decided against that listing (updated with what the batch did), with no listing per batch.
/// The bucket's region is followed for the whole session: when S3 answers that the bucket is in another region
/// than the endpoint's (FollowableRegion), that region is used from then on, for every request of this and every
/// later call, with one Reporter::OnNote; requests sent with the old region are sent again, not failed.
class Session {
 public:
  Session(SyncOptions options, S3Endpoint endpoint, aws::HttpClient& client);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  /// The initial sync, exactly like RunSync.
  [[nodiscard]] aws::Result<SyncResult> Initial(Reporter& reporter);

  /// One batch. With `rescan`, everything is walked and diffed (as a fresh sync would, against the listing in
  /// memory, but comparing content for files whose mtime or size changed since the walk that last saw them);
  /// otherwise only `paths` (files or folders, relative to SOURCE) and the files whose upload failed in an
  /// earlier batch, compared by content (MD5 against the ETag) since an event says they changed. Whether a file
  /// is complete is the watcher's call (close_write, moved_to, quiet since): its mtime is not compared with the
  /// clock, so a file dated in the future is published like any other. `deletes` says whether deletes (with
  /// delete_stale) go, are held back and returned, or go alone (BatchDeletes::kOnly does not add the failed
  /// uploads). Deletes beyond max_deletes are refused for the batch (reported as an error); the uploads still go.
  [[nodiscard]] aws::Result<BatchResult> Batch(const std::set<std::string>& paths, bool rescan,
                                               BatchDeletes deletes, Reporter& reporter);

  /// Objects under the prefix as this session believes them to be (for tests).
  [[nodiscard]] std::vector<RemoteObject> Remote() const;

  /// The endpoint requests are addressed with now: the one given, with the bucket's region once S3 named it.
  [[nodiscard]] const S3Endpoint& Endpoint() const;

 private:
  /// Carries out `plan`: assets, then HTML (none after a failed asset), then deletes (none after a failed upload);
  /// what is held back is skipped and reconsidered by the next batch. Deletes that trip a guard (CheckDeletes)
  /// refuse a one-shot run (kRefused, nothing changed); in a `batch` only the deletes are held back.
  aws::Result<SyncResult> Execute(const Plan& plan, Reporter& reporter, bool batch);
  /// Applies what a run changed to remote_ in one merge pass.
  void Apply(std::vector<RemoteObject> upserts, std::vector<std::string> erased);

  /// The local record (SyncOptions::record_file) and what this run owes it; see runner.cc.
  struct RecordState;
  /// Decides from the record, and by hashing where needed, what is known of `local`'s bodies against `remote`
  /// (DiffOptions::known); sets the size of encoded files. `compare_content(file)`: whether a file without a
  /// usable record entry is compared by content (hashed against its ETag) rather than by size.
  std::unordered_map<std::string, Known> Prepare(std::vector<sitemap::LocalFile>& local,
                                                 std::span<const RemoteObject> remote,
                                                 const std::function<bool(const sitemap::LocalFile&)>& compare_content,
                                                 SyncResult& counts, Reporter& reporter);
  /// Checks the headers of what `plan` leaves unchanged (runner.cc, RefreshHeaders): the objects of `local` with
  /// no usable record entry, all of them when `all` (--refresh-headers, initial sync) and otherwise the generated
  /// ones (redirects, whose zero-byte bodies never differ), are HEADed together through the loop; those whose
  /// headers differ from ObjectHeaders are added to `plan` as kHeadersChanged (CopyObject), one gone since the
  /// listing as kNew. Returns how many HEADs failed (each reported with OnError).
  std::uint64_t RefreshHeaders(Plan& plan, std::span<const sitemap::LocalFile> local,
                               std::span<const RemoteObject> remote, bool all, Reporter& reporter);

  SyncOptions options_;
  std::unique_ptr<RecordState> record_;
  /// Shared by every request of the session; its region follows the bucket's.
  std::shared_ptr<FollowedEndpoint> endpoint_;
  aws::HttpClient& client_;
  /// By full key, sorted and unique: the listing itself, moved in (a map would hold every key twice and a
  /// node per object; this is 72 bytes an object plus the key and ETag).
  std::vector<RemoteObject> remote_;
  /// Rel paths (of SOURCE, never keys: see RetryPaths) whose upload or delete failed or was held back:
  /// reconsidered by the next batch.
  std::set<std::string> failed_;
  /// The paths whose files may be published under `keys` (the key, and with clean_urls its page), sorted.
  std::vector<std::string> RetryPaths(const std::set<std::string>& keys) const;
  /// The PutObject checksum for this session (CRC-32 until the server refuses it); see sync/s3_client.h.
  std::shared_ptr<ChecksumChoice> checksum_;
  /// (hash of rel path, mtime_ns ^ size) of every file the last walk that reached it saw, sorted: a rescan
  /// compares content for the files not found here (new, or changed since), size alone for the rest. 16 bytes a
  /// file; a hash collision only costs that file's content comparison. No wall clock involved.
  std::vector<std::pair<std::uint64_t, std::uint64_t>> seen_;
  void Remember(std::span<const sitemap::LocalFile> files);
  bool Seen(const sitemap::LocalFile& file) const;
};

/// Lists every object under `prefix` with ListObjectsV2 (encoding-type=url): page by page up to 8 pages (the
/// fewest requests for a site of a few thousand objects); past that, when the rest splits into 8 to 64 folders
/// (found with delimiter '/' from the last key seen, up to three levels down), they are walked in parallel, else
/// page by page on. Sorted by key. A request answered with the bucket's region (FollowableRegion) is sent again
/// signed for it, as are the rest.
[[nodiscard]] aws::Result<std::vector<RemoteObject>> ListObjects(aws::HttpClient& client, const S3Endpoint& endpoint,
                                                                 const std::string& bucket,
                                                                 const std::string& prefix);

/// The region a run switches to after `error`, the answer to a request signed for `sent_region`: the region S3
/// named (Error::bucket_region, else the "expecting 'REGION'" of a 400 AuthorizationHeaderMalformed) when the
/// answer is a 301 or 307 redirect or a 400, and the name is a well-formed region other than `sent_region`; empty
/// when the answer is not about the bucket's region, or names none that can be followed.
[[nodiscard]] std::string FollowableRegion(const aws::Error& error, std::string_view sent_region);

/// One ListObjectsV2 request for at most one key under `destination`'s prefix, signed for `endpoint.region`: the
/// cheapest proof that the bucket exists, answers in that region and may be listed with these credentials (for
/// `sitesync check`). Returns whether a key was seen. Fails as the client does: http_status, service_code and
/// bucket_region (a wrong region) come from S3's answer; kNetwork when it could not be reached.
[[nodiscard]] aws::Result<bool> ProbeListing(aws::HttpClient& client, const S3Endpoint& endpoint,
                                             const Destination& destination);

}  // namespace sitesync::sync
