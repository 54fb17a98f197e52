#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "cli/cli.h"

namespace sitesync::cli {
namespace {

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sitesync-config-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Write(const std::string& text) {
    std::string path = dir_ + "/sitesync.yaml";
    std::ofstream(path) << text;
    return path;
  }
  std::string dir_;
};

TEST_F(ConfigTest, SectionsWithEveryKeyCommentedOutAreEmpty) {
  auto path = Write("source: public\ncdn:\n  # distribution: auto\nwatch:\nsitemap:\n");
  Settings s;
  auto ok = LoadConfig(path, s);
  ASSERT_TRUE(ok.has_value()) << ok.error().message;
  EXPECT_FALSE(s.distribution.has_value());
  EXPECT_FALSE(s.debounce_ms.has_value());
  EXPECT_FALSE(s.sitemap_enabled.has_value());
  auto bad = LoadConfig(Write("cdn: 3\n"), s);
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message.find("'cdn' must be a map"), std::string::npos) << bad.error().message;
}

TEST_F(ConfigTest, ReadsEveryKey) {
  auto path = Write(R"(# comment
source: public
destination: s3://my-site/blog
region: eu-west-1
endpoint: http://127.0.0.1:9000
path_style: true
profile: deploy
compare: checksum
delete: yes
max_deletes: -1
jobs: 16
exclude: ["*.map", "drafts/**"]
include: .htaccess
headers:
  - match: "*.css"
    cache_control: max-age=31536000
  - match: "*.txt"
    content_type: text/plain
cdn:
  distribution: auto
watch:
  debounce_ms: 100
  delete_delay_ms: 5000
)");
  Settings s;
  auto ok = LoadConfig(path, s);
  ASSERT_TRUE(ok.has_value()) << ok.error().message;
  EXPECT_EQ(*s.source, dir_ + "/public");
  EXPECT_EQ(*s.destination, "s3://my-site/blog");
  EXPECT_EQ(*s.region, "eu-west-1");
  EXPECT_EQ(*s.endpoint, "http://127.0.0.1:9000");
  EXPECT_TRUE(*s.path_style);
  EXPECT_EQ(*s.profile, "deploy");
  EXPECT_EQ(*s.compare, "checksum");
  EXPECT_TRUE(*s.delete_stale);
  EXPECT_EQ(*s.max_deletes, -1);
  EXPECT_EQ(*s.jobs, 16);
  EXPECT_EQ(*s.delete_delay_ms, 5000);
  EXPECT_EQ(s.exclude, (std::vector<std::string>{"*.map", "drafts/**"}));
  EXPECT_EQ(s.include, (std::vector<std::string>{".htaccess"}));
  ASSERT_EQ(s.headers.size(), 2u);
  EXPECT_EQ(s.headers[0].match, "*.css");
  EXPECT_EQ(*s.headers[0].cache_control, "max-age=31536000");
  EXPECT_FALSE(s.headers[0].content_type.has_value());
  EXPECT_EQ(*s.headers[1].content_type, "text/plain");
}

TEST_F(ConfigTest, WatchSourceKeys) {
  Settings s;
  ASSERT_TRUE(LoadConfig(Write("watch:\n  poll_ms: 500\n  rescan_interval_s: 10\n"), s).has_value());
  EXPECT_EQ(*s.poll_ms, 500);
  EXPECT_EQ(*s.rescan_interval_s, 10);
  Settings cli;
  cli.poll_ms = 200;  // --poll wins.
  ASSERT_TRUE(LoadConfig(Write("watch:\n  poll_ms: 500\n"), cli).has_value());
  EXPECT_EQ(*cli.poll_ms, 200);
  Settings bad;
  auto zero = LoadConfig(Write("watch:\n  rescan_interval_s: 0\n"), bad);
  ASSERT_FALSE(zero.has_value());
  EXPECT_NE(zero.error().message.find("'watch.rescan_interval_s' must be at least 1"), std::string::npos)
      << zero.error().message;
  auto negative = LoadConfig(Write("watch:\n  poll_ms: -5\n"), bad);
  ASSERT_FALSE(negative.has_value());
  EXPECT_NE(negative.error().message.find("watch.poll_ms"), std::string::npos) << negative.error().message;
}

