// A fake S3 for sync/'s unit tests (session_test.cc, safety_test.cc): enough of S3 for a sync, in memory, that
// records every request and can fail or lose answers on demand. Test-only; private to sync/.
#pragma once

#include <gtest/gtest.h>

#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "aws/aws.h"

namespace sitesync::sync::testing {

// How the fake answers one request.
enum class Fault {
  kNone,
  kFail,        ///< Refused after the client's retries (503 SlowDown); nothing stored.
  kLost,        ///< Done, then the answer lost on every retry (kNetwork, no HTTP status).
  kLostRetry,   ///< Complete only: done, the answer lost, and the client's retry answered NoSuchUpload.
  kError200,    ///< Complete only: 200 with an <Error> body; nothing done.
  kWrongSize,   ///< HEAD only: the object there is of another size.
};

// How the fake answers a request signed for another region than the bucket's, as S3 does.
enum class RegionAnswer {
  kPermanentRedirect,             ///< 301 PermanentRedirect with x-amz-bucket-region.
  kAuthorizationHeaderMalformed,  ///< 400 AuthorizationHeaderMalformed with <Region> in the body.
  kMalformedMessageOnly,          ///< 400 AuthorizationHeaderMalformed naming the region in its message only.
};

// What the fake does with the checksums of a PutObject or UploadPart body.
enum class Checksums {
  kAws,  ///< Checks Content-MD5 and x-amz-checksum-crc32 over the body received (400 BadDigest); echoes the CRC-32.
  kRgw,  ///< Checks Content-MD5 (400 BadDigest); takes x-amz-checksum-crc32 unread and does not echo it (RGW 16.2).
  kNone, ///< Checks neither and echoes nothing: stores whatever arrives (no real S3 server; the last line of defence).
};

// Enough of S3 for a sync: ListObjectsV2 (one page), PutObject, multipart, CopyObject onto itself ("COPY KEY"),
// HEAD, DeleteObjects. Records every request in order ("PUT site/a.css", "DELETE site/x" per key of a
// DeleteObjects, "COMPLETE site/big.bin", ...).
// Path-style requests ("/bucket/KEY") and virtual-hosted ones ("/KEY") are both understood.
class FakeS3 final : public aws::HttpClient {
 public:
  std::map<std::string, std::pair<std::uint64_t, std::string>> objects;  // key -> (size, etag)
  std::vector<std::string> log;
  Checksums checksums = Checksums::kAws;
  /// key -> how many of its next PutObject / UploadPart bodies arrive with one byte flipped (in transit).
  std::map<std::string, int> corrupt_bodies;
  /// Per PutObject, in order: "crc32+md5 KEY", "crc32 KEY", "md5 KEY" or "none KEY" (the checksum headers it
  /// carried).
  std::vector<std::string> sent_checksums;
  /// key -> the headers of its last PutObject (lowercase names, as sent).
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> put_headers;
  std::map<std::string, Fault> put_faults;       // by key
  std::vector<Fault> complete_faults;            // one per Complete request, in order; then kNone
  Fault head_fault = Fault::kNone;
  /// Listed as well as `objects` though not there (a listing that went stale: deleted since).
  std::map<std::string, std::pair<std::uint64_t, std::string>> list_extra;
  std::set<std::string> head_fail_keys;  ///< With head_fault kFail: the keys whose HEAD fails (503 after retries).
  Fault delete_fault = Fault::kNone;
  // "The bucket lives in region X": a request signed for another region is refused as `region_answer` says and
  // logged "WRONG-REGION METHOD KEY"; nothing is done for it. Empty: any region is accepted.
  std::string bucket_region;
  RegionAnswer region_answer = RegionAnswer::kPermanentRedirect;
  bool region_checks_listing = true;  ///< false: ListObjectsV2 passes whatever its region (the PUTs meet it first).
  bool redirect_always = false;       ///< Every request is redirected, whatever its region (an endpoint of another).
  std::vector<std::string> regions;    ///< The signing region of every request, in order.
  std::vector<std::string> endpoints;  ///< The endpoint of every request, in order.
  /// key -> LastModified as the listing shows it ("2026-01-02T03:04:05.000Z"); absent: not listed.
  std::map<std::string, std::string> last_modified;
  /// Stands in for a bucket that encrypts with SSE-KMS by default: a stored object's ETag is not the MD5 of its
  /// body (PutObject and CopyObject), and PutObject answers say x-amz-server-side-encryption: aws:kms, as S3's do.
  /// A PutObject that asks for aws:kms or aws:kms:dsse itself is stored and answered so whatever this says.
  bool kms_etags = false;
  /// Every PutObject answer names SSE-S3 (x-amz-server-side-encryption: AES256), as S3's do since buckets
  /// encrypt by default; the ETag stays the body's MD5.
  bool sse_s3_answers = false;
  /// key -> the object headers it was stored with (content-*, cache-control, x-amz-meta-*, x-amz-acl,
  /// x-amz-storage-class, x-amz-server-side-encryption*, x-amz-website-redirect-location), by PutObject,
  /// CreateMultipartUpload or a CopyObject with REPLACE; HEAD shows them (not x-amz-acl; no STANDARD class).
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> headers;
  /// key -> how many of its next CopyObject requests answer 200 with an <Error> body (nothing done).
  std::map<std::string, int> copy_errors_200;

