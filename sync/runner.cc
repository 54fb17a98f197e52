// One sync run: walk, list once, diff, then assets, HTML and deletes through the multi loop.
#include <charconv>

#include <fmt/format.h>

#include "sync/s3_client.h"
#include "sync/sync.h"

namespace sitesync::sync {
namespace {

constexpr std::size_t kDeleteBatch = 1000;  // DeleteObjects takes at most 1,000 keys a request

std::string Rel(const std::string& key, const std::string& prefix) { return key.substr(prefix.size()); }

// The local counterpart of `remote_etag` for `file`, or nullopt when no comparable one can be made (a multipart
// ETag made with another part size).
aws::Result<std::optional<std::string>> ComparableEtag(const sitemap::LocalFile& file, std::string_view remote_etag,
                                                       const SyncOptions& options) {
  const auto dash = remote_etag.find('-');
  const std::string path = file.abs_path.string();
  if (dash == std::string_view::npos) {
    auto md5 = Md5FileHex(path, 0, file.size);
    if (!md5) return std::unexpected(md5.error());
    return std::optional<std::string>(*md5);
  }
  std::uint64_t parts = 0;
  auto count = remote_etag.substr(dash + 1);
  if (std::from_chars(count.data(), count.data() + count.size(), parts).ec != std::errc{}) {
    return std::optional<std::string>();
  }
  const std::uint64_t ps = PartSizeFor(file.size, options.part_size);
  if (file.size <= options.multipart_threshold || (file.size + ps - 1) / ps != parts) {
    return std::optional<std::string>();
  }
  auto etag = LocalEtag(path, file.size, options.multipart_threshold, options.part_size);
  if (!etag) return std::unexpected(etag.error());
  return std::optional<std::string>(*etag);
}

}  // namespace

aws::Result<SyncResult> RunSync(const SyncOptions& options, const S3Endpoint& endpoint, aws::HttpClient& client,
                                Reporter& reporter) {
  auto site = sitemap::Walk(options.source, options.filters);
  if (!site) return std::unexpected(site.error());
  for (const std::string& w : site->warnings) reporter.OnWarning(w);

  const Destination& dest = options.destination;
  auto remote = ListObjects(client, endpoint, dest.bucket, dest.prefix);
  if (!remote) return std::unexpected(remote.error());

  std::map<std::string, std::string> local_etags;
  if (options.compare == Compare::kChecksum) {
    for (const auto& [index, remote_etag] : ChecksumCandidates(site->files, *remote, dest.prefix)) {
      const sitemap::LocalFile& file = site->files[index];
      auto etag = ComparableEtag(file, remote_etag, options);
      if (!etag) {
        reporter.OnWarning(fmt::format("{}: {}; compared by size only", file.rel_path, etag.error().message));
      } else if (*etag) {
        local_etags.emplace(file.rel_path, std::move(**etag));
      }
    }
  }

  DiffOptions diff{dest.prefix, options.compare, options.delete_stale, &options.filters, &local_etags,
                   site->incomplete_folders};
  const Plan plan = Diff(site->files, *remote, diff);

  SyncResult result;
  result.dry_run = options.dry_run;
  result.unchanged = plan.unchanged;
  if (options.delete_stale && options.max_deletes >= 0 &&
      plan.deletes.size() > static_cast<std::uint64_t>(options.max_deletes)) {
    result.outcome = Outcome::kRefused;
    result.refusal = fmt::format(
        "refusing to delete {} objects under {}: more than --max-deletes {}. Nothing was changed. If SOURCE and "
        "DEST are right, run again with --max-deletes {} (or -1 for no limit)",
        plan.deletes.size(), dest.Url(), options.max_deletes, plan.deletes.size());
    return result;
  }
  if (!options.dry_run && options.before_changes) {
    if (auto ok = options.before_changes(plan); !ok) return std::unexpected(ok.error());
  }
  reporter.OnPlan(plan, options.dry_run);

  if (options.dry_run) {
    for (const PlannedUpload& up : plan.uploads) {
      reporter.OnUploaded(up.file.rel_path, up.file.size, true);
      result.uploaded_keys.push_back(up.file.rel_path);
      ++result.uploaded;
      result.bytes_uploaded += up.file.size;
    }
    for (const std::string& key : plan.deletes) {
      reporter.OnDeleted(Rel(key, dest.prefix), true);
      result.deleted_keys.push_back(Rel(key, dest.prefix));
      ++result.deleted;
    }
    return result;
  }

  std::uint64_t files_done = 0;
  auto upload_range = [&](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) {
      const PlannedUpload& up = plan.uploads[i];
      UploadSpec spec{dest.bucket, up.key, up.file, options.multipart_threshold, options.part_size};
      SubmitUpload(client, endpoint, std::move(spec), [&, i](aws::Result<std::uint64_t> done) {
        const std::string& rel = plan.uploads[i].file.rel_path;
        ++files_done;
        if (done) {
          ++result.uploaded;
          result.bytes_uploaded += *done;
          result.uploaded_keys.push_back(rel);
          reporter.OnUploaded(rel, *done, false);
        } else {
          ++result.failed;
          reporter.OnError(rel, done.error().message);
        }
        reporter.OnProgress(files_done, result.bytes_uploaded);
      });
    }
    client.Run();
  };
  upload_range(0, plan.first_html);
  upload_range(plan.first_html, plan.uploads.size());

  for (std::size_t begin = 0; begin < plan.deletes.size(); begin += kDeleteBatch) {
    const std::size_t end = std::min(plan.deletes.size(), begin + kDeleteBatch);
    std::vector<std::string> batch(plan.deletes.begin() + static_cast<std::ptrdiff_t>(begin),
                                   plan.deletes.begin() + static_cast<std::ptrdiff_t>(end));
    SubmitDeleteBatch(client, endpoint, dest.bucket, batch,
                      [&, batch](aws::Result<std::vector<std::pair<std::string, std::string>>> done) {
                        std::map<std::string, std::string> failed;
                        if (!done) {
                          for (const std::string& key : batch) failed.emplace(key, done.error().message);
                        } else {
                          failed.insert(done->begin(), done->end());
                        }
                        for (const std::string& key : batch) {
                          const std::string rel = Rel(key, dest.prefix);
                          if (auto f = failed.find(key); f != failed.end()) {
                            ++result.failed;
                            reporter.OnError(rel, "DeleteObjects: " + f->second);
                          } else {
                            ++result.deleted;
                            result.deleted_keys.push_back(rel);
                            reporter.OnDeleted(rel, false);
                          }
                        }
                      });
  }
  client.Run();
  if (result.failed > 0) result.outcome = Outcome::kFailed;
  return result;
}

}  // namespace sitesync::sync
