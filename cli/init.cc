// sitesync init: writes a commented sitesync.yaml for the generator found in the current folder.
//
// Detection reads a few small files (generator configs, package.json) and looks for marker folders; everything
// that decides is pure (DetectGenerator, InitConfigText) and unit-tested. The file is created with O_EXCL, so an
// existing config is never overwritten, not even by a race with another process.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/unique_fd.h"
#include "cli/commands.h"

namespace sitesync::cli {
namespace {

constexpr std::uintmax_t kMaxConfigBytes = 1 << 20;

// Generator config files, read whole when present.
constexpr std::string_view kConfigFiles[] = {
    "hugo.toml",          "hugo.yaml",           "hugo.yml",           "hugo.json",
    "config.toml",        "config.yaml",         "config.yml",         "config.json",
    "config/_default/hugo.toml",   "config/_default/hugo.yaml",   "config/_default/hugo.yml",
    "config/_default/hugo.json",   "config/_default/config.toml", "config/_default/config.yaml",
    "config/_default/config.yml",  "config/_default/config.json",
    "_config.yml",        "_config.yaml",        "_config.toml",
    ".eleventy.js",       ".eleventy.cjs",       "eleventy.config.js", "eleventy.config.mjs",
    "eleventy.config.cjs", "eleventy.config.ts", "eleventy.config.mts", "eleventy.config.cts",
    "astro.config.mjs",   "astro.config.js",     "astro.config.ts",    "astro.config.mts",
    "astro.config.cjs",   "astro.config.cts",
    "package.json",
};
// Folders that tell a Hugo site from others (Zola has themes/ too, but its config.toml always has base_url).
constexpr std::string_view kMarkerDirs[] = {"archetypes", "layouts", "themes", "templates"};
// Where a built site may already be when no generator is recognised.
constexpr std::string_view kBuiltDirs[] = {"public", "_site", "dist", "build", "out"};

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

bool KeyIs(std::string_view found, std::string_view key, bool ignore_case) {
  return ignore_case ? Lower(found) == Lower(key) : found == key;
}

// A top-level `key = value` of a TOML file (before the first [table]); strings in "" or '' are unquoted.
std::optional<std::string> TomlValue(const std::string& text, std::string_view key, bool ignore_case) {
  std::istringstream in(text);
  std::string raw;
  while (std::getline(in, raw)) {
    std::string_view line = Trim(raw);
    if (line.starts_with('[')) break;  // the first table: top-level keys are over
    if (line.empty() || line.starts_with('#')) continue;
    const auto eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view k = Trim(line.substr(0, eq));
    if (k.size() >= 2 && (k.front() == '"' || k.front() == '\'') && k.back() == k.front()) {
      k = k.substr(1, k.size() - 2);
    }
    if (!KeyIs(k, key, ignore_case)) continue;
    std::string_view v = Trim(line.substr(eq + 1));
    if (!v.empty() && (v.front() == '"' || v.front() == '\'')) {
      const auto close = v.find(v.front(), 1);
      if (close == std::string_view::npos) return std::nullopt;
      return std::string(v.substr(1, close - 1));
    }
    return std::string(Trim(v.substr(0, v.find('#'))));
  }
  return std::nullopt;
}

std::optional<std::string> YamlValue(const std::string& text, std::string_view key, bool ignore_case) {
  try {
    const YAML::Node root = YAML::Load(text);
    if (!root.IsMap()) return std::nullopt;
    for (const auto& kv : root) {
      if (!kv.first.IsScalar() || !KeyIs(kv.first.Scalar(), key, ignore_case)) continue;
      if (kv.second.IsScalar()) return kv.second.Scalar();
      return std::nullopt;
    }
  } catch (const YAML::Exception&) {
  }
  return std::nullopt;
}

std::optional<std::string> JsonValue(const std::string& text, std::string_view key, bool ignore_case) {
  const nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) return std::nullopt;
  for (const auto& [k, v] : doc.items()) {
    if (KeyIs(k, key, ignore_case) && v.is_string()) return v.get<std::string>();
  }
  return std::nullopt;
}

// `key: "value"` in a JavaScript/TypeScript config (a heuristic: configs are code, but these keys are nearly
// always written as literals).
std::optional<std::string> JsValue(const std::string& text, std::string_view key) {
  const std::regex re(fmt::format(R"((^|[^A-Za-z0-9_$.]){}\s*:\s*["'`]([^"'`]+)["'`])", key));
  std::smatch m;
  if (std::regex_search(text, m, re)) return m[2].str();
  return std::nullopt;
}

// A top-level value of the config file `name`, by its format.
std::optional<std::string> ConfigValue(const SiteFolder& folder, const std::string& name, std::string_view key,
                                       bool ignore_case = false) {
  auto it = folder.files.find(name);
  if (it == folder.files.end()) return std::nullopt;
  if (name.ends_with(".toml")) return TomlValue(it->second, key, ignore_case);
  if (name.ends_with(".yaml") || name.ends_with(".yml")) return YamlValue(it->second, key, ignore_case);
  if (name.ends_with(".json")) return JsonValue(it->second, key, ignore_case);
  return JsValue(it->second, key);
}

bool DependsOn(const SiteFolder& folder, std::string_view package) {
  auto it = folder.files.find("package.json");
  if (it == folder.files.end()) return false;
  const nlohmann::json doc = nlohmann::json::parse(it->second, nullptr, false);
  if (!doc.is_object()) return false;
  for (const char* section : {"dependencies", "devDependencies"}) {
    auto deps = doc.find(section);
    if (deps != doc.end() && deps->is_object() && deps->contains(std::string(package))) return true;
  }
  return false;
}

// "./public" -> "public/"; empty stays empty.
std::string FolderForm(std::string_view dir) {
  std::string out(Trim(dir));
  while (out.starts_with("./")) out.erase(0, 2);
  if (out.empty() || out == ".") return {};
  if (!out.ends_with('/')) out += '/';
  return out;
}

std::string UrlForm(std::string url) {
  if (!(url.starts_with("http://") || url.starts_with("https://"))) return {};
  if (!url.ends_with('/')) url += '/';
  return url;
}

std::string FirstPresent(const SiteFolder& folder, std::initializer_list<std::string_view> names) {
  for (std::string_view n : names) {
    if (folder.files.contains(std::string(n))) return std::string(n);
  }
  return {};
}

Detection Hugo(const SiteFolder& folder, const std::string& config, std::string evidence) {
  Detection d{"Hugo", std::move(evidence), "public/", "", "hugo", {}};
  if (auto dir = ConfigValue(folder, config, "publishDir", true)) {
    if (auto f = FolderForm(*dir); !f.empty()) d.source = f;
  }
  if (auto url = ConfigValue(folder, config, "baseURL", true)) d.site_url = UrlForm(*url);
  return d;
}

Detection Zola(const SiteFolder& folder) {
  Detection d{"Zola", "config.toml with base_url", "public/", "", "zola build", {}};
  if (auto dir = ConfigValue(folder, "config.toml", "output_dir")) {
    if (auto f = FolderForm(*dir); !f.empty()) d.source = f;
  }
  d.site_url = UrlForm(ConfigValue(folder, "config.toml", "base_url").value_or(""));
  return d;
}

Detection Jekyll(const SiteFolder& folder, const std::string& config) {
  Detection d{"Jekyll", config, "_site/", "", "bundle exec jekyll build", {}};
  if (auto dir = ConfigValue(folder, config, "destination")) {
    if (auto f = FolderForm(*dir); !f.empty()) d.source = f;
  }
  // Jekyll: `url` is the host part, `baseurl` the folder the site lives under ("/blog").
  std::string url = ConfigValue(folder, config, "url").value_or("");
  std::string base = ConfigValue(folder, config, "baseurl").value_or("");
  while (url.ends_with('/')) url.pop_back();
  if (!base.empty() && !base.starts_with('/')) base.insert(0, "/");
  d.site_url = UrlForm(url.empty() ? "" : url + base);
  return d;
}

Detection Eleventy(const SiteFolder& folder, const std::string& config, std::string evidence) {
  Detection d{"Eleventy", std::move(evidence), "_site/", "", "npx @11ty/eleventy", {}};
  if (!config.empty()) {
    const std::string& text = folder.files.at(config);
    std::smatch m;
    static const std::regex kSetOutput(R"(setOutputDirectory\s*\(\s*["'`]([^"'`]+)["'`])");
    std::optional<std::string> dir;
    if (std::regex_search(text, m, kSetOutput)) {
      dir = m[1].str();
    } else {
      dir = JsValue(text, "output");
    }
    if (dir) {
      if (auto f = FolderForm(*dir); !f.empty()) d.source = f;
    }
  }
  return d;
}