  void Submit(aws::HttpRequest request, Callback done) override { queue_.emplace_back(std::move(request), std::move(done)); }
  void Run() override {
    while (!queue_.empty()) {
      auto [r, done] = std::move(queue_.front());
      queue_.erase(queue_.begin());
      if (r.prepare) {
        if (auto ok = r.prepare(r); !ok) {
          done(std::unexpected(ok.error()));
          continue;
        }
      }
      done(Handle(r));
    }
  }
  aws::ClientStats Stats() const override { return {}; }

  int Count(std::string_view prefix) const {
    return static_cast<int>(std::count_if(log.begin(), log.end(), [&](const std::string& l) { return l.starts_with(prefix); }));
  }

 private:
  static aws::Result<aws::HttpResponse> Lost(const aws::HttpRequest& r) {
    return std::unexpected(aws::Error{aws::ErrorCode::kNetwork,
                                      r.what + ": Connection closed (gave up after 5 attempts)", true, 0, {}});
  }
  static aws::Result<aws::HttpResponse> Failed(const aws::HttpRequest& r) {
    return std::unexpected(aws::Error{aws::ErrorCode::kHttp, r.what + ": 503 SlowDown (gave up after 5 attempts)",
                                      true, 503, "SlowDown"});
  }
  static std::string Query(const aws::HttpRequest& r, std::string_view name) {
    for (const auto& [k, v] : r.query) {
      if (k == name) return v;
    }
    return "\x01";  // absent
  }
  static std::string Body(const aws::HttpRequest& r) {
    if (r.body.kind != aws::Body::Kind::kFile) return r.body.bytes;
    // Read from the descriptor sync/ opened (beneath SOURCE), as the transport does.
    std::string body(static_cast<std::size_t>(r.body.length), '\0');
    const ssize_t n = ::pread(r.body.file->get(), body.data(), body.size(), static_cast<off_t>(r.body.offset));
    body.resize(n < 0 ? 0 : static_cast<std::size_t>(n));
    return body;
  }
  static std::string Md5Hex(std::string_view data) {
    aws::Md5 md5;
    md5.Update(data.data(), data.size());
    return aws::HexEncode(md5.Final());
  }
  static std::string Header(const aws::HttpRequest& r, std::string_view name) {
    for (const auto& [k, v] : r.headers) {
      if (k == name) return v;
    }
    return {};
  }
  // The headers of `r` that S3 stores with the object, sorted.
  static std::vector<std::pair<std::string, std::string>> ObjectHeadersOf(const aws::HttpRequest& r) {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& [k, v] : r.headers) {
      const bool stored = k == "content-type" || k == "cache-control" || k == "content-encoding" ||
                          k == "content-disposition" || k == "content-language" || k.starts_with("x-amz-meta-") ||
                          k == "x-amz-acl" || k == "x-amz-storage-class" ||
                          k.starts_with("x-amz-server-side-encryption") || k == "x-amz-website-redirect-location";
      if (stored) out.emplace_back(k, v);
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  // The body as it arrived: one byte flipped when `key` has a corruption pending.
  std::string Received(const aws::HttpRequest& r, const std::string& key) {
    std::string body = Body(r);
    if (auto it = corrupt_bodies.find(key); it != corrupt_bodies.end() && it->second > 0 && !body.empty()) {
      --it->second;
      body[body.size() / 2] = static_cast<char>(body[body.size() / 2] ^ 0x20);
    }
    return body;
  }

  // 400 BadDigest when a checksum the server checks does not match `body`; else the CRC-32 to echo (kAws), if any.
  aws::Result<std::string> CheckDigests(const aws::HttpRequest& r, const std::string& body) const {
    const auto bad = [&] {
      return std::unexpected(aws::Error{aws::ErrorCode::kHttp, r.what + ": 400 BadDigest", false, 400, "BadDigest"});
    };
    if (checksums == Checksums::kNone) return std::string{};
    if (const std::string md5 = Header(r, "content-md5"); !md5.empty()) {
      aws::Md5 h;
      h.Update(body.data(), body.size());
      if (aws::Base64Encode(h.Final()) != md5) return bad();
    }
    const std::string crc = Header(r, "x-amz-checksum-crc32");
    if (crc.empty() || checksums == Checksums::kRgw) return std::string{};
    aws::Crc32 h;
    h.Update(body.data(), body.size());
    if (h.Base64() != crc) return bad();
    return crc;
  }

  // As aws/curl_transport.cc reports S3's answer to a request for a bucket of another region.
  aws::Result<aws::HttpResponse> WrongRegion(const aws::HttpRequest& r, const std::string& key) {
    log.push_back("WRONG-REGION " + r.method + " " + key);
    aws::Error e{aws::ErrorCode::kHttp, "", false, 400, "AuthorizationHeaderMalformed"};
    const std::string expecting = fmt::format("the region '{}' is wrong; expecting '{}'", r.region, bucket_region);
    if (region_answer == RegionAnswer::kPermanentRedirect || redirect_always) {
      e.http_status = 301;
      e.service_code = "PermanentRedirect";
      e.bucket_region = bucket_region;
      e.message = r.what + ": 301 PermanentRedirect: The bucket you are attempting to access must be addressed "
                           "using the specified endpoint.";
    } else if (region_answer == RegionAnswer::kAuthorizationHeaderMalformed) {
      e.bucket_region = bucket_region;
      e.message = r.what + ": 400 AuthorizationHeaderMalformed: The authorization header is malformed; " + expecting;
    } else {
      e.message = r.what + ": 400 AuthorizationHeaderMalformed: The authorization header is malformed; " + expecting;
    }
    return std::unexpected(std::move(e));
  }

  aws::Result<aws::HttpResponse> Handle(const aws::HttpRequest& r) {
    const bool path_style = r.path == "/bucket" || r.path.starts_with("/bucket/");
    const std::string key = path_style ? (r.path.size() > 8 ? r.path.substr(8) : "") : r.path.substr(1);
    regions.push_back(r.region);
    endpoints.push_back(r.endpoint);
    const bool listing = r.method == "GET" && key.empty();
    const bool wrong = r.region != bucket_region && (region_checks_listing || !listing);
    if (!bucket_region.empty() && (redirect_always || wrong)) return WrongRegion(r, key);
    aws::HttpResponse res;
    res.status = 200;
    if (r.method == "GET" && key.empty()) {
      log.push_back("LIST");
      std::string prefix;
      for (const auto& [k, v] : r.query) {
        if (k == "prefix") prefix = v;
      }
      res.body = "<ListBucketResult><IsTruncated>false</IsTruncated>";
      auto listed = objects;
      listed.insert(list_extra.begin(), list_extra.end());
      for (const auto& [k, o] : listed) {
        if (!k.starts_with(prefix)) continue;
        const auto modified = last_modified.find(k);
        res.body += fmt::format("<Contents><Key>{}</Key>{}<Size>{}</Size><ETag>\"{}\"</ETag></Contents>", k,
                                modified == last_modified.end() ? "" : "<LastModified>" + modified->second + "</LastModified>",
                                o.first, o.second);
      }
      res.body += "</ListBucketResult>";
      return res;
    }
    if (r.method == "PUT" && Query(r, "partNumber") != "\x01") {
      const std::string body = Received(r, key);
      log.push_back("PART " + key);
      if (auto ok = CheckDigests(r, body); !ok) return std::unexpected(ok.error());
      parts_[std::stoul(Query(r, "partNumber"))] = body;
      res.headers.emplace_back("etag", "\"" + Md5Hex(body) + "\"");
      return res;
    }
    if (r.method == "PUT" && !Header(r, "x-amz-copy-source").empty()) {
      // CopyObject: only onto the object itself ("/bucket/KEY", URL-encoded), as sync/ sends it.
      log.push_back("COPY " + key);
      const std::string source = Header(r, "x-amz-copy-source");
      if (source != "/bucket/" + aws::UriEncode(key, true)) {
        return aws::Fail(aws::ErrorCode::kHttp, r.what + ": fake S3: copy source " + source + " is not the object");
      }
      if (!objects.contains(key)) {
        return std::unexpected(aws::Error{aws::ErrorCode::kNotFound, r.what + ": 404 NoSuchKey", false, 404,
                                          "NoSuchKey"});
      }
      for (const auto& [name, value] : headers[key]) {
        if (name == "x-amz-storage-class" && (value == "GLACIER" || value == "DEEP_ARCHIVE")) {
          // S3 copies an archived object only once it is restored.
          return std::unexpected(aws::Error{aws::ErrorCode::kHttp, r.what + ": 403 InvalidObjectState", false, 403,
                                            "InvalidObjectState"});
        }
      }
      if (Header(r, "x-amz-metadata-directive") != "REPLACE") {
        // S3 refuses a copy onto itself that changes nothing (400 InvalidRequest).
        return std::unexpected(aws::Error{aws::ErrorCode::kHttp, r.what + ": 400 InvalidRequest", false, 400,
                                          "InvalidRequest"});
      }
      if (auto it = copy_errors_200.find(key); it != copy_errors_200.end() && it->second > 0) {
        --it->second;
        res.body = "<Error><Code>InternalError</Code><Message>We encountered an internal error.</Message></Error>";
        return res;
      }
      headers[key] = ObjectHeadersOf(r);
      if (kms_etags) objects[key].second = Md5Hex(objects[key].second + "copy");  // a KMS ETag changes with a copy
      res.body = fmt::format("<CopyObjectResult><LastModified>2026-12-06T09:00:00.000Z</LastModified>"
                             "<ETag>\"{}\"</ETag></CopyObjectResult>",
                             objects[key].second);
      return res;
    }
    if (r.method == "PUT") {
      log.push_back("PUT " + key);
      const Fault fault = put_faults.contains(key) ? put_faults.at(key) : Fault::kNone;
      if (fault == Fault::kFail) return Failed(r);
      const bool crc32 = !Header(r, "x-amz-checksum-crc32").empty();
      const bool md5 = !Header(r, "content-md5").empty();
      sent_checksums.push_back(crc32 && md5 ? "crc32+md5 " + key
                               : crc32      ? "crc32 " + key
                               : md5        ? "md5 " + key
                                            : "none " + key);
      put_headers[key] = r.headers;
      const std::string body = Received(r, key);
      auto echo = CheckDigests(r, body);
      if (!echo) return std::unexpected(echo.error());
      const std::string asked = Header(r, "x-amz-server-side-encryption");
      const bool kms = kms_etags || asked.starts_with("aws:kms");
      const std::string etag = kms ? Md5Hex("kms:" + body) : Md5Hex(body);
      objects[key] = {body.size(), etag};
      headers[key] = ObjectHeadersOf(r);
      if (fault == Fault::kLost) return Lost(r);
      res.headers.emplace_back("etag", "\"" + etag + "\"");
      if (kms) {
        res.headers.emplace_back("x-amz-server-side-encryption", asked.starts_with("aws:kms") ? asked : "aws:kms");
      } else if (sse_s3_answers || asked == "AES256") {
        res.headers.emplace_back("x-amz-server-side-encryption", "AES256");
      }
      if (!echo->empty()) res.headers.emplace_back("x-amz-checksum-crc32", *echo);
      return res;
    }
    if (r.method == "POST" && Query(r, "uploads") != "\x01") {
      log.push_back("CREATE " + key);
      upload_headers_ = ObjectHeadersOf(r);
      parts_.clear();
      upload_open_ = true;
      res.body = "<InitiateMultipartUploadResult><UploadId>up-1</UploadId></InitiateMultipartUploadResult>";
      return res;
    }
    if (r.method == "POST" && Query(r, "uploadId") != "\x01") {
      log.push_back("COMPLETE " + key);
      const Fault fault = completes_ < complete_faults.size() ? complete_faults[completes_] : Fault::kNone;
      ++completes_;
      if (!upload_open_) {
        return std::unexpected(aws::Error{aws::ErrorCode::kNotFound, r.what + ": 404 NoSuchUpload", false, 404,
                                          "NoSuchUpload"});
      }
      if (fault == Fault::kError200) {
        res.body = "<Error><Code>InternalError</Code><Message>We encountered an internal error.</Message></Error>";
        return res;
      }
      if (fault == Fault::kFail) return Failed(r);
      // Done: the object is the parts together, its ETag the MD5 of the part MD5s.
      std::string all, digests;
      for (const auto& [n, body] : parts_) {
        all += body;
        aws::Md5 md5;
        md5.Update(body.data(), body.size());
        const auto d = md5.Final();
        digests.append(reinterpret_cast<const char*>(d.data()), d.size());
      }
      const std::string etag = Md5Hex(digests) + "-" + std::to_string(parts_.size());
      objects[key] = {all.size(), etag};
      headers[key] = upload_headers_;
      upload_open_ = false;
      if (fault == Fault::kLost) return Lost(r);
      if (fault == Fault::kLostRetry) {
        return std::unexpected(aws::Error{aws::ErrorCode::kNotFound, r.what + ": 404 NoSuchUpload", false, 404,
                                          "NoSuchUpload"});
      }
      res.body = fmt::format("<CompleteMultipartUploadResult><ETag>\"{}\"</ETag></CompleteMultipartUploadResult>", etag);
      return res;
    }
    if (r.method == "DELETE" && Query(r, "uploadId") == "\x01") {  // DeleteObject
      log.push_back("DELETE " + key);
      objects.erase(key);
      headers.erase(key);
      res.status = 204;
      return res;
    }
    if (r.method == "DELETE" && Query(r, "uploadId") != "\x01") {
      log.push_back("ABORT " + key);
      if (!upload_open_) {
        return std::unexpected(aws::Error{aws::ErrorCode::kNotFound, r.what + ": 404 NoSuchUpload", false, 404,
                                          "NoSuchUpload"});
      }
      upload_open_ = false;
      res.status = 204;
      return res;
    }
    if (r.method == "HEAD") {
      log.push_back("HEAD " + key);
      if (head_fault == Fault::kFail && head_fail_keys.contains(key)) return Failed(r);
      auto it = objects.find(key);
      if (it == objects.end()) {
        return std::unexpected(aws::Error{aws::ErrorCode::kNotFound, r.what + ": 404", false, 404, {}});
      }
      const std::uint64_t size = head_fault == Fault::kWrongSize ? it->second.first + 1 : it->second.first;
      res.headers.emplace_back("content-length", std::to_string(size));
      res.headers.emplace_back("etag", "\"" + it->second.second + "\"");
      for (const auto& [name, value] : headers[key]) {
        if (name == "x-amz-acl" || (name == "x-amz-storage-class" && value == "STANDARD")) continue;
        res.headers.emplace_back(name, value);
      }
      return res;
    }
    if (r.method == "POST" && Query(r, "delete") != "\x01") {
      auto doc = aws::ParseXml(r.body.bytes);
      if (delete_fault == Fault::kFail) {
        for (const auto& o : doc->children) {
          if (o.name == "Object") log.push_back("DELETE " + o.ChildText("Key"));
        }
        return Failed(r);
      }
      for (const auto& o : doc->children) {
        if (o.name != "Object") continue;
        log.push_back("DELETE " + o.ChildText("Key"));
        objects.erase(o.ChildText("Key"));
        headers.erase(o.ChildText("Key"));
      }
      if (delete_fault == Fault::kLost) return Lost(r);
      res.body = "<DeleteResult/>";
      return res;
    }
    return aws::Fail(aws::ErrorCode::kHttp, "fake S3: unexpected " + r.method + " " + r.path);
  }

  std::vector<std::pair<aws::HttpRequest, Callback>> queue_;
  std::map<std::size_t, std::string> parts_;
  bool upload_open_ = false;
  std::vector<std::pair<std::string, std::string>> upload_headers_;  // of the open multipart upload
  std::size_t completes_ = 0;
};


// A fixture with a fresh SOURCE folder under /tmp, removed after the test.
class TempSiteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sitesync-sync-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  /// Writes `content` to SOURCE/rel, dated 5 s ago (written a while before the run, as a generator's output).
  void Write(const std::string& rel, const std::string& content) {
    std::filesystem::create_directories((root_ / rel).parent_path());
    std::ofstream(root_ / rel, std::ios::binary) << content;
    std::filesystem::last_write_time(root_ / rel,
                                     std::filesystem::file_time_type::clock::now() - std::chrono::seconds(5));
  }

  std::filesystem::path root_;
};

}  // namespace sitesync::sync::testing
