// What a run does when things fail or look wrong (issue 12, points 4, 5 and 14): the order under failure, the
// delete guards, and uploads whose outcome is unknown. Against an in-memory S3 that can fail or lose answers.
#include <gtest/gtest.h>

#include <fstream>

#include <fmt/format.h>

#include "sync/fake_s3_test.h"
#include "sync/s3_client.h"
#include "sync/sync.h"

namespace sitesync::sync {
namespace {

namespace fs = std::filesystem;

using testing::Fault;
using FaultyS3 = testing::FakeS3;

// Records what the run reported.
class RecordingReporter final : public Reporter {
 public:
  void OnWarning(std::string_view) override {}
  void OnPlan(const Plan&, bool) override {}
  void OnUploaded(std::string_view, std::uint64_t, bool, UploadReason) override {}
  void OnDeleted(std::string_view, bool) override {}
  void OnError(std::string_view key, std::string_view message) override {
    errors.emplace_back(std::string(key) + ": " + std::string(message));
  }
  void OnSkipped(std::string_view key, std::string_view reason) override {
    skipped.emplace_back(std::string(key), std::string(reason));
  }
  void OnProgress(std::uint64_t, std::uint64_t) override {}
  std::vector<std::string> errors;
  std::vector<std::pair<std::string, std::string>> skipped;
};

class SafetyTest : public testing::TempSiteTest {
 protected:
  // A remote object under the prefix that has no local file.
  static void Seed(FaultyS3& s3, const std::string& rel) { s3.objects["site/" + rel] = {3, "0123"}; }

  SyncOptions Options() const {
    SyncOptions o;
    o.source = root_;
    o.destination = {"bucket", "site/"};
    o.delete_stale = true;
    return o;
  }
  static std::vector<std::string> Sorted(std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
  }

