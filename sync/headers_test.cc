// The headers an object is stored with (ObjectHeaders, HeadersDigest), and the requests that change or read them
// (CopyObject onto itself, HeadObject), against the in-memory S3 of fake_s3_test.h.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include "sync/fake_s3_test.h"
#include "sync/s3_client.h"

namespace sitesync::sync {
namespace {

using testing::FakeS3;
using Headers = std::vector<std::pair<std::string, std::string>>;

sitemap::LocalFile FileWith(const sitemap::ExtraHeaders& extra) {
  sitemap::LocalFile f;
  f.rel_path = "a.html";
  f.content_type = "text/html";
  f.extra = sitemap::InternHeaders(extra);
  return f;
}

TEST(ObjectHeaders, ContentTypeAlwaysTheRestWhenSetSortedByName) {
  sitemap::LocalFile plain;
  plain.rel_path = "x.bin";
  EXPECT_EQ(ObjectHeaders(plain), (Headers{{"content-type", "application/octet-stream"}}));

  sitemap::ExtraHeaders extra;
  extra.content_disposition = "attachment; filename=\"a.html\"";
  extra.content_language = "de-CH";
  extra.content_encoding = "identity";
  extra.storage_class = "STANDARD_IA";
  extra.acl = "public-read";
  extra.sse = "aws:kms";
  extra.kms_key_id = "1234abcd-12ab-34cd-56ef-1234567890ab";
  extra.website_redirect = "/new/";
  extra.metadata = {{"author", "docs team"}, {"empty", ""}};
  sitemap::LocalFile f = FileWith(extra);
  f.cache_control = "no-cache";
  EXPECT_EQ(ObjectHeaders(f), (Headers{
                                  {"cache-control", "no-cache"},
                                  {"content-disposition", "attachment; filename=\"a.html\""},
                                  {"content-encoding", "identity"},
                                  {"content-language", "de-CH"},
                                  {"content-type", "text/html"},
                                  {"x-amz-acl", "public-read"},
                                  {"x-amz-meta-author", "docs team"},
                                  {"x-amz-meta-empty", ""},
                                  {"x-amz-server-side-encryption", "aws:kms"},
                                  {"x-amz-server-side-encryption-aws-kms-key-id",
                                   "1234abcd-12ab-34cd-56ef-1234567890ab"},
                                  {"x-amz-storage-class", "STANDARD_IA"},
                                  {"x-amz-website-redirect-location", "/new/"},
                              }));

  // The compressed body's encoding is what the bytes are: it beats a rule's content_encoding.
  f.encoding = sitemap::Encoding::kBrotli;
  const Headers brotli = ObjectHeaders(f);
  EXPECT_NE(std::find(brotli.begin(), brotli.end(), std::pair<std::string, std::string>{"content-encoding", "br"}),
            brotli.end());
  f.encoding = sitemap::Encoding::kGzip;
  const Headers gzip = ObjectHeaders(f);
  EXPECT_NE(std::find(gzip.begin(), gzip.end(), std::pair<std::string, std::string>{"content-encoding", "gzip"}),
            gzip.end());

  // A key ID goes only with aws:kms (S3 refuses it with AES256).
  sitemap::ExtraHeaders aes = extra;
  aes.sse = "AES256";
  const Headers with_aes = ObjectHeaders(FileWith(aes));
  EXPECT_TRUE(std::none_of(with_aes.begin(), with_aes.end(), [](const auto& h) {
    return h.first == "x-amz-server-side-encryption-aws-kms-key-id";
  }));
}

TEST(HeadersDigest, EqualForEqualHeadersAndChangesWithEveryField) {
  sitemap::ExtraHeaders base;
  base.metadata = {{"a", "1"}};
  sitemap::LocalFile f = FileWith(base);
  const std::string digest = HeadersDigest(f);
  EXPECT_EQ(digest.size(), 64u);
  EXPECT_EQ(digest, HeadersDigest(FileWith(base)));
  std::set<std::string> seen = {digest};
  const auto differs = [&](const sitemap::LocalFile& g) {
    const std::string d = HeadersDigest(g);
    EXPECT_TRUE(seen.insert(d).second) << "digest repeated for headers number " << seen.size();
  };
  sitemap::LocalFile cache = f;
  cache.cache_control = "max-age=60";
  differs(cache);
  sitemap::LocalFile type = f;
  type.content_type = "text/plain";
  differs(type);
  sitemap::LocalFile encoded = f;
  encoded.encoding = sitemap::Encoding::kGzip;
  differs(encoded);
  for (auto field : {&sitemap::ExtraHeaders::content_encoding, &sitemap::ExtraHeaders::content_disposition,
                     &sitemap::ExtraHeaders::content_language, &sitemap::ExtraHeaders::storage_class,
                     &sitemap::ExtraHeaders::acl, &sitemap::ExtraHeaders::sse,
                     &sitemap::ExtraHeaders::website_redirect}) {
    sitemap::ExtraHeaders e = base;
    e.*field = "x";
    differs(FileWith(e));
  }
  sitemap::ExtraHeaders kms = base;
  kms.sse = "aws:kms";
  differs(FileWith(kms));
  kms.kms_key_id = "k";
  differs(FileWith(kms));
  sitemap::ExtraHeaders value = base;
  value.metadata = {{"a", "2"}};
  differs(FileWith(value));
  sitemap::ExtraHeaders name = base;
  name.metadata = {{"b", "1"}};
  differs(FileWith(name));
  sitemap::ExtraHeaders two = base;
  two.metadata = {{"a", "1"}, {"b", "1"}};
  differs(FileWith(two));
}

TEST(HeadersDiffer, ComparesWhatHeadShows) {
  const Headers wanted = {{"cache-control", "max-age=60"},
                          {"content-type", "text/html"},
                          {"x-amz-acl", "public-read"},
                          {"x-amz-meta-author", "docs"}};
  ObjectHead same;
  same.headers = {{"cache-control", " max-age=60"},  // surrounding space is not part of the value
                  {"content-type", "text/html"},
                  {"content-length", "12"},
                  {"etag", "\"abc\""},
                  {"last-modified", "Sun, 06 Dec 2026 09:00:00 GMT"},
                  {"x-amz-meta-author", "docs"},
                  {"x-amz-server-side-encryption", "AES256"}};  // the bucket's default encryption
  EXPECT_FALSE(HeadersDiffer(same, wanted));  // x-amz-acl is never shown: not compared

  struct Case {
    std::string what;
    std::function<void(Headers&)> change_head;
    bool differs;
  };
  const auto set = [](Headers& h, std::string name, std::string value) {
    std::erase_if(h, [&](const auto& p) { return p.first == name; });
    if (!value.empty()) h.emplace_back(name, value);
  };
  const std::vector<Case> cases = {
      {"other cache-control", [&](Headers& h) { set(h, "cache-control", "no-cache"); }, true},
      {"no cache-control", [&](Headers& h) { set(h, "cache-control", ""); }, true},
      {"other content-type", [&](Headers& h) { set(h, "content-type", "binary/octet-stream"); }, true},
      {"a content-encoding", [&](Headers& h) { set(h, "content-encoding", "gzip"); }, true},
      {"a content-disposition", [&](Headers& h) { set(h, "content-disposition", "inline"); }, true},
      {"a content-language", [&](Headers& h) { set(h, "content-language", "en"); }, true},
      {"a redirect", [&](Headers& h) { set(h, "x-amz-website-redirect-location", "/x"); }, true},
      {"other metadata value", [&](Headers& h) { set(h, "x-amz-meta-author", "web"); }, true},
      {"metadata missing", [&](Headers& h) { set(h, "x-amz-meta-author", ""); }, true},
      {"more metadata", [&](Headers& h) { set(h, "x-amz-meta-extra", "1"); }, true},
      {"STANDARD shown", [&](Headers& h) { set(h, "x-amz-storage-class", "STANDARD"); }, false},
      {"another class", [&](Headers& h) { set(h, "x-amz-storage-class", "GLACIER_IR"); }, true},
      {"KMS by the bucket", [&](Headers& h) { set(h, "x-amz-server-side-encryption", "aws:kms"); }, false},
  };
  for (const Case& c : cases) {
    ObjectHead head = same;
    c.change_head(head.headers);
    EXPECT_EQ(HeadersDiffer(head, wanted), c.differs) << c.what;
  }

  // Encryption asked for: compared, and a key ID matches the ARN HEAD shows; an alias is not compared.
  Headers kms = wanted;
  kms.emplace_back("x-amz-server-side-encryption", "aws:kms");
  kms.emplace_back("x-amz-server-side-encryption-aws-kms-key-id", "1234abcd");
  EXPECT_TRUE(HeadersDiffer(same, kms));  // AES256 there
  ObjectHead with_kms = same;
  set(with_kms.headers, "x-amz-server-side-encryption", "aws:kms");
  const std::string arn = "arn:aws:kms:us-east-1:111122223333:key/";
  set(with_kms.headers, "x-amz-server-side-encryption-aws-kms-key-id", arn + "1234abcd");
  EXPECT_FALSE(HeadersDiffer(with_kms, kms));
  set(with_kms.headers, "x-amz-server-side-encryption-aws-kms-key-id", arn + "x1234abcd");
  EXPECT_TRUE(HeadersDiffer(with_kms, kms));
  Headers alias = wanted;
  alias.emplace_back("x-amz-server-side-encryption", "aws:kms");
  alias.emplace_back("x-amz-server-side-encryption-aws-kms-key-id", "alias/site");
  EXPECT_FALSE(HeadersDiffer(with_kms, alias));
  Headers standard = wanted;
  standard.emplace_back("x-amz-storage-class", "STANDARD");
  EXPECT_FALSE(HeadersDiffer(same, standard));
}

class HeadersOverFakeS3 : public testing::TempSiteTest {
 protected:
  // The file at `rel` as a walk with `rules` gives it.
  sitemap::LocalFile Walked(const std::string& rel, const std::vector<sitemap::HeaderRule>& rules) {
    sitemap::WalkOptions options;
    options.headers = rules;
    auto site = sitemap::Walk(root_, options);
    EXPECT_TRUE(site.has_value());
    for (const sitemap::LocalFile& f : site->files) {
      if (f.rel_path == rel) return f;
    }
    ADD_FAILURE() << rel << " not walked";
    return {};
  }
  static sitemap::HeaderRule Rule(std::string match, std::string cache_control) {
    sitemap::HeaderRule r;
    r.match = std::move(match);
    r.cache_control = std::move(cache_control);
    return r;
  }
  aws::Result<Uploaded> Run(const std::function<void(UploadDone)>& submit) {
    std::optional<aws::Result<Uploaded>> out;
    submit([&](aws::Result<Uploaded> r) { out = std::move(r); });
    s3_.Run();
    if (!out) return aws::Fail(aws::ErrorCode::kInternal, "no answer");
    return *out;
  }
  aws::Result<Uploaded> Upload(const sitemap::LocalFile& f, std::uint64_t threshold = 16ull << 20) {
    return Run([&](UploadDone done) {
      SubmitUpload(s3_, endpoint_, UploadSpec{"bucket", "site/" + f.rel_path, f, threshold, 8ull << 20, nullptr},
                   std::move(done));
    });
  }
  aws::Result<Uploaded> Copy(const sitemap::LocalFile& f) {
    return Run([&](UploadDone done) {
      SubmitCopy(s3_, endpoint_, UploadSpec{"bucket", "site/" + f.rel_path, f, 16ull << 20, 8ull << 20, nullptr},
                 std::move(done));
    });
  }
  aws::Result<ObjectHead> Head(const std::string& key) {
    std::optional<aws::Result<ObjectHead>> out;
    SubmitHead(s3_, endpoint_, "bucket", key, [&](aws::Result<ObjectHead> r) { out = std::move(r); });
    s3_.Run();
    if (!out) return aws::Fail(aws::ErrorCode::kInternal, "no answer");
    return *out;
  }

