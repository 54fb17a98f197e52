// PageSet: the HTML pages of the site and their robots noindex, kept between watch batches so that one changed
// page costs one read, not a read of every page.
#include <algorithm>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sitemap/sitemap.h"

namespace sitesync::sitemap {
namespace {

bool InScope(std::string_view rel, std::span<const std::string> scope) {
  for (std::string_view s : scope) {
    while (s.ends_with('/')) s.remove_suffix(1);
    if (s.empty() || s == "." || rel == s) return true;
    if (rel.size() > s.size() && rel.starts_with(s) && rel[s.size()] == '/') return true;
  }
  return false;
}

bool SamePages(const std::vector<Page>& a, const std::vector<Page>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](const Page& x, const Page& y) {
    return x.rel_path == y.rel_path && x.mtime_ns == y.mtime_ns && x.noindex == y.noindex && x.key == y.key;
  });
}

}  // namespace

PageSet::PageSet(std::filesystem::path source, WalkOptions filters, std::string output_rel)
    : source_(std::move(source)), filters_(std::move(filters)), output_rel_(std::move(output_rel)) {}

Result<bool> PageSet::Rescan() {
  warnings_.clear();
  auto site = Walk(source_, filters_);
  if (!site) return std::unexpected(site.error());
  return Apply(*site, {}, true);
}

Result<bool> PageSet::Update(std::span<const std::string> rel_paths) {
  warnings_.clear();
  if (rel_paths.empty()) return false;
  auto site = WalkPaths(source_, rel_paths, filters_);
  if (!site) return std::unexpected(site.error());
  return Apply(*site, rel_paths, false);
}

std::vector<Page> PageSet::Pages() const { return pages_; }

Result<bool> PageSet::Apply(const SiteMap& site, std::span<const std::string> scope, bool everything) {
  std::vector<Page> next;
  next.reserve(everything ? site.files.size() : pages_.size() + site.files.size());
  // Outside the scope nothing was looked at: those pages stay as they were.
  if (!everything) {
    for (const Page& p : pages_) {
      if (!InScope(p.rel_path, scope)) next.push_back(p);
    }
  }
  for (const LocalFile& f : site.files) {
    if (!IsHtml(f.rel_path) || IsSitemapFile(f.rel_path, output_rel_)) continue;
    Page page{f.rel_path, f.mtime_ns, f.size, false, f.key};
    const auto old = std::lower_bound(pages_.begin(), pages_.end(), f.rel_path,
                                      [](const Page& p, const std::string& rel) { return p.rel_path < rel; });
    if (old != pages_.end() && old->rel_path == f.rel_path && old->mtime_ns == f.mtime_ns && old->size == f.size) {
      page.noindex = old->noindex;  // same file as last time: no need to read it again
    } else if (auto noindex = FileRobotsNoindex(f); noindex) {
      page.noindex = *noindex;
    } else {
      // The sync will fail on it too, and say so; the sitemap lists it as a page without noindex.
      warnings_.push_back("sitemap: " + noindex.error().message + "; listed as a page without robots noindex");
    }
    next.push_back(std::move(page));
  }
  std::sort(next.begin(), next.end(), [](const Page& a, const Page& b) { return a.rel_path < b.rel_path; });
  next.erase(std::unique(next.begin(), next.end(),
                         [](const Page& a, const Page& b) { return a.rel_path == b.rel_path; }),
             next.end());
  const bool changed = !SamePages(next, pages_);
  pages_ = std::move(next);
  return changed;
}

}  // namespace sitesync::sitemap