  S3Endpoint endpoint_{"http://fake", true, "us-east-1"};
};

// ---- the delete guards, pure ------------------------------------------------------------------------------------

TEST(CheckDeletesTest, Table) {
  struct Case {
    std::uint64_t deletes, objects;
    bool source_empty;
    std::int64_t max_deletes;
    double fraction;
    bool want_max, want_fraction, want_empty;
  };
  const Case cases[] = {
      {0, 0, true, 256, 0.5, false, false, false},      // nothing to delete: never refused
      {10, 10, false, 256, 0.5, false, false, false},    // at the floor: a small site's removals go
      {11, 20, false, 256, 0.5, false, true, false},     // over the floor and over half
      {11, 22, false, 256, 0.5, false, false, false},    // exactly half: not more than half
      {11, 21, false, 256, 0.5, false, true, false},
      {200, 201, false, 256, 0.5, false, true, false},   // a failed build's wipe, under the 256 limit
      {300, 301, false, 256, 0.5, true, true, false},
      {300, 301, false, -1, 1.0, false, false, false},   // both off
      {1, 1, true, 256, 0.5, false, false, true},        // SOURCE empty: any delete
      {1, 1, true, 256, 1.0, false, false, false},       // 1 turns the empty-SOURCE check off too
      {11, 1000, false, 256, 0.0, false, true, false},   // 0: anything over the floor
      {3, 2, false, 2, 0.5, true, false, false},
  };
  for (const Case& c : cases) {
    const DeleteRefusal r = CheckDeletes(c.deletes, c.objects, c.source_empty, c.max_deletes, c.fraction);
    const std::string what = fmt::format("{} of {}, empty {}, max {}, fraction {}", c.deletes, c.objects,
                                         c.source_empty, c.max_deletes, c.fraction);
    EXPECT_EQ(r.max_deletes, c.want_max) << what;
    EXPECT_EQ(r.fraction, c.want_fraction) << what;
    EXPECT_EQ(r.empty_source, c.want_empty) << what;
  }
}

TEST(CheckDeletesTest, MessagesNameTheNumbersAndTheWayOutButABatchNeverAdvisesRaisingALimit) {
  const DeleteRefusal both{true, true, false};
  const std::string once =
      DeleteRefusalMessage(both, 300, 301, 256, 0.5, "s3://b/site/", RefusalContext::kRun);
  for (const char* part : {"300", "301", "--max-deletes 300", "--max-delete-fraction 1", "Nothing was changed"}) {
    EXPECT_NE(once.find(part), std::string::npos) << part << " in: " << once;
  }
  const std::string empty = DeleteRefusalMessage(DeleteRefusal{false, false, true}, 3, 3, 256, 0.5, "s3://b/",
                                                  RefusalContext::kRun);
  EXPECT_NE(empty.find("SOURCE holds no file"), std::string::npos) << empty;
  EXPECT_NE(empty.find("--max-delete-fraction 1"), std::string::npos) << empty;
  EXPECT_EQ(empty.find("--max-deletes"), std::string::npos) << empty;

  for (const DeleteRefusal& r : {both, DeleteRefusal{true, false, false}, DeleteRefusal{false, false, true}}) {
    const std::string batch =
        DeleteRefusalMessage(r, 304, 310, 256, 0.5, "s3://b/site/", RefusalContext::kWatchBatch);
    EXPECT_NE(batch.find("304"), std::string::npos) << batch;
    EXPECT_NE(batch.find("mid-rebuild or emptied"), std::string::npos) << batch;
    EXPECT_NE(batch.find("next batch retries"), std::string::npos) << batch;
    const std::string start =
        DeleteRefusalMessage(r, 304, 310, 256, 0.5, "s3://b/site/", RefusalContext::kWatchStart);
    EXPECT_NE(start.find("Nothing was changed"), std::string::npos) << start;
    EXPECT_NE(start.find("mid-rebuild"), std::string::npos) << start;
    for (const std::string& message : {batch, start}) {
      for (const char* advice : {"--max-deletes 304", "-1 for no limit", "--max-delete-fraction 1", "run again"}) {
        EXPECT_EQ(message.find(advice), std::string::npos) << advice << " in: " << message;
      }
    }
  }
}

// ---- point 14: an empty build never wipes the site ------------------------------------------------------------

TEST_F(SafetyTest, ABuildThatLostMostPagesIsRefusedAndChangesNothing) {
  // 200 pages live; the build wrote 20 of them (and a new asset): 180 deletes, under the 256 limit.
  FaultyS3 s3;
  for (int i = 0; i < 200; ++i) Seed(s3, fmt::format("p{}.html", i));
  for (int i = 0; i < 20; ++i) Write(fmt::format("p{}.html", i), "new");
  Write("new.css", "c");
  RecordingReporter reporter;
  auto r = RunSync(Options(), endpoint_, s3, reporter);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->outcome, Outcome::kRefused);
  EXPECT_NE(r->refusal.find("180 of the 200"), std::string::npos) << r->refusal;
  EXPECT_NE(r->refusal.find("--max-delete-fraction 1"), std::string::npos) << r->refusal;
  EXPECT_EQ(s3.log, std::vector<std::string>{"LIST"}) << "no upload, no delete";

  // The way out: --max-delete-fraction 1.
  SyncOptions off = Options();
  off.max_delete_fraction = 1;
  auto ok = RunSync(off, endpoint_, s3, reporter);
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(ok->outcome, Outcome::kOk);
  EXPECT_EQ(ok->deleted, 180u);
  EXPECT_EQ(s3.objects.size(), 21u);
}

TEST_F(SafetyTest, AnEmptySourceDeletesNothingEvenBelowTheFloor) {
  FaultyS3 s3;
  for (int i = 0; i < 3; ++i) Seed(s3, fmt::format("p{}.html", i));
  Write(".hidden", "dotfiles are not published");  // SOURCE holds no file to publish
  RecordingReporter reporter;
  auto r = RunSync(Options(), endpoint_, s3, reporter);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->outcome, Outcome::kRefused);
  EXPECT_NE(r->refusal.find("SOURCE holds no file"), std::string::npos) << r->refusal;
  EXPECT_EQ(s3.objects.size(), 3u);

