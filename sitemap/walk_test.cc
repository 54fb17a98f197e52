#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "sitemap/sitemap.h"

namespace sitesync::sitemap {
namespace {

namespace fs = std::filesystem;

/// A real folder under the temp dir, removed (without following links) at the end.
class TempTree {
 public:
  TempTree() {
    std::string templ = (fs::temp_directory_path() / "sitemap_walk_test.XXXXXX").string();
    if (mkdtemp(templ.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed";
    root_ = templ;
  }
  ~TempTree() {
    std::error_code ec;
    fs::permissions(root_, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(root_, ec);
  }
  TempTree(const TempTree&) = delete;
  TempTree& operator=(const TempTree&) = delete;

  const fs::path& root() const { return root_; }
  fs::path Canonical() const { return fs::canonical(root_); }

  void File(const std::string& rel, std::string_view content = "x") const {
    const fs::path path = root_ / rel;
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << content;
  }
  void Dir(const std::string& rel) const { fs::create_directories(root_ / rel); }
  void Link(const std::string& rel, const std::string& target) const {
    const fs::path path = root_ / rel;
    fs::create_directories(path.parent_path());
    fs::create_symlink(target, path);
  }

 private:
  fs::path root_;
};

std::vector<std::string> Paths(const SiteMap& map) {
  std::vector<std::string> paths;
  for (const LocalFile& file : map.files) paths.push_back(file.rel_path);
  return paths;
}

const LocalFile* Find(const SiteMap& map, std::string_view rel_path) {
  for (const LocalFile& file : map.files) {
    if (file.rel_path == rel_path) return &file;
  }
  return nullptr;
}

/// The one warning that mentions `needle`, or "" (with a failure) when there is none.
std::string WarningAbout(const SiteMap& map, std::string_view needle) {
  for (const std::string& warning : map.warnings) {
    if (warning.find(needle) != std::string::npos) return warning;
  }
  ADD_FAILURE() << "no warning mentions " << needle;
  return "";
}

SiteMap WalkOk(const fs::path& source, const WalkOptions& options = {}) {
  Result<SiteMap> map = Walk(source, options);
  EXPECT_TRUE(map.has_value()) << (map ? "" : map.error().message);
  return map ? *std::move(map) : SiteMap{};
}

using Strings = std::vector<std::string>;

TEST(Walk, MissingSourceFailsWithInputError) {
  TempTree tree;
  const fs::path missing = tree.root() / "public";
  const Result<SiteMap> map = Walk(missing, {});
  ASSERT_FALSE(map.has_value());
  EXPECT_EQ(map.error().code, ErrorCode::kInput);
  EXPECT_NE(map.error().message.find(missing.string()), std::string::npos) << map.error().message;
  EXPECT_NE(map.error().message.find("does not exist"), std::string::npos) << map.error().message;
}

TEST(Walk, FileAsSourceFailsWithInputError) {
  TempTree tree;
  tree.File("index.html");
  const Result<SiteMap> map = Walk(tree.root() / "index.html", {});
  ASSERT_FALSE(map.has_value());
  EXPECT_EQ(map.error().code, ErrorCode::kInput);
  EXPECT_NE(map.error().message.find("is not a directory"), std::string::npos) << map.error().message;
  EXPECT_NE(map.error().message.find("index.html"), std::string::npos) << map.error().message;
}

TEST(Walk, EmptySourceGivesEmptyMap) {
  TempTree tree;
  const SiteMap map = WalkOk(tree.root());
  EXPECT_TRUE(map.files.empty());
  EXPECT_TRUE(map.warnings.empty());
}

TEST(Walk, FilesSortedByBytesWithFields) {
  TempTree tree;
  tree.File("b.txt", "hello");
  tree.File("a/c.css", "body{}");
  tree.File("a.b/x", "");
  tree.File("a/b.html", "<p>");
  tree.File("index.html", "<html></html>");
  tree.File("Z.png", "png");
  const timespec times[2] = {{1700000000, 123456789}, {1700000000, 123456789}};
  ASSERT_EQ(utimensat(AT_FDCWD, (tree.root() / "b.txt").c_str(), times, 0), 0);

  const SiteMap map = WalkOk(tree.root());
  // '.' (0x2E) sorts before '/' (0x2F), and 'Z' before 'a': byte order of the whole path.
  EXPECT_EQ(Paths(map), (Strings{"Z.png", "a.b/x", "a/b.html", "a/c.css", "b.txt", "index.html"}));
  EXPECT_TRUE(map.warnings.empty());

  const LocalFile* b = Find(map, "b.txt");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->size, 5u);
  EXPECT_EQ(b->mtime_ns, 1700000000123456789);
  EXPECT_EQ(b->AbsPath(), (tree.Canonical() / "b.txt").string());
  EXPECT_EQ(b->content_type, "text/plain; charset=utf-8");
  EXPECT_EQ(b->cache_control, "");

  const LocalFile* css = Find(map, "a/c.css");
  ASSERT_NE(css, nullptr);
  EXPECT_EQ(css->size, 6u);
  EXPECT_EQ(css->AbsPath(), (tree.Canonical() / "a" / "c.css").string());
  EXPECT_EQ(css->content_type, "text/css; charset=utf-8");
  EXPECT_EQ(Find(map, "a.b/x")->content_type, "application/octet-stream");
  EXPECT_EQ(Find(map, "a.b/x")->size, 0u);
}

TEST(Walk, DotfilesSkippedButWellKnownKept) {
  TempTree tree;
  tree.File(".env", "SECRET=1");
  tree.File(".git/config");
  tree.File(".git/objects/ab/cdef");
  tree.File("a/.DS_Store");
  tree.File("a/.hidden/page.html");
  tree.File(".well-known/security.txt");
  tree.File(".well-known/acme-challenge/token");
  tree.File(".well-known/.secret");
  tree.File("sub/.well-known/assetlinks.json");
  tree.File("ok.html");
  tree.File("a/visible.html");

  const SiteMap map = WalkOk(tree.root());
  EXPECT_EQ(Paths(map), (Strings{".well-known/acme-challenge/token", ".well-known/security.txt", "a/visible.html",
                                 "ok.html", "sub/.well-known/assetlinks.json"}));
  EXPECT_TRUE(map.warnings.empty());
}

TEST(Walk, IncludeBringsBackDotfiles) {
  TempTree tree;
  tree.File(".htaccess");
  tree.File("blog/.htaccess");
  tree.File(".config/keep.txt");
  tree.File(".config/other.txt");
  tree.File(".env");
  tree.File("index.html");

  WalkOptions options;
  options.include = {".htaccess", "/.config/keep.txt"};
  const SiteMap map = WalkOk(tree.root(), options);
  EXPECT_EQ(Paths(map), (Strings{".config/keep.txt", ".htaccess", "blog/.htaccess", "index.html"}));
}

TEST(Walk, ExcludesWithIncludeOverride) {
  TempTree tree;
  tree.File("drafts/a.html");
  tree.File("drafts/keep.html");
  tree.File("drafts/deep/b.html");
  tree.File("blog/drafts/c.html");
  tree.File("blog/drafts.html");  // Not a folder: "drafts/" does not match it.
  tree.File("art/x.psd");
  tree.File("y.psd");
  tree.File("tmp/z");
  tree.File("blog/tmp/w");
  tree.File("index.html");

  WalkOptions options;
  options.exclude = {"drafts/", "*.psd", "/tmp"};
  options.include = {"/drafts/keep.html"};
  const SiteMap map = WalkOk(tree.root(), options);
  EXPECT_EQ(Paths(map), (Strings{"blog/drafts.html", "blog/tmp/w", "drafts/keep.html", "index.html"}));

  options.include.clear();  // Now excluded folders are pruned; the result must be the same minus the include.
  const SiteMap pruned = WalkOk(tree.root(), options);
  EXPECT_EQ(Paths(pruned), (Strings{"blog/drafts.html", "blog/tmp/w", "index.html"}));
}

TEST(Walk, ExcludedOrHiddenEntriesNeverWarn) {
  TempTree tree;
  tree.File("index.html");
  tree.Link("node_modules/.bin/broken", "nowhere");
  tree.Link(".cache/out", "/");
  tree.Link("excluded-link", "nowhere");
  ASSERT_EQ(mkfifo((tree.root() / ".fifo").c_str(), 0600), 0);

  WalkOptions options;
  options.exclude = {"node_modules", "excluded-link"};
  EXPECT_EQ(Paths(WalkOk(tree.root(), options)), (Strings{"index.html"}));
  EXPECT_TRUE(WalkOk(tree.root(), options).warnings.empty());

  options.include = {"*.html"};  // Not pruned now; the skipped entries must still stay silent.
  const SiteMap map = WalkOk(tree.root(), options);
  EXPECT_EQ(Paths(map), (Strings{"index.html"}));
  EXPECT_TRUE(map.warnings.empty()) << map.warnings.front();
}

TEST(Walk, SymlinksInsideAreFollowed) {
  TempTree tree;
  tree.File("real/page.html", "<p>page</p>");
  tree.File("posts/2024/a.html", "a");
  tree.File("posts/2024/img/b.png", "bb");
  tree.Link("link.html", "real/page.html");
  tree.Link("chain.html", "link.html");
  tree.Link("latest", "posts/2024");
  tree.Link("abs.html", (tree.Canonical() / "real" / "page.html").string());
  // Leaves SOURCE and comes back in: judged by the resolved target.
  tree.Link("roundabout.html", "../" + tree.root().filename().string() + "/real/page.html");

  const SiteMap map = WalkOk(tree.root());
  EXPECT_EQ(Paths(map), (Strings{"abs.html", "chain.html", "latest/a.html", "latest/img/b.png", "link.html",
                                 "posts/2024/a.html", "posts/2024/img/b.png", "real/page.html",
                                 "roundabout.html"}));
  EXPECT_TRUE(map.warnings.empty()) << map.warnings.front();

  const LocalFile* link = Find(map, "link.html");
  ASSERT_NE(link, nullptr);
  EXPECT_EQ(link->AbsPath(), (tree.Canonical() / "link.html").string());  // Read through the link.
  EXPECT_EQ(link->size, 11u);                                  // The target's size, not the link's.
  EXPECT_EQ(link->content_type, "text/html; charset=utf-8");
  const LocalFile* png = Find(map, "latest/img/b.png");
  ASSERT_NE(png, nullptr);
  EXPECT_EQ(png->AbsPath(), (tree.Canonical() / "latest" / "img" / "b.png").string());
  EXPECT_EQ(png->size, 2u);
}

TEST(Walk, SymlinksOutsideOrBrokenAreSkippedWithWarning) {
  TempTree tree;
  TempTree outside;
  outside.File("secret.txt");
  tree.File("index.html");
  tree.Link("out-dir", outside.root().string());
  tree.Link("out-file.txt", (outside.root() / "secret.txt").string());
  tree.Link("up", "..");
  tree.Link("broken.html", "missing.html");
  tree.Link("loop1", "loop2");
  tree.Link("loop2", "loop1");

  const SiteMap map = WalkOk(tree.root());
  EXPECT_EQ(Paths(map), (Strings{"index.html"}));
  EXPECT_EQ(map.warnings.size(), 6u);
  EXPECT_NE(WarningAbout(map, "'out-dir'").find("points outside SOURCE"), std::string::npos);
  EXPECT_NE(WarningAbout(map, "'out-file.txt'").find("points outside SOURCE"), std::string::npos);
  EXPECT_NE(WarningAbout(map, "'up'").find("points outside SOURCE"), std::string::npos);
  const std::string broken = WarningAbout(map, "'broken.html'");
  EXPECT_NE(broken.find("broken link"), std::string::npos) << broken;
  EXPECT_NE(broken.find("missing.html"), std::string::npos) << broken;
  EXPECT_NE(WarningAbout(map, "'loop1'").find("broken link"), std::string::npos);
  EXPECT_NE(WarningAbout(map, "'loop2'").find("broken link"), std::string::npos);
}

TEST(Walk, FolderLoopsAreSkippedWithWarning) {
  TempTree tree;
  tree.File("a/b/page.html");
  tree.Link("a/b/up", "../..");  // Back to SOURCE.
  tree.Link("a/b/parent", "..");  // Back to a.
  tree.Link("self", ".");

  const SiteMap map = WalkOk(tree.root());
  EXPECT_EQ(Paths(map), (Strings{"a/b/page.html"}));
  ASSERT_EQ(map.warnings.size(), 3u);
  const std::string up = WarningAbout(map, "'a/b/up'");
  EXPECT_NE(up.find("loop"), std::string::npos) << up;
  EXPECT_NE(up.find("SOURCE"), std::string::npos) << up;
  const std::string parent = WarningAbout(map, "'a/b/parent'");
  EXPECT_NE(parent.find("loop"), std::string::npos) << parent;
  EXPECT_NE(parent.find("'a'"), std::string::npos) << parent;
  EXPECT_NE(WarningAbout(map, "'self'").find("loop"), std::string::npos);
}

TEST(Walk, SameFolderThroughTwoLinksIsNotALoop) {
  TempTree tree;
  tree.File("shared/x.css");
  tree.Link("one/shared", "../shared");
  tree.Link("two/shared", "../shared");

  const SiteMap map = WalkOk(tree.root());
  EXPECT_EQ(Paths(map), (Strings{"one/shared/x.css", "shared/x.css", "two/shared/x.css"}));
  EXPECT_TRUE(map.warnings.empty());
}

TEST(Walk, Utf8SpacesAndSpecialCharactersKeptAsBytes) {
  TempTree tree;
  tree.File("café/naïve file.html");
  tree.File("日本語.txt");
  tree.File("a+b.txt");
  tree.File("100%.txt");
  tree.File("with space/~tilde*star.js");
  tree.File("bad\xff" "byte.txt");

  const SiteMap map = WalkOk(tree.root());
  EXPECT_EQ(Paths(map), (Strings{"100%.txt", "a+b.txt", "bad\xff" "byte.txt", "café/naïve file.html",
                                 "with space/~tilde*star.js", "日本語.txt"}));
  EXPECT_EQ(Find(map, "café/naïve file.html")->content_type, "text/html; charset=utf-8");
  EXPECT_EQ(Find(map, "日本語.txt")->AbsPath(), (tree.Canonical() / "日本語.txt").string());
}

TEST(Walk, HeaderRulesLastMatchWinsPerField) {
  TempTree tree;
  tree.File("index.html");
  tree.File("assets/app.js");
  tree.File("assets/page.html");
  tree.File("data/x.json");
  tree.File("robots.txt");

  WalkOptions options;
  const auto rule = [](std::string match, std::optional<std::string> cache_control,
                        std::optional<std::string> content_type) {
    HeaderRule r;
    r.match = std::move(match);
    r.cache_control = std::move(cache_control);
    r.content_type = std::move(content_type);
    return r;
  };
  options.headers = {
      rule("*", "public, max-age=300", std::nullopt),
      rule("*.html", "no-cache", std::nullopt),
      rule("/assets/**", "public, max-age=31536000, immutable", std::nullopt),
      rule("data/*.json", std::nullopt, "application/vnd.custom+json"),  // Leaves cache_control as it was.
      rule("robots.txt", std::nullopt, "text/plain"),
      rule("robots.txt", "max-age=60", std::nullopt),  // Leaves the content_type of the rule before.
  };
  const SiteMap map = WalkOk(tree.root(), options);
  ASSERT_EQ(map.files.size(), 5u);
  EXPECT_EQ(Find(map, "index.html")->cache_control, "no-cache");
  EXPECT_EQ(Find(map, "index.html")->content_type, "text/html; charset=utf-8");
  EXPECT_EQ(Find(map, "assets/app.js")->cache_control, "public, max-age=31536000, immutable");
  EXPECT_EQ(Find(map, "assets/page.html")->cache_control, "public, max-age=31536000, immutable");
  EXPECT_EQ(Find(map, "data/x.json")->cache_control, "public, max-age=300");
  EXPECT_EQ(Find(map, "data/x.json")->content_type, "application/vnd.custom+json");
  EXPECT_EQ(Find(map, "robots.txt")->cache_control, "max-age=60");
  EXPECT_EQ(Find(map, "robots.txt")->content_type, "text/plain");
}

// Issue 14: the other header fields, per field the last matching rule that sets it; sse and kms_key_id as one;
// metadata replaced whole. Files with the same headers share one interned ExtraHeaders; files no extra rule
// reaches have none.
TEST(Walk, ExtraHeaderFieldsLastMatchWinsPerFieldAndAreShared) {
  TempTree tree;
  tree.File("index.html");
  tree.File("about.html");
  tree.File("docs/guide.pdf");
  tree.File("docs/secret.pdf");
  tree.File("old/index.html");
  tree.File("app.js");

  WalkOptions options;
  HeaderRule html;
  html.match = "*.html";
  html.content_language = "en";
  html.metadata = std::vector<std::pair<std::string, std::string>>{{"team", "web"}, {"a", "1"}};
  HeaderRule pdf;
  pdf.match = "docs/*.pdf";
  pdf.content_disposition = "attachment";
  pdf.storage_class = "STANDARD_IA";
  pdf.sse = "aws:kms";
  pdf.kms_key_id = "key-1";
  pdf.acl = "public-read";
  HeaderRule secret;
  secret.match = "docs/secret.pdf";
  secret.sse = "AES256";  // drops the KMS key of the rule before
  secret.acl = "private";
  HeaderRule old;
  old.match = "old/**";
  old.website_redirect = "/new/";
  old.metadata = std::vector<std::pair<std::string, std::string>>{};  // replaces, not merges
  old.content_encoding = "identity";
  HeaderRule cache_only;  // sets nothing of ExtraHeaders
  cache_only.match = "*.js";
  cache_only.cache_control = "max-age=60";
  options.headers = {html, pdf, secret, old, cache_only};
  const SiteMap map = WalkOk(tree.root(), options);
  ASSERT_EQ(map.files.size(), 6u);

  const ExtraHeaders* index = Find(map, "index.html")->extra;
  ASSERT_NE(index, nullptr);
  EXPECT_EQ(index->content_language, "en");
  EXPECT_EQ(index->metadata, (std::vector<std::pair<std::string, std::string>>{{"a", "1"}, {"team", "web"}}));
  EXPECT_EQ(Find(map, "about.html")->extra, index);  // the same set: one copy

  const ExtraHeaders* guide = Find(map, "docs/guide.pdf")->extra;
  ASSERT_NE(guide, nullptr);
  EXPECT_EQ(guide->content_disposition, "attachment");
  EXPECT_EQ(guide->storage_class, "STANDARD_IA");
  EXPECT_EQ(guide->sse, "aws:kms");
  EXPECT_EQ(guide->kms_key_id, "key-1");
  EXPECT_EQ(guide->acl, "public-read");
  EXPECT_TRUE(guide->content_language.empty());

  const ExtraHeaders* secret_pdf = Find(map, "docs/secret.pdf")->extra;
  ASSERT_NE(secret_pdf, nullptr);
  EXPECT_EQ(secret_pdf->sse, "AES256");
  EXPECT_EQ(secret_pdf->kms_key_id, "");
  EXPECT_EQ(secret_pdf->acl, "private");
  EXPECT_EQ(secret_pdf->storage_class, "STANDARD_IA");  // not set by the later rule: kept

  const ExtraHeaders* moved = Find(map, "old/index.html")->extra;
  ASSERT_NE(moved, nullptr);
  EXPECT_EQ(moved->website_redirect, "/new/");
  EXPECT_EQ(moved->content_language, "en");
  EXPECT_TRUE(moved->metadata.empty());
  EXPECT_EQ(moved->content_encoding, "identity");

  EXPECT_EQ(Find(map, "app.js")->extra, nullptr);
  EXPECT_EQ(Find(map, "app.js")->cache_control, "max-age=60");

  // WalkPaths (watch batches) gives the same headers as a full walk.
  const std::vector<std::string> changed = {"docs/secret.pdf", "index.html"};
  auto paths = WalkPaths(tree.root(), changed, options);
  ASSERT_TRUE(paths.has_value());
  ASSERT_EQ(paths->files.size(), 2u);
  EXPECT_EQ(paths->files[0].extra, secret_pdf);
  EXPECT_EQ(paths->files[1].extra, index);
}

TEST(InternHeaders, EqualSetsShareOneCopyFromManyThreads) {
  ExtraHeaders a;
  a.acl = "public-read";
  ExtraHeaders b = a;
  b.metadata = {{"x", "1"}};
  std::vector<const ExtraHeaders*> got(8);
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < got.size(); ++i) {
    threads.emplace_back([&, i] {
      for (int k = 0; k < 200; ++k) got[i] = InternHeaders(i % 2 == 0 ? a : b);
    });
  }
  for (std::thread& t : threads) t.join();
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i], InternHeaders(i % 2 == 0 ? a : b));
    EXPECT_EQ(*got[i], i % 2 == 0 ? a : b);
  }
  EXPECT_NE(InternHeaders(a), InternHeaders(b));
}

