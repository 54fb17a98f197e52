// The ledger over a fake CloudFront and a fake clock: what is owed, what is submitted, what is cleared, the lock
// between two ledgers on one folder, and the key -> URL mapping of an explicit distribution ID.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <deque>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "cdn/cdn.h"

namespace sitesync::cdn {
namespace fs = std::filesystem;
namespace {

using Paths = std::vector<std::string>;

struct Call {
  std::string distribution_id;
  Paths paths;
  std::string caller_reference;
};

/// Records CreateInvalidation calls; answers from queued results (default: accepted).
class FakeCloudFront final : public CloudFrontApi {
 public:
  aws::Result<Invalidation> CreateInvalidation(const std::string& distribution_id, std::span<const std::string> paths,
                                               const std::string& caller_reference) override {
    created.push_back({distribution_id, Paths(paths.begin(), paths.end()), caller_reference});
    if (during_create) during_create();
    if (!create_errors.empty()) {
      aws::Error e = create_errors.front();
      create_errors.pop_front();
      return std::unexpected(e);
    }
    return Invalidation{"I" + std::to_string(created.size()), "InProgress"};
  }
  aws::Result<Distribution> GetDistribution(const std::string& distribution_id) override {
    ++get_calls;
    if (get_error) return std::unexpected(*get_error);
    for (const Distribution& d : distributions) {
      if (d.id == distribution_id) return d;
    }
    aws::Error e{aws::ErrorCode::kNotFound, "NoSuchDistribution", false, 404, "NoSuchDistribution"};
    return std::unexpected(e);
  }
  aws::Result<std::vector<Distribution>> ListDistributions() override {
    ++list_calls;
    if (get_error) return std::unexpected(*get_error);
    return distributions;
  }

  std::vector<Distribution> distributions;
  std::vector<Call> created;
  std::deque<aws::Error> create_errors;
  std::optional<aws::Error> get_error;
  std::function<void()> during_create;
  int get_calls = 0;
  int list_calls = 0;
};

/// Time moves only when the code under test sleeps.
class FakeClock final : public Clock {
 public:
  std::chrono::steady_clock::time_point Now() override { return now; }
  std::chrono::system_clock::time_point WallNow() override {
    return std::chrono::system_clock::time_point(std::chrono::duration_cast<std::chrono::system_clock::duration>(
        now.time_since_epoch()));
  }
  void SleepFor(std::chrono::milliseconds d) override {
    now += d;
    ++sleeps;
    if (on_sleep) on_sleep();
  }
  std::chrono::steady_clock::time_point now{std::chrono::hours(1000)};
  int sleeps = 0;
  std::function<void()> on_sleep;
};

aws::Error ServiceError(std::string code, int status, aws::ErrorCode kind = aws::ErrorCode::kHttp) {
  return aws::Error{kind, "CreateInvalidation on distribution E1: " + std::to_string(status) + " " + code, false,
                    status, code};
}

class LedgerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "sitesync-ledger-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    cf_.distributions = {{"E1", "d1.cloudfront.net", {{"site.s3.amazonaws.com", ""}}}};
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  LedgerOptions Options(std::string prefix = "", std::string distribution = "E1") const {
    LedgerOptions o;
    o.state_dir = root_ / "state";
    o.distribution = std::move(distribution);
    o.bucket = "site";
    o.prefix = std::move(prefix);
    return o;
  }
  Ledger Make(LedgerOptions o) {
    return Ledger(std::move(o), cf_, clock_, [this](std::string_view n) { notes_.emplace_back(n); });
  }
  Owed OnDisk(const std::string& id = "E1") const {
    auto owed = Journal(root_ / "state").Load(id);
    EXPECT_TRUE(owed.has_value());
    return owed.value_or(Owed{});
  }

  fs::path root_;
  FakeCloudFront cf_;
  FakeClock clock_;
  std::vector<std::string> notes_;
};

TEST_F(LedgerTest, OweThenSubmitSendsEverythingOwedOnceAndClearsIt) {
  Ledger ledger = Make(Options());
  ASSERT_TRUE(ledger.Start(true).has_value());
  const Paths keys = {"a/index.html", "css/site.css"};
  ASSERT_TRUE(ledger.Owe(keys).has_value());
  EXPECT_EQ(OnDisk().paths, (Paths{"/a", "/a/", "/a/index.html", "/css/site.css"}));
  auto done = ledger.SubmitOwed();
  ASSERT_TRUE(done.has_value()) << done.error().message;
  ASSERT_EQ(cf_.created.size(), 1u);
  EXPECT_EQ(cf_.created[0].paths, (Paths{"/a", "/a/", "/a/index.html", "/css/site.css"}));
  EXPECT_EQ(done->invalidation_id, "I1");
  EXPECT_EQ(done->submitted.size(), 4u);
  EXPECT_TRUE(OnDisk().Empty());
  EXPECT_FALSE(fs::exists(ledger.File())) << "a paid journal is removed";
  // Nothing owed: nothing submitted.
  auto again = ledger.SubmitOwed();
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->invalidation_id, "");
  EXPECT_EQ(cf_.created.size(), 1u);
}