  SyncOptions off = Options();
  off.max_delete_fraction = 1;
  auto ok = RunSync(off, endpoint_, s3, reporter);
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(ok->deleted, 3u);
}

TEST_F(SafetyTest, SmallRemovalsAndHalfTheSiteGoThrough) {
  FaultyS3 s3;
  for (int i = 0; i < 24; ++i) Seed(s3, fmt::format("p{}.html", i));
  for (int i = 0; i < 12; ++i) Write(fmt::format("p{}.html", i), "new");
  RecordingReporter reporter;
  auto r = RunSync(Options(), endpoint_, s3, reporter);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->outcome, Outcome::kOk) << r->refusal;
  EXPECT_EQ(r->deleted, 12u) << "12 of 24 is not more than half";
}

TEST_F(SafetyTest, InWatchTheGuardHoldsBackTheBatchsDeletesAndTheNextBatchRetriesThem) {
  for (int i = 0; i < 30; ++i) Write(fmt::format("p{}.html", i), "page");
  FaultyS3 s3;
  RecordingReporter reporter;
  Session session(Options(), endpoint_, s3);
  ASSERT_TRUE(session.Initial(reporter).has_value());
  ASSERT_EQ(s3.objects.size(), 30u);

  // `rm -rf public` and the generator has written two pages back so far.
  std::set<std::string> paths;
  for (int i = 0; i < 30; ++i) {
    fs::remove(root_ / fmt::format("p{}.html", i));
    paths.insert(fmt::format("p{}.html", i));
  }
  Write("p0.html", "page 0 new");
  Write("p1.html", "page 1 new");
  auto batch = session.Batch(paths, false, BatchDeletes::kWith, reporter);
  ASSERT_TRUE(batch.has_value());
  EXPECT_EQ(batch->result.uploaded, 2u) << "the uploads go";
  EXPECT_EQ(batch->result.deleted, 0u);
  EXPECT_EQ(batch->result.skipped, 28u);
  EXPECT_EQ(s3.Count("DELETE"), 0);
  EXPECT_EQ(s3.objects.size(), 30u);
  ASSERT_EQ(reporter.errors.size(), 1u);
  EXPECT_NE(reporter.errors[0].find("mid-rebuild or emptied"), std::string::npos) << reporter.errors[0];
  EXPECT_EQ(reporter.errors[0].find("run again"), std::string::npos) << reporter.errors[0];
  EXPECT_EQ(reporter.skipped.size(), 28u);
  EXPECT_TRUE(batch->result.attempted_keys.size() == 2u) << "held-back deletes were not attempted";

  // The rebuild finishes with 25 of the pages: the next batch (named only the pages written last) retries the
  // held-back deletes and removes the 5 that stayed gone.
  for (int i = 2; i < 25; ++i) Write(fmt::format("p{}.html", i), "page");
  auto next = session.Batch({"p24.html"}, false, BatchDeletes::kWith, reporter);
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->result.skipped, 0u);
  EXPECT_EQ(Sorted(next->result.deleted_keys),
            (std::vector<std::string>{"p25.html", "p26.html", "p27.html", "p28.html", "p29.html"}));
  EXPECT_EQ(next->result.uploaded, 0u) << "same content: nothing to upload";
  EXPECT_EQ(s3.objects.size(), 25u);
  // And nothing is retried a third time.
  const int requests = static_cast<int>(s3.log.size());
  auto quiet = session.Batch({}, false, BatchDeletes::kWith, reporter);
  ASSERT_TRUE(quiet.has_value());
  EXPECT_EQ(quiet->result.deleted + quiet->result.uploaded + quiet->result.skipped, 0u);
  EXPECT_EQ(static_cast<int>(s3.log.size()), requests);
}

