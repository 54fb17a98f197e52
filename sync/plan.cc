// The pure part of a sync: parse DEST, decide what to upload and delete.
#include <algorithm>
#include <unordered_map>

#include <fmt/format.h>

#include "sync/sync.h"

namespace sitesync::sync {

aws::Result<Destination> ParseDestination(std::string_view text) {
  constexpr std::string_view kScheme = "s3://";
  const auto usage = [&](std::string_view why) {
    return aws::Fail(aws::ErrorCode::kUsage,
                     fmt::format("bad destination '{}': {}; expected s3://BUCKET or s3://BUCKET/PREFIX", text, why));
  };
  if (!text.starts_with(kScheme)) return usage("it does not start with s3://");
  std::string_view rest = text.substr(kScheme.size());
  const auto slash = rest.find('/');
  std::string_view bucket = rest.substr(0, slash);
  if (bucket.empty()) return usage("the bucket name is missing");
  // S3 bucket naming rules: 3-63 characters of lowercase letters, digits, '.', '-' (older buckets may also have
  // '_' and capitals, which S3 still serves; accept them).
  if (bucket.size() < 3 || bucket.size() > 63) return usage("a bucket name has 3 to 63 characters");
  for (char c : bucket) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_')) {
      return usage(fmt::format("'{}' is not allowed in a bucket name", c));
    }
  }
  Destination d;
  d.bucket = std::string(bucket);
  if (slash != std::string_view::npos) {
    d.prefix = std::string(rest.substr(slash + 1));
    if (!d.prefix.empty() && !d.prefix.ends_with('/')) d.prefix += '/';
  }
  return d;
}

std::unordered_map<std::string_view, const RemoteObject*> IndexByRelKey(std::span<const RemoteObject> remote,
                                                                       std::string_view prefix) {
  std::unordered_map<std::string_view, const RemoteObject*> by_rel;
  by_rel.reserve(remote.size());
  for (const RemoteObject& o : remote) {
    if (!std::string_view(o.key).starts_with(prefix)) continue;
    by_rel.emplace(std::string_view(o.key).substr(prefix.size()), &o);
  }
  return by_rel;
}

namespace {

// Whether the filters leave out the file a remote key comes from: the key itself, or with clean_urls the page
// published under it ("secret" from "secret.html", which an exclude glob may name).
bool ExcludedKey(std::string_view rel, const sitemap::WalkOptions& filters) {
  if (sitemap::Excluded(rel, filters)) return true;
  if (!filters.clean_urls) return false;
  const std::string page = std::string(rel) + ".html";
  return sitemap::SiteKey(page, true, filters.index_document) == rel && sitemap::Excluded(page, filters);
}

}  // namespace

std::vector<std::pair<std::size_t, std::string>> ChecksumCandidates(std::span<const sitemap::LocalFile> local,
                                                                    std::span<const RemoteObject> remote,
                                                                    std::string_view prefix) {
  const auto by_rel = IndexByRelKey(remote, prefix);
  std::vector<std::pair<std::size_t, std::string>> out;
  for (std::size_t i = 0; i < local.size(); ++i) {
    auto it = by_rel.find(local[i].Key());
    if (it == by_rel.end() || it->second->size != local[i].size || it->second->etag.empty()) continue;
    out.emplace_back(i, it->second->etag);
  }
  return out;
}

