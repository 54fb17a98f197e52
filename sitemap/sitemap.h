// sitemap/: the map of the site. Walks SOURCE into files with their keys, sizes, content types and headers, and
// writes sitemap.xml for its pages (sitemaps.org).
// Needs no network.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"

namespace sitesync::sitemap {

/// One `headers:` rule from the config. Fields left unset do not change what earlier rules set.
struct HeaderRule {
  std::string match;  ///< Glob, same syntax as --exclude.
  std::optional<std::string> cache_control;
  std::optional<std::string> content_type;
  // Issue 14: every header per glob. Validated by the config loader (a bad value is a config error naming the rule).
  std::optional<std::string> content_encoding;
  std::optional<std::string> content_disposition;
  std::optional<std::string> content_language;
  std::optional<std::string> storage_class;  ///< STANDARD, STANDARD_IA, INTELLIGENT_TIERING, ...
  std::optional<std::string> acl;            ///< A canned ACL: private, public-read, ...
  std::optional<std::string> sse;            ///< AES256 or aws:kms.
  std::optional<std::string> kms_key_id;     ///< Only with sse: aws:kms.
  std::optional<std::string> website_redirect;  ///< x-amz-website-redirect-location: "/path" or an absolute URL.
  /// x-amz-meta-NAME: value; names lowercase, without the prefix. Replaces (not merges) what earlier rules set.
  std::optional<std::vector<std::pair<std::string, std::string>>> metadata;
};

/// How a file's body is uploaded: as it is on disk, or compressed (`compress:` rules) with Content-Encoding.
enum class Encoding : std::uint8_t { kIdentity, kGzip, kBrotli };

/// One `compress:` rule: files matching `match` are uploaded compressed. The last matching rule wins.
struct CompressRule {
  std::string match;  ///< Glob, same syntax as --exclude.
  Encoding encoding = Encoding::kGzip;
};

/// The headers beyond Content-Type and Cache-Control that a file gets from the `headers:` rules (empty: not
/// sent). Interned with InternHeaders: files with the same set share one copy.
struct ExtraHeaders {
  std::string content_encoding;
  std::string content_disposition;
  std::string content_language;
  std::string storage_class;
  std::string acl;
  std::string sse;
  std::string kms_key_id;
  std::string website_redirect;
  std::vector<std::pair<std::string, std::string>> metadata;  ///< Sorted by name; names lowercase.
  bool operator==(const ExtraHeaders&) const = default;
};

/// A process-lifetime copy of `headers`, shared by equal sets (as Intern). Thread-safe.
[[nodiscard]] const ExtraHeaders* InternHeaders(const ExtraHeaders& headers);

/// One redirect: `redirects:` in the config or a line of SOURCE's `_redirects` (Netlify's simple form).
struct Redirect {
  std::string from;  ///< A URL path starting with '/': "/old/", "/old.html".
  std::string to;    ///< A URL path starting with '/', or an absolute http(s) URL.
  std::string where;  ///< Where it was given, for messages: "redirects[2]", "_redirects:4"; may be empty.
};

/// The redirects file at SOURCE's root (Netlify's name): read by sync and watch, never published itself.
inline constexpr std::string_view kRedirectsFile = "_redirects";

/// What is wrong with a redirect, or nullopt when it can be published: `from` must be a URL path starting with '/'
/// without '*' (splats), ':name' segments (placeholders), '?' (query parameters), '#', spaces, control bytes,
/// "." or ".." segments, or "//"; `to` a path starting with '/' or an absolute http(s) URL with a host, without
/// spaces or control bytes (S3 stores it as the x-amz-website-redirect-location header).
[[nodiscard]] std::optional<std::string> RedirectProblem(const Redirect& redirect);

/// Redirects read from a `_redirects` file, and warnings about lines that were accepted with a caveat.
struct RedirectRules {
  std::vector<Redirect> redirects;    ///< In file order; `where` is "NAME:LINE".
  std::vector<std::string> warnings;  ///< A 302 (S3 answers every object redirect with 301).
};

/// Parses a `_redirects` file in Netlify's simple form: one `FROM TO [STATUS]` per line, separated by spaces or
/// tabs; blank lines and lines starting with '#' (and text after a " #") are ignored; STATUS is 301 (the default)
/// or 302 (published as S3's 301, with a warning). Splats, placeholders, query parameters, other statuses (200
/// rewrites, 404s), forced rules ('!'), extra fields and lines RedirectProblem refuses fail with kInput naming
/// `name`, the line and the way out: nothing is published with a redirects file that says something sitesync
/// cannot do.
[[nodiscard]] Result<RedirectRules> ParseRedirects(std::string_view text, std::string_view name);

/// Reads and parses SOURCE's `_redirects` (ParseRedirects; messages name it by its path); a missing file gives
/// no redirect. Fails with kInput for a bad line and kIo when it exists but cannot be read.
[[nodiscard]] Result<RedirectRules> ReadRedirectsFile(const std::filesystem::path& source);

/// The key (relative to DEST's prefix) of the object that serves the redirect from `from`: "/old/" ->
/// "old/index.html" (the index document: S3's website endpoint serves a folder URL from it), "/" -> the root
/// index document, "/old.html" -> "old.html", "/old" -> "old". Percent escapes are not decoded.
[[nodiscard]] std::string RedirectKey(std::string_view from, std::string_view index_document);

/// sitesync's own files: the config file in use and the folders sitesync writes (the journal's, the cache's).
/// They are never part of the site, even inside SOURCE, whatever the globs say.
struct OwnFiles {
  /// Relative to SOURCE ('/'-separated): own files and folders inside SOURCE, and the config's file name at the
  /// root (a generator's copy of it, as Jekyll makes). Skipped by the walk, and Excluded(): their keys are never
  /// uploaded, and never deleted either (as for any excluded key).
  std::vector<std::string> rel_paths;
  /// Device and inode of each own file and folder: a path of the walk that leads to one under another name (a
  /// hard link, a symlink, a bind mount) is skipped too.
  std::vector<std::pair<std::uint64_t, std::uint64_t>> ids;
};

struct WalkOptions {
  std::vector<std::string> exclude;  ///< Globs; a matching file (or a file under a matching folder) is skipped.
  std::vector<std::string> include;  ///< Globs; a matching file is kept even if excluded (also dotfiles).
  std::vector<HeaderRule> headers;   ///< Applied in order; the last matching rule wins per field.
  OwnFiles own;                      ///< Never published (see FindOwnFiles).
  std::vector<CompressRule> compress;  ///< Sets LocalFile::encoding; the last matching rule wins.
  /// clean_urls: HTML pages are published under SiteKey() (LocalFile::key), "about.html" as "about".
  bool clean_urls = false;
  std::string index_document = "index.html";  ///< cdn.index_document: index pages keep their key.
  // A clean key that is also another walked file's key ("about.html" and a file "about"): the file named so
  // keeps the key and the page is published under its own name, with a warning (SiteMap::warnings).
};

/// The key (relative to DEST's prefix) a file of SOURCE is published under: its rel_path; with `clean_urls`, an
/// HTML page (.html, exactly: ".htm" and ".HTML" keep their names) other than the index document loses its
/// extension ("about.html" -> "about", "a/b.html" -> "a/b"; "a/index.html" and "a/.html" stay). The one mapping for uploads, deletes, invalidation paths, aliases and
/// sitemap.xml.
[[nodiscard]] std::string SiteKey(std::string_view rel_path, bool clean_urls, std::string_view index_document);

/// The OwnFiles of a walk of `source`: each of `paths` (files or folders, anywhere; relative ones from the
/// current folder) by device and inode when it exists, and by its path relative to `source` (both after
/// symlinks; a missing path by where it would be) when it is inside; plus each of `root_names` (file names) at
/// SOURCE's root. Never fails: what cannot be resolved is left out.
[[nodiscard]] OwnFiles FindOwnFiles(const std::filesystem::path& source, std::span<const std::filesystem::path> paths,
                                    std::span<const std::string> root_names);

/// True when `rel_path` (a trailing '/' names a folder) is one of `own.rel_paths` or under one of them.
[[nodiscard]] bool IsOwnPath(std::string_view rel_path, const OwnFiles& own);

/// A file of the site. Kept small: a sync of a large site holds one per file (112 bytes plus the path).
struct LocalFile {
  std::string rel_path;  ///< Relative to SOURCE, '/'-separated, bytes as on disk (no leading '/').
  std::shared_ptr<const std::string> root;  ///< The canonical SOURCE, shared by every file of a walk.
  std::uint64_t size = 0;
  std::int64_t mtime_ns = 0;
  /// From the rules, else the built-in table, else application/octet-stream. Interned (see Intern): the
  /// view stays valid for the life of the process.
  std::string_view content_type;
  std::string_view cache_control;  ///< From the rules; empty when none. Interned.
  /// The device and inode the walk saw (of a followed symlink's target): what OpenInSource accepts where the
  /// kernel cannot confine the open itself. 0: unknown.
  std::uint64_t dev = 0;
  std::uint64_t ino = 0;
  /// From the `headers:` rules beyond content_type and cache_control; null: none. Interned (InternHeaders).
  const ExtraHeaders* extra = nullptr;
  /// From the `compress:` rules. For an encoded file, sync sets `size` to the size of the encoded body before it
  /// compares (the object's size); `disk_size` stays the file's.
  Encoding encoding = Encoding::kIdentity;
  /// No file behind it: a redirect object (an empty body, extra->website_redirect set). Never opened.
  bool generated = false;
  /// The file's size on disk when walked (== size unless encoded).
  std::uint64_t disk_size = 0;
  /// The key relative to DEST's prefix when it is not rel_path (clean_urls: SiteKey); empty: rel_path.
  std::string key;