TEST_F(ConfigTest, CommandLineWins) {
  auto path = Write("source: public\njobs: 4\ndelete: true\nexclude: [a]\n");
  Settings s;
  s.source = "/elsewhere";
  s.jobs = 99;
  s.delete_stale = false;
  s.exclude = {"b"};
  ASSERT_TRUE(LoadConfig(path, s).has_value());
  EXPECT_EQ(*s.source, "/elsewhere");
  EXPECT_EQ(*s.jobs, 99);
  EXPECT_FALSE(*s.delete_stale);
  EXPECT_EQ(s.exclude, (std::vector<std::string>{"a", "b"}));
}

TEST_F(ConfigTest, ErrorsNameFileAndLine) {
  struct Case {
    std::string text;
    std::string line;
    std::string words;
  } cases[] = {
      {"source: public\njobs: many\n", ":2:", "'jobs' must be a whole number"},
      {"source: public\ndestination: [unclosed\n", ":3:", "YAML syntax error"},
      {"source: public\n\nsoruce: x\n", ":3:", "unknown key 'soruce'"},
      {"delete: perhaps\n", ":1:", "'delete' must be true or false"},
      {"headers:\n  - cache_control: x\n", ":2:", "needs 'match: GLOB'"},
      {"headers:\n  - match: a\n    cache: x\n", ":3:", "unknown key 'headers.cache'"},
      {"cdn:\n  distrib: x\n", ":2:", "unknown key 'cdn.distrib'"},
      {"- just\n- a list\n", ":1:", "must be a map"},
      {"exclude: {a: b}\n", ":1:", "'exclude' must be a list"},
      {"sitemap:\n  enable: true\n", ":2:", "unknown key 'sitemap.enable'"},
      {"sitemap:\n  enabled: sure\n", ":2:", "'sitemap.enabled' must be true or false"},
      {"sitemap:\n  enabled: true\n  base_url: example.com\n", ":3:", "'sitemap.base_url': bad base URL"},
      {"sitemap:\n  output: '-'\n", ":2:", "'sitemap.output' must be a file path"},
      {"sitemap: true\n", ":1:", "'sitemap' must be a map"},
  };
  for (const auto& c : cases) {
    auto path = Write(c.text);
    Settings s;
    auto ok = LoadConfig(path, s);
    ASSERT_FALSE(ok.has_value()) << c.text;
    EXPECT_EQ(ok.error().code, aws::ErrorCode::kConfig);
    EXPECT_NE(ok.error().message.find(path + c.line), std::string::npos) << ok.error().message;
    EXPECT_NE(ok.error().message.find(c.words), std::string::npos) << ok.error().message;
  }
}

TEST_F(ConfigTest, MaxDeleteFractionFromZeroToOne) {
  Settings s;
  ASSERT_TRUE(LoadConfig(Write("max_delete_fraction: 0.8\n"), s).has_value());
  EXPECT_EQ(s.max_delete_fraction, std::optional<double>(0.8));
  Settings given;
  given.max_delete_fraction = 1;  // the command line wins
  ASSERT_TRUE(LoadConfig(Write("max_delete_fraction: 0.2\n"), given).has_value());
  EXPECT_EQ(given.max_delete_fraction, std::optional<double>(1));
  for (const char* bad : {"max_delete_fraction: 1.5\n", "max_delete_fraction: -0.1\n", "max_delete_fraction: half\n",
                          "max_delete_fraction: .nan\n"}) {
    Settings t;
    auto ok = LoadConfig(Write(bad), t);
    ASSERT_FALSE(ok.has_value()) << bad;
    EXPECT_EQ(ok.error().code, aws::ErrorCode::kConfig);
    EXPECT_NE(ok.error().message.find("'max_delete_fraction' must be"), std::string::npos) << ok.error().message;
  }
}

