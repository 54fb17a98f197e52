// Clean URLs (SiteKey, the walk's keys, sitemap.xml) and redirects (the _redirects parser, RedirectFiles).
#include <gtest/gtest.h>

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <vector>

#include "sitemap/sitemap.h"

namespace sitesync::sitemap {
namespace {

namespace fs = std::filesystem;

class Tree {
 public:
  Tree() {
    std::string templ = (fs::temp_directory_path() / "sitemap_redirects_test.XXXXXX").string();
    if (mkdtemp(templ.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed";
    root_ = templ;
  }
  ~Tree() {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  Tree(const Tree&) = delete;
  Tree& operator=(const Tree&) = delete;
  const fs::path& root() const { return root_; }
  void File(const std::string& rel, const std::string& content = "x") const {
    fs::create_directories((root_ / rel).parent_path());
    std::ofstream(root_ / rel, std::ios::binary) << content;
  }

 private:
  fs::path root_;
};

std::vector<std::pair<std::string, std::string>> Keys(const SiteMap& map) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const LocalFile& f : map.files) out.emplace_back(f.rel_path, std::string(f.Key()));
  return out;
}

TEST(SiteKey, Table) {
  struct Case {
    const char* rel;
    bool clean;
    const char* index;
    const char* key;
  };
  const Case cases[] = {
      {"about.html", false, "index.html", "about.html"},  // off: the path
      {"about.html", true, "index.html", "about"},
      {"a/b.html", true, "index.html", "a/b"},
      {"index.html", true, "index.html", "index.html"},  // index documents keep their key
      {"a/index.html", true, "index.html", "a/index.html"},
      {"a/index.html", true, "default.html", "a/index"},  // another index document: index.html is a page
      {"a/default.html", true, "default.html", "a/default.html"},
      {"about.htm", true, "index.html", "about.htm"},    // .htm keeps its name (documented)
      {"About.HTML", true, "index.html", "About.HTML"},  // exactly ".html"
      {"a/.html", true, "index.html", "a/.html"},        // no name left: kept
      {"style.css", true, "index.html", "style.css"},
      {"a.html/b.txt", true, "index.html", "a.html/b.txt"},  // a folder's extension is not the file's
      {"caf\xc3\xa9 menu.html", true, "index.html", "caf\xc3\xa9 menu"},
      {"a.b.html", true, "index.html", "a.b"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(SiteKey(c.rel, c.clean, c.index), c.key) << c.rel;
  }
  // The URL paths follow the key: "/about" for a clean page; index documents keep their folder aliases.
  EXPECT_EQ(CanonicalUrlPath(SiteKey("about.html", true, "index.html"), "index.html"), "/about");
  EXPECT_EQ(UrlPaths(SiteKey("a/b.html", true, "index.html"), "index.html", true),
            (std::vector<std::string>{"/a/b"}));
  EXPECT_EQ(UrlPaths(SiteKey("dir/index.html", true, "index.html"), "index.html", true),
            (std::vector<std::string>{"/dir/index.html", "/dir/", "/dir"}));
}

TEST(CleanUrlWalk, PagesGetCleanKeysWithTextHtml) {
  Tree t;
  t.File("index.html");
  t.File("about.html");
  t.File("blog/post.html");
  t.File("blog/index.html");
  t.File("old.htm");
  t.File("style.css");
  WalkOptions options;
  options.clean_urls = true;
  auto map = Walk(t.root(), options);
  ASSERT_TRUE(map) << map.error().message;
  EXPECT_EQ(Keys(*map), (std::vector<std::pair<std::string, std::string>>{{"about.html", "about"},
                                                                            {"blog/index.html", "blog/index.html"},
                                                                            {"blog/post.html", "blog/post"},
                                                                            {"index.html", "index.html"},
                                                                            {"old.htm", "old.htm"},
                                                                            {"style.css", "style.css"}}));
  for (const LocalFile& f : map->files) {
    if (f.rel_path == "about.html") {
      EXPECT_EQ(f.content_type, ContentTypeFor("about.html"));
      EXPECT_TRUE(f.content_type.starts_with("text/html")) << f.content_type;
      EXPECT_TRUE(f.key == "about");
    }
  }
  EXPECT_TRUE(map->warnings.empty());
  // Off: no key differs from its path.
  options.clean_urls = false;
  auto plain = Walk(t.root(), options);
  ASSERT_TRUE(plain);
  for (const LocalFile& f : plain->files) EXPECT_TRUE(f.key.empty()) << f.rel_path;
}

TEST(CleanUrlWalk, IndexDocumentFollowsTheSetting) {
  Tree t;
  t.File("a/index.html");
  t.File("a/default.html");
  WalkOptions options;
  options.clean_urls = true;
  options.index_document = "default.html";
  auto map = Walk(t.root(), options);
  ASSERT_TRUE(map);
  EXPECT_EQ(Keys(*map), (std::vector<std::pair<std::string, std::string>>{{"a/default.html", "a/default.html"},
                                                                            {"a/index.html", "a/index"}}));
}

TEST(CleanUrlWalk, ALiterallyNamedFileKeepsTheKeyAndThePageKeepsItsName) {
  Tree t;
  t.File("about.html", "<p>page</p>");
  t.File("about", "literal");
  t.File("team.html");
  t.File("team/index.html");  // a folder of the same name is no clash: "team" and "team/index.html"
  WalkOptions options;
  options.clean_urls = true;
  auto map = Walk(t.root(), options);
  ASSERT_TRUE(map);
  EXPECT_EQ(Keys(*map), (std::vector<std::pair<std::string, std::string>>{{"about", "about"},
                                                                            {"about.html", "about.html"},
                                                                            {"team.html", "team"},
                                                                            {"team/index.html", "team/index.html"}}));
  ASSERT_EQ(map->warnings.size(), 1u);
  EXPECT_NE(map->warnings[0].find("'about.html' is published under its own name"), std::string::npos)
      << map->warnings[0];

  // A watch batch that walks only the page finds its namesake on disk, judged by the same rules.
  const std::vector<std::string> page{"about.html"};
  auto batch = WalkPaths(t.root(), page, options);
  ASSERT_TRUE(batch);
  EXPECT_EQ(Keys(*batch), (std::vector<std::pair<std::string, std::string>>{{"about.html", "about.html"}}));
  EXPECT_EQ(batch->warnings.size(), 1u);
  // An excluded namesake is not published: no clash.
  options.exclude = {"/about"};
  auto excluded = WalkPaths(t.root(), page, options);
  ASSERT_TRUE(excluded);
  EXPECT_EQ(Keys(*excluded), (std::vector<std::pair<std::string, std::string>>{{"about.html", "about"}}));
  EXPECT_TRUE(excluded->warnings.empty());
  auto full = Walk(t.root(), options);
  ASSERT_TRUE(full);
  EXPECT_EQ(Keys(*full), (std::vector<std::pair<std::string, std::string>>{{"about.html", "about"},
                                                                             {"team.html", "team"},
                                                                             {"team/index.html", "team/index.html"}}));
}

TEST(RedirectsFile, NeverPartOfTheSite) {
  Tree t;
  t.File("_redirects", "/old /new 301\n");
  t.File("docs/_redirects", "a file like any other below the root");
  t.File("index.html");
  WalkOptions options;
  auto map = Walk(t.root(), options);
  ASSERT_TRUE(map);
  EXPECT_EQ(Keys(*map), (std::vector<std::pair<std::string, std::string>>{
                            {"docs/_redirects", "docs/_redirects"}, {"index.html", "index.html"}}));
  options.include = {"_redirects"};  // not even when asked for
  const std::vector<std::string> paths{"_redirects"};
  auto batch = WalkPaths(t.root(), paths, options);
  ASSERT_TRUE(batch);
  EXPECT_TRUE(batch->files.empty());
  // The watcher still sees it (its events re-read the rules).
  EXPECT_FALSE(Excluded("_redirects", WalkOptions{}));
}

TEST(SitemapXml, ListsCleanKeys) {
  Tree t;
  t.File("index.html");
  t.File("about.html");
  t.File("blog/index.html");
  WalkOptions options;
  options.clean_urls = true;
  PageSet pages(t.root(), options);
  ASSERT_TRUE(pages.Rescan());
  SitemapOptions sitemap;
  sitemap.base_url = "https://example.com/";
  auto map = BuildSitemap(pages.Pages(), sitemap);
  ASSERT_TRUE(map);
  const std::string& xml = map->documents[0].content;
  EXPECT_NE(xml.find("<loc>https://example.com/about</loc>"), std::string::npos) << xml;
  EXPECT_EQ(xml.find("about.html"), std::string::npos) << xml;
  EXPECT_NE(xml.find("<loc>https://example.com/blog/</loc>"), std::string::npos) << xml;
  EXPECT_NE(xml.find("<loc>https://example.com/</loc>"), std::string::npos) << xml;
}

TEST(ParseRedirects, SimpleFormCommentsAndStatuses) {
  const std::string text =
      "# moved pages\n"
      "\n"
      "/old/      /new/\n"
      "/old.html\t/new.html 301   # a comment after the rule\n"
      "  /gone    https://example.org/elsewhere 302\r\n"
      "/a%20b /c\n";
  auto rules = ParseRedirects(text, "site/_redirects");
  ASSERT_TRUE(rules) << rules.error().message;
  ASSERT_EQ(rules->redirects.size(), 4u);
  EXPECT_EQ(rules->redirects[0].from, "/old/");
  EXPECT_EQ(rules->redirects[0].to, "/new/");
  EXPECT_EQ(rules->redirects[0].where, "site/_redirects:3");
  EXPECT_EQ(rules->redirects[1].from, "/old.html");
  EXPECT_EQ(rules->redirects[1].to, "/new.html");
  EXPECT_EQ(rules->redirects[2].to, "https://example.org/elsewhere");
  EXPECT_EQ(rules->redirects[2].where, "site/_redirects:5");
  EXPECT_EQ(rules->redirects[3].from, "/a%20b");
  ASSERT_EQ(rules->warnings.size(), 1u);  // the 302
  EXPECT_NE(rules->warnings[0].find("site/_redirects:5"), std::string::npos);
  EXPECT_NE(rules->warnings[0].find("301"), std::string::npos);
  auto empty = ParseRedirects("", "_redirects");
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->redirects.empty());
}

TEST(ParseRedirects, UnsupportedLinesAreInputErrorsNamingTheLine) {
  struct Case {
    const char* line;
    const char* says;
  };
  const Case cases[] = {
      {"/blog/* /news/:splat 301", "splat"},
      {"/news/:year/:slug /blog/:slug", "placeholder"},
      {"/store id=:id /blog/:id 301", "query parameter"},
      {"/old?x=1 /new", "query"},
      {"/* /index.html 200", "splat"},
      {"/spa /index.html 200", "status '200'"},
      {"/missing /404.html 404", "status '404'"},
      {"/old /new 301!", "forced"},
      {"/old /new 301 Country=us", "after the status"},
      {"/lonely", "needs a target"},
      {"old /new", "starting with '/'"},
      {"/old new", "'to' must be a path"},
      {"/old ftp://example.org/", "'to' must be a path"},
      {"/old https:///path", "without a host"},
      {"/a/../b /c", "'..'"},
      {"/a//b /c", "'//'"},
  };
  for (const Case& c : cases) {
    const std::string text = std::string("/fine /ok\n# comment\n") + c.line + "\n";
    auto rules = ParseRedirects(text, "pub/_redirects");
    ASSERT_FALSE(rules) << c.line;
    EXPECT_EQ(rules.error().code, ErrorCode::kInput);
    EXPECT_NE(rules.error().message.find("pub/_redirects:3: "), std::string::npos) << rules.error().message;
    EXPECT_NE(rules.error().message.find(c.says), std::string::npos) << c.line << ": " << rules.error().message;
    EXPECT_NE(rules.error().message.find("fix or remove the line"), std::string::npos);
  }
}

TEST(ReadRedirectsFile, MissingFileGivesNoneAndAFileIsParsed) {
  Tree t;
  auto none = ReadRedirectsFile(t.root());
  ASSERT_TRUE(none) << none.error().message;
  EXPECT_TRUE(none->redirects.empty());
  t.File("_redirects", "/a /b\n/c /d 302\n");
  auto two = ReadRedirectsFile(t.root());
  ASSERT_TRUE(two);
  ASSERT_EQ(two->redirects.size(), 2u);
  EXPECT_EQ(two->redirects[1].where, (t.root() / "_redirects").string() + ":2");
  t.File("_redirects", "/a/* /b\n");
  auto bad = ReadRedirectsFile(t.root());
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::kInput);
  EXPECT_NE(bad.error().message.find("_redirects:1"), std::string::npos);
}

TEST(RedirectFiles, KeysHeadersAndDuplicates) {
  EXPECT_EQ(RedirectKey("/old/", "index.html"), "old/index.html");
  EXPECT_EQ(RedirectKey("/", "index.html"), "index.html");
  EXPECT_EQ(RedirectKey("/old.html", "index.html"), "old.html");
  EXPECT_EQ(RedirectKey("/old", "index.html"), "old");
  EXPECT_EQ(RedirectKey("/a/b/", "default.htm"), "a/b/default.htm");

  const std::vector<Redirect> redirects{{"/old/", "/new/", "redirects[0]"},
                                        {"/old.html", "https://example.org/x", "redirects[1]"},
                                        {"/old", "/new/", "_redirects:1"},
                                        {"/old/", "/other/", "_redirects:2"}};
  const GeneratedFiles gen = RedirectFiles(redirects, "index.html");
  ASSERT_EQ(gen.files.size(), 3u);
  EXPECT_EQ(gen.files[0].Key(), "old");
  EXPECT_EQ(gen.files[1].Key(), "old.html");
  EXPECT_EQ(gen.files[2].Key(), "old/index.html");
  for (const LocalFile& f : gen.files) {
    EXPECT_TRUE(f.generated);
    EXPECT_EQ(f.size, 0u);
    EXPECT_EQ(f.disk_size, 0u);
    EXPECT_EQ(f.rel_path, f.Key());
    EXPECT_TRUE(f.content_type.starts_with("text/html")) << f.content_type;
    ASSERT_NE(f.extra, nullptr);
  }
  EXPECT_EQ(gen.files[0].extra->website_redirect, "/new/");
  EXPECT_EQ(gen.files[1].extra->website_redirect, "https://example.org/x");
  EXPECT_EQ(gen.files[2].extra->website_redirect, "/new/");  // the first rule for the key wins
  EXPECT_EQ(gen.files[0].extra, gen.files[2].extra);           // equal header sets are shared
  ASSERT_EQ(gen.warnings.size(), 1u);
  EXPECT_NE(gen.warnings[0].find("_redirects:2"), std::string::npos) << gen.warnings[0];
  EXPECT_NE(gen.warnings[0].find("redirects[0]"), std::string::npos) << gen.warnings[0];
}

TEST(RedirectFiles, AFileOfTheSiteWinsOverARedirect) {
  Tree t;
  t.File("old/index.html", "<p>still here</p>");
  t.File("about.html");
  WalkOptions options;
  options.clean_urls = true;
  auto site = Walk(t.root(), options);
  ASSERT_TRUE(site);
  const std::vector<Redirect> redirects{{"/old/", "/new/", ""}, {"/about", "/team", ""}, {"/gone", "/new/", ""}};
  AddGenerated(*site, RedirectFiles(redirects, "index.html"));
  EXPECT_EQ(Keys(*site), (std::vector<std::pair<std::string, std::string>>{
                             {"about.html", "about"}, {"old/index.html", "old/index.html"}, {"gone", "gone"}}));
  ASSERT_EQ(site->warnings.size(), 2u);
  EXPECT_NE(site->warnings[0].find("'about.html'"), std::string::npos) << site->warnings[0];
  EXPECT_NE(site->warnings[1].find("'old/index.html'"), std::string::npos) << site->warnings[1];
}

TEST(RedirectProblem, ConfigEntries) {
  EXPECT_EQ(RedirectProblem({"/old/", "/new/", ""}), std::nullopt);
  EXPECT_EQ(RedirectProblem({"/old", "http://example.org", ""}), std::nullopt);
  EXPECT_NE(RedirectProblem({"old", "/new", ""}), std::nullopt);
  EXPECT_NE(RedirectProblem({"", "/new", ""}), std::nullopt);
  EXPECT_NE(RedirectProblem({"/old", "", ""}), std::nullopt);
  EXPECT_NE(RedirectProblem({"/old", "new", ""}), std::nullopt);
  EXPECT_NE(RedirectProblem({"/old", "//host/x", ""}), std::nullopt);
  EXPECT_NE(RedirectProblem({"/old", "/new\r\nx-evil: 1", ""}), std::nullopt);
  EXPECT_NE(RedirectProblem({"/o ld", "/new", ""}), std::nullopt);
  EXPECT_NE(RedirectProblem({"/old#x", "/new", ""}), std::nullopt);
}

}  // namespace
}  // namespace sitesync::sitemap