TEST_F(LedgerTest, SkippedAndNewKeysAreNeitherOwedNorPreviewedNorOwedAgain) {
  LedgerOptions o = Options("site/");
  o.paths.skip = {"assets/*"};
  o.paths.invalidate_new = false;
  Ledger ledger = Make(o);
  ASSERT_TRUE(ledger.Start(true).has_value());
  const Paths keys = {"assets/app-1f2e.js", "blog/index.html", "fresh.html", "gone.html"};
  const Paths fresh = {"fresh.html"};
  auto preview = ledger.Preview(keys, fresh);
  ASSERT_TRUE(preview.has_value());
  EXPECT_EQ(preview->paths, (Paths{"/site/blog", "/site/blog/", "/site/blog/index.html", "/site/gone.html"}));
  ASSERT_TRUE(ledger.Owe(keys, fresh).has_value());
  EXPECT_EQ(OnDisk().paths, preview->paths);
  // Nothing done: what was owed is submitted, and only the kept keys are owed again.
  auto settled = ledger.Settle(Paths{});
  ASSERT_TRUE(settled.has_value()) << settled.error().message;
  ASSERT_EQ(cf_.created.size(), 1u);
  EXPECT_EQ(cf_.created[0].paths, preview->paths);
  EXPECT_EQ(settled->owed_again, 2u);
  EXPECT_EQ(OnDisk().paths, preview->paths);
  // Only skipped keys: nothing is journaled at all.
  ASSERT_TRUE(ledger.SubmitOwed().has_value());
  ASSERT_TRUE(ledger.Owe(Paths{"assets/x.css", "fresh.html"}, fresh).has_value());
  EXPECT_FALSE(fs::exists(ledger.File()));
}

TEST_F(LedgerTest, EveryAttemptedKeyStaysOwedUntilAcceptedEvenWhenItsUploadFailed) {
  // Point 5: the run journals every planned change before it starts; whether an upload then succeeded, failed or
  // had its answer lost, the ledger submits the whole journal, and a failed submission keeps all of it.
  Ledger ledger = Make(Options());
  ASSERT_TRUE(ledger.Start(true).has_value());
  ASSERT_TRUE(ledger.Owe(Paths{"ok.html", "failed.html", "unknown.html"}).has_value());
  cf_.create_errors.push_back(ServiceError("ServiceUnavailable", 503, aws::ErrorCode::kNetwork));
  auto failed = ledger.SubmitOwed();
  ASSERT_FALSE(failed.has_value());
  EXPECT_EQ(OnDisk().paths, (Paths{"/failed.html", "/ok.html", "/unknown.html"}));
  const std::string reference = OnDisk().caller_reference;
  // The next run, with nothing to upload, submits them all with the same CallerReference (a pure retry).
  Ledger next = Make(Options());
  ASSERT_TRUE(next.Start(true).has_value());
  ASSERT_TRUE(next.Owe(Paths{}).has_value());
  ASSERT_TRUE(next.SubmitOwed().has_value());
  ASSERT_EQ(cf_.created.size(), 2u);
  EXPECT_EQ(cf_.created[1].paths, (Paths{"/failed.html", "/ok.html", "/unknown.html"}));
  EXPECT_EQ(cf_.created[1].caller_reference, reference);
  EXPECT_EQ(cf_.created[0].caller_reference, reference);
  EXPECT_TRUE(OnDisk().Empty());
}

