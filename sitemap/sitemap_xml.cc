// sitemap.xml: which URLs, in which order, in how many files. The XML itself is written by libxml2
// (libxml2_writer.cc); this file decides what goes in it.
//
// The sitemaps.org protocol 0.9, as it applies here:
// - <loc> is an absolute URL, escaped per RFC 3986 (EncodeUrlPath) and then entity-escaped as XML (libxml2),
//   "less than 2,048 characters": longer ones are left out with a warning.
// - <lastmod> in W3C Datetime; the file's mtime, in UTC to the second.
// - At most 50,000 URLs and 50 MB (52,428,800 bytes) uncompressed per file; past that, several files and a
//   sitemap index listing them, itself under the same limits.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sitemap/sitemap.h"
#include "sitemap/xml_writer.h"

namespace sitesync::sitemap {
namespace {

constexpr std::size_t kMaxUrlLength = 2048;
constexpr std::size_t kMaxIndexEntries = 50'000;

struct PartName {
  std::string folder;  // "" or "dir/"
  std::string stem;    // "sitemap"
  std::string ext;     // ".xml" or ""
};

PartName SplitName(std::string_view output_rel) {
  PartName p;
  const std::size_t slash = output_rel.rfind('/');
  std::string_view name = output_rel;
  if (slash != std::string_view::npos) {
    p.folder = std::string(output_rel.substr(0, slash + 1));
    name = output_rel.substr(slash + 1);
  }
  const std::size_t dot = name.rfind('.');
  if (dot == std::string_view::npos || dot == 0) {
    p.stem = std::string(name);
  } else {
    p.stem = std::string(name.substr(0, dot));
    p.ext = std::string(name.substr(dot));
  }
  return p;
}

std::string PartFileName(const PartName& p, std::size_t n) { return p.stem + "-" + std::to_string(n) + p.ext; }

struct Item {
  XmlEntry entry;
  std::int64_t mtime_ns = 0;
};

}  // namespace

std::string W3cDatetime(std::int64_t unix_ns) {
  using namespace std::chrono;
  // Years 1970 to 9999: W3C Datetime has four-digit years, and a file dated before 1970 has no real date.
  constexpr std::int64_t kMaxSeconds = 253'402'300'799;  // 9999-12-31T23:59:59Z
  const std::int64_t secs_since_epoch = std::clamp<std::int64_t>(unix_ns / 1'000'000'000, 0, kMaxSeconds);
  const sys_seconds t{seconds{secs_since_epoch}};
  const sys_days day = floor<days>(t);
  const year_month_day ymd{day};
  const hh_mm_ss<seconds> hms{t - day};
  char out[32];
  std::snprintf(out, sizeof out, "%04d-%02u-%02uT%02d:%02d:%02dZ", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                static_cast<int>(hms.seconds().count()));
  return out;
}

bool IsSitemapFile(std::string_view rel_path, std::string_view output_rel) {
  if (output_rel.empty()) return false;
  if (rel_path == output_rel) return true;
  const PartName p = SplitName(output_rel);
  if (!rel_path.starts_with(p.folder)) return false;
  std::string_view name = rel_path.substr(p.folder.size());
  if (name.find('/') != std::string_view::npos) return false;
  if (!name.starts_with(p.stem + "-") || !name.ends_with(p.ext)) return false;
  name = name.substr(p.stem.size() + 1, name.size() - p.stem.size() - 1 - p.ext.size());
  return !name.empty() && name.size() <= 9 && std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; });
}

