// Redirect objects and clean URLs in a sync and in watch batches, against the in-memory S3 (sync/fake_s3_test.h).
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "sync/fake_s3_test.h"
#include "sync/sync.h"

namespace sitesync::sync {
namespace {

namespace fs = std::filesystem;

using testing::FakeS3;

class Recorder final : public Reporter {
 public:
  void OnWarning(std::string_view message) override { warnings.emplace_back(message); }
  void OnPlan(const Plan& plan, bool) override {
    order.clear();
    for (const PlannedUpload& up : plan.uploads) order.emplace_back(up.file.Key());
  }
  void OnUploaded(std::string_view, std::uint64_t, bool, UploadReason) override {}
  void OnDeleted(std::string_view, bool) override {}
  void OnError(std::string_view key, std::string_view message) override {
    errors.push_back(std::string(key) + ": " + std::string(message));
  }
  void OnProgress(std::uint64_t, std::uint64_t) override {}
  std::vector<std::string> warnings;
  std::vector<std::string> errors;
  std::vector<std::string> order;  ///< Keys of the last plan's uploads, in upload order.
};

std::string HeaderOf(const FakeS3& s3, const std::string& key, std::string_view name) {
  const auto it = s3.put_headers.find(key);
  if (it == s3.put_headers.end()) return "<no PUT>";
  for (const auto& [k, v] : it->second) {
    if (k == name) return v;
  }
  return "<absent>";
}

class RedirectSyncTest : public testing::TempSiteTest {
 protected:
  SyncOptions Options() const {
    SyncOptions o;
    o.source = root_;
    o.destination = {"bucket", "site/"};
    o.delete_stale = true;
    o.max_deletes = -1;
    o.max_delete_fraction = 1;
    return o;
  }
  S3Endpoint endpoint_{"http://fake", true, "us-east-1"};
};

TEST_F(RedirectSyncTest, ConfigAndFileRedirectsBecomeEmptyObjectsWithTheirLocation) {
  Write("index.html", "<p>home</p>");
  Write("new/index.html", "<p>new</p>");
  Write("app.css", "body{}");
  Write("_redirects", "# moved\n/blog/ /new/ 301\n/feed.xml https://example.org/feed.xml\n");
  SyncOptions options = Options();
  options.redirects = {{"/old/", "/new/", "redirects[0]"}, {"/about", "/new/", "redirects[1]"}};
  FakeS3 s3;
  Recorder reporter;
  auto r = RunSync(options, endpoint_, s3, reporter);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->outcome, Outcome::kOk);
  EXPECT_EQ(s3.objects.count("site/_redirects"), 0u) << "the rules file is never uploaded";
  for (const auto& [key, location] : std::vector<std::pair<std::string, std::string>>{
           {"site/old/index.html", "/new/"},
           {"site/about", "/new/"},
           {"site/blog/index.html", "/new/"},
           {"site/feed.xml", "https://example.org/feed.xml"}}) {
    ASSERT_EQ(s3.objects.count(key), 1u) << key;
    EXPECT_EQ(s3.objects.at(key).first, 0u) << key << " is zero bytes";
    EXPECT_EQ(HeaderOf(s3, key, "x-amz-website-redirect-location"), location) << key;
    EXPECT_TRUE(HeaderOf(s3, key, "content-type").starts_with("text/html")) << key;
  }
  EXPECT_EQ(HeaderOf(s3, "site/index.html", "x-amz-website-redirect-location"), "<absent>");
  // Redirects go with the pages, after the assets (the page they lead to may be new).
  ASSERT_FALSE(reporter.order.empty());
  EXPECT_EQ(reporter.order.front(), "app.css");
  EXPECT_EQ(s3.objects.size(), 7u);

  // Nothing changed: nothing goes up again (size 0 against size 0), also when comparing content.
  const int puts = s3.Count("PUT ");
  options.compare = Compare::kChecksum;
  auto again = RunSync(options, endpoint_, s3, reporter);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->uploaded, 0u);
  EXPECT_EQ(s3.Count("PUT "), puts);
  EXPECT_TRUE(reporter.errors.empty()) << reporter.errors.front();

  // A rule removed from the file and one from the config: their objects go with --delete.
  Write("_redirects", "/blog/ /new/ 301\n");
  options.redirects.pop_back();
  auto removed = RunSync(options, endpoint_, s3, reporter);
  ASSERT_TRUE(removed.has_value());
  EXPECT_EQ(removed->deleted_keys, (std::vector<std::string>{"about", "feed.xml"}));
  EXPECT_EQ(s3.objects.count("site/feed.xml"), 0u);
  EXPECT_EQ(s3.objects.count("site/old/index.html"), 1u);
}

