// S3 operations over the aws/ multi loop: addressing, ListObjectsV2, PutObject, multipart, DeleteObjects.
// Private to sync/.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/unique_fd.h"
#include "sync/sync.h"

namespace sitesync::sync {

/// A request for `key` in `bucket` (key empty: the bucket itself), addressed per `endpoint` and signed for its
/// region.
aws::HttpRequest S3Request(const S3Endpoint& endpoint, const std::string& bucket, const std::string& key,
                           std::string method);

/// The S3 endpoint shared by every request of a run or a watch session, whose region follows the bucket's: the
/// first answer that names another region (FollowableRegion) replaces the region for the rest of the session, with
/// one note, and SubmitS3 sends the request again, addressed anew. Requests already in flight with the old region
/// are sent again as their answers come. A second, different region is an error, never a loop. Loop thread only.
class FollowedEndpoint {
 public:
  explicit FollowedEndpoint(S3Endpoint endpoint);

  /// The endpoint to address requests with now.
  const S3Endpoint& endpoint() const { return endpoint_; }
  /// Receives the one note of a switch (set by Session for the call in progress); null: no note.
  std::function<void(std::string_view)> on_note;

  enum class Verdict { kFail, kResend };
  /// Decides about a request for `bucket` signed for `sent_region` that failed with `error`: kResend when S3 named
  /// the bucket's region and that is now the endpoint's (switching to it on the first such answer); kFail
  /// otherwise, with `error`'s message telling why when the region cannot be followed (a second region, or an
  /// endpoint that does not serve the region it was signed for).
  Verdict OnFailure(const std::string& bucket, std::string_view sent_region, aws::Error& error);

 private:
  S3Endpoint endpoint_;
  std::string configured_region_;
  bool switched_ = false;
};

/// Submits `request`, made with S3Request(followed->endpoint(), bucket, key, ...) and then completed (query,
/// headers, body, prepare). When it fails because the bucket is in another region (FollowedEndpoint::OnFailure),
/// the request as it was before its first attempt is addressed for the followed endpoint (S3Request's endpoint,
/// path and region) and sent again; `done` gets the final answer.
void SubmitS3(aws::HttpClient& client, const std::shared_ptr<FollowedEndpoint>& followed, const std::string& bucket,
              const std::string& key, aws::HttpRequest request, aws::HttpClient::Callback done);

/// ListObjects (sync/sync.h) through `followed`.
aws::Result<std::vector<RemoteObject>> ListObjectsFollowing(aws::HttpClient& client,
                                                            const std::shared_ptr<FollowedEndpoint>& followed,
                                                            const std::string& bucket, const std::string& prefix);

/// Decodes a key from a listing made with encoding-type=url: %XX escapes, and '+' as space (form encoding).
std::string DecodeListedKey(std::string_view encoded);

/// Parses one ListObjectsV2 page: appends its objects (decoded keys) and, when `common_prefixes` is given, its
/// CommonPrefixes (decoded); returns the continuation token ("" when the listing is complete).
aws::Result<std::string> ParseListPage(std::string_view xml, std::vector<RemoteObject>& out,
                                       std::vector<std::string>* common_prefixes = nullptr);

/// How a PutObject body is protected: the checksums it carries, which the server recomputes over what it received,
/// refusing a mismatch (400 BadDigest). Content-MD5 is checked by every S3 server (RGW 16.2 included);
/// x-amz-checksum-crc32 (with x-amz-sdk-checksum-algorithm: CRC32, as the AWS SDKs send it by default) by S3, which
/// echoes it and keeps it as the object's checksum, at a fifth of MD5's CPU, but not by every S3-compatible server.
enum class BodyChecksum {
  kBoth,        ///< until an answer shows what the server checks
  kCrc32,       ///< the server echoed the CRC-32: it checks it
  kContentMd5,  ///< the server ignores or refuses the CRC-32
};

/// The checksums PutObject sends for the rest of a session. The first PUTs, sent before any answer shows what the
/// server does, carry both: none can store a body damaged on the way, whatever the server. Then
///  - an answer that echoes the x-amz-checksum-crc32 it was sent (S3 echoes the checksum it verified): the CRC-32
///    alone;
///  - a server that refuses the checksum headers (400 InvalidArgument / InvalidRequest, 501 NotImplemented): the
///    refused PUT is sent again, and every later one goes, with Content-MD5 alone;
///  - an answer 200 without the echo (RGW 16.2 accepts the header and ignores it): Content-MD5 alone. That PUT was
///    checked by its Content-MD5 if it had one; else its ETag is compared with the MD5 of what was sent, and on a
///    mismatch it is sent again.
/// Content-MD5 alone is for good. A PUT or part answered 400 BadDigest (the body changed in transit) is sent again,
/// at most twice.
struct ChecksumChoice {
  std::atomic<bool> content_md5{false};
  std::atomic<bool> crc32_echoed{false};
  /// Set, for the rest of the session, by the first PutObject answer whose ETag is not the MD5 of the body (an
  /// encryption other than SSE-S3: a bucket that encrypts with SSE-KMS by default) for a body sent with the CRC-32
  /// alone: from then on a single PutObject with UploadSpec::want_md5 computes the MD5 while it reads the body, as
  /// one whose rule sends SSE-KMS always does.
  std::atomic<bool> md5_while_sending{false};

