#include "sync/s3_client.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>

namespace sitesync::sync {
namespace {

TEST(DecodeListedKey, FormEncodingPlusIsSpace) {
  EXPECT_EQ(DecodeListedKey("a+b"), "a b");
  EXPECT_EQ(DecodeListedKey("a%2Bb"), "a+b");
  EXPECT_EQ(DecodeListedKey("100%25"), "100%");
  EXPECT_EQ(DecodeListedKey("%C3%BC%E6%97%A5"), "\xC3\xBC\xE6\x97\xA5");
  EXPECT_EQ(DecodeListedKey("a//b"), "a//b");
  EXPECT_EQ(DecodeListedKey("bad%2"), "bad%2");
  EXPECT_EQ(DecodeListedKey("%23%26%3D~"), "#&=~");
}

TEST(ParseListPage, DecodesKeysAndFollowsToken) {
  const char* page = R"(<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>site%2F</Prefix>
<KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys><EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>
<Contents><Key>site/a+b%2Bc.txt</Key><Size>12</Size><ETag>&quot;abc&quot;</ETag></Contents>
<Contents><Key>site/x%26y</Key><Size>0</Size><ETag>"d-2"</ETag></Contents>
<NextContinuationToken>tok+en/=</NextContinuationToken></ListBucketResult>)";
  std::vector<RemoteObject> out;
  auto token = ParseListPage(page, out);
  ASSERT_TRUE(token.has_value()) << token.error().message;
  EXPECT_EQ(*token, "tok+en/=");
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].key, "site/a b+c.txt");
  EXPECT_EQ(out[0].size, 12u);
  EXPECT_EQ(out[0].etag, "abc");
  EXPECT_EQ(out[1].key, "site/x&y");
  EXPECT_EQ(out[1].etag, "d-2");
}

TEST(ParseListPage, LastPageAndErrors) {
  std::vector<RemoteObject> out;
  auto last = ParseListPage("<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>", out);
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(*last, "");
  EXPECT_FALSE(ParseListPage("<Error><Code>NoSuchBucket</Code></Error>", out).has_value());
  EXPECT_FALSE(ParseListPage("not xml", out).has_value());
  EXPECT_FALSE(ParseListPage("<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>", out).has_value());
}

TEST(ParseListPage, FieldsInAnyOrderPrefixesCdataAndEmptyElements) {
  // EncodingType after the keys, an unknown element with a nested Key, a CDATA key, an empty ETag, folders.
  const char* page = R"(<ListBucketResult><Contents><Owner><ID>x</ID><Key>not-this</Key></Owner><ETag/>
<Size>7</Size><Key><![CDATA[d/a%20b]]></Key><LastModified>2026-01-01T00:00:00.000Z</LastModified></Contents>
<CommonPrefixes><Prefix>d/%C3%BC/</Prefix></CommonPrefixes><CommonPrefixes/><Contents/>
<EncodingType>url</EncodingType><IsTruncated>false</IsTruncated></ListBucketResult>)";
  std::vector<RemoteObject> out;
  std::vector<std::string> prefixes;
  auto token = ParseListPage(page, out, &prefixes);
  ASSERT_TRUE(token.has_value()) << token.error().message;
  EXPECT_EQ(*token, "");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].key, "d/a b");
  EXPECT_EQ(out[0].size, 7u);
  EXPECT_EQ(out[0].etag, "");
  ASSERT_EQ(prefixes.size(), 1u);
  EXPECT_EQ(prefixes[0], "d/\xC3\xBC/");
}

TEST(ParseListPage, BadSizeAndTruncatedXmlFail) {
  std::vector<RemoteObject> out;
  auto bad = ParseListPage("<ListBucketResult><Contents><Key>k</Key><Size>12x</Size></Contents></ListBucketResult>", out);
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message.find("bad Size '12x' for k"), std::string::npos) << bad.error().message;
  EXPECT_FALSE(ParseListPage("<ListBucketResult><Contents><Key>k</Key>", out).has_value());
  EXPECT_FALSE(ParseListPage("", out).has_value());
}

TEST(S3Request, PathAndVirtualHostedAddressing) {
  S3Endpoint path{"http://127.0.0.1:5000", true, "us-east-1"};
  auto r = S3Request(path, "bucket", "a b/c", "PUT");
  EXPECT_EQ(r.endpoint, "http://127.0.0.1:5000");
  EXPECT_EQ(r.path, "/bucket/a b/c");
  auto list = S3Request(path, "bucket", "", "GET");
  EXPECT_EQ(list.path, "/bucket");

  S3Endpoint aws_default{"", false, "eu-west-1"};
  auto v = S3Request(aws_default, "bucket", "k", "GET");
  EXPECT_EQ(v.endpoint, "https://bucket.s3.eu-west-1.amazonaws.com");
  EXPECT_EQ(v.path, "/k");
  auto dotted = S3Request(aws_default, "my.site", "k", "GET");
  EXPECT_EQ(dotted.endpoint, "https://s3.eu-west-1.amazonaws.com");
  EXPECT_EQ(dotted.path, "/my.site/k");
}