TEST_F(LedgerTest, SettleOwesFailedAndUnknownChangesAgainForTheNextRun) {
  // A PUT whose answer was lost (or that failed) may have landed, or may land, after this run's invalidation:
  // CloudFront gets it now and the next run, with nothing to upload, invalidates it once more.
  Ledger run1 = Make(Options());
  ASSERT_TRUE(run1.Start(true).has_value());
  ASSERT_TRUE(run1.Owe(Paths{"lost.html", "ok.css"}).has_value());
  auto settled = run1.Settle(Paths{"ok.css"});
  ASSERT_TRUE(settled.has_value()) << settled.error().message;
  EXPECT_EQ(settled->owed_again, 1u);
  ASSERT_EQ(cf_.created.size(), 1u);
  EXPECT_EQ(cf_.created[0].paths, (Paths{"/lost.html", "/ok.css"}));
  EXPECT_EQ(OnDisk().paths, (Paths{"/lost.html"}));
  EXPECT_NE(OnDisk().caller_reference, cf_.created[0].caller_reference);

  Ledger run2 = Make(Options());
  ASSERT_TRUE(run2.Start(true).has_value());
  ASSERT_TRUE(run2.Owe(Paths{}).has_value());
  auto next = run2.Settle(Paths{});
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->owed_again, 0u);
  ASSERT_EQ(cf_.created.size(), 2u);
  EXPECT_EQ(cf_.created[1].paths, (Paths{"/lost.html"}));
  EXPECT_TRUE(OnDisk().Empty());
}

TEST_F(LedgerTest, SettleAfterAFailedSubmissionKeepsEverything) {
  Ledger ledger = Make(Options());
  ASSERT_TRUE(ledger.Start(true).has_value());
  ASSERT_TRUE(ledger.Owe(Paths{"a.html", "b.html"}).has_value());
  cf_.create_errors.push_back(ServiceError("AccessDenied", 403));
  ASSERT_FALSE(ledger.Settle(Paths{"a.html"}).has_value());
  EXPECT_EQ(OnDisk().paths, (Paths{"/a.html", "/b.html"}));
}

TEST_F(LedgerTest, NewContentGetsANewCallerReference) {
  Ledger ledger = Make(Options());
  ASSERT_TRUE(ledger.Start(true).has_value());
  ASSERT_TRUE(ledger.Owe(Paths{"a.html"}).has_value());
  const std::string first = OnDisk().caller_reference;
  clock_.now += std::chrono::seconds(2);
  ASSERT_TRUE(ledger.Owe(Paths{"a.html"}).has_value());
  EXPECT_NE(OnDisk().caller_reference, first) << "the same path with new content is a new batch";
  EXPECT_EQ(OnDisk().paths, (Paths{"/a.html"}));
}

TEST_F(LedgerTest, PermanentErrorNamesReasonFixAndDiscardAndKeepsThePaths) {
  struct Case {
    std::string code;
    int status;
    std::string says;
  } cases[] = {
      {"AccessDenied", 403, "cloudfront:CreateInvalidation"},
      {"NoSuchDistribution", 404, "list-distributions"},
      {"InvalidArgument", 400, "sitesync invalidate PATH"},
      {"BatchTooLarge", 413, "cdn.max_paths"},
  };
  Ledger ledger = Make(Options());
  ASSERT_TRUE(ledger.Start(true).has_value());
  ASSERT_TRUE(ledger.Owe(Paths{"x.html"}).has_value());
  for (const Case& c : cases) {
    cf_.create_errors.push_back(ServiceError(c.code, c.status));
    auto r = ledger.SubmitOwed();
    ASSERT_FALSE(r.has_value()) << c.code;
    const std::string& m = r.error().message;
    EXPECT_NE(m.find(c.code), std::string::npos) << m;
    EXPECT_NE(m.find(c.says), std::string::npos) << m;
    EXPECT_NE(m.find("sitesync invalidate --discard-owed --distribution E1"), std::string::npos) << m;
    EXPECT_NE(m.find(ledger.File().string()), std::string::npos) << m;
    EXPECT_EQ(OnDisk().paths, (Paths{"/x.html"})) << c.code;
  }
  auto dropped = ledger.Discard();
  ASSERT_TRUE(dropped.has_value());
  EXPECT_EQ(dropped->paths, (Paths{"/x.html"}));
  EXPECT_FALSE(fs::exists(ledger.File()));
  EXPECT_EQ(cf_.created.size(), 4u);
}

TEST_F(LedgerTest, PermanentErrorAdviceTable) {
  EXPECT_NE(PermanentErrorAdvice(ServiceError("AccessDenied", 403), "E1").find("distribution/E1"), std::string::npos);
  EXPECT_NE(PermanentErrorAdvice(ServiceError("BatchTooLarge", 413), "E1").find("3000"), std::string::npos);
  EXPECT_NE(PermanentErrorAdvice(ServiceError("SignatureDoesNotMatch", 403), "E1").find("credentials"),
            std::string::npos);
  EXPECT_EQ(PermanentErrorAdvice(ServiceError("ServiceUnavailable", 503), "E1"), "");
  EXPECT_EQ(PermanentErrorAdvice(aws::Error{aws::ErrorCode::kNetwork, "reset", true, 0, {}}, "E1"), "");
}