TEST_F(SafetyTest, WatchsInitialSyncIsRefusedWithoutAdviceToRaiseALimit) {
  FaultyS3 s3;
  for (int i = 0; i < 30; ++i) Seed(s3, fmt::format("p{}.html", i));
  Write("p0.html", "page");
  SyncOptions options = Options();
  options.watching = true;
  RecordingReporter reporter;
  Session session(options, endpoint_, s3);
  auto r = session.Initial(reporter);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->outcome, Outcome::kRefused);
  EXPECT_NE(r->refusal.find("29 of the 30"), std::string::npos) << r->refusal;
  EXPECT_NE(r->refusal.find("mid-rebuild"), std::string::npos) << r->refusal;
  EXPECT_EQ(r->refusal.find("run again"), std::string::npos) << r->refusal;
  EXPECT_EQ(s3.log, std::vector<std::string>{"LIST"});
}

TEST_F(SafetyTest, InWatchTheMaxDeletesRefusalNeverAdvisesRaisingTheLimit) {
  for (int i = 0; i < 5; ++i) Write(fmt::format("x{}.html", i), "x");
  FaultyS3 s3;
  RecordingReporter reporter;
  SyncOptions options = Options();
  options.max_deletes = 2;
  Session session(options, endpoint_, s3);
  ASSERT_TRUE(session.Initial(reporter).has_value());
  for (int i = 0; i < 3; ++i) fs::remove(root_ / fmt::format("x{}.html", i));
  auto batch = session.Batch({"x0.html", "x1.html", "x2.html"}, false, BatchDeletes::kWith, reporter);
  ASSERT_TRUE(batch.has_value());
  EXPECT_EQ(batch->result.deleted, 0u);
  ASSERT_EQ(reporter.errors.size(), 1u);
  EXPECT_NE(reporter.errors[0].find("more than --max-deletes 2"), std::string::npos) << reporter.errors[0];
  EXPECT_EQ(reporter.errors[0].find("--max-deletes 3"), std::string::npos) << reporter.errors[0];
  EXPECT_EQ(reporter.errors[0].find("no limit"), std::string::npos) << reporter.errors[0];
}

// ---- point 4: order under failure -------------------------------------------------------------------------------

TEST_F(SafetyTest, AFailedAssetHoldsBackEveryPageAndEveryDelete) {
  Write("a.css", "a");
  Write("b.js", "b");
  Write("index.html", "<p>i</p>");
  Write("blog/post.html", "<p>p</p>");
  FaultyS3 s3;
  Seed(s3, "old.txt");
  Seed(s3, "index.html");  // an older page, of another size
  s3.put_faults["site/b.js"] = Fault::kFail;
  RecordingReporter reporter;
  auto r = RunSync(Options(), endpoint_, s3, reporter);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->outcome, Outcome::kFailed);
  EXPECT_EQ(r->uploaded_keys, std::vector<std::string>{"a.css"});
  EXPECT_EQ(r->failed, 1u);
  EXPECT_EQ(r->skipped, 3u);
  EXPECT_EQ(Sorted(r->skipped_keys), (std::vector<std::string>{"blog/post.html", "index.html", "old.txt"}));
  for (const auto& [key, reason] : reporter.skipped) EXPECT_EQ(reason, "held back: an asset of this run failed");
  EXPECT_EQ(s3.Count("PUT site/index.html") + s3.Count("PUT site/blog/") + s3.Count("DELETE"), 0)
      << "no page and no delete was even tried";
  EXPECT_EQ(Sorted(r->attempted_keys), (std::vector<std::string>{"a.css", "b.js"}));
  EXPECT_EQ(s3.objects.at("site/index.html").first, 3u) << "the live page still references what is live";

  // The next run completes the job.
  s3.put_faults.clear();
  auto again = RunSync(Options(), endpoint_, s3, reporter);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->outcome, Outcome::kOk);
  EXPECT_EQ(again->skipped, 0u);
  EXPECT_EQ(Sorted(again->uploaded_keys), (std::vector<std::string>{"b.js", "blog/post.html", "index.html"}));
  EXPECT_EQ(again->deleted_keys, std::vector<std::string>{"old.txt"});
  EXPECT_EQ(s3.objects.size(), 4u);
}

