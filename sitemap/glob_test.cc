#include <gtest/gtest.h>

#include <chrono>
#include <cstddef>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "sitemap/sitemap.h"

namespace sitesync::sitemap {
namespace {

struct GlobCase {
  std::string_view pattern;
  std::string_view rel_path;
  bool expected;
};

void ExpectCases(std::initializer_list<GlobCase> cases) {
  for (const GlobCase& c : cases) {
    EXPECT_EQ(GlobMatch(c.pattern, c.rel_path), c.expected)
        << "GlobMatch(\"" << c.pattern << "\", \"" << c.rel_path << "\")";
  }
}

TEST(GlobMatch, BaseNamePatternsMatchAtAnyDepth) {
  ExpectCases({
      {"*.html", "index.html", true},
      {"*.html", "blog/post/index.html", true},
      {"*.html", "index.htm", false},
      {"*.html", "index.html.gz", false},
      {"*.html", ".html", true},                 // '*' may be empty and matches a leading dot.
      {"*.html", "a.html/style.css", true},      // The parent folder a.html matches.
      {"index.html", "blog/index.html", true},
      {"index.html", "blog/xindex.html", false},
      {"*", "a/b/c", true},
      {"a?b", "a/b", false},                     // '?' never crosses '/'.
      {"a*b", "a/b", false},                     // Nor does '*'.
      {"a**b", "axyzb", true},
      {"a**b", "a/b", false},                    // Base-name patterns look at one segment.
      {"*.HTML", "index.html", false},           // Case-sensitive, like S3 keys.
  });
}

TEST(GlobMatch, AnchoredPatterns) {
  ExpectCases({
      {"/*.html", "index.html", true},
      {"/*.html", "blog/index.html", false},
      {"/index.html", "index.html", true},
      {"//index.html", "index.html", true},
      {"blog/*.html", "blog/a.html", true},
      {"blog/*.html", "x/blog/a.html", false},   // A '/' inside anchors at SOURCE.
      {"blog/*.html", "blog/sub/a.html", false},
      {"blog/*", "blog/sub/a.html", true},       // blog/sub matches: parent rule.
      {"a/*b", "a/x/b", false},
      {"a/?", "a/b", true},
      {"a/?", "a/bc", false},
  });
}

TEST(GlobMatch, DoubleStar) {
  ExpectCases({
      {"**/x", "x", true},
      {"**/x", "a/b/x", true},
      {"**/x", "ax", false},
      {"**/x", "a/xb", false},
      {"**/x", "x/y", true},
      {"a/**/b", "a/b", true},
      {"a/**/b", "a/x/b", true},
      {"a/**/b", "a/x/y/b", true},
      {"a/**/b", "a/xb", false},
      {"a/**/b", "ab", false},
      {"a/**/b", "xa/b", false},
      {"a/**/b", "a/b/c", true},
      {"dir/**", "dir/a", true},
      {"dir/**", "dir/a/b", true},
      {"dir/**", "dir", false},
      {"dir/**", "dirx/a", false},
      {"**", "a/b/c", true},
      {"/**/*.map", "a.map", true},
      {"/**/*.map", "js/vendor/a.map", true},
      {"x/a**b", "x/a/c/b", true},               // `**` inside a segment crosses '/' too.
      {"x/a**b", "x/a/c/d", false},
      {"***/x", "a/x", true},                    // Three stars are two.
      {"a/**/**/b", "a/b", true},
      {"a/**/**/b", "a/1/2/3/b", true},
  });
}

TEST(GlobMatch, FoldersAndParentRule) {
  ExpectCases({
      {"drafts", "drafts/a.html", true},
      {"drafts", "drafts", true},
      {"drafts", "x/drafts/y", true},
      {"drafts", "drafts.html", false},
      {"drafts", "mydrafts/a", false},
      {"drafts/", "drafts/a.html", true},
      {"drafts/", "drafts", false},             // A trailing '/' means a folder; this is a file.
      {"drafts/", "x/drafts/y", true},
      {"drafts//", "drafts/y", true},
      {"/drafts/", "x/drafts/y", false},
      {"/drafts/", "drafts/y", true},
      {"/drafts", "drafts/y/z", true},
      {"blog/drafts/", "blog/drafts/a", true},
      {"blog/drafts/", "blog/drafts", false},
      {"*.d/", "x.d/y", true},
      {"*.d/", "x.d", false},
  });
}

TEST(GlobMatch, FolderQueries) {
  ExpectCases({
      {"drafts", "drafts/", true},
      {"drafts/", "drafts/", true},
      {"drafts", "x/drafts/", true},
      {"/drafts", "x/drafts/", false},
      {"drafts/**", "drafts/", true},
      {"drafts/*", "drafts/", true},
      {"drafts/**/*", "drafts/", true},
      {"drafts/*.html", "drafts/", false},      // Not everything under drafts/ is an .html file.
      {"drafts/*/", "drafts/", false},          // Files directly in drafts/ are not under a subfolder.
      {"drafts/**/x", "drafts/", false},
      {"*.html", "drafts/", false},
      {"*", "drafts/", true},
      {"a/**/b", "a/", false},
      {"a/**/b", "a/b/", true},
  });
}

TEST(GlobMatch, Classes) {
  ExpectCases({
      {"[abc].js", "b.js", true},
      {"[abc].js", "d.js", false},
      {"[a-c].js", "c.js", true},
      {"[a-c].js", "C.js", false},
      {"[!a-c].js", "d.js", true},
      {"[!a-c].js", "a.js", false},
      {"[^a].js", "b.js", true},
      {"[^a].js", "a.js", false},
      {"[]a].txt", "].txt", true},               // ']' first is a member.
      {"[!]].txt", "].txt", false},
      {"[a-].txt", "-.txt", true},               // '-' last is a member.
      {"[\\]].txt", "].txt", true},              // Escaped ']'.
      {"[z-a].txt", "m.txt", false},             // Empty range.
      {"/x[!a]y", "x/y", false},                 // A class never matches '/'.
      {"/x[/]y", "x/y", false},
      {"[é]t[é]", "été", true},                  // One UTF-8 character, not one byte.
      {"[à-ÿ].txt", "é.txt", true},
      {"[abc", "[abc", true},                    // Not closed: '[' is literal.
      {"[abc", "a", false},
      {"[!", "[!", true},
  });
}

TEST(GlobMatch, EscapesAndSpecialCharacters) {
  ExpectCases({
      {"\\*.html", "*.html", true},
      {"\\*.html", "a.html", false},
      {"\\[a]", "[a]", true},
      {"\\[a]", "a", false},
      {"a\\?", "a?", true},
      {"a\\?", "ab", false},
      {"a\\", "a\\", true},                       // Trailing backslash is literal.
      {"a b/*.html", "a b/c d.html", true},
      {"+", "a/+", true},
      {"%20", "%20", true},
      {"%20", " ", false},
      {"~user", "~user/x", true},
      {"?.txt", "é.txt", true},                  // '?' takes a whole UTF-8 character.
      {"??.txt", "é.txt", false},
      {"caf?", "café", true},
      {"日本/*.txt", "日本/語.txt", true},
      {"?", "\xff", true},                       // Invalid UTF-8 bytes are single characters.
      {"\xff", "a/\xff", true},
      {"\xc3", "\xc3\xa9", false},                // A lead byte alone is not é.
  });
}

TEST(Glob, CompiledOnceMatchesMany) {
  const Glob glob("/assets/**/*.[jc]s");
  EXPECT_TRUE(glob.Matches("assets/app.js"));
  EXPECT_TRUE(glob.Matches("assets/vendor/lib.cs"));
  EXPECT_FALSE(glob.Matches("assets/app.ts"));
  EXPECT_FALSE(glob.Matches("x/assets/app.js"));
  const Glob copy = glob;  // Copies share the compiled pattern.
  EXPECT_TRUE(copy.Matches("assets/a/b/c.js"));
}

TEST(Glob, LongPatternsUseTheHeap) {
  // More tokens than the matcher's stack buffer holds.
  const std::string long_name(400, 'a');
  std::string pattern = long_name;
  pattern[200] = '?';
  EXPECT_TRUE(GlobMatch(pattern, "x/" + long_name));
  EXPECT_FALSE(GlobMatch(pattern, "x/" + long_name + "a"));
  std::string other = long_name;
  other[399] = 'b';
  EXPECT_FALSE(GlobMatch(pattern, other));
  EXPECT_TRUE(GlobMatch("/" + std::string(300, '*') + "/" + long_name, "q/r/" + long_name));
}

TEST(GlobMatch, EmptyPatternMatchesNothing) {
  ExpectCases({
      {"", "a", false},
      {"", "", false},
      {"/", "a", false},
      {"//", "a/b", false},
  });
}

// ----------------------------------------------------------------------------------------------------------------
// A naive reference: straightforward recursion over bytes (the random alphabet is ASCII), per candidate
// (each parent folder, then the path itself), independent of the NFA in glob.cc.
// ----------------------------------------------------------------------------------------------------------------

bool RefWhole(std::string_view p, std::size_t pi, std::string_view s, std::size_t si);

// Parses a class at p[pi] == '['; sets `end` past ']' and returns membership of `c`, or false in `closed`.
bool RefClass(std::string_view p, std::size_t pi, char c, std::size_t& end, bool& closed) {
  std::size_t j = pi + 1;
  bool negated = false;
  if (j < p.size() && (p[j] == '!' || p[j] == '^')) negated = true, ++j;
  bool member = false;
  bool first = true;
  while (j < p.size()) {
    if (p[j] == ']' && !first) {
      closed = true;
      end = j + 1;
      return member != negated;
    }
    first = false;
    const char low = p[j++];
    char high = low;
    if (j + 1 < p.size() && p[j] == '-' && p[j + 1] != ']') {
      high = p[j + 1];
      j += 2;
    }
    if (c >= low && c <= high) member = true;
  }
  closed = false;
  return false;
}

bool RefWhole(std::string_view p, std::size_t pi, std::string_view s, std::size_t si) {
  if (pi == p.size()) return si == s.size();
  if (p[pi] == '*') {
    std::size_t pj = pi;
    while (pj < p.size() && p[pj] == '*') ++pj;
    if (pj - pi == 1) {
      for (std::size_t k = si;; ++k) {
        if (RefWhole(p, pj, s, k)) return true;
        if (k == s.size() || s[k] == '/') return false;
      }
    }
    const bool segment_start = pi == 0 || p[pi - 1] == '/';
    if (segment_start && pj < p.size() && p[pj] == '/') {
      if (RefWhole(p, pj + 1, s, si)) return true;
      for (std::size_t k = si; k < s.size(); ++k) {
        if (s[k] == '/' && RefWhole(p, pj + 1, s, k + 1)) return true;
      }
      return false;
    }
    for (std::size_t k = si; k <= s.size(); ++k) {
      if (RefWhole(p, pj, s, k)) return true;
    }
    return false;
  }
  if (si == s.size()) return false;
  if (p[pi] == '?') return s[si] != '/' && RefWhole(p, pi + 1, s, si + 1);
  if (p[pi] == '[') {
    std::size_t end = 0;
    bool closed = false;
    const bool member = RefClass(p, pi, s[si], end, closed);
    if (closed) return s[si] != '/' && member && RefWhole(p, end, s, si + 1);
  }
  return p[pi] == s[si] && RefWhole(p, pi + 1, s, si + 1);
}

bool RefMatch(std::string_view pattern, std::string_view path) {
  std::size_t begin = 0;
  while (begin < pattern.size() && pattern[begin] == '/') ++begin;
  std::size_t end = pattern.size();
  bool folder_only = false;
  while (end > begin && pattern[end - 1] == '/') --end, folder_only = true;
  const std::string_view body = pattern.substr(begin, end - begin);
  if (body.empty()) return false;
  const bool anchored = begin > 0 || body.find('/') != std::string_view::npos;

  std::vector<std::string_view> folders;  // Candidates that are folders.
  std::string_view last;                   // The candidate after the last '/'.
  if (anchored) {
    for (std::size_t i = 1; i < path.size(); ++i) {
      if (path[i] == '/') folders.push_back(path.substr(0, i));
    }
    last = path;
  } else {
    std::size_t start = 0;
    for (std::size_t i = 0; i < path.size(); ++i) {
      if (path[i] == '/') {
        folders.push_back(path.substr(start, i - start));
        start = i + 1;
      }
    }
    last = path.substr(start);
  }
  for (std::string_view folder : folders) {
    if (RefWhole(body, 0, folder, 0)) return true;
  }
  return !folder_only && RefWhole(body, 0, last, 0);
}

std::string RandomPattern(std::mt19937& rng) {
  static const char* const kPieces[] = {"a", "b", "a", "b", "/", "/", "*", "**", "?", "[ab]", "[!a]", "[a-b]", "["};
  std::uniform_int_distribution<std::size_t> piece(0, std::size(kPieces) - 1);
  std::uniform_int_distribution<int> count(1, 7);
  std::string pattern;
  for (int n = count(rng); n > 0; --n) pattern += kPieces[piece(rng)];
  return pattern;
}

std::string RandomPath(std::mt19937& rng, bool allow_folder_query) {
  static const char kChars[] = {'a', 'b', 'a', 'b', '['};
  std::uniform_int_distribution<std::size_t> ch(0, std::size(kChars) - 1);
  std::uniform_int_distribution<int> segments(1, 4);
  std::uniform_int_distribution<int> length(1, 3);
  std::string path;
  for (int s = segments(rng); s > 0; --s) {
    if (!path.empty()) path += '/';
    for (int n = length(rng); n > 0; --n) path += kChars[ch(rng)];
  }
  if (allow_folder_query && rng() % 4 == 0) path += '/';
  return path;
}

TEST(GlobMatch, AgreesWithNaiveReference) {
  std::mt19937 rng(20240601);
  int matches = 0;
  for (int i = 0; i < 200'000; ++i) {
    const std::string pattern = RandomPattern(rng);
    const std::string path = RandomPath(rng, true);
    const bool expected = RefMatch(pattern, path);
    matches += expected ? 1 : 0;
    ASSERT_EQ(GlobMatch(pattern, path), expected) << "pattern \"" << pattern << "\" path \"" << path << "\"";
    ASSERT_EQ(Glob(pattern).Matches(path), expected) << "pattern \"" << pattern << "\" path \"" << path << "\"";
  }
  // The generator must exercise both answers, or the comparison proves little.
  EXPECT_GT(matches, 10'000);
  EXPECT_LT(matches, 190'000);
}

// A folder query "D/" may only say yes when every path under D matches: Walk() prunes on it.
TEST(GlobMatch, FolderQueryIsSound) {
  std::mt19937 rng(7);
  int positives = 0;
  for (int i = 0; i < 50'000; ++i) {
    const std::string pattern = RandomPattern(rng);
    const std::string folder = RandomPath(rng, false);
    if (!GlobMatch(pattern, folder + "/")) continue;
    ++positives;
    for (int k = 0; k < 8; ++k) {
      const std::string under = folder + "/" + RandomPath(rng, false);
      ASSERT_TRUE(GlobMatch(pattern, under)) << "pattern \"" << pattern << "\" matches folder \"" << folder
                                             << "/\" but not \"" << under << "\"";
    }
  }
  EXPECT_GT(positives, 1'000);
}

TEST(GlobMatch, PathologicalPatternsStayFast) {
  std::string deep;
  for (int i = 0; i < 300; ++i) deep += "bbbbbbbb/";
  deep += "bbbbbbbb";
  std::string as(2000, 'a');
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 20; ++i) {
    EXPECT_FALSE(GlobMatch("**/**/**/**/**/**/*a", deep));
    EXPECT_FALSE(GlobMatch("/**/b**b**b**b**b**b**a", deep));
    EXPECT_FALSE(GlobMatch("*a*a*a*a*a*a*a*a*a*b", as));
    EXPECT_TRUE(GlobMatch("*a*a*a*a*a*a*a*a*a*a", as));
  }
  const auto elapsed = std::chrono::steady_clock::now() - start;
  // A backtracking matcher takes years here; the NFA takes milliseconds. The bound leaves room for sanitizers.
  EXPECT_LT(elapsed, std::chrono::seconds(10));
}

}  // namespace
}  // namespace sitesync::sitemap
