// Md5Many against OpenSSL's MD5 (aws::Md5), one message at a time: the lanes must give the same digest for every
// length around the padding's edges (55, 56, 63, 64 bytes), for messages of very different lengths side by side,
// for readers that hand out pieces that cut blocks anywhere, and must keep going past a reader that fails.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "aws/aws.h"

namespace sitesync::aws {
namespace {

Md5Digest OpenSslMd5(std::string_view m) {
  Md5 md5;
  md5.Update(m.data(), m.size());
  return md5.Final();
}

std::string RandomBytes(std::mt19937& rng, std::size_t n) {
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng() & 0xff);
  return s;
}

// A reader that gives `m` in pieces of the given sizes, over and over, then the rest.
Md5Reader Pieces(const std::string& m, std::vector<std::size_t> sizes) {
  return [&m, sizes = std::move(sizes), at = std::size_t{0}, i = std::size_t{0}]() mutable
         -> Result<std::span<const unsigned char>> {
    const std::size_t n = std::min(sizes[i++ % sizes.size()], m.size() - at);
    std::span<const unsigned char> piece(reinterpret_cast<const unsigned char*>(m.data()) + at, n);
    at += n;
    return piece;
  };
}

TEST(Md5Many, KnownDigests) {
  // RFC 1321, appendix A.5.
  const std::vector<std::string_view> messages = {
      "", "a", "abc", "message digest", "abcdefghijklmnopqrstuvwxyz",
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
      "12345678901234567890123456789012345678901234567890123456789012345678901234567890"};
  const std::vector<std::string> want = {
      "d41d8cd98f00b204e9800998ecf8427e", "0cc175b9c0f1b6a831c399e269772661", "900150983cd24fb0d6963f7d28e17f72",
      "f96b697d7cb7938d525a2f31aaf161d0", "c3fcd3d76192e4007dfb496cca67e13b", "d174ab98d277d9f5a5611c2c9f419d9f",
      "57edf4a22be3c955ac49da2e2107b67a"};
  const auto got = Md5Many(messages);
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i) EXPECT_EQ(HexEncode(got[i]), want[i]) << "message " << i;
}

TEST(Md5Many, EveryLengthAroundThePaddingEdges) {
  std::mt19937 rng(1);
  std::vector<std::string> bodies;
  for (std::size_t n = 0; n <= 300; ++n) bodies.push_back(RandomBytes(rng, n));
  std::vector<std::string_view> views(bodies.begin(), bodies.end());
  const auto got = Md5Many(views);
  ASSERT_EQ(got.size(), bodies.size());
  for (std::size_t i = 0; i < bodies.size(); ++i) EXPECT_EQ(got[i], OpenSslMd5(bodies[i])) << "length " << i;
}

TEST(Md5Many, OneOrTwoMessagesAreHashedOnTheirOwnAtEveryLength) {
  // Too few to fill the lanes: each goes through the one-message steps, which must pad as the lanes do.
  std::mt19937 rng(5);
  for (std::size_t n = 0; n <= 300; ++n) {
    const std::string a = RandomBytes(rng, n);
    const std::string b = RandomBytes(rng, 300 - n);
    const std::vector<std::string_view> one = {a};
    EXPECT_EQ(Md5Many(one)[0], OpenSslMd5(a)) << "length " << n;
    const std::vector<std::string_view> two = {a, b};
    const auto got = Md5Many(two);
    EXPECT_EQ(got[0], OpenSslMd5(a)) << "length " << n;
    EXPECT_EQ(got[1], OpenSslMd5(b)) << "length " << 300 - n;
  }
  std::vector<Md5Reader> failing;
  failing.emplace_back([]() -> Result<std::span<const unsigned char>> {
    return std::unexpected(Error{ErrorCode::kIo, "cannot read alone", false, 0, {}});
  });
  const auto got = Md5Many(failing);
  ASSERT_FALSE(got[0].has_value());
  EXPECT_EQ(got[0].error().message, "cannot read alone");
}

