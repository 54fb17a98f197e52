// Upload integrity against servers that check checksums differently (sync/fake_s3_test.h's Checksums): a body
// corrupted in transit is never left stored by a run that reports it uploaded.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include "sync/fake_s3_test.h"
#include "sync/s3_client.h"
#include "sync/sync.h"

namespace sitesync::sync {
namespace {

using testing::Checksums;
using testing::FakeS3;

class CountingReporter final : public Reporter {
 public:
  void OnWarning(std::string_view) override {}
  void OnPlan(const Plan&, bool) override {}
  void OnUploaded(std::string_view, std::uint64_t, bool, UploadReason) override {}
  void OnDeleted(std::string_view, bool) override {}
  void OnError(std::string_view key, std::string_view message) override {
    errors.push_back(fmt::format("{}: {}", key, message));
  }
  void OnProgress(std::uint64_t, std::uint64_t) override {}
  std::vector<std::string> errors;
};

std::string Md5Of(std::string_view data) {
  aws::Md5 md5;
  md5.Update(data.data(), data.size());
  return aws::HexEncode(md5.Final());
}

class IntegrityTest : public testing::TempSiteTest {
 protected:
  SyncOptions Options() const {
    SyncOptions o;
    o.source = root_;
    o.destination = {"bucket", "site/"};
    return o;
  }

  // Writes the files and returns key -> MD5 of the content.
  std::map<std::string, std::string> Site(const std::map<std::string, std::string>& files) {
    std::map<std::string, std::string> md5s;
    for (const auto& [rel, content] : files) {
      Write(rel, content);
      md5s["site/" + rel] = Md5Of(content);
    }
    return md5s;
  }

  // The ETags the fake holds (the MD5 of the bytes it stored), by key.
  static std::map<std::string, std::string> Stored(const FakeS3& s3) {
    std::map<std::string, std::string> out;
    for (const auto& [key, object] : s3.objects) out[key] = object.second;
    return out;
  }

  S3Endpoint endpoint_{"http://fake", true, "us-east-1"};
};

std::map<std::string, std::string> ThreeFiles() {
  return {{"a.css", std::string(3000, 'a')}, {"b.js", std::string(70 * 1024, 'b')}, {"c.txt", "c, small"}};
}

TEST_F(IntegrityTest, ServerThatEchoesTheChecksumKeepsCrc32) {
  const auto md5s = Site(ThreeFiles());
  FakeS3 s3;  // Checksums::kAws
  CountingReporter reporter;
  auto r = RunSync(Options(), endpoint_, s3, reporter);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->uploaded, 3u);
  EXPECT_EQ(s3.Count("PUT "), 3) << "nothing sent twice";
  // The first PUT carries both checksums (nothing is known of the server yet); its answer echoes the CRC-32, which
  // S3 checked, so the rest carry the CRC-32 alone.
  EXPECT_EQ(s3.sent_checksums,
            (std::vector<std::string>{"crc32+md5 site/a.css", "crc32 site/b.js", "crc32 site/c.txt"}));
  EXPECT_EQ(Stored(s3), md5s);
}

TEST_F(IntegrityTest, ServerThatIgnoresTheChecksumGetsContentMd5AfterTheFirstAnswer) {
  const auto md5s = Site(ThreeFiles());
  FakeS3 s3;
  s3.checksums = Checksums::kRgw;
  CountingReporter reporter;
  auto r = RunSync(Options(), endpoint_, s3, reporter);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->uploaded, 3u);
  EXPECT_EQ(r->failed, 0u);
  // The first answer carried no x-amz-checksum-crc32: the server checked the Content-MD5 sent with it, and its ETag
  // is that MD5, so it is not sent again; every later PUT carries Content-MD5 alone.
  EXPECT_EQ(s3.Count("PUT "), 3);
  EXPECT_EQ(s3.sent_checksums, (std::vector<std::string>{"crc32+md5 site/a.css", "md5 site/b.js", "md5 site/c.txt"}));
  EXPECT_EQ(Stored(s3), md5s);
}

// RGW ignores the CRC-32, but the first PUTs of a run, sent before any answer shows that, carry Content-MD5 as
// well: a body corrupted in transit is refused, never stored, not even for a moment.
TEST_F(IntegrityTest, FirstBodyCorruptedOnAServerThatIgnoresTheCrc32IsRefusedByItsContentMd5) {
  const auto md5s = Site(ThreeFiles());
  FakeS3 s3;
  s3.checksums = Checksums::kRgw;
  s3.corrupt_bodies["site/a.css"] = 1;  // the first PUT
  CountingReporter reporter;
  auto r = RunSync(Options(), endpoint_, s3, reporter);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->uploaded, 3u);
  EXPECT_EQ(r->failed, 0u);
  EXPECT_TRUE(reporter.errors.empty()) << reporter.errors.front();
  // Refused (400 BadDigest), which says nothing about the CRC-32: b.js still carries both; its answer, with no
  // echo, drops the CRC-32 for the rest. The resend of a.css goes behind the PUTs already queued.
  EXPECT_EQ(s3.sent_checksums, (std::vector<std::string>{"crc32+md5 site/a.css", "crc32+md5 site/b.js",
                                                         "md5 site/c.txt", "md5 site/a.css"}));
  EXPECT_EQ(s3.Count("DELETE "), 0) << "no damaged copy was stored, so none is deleted";
  EXPECT_EQ(Stored(s3), md5s);
}