TEST_F(ConfigTest, SitemapKeys) {
  auto path = Write("source: public\nsitemap:\n  enabled: true\n  base_url: https://example.com/blog\n"
                    "  output: maps/sitemap.xml\n");
  Settings s;
  auto ok = LoadConfig(path, s);
  ASSERT_TRUE(ok.has_value()) << ok.error().message;
  EXPECT_TRUE(*s.sitemap_enabled);
  EXPECT_EQ(*s.base_url, "https://example.com/blog");
  // sitemap.output is relative to SOURCE, which is relative to the config file's folder.
  EXPECT_EQ(*s.sitemap_output, dir_ + "/public/maps/sitemap.xml");

  // The command line wins: --base-url, -o (relative to the current folder, untouched), and SOURCE (the config's
  // output then goes under the command line's SOURCE).
  Settings cli;
  cli.base_url = "https://other.example/";
  cli.sitemap_output = "out.xml";
  ASSERT_TRUE(LoadConfig(path, cli).has_value());
  EXPECT_EQ(*cli.base_url, "https://other.example/");
  EXPECT_EQ(*cli.sitemap_output, "out.xml");
  Settings src;
  src.source = "/srv/site";
  ASSERT_TRUE(LoadConfig(path, src).has_value());
  EXPECT_EQ(*src.sitemap_output, "/srv/site/maps/sitemap.xml");

  auto absolute = Write("sitemap:\n  output: /var/www/sitemap.xml\n");
  Settings abs;
  abs.source = "/srv/site";
  ASSERT_TRUE(LoadConfig(absolute, abs).has_value());
  EXPECT_EQ(*abs.sitemap_output, "/var/www/sitemap.xml");
  EXPECT_FALSE(abs.sitemap_enabled.has_value());
}

TEST_F(ConfigTest, CdnMaxPathsAboveCloudFrontsLimitAndUrlPrefix) {
  Settings s;
  auto over = LoadConfig(Write("cdn:\n  max_paths: 3001\n"), s);
  ASSERT_FALSE(over.has_value());
  EXPECT_EQ(over.error().code, aws::ErrorCode::kConfig);
  EXPECT_NE(over.error().message.find("cdn.max_paths"), std::string::npos) << over.error().message;
  EXPECT_NE(over.error().message.find("3000"), std::string::npos) << over.error().message;
  Settings at_limit;
  ASSERT_TRUE(LoadConfig(Write("cdn:\n  max_paths: 3000\n  url_prefix: /news\n"), at_limit).has_value());
  EXPECT_EQ(at_limit.max_paths, 3000);
  EXPECT_EQ(at_limit.url_prefix, "/news");
  auto cdn = ResolveCdn(at_limit);
  ASSERT_TRUE(cdn.has_value()) << cdn.error().message;
  EXPECT_EQ(cdn->url_prefix, "news/");
  Settings bad;
  EXPECT_FALSE(LoadConfig(Write("cdn:\n  url_prefix: \"/a?b\"\n"), bad).has_value());
  // Settings that bypass the file (a test, a future option) are checked again when resolved.
  Settings direct;
  direct.max_paths = 5000;
  auto refused = ResolveCdn(direct);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, aws::ErrorCode::kConfig);
}

TEST_F(ConfigTest, CdnSkipAndInvalidateNew) {
  Settings s;
  ASSERT_TRUE(LoadConfig(Write("cdn:\n  skip: [\"*.min.*.css\", \"assets/**\"]\n  invalidate_new: false\n"), s)
                  .has_value());
  auto cdn = ResolveCdn(s);
  ASSERT_TRUE(cdn.has_value()) << cdn.error().message;
  EXPECT_EQ(cdn->paths.skip, (std::vector<std::string>{"*.min.*.css", "assets/**"}));
  EXPECT_FALSE(cdn->paths.invalidate_new);
  Settings none;
  auto defaults = ResolveCdn(none);
  ASSERT_TRUE(defaults.has_value());
  EXPECT_TRUE(defaults->paths.skip.empty());
  EXPECT_TRUE(defaults->paths.invalidate_new);
  for (const char* text : {"cdn:\n  skip: \"*.css\"\n", "cdn:\n  skip: [\"\"]\n", "cdn:\n  skip: {a: b}\n",
                           "cdn:\n  skip: [[a]]\n", "cdn:\n  invalidate_new: maybe\n"}) {
    Settings bad;
    auto r = LoadConfig(Write(text), bad);
    ASSERT_FALSE(r.has_value()) << text;
    EXPECT_EQ(r.error().code, aws::ErrorCode::kConfig) << text;
    EXPECT_NE(r.error().message.find("cdn."), std::string::npos) << r.error().message;
  }
}