TEST_F(RedirectSyncTest, AnUnsupportedRedirectsLineStopsTheRunBeforeAnyChange) {
  Write("index.html", "x");
  Write("_redirects", "/ok /fine\n/blog/* /news/:splat 301\n");
  FakeS3 s3;
  Recorder reporter;
  auto r = RunSync(Options(), endpoint_, s3, reporter);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, aws::ErrorCode::kInput);
  EXPECT_NE(r.error().message.find("_redirects:2"), std::string::npos) << r.error().message;
  EXPECT_EQ(s3.Count("PUT "), 0);
}

TEST_F(RedirectSyncTest, AFileOfTheSiteWinsOverARedirectWithAWarning) {
  Write("old/index.html", "<p>still here</p>");
  SyncOptions options = Options();
  options.redirects = {{"/old/", "/new/", "redirects[0]"}};
  FakeS3 s3;
  Recorder reporter;
  auto r = RunSync(options, endpoint_, s3, reporter);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(s3.objects.at("site/old/index.html").first, 17u) << "the page, not an empty redirect";
  EXPECT_EQ(HeaderOf(s3, "site/old/index.html", "x-amz-website-redirect-location"), "<absent>");
  ASSERT_EQ(reporter.warnings.size(), 1u);
  EXPECT_NE(reporter.warnings[0].find("'old/index.html'"), std::string::npos) << reporter.warnings[0];
}

TEST_F(RedirectSyncTest, WatchReReadsTheRulesWhenTheFileChanges) {
  Write("index.html", "<p>home</p>");
  Write("_redirects", "/a /index.html\n");
  FakeS3 s3;
  Recorder reporter;
  Session session(Options(), endpoint_, s3);
  ASSERT_TRUE(session.Initial(reporter).has_value());
  EXPECT_EQ(s3.objects.count("site/a"), 1u);
  // The file is edited: /a goes, /b/ comes. Its event alone makes the batch look at every redirect.
  Write("_redirects", "/b/ /index.html\n");
  auto batch = session.Batch({"_redirects"}, false, BatchDeletes::kWith, reporter);
  ASSERT_TRUE(batch.has_value());
  EXPECT_EQ(batch->result.uploaded_keys, std::vector<std::string>{"b/index.html"});
  EXPECT_EQ(batch->result.deleted_keys, std::vector<std::string>{"a"});
  EXPECT_EQ(HeaderOf(s3, "site/b/index.html", "x-amz-website-redirect-location"), "/index.html");
  EXPECT_EQ(s3.objects.count("site/a"), 0u);
  // A batch for an unrelated file leaves the redirect objects alone.
  Write("index.html", "<p>home, again</p>");
  auto other = session.Batch({"index.html"}, false, BatchDeletes::kWith, reporter);
  ASSERT_TRUE(other.has_value());
  EXPECT_EQ(other->result.uploaded_keys, std::vector<std::string>{"index.html"});
  EXPECT_EQ(other->result.deleted, 0u);
  // A bad edit fails the batch (nothing changes) until it is fixed.
  Write("_redirects", "/b/ /index.html 200\n");
  auto bad = session.Batch({"_redirects"}, false, BatchDeletes::kWith, reporter);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code, aws::ErrorCode::kInput);
  EXPECT_EQ(s3.objects.count("site/b/index.html"), 1u);
}

class CleanUrlSessionTest : public RedirectSyncTest {
 protected:
  SyncOptions Clean() const {
    SyncOptions o = Options();
    o.filters.clean_urls = true;
    return o;
  }
};

TEST_F(CleanUrlSessionTest, PagesArePublishedUnderCleanKeysAndABatchDeleteRemovesTheKey) {
  Write("index.html", "<p>home</p>");
  Write("about.html", "<p>about</p>");
  Write("blog/post.html", "<p>post</p>");
  FakeS3 s3;
  Recorder reporter;
  Session session(Clean(), endpoint_, s3);
  ASSERT_TRUE(session.Initial(reporter).has_value());
  EXPECT_EQ(s3.objects.count("site/about"), 1u);
  EXPECT_EQ(s3.objects.count("site/about.html"), 0u);
  EXPECT_EQ(s3.objects.count("site/blog/post"), 1u);
  EXPECT_EQ(s3.objects.count("site/index.html"), 1u);
  EXPECT_TRUE(HeaderOf(s3, "site/about", "content-type").starts_with("text/html"));

  // A same-size edit of the page, named by its path: the key "about" gets the new content.
  Write("about.html", "<p>ABOUT</p>");
  auto edit = session.Batch({"about.html"}, false, BatchDeletes::kWith, reporter);
  ASSERT_TRUE(edit.has_value());
  EXPECT_EQ(edit->result.uploaded_keys, std::vector<std::string>{"about"});
  EXPECT_EQ(edit->result.deleted, 0u) << "the key 'about' belongs to about.html: not a stale object";

  // The page is deleted: its event (a path) deletes its key.
  fs::remove(root_ / "about.html");
  auto gone = session.Batch({"about.html"}, false, BatchDeletes::kWith, reporter);
  ASSERT_TRUE(gone.has_value());
  EXPECT_EQ(gone->result.deleted_keys, std::vector<std::string>{"about"});
  EXPECT_EQ(s3.objects.count("site/about"), 0u);
}