TEST_F(IntegrityTest, BodyCorruptedUnderContentMd5IsRefusedAndSentAgain) {
  const auto md5s = Site(ThreeFiles());
  FakeS3 s3;
  s3.checksums = Checksums::kRgw;
  s3.corrupt_bodies["site/b.js"] = 1;  // after the switch: Content-MD5, 400 BadDigest
  CountingReporter reporter;
  auto r = RunSync(Options(), endpoint_, s3, reporter);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->failed, 0u);
  EXPECT_EQ(s3.sent_checksums, (std::vector<std::string>{"crc32+md5 site/a.css", "md5 site/b.js", "md5 site/c.txt",
                                                         "md5 site/b.js"}));
  EXPECT_EQ(Stored(s3), md5s);
}

TEST_F(IntegrityTest, ServerThatChecksCrc32RefusesTheCorruptedBodyAndKeepsCrc32) {
  const auto md5s = Site(ThreeFiles());
  FakeS3 s3;  // Checksums::kAws
  s3.corrupt_bodies["site/b.js"] = 1;
  CountingReporter reporter;
  auto r = RunSync(Options(), endpoint_, s3, reporter);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->failed, 0u);
  EXPECT_EQ(s3.sent_checksums, (std::vector<std::string>{"crc32+md5 site/a.css", "crc32 site/b.js",
                                                         "crc32 site/c.txt", "crc32 site/b.js"}));
  EXPECT_EQ(Stored(s3), md5s);
}

TEST_F(IntegrityTest, BodyCorruptedOnEveryAttemptFailsTheFileAfterTwoResends) {
  Site(ThreeFiles());
  FakeS3 s3;
  s3.checksums = Checksums::kRgw;
  s3.corrupt_bodies["site/c.txt"] = 100;
  CountingReporter reporter;
  auto r = RunSync(Options(), endpoint_, s3, reporter);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->failed, 1u);
  EXPECT_EQ(r->outcome, Outcome::kFailed) << "the run exits 1";
  EXPECT_EQ(s3.Count("PUT site/c.txt"), 3) << "sent once, then again twice: bounded";
  EXPECT_EQ(s3.objects.count("site/c.txt"), 0u) << "Content-MD5 kept every corrupted copy out";
  ASSERT_EQ(reporter.errors.size(), 1u);
  EXPECT_NE(reporter.errors[0].find("BadDigest"), std::string::npos) << reporter.errors[0];
  EXPECT_NE(reporter.errors[0].find("sent 3 times"), std::string::npos) << reporter.errors[0];
}

// A server that checks no checksum (neither the CRC-32 nor the Content-MD5) stores what arrives. Its ETag, the MD5 of
// what it stored, shows the damage: the PUT is sent again, a bounded number of times, and when every copy stored is
// damaged the last one is deleted, so that no damaged copy stays behind the failure (the next run compares sizes
// and would keep it) and the next run uploads the file again.
TEST_F(IntegrityTest, DamagedCopyOnAServerThatChecksNothingIsDeletedWhenEveryResendIsDamagedToo) {
  const auto md5s = Site({{"only.html", std::string(4096, 'p')}});
  FakeS3 s3;
  s3.checksums = Checksums::kNone;
  s3.corrupt_bodies["site/only.html"] = 100;
  CountingReporter reporter;
  auto r = RunSync(Options(), endpoint_, s3, reporter);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->failed, 1u);
  EXPECT_EQ(r->outcome, Outcome::kFailed) << "the run exits 1";
  EXPECT_EQ(s3.sent_checksums, (std::vector<std::string>{"crc32+md5 site/only.html", "md5 site/only.html",
                                                         "md5 site/only.html"}))
      << "sent once, then again twice: bounded";
  EXPECT_EQ(s3.Count("DELETE site/only.html"), 1);
  EXPECT_EQ(s3.objects.count("site/only.html"), 0u) << "no damaged copy left for a size-only run to keep";
  ASSERT_EQ(reporter.errors.size(), 1u);
  EXPECT_NE(reporter.errors[0].find("other bytes than were sent"), std::string::npos) << reporter.errors[0];
  EXPECT_NE(reporter.errors[0].find("was deleted"), std::string::npos) << reporter.errors[0];

  // The next run, with a clean path, uploads it (the key is missing) and stores the right bytes.
  s3.corrupt_bodies.clear();
  CountingReporter next;
  auto again = RunSync(Options(), endpoint_, s3, next);
  ASSERT_TRUE(again.has_value()) << again.error().message;
  EXPECT_EQ(again->failed, 0u);
  EXPECT_EQ(Stored(s3), md5s);
}