Result<Sitemap> BuildSitemap(std::span<const Page> pages, const SitemapOptions& options) {
  Sitemap out;
  std::vector<Item> items;
  items.reserve(pages.size());
  for (const Page& page : pages) {
    if (page.noindex || IsSitemapFile(page.rel_path, options.output_rel)) continue;
    // base_url ends in '/', the canonical path starts with one.
    std::string loc = options.base_url + EncodeUrlPath(
        CanonicalUrlPath(page.key.empty() ? page.rel_path : page.key, options.index_document).substr(1));
    if (loc.size() >= kMaxUrlLength) {
      out.warnings.push_back("sitemap: left out " + page.rel_path + ": its URL has " + std::to_string(loc.size()) +
                             " characters; the sitemap protocol allows fewer than 2,048");
      continue;
    }
    items.push_back(Item{XmlEntry{std::move(loc), {}}, page.mtime_ns});
  }
  // Sorted by URL, byte order: the same site always gives the same file.
  std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) { return a.entry.loc < b.entry.loc; });
  // Two files never share a URL under these rules; should one ever, it is listed once, with the newer date.
  std::vector<Item> unique;
  unique.reserve(items.size());
  for (Item& item : items) {
    if (!unique.empty() && unique.back().entry.loc == item.entry.loc) {
      unique.back().mtime_ns = std::max(unique.back().mtime_ns, item.mtime_ns);
    } else {
      unique.push_back(std::move(item));
    }
  }
  items = std::move(unique);
  for (Item& item : items) item.entry.lastmod = W3cDatetime(item.mtime_ns);
  out.urls = items.size();

  auto sizes = MeasureSitemapXml(XmlRoot::kUrlset);
  if (!sizes) return std::unexpected(sizes.error());
  // Greedy, in URL order: a part ends before the URL that would take it past either limit.
  std::vector<std::pair<std::size_t, std::size_t>> ranges;
  std::size_t begin = 0;
  std::size_t bytes = sizes->empty_document;
  for (std::size_t i = 0; i < items.size(); ++i) {
    const std::size_t entry = sizes->Entry(items[i].entry);
    if (i > begin && (i - begin >= options.max_urls || bytes + entry > options.max_bytes)) {
      ranges.emplace_back(begin, i);
      begin = i;
      bytes = sizes->empty_document;
    }
    if (bytes + entry > options.max_bytes) {
      return Fail(ErrorCode::kInternal, "sitemap: one URL does not fit in a file of " +
                                                      std::to_string(options.max_bytes) + " bytes");
    }
    bytes += entry;
  }
  ranges.emplace_back(begin, items.size());

  const PartName name = SplitName(options.output_rel);
  const std::string output_name = name.stem + name.ext;
  auto entries_of = [&](std::size_t from, std::size_t to) {
    std::vector<XmlEntry> entries;
    entries.reserve(to - from);
    for (std::size_t i = from; i < to; ++i) entries.push_back(items[i].entry);
    return entries;
  };
  if (ranges.size() == 1) {
    auto xml = WriteSitemapXml(XmlRoot::kUrlset, entries_of(0, items.size()));
    if (!xml) return std::unexpected(xml.error());
    out.documents.push_back(SitemapDocument{output_name, std::move(*xml), items.size()});
  } else {
    if (ranges.size() > kMaxIndexEntries) {
      return Fail(ErrorCode::kInput, "sitemap: " + std::to_string(items.size()) +
                                                   " URLs need more than 50,000 sitemap files, more than one "
                                                   "sitemap index can list");
    }
    out.split = true;
    std::vector<XmlEntry> index;
    std::vector<SitemapDocument> parts;
    for (std::size_t n = 0; n < ranges.size(); ++n) {
      const auto [from, to] = ranges[n];
      auto xml = WriteSitemapXml(XmlRoot::kUrlset, entries_of(from, to));
      if (!xml) return std::unexpected(xml.error());
      const std::string part = PartFileName(name, n + 1);
      std::int64_t newest = items[from].mtime_ns;
      for (std::size_t i = from; i < to; ++i) newest = std::max(newest, items[i].mtime_ns);
      index.push_back(XmlEntry{options.base_url + EncodeUrlPath(name.folder + part), W3cDatetime(newest)});
      parts.push_back(SitemapDocument{part, std::move(*xml), to - from});
    }
    auto xml = WriteSitemapXml(XmlRoot::kSitemapIndex, index);
    if (!xml) return std::unexpected(xml.error());
    out.documents.push_back(SitemapDocument{output_name, std::move(*xml), index.size()});
    std::move(parts.begin(), parts.end(), std::back_inserter(out.documents));
  }
  for (const SitemapDocument& doc : out.documents) {
    if (doc.content.size() > options.max_bytes) {
      return Fail(ErrorCode::kInternal, "sitemap: " + doc.name + " came out larger than " +
                                                      std::to_string(options.max_bytes) + " bytes");
    }
  }
  return out;
}

}  // namespace sitesync::sitemap