Detection Astro(const SiteFolder& folder, const std::string& config, std::string evidence) {
  Detection d{"Astro", std::move(evidence), "dist/", "", "npx astro build", {}};
  if (!config.empty()) {
    if (auto dir = ConfigValue(folder, config, "outDir")) {
      if (auto f = FolderForm(*dir); !f.empty()) d.source = f;
    }
    std::string site = ConfigValue(folder, config, "site").value_or("");
    std::string base = ConfigValue(folder, config, "base").value_or("");
    while (site.ends_with('/')) site.pop_back();
    if (!base.empty() && !base.starts_with('/')) base.insert(0, "/");
    d.site_url = UrlForm(site.empty() ? "" : site + base);
  }
  return d;
}

// A YAML scalar as written in the file: plain when that is unambiguous, else double-quoted.
std::string YamlScalar(std::string_view s) {
  const bool plain = !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '/' || c == '.' || c == '_' || c == '-' || c == ':';
  }) && s.find(": ") == std::string_view::npos && !s.ends_with(':') && s.front() != '-' && s.front() != ':';
  if (plain) return std::string(s);
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

aws::Result<void> CreateNewFile(const std::string& path, const std::string& text) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!fd) {
    const int err = errno;
    if (err == EEXIST) {
      return aws::Fail(aws::ErrorCode::kUsage, fmt::format("{} already exists; sitesync init never overwrites a file: "
                                                           "edit it, or move it away and run init again",
                                                           path));
    }
    return aws::Fail(aws::ErrorCode::kIo, fmt::format("cannot create {}: {}", path, std::strerror(err)));
  }
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd.get(), text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = n < 0 ? errno : EIO;
      fd.Reset();
      ::unlink(path.c_str());  // ours: created above with O_EXCL
      return aws::Fail(aws::ErrorCode::kIo, fmt::format("cannot write {}: {}", path, std::strerror(err)));
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd.get()) != 0 || !fd.Close()) {  // a failed fsync leaves fd to its destructor
    const int err = errno;
    ::unlink(path.c_str());
    return aws::Fail(aws::ErrorCode::kIo, fmt::format("cannot write {}: {}", path, std::strerror(err)));
  }
  return {};
}

}  // namespace

