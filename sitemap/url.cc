// URL paths a key is served under. One rule shared by CloudFront invalidations and sitemap.xml, so that the two
// never disagree about which URLs a file has.

#include <string>
#include <string_view>
#include <vector>

#include "sitemap/sitemap.h"

namespace sitesync::sitemap {

std::vector<std::string> UrlPaths(std::string_view rel_key, std::string_view index_document, bool bare_alias) {
  std::vector<std::string> paths;
  std::string full = "/";
  full.append(rel_key);
  paths.push_back(full);

  // The file name is what follows the last '/'. Keys are taken byte for byte: "a//index.html" is the folder
  // "a//" (S3 does not normalize keys, and neither does CloudFront's cache key).
  const std::size_t slash = rel_key.rfind('/');
  const std::string_view name = slash == std::string_view::npos ? rel_key : rel_key.substr(slash + 1);
  if (index_document.empty() || name != index_document) return paths;

  // "/a/b/index.html" -> "/a/b/" (S3 website endpoints and CloudFront functions serve the index document there).
  std::string folder = full.substr(0, full.size() - name.size());
  if (folder == "/") {
    paths.push_back(std::move(folder));  // The root has no bare form.
    return paths;
  }
  // "/a/b" redirects or serves the same page, depending on the origin; invalidated too unless turned off.
  std::string bare = folder.substr(0, folder.size() - 1);
  paths.push_back(std::move(folder));
  if (bare_alias) paths.push_back(std::move(bare));
  return paths;
}

}  // namespace sitesync::sitemap
