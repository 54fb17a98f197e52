// A sync run: walk, list once, diff, then assets, HTML and deletes through the multi loop. The Session keeps the
// listing for watch batches.
#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <functional>
#include <future>
#include <span>
#include <thread>
#include <unordered_map>

#ifdef __GLIBC__
#include <malloc.h>  // malloc_trim
#endif

#include <fmt/format.h>

#include "sync/s3_client.h"
#include "sync/sync.h"

namespace sitesync::sync {
namespace {

constexpr std::size_t kDeleteBatch = 1000;  // DeleteObjects takes at most 1,000 keys a request
constexpr std::size_t kRecordBatch = 512;   // record entries written per transaction while transfers run

std::string Rel(const std::string& key, const std::string& prefix) { return key.substr(prefix.size()); }


// The local counterpart of `remote_etag` for `file`, or nullopt when no comparable one can be made (a multipart
// ETag made with another part size).
// A multipart ETag that matches also gives the body's MD5 in `whole_md5` (read in the same pass), so that the
// object can be recorded and not read again.
aws::Result<std::optional<std::string>> ComparableEtag(const sitemap::LocalFile& file, std::string_view remote_etag,
                                                       const SyncOptions& options, std::string& whole_md5) {
  // A redirect object has no file: its body is empty, whose MD5 this is.
  if (file.generated) return std::optional<std::string>(kEmptyMd5);
  // compress: the object holds the encoded body, always sent in one PutObject: its ETag is that body's MD5.
  if (file.encoding != sitemap::Encoding::kIdentity) {
    if (remote_etag.find('-') != std::string_view::npos) return std::optional<std::string>();
    auto md5 = EncodedMd5(file);
    if (!md5) return std::unexpected(md5.error());
    return std::optional<std::string>(*md5);
  }
  const auto dash = remote_etag.find('-');
  if (dash == std::string_view::npos) {
    auto md5 = Md5FileHex(file, 0, file.size);
    if (!md5) return std::unexpected(md5.error());
    return std::optional<std::string>(*md5);
  }
  std::uint64_t parts = 0;
  auto count = remote_etag.substr(dash + 1);
  if (std::from_chars(count.data(), count.data() + count.size(), parts).ec != std::errc{} || parts == 0) {
    return std::optional<std::string>();
  }
  // A multipart ETag is the MD5 of the parts' MD5s: comparable only with the part size it was made with. Ours
  // first, then the ones other tools upload with (the Go SDK, hugo deploy and rclone 5 MiB; aws-cli and boto3
  // 8 MiB; s3cmd 15 MiB; larger defaults and --multipart-chunksize values), each only when it gives the listed
  // part count. The first that matches decides; when none does, the last one computed says "changed" (a wrong
  // guess costs one upload, after which the object has this tool's part size).
  constexpr std::uint64_t kMiB = 1ull << 20;
  constexpr std::array<std::uint64_t, 11> kOtherPartSizes{5 * kMiB,  8 * kMiB,  10 * kMiB, 15 * kMiB,
                                                          16 * kMiB, 25 * kMiB, 32 * kMiB, 50 * kMiB,
                                                          64 * kMiB, 100 * kMiB, 128 * kMiB};
  std::vector<std::uint64_t> tried;
  std::optional<std::string> computed;
  const auto attempt = [&](std::uint64_t wanted) -> aws::Result<bool> {
    const std::uint64_t ps = PartSizeFor(file.size, wanted);
    if ((file.size + ps - 1) / ps != parts || std::ranges::find(tried, ps) != tried.end()) return false;
    tried.push_back(ps);
    auto etag = LocalEtag(file, file.size, /*multipart_threshold=*/0, ps, &whole_md5);
    if (!etag) return std::unexpected(etag.error());
    computed = std::move(*etag);
    return *computed == remote_etag;
  };
  if (file.size > options.multipart_threshold) {
    auto same = attempt(options.part_size);
    if (!same) return std::unexpected(same.error());
    if (*same) return computed;
  }
  for (const std::uint64_t ps : kOtherPartSizes) {
    if (tried.size() >= 3) break;  // each guess reads the file once
    auto same = attempt(ps);
    if (!same) return std::unexpected(same.error());
    if (*same) return computed;
  }
  return computed;
}

// What Session::seen_ keeps of a file: its path's hash, and its mtime and size folded together.
std::pair<std::uint64_t, std::uint64_t> Fingerprint(const sitemap::LocalFile& f) {
  return {std::hash<std::string>{}(f.rel_path), static_cast<std::uint64_t>(f.mtime_ns) * 31u ^ f.size};
}

// Forwards everything to the caller's reporter and keeps the keys of the errors (a refusal of the whole batch
// has none). Every Reporter method must be forwarded here.
class ErrorKeys final : public Reporter {
 public:
  explicit ErrorKeys(Reporter& inner) : inner_(inner) {}
  void OnWarning(std::string_view message) override { inner_.OnWarning(message); }
  void OnNote(std::string_view message) override { inner_.OnNote(message); }
  void OnPlan(const Plan& plan, bool dry_run) override { inner_.OnPlan(plan, dry_run); }
  void OnUploaded(std::string_view rel_key, std::uint64_t bytes, bool planned, UploadReason reason) override {
    inner_.OnUploaded(rel_key, bytes, planned, reason);
  }
  void OnDeleted(std::string_view rel_key, bool planned) override { inner_.OnDeleted(rel_key, planned); }
  void OnError(std::string_view rel_key, std::string_view message) override {
    if (!rel_key.empty()) keys.emplace(rel_key);
    inner_.OnError(rel_key, message);
  }
  void OnProgress(std::uint64_t files_done, std::uint64_t bytes_done) override {
    inner_.OnProgress(files_done, bytes_done);
  }
  void OnSkipped(std::string_view rel_key, std::string_view reason) override { inner_.OnSkipped(rel_key, reason); }
  std::set<std::string> keys;

 private:
  Reporter& inner_;
};

// For the duration of a Session call: the note of a region switch goes to that call's reporter.
class NotesTo {
 public:
  NotesTo(FollowedEndpoint& endpoint, Reporter& reporter) : endpoint_(endpoint) {
    endpoint_.on_note = [&reporter](std::string_view note) { reporter.OnNote(note); };
  }
  ~NotesTo() { endpoint_.on_note = nullptr; }
  NotesTo(const NotesTo&) = delete;
  NotesTo& operator=(const NotesTo&) = delete;