  /// The key relative to DEST's prefix: `key`, else rel_path.
  [[nodiscard]] std::string_view Key() const { return key.empty() ? std::string_view(rel_path) : std::string_view(key); }

  /// Where to read it: root + "/" + rel_path (a symlink's target is read through the link).
  [[nodiscard]] std::string AbsPath() const;
};

/// A file of the site opened for reading, and its size now (it may have changed since the walk).
struct OpenedFile {
  UniqueFd fd;
  std::uint64_t size = 0;
};

/// Opens `file` for reading so that nothing outside its SOURCE is ever read, even when the file was swapped for a
/// symlink (or a folder on its path for one) after the walk: with openat2(2) and RESOLVE_BENEATH relative to
/// SOURCE where the kernel has it (symlinks that stay inside SOURCE still work, as in the walk); elsewhere the
/// opened file must be the one the walk recorded (device and inode) or lie inside SOURCE by its real path. A FIFO
/// or device swapped in is refused without blocking. Fails with kNotFound when the file is gone, kInput when it now
/// leads outside SOURCE or is no regular file (the message names it and says so), kIo otherwise.
[[nodiscard]] Result<OpenedFile> OpenInSource(const LocalFile& file);

/// A process-lifetime copy of `value`, shared by equal values: for the few distinct header values of a site,
/// held by every file that has them. Thread-safe.
[[nodiscard]] std::string_view Intern(std::string_view value);

struct SiteMap {
  std::vector<LocalFile> files;       ///< Sorted by rel_path (byte order).
  std::vector<std::string> warnings;  ///< Skipped symlinks, loops, unreadable entries: one message each.
  /// Folders (rel paths) that could not be read in full: what is under them remotely must not be deleted.
  std::vector<std::string> incomplete_folders;
};

/// The generated files of `redirects` (RedirectFiles), and warnings.
struct GeneratedFiles {
  std::vector<LocalFile> files;
  std::vector<std::string> warnings;  ///< A second rule for the same key (the first wins).
};

/// One generated LocalFile per redirect (generated, size 0, disk_size 0, content type text/html, no root, extra
/// with website_redirect = to, rel_path and key = RedirectKey(from, index_document)), sorted by key. When two
/// rules give the same key, the first wins (config redirects come before the `_redirects` lines, as Netlify takes
/// the first match) and the other is named in a warning. The redirects are assumed valid (RedirectProblem).
[[nodiscard]] GeneratedFiles RedirectFiles(std::span<const Redirect> redirects, std::string_view index_document);

/// Adds `generated` (RedirectFiles) to the walked `site`: a generated file whose key is also the key of a file
/// of SOURCE is left out with a warning naming both (the file is published; the redirect is not).
void AddGenerated(SiteMap& site, GeneratedFiles generated);

/// Walks `source`. Dotfiles and dot-folders are skipped except `.well-known/` (unless an include glob matches).
/// `.well-known` folders are kept at any depth; dotfiles inside them are still skipped. Unreadable folders and
/// other entries that cannot be read are skipped with a warning.
/// Symlinks are followed when their target stays inside `source`; ones pointing outside, broken ones and loops
/// are skipped with a warning. Fails with kInput when `source` is missing or not a directory.
/// SOURCE's `_redirects` at the root is never a file of the site. With options.clean_urls, each page's
/// LocalFile::key is its SiteKey, unless a file of the site has that path (warned; the page keeps its name).
[[nodiscard]] Result<SiteMap> Walk(const std::filesystem::path& source, const WalkOptions& options);

/// Like Walk, but only for `rel_paths` (files or folders, walked whole), judged exactly as the full walk would
/// judge them (filters of their parent folders, symlink rules); paths that do not exist give nothing. For a
/// watch batch, which must not stat the whole site for one changed file.
[[nodiscard]] Result<SiteMap> WalkPaths(const std::filesystem::path& source,
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

/// True when the filters leave `rel_path` out of the sync: one of sitesync's own files (IsOwnPath, whatever
/// the globs say), a dot path (except under .well-known/), a temporary file (IsTempFile of its last segment,
/// unless `rel_path` ends in '/') or a path an exclude glob matches, unless an include glob matches it. Also
/// used for remote keys, which are never
/// deleted when excluded.
[[nodiscard]] bool Excluded(std::string_view rel_path, const WalkOptions& options);

/// True for editor and generator temporary files, which neither sync publishes nor watch waits for (unless an
/// include glob asks for them): `*.swp`, `*.swx` (vim swap), `*~` (backups), `4913` (vim's probe), `*.tmp`, and
/// dotfiles (`.#name`, emacs' lock links, among them). `name` is a base name; for a path its last segment decides.
/// Excluded() and Walk() apply it to files, never to folders.
[[nodiscard]] bool IsTempFile(std::string_view name);

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

/// The URL path a key is canonically served under (not encoded): its folder with a trailing slash when the file
/// name is `index_document` ("a/b/index.html" -> "/a/b/", the root "index.html" -> "/"), else "/" + rel_key.
/// sitemap.xml lists this one; UrlPaths() is built on it, so the two never disagree.
[[nodiscard]] std::string CanonicalUrlPath(std::string_view rel_key, std::string_view index_document);

/// The URL paths a key is served under (not encoded): "/" + rel_key, and when the file name is
/// `index_document`, also its folder with a trailing slash (CanonicalUrlPath) and, with `bare_alias`, without
/// one ("a/b/index.html" -> "/a/b/index.html", "/a/b/", "/a/b"); the root index gives "/index.html" and "/".
/// One rule for CloudFront invalidations and sitemap.xml.
[[nodiscard]] std::vector<std::string> UrlPaths(std::string_view rel_key, std::string_view index_document,
                                                bool bare_alias);

/// Content-Type from the built-in table of web types by extension (case-insensitive), independent of the OS;
/// "application/octet-stream" when unknown. Text types carry "; charset=utf-8".
[[nodiscard]] std::string_view ContentTypeFor(std::string_view rel_path);

/// True for .html and .htm (case-insensitive): such files are uploaded after the assets they reference.
[[nodiscard]] bool IsHtml(std::string_view rel_path);

// ---------------------------------------------------------------------------------------------------------------
// sitemap.xml (the sitemaps.org protocol 0.9): one <url> per HTML page, split past 50,000 URLs or 50 MB.
// ---------------------------------------------------------------------------------------------------------------

/// Percent-encodes a URL path (RFC 3986, uppercase hex): every byte but the unreserved characters, the
/// sub-delimiters other than '+', ':', '@' and '/' ("a b/café&x+y.html" -> "a%20b/caf%C3%A9&x%2By.html").
/// '+' is encoded because S3 reads a '+' in a URL path as a space; "%2B" means '+' to every server.
[[nodiscard]] std::string EncodeUrlPath(std::string_view raw);

/// Checks a site's base URL: absolute http or https, a host, an optional port and path, no query, fragment,
/// user info, spaces or non-ASCII bytes. Returns it with the scheme and host lowercased and a trailing '/'
/// ("https://Example.com/blog" -> "https://example.com/blog/"). Fails with kUsage saying what is wrong.
[[nodiscard]] Result<std::string> NormalizeBaseUrl(std::string_view url);

/// The W3C Datetime form sitemaps use, in UTC to the second: "2026-11-23T10:00:00Z" (ns since the epoch).
[[nodiscard]] std::string W3cDatetime(std::int64_t unix_ns);

/// True when an HTML document has `<meta name="robots" content="...">` with `noindex` or `none` among its
/// comma-separated directives (names, values and directives case-insensitive; any quoting or attribute order;
/// comments and script text are not markup). Only the head is looked at: reading stops where the body starts.
/// Parsed with libxml2's HTML parser, which recovers from any input.
[[nodiscard]] bool RobotsNoindex(std::string_view html);

/// RobotsNoindex() of a file, reading only as far as its head (at most the first 1 MiB). Fails with kIo naming
/// the file when it cannot be read.
[[nodiscard]] Result<bool> FileRobotsNoindex(const std::filesystem::path& file);
/// The same for a file of the site, opened beneath its SOURCE (OpenInSource): never read outside it.
[[nodiscard]] Result<bool> FileRobotsNoindex(const LocalFile& file);

/// An HTML page of the site, as sitemap.xml needs it.
struct Page {
  std::string rel_path;  ///< Relative to SOURCE, '/'-separated.
  std::int64_t mtime_ns = 0;
  std::uint64_t size = 0;
  bool noindex = false;  ///< Has a robots noindex meta tag: left out of sitemap.xml.
  std::string key = {};  ///< The key it is published under when not rel_path (LocalFile::key: clean_urls).
};

/// The HTML pages of SOURCE, found with the sync's Walk and filters, each read once for a robots noindex. Kept
/// from one call to the next so that a watch batch only re-reads what changed: a page whose size and mtime did
/// not change keeps its noindex answer.
class PageSet {
 public:
  /// `output_rel`: the sitemap output relative to SOURCE (empty when it is outside): its files are never pages
  /// (IsSitemapFile).
  PageSet(std::filesystem::path source, WalkOptions filters, std::string output_rel = {});

  /// Walks all of SOURCE. Returns whether the pages (paths, mtimes, noindex) changed since the last call. Fails
  /// as Walk() does (kInput when SOURCE is missing).
  [[nodiscard]] Result<bool> Rescan();
  /// Looks again at `rel_paths` only (files or folders, relative to SOURCE; gone ones drop their pages).
  /// Returns whether the pages changed.
  [[nodiscard]] Result<bool> Update(std::span<const std::string> rel_paths);

  /// The pages, sorted by rel_path.
  [[nodiscard]] std::vector<Page> Pages() const;
  /// Warnings of the last call (a page that could not be read is listed, and named here). Cleared per call.
  [[nodiscard]] const std::vector<std::string>& Warnings() const { return warnings_; }

 private:
  Result<bool> Apply(const SiteMap& site, std::span<const std::string> scope, bool everything);

  std::filesystem::path source_;
  WalkOptions filters_;
  std::string output_rel_;
  std::vector<Page> pages_;  ///< Sorted by rel_path.
  std::vector<std::string> warnings_;
};

/// True when `rel_path` is a file sitemap.xml output at `output_rel` writes: the output itself, or a part
/// `<stem>-N<ext>` next to it ("sitemap.xml" -> "sitemap-1.xml", "sitemap-2.xml", ...). Such files are never
/// listed as pages.
[[nodiscard]] bool IsSitemapFile(std::string_view rel_path, std::string_view output_rel);

struct SitemapOptions {
  std::string base_url;                   ///< From NormalizeBaseUrl (ends in '/').
  std::string index_document = "index.html";  ///< cdn.index_document: "dir/index.html" is listed as "BASE/dir/".
  /// Where the output is, relative to SOURCE ('/'-separated) when it is inside SOURCE; else its file name. The
  /// sitemap index lists the parts as BASE + this path's folder + part name.
  std::string output_rel = "sitemap.xml";
  std::size_t max_urls = 50'000;        ///< Per file (the protocol's limit).
  std::size_t max_bytes = 52'428'800;   ///< Per file, uncompressed (the protocol's 50 MB).
};

/// One file to write.
struct SitemapDocument {
  std::string name;     ///< File name, next to the output ("sitemap.xml", "sitemap-1.xml").
  std::string content;  ///< The XML, UTF-8.
  std::size_t urls = 0;  ///< <url> (or, in an index, <sitemap>) entries.
};

struct Sitemap {
  /// documents[0] goes to the output path: the <urlset>, or, when split, the <sitemapindex> of the parts
  /// that follow it.
  std::vector<SitemapDocument> documents;
  std::size_t urls = 0;  ///< Pages listed.
  bool split = false;
  std::vector<std::string> warnings;  ///< URLs left out (longer than the protocol's 2,048 characters).
};

/// Builds sitemap.xml for `pages` (noindex ones left out): one <url> per page with its canonical URL
/// (CanonicalUrlPath of its key, percent-encoded, under base_url, XML-escaped) and <lastmod> (the mtime, W3cDatetime),
/// sorted by URL. Past max_urls or max_bytes, split into parts `<stem>-1<ext>`, ... with a <sitemapindex> as
/// documents[0] whose <lastmod> per part is its newest page. Written with libxml2's xmlTextWriter.
[[nodiscard]] Result<Sitemap> BuildSitemap(std::span<const Page> pages, const SitemapOptions& options);

/// What WriteSitemap changed.
struct WriteOutcome {
  std::vector<std::filesystem::path> written;  ///< Files whose content changed (or that were new).
  std::vector<std::filesystem::path> removed;  ///< Parts of an earlier, larger sitemap that no longer belong.
};

/// Writes `sitemap` to `output` (documents[0]) and its folder (the parts). A file whose content is already the
/// same is left alone (no write, same mtime); the others are written to a dot-named temporary file in the same
/// folder and renamed over the old one, so readers never see half a file. Parts `<stem>-N<ext>` left from an
/// earlier sitemap with more parts are removed (only files that are sitemaps). Fails with kIo naming the path.
[[nodiscard]] Result<WriteOutcome> WriteSitemap(const Sitemap& sitemap, const std::filesystem::path& output);

}  // namespace sitesync::sitemap
