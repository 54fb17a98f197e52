// The filter rule shared by the walk (local files) and the diff (remote keys that must never be deleted), and
// sitesync's own files, which are never part of the site.
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <system_error>

#include "sitemap/sitemap.h"

namespace sitesync::sitemap {

bool IsOwnPath(std::string_view rel_path, const OwnFiles& own) {
  while (rel_path.ends_with('/')) rel_path.remove_suffix(1);
  return std::any_of(own.rel_paths.begin(), own.rel_paths.end(), [&](const std::string& p) {
    return rel_path == p || (rel_path.starts_with(p) && rel_path.size() > p.size() && rel_path[p.size()] == '/');
  });
}

bool Excluded(std::string_view rel_path, const WalkOptions& options) {
  if (IsOwnPath(rel_path, options.own)) return true;
  auto any = [&](const std::vector<std::string>& globs) {
    return std::any_of(globs.begin(), globs.end(), [&](const std::string& g) { return GlobMatch(g, rel_path); });
  };
  bool hidden = false;
  for (std::size_t begin = 0; begin < rel_path.size();) {
    std::size_t end = rel_path.find('/', begin);
    if (end == std::string_view::npos) end = rel_path.size();
    std::string_view segment = rel_path.substr(begin, end - begin);
    if (segment.starts_with('.') && segment != ".well-known") hidden = true;
    begin = end + 1;
  }
  // A folder path ("a/b/") names no file: the temp-file rule is for files only.
  if (!rel_path.empty() && rel_path.back() != '/' && IsTempFile(rel_path)) hidden = true;
  if (!hidden && !any(options.exclude)) return false;
  return !any(options.include);
}

bool IsTempFile(std::string_view name) {
  // Callers pass a base name; take the last segment anyway so that a relative path gives the same answer.
  if (const auto slash = name.rfind('/'); slash != std::string_view::npos) name = name.substr(slash + 1);
  if (name.empty()) return false;
  if (name.front() == '.') return name != ".well-known";  // Dotfiles, also emacs' `.#name` lock links.
  if (name.back() == '~') return true;   // emacs/vim backups, `name~`.
  if (name == "4913") return true;       // vim writes and deletes this to test whether it may create files.
  static constexpr std::array<std::string_view, 3> kSuffixes = {".swp", ".swx", ".tmp"};
  return std::ranges::any_of(kSuffixes, [&](std::string_view s) { return name.ends_with(s); });
}

OwnFiles FindOwnFiles(const std::filesystem::path& source, std::span<const std::filesystem::path> paths,
                      std::span<const std::string> root_names) {
  OwnFiles own;
  std::error_code ec;
  const std::filesystem::path root = std::filesystem::weakly_canonical(source, ec);
  const bool have_root = !ec && !root.empty();
  const auto add_rel = [&](std::string rel) {
    if (!rel.empty() && std::find(own.rel_paths.begin(), own.rel_paths.end(), rel) == own.rel_paths.end()) {
      own.rel_paths.push_back(std::move(rel));
    }
  };
  for (const std::filesystem::path& path : paths) {
    if (path.empty()) continue;
    struct stat st {};
    if (stat(path.c_str(), &st) == 0) {
      own.ids.emplace_back(static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino));
    }
    if (!have_root) continue;
    // weakly_canonical: a journal folder that does not exist yet is still placed where it will be.
    const std::filesystem::path abs = std::filesystem::weakly_canonical(std::filesystem::absolute(path, ec), ec);
    if (ec) continue;
    const std::filesystem::path rel = abs.lexically_relative(root);
    if (rel.empty() || rel == "." || *rel.begin() == "..") continue;  // outside SOURCE (or SOURCE itself)
    add_rel(rel.generic_string());
  }
  for (const std::string& name : root_names) {
    if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos) continue;
    add_rel(name);
  }
  return own;
}

}  // namespace sitesync::sitemap