TEST_F(ConfigTest, EmptyFileIsEmptyConfigAndMissingFileFails) {
  Settings s;
  EXPECT_TRUE(LoadConfig(Write(""), s).has_value());
  EXPECT_FALSE(s.source.has_value());
  auto missing = LoadConfig(dir_ + "/nope.yaml", s);
  ASSERT_FALSE(missing.has_value());
  EXPECT_NE(missing.error().message.find("nope.yaml"), std::string::npos);
}

// A header value is sent as one line: a CR or LF in it would start another header (injection). Control characters
// are a config error (exit 2) that names the rule by its match glob and the key; a tab is fine.
TEST_F(ConfigTest, HeaderValuesWithControlCharactersAreRefused) {
  struct Case {
    std::string yaml_value;  // as written in double quotes
    std::string what;        // expected in the message
  };
  const Case cases[] = {
      {R"(max-age=60\r\nX-Injected: 1)", "a carriage return (CR) at byte 11"},
      {R"(max-age=60\nSet-Cookie: a=b)", "a line feed (LF) at byte 11"},
      {R"(max-age=60\0)", "a NUL byte at byte 11"},
      {R"(max-age=\x01)", "the control character 0x01 at byte 9"},
      {R"(max-age=60\x7F)", "a DEL character (0x7F) at byte 11"},
  };
  for (const Case& c : cases) {
    Settings s;
    auto bad = LoadConfig(Write("headers:\n  - cache_control: \"" + c.yaml_value + "\"\n    match: \"*.html\"\n"), s);
    ASSERT_FALSE(bad.has_value()) << c.yaml_value;
    EXPECT_EQ(bad.error().code, aws::ErrorCode::kConfig);
    const std::string& m = bad.error().message;
    EXPECT_NE(m.find("sitesync.yaml:2: headers rule with match '*.html' (line 2): 'cache_control' contains " +
                     c.what), std::string::npos)
        << m;
  }
  Settings s;
  auto type = LoadConfig(Write("headers:\n  - match: \"*.txt\"\n    content_type: \"text/plain\\n\"\n"), s);
  ASSERT_FALSE(type.has_value());
  EXPECT_NE(type.error().message.find("headers rule with match '*.txt' (line 2): 'content_type' contains a line feed"),
            std::string::npos)
      << type.error().message;
  // A literal block ends with a newline: refused too (it would end the header early).
  auto block = LoadConfig(Write("headers:\n  - match: \"*\"\n    cache_control: |\n      no-cache\n"), s);
  ASSERT_FALSE(block.has_value());
  // Tab and ordinary text, also UTF-8, are fine.
  Settings ok_settings;
  auto ok = LoadConfig(Write("headers:\n  - match: \"*\"\n    cache_control: \"public,\\tmax-age=60\"\n"
                             "    content_type: \"text/plain; charset=utf-8; name=\\\"café\\\"\"\n"),
                       ok_settings);
  ASSERT_TRUE(ok.has_value()) << ok.error().message;
  ASSERT_EQ(ok_settings.headers.size(), 1u);
  EXPECT_EQ(ok_settings.headers[0].cache_control, "public,\tmax-age=60");
}