TEST(Walk, CompressRulesLastMatchWinsAndSizeStaysTheFiles) {
  TempTree tree;
  tree.File("index.html", "<html>home</html>");
  tree.File("a/page.html", "<p>page</p>");
  tree.File("a/raw.html", "raw");
  tree.File("css/site.css", "body{}");
  tree.File("img/logo.png", "PNG");
  tree.File("link-target.txt", "via a link");
  tree.Link("docs/linked.txt", "../link-target.txt");

  WalkOptions options;
  options.compress = {
      {"*.html", Encoding::kGzip},
      {"*.css", Encoding::kBrotli},
      {"a/**", Encoding::kBrotli},       // later rules win: a/page.html becomes br
      {"a/raw.html", Encoding::kIdentity},  // and an identity rule takes a file back out
      {"*.txt", Encoding::kGzip},
  };
  const SiteMap map = WalkOk(tree.root(), options);
  EXPECT_EQ(Find(map, "index.html")->encoding, Encoding::kGzip);
  EXPECT_EQ(Find(map, "a/page.html")->encoding, Encoding::kBrotli);
  EXPECT_EQ(Find(map, "a/raw.html")->encoding, Encoding::kIdentity);
  EXPECT_EQ(Find(map, "css/site.css")->encoding, Encoding::kBrotli);
  EXPECT_EQ(Find(map, "img/logo.png")->encoding, Encoding::kIdentity);
  ASSERT_NE(Find(map, "docs/linked.txt"), nullptr);
  EXPECT_EQ(Find(map, "docs/linked.txt")->encoding, Encoding::kGzip) << "a followed symlink is judged by its path";
  // The walk leaves sizes as on disk: sync replaces `size` with the encoded one before the diff.
  EXPECT_EQ(Find(map, "index.html")->size, 17u);
  EXPECT_EQ(Find(map, "index.html")->disk_size, 17u);

  // WalkPaths (watch batches) judges a file the same way.
  const std::vector<std::string> some = {"a/page.html", "css"};
  auto part = WalkPaths(tree.root(), some, options);
  ASSERT_TRUE(part.has_value()) << part.error().message;
  EXPECT_EQ(Find(*part, "a/page.html")->encoding, Encoding::kBrotli);
  EXPECT_EQ(Find(*part, "css/site.css")->encoding, Encoding::kBrotli);

  // No rules: every file is identity.
  const SiteMap plain = WalkOk(tree.root(), WalkOptions{});
  for (const LocalFile& f : plain.files) EXPECT_EQ(f.encoding, Encoding::kIdentity) << f.rel_path;
}

