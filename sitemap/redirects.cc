// Redirects: `redirects:` in the config and SOURCE's `_redirects` (Netlify's simple form) become generated files,
// zero-byte objects whose x-amz-website-redirect-location S3's website endpoint answers with a 301.
#include <algorithm>
#include <cerrno>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "sitemap/sitemap.h"

namespace sitesync::sitemap {
namespace {

bool HasSpaceOrControl(std::string_view s) {
  return std::ranges::any_of(s, [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u <= 0x20 || u == 0x7f;
  });
}

}  // namespace

std::optional<std::string> RedirectProblem(const Redirect& r) {
  const std::string_view from = r.from;
  const std::string_view to = r.to;
  if (from.empty() || from.front() != '/') {
    return "'from' must be a URL path starting with '/' (such as /old/ or /old.html), not '" + r.from + "'";
  }
  if (HasSpaceOrControl(from)) return "'from' must not hold spaces or control characters";
  if (from.find('*') != std::string_view::npos) {
    return "'from' holds a splat '*': S3 has one object per redirect, so list each path instead";
  }
  if (from.find('?') != std::string_view::npos || from.find('#') != std::string_view::npos) {
    return "'from' holds a query or fragment ('?' or '#'): S3 redirects by path only";
  }
  if (from.find("//") != std::string_view::npos) return "'from' holds an empty segment ('//')";
  for (std::size_t begin = 1; begin <= from.size();) {
    std::size_t end = from.find('/', begin);
    if (end == std::string_view::npos) end = from.size();
    const std::string_view segment = from.substr(begin, end - begin);
    if (segment.starts_with(':')) {
      return "'from' holds a placeholder ('" + std::string(segment) + "'): S3 has one object per redirect, so list "
             "each path instead";
    }
    if (segment == "." || segment == "..") return "'from' holds a '.' or '..' segment";
    begin = end + 1;
  }
  if (to.empty()) return std::string("'to' is empty: give a path starting with '/' or an http(s) URL");
  if (HasSpaceOrControl(to)) return "'to' must not hold spaces or control characters";
  if (to.front() == '/') {
    if (to.starts_with("//")) return "'to' starts with '//': give a path (/new/) or a URL with its scheme";
    return std::nullopt;
  }
  for (const std::string_view scheme : {"http://", "https://"}) {
    if (to.starts_with(scheme)) {
      const std::string_view host = to.substr(scheme.size(), to.find('/', scheme.size()) - scheme.size());
      if (host.empty()) return "'to' is a URL without a host: '" + r.to + "'";
      return std::nullopt;
    }
  }
  return "'to' must be a path starting with '/' or an absolute http:// or https:// URL, not '" + r.to + "'";
}

Result<RedirectRules> ParseRedirects(std::string_view text, std::string_view name) {
  RedirectRules rules;
  std::size_t number = 0;
  for (std::size_t begin = 0; begin <= text.size();) {
    std::size_t end = text.find('\n', begin);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(begin, end - begin);
    begin = end + 1;
    ++number;
    if (line.ends_with('\r')) line.remove_suffix(1);
    const std::string where = std::string(name) + ":" + std::to_string(number);
    const auto bad = [&](const std::string& why) {
      return Fail(ErrorCode::kInput,
                  where + ": " + why + "; sitesync publishes only `/from /to [301|302]` lines (S3 object redirects): "
                  "fix or remove the line (a '#' starts a comment), or move the file out of SOURCE");
    };
    // Fields are separated by runs of spaces and tabs; '#' at the start of a field starts a comment.
    std::vector<std::string_view> fields;
    for (std::size_t i = 0; i < line.size();) {
      while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
      if (i >= line.size() || line[i] == '#') break;
      const std::size_t start = i;
      while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
      fields.push_back(line.substr(start, i - start));
    }
    if (fields.empty()) continue;
    if (fields.size() == 1) return bad("a rule needs a target ('" + std::string(fields[0]) + "' alone)");
    if (fields[1].find('=') != std::string_view::npos && fields[1].front() != '/' &&
        !fields[1].starts_with("http")) {
      return bad("query parameter matches ('" + std::string(fields[1]) + "') are not supported");
    }
    Redirect r{std::string(fields[0]), std::string(fields[1]), where};
    if (auto problem = RedirectProblem(r)) return bad(*problem);
    if (fields.size() >= 3) {
      const std::string_view status = fields[2];
      if (status.ends_with('!')) {
        return bad("forced rules ('" + std::string(status) + "') are not supported: an object redirect only "
                   "exists where no page does");
      }
      if (status == "302") {
        rules.warnings.push_back(where + ": status 302 is published as a 301: S3's website endpoint answers every "
                                 "object redirect with 301 Moved Permanently");
      } else if (status != "301") {
        return bad("status '" + std::string(status) + "' is not supported (only 301 and 302: 200 rewrites, "
                   "404s and proxies need a server)");
      }
    }
    if (fields.size() > 3) {
      return bad("unexpected '" + std::string(fields[3]) + "' after the status (query parameters, conditions and "
                 "headers are not supported)");
    }
    rules.redirects.push_back(std::move(r));
  }
  return rules;
}

Result<RedirectRules> ReadRedirectsFile(const std::filesystem::path& source) {
  const std::filesystem::path path = source / kRedirectsFile;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int error = errno;
    std::error_code ec;
    if (!std::filesystem::exists(path, ec) && !ec) return RedirectRules{};
    return Fail(ErrorCode::kIo, "cannot read " + path.string() + " (" +
                                    std::error_code(error, std::generic_category()).message() +
                                    "); fix its permissions, or remove it if it holds no redirects");
  }
  std::stringstream text;
  text << in.rdbuf();
  return ParseRedirects(text.str(), path.string());
}

