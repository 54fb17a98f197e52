// The filter rule shared by the walk (local files) and the diff (remote keys that must never be deleted).
#include <algorithm>

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
  if (!hidden && !any(options.exclude)) return false;
  return !any(options.include);
}

}  // namespace sitesync::sitemap
