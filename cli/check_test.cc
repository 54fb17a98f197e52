#include <gtest/gtest.h>

#include "cli/commands.h"

namespace sitesync::cli {
namespace {

aws::Error S3Error(int status, std::string code, std::string message = "", std::string bucket_region = "") {
  aws::Error e{aws::ErrorCode::kHttp, std::move(message), false, status, std::move(code)};
  e.bucket_region = std::move(bucket_region);
  return e;
}

TEST(KeyIdHint, AtMostTheLastFourCharacters) {
  EXPECT_EQ(KeyIdHint("AKIAIOSFODNN7EXAMPLE"), "ending in MPLE");
  EXPECT_EQ(KeyIdHint("ASIA0123456789ABCDEF"), "ending in CDEF");
  EXPECT_EQ(KeyIdHint("short-key"), "") << "a short ID would be half given away";
  EXPECT_EQ(KeyIdHint(""), "");
}

TEST(RedactKeyId, EveryOccurrence) {
  using aws::RedactKeyId;  // the one in aws/, which the transport also uses
  EXPECT_EQ(RedactKeyId("key AKIAIOSFODNN7EXAMPLE and AKIAIOSFODNN7EXAMPLE.", "AKIAIOSFODNN7EXAMPLE"),
            "key ...MPLE and ...MPLE.");
  EXPECT_EQ(RedactKeyId("key abc", "abc"), "key ...");
  EXPECT_EQ(RedactKeyId("nothing here", "AKIAIOSFODNN7EXAMPLE"), "nothing here");
  EXPECT_EQ(RedactKeyId("text", ""), "text");
}

TEST(RegionHint, HeaderBodyAndMessageForms) {
  struct Case {
    aws::Error error;
    std::string region;
  } cases[] = {
      // 301 PermanentRedirect: only the x-amz-bucket-region header names the region.
      {S3Error(301, "PermanentRedirect", "The bucket you are attempting to access must be addressed using the "
                                         "specified endpoint.", "us-west-2"),
       "us-west-2"},
      // 400 AuthorizationHeaderMalformed: the message names it too.
      {S3Error(400, "AuthorizationHeaderMalformed",
               "The authorization header is malformed; the region 'us-east-1' is wrong; expecting 'eu-central-1'"),
       "eu-central-1"},
      {S3Error(400, "IllegalLocationConstraintException",
               "The af-south-1 location constraint is incompatible for the region specific endpoint this request "
               "was sent to."),
       "af-south-1"},
      {S3Error(400, "AuthorizationHeaderMalformed", "expecting 'ap-southeast-2'", "ap-southeast-2"), "ap-southeast-2"},
      {S3Error(404, "NoSuchBucket", "The specified bucket does not exist"), ""},
      {S3Error(301, "PermanentRedirect", "no region anywhere"), ""},
      {S3Error(400, "AuthorizationHeaderMalformed", "expecting 'not a region; rm -rf'"), ""},
      {S3Error(301, "PermanentRedirect", "", "<script>"), ""},
      {S3Error(403, "AccessDenied", "Access Denied", "us-gov-west-1"), "us-gov-west-1"},
  };
  for (const Case& c : cases) EXPECT_EQ(RegionHint(c.error), c.region) << c.error.message;
}

TEST(CredentialsRefused, OnlyForCredentialCodes) {
  EXPECT_TRUE(CredentialsRefused(S3Error(403, "SignatureDoesNotMatch")));
  EXPECT_TRUE(CredentialsRefused(S3Error(403, "InvalidAccessKeyId")));
  EXPECT_TRUE(CredentialsRefused(S3Error(400, "ExpiredToken")));
  EXPECT_FALSE(CredentialsRefused(S3Error(403, "AccessDenied"))) << "valid key, missing permission";
  EXPECT_FALSE(CredentialsRefused(S3Error(404, "NoSuchBucket")));
}

TEST(BucketFailure, EachAnswerHasItsFix) {
  const sync::Destination dest{"my-site", "blog/"};
  const std::string env = "environment";
  const std::string profile = "profile deploy in /home/u/.aws/credentials";
  struct Case {
    aws::Error error;
    std::string where;
    std::string detail_has, fix_has;
  } cases[] = {
      {S3Error(404, "NoSuchBucket", "The specified bucket does not exist"), env, "bucket my-site does not exist",
       "aws s3 mb s3://my-site --region eu-west-1"},
      {S3Error(403, "SignatureDoesNotMatch"), env, "secret access key does not belong to the access key ID ending in",
       "AWS_SECRET_ACCESS_KEY"},
      {S3Error(403, "SignatureDoesNotMatch"), profile, "credentials from profile deploy",
       "aws_secret_access_key of the profile deploy in /home/u/.aws/credentials"},
      {S3Error(403, "InvalidAccessKeyId"), env, "AWS does not know the access key ID ending in", "AWS_ACCESS_KEY_ID"},
      {S3Error(400, "ExpiredToken"), env, "session token", "AWS_SESSION_TOKEN"},
      {S3Error(403, "AccessDenied", "Access Denied"), env, "may not list s3://my-site/blog/",
       "s3:ListBucket on arn:aws:s3:::my-site"},
      {aws::Error{aws::ErrorCode::kNetwork, "ListObjectsV2: Could not connect to server", true, 0, {}}, env,
       "cannot reach S3", "--endpoint"},
      {S3Error(500, "InternalError", "ListObjectsV2 s3://my-site/blog/: 500 InternalError"), env, "500 InternalError",
       "-v"},
  };
  for (const Case& c : cases) {
    const CheckLine line = BucketFailure(c.error, dest, "eu-west-1", c.where, "ending in MPLE");
    EXPECT_EQ(line.name, "bucket");
    EXPECT_EQ(line.status, CheckLine::Status::kFail);
    EXPECT_NE(line.detail.find(c.detail_has), std::string::npos) << line.detail;
    EXPECT_NE(line.fix.find(c.fix_has), std::string::npos) << c.error.service_code << ": " << line.fix;
  }
}

}  // namespace
}  // namespace sitesync::cli
