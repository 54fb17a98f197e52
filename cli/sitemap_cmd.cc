// sitesync sitemap: writes sitemap.xml for SOURCE's HTML pages. Also the sitemap step of sync, plan and watch
// (sitemap.enabled), so that the command and the hooks write the same file the same way.
#include <cstdio>
#include <fstream>
#include <sstream>
#include <system_error>

#include <fmt/format.h>

#include "cli/commands.h"

namespace sitesync::cli {
namespace {

using aws::ErrorCode;

int ExitFor(const aws::Error& e) {
  const bool usage = e.code == ErrorCode::kUsage || e.code == ErrorCode::kConfig || e.code == ErrorCode::kInput;
  return usage ? kExitUsage : kExitFailed;
}

bool SameAsOnDisk(const std::filesystem::path& path, const std::string& content) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::stringstream existing;
  existing << in.rdbuf();
  return existing.str() == content;
}

// "maps/" for "maps/sitemap.xml", "" for "sitemap.xml".
std::string FolderOf(const std::string& rel) {
  const std::size_t slash = rel.rfind('/');
  return slash == std::string::npos ? std::string() : rel.substr(0, slash + 1);
}

std::string Describe(const sitemap::Sitemap& map, const std::filesystem::path& output) {
  if (!map.split) return fmt::format("{} URLs in {}", map.urls, output.string());
  return fmt::format("{} URLs in {} files, indexed by {}", map.urls, map.documents.size() - 1, output.string());
}

}  // namespace

aws::Result<SitemapSetup> ResolveSitemap(const Settings& s, const sitemap::WalkOptions& filters) {
  const bool command = s.command == "sitemap";
  if (!s.base_url || s.base_url->empty()) {
    return aws::Fail(ErrorCode::kUsage,
                     command ? "sitemap needs the site's public URL: give --base-url https://example.com/, or set "
                               "sitemap.base_url in sitesync.yaml"
                             : "sitemap.enabled is true but sitemap.base_url is not set: add 'base_url: "
                               "https://example.com/' under 'sitemap:' in sitesync.yaml (or set 'enabled: false')");
  }
  auto base = sitemap::NormalizeBaseUrl(*s.base_url);
  if (!base) return std::unexpected(base.error());
  if (!s.source || s.source->empty()) {
    return aws::Fail(ErrorCode::kUsage, "no SOURCE given: run 'sitesync sitemap SOURCE --base-url URL', or set "
                                        "'source:' in sitesync.yaml");
  }
  if (auto ok = CheckSourceFolder(*s.source); !ok) return std::unexpected(ok.error());
  // cdn.index_document, checked as the invalidations check it: the same alias rule for both.
  auto cdn = ResolveCdn(s);
  if (!cdn) return std::unexpected(cdn.error());

  SitemapSetup setup;
  setup.source = *s.source;
  setup.filters = filters;
  setup.options.base_url = *base;
  setup.options.index_document = cdn->paths.index_document;
  if (command && s.sitemap_output == "-") {
    setup.options.output_rel = "sitemap.xml";
    return setup;  // standard output
  }
  setup.output = s.sitemap_output ? std::filesystem::path(*s.sitemap_output) : setup.source / "sitemap.xml";
  std::error_code ec;
  if (std::filesystem::is_directory(setup.output, ec)) {
    return aws::Fail(ErrorCode::kUsage, fmt::format("sitemap output '{}' is a folder: give a file path such as {}",
                                                    setup.output.string(),
                                                    (setup.output / "sitemap.xml").string()));
  }
  // Inside SOURCE (after symlinks), the sitemap is part of the site: its URL and its parts' URLs follow its path.
  const std::filesystem::path source = std::filesystem::weakly_canonical(setup.source, ec);
  const std::filesystem::path output = std::filesystem::weakly_canonical(std::filesystem::absolute(setup.output, ec), ec);
  const std::filesystem::path rel = ec ? std::filesystem::path() : output.lexically_relative(source);
  setup.inside_source = !rel.empty() && rel != "." && *rel.begin() != "..";
  setup.options.output_rel = setup.inside_source ? rel.generic_string() : setup.output.filename().string();
  return setup;
}