TEST_F(CleanUrlSessionTest, HeldDeletesComeBackAsPathsAndAPageThatIsBackKeepsItsKey) {
  Write("about.html", "<p>about</p>");
  Write("team.html", "<p>team</p>");
  FakeS3 s3;
  Recorder reporter;
  Session session(Clean(), endpoint_, s3);
  ASSERT_TRUE(session.Initial(reporter).has_value());
  fs::remove(root_ / "about.html");
  fs::remove(root_ / "team.html");
  auto hold = session.Batch({"about.html", "team.html"}, false, BatchDeletes::kHold, reporter);
  ASSERT_TRUE(hold.has_value());
  EXPECT_EQ(hold->held_deletes, (std::vector<std::string>{"about", "about.html", "team", "team.html"}));
  // about.html is written again before the delete window ends: the deletes-only batch keeps its key.
  Write("about.html", "<p>about</p>");
  const std::set<std::string> held(hold->held_deletes.begin(), hold->held_deletes.end());
  auto only = session.Batch(held, false, BatchDeletes::kOnly, reporter);
  ASSERT_TRUE(only.has_value());
  EXPECT_EQ(only->result.deleted_keys, std::vector<std::string>{"team"});
  EXPECT_EQ(s3.objects.count("site/about"), 1u);
}

TEST_F(CleanUrlSessionTest, AFailedUploadIsRetriedByItsPath) {
  Write("about.html", "<p>about</p>");
  FakeS3 s3;
  s3.put_faults["site/about"] = testing::Fault::kFail;
  Recorder reporter;
  Session session(Clean(), endpoint_, s3);
  auto first = session.Initial(reporter);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->failed, 1u);
  EXPECT_EQ(first->failed_keys, (std::vector<std::string>{"about", "about.html"}));
  s3.put_faults.clear();
  // The retry timer's batch (no new event): the failed path is walked again and its key uploaded, nothing deleted.
  auto retry = session.Batch({}, false, BatchDeletes::kWith, reporter);
  ASSERT_TRUE(retry.has_value());
  EXPECT_EQ(retry->result.uploaded_keys, std::vector<std::string>{"about"});
  EXPECT_EQ(retry->result.deleted, 0u);
  EXPECT_TRUE(retry->result.failed_keys.empty());
  EXPECT_EQ(s3.objects.count("site/about"), 1u);
}

TEST_F(CleanUrlSessionTest, AnExcludedPagesCleanKeyIsNeverDeleted) {
  Write("index.html", "<p>home</p>");
  Write("secret.html", "<p>s</p>");
  FakeS3 s3;
  s3.objects["site/secret"] = {8, "etag-of-an-earlier-upload"};
  s3.objects["site/stale"] = {3, "etag"};
  SyncOptions options = Clean();
  options.filters.exclude = {"secret.html"};
  Recorder reporter;
  auto r = RunSync(options, endpoint_, s3, reporter);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->deleted_keys, std::vector<std::string>{"stale"}) << "the excluded page's key stays, as its path would";
  EXPECT_EQ(s3.objects.count("site/secret"), 1u);
}

TEST_F(CleanUrlSessionTest, RedirectsAndCleanKeysTogether) {
  Write("about.html", "<p>about</p>");
  SyncOptions options = Clean();
  options.redirects = {{"/about", "/team/", "redirects[0]"}, {"/old.html", "/about", "redirects[1]"}};
  FakeS3 s3;
  Recorder reporter;
  auto r = RunSync(options, endpoint_, s3, reporter);
  ASSERT_TRUE(r.has_value());
  // The page owns "about" (the redirect to it is left out, with a warning); "/old.html" is its own key.
  EXPECT_EQ(s3.objects.at("site/about").first, 12u);
  EXPECT_EQ(s3.objects.at("site/old.html").first, 0u);
  EXPECT_EQ(HeaderOf(s3, "site/old.html", "x-amz-website-redirect-location"), "/about");
  ASSERT_EQ(reporter.warnings.size(), 1u);
  EXPECT_NE(reporter.warnings[0].find("'about.html'"), std::string::npos) << reporter.warnings[0];
}

}  // namespace
}  // namespace sitesync::sync