  FakeS3 s3_;
  std::shared_ptr<FollowedEndpoint> endpoint_ =
      std::make_shared<FollowedEndpoint>(S3Endpoint{"http://fake", true, "us-east-1"});
};

TEST_F(HeadersOverFakeS3, PutAndMultipartSendExactlyObjectHeaders) {
  Write("a b/page.html", "<p>hello</p>");
  Write("big.bin", std::string(100, 'x'));
  sitemap::HeaderRule rule = Rule("*", "max-age=60");
  rule.metadata = std::vector<std::pair<std::string, std::string>>{{"owner", "web"}};
  rule.storage_class = "STANDARD_IA";
  const sitemap::LocalFile page = Walked("a b/page.html", {rule});
  ASSERT_TRUE(Upload(page).has_value());
  EXPECT_EQ(s3_.headers["site/a b/page.html"], ObjectHeaders(page));
  const sitemap::LocalFile big = Walked("big.bin", {rule});
  ASSERT_TRUE(Upload(big, /*threshold=*/10).has_value());
  EXPECT_EQ(s3_.Count("CREATE site/big.bin"), 1);
  EXPECT_EQ(s3_.headers["site/big.bin"], ObjectHeaders(big));
}

TEST_F(HeadersOverFakeS3, CopyReplacesTheHeadersWithoutSendingTheBody) {
  Write("a b/page.html", "<p>hello</p>");
  const sitemap::LocalFile before = Walked("a b/page.html", {Rule("*", "max-age=60")});
  auto put = Upload(before);
  ASSERT_TRUE(put.has_value());
  auto head = Head("site/a b/page.html");
  ASSERT_TRUE(head.has_value()) << head.error().message;
  EXPECT_FALSE(HeadersDiffer(*head, ObjectHeaders(before)));
  EXPECT_EQ(head->etag, put->etag);
  EXPECT_EQ(head->size, 12u);

  sitemap::HeaderRule more = Rule("*.html", "no-cache");
  more.content_language = "fr";
  const sitemap::LocalFile after = Walked("a b/page.html", {Rule("*", "max-age=60"), more});
  ASSERT_TRUE(HeadersDiffer(*head, ObjectHeaders(after)));
  s3_.log.clear();
  auto copied = Copy(after);
  ASSERT_TRUE(copied.has_value()) << copied.error().message;
  EXPECT_EQ(s3_.log, (std::vector<std::string>{"COPY site/a b/page.html"}));  // no PUT: no body sent
  EXPECT_EQ(copied->bytes, 0u);
  EXPECT_EQ(copied->etag, put->etag);
  EXPECT_EQ(s3_.headers["site/a b/page.html"], ObjectHeaders(after));
  auto again = Head("site/a b/page.html");
  ASSERT_TRUE(again.has_value());
  EXPECT_FALSE(HeadersDiffer(*again, ObjectHeaders(after)));
  // Replaced, not merged: a header the new rules drop goes.
  const sitemap::LocalFile bare = Walked("a b/page.html", {});
  ASSERT_TRUE(Copy(bare).has_value());
  EXPECT_EQ(s3_.headers["site/a b/page.html"], (Headers{{"content-type", "text/html; charset=utf-8"}}));
}

TEST_F(HeadersOverFakeS3, CopyAnsweredTwoHundredWithAnErrorIsSentAgainThenFails) {
  Write("a.css", "body{}");
  const sitemap::LocalFile f = Walked("a.css", {Rule("*", "max-age=60")});
  ASSERT_TRUE(Upload(f).has_value());
  s3_.copy_errors_200["site/a.css"] = 2;
  auto ok = Copy(f);
  ASSERT_TRUE(ok.has_value()) << ok.error().message;
  EXPECT_EQ(s3_.Count("COPY site/a.css"), 3);

  s3_.copy_errors_200["site/a.css"] = 10;
  auto failed = Copy(f);
  ASSERT_FALSE(failed.has_value());
  EXPECT_EQ(s3_.Count("COPY site/a.css"), 3 + 4);
  EXPECT_NE(failed.error().message.find("CopyObject s3://bucket/site/a.css: 200 with an error: InternalError"),
            std::string::npos)
      << failed.error().message;
  EXPECT_TRUE(failed.error().retryable);
}

TEST_F(HeadersOverFakeS3, CopyOfAnObjectGoneSinceTheListingUploadsIt) {
  Write("a.css", "body{}");
  const sitemap::LocalFile f = Walked("a.css", {Rule("*", "max-age=60")});
  auto done = Copy(f);
  ASSERT_TRUE(done.has_value()) << done.error().message;
  EXPECT_EQ(s3_.log, (std::vector<std::string>{"COPY site/a.css", "PUT site/a.css"}));
  EXPECT_EQ(done->bytes, 6u);
  EXPECT_EQ(s3_.headers["site/a.css"], ObjectHeaders(f));
}

TEST_F(HeadersOverFakeS3, CopyOfAnArchivedObjectUploadsIt) {
  Write("old.pdf", "%PDF");
  sitemap::HeaderRule glacier = Rule("*", "max-age=60");
  glacier.storage_class = "GLACIER";
  ASSERT_TRUE(Upload(Walked("old.pdf", {glacier})).has_value());
  s3_.log.clear();
  const sitemap::LocalFile standard = Walked("old.pdf", {Rule("*", "max-age=60")});
  auto done = Copy(standard);
  ASSERT_TRUE(done.has_value()) << done.error().message;
  EXPECT_EQ(s3_.log, (std::vector<std::string>{"COPY site/old.pdf", "PUT site/old.pdf"}));
  EXPECT_EQ(s3_.headers["site/old.pdf"], ObjectHeaders(standard));
}

TEST_F(HeadersOverFakeS3, HeadOfAMissingObjectIsNotFound) {
  auto head = Head("site/none");
  ASSERT_FALSE(head.has_value());
  EXPECT_EQ(head.error().code, aws::ErrorCode::kNotFound);
}

// A redirect object (generated: no file, an empty body) differs only in its headers: HEAD finds a changed target.
TEST_F(HeadersOverFakeS3, HeadAndCompareFindsAChangedRedirectTargetAndGoneAndFailedObjects) {
  const auto redirect = [](std::string key, std::string to) {
    sitemap::LocalFile f;
    f.rel_path = std::move(key);
    f.generated = true;
    f.content_type = "text/html";
    sitemap::ExtraHeaders extra;
    extra.website_redirect = std::move(to);
    f.extra = sitemap::InternHeaders(extra);
    return f;
  };
  const sitemap::LocalFile moved = redirect("old/index.html", "/new/");
  const sitemap::LocalFile same = redirect("same/index.html", "/here/");
  const sitemap::LocalFile gone = redirect("gone/index.html", "/x/");
  const sitemap::LocalFile broken = redirect("broken/index.html", "/y/");
  for (const sitemap::LocalFile* f : {&moved, &same, &broken}) {
    s3_.objects["site/" + f->rel_path] = {0, "d41d8cd98f00b204e9800998ecf8427e"};
  }
  s3_.headers["site/old/index.html"] = {{"content-type", "text/html"}, {"x-amz-website-redirect-location", "/newer/"}};
  s3_.headers["site/same/index.html"] = ObjectHeaders(same);
  s3_.headers["site/broken/index.html"] = ObjectHeaders(broken);
  s3_.head_fault = testing::Fault::kFail;
  s3_.head_fail_keys = {"site/broken/index.html"};
  const std::vector<std::pair<const sitemap::LocalFile*, std::string>> checks = {
      {&moved, "site/old/index.html"},
      {&same, "site/same/index.html"},
      {&gone, "site/gone/index.html"},
      {&broken, "site/broken/index.html"}};
  const std::vector<HeadVerdict> verdicts = HeadAndCompare(s3_, endpoint_, "bucket", checks);
  ASSERT_EQ(verdicts.size(), 4u);
  EXPECT_EQ(verdicts[0].kind, HeadVerdict::Kind::kDiffer);
  EXPECT_EQ(verdicts[1].kind, HeadVerdict::Kind::kSame);
  EXPECT_EQ(verdicts[2].kind, HeadVerdict::Kind::kGone);
  EXPECT_EQ(verdicts[3].kind, HeadVerdict::Kind::kFailed);
  EXPECT_NE(verdicts[3].error.find("503 SlowDown"), std::string::npos) << verdicts[3].error;
  EXPECT_EQ(s3_.Count("HEAD "), 4);
  EXPECT_EQ(s3_.Count("COPY "), 0);
}

class ReportsErrors final : public Reporter {
 public:
  void OnWarning(std::string_view) override {}
  void OnPlan(const Plan&, bool) override {}
  void OnUploaded(std::string_view, std::uint64_t, bool, UploadReason) override {}
  void OnDeleted(std::string_view, bool) override {}
  void OnError(std::string_view key, std::string_view message) override {
    errors.push_back(std::string(key) + ": " + std::string(message));
  }
  void OnProgress(std::uint64_t, std::uint64_t) override {}
  std::vector<std::string> errors;
};

// --refresh-headers: the objects a sync leaves unchanged that have no record entry are HEADed, and only those
// whose headers differ from the config's are copied onto themselves (no body sent).
class RefreshHeadersTest : public HeadersOverFakeS3 {
 protected:
  SyncOptions Options(bool refresh) const {
    SyncOptions o;
    o.source = root_;
    o.destination = {"bucket", "site/"};
    o.filters.headers = {Rule("*", "max-age=300"), Rule("*.css", "max-age=31536000")};
    o.refresh_headers = refresh;
    return o;
  }
  SyncResult Sync(const SyncOptions& options) {
    auto r = RunSync(options, {"http://fake", true, "us-east-1"}, s3_, reporter_);
    EXPECT_TRUE(r.has_value()) << r.error().message;
    return r.value_or(SyncResult{});
  }
  void SetUp() override {
    HeadersOverFakeS3::SetUp();
    Write("index.html", "<p>home</p>");
    Write("about.html", "<p>about</p>");
    Write("site.css", "body{}");
    Write("logo.png", "PNG");
  }
  std::string CacheControl(const std::string& key) {
    for (const auto& [name, value] : s3_.headers[key]) {
      if (name == "cache-control") return value;
    }
    return {};
  }
  ReportsErrors reporter_;
};

TEST_F(RefreshHeadersTest, WithoutARecordHeadsTheUnchangedAndCopiesOnlyWhatDiffers) {
  Sync(Options(false));
  // Another tool changed two objects' headers and left their bodies.
  s3_.headers["site/about.html"] = {{"cache-control", "no-store"}, {"content-type", "text/html; charset=utf-8"}};
  s3_.headers["site/site.css"] = {{"cache-control", "max-age=31536000"}, {"content-type", "text/plain"}};
  s3_.log.clear();
  const SyncResult plain = Sync(Options(false));  // size-only, no record: nothing looked at, nothing sent
  EXPECT_EQ(s3_.log, (std::vector<std::string>{"LIST"}));
  EXPECT_EQ(plain.uploaded, 0u);

  s3_.log.clear();
  const SyncResult refreshed = Sync(Options(true));
  EXPECT_EQ(s3_.Count("HEAD "), 4);
  EXPECT_EQ(s3_.Count("PUT "), 0);
  // The asset first, then the page (a page never goes live before its assets).
  std::vector<std::string> copies;
  for (const std::string& line : s3_.log) {
    if (line.starts_with("COPY ")) copies.push_back(line);
  }
  EXPECT_EQ(copies, (std::vector<std::string>{"COPY site/site.css", "COPY site/about.html"}));
  EXPECT_EQ(refreshed.uploaded, 2u);
  EXPECT_EQ(refreshed.headers_updated, 2u);
  EXPECT_EQ(refreshed.unchanged, 2u);
  EXPECT_EQ(refreshed.bytes_uploaded, 0u);
  EXPECT_EQ(refreshed.outcome, Outcome::kOk);
  EXPECT_EQ(CacheControl("site/about.html"), "max-age=300");
  EXPECT_EQ(s3_.headers["site/site.css"],
            (Headers{{"cache-control", "max-age=31536000"}, {"content-type", "text/css; charset=utf-8"}}));

  // Fixed: a second refresh HEADs again (no record) and copies nothing.
  s3_.log.clear();
  const SyncResult again = Sync(Options(true));
  EXPECT_EQ(s3_.Count("HEAD "), 4);
  EXPECT_EQ(s3_.Count("COPY "), 0);
  EXPECT_EQ(again.uploaded, 0u);
}

TEST_F(RefreshHeadersTest, ObjectsWithARecordEntryAreNotHeaded) {
  SyncOptions options = Options(true);
  options.record_file = root_.parent_path() / (root_.filename().string() + "-record.sqlite");
  Sync(options);  // uploads all four: each recorded with its ETag and headers digest
  // One object the record does not know: put there by another tool, with other headers.
  Write("new.txt", "new");
  s3_.objects["site/new.txt"] = {3, "22af645d1859cb5ca6da0c484f1f37ea"};
  s3_.headers["site/new.txt"] = {{"content-type", "text/plain"}};
  s3_.log.clear();
  const SyncResult r = Sync(options);
  EXPECT_EQ(s3_.Count("HEAD "), 1);
  EXPECT_EQ(s3_.Count("HEAD site/new.txt"), 1);
  EXPECT_EQ(s3_.Count("COPY site/new.txt"), 1);  // its cache-control was missing
  EXPECT_EQ(r.headers_updated, 1u);
  EXPECT_EQ(CacheControl("site/new.txt"), "max-age=300");
  std::filesystem::remove(options.record_file);
}

TEST_F(RefreshHeadersTest, AFailedHeadIsAnErrorAndTheRestGoesOn) {
  Sync(Options(false));
  s3_.headers["site/about.html"] = {{"content-type", "text/html; charset=utf-8"}};
  s3_.head_fault = testing::Fault::kFail;
  s3_.head_fail_keys = {"site/logo.png"};
  s3_.log.clear();
  const SyncResult r = Sync(Options(true));
  EXPECT_EQ(r.outcome, Outcome::kFailed);
  EXPECT_EQ(r.failed, 1u);
  EXPECT_EQ(r.failed_keys, (std::vector<std::string>{"logo.png"}));
  ASSERT_EQ(reporter_.errors.size(), 1u);
  EXPECT_NE(reporter_.errors[0].find("logo.png: HeadObject s3://bucket/site/logo.png: 503 SlowDown"),
            std::string::npos)
      << reporter_.errors[0];
  EXPECT_NE(reporter_.errors[0].find("its headers were not checked: run again"), std::string::npos);
  EXPECT_EQ(s3_.Count("COPY site/about.html"), 1);
}

TEST_F(RefreshHeadersTest, DryRunHeadsAndPlansTheCopyWithoutMakingIt) {
  Sync(Options(false));
  s3_.headers["site/about.html"] = {{"content-type", "text/html; charset=utf-8"}};
  s3_.log.clear();
  SyncOptions options = Options(true);
  options.dry_run = true;
  const SyncResult r = Sync(options);
  EXPECT_EQ(s3_.Count("HEAD "), 4);
  EXPECT_EQ(s3_.Count("COPY "), 0);
  EXPECT_EQ(r.uploaded, 1u);
  EXPECT_EQ(r.headers_updated, 1u);
  EXPECT_EQ(r.uploaded_keys, (std::vector<std::string>{"about.html"}));
}

TEST_F(RefreshHeadersTest, AnObjectDeletedSinceTheListingIsUploaded) {
  Sync(Options(false));
  // Listed, then deleted by someone else before its HEAD (404): uploaded, as a new file.
  s3_.list_extra["site/logo.png"] = s3_.objects.at("site/logo.png");
  s3_.objects.erase("site/logo.png");
  s3_.headers.erase("site/logo.png");
  s3_.log.clear();
  const SyncResult r = Sync(Options(true));
  EXPECT_EQ(s3_.Count("HEAD site/logo.png"), 1);
  EXPECT_EQ(s3_.Count("PUT site/logo.png"), 1);
  EXPECT_EQ(r.uploaded, 1u);
  EXPECT_EQ(r.headers_updated, 0u);
  EXPECT_EQ(r.bytes_uploaded, 3u);
  EXPECT_TRUE(s3_.objects.contains("site/logo.png"));
}

}  // namespace
}  // namespace sitesync::sync