SitemapStep::SitemapStep(SitemapSetup setup)
    : setup_(std::move(setup)),
      pages_(setup_.source, setup_.filters, setup_.inside_source ? setup_.options.output_rel : std::string()) {}

aws::Result<std::vector<std::string>> SitemapStep::Refresh(Output& out, bool dry_run) {
  auto changed = pages_.Rescan();
  if (!changed) return std::unexpected(changed.error());
  for (const std::string& w : pages_.Warnings()) out.OnWarning(w);
  return Publish(out, dry_run, true);
}

aws::Result<std::vector<std::string>> SitemapStep::Update(const std::set<std::string>& paths, bool rescan,
                                                          Output& out) {
  const std::vector<std::string> list(paths.begin(), paths.end());
  auto changed = rescan ? pages_.Rescan() : pages_.Update(list);
  if (!changed) return std::unexpected(changed.error());
  for (const std::string& w : pages_.Warnings()) out.OnWarning(w);
  if (!*changed) return std::vector<std::string>{};
  return Publish(out, false, false);
}

aws::Result<std::vector<std::string>> SitemapStep::Publish(Output& out, bool dry_run, bool all_files) {
  const std::vector<sitemap::Page> pages = pages_.Pages();
  auto map = sitemap::BuildSitemap(pages, setup_.options);
  if (!map) return std::unexpected(map.error());
  for (const std::string& w : map->warnings) out.OnWarning(w);
  std::vector<std::string> files;

  if (setup_.output.empty()) {
    if (map->split) {
      return aws::Fail(ErrorCode::kUsage,
                       fmt::format("{} URLs need {} sitemap files and a sitemap index: write them with -o FILE "
                                   "rather than -o -",
                                   map->urls, map->documents.size() - 1));
    }
    const std::string& xml = map->documents[0].content;
    if (std::fwrite(xml.data(), 1, xml.size(), stdout) != xml.size() || std::fflush(stdout) != 0) {
      return aws::Fail(ErrorCode::kIo, "sitemap: could not write to standard output");
    }
    out.Note(fmt::format("sitemap: {} URLs written to standard output", map->urls));
    return files;
  }

  const std::filesystem::path folder = setup_.output.has_parent_path() ? setup_.output.parent_path() : ".";
  if (dry_run) {
    bool same = true;
    for (std::size_t i = 0; i < map->documents.size(); ++i) {
      const auto& doc = map->documents[i];
      same = same && SameAsOnDisk(i == 0 ? setup_.output : folder / doc.name, doc.content);
    }
    out.Note(same ? fmt::format("sitemap: up to date, {}", Describe(*map, setup_.output))
                  : fmt::format("sitemap: would write {} (dry run: not written)", Describe(*map, setup_.output)));
    return files;
  }

  auto written = sitemap::WriteSitemap(*map, setup_.output);
  if (!written) return std::unexpected(written.error());
  const bool changed = !written->written.empty() || !written->removed.empty();
  out.Note(fmt::format("sitemap: {}, {}", changed ? "written" : "up to date", Describe(*map, setup_.output)));
  if (!setup_.inside_source) return files;
  const std::string rel_folder = FolderOf(setup_.options.output_rel);
  if (all_files) {
    for (const auto& doc : map->documents) files.push_back(rel_folder + doc.name);
  } else {
    for (const auto& path : written->written) files.push_back(rel_folder + path.filename().string());
  }
  for (const auto& path : written->removed) files.push_back(rel_folder + path.filename().string());
  return files;
}

int RunSitemap(const Settings& settings, Output& out) {
  sitemap::WalkOptions filters;
  filters.exclude = settings.exclude;
  filters.include = settings.include;
  // The keys sync publishes the pages under (clean_urls), so that sitemap.xml lists the same URLs.
  filters.clean_urls = settings.clean_urls.value_or(false);
  filters.index_document = settings.index_document.value_or("index.html");
  auto setup = ResolveSitemap(settings, filters);
  if (!setup) {
    out.Fatal(setup.error().message);
    return ExitFor(setup.error());
  }
  SitemapStep step(std::move(*setup));
  auto done = step.Refresh(out, settings.dry_run);
  if (!done) {
    out.Fatal(done.error().message);
    return ExitFor(done.error());
  }
  return kExitOk;
}

}  // namespace sitesync::cli
