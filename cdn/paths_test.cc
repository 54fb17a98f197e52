#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "cdn/cdn.h"

namespace sitesync::cdn {
namespace {

using Paths = std::vector<std::string>;

// ------------------------------------------------------------------------------------------------ EncodePath

struct EncodeCase {
  std::string_view raw;
  std::string_view want;
  bool keep_trailing_star = false;
};

TEST(EncodePath, Table) {
  const EncodeCase cases[] = {
      {"/a b", "/a%20b"},
      {"/~user/", "/%7Euser/"},
      {"/a#b", "/a%23b"},
      {"/100%", "/100%25"},
      {"/%20", "/%2520"},  // Already-encoded input is encoded again: keys are raw bytes.
      {"/caf\xc3\xa9", "/caf%C3%A9"},
      {"/\xe6\x97\xa5\xe6\x9c\xac/", "/%E6%97%A5%E6%9C%AC/"},
      {"/a*b", "/a%2Ab"},
      {"/a*", "/a%2A"},
      {"/a?b=1", "/a%3Fb=1"},
      {"/\"q\"", "/%22q%22"},
      {"/<x>", "/%3Cx%3E"},
      {"/[x]", "/%5Bx%5D"},
      {"/a^b", "/a%5Eb"},
      {"/a`b", "/a%60b"},
      {"/{x}", "/%7Bx%7D"},
      {"/a|b", "/a%7Cb"},
      {"/a\\b", "/a%5Cb"},
      {std::string_view("/\x00\x01\x1f\x7f", 5), "/%00%01%1F%7F"},
      {"/tab\there\nnl", "/tab%09here%0Anl"},
      {"/\xff\x80", "/%FF%80"},
      // Unchanged: CloudFront passes these through, so encoding them would miss.
      {"/a+b=c&d$e!f'g(h)i,j;k:l@m", "/a+b=c&d$e!f'g(h)i,j;k:l@m"},
      {"/a-b_c.d/e/", "/a-b_c.d/e/"},
      {"/AZaz09", "/AZaz09"},
      {"//double//slash", "//double//slash"},
      {"", ""},
      // A trailing wildcard is kept only when asked for, and only the last '*'.
      {"/blog/*", "/blog/*", true},
      {"/blog/*", "/blog/%2A", false},
      {"/a*b/*", "/a%2Ab/*", true},
      {"/a b/**", "/a%20b/%2A*", true},
      {"*", "*", true},
      {"/x?*", "/x%3F*", true},
  };
  for (const EncodeCase& c : cases) {
    EXPECT_EQ(EncodePath(c.raw, c.keep_trailing_star), c.want)
        << "raw '" << c.raw << "' keep_trailing_star " << c.keep_trailing_star;
  }
}

TEST(EncodePath, EveryByteIsEncodedOrOneOfTheAllowedOnes) {
  const std::string_view allowed = "/-._!$&'()+,;=:@";
  for (int b = 0; b < 256; ++b) {
    const char c = static_cast<char>(b);
    const std::string encoded = EncodePath(std::string_view(&c, 1));
    const bool alnum = (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || (b >= '0' && b <= '9');
    if (alnum || allowed.find(c) != std::string_view::npos) {
      EXPECT_EQ(encoded, std::string(1, c)) << "byte " << b;
    } else {
      EXPECT_EQ(encoded, fmt::format("%{:02X}", b)) << "byte " << b;
    }
  }
}

// ------------------------------------------------------------------------------------------ InvalidationPaths

struct InvalidationCase {
  std::string_view name;
  Paths keys;
  PathOptions options;
  Paths want;
};

PathOptions NoBare() {
  PathOptions options;
  options.bare_alias = false;
  return options;
}

PathOptions DefaultHtm() {
  PathOptions options;
  options.index_document = "default.htm";
  return options;
}

// ------------------------------------------------------------------------------------------ KeysToInvalidate

TEST(KeysToInvalidate, SkipGlobsLeaveOutExactlyTheMatchingKeys) {
  PathOptions o;
  o.skip = {"*.min.*.css", "assets/*-*.js", "/fonts/"};
  const Paths keys = {"index.html",         "css/site.min.0a1b2c.css", "css/site.css",  "assets/main-Bx3k9.js",
                      "deep/assets/x-1.js", "fonts/a.woff2",           "blog/fonts.html", "assets/sub/a-1.js"};
  // '*' does not cross '/', a pattern without '/' matches the base name at any depth, "/fonts/" is anchored.
  EXPECT_EQ(KeysToInvalidate(keys, {}, o),
            (Paths{"assets/sub/a-1.js", "blog/fonts.html", "css/site.css", "deep/assets/x-1.js", "index.html"}));
  o.skip = {"**/index.html"};
  EXPECT_EQ(KeysToInvalidate(Paths{"a/b/index.html", "index.html", "a.html"}, {}, o), (Paths{"a.html"}));
  // Skipping an index document also drops its folder aliases: no path of it is left.
  o.skip = {"docs/**"};
  EXPECT_EQ(InvalidationPaths(KeysToInvalidate(Paths{"docs/index.html", "about.html"}, {}, o), o),
            (Paths{"/about.html"}));
}

// The patterns README gives for generators' fingerprinted names.
TEST(KeysToInvalidate, ReadmePatternsForHugoViteAndEleventy) {
  PathOptions o;
  o.skip = {"*.[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]*.css",
            "*.[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]*.js", "/assets/*-*.js",
            "/assets/*-*.css", "/img/*-[0-9]*.*"};
  const Paths keys = {"css/main.min.62e4aa01df1b0c9e.css", "js/main.0123abcd.js", "js/jquery.form.js",
                      "assets/index-Bx3k9QzA.js", "assets/style-D1a2b3c4.css", "img/6dfd7ac6-300.jpeg",
                      "img/logo.png", "blog/index.html", "js/app.js"};
  EXPECT_EQ(KeysToInvalidate(keys, {}, o), (Paths{"blog/index.html", "img/logo.png", "js/app.js", "js/jquery.form.js"}));
}

TEST(KeysToInvalidate, NewKeysAreLeftOutOnlyWhenInvalidateNewIsFalse) {
  PathOptions o;
  const Paths keys = {"changed.html", "new.html", "deleted.html", "new/index.html"};
  const Paths fresh = {"new.html", "new/index.html"};
  EXPECT_EQ(KeysToInvalidate(keys, fresh, o), (Paths{"changed.html", "deleted.html", "new.html", "new/index.html"}));
  o.invalidate_new = false;
  EXPECT_EQ(KeysToInvalidate(keys, fresh, o), (Paths{"changed.html", "deleted.html"}));
  o.skip = {"changed.*"};
  EXPECT_EQ(KeysToInvalidate(keys, fresh, o), (Paths{"deleted.html"}));
}

TEST(InvalidationPaths, Table) {
  const InvalidationCase cases[] = {
      {"index", {"a/b/index.html"}, {}, {"/a/b", "/a/b/", "/a/b/index.html"}},
      {"root index", {"index.html"}, {}, {"/", "/index.html"}},
      {"css", {"css/site.css"}, {}, {"/css/site.css"}},
      {"no bare alias", {"a/b/index.html"}, NoBare(), {"/a/b/", "/a/b/index.html"}},
      {"no bare alias at root", {"index.html"}, NoBare(), {"/", "/index.html"}},
      {"custom index", {"docs/default.htm", "docs/index.html"}, DefaultHtm(),
       {"/docs", "/docs/", "/docs/default.htm", "/docs/index.html"}},
      {"space", {"my docs/index.html"}, {}, {"/my%20docs", "/my%20docs/", "/my%20docs/index.html"}},
      {"tilde", {"~me/a.txt"}, {}, {"/%7Eme/a.txt"}},
      {"hash", {"c#/notes.md"}, {}, {"/c%23/notes.md"}},
      {"utf-8", {"caf\xc3\xa9/index.html"}, {}, {"/caf%C3%A9", "/caf%C3%A9/", "/caf%C3%A9/index.html"}},
      {"star is literal", {"a*", "b/*"}, {}, {"/a%2A", "/b/%2A"}},
      {"plus and equals kept", {"a+b=c.txt"}, {}, {"/a+b=c.txt"}},
      {"double slash kept", {"a//b.txt"}, {}, {"/a//b.txt"}},
      {"dedupe across keys", {"a/index.html", "a/index.html", "b.css", "b.css"}, {},
       {"/a", "/a/", "/a/index.html", "/b.css"}},
      {"sorted", {"z.txt", "a.txt", "m/index.html"}, {}, {"/a.txt", "/m", "/m/", "/m/index.html", "/z.txt"}},
      {"nothing", {}, {}, {}},
  };
  for (const InvalidationCase& c : cases) {
    EXPECT_EQ(InvalidationPaths(c.keys, c.options), c.want) << c.name;
  }
}

// ------------------------------------------------------------------------------------------------ Covers

TEST(Covers, Table) {
  struct CoverCase {
    std::string_view pattern;
    std::string_view path;
    bool want;
  };
  const CoverCase cases[] = {
      {"/*", "/", true},
      {"/*", "/a/b/c", true},
      {"/a/*", "/a/", true},
      {"/a/*", "/a/b/c.html", true},
      {"/a/*", "/a", false},
      {"/a/*", "/ab/c", false},
      {"/a*", "/ab/c", true},
      {"/a/b", "/a/b", true},
      {"/a/b", "/a/b/", false},
      {"/a/b/", "/a/b", false},
      {"/a%2A", "/a%2Ab", false},
      {"*", "", true},
  };
  for (const CoverCase& c : cases) {
    EXPECT_EQ(Covers(c.pattern, c.path), c.want) << c.pattern << " vs " << c.path;
  }
}

// ------------------------------------------------------------------------------------------------ Collapse

PathOptions Budget(std::size_t max_paths, std::size_t max_wildcards) {
  PathOptions options;
  options.max_paths = max_paths;
  options.max_wildcards = max_wildcards;
  return options;
}

// Naive O(n * m) checks of a collapse result; returns a description of the first problem, or "".
std::string CheckCollapse(const Paths& exact, const PathSet& set, std::size_t max_wildcards) {
  if (!set.collapsed) return "not collapsed";
  if (set.exact_count != exact.size()) return "exact_count " + std::to_string(set.exact_count);
  if (set.paths.empty()) return "no wildcards";
  const auto wildcards = std::count_if(set.paths.begin(), set.paths.end(),
                                       [](const std::string& w) { return w.ends_with("/*"); });
  if (static_cast<std::size_t>(wildcards) > std::max<std::size_t>(1, max_wildcards)) {
    return "too many wildcards: " + std::to_string(wildcards);
  }
  if (!std::is_sorted(set.paths.begin(), set.paths.end())) return "not sorted";
  for (const std::string& w : set.paths) {
    if (!w.starts_with("/")) return "not a path: " + w;
    // Besides folder wildcards, only exact paths no wildcard covers (bare aliases, root files) may stay.
    if (!w.ends_with("/*") && std::find(exact.begin(), exact.end(), w) == exact.end()) {
      return "neither a folder wildcard nor a changed path: " + w;
    }
    for (const std::string& other : set.paths) {
      if (&other != &w && Covers(other, w)) return other + " covers " + w;
    }
  }
  for (const std::string& p : exact) {
    const bool covered =
        std::any_of(set.paths.begin(), set.paths.end(), [&](const std::string& w) { return Covers(w, p); });
    if (!covered) return "not covered: " + p;
  }
  return "";
}

TEST(Collapse, UnderBudgetIsUntouched) {
  const Paths exact = {"/a/b", "/a/b/", "/a/b/index.html", "/z%20z.css"};
  for (std::size_t max_paths : {4, 5, 1000}) {
    const PathSet set = Collapse(exact, Budget(max_paths, 8));
    EXPECT_FALSE(set.collapsed);
    EXPECT_EQ(set.paths, exact);
    EXPECT_EQ(set.exact_count, exact.size());
  }
  const PathSet empty = Collapse({}, Budget(0, 8));
  EXPECT_FALSE(empty.collapsed);
  EXPECT_TRUE(empty.paths.empty());
}

TEST(Collapse, BudgetOfOneOrZeroIsEverything) {
  const Paths exact = {"/blog/a.html", "/blog/b.html", "/blog/c.html"};
  for (std::size_t max_wildcards : {0, 1}) {
    const PathSet set = Collapse(exact, Budget(2, max_wildcards));
    EXPECT_TRUE(set.collapsed);
    EXPECT_EQ(set.paths, Paths{"/*"});
    EXPECT_EQ(set.exact_count, 3u);
  }
}

TEST(Collapse, TwentyFiveHundredPathsFitEightWildcards) {
  Paths exact;
  for (int section = 0; section < 25; ++section) {
    for (int page = 0; page < 100; ++page) {
      exact.push_back(fmt::format("/s{}/p{}/index.html", section, page));
    }
  }
  std::sort(exact.begin(), exact.end());
  const PathSet set = Collapse(exact, Budget(1000, 8));
  EXPECT_EQ(CheckCollapse(exact, set, 8), "");
  EXPECT_EQ(set.exact_count, 2500u);
  EXPECT_LE(set.paths.size(), 8u);
}

TEST(Collapse, StaysSpecificWhenTheBudgetAllows) {
  Paths exact;
  for (int i = 0; i < 30; ++i) {
    exact.push_back(fmt::format("/blog/post-{}/", i));
    exact.push_back(fmt::format("/blog/post-{}/index.html", i));
    exact.push_back(fmt::format("/blog/post-{}", i));
    exact.push_back(fmt::format("/tags/t{}/index.html", i));
  }
  const PathSet set = Collapse(exact, Budget(10, 8));
  EXPECT_EQ(CheckCollapse(exact, set, 8), "");
  ASSERT_FALSE(set.paths.empty());
  for (const std::string& w : set.paths) {
    EXPECT_NE(w, "/*");
    EXPECT_TRUE(w.starts_with("/blog/") || w.starts_with("/tags/")) << w;
  }
  EXPECT_EQ(set.paths, (Paths{"/blog/*", "/tags/*"}));
}

TEST(Collapse, KeepsDeepFoldersThatFit) {
  // Three folders deep under /docs/ and many under /blog/: only /blog/ has to give way.
  Paths exact = {"/docs/v1/api/a.html", "/docs/v2/api/b.html", "/img/x/1.png"};
  for (int i = 0; i < 20; ++i) exact.push_back(fmt::format("/blog/{}/index.html", i));
  const PathSet set = Collapse(exact, Budget(5, 4));
  EXPECT_EQ(CheckCollapse(exact, set, 4), "");
  EXPECT_EQ(set.paths, (Paths{"/blog/*", "/docs/v1/api/*", "/docs/v2/api/*", "/img/x/*"}));
}

TEST(Collapse, DeepestFirstThenLargestThenByteOrder) {
  // Folders /a/x/1/ /a/x/2/ (depth 3 under /a/x/), /b/1/ /b/2/ /b/3/ and /c/1/ /c/2/ /c/3/ (depth 2).
  const Paths exact = {"/a/x/1/f", "/a/x/2/f", "/b/1/f", "/b/2/f", "/b/3/f", "/c/1/f", "/c/2/f", "/c/3/f"};
  // 8 folders, budget 7: /a/x/ (deepest) merges first.
  EXPECT_EQ(Collapse(exact, Budget(1, 7)).paths,
            (Paths{"/a/x/*", "/b/1/*", "/b/2/*", "/b/3/*", "/c/1/*", "/c/2/*", "/c/3/*"}));
  // Budget 5: then /b/ (same size as /c/, first in byte order).
  EXPECT_EQ(Collapse(exact, Budget(1, 5)).paths, (Paths{"/a/x/*", "/b/*", "/c/1/*", "/c/2/*", "/c/3/*"}));
  // Budget 3: /a/x/ then /b/ then /c/.
  EXPECT_EQ(Collapse(exact, Budget(1, 3)).paths, (Paths{"/a/x/*", "/b/*", "/c/*"}));
  // Budget 2: the root.
  EXPECT_EQ(Collapse(exact, Budget(1, 2)).paths, Paths{"/*"});
}

TEST(Collapse, TiesAtOneDepthPreferTheLargerMerge) {
  const Paths exact = {"/a/1/f", "/a/2/f", "/b/1/f", "/b/2/f", "/b/3/f", "/c/f"};
  // Folders: /a/1/ /a/2/ /b/1/ /b/2/ /b/3/ /c/ = 6; budget 4 needs 2 fewer: /b/ (3 -> 1) does it alone.
  EXPECT_EQ(Collapse(exact, Budget(1, 4)).paths, (Paths{"/a/1/*", "/a/2/*", "/b/*", "/c/*"}));
}

TEST(Collapse, BareAliasStaysExactBesideItsFolderWildcard) {
  // "/a/b" is not under "/a/b/*": kept as an exact path rather than widening the wildcard to "/a/*".
  const Paths exact = {"/a/b", "/a/b/", "/a/b/index.html", "/x/1", "/x/2"};
  const PathSet set = Collapse(exact, Budget(3, 8));
  EXPECT_EQ(CheckCollapse(exact, set, 8), "");
  EXPECT_EQ(set.paths, (Paths{"/a/b", "/a/b/*", "/x/*"}));
  // No room for the exact alias (2 paths in all): the folder rule covers it from the parent folder.
  EXPECT_EQ(Collapse(exact, Budget(2, 2)).paths, (Paths{"/a/*", "/x/*"}));
}

TEST(Collapse, ChangedSectionIndexesDoNotThrowTheWholeCacheAway) {
  // A rebuild that touches every post and the section indexes: /blog and /tags are bare aliases at the root.
  Paths exact = {"/blog", "/blog/", "/blog/index.html", "/tags", "/tags/", "/tags/index.html"};
  for (int i = 0; i < 600; ++i) {
    exact.push_back(fmt::format("/blog/p{}", i));
    exact.push_back(fmt::format("/blog/p{}/", i));
    exact.push_back(fmt::format("/blog/p{}/index.html", i));
  }
  std::sort(exact.begin(), exact.end());
  const PathSet set = Collapse(exact, Budget(1000, 8));
  EXPECT_EQ(CheckCollapse(exact, set, 8), "");
  EXPECT_EQ(set.paths, (Paths{"/blog", "/blog/*", "/tags", "/tags/*"}));
}

TEST(Collapse, RootFilesStayExactWhenTheyFit) {
  const Paths exact = {"/", "/index.html", "/blog/a", "/blog/b"};
  const PathSet set = Collapse(exact, Budget(3, 8));
  EXPECT_EQ(CheckCollapse(exact, set, 8), "");
  EXPECT_EQ(set.paths, (Paths{"/", "/blog/*", "/index.html"}));
  // Without room for them, only the root wildcard covers root files.
  EXPECT_EQ(Collapse(exact, Budget(2, 2)).paths, Paths{"/*"});
}

TEST(Collapse, DoubleSlashFoldersAreFolders) {
  // "/a//" is a folder of its own under "/a/" (S3 keys and CloudFront paths are not normalized).
  const Paths exact = {"/a//b/1", "/a//c/2", "/a/d/3", "/x/1"};
  const PathSet set = Collapse(exact, Budget(1, 3));
  EXPECT_EQ(CheckCollapse(exact, set, 3), "");
  EXPECT_EQ(set.paths, (Paths{"/a//*", "/a/d/*", "/x/*"}));
  EXPECT_EQ(Collapse(exact, Budget(1, 8)).paths, (Paths{"/a//b/*", "/a//c/*", "/a/d/*", "/x/*"}));
}

TEST(Collapse, DuplicatesAndUnsortedInput) {
  const Paths exact = {"/z/1", "/a/1", "/z/1", "/a/2", "/a/1"};
  const PathSet set = Collapse(exact, Budget(2, 8));
  EXPECT_EQ(set.exact_count, 5u);
  EXPECT_EQ(set.paths, (Paths{"/a/*", "/z/*"}));
}

TEST(Collapse, WildcardsInTheInputAreCovered) {
  // Owed paths can hold wildcards from `sitesync invalidate`.
  const Paths exact = {"/blog/*", "/blog/2024/*", "/img/a.png", "/img/b.png"};
  const PathSet set = Collapse(exact, Budget(2, 8));
  EXPECT_EQ(CheckCollapse(exact, set, 8), "");
  EXPECT_EQ(set.paths, (Paths{"/blog/*", "/img/*"}));
}

// A random site: folders up to 5 deep with a few files each, index documents with their aliases.
Paths RandomSite(std::mt19937& rng) {
  std::vector<std::string> folders = {""};
  std::uniform_int_distribution<int> fanout(1, 5);
  std::uniform_int_distribution<int> names(0, 5);
  const char* kNames[] = {"a", "b", "blog", "x%20y", "", "caf%C3%A9"};  // "" gives "//" folders.
  for (std::size_t i = 0; i < folders.size() && folders.size() < 60; ++i) {
    if (std::count(folders[i].begin(), folders[i].end(), '/') >= 5) continue;
    for (int k = fanout(rng); k > 0; --k) {
      folders.push_back(folders[i] + kNames[names(rng)] + std::to_string(k % 3 == 0 ? 0 : k) + "/");
    }
  }
  std::set<std::string> keys;
  std::uniform_int_distribution<int> files(0, 4);
  for (const std::string& folder : folders) {
    for (int k = files(rng); k > 0; --k) keys.insert(folder + (k == 1 ? "index.html" : "f" + std::to_string(k)));
  }
  const Paths key_list(keys.begin(), keys.end());
  // A bare alias ("/a" for "a/index.html") lives in the parent folder and pulls wildcards a level up; keep it
  // out of most sites so that deep merges get exercised too.
  PathOptions options;
  options.bare_alias = std::bernoulli_distribution(0.3)(rng);
  return InvalidationPaths(key_list, options);
}

// The collapse rule written the slow, obvious way: the folders of the paths minus those under another, then,
// while over budget, every ancestor folder is scored by brute force and the best merge is applied.
Paths NaiveCollapse(const Paths& exact, std::size_t budget, int* merges) {
  std::set<std::string> folders;
  for (const std::string& p : exact) folders.insert(p.substr(0, p.rfind('/') + 1));
  std::set<std::string> chosen;
  for (const std::string& f : folders) {
    bool under = false;
    for (const std::string& g : folders) under = under || (g != f && f.starts_with(g));
    if (!under) chosen.insert(f);
  }
  const auto depth = [](const std::string& folder) { return std::count(folder.begin(), folder.end(), '/'); };
  while (chosen.size() > budget) {
    std::set<std::string> candidates;
    for (const std::string& c : chosen) {
      for (std::size_t i = 0; i + 1 < c.size(); ++i) {
        if (c[i] == '/') candidates.insert(c.substr(0, i + 1));
      }
    }
    std::string best;
    long best_depth = -1;
    std::size_t best_count = 0;
    for (const std::string& d : candidates) {
      std::size_t count = 0;
      for (const std::string& c : chosen) count += c != d && c.starts_with(d) ? 1 : 0;
      if (count < 2) continue;
      const long dd = depth(d);
      if (dd > best_depth || (dd == best_depth && count > best_count)) {  // Ties: candidates are in byte order.
        best = d;
        best_depth = dd;
        best_count = count;
      }
    }
    if (best.empty()) break;  // Cannot happen: the root holds every member.
    for (auto it = chosen.begin(); it != chosen.end();) it = it->starts_with(best) ? chosen.erase(it) : std::next(it);
    chosen.insert(best);
    ++*merges;
  }
  Paths out;
  for (const std::string& c : chosen) out.push_back(c + "*");
  return out;
}

TEST(Collapse, RandomTreesWithRoomForExactLeftoversStayCovered) {
  std::mt19937 rng(77);
  int with_leftovers = 0;
  for (int round = 0; round < 300; ++round) {
    const Paths site = RandomSite(rng);
    if (site.size() < 4) continue;
    Paths changed;
    std::bernoulli_distribution pick(0.6);
    for (const std::string& p : site) {
      if (pick(rng)) changed.push_back(p);
    }
    if (changed.size() < 4) continue;
    const std::size_t max_wildcards = std::uniform_int_distribution<std::size_t>(2, 10)(rng);
    const std::size_t max_paths = std::max<std::size_t>(max_wildcards, changed.size() / 2);
    const PathSet set = Collapse(changed, Budget(max_paths, max_wildcards));
    ASSERT_EQ(CheckCollapse(changed, set, max_wildcards), "") << "round " << round;
    EXPECT_LE(set.paths.size(), std::max(max_paths, max_wildcards)) << "round " << round;
    with_leftovers += std::any_of(set.paths.begin(), set.paths.end(),
                                  [](const std::string& p) { return !p.ends_with("*"); })
                          ? 1
                          : 0;
  }
  EXPECT_GT(with_leftovers, 20);
}

TEST(Collapse, RandomTreesAgainstNaiveChecks) {
  std::mt19937 rng(20240607);
  int merges = 0;         // Merges the naive reference made, over all rounds.
  int rounds_merged = 0;  // Rounds where it made at least one.
  for (int round = 0; round < 400; ++round) {
    const Paths site = RandomSite(rng);
    if (site.empty()) continue;
    Paths changed;
    std::bernoulli_distribution pick(std::uniform_real_distribution<double>(0.05, 1.0)(rng));
    // A changed file at the root can only be covered by "/*": leave root files out of most rounds, or the
    // answer would nearly always be "/*".
    const bool with_root_files = std::bernoulli_distribution(0.15)(rng);
    for (const std::string& p : site) {
      if (!with_root_files && p.find('/', 1) == std::string::npos) continue;
      if (pick(rng)) changed.push_back(p);
    }
    if (changed.empty()) changed.push_back(site.front());
    const std::size_t max_wildcards = std::uniform_int_distribution<std::size_t>(1, 10)(rng);
    const PathSet set = Collapse(changed, Budget(0, max_wildcards));
    ASSERT_EQ(CheckCollapse(changed, set, max_wildcards), "") << "round " << round;
    EXPECT_LE(set.paths.size(), std::max<std::size_t>(1, max_wildcards)) << "round " << round;
    // Bare aliases and root-level paths may stay exact beside the wildcards; the naive folder rule below is the
    // reference for the rest.
    const std::set<std::string> changed_set(changed.begin(), changed.end());
    const bool has_kept = std::any_of(changed.begin(), changed.end(), [&](const std::string& p) {
      return p.find('/', 1) == std::string::npos || (!p.ends_with('/') && changed_set.contains(p + "/"));
    });
    if (has_kept) continue;
    if (max_wildcards >= 2) {
      int round_merges = 0;
      EXPECT_EQ(set.paths, NaiveCollapse(changed, max_wildcards, &round_merges)) << "round " << round;
      merges += round_merges;
      rounds_merged += round_merges > 0 ? 1 : 0;
    }

    // As specific as possible in one sense: when the changed paths' folders already fit the budget (and none
    // is under another), they are the answer.
    std::set<std::string> folders;
    for (const std::string& p : changed) folders.insert(p.substr(0, p.rfind('/') + 1) + "*");
    std::set<std::string> top;
    for (const std::string& f : folders) {
      const bool under = std::any_of(folders.begin(), folders.end(),
                                     [&](const std::string& g) { return g != f && Covers(g, f); });
      if (!under) top.insert(f);
    }
    if (max_wildcards >= 2 && top.size() <= max_wildcards) {
      EXPECT_EQ(set.paths, Paths(top.begin(), top.end())) << "round " << round;
    }
    // And never "/*" when everything fits under fewer top-level folders than the budget.
    std::set<std::string> first_level;
    bool root_file = false;
    for (const std::string& p : changed) {
      const std::size_t slash = p.find('/', 1);
      if (slash == std::string::npos) {
        root_file = true;
      } else {
        first_level.insert(p.substr(0, slash + 1));
      }
    }
    if (!root_file && max_wildcards >= 2 && first_level.size() <= max_wildcards) {
      EXPECT_EQ(std::count(set.paths.begin(), set.paths.end(), "/*"), 0) << "round " << round;
    }
  }
  // The random sites must exercise the merging, not only the easy cases.
  EXPECT_GT(rounds_merged, 100);
  EXPECT_GT(merges, 200);
  RecordProperty("rounds_merged", rounds_merged);
  RecordProperty("merges", merges);
}

TEST(Collapse, FiftyThousandPathsIsFast) {
  Paths exact;
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> pick(0, 49);
  for (int i = 0; i < 50000; ++i) {
    exact.push_back(fmt::format("/s{}/y{}/m{}/post-{}/index.html", pick(rng), pick(rng) % 10, pick(rng) % 12, i));
  }
  const auto start = std::chrono::steady_clock::now();
  const PathSet set = Collapse(exact, Budget(1000, 8));
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_LE(set.paths.size(), 8u);
  EXPECT_EQ(set.exact_count, 50000u);
  // Generous for sanitizer builds; an O(n^2) collapse takes minutes here.
  EXPECT_LT(elapsed, std::chrono::seconds(5));
  // Coverage (n * 8 checks).
  for (const std::string& p : exact) {
    ASSERT_TRUE(std::any_of(set.paths.begin(), set.paths.end(), [&](const std::string& w) { return Covers(w, p); }))
        << p;
  }
}

}  // namespace
}  // namespace sitesync::cdn
