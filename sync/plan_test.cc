#include <gtest/gtest.h>

#include <map>

#include "sync/sync.h"

namespace sitesync::sync {
namespace {

sitemap::LocalFile File(std::string rel, std::uint64_t size) {
  sitemap::LocalFile f;
  f.rel_path = std::move(rel);
  f.size = size;
  return f;
}

std::vector<std::string> Keys(const Plan& plan) {
  std::vector<std::string> out;
  for (const auto& u : plan.uploads) out.push_back(plan.KeyOf(u));
  return out;
}

TEST(ParseDestination, BucketAndPrefixForms) {
  struct Case {
    std::string in, bucket, prefix;
  } cases[] = {
      {"s3://my-site", "my-site", ""},
      {"s3://my-site/", "my-site", ""},
      {"s3://b12/site", "b12", "site/"},
      {"s3://b12/site/", "b12", "site/"},
      {"s3://b12/a//b", "b12", "a//b/"},
      {"s3://b12/a b/ü", "b12", "a b/ü/"},
      {"s3://my.bucket/x/y/", "my.bucket", "x/y/"},
  };
  for (const auto& c : cases) {
    auto d = ParseDestination(c.in);
    ASSERT_TRUE(d.has_value()) << c.in << ": " << d.error().message;
    EXPECT_EQ(d->bucket, c.bucket) << c.in;
    EXPECT_EQ(d->prefix, c.prefix) << c.in;
  }
}

TEST(ParseDestination, RejectsWhatIsNotS3Url) {
  for (std::string bad : {"", "http://x", "s3://", "s3:///prefix", "bucket-only", "s3://ab", "s3://bad*name/x",
                          "S3://upper/x"}) {
    auto d = ParseDestination(bad);
    ASSERT_FALSE(d.has_value()) << bad;
    EXPECT_EQ(d.error().code, aws::ErrorCode::kUsage);
    EXPECT_NE(d.error().message.find("s3://BUCKET"), std::string::npos) << d.error().message;
  }
}

TEST(Diff, UploadsMissingAndResizedAssetsBeforeHtml) {
  std::vector<sitemap::LocalFile> local = {File("a.css", 10), File("b/index.html", 20), File("c.png", 30),
                                           File("index.html", 5), File("same.js", 7)};
  std::vector<RemoteObject> remote = {{"site/c.png", 31, "e1"}, {"site/same.js", 7, "e2"}};
  Plan plan = Diff(local, remote, {.prefix = "site/"});
  EXPECT_EQ(Keys(plan), (std::vector<std::string>{"site/a.css", "site/c.png", "site/b/index.html", "site/index.html"}));
  EXPECT_EQ(plan.first_html, 2u);
  EXPECT_EQ(plan.unchanged, 1u);
  EXPECT_EQ(plan.upload_bytes, 10u + 30 + 20 + 5);
  EXPECT_EQ(plan.uploads[1].reason, UploadReason::kSizeChanged);
  EXPECT_EQ(plan.uploads[0].reason, UploadReason::kNew);
  EXPECT_TRUE(plan.deletes.empty());
}

TEST(Diff, ForceUploadsUnchangedFilesTooAndKeepsTheOrderAndTheDeletes) {
  std::vector<sitemap::LocalFile> local = {File("index.html", 5), File("same.js", 7), File("new.css", 3)};
  std::vector<RemoteObject> remote = {{"site/index.html", 5, "e1"}, {"site/same.js", 7, "e2"}, {"site/old", 1, "e3"}};
  Plan plan = Diff(local, remote, {.prefix = "site/", .delete_stale = true, .force = true});
  EXPECT_EQ(Keys(plan), (std::vector<std::string>{"site/same.js", "site/new.css", "site/index.html"}));
  EXPECT_EQ(plan.first_html, 2u) << "assets still go before pages";
  EXPECT_EQ(plan.unchanged, 0u);
  std::map<std::string, UploadReason> reasons;
  for (const PlannedUpload& up : plan.uploads) reasons[plan.KeyOf(up)] = up.reason;
  EXPECT_EQ(reasons["site/new.css"], UploadReason::kNew);
  EXPECT_EQ(reasons["site/same.js"], UploadReason::kForced);
  EXPECT_EQ(reasons["site/index.html"], UploadReason::kForced);
  EXPECT_EQ(plan.deletes, (std::vector<std::string>{"site/old"}));
  EXPECT_EQ(Diff(local, remote, {.prefix = "site/"}).unchanged, 2u) << "without --force the same files are unchanged";
}

TEST(Diff, DeletesOnlyWhenAskedAndOnlyUnderPrefix) {
  std::vector<sitemap::LocalFile> local = {File("keep.txt", 1)};
  std::vector<RemoteObject> remote = {{"site/keep.txt", 1, "x"}, {"site/old.txt", 3, "y"},
                                      {"site/a//b", 3, "y"},     {"site/", 0, "d"},
                                      {"other/x", 1, "z"},       {"site-old/x", 1, "z"}};
  EXPECT_TRUE(Diff(local, remote, {.prefix = "site/"}).deletes.empty());
  Plan plan = Diff(local, remote, {.prefix = "site/", .delete_stale = true});
  EXPECT_EQ(plan.deletes, (std::vector<std::string>{"site/a//b", "site/old.txt"}));
}

TEST(Diff, ExcludedRemoteKeysAreNeverDeleted) {
  sitemap::WalkOptions filters;
  filters.exclude = {"*.map", "drafts/**"};
  std::vector<RemoteObject> remote = {{"app.js.map", 1, ""}, {"drafts/x.html", 1, ""}, {".env", 1, ""},
                                      {".well-known/old", 1, ""}, {"gone.html", 1, ""}};
  Plan plan = Diff({}, remote, {.prefix = "", .delete_stale = true, .filters = &filters});
  EXPECT_EQ(plan.deletes, (std::vector<std::string>{".well-known/old", "gone.html"}));
}

TEST(Diff, NothingIsDeletedUnderAFolderTheWalkCouldNotRead) {
  std::vector<RemoteObject> remote = {{"p/locked/a.html", 1, ""}, {"p/locked/sub/b", 1, ""},
                                      {"p/lockedness.txt", 1, ""}, {"p/gone.txt", 1, ""}};
  std::vector<std::string> incomplete = {"locked"};
  Plan plan = Diff({}, remote, {.prefix = "p/", .delete_stale = true, .incomplete_folders = incomplete});
  EXPECT_EQ(plan.deletes, (std::vector<std::string>{"p/gone.txt", "p/lockedness.txt"}));
}

TEST(Diff, ChecksumComparesOnlyWhatWasHashed) {
  std::vector<sitemap::LocalFile> local = {File("same.txt", 4), File("edited.txt", 4), File("unhashed.txt", 4)};
  std::vector<RemoteObject> remote = {{"same.txt", 4, "aaa"}, {"edited.txt", 4, "bbb"}, {"unhashed.txt", 4, "ccc"}};
  std::map<std::string, std::string> etags = {{"same.txt", "aaa"}, {"edited.txt", "zzz"}};
  Plan by_size = Diff(local, remote, {.prefix = "", .compare = Compare::kSize, .local_etags = &etags});
  EXPECT_TRUE(by_size.uploads.empty());
  Plan by_sum = Diff(local, remote, {.prefix = "", .compare = Compare::kChecksum, .local_etags = &etags});
  ASSERT_EQ(by_sum.uploads.size(), 1u);
  EXPECT_EQ(by_sum.KeyOf(by_sum.uploads[0]), "edited.txt");
  EXPECT_EQ(by_sum.uploads[0].reason, UploadReason::kContentChanged);
  EXPECT_EQ(by_sum.unchanged, 2u);
}

TEST(ChecksumCandidates, SameSizeWithEtagOnly) {
  std::vector<sitemap::LocalFile> local = {File("a", 1), File("b", 2), File("c", 3)};
  std::vector<RemoteObject> remote = {{"p/a", 1, "e"}, {"p/b", 5, "e"}, {"p/c", 3, "f-2"}};
  auto c = ChecksumCandidates(local, remote, "p/");
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0], (std::pair<std::size_t, std::string>{0, "e"}));
  EXPECT_EQ(c[1], (std::pair<std::size_t, std::string>{2, "f-2"}));
}

}  // namespace
}  // namespace sitesync::sync