SiteFolder ReadSiteFolder(const std::filesystem::path& dir) {
  SiteFolder folder;
  std::error_code ec;
  for (std::string_view name : kConfigFiles) {
    const std::filesystem::path p = dir / name;
    if (!std::filesystem::is_regular_file(p, ec)) continue;
    const auto size = std::filesystem::file_size(p, ec);
    if (ec || size > kMaxConfigBytes) continue;
    std::ifstream in(p, std::ios::binary);
    if (!in) continue;
    std::stringstream text;
    text << in.rdbuf();
    folder.files.emplace(name, text.str());
  }
  for (std::string_view name : kMarkerDirs) {
    if (std::filesystem::is_directory(dir / name, ec)) folder.dirs.emplace(name);
  }
  for (std::string_view name : kBuiltDirs) {
    const std::string index = std::string(name) + "/index.html";
    if (std::filesystem::is_regular_file(dir / index, ec)) folder.files.emplace(index, "");
  }
  return folder;
}

Detection DetectGenerator(const SiteFolder& folder) {
  std::vector<Detection> found;
  const auto add = [&](Detection d) {
    for (const Detection& f : found) {
      if (f.generator == d.generator) return;
    }
    found.push_back(std::move(d));
  };
  // Files named after their generator first: they leave no doubt.
  if (auto hugo = FirstPresent(folder, {"hugo.toml", "hugo.yaml", "hugo.yml", "hugo.json"}); !hugo.empty()) {
    add(Hugo(folder, hugo, hugo));
  }
  if (auto dir = FirstPresent(folder, {"config/_default/hugo.toml", "config/_default/hugo.yaml",
                                       "config/_default/hugo.yml", "config/_default/hugo.json",
                                       "config/_default/config.toml", "config/_default/config.yaml",
                                       "config/_default/config.yml", "config/_default/config.json"});
      !dir.empty()) {
    add(Hugo(folder, dir, dir));
  }
  if (auto astro = FirstPresent(folder, {"astro.config.mjs", "astro.config.js", "astro.config.ts", "astro.config.mts",
                                         "astro.config.cjs", "astro.config.cts"});
      !astro.empty()) {
    add(Astro(folder, astro, astro));
  }
  if (auto eleventy = FirstPresent(folder, {"eleventy.config.js", "eleventy.config.mjs", "eleventy.config.cjs",
                                            "eleventy.config.ts", "eleventy.config.mts", "eleventy.config.cts",
                                            ".eleventy.js", ".eleventy.cjs"});
      !eleventy.empty()) {
    add(Eleventy(folder, eleventy, eleventy));
  }
  // config.toml is shared: Zola's always has base_url (it is required); Hugo's has baseURL (keys are
  // case-insensitive in Hugo) or sits beside Hugo's folders.
  const bool hugo_dirs = folder.dirs.contains("archetypes") || folder.dirs.contains("layouts") ||
                         folder.dirs.contains("themes");
  if (folder.files.contains("config.toml")) {
    if (ConfigValue(folder, "config.toml", "base_url")) {
      add(Zola(folder));
    } else if (ConfigValue(folder, "config.toml", "baseURL", true)) {
      add(Hugo(folder, "config.toml", "config.toml with baseURL"));
    } else if (hugo_dirs) {
      add(Hugo(folder, "config.toml", "config.toml beside archetypes/, layouts/ or themes/"));
    }
  }
  for (const char* name : {"config.yaml", "config.yml", "config.json"}) {
    if (!folder.files.contains(name)) continue;
    if (ConfigValue(folder, name, "baseURL", true)) {
      add(Hugo(folder, name, fmt::format("{} with baseURL", name)));
    } else if (hugo_dirs) {
      add(Hugo(folder, name, fmt::format("{} beside archetypes/, layouts/ or themes/", name)));
    }
  }
  if (auto jekyll = FirstPresent(folder, {"_config.yml", "_config.yaml", "_config.toml"}); !jekyll.empty()) {
    add(Jekyll(folder, jekyll));
  }
  if (DependsOn(folder, "@11ty/eleventy")) add(Eleventy(folder, "", "package.json depending on @11ty/eleventy"));
  if (DependsOn(folder, "astro")) add(Astro(folder, "", "package.json depending on astro"));

  if (found.empty()) {
    Detection none;
    none.source = "public/";
    for (std::string_view dir : kBuiltDirs) {
      const std::string index = std::string(dir) + "/index.html";
      if (folder.files.contains(index)) {
        none.source = std::string(dir) + "/";
        none.evidence = index;
        break;
      }
    }
    return none;
  }
  Detection chosen = found.front();
  for (std::size_t i = 1; i < found.size(); ++i) chosen.others.push_back(found[i].generator);
  return chosen;
}