TEST(Walk, SpecialFilesWarn) {
  TempTree tree;
  tree.File("index.html");
  ASSERT_EQ(mkfifo((tree.root() / "pipe").c_str(), 0600), 0);
  const SiteMap map = WalkOk(tree.root());
  EXPECT_EQ(Paths(map), (Strings{"index.html"}));
  EXPECT_NE(WarningAbout(map, "'pipe'").find("not a regular file"), std::string::npos);
}

TEST(Walk, UnreadableFolderWarnsAndContinues) {
  if (geteuid() == 0) GTEST_SKIP() << "root reads every folder";
  TempTree tree;
  tree.File("index.html");
  tree.File("locked/a.html");
  ASSERT_EQ(chmod((tree.root() / "locked").c_str(), 0), 0);
  const SiteMap map = WalkOk(tree.root());
  chmod((tree.root() / "locked").c_str(), 0700);
  EXPECT_EQ(Paths(map), (Strings{"index.html"}));
  EXPECT_NE(WarningAbout(map, "'locked'").find("cannot read"), std::string::npos);
  EXPECT_EQ(map.incomplete_folders, (Strings{"locked"}));
}

TEST(Walk, UnreadableSourceFails) {
  if (geteuid() == 0) GTEST_SKIP() << "root reads every folder";
  TempTree tree;
  tree.File("site/index.html");
  ASSERT_EQ(chmod((tree.root() / "site").c_str(), 0), 0);
  const Result<SiteMap> map = Walk(tree.root() / "site", {});
  chmod((tree.root() / "site").c_str(), 0700);
  // Not an empty site: that would make --delete empty the bucket.
  ASSERT_FALSE(map.has_value());
  EXPECT_EQ(map.error().code, ErrorCode::kInput);
  EXPECT_NE(map.error().message.find("cannot read"), std::string::npos) << map.error().message;
}