TEST_F(LedgerTest, BatchAlreadyExistsIsRetriedOnceWithANewReference) {
  Ledger ledger = Make(Options());
  ASSERT_TRUE(ledger.Start(true).has_value());
  ASSERT_TRUE(ledger.Owe(Paths{"a.html"}).has_value());
  clock_.now += std::chrono::seconds(1);
  cf_.create_errors.push_back(ServiceError("InvalidationBatchAlreadyExists", 409));
  auto r = ledger.SubmitOwed();
  ASSERT_TRUE(r.has_value()) << r.error().message;
  ASSERT_EQ(cf_.created.size(), 2u);
  EXPECT_NE(cf_.created[0].caller_reference, cf_.created[1].caller_reference);
  EXPECT_TRUE(OnDisk().Empty());
}

// -- point 7: two processes, one journal ---------------------------------------------------------------------

TEST_F(LedgerTest, TwoLedgersOnOneFolderMergeAndClearOnlyWhatEachSubmitted) {
  Ledger watch = Make(Options());
  Ledger manual = Make(Options("other/"));
  ASSERT_TRUE(watch.Start(true).has_value());
  ASSERT_TRUE(manual.Start(true).has_value());
  ASSERT_TRUE(watch.Owe(Paths{"w1.html"}).has_value());
  ASSERT_TRUE(manual.Owe(Paths{"m1.html"}).has_value());
  EXPECT_EQ(OnDisk().paths, (Paths{"/other/m1.html", "/w1.html"})) << "the second writer merged, not overwrote";

  // While `watch` waits for CloudFront, `manual` journals more: the watch's success must not clear it.
  cf_.during_create = [&] {
    cf_.during_create = nullptr;
    ASSERT_TRUE(manual.Owe(Paths{"m2.html"}).has_value());
  };
  auto paid = watch.SubmitOwed();
  ASSERT_TRUE(paid.has_value()) << paid.error().message;
  EXPECT_EQ(cf_.created[0].paths, (Paths{"/other/m1.html", "/w1.html"}));
  EXPECT_EQ(OnDisk().paths, (Paths{"/other/m2.html"}));
  EXPECT_NE(OnDisk().caller_reference, cf_.created[0].caller_reference);

  ASSERT_TRUE(manual.SubmitOwed().has_value());
  ASSERT_EQ(cf_.created.size(), 2u);
  EXPECT_EQ(cf_.created[1].paths, (Paths{"/other/m2.html"}));
  EXPECT_TRUE(OnDisk().Empty());
}

TEST_F(LedgerTest, ASecondProcessWaitsForTheLockThenMerges) {
  Ledger first = Make(Options());
  ASSERT_TRUE(first.Start(true).has_value());
  ASSERT_TRUE(first.Owe(Paths{"a.html"}).has_value());
  const Journal journal(root_ / "state");
  std::optional<JournalLock> held;
  {
    auto lock = journal.Lock(clock_, std::chrono::seconds(1));
    ASSERT_TRUE(lock.has_value());
    held.emplace(std::move(*lock));
  }
  // The holder lets go after a few polls (5 fake seconds).
  const auto start = clock_.now;
  clock_.on_sleep = [&] {
    if (clock_.now - start >= std::chrono::seconds(5)) held.reset();
  };
  Ledger second = Make(Options());
  ASSERT_TRUE(second.Start(true).has_value());
  ASSERT_TRUE(second.Owe(Paths{"b.html"}).has_value());
  EXPECT_GE(clock_.now - start, std::chrono::seconds(5));
  EXPECT_EQ(OnDisk().paths, (Paths{"/a.html", "/b.html"}));
}

TEST_F(LedgerTest, LockWaitIsBoundedWithAClearError) {
  const Journal journal(root_ / "state");
  auto held = journal.Lock(clock_, std::chrono::seconds(1));
  ASSERT_TRUE(held.has_value());
  LedgerOptions o = Options();
  o.lock_timeout = std::chrono::seconds(30);
  Ledger ledger = Make(o);
  ASSERT_TRUE(ledger.Start(true).has_value());
  const auto start = clock_.now;
  auto r = ledger.Owe(Paths{"a.html"});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, aws::ErrorCode::kIo);
  EXPECT_NE(r.error().message.find("journal.lock"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("30 s"), std::string::npos) << r.error().message;
  EXPECT_GE(clock_.now - start, std::chrono::seconds(30));
  EXPECT_LT(clock_.now - start, std::chrono::seconds(31));
  EXPECT_FALSE(fs::exists(ledger.File())) << "nothing written without the lock";
}