std::string InitConfigText(const Detection& d, const std::string& source) {
  constexpr std::string_view kForever = "public, max-age=31536000, immutable";
  constexpr std::string_view kRevalidate = "public, max-age=0, must-revalidate";
  std::string out;
  const auto line = [&out](std::string_view text = {}) {
    out += text;
    out += '\n';
  };
  line("# sitesync.yaml: how `sitesync sync` publishes this site to S3 (and CloudFront).");
  if (d.generator.empty()) {
    line("# Written by `sitesync init`, which found no site generator here: check `source:` below.");
  } else {
    line(fmt::format("# Written by `sitesync init` for a {} site (found {}).", d.generator, d.evidence));
  }
  line("# Every key can also be given on the command line, which wins (sitesync sync --help).");
  line();
  if (d.generator.empty()) {
    line("# The folder that holds the built site (index.html and the rest). Relative to this file.");
    line("# EDIT THIS if your site is built somewhere else.");
  } else {
    line(fmt::format("# The folder {} writes the built site to. Relative to this file.", d.generator));
  }
  line(fmt::format("source: {}", YamlScalar(source)));
  line();
  line("# Where the site goes: s3://BUCKET, or s3://BUCKET/PREFIX for a folder in it.");
  line("# EDIT THIS: put your bucket's name and remove the '#'. Until then, sync, plan and check stop");
  line("# and ask for it.");
  line("# destination: s3://YOUR-BUCKET");
  line();
  line("# The bucket's region; by default AWS_REGION, AWS_DEFAULT_REGION, the profile's region, else us-east-1.");
  line("# `sitesync check` tells you when it is wrong.");
  line("# region: us-east-1");
  line();
  line("# Also delete the objects under DEST that have no local file. Off by default: turn it on once");
  line("# `sitesync plan --delete` shows what would go. A run that would delete more than max_deletes");
  line("# objects, or more than 10 and more than max_delete_fraction of the site (1: off), or anything while");
  line("# the folder is empty, stops with exit 3 and changes nothing.");
  line("# delete: true");
  line("# max_deletes: 256");
  line("# max_delete_fraction: 0.5");
  line();
  // Generators rewrite pages at the same size (pagination shifts, a date "09" -> "10", Jekyll's feed.xml on every
  // build), which a size-only diff never uploads. With the record it costs about what `size` costs.
  line("# How a local file is compared with its object. `size` misses a page rebuilt at the same length;");
  line("# `checksum` compares the content (MD5) of same-size files. sitesync keeps a record of what it");
  line("# published under $XDG_CACHE_HOME/sitesync (else ~/.cache/sitesync) and hashes only files whose size,");
  line("# mtime or inode changed since, so a resync costs about what `size` costs. Without that record (first");
  line("# run, a fresh CI runner: cache the folder, see docs/recipes.md) it hashes the same-size files once.");
  if (d.generator.empty()) {
    line("# Site generators rewrite pages at the same size; if a generator builds this site, use checksum.");
    line("# compare: checksum");
  } else {
    line(fmt::format("# {} rewrites pages at the same size on rebuilds (pagination shifts, dates, feeds such as",
                     d.generator));
    line("# feed.xml and index.xml), which `size` would leave stale: checksum catches them.");
    line("compare: checksum");
  }
  line();
  line("# Cache-Control per file. A glob without '/' matches the file name in any folder (like --exclude).");
  line("# Rules apply in order; for each file the last rule that matches wins.");
  line("headers:");
  line("  # The default for every file (CSS and JS without a hash in the name, JSON, robots.txt, ...): browsers");
  line("  # keep it 5 minutes. CloudFront itself is invalidated on every change.");
  line(R"(  - {match: "**", cache_control: "public, max-age=300"})");
  line("  # Fonts and images: a year, never revalidated. If you replace an image under the same name,");
  line("  # shorten these (e.g. max-age=86400) or visitors keep the old one.");
  for (std::string_view ext : {"woff2", "woff", "ttf", "otf", "png", "jpg", "jpeg", "gif", "webp", "avif", "svg",
                               "ico"}) {
    line(fmt::format(R"(  - {{match: "*.{}", cache_control: "{}"}})", ext, kForever));
  }
  line("  # Fingerprinted CSS and JS (name.<8+ hex digits>.css, as Hugo's resources.Fingerprint and most");
  line("  # bundlers write them): the name changes with the content, so they never need revalidating.");
  const std::string hex8 = "[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]";
  for (std::string_view ext : {"css", "js"}) {
    line(fmt::format(R"(  - match: "*.{}*.{}")", hex8, ext));
    line(fmt::format(R"(    cache_control: "{}")", kForever));
  }
  if (d.generator == "Astro") {
    line("  # Astro puts its hashed assets in _astro/.");
    line(fmt::format(R"(  - {{match: "_astro/**", cache_control: "{}"}})", kForever));
  }
  line("  # Pages, the sitemap and feeds (RSS/Atom): always revalidated, so a new version shows at once.");
  line(fmt::format(R"(  - {{match: "*.html", cache_control: "{}"}})", kRevalidate));
  line(fmt::format(R"(  - {{match: "*.xml", cache_control: "{}"}})", kRevalidate));
  line();
  line("# CloudFront: after each sync, invalidate exactly the paths that changed. `auto` finds the");
  line("# distribution whose origin is the bucket (and prefix); or give its ID, e.g. E2QWRUHAPOMQZL.");
  line("# No CloudFront in front of the bucket? Delete this section: with it, sync stops when it finds no");
  line("# distribution.");
  line("cdn:");
  line("  distribution: auto");
  line("  # wait: true                  # wait until CloudFront reports the invalidation done");
  line();
  line("# Write sitemap.xml into the site before each sync (the URLs of its HTML pages).");
  line("# sitemap:");
  line("#   enabled: true");
  if (d.site_url.empty()) {
    line("#   base_url: https://www.example.com/   # your site's public URL");
  } else {
    line(fmt::format("#   base_url: {}   # from {}", YamlScalar(d.site_url), d.evidence));
  }
  return out;
}

std::string_view Article(std::string_view word) {
  if (word.empty()) return "a";
  const char c = static_cast<char>(std::tolower(static_cast<unsigned char>(word.front())));
  return std::string_view("aeiou").find(c) != std::string_view::npos ? "an" : "a";
}

namespace {

std::string_view TrimRight(std::string_view s) {
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

// A YAML plain or quoted scalar's text, with a trailing " # comment" removed.
std::string_view ItemValue(std::string_view v) {
  if (const auto hash = v.find(" #"); hash != std::string_view::npos) v = v.substr(0, hash);
  v = TrimRight(v);
  if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'') && v.back() == v.front()) {
    v = v.substr(1, v.size() - 2);
  }
  return v;
}

// The document as yaml-cpp reads it, for comparing before and after; nullopt when it does not parse.
std::optional<YAML::Node> ParseYaml(const std::string& text) {
  try {
    return YAML::Load(text);
  } catch (const YAML::Exception&) {
    return std::nullopt;
  }
}

// The new text says exactly what the old one said, plus `entry` at the end of exclude.
bool SameButExclude(const std::string& before, const std::string& after, std::string_view entry) {
  const auto parsed_old = ParseYaml(before);
  const auto parsed_new = ParseYaml(after);
  if (!parsed_old || !parsed_new) return false;
  // const Nodes: operator[] on a non-const one would add the key it looks for.
  const YAML::Node old_doc = *parsed_old;
  const YAML::Node new_doc = *parsed_new;
  if (!new_doc.IsMap() || !(old_doc.IsMap() || old_doc.IsNull())) return false;
  try {
    std::vector<std::string> old_list, new_list;
    const bool had_key = old_doc.IsMap() && old_doc["exclude"];
    if (had_key && !old_doc["exclude"].IsNull()) {
      if (!old_doc["exclude"].IsSequence()) return false;
      for (const auto& item : old_doc["exclude"]) old_list.push_back(item.as<std::string>());
    }
    if (!new_doc["exclude"] || !new_doc["exclude"].IsSequence()) return false;
    for (const auto& item : new_doc["exclude"]) new_list.push_back(item.as<std::string>());
    old_list.emplace_back(entry);
    if (old_list != new_list) return false;
    // Every other key unchanged (compared as emitted YAML).
    std::size_t keys = 0;
    for (const auto& kv : new_doc) {
      const std::string key = kv.first.as<std::string>();
      if (key == "exclude") continue;
      ++keys;
      if (!old_doc.IsMap() || !old_doc[key]) return false;
      if (YAML::Dump(old_doc[key]) != YAML::Dump(kv.second)) return false;
    }
    const std::size_t old_keys = old_doc.IsMap() ? old_doc.size() - (had_key ? 1 : 0) : 0;
    return keys == old_keys;
  } catch (const YAML::Exception&) {
    return false;
  }
}

}  // namespace

ExcludeEdit AddJekyllExclude(std::string_view text, std::string_view entry) {
  ExcludeEdit e;
  const auto manual = [&](std::string why) {
    e.outcome = ExcludeEdit::Outcome::kManual;
    e.why = std::move(why);
    return e;
  };
  if (text.find('\r') != std::string_view::npos) return manual("it has CRLF line ends");
  if (text.find('\t') != std::string_view::npos) return manual("it has tabs");
  // Lines with their start offsets.
  std::vector<std::pair<std::size_t, std::string_view>> lines;
  for (std::size_t at = 0; at < text.size();) {
    std::size_t end = text.find('\n', at);
    if (end == std::string_view::npos) end = text.size();
    lines.emplace_back(at, text.substr(at, end - at));
    at = end + 1;
  }
  std::optional<std::size_t> key;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const std::string_view line = lines[i].second;
    if ((line.starts_with("---") || line.starts_with("...")) && i > 0) return manual("it holds several YAML documents");
    if (!line.starts_with("exclude")) continue;
    const std::string_view after = line.substr(7);
    const std::size_t colon = after.find_first_not_of(' ');
    if (colon == std::string_view::npos || after[colon] != ':') continue;  // "excludes:", "exclude_x:"
    if (key) return manual("it has exclude: twice");
    key = i;
  }
  std::string out(text);
  if (!key) {
    if (!out.empty() && out.back() != '\n') out += '\n';
    out += "\n# sitesync's config is not part of the site (added by sitesync init).\nexclude:\n  - ";
    out += entry;
    out += '\n';
  } else {
    std::string_view rest = lines[*key].second.substr(lines[*key].second.find(':') + 1);
    rest = ItemValue(rest.substr(std::min(rest.find_first_not_of(' '), rest.size())));
    if (!rest.empty()) return manual("its exclude: is not a simple block list (" + std::string(rest) + ")");
    std::optional<std::size_t> indent;
    std::size_t last = *key;
    for (std::size_t i = *key + 1; i < lines.size(); ++i) {
      const std::string_view line = lines[i].second;
      const std::size_t first = line.find_first_not_of(' ');
      if (first == std::string_view::npos || line[first] == '#') continue;  // blank or comment
      const bool item = line.substr(first).starts_with("- ") || line.substr(first) == "-";
      if (!item) {
        if (first == 0) break;  // the next top-level key
        return manual("its exclude: list holds something other than plain items");
      }
      if (indent && *indent != first) return manual("its exclude: items are not indented alike");
      indent = first;
      const std::string_view value = ItemValue(line.substr(std::min(first + 2, line.size())));
      if (value.empty() || std::string_view("&*!|>[{").find(value.front()) != std::string_view::npos) {
        return manual("its exclude: list holds something other than plain items");
      }
      if (value == entry) {
        e.outcome = ExcludeEdit::Outcome::kAlreadyThere;
        return e;
      }
      last = i;
    }
    const std::string item = std::string(indent.value_or(2), ' ') + "- " + std::string(entry) + "\n";
    std::size_t at = lines[last].first + lines[last].second.size();
    if (at < out.size()) {
      ++at;  // after the '\n'
    } else {
      out += '\n';
      at = out.size();
    }
    out.insert(at, item);
  }
  if (!SameButExclude(std::string(text), out, entry)) return manual("sitesync could not check its own edit");
  e.outcome = ExcludeEdit::Outcome::kAdded;
  e.text = std::move(out);
  return e;
}

namespace {

// Replaces `path` with `text`: a temporary file in the same folder, renamed over it, with the same mode.
aws::Result<void> ReplaceFile(const std::filesystem::path& path, const std::string& text) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return aws::Fail(aws::ErrorCode::kIo, fmt::format("cannot read {}: {}", path.string(), std::strerror(errno)));
  }
  const std::filesystem::path tmp = path.parent_path() / ("." + path.filename().string() + ".sitesync-tmp");
  ::unlink(tmp.c_str());
  if (auto ok = CreateNewFile(tmp.string(), text); !ok) return ok;
  if (::chmod(tmp.c_str(), st.st_mode & 07777) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return aws::Fail(aws::ErrorCode::kIo, fmt::format("cannot replace {}: {}", path.string(), std::strerror(err)));
  }
  return {};
}

// Jekyll: keeps the config out of _site/ (sitesync would leave it out anyway; this keeps it off any other host
// too). Returns the lines to print.
std::string ExcludeFromJekyll(const Detection& d, const std::filesystem::path& cwd, const std::string& config) {
  std::error_code ec;
  const auto abs = std::filesystem::weakly_canonical(std::filesystem::absolute(config, ec), ec);
  const auto rel = abs.lexically_relative(std::filesystem::weakly_canonical(cwd, ec));
  if (rel.empty() || *rel.begin() == "..") return {};  // not inside the site: Jekyll does not copy it
  const std::string entry = rel.generic_string();
  const std::filesystem::path file = cwd / d.evidence;
  const std::string manual_line = d.evidence.ends_with(".toml") ? fmt::format("exclude = [\"{}\"]", entry)
                                                                 : fmt::format("exclude: [{}]", entry);
  const auto tell = [&](std::string_view why) {
    return fmt::format("Jekyll copies {0} into {1} unless {2} excludes it; sitesync left {2} alone ({3}).\n"
                       "  Add {0} to its exclude: list, e.g. the item  - {0}  (or, with no exclude: yet, the line: "
                       "{4})\n",
                       entry, d.source, d.evidence, why, manual_line);
  };
  if (d.evidence.ends_with(".toml")) return tell("sitesync edits YAML only");
  if (std::filesystem::is_symlink(file, ec)) return tell("it is a symlink");
  std::ifstream in(file, std::ios::binary);
  if (!in) return tell("it cannot be read");
  std::stringstream text;
  text << in.rdbuf();
  const ExcludeEdit edit = AddJekyllExclude(text.str(), entry);
  if (edit.outcome == ExcludeEdit::Outcome::kAlreadyThere) return {};
  if (edit.outcome == ExcludeEdit::Outcome::kManual) return tell(edit.why);
  if (auto ok = ReplaceFile(file, edit.text); !ok) return tell(ok.error().message);
  return fmt::format("Added {} to exclude: in {}, so that Jekyll does not copy it into {} (sitesync never uploads "
                     "its own config anyway).\n",
                     entry, d.evidence, d.source);
}

}  // namespace

int RunInit(const Settings& settings) {
  const std::string config = settings.config_path.value_or("sitesync.yaml");
  const auto fail = [](int code, std::string_view message) {
    std::fprintf(stderr, "sitesync: %.*s\n", static_cast<int>(message.size()), message.data());
    return code;
  };
  if (config.empty()) return fail(kExitUsage, "-c needs a file name, e.g. -c sitesync.yaml");
  std::error_code ec;
  const std::filesystem::path cwd = std::filesystem::current_path(ec);
  if (ec) return fail(kExitFailed, fmt::format("cannot tell the current folder: {}", ec.message()));
  const std::filesystem::path config_path(config);
  const std::filesystem::path parent = config_path.parent_path();
  if (!parent.empty() && !std::filesystem::is_directory(parent, ec)) {
    return fail(kExitUsage, fmt::format("cannot write {}: the folder {} does not exist; create it first, or give "
                                        "another -c FILE",
                                        config, parent.string()));
  }
  if (std::filesystem::is_directory(config_path, ec)) {
    return fail(kExitUsage, fmt::format("{} is a folder; give the config FILE to write, e.g. -c {}/sitesync.yaml",
                                        config, config));
  }

  const Detection d = DetectGenerator(ReadSiteFolder(cwd));
  // `source:` is read relative to the config file's folder: say where the output folder is from there.
  std::string source = d.source;
  if (!parent.empty() && !std::filesystem::path(d.source).is_absolute()) {
    const auto from = std::filesystem::weakly_canonical(std::filesystem::absolute(parent, ec), ec);
    const auto to = (std::filesystem::weakly_canonical(cwd, ec) / d.source).lexically_normal();
    const auto rel = to.lexically_relative(from);
    source = rel.empty() ? to.string() : rel.generic_string();
    if (!source.ends_with('/')) source += '/';
  }

  if (std::filesystem::exists(config_path, ec) || std::filesystem::is_symlink(config_path, ec)) {
    return fail(kExitRefused, fmt::format("{} already exists; sitesync init never overwrites a file: edit it, or "
                                          "move it away and run init again",
                                          config));
  }
  if (auto ok = CreateNewFile(config, InitConfigText(d, source)); !ok) {
    // A file that appeared since the check above is refused like one that was there (O_EXCL said so).
    const bool exists = ok.error().code == aws::ErrorCode::kUsage;
    return fail(exists ? kExitRefused : kExitFailed, ok.error().message);
  }
  const std::string jekyll = d.generator == "Jekyll" ? ExcludeFromJekyll(d, cwd, config) : std::string();
  if (settings.quiet) return kExitOk;

  std::string out;
  if (!d.generator.empty()) {
    out += fmt::format("Found {} {} site ({}): it builds into {}\n", Article(d.generator), d.generator, d.evidence,
                       d.source);
    if (!d.others.empty()) {
      std::string others;
      for (const auto& o : d.others) others += (others.empty() ? "" : ", ") + o;
      out += fmt::format("  (this folder also looks like {}: if {} is not your generator, edit source:)\n", others,
                         d.generator);
    }
  } else if (!d.evidence.empty()) {
    out += fmt::format("No site generator config found here, but {} holds a built site: source is {}\n", d.evidence,
                       d.source);
  } else {
    out += "No site generator found here (no hugo.toml, config.toml, _config.yml, eleventy.config.js, "
           "astro.config.mjs, ...):\n  source: public/ is a placeholder; edit it to the folder that holds your "
           "built site.\n";
  }
  const std::string c = settings.config_path ? " -c " + config : "";
  out += fmt::format("Wrote {} (source: {}).\n", config, source);
  out += jekyll;
  out += "\nNext:\n";
  out += fmt::format("  1. Edit {}: uncomment destination: and put your bucket's name (and region: if the "
                     "bucket is\n     not in us-east-1); delete the cdn: section if the site has no CloudFront.\n",
                     config);
  out += fmt::format("  2. sitesync check{}      # credentials, bucket, region, CloudFront\n", c);
  if (!d.build_command.empty()) {
    out += fmt::format("  3. {}, then sitesync plan{}      # build, then see what would change\n",
                       d.build_command, c);
  } else {
    out += fmt::format("  3. Build the site, then sitesync plan{}      # see what would change\n", c);
  }
  out += fmt::format("  4. sitesync sync{}\n", c);
  std::fputs(out.c_str(), stderr);
  return kExitOk;
}

}  // namespace sitesync::cli