TEST(Walk, SourceMayBeASymlinkOrRelative) {
  TempTree tree;
  tree.File("site/index.html");
  tree.Link("public", "site");
  const SiteMap map = WalkOk(tree.root() / "public");
  EXPECT_EQ(Paths(map), (Strings{"index.html"}));
  EXPECT_EQ(map.files.front().AbsPath(), (tree.Canonical() / "site" / "index.html").string());

  const fs::path previous = fs::current_path();
  fs::current_path(tree.root());
  const SiteMap relative = WalkOk("site");
  fs::current_path(previous);
  EXPECT_EQ(Paths(relative), (Strings{"index.html"}));
  EXPECT_TRUE(std::filesystem::path(relative.files.front().AbsPath()).is_absolute());
}

// Walk() decides folder by folder (and prunes); Excluded() decides per path, for remote keys. They must agree,
// or sync would delete remote objects that Walk skipped (or upload what Excluded protects).
TEST(Walk, AgreesWithExcludedOnEveryFile) {
  TempTree tree;
  const Strings folders = {"a", ".h", ".well-known", "drafts", "b c"};
  const Strings files = {"x.html", "y.psd", ".h", "a", "drafts", ".well-known"};
  std::vector<std::string> wanted;
  std::mt19937 rng(99);
  for (int i = 0; i < 400; ++i) {
    std::string rel;
    const int depth = static_cast<int>(rng() % 4);
    for (int d = 0; d < depth; ++d) rel += folders[rng() % folders.size()] + "/";
    wanted.push_back(rel + files[rng() % files.size()]);
  }
  // Deepest first, so that a file never takes the name of a folder needed later.
  std::ranges::sort(wanted, std::ranges::greater{},
                    [](const std::string& rel) { return std::ranges::count(rel, '/'); });
  std::vector<std::string> all;  // Every regular file in the tree.
  for (const std::string& rel : wanted) {
    std::error_code ec;
    fs::create_directories((tree.root() / rel).parent_path(), ec);
    if (ec || fs::exists(tree.root() / rel)) continue;  // A folder of that name already, or under a file.
    tree.File(rel);
    all.push_back(rel);
  }
  std::ranges::sort(all);
  ASSERT_GT(all.size(), 100u);

  const auto options = [](Strings exclude, Strings include) {
    WalkOptions o;
    o.exclude = std::move(exclude);
    o.include = std::move(include);
    return o;
  };
  const std::vector<WalkOptions> cases = {
      options({}, {}),
      options({"drafts/"}, {}),
      options({"drafts"}, {"x.html"}),
      options({"/a/**", "*.psd"}, {".h"}),
      options({"a/*"}, {"/.h/**/*.html"}),
      options({"*"}, {"y.psd"}),
      options({"**/a/"}, {}),
      options({}, {".well-known/.h"}),
      options({"b c", "/.well-known"}, {"drafts/*"}),
  };
  for (std::size_t c = 0; c < cases.size(); ++c) {
    std::vector<std::string> expected;
    for (const std::string& rel : all) {
      if (!Excluded(rel, cases[c])) expected.push_back(rel);
    }
    const SiteMap map = WalkOk(tree.root(), cases[c]);
    EXPECT_EQ(Paths(map), expected) << "case " << c;
    EXPECT_TRUE(map.warnings.empty()) << "case " << c;
  }
}