TEST(Md5Many, LanesOfVeryDifferentLengthsAndMoreMessagesThanLanes) {
  std::mt19937 rng(2);
  std::vector<std::string> bodies;
  for (int i = 0; i < 53; ++i) {
    const std::size_t n = i % 7 == 0 ? 1'000'000 + rng() % 70'000 : rng() % (i % 3 == 0 ? 100'000 : 3'000);
    bodies.push_back(RandomBytes(rng, n));
  }
  std::vector<std::string_view> views(bodies.begin(), bodies.end());
  const auto got = Md5Many(views);
  for (std::size_t i = 0; i < bodies.size(); ++i) EXPECT_EQ(got[i], OpenSslMd5(bodies[i])) << "message " << i;
}

TEST(Md5Many, ReadersThatCutBlocksAnywhere) {
  std::mt19937 rng(3);
  std::vector<std::string> bodies;
  for (int i = 0; i < 40; ++i) bodies.push_back(RandomBytes(rng, rng() % 20'000));
  const std::vector<std::vector<std::size_t>> cuts = {{1}, {63}, {64}, {65}, {7, 200, 64, 1}, {4096}, {127, 129}, {5}};
  for (bool lanes : {true, false}) {
    std::vector<Md5Reader> readers;  // a reader is used up by one pass
    for (std::size_t i = 0; i < bodies.size(); ++i) readers.push_back(Pieces(bodies[i], cuts[i % cuts.size()]));
    const auto got = Md5Many(readers, lanes);
    ASSERT_EQ(got.size(), bodies.size());
    for (std::size_t i = 0; i < bodies.size(); ++i) {
      ASSERT_TRUE(got[i].has_value());
      EXPECT_EQ(*got[i], OpenSslMd5(bodies[i])) << "message " << i << (lanes ? " in lanes" : " one by one");
    }
  }
}

TEST(Md5Many, AFailingReaderFailsItsMessageOnly) {
  std::mt19937 rng(4);
  std::vector<std::string> bodies;
  for (int i = 0; i < 20; ++i) bodies.push_back(RandomBytes(rng, 5'000 + 1'000 * i));
  const auto make = [&] {
    std::vector<Md5Reader> readers;
    for (int i = 0; i < 20; ++i) {
      if (i == 3) {
        readers.emplace_back([]() -> Result<std::span<const unsigned char>> {
          return std::unexpected(Error{ErrorCode::kIo, "cannot read f3", false, 0, {}});
        });
      } else if (i == 17) {  // fails after two pieces
        readers.emplace_back([&m = bodies[17], calls = 0]() mutable -> Result<std::span<const unsigned char>> {
          if (++calls > 2) return std::unexpected(Error{ErrorCode::kIo, "f17 went away", false, 0, {}});
          const auto* bytes = reinterpret_cast<const unsigned char*>(m.data());
          return std::span<const unsigned char>(bytes + (calls - 1) * 100, 100);
        });
      } else {
        readers.push_back(Pieces(bodies[static_cast<std::size_t>(i)], {1000}));
      }
    }
    return readers;
  };
  for (bool lanes : {true, false}) {
    const auto readers = make();
    const auto got = Md5Many(readers, lanes);
    for (int i = 0; i < 20; ++i) {
      if (i == 3 || i == 17) {
        ASSERT_FALSE(got[static_cast<std::size_t>(i)].has_value());
        EXPECT_NE(got[static_cast<std::size_t>(i)].error().message.find(i == 3 ? "f3" : "f17"), std::string::npos);
      } else {
        ASSERT_TRUE(got[static_cast<std::size_t>(i)].has_value()) << i;
        EXPECT_EQ(*got[static_cast<std::size_t>(i)], OpenSslMd5(bodies[static_cast<std::size_t>(i)])) << i;
      }
    }
  }
}

TEST(Md5Many, UsesLanesWhereTheCpuHasAvx512) {
  // Not a speed test: only that this machine takes the lanes path when it can, so that the tests above check it.
  EXPECT_EQ(Md5ManyUsesLanes(), __builtin_cpu_supports("avx512f") != 0);
}

}  // namespace
}  // namespace sitesync::aws