// -- point 1: an explicit ID maps keys like auto -------------------------------------------------------------

TEST(MapKeys, OriginPathAgainstDestPrefixTable) {
  struct Case {
    std::string origin_path;
    std::string prefix;
    KeyMapping::Source source;
    std::string url_prefix;
  } cases[] = {
      {"", "", KeyMapping::Source::kOrigin, ""},
      {"", "blog/", KeyMapping::Source::kOrigin, "blog/"},
      {"", "site/blog/", KeyMapping::Source::kOrigin, "site/blog/"},
      {"/blog", "", KeyMapping::Source::kOtherBucket, ""},
      {"/blog", "blog/", KeyMapping::Source::kOrigin, ""},
      {"/blog", "site/blog/", KeyMapping::Source::kOtherBucket, ""},
      {"/site", "", KeyMapping::Source::kOtherBucket, ""},
      {"/site", "blog/", KeyMapping::Source::kOtherBucket, ""},
      {"/site", "site/blog/", KeyMapping::Source::kOrigin, "blog/"},
      {"/site/", "site/blog/", KeyMapping::Source::kOrigin, "blog/"},
  };
  for (const Case& c : cases) {
    const Distribution d{"E1", "d.cloudfront.net", {{"site.s3.us-east-1.amazonaws.com", c.origin_path}}};
    const KeyMapping m = MapKeys(d, "site", c.prefix);
    EXPECT_EQ(m.source, c.source) << c.origin_path << " " << c.prefix;
    EXPECT_EQ(m.url_prefix, c.url_prefix) << c.origin_path << " " << c.prefix;
    // Where `auto` finds this distribution, it maps the same.
    auto match = MatchDistribution(std::span(&d, 1), "site", c.prefix);
    EXPECT_EQ(match.has_value(), c.source == KeyMapping::Source::kOrigin);
    if (match) {
      EXPECT_EQ(match->url_prefix, m.url_prefix);
    }
  }
  const Distribution custom{"E2", "d.cloudfront.net", {{"www.example.com", ""}}};
  EXPECT_EQ(MapKeys(custom, "site", "blog/").source, KeyMapping::Source::kCustomOrigin);
  EXPECT_EQ(MapKeys(custom, "site", "blog/").url_prefix, "");
  EXPECT_EQ(MapKeys(custom, "site", "blog/").origin, "www.example.com");
}

TEST(NormalizeUrlPrefix, Forms) {
  EXPECT_EQ(NormalizeUrlPrefix("").value(), "");
  EXPECT_EQ(NormalizeUrlPrefix("/").value(), "");
  EXPECT_EQ(NormalizeUrlPrefix("/blog").value(), "blog/");
  EXPECT_EQ(NormalizeUrlPrefix("blog/").value(), "blog/");
  EXPECT_EQ(NormalizeUrlPrefix("/a/b/").value(), "a/b/");
  EXPECT_FALSE(NormalizeUrlPrefix("/a?b").has_value());
  EXPECT_FALSE(NormalizeUrlPrefix("/a\nb").has_value());
}

TEST_F(LedgerTest, ExplicitIdMapsKeysThroughTheOriginPath) {
  cf_.distributions = {{"E1", "d1.cloudfront.net", {{"site.s3.amazonaws.com", ""}}},
                       {"E2", "d2.cloudfront.net", {{"site.s3.amazonaws.com", "/site"}}}};
  Ledger root_origin = Make(Options("blog/", "E1"));
  ASSERT_TRUE(root_origin.Start(true).has_value());
  ASSERT_TRUE(root_origin.Owe(Paths{"post/index.html"}).has_value());
  EXPECT_EQ(OnDisk("E1").paths, (Paths{"/blog/post", "/blog/post/", "/blog/post/index.html"}));
  Ledger site_origin = Make(Options("site/blog/", "E2"));
  ASSERT_TRUE(site_origin.Start(true).has_value());
  ASSERT_TRUE(site_origin.Owe(Paths{"a.css"}).has_value());
  EXPECT_EQ(OnDisk("E2").paths, (Paths{"/blog/a.css"}));
  EXPECT_TRUE(notes_.empty());
}