 private:
  FollowedEndpoint& endpoint_;
};

// The redirect objects of the site: `redirects:` from the config, then SOURCE's `_redirects`, read again on every
// call (a watch session sees its edits). Fails with kInput naming a line of `_redirects` sitesync cannot publish.
aws::Result<sitemap::GeneratedFiles> Redirects(const SyncOptions& options) {
  auto file = sitemap::ReadRedirectsFile(options.source);
  if (!file) return std::unexpected(file.error());
  std::vector<sitemap::Redirect> all = options.redirects;
  all.insert(all.end(), file->redirects.begin(), file->redirects.end());
  sitemap::GeneratedFiles generated = sitemap::RedirectFiles(all, options.filters.index_document);
  generated.warnings.insert(generated.warnings.begin(), file->warnings.begin(), file->warnings.end());
  return generated;
}

// The paths (relative to SOURCE) whose file may be published under `key`: the key itself, and with clean_urls the
// page that maps to it ("about" <- "about.html"). What a watch batch walks again to decide about the key: a key is
// never walked as a path alone, or "about" (no such file) would delete the page's object.
std::vector<std::string> PathsOf(std::string_view key, const sitemap::WalkOptions& filters) {
  std::vector<std::string> paths{std::string(key)};
  if (filters.clean_urls && !key.ends_with(".html")) {
    std::string page = std::string(key) + ".html";
    if (sitemap::SiteKey(page, true, filters.index_document) == key) paths.push_back(std::move(page));
  }
  return paths;
}

// True when `rel` is one of `paths` or lies under one of them (as a folder).
bool Selected(std::string_view rel, const std::set<std::string>& paths) {
  if (paths.contains(std::string(rel))) return true;
  for (std::size_t slash = rel.rfind('/'); slash != std::string_view::npos && slash > 0;
       slash = rel.rfind('/', slash - 1)) {
    if (paths.contains(std::string(rel.substr(0, slash)))) return true;
  }
  return false;
}

// Why a planned change was held back (CLI.md's skip event).
constexpr std::string_view kHeldByAsset = "held back: an asset of this run failed";
constexpr std::string_view kHeldByPage = "held back: a page of this run failed";
constexpr std::string_view kHeldByGuard = "held back: SOURCE looks mid-rebuild or emptied; the next batch retries";

// Whether SOURCE holds at least one file the filters let through; stops at the first. A missing or unreadable
// SOURCE holds none.
bool SourceHoldsAFile(const std::filesystem::path& source, const sitemap::WalkOptions& filters) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::recursive_directory_iterator it(source, fs::directory_options::skip_permission_denied, ec);
  for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code type_ec;
    if (it->is_directory(type_ec) || !it->exists(type_ec)) continue;
    const std::string rel = fs::relative(it->path(), source, type_ec).generic_string();
    if (type_ec || !sitemap::Excluded(rel, filters)) return true;
  }
  return false;
}

// Runs job(i) for every i below n on all cores (std::thread::hardware_concurrency threads): hashing a cold site
// is disk- and CPU-bound per file, and files are independent. `job` must touch only its own slot.
void ForEachOnAllCores(std::size_t n, const std::function<void(std::size_t)>& job) {
  const std::size_t threads = std::min<std::size_t>(n, std::max(1u, std::thread::hardware_concurrency()));
  if (threads <= 1) {
    for (std::size_t i = 0; i < n; ++i) job(i);
    return;
  }
  std::atomic<std::size_t> next{0};
  std::vector<std::jthread> pool;
  pool.reserve(threads);
  for (std::size_t t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (std::size_t i = next++; i < n; i = next++) job(i);
    });
  }
}

// Whether the file is as it was when `entry` was recorded: same size on disk, mtime and inode. A generated
// object (no file) always is.
bool SameStat(const sitemap::LocalFile& f, const RecordEntry& entry) {
  return f.disk_size == entry.file_size && f.mtime_ns == entry.mtime_ns && f.ino == entry.ino;
}

// True when `etag` can be an MD5 of the body (a single PutObject's ETag; SSE-KMS and SSE-C ones look the same
// but are not, which is why a record entry, when there is one, is trusted over it).
bool PlainEtag(std::string_view etag) { return etag.size() == 32 && etag.find('-') == std::string_view::npos; }

}  // namespace

// The local record and what the current run owes it (written by Execute a batch at a time, and at its end).
struct Session::RecordState {
  std::unique_ptr<Record> db;
  bool tried = false;  ///< Open was attempted (once a session).
  /// Entries of the current run, by key; empty without a record.
  std::unordered_map<std::string, RecordEntry> entries;
  /// Body MD5 by key, for what this run learnt (recorded, hashed or encoded), to record uploads.
  std::unordered_map<std::string, std::string> md5;
  std::vector<std::pair<std::string, RecordEntry>> upserts;
  std::vector<std::string> erased;

  void StartRun() {
    entries.clear();
    md5.clear();
    upserts.clear();
    erased.clear();
  }
};

Session::~Session() = default;