TEST(Walk, TenThousandFilesWalkQuickly) {
  TempTree tree;
  for (int d = 0; d < 50; ++d) {
    const std::string dir = "d" + std::to_string(d) + "/sub";
    tree.Dir(dir);
    for (int f = 0; f < 200; ++f) {
      const std::string path = (tree.root() / dir / ("f" + std::to_string(f) + ".html")).string();
      const int fd = open(path.c_str(), O_CREAT | O_WRONLY, 0644);
      ASSERT_GE(fd, 0);
      close(fd);
    }
  }
  WalkOptions options;
  options.exclude = {"*.psd", "drafts/"};
  HeaderRule no_cache;
  no_cache.match = "*.html";
  no_cache.cache_control = "no-cache";
  options.headers = {no_cache};
  const auto start = std::chrono::steady_clock::now();
  const SiteMap map = WalkOk(tree.root(), options);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(map.files.size(), 10'000u);
  // About 30 ms in a release build; the bound leaves room for debug and sanitizer builds on a loaded machine,
  // while a walk that does per-file heavy work (or anything quadratic) would still blow it.
  EXPECT_LT(elapsed, std::chrono::seconds(5));
  EXPECT_EQ(map.files.front().cache_control, "no-cache");
}

}  // namespace
}  // namespace sitesync::sitemap

