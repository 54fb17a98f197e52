// The commands that are not a sync: each in its own file. Private to cli/.
#pragma once

#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "aws/aws.h"
#include "cli/cli.h"
#include "cli/output.h"
#include "sitemap/sitemap.h"

namespace sitesync::cli {

/// `sitesync sitemap [SOURCE] --base-url URL [-o FILE]` (cli/sitemap_cmd.cc). The config is already loaded.
int RunSitemap(const Settings& settings, Output& out);

/// Where and how sitemap.xml is written, resolved from settings (SOURCE, --base-url / sitemap.base_url, -o /
/// sitemap.output, cdn.index_document) and the sync's filters.
struct SitemapSetup {
  std::filesystem::path source;
  std::filesystem::path output;  ///< Empty: standard output (-o -).
  bool inside_source = false;    ///< The output is under SOURCE: it is published by the sync.
  sitemap::SitemapOptions options;
  sitemap::WalkOptions filters;
};
/// Fails with kUsage (no base URL, a bad one, no SOURCE, an output that is a folder) or kInput (SOURCE missing).
[[nodiscard]] aws::Result<SitemapSetup> ResolveSitemap(const Settings& settings, const sitemap::WalkOptions& filters);

/// sitemap.enabled in sync, plan and watch (cli/sitemap_cmd.cc): the sitemap is written before the sync, and
/// again in each watch batch that changes a page.
class SitemapStep {
 public:
  explicit SitemapStep(SitemapSetup setup);
  /// Walks SOURCE and writes the sitemap if its content changed (with `dry_run`, only says whether it would).
  /// Returns the sitemap's files under SOURCE (relative to it), current and removed: what the sync must make
  /// equal remotely.
  [[nodiscard]] aws::Result<std::vector<std::string>> Refresh(Output& out, bool dry_run);
  /// For a watch batch: looks at `paths` (relative to SOURCE; everything with `rescan`) and writes the
  /// sitemap when the pages changed. Returns the files it wrote or removed under SOURCE (relative to it).
  [[nodiscard]] aws::Result<std::vector<std::string>> Update(const std::set<std::string>& paths, bool rescan,
                                                             Output& out);

 private:
  aws::Result<std::vector<std::string>> Publish(Output& out, bool dry_run, bool all_files);

  SitemapSetup setup_;
  sitemap::PageSet pages_;
};

/// `sitesync init` (cli/init.cc): runs in the current folder and loads no config.
int RunInit(const Settings& settings);

/// `sitesync check [DEST]` (cli/check.cc): read-only preflight. The config is already loaded.
int RunCheck(const Settings& settings, const aws::EnvLookup& env);

}  // namespace sitesync::cli
