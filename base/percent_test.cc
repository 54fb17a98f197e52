// PercentEncode and CharSet: a table of tricky inputs, and every byte against a naive reference.
#include "base/percent.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

namespace sitesync {
namespace {

TEST(CharSet, BuildsAndCombines) {
  constexpr CharSet dash = CharSet::Of("-");
  static_assert(dash.Contains('-') && !dash.Contains('_'));
  static_assert(CharSet::Range('a', 'c').Contains('b') && !CharSet::Range('a', 'c').Contains('d'));
  static_assert(CharSet::Range('c', 'a') == CharSet{});  // first > last: empty
  static_assert((kUnreserved - CharSet::Of("~")).Contains('-') && !(kUnreserved - CharSet::Of("~")).Contains('~'));
  static_assert((~CharSet{}).Contains(0) && (~CharSet{}).Contains(255));
  EXPECT_TRUE(CharSet::Range(0, 255).Contains(0x80));
  EXPECT_TRUE(CharSet::Of(std::string_view("\0\xff", 2)).Contains(0));
  EXPECT_TRUE(CharSet::Of(std::string_view("\0\xff", 2)).Contains(0xFF));
  EXPECT_FALSE(CharSet::Of(std::string_view("\0\xff", 2)).Contains(0xFE));
  int count = 0;
  for (int b = 0; b < 256; ++b) count += kUnreserved.Contains(static_cast<unsigned char>(b)) ? 1 : 0;
  EXPECT_EQ(count, 26 + 26 + 10 + 4);
}

struct Case {
  const char* name;
  std::string input;
  CharSet keep;
  std::string expected;
};

TEST(PercentEncode, Table) {
  const CharSet with_slash = kUnreserved | CharSet::Of("/");
  const Case cases[] = {
      {"empty", "", kUnreserved, ""},
      {"unreserved kept", "AZaz09-._~", kUnreserved, "AZaz09-._~"},
      {"space is %20, never +", "a b", kUnreserved, "a%20b"},
      {"plus", "a+b", kUnreserved, "a%2Bb"},
      {"percent encoded once", "100%", kUnreserved, "100%25"},
      {"already encoded is encoded again", "%2F", kUnreserved, "%252F"},
      {"utf-8 byte by byte, uppercase hex", "caf\xC3\xA9", kUnreserved, "caf%C3%A9"},
      {"slash encoded", "a/b", kUnreserved, "a%2Fb"},
      {"slash kept", "a/b", with_slash, "a/b"},
      {"double slash kept as is", "a//b/", with_slash, "a//b/"},
      {"tilde encoded when not kept", "~x", kAlnum, "%7Ex"},
      {"star", "*", kUnreserved, "%2A"},
      {"star kept", "a*", kAlnum | CharSet::Of("*"), "a*"},
      {"control bytes", std::string("\0\x1f\x7f", 3), kUnreserved, "%00%1F%7F"},
      {"high byte", "\xff", kUnreserved, "%FF"},
      {"keep everything", "a b%\xff", ~CharSet{}, "a b%\xff"},
      {"keep nothing", "az", CharSet{}, "%61%7A"},
  };
  for (const Case& c : cases) EXPECT_EQ(PercentEncode(c.input, c.keep), c.expected) << c.name;
}

TEST(PercentEncode, EveryByteAgainstNaiveReference) {
  const CharSet keeps[] = {kUnreserved, kUnreserved | CharSet::Of("/"), CharSet::Of("!$&'()*+,;=:@/"), CharSet{}};
  for (const CharSet& keep : keeps) {
    for (int b = 0; b < 256; ++b) {
      const char ch = static_cast<char>(b);
      char hex[4];
      std::snprintf(hex, sizeof hex, "%%%02X", b);
      const std::string expected = keep.Contains(static_cast<unsigned char>(b)) ? std::string(1, ch) : hex;
      EXPECT_EQ(PercentEncode(std::string_view(&ch, 1), keep), expected) << b;
    }
  }
}

}  // namespace
}  // namespace sitesync