TEST_F(LedgerTest, CustomOriginIsSaidAndKeysAreRelativeToThePrefix) {
  cf_.distributions = {{"E1", "d1.cloudfront.net", {{"www.example.com", ""}}}};
  Ledger ledger = Make(Options("blog/"));
  ASSERT_TRUE(ledger.Start(true).has_value());
  ASSERT_EQ(notes_.size(), 1u);
  EXPECT_NE(notes_[0].find("www.example.com"), std::string::npos) << notes_[0];
  EXPECT_NE(notes_[0].find("cdn.url_prefix"), std::string::npos) << notes_[0];
  ASSERT_TRUE(ledger.Owe(Paths{"a.css"}).has_value());
  EXPECT_EQ(OnDisk().paths, (Paths{"/a.css"}));
}

TEST_F(LedgerTest, UrlPrefixFromConfigNeedsNoLookup) {
  LedgerOptions o = Options("blog/");
  o.url_prefix = "news/";
  Ledger ledger = Make(o);
  ASSERT_TRUE(ledger.Start(true).has_value());
  ASSERT_TRUE(ledger.Owe(Paths{"a.css"}).has_value());
  ASSERT_TRUE(ledger.SubmitOwed().has_value());
  EXPECT_EQ(cf_.get_calls, 0);
  ASSERT_EQ(cf_.created.size(), 1u);
  EXPECT_EQ(cf_.created[0].paths, (Paths{"/news/a.css"}));
}

TEST_F(LedgerTest, UnknownDistributionIsAUsageErrorBeforeAnyChange) {
  Ledger ledger = Make(Options("", "E404"));
  auto r = ledger.Start(true);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, aws::ErrorCode::kUsage);
  EXPECT_NE(r.error().message.find("E404"), std::string::npos);
}

TEST_F(LedgerTest, UnreadableDistributionMapsRelativeToThePrefixAndSaysHowToFixIt) {
  cf_.get_error = ServiceError("AccessDenied", 403);
  Ledger ledger = Make(Options("blog/"));
  ASSERT_TRUE(ledger.Start(true).has_value());
  ASSERT_TRUE(ledger.mapping().has_value());
  EXPECT_EQ(ledger.mapping()->source, KeyMapping::Source::kUnread);
  ASSERT_EQ(notes_.size(), 1u);
  EXPECT_NE(notes_[0].find("cloudfront:GetDistribution"), std::string::npos);
}

TEST_F(LedgerTest, CloudFrontUnreachableAtStartJournalsKeysAndALaterRunMapsThem) {
  cf_.distributions = {{"E1", "d1.cloudfront.net", {{"site.s3.amazonaws.com", ""}}}};
  cf_.get_error = aws::Error{aws::ErrorCode::kNetwork, "GetDistribution E1: connection refused", true, 0, {}};
  Ledger down = Make(Options("blog/"));
  ASSERT_TRUE(down.Start(true).has_value()) << "publishing is not blocked";
  EXPECT_FALSE(down.mapping().has_value());
  ASSERT_EQ(notes_.size(), 1u);
  EXPECT_NE(notes_[0].find("publishing goes on"), std::string::npos);
  ASSERT_TRUE(down.Owe(Paths{"post/index.html", "a.css"}).has_value());
  Owed owed = OnDisk();
  EXPECT_TRUE(owed.paths.empty());
  ASSERT_EQ(owed.unmapped.size(), 1u);
  EXPECT_EQ(owed.unmapped[0].bucket, "site");
  EXPECT_EQ(owed.unmapped[0].prefix, "blog/");
  EXPECT_EQ(owed.unmapped[0].keys, (Paths{"a.css", "post/index.html"}));
  // Still down at the end of the run: nothing is submitted, the keys stay owed and the run is told why.
  auto end = down.SubmitOwed();
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(end->unmapped_left, 2u);
  EXPECT_NE(end->unmapped_reason.find("connection refused"), std::string::npos) << end->unmapped_reason;
  EXPECT_TRUE(cf_.created.empty());

  // A later run (another DEST of the same distribution, even) maps them once the distribution answers.
  cf_.get_error.reset();
  Ledger later = Make(Options(""));
  ASSERT_TRUE(later.Start(true).has_value());
  ASSERT_TRUE(later.Owe(Paths{"index.html"}).has_value());
  auto paid = later.SubmitOwed();
  ASSERT_TRUE(paid.has_value()) << paid.error().message;
  EXPECT_EQ(paid->unmapped_left, 0u);
  ASSERT_EQ(cf_.created.size(), 1u);
  EXPECT_EQ(cf_.created[0].paths,
            (Paths{"/", "/blog/a.css", "/blog/post", "/blog/post/", "/blog/post/index.html", "/index.html"}));
  EXPECT_TRUE(OnDisk().Empty());
}