// Once the run has dropped the CRC-32 for such a server, a PUT is trusted to its Content-MD5 again: every real S3
// server checks that, and comparing ETags everywhere would take an encrypted object's ETag for damage.
TEST_F(IntegrityTest, OneDamagedCopyOnAServerThatChecksNothingIsReplacedByTheResend) {
  const auto md5s = Site({{"only.html", std::string(4096, 'p')}});
  FakeS3 s3;
  s3.checksums = Checksums::kNone;
  s3.corrupt_bodies["site/only.html"] = 1;
  CountingReporter reporter;
  auto r = RunSync(Options(), endpoint_, s3, reporter);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->failed, 0u);
  EXPECT_EQ(s3.sent_checksums, (std::vector<std::string>{"crc32+md5 site/only.html", "md5 site/only.html"}));
  EXPECT_EQ(s3.Count("DELETE "), 0);
  EXPECT_EQ(Stored(s3), md5s) << "the damaged copy was replaced within the run";
}

TEST_F(IntegrityTest, CorruptedMultipartPartIsRefusedAndSentAgain) {
  std::string big(6 << 20, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 7919) >> 5);
  Write("big.bin", big);
  FakeS3 s3;
  s3.checksums = Checksums::kRgw;
  s3.corrupt_bodies["site/big.bin"] = 1;
  SyncOptions options = Options();
  options.multipart_threshold = 1 << 20;
  options.part_size = 5 << 20;  // two parts: 5 MiB (the least S3 takes) and 1 MiB
  CountingReporter reporter;
  auto r = RunSync(options, endpoint_, s3, reporter);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->failed, 0u);
  EXPECT_EQ(s3.Count("PART "), 3) << "the corrupted part once more";
  EXPECT_EQ(s3.Count("ABORT "), 0);
  const std::string part1 = Md5Of(std::string_view(big).substr(0, 5 << 20));
  const std::string part2 = Md5Of(std::string_view(big).substr(5 << 20));
  std::string digests;
  for (const std::string& hex : {part1, part2}) {
    for (std::size_t i = 0; i < hex.size(); i += 2) {
      digests += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
    }
  }
  EXPECT_EQ(s3.objects.at("site/big.bin").second, Md5Of(digests) + "-2");
}

TEST_F(IntegrityTest, WatchSessionKeepsContentMd5ForLaterBatches) {
  Write("a.css", "one");
  FakeS3 s3;
  s3.checksums = Checksums::kRgw;
  CountingReporter reporter;
  Session session(Options(), endpoint_, s3);
  ASSERT_TRUE(session.Initial(reporter).has_value());
  Write("a.css", "two, longer");
  Write("b.css", "new");
  auto batch = session.Batch({"a.css", "b.css"}, false, BatchDeletes::kWith, reporter);
  ASSERT_TRUE(batch.has_value());
  EXPECT_EQ(s3.sent_checksums,
            (std::vector<std::string>{"crc32+md5 site/a.css", "md5 site/a.css", "md5 site/b.css"}));
}

TEST_F(IntegrityTest, LoneUploadWithoutASharedChoiceIsVerifiedToo) {
  Write("x.txt", "lonely bytes");
  FakeS3 s3;
  s3.checksums = Checksums::kRgw;
  s3.corrupt_bodies["k"] = 1;
  auto site = sitemap::Walk(root_, {});
  ASSERT_TRUE(site.has_value());
  ASSERT_EQ(site->files.size(), 1u);
  std::optional<aws::Result<Uploaded>> got;
  SubmitUpload(s3, endpoint_, UploadSpec{"bucket", "k", site->files[0]}, [&](aws::Result<Uploaded> r) { got = r; });
  s3.Run();
  ASSERT_TRUE(got.has_value());
  ASSERT_TRUE(got->has_value()) << (*got).error().message;
  EXPECT_EQ((*got)->etag, Md5Of("lonely bytes"));
  EXPECT_EQ(s3.objects.at("k").second, Md5Of("lonely bytes"));
  // Refused for its Content-MD5 (400 BadDigest), which does not drop the CRC-32: sent again with both.
  EXPECT_EQ(s3.sent_checksums, (std::vector<std::string>{"crc32+md5 k", "crc32+md5 k"}));
}

}  // namespace
}  // namespace sitesync::sync
