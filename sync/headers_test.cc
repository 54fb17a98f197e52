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
  set(with_kms.headers, "x-amz-server-side-encryption-aws-kms-key-id", "arn:aws:kms:us-east-1:111122223333:key/1234abcd");
  EXPECT_FALSE(HeadersDiffer(with_kms, kms));
  set(with_kms.headers, "x-amz-server-side-encryption-aws-kms-key-id", "arn:aws:kms:us-east-1:111122223333:key/x1234abcd");
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

TEST_F(HeadersOverFakeS3, HeadOfAMissingObjectIsNotFound) {
  auto head = Head("site/none");
  ASSERT_FALSE(head.has_value());
  EXPECT_EQ(head.error().code, aws::ErrorCode::kNotFound);
}

}  // namespace
}  // namespace sitesync::sync
