#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "sitemap/sitemap.h"

namespace sitesync::sitemap {
namespace {

struct TypeCase {
  std::string_view rel_path;
  std::string_view content_type;
};

constexpr std::string_view kOctet = "application/octet-stream";
constexpr std::string_view kHtml = "text/html; charset=utf-8";
constexpr std::string_view kJs = "text/javascript; charset=utf-8";

TEST(ContentTypeFor, RequiredTypes) {
  const TypeCase cases[] = {
      {"index.html", kHtml},
      {"old.htm", kHtml},
      {"style.css", "text/css; charset=utf-8"},
      {"app.js", kJs},
      {"module.mjs", kJs},
      {"data.json", "application/json"},
      {"sitemap.xml", "application/xml"},
      {"feed.rss", "application/rss+xml"},
      {"feed.atom", "application/atom+xml"},
      {"logo.svg", "image/svg+xml"},
      {"a.png", "image/png"},
      {"a.jpg", "image/jpeg"},
      {"a.jpeg", "image/jpeg"},
      {"a.gif", "image/gif"},
      {"a.webp", "image/webp"},
      {"a.avif", "image/avif"},
      {"favicon.ico", "image/x-icon"},
      {"f.woff", "font/woff"},
      {"f.woff2", "font/woff2"},
      {"f.ttf", "font/ttf"},
      {"f.otf", "font/otf"},
      {"robots.txt", "text/plain; charset=utf-8"},
      {"paper.pdf", "application/pdf"},
      {"clip.mp4", "video/mp4"},
      {"clip.webm", "video/webm"},
      {"app.wasm", "application/wasm"},
      {"app.js.map", "application/json"},
      {"site.webmanifest", "application/manifest+json"},
      {"README.md", "text/markdown; charset=utf-8"},
      {"table.csv", "text/csv; charset=utf-8"},
      {"conf.yaml", "application/yaml"},
      {"conf.yml", "application/yaml"},
      {"song.mp3", "audio/mpeg"},
      {"song.ogg", "audio/ogg"},
      {"song.wav", "audio/wav"},
      {"bundle.zip", "application/zip"},
      {"bundle.tar.gz", "application/gzip"},
      {"schema.jsonld", "application/ld+json"},
      {"anim.apng", "image/apng"},
      {"pic.bmp", "image/bmp"},
      {"scan.tif", "image/tiff"},
      {"scan.tiff", "image/tiff"},
      {"old.eot", "application/vnd.ms-fontobject"},
      {"cal.ics", "text/calendar; charset=utf-8"},
      {"subs.vtt", "text/vtt; charset=utf-8"},
      {"sitemap.xsl", "application/xml"},
  };
  for (const TypeCase& c : cases) {
    EXPECT_EQ(ContentTypeFor(c.rel_path), c.content_type) << c.rel_path;
  }
}

TEST(ContentTypeFor, CaseInsensitiveAndAnyDepth) {
  EXPECT_EQ(ContentTypeFor("INDEX.HTML"), kHtml);
  EXPECT_EQ(ContentTypeFor("Photo.JPG"), "image/jpeg");
  EXPECT_EQ(ContentTypeFor("a/b/c/Script.Js"), kJs);
  EXPECT_EQ(ContentTypeFor("fonts/x.WOFF2"), "font/woff2");
  EXPECT_EQ(ContentTypeFor("café/naïve file.svg"), "image/svg+xml");
}

TEST(ContentTypeFor, UnknownOrMissingExtension) {
  const std::string_view cases[] = {
      "",                       // Nothing at all.
      "LICENSE",                // No extension.
      "CNAME",
      "_redirects",
      ".htaccess",              // A dotfile's name is not an extension.
      "dir/.nojekyll",
      "file.",                  // Empty extension.
      "a.html/README",          // The dot is in a folder name, not in the file's.
      "archive.unknownext",
      "x.htmlx",                // Prefix of a known extension is not enough.
      "x.ht",
      "x.averyveryverylongextensionname",  // Longer than any in the table.
      "x.html ",                // Trailing space is part of the extension.
      "x.ht%6Dl",
  };
  for (std::string_view rel_path : cases) {
    EXPECT_EQ(ContentTypeFor(rel_path), kOctet) << "'" << rel_path << "'";
  }
}

TEST(ContentTypeFor, DotfileWithExtension) {
  EXPECT_EQ(ContentTypeFor(".eslintrc.json"), "application/json");
  EXPECT_EQ(ContentTypeFor(".well-known/assetlinks.json"), "application/json");
  EXPECT_EQ(ContentTypeFor(".well-known/security.txt"), "text/plain; charset=utf-8");
}

TEST(ContentTypeFor, TextTypesCarryCharsetOthersDoNot) {
  for (std::string_view rel_path : {"a.html", "a.css", "a.js", "a.txt", "a.csv", "a.md", "a.ics", "a.vtt"}) {
    EXPECT_TRUE(ContentTypeFor(rel_path).ends_with("; charset=utf-8")) << rel_path;
  }
  for (std::string_view rel_path : {"a.png", "a.json", "a.woff2", "a.wasm", "a.pdf", "a.zip"}) {
    EXPECT_EQ(ContentTypeFor(rel_path).find("charset"), std::string::npos) << rel_path;
  }
}

TEST(IsHtml, HtmlAndHtmOnly) {
  EXPECT_TRUE(IsHtml("index.html"));
  EXPECT_TRUE(IsHtml("blog/post/index.HTML"));
  EXPECT_TRUE(IsHtml("old/page.Htm"));
  EXPECT_TRUE(IsHtml("a b/ü.html"));
  EXPECT_FALSE(IsHtml("index.xhtml"));
  EXPECT_FALSE(IsHtml("index.html.gz"));
  EXPECT_FALSE(IsHtml("html"));
  EXPECT_FALSE(IsHtml(".html"));  // A dotfile named ".html" has no extension.
  EXPECT_FALSE(IsHtml("a.html/style.css"));
  EXPECT_FALSE(IsHtml(""));
}

}  // namespace
}  // namespace sitesync::sitemap