namespace sitesync::sitemap {
namespace {

// WalkPaths must judge a path exactly as the full walk does: the files it returns for a set of paths are the
// full walk's files at or under those paths.
TEST(WalkPaths, AgreesWithTheFullWalkOnEverySubset) {
  TempTree tree;
  tree.File("index.html");
  tree.File("blog/a/index.html");
  tree.File("blog/b/index.html");
  tree.File("blog/.draft.html");
  tree.File(".git/config");
  tree.File(".well-known/security.txt");
  tree.File("drafts/x.html");
  tree.File("css/site.css");
  tree.File("css/site.css.map");
  tree.Link("latest", "blog/a");
  tree.Link("outside", "/etc");
  tree.Link("css/alias.css", "site.css");
  WalkOptions options;
  options.exclude = {"drafts/", "*.map"};
  const auto full = Walk(tree.root(), options);
  ASSERT_TRUE(full.has_value());
  const std::vector<std::vector<std::string>> subsets = {
      {"index.html"}, {"blog"}, {"blog/a"}, {"blog/.draft.html"}, {".git/config"}, {".well-known"},
      {"drafts/x.html"}, {"css"}, {"css/site.css.map"}, {"latest"}, {"latest/index.html"}, {"outside"},
      {"gone.html", "blog/zzz"}, {"blog", "blog/a/index.html", "css/alias.css"}, {"outside/passwd"}};
  for (const auto& subset : subsets) {
    auto part = WalkPaths(tree.root(), subset, options);
    ASSERT_TRUE(part.has_value());
    std::vector<std::string> expected;
    for (const LocalFile& f : full->files) {
      for (const std::string& p : subset) {
        if (f.rel_path == p || f.rel_path.starts_with(p + "/")) {
          expected.push_back(f.rel_path);
          break;
        }
      }
    }
    EXPECT_EQ(Paths(*part), expected) << subset.front();
  }
}

// -- IsTempFile: one rule for sync and watch -------------------------------------------------------------------------------------------------

TEST(IsTempFile, Table) {
  struct Case {
    const char* name;
    bool temp;
  };
  const Case cases[] = {
      {".index.html.swp", true},  // vim swap files
      {".index.html.swx", true},
      {"index.html.swp", true},
      {"notes.swx", true},
      {"index.html~", true},  // backups
      {"~", true},
      {".#index.html", true},  // emacs lock link
      {"4913", true},          // vim's probe
      {"build.tmp", true},
      {"x.tmp", true},
      {".DS_Store", true},  // dotfiles
      {".htaccess", true},
      {".well-known", false},  // As the walk keeps it (RFC 8615), file or folder.
      {"index.html", false},
      {"4913.html", false},
      {"49130", false},
      {"swp", false},
      {"a.swpx", false},
      {"a.tmpl", false},
      {"tmp", false},
      {"~index.html", false},
      {"a~b", false},
      {"#index.html#", false},  // emacs auto-save: not in the list (published only if left behind)
      {"index.html.", false},
      {"", false},
      {"caf\xc3\xa9.swp", true},
      {"caf\xc3\xa9.html", false},
      {"sub/.index.html.swp", true},  // A path: its last segment decides.
      {".hidden/index.html", false},
  };
  for (const Case& c : cases) EXPECT_EQ(IsTempFile(c.name), c.temp) << "'" << c.name << "'";
}

TEST(IsTempFile, SyncSkipsWhatWatchIgnores) {
  // The same names watch ignores (watcher/ uses sitemap::IsTempFile) are left out by the walk and by Excluded(),
  // at any depth, unless an include glob asks for them; a folder with such a name is still walked.
  TempTree tree;
  for (const char* name : {"index.html.swp", ".index.html.swx", "index.html~", "4913", "build.tmp", ".#a.html"}) {
    tree.File(name);
    tree.File(std::string("sub/") + name);
    EXPECT_TRUE(Excluded(name, {})) << name;
    EXPECT_TRUE(Excluded(std::string("sub/") + name, {})) << name;
  }
  tree.File("index.html");
  tree.File("old.tmp/page.html");  // A folder named like a temp file is a folder.
  EXPECT_FALSE(Excluded("old.tmp/page.html", {}));
  EXPECT_FALSE(Excluded("old.tmp/", {}));
  EXPECT_EQ(Paths(WalkOk(tree.root())), (Strings{"index.html", "old.tmp/page.html"}));

  WalkOptions keep_tmp;
  keep_tmp.include = {"*.tmp"};
  EXPECT_FALSE(Excluded("sub/build.tmp", keep_tmp));
  EXPECT_EQ(Paths(WalkOk(tree.root(), keep_tmp)),
            (Strings{"build.tmp", "index.html", "old.tmp/page.html", "sub/build.tmp"}));
}

// sitesync's own files: the config in use inside SOURCE (by path and by identity), a copy of it at the root
// (Jekyll's _site/sitesync.yaml), and its state and cache folders.
TEST(OwnFiles, FoundByPathInsideSourceAndByIdentity) {
  TempTree t;
  t.File("site/index.html");
  t.File("site/conf/deploy.yaml", "source: .");
  t.File("outside/sitesync.yaml", "source: ../site");
  t.Dir("site/state");
  const fs::path paths[] = {t.root() / "site/conf/deploy.yaml", t.root() / "outside/sitesync.yaml",
                            t.root() / "site/state", t.root() / "site/cache/not-yet", t.root() / "missing.yaml"};
  const std::string names[] = {"sitesync.yaml", "a/b", ""};
  const OwnFiles own = FindOwnFiles(t.root() / "site", paths, names);
  // Inside SOURCE by path (a missing folder by where it would be); the root name; nothing outside.
  EXPECT_EQ(own.rel_paths, (std::vector<std::string>{"conf/deploy.yaml", "state", "cache/not-yet", "sitesync.yaml"}));
  EXPECT_EQ(own.ids.size(), 3U) << "the three that exist";
}

TEST(OwnFiles, NeverWalkedNorUploadedWhateverTheGlobsSay) {
  TempTree t;
  t.File("index.html");
  t.File("sitesync.yaml", "a copy the generator made");   // the root name rule
  t.File("blog/sitesync.yaml", "a page's own file");       // NOT the config: a normal file
  t.File("conf/deploy.yaml", "the config in use");
  t.File("state/ID.json", "{}");
  t.File("state/sub/x.json", "{}");
  t.Dir("elsewhere");
  ASSERT_EQ(link((t.root() / "conf/deploy.yaml").c_str(), (t.root() / "hardlink.yaml").c_str()), 0);
  t.Link("symlink.yaml", "conf/deploy.yaml");
  t.Link("state-link", "state");
  const fs::path paths[] = {t.root() / "conf/deploy.yaml", t.root() / "state"};
  const std::string names[] = {"sitesync.yaml"};
  WalkOptions options;
  options.own = FindOwnFiles(t.root(), paths, names);
  options.include = {"**"};  // an include glob never brings them back
  auto map = Walk(t.root(), options);
  ASSERT_TRUE(map) << map.error().message;
  EXPECT_EQ(Paths(*map), (std::vector<std::string>{"blog/sitesync.yaml", "index.html"}));
  EXPECT_TRUE(map->warnings.empty());
  // The watch's per-path walk says the same.
  const std::vector<std::string> asked = {"sitesync.yaml", "conf/deploy.yaml", "conf", "hardlink.yaml",
                                          "symlink.yaml",  "state/ID.json",    "state-link", "blog/sitesync.yaml"};
  auto some = WalkPaths(t.root(), asked, options);
  ASSERT_TRUE(some) << some.error().message;
  EXPECT_EQ(Paths(*some), (std::vector<std::string>{"blog/sitesync.yaml"}));
  // Remote keys: excluded (never uploaded, never deleted), and only these.
  EXPECT_TRUE(Excluded("sitesync.yaml", options));
  EXPECT_TRUE(Excluded("conf/deploy.yaml", options));
  EXPECT_TRUE(Excluded("state/sub/x.json", options));
  EXPECT_TRUE(Excluded("state/", options));
  EXPECT_FALSE(Excluded("blog/sitesync.yaml", options));
  EXPECT_FALSE(Excluded("state2/x.json", options));
  EXPECT_FALSE(Excluded("conf/deploy.yaml.bak", options));
}

TEST(OwnFiles, SourceItselfIsNeverSkipped) {
  // An absurd setup (the state folder is SOURCE) must not give an empty walk: --delete would empty the bucket.
  TempTree t;
  t.File("index.html");
  const fs::path paths[] = {t.root()};
  WalkOptions options;
  options.own = FindOwnFiles(t.root(), paths, {});
  EXPECT_TRUE(options.own.rel_paths.empty());
  auto map = Walk(t.root(), options);
  ASSERT_TRUE(map) << map.error().message;
  EXPECT_EQ(Paths(*map), (std::vector<std::string>{"index.html"}));
}

}  // namespace
}  // namespace sitesync::sitemap