TEST_F(SafetyTest, AFailedPageUploadsTheOtherPagesButHoldsBackTheDeletes) {
  Write("a.css", "a");
  Write("index.html", "<p>i</p>");
  Write("about.html", "<p>a</p>");
  FaultyS3 s3;
  Seed(s3, "old.html");
  s3.put_faults["site/about.html"] = Fault::kFail;
  RecordingReporter reporter;
  auto r = RunSync(Options(), endpoint_, s3, reporter);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->outcome, Outcome::kFailed);
  EXPECT_EQ(Sorted(r->uploaded_keys), (std::vector<std::string>{"a.css", "index.html"}));
  EXPECT_EQ(r->skipped_keys, std::vector<std::string>{"old.html"});
  ASSERT_EQ(reporter.skipped.size(), 1u);
  EXPECT_EQ(reporter.skipped[0].second, "held back: a page of this run failed");
  EXPECT_EQ(s3.Count("DELETE"), 0);
  EXPECT_TRUE(s3.objects.contains("site/old.html"));
}

TEST_F(SafetyTest, InWatchAHeldBackPageGoesUpWithTheNextBatch) {
  Write("a.css", "a");
  Write("index.html", "<p>i</p>");
  FaultyS3 s3;
  RecordingReporter reporter;
  Session session(Options(), endpoint_, s3);
  ASSERT_TRUE(session.Initial(reporter).has_value());
  Write("a.css", "a changed");
  Write("index.html", "<p>i changed</p>");
  s3.put_faults["site/a.css"] = Fault::kFail;
  auto batch = session.Batch({"a.css", "index.html"}, false, BatchDeletes::kWith, reporter);
  ASSERT_TRUE(batch.has_value());
  EXPECT_EQ(batch->result.skipped_keys, std::vector<std::string>{"index.html"});
  EXPECT_EQ(s3.objects.at("site/index.html").first, 8u) << "the old page stays";
  s3.put_faults.clear();
  // The next batch is about another file; the failed asset and the held-back page go with it.
  Write("c.css", "c");
  auto next = session.Batch({"c.css"}, false, BatchDeletes::kWith, reporter);
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(Sorted(next->result.uploaded_keys), (std::vector<std::string>{"a.css", "c.css", "index.html"}));
  EXPECT_EQ(next->result.skipped, 0u);
}

// ---- point 5: unknown outcomes stay attempted -------------------------------------------------------------------

TEST_F(SafetyTest, APutOrDeleteWhoseAnswerWasLostIsFailedButAttempted) {
  Write("a.css", "a");
  Write("b.css", "b");
  FaultyS3 s3;
  s3.put_faults["site/a.css"] = Fault::kLost;
  RecordingReporter reporter;
  auto r = RunSync(Options(), endpoint_, s3, reporter);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->failed, 1u);
  EXPECT_EQ(r->uploaded_keys, std::vector<std::string>{"b.css"});
  EXPECT_EQ(Sorted(r->attempted_keys), (std::vector<std::string>{"a.css", "b.css"}));
  EXPECT_TRUE(s3.objects.contains("site/a.css")) << "S3 did store it";

  // Nothing left to upload; a lost DeleteObjects answer.
  s3.put_faults.clear();
  Seed(s3, "gone.txt");
  s3.delete_fault = Fault::kLost;
  auto d = RunSync(Options(), endpoint_, s3, reporter);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->failed, 1u);
  EXPECT_TRUE(d->deleted_keys.empty());
  EXPECT_EQ(d->attempted_keys, std::vector<std::string>{"gone.txt"});
}

