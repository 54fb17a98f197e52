// Invalidation paths: which URL paths to invalidate for a set of changed keys, how CloudFront wants them
// encoded, and how to collapse a large set into a few wildcards.

#include <algorithm>
#include <set>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/percent.h"
#include "cdn/cdn.h"
#include "sitemap/sitemap.h"

namespace sitesync::cdn {
namespace {

// CloudFront "Specifying the objects to invalidate": the path must be URL-encoded exactly as the viewer's
// request reaches the cache key, and CloudFront decodes nothing. Characters CloudFront passes through unencoded
// ('/', letters, digits, "-._!$&'()+,;=:@") must stay as they are, or the invalidation names another object and
// misses. '~' is listed by CloudFront as needing encoding although RFC 3986 calls it unreserved; '*' and '?'
// are encoded because '*' is CloudFront's wildcard and '?' starts a query string. Kept: printable ASCII but
// space and " # % < > [ \ ] ^ ` { | } ~ * ? (CLI.md, "Invalidation paths").
constexpr CharSet kKeptInInvalidationPath = CharSet::Range(0x21, 0x7E) - CharSet::Of("\"#%<>[\\]^`{|}~*?");

// The folder a path is in, with its trailing '/': "/a/b/c.html" -> "/a/b/", "/a/b/" -> "/a/b/", "/a/b" ->
// "/a/" (a bare alias lives in its parent folder: "/a/b/*" would not match "/a/b"). Anything not starting with
// '/' (never produced here) is put at the root.
std::string_view FolderOf(std::string_view path) {
  if (path.empty() || path.front() != '/') return "/";
  return path.substr(0, path.rfind('/') + 1);
}

}  // namespace

std::string EncodePath(std::string_view raw, bool keep_trailing_star) {
  if (keep_trailing_star && raw.ends_with('*')) {
    return PercentEncode(raw.substr(0, raw.size() - 1), kKeptInInvalidationPath) + '*';
  }
  return PercentEncode(raw, kKeptInInvalidationPath);
}

std::vector<std::string> InvalidationPaths(std::span<const std::string> rel_keys, const PathOptions& options) {
  std::vector<std::string> paths;
  paths.reserve(rel_keys.size() * 3);
  for (const std::string& key : rel_keys) {
    for (const std::string& url : sitemap::UrlPaths(key, options.index_document, options.bare_alias)) {
      // A '*' in a key is a literal character of the object name, never a wildcard.
      paths.push_back(EncodePath(url, /*keep_trailing_star=*/false));
    }
  }
  std::sort(paths.begin(), paths.end());
  paths.erase(std::unique(paths.begin(), paths.end()), paths.end());
  return paths;
}

std::vector<std::string> KeysToInvalidate(std::span<const std::string> rel_keys,
                                          std::span<const std::string> new_keys, const PathOptions& options) {
  std::vector<sitemap::Glob> skip;
  skip.reserve(options.skip.size());
  for (const std::string& pattern : options.skip) skip.emplace_back(pattern);
  const std::set<std::string_view> fresh(new_keys.begin(), new_keys.end());
  std::vector<std::string> keys;
  keys.reserve(rel_keys.size());
  for (const std::string& key : rel_keys) {
    if (!options.invalidate_new && fresh.contains(key)) continue;
    if (std::any_of(skip.begin(), skip.end(), [&](const sitemap::Glob& g) { return g.Matches(key); })) continue;
    keys.push_back(key);
  }
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  return keys;
}

bool Covers(std::string_view pattern, std::string_view path) {
  // CloudFront: '*' is a wildcard only as the last character and matches any rest, including '/' and nothing.
  if (!pattern.empty() && pattern.back() == '*') return path.starts_with(pattern.substr(0, pattern.size() - 1));
  return pattern == path;
}

// Collapse works on the trie of folders that hold changed paths:
//  1. Each path's folder is a candidate; a candidate under another candidate is dropped (the upper one covers it).
//  2. While there are more candidates than the budget, the deepest folder holding at least two of them (ties:
//     the one holding the most, then byte order) takes their place.
// Merging a folder at depth d changes nothing for other folders at depth d (their subtrees are disjoint), so
// the loop is done level by level, bottom up, sorting each level's folders once. The trie is built from the
// sorted folders with a stack, so every step is linear or n log n in the total length of the folders.
namespace {

// The wildcard core: at most `budget` (>= 2) "/dir/*" wildcards covering every path in `exact`, each as deep as
// the budget allows (deepest merge first). `exact` must not be empty.
std::vector<std::string> FolderWildcards(std::span<const std::string> exact, std::size_t budget) {
  struct {
    std::vector<std::string> paths;
  } result;

  // Distinct folders, in byte order; the string_views point into `exact`, which outlives this call.
  std::vector<std::string_view> folders;
  folders.reserve(exact.size());
  for (const std::string& path : exact) folders.push_back(FolderOf(path));
  std::sort(folders.begin(), folders.end());
  folders.erase(std::unique(folders.begin(), folders.end()), folders.end());

  struct Node {
    std::string_view folder;  // With its trailing '/'.
    std::uint32_t parent = 0;
    std::uint32_t depth = 0;
    bool holds_path = false;  // Some changed path has this folder as its own.
    bool chosen = false;      // A wildcard here (for now).
    bool covered = false;     // Under a chosen folder.
    std::size_t members = 0;  // Chosen folders at or under this one.
  };
  // Every folder starts with "/", so the root comes first; each node's parent has a smaller index.
  std::vector<Node> nodes;
  nodes.push_back(Node{"/", 0, 0, false, false, false, 0});
  // The chain of nodes from the root to the previous folder's node, with the lengths of their folders.
  std::vector<std::uint32_t> stack = {0};
  std::string_view previous = "/";
  for (std::string_view folder : folders) {
    std::size_t common = 0;
    const std::size_t limit = std::min(folder.size(), previous.size());
    while (common < limit && folder[common] == previous[common]) ++common;
    // Folders sharing a prefix are adjacent in byte order, so a node left off the stack is never needed again.
    while (stack.size() > 1 && nodes[stack.back()].folder.size() > common) stack.pop_back();
    for (std::size_t i = nodes[stack.back()].folder.size(); i < folder.size(); ++i) {
      if (folder[i] != '/') continue;
      const std::uint32_t parent = stack.back();
      nodes.push_back(Node{folder.substr(0, i + 1), parent, nodes[parent].depth + 1, false, false, false, 0});
      stack.push_back(static_cast<std::uint32_t>(nodes.size() - 1));
    }
    nodes[stack.back()].holds_path = true;
    previous = folder;
  }

  // Step 1, top down (parents come before children).
  std::size_t total = 0;
  std::uint32_t max_depth = 0;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    Node& node = nodes[i];
    if (i != 0) node.covered = nodes[node.parent].covered || nodes[node.parent].chosen;
    node.chosen = node.holds_path && !node.covered;
    if (node.chosen) ++total;
    max_depth = std::max(max_depth, node.depth);
  }

