// URL paths a key is served under, and how they are written into a URL. One rule shared by CloudFront
// invalidations and sitemap.xml, so that the two never disagree about which URLs a file has.

#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>
#include <vector>

#include "base/percent.h"
#include "sitemap/sitemap.h"

namespace sitesync::sitemap {
namespace {

// The file name is what follows the last '/'. Keys are taken byte for byte: "a//index.html" is the folder
// "a//" (S3 does not normalize keys, and neither does CloudFront's cache key).
std::string_view FileName(std::string_view rel_key) {
  const std::size_t slash = rel_key.rfind('/');
  return slash == std::string_view::npos ? rel_key : rel_key.substr(slash + 1);
}

bool IsIndex(std::string_view rel_key, std::string_view index_document) {
  return !index_document.empty() && FileName(rel_key) == index_document;
}

// RFC 3986 section 3.3: a path segment is made of unreserved characters, sub-delimiters, ':' and '@' (and '/'
// between segments). '+' is a sub-delimiter but S3 reads it as a space in a URL path; "%2B" is read as '+' by
// S3 and every other server, so it is encoded.
constexpr CharSet kKeptInPath = kUnreserved | CharSet::Of("!$&'()*,;=:@/");

}  // namespace

std::string SiteKey(std::string_view rel_path, bool clean_urls, std::string_view index_document) {
  // Only ".html", exactly: ".htm" pages (and ".HTML") keep their names. Stripping both would let "a.htm" and
  // "a.html" claim the key "a", and generators write ".html".
  constexpr std::string_view kHtml = ".html";
  const std::string_view name = FileName(rel_path);
  if (!clean_urls || !name.ends_with(kHtml) || name.size() == kHtml.size() || IsIndex(rel_path, index_document)) {
    return std::string(rel_path);
  }
  return std::string(rel_path.substr(0, rel_path.size() - kHtml.size()));
}

std::string CanonicalUrlPath(std::string_view rel_key, std::string_view index_document) {
  std::string path = "/";
  // "/a/b/index.html" -> "/a/b/" (S3 website endpoints and CloudFront functions serve the index document there).
  if (IsIndex(rel_key, index_document)) {
    path.append(rel_key.substr(0, rel_key.size() - index_document.size()));
  } else {
    path.append(rel_key);
  }
  return path;
}

std::vector<std::string> UrlPaths(std::string_view rel_key, std::string_view index_document, bool bare_alias) {
  std::vector<std::string> paths;
  std::string full = "/";
  full.append(rel_key);
  paths.push_back(full);
  if (!IsIndex(rel_key, index_document)) return paths;

  std::string folder = CanonicalUrlPath(rel_key, index_document);
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

std::string EncodeUrlPath(std::string_view raw) { return PercentEncode(raw, kKeptInPath); }

Result<std::string> NormalizeBaseUrl(std::string_view url) {
  auto bad = [&](std::string_view why) {
    return Fail(ErrorCode::kUsage,
                     "bad base URL '" + std::string(url) + "': " + std::string(why) +
                         "; give the site's public address, such as https://example.com/ or https://example.com/blog/");
  };
  std::string lower(url.substr(0, std::min<std::size_t>(url.size(), 8)));
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  std::size_t scheme_end = 0;
  if (lower.starts_with("https://")) {
    scheme_end = 8;
  } else if (lower.starts_with("http://")) {
    scheme_end = 7;
  } else {
    return bad("it must start with https:// or http://");
  }
  for (const char ch : url) {
    const auto c = static_cast<unsigned char>(ch);
    if (c >= 0x80) return bad("it must be ASCII (write a non-ASCII host in its xn-- form, percent-encode the path)");
    if (c <= 0x20 || c == 0x7F) return bad("it must not contain spaces or control characters");
    if (c == '"' || c == '<' || c == '>' || c == '\\' || c == '^' || c == '`' || c == '{' || c == '|' || c == '}') {
      return bad(std::string("'") + ch + "' is not allowed in a URL");
    }
  }
  if (url.find('?') != std::string_view::npos) return bad("a base URL takes no query (?...)");
  if (url.find('#') != std::string_view::npos) return bad("a base URL takes no fragment (#...)");
  const std::size_t path_start = std::min(url.find('/', scheme_end), url.size());
  std::string host(url.substr(scheme_end, path_start - scheme_end));
  if (host.empty()) return bad("it has no host name");
  if (host.find('@') != std::string::npos) return bad("a base URL takes no user name or password");
  // host, [IPv6], optional :port with digits only.
  std::string_view name = host;
  if (const std::size_t colon = host.rfind(':'); colon != std::string::npos && host.find(']', colon) == std::string::npos) {
    const std::string_view port = std::string_view(host).substr(colon + 1);
    if (port.empty() || port.size() > 5 || !std::all_of(port.begin(), port.end(), [](unsigned char c) {
          return std::isdigit(c) != 0;
        })) {
      return bad("the port must be a number");
    }
    name = std::string_view(host).substr(0, colon);
  }
  if (name.empty()) return bad("it has no host name");
  const bool ipv6 = name.front() == '[' && name.back() == ']';
  if (!ipv6 && !std::all_of(name.begin(), name.end(), [](unsigned char c) {
        return std::isalnum(c) != 0 || c == '-' || c == '.' || c == '_';
      })) {
    return bad("the host name has characters a host name cannot have");
  }
  std::string path(url.substr(path_start));
  for (std::size_t i = 0; i < path.size(); ++i) {
    if (path[i] != '%') continue;
    if (i + 2 >= path.size() || std::isxdigit(static_cast<unsigned char>(path[i + 1])) == 0 ||
        std::isxdigit(static_cast<unsigned char>(path[i + 2])) == 0) {
      return bad("a '%' in the path must start a %XX escape");
    }
  }
  std::transform(host.begin(), host.end(), host.begin(), [](unsigned char c) { return std::tolower(c); });
  std::string out = lower.substr(0, scheme_end) + host + path;
  if (!out.ends_with('/')) out.push_back('/');
  return out;
}

}  // namespace sitesync::sitemap
