// Tables of tricky inputs for SigV4 encoding and canonicalization, the AWS S3 documentation's known-answer
// examples, and the hashes the signer and the uploader rely on.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include <zlib.h>
#include "aws/aws.h"

namespace sitesync::aws {
namespace {

using Query = std::vector<std::pair<std::string, std::string>>;

constexpr std::string_view kEmptySha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

std::span<const unsigned char> Bytes(std::string_view s) {
  return {reinterpret_cast<const unsigned char*>(s.data()), s.size()};
}

/// Percent-decoding for round-trip checks; nullopt on a malformed escape.
std::optional<std::string> PercentDecode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    auto hex = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;  // Lowercase hex is not what SigV4 produces: treat it as malformed.
    };
    const int hi = hex(s[i + 1]);
    const int lo = hex(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// UriEncode
// ---------------------------------------------------------------------------------------------------------------

struct EncodeCase {
  std::string input;
  std::string keep_slash;  ///< Expected with keep_slash = true.
  std::string no_slash;    ///< Expected with keep_slash = false.
};

TEST(UriEncode, TrickyInputs) {
  const std::vector<EncodeCase> cases = {
      {"", "", ""},
      {"abc", "abc", "abc"},
      {"A-Z_a-z.0-9~", "A-Z_a-z.0-9~", "A-Z_a-z.0-9~"},
      {"a b", "a%20b", "a%20b"},
      {"a+b", "a%2Bb", "a%2Bb"},                   // '+' is not a space in SigV4, and is encoded.
      {"100%", "100%25", "100%25"},                // A literal percent sign.
      {"%20", "%2520", "%2520"},                   // Input is decoded: "%20" is three characters.
      {"\xE1\x88\xB4", "%E1%88%B4", "%E1%88%B4"},  // U+1234, byte by byte, uppercase hex.
      {"caf\xC3\xA9", "caf%C3%A9", "caf%C3%A9"},
      {"a/b", "a/b", "a%2Fb"},
      {"//", "//", "%2F%2F"},
      {"~user", "~user", "~user"},  // '~' is unreserved (RFC 3986), unlike in old encoders.
      {"a*b", "a%2Ab", "a%2Ab"},    // '*' is encoded (Java's URLEncoder leaves it).
      {"a=b", "a%3Db", "a%3Db"},
      {"a&b", "a%26b", "a%26b"},
      {"a#b", "a%23b", "a%23b"},
      {"a?b", "a%3Fb", "a%3Fb"},
      {"$", "%24", "%24"},
      {":@!'(),;[]", "%3A%40%21%27%28%29%2C%3B%5B%5D", "%3A%40%21%27%28%29%2C%3B%5B%5D"},
      {std::string("\0\x7f\xff", 3), "%00%7F%FF", "%00%7F%FF"},
      {"\t\n", "%09%0A", "%09%0A"},
  };
  for (const EncodeCase& c : cases) {
    EXPECT_EQ(UriEncode(c.input, true), c.keep_slash) << "input: " << c.input;
    EXPECT_EQ(UriEncode(c.input, false), c.no_slash) << "input: " << c.input;
  }
}

TEST(UriEncode, EveryByteIsKeptIffUnreservedElseUppercaseHex) {
  const std::string unreserved = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~";
  for (int b = 0; b < 256; ++b) {
    const std::string in(1, static_cast<char>(b));
    const std::string out = UriEncode(in, false);
    if (unreserved.find(static_cast<char>(b)) != std::string::npos) {
      EXPECT_EQ(out, in) << "byte " << b;
    } else {
      char expected[4];
      std::snprintf(expected, sizeof expected, "%%%02X", b);
      EXPECT_EQ(out, expected) << "byte " << b;
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// CanonicalUri
// ---------------------------------------------------------------------------------------------------------------

struct UriCase {
  std::string path;
  std::string generic;
  std::string s3;
};

TEST(CanonicalUri, TrickyPaths) {
  const std::vector<UriCase> cases = {
      {"", "/", "/"},
      {"/", "/", "/"},
      {"/index.html", "/index.html", "/index.html"},
      {"/blog/", "/blog/", "/blog/"},
      {"/my bucket/a+b/\xE1\x88\xB4.txt", "/my%20bucket/a%2Bb/%E1%88%B4.txt", "/my%20bucket/a%2Bb/%E1%88%B4.txt"},
      {"/100%.html", "/100%25.html", "/100%25.html"},
      {"/%20", "/%2520", "/%2520"},  // Decoded input: the '%' is literal, encoded once.
      {"/a~b*c=d&e#f?g", "/a~b%2Ac%3Dd%26e%23f%3Fg", "/a~b%2Ac%3Dd%26e%23f%3Fg"},
      {"/test$file.text", "/test%24file.text", "/test%24file.text"},
      // Where S3 differs: no collapsing of "//", no removal of "." and ".." (S3 keys may hold them).
      {"//", "/", "//"},
      {"/a//b", "/a/b", "/a//b"},
      {"/my-object//example//photo.user", "/my-object/example/photo.user", "/my-object//example//photo.user"},
      {"/a/./b", "/a/b", "/a/./b"},
      {"/a/../b", "/b", "/a/../b"},
      {"/a/b/..", "/a/", "/a/b/.."},
      {"/a/b/.", "/a/b/", "/a/b/."},
      {"/..", "/", "/.."},
      {"/../a", "/a", "/../a"},
      {"/./", "/", "/./"},
      // Not dot segments.
      {"/...", "/...", "/..."},
      {"/.hidden/..x", "/.hidden/..x", "/.hidden/..x"},
      // No leading slash: the canonical URI is still absolute.
      {"key", "/key", "/key"},
  };
  for (const UriCase& c : cases) {
    EXPECT_EQ(CanonicalUri(c.path, SigningMode::kGeneric), c.generic) << "path: " << c.path;
    EXPECT_EQ(CanonicalUri(c.path, SigningMode::kS3), c.s3) << "path: " << c.path;
  }
}

TEST(CanonicalUri, S3EncodesOnceSoDecodingGivesTheKeyBack) {
  const std::vector<std::string> keys = {
      "/a b/c+d/e%f", "/%25/%2F/%20", "//double//slashes//", "/../up/./here/..", "/\xE1\x88\xB4/\xF0\x9F\x98\x80",
      "/~*=&#?$:@",   "/index.html",
  };
  for (const std::string& key : keys) {
    const std::string uri = CanonicalUri(key, SigningMode::kS3);
    EXPECT_EQ(PercentDecode(uri), key) << "uri: " << uri;
    // Encoding is not idempotent: encoding the result again would change every '%', so a second pass
    // would show up as "%25" wherever the first pass wrote an escape.
    if (key.find('%') == std::string::npos) {
      EXPECT_EQ(uri.find("%25"), std::string::npos) << uri;
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// CanonicalQuery
// ---------------------------------------------------------------------------------------------------------------

struct QueryCase {
  Query query;
  std::string expected;
};

TEST(CanonicalQuery, TrickyParameters) {
  const std::vector<QueryCase> cases = {
      {{}, ""},
      {{{"a", "1"}}, "a=1"},
      {{{"b", "2"}, {"a", "1"}}, "a=1&b=2"},
      {{{"a", "2"}, {"a", "1"}}, "a=1&a=2"},
      {{{"Param1", "value2"}, {"Param1", "Value1"}}, "Param1=Value1&Param1=value2"},  // Byte order: 'V' < 'v'.
      {{{"uploads", ""}}, "uploads="},
      {{{"lifecycle", ""}, {"max-keys", "2"}}, "lifecycle=&max-keys=2"},
      {{{"prefix", "a b+c/d"}}, "prefix=a%20b%2Bc%2Fd"},
      {{{"list-type", "2"}, {"continuation-token", "1/abc+=="}, {"encoding-type", "url"}},
       "continuation-token=1%2Fabc%2B%3D%3D&encoding-type=url&list-type=2"},
      {{{"\xE1\x88\xB4", "bar"}}, "%E1%88%B4=bar"},
      {{{"a=b", "c&d#e"}}, "a%3Db=c%26d%23e"},
      // Sorted by the ENCODED names: '%' (0x25) < '.' (0x2E) < '~' (0x7E).
      {{{"a~", "1"}, {"a.", "1"}, {"a*", "1"}}, "a%2A=1&a.=1&a~=1"},
  };
  for (const QueryCase& c : cases) EXPECT_EQ(CanonicalQuery(c.query), c.expected);
}

// ---------------------------------------------------------------------------------------------------------------
// CanonicalRequest
// ---------------------------------------------------------------------------------------------------------------

TEST(CanonicalRequest, HeadersAreLoweredTrimmedFoldedJoinedAndSorted) {
  SignableRequest r;
  r.method = "PUT";
  r.path = "/blog/my post.html";
  r.query = {{"x-id", "PutObject"}};
  r.headers = {{"X-Amz-Date", "20150830T123600Z"},
               {"Host", "bucket.s3.amazonaws.com"},
               {"X-Amz-Meta-Note", "  two   spaces\tand tab  "},
               {"x-amz-meta-dup", "b"},
               {"X-AMZ-META-DUP", "a"},
               {"Content-Type", "text/html; charset=utf-8"}};
  r.payload_hash = std::string(kEmptySha256);
  EXPECT_EQ(CanonicalRequest(r, SigningMode::kS3),
            "PUT\n"
            "/blog/my%20post.html\n"
            "x-id=PutObject\n"
            "content-type:text/html; charset=utf-8\n"
            "host:bucket.s3.amazonaws.com\n"
            "x-amz-date:20150830T123600Z\n"
            "x-amz-meta-dup:b,a\n"
            "x-amz-meta-note:two spaces and tab\n"
            "\n"
            "content-type;host;x-amz-date;x-amz-meta-dup;x-amz-meta-note\n" +
                std::string(kEmptySha256));
}

TEST(CanonicalRequest, AuthorizationHeaderIsNeverSigned) {
  SignableRequest r;
  r.method = "GET";
  r.path = "/";
  r.headers = {{"Host", "h"}, {"X-Amz-Date", "20150830T123600Z"}, {"Authorization", "AWS4-HMAC-SHA256 old"}};
  r.payload_hash = "UNSIGNED-PAYLOAD";
  const std::string creq = CanonicalRequest(r, SigningMode::kGeneric);
  EXPECT_EQ(creq.find("authorization"), std::string::npos) << creq;
  EXPECT_TRUE(creq.ends_with("\nhost;x-amz-date\nUNSIGNED-PAYLOAD")) << creq;
}

// ---------------------------------------------------------------------------------------------------------------
// Known answers from the Amazon S3 API Reference, "Examples: Signature Calculations in AWS Signature Version 4"
// (authenticating requests with the Authorization header).
// ---------------------------------------------------------------------------------------------------------------

constexpr std::string_view kDocAccessKey = "AKIAIOSFODNN7EXAMPLE";
constexpr std::string_view kDocSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
constexpr std::string_view kDocDate = "20130524T000000Z";

Credentials DocCredentials() {
  Credentials c;
  c.access_key_id = kDocAccessKey;
  c.secret_access_key = kDocSecret;
  return c;
}

TEST(SigV4KnownAnswer, S3GetObjectWithRange) {
  SignableRequest r;
  r.method = "GET";
  r.path = "/test.txt";
  r.headers = {{"Host", "examplebucket.s3.amazonaws.com"},
               {"Range", "bytes=0-9"},
               {"x-amz-content-sha256", std::string(kEmptySha256)},
               {"x-amz-date", std::string(kDocDate)}};
  r.payload_hash = std::string(kEmptySha256);

  const std::string creq = CanonicalRequest(r, SigningMode::kS3);
  EXPECT_EQ(creq,
            "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
            "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
            "x-amz-date:20130524T000000Z\n\nhost;range;x-amz-content-sha256;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  const std::string scope = CredentialScope(kDocDate, "us-east-1", "s3");
  EXPECT_EQ(scope, "20130524/us-east-1/s3/aws4_request");
  const std::string sts = StringToSign(kDocDate, scope, creq);
  EXPECT_EQ(sts,
            "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
            "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
  EXPECT_EQ(Signature(kDocSecret, kDocDate, "us-east-1", "s3", sts),
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  EXPECT_EQ(Authorization(r, SigningMode::kS3, DocCredentials(), kDocDate, "us-east-1", "s3"),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

TEST(SigV4KnownAnswer, S3PutObjectWithDollarInKeyAndStorageClass) {
  const std::string body = "Welcome to Amazon S3.";
  SignableRequest r;
  r.method = "PUT";
  r.path = "/test$file.text";
  r.payload_hash = Sha256Hex(body);
  ASSERT_EQ(r.payload_hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  r.headers = {{"Host", "examplebucket.s3.amazonaws.com"},
               {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
               {"x-amz-date", std::string(kDocDate)},
               {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
               {"x-amz-content-sha256", r.payload_hash}};
  EXPECT_EQ(CanonicalUri(r.path, SigningMode::kS3), "/test%24file.text");
  EXPECT_EQ(Authorization(r, SigningMode::kS3, DocCredentials(), kDocDate, "us-east-1", "s3"),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class, "
            "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

TEST(SigV4KnownAnswer, S3GetBucketLifecycleEmptyQueryValue) {
  SignableRequest r;
  r.method = "GET";
  r.path = "/";
  r.query = {{"lifecycle", ""}};
  r.payload_hash = std::string(kEmptySha256);
  r.headers = {{"Host", "examplebucket.s3.amazonaws.com"},
               {"x-amz-date", std::string(kDocDate)},
               {"x-amz-content-sha256", r.payload_hash}};
  EXPECT_EQ(Authorization(r, SigningMode::kS3, DocCredentials(), kDocDate, "us-east-1", "s3"),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            "SignedHeaders=host;x-amz-content-sha256;x-amz-date, "
            "Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}

TEST(SigV4KnownAnswer, S3ListObjectsQueryOrder) {
  SignableRequest r;
  r.method = "GET";
  r.path = "/";
  r.query = {{"prefix", "J"}, {"max-keys", "2"}};  // Given out of order: the signer sorts.
  r.payload_hash = std::string(kEmptySha256);
  r.headers = {{"Host", "examplebucket.s3.amazonaws.com"},
               {"x-amz-date", std::string(kDocDate)},
               {"x-amz-content-sha256", r.payload_hash}};
  EXPECT_EQ(CanonicalQuery(r.query), "max-keys=2&prefix=J");
  EXPECT_EQ(Authorization(r, SigningMode::kS3, DocCredentials(), kDocDate, "us-east-1", "s3"),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            "SignedHeaders=host;x-amz-content-sha256;x-amz-date, "
            "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

TEST(SigV4, SessionTokenIsSignedOnlyWhenInTheHeaders) {
  // The signer signs the headers it is given; adding X-Amz-Security-Token is the caller's job (the suite's
  // post-sts-header-after case adds it after signing).
  SignableRequest r;
  r.method = "GET";
  r.path = "/";
  r.payload_hash = std::string(kEmptySha256);
  r.headers = {{"Host", "h"}, {"X-Amz-Date", std::string(kDocDate)}};
  Credentials with_token = DocCredentials();
  with_token.session_token = "TOKEN";
  const std::string without = Authorization(r, SigningMode::kS3, with_token, kDocDate, "us-east-1", "s3");
  EXPECT_NE(without.find("SignedHeaders=host;x-amz-date,"), std::string::npos) << without;
  r.headers.emplace_back("X-Amz-Security-Token", "TOKEN");
  const std::string with = Authorization(r, SigningMode::kS3, with_token, kDocDate, "us-east-1", "s3");
  EXPECT_NE(with.find("SignedHeaders=host;x-amz-date;x-amz-security-token,"), std::string::npos) << with;
}

TEST(SigV4, AuthorizationNeverContainsTheSecret) {
  SignableRequest r;
  r.method = "GET";
  r.path = "/";
  r.payload_hash = std::string(kEmptySha256);
  r.headers = {{"Host", "h"}, {"X-Amz-Date", std::string(kDocDate)}};
  const std::string authz = Authorization(r, SigningMode::kS3, DocCredentials(), kDocDate, "us-east-1", "s3");
  EXPECT_EQ(authz.find(kDocSecret), std::string::npos);
  EXPECT_NE(authz.find(kDocAccessKey), std::string::npos);
}

// ---------------------------------------------------------------------------------------------------------------
// AmzDate
// ---------------------------------------------------------------------------------------------------------------

TEST(AmzDate, FormatsUtcSecondsAndDropsFractions) {
  using namespace std::chrono;
  const sys_days day = year{2015} / August / 30;
  EXPECT_EQ(AmzDate(day + 12h + 36min), "20150830T123600Z");
  EXPECT_EQ(AmzDate(day + 12h + 36min + 999ms), "20150830T123600Z");
  EXPECT_EQ(AmzDate(sys_days{year{2013} / May / 24}), "20130524T000000Z");
  EXPECT_EQ(AmzDate(sys_days{year{1999} / December / 31} + 23h + 59min + 59s), "19991231T235959Z");
  EXPECT_EQ(AmzDate(sys_days{year{2024} / February / 29} + 1s), "20240229T000001Z");
  EXPECT_EQ(AmzDate(system_clock::time_point{}), "19700101T000000Z");
}

// ---------------------------------------------------------------------------------------------------------------
// Hashes
// ---------------------------------------------------------------------------------------------------------------

TEST(Hash, HexAndBase64) {
  EXPECT_EQ(HexEncode({}), "");
  const unsigned char bytes[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xff};
  EXPECT_EQ(HexEncode(bytes), "00017f80abff");
  EXPECT_EQ(Base64Encode({}), "");
  EXPECT_EQ(Base64Encode(Bytes("f")), "Zg==");
  EXPECT_EQ(Base64Encode(Bytes("fo")), "Zm8=");
  EXPECT_EQ(Base64Encode(Bytes("foo")), "Zm9v");
  EXPECT_EQ(Base64Encode(Bytes("foobar")), "Zm9vYmFy");
  EXPECT_EQ(Base64Encode(bytes), "AAF/gKv/");
}

TEST(Hash, Base64OfLargeInputHasNoLineBreaks) {
  // EVP_EncodeUpdate would insert newlines every 64 characters; Content-MD5 and the like must not have any.
  const std::string big(10 * 1024 * 1024, 'x');  // Not a multiple of 3: one byte left, so "==" padding.
  const std::string encoded = Base64Encode(Bytes(big));
  EXPECT_EQ(encoded.size(), 4 * ((big.size() + 2) / 3));
  EXPECT_EQ(encoded.find('\n'), std::string::npos);
  EXPECT_TRUE(encoded.starts_with("eHh4"));
  EXPECT_TRUE(encoded.ends_with("eA=="));
}

TEST(Hash, Sha256KnownAnswers) {
  EXPECT_EQ(Sha256Hex(""), kEmptySha256);
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex("Param1=value1"), "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e");
}

TEST(Hash, HmacSha256Rfc4231) {
  // RFC 4231 test case 2.
  const auto mac = HmacSha256(Bytes("Jefe"), "what do ya want for nothing?");
  EXPECT_EQ(HexEncode(mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  // RFC 4231 test case 1: a 20-byte key of 0x0b.
  const std::vector<unsigned char> key(20, 0x0b);
  EXPECT_EQ(HexEncode(HmacSha256(key, "Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  // An empty key is valid HMAC.
  EXPECT_EQ(HexEncode(HmacSha256({}, "")), "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
  // RFC 4231 test case 6: a 131-byte key, longer than SHA-256's block, is hashed first.
  const std::vector<unsigned char> long_key(131, 0xaa);
  const std::string case6 = "Test Using Larger Than Block-Size Key - Hash Key First";
  EXPECT_EQ(HexEncode(HmacSha256(long_key, case6)),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  // The context is reused: nothing of one key or message is left in the next (short key after long, and back).
  EXPECT_EQ(HexEncode(HmacSha256(key, "Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  EXPECT_EQ(HexEncode(HmacSha256(long_key, case6)),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST(Hash, Md5KnownAnswersAsS3ContentMd5) {
  Md5 empty;
  const auto d0 = empty.Final();
  EXPECT_EQ(HexEncode(d0), "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(Base64Encode(d0), "1B2M2Y8AsgTpgAmY7PhCfg==");  // Content-MD5 of an empty object.

  Md5 welcome;
  const std::string body = "Welcome to Amazon S3.";
  welcome.Update(body.data(), body.size());
  EXPECT_EQ(Base64Encode(welcome.Final()), "1EfQ6PKJ8WoS/2AnznfCWA==");

  Md5 abc;
  abc.Update("abc", 3);
  EXPECT_EQ(HexEncode(abc.Final()), "900150983cd24fb0d6963f7d28e17f72");
}

TEST(Hash, Md5IncrementalEqualsOneShotForEverySplit) {
  std::string data;
  for (int i = 0; i < 1000; ++i) data.push_back(static_cast<char>((i * 131 + 7) & 0xff));
  Md5 one_shot;
  one_shot.Update(data.data(), data.size());
  const auto expected = one_shot.Final();
  for (std::size_t chunk : {1u, 3u, 63u, 64u, 65u, 999u}) {
    Md5 incremental;
    for (std::size_t at = 0; at < data.size(); at += chunk) {
      incremental.Update(data.data() + at, std::min(chunk, data.size() - at));
    }
    incremental.Update(nullptr, 0);  // A zero-length update is allowed and changes nothing.
    EXPECT_EQ(incremental.Final(), expected) << "chunk " << chunk;
  }
}

TEST(Hash, Md5FinalIsStable) {
  Md5 md5;
  md5.Update("abc", 3);
  const auto first = md5.Final();
  md5.Update("more", 4);  // Ignored after Final().
  EXPECT_EQ(md5.Final(), first);
}

TEST(Hash, Crc32KnownAnswersAsS3ChecksumHeader) {
  Crc32 empty;
  EXPECT_EQ(empty.value(), 0u);
  EXPECT_EQ(empty.Base64(), "AAAAAA==");  // x-amz-checksum-crc32 of an empty object

  Crc32 check;  // the CRC-32/ISO-HDLC check value
  check.Update("123456789", 9);
  EXPECT_EQ(check.value(), 0xCBF43926u);
  EXPECT_EQ(check.Base64(), "y/Q5Jg==");  // big-endian bytes, base64

  // Fed in pieces of every split, the same value.
  const std::string body = "Welcome to Amazon S3.";
  Crc32 whole;
  whole.Update(body.data(), body.size());
  EXPECT_EQ(whole.Base64(), "Ox7nCg==");
  for (std::size_t split = 0; split <= body.size(); ++split) {
    Crc32 parts;
    parts.Update(body.data(), split);
    parts.Update(body.data() + split, body.size() - split);
    EXPECT_EQ(parts.value(), whole.value()) << split;
  }
}

// libdeflate folds 64-byte and larger blocks with carry-less multiplies and takes the rest byte-wise: bodies of
// every size around those boundaries, whole and in unaligned pieces, against zlib's table-driven CRC-32.
TEST(Hash, Crc32MatchesZlibOnLargeAndUnalignedBodies) {
  std::vector<unsigned char> body(3 * 1024 * 1024 + 17);
  std::uint32_t state = 12345;
  for (auto& byte : body) {
    state = state * 1103515245u + 12345u;
    byte = static_cast<unsigned char>(state >> 24);
  }
  for (const std::size_t size : {std::size_t{1}, std::size_t{15}, std::size_t{63}, std::size_t{64}, std::size_t{65},
                                 std::size_t{255}, std::size_t{4096}, std::size_t{65537}, body.size()}) {
    for (const std::size_t start : {std::size_t{0}, std::size_t{1}, std::size_t{7}}) {
      const std::size_t n = std::min(size, body.size() - start);
      const auto expected = static_cast<std::uint32_t>(::crc32_z(0, body.data() + start, n));
      Crc32 whole;
      whole.Update(body.data() + start, n);
      EXPECT_EQ(whole.value(), expected) << size << " from " << start;
      Crc32 parts;  // as a file is read: uneven pieces
      for (std::size_t at = 0, piece = 1; at < n; at += piece, piece = piece * 3 + 1) {
        parts.Update(body.data() + start + at, std::min(piece, n - at));
      }
      EXPECT_EQ(parts.value(), expected) << size << " from " << start << " in pieces";
    }
  }
}

}  // namespace
}  // namespace sitesync::aws