  BodyChecksum Current() const {
    if (content_md5.load(std::memory_order_relaxed)) return BodyChecksum::kContentMd5;
    return crc32_echoed.load(std::memory_order_relaxed) ? BodyChecksum::kCrc32 : BodyChecksum::kBoth;
  }
  void EchoSeen() { crc32_echoed.store(true, std::memory_order_relaxed); }
};

/// A file's body opened and hashed ahead of its PutObject (HashBodies): the file open beneath SOURCE, its size then,
/// and the MD5 and (when asked) the CRC-32 of those bytes.
struct HashedBody {
  std::shared_ptr<const UniqueFd> file;
  std::uint64_t size = 0;
  aws::Md5Digest md5{};
  aws::Crc32 crc32;
};

/// Opens each file beneath SOURCE and hashes all of it as it is now, many files side by side (aws::Md5Many), one
/// read of each: its MD5, and with `crc32` its CRC-32 too. Every file is open until the call returns (callers pass
/// a few dozen). A file that cannot be opened or read gets its error (kInput / kIo, naming it).
[[nodiscard]] std::vector<aws::Result<HashedBody>> HashBodies(std::span<const sitemap::LocalFile* const> files,
                                                              bool crc32 = false);

/// The hex MD5 of all of each file (HashBodies, without keeping the files open).
[[nodiscard]] std::vector<aws::Result<std::string>> Md5FilesHex(std::span<const sitemap::LocalFile* const> files);

/// What uploading one file needs.
struct UploadSpec {
  std::string bucket;
  std::string key;
  sitemap::LocalFile file;
  std::uint64_t multipart_threshold = 16ull << 20;
  std::uint64_t part_size = 8ull << 20;
  /// Shared by a session's uploads; null: one of its own. Multipart parts always carry Content-MD5.
  std::shared_ptr<ChecksumChoice> checksum{};
  /// A single PutObject of a file also reports the hex MD5 of the bytes it sent (Uploaded::md5; the local record
  /// wants it). S3 documents the ETag of an object made by one PutObject, unencrypted or SSE-S3, as the MD5 of its
  /// body: then the answer's ETag is taken (the checksum the server checked makes the stored body the one sent).
  /// Otherwise it is the MD5 computed for Content-MD5, or, with the CRC-32 alone, computed while sending where the
  /// ETag is no MD5 (SSE-KMS, DSSE-KMS, SSE-C): when the rule sends such an encryption, or once the session has
  /// seen such an answer (ChecksumChoice::md5_while_sending); a PUT answered so before that switch reads the file
  /// it sent again, and reports it only when the file is unchanged since the walk. See Md5Source.
  bool want_md5 = false;
  /// Called once, when the first attempt of a single PutObject of a file starts; may give its body hashed ahead
  /// with others (HashBodies). The PutObject then sends its checksums and the file opened then, without reading
  /// the file first. The server checks the Content-MD5 against what arrives, so a file rewritten in between is
  /// refused (400 BadDigest) and sent again, read and hashed anew.
  std::function<std::shared_ptr<const HashedBody>()> body_ahead{};
};

/// Hex MD5 of an empty body (a redirect object's).
inline constexpr std::string_view kEmptyMd5 = "d41d8cd98f00b204e9800998ecf8427e";

/// Where Uploaded::md5 came from.
enum class Md5Source {
  kNone,       ///< not known here (md5 empty)
  kBody,       ///< the body is in memory (an encoded body, an empty redirect body): hashed when it was made
  kEtag,       ///< the answer's ETag, documented as the body's MD5 (no encryption or SSE-S3)
  kSending,    ///< computed in the read that sent the body (Content-MD5, or an encryption whose ETag is no MD5)
  kReadAgain,  ///< a KMS answer before the session knew: the file read again, unchanged since the walk
};

/// What one upload put: the bytes sent and the object's ETag (without quotes).
struct Uploaded {
  std::uint64_t bytes = 0;
  std::string etag;
  /// Hex MD5 of the body sent when the upload knows it (an encoded body, an empty redirect body, a single
  /// PutObject with UploadSpec::want_md5); empty: not known here.
  std::string md5 = {};
  Md5Source md5_source = Md5Source::kNone;
};
/// Result of one upload, or the error.
using UploadDone = std::function<void(aws::Result<Uploaded>)>;

/// Queues the upload of one file (PutObject with its checksum, see BodyChecksum, or multipart above the threshold
/// with parts in flight together and an abort on failure). `done` runs on the loop when it finished.
void SubmitUpload(aws::HttpClient& client, const std::shared_ptr<FollowedEndpoint>& endpoint, UploadSpec spec,
                  UploadDone done);
/// SubmitUpload with an endpoint of its own (its region followed for this upload only).
void SubmitUpload(aws::HttpClient& client, const S3Endpoint& endpoint, UploadSpec spec, UploadDone done);

/// The DeleteObjects request body for `keys` (at most 1,000), quiet mode.
std::string DeleteObjectsXml(const std::vector<std::string>& keys);

/// Parses a DeleteObjects answer: the (key, message) pairs that failed.
aws::Result<std::vector<std::pair<std::string, std::string>>> ParseDeleteResult(std::string_view xml);

/// Queues DeleteObjects for `keys` (at most 1,000). `done` gets the failed (key, message) pairs, or the error
/// that failed the whole request.
void SubmitDeleteBatch(aws::HttpClient& client, const std::shared_ptr<FollowedEndpoint>& endpoint,
                       const std::string& bucket, std::vector<std::string> keys,
                       std::function<void(aws::Result<std::vector<std::pair<std::string, std::string>>>)> done);

// ---- Issue 14: headers, CopyObject, HEAD, encoded bodies ------------------------------------------------------

/// The headers an object of `file` is stored with (lowercase names, sorted by name): content-type, cache-control,
/// content-encoding (the compress: encoding, else the rule's), content-disposition, content-language,
/// x-amz-meta-*, x-amz-storage-class, x-amz-acl, x-amz-server-side-encryption (+ -aws-kms-key-id),
/// x-amz-website-redirect-location. PutObject, CreateMultipartUpload and CopyObject send exactly these.
[[nodiscard]] std::vector<std::pair<std::string, std::string>> ObjectHeaders(const sitemap::LocalFile& file);

/// A digest of ObjectHeaders(file) (hex SHA-256 of a canonical form), kept in the record: a different digest
/// means the object must be updated.
[[nodiscard]] std::string HeadersDigest(const sitemap::LocalFile& file);

/// Updates the headers of the object spec.key to ObjectHeaders(spec.file) by CopyObject onto itself with
/// x-amz-metadata-directive: REPLACE; no body is sent. `done` gets the object's new ETag (bytes: 0).
void SubmitCopy(aws::HttpClient& client, const std::shared_ptr<FollowedEndpoint>& endpoint, UploadSpec spec,
                UploadDone done);

/// An object's headers as HeadObject shows them (lowercase names), with its ETag and size.
struct ObjectHead {
  std::vector<std::pair<std::string, std::string>> headers;
  std::string etag;
  std::uint64_t size = 0;
};

/// Queues a HeadObject of `key`.
void SubmitHead(aws::HttpClient& client, const std::shared_ptr<FollowedEndpoint>& endpoint, const std::string& bucket,
                const std::string& key, std::function<void(aws::Result<ObjectHead>)> done);

/// True when the object `head` describes would change if stored with `wanted` (ObjectHeaders), comparing the
/// headers HEAD shows (x-amz-acl is never shown, so not compared; STANDARD storage class is not echoed by S3).
[[nodiscard]] bool HeadersDiffer(const ObjectHead& head, std::span<const std::pair<std::string, std::string>> wanted);

/// What HeadObject said about one object whose headers were checked (HeadAndCompare).
struct HeadVerdict {
  enum class Kind { kSame, kDiffer, kGone, kFailed };
  Kind kind = Kind::kSame;
  std::string error;  ///< kFailed: the HEAD's error message.
};

/// HEADs the object `key` of each (file, key) in `checks`, all in flight through the loop (`client` is run),
/// and compares its headers with ObjectHeaders(file) (HeadersDiffer): kSame, kDiffer, kGone (404: deleted since
/// it was listed) or kFailed, in the order of `checks`.
[[nodiscard]] std::vector<HeadVerdict> HeadAndCompare(
    aws::HttpClient& client, const std::shared_ptr<FollowedEndpoint>& endpoint, const std::string& bucket,
    std::span<const std::pair<const sitemap::LocalFile*, std::string>> checks);

/// The body of a file with an encoding (compress:): its content compressed with gzip (zlib) or br (libbrotli),
/// deterministic (no timestamp or name in the gzip header; fixed levels), so the same file always gives the same
/// bytes; and their hex MD5. Opened beneath SOURCE. Fails with kIo naming the file.
struct EncodedBody {
  std::string bytes;
  std::string md5;
};
[[nodiscard]] aws::Result<EncodedBody> EncodeFile(const sitemap::LocalFile& file);

/// The Content-Encoding value of `encoding`: "gzip", "br"; empty for kIdentity.
[[nodiscard]] std::string_view ContentEncodingOf(sitemap::Encoding encoding);

/// The hex MD5 of EncodeFile(file)'s bytes: what S3's ETag of the object is. Reuses what an earlier EncodeFile of
/// this process found while the file is unchanged (device, inode, mtime, size as walked); else encodes it. Fails
/// as EncodeFile.
[[nodiscard]] aws::Result<std::string> EncodedMd5(const sitemap::LocalFile& file);


/// Hex MD5 of `length` bytes of `file` from `offset`, read in chunks (opened beneath SOURCE: sitemap::OpenInSource).
aws::Result<std::string> Md5FileHex(const sitemap::LocalFile& file, std::uint64_t offset, std::uint64_t length);

/// The ETag S3 gives an object of `size` bytes uploaded as by this tool: the plain MD5 up to the threshold,
/// else the MD5 of the part MD5s with "-N". `file` is opened beneath SOURCE.
/// With `whole_md5`, a multipart computation also gives the hex MD5 of all `size` bytes, in the same read.
aws::Result<std::string> LocalEtag(const sitemap::LocalFile& file, std::uint64_t size,
                                   std::uint64_t multipart_threshold, std::uint64_t part_size,
                                   std::string* whole_md5 = nullptr);

/// Part size for a multipart upload of `size` bytes: at least `part_size`, and at most 10,000 parts.
std::uint64_t PartSizeFor(std::uint64_t size, std::uint64_t part_size);

}  // namespace sitesync::sync