  if (total > budget) {
    std::vector<std::vector<std::uint32_t>> levels(max_depth + 1);
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      if (!nodes[i].covered) levels[nodes[i].depth].push_back(static_cast<std::uint32_t>(i));
    }
    // Step 2, bottom up. When level d is reached, every node there has its members summed from level d + 1.
    for (std::size_t d = levels.size(); d-- > 0 && total > budget;) {
      std::vector<std::uint32_t>& level = levels[d];
      for (std::uint32_t i : level) {
        if (nodes[i].chosen) nodes[i].members = 1;
      }
      std::sort(level.begin(), level.end(), [&](std::uint32_t a, std::uint32_t b) {
        if (nodes[a].members != nodes[b].members) return nodes[a].members > nodes[b].members;
        return nodes[a].folder < nodes[b].folder;
      });
      for (std::uint32_t i : level) {
        Node& node = nodes[i];
        if (total > budget && !node.chosen && node.members >= 2) {
          total -= node.members - 1;
          node.chosen = true;
          node.members = 1;
        }
        if (i != 0) nodes[node.parent].members += node.members;
      }
    }
  }

  // The chosen folders that are not under another chosen one (merges leave chosen nodes below them).
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    Node& node = nodes[i];
    node.covered = i != 0 && (nodes[node.parent].covered || nodes[node.parent].chosen);
    if (node.chosen && !node.covered) result.paths.push_back(std::string(node.folder) + "*");
  }
  std::sort(result.paths.begin(), result.paths.end());
  return std::move(result.paths);
}

bool IsRootLevel(std::string_view path) { return path.find('/', 1) == std::string_view::npos; }

}  // namespace

PathSet Collapse(std::span<const std::string> exact, const PathOptions& options) {
  PathSet result;
  result.exact_count = exact.size();
  if (exact.size() <= options.max_paths) {
    result.paths.assign(exact.begin(), exact.end());
    return result;
  }
  result.collapsed = true;
  // Everything submitted counts against the wildcard budget, exact leftovers included.
  const std::size_t limit = options.max_wildcards;
  if (limit <= 1) {
    result.paths = {"/*"};
    return result;
  }
  // A bare folder alias ("/blog" beside "/blog/") and a root-level file ("/index.html", "/", "/rss.xml") live in
  // the folder above what changed: left to the folder rule they would force "/*" and throw the whole cache away.
  // Kept exact beside the wildcards instead, when the two together fit in the budget (each wildcard leaves at
  // most its own bare alias uncovered). The widest budget for wildcards that fits wins.
  std::vector<std::string> deep;
  std::vector<std::string_view> kept;
  const std::set<std::string_view> all(exact.begin(), exact.end());
  for (const std::string& p : exact) {
    const bool bare_alias = !p.ends_with('/') && !p.ends_with('*') && all.contains(p + "/");
    if (bare_alias || IsRootLevel(p)) {
      kept.push_back(p);
    } else {
      deep.push_back(p);
    }
  }
  if (!kept.empty() && !deep.empty()) {
    for (std::size_t budget = limit; budget >= 2; --budget) {
      std::vector<std::string> paths = FolderWildcards(deep, budget);
      for (std::string_view p : kept) {
        const bool covered =
            std::any_of(paths.begin(), paths.end(), [&](const std::string& w) { return w.ends_with('*') && Covers(w, p); });
        if (!covered) paths.emplace_back(p);
      }
      if (paths.size() <= limit) {
        std::sort(paths.begin(), paths.end());
        paths.erase(std::unique(paths.begin(), paths.end()), paths.end());
        result.paths = std::move(paths);
        return result;
      }
    }
  }
  result.paths = FolderWildcards(exact, limit);
  return result;
}

}  // namespace sitesync::cdn
