// TEMPORARY (wt-record only): stand-ins for the issue 14 functions other helpers implement (HeadersDigest and
// SubmitCopy: wt-headers; EncodeFile: wt-compress), so that the record's branch links before those land. This
// file is deleted when those branches are merged into wt-record; it must never reach main.
#include <fmt/format.h>

#include "sync/s3_client.h"

namespace sitesync::sync {

std::string HeadersDigest(const sitemap::LocalFile& file) {
  return aws::Sha256Hex(fmt::format("content-type:{}\ncache-control:{}\nencoding:{}\n", file.content_type,
                                    file.cache_control, static_cast<int>(file.encoding)));
}

void SubmitCopy(aws::HttpClient& client, const std::shared_ptr<FollowedEndpoint>& endpoint, UploadSpec spec,
                UploadDone done) {
  aws::HttpRequest r = S3Request(endpoint->endpoint(), spec.bucket, spec.key, "PUT");
  r.headers.emplace_back("x-amz-copy-source", "/" + spec.bucket + "/" + spec.key);
  r.headers.emplace_back("x-amz-metadata-directive", "REPLACE");
  r.headers.emplace_back("content-type", spec.file.content_type.empty() ? "application/octet-stream"
                                                                        : std::string(spec.file.content_type));
  if (!spec.file.cache_control.empty()) r.headers.emplace_back("cache-control", spec.file.cache_control);
  r.what = fmt::format("CopyObject s3://{}/{}", spec.bucket, spec.key);
  SubmitS3(client, endpoint, spec.bucket, spec.key, std::move(r), [done = std::move(done)](aws::Result<aws::HttpResponse> res) {
    if (!res) return done(std::unexpected(res.error()));
    auto doc = aws::ParseXml(res->body);
    std::string etag = doc ? doc->ChildText("ETag") : std::string{};
    if (etag.size() >= 2 && etag.front() == '"') etag = etag.substr(1, etag.size() - 2);
    done(Uploaded{0, etag});
  });
}

aws::Result<EncodedBody> EncodeFile(const sitemap::LocalFile& file) {
  return aws::Fail(aws::ErrorCode::kIo, fmt::format("{}: encoding is not built into this branch", file.rel_path));
}

}  // namespace sitesync::sync