class MultipartTest : public SafetyTest {
 protected:
  // A 100-byte file sent as a multipart upload of one part (threshold 10 bytes).
  aws::Result<Uploaded> Upload(FaultyS3& s3) {
    Write("big.bin", std::string(100, 'b'));
    auto site = sitemap::Walk(root_, {});
    EXPECT_TRUE(site.has_value());
    UploadSpec spec{"bucket", "site/big.bin", site->files.at(0), 10, 8ull << 20, nullptr};
    std::optional<aws::Result<Uploaded>> out;
    SubmitUpload(s3, endpoint_, spec, [&](aws::Result<Uploaded> done) { out = std::move(done); });
    s3.Run();
    EXPECT_TRUE(out.has_value());
    return *out;
  }
};

TEST_F(MultipartTest, CompleteAnswering200WithAnErrorIsRetriedNotAborted) {
  FaultyS3 s3;
  s3.complete_faults = {Fault::kError200, Fault::kError200};
  auto r = Upload(s3);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->bytes, 100u);
  EXPECT_EQ(s3.Count("COMPLETE"), 3);
  EXPECT_EQ(s3.Count("ABORT"), 0);
  EXPECT_EQ(s3.objects.at("site/big.bin").first, 100u);
}

TEST_F(MultipartTest, CompleteThatKeepsAnswering200WithAnErrorFailsAndAborts) {
  FaultyS3 s3;
  s3.complete_faults.assign(10, Fault::kError200);
  auto r = Upload(s3);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("InternalError"), std::string::npos) << r.error().message;
  EXPECT_EQ(s3.Count("COMPLETE"), 4);
  EXPECT_EQ(s3.Count("ABORT"), 1);
  EXPECT_FALSE(s3.objects.contains("site/big.bin"));
}

TEST_F(MultipartTest, NoSuchUploadOnARetriedCompleteIsResolvedByAHead) {
  FaultyS3 s3;
  s3.complete_faults = {Fault::kLostRetry};
  auto r = Upload(s3);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->bytes, 100u);
  EXPECT_EQ(r->etag, s3.objects.at("site/big.bin").second);
  EXPECT_EQ(s3.Count("HEAD"), 1);
  EXPECT_EQ(s3.Count("ABORT"), 0);
}

TEST_F(MultipartTest, ACompleteWhoseAnswerWasLostIsResolvedByAHead) {
  FaultyS3 s3;
  s3.complete_faults = {Fault::kLost};
  auto r = Upload(s3);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(s3.Count("HEAD"), 1);
}

TEST_F(MultipartTest, AnotherObjectFoundByTheHeadIsAFailure) {
  FaultyS3 s3;
  s3.complete_faults = {Fault::kLostRetry};
  s3.head_fault = Fault::kWrongSize;
  auto r = Upload(s3);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("NoSuchUpload"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("is not the object uploaded"), std::string::npos) << r.error().message;
}

TEST_F(MultipartTest, AMultipartUploadWhoseCompleteWasLostCountsAsUploadedInARun) {
  Write("big.bin", std::string(100, 'b'));
  Write("index.html", "<p>i</p>");
  FaultyS3 s3;
  s3.complete_faults = {Fault::kLostRetry};
  SyncOptions options = Options();
  options.multipart_threshold = 10;
  RecordingReporter reporter;
  auto r = RunSync(options, endpoint_, s3, reporter);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->outcome, Outcome::kOk);
  EXPECT_EQ(r->skipped, 0u) << "the page went up: its asset is there";
  EXPECT_EQ(Sorted(r->uploaded_keys), (std::vector<std::string>{"big.bin", "index.html"}));
}

}  // namespace
}  // namespace sitesync::sync
