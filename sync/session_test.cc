// Session (watch batches) against an in-memory S3 that records what was asked of it.
#include <gtest/gtest.h>

#include <unistd.h>

#include <fstream>
#include <random>

#include <fmt/format.h>

#include "sync/fake_s3_test.h"
#include "sync/sync.h"
#include "watcher/watcher.h"

namespace sitesync::sync {
namespace {

namespace fs = std::filesystem;

using testing::FakeS3;  // sync/fake_s3_test.h

class NullReporter final : public Reporter {
 public:
  void OnWarning(std::string_view) override {}
  void OnPlan(const Plan&, bool) override {}
  void OnUploaded(std::string_view, std::uint64_t, bool, UploadReason) override {}
  void OnDeleted(std::string_view, bool) override {}
  void OnError(std::string_view, std::string_view message) override { errors.emplace_back(message); }
  void OnProgress(std::uint64_t, std::uint64_t) override {}
  std::vector<std::string> errors;
};

// The watcher's fake: replays scripted happenings into the coalescer, including a queue overflow.
class FakeSource final : public watcher::EventSource {
 public:
  std::vector<std::string> paths;
  bool overflow = false;
  aws::Result<void> Wait(std::optional<watcher::Clock::time_point>, watcher::Coalescer& sink) override {
    const auto now = watcher::Clock::now();
    for (const std::string& p : paths) sink.Add(p, now);
    if (overflow) sink.AddRescan("inotify queue overflow (IN_Q_OVERFLOW)", now);
    paths.clear();
    overflow = false;
    return {};
  }
  void Interrupt() override {}
};

class SessionTest : public testing::TempSiteTest {
 protected:

  SyncOptions Options() const {
    SyncOptions o;
    o.source = root_;
    o.destination = {"bucket", "site/"};
    o.delete_stale = true;
    o.max_deletes = -1;
    return o;
  }

  std::map<std::string, std::pair<std::uint64_t, std::string>> FreshSync(
      std::map<std::string, std::pair<std::uint64_t, std::string>> start, Compare compare = Compare::kSize) {
    FakeS3 fresh;
    fresh.objects = std::move(start);
    NullReporter reporter;
    SyncOptions options = Options();
    options.compare = compare;
    auto r = RunSync(options, {"http://fake", true, "us-east-1"}, fresh, reporter);
    EXPECT_TRUE(r.has_value());
    return fresh.objects;
  }

