// sitemap/: the map of the site. Walks SOURCE into files with their keys, sizes, content types and headers.
// Needs no network.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "aws/aws.h"

namespace sitesync::sitemap {

/// One `headers:` rule from the config. Fields left unset do not change what earlier rules set.
struct HeaderRule {
  std::string match;  ///< Glob, same syntax as --exclude.
  std::optional<std::string> cache_control;
  std::optional<std::string> content_type;
};

struct WalkOptions {
  std::vector<std::string> exclude;  ///< Globs; a matching file (or a file under a matching folder) is skipped.
  std::vector<std::string> include;  ///< Globs; a matching file is kept even if excluded (also dotfiles).
  std::vector<HeaderRule> headers;   ///< Applied in order; the last matching rule wins per field.
};

/// A file of the site. Kept small: a sync of a large site holds one per file (96 bytes plus the path).
struct LocalFile {
  std::string rel_path;  ///< Relative to SOURCE, '/'-separated, bytes as on disk (no leading '/').
  std::shared_ptr<const std::string> root;  ///< The canonical SOURCE, shared by every file of a walk.
  std::uint64_t size = 0;
  std::int64_t mtime_ns = 0;
  /// From the rules, else the built-in table, else application/octet-stream. Interned (see Intern): the
  /// view stays valid for the life of the process.
  std::string_view content_type;
  std::string_view cache_control;  ///< From the rules; empty when none. Interned.

  /// Where to read it: root + "/" + rel_path (a symlink's target is read through the link).
  [[nodiscard]] std::string AbsPath() const;
};

/// A process-lifetime copy of `value`, shared by equal values: for the few distinct header values of a site,
/// held by every file that has them. Thread-safe.
[[nodiscard]] std::string_view Intern(std::string_view value);

struct SiteMap {
  std::vector<LocalFile> files;       ///< Sorted by rel_path (byte order).
  std::vector<std::string> warnings;  ///< Skipped symlinks, loops, unreadable entries: one message each.
  /// Folders (rel paths) that could not be read in full: what is under them remotely must not be deleted.
  std::vector<std::string> incomplete_folders;
};

/// Walks `source`. Dotfiles and dot-folders are skipped except `.well-known/` (unless an include glob matches).
/// `.well-known` folders are kept at any depth; dotfiles inside them are still skipped. Unreadable folders and
/// other entries that cannot be read are skipped with a warning.
/// Symlinks are followed when their target stays inside `source`; ones pointing outside, broken ones and loops
/// are skipped with a warning. Fails with kInput when `source` is missing or not a directory.
[[nodiscard]] aws::Result<SiteMap> Walk(const std::filesystem::path& source, const WalkOptions& options);

/// Like Walk, but only for `rel_paths` (files or folders, walked whole), judged exactly as the full walk would
/// judge them (filters of their parent folders, symlink rules); paths that do not exist give nothing. For a
/// watch batch, which must not stat the whole site for one changed file.
[[nodiscard]] aws::Result<SiteMap> WalkPaths(const std::filesystem::path& source,
                                             std::span<const std::string> rel_paths, const WalkOptions& options);

/// Glob match against a '/'-separated relative path. `*` and `?` do not cross '/', `**` does (`a/**/b` also
/// matches `a/b`), `[...]` is a class. A pattern without '/' matches the base name at any depth; a leading '/'
/// anchors at SOURCE. A pattern also matches a path when it matches one of the path's parent folders.
/// A pattern containing '/' elsewhere is anchored too; a trailing '/' makes it match folders only (`drafts/`
/// skips everything under any folder named drafts, but not a file named drafts). `**/` matches zero or more
/// whole folders (`**/x` matches `x`), other `**` any run of characters; `[!a-z]`/`[^a-z]` negate; `\` escapes.
/// `?` and classes take one UTF-8 character. Case-sensitive. An empty pattern matches nothing.
/// A `rel_path` ending in '/' names a folder: true when the pattern matches everything under it (the folder or
/// a parent matches, or the pattern is like `dir/**` or `dir/*`); Walk() uses this to prune excluded folders.
[[nodiscard]] bool GlobMatch(std::string_view pattern, std::string_view rel_path);

/// True when the filters leave `rel_path` out of the sync: a dot path (except under .well-known/) or a
/// path an exclude glob matches, unless an include glob matches it. Also used for remote keys, which are never
/// deleted when excluded.
[[nodiscard]] bool Excluded(std::string_view rel_path, const WalkOptions& options);

/// A glob compiled once, for matching one pattern against many paths (GlobMatch compiles on every call).
/// Same syntax and answers as GlobMatch. Cheap to copy; Matches() allocates nothing and is safe to call from
/// several threads.
class Glob {
 public:
  explicit Glob(std::string_view pattern);
  /// GlobMatch(pattern, rel_path).
  [[nodiscard]] bool Matches(std::string_view rel_path) const;

  struct Impl;

 private:
  std::shared_ptr<const Impl> impl_;
};

/// The URL paths a key is served under (not encoded): "/" + rel_key, and when the file name is
/// `index_document`, also its folder with a trailing slash and, with `bare_alias`, without one
/// ("a/b/index.html" -> "/a/b/index.html", "/a/b/", "/a/b"); the root index gives "/index.html" and "/".
/// One rule for CloudFront invalidations and sitemap.xml.
[[nodiscard]] std::vector<std::string> UrlPaths(std::string_view rel_key, std::string_view index_document,
                                                bool bare_alias);

/// Content-Type from the built-in table of web types by extension (case-insensitive), independent of the OS;
/// "application/octet-stream" when unknown. Text types carry "; charset=utf-8".
[[nodiscard]] std::string_view ContentTypeFor(std::string_view rel_path);

/// True for .html and .htm (case-insensitive): such files are uploaded after the assets they reference.
[[nodiscard]] bool IsHtml(std::string_view rel_path);

}  // namespace sitesync::sitemap