// Issue 14: every header per glob. Each field is read into its HeaderRule member; metadata names are lowercased
// and sorted.
TEST_F(ConfigTest, HeaderRulesTakeEveryHeaderField) {
  Settings s;
  auto ok = LoadConfig(Write(R"(headers:
  - match: "*"
    cache_control: "max-age=300"
    content_type: "text/plain"
    content_encoding: gzip
    content_disposition: 'attachment; filename="a.txt"'
    content_language: de-CH
    metadata:
      Author: Docs Team
      build-id: 42
      empty: ""
    storage_class: STANDARD_IA
    acl: public-read
    sse: aws:kms
    kms_key_id: 1234abcd-12ab-34cd-56ef-1234567890ab
    website_redirect: https://example.com/new/
  - match: "*.html"
    sse: AES256
    metadata: {}
    storage_class: ""
)"),
                       s);
  ASSERT_TRUE(ok.has_value()) << ok.error().message;
  ASSERT_EQ(s.headers.size(), 2u);
  const sitemap::HeaderRule& r = s.headers[0];
  EXPECT_EQ(r.content_encoding, "gzip");
  EXPECT_EQ(r.content_disposition, "attachment; filename=\"a.txt\"");
  EXPECT_EQ(r.content_language, "de-CH");
  ASSERT_TRUE(r.metadata.has_value());
  EXPECT_EQ(*r.metadata, (std::vector<std::pair<std::string, std::string>>{
                             {"author", "Docs Team"}, {"build-id", "42"}, {"empty", ""}}));
  EXPECT_EQ(r.storage_class, "STANDARD_IA");
  EXPECT_EQ(r.acl, "public-read");
  EXPECT_EQ(r.sse, "aws:kms");
  EXPECT_EQ(r.kms_key_id, "1234abcd-12ab-34cd-56ef-1234567890ab");
  EXPECT_EQ(r.website_redirect, "https://example.com/new/");
  const sitemap::HeaderRule& html = s.headers[1];
  EXPECT_EQ(html.sse, "AES256");
  ASSERT_TRUE(html.metadata.has_value());  // {} replaces the earlier rules' metadata with none
  EXPECT_TRUE(html.metadata->empty());
  EXPECT_EQ(html.storage_class, "");  // empty: not sent, undoing an earlier rule
  EXPECT_FALSE(html.acl.has_value());
  // Every allowed value of the enumerations.
  for (std::string_view v : {"STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING",
                             "GLACIER", "DEEP_ARCHIVE", "GLACIER_IR", "EXPRESS_ONEZONE"}) {
    Settings t;
    auto one = LoadConfig(Write(fmt::format("headers:\n  - match: x\n    storage_class: {}\n", v)), t);
    EXPECT_TRUE(one.has_value()) << v;
  }
  for (std::string_view v : {"private", "public-read", "public-read-write", "authenticated-read", "aws-exec-read",
                             "bucket-owner-read", "bucket-owner-full-control"}) {
    Settings t;
    auto one = LoadConfig(Write(fmt::format("headers:\n  - match: x\n    acl: {}\n", v)), t);
    EXPECT_TRUE(one.has_value()) << v;
  }
  for (std::string_view v : {"AES256", "aws:kms", "aws:kms:dsse"}) {
    Settings t;
    auto one = LoadConfig(Write(fmt::format("headers:\n  - match: x\n    sse: \"{}\"\n", v)), t);
    EXPECT_TRUE(one.has_value()) << v;
  }
  for (std::string_view v : {"/new/", "/a.html", "http://example.com", "https://example.com/a?b=c#d"}) {
    Settings t;
    auto one = LoadConfig(Write(fmt::format("headers:\n  - match: x\n    website_redirect: \"{}\"\n", v)), t);
    EXPECT_TRUE(one.has_value()) << v;
  }
}