std::string RedirectKey(std::string_view from, std::string_view index_document) {
  std::string key(from.substr(from.starts_with('/') ? 1 : 0));
  if (key.empty() || key.ends_with('/')) key += index_document;
  return key;
}

GeneratedFiles RedirectFiles(std::span<const Redirect> redirects, std::string_view index_document) {
  GeneratedFiles out;
  const std::string_view html = ContentTypeFor("redirect.html");  // as any page
  std::vector<std::pair<std::string, const Redirect*>> first;  // key -> the rule that gave it
  for (const Redirect& r : redirects) {
    std::string key = RedirectKey(r.from, index_document);
    const auto same = std::ranges::find(first, key, &std::pair<std::string, const Redirect*>::first);
    if (same != first.end()) {
      out.warnings.push_back("redirect " + r.from + " -> " + r.to + (r.where.empty() ? "" : " (" + r.where + ")") +
                             " is left out: " + same->second->from + " -> " + same->second->to +
                             (same->second->where.empty() ? "" : " (" + same->second->where + ")") +
                             " comes first and has the same object '" + key + "'; remove one of them");
      continue;
    }
    first.emplace_back(key, &r);
    LocalFile f;
    f.rel_path = key;
    f.key = std::move(key);
    f.generated = true;
    f.content_type = html;
    ExtraHeaders headers;
    headers.website_redirect = r.to;
    f.extra = InternHeaders(headers);
    out.files.push_back(std::move(f));
  }
  std::ranges::sort(out.files, {}, &LocalFile::key);
  return out;
}

void AddGenerated(SiteMap& site, GeneratedFiles generated) {
  for (std::string& w : generated.warnings) site.warnings.push_back(std::move(w));
  if (generated.files.empty()) return;
  std::vector<std::pair<std::string_view, const LocalFile*>> keys;
  keys.reserve(site.files.size());
  for (const LocalFile& f : site.files) keys.emplace_back(f.Key(), &f);
  std::ranges::sort(keys);
  std::vector<LocalFile> kept;
  for (LocalFile& g : generated.files) {
    const auto it = std::ranges::lower_bound(keys, g.Key(), {}, &std::pair<std::string_view, const LocalFile*>::first);
    if (it != keys.end() && it->first == g.Key()) {
      site.warnings.push_back("redirect to " + g.extra->website_redirect + " is left out: its object '" +
                              std::string(g.Key()) + "' is the file '" + it->second->rel_path +
                              "' of SOURCE, which is published instead; remove the redirect or the file");
      continue;
    }
    kept.push_back(std::move(g));
  }
  for (LocalFile& g : kept) site.files.push_back(std::move(g));
}

}  // namespace sitesync::sitemap