Plan Diff(std::span<const sitemap::LocalFile> local, std::span<const RemoteObject> remote,
          const DiffOptions& options) {
  const auto by_rel = IndexByRelKey(remote, options.prefix);
  Plan plan;
  plan.prefix = options.prefix;
  std::vector<PlannedUpload> html;
  std::unordered_map<std::string_view, bool> local_rel;
  local_rel.reserve(local.size());
  for (const sitemap::LocalFile& f : local) {
    local_rel.emplace(f.Key(), true);
    auto it = by_rel.find(f.Key());
    std::optional<UploadReason> reason;
    if (it == by_rel.end()) {
      reason = UploadReason::kNew;
    } else if (it->second->size != f.size) {
      reason = UploadReason::kSizeChanged;
    } else if (auto known = options.known != nullptr ? options.known->find(std::string(f.Key()))
                                                       : std::unordered_map<std::string, Known>::const_iterator{};
               options.known != nullptr && known != options.known->end()) {
      if (known->second == Known::kContentChanged) reason = UploadReason::kContentChanged;
      if (known->second == Known::kHeadersChanged) reason = UploadReason::kHeadersChanged;
    } else if (options.compare == Compare::kChecksum && options.local_etags != nullptr) {
      auto etag = options.local_etags->find(std::string(f.Key()));
      if (etag != options.local_etags->end() && etag->second != it->second->etag) {
        reason = UploadReason::kContentChanged;
      }
    }
    if (!reason && options.force) reason = UploadReason::kForced;
    if (!reason) {
      ++plan.unchanged;
      continue;
    }
    PlannedUpload up{f, *reason};
    // A headers-only update copies the object onto itself: no body is sent.
    if (*reason != UploadReason::kHeadersChanged) plan.upload_bytes += f.size;
    // A redirect goes with the pages: after the assets, as the page it leads to may be new in this run.
    (sitemap::IsHtml(f.rel_path) || f.generated ? html : plan.uploads).push_back(std::move(up));
  }
  // A page never goes live before the assets it references: assets first, then HTML.
  plan.first_html = plan.uploads.size();
  std::move(html.begin(), html.end(), std::back_inserter(plan.uploads));

  if (options.delete_stale) {
    for (const auto& [rel, object] : by_rel) {
      if (rel.empty() || rel.ends_with('/')) continue;  // the prefix's own folder marker, console folders
      if (local_rel.contains(rel)) continue;
      // A folder the walk could not read may still hold these files: deleting them would lose data.
      if (std::any_of(options.incomplete_folders.begin(), options.incomplete_folders.end(),
                      [&](const std::string& folder) {
                        return folder.empty() || (rel.starts_with(folder) && rel.size() > folder.size() &&
                                                  rel[folder.size()] == '/');
                      })) {
        continue;
      }
      // What the filters exclude is outside the sync: never deleted (as aws s3 sync and rclone behave).
      if (options.filters != nullptr && ExcludedKey(rel, *options.filters)) continue;
      plan.deletes.push_back(object->key);
    }
    std::sort(plan.deletes.begin(), plan.deletes.end());
  }
  return plan;
}

DeleteRefusal CheckDeletes(std::uint64_t deletes, std::uint64_t objects, bool source_empty, std::int64_t max_deletes,
                           double max_fraction) {
  DeleteRefusal r;
  if (deletes == 0) return r;
  r.max_deletes = max_deletes >= 0 && deletes > static_cast<std::uint64_t>(max_deletes);
  if (max_fraction < 1) {
    // A failed build that leaves public/ empty, or a generator that empties it to rebuild, looks to a diff like
    // a site whose every page was removed: a share of the site this large going at once is refused.
    r.fraction = deletes > kDeleteFloor && static_cast<double>(deletes) > max_fraction * static_cast<double>(objects);
    r.empty_source = source_empty;
  }
  return r;
}

std::string DeleteRefusalMessage(const DeleteRefusal& refusal, std::uint64_t deletes, std::uint64_t objects,
                                 std::int64_t max_deletes, double max_fraction, const std::string& where,
                                 RefusalContext context) {
  std::vector<std::string> why;
  if (refusal.empty_source) why.push_back("SOURCE holds no file to publish");
  if (refusal.max_deletes) why.push_back(fmt::format("more than --max-deletes {}", max_deletes));
  if (refusal.fraction) {
    why.push_back(fmt::format("more than {} objects and more than --max-delete-fraction {} of the {} there",
                              kDeleteFloor, max_fraction, objects));
  }
  std::string reasons;
  for (const std::string& w : why) reasons += (reasons.empty() ? "" : "; ") + w;
  if (context == RefusalContext::kWatchStart) {
    return fmt::format(
        "refusing to delete {} of the {} objects under {}: {}. Nothing was changed. SOURCE may be mid-rebuild or "
        "emptied: start watch again once the build is complete. To delete this much on purpose, run sitesync sync "
        "--delete",
        deletes, objects, where, reasons);
  }
  if (context == RefusalContext::kWatchBatch) {
    // Never "raise the limit" here: during a rebuild that would delete the live site.
    return fmt::format(
        "holding back {} deletes of the {} objects under {}: {}. SOURCE looks mid-rebuild or emptied, so nothing "
        "was deleted (the uploads went); the next batch retries these deletes against the files then present. "
        "To delete this much on purpose, stop watch once the build is done and run sitesync sync --delete",
        deletes, objects, where, reasons);
  }
  std::vector<std::string> ways;
  if (refusal.max_deletes) ways.push_back(fmt::format("--max-deletes {} (or -1 for no limit)", deletes));
  if (refusal.fraction || refusal.empty_source) ways.push_back("--max-delete-fraction 1");
  std::string way;
  for (const std::string& w : ways) way += (way.empty() ? "" : " and ") + w;
  return fmt::format(
      "refusing to delete {} of the {} objects under {}: {}. Nothing was changed. {}If SOURCE and DEST are right, "
      "run again with {}",
      deletes, objects, where, reasons,
      refusal.empty_source ? "Check that the build wrote SOURCE (a failed build can leave it empty). " : "", way);
}

}  // namespace sitesync::sync
