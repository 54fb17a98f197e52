// The filter rule shared by the walk (local files) and the diff (remote keys that must never be deleted).
#include <algorithm>
#include <array>

#include "sitemap/sitemap.h"

namespace sitesync::sitemap {

bool Excluded(std::string_view rel_path, const WalkOptions& options) {
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

}  // namespace sitesync::sitemap