TEST_F(LedgerTest, CloudFrontBackBeforeTheEndOfTheRunDeliversInTheSameRun) {
  cf_.get_error = aws::Error{aws::ErrorCode::kNetwork, "connection refused", true, 0, {}};
  Ledger ledger = Make(Options("blog/"));
  ASSERT_TRUE(ledger.Start(true).has_value());
  ASSERT_TRUE(ledger.Owe(Paths{"a.css"}).has_value());
  cf_.get_error.reset();
  auto paid = ledger.SubmitOwed();
  ASSERT_TRUE(paid.has_value());
  ASSERT_EQ(cf_.created.size(), 1u);
  EXPECT_EQ(cf_.created[0].paths, (Paths{"/blog/a.css"}));
}

TEST_F(LedgerTest, AutoFindsTheDistributionAndItsMapping) {
  cf_.distributions = {{"E7", "d7.cloudfront.net", {{"site.s3.amazonaws.com", "/site"}}}};
  Ledger ledger = Make(Options("site/blog/", "auto"));
  ASSERT_TRUE(ledger.Start(true).has_value());
  EXPECT_EQ(ledger.distribution_id(), "E7");
  ASSERT_TRUE(ledger.Owe(Paths{"x.css"}).has_value());
  EXPECT_EQ(OnDisk("E7").paths, (Paths{"/blog/x.css"}));
  EXPECT_EQ(cf_.get_calls, 0);
  EXPECT_EQ(cf_.list_calls, 1);
}

TEST_F(LedgerTest, AutoWithCloudFrontUnreachableJournalsForTheDestAndALaterRunAdoptsIt) {
  cf_.distributions = {{"E7", "d7.cloudfront.net", {{"site.s3.amazonaws.com", ""}}}};
  cf_.get_error = aws::Error{aws::ErrorCode::kNetwork, "ListDistributions: connection refused", true, 0, {}};
  Ledger down = Make(Options("blog/", "auto"));
  ASSERT_TRUE(down.Start(true).has_value()) << "publishing is not blocked";
  EXPECT_EQ(down.distribution_id(), "auto:site/blog/");
  ASSERT_TRUE(down.Owe(Paths{"a.css"}).has_value());
  auto end = down.Settle(Paths{"a.css"});
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(end->unmapped_left, 1u);
  EXPECT_NE(end->unmapped_reason.find("connection refused"), std::string::npos);
  EXPECT_EQ(OnDisk("auto:site/blog/").unmapped.size(), 1u);
  EXPECT_TRUE(cf_.created.empty());

  cf_.get_error.reset();
  Ledger later = Make(Options("blog/", "auto"));
  ASSERT_TRUE(later.Start(true).has_value());
  EXPECT_EQ(later.distribution_id(), "E7");
  EXPECT_TRUE(OnDisk("auto:site/blog/").Empty()) << "the pending journal was adopted";
  ASSERT_TRUE(later.Settle(Paths{}).has_value());
  ASSERT_EQ(cf_.created.size(), 1u);
  EXPECT_EQ(cf_.created[0].distribution_id, "E7");
  EXPECT_EQ(cf_.created[0].paths, (Paths{"/blog/a.css"}));
  EXPECT_TRUE(OnDisk("E7").Empty());
}

TEST_F(LedgerTest, PreviewChangesNothing) {
  Ledger ledger = Make(Options("blog/"));
  ASSERT_TRUE(ledger.Start(true).has_value());
  ASSERT_TRUE(ledger.Owe(Paths{"old.css"}).has_value());
  auto preview = ledger.Preview(Paths{"new.css"});
  ASSERT_TRUE(preview.has_value());
  EXPECT_EQ(preview->paths, (Paths{"/blog/new.css", "/blog/old.css"}));
  EXPECT_EQ(OnDisk().paths, (Paths{"/blog/old.css"}));
  EXPECT_TRUE(cf_.created.empty());
}

TEST_F(LedgerTest, JournalListsItsDistributions) {
  Ledger a = Make(Options("", "E1"));
  ASSERT_TRUE(a.Start(true).has_value());
  ASSERT_TRUE(a.Owe(Paths{"a"}).has_value());
  Ledger b = Make(Options("", "weird/id"));
  ASSERT_TRUE(b.OwePaths(Paths{"/b"}).has_value());
  EXPECT_EQ(Journal(root_ / "state").Distributions(), (Paths{"E1", "weird/id"}));
}

}  // namespace
}  // namespace sitesync::cdn

