// sitemap.xml: the URL rule, escaping, dates, noindex detection, the split, writing files, PageSet.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "aws/aws.h"
#include "sitemap/sitemap.h"
#include "sitemap/xml_writer.h"

namespace sitesync::sitemap {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string templ = (fs::temp_directory_path() / "sitemap_xml_test.XXXXXX").string();
    if (mkdtemp(templ.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed";
    root_ = templ;
  }
  ~TempDir() {
    std::error_code ec;
    fs::permissions(root_, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(root_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& root() const { return root_; }
  void File(const std::string& rel, std::string_view content = "<html><body>x</body></html>") const {
    const fs::path path = root_ / rel;
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << content;
  }
  std::string Read(const std::string& rel) const {
    std::ifstream in(root_ / rel, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

 private:
  fs::path root_;
};

// --- The URL rule -------------------------------------------------------------------------------------------

TEST(CanonicalUrlPath, IndexDocumentIsItsFolder) {
  EXPECT_EQ(CanonicalUrlPath("index.html", "index.html"), "/");
  EXPECT_EQ(CanonicalUrlPath("a/b/index.html", "index.html"), "/a/b/");
  EXPECT_EQ(CanonicalUrlPath("a/b/page.html", "index.html"), "/a/b/page.html");
  EXPECT_EQ(CanonicalUrlPath("a/myindex.html", "index.html"), "/a/myindex.html");
  EXPECT_EQ(CanonicalUrlPath("a/INDEX.HTML", "index.html"), "/a/INDEX.HTML");
  EXPECT_EQ(CanonicalUrlPath("docs/default.htm", "default.htm"), "/docs/");
  EXPECT_EQ(CanonicalUrlPath("docs/index.html", "default.htm"), "/docs/index.html");
  EXPECT_EQ(CanonicalUrlPath("a/index.html", ""), "/a/index.html");
  EXPECT_EQ(CanonicalUrlPath("a//index.html", "index.html"), "/a//");
  EXPECT_EQ(CanonicalUrlPath("my docs/index.html", "index.html"), "/my docs/");
}

TEST(CanonicalUrlPath, IsOneOfTheInvalidatedPaths) {
  // One rule: what sitemap.xml lists is always among the paths a change invalidates.
  for (const char* key : {"index.html", "a/index.html", "a/b.html", "x/y/z/index.html", "a//index.html", "café.html"}) {
    for (const char* index : {"index.html", "", "b.html"}) {
      for (const bool bare : {true, false}) {
        const auto all = UrlPaths(key, index, bare);
        EXPECT_NE(std::find(all.begin(), all.end(), CanonicalUrlPath(key, index)), all.end()) << key << " " << index;
      }
    }
  }
}

TEST(EncodeUrlPath, Table) {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"a/b.html", "a/b.html"},
      {"", ""},
      {"my docs/a b.html", "my%20docs/a%20b.html"},
      {"caf\xc3\xa9.html", "caf%C3%A9.html"},
      {"\xe6\x97\xa5\xe6\x9c\xac/", "%E6%97%A5%E6%9C%AC/"},
      {"tom&jerry.html", "tom&jerry.html"},   // '&' stays (a sub-delimiter); XML escapes it
      {"a+b.html", "a%2Bb.html"},             // S3 reads '+' as a space
      {"100%.html", "100%25.html"},
      {"~user/*x*.html", "~user/*x*.html"},
      {"it's (1),;=:@!$.html", "it's%20(1),;=:@!$.html"},
      {"q?.html", "q%3F.html"},
      {"h#1.html", "h%231.html"},
      {"\"<>[]\\^`{|}", "%22%3C%3E%5B%5D%5C%5E%60%7B%7C%7D"},
      {"a\tb\x7f\x01", "a%09b%7F%01"},
      {"bad\xff\xfe.html", "bad%FF%FE.html"},  // not UTF-8: bytes as they are, encoded
  };
  for (const auto& [raw, want] : cases) {
    EXPECT_EQ(EncodeUrlPath(raw), want) << raw;
  }
}

TEST(NormalizeBaseUrl, Accepts) {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"https://example.com", "https://example.com/"},
      {"https://example.com/", "https://example.com/"},
      {"HTTPS://Example.COM/Blog", "https://example.com/Blog/"},
      {"https://x.com/blog/", "https://x.com/blog/"},
      {"http://127.0.0.1:8080", "http://127.0.0.1:8080/"},
      {"http://[::1]:8080/a%20b/", "http://[::1]:8080/a%20b/"},
      {"https://www.xn--caf-dma.fr/", "https://www.xn--caf-dma.fr/"},
  };
  for (const auto& [in, want] : cases) {
    auto got = NormalizeBaseUrl(in);
    ASSERT_TRUE(got.has_value()) << in << ": " << got.error().message;
    EXPECT_EQ(*got, want);
  }
}

TEST(NormalizeBaseUrl, Refuses) {
  for (std::string_view bad : {"", "example.com", "/blog/", "ftp://example.com/", "https://", "https:///x",
                               "https://example.com/?a=1", "https://example.com/#top", "https://exa mple.com/",
                               "https://example.com/a b/", "https://caf\xc3\xa9.fr/", "https://user:pw@example.com/",
                               "https://example.com:abc/", "https://example.com:/", "https://example.com/100%zz/",
                               "https://example.com/<x>", "https://ex!ample.com/"}) {
    auto got = NormalizeBaseUrl(bad);
    ASSERT_FALSE(got.has_value()) << bad << " was accepted as " << *got;
    EXPECT_EQ(got.error().code, ErrorCode::kUsage);
    EXPECT_NE(got.error().message.find("https://example.com/"), std::string::npos) << got.error().message;
  }
}

TEST(W3cDatetime, UtcToTheSecond) {
  EXPECT_EQ(W3cDatetime(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(W3cDatetime(1'795'428'000'000'000'000), "2026-11-23T10:00:00Z");
  EXPECT_EQ(W3cDatetime(1'709'251'199'999'999'999), "2024-02-29T23:59:59Z");  // leap day, ns dropped
  EXPECT_EQ(W3cDatetime(951'782'400'000'000'000), "2000-02-29T00:00:00Z");
  EXPECT_EQ(W3cDatetime(-5'000'000'000), "1970-01-01T00:00:00Z");  // before 1970: clamped
  EXPECT_EQ(W3cDatetime(std::numeric_limits<std::int64_t>::max()), "2262-04-11T23:47:16Z");
}

// --- noindex ------------------------------------------------------------------------------------------------

TEST(RobotsNoindex, Table) {
  const std::pair<std::string_view, bool> cases[] = {
      {R"(<html><head><meta name="robots" content="noindex"></head><body></body></html>)", true},
      {R"(<!doctype html><html><head><meta content="noindex, nofollow" name="robots"></head>)", true},
      {R"(<head><META NAME='ROBOTS' CONTENT='NoIndex'></head>)", true},
      {R"(<head><meta name=robots content=noindex></head>)", true},
      {R"(<head><meta name=" Robots " content="max-snippet:-1,noindex"></head>)", true},
      {R"(<head><meta name="robots" content="nofollow , NOINDEX"></head>)", true},
      {R"(<head><meta name="robots" content="none"></head>)", true},
      {R"(<meta name="robots" content="noindex">)", true},  // no <html> or <head> at all
      {R"(<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><head><meta name="robots" content="noindex" /></head></html>)", true},
      {"\xef\xbb\xbf<html><head><title>caf\xc3\xa9</title><meta name=\"robots\" content=\"noindex\"></head>", true},
      {"<html><head><title>caf\xe9 \xff</title><meta name=\"robots\" content=\"noindex\"></head>", true},  // not UTF-8
      {R"(<head><meta name="robots" content="&#110;oindex"></head>)", true},  // a character reference
      {R"(<head><meta charset="utf-8"><noscript><link rel="stylesheet" href="x.css"></noscript><style>p{color:red}</style><script>var s = "<body>";</script><meta name="robots" content="noindex"></head>)", true},
      // Indexable:
      {R"(<html><head><meta name="robots" content="index, follow"></head></html>)", false},
      {R"(<html><head><meta name="robots" content="nofollow"></head></html>)", false},
      {R"(<html><head><meta name="robots" content="noindexing"></head></html>)", false},
      {R"(<html><head><meta name="description" content="noindex"></head></html>)", false},
      {R"(<html><head><meta property="robots" content="noindex"></head></html>)", false},
      {R"(<html><head><meta name="robots"></head></html>)", false},
      {R"(<html><head><meta content="noindex"></head></html>)", false},
      {R"(<html><head><!-- <meta name="robots" content="noindex"> --></head></html>)", false},
      {R"(<html><head><script>document.write('<meta name="robots" content="noindex">')</script></head></html>)", false},
      {R"(<html><head><title>x</title></head><body><p>&lt;meta name="robots" content="noindex"&gt;</p></body></html>)", false},
      // In the body, where it has no effect: the head has ended.
      {R"(<html><head><title>x</title></head><body><meta name="robots" content="noindex"></body></html>)", false},
      {"", false},
      {"not html at all \x01\x02", false},
  };
  for (const auto& [html, want] : cases) EXPECT_EQ(RobotsNoindex(html), want) << html;
}

TEST(RobotsNoindex, LongHeadAndChunkBoundaries) {
  TempDir dir;
  // A head of 100 KiB of inline style before the tag: past the first 64 KiB chunk.
  const std::string style = "<style>" + std::string(100 * 1024, 'p') + "</style>";
  dir.File("long.html", "<html><head>" + style + R"(<meta name="robots" content="noindex"></head><body>)");
  auto long_head = FileRobotsNoindex(dir.root() / "long.html");
  ASSERT_TRUE(long_head.has_value()) << long_head.error().message;
  EXPECT_TRUE(*long_head);
  EXPECT_TRUE(RobotsNoindex("<html><head>" + style + R"(<meta name="robots" content="noindex"></head>)"));
  // The tag cut in two by the chunk boundary, at every offset around it.
  const std::string tag = R"(<meta name="robots" content="noindex">)";
  for (std::size_t cut = 0; cut <= tag.size(); ++cut) {
    const std::string head = "<html><head><style>";
    const std::size_t fill = 64 * 1024 - cut - head.size() - 8;
    const std::string html = head + std::string(fill, 'x') + "</style>" + tag + "</head><body>";
    ASSERT_EQ(html.find(tag), 64 * 1024 - cut);
    dir.File("cut.html", html);
    auto got = FileRobotsNoindex(dir.root() / "cut.html");
    ASSERT_TRUE(got.has_value());
    EXPECT_TRUE(*got) << "cut at " << cut;
    EXPECT_TRUE(RobotsNoindex(html)) << "cut at " << cut;
  }
  // Past the first 1 MiB nothing is read.
  const std::string huge = "<html><head><style>" + std::string(1100 * 1024, 'x') + "</style>" + tag + "</head>";
  dir.File("huge.html", huge);
  auto got = FileRobotsNoindex(dir.root() / "huge.html");
  ASSERT_TRUE(got.has_value());
  EXPECT_FALSE(*got);
  // A body that starts early ends the read: a large page costs its head only (and a noindex after is ignored).
  dir.File("body.html", "<html><head><title>t</title></head><body>" + std::string(500 * 1024, 'y') + tag);
  got = FileRobotsNoindex(dir.root() / "body.html");
  ASSERT_TRUE(got.has_value());
  EXPECT_FALSE(*got);
}

TEST(RobotsNoindex, MissingFileIsAnIoError) {
  TempDir dir;
  auto got = FileRobotsNoindex(dir.root() / "nope.html");
  ASSERT_FALSE(got.has_value());
  EXPECT_EQ(got.error().code, ErrorCode::kIo);
  EXPECT_NE(got.error().message.find("nope.html"), std::string::npos);
}

// --- Building the XML ---------------------------------------------------------------------------------------

std::vector<std::pair<std::string, std::string>> Entries(const std::string& xml, std::string_view inner) {
  auto doc = aws::ParseXml(xml);
  EXPECT_TRUE(doc.has_value()) << xml;
  std::vector<std::pair<std::string, std::string>> out;
  if (!doc) return out;
  for (const aws::XmlElement& e : doc->children) {
    EXPECT_EQ(e.name, inner);
    out.emplace_back(e.ChildText("loc"), e.ChildText("lastmod"));
  }
  return out;
}

SitemapOptions Options(std::string base = "https://example.com/") {
  SitemapOptions o;
  o.base_url = std::move(base);
  return o;
}

constexpr std::int64_t kT0 = 1'795'428'000'000'000'000;  // 2026-11-23T10:00:00Z
constexpr std::int64_t kSecond = 1'000'000'000;

TEST(BuildSitemap, OneUrlPerPageWithItsCanonicalUrlSorted) {
  const std::vector<Page> pages = {
      {"index.html", kT0, 1, false},
      {"about/index.html", kT0 + kSecond, 1, false},
      {"blog/post one.html", kT0 + 2 * kSecond, 1, false},
      {"tom&jerry/caf\xc3\xa9.html", kT0 + 3 * kSecond, 1, false},
      {"drafts/secret.html", kT0, 1, true},  // noindex
      {"a+b.htm", kT0, 1, false},
  };
  auto map = BuildSitemap(pages, Options());
  ASSERT_TRUE(map.has_value()) << map.error().message;
  ASSERT_EQ(map->documents.size(), 1u);
  EXPECT_FALSE(map->split);
  EXPECT_EQ(map->urls, 5u);
  const SitemapDocument& doc = map->documents[0];
  EXPECT_EQ(doc.name, "sitemap.xml");
  EXPECT_TRUE(doc.content.starts_with(R"(<?xml version="1.0" encoding="UTF-8"?>)")) << doc.content;
  EXPECT_NE(doc.content.find(R"(<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">)"), std::string::npos);
  // The '&' is entity-escaped in the file, and a plain '&' once parsed.
  EXPECT_NE(doc.content.find("https://example.com/tom&amp;jerry/caf%C3%A9.html"), std::string::npos) << doc.content;
  const std::vector<std::pair<std::string, std::string>> want = {
      {"https://example.com/", "2026-11-23T10:00:00Z"},
      {"https://example.com/a%2Bb.htm", "2026-11-23T10:00:00Z"},
      {"https://example.com/about/", "2026-11-23T10:00:01Z"},
      {"https://example.com/blog/post%20one.html", "2026-11-23T10:00:02Z"},
      {"https://example.com/tom&jerry/caf%C3%A9.html", "2026-11-23T10:00:03Z"},
  };
  EXPECT_EQ(Entries(doc.content, "url"), want);
}

TEST(BuildSitemap, BasePathPrefixAndIndexDocument) {
  const std::vector<Page> pages = {{"index.html", kT0, 1, false},
                                   {"docs/default.htm", kT0, 1, false},
                                   {"docs/index.html", kT0, 1, false}};
  SitemapOptions o = Options("https://x.com/blog/");
  o.index_document = "default.htm";
  auto map = BuildSitemap(pages, o);
  ASSERT_TRUE(map.has_value());
  const auto got = Entries(map->documents[0].content, "url");
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].first, "https://x.com/blog/docs/");
  EXPECT_EQ(got[1].first, "https://x.com/blog/docs/index.html");
  EXPECT_EQ(got[2].first, "https://x.com/blog/index.html");
}

TEST(BuildSitemap, NeverListsItsOwnFilesAndSkipsOverlongUrls) {
  SitemapOptions o = Options();
  o.output_rel = "maps/site.html";  // an output named like a page is still not a page
  const std::vector<Page> pages = {{"maps/site.html", kT0, 1, false},
                                   {"maps/site-1.html", kT0, 1, false},
                                   {"maps/site-x.html", kT0, 1, false},
                                   {std::string(2100, 'a') + ".html", kT0, 1, false}};
  auto map = BuildSitemap(pages, o);
  ASSERT_TRUE(map.has_value());
  const auto got = Entries(map->documents[0].content, "url");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].first, "https://example.com/maps/site-x.html");
  ASSERT_EQ(map->warnings.size(), 1u);
  EXPECT_NE(map->warnings[0].find("2,048"), std::string::npos);
}

TEST(BuildSitemap, EmptySiteIsAnEmptyUrlset) {
  auto map = BuildSitemap({}, Options());
  ASSERT_TRUE(map.has_value());
  ASSERT_EQ(map->documents.size(), 1u);
  EXPECT_TRUE(Entries(map->documents[0].content, "url").empty());
}

TEST(IsSitemapFile, Table) {
  EXPECT_TRUE(IsSitemapFile("sitemap.xml", "sitemap.xml"));
  EXPECT_TRUE(IsSitemapFile("sitemap-1.xml", "sitemap.xml"));
  EXPECT_TRUE(IsSitemapFile("sitemap-12.xml", "sitemap.xml"));
  EXPECT_FALSE(IsSitemapFile("sitemap-.xml", "sitemap.xml"));
  EXPECT_FALSE(IsSitemapFile("sitemap-a.xml", "sitemap.xml"));
  EXPECT_FALSE(IsSitemapFile("sitemap-1.xml.gz", "sitemap.xml"));
  EXPECT_FALSE(IsSitemapFile("a/sitemap-1.xml", "sitemap.xml"));
  EXPECT_FALSE(IsSitemapFile("a/sitemap.xml", "sitemap.xml"));
  EXPECT_TRUE(IsSitemapFile("a/map-3", "a/map"));
  EXPECT_FALSE(IsSitemapFile("sitemap.xml", ""));
}

TEST(XmlSizes, ExactForTrickyUrls) {
  for (const XmlRoot root : {XmlRoot::kUrlset, XmlRoot::kSitemapIndex}) {
    auto sizes = MeasureSitemapXml(root);
    ASSERT_TRUE(sizes.has_value());
    const std::vector<XmlEntry> entries = {{"https://e.com/", "2026-11-23T10:00:00Z"},
                                           {"https://e.com/a&b&&c.html", "2026-11-23T10:00:00Z"},
                                           {"https://e.com/it's;x=1,y", "1970-01-01T00:00:00Z"},
                                           {"https://e.com/%C3%A9%20~*", "2000-02-29T00:00:00Z"}};
    std::size_t want = sizes->empty_document;
    for (const XmlEntry& e : entries) want += sizes->Entry(e);
    auto xml = WriteSitemapXml(root, entries);
    ASSERT_TRUE(xml.has_value());
    EXPECT_EQ(xml->size(), want) << *xml;
  }
}

// The split against a naive reference: every URL in exactly one part, in order, no part over either limit,
// and the index lists the parts with the newest lastmod of each.
TEST(BuildSitemap, SplitsAtEitherLimit) {
  std::mt19937 rng(7);
  for (int round = 0; round < 40; ++round) {
    const std::size_t n = std::uniform_int_distribution<std::size_t>(1, 120)(rng);
    std::vector<Page> pages;
    for (std::size_t i = 0; i < n; ++i) {
      std::string name = "p" + std::to_string(1000 + i) + std::string(i % 7, '&') + ".html";
      pages.push_back({name, kT0 + static_cast<std::int64_t>(std::uniform_int_distribution<int>(0, 1000)(rng)) * kSecond,
                       1, false});
    }
    SitemapOptions o = Options();
    o.output_rel = "maps/sitemap.xml";
    // Limits small enough to split often, large enough for the index of up to 24 parts to fit.
    o.max_urls = std::uniform_int_distribution<std::size_t>(5, 60)(rng);
    o.max_bytes = std::uniform_int_distribution<std::size_t>(3200, 8000)(rng);
    auto map = BuildSitemap(pages, o);
    ASSERT_TRUE(map.has_value()) << map.error().message;

    std::vector<std::pair<std::string, std::string>> all;
    std::vector<std::pair<std::string, std::string>> index;
    if (map->documents.size() == 1) {
      all = Entries(map->documents[0].content, "url");
    } else {
      EXPECT_TRUE(map->split);
      index = Entries(map->documents[0].content, "sitemap");
      ASSERT_EQ(index.size(), map->documents.size() - 1);
      for (std::size_t k = 1; k < map->documents.size(); ++k) {
        const SitemapDocument& part = map->documents[k];
        EXPECT_EQ(part.name, "sitemap-" + std::to_string(k) + ".xml");
        EXPECT_EQ(index[k - 1].first, "https://example.com/maps/sitemap-" + std::to_string(k) + ".xml");
        const auto urls = Entries(part.content, "url");
        EXPECT_FALSE(urls.empty());
        EXPECT_LE(urls.size(), o.max_urls);
        std::string newest;
        for (const auto& u : urls) newest = std::max(newest, u.second);
        EXPECT_EQ(index[k - 1].second, newest);
        all.insert(all.end(), urls.begin(), urls.end());
      }
    }
    for (const SitemapDocument& doc : map->documents) EXPECT_LE(doc.content.size(), o.max_bytes);

    // The naive reference: each page's URL, sorted.
    std::vector<std::string> want;
    for (const Page& p : pages) want.push_back("https://example.com/" + EncodeUrlPath(p.rel_path));
    std::sort(want.begin(), want.end());
    std::vector<std::string> got;
    for (const auto& u : all) got.push_back(u.first);
    EXPECT_EQ(got, want) << "round " << round;
    EXPECT_EQ(map->urls, n);
  }
}

TEST(BuildSitemap, SplitsBySizeAlone) {
  std::vector<Page> pages;
  for (int i = 0; i < 1000; ++i) pages.push_back({"page-" + std::to_string(i) + ".html", kT0, 1, false});
  SitemapOptions o = Options();
  o.max_bytes = 20'000;
  auto map = BuildSitemap(pages, o);
  ASSERT_TRUE(map.has_value()) << map.error().message;
  ASSERT_GT(map->documents.size(), 3u);
  std::size_t urls = 0;
  for (std::size_t k = 1; k < map->documents.size(); ++k) {
    EXPECT_LE(map->documents[k].content.size(), o.max_bytes);
    // Full parts are full: the next URL would not have fitted.
    if (k + 1 < map->documents.size()) {
      EXPECT_GT(map->documents[k].content.size(), o.max_bytes - 150);
    }
    urls += Entries(map->documents[k].content, "url").size();
  }
  EXPECT_EQ(urls, 1000u);
}

TEST(BuildSitemap, FiftyThousandPerFile) {
  std::vector<Page> pages;
  for (int i = 0; i < 100'001; ++i) pages.push_back({"p/" + std::to_string(i) + ".html", kT0, 1, false});
  auto map = BuildSitemap(pages, Options());
  ASSERT_TRUE(map.has_value());
  ASSERT_EQ(map->documents.size(), 4u);  // the index and three parts
  EXPECT_EQ(map->documents[1].urls, 50'000u);
  EXPECT_EQ(map->documents[2].urls, 50'000u);
  EXPECT_EQ(map->documents[3].urls, 1u);
  EXPECT_NE(map->documents[0].content.find("<sitemapindex"), std::string::npos);
}

// --- Writing --------------------------------------------------------------------------------------------------

TEST(WriteSitemap, WritesOnlyWhatChangedAndRemovesItsStaleParts) {
  TempDir dir;
  std::vector<Page> pages;
  for (int i = 0; i < 7; ++i) pages.push_back({"p" + std::to_string(i) + ".html", kT0, 1, false});
  SitemapOptions o = Options();
  o.max_urls = 2;
  auto big = BuildSitemap(pages, o);
  ASSERT_TRUE(big.has_value());
  ASSERT_EQ(big->documents.size(), 5u);
  const fs::path out = dir.root() / "sitemap.xml";
  auto first = WriteSitemap(*big, out);
  ASSERT_TRUE(first.has_value()) << first.error().message;
  EXPECT_EQ(first->written.size(), 5u);
  EXPECT_EQ(dir.Read("sitemap-4.xml"), big->documents[4].content);
  dir.File("sitemap-9.xml", "not ours");  // named like a part, but not a sitemap: never removed

  // Same content: nothing written, the file keeps its mtime.
  const auto mtime = fs::last_write_time(out);
  auto again = WriteSitemap(*big, out);
  ASSERT_TRUE(again.has_value());
  EXPECT_TRUE(again->written.empty());
  EXPECT_TRUE(again->removed.empty());
  EXPECT_EQ(fs::last_write_time(out), mtime);

  // Fewer pages: one file, the old parts removed, no temporary file left.
  pages.resize(2);
  auto small = BuildSitemap(pages, o);
  ASSERT_TRUE(small.has_value());
  ASSERT_EQ(small->documents.size(), 1u);
  auto shrunk = WriteSitemap(*small, out);
  ASSERT_TRUE(shrunk.has_value());
  EXPECT_EQ(shrunk->written.size(), 1u);
  EXPECT_EQ(shrunk->removed.size(), 4u);
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(dir.root())) names.insert(e.path().filename().string());
  EXPECT_EQ(names, (std::set<std::string>{"sitemap.xml", "sitemap-9.xml"}));
  EXPECT_EQ(dir.Read("sitemap.xml"), small->documents[0].content);
}

TEST(WriteSitemap, UnwritableFolderIsAnIoErrorNamingThePath) {
  TempDir dir;
  auto map = BuildSitemap({}, Options());
  ASSERT_TRUE(map.has_value());
  auto missing = WriteSitemap(*map, dir.root() / "no" / "such" / "sitemap.xml");
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code, ErrorCode::kIo);
  EXPECT_NE(missing.error().message.find("no/such/sitemap.xml"), std::string::npos) << missing.error().message;
  if (geteuid() != 0) {
    fs::create_directories(dir.root() / "ro");
    fs::permissions(dir.root() / "ro", fs::perms::owner_read | fs::perms::owner_exec);
    auto ro = WriteSitemap(*map, dir.root() / "ro" / "sitemap.xml");
    ASSERT_FALSE(ro.has_value());
    EXPECT_EQ(ro.error().code, ErrorCode::kIo);
  }
}

// --- PageSet ------------------------------------------------------------------------------------------------

std::vector<std::string> Paths(const PageSet& set, bool with_noindex = true) {
  std::vector<std::string> out;
  for (const Page& p : set.Pages()) {
    if (with_noindex || !p.noindex) out.push_back(p.rel_path + (p.noindex ? " (noindex)" : ""));
  }
  return out;
}

TEST(PageSet, SameWalkAndFiltersAsTheSync) {
  TempDir dir;
  dir.File("index.html");
  dir.File("about/index.htm");
  dir.File("css/site.css", "body{}");
  dir.File(".hidden/page.html");
  dir.File(".well-known/x.html");
  dir.File("drafts/wip.html");
  dir.File("drafts/keep.html");
  dir.File("private.html", R"(<head><meta name="robots" content="noindex,nofollow"></head>)");
  dir.File("sitemap.xml", "<urlset/>");
  WalkOptions filters;
  filters.exclude = {"drafts/"};
  filters.include = {"drafts/keep.html"};
  PageSet set(dir.root(), filters, "sitemap.xml");
  auto changed = set.Rescan();
  ASSERT_TRUE(changed.has_value()) << changed.error().message;
  EXPECT_TRUE(*changed);
  EXPECT_EQ(Paths(set), (std::vector<std::string>{".well-known/x.html", "about/index.htm", "drafts/keep.html",
                                                   "index.html", "private.html (noindex)"}));
  auto again = set.Rescan();
  ASSERT_TRUE(again.has_value());
  EXPECT_FALSE(*again);
}

TEST(PageSet, UpdateLooksAtTheChangedPathsOnly) {
  TempDir dir;
  dir.File("a.html");
  dir.File("blog/one.html");
  dir.File("blog/two.html");
  PageSet set(dir.root(), {}, "sitemap.xml");
  ASSERT_TRUE(set.Rescan().has_value());

  // A page gains a noindex (new mtime): read again.
  dir.File("a.html", R"(<meta name="robots" content="noindex">)");
  const auto later = fs::file_time_type::clock::now() + std::chrono::seconds(5);
  fs::last_write_time(dir.root() / "a.html", later);
  // A folder goes, a page comes; a CSS file is no page.
  fs::remove_all(dir.root() / "blog");
  dir.File("new/page.html");
  dir.File("new/style.css", "x");
  const std::vector<std::string> changed_paths = {"a.html", "blog", "new"};
  auto changed = set.Update(changed_paths);
  ASSERT_TRUE(changed.has_value());
  EXPECT_TRUE(*changed);
  EXPECT_EQ(Paths(set), (std::vector<std::string>{"a.html (noindex)", "new/page.html"}));

  // Nothing that matters changed.
  const std::vector<std::string> css = {"new/style.css"};
  auto unchanged = set.Update(css);
  ASSERT_TRUE(unchanged.has_value());
  EXPECT_FALSE(*unchanged);
  auto none = set.Update({});
  ASSERT_TRUE(none.has_value());
  EXPECT_FALSE(*none);
}

TEST(PageSet, MissingSourceIsAnInputError) {
  PageSet set("/nonexistent/sitesync/site", {}, "sitemap.xml");
  auto got = set.Rescan();
  ASSERT_FALSE(got.has_value());
  EXPECT_EQ(got.error().code, ErrorCode::kInput);
}

}  // namespace
}  // namespace sitesync::sitemap