  S3Endpoint endpoint_{"http://fake", true, "us-east-1"};
};

TEST_F(SessionTest, BatchUploadsOnlyTheChangedFileWithoutListing) {
  for (int i = 0; i < 20; ++i) Write(fmt::format("p{}/index.html", i), "page " + std::to_string(i));
  FakeS3 s3;
  NullReporter reporter;
  Session session(Options(), endpoint_, s3);
  ASSERT_TRUE(session.Initial(reporter).has_value());
  EXPECT_EQ(s3.Count("LIST"), 1);
  EXPECT_EQ(s3.Count("PUT "), 20);

  Write("p3/index.html", "page X");  // same size as "page 3": only the content tells
  auto batch = session.Batch({"p3/index.html"}, false, BatchDeletes::kWith, reporter);
  ASSERT_TRUE(batch.has_value());
  EXPECT_EQ(batch->result.uploaded_keys, std::vector<std::string>{"p3/index.html"});
  EXPECT_EQ(s3.Count("LIST"), 1) << "no listing per batch";
  EXPECT_EQ(s3.Count("PUT "), 21);

  // Unchanged content named by an event: nothing goes up.
  auto again = session.Batch({"p3/index.html", "p4/index.html"}, false, BatchDeletes::kWith, reporter);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->result.uploaded, 0u);
  EXPECT_EQ(s3.Count("PUT "), 21);
}

TEST_F(SessionTest, DeletedFolderIsDeletedAndAFileDatedAheadIsPublished) {
  Write("a/1.html", "1");
  Write("a/2.html", "2");
  Write("b.css", "b");
  FakeS3 s3;
  NullReporter reporter;
  Session session(Options(), endpoint_, s3);
  ASSERT_TRUE(session.Initial(reporter).has_value());
  fs::remove_all(root_ / "a");
  std::ofstream(root_ / "b.css") << "written by a machine whose clock is an hour ahead";
  fs::last_write_time(root_ / "b.css", fs::file_time_type::clock::now() + std::chrono::hours(1));
  auto batch = session.Batch({"a", "b.css"}, false, BatchDeletes::kWith, reporter);
  ASSERT_TRUE(batch.has_value());
  EXPECT_EQ(batch->result.deleted, 2u);
  EXPECT_EQ(batch->result.uploaded_keys, std::vector<std::string>{"b.css"}) << "a future mtime is no reason to wait";
  EXPECT_EQ(s3.objects.count("site/a/1.html"), 0u);
  EXPECT_EQ(s3.objects.at("site/b.css").first, 49u);
  EXPECT_TRUE(batch->result.failed_keys.empty());
}

TEST_F(SessionTest, HeldDeletesComeBackAndGoAloneOnlyForFilesStillGone) {
  Write("a.html", "a");
  Write("b.html", "b");
  Write("c.css", "c");
  FakeS3 s3;
  NullReporter reporter;
  Session session(Options(), endpoint_, s3);
  ASSERT_TRUE(session.Initial(reporter).has_value());
  // A rebuild: everything removed, c.css written again (changed), a.html and b.html not yet.
  fs::remove(root_ / "a.html");
  fs::remove(root_ / "b.html");
  Write("c.css", "c2");
  auto hold = session.Batch({"a.html", "b.html", "c.css"}, false, BatchDeletes::kHold, reporter);
  ASSERT_TRUE(hold.has_value());
  EXPECT_EQ(hold->result.uploaded_keys, std::vector<std::string>{"c.css"});
  EXPECT_EQ(hold->result.deleted, 0u);
  EXPECT_EQ(hold->held_deletes, (std::vector<std::string>{"a.html", "b.html"}));
  EXPECT_EQ(s3.Count("DELETE "), 0);
  EXPECT_EQ(s3.objects.size(), 3u);
  // a.html comes back (with new content) before the window ends; b.html does not.
  Write("a.html", "a, rebuilt");
  auto only = session.Batch({"a.html", "b.html"}, false, BatchDeletes::kOnly, reporter);
  ASSERT_TRUE(only.has_value());
  EXPECT_EQ(only->result.deleted_keys, std::vector<std::string>{"b.html"});
  EXPECT_EQ(only->result.uploaded, 0u) << "a deletes-only batch uploads nothing; a.html's own event does";
  EXPECT_EQ(s3.objects.count("site/a.html"), 1u);
  EXPECT_EQ(s3.objects.count("site/b.html"), 0u);
  auto up = session.Batch({"a.html"}, false, BatchDeletes::kHold, reporter);
  ASSERT_TRUE(up.has_value());
  EXPECT_EQ(up->result.uploaded_keys, std::vector<std::string>{"a.html"});
  EXPECT_EQ(s3.objects.at("site/a.html").first, 10u);
}

TEST_F(SessionTest, RescanComparesContentOfFilesWhoseMtimeChangedEvenToAnOlderOne) {
  Write("a.css", "aaaa");
  Write("b.css", "bbbb");
  FakeS3 s3;
  NullReporter reporter;
  Session session(Options(), endpoint_, s3);
  ASSERT_TRUE(session.Initial(reporter).has_value());
  // `cp -p` of an older build: same size, other content, an mtime from last year.
  std::ofstream(root_ / "a.css") << "AAAA";
  fs::last_write_time(root_ / "a.css", fs::file_time_type::clock::now() - std::chrono::hours(24 * 365));
  const int puts = s3.Count("PUT ");
  auto batch = session.Batch({}, true, BatchDeletes::kHold, reporter);
  ASSERT_TRUE(batch.has_value());
  EXPECT_EQ(batch->result.uploaded_keys, std::vector<std::string>{"a.css"});
  EXPECT_EQ(s3.Count("PUT "), puts + 1) << "b.css, unchanged since the walk, is not uploaded again";
}

TEST_F(SessionTest, OverflowRescanThroughTheWatchersFakeEqualsAFreshSync) {
  std::mt19937 rng(7);
  for (int round = 0; round < 5; ++round) {
    fs::remove_all(root_);
    fs::create_directories(root_);
    for (int i = 0; i < 40; ++i) Write(fmt::format("d{}/f{}.html", i % 5, i), std::string(1 + rng() % 50, 'x'));
    FakeS3 s3;
    NullReporter reporter;
    Session session(Options(), endpoint_, s3);
    ASSERT_TRUE(session.Initial(reporter).has_value());
    // Changes the watcher never reported (its queue overflowed): edits, new files, deletions.
    for (int i = 0; i < 40; ++i) {
      const std::string rel = fmt::format("d{}/f{}.html", i % 5, i);
      switch (rng() % 4) {
        case 0: Write(rel, std::string(1 + rng() % 50, 'y')); break;
        case 1: fs::remove(root_ / rel); break;
        case 2: Write(fmt::format("new{}/g{}.css", round, i), "n"); break;
        default: break;
      }
    }
    const auto before = s3.objects;
    FakeSource source;
    source.overflow = true;
    watcher::Coalescer coalescer(std::chrono::milliseconds(0), std::chrono::milliseconds(0));
    ASSERT_TRUE(source.Wait(std::nullopt, coalescer).has_value());
    const watcher::Changes changes = coalescer.Take();
    ASSERT_TRUE(changes.rescan);
    auto batch = session.Batch(changes.paths, changes.rescan, BatchDeletes::kWith, reporter);
    ASSERT_TRUE(batch.has_value());
    // A rescan compares the content of every file whose mtime or size changed since the walk (the edits here
    // are same-size ones too), so it ends where a fresh sync comparing content ends.
    EXPECT_EQ(s3.objects, FreshSync(before, Compare::kChecksum)) << "round " << round;
    // And the session's idea of the bucket matches the bucket.
    std::map<std::string, std::pair<std::uint64_t, std::string>> believed;
    for (const RemoteObject& o : session.Remote()) believed[o.key] = {o.size, o.etag};
    EXPECT_EQ(believed, s3.objects) << "round " << round;
  }
}

TEST_F(SessionTest, BatchDeletesBeyondTheGuardAreRefusedButUploadsGo) {
  for (int i = 0; i < 5; ++i) Write(fmt::format("x{}.html", i), "x");
  FakeS3 s3;
  NullReporter reporter;
  SyncOptions options = Options();
  options.max_deletes = 2;
  Session session(options, endpoint_, s3);
  ASSERT_TRUE(session.Initial(reporter).has_value());
  for (int i = 0; i < 4; ++i) fs::remove(root_ / fmt::format("x{}.html", i));
  Write("new.css", "n");
  auto batch = session.Batch({"x0.html", "x1.html", "x2.html", "x3.html", "new.css"}, false,
                             BatchDeletes::kWith, reporter);
  ASSERT_TRUE(batch.has_value());
  EXPECT_EQ(batch->result.deleted, 0u);
  EXPECT_EQ(batch->result.uploaded, 1u);
  EXPECT_EQ(s3.objects.size(), 6u);
  ASSERT_FALSE(reporter.errors.empty());
  EXPECT_NE(reporter.errors.back().find("--max-deletes"), std::string::npos);
}

}  // namespace
}  // namespace sitesync::sync