namespace sitesync::cdn {
namespace {

// watch.invalidate_interval_s: the pacer only decides when; what the batches owe is on disk from Owe on, so the
// batches of a window submit once when it ends, and a process killed inside it leaves everything to the next.
TEST_F(LedgerTest, PacedBatchesStayOwedOnDiskUntilOneGatheredSubmission) {
  Ledger ledger = Make(Options());
  ASSERT_TRUE(ledger.Start(true).has_value());
  InvalidationPacer pacer(std::chrono::seconds(3), clock_);
  const Paths first = {"a.html"};
  ASSERT_TRUE(ledger.Owe(first).has_value());
  EXPECT_FALSE(pacer.AfterBatch(first, {}, true));
  clock_.now += std::chrono::seconds(1);
  const Paths second = {"b/index.html"};
  ASSERT_TRUE(ledger.Owe(second).has_value());
  EXPECT_FALSE(pacer.AfterBatch(second, {}, true));
  EXPECT_TRUE(cf_.created.empty()) << "nothing submitted inside the window";
  EXPECT_EQ(OnDisk().paths, (Paths{"/a.html", "/b", "/b/", "/b/index.html"}));
  clock_.now += std::chrono::seconds(2);
  ASSERT_TRUE(pacer.Due());
  auto settled = ledger.Settle(pacer.DoneKeys());
  ASSERT_TRUE(settled.has_value()) << settled.error().message;
  pacer.Submitted();
  ASSERT_EQ(cf_.created.size(), 1u);
  EXPECT_EQ(cf_.created[0].paths, (Paths{"/a.html", "/b", "/b/", "/b/index.html"}));
  EXPECT_EQ(settled->owed_again, 0u) << "every key of both batches was done";
  EXPECT_TRUE(OnDisk().Empty());
}

TEST_F(LedgerTest, AProcessKilledInsideThePacingWindowLeavesTheNextOneEverything) {
  {
    Ledger watch = Make(Options());
    ASSERT_TRUE(watch.Start(true).has_value());
    InvalidationPacer pacer(std::chrono::seconds(60), clock_);
    for (const char* key : {"a.html", "c.css"}) {
      const Paths keys = {key};
      ASSERT_TRUE(watch.Owe(keys).has_value());
      EXPECT_FALSE(pacer.AfterBatch(keys, {}, true));
    }
    // killed here: no Settle, no destructor work matters (the journal was written by Owe)
  }
  EXPECT_TRUE(cf_.created.empty());
  Ledger next = Make(Options());
  ASSERT_TRUE(next.Start(true).has_value());
  auto settled = next.Settle(Paths{});
  ASSERT_TRUE(settled.has_value()) << settled.error().message;
  ASSERT_EQ(cf_.created.size(), 1u);
  EXPECT_EQ(cf_.created[0].paths, (Paths{"/a.html", "/c.css"}));
  EXPECT_TRUE(OnDisk().Empty());
}

TEST_F(LedgerTest, AKeyThatFailedInALaterPacedBatchIsOwedAgainAfterTheGatheredSubmission) {
  Ledger ledger = Make(Options());
  ASSERT_TRUE(ledger.Start(true).has_value());
  InvalidationPacer pacer(std::chrono::seconds(3), clock_);
  const Paths batch1 = {"a.html", "b.html"};
  ASSERT_TRUE(ledger.Owe(batch1).has_value());
  pacer.AfterBatch(batch1, {}, true);
  const Paths batch2 = {"a.html"};
  ASSERT_TRUE(ledger.Owe(batch2).has_value());
  const Paths failed = {"a.html"};
  pacer.AfterBatch({}, failed, true);  // a.html's second upload failed: it may still land later
  clock_.now += std::chrono::seconds(3);
  auto settled = ledger.Settle(pacer.DoneKeys());
  ASSERT_TRUE(settled.has_value()) << settled.error().message;
  ASSERT_EQ(cf_.created.size(), 1u);
  EXPECT_EQ(cf_.created[0].paths, (Paths{"/a.html", "/b.html"}));
  EXPECT_EQ(settled->owed_again, 1u);
  EXPECT_EQ(OnDisk().paths, (Paths{"/a.html"}));
}

}  // namespace
}  // namespace sitesync::cdn
