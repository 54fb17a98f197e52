#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "cli/commands.h"
#include "sitemap/sitemap.h"

namespace sitesync::cli {
namespace {

SiteFolder Folder(std::map<std::string, std::string> files, std::set<std::string> dirs = {}) {
  return SiteFolder{std::move(files), std::move(dirs)};
}

TEST(DetectGenerator, EachGeneratorAndItsOutputFolder) {
  struct Case {
    std::string what;
    SiteFolder folder;
    std::string generator, source, site_url;
  } cases[] = {
      {"hugo.toml", Folder({{"hugo.toml", "baseURL = 'https://example.org/'\ntitle = 'My New Hugo Site'\n"}}),
       "Hugo", "public/", "https://example.org/"},
      {"hugo.yaml with publishDir", Folder({{"hugo.yaml", "baseURL: https://h.example\npublishDir: ./docs\n"}}),
       "Hugo", "docs/", "https://h.example/"},
      {"hugo.json", Folder({{"hugo.json", R"({"baseURL": "https://j.example/", "title": "x"})"}}), "Hugo",
       "public/", "https://j.example/"},
      {"config.toml with lowercase baseurl (Hugo keys ignore case)",
       Folder({{"config.toml", "baseurl = \"https://lower.example/\"\n"}}), "Hugo", "public/",
       "https://lower.example/"},
      {"config.toml beside archetypes/", Folder({{"config.toml", "title = \"x\"\n"}}, {"archetypes", "content"}),
       "Hugo", "public/", ""},
      {"Hugo config dir", Folder({{"config/_default/hugo.toml", "baseURL = \"https://dir.example/\"\n"}}), "Hugo",
       "public/", "https://dir.example/"},
      {"config.yaml with baseURL", Folder({{"config.yaml", "baseURL: https://y.example/\n"}}), "Hugo", "public/",
       "https://y.example/"},
      {"Zola config.toml", Folder({{"config.toml", "base_url = \"https://zola.example\"\ncompile_sass = true\n"
                                                   "[markdown]\nhighlight_code = true\n"}},
                                  {"templates", "themes"}),
       "Zola", "public/", "https://zola.example/"},
      {"Zola output_dir", Folder({{"config.toml", "base_url = 'https://z.example/'\noutput_dir = \"site\"\n"}}),
       "Zola", "site/", "https://z.example/"},
      {"Zola base_url wins over a baseURL comment",
       Folder({{"config.toml", "# baseURL = \"https://not-hugo\"\nbase_url = \"https://zola2.example\"\n"}}),
       "Zola", "public/", "https://zola2.example/"},
      {"Hugo baseURL wins over a base_url comment",
       Folder({{"config.toml", "# base_url = \"https://not-zola\"\nbaseURL = \"https://hugo2.example\"\n"}}),
       "Hugo", "public/", "https://hugo2.example/"},
      {"Jekyll", Folder({{"_config.yml", "title: Blog\nurl: \"https://example.com\"\nbaseurl: \"/blog\"\n"}}),
       "Jekyll", "_site/", "https://example.com/blog/"},
      {"Jekyll destination", Folder({{"_config.yml", "destination: ./build\n"}}), "Jekyll", "build/", ""},
      {"Eleventy .eleventy.js", Folder({{".eleventy.js", "module.exports = function(c) {\n  return { dir: { input: "
                                                         "\"src\", output: \"dist\" } };\n};\n"}}),
       "Eleventy", "dist/", ""},
      {"Eleventy 3 setOutputDirectory",
       Folder({{"eleventy.config.mjs", "export default function (c) { c.setOutputDirectory('www'); }\n"}}),
       "Eleventy", "www/", ""},
      {"Eleventy defaults", Folder({{"eleventy.config.cjs", "module.exports = () => {};\n"}}), "Eleventy", "_site/",
       ""},
      {"Eleventy by package.json",
       Folder({{"package.json", R"({"name": "s", "devDependencies": {"@11ty/eleventy": "^3.0.0"}})"}}), "Eleventy",
       "_site/", ""},
      {"Astro", Folder({{"astro.config.mjs", "import { defineConfig } from 'astro/config';\nexport default "
                                             "defineConfig({\n  site: 'https://astro.example',\n  outDir: "
                                             "'./build',\n});\n"}}),
       "Astro", "build/", "https://astro.example/"},
      {"Astro defaults", Folder({{"astro.config.ts", "export default defineConfig({});\n"}}), "Astro", "dist/", ""},
      {"Astro by package.json", Folder({{"package.json", R"({"dependencies": {"astro": "^4.0.0"}})"}}), "Astro",
       "dist/", ""},
  };
  for (const Case& c : cases) {
    const Detection d = DetectGenerator(c.folder);
    EXPECT_EQ(d.generator, c.generator) << c.what;
    EXPECT_EQ(d.source, c.source) << c.what;
    EXPECT_EQ(d.site_url, c.site_url) << c.what;
    EXPECT_FALSE(d.evidence.empty()) << c.what;
  }
}

TEST(DetectGenerator, NothingFound) {
  // A config.toml that is neither Zola's (no top-level base_url) nor Hugo's.
  for (const SiteFolder& f : {Folder({}), Folder({{"config.toml", "[extra]\nbase_url = \"https://x\"\n"}}),
                              Folder({{"package.json", R"({"dependencies": {"react": "18"}})"}}),
                              Folder({{"package.json", "{not json"}})}) {
    const Detection d = DetectGenerator(f);
    EXPECT_EQ(d.generator, "");
    EXPECT_EQ(d.source, "public/");
    EXPECT_EQ(d.evidence, "");
  }
  // A built site already there is the best guess.
  const Detection d = DetectGenerator(Folder({{"dist/index.html", ""}}));
  EXPECT_EQ(d.generator, "");
  EXPECT_EQ(d.source, "dist/");
  EXPECT_EQ(d.evidence, "dist/index.html");
}

TEST(DetectGenerator, BrokenFilesDoNotThrow) {
  const Detection d = DetectGenerator(Folder({{"hugo.yaml", "baseURL: [unclosed\n"}, {"hugo.toml", "= = ="}}));
  EXPECT_EQ(d.generator, "Hugo");
  EXPECT_EQ(d.source, "public/");
  EXPECT_EQ(DetectGenerator(Folder({{"_config.yml", ": : :\n\t- x"}})).generator, "Jekyll");
}

TEST(DetectGenerator, SeveralMatchesAreNamed) {
  const Detection d = DetectGenerator(
      Folder({{"hugo.toml", "baseURL = 'https://example.org/'\n"},
              {"package.json", R"({"devDependencies": {"@11ty/eleventy": "2"}})"}}));
  EXPECT_EQ(d.generator, "Hugo");
  ASSERT_EQ(d.others.size(), 1u);
  EXPECT_EQ(d.others[0], "Eleventy");
}

class InitConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sitesync-init-XXXXXX";
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

// The Cache-Control the header rules give a path: the last matching rule wins (sitemap.h).
std::string CacheControl(const Settings& s, const std::string& path) {
  std::string out;
  for (const auto& rule : s.headers) {
    if (rule.cache_control && sitemap::GlobMatch(rule.match, path)) out = *rule.cache_control;
  }
  return out;
}

TEST_F(InitConfigTest, WrittenFileLoadsWithTheConfigLoader) {
  for (const char* generator : {"Hugo", "Zola", "Jekyll", "Eleventy", "Astro", ""}) {
    Detection d;
    d.generator = generator;
    d.evidence = "x.toml";
    d.source = "public/";
    d.site_url = "https://example.org/";
    const std::string text = InitConfigText(d, "public/");
    Settings s;
    auto ok = LoadConfig(Write(text), s);
    ASSERT_TRUE(ok.has_value()) << generator << ": " << ok.error().message << "\n" << text;
    EXPECT_EQ(s.source, dir_ + "/public/") << generator;
    EXPECT_FALSE(s.destination.has_value()) << "the destination stays commented out until edited";
    EXPECT_FALSE(s.delete_stale.has_value()) << "delete stays off";
    EXPECT_EQ(s.distribution, "auto");
    // Generators rewrite pages at the same size: their sites are compared by content (issue 14).
    EXPECT_EQ(s.compare, std::string(generator).empty() ? std::nullopt : std::optional<std::string>("checksum"))
        << generator;
    EXPECT_NE(text.find("# destination: s3://YOUR-BUCKET"), std::string::npos);
    EXPECT_NE(text.find("#   base_url: https://example.org/"), std::string::npos);

    const std::string forever = "public, max-age=31536000, immutable";
    const std::string revalidate = "public, max-age=0, must-revalidate";
    EXPECT_EQ(CacheControl(s, "index.html"), revalidate);
    EXPECT_EQ(CacheControl(s, "blog/post/index.html"), revalidate);
    EXPECT_EQ(CacheControl(s, "sitemap.xml"), revalidate);
    EXPECT_EQ(CacheControl(s, "index.xml"), revalidate);
    EXPECT_EQ(CacheControl(s, "img/photo.png"), forever);
    EXPECT_EQ(CacheControl(s, "a/b/c.JPG"), "public, max-age=300") << "globs are case-sensitive";
    EXPECT_EQ(CacheControl(s, "fonts/body.woff2"), forever);
    EXPECT_EQ(CacheControl(s, "css/main.min.4a5b6c7d8e9f0a1b2c3d.css"), forever);
    EXPECT_EQ(CacheControl(s, "js/app.0123abcd.js"), forever);
    EXPECT_EQ(CacheControl(s, "css/site.css"), "public, max-age=300");
    EXPECT_EQ(CacheControl(s, "js/app.js"), "public, max-age=300");
    EXPECT_EQ(CacheControl(s, "robots.txt"), "public, max-age=300");
    if (std::string(generator) == "Astro") {
      EXPECT_EQ(CacheControl(s, "_astro/index.BcS1f3xy.css"), forever);
    }
  }
}

// Generators rewrite pages at the same size (pagination, feeds): their sites compare by checksum, which the
// record makes about as cheap as size; the comment says both, and where the record lives.
TEST_F(InitConfigTest, GeneratorSitesCompareByChecksum) {
  for (const char* generator : {"Hugo", "Zola", "Jekyll", "Eleventy", "Astro"}) {
    Detection d{generator, "x.toml", "public/", "", "", {}};
    const std::string text = InitConfigText(d, "public/");
    Settings s;
    auto ok = LoadConfig(Write(text), s);
    ASSERT_TRUE(ok.has_value()) << generator << ": " << ok.error().message << "\n" << text;
    EXPECT_EQ(s.compare, std::optional<std::string>("checksum")) << generator;
    const auto at = text.find("\ncompare: checksum\n");
    ASSERT_NE(at, std::string::npos) << generator << "\n" << text;
    const std::string comment = text.substr(text.rfind("\n\n", at), at - text.rfind("\n\n", at));
    for (const char* why : {"same size", "pagination", "feed.xml", "$XDG_CACHE_HOME/sitesync", "~/.cache/sitesync",
                            "about what `size` costs", generator}) {
      EXPECT_NE(comment.find(why), std::string::npos) << generator << ": the comment says " << why << "\n" << comment;
    }
  }
  // No generator found: the same explanation, the key left commented out (size stays the default).
  Detection none{"", "", "public/", "", "", {}};
  const std::string text = InitConfigText(none, "public/");
  Settings s;
  auto ok = LoadConfig(Write(text), s);
  ASSERT_TRUE(ok.has_value()) << ok.error().message;
  EXPECT_FALSE(s.compare.has_value());
  EXPECT_NE(text.find("\n# compare: checksum\n"), std::string::npos);
  EXPECT_EQ(text.find("\ncompare:"), std::string::npos);
}

TEST_F(InitConfigTest, UncommentedKeysLoadToo) {
  Detection d{"Hugo", "hugo.toml", "public/", "", "hugo", {}};
  std::string text = InitConfigText(d, "public/");
  for (const std::string key : {"destination:", "region:", "delete:", "max_deletes:", "max_delete_fraction:"}) {
    const auto p = text.find("# " + key);
    ASSERT_NE(p, std::string::npos) << key;
    text.erase(p, 2);
  }
  auto p = text.find("s3://YOUR-BUCKET");
  text.replace(p, 16, "s3://my-site/blog");
  Settings s;
  auto ok = LoadConfig(Write(text), s);
  ASSERT_TRUE(ok.has_value()) << ok.error().message << "\n" << text;
  EXPECT_EQ(s.destination, "s3://my-site/blog");
  EXPECT_EQ(s.region, "us-east-1");
  EXPECT_EQ(s.delete_stale, true);
  EXPECT_EQ(s.max_deletes, 256);
  EXPECT_EQ(s.max_delete_fraction, std::optional<double>(0.5));
}

TEST_F(InitConfigTest, OddSourcePathsAreQuoted) {
  for (const std::string source : {"../my site/", "out: x/", "#public/", "-dir/", "a\"b\\c/"}) {
    Detection d{"", "", source, "", "", {}};
    Settings s;
    auto ok = LoadConfig(Write(InitConfigText(d, source)), s);
    ASSERT_TRUE(ok.has_value()) << source << ": " << ok.error().message;
    EXPECT_EQ(s.source, (std::filesystem::path(dir_) / source).string()) << source;
  }
}

TEST_F(InitConfigTest, ReadSiteFolderReadsConfigsAndMarkers) {
  std::filesystem::create_directories(dir_ + "/archetypes");
  std::filesystem::create_directories(dir_ + "/_site");
  std::ofstream(dir_ + "/config.toml") << "title = 'x'\n";
  std::ofstream(dir_ + "/_site/index.html") << "<p>";
  std::ofstream(dir_ + "/unrelated.toml") << "x = 1\n";
  const SiteFolder f = ReadSiteFolder(dir_);
  EXPECT_EQ(f.files.at("config.toml"), "title = 'x'\n");
  EXPECT_TRUE(f.files.contains("_site/index.html"));
  EXPECT_FALSE(f.files.contains("unrelated.toml"));
  EXPECT_TRUE(f.dirs.contains("archetypes"));
  EXPECT_EQ(DetectGenerator(f).generator, "Hugo");
}

TEST(Article, ByTheFirstLetter) {
  EXPECT_EQ(Article("Eleventy"), "an");
  EXPECT_EQ(Article("Astro"), "an");
  EXPECT_EQ(Article("Hugo"), "a");
  EXPECT_EQ(Article("Jekyll"), "a");
  EXPECT_EQ(Article("Zola"), "a");
  EXPECT_EQ(Article(""), "a");
}

TEST(AddJekyllExclude, EditsWhatIsSafe) {
  using O = ExcludeEdit::Outcome;
  struct Case {
    const char* what;
    std::string before;
    O outcome;
    std::string after;  // kAdded only
  } cases[] = {
      {"no exclude key: a block list at the end", "title: Blog\nurl: https://x.example\n", O::kAdded,
       "title: Blog\nurl: https://x.example\n\n# sitesync's config is not part of the site (added by sitesync "
       "init).\nexclude:\n  - sitesync.yaml\n"},
      {"no final newline", "title: Blog", O::kAdded,
       "title: Blog\n\n# sitesync's config is not part of the site (added by sitesync init).\nexclude:\n  - "
       "sitesync.yaml\n"},
      {"empty file", "", O::kAdded,
       "\n# sitesync's config is not part of the site (added by sitesync init).\nexclude:\n  - sitesync.yaml\n"},
      {"block list: one more item, same indent",
       "title: x\nexclude:\n    - Gemfile\n    - \"node_modules\"  # deps\nbaseurl: /b\n", O::kAdded,
       "title: x\nexclude:\n    - Gemfile\n    - \"node_modules\"  # deps\n    - sitesync.yaml\nbaseurl: /b\n"},
      {"block list at column 0, comment and blank line inside, last key",
       "exclude:\n- a\n\n# b next\n- b", O::kAdded, "exclude:\n- a\n\n# b next\n- b\n- sitesync.yaml\n"},
      {"empty exclude:", "exclude:\ntitle: t\n", O::kAdded, "exclude:\n  - sitesync.yaml\ntitle: t\n"},
      {"already there (quoted)", "exclude:\n  - 'sitesync.yaml'\n", O::kAlreadyThere, ""},
      {"a key that only starts with exclude", "excludes: x\nexclude_me: y\n", O::kAdded,
       "excludes: x\nexclude_me: y\n\n# sitesync's config is not part of the site (added by sitesync init).\n"
       "exclude:\n  - sitesync.yaml\n"},
      {"flow list", "exclude: [Gemfile, vendor]\n", O::kManual, ""},
      {"anchor", "exclude: &ex\n  - a\n", O::kManual, ""},
      {"alias item", "exclude:\n  - *common\n", O::kManual, ""},
      {"tag item", "exclude:\n  - !!str a\n", O::kManual, ""},
      {"nested mapping", "exclude:\n  key: value\n", O::kManual, ""},
      {"items indented differently", "exclude:\n  - a\n    - b\n", O::kManual, ""},
      {"twice", "exclude:\n  - a\nexclude:\n  - b\n", O::kManual, ""},
      {"several documents", "title: a\n---\nexclude:\n  - a\n", O::kManual, ""},
      {"CRLF", "title: a\r\nexclude:\r\n  - a\r\n", O::kManual, ""},
      {"tabs", "title:\ta\n", O::kManual, ""},
      {"not YAML that parses: the edit cannot be checked", "title: [unclosed\n", O::kManual, ""},
  };
  for (const Case& c : cases) {
    const ExcludeEdit e = AddJekyllExclude(c.before, "sitesync.yaml");
    EXPECT_EQ(e.outcome, c.outcome) << c.what << ": " << e.why;
    if (c.outcome == O::kAdded) {
      EXPECT_EQ(e.text, c.after) << c.what;
    }
    if (c.outcome == O::kManual) {
      EXPECT_FALSE(e.why.empty()) << c.what;
    }
  }
}

TEST(AddJekyllExclude, AnEntryInASubfolder) {
  const ExcludeEdit e = AddJekyllExclude("exclude:\n  - a\n", "deploy/site.yaml");
  EXPECT_EQ(e.outcome, ExcludeEdit::Outcome::kAdded);
  EXPECT_EQ(e.text, "exclude:\n  - a\n  - deploy/site.yaml\n");
}

}  // namespace
}  // namespace sitesync::cli
