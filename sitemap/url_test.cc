#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "sitemap/sitemap.h"

namespace sitesync::sitemap {
namespace {

struct UrlCase {
  std::string_view key;
  std::string_view index_document;
  bool bare_alias;
  std::vector<std::string> want;
};

TEST(UrlPaths, Table) {
  const UrlCase cases[] = {
      {"a/b/index.html", "index.html", true, {"/a/b/index.html", "/a/b/", "/a/b"}},
      {"a/b/index.html", "index.html", false, {"/a/b/index.html", "/a/b/"}},
      {"index.html", "index.html", true, {"/index.html", "/"}},
      {"index.html", "index.html", false, {"/index.html", "/"}},
      {"blog/index.html", "index.html", true, {"/blog/index.html", "/blog/", "/blog"}},
      {"css/site.css", "index.html", true, {"/css/site.css"}},
      {"robots.txt", "index.html", true, {"/robots.txt"}},
      // Only the exact file name counts: not a suffix, not another case.
      {"a/myindex.html", "index.html", true, {"/a/myindex.html"}},
      {"a/index.html.gz", "index.html", true, {"/a/index.html.gz"}},
      {"a/INDEX.HTML", "index.html", true, {"/a/INDEX.HTML"}},
      {"index.html/x", "index.html", true, {"/index.html/x"}},
      // A custom index document.
      {"docs/default.htm", "default.htm", true, {"/docs/default.htm", "/docs/", "/docs"}},
      {"docs/index.html", "default.htm", true, {"/docs/index.html"}},
      {"default.htm", "default.htm", true, {"/default.htm", "/"}},
      // No index document: no aliases.
      {"a/index.html", "", true, {"/a/index.html"}},
      // "//" is kept as is: S3 keys are not normalized.
      {"a//b.txt", "index.html", true, {"/a//b.txt"}},
      {"a//index.html", "index.html", true, {"/a//index.html", "/a//", "/a/"}},
      // Raw, not encoded: spaces, '+', '%', '~', UTF-8 and '*' pass through.
      {"my docs/a b.html", "index.html", true, {"/my docs/a b.html"}},
      {"my docs/index.html", "index.html", true, {"/my docs/index.html", "/my docs/", "/my docs"}},
      {"a+b/100%/~x*.txt", "index.html", true, {"/a+b/100%/~x*.txt"}},
      {"caf\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac/index.html", "index.html", true,
       {"/caf\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac/index.html", "/caf\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac/",
        "/caf\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac"}},
  };
  for (const UrlCase& c : cases) {
    EXPECT_EQ(UrlPaths(c.key, c.index_document, c.bare_alias), c.want)
        << "key '" << c.key << "' index '" << c.index_document << "' bare " << c.bare_alias;
  }
}

TEST(UrlPaths, FirstIsAlwaysTheKeyItself) {
  for (std::string_view key : {"x", "a/b/c.d", "index.html", "a/index.html", "a b/c"}) {
    const std::vector<std::string> paths = UrlPaths(key, "index.html", true);
    ASSERT_FALSE(paths.empty()) << key;
    EXPECT_EQ(paths.front(), "/" + std::string(key));
  }
}

}  // namespace
}  // namespace sitesync::sitemap
