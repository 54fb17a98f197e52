// The MD5 a single PutObject reports for the local record (UploadSpec::want_md5): the answer's ETag where S3
// documents it as the body's MD5, else the one computed for its Content-MD5 or while sending (SSE-KMS), never a
// guess.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "sync/fake_s3_test.h"
#include "sync/s3_client.h"
#include "sync/sync.h"

namespace sitesync::sync {
namespace {

using testing::FakeS3;

std::string Md5Of(std::string_view data) {
  aws::Md5 md5;
  md5.Update(data.data(), data.size());
  return aws::HexEncode(md5.Final());
}

class EtagMd5Test : public testing::TempSiteTest {
 protected:
  // The walked files of SOURCE, by relative path.
  std::map<std::string, sitemap::LocalFile> Walked() {
    auto site = sitemap::Walk(root_, {});
    EXPECT_TRUE(site.has_value());
    std::map<std::string, sitemap::LocalFile> out;
    if (site) {
      for (auto& f : site->files) out[f.rel_path] = f;
    }
    return out;
  }

  // Uploads `files` (relative paths, in order) with want_md5 through one shared choice; the results in order.
  std::vector<Uploaded> Upload(const std::map<std::string, sitemap::LocalFile>& walked,
                               const std::vector<std::string>& files, FakeS3& s3) {
    std::vector<Uploaded> out(files.size());
    for (std::size_t i = 0; i < files.size(); ++i) {
      UploadSpec spec{"bucket", files[i], walked.at(files[i])};
      spec.checksum = choice_;
      spec.want_md5 = true;
      SubmitUpload(s3, endpoint_, std::move(spec), [&out, i](aws::Result<Uploaded> r) {
        ASSERT_TRUE(r.has_value()) << r.error().message;
        out[i] = std::move(*r);
      });
    }
    s3.Run();
    return out;
  }

