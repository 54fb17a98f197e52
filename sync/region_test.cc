// The bucket's region, followed (issue 13, point 4): a run that starts with the wrong region learns the bucket's
// from S3's first answer (301 PermanentRedirect with x-amz-bucket-region, or 400 AuthorizationHeaderMalformed),
// notes it once and uses it for every later request of the run or watch session, re-sending what was in flight.
// Against the in-memory S3 of sync/fake_s3_test.h in its "bucket lives in region X" mode.
#include <gtest/gtest.h>

#include <algorithm>

#include <fmt/format.h>

#include "sync/fake_s3_test.h"
#include "sync/s3_client.h"
#include "sync/sync.h"

namespace sitesync::sync {
namespace {

using testing::FakeS3;
using testing::RegionAnswer;

class NoteReporter final : public Reporter {
 public:
  void OnWarning(std::string_view message) override { warnings.emplace_back(message); }
  void OnNote(std::string_view message) override { notes.emplace_back(message); }
  void OnPlan(const Plan&, bool) override {}
  void OnUploaded(std::string_view key, std::uint64_t, bool, UploadReason) override { uploaded.emplace_back(key); }
  void OnDeleted(std::string_view key, bool) override { deleted.emplace_back(key); }
  void OnError(std::string_view key, std::string_view message) override {
    errors.emplace_back(std::string(key) + ": " + std::string(message));
  }
  void OnProgress(std::uint64_t, std::uint64_t) override {}
  std::vector<std::string> warnings, notes, uploaded, deleted, errors;
};

// The signing regions of the requests from index `from` on, each once.
std::vector<std::string> RegionsFrom(const FakeS3& s3, std::size_t from) {
  std::vector<std::string> out(s3.regions.begin() + static_cast<std::ptrdiff_t>(std::min(from, s3.regions.size())),
                               s3.regions.end());
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

class RegionTest : public testing::TempSiteTest {
 protected:
  SyncOptions Options() const {
    SyncOptions o;
    o.source = root_;
    o.destination = {"bucket", "site/"};
    o.delete_stale = true;
    o.max_deletes = -1;
    o.max_delete_fraction = 1;
    o.multipart_threshold = 1024;  // big.bin goes up in parts
    return o;
  }
  void WriteSite() {
    Write("index.html", "<p>home</p>");
    Write("a.css", "body{}");
    Write("blog/post/index.html", "<p>post</p>");
    Write("big.bin", std::string(3000, 'b'));
  }
  S3Endpoint endpoint_{"http://fake", true, "us-east-1"};
};

TEST(FollowableRegionTest, OnlyRegionAnswersNamingAnotherWellFormedRegion) {
  const auto error = [](int status, std::string code, std::string bucket_region, std::string message = "") {
    return aws::Error{aws::ErrorCode::kHttp, std::move(message), false, status, std::move(code),
                      std::move(bucket_region)};
  };
  struct Case {
    aws::Error error;
    std::string want;
  };
  const std::vector<Case> cases = {
      {error(301, "PermanentRedirect", "eu-west-1"), "eu-west-1"},
      {error(301, "", "eu-west-1"), "eu-west-1"},  // HEAD: no body, only the header
      {error(307, "TemporaryRedirect", "ap-southeast-2"), "ap-southeast-2"},
      {error(400, "AuthorizationHeaderMalformed", "eu-central-1"), "eu-central-1"},
      {error(400, "AuthorizationHeaderMalformed", "",
             "GET s3://b/: 400 AuthorizationHeaderMalformed: The authorization header is malformed; the region "
             "'us-east-1' is wrong; expecting 'us-gov-west-1'"),
       "us-gov-west-1"},
      {error(400, "AuthorizationHeaderMalformed", "", "The authorization header is malformed."), ""},
      {error(301, "PermanentRedirect", "us-east-1"), ""},  // the region already used: not a switch
      {error(301, "PermanentRedirect", ""), ""},           // names none
      {error(403, "AccessDenied", "eu-west-1"), ""},       // not about the region
      {error(404, "NoSuchKey", "eu-west-1"), ""},
      {error(503, "SlowDown", "eu-west-1"), ""},
      {error(301, "PermanentRedirect", "eu-west-1.evil.example"), ""},  // goes into a host name: refused
      {error(301, "PermanentRedirect", "EU-WEST-1"), ""},
      {error(301, "PermanentRedirect", "eu west 1"), ""},
      {error(301, "PermanentRedirect", "-eu-west-1"), ""},
      {error(400, "AuthorizationHeaderMalformed", "", "expecting 'eu-west-1/../x'"), ""},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(FollowableRegion(c.error, "us-east-1"), c.want)
        << c.error.http_status << " " << c.error.service_code << " '" << c.error.bucket_region << "' "
        << c.error.message;
  }
}

// The table of S3's answers: each one is followed the same way.
class RegionAnswerTest : public RegionTest, public ::testing::WithParamInterface<RegionAnswer> {};

TEST_P(RegionAnswerTest, SyncStartingWithTheWrongRegionSucceedsAndNotesOnce) {
  WriteSite();
  FakeS3 s3;
  s3.bucket_region = "eu-west-1";
  s3.region_answer = GetParam();
  s3.objects["site/old.html"] = {3, "0123"};
  NoteReporter reporter;
  Session session(Options(), endpoint_, s3);
  auto result = session.Initial(reporter);
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_EQ(result->outcome, Outcome::kOk) << fmt::format("{}", fmt::join(reporter.errors, "\n"));
  EXPECT_TRUE(reporter.errors.empty()) << fmt::format("{}", fmt::join(reporter.errors, "\n"));

  // One note, naming the bucket and both regions, and nothing else said about it.
  ASSERT_EQ(reporter.notes.size(), 1u);
  EXPECT_NE(reporter.notes[0].find("bucket bucket is in region eu-west-1, not us-east-1"), std::string::npos)
      << reporter.notes[0];
  EXPECT_TRUE(reporter.warnings.empty());

  // Only the listing, the first request, met the wrong region; every request after it was signed for eu-west-1.
  EXPECT_EQ(s3.log.front(), "WRONG-REGION GET ");
  EXPECT_EQ(s3.Count("WRONG-REGION"), 1);
  ASSERT_EQ(s3.regions.front(), "us-east-1");
  EXPECT_EQ(RegionsFrom(s3, 1), std::vector<std::string>{"eu-west-1"});
  EXPECT_EQ(session.Endpoint().region, "eu-west-1");

  // Everything was done: PUTs, a multipart upload, the delete.
  EXPECT_EQ(s3.Count("LIST"), 1);
  EXPECT_EQ(s3.Count("PUT "), 3);
  EXPECT_EQ(s3.Count("CREATE site/big.bin"), 1);
  EXPECT_EQ(s3.Count("PART "), 1);
  EXPECT_EQ(s3.Count("COMPLETE "), 1);
  EXPECT_EQ(s3.Count("DELETE site/old.html"), 1);
  EXPECT_EQ(result->uploaded, 4u);
  EXPECT_EQ(result->deleted, 1u);
  EXPECT_TRUE(s3.objects.contains("site/big.bin"));
  EXPECT_FALSE(s3.objects.contains("site/old.html"));
}

INSTANTIATE_TEST_SUITE_P(S3Answers, RegionAnswerTest,
                         ::testing::Values(RegionAnswer::kPermanentRedirect,
                                           RegionAnswer::kAuthorizationHeaderMalformed,
                                           RegionAnswer::kMalformedMessageOnly),
                         [](const ::testing::TestParamInfo<RegionAnswer>& param) -> std::string {
                           switch (param.param) {
                             case RegionAnswer::kPermanentRedirect: return "PermanentRedirect";
                             case RegionAnswer::kAuthorizationHeaderMalformed: return "AuthorizationHeaderMalformed";
                             case RegionAnswer::kMalformedMessageOnly: return "MalformedMessageOnly";
                           }
                           return "unknown";
                         });

TEST_F(RegionTest, RequestsInFlightWithTheOldRegionAreSentAgainNotFailed) {
  // A server that lets the listing through: the uploads, all in flight together, meet the wrong region first.
  for (int i = 0; i < 30; ++i) Write(fmt::format("p{:02}.css", i), "x");
  Write("big.bin", std::string(3000, 'b'));
  FakeS3 s3;
  s3.bucket_region = "ap-northeast-1";
  s3.region_checks_listing = false;
  NoteReporter reporter;
  Session session(Options(), endpoint_, s3);
  auto result = session.Initial(reporter);
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_EQ(result->outcome, Outcome::kOk) << fmt::format("{}", fmt::join(reporter.errors, "\n"));
  EXPECT_EQ(result->uploaded, 31u);
  EXPECT_EQ(reporter.notes.size(), 1u);
  // Every upload was submitted before the first answer came, so each met the old region once and was re-sent.
  EXPECT_EQ(s3.Count("WRONG-REGION PUT "), 30);
  EXPECT_EQ(s3.Count("WRONG-REGION POST site/big.bin"), 1);  // CreateMultipartUpload
  EXPECT_EQ(s3.Count("PUT "), 30);
  EXPECT_EQ(s3.Count("PART "), 1);
  EXPECT_EQ(s3.Count("COMPLETE "), 1);
  EXPECT_EQ(s3.objects.size(), 31u);
}

TEST_F(RegionTest, WatchSessionKeepsTheRegionForEveryLaterBatch) {
  WriteSite();
  FakeS3 s3;
  s3.bucket_region = "eu-west-1";
  NoteReporter reporter;
  Session session(Options(), endpoint_, s3);
  ASSERT_TRUE(session.Initial(reporter).has_value());
  ASSERT_EQ(reporter.notes.size(), 1u);
  ASSERT_EQ(s3.Count("WRONG-REGION"), 1);

  for (int batch = 0; batch < 3; ++batch) {
    const std::size_t before = s3.regions.size();
    Write("a.css", fmt::format("body{{color:{}}}", batch));
    Write("big.bin", std::string(3000 + static_cast<std::size_t>(batch), 'c'));
    NoteReporter later;
    auto done = session.Batch({"a.css", "big.bin"}, false, BatchDeletes::kWith, later);
    ASSERT_TRUE(done.has_value()) << done.error().message;
    EXPECT_EQ(done->result.uploaded, 2u) << batch;
    EXPECT_TRUE(later.errors.empty()) << fmt::format("{}", fmt::join(later.errors, "\n"));
    EXPECT_TRUE(later.notes.empty()) << "the switch is noted once per session";
    ASSERT_GT(s3.regions.size(), before);
    EXPECT_EQ(RegionsFrom(s3, before), std::vector<std::string>{"eu-west-1"}) << batch;
  }
  EXPECT_EQ(s3.Count("WRONG-REGION"), 1);
  EXPECT_EQ(s3.Count("LIST"), 1);
}

TEST_F(RegionTest, OnAwsTheHostFollowsTheRegion) {
  // Virtual-hosted addressing on AWS: the host names the region (BUCKET.s3.REGION.amazonaws.com).
  WriteSite();
  FakeS3 s3;
  s3.bucket_region = "eu-west-1";
  NoteReporter reporter;
  Session session(Options(), S3Endpoint{"", false, "us-east-1"}, s3);
  auto result = session.Initial(reporter);
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_EQ(result->outcome, Outcome::kOk) << fmt::format("{}", fmt::join(reporter.errors, "\n"));
  ASSERT_GT(s3.endpoints.size(), 1u);
  EXPECT_EQ(s3.endpoints.front(), "https://bucket.s3.us-east-1.amazonaws.com");
  for (std::size_t i = 1; i < s3.endpoints.size(); ++i) {
    EXPECT_EQ(s3.endpoints[i], "https://bucket.s3.eu-west-1.amazonaws.com") << i;
  }
  EXPECT_TRUE(s3.objects.contains("site/index.html"));
}

TEST_F(RegionTest, ASecondDifferentRegionIsAnErrorNotALoop) {
  WriteSite();
  FakeS3 s3;
  s3.bucket_region = "eu-west-1";
  NoteReporter reporter;
  Session session(Options(), endpoint_, s3);
  ASSERT_TRUE(session.Initial(reporter).has_value());
  ASSERT_EQ(session.Endpoint().region, "eu-west-1");

  s3.bucket_region = "ap-south-1";  // S3 now names yet another region
  Write("a.css", "body{color:red}");
  NoteReporter later;
  auto done = session.Batch({"a.css"}, false, BatchDeletes::kWith, later);
  ASSERT_TRUE(done.has_value()) << done.error().message;
  EXPECT_EQ(done->result.outcome, Outcome::kFailed);
  EXPECT_EQ(done->result.failed_keys, std::vector<std::string>{"a.css"});
  ASSERT_EQ(later.errors.size(), 1u);
  EXPECT_NE(later.errors[0].find("S3 named region eu-west-1 for bucket bucket earlier in this run and now "
                                 "ap-south-1"),
            std::string::npos)
      << later.errors[0];
  EXPECT_NE(later.errors[0].find("--region"), std::string::npos);
  EXPECT_TRUE(later.notes.empty());
  EXPECT_EQ(s3.Count("WRONG-REGION PUT site/a.css"), 1) << "sent once, not re-sent";
  EXPECT_EQ(session.Endpoint().region, "eu-west-1");
}

TEST_F(RegionTest, AnEndpointThatServesAnotherRegionFailsWithoutALoop) {
  // --endpoint of another region: the host stays, so the request signed for the bucket's region is redirected
  // again. Two requests, then a message that names the endpoint.
  WriteSite();
  FakeS3 s3;
  s3.bucket_region = "eu-west-1";
  s3.redirect_always = true;
  NoteReporter reporter;
  auto result = RunSync(Options(), endpoint_, s3, reporter);
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().http_status, 301);
  EXPECT_NE(result.error().message.find("the endpoint http://fake does not serve region eu-west-1"),
            std::string::npos)
      << result.error().message;
  EXPECT_EQ(s3.Count("WRONG-REGION"), 2);
  EXPECT_EQ(s3.regions, (std::vector<std::string>{"us-east-1", "eu-west-1"}));
  EXPECT_TRUE(s3.objects.empty());
}

TEST_F(RegionTest, HeadAnsweredWithoutABodyIsFollowed) {
  // HEAD (the check after a Complete whose answer was lost) gets a 301 with no body: the header alone says.
  FakeS3 s3;
  s3.bucket_region = "eu-north-1";
  s3.objects["site/k"] = {1, "e"};
  auto followed = std::make_shared<FollowedEndpoint>(endpoint_);
  std::vector<std::string> notes;
  followed->on_note = [&](std::string_view note) { notes.emplace_back(note); };
  std::optional<aws::Result<aws::HttpResponse>> answer;
  SubmitS3(s3, followed, "bucket", "site/k", S3Request(followed->endpoint(), "bucket", "site/k", "HEAD"),
           [&](aws::Result<aws::HttpResponse> res) { answer = std::move(res); });
  s3.Run();
  ASSERT_TRUE(answer.has_value());
  ASSERT_TRUE(answer->has_value()) << answer->error().message;
  EXPECT_EQ((*answer)->Header("etag"), "\"e\"");
  EXPECT_EQ(s3.log, (std::vector<std::string>{"WRONG-REGION HEAD site/k", "HEAD site/k"}));
  EXPECT_EQ(s3.regions, (std::vector<std::string>{"us-east-1", "eu-north-1"}));
  EXPECT_EQ(notes.size(), 1u);
}

}  // namespace
}  // namespace sitesync::sync