TEST(S3Request, EveryPartitionFipsDualStackAndDottedBuckets) {
  struct Case {
    std::string region;
    bool fips;
    bool dualstack;
    std::string bucket;
    std::string endpoint;
    std::string path;
  } cases[] = {
      {"cn-north-1", false, false, "site", "https://site.s3.cn-north-1.amazonaws.com.cn", "/k"},
      {"cn-northwest-1", false, true, "site", "https://site.s3.dualstack.cn-northwest-1.amazonaws.com.cn", "/k"},
      {"cn-north-1", false, false, "my.site", "https://s3.cn-north-1.amazonaws.com.cn", "/my.site/k"},
      {"us-gov-west-1", false, false, "site", "https://site.s3.us-gov-west-1.amazonaws.com", "/k"},
      {"us-gov-east-1", true, false, "site", "https://site.s3-fips.us-gov-east-1.amazonaws.com", "/k"},
      {"us-east-1", true, true, "site", "https://site.s3-fips.dualstack.us-east-1.amazonaws.com", "/k"},
      {"eu-west-1", false, true, "my.site", "https://s3.dualstack.eu-west-1.amazonaws.com", "/my.site/k"},
      {"ap-south-2", true, false, "a.b.c", "https://s3-fips.ap-south-2.amazonaws.com", "/a.b.c/k"},
  };
  for (const auto& c : cases) {
    S3Endpoint e;
    e.region = c.region;
    e.fips = c.fips;
    e.dualstack = c.dualstack;
    auto r = S3Request(e, c.bucket, "k", "GET");
    EXPECT_EQ(r.endpoint, c.endpoint) << c.region << " " << c.bucket;
    EXPECT_EQ(r.path, c.path) << c.region << " " << c.bucket;
  }
  // A configured endpoint is used as it is: FIPS and dual-stack only name the partition's hosts.
  S3Endpoint configured{"https://minio.example.com", false, "cn-north-1"};
  configured.fips = true;
  EXPECT_EQ(S3Request(configured, "site", "k", "GET").endpoint, "https://site.minio.example.com");
  // A dotted bucket over plain HTTP keeps virtual-hosted addressing (no certificate to mismatch).
  S3Endpoint http{"http://s3.local:9000", false, "us-east-1"};
  EXPECT_EQ(S3Request(http, "my.site", "k", "GET").endpoint, "http://my.site.s3.local:9000");
}

TEST(DeleteObjectsXml, EscapesKeys) {
  std::string xml = DeleteObjectsXml({"a&b<c>.txt", "a//b"});
  EXPECT_NE(xml.find("<Key>a&amp;b&lt;c&gt;.txt</Key>"), std::string::npos) << xml;
  EXPECT_NE(xml.find("<Key>a//b</Key>"), std::string::npos);
  EXPECT_NE(xml.find("<Quiet>true</Quiet>"), std::string::npos);
  auto parsed = aws::ParseXml(xml);
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->children.size(), 3u);
}

TEST(ParseDeleteResult, ReportsPerKeyErrors) {
  auto r = ParseDeleteResult(
      "<DeleteResult><Deleted><Key>ok</Key></Deleted><Error><Key>bad</Key><Code>AccessDenied</Code>"
      "<Message>no</Message></Error></DeleteResult>");
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].first, "bad");
  EXPECT_EQ((*r)[0].second, "AccessDenied: no");
}

TEST(LocalEtag, PlainAndMultipartForms) {
  char tmpl[] = "/tmp/sitesync-etag-XXXXXX";
  int fd = mkstemp(tmpl);
  ASSERT_GE(fd, 0);
  close(fd);
  {
    std::ofstream f(tmpl, std::ios::binary);
    std::string chunk(1 << 20, 'x');
    for (int i = 0; i < 12; ++i) f << chunk;
  }
  // The file as a walk of its folder gives it.
  sitemap::LocalFile file;
  file.root = std::make_shared<const std::string>(std::filesystem::canonical("/tmp").string());
  file.rel_path = std::filesystem::path(tmpl).filename().string();
  // md5 of "" and of known content.
  auto empty = Md5FileHex(file, 0, 0);
  ASSERT_TRUE(empty.has_value());
  EXPECT_EQ(*empty, "d41d8cd98f00b204e9800998ecf8427e");
  auto plain = LocalEtag(file, 12 << 20, 16 << 20, 8 << 20);
  ASSERT_TRUE(plain.has_value());
  EXPECT_EQ(plain->size(), 32u);
  auto multi = LocalEtag(file, 12 << 20, 4 << 20, 5 << 20);
  ASSERT_TRUE(multi.has_value());
  EXPECT_TRUE(multi->ends_with("-3")) << *multi;  // 5 MiB parts: 5 + 5 + 2
  sitemap::LocalFile missing = file;
  missing.rel_path = "nonexistent/file";
  EXPECT_FALSE(LocalEtag(missing, 10, 16, 8).has_value());
  std::remove(tmpl);
}

TEST(PartSizeFor, AtLeastFiveMiBAndAtMostTenThousandParts) {
  EXPECT_EQ(PartSizeFor(40ull << 20, 8ull << 20), 8ull << 20);
  EXPECT_EQ(PartSizeFor(40ull << 20, 1ull << 20), 5ull << 20);
  const std::uint64_t huge = 200ull << 30;  // 200 GiB
  EXPECT_LE((huge + PartSizeFor(huge, 8ull << 20) - 1) / PartSizeFor(huge, 8ull << 20), 10000u);
}

}  // namespace
}  // namespace sitesync::sync