  S3Endpoint endpoint_{"http://fake", true, "us-east-1"};
  std::shared_ptr<ChecksumChoice> choice_ = std::make_shared<ChecksumChoice>();
};

TEST_F(EtagMd5Test, PlainOrSseS3AnswerGivesTheEtag) {
  Write("a.css", "body{color:red}");
  Write("b.js", std::string(70 * 1024, 'b'));  // streamed from the file, not held in memory
  for (bool sse_s3 : {false, true}) {
    FakeS3 s3;
    s3.sse_s3_answers = sse_s3;
    const auto up = Upload(Walked(), {"a.css", "b.js"}, s3);
    EXPECT_EQ(up[0].md5, Md5Of("body{color:red}"));
    EXPECT_EQ(up[0].md5_source, Md5Source::kEtag) << "sse_s3 " << sse_s3;
    EXPECT_EQ(up[1].md5, Md5Of(std::string(70 * 1024, 'b')));
    EXPECT_EQ(up[1].md5_source, Md5Source::kEtag);
    // Both checksums until the first answer echoes the CRC-32 (the session's choice is shared by both rounds).
    EXPECT_EQ(s3.sent_checksums, (std::vector<std::string>{sse_s3 ? "crc32 a.css" : "crc32+md5 a.css", "crc32 b.js"}));
    EXPECT_FALSE(choice_->md5_while_sending.load());
  }
}

TEST_F(EtagMd5Test, RuleThatSendsSseKmsComputesTheMd5WhileSending) {
  Write("secret.txt", "for KMS eyes");
  Write("open.txt", "for all");
  auto walked = Walked();
  sitemap::ExtraHeaders kms;
  kms.sse = "aws:kms";
  walked.at("secret.txt").extra = sitemap::InternHeaders(kms);
  FakeS3 s3;
  const auto up = Upload(walked, {"secret.txt", "open.txt"}, s3);
  EXPECT_NE(up[0].etag, Md5Of("for KMS eyes")) << "the fake stores it as SSE-KMS";
  EXPECT_EQ(up[0].md5, Md5Of("for KMS eyes"));
  EXPECT_EQ(up[0].md5_source, Md5Source::kSending);
  // The rule's own choice switches nothing for the other files.
  EXPECT_FALSE(choice_->md5_while_sending.load());
  EXPECT_EQ(up[1].md5_source, Md5Source::kEtag);
  EXPECT_EQ(up[1].md5, Md5Of("for all"));
}

TEST_F(EtagMd5Test, KmsBucketAnswerReadsThatFileAgainAndSwitchesTheRestOfTheSession) {
  Write("1.html", "one");
  Write("2.html", "two two");
  Write("3.html", std::string(80 * 1024, '3'));
  FakeS3 s3;
  s3.kms_etags = true;  // the bucket encrypts with SSE-KMS by default; the PUTs ask for nothing
  const auto up = Upload(Walked(), {"1.html", "2.html", "3.html"}, s3);
  EXPECT_NE(up[0].etag, Md5Of("one"));
  EXPECT_EQ(up[0].md5, Md5Of("one"));
  EXPECT_EQ(up[0].md5_source, Md5Source::kSending) << "the first PUT carried Content-MD5";
  EXPECT_EQ(up[1].md5, Md5Of("two two"));
  EXPECT_EQ(up[1].md5_source, Md5Source::kReadAgain) << "the CRC-32 alone, sent before the session knew";
  EXPECT_TRUE(choice_->md5_while_sending.load());
  EXPECT_EQ(up[2].md5, Md5Of(std::string(80 * 1024, '3')));
  EXPECT_EQ(up[2].md5_source, Md5Source::kSending);
  // The CRC-32 alone after the first answer echoed it: the switch is about the MD5 for the record only.
  EXPECT_EQ(s3.sent_checksums, (std::vector<std::string>{"crc32+md5 1.html", "crc32 2.html", "crc32 3.html"}));
}

TEST_F(EtagMd5Test, KmsAnswerForAFileWrittenSinceTheWalkReportsTheMd5OfWhatWasStored) {
  Write("page.html", "as walked");
  const auto walked = Walked();
  Write("page.html", "written after the walk");  // another size, another mtime: not what the walk saw
  FakeS3 s3;
  s3.kms_etags = true;
  const auto up = Upload(walked, {"page.html"}, s3);
  EXPECT_FALSE(up[0].etag.empty());
  // The bytes sent (and checked by the server) are the new ones: the record gets their MD5 with the walk's stat,
  // which the file no longer has, so the next run reads it again rather than trusting it.
  EXPECT_EQ(up[0].md5, Md5Of("written after the walk"));
  EXPECT_EQ(up[0].md5_source, Md5Source::kSending);
}

TEST_F(EtagMd5Test, WithoutWantMd5NothingIsReportedOrHashed) {
  Write("a.css", "x");
  FakeS3 s3;
  s3.kms_etags = true;
  std::optional<Uploaded> got;
  SubmitUpload(s3, endpoint_, UploadSpec{"bucket", "a.css", Walked().at("a.css")},
               [&](aws::Result<Uploaded> r) { got = r.value(); });
  s3.Run();
  ASSERT_TRUE(got.has_value());
  EXPECT_TRUE(got->md5.empty());
  EXPECT_EQ(got->md5_source, Md5Source::kNone);
}

// Reports nothing: these tests read what the uploads and the record say.
class NullReporter final : public Reporter {
 public:
  void OnWarning(std::string_view) override {}
  void OnPlan(const Plan&, bool) override {}
  void OnUploaded(std::string_view, std::uint64_t, bool, UploadReason) override {}
  void OnDeleted(std::string_view, bool) override {}
  void OnError(std::string_view, std::string_view) override {}
  void OnProgress(std::uint64_t, std::uint64_t) override {}
};

TEST_F(EtagMd5Test, FirstUploadToAKmsBucketIsRecordedSoATouchOnlyRebuildUploadsNothing) {
  for (bool kms : {false, true}) {
    std::filesystem::remove_all(root_ / "site");
    std::filesystem::remove_all(root_ / "cache");
    const std::map<std::string, std::string> files = {
        {"index.html", "<p>home</p>"}, {"a.css", "body{}"}, {"big.js", std::string(90 * 1024, 'j')}};
    const auto write_all = [&](int seconds_ago) {
      for (const auto& [rel, content] : files) {
        std::filesystem::create_directories((root_ / "site" / rel).parent_path());
        std::ofstream(root_ / "site" / rel, std::ios::binary | std::ios::trunc) << content;
        std::filesystem::last_write_time(root_ / "site" / rel, std::filesystem::file_time_type::clock::now() -
                                                                  std::chrono::seconds(seconds_ago));
      }
    };
    write_all(100);
    SyncOptions o;
    o.source = root_ / "site";
    o.destination = {"bucket", "site/"};
    o.compare = Compare::kChecksum;
    o.record_file = root_ / "cache" / "site.sqlite";
    FakeS3 s3;
    s3.kms_etags = kms;
    NullReporter reporter;
    auto first = RunSync(o, endpoint_, s3, reporter);
    ASSERT_TRUE(first.has_value()) << first.error().message;
    EXPECT_EQ(first->uploaded, 3u);
    write_all(50);  // a rebuild that writes the same bytes: new mtimes
    s3.log.clear();
    auto touched = RunSync(o, endpoint_, s3, reporter);
    ASSERT_TRUE(touched.has_value());
    EXPECT_EQ(touched->uploaded, 0u) << "kms " << kms;
    EXPECT_EQ(s3.log, std::vector<std::string>{"LIST"});
  }
}

}  // namespace
}  // namespace sitesync::sync