std::unordered_map<std::string, Known> Session::Prepare(
    std::vector<sitemap::LocalFile>& local, std::span<const RemoteObject> remote,
    const std::function<bool(const sitemap::LocalFile&)>& compare_content, SyncResult& counts, Reporter& reporter) {
  RecordState& rec = *record_;
  rec.StartRun();
  if (!options_.record_file.empty() && !rec.tried) {
    rec.tried = true;
    std::error_code ec;
    // A dry run writes nothing: not even a new, empty record.
    if (!options_.dry_run || std::filesystem::exists(options_.record_file, ec)) {
      auto opened = Record::Open(options_.record_file);
      if (opened) {
        rec.db = std::move(*opened);
      } else {
        reporter.OnWarning(opened.error().message + "; this run goes on without it (files are compared as without "
                                                    "a record)");
      }
    }
  }
  if (rec.db != nullptr) {
    auto loaded = rec.db->Load();
    if (loaded) {
      rec.entries = std::move(*loaded);
    } else {
      reporter.OnWarning(loaded.error().message + "; this run goes on without it");
      rec.db.reset();
    }
  }

  const std::string& prefix = options_.destination.prefix;
  const auto by_rel = IndexByRelKey(remote, prefix);

  // First pass: what each file needs. A record entry is used only when its ETag is the listed one: an object
  // changed by someone else since (or an entry from another bucket's past) is never trusted.
  enum class Job { kNone, kMd5, kEncode, kEtag };
  struct Slot {
    const RemoteObject* object = nullptr;
    const RecordEntry* entry = nullptr;
    Job job = Job::kNone;
    std::string value;  ///< the MD5 (kMd5, kEncode) or local ETag (kEtag) found; empty: none
    std::string digest;  ///< HeadersDigest of the file, once computed
    std::string whole_md5;  ///< kEtag against a multipart ETag: the body's MD5, read in the same pass
    bool trusted = false;  ///< the entry's stat and headers match: the body is the recorded one, unread
    std::optional<aws::Error> error;
    bool read = false;  ///< the file's content was read
  };
  std::vector<Slot> slots(local.size());
  for (std::size_t i = 0; i < local.size(); ++i) {
    const sitemap::LocalFile& f = local[i];
    Slot& slot = slots[i];
    auto it = by_rel.find(f.Key());
    if (it == by_rel.end()) {
      // New: uploaded whatever its content. Only a dry run encodes it now, for the plan's bytes; an upload learns
      // the encoded body's MD5 from the upload itself (Uploaded::md5), so a first upload encodes each file once.
      if (options_.dry_run && f.encoding != sitemap::Encoding::kIdentity && !f.generated) slot.job = Job::kEncode;
      continue;
    }
    slot.object = it->second;
    if (auto e = rec.entries.find(std::string(f.Key()));
        e != rec.entries.end() && !e->second.etag.empty() && e->second.etag == slot.object->etag) {
      slot.entry = &e->second;
    }
    if (f.generated) continue;  // an empty body: its MD5 is known
    // The headers digest covers the encoding: with the same digest and the same stat, the body is the recorded
    // one. Otherwise the body is read (a changed encoding changes the body even when the file is the same).
    if (slot.entry != nullptr) slot.digest = HeadersDigest(f);
    slot.trusted = slot.entry != nullptr && SameStat(f, *slot.entry) && slot.entry->headers_digest == slot.digest;
    if (slot.trusted) continue;
    if (f.encoding != sitemap::Encoding::kIdentity) {
      slot.job = Job::kEncode;
    } else if (f.size != slot.object->size) {
      continue;  // another size: uploaded without reading it first
    } else if (slot.entry != nullptr) {
      slot.job = Job::kMd5;
    } else if (compare_content(f) && !slot.object->etag.empty()) {
      slot.job = Job::kEtag;
    }
  }

  // The reading, on all cores. Warnings are reported afterwards, on this thread. The MD5s of whole files (an
  // entry's body, an object's plain ETag) are hashed kMd5Batch files at a time, side by side (Md5FilesHex).
  std::vector<std::size_t> jobs;
  std::vector<std::size_t> whole_md5_jobs;
  for (std::size_t i = 0; i < slots.size(); ++i) {
    const Slot& slot = slots[i];
    if (slot.job == Job::kNone) continue;
    const bool plain_etag = slot.job == Job::kEtag && local[i].encoding == sitemap::Encoding::kIdentity &&
                            slot.object->etag.find('-') == std::string::npos;
    (slot.job == Job::kMd5 || plain_etag ? whole_md5_jobs : jobs).push_back(i);
  }
  // Similar sizes side by side: lanes go as fast as the longest message of a batch lets them.
  std::ranges::sort(whole_md5_jobs, [&](std::size_t a, std::size_t b) { return local[a].size < local[b].size; });
  constexpr std::size_t kMd5Batch = 32;
  const std::size_t batches = (whole_md5_jobs.size() + kMd5Batch - 1) / kMd5Batch;
  ForEachOnAllCores(batches + jobs.size(), [&](std::size_t n) {
    if (n < batches) {
      const auto first = whole_md5_jobs.begin() + static_cast<std::ptrdiff_t>(n * kMd5Batch);
      const std::span<const std::size_t> batch(first, std::min(whole_md5_jobs.end(), first + kMd5Batch));
      std::vector<const sitemap::LocalFile*> files;
      for (const std::size_t i : batch) files.push_back(&local[i]);
      auto sums = Md5FilesHex(files);
      for (std::size_t k = 0; k < batch.size(); ++k) {
        Slot& slot = slots[batch[k]];
        if (!sums[k]) {
          slot.error = std::move(sums[k].error());
          continue;
        }
        slot.read = true;
        slot.value = std::move(*sums[k]);
      }
      return;
    }
    const std::size_t i = jobs[n - batches];
    Slot& slot = slots[i];
    sitemap::LocalFile& f = local[i];
    if (slot.job == Job::kEncode) {
      auto body = EncodeFile(f);
      if (!body) {
        slot.error = body.error();
        return;
      }
      slot.read = true;
      f.size = body->bytes.size();
      slot.value = std::move(body->md5);
    } else if (slot.job == Job::kMd5) {
      auto md5 = Md5FileHex(f, 0, f.size);
      if (!md5) {
        slot.error = md5.error();
        return;
      }
      slot.read = true;
      slot.value = std::move(*md5);
    } else {
      auto etag = ComparableEtag(f, slot.object->etag, options_, slot.whole_md5);
      if (!etag) {
        slot.error = etag.error();
      } else if (*etag) {
        slot.read = true;
        slot.value = std::move(**etag);
      }
    }
  });

  // Second pass: the verdicts, and what the record learns.
  std::unordered_map<std::string, Known> known;
  for (std::size_t i = 0; i < local.size(); ++i) {
    sitemap::LocalFile& f = local[i];
    Slot& slot = slots[i];
    const std::string key(f.Key());
    if (slot.read) ++counts.hashed;
    if (slot.error) {
      reporter.OnWarning(fmt::format("{}: {}; compared by size only", f.rel_path, slot.error->message));
      continue;
    }
    // The body's MD5 where this run knows it.
    std::string md5 = f.generated ? std::string(kEmptyMd5) : slot.job == Job::kEtag ? std::string() : slot.value;
    if (slot.job == Job::kEtag && PlainEtag(slot.value)) md5 = slot.value;
    // A multipart ETag that matched: the MD5 of the same bytes, so the object is recorded (and not read again).
    if (slot.job == Job::kEtag && !slot.value.empty() && slot.value == slot.object->etag && !slot.whole_md5.empty()) {
      md5 = slot.whole_md5;
    }
    // Only a trusted entry tells the body's MD5 unread (a file of another size was changed and not read).
    if (md5.empty() && slot.trusted) md5 = slot.entry->md5;
    if (!md5.empty()) rec.md5[key] = md5;
    if (slot.object == nullptr) continue;  // new
    if (f.encoding != sitemap::Encoding::kIdentity && slot.trusted) f.size = slot.entry->body_size;
    if (f.size != slot.object->size) continue;  // the diff uploads it (kSizeChanged)
    const std::string digest = slot.digest.empty() ? HeadersDigest(f) : slot.digest;
    if (slot.entry != nullptr) {
      if (md5 != slot.entry->md5) {
        known[key] = Known::kContentChanged;
        continue;
      }
      known[key] = digest == slot.entry->headers_digest ? Known::kUnchanged : Known::kHeadersChanged;
      if (!SameStat(f, *slot.entry) && known[key] == Known::kUnchanged) {
        // A touch (a rebuild that wrote the same bytes): recorded with the new stat, so it is not read again.
        RecordEntry refreshed = *slot.entry;
        refreshed.file_size = f.disk_size;
        refreshed.mtime_ns = f.mtime_ns;
        refreshed.ino = f.ino;
        rec.upserts.emplace_back(key, std::move(refreshed));
      }
      continue;
    }
    // No usable entry: compared as without a record.
    const bool compared = slot.job == Job::kEtag ? !slot.value.empty()
                                                 : compare_content(f) && PlainEtag(slot.object->etag) && !md5.empty();
    if (!compared) {
      // Size only. A file written after its object may differ at the same size: counted for the summary's note.
      const std::int64_t listed = slot.object->last_modified_s;
      if (!compare_content(f) && listed > 0 && f.mtime_ns >= (listed + 1) * 1'000'000'000) ++counts.newer_same_size;
      continue;
    }
    const std::string& local_etag = slot.job == Job::kEtag ? slot.value : md5;
    if (local_etag != slot.object->etag) {
      known[key] = Known::kContentChanged;
      continue;
    }
    known[key] = Known::kUnchanged;
    // Verified equal: adopted into the record with the headers it gets now (--refresh-headers checks them).
    if (!md5.empty()) {
      rec.upserts.emplace_back(key, RecordEntry{f.disk_size, f.mtime_ns, f.ino, slot.object->size, md5,
                                                slot.object->etag, digest});
    }
  }
  return known;
}

std::uint64_t Session::RefreshHeaders(Plan& plan, std::span<const sitemap::LocalFile> local,
                                      std::span<const RemoteObject> remote, bool all, Reporter& reporter) {
  // A record entry whose ETag is the listed one says which headers the object was stored with (Prepare compared
  // them already); without one, only the object itself can say: HeadObject. Size-only diffing cannot see headers,
  // and a redirect object's empty body never differs, so a changed redirect target is found only here.
  const std::string& prefix = options_.destination.prefix;
  RecordState& rec = *record_;
  const auto by_rel = IndexByRelKey(remote, prefix);
  std::unordered_map<std::string_view, bool> planned;
  for (const PlannedUpload& up : plan.uploads) planned.emplace(up.file.Key(), true);
  std::vector<std::pair<const sitemap::LocalFile*, std::string>> checks;
  std::vector<const RemoteObject*> objects;
  for (const sitemap::LocalFile& f : local) {
    if (!(all || f.generated) || planned.contains(f.Key())) continue;
    const auto object = by_rel.find(f.Key());
    if (object == by_rel.end()) continue;
    const auto entry = rec.entries.find(std::string(f.Key()));
    if (entry != rec.entries.end() && !entry->second.etag.empty() && entry->second.etag == object->second->etag) {
      continue;
    }
    checks.emplace_back(&f, object->second->key);
    objects.push_back(object->second);
  }
  if (checks.empty()) return 0;
  const std::vector<HeadVerdict> verdicts = HeadAndCompare(client_, endpoint_, options_.destination.bucket, checks);

  std::uint64_t failures = 0;
  std::vector<PlannedUpload> assets;
  std::vector<PlannedUpload> pages;
  for (std::size_t i = 0; i < checks.size(); ++i) {
    const sitemap::LocalFile& f = *checks[i].first;
    const std::string rel(f.Key());
    UploadReason reason = UploadReason::kHeadersChanged;
    switch (verdicts[i].kind) {
      case HeadVerdict::Kind::kFailed:
        ++failures;
        reporter.OnError(rel, fmt::format("{}; its headers were not checked: run again", verdicts[i].error));
        continue;
      case HeadVerdict::Kind::kSame:
        if (f.generated && rec.db != nullptr) {
          // HEAD showed its headers, and a redirect's body is empty: the object is known now; the record keeps it.
          rec.upserts.emplace_back(rel, RecordEntry{f.disk_size, f.mtime_ns, f.ino, objects[i]->size,
                                                    std::string(kEmptyMd5), objects[i]->etag, HeadersDigest(f)});
        }
        continue;
      case HeadVerdict::Kind::kGone:
        reason = UploadReason::kNew;  // deleted since the listing
        plan.upload_bytes += f.size;
        break;
      case HeadVerdict::Kind::kDiffer:
        break;
    }
    --plan.unchanged;
    (sitemap::IsHtml(f.rel_path) ? pages : assets).push_back(PlannedUpload{f, reason});
  }
  // Assets before the first page, pages after the others: a page never goes live before its assets.
  plan.uploads.insert(plan.uploads.begin() + static_cast<std::ptrdiff_t>(plan.first_html), assets.begin(),
                      assets.end());
  plan.first_html += assets.size();
  plan.uploads.insert(plan.uploads.end(), pages.begin(), pages.end());
  return failures;
}

Session::Session(SyncOptions options, S3Endpoint endpoint, aws::HttpClient& client)
    : options_(std::move(options)),
      endpoint_(std::make_shared<FollowedEndpoint>(std::move(endpoint))),
      client_(client),
      checksum_(std::make_shared<ChecksumChoice>()) {
  record_ = std::make_unique<RecordState>();
}

std::vector<RemoteObject> Session::Remote() const {
  return remote_;
}

const S3Endpoint& Session::Endpoint() const { return endpoint_->endpoint(); }

void Session::Apply(std::vector<RemoteObject> upserts, std::vector<std::string> erased) {
  if (upserts.empty() && erased.empty()) return;
  const auto by_key = [](const RemoteObject& a, const RemoteObject& b) { return a.key < b.key; };
  std::stable_sort(upserts.begin(), upserts.end(), by_key);
  // The last upsert of a key wins.
  std::vector<RemoteObject> latest;
  latest.reserve(upserts.size());
  for (RemoteObject& o : upserts) {
    if (!latest.empty() && latest.back().key == o.key) {
      latest.back() = std::move(o);
    } else {
      latest.push_back(std::move(o));
    }
  }
  std::sort(erased.begin(), erased.end());
  std::vector<RemoteObject> merged;
  merged.reserve(remote_.size() + latest.size());
  auto old = remote_.begin();
  auto add = latest.begin();
  while (old != remote_.end() || add != latest.end()) {
    if (add == latest.end() || (old != remote_.end() && old->key < add->key)) {
      if (!std::binary_search(erased.begin(), erased.end(), old->key)) merged.push_back(std::move(*old));
      ++old;
    } else {
      if (old != remote_.end() && old->key == add->key) ++old;  // replaced
      if (!std::binary_search(erased.begin(), erased.end(), add->key)) merged.push_back(std::move(*add));
      ++add;
    }
  }
  remote_ = std::move(merged);
}

aws::Result<SyncResult> Session::Initial(Reporter& reporter) {
  // The walk (a stat per file: over a second for 50,000 files) runs on its own thread while the loop lists the
  // bucket. It touches nothing shared: only its own result, read after the listing.
  auto walking = std::async(std::launch::async,
                            [source = options_.source, filters = options_.filters] { return sitemap::Walk(source, filters); });
  const Destination& dest = options_.destination;
  // The listing is the run's first request: a bucket in another region is found here, before anything changes.
  const NotesTo notes(*endpoint_, reporter);
  auto remote = ListObjectsFollowing(client_, endpoint_, dest.bucket, dest.prefix);
  auto site = walking.get();
  // A missing SOURCE is the first thing to report (nothing was changed either way).
  if (!site) return std::unexpected(site.error());
  if (!remote) return std::unexpected(remote.error());
  auto redirects = Redirects(options_);
  if (!redirects) return std::unexpected(redirects.error());
  sitemap::AddGenerated(*site, std::move(*redirects));
  for (const std::string& w : site->warnings) reporter.OnWarning(w);
  remote_ = std::move(*remote);

  // Without a record entry, kChecksum hashes same-size files against their ETags; with --force everything goes
  // up, so hashing against the ETags would decide nothing (the record's own checks still give the MD5s the
  // uploads are recorded with).
  const bool by_content = options_.compare == Compare::kChecksum && !options_.force;
  SyncResult counts;
  const auto known = Prepare(site->files, remote_, [by_content](const sitemap::LocalFile&) { return by_content; },
                             counts, reporter);
  DiffOptions diff{dest.prefix, options_.compare, options_.delete_stale, &options_.filters, nullptr,
                   site->incomplete_folders};
  diff.force = options_.force;
  diff.known = &known;
  ErrorKeys recorder(reporter);
  Plan plan = Diff(site->files, remote_, diff);
  const std::uint64_t head_failures = RefreshHeaders(plan, site->files, remote_, options_.refresh_headers, recorder);
  // The plan holds its own copy of every file it uploads: the walk's list is let go before the transfers start,
  // whose connections make the run's peak memory.
  Remember(site->files);
  std::vector<sitemap::LocalFile>().swap(site->files);
#ifdef __GLIBC__
  // What the walk, the listing and the diff freed is handed back to the kernel now, before the connections take
  // their memory: glibc keeps freed pages (those of the walk's threads in an arena of their own) otherwise, and
  // they are counted in the peak (about 1.5 MB at the medium site).
  malloc_trim(0);
#endif
  auto result = Execute(plan, recorder, false);
  if (result) {
    if (head_failures > 0 && result->outcome == Outcome::kOk) result->outcome = Outcome::kFailed;
    result->failed += head_failures;
    result->failed_keys = RetryPaths(recorder.keys);
    result->hashed += counts.hashed;
    result->newer_same_size += counts.newer_same_size;
  }
  return result;
}

std::vector<std::string> Session::RetryPaths(const std::set<std::string>& keys) const {
  std::set<std::string> paths;
  for (const std::string& key : keys) {
    for (std::string& p : PathsOf(key, options_.filters)) paths.insert(std::move(p));
  }
  return {paths.begin(), paths.end()};
}

void Session::Remember(std::span<const sitemap::LocalFile> files) {
  if (files.empty()) return;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> fresh;
  fresh.reserve(files.size());
  for (const sitemap::LocalFile& f : files) fresh.push_back(Fingerprint(f));
  std::sort(fresh.begin(), fresh.end());
  // The fresh entries replace older ones of the same path.
  std::vector<std::pair<std::uint64_t, std::uint64_t>> merged;
  merged.reserve(seen_.size() + fresh.size());
  auto old = seen_.begin();
  auto add = fresh.begin();
  while (old != seen_.end() || add != fresh.end()) {
    if (add == fresh.end() || (old != seen_.end() && old->first < add->first)) {
      merged.push_back(*old++);
    } else {
      const std::uint64_t path = add->first;
      while (old != seen_.end() && old->first == path) ++old;
      while (add != fresh.end() && add->first == path) merged.push_back(*add++);
    }
  }
  seen_ = std::move(merged);
}

bool Session::Seen(const sitemap::LocalFile& file) const {
  return std::binary_search(seen_.begin(), seen_.end(), Fingerprint(file));
}

aws::Result<BatchResult> Session::Batch(const std::set<std::string>& paths, bool rescan, BatchDeletes deletes,
                                        Reporter& reporter) {
  const NotesTo notes(*endpoint_, reporter);
  // An edit of SOURCE's `_redirects` can add, change or remove any redirect object: everything is looked at.
  if (paths.contains(std::string(sitemap::kRedirectsFile))) rescan = true;
  // Deciding on the files' state now, with the same filters and symlink rules as a sync: the whole tree for a
  // rescan, else only the changed paths (a full walk of a 5,000-file site costs ~100 ms of stat calls). A
  // deletes-only batch looks at exactly the paths it was given: the failed uploads wait for a batch that uploads.
  std::set<std::string> wanted = paths;
  if (deletes != BatchDeletes::kOnly) wanted.insert(failed_.begin(), failed_.end());
  const std::vector<std::string> wanted_list(wanted.begin(), wanted.end());
  // The keys those paths are published under (clean_urls: "about.html" is the key "about"), and the paths
  // themselves (a folder, or an object left from before clean_urls): the remote objects this batch decides about.
  std::set<std::string> wanted_keys = wanted;
  for (const std::string& p : wanted) {
    wanted_keys.insert(sitemap::SiteKey(p, options_.filters.clean_urls, options_.filters.index_document));
  }
  auto site = rescan ? sitemap::Walk(options_.source, options_.filters)
                     : sitemap::WalkPaths(options_.source, wanted_list, options_.filters);
  if (!site) return std::unexpected(site.error());
  {
    auto redirects = Redirects(options_);
    if (!redirects) return std::unexpected(redirects.error());
    if (!rescan) {
      std::erase_if(redirects->files, [&](const sitemap::LocalFile& f) { return !Selected(f.Key(), wanted_keys); });
    }
    // The redirects' warnings are said by the initial sync and by rescans, not again on every batch.
    const std::size_t walk_warnings = site->warnings.size();
    sitemap::AddGenerated(*site, std::move(*redirects));
    for (std::size_t i = walk_warnings; rescan && i < site->warnings.size(); ++i) reporter.OnWarning(site->warnings[i]);
  }
  const std::string& prefix = options_.destination.prefix;

  // No file is held back for its mtime: the watcher says when a file is complete (close_write, moved_to, quiet
  // since), and a comparison with the clock would hold a file dated in the future (clock skew, `cp -p`, NFS)
  // back forever.
  std::vector<sitemap::LocalFile> local;
  std::vector<RemoteObject> remote;
  for (sitemap::LocalFile& f : site->files) {
    if (!rescan && !Selected(f.rel_path, wanted) && !Selected(f.Key(), wanted_keys)) continue;
    local.push_back(std::move(f));
  }
  for (const RemoteObject& object : remote_) {
    const std::string_view rel = std::string_view(object.key).substr(prefix.size());
    if (!rescan && !Selected(rel, wanted_keys)) continue;
    remote.push_back(object);
  }

  // An event says these changed: compare content, not only size (a same-size edit must go up). A rescan (after
  // an overflow, or a rebuilt root folder) compares content for every file that is new or changed (mtime or
  // size) since a walk last saw it, and the rest as the user asked, like a fresh sync.
  // A file whose record entry matches its stat is known without reading it, event or not.
  SyncResult counts;
  const auto known = Prepare(
      local, remote,
      [&](const sitemap::LocalFile& f) { return !rescan || options_.compare == Compare::kChecksum || !Seen(f); },
      counts, reporter);
  DiffOptions diff{prefix, Compare::kChecksum, options_.delete_stale, &options_.filters, nullptr,
                   site->incomplete_folders};
  diff.known = &known;
  Plan plan = Diff(local, remote, diff);
  ErrorKeys recorder(reporter);
  // --refresh-headers is for the initial sync (as --force); generated redirect objects are checked always.
  const std::uint64_t head_failures =
      deletes == BatchDeletes::kOnly ? 0 : RefreshHeaders(plan, local, remote, false, recorder);
  BatchResult out;
  if (deletes == BatchDeletes::kHold) {
    // As paths: the deletes-only batch walks them again (PathsOf), so a page that is back keeps its object.
    std::set<std::string> held;
    for (const std::string& key : plan.deletes) {
      for (std::string& p : PathsOf(Rel(key, prefix), options_.filters)) held.insert(std::move(p));
    }
    out.held_deletes.assign(held.begin(), held.end());
    plan.deletes.clear();
  } else if (deletes == BatchDeletes::kOnly) {
    // A file that exists again is left alone here; its own event makes the batch that uploads it.
    plan.uploads.clear();
    plan.upload_bytes = 0;
    plan.first_html = 0;
  }
  auto result = Execute(plan, recorder, true);
  if (!result) return std::unexpected(result.error());
  Remember(local);
  out.result = std::move(*result);
  if (head_failures > 0 && out.result.outcome == Outcome::kOk) out.result.outcome = Outcome::kFailed;
  out.result.failed += head_failures;
  out.result.failed_keys = RetryPaths(recorder.keys);
  out.result.hashed += counts.hashed;
  out.result.newer_same_size += counts.newer_same_size;
  return out;
}

aws::Result<SyncResult> Session::Execute(const Plan& input, Reporter& reporter, bool batch) {
  const Destination& dest = options_.destination;
  SyncResult result;
  result.dry_run = options_.dry_run;
  result.unchanged = input.unchanged;
  const Plan* plan = &input;
  Plan without_deletes;
  // Held back: not attempted, reported, and taken up again by the next run (a watch batch: the next batch).
  // failed_ holds paths: the paths a key's file may have (PathsOf).
  const auto retry = [&](const std::string& rel) {
    for (std::string& p : PathsOf(rel, options_.filters)) failed_.insert(std::move(p));
  };
  const auto settled = [&](const std::string& rel) {
    for (const std::string& p : PathsOf(rel, options_.filters)) failed_.erase(p);
  };
  const auto hold = [&](const std::string& rel, std::string_view reason) {
    ++result.skipped;
    result.skipped_keys.push_back(rel);
    retry(rel);
    reporter.OnSkipped(rel, reason);
  };
  if (!input.deletes.empty()) {
    // Only asked when something would be deleted: stops at SOURCE's first file.
    const bool source_empty = options_.max_delete_fraction < 1 && !SourceHoldsAFile(options_.source, options_.filters);
    const DeleteRefusal refusal = CheckDeletes(input.deletes.size(), remote_.size(), source_empty,
                                               options_.max_deletes, options_.max_delete_fraction);
    if (refusal) {
      RefusalContext context = RefusalContext::kRun;
      if (batch) {
        context = RefusalContext::kWatchBatch;
      } else if (options_.watching) {
        context = RefusalContext::kWatchStart;
      }
      std::string message = DeleteRefusalMessage(refusal, input.deletes.size(), remote_.size(), options_.max_deletes,
                                                 options_.max_delete_fraction, dest.Url(), context);
      if (!batch) {
        result.outcome = Outcome::kRefused;
        result.refusal = std::move(message);
        return result;
      }
      // In a watch batch the uploads still go; only the deletes are held back, and the next batch retries them.
      reporter.OnError("", message);
      ++result.failed;
      if (!options_.dry_run) {
        for (const std::string& key : input.deletes) hold(Rel(key, dest.prefix), kHeldByGuard);
      }
      without_deletes = input;
      without_deletes.deletes.clear();
      plan = &without_deletes;
    }
  }
  if (!options_.dry_run && options_.before_changes) {
    if (auto ok = options_.before_changes(*plan); !ok) return std::unexpected(ok.error());
  }
  reporter.OnPlan(*plan, options_.dry_run);

  if (options_.dry_run) {
    for (const PlannedUpload& up : plan->uploads) {
      const bool copy = up.reason == UploadReason::kHeadersChanged;
      reporter.OnUploaded(up.file.Key(), copy ? 0 : up.file.size, true, up.reason);
      result.uploaded_keys.emplace_back(up.file.Key());
      ++result.uploaded;
      if (copy) ++result.headers_updated;
      result.bytes_uploaded += copy ? 0 : up.file.size;
    }
    for (const std::string& key : plan->deletes) {
      reporter.OnDeleted(Rel(key, dest.prefix), true);
      result.deleted_keys.push_back(Rel(key, dest.prefix));
      ++result.deleted;
    }
    return result;
  }

  // What this plan covers is decided now: a path kept for a retry that the plan leaves alone is in sync (a batch
  // always reconsiders every such path), so it is retried no more.
  {
    std::set<std::string> in_plan;
    const auto add = [&](std::string_view rel) {
      for (std::string& p : PathsOf(rel, options_.filters)) in_plan.insert(std::move(p));
    };
    for (const PlannedUpload& up : plan->uploads) {
      add(up.file.Key());
      in_plan.insert(up.file.rel_path);
    }
    for (const std::string& key : plan->deletes) add(Rel(key, dest.prefix));
    for (const std::string& rel : result.skipped_keys) add(rel);
    std::erase_if(failed_, [&](const std::string& rel) { return !in_plan.contains(rel); });
  }

  RecordState& rec = *record_;
  if (rec.db != nullptr) {
    // What an upload is recorded with: the MD5 of the body, taken before it is sent (with the stat the walk saw,
    // earlier still), so that a file changed meanwhile is recorded with a stat or MD5 that makes the next run
    // read it again, never with one that hides the change.
    std::vector<std::size_t> missing;
    for (std::size_t i = 0; i < plan->uploads.size(); ++i) {
      const sitemap::LocalFile& f = plan->uploads[i].file;
      // A single PutObject reports the MD5 of what it sent (UploadSpec::want_md5: its ETag where S3 documents
      // that as the MD5, else read once with its checksum); a multipart upload reads its parts apart, so its
      // body's MD5 is taken here, first.
      const bool single_put = f.size <= options_.multipart_threshold && plan->uploads[i].reason != UploadReason::kHeadersChanged;
      if (!single_put && !f.generated && f.encoding == sitemap::Encoding::kIdentity &&
          !rec.md5.contains(std::string(f.Key()))) {
        missing.push_back(i);
      }
    }
    std::vector<std::string> sums(missing.size());
    constexpr std::size_t kBatch = 16;  // Md5FilesHex: side by side
    ForEachOnAllCores((missing.size() + kBatch - 1) / kBatch, [&](std::size_t b) {
      std::vector<const sitemap::LocalFile*> files;
      for (std::size_t n = b * kBatch; n < std::min(missing.size(), (b + 1) * kBatch); ++n) {
        files.push_back(&plan->uploads[missing[n]].file);
      }
      auto got = Md5FilesHex(files);
      for (std::size_t k = 0; k < got.size(); ++k) {
        if (got[k]) sums[b * kBatch + k] = std::move(*got[k]);  // else: uploaded and not recorded
      }
    });
    for (std::size_t n = 0; n < missing.size(); ++n) {
      if (!sums[n].empty()) rec.md5[std::string(plan->uploads[missing[n]].file.Key())] = std::move(sums[n]);
    }
  }
  // The record is written a batch at a time while the transfers run (a transaction each; WAL, no fsync per
  // commit): an entry is a few hundred bytes, and a whole run's held to the end was 2 MB of a 256-transfer run's
  // peak. An entry written describes an object already stored, so a run cut short leaves a record that is right
  // as far as it goes. A record that cannot be written costs the next run a rehash only: said once.
  bool record_warned = false;
  const auto write_record = [&]() {
    if (auto ok = rec.db->Update(rec.upserts, rec.erased); !ok && !record_warned) {
      record_warned = true;
      reporter.OnWarning(ok.error().message + "; the next run compares these files again");
    }
    rec.upserts.clear();
    rec.erased.clear();
  };
  // The record's side of an upload or copy that ended: an entry for what is now stored, or none when unknown.
  // A failed one leaves the entry as it was: it still describes the object there (its stat differs from the
  // file's, so the next run reads the file and sends it again); had S3 stored the new body after all (an answer
  // lost), the object's ETag changed and the entry is not used. Erasing it instead would let a size-only run
  // take a same-size edit for unchanged.
  const auto record_upload = [&](const PlannedUpload& planned, const aws::Result<Uploaded>& done) {
    if (rec.db == nullptr || !done) return;
    const std::string rel(planned.file.Key());
    // The MD5 the upload reported is used as is: kept in rec.md5 too, it would hold one more copy of every key
    // until the run ends.
    const std::string* md5 = nullptr;
    if (!done->md5.empty()) {
      md5 = &done->md5;
    } else if (auto known = rec.md5.find(rel); known != rec.md5.end()) {
      md5 = &known->second;
    }
    if (done->etag.empty() || md5 == nullptr) {
      rec.erased.push_back(rel);
      return;
    }
    const sitemap::LocalFile& f = planned.file;
    const std::uint64_t body_size = planned.reason == UploadReason::kHeadersChanged ? f.size : done->bytes;
    rec.upserts.emplace_back(rel, RecordEntry{f.disk_size, f.mtime_ns, f.ino, body_size, *md5, done->etag,
                                              HeadersDigest(f)});
    if (rec.upserts.size() >= kRecordBatch) write_record();
  };

  std::uint64_t files_done = 0;
  std::uint64_t upload_failures = 0;
  std::vector<std::string> erased;
  // What the uploads leave behind is kept small while they run, when every connection is open and each holds
  // its buffers: a plan index, not a copy of its key (the attempted keys, the uploaded keys and the objects for
  // remote_ were three copies of every key, 1.3 MB of the medium site's peak). The keys are made once the
  // uploads are done. Sized once: a vector that doubles holds up to twice its entries, and both copies while it
  // moves.
  struct Stored {
    std::uint32_t index = 0;  ///< In plan->uploads.
    std::uint64_t size = 0;   ///< Of the object now.
    std::string etag;
  };
  std::vector<std::uint32_t> attempted;  // plan indices, in the order the uploads ended
  std::vector<Stored> stored;            // the uploads that succeeded, in that order
  attempted.reserve(plan->uploads.size());
  stored.reserve(plan->uploads.size());
  if (rec.db != nullptr) rec.upserts.reserve(std::min(rec.upserts.size() + plan->uploads.size(), kRecordBatch));
  // Uploads are fed to the loop a window at a time, each completion adding the next: thousands of queued
  // requests would only hold memory while the transfers in flight are the limit anyway.
  constexpr std::size_t kWindow = 256;
  std::size_t next = 0;
  std::size_t end_of_range = 0;
  // While PutObjects carry Content-MD5 (the first ones of a run, and all of them for a server that does not check
  // the CRC-32), the bodies of the next single PutObjects are opened and hashed kHashAhead at a time, side by side
  // (HashBodies), instead of one after another as each transfer starts: MD5 cannot go faster than ~0.7 GB/s one
  // message at a time.
  constexpr std::size_t kHashAhead = 32;
  constexpr std::size_t kHashAheadLarge = 16;
  constexpr std::uint64_t kLargeBody = 256 * 1024;
  std::unordered_map<std::size_t, std::shared_ptr<const HashedBody>> hashed_ahead;
  std::vector<bool> started(plan->uploads.size());  // its first attempt has started: not hashed ahead
  const auto single_put = [&](const PlannedUpload& up) {
    return up.reason != UploadReason::kHeadersChanged && !up.file.generated &&
           up.file.encoding == sitemap::Encoding::kIdentity && up.file.size <= options_.multipart_threshold;
  };
  const auto hashed_body = [&](std::size_t i) -> std::shared_ptr<const HashedBody> {
    started[i] = true;
    if (auto node = hashed_ahead.extract(i); !node.empty()) return std::move(node.mapped());
    if (!single_put(plan->uploads[i]) || checksum_->Current() == BodyChecksum::kCrc32) return nullptr;
    // Lanes go as fast as the longest message of a batch lets them: a large body is hashed with the next large ones
    // (kHashAheadLarge of them, wherever they are in the range), a small one with the next small ones.
    const auto large = [&](std::size_t j) { return plan->uploads[j].file.size > kLargeBody; };
    const std::size_t count = large(i) ? kHashAheadLarge : kHashAhead;
    std::vector<std::size_t> indices = {i};
    std::vector<const sitemap::LocalFile*> files = {&plan->uploads[i].file};
    for (std::size_t j = i + 1; j < end_of_range && indices.size() < count; ++j) {
      if (single_put(plan->uploads[j]) && !started[j] && !hashed_ahead.contains(j) && large(j) == large(i)) {
        indices.push_back(j);
        files.push_back(&plan->uploads[j].file);
      }
    }
    auto bodies = HashBodies(files, /*crc32=*/checksum_->Current() == BodyChecksum::kBoth);
    // A file that cannot be read is left to its upload, which reads it and reports why.
    const auto shared = [](aws::Result<HashedBody>& body) {
      return body ? std::make_shared<const HashedBody>(std::move(*body)) : nullptr;
    };
    for (std::size_t n = 1; n < indices.size(); ++n) hashed_ahead[indices[n]] = shared(bodies[n]);
    return shared(bodies[0]);
  };
  std::function<void()> submit_next;
  submit_next = [&]() {
    if (next >= end_of_range) return;
    const std::size_t i = next++;
    {
      const PlannedUpload& up = plan->uploads[i];
      UploadSpec spec{dest.bucket, plan->KeyOf(up), up.file, options_.multipart_threshold, options_.part_size,
                      checksum_};
      spec.want_md5 = record_->db != nullptr;
      spec.body_ahead = [&hashed_body, i] { return hashed_body(i); };
      auto on_done = [&, i](aws::Result<Uploaded> done) {
        const PlannedUpload& planned = plan->uploads[i];
        const std::string rel(planned.file.Key());
        ++files_done;
        // Attempted either way: a failure may be an answer lost after S3 stored the object.
        attempted.push_back(static_cast<std::uint32_t>(i));
        record_upload(planned, done);
        if (done) {
          ++result.uploaded;
          if (planned.reason == UploadReason::kHeadersChanged) ++result.headers_updated;
          result.bytes_uploaded += done->bytes;
          // A copy sends no body (bytes 0); the object keeps its size.
          const bool copied = planned.reason == UploadReason::kHeadersChanged;
          stored.push_back(Stored{static_cast<std::uint32_t>(i), copied ? planned.file.size : done->bytes, done->etag});
          settled(rel);
          reporter.OnUploaded(rel, done->bytes, false, planned.reason);
        } else {
          ++result.failed;
          ++upload_failures;
          retry(rel);
          reporter.OnError(rel, done.error().message);
        }
        reporter.OnProgress(files_done, result.bytes_uploaded);
        submit_next();
      };
      // Only the headers differ: CopyObject onto itself, no body sent.
      if (up.reason == UploadReason::kHeadersChanged) {
        SubmitCopy(client_, endpoint_, std::move(spec), std::move(on_done));
      } else {
        SubmitUpload(client_, endpoint_, std::move(spec), std::move(on_done));
      }
    }
  };
  auto upload_range = [&](std::size_t begin, std::size_t end) {
    next = begin;
    end_of_range = end;
    for (std::size_t k = 0; k < kWindow; ++k) submit_next();
    client_.Run();
    hashed_ahead.clear();
  };
  // A page never goes live before the assets it references, also when one of them fails: then no page of this
  // run goes up. And nothing is deleted after a failed upload (a page still live may reference what would go).
  upload_range(0, plan->first_html);
  const bool asset_failed = upload_failures > 0;
  if (asset_failed) {
    for (std::size_t i = plan->first_html; i < plan->uploads.size(); ++i) {
      hold(std::string(plan->uploads[i].file.Key()), kHeldByAsset);
    }
  } else {
    upload_range(plan->first_html, plan->uploads.size());
  }
  if (upload_failures > 0) {
    for (const std::string& key : plan->deletes) hold(Rel(key, dest.prefix), asset_failed ? kHeldByAsset : kHeldByPage);
  }
  result.attempted_keys.reserve(attempted.size() + plan->deletes.size());
  for (const std::uint32_t i : attempted) result.attempted_keys.emplace_back(plan->uploads[i].file.Key());
  std::vector<std::uint32_t>().swap(attempted);
  std::vector<RemoteObject> upserts;  // applied to remote_ at the end, in one pass
  upserts.reserve(stored.size());
  result.uploaded_keys.reserve(stored.size());
  for (Stored& done : stored) {
    const PlannedUpload& planned = plan->uploads[done.index];
    result.uploaded_keys.emplace_back(planned.file.Key());
    upserts.push_back(RemoteObject{plan->KeyOf(planned), done.size, std::move(done.etag)});
  }
  std::vector<Stored>().swap(stored);
  const std::vector<std::string> no_deletes;
  const std::vector<std::string>& deletes = upload_failures > 0 ? no_deletes : plan->deletes;

  for (std::size_t begin = 0; begin < deletes.size(); begin += kDeleteBatch) {
    const std::size_t end = std::min(deletes.size(), begin + kDeleteBatch);
    std::vector<std::string> keys(deletes.begin() + static_cast<std::ptrdiff_t>(begin),
                                  deletes.begin() + static_cast<std::ptrdiff_t>(end));
    SubmitDeleteBatch(client_, endpoint_, dest.bucket, keys,
                      [&, keys](aws::Result<std::vector<std::pair<std::string, std::string>>> done) {
                        std::map<std::string, std::string> failed;
                        if (!done) {
                          for (const std::string& key : keys) failed.emplace(key, done.error().message);
                        } else {
                          failed.insert(done->begin(), done->end());
                        }
                        for (const std::string& key : keys) {
                          const std::string rel = Rel(key, dest.prefix);
                          // Attempted either way: a lost answer may follow a delete S3 did.
                          result.attempted_keys.push_back(rel);
                          if (auto f = failed.find(key); f != failed.end()) {
                            ++result.failed;
                            retry(rel);
                            reporter.OnError(rel, "DeleteObjects: " + f->second);
                          } else {
                            ++result.deleted;
                            result.deleted_keys.push_back(rel);
                            if (rec.db != nullptr) rec.erased.push_back(rel);
                            erased.push_back(key);
                            settled(rel);
                            reporter.OnDeleted(rel, false);
                          }
                        }
                      });
  }
  client_.Run();
  Apply(std::move(upserts), std::move(erased));
  if (rec.db != nullptr) write_record();
  if (result.failed > 0) result.outcome = Outcome::kFailed;
  return result;
}

aws::Result<SyncResult> RunSync(const SyncOptions& options, const S3Endpoint& endpoint, aws::HttpClient& client,
                                Reporter& reporter) {
  Session session(options, endpoint, client);
  return session.Initial(reporter);
}

}  // namespace sitesync::sync