// A value S3 would refuse (or store other than written) is a config error (exit 2) naming the file and line of
// the value, the rule by its match and line, and what is allowed.
TEST_F(ConfigTest, BadHeaderFieldValuesNameTheRuleAndTheAllowedValues) {
  struct Case {
    std::string field_yaml;  // the rule's lines after "match", indented 4
    std::string where;       // "sitesync.yaml:N:"
    std::vector<std::string> expected;
  };
  const std::vector<Case> cases = {
      {"    storage_class: standard\n", ":4:",
       {"headers rule with match 'docs/**' (line 3): 'storage_class' is 'standard'; use one of STANDARD, "
        "REDUCED_REDUNDANCY, STANDARD_IA, ONEZONE_IA, INTELLIGENT_TIERING, GLACIER, DEEP_ARCHIVE, GLACIER_IR, "
        "EXPRESS_ONEZONE"}},
      {"    storage_class: OUTPOSTS\n", ":4:", {"'storage_class' is 'OUTPOSTS'"}},
      {"    acl: public\n", ":4:",
       {"(line 3): 'acl' is 'public'; use a canned ACL: one of private, public-read, public-read-write, "
        "authenticated-read, aws-exec-read, bucket-owner-read, bucket-owner-full-control"}},
      {"    sse: kms\n", ":4:", {"(line 3): 'sse' is 'kms'; use one of AES256, aws:kms, aws:kms:dsse"}},
      {"    kms_key_id: abc\n", ":4:", {"(line 3): 'kms_key_id' is given without 'sse: aws:kms'"}},
      {"    sse: AES256\n    kms_key_id: abc\n", ":5:", {"'kms_key_id' is given without 'sse: aws:kms'"}},
      {"    website_redirect: new.html\n", ":4:",
       {"(line 3): 'website_redirect' is 'new.html'; use a path starting with '/' or an absolute http:// or "
        "https:// URL"}},
      {"    website_redirect: ftp://x/\n", ":4:", {"'website_redirect' is 'ftp://x/'"}},
      {"    website_redirect: \"/a b\"\n", ":4:", {"'website_redirect' is '/a b'"}},
      {"    website_redirect: \"/caf\xC3\xA9\"\n", ":4:", {"without spaces or non-ASCII characters"}},
      {"    metadata:\n      \"my name\": x\n", ":5:", {"(line 3): metadata name 'my name' is not a header name"}},
      {"    metadata:\n      \"a:b\": x\n", ":5:", {"metadata name 'a:b' is not a header name"}},
      {"    metadata:\n      X-Amz-Meta-Author: x\n", ":5:",
       {"metadata name 'X-Amz-Meta-Author' includes the x-amz-meta- prefix; write it without: 'author'"}},
      {"    metadata:\n      author: \"caf\xC3\xA9\"\n", ":5:",
       {"metadata 'author' has a value with a character that is not printable ASCII"}},
      {"    metadata:\n      Author: a\n      author: b\n", ":6:", {"metadata name 'author' is given twice"}},
      {"    metadata:\n      big: " + std::string(2100, 'x') + "\n", ":5:",
       {"'metadata' holds 2103 bytes of names and values; S3 takes at most 2048"}},
      {"    metadata: [a, b]\n", ":4:", {"'headers.metadata' must be a map of names to values"}},
      {"    content_language: \"en\\nX: y\"\n", ":4:",
       {"(line 3): 'content_language' contains a line feed (LF)"}},
      {"    content_disposition: [a]\n", ":4:", {"'headers.content_disposition' must be a string"}},
  };
  for (const Case& c : cases) {
    Settings s;
    auto bad = LoadConfig(Write("# a comment\nheaders:\n  - match: \"docs/**\"\n" + c.field_yaml), s);
    ASSERT_FALSE(bad.has_value()) << c.field_yaml;
    EXPECT_EQ(bad.error().code, aws::ErrorCode::kConfig);
    const std::string& m = bad.error().message;
    EXPECT_NE(m.find("sitesync.yaml" + c.where), std::string::npos) << c.field_yaml << "\n" << m;
    for (const std::string& e : c.expected) EXPECT_NE(m.find(e), std::string::npos) << c.field_yaml << "\n" << m;
  }
  // An unknown key lists every known one.
  Settings s;
  auto unknown = LoadConfig(Write("headers:\n  - match: a\n    storage: x\n"), s);
  ASSERT_FALSE(unknown.has_value());
  EXPECT_NE(unknown.error().message.find(
                "unknown key 'headers.storage' (known: match, cache_control, content_type, content_encoding, "
                "content_disposition, content_language, metadata, storage_class, acl, sse, kms_key_id, "
                "website_redirect)"),
            std::string::npos)
      << unknown.error().message;
}

TEST_F(ConfigTest, CompressRulesInOrder) {
  Settings s;
  auto ok = LoadConfig(Write("compress:\n  - match: \"*.html\"\n    encoding: gzip\n"
                             "  - {match: \"*.css\", encoding: br}\n  - encoding: br\n    match: \"/js/**\"\n"),
                       s);
  ASSERT_TRUE(ok.has_value()) << ok.error().message;
  ASSERT_EQ(s.compress.size(), 3u);
  EXPECT_EQ(s.compress[0].match, "*.html");
  EXPECT_EQ(s.compress[0].encoding, sitemap::Encoding::kGzip);
  EXPECT_EQ(s.compress[1].match, "*.css");
  EXPECT_EQ(s.compress[1].encoding, sitemap::Encoding::kBrotli);
  EXPECT_EQ(s.compress[2].match, "/js/**");
  EXPECT_EQ(s.compress[2].encoding, sitemap::Encoding::kBrotli);
  Settings none;
  ASSERT_TRUE(LoadConfig(Write("compress: []\n"), none).has_value());
  EXPECT_TRUE(none.compress.empty());
}

TEST_F(ConfigTest, CompressErrorsNameTheRuleAndTheAllowedValues) {
  struct Case {
    std::string yaml;
    std::string message;  // expected in the error
  };
  const Case cases[] = {
      {"compress:\n  - match: \"*.html\"\n    encoding: zstd\n",
       "sitesync.yaml:3: compress rule with match '*.html': unknown encoding 'zstd' (use gzip or br)"},
      {"compress:\n  - match: \"*.html\"\n    encoding: brotli\n", "unknown encoding 'brotli' (use gzip or br)"},
      {"compress:\n  - level: 9\n    match: \"*.js\"\n    encoding: gzip\n",
       "sitesync.yaml:2: compress rule with match '*.js': unknown key 'level' (known: match, encoding)"},
      {"compress:\n  - match: \"*.js\"\n    encoding: gzip\n  - encoding: br\n",
       "sitesync.yaml:4: compress rule 2 needs 'match: GLOB'"},
      {"compress:\n  - match: \"*.js\"\n", "compress rule with match '*.js' needs 'encoding: gzip' or 'encoding: br'"},
      {"compress:\n  - match: \"*.js\"\n    encoding: [gzip]\n", "'compress.encoding' must be gzip or br"},
      {"compress: \"*.html\"\n", "'compress' must be a list of {match: GLOB, encoding: gzip|br}"},
      {"compress:\n  - \"*.html\"\n", "compress rule 1 must be a map {match: GLOB, encoding: gzip|br}"},
  };
  for (const Case& c : cases) {
    Settings s;
    auto bad = LoadConfig(Write(c.yaml), s);
    ASSERT_FALSE(bad.has_value()) << c.yaml;
    EXPECT_EQ(bad.error().code, aws::ErrorCode::kConfig) << c.yaml;
    EXPECT_NE(bad.error().message.find(c.message), std::string::npos) << bad.error().message;
  }
  Settings s;
  auto typo = LoadConfig(Write("compres:\n  - match: x\n"), s);
  ASSERT_FALSE(typo.has_value());
  EXPECT_NE(typo.error().message.find("headers, compress, cdn"), std::string::npos) << typo.error().message;
}

TEST(HeaderValueProblem, TableOfBytes) {
  EXPECT_FALSE(aws::HeaderValueProblem("").has_value());
  EXPECT_FALSE(aws::HeaderValueProblem("max-age=31536000, immutable").has_value());
  EXPECT_FALSE(aws::HeaderValueProblem("a\tb").has_value());
  EXPECT_FALSE(aws::HeaderValueProblem("caf\xC3\xA9 \x80\xFF").has_value()) << "obs-text (0x80-0xFF) is allowed";
  for (int c = 0; c < 0x20; ++c) {
    if (c == '\t') continue;
    EXPECT_TRUE(aws::HeaderValueProblem(std::string("x") + static_cast<char>(c)).has_value()) << c;
  }
  EXPECT_TRUE(aws::HeaderValueProblem("x\x7F").has_value());
}

}  // namespace
}  // namespace sitesync::cli
