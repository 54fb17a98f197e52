#include "sync/s3_client.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <array>
#include <cerrno>
#include <charconv>
#include <cctype>
#include <cstring>
#include <memory>

#include <fmt/format.h>
#include <libxml/xmlreader.h>

#include "base/unique_fd.h"

namespace sitesync::sync {
namespace {

using aws::ErrorCode;
using aws::Fail;

// Bodies up to this size are read once into memory: hashed and sent from the same buffer. Larger ones are hashed
// in one pass and streamed from disk in a second, so memory stays bounded by transfers in flight. 16 KiB is what
// curl sends through its upload buffer at a time anyway: a larger body held in memory for the whole transfer
// (its answer comes a round trip later) cost up to 64 KiB per transfer in flight, 5 MB at 256, to save one pread.
constexpr std::uint64_t kInMemoryBody = 16 * 1024;

std::string HostOf(std::string_view endpoint) {
  auto p = endpoint.find("://");
  return std::string(p == std::string_view::npos ? endpoint : endpoint.substr(p + 3));
}

std::string SchemeOf(std::string_view endpoint) {
  auto p = endpoint.find("://");
  return p == std::string_view::npos ? "https" : std::string(endpoint.substr(0, p));
}

constexpr std::size_t kChunk = 128 * 1024;

// The chunk ReadRange reads into: one buffer per thread, made once and never cleared (a fresh zeroed megabyte per
// file cost a memset and, above malloc's mmap threshold, page faults on every read). 128 KiB: 256 KiB gave nothing
// measurable in CPU and held 0.1-0.2 MiB more at the peak of a 256-connection upload, whose RSS target is 40 MiB.
// Outside the template: a thread_local inside it was one buffer per kind of sink (the CRC-32, the MD5, Md5Hex),
// 768 KiB on a server that takes Content-MD5.
char* ChunkBuffer() {
  thread_local const std::unique_ptr<char[]> buffer(new char[kChunk]);
  return buffer.get();
}

// The failure of a pread of `path` that returned `got` <= 0: an error (errno), or the end of a file that is shorter
// than it was when opened.
std::unexpected<aws::Error> ReadFailure(const std::string& path, ssize_t got) {
  if (got < 0) return Fail(ErrorCode::kIo, fmt::format("cannot read {}: {}", path, std::strerror(errno)));
  return Fail(ErrorCode::kIo, fmt::format("{} changed while it was read (shorter than expected)", path));
}

// Reads exactly `length` bytes at `offset` of the open file `fd` (`path` names it in messages), feeding each chunk
// to `sink`. Fails with kIo naming the file.
template <class Sink>
aws::Result<void> ReadRange(int fd, const std::string& path, std::uint64_t offset, std::uint64_t length,
                            Sink&& sink) {
  char* const buffer = ChunkBuffer();
  std::uint64_t done = 0;
  while (done < length) {
    const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(length - done, kChunk));
    ssize_t got = ::pread(fd, buffer, want, static_cast<off_t>(offset + done));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return ReadFailure(path, got);
    sink(buffer, static_cast<std::size_t>(got));
    done += static_cast<std::uint64_t>(got);
  }
  return {};
}

// Reads exactly `length` bytes at `offset` of `fd` into `out` (replacing it), with no copy in between. (Not
// resize_and_overwrite: libstdc++ 12 hands its callback the capacity rather than the size asked for.)
aws::Result<void> ReadInto(int fd, const std::string& path, std::uint64_t offset, std::size_t length,
                           std::string& out) {
  out.resize(length);
  std::size_t done = 0;
  while (done < length) {
    ssize_t got = ::pread(fd, out.data() + done, length - done, static_cast<off_t>(offset + done));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return ReadFailure(path, got);
    done += static_cast<std::size_t>(got);
  }
  return {};
}

std::string Base64Md5(std::array<unsigned char, 16> digest) { return aws::Base64Encode(digest); }

std::string Unquote(std::string etag) {
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') etag = etag.substr(1, etag.size() - 2);
  return etag;
}

void AddObjectHeaders(aws::HttpRequest& r, const sitemap::LocalFile& file) {
  for (auto& header : ObjectHeaders(file)) r.headers.push_back(std::move(header));
}

// A file of the site opened beneath SOURCE (sitemap::OpenInSource), shared by the requests that read it (the parts
// of a multipart upload), and its name for messages.
struct OpenBody {
  std::shared_ptr<const UniqueFd> file;
  std::string path;
};

// Opens `file` for an upload: never outside SOURCE, whatever was swapped in since the walk. Returns the size now.
aws::Result<std::uint64_t> OpenForUpload(const sitemap::LocalFile& file, OpenBody& out) {
  auto opened = sitemap::OpenInSource(file);
  if (!opened) return std::unexpected(opened.error());
  out.file = std::make_shared<const UniqueFd>(std::move(opened->fd));
  out.path = file.AbsPath();
  return opened->size;
}

// Sets the body of a PUT of `length` bytes of the file at `offset`, feeding it to `hash` as it reads it now (the
// transfer is about to start). Small bodies are kept in memory over plain HTTP, where the transport hands them to
// curl in place with the headers; larger ones, and every body over HTTPS, are streamed from the open file by the
// transport (over HTTPS curl copies a body through its upload buffer either way, and a copy in memory would be one
// more buffer per transfer in flight: 2 MiB of 46 at 256 in flight).
// Without `hash` (a body hashed ahead, HashBodies) a streamed body is not read here.
template <class Hash>
aws::Result<void> SetBody(aws::HttpRequest& r, const OpenBody& body, std::uint64_t offset, std::uint64_t length,
                          Hash* hash) {
  const std::string& path = body.path;
  if (length <= kInMemoryBody && !r.endpoint.starts_with("https://")) {
    std::string bytes;
    auto ok = ReadInto(body.file->get(), path, offset, static_cast<std::size_t>(length), bytes);
    if (!ok) return ok;
    if (hash != nullptr) hash->Update(bytes.data(), bytes.size());
    r.body.kind = aws::Body::Kind::kBytes;
    r.body.bytes = std::move(bytes);
    return {};
  }
  if (hash != nullptr) {
    auto ok = ReadRange(body.file->get(), path, offset, length,
                        [&](const char* p, std::size_t n) { hash->Update(p, n); });
    if (!ok) return ok;
  }
  r.body.kind = aws::Body::Kind::kFile;
  r.body.file = body.file;
  r.body.file_path = path;
  r.body.offset = offset;
  r.body.length = length;
  return {};
}

// The checksum headers of a PutObject body (see BodyChecksum). The checksums protect the body; signing its SHA-256
// as well would cost one more hash of every byte.
void AddChecksumHeaders(aws::HttpRequest& r, BodyChecksum checksum, const aws::Md5Digest& md5, const aws::Crc32& crc) {
  if (checksum != BodyChecksum::kCrc32) r.headers.emplace_back("content-md5", Base64Md5(md5));
  if (checksum != BodyChecksum::kContentMd5) {
    r.headers.emplace_back("x-amz-checksum-crc32", crc.Base64());
    r.headers.emplace_back("x-amz-sdk-checksum-algorithm", "CRC32");
  }
  r.payload_hash = "UNSIGNED-PAYLOAD";
}

// The CRC-32 and the MD5 of the bytes fed to it, each only when wanted.
struct BodyHash {
  BodyHash(bool want_crc32, bool want_md5) : crc32(want_crc32), md5(want_md5) {}
  bool crc32;
  bool md5;
  aws::Crc32 crc;
  aws::Md5 md5_hash;
  void Update(const char* p, std::size_t n) {
    if (crc32) crc.Update(p, n);
    if (md5) md5_hash.Update(p, n);
  }
};

// Sets the body and checksum headers of a PUT of `length` bytes of the file at `offset`, read now (SetBody).
// `md5_hex` gets the hex MD5 of the body when it was computed: for Content-MD5, or because `want_md5` asks for it
// (the local record); else it is cleared.
aws::Result<void> PrepareBody(aws::HttpRequest& r, const OpenBody& body, std::uint64_t offset, std::uint64_t length,
                              BodyChecksum checksum, std::string* md5_hex = nullptr, bool want_md5 = false) {
  BodyHash hash(checksum != BodyChecksum::kContentMd5, checksum != BodyChecksum::kCrc32 || want_md5);
  auto ok = SetBody(r, body, offset, length, &hash);
  if (!ok) return ok;
  const auto digest = hash.md5 ? hash.md5_hash.Final() : aws::Md5Digest{};
  AddChecksumHeaders(r, checksum, digest, hash.crc);
  if (md5_hex != nullptr) *md5_hex = hash.md5 ? aws::HexEncode(digest) : std::string();
  return {};
}

// Sets an in-memory body (a compressed one: EncodeFile) and its checksum headers, as PrepareBody does for a file.
void PrepareBytes(aws::HttpRequest& r, const std::string& bytes, BodyChecksum checksum) {
  r.body.kind = aws::Body::Kind::kBytes;
  r.body.bytes = bytes;
  BodyHash hash(checksum != BodyChecksum::kContentMd5, checksum != BodyChecksum::kCrc32);
  hash.Update(bytes.data(), bytes.size());
  AddChecksumHeaders(r, checksum, hash.md5 ? hash.md5_hash.Final() : aws::Md5Digest{}, hash.crc);
}

// Whether a PUT that carried x-amz-checksum-crc32 was refused for it: S3-compatible servers that do not know the
// checksum headers answer 400 InvalidArgument / InvalidRequest or 501 NotImplemented. Real S3 knows them.
bool RefusedChecksumHeaders(const aws::Error& e) {
  if (e.http_status == 501) return e.service_code == "NotImplemented";
  return e.http_status == 400 && (e.service_code == "InvalidArgument" || e.service_code == "InvalidRequest");
}

// Hex MD5 of the first `length` bytes of an open body: what a PUT read from it.
aws::Result<std::string> Md5Hex(const OpenBody& body, std::uint64_t length) {
  aws::Md5 md5;
  auto ok = ReadRange(body.file->get(), body.path, 0, length, [&](const char* p, std::size_t n) { md5.Update(p, n); });
  if (!ok) return std::unexpected(ok.error());
  return aws::HexEncode(md5.Final());
}

// Whether an object stored with the request headers `headers` gets an ETag that is the MD5 of its body: no
// encryption asked, or SSE-S3 (AES256). SSE-KMS, DSSE-KMS and SSE-C objects get ETags that are not (the S3 API
// Reference, "Object" data type, ETag: "Objects created by the PUT Object ... and are encrypted by SSE-S3 or
// plaintext, have ETags that are an MD5 digest of their object data"; SSE-C or SSE-KMS ones "are not").
bool EncryptionKeepsMd5Etag(std::span<const std::pair<std::string, std::string>> headers) {
  for (const auto& [name, value] : headers) {
    if (name == "x-amz-server-side-encryption" && value != "AES256") return false;
    if (name == "x-amz-server-side-encryption-customer-algorithm") return false;
  }
  return true;
}

bool EqualsIgnoringCase(std::string_view a, std::string_view b) {
  return std::ranges::equal(a, b, [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
  });
}

bool HexDigits(std::string_view s) {
  return std::ranges::all_of(s, [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); });
}

// Whether the ETag `etag` of a single PutObject answered with `res` is the MD5 of the body stored (see
// EncryptionKeepsMd5Etag): the answer names no encryption or AES256 (S3 names the one it applied, a bucket's
// default included), no SSE-C, and the ETag is 32 hex digits.
bool EtagIsBodyMd5(const aws::HttpResponse& res, std::string_view etag) {
  const std::string sse = res.Header("x-amz-server-side-encryption");
  return (sse.empty() || sse == "AES256") && res.Header("x-amz-server-side-encryption-customer-algorithm").empty() &&
         etag.size() == 32 && HexDigits(etag);
}

// The MD5 of the body a PutObject sent from `body` (`size` bytes), answered with an ETag that is no MD5: the same
// open file read again. It is what was sent only if the file was not written since; the file is therefore
// compared, after the read, with the stat the walk saw (what the record keeps with the MD5): unchanged, the MD5
// is reported; changed (or unreadable), none is, and the upload stays unrecorded, so the next run reads the file
// and compares it as without a record. Recording an MD5 of bytes other than those stored would let a later run
// take the file for what the object holds.
Uploaded ReadSentAgain(const OpenBody& body, std::uint64_t size, const sitemap::LocalFile& file,
                       const std::string& etag) {
  Uploaded up{size, etag};
  auto md5 = Md5Hex(body, size);
  struct stat st {};
  if (!md5 || ::fstat(body.file->get(), &st) != 0) return up;
  const std::int64_t mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  if (mtime_ns != file.mtime_ns || static_cast<std::uint64_t>(st.st_size) != file.disk_size ||
      static_cast<std::uint64_t>(st.st_ino) != file.ino || static_cast<std::uint64_t>(st.st_size) != size) {
    return up;
  }
  up.md5 = std::move(*md5);
  up.md5_source = Md5Source::kReadAgain;
  return up;
}

// A body that reached the server other than it was sent: S3 (and RGW) recompute the Content-MD5 / checksum over
// what they received and refuse a mismatch with 400 BadDigest. Corruption in transit is passing: the body is sent
// again (the transport does not retry a 4xx).
bool BadDigest(const aws::Error& e) { return e.http_status == 400 && e.service_code == "BadDigest"; }

// How many times one PutObject or UploadPart body is sent again after its answer showed that what was stored is not
// what was sent (400 BadDigest, an ETag that is not the MD5 sent, a checksum echoed with another value).
constexpr int kIntegrityResends = 2;

// The last word on a PUT whose every resend failed after an earlier attempt was stored damaged (its ETag is not the
// MD5 of what was sent): that copy is deleted, so that the key is missing rather than wrong and the next run, which
// compares sizes, uploads it again. The failure stands (exit 1) and says what became of the damaged copy.
void DeleteDamagedCopy(aws::HttpClient& client, const std::shared_ptr<FollowedEndpoint>& endpoint,
                       const UploadSpec& spec, aws::Error failure, UploadDone done) {
  aws::HttpRequest r = S3Request(endpoint->endpoint(), spec.bucket, spec.key, "DELETE");
  r.what = fmt::format("DeleteObject s3://{}/{} (the damaged copy)", spec.bucket, spec.key);
  SubmitS3(client, endpoint, spec.bucket, spec.key, std::move(r),
           [failure = std::move(failure), done = std::move(done)](aws::Result<aws::HttpResponse> res) mutable {
             failure.message +=
                 res ? "; the damaged copy an earlier attempt stored was deleted, so the next run uploads the file again"
                     : "; the damaged copy an earlier attempt stored could not be deleted (" + res.error().message +
                           "): run `sitesync sync --compare checksum` to replace it";
             done(std::unexpected(std::move(failure)));
           });
}

void SubmitSinglePut(aws::HttpClient& client, const std::shared_ptr<FollowedEndpoint>& endpoint, UploadSpec spec,
                     UploadDone done, int resends = 0, bool damaged_stored = false) {
  // A file with a compress: encoding is encoded now, whole, and sent from memory in one PutObject whatever its
  // size (the object's ETag is then the MD5 of the encoded bytes, which the diff can compare).
  std::shared_ptr<const EncodedBody> encoded;
  if (spec.file.encoding != sitemap::Encoding::kIdentity) {
    auto body = EncodeFile(spec.file);
    if (!body) return done(std::unexpected(body.error()));
    constexpr std::uint64_t kMaxPut = 5ull << 30;  // PutObject's limit
    if (body->bytes.size() > kMaxPut) {
      return done(Fail(ErrorCode::kInput,
                       fmt::format("PutObject s3://{}/{}: the compressed body is {} bytes, over PutObject's 5 GiB: "
                                   "leave this file out of the compress: rules",
                                   spec.bucket, spec.key, body->bytes.size())));
    }
    encoded = std::make_shared<const EncodedBody>(std::move(*body));
  }
  aws::HttpRequest r = S3Request(endpoint->endpoint(), spec.bucket, spec.key, "PUT");
  AddObjectHeaders(r, spec.file);
  // What the transfer sent, filled in when it starts: its size, the open file it was read from, and the CRC-32 it
  // carried if any (the choice is made then, so that PUTs queued behind a switch already use Content-MD5).
  struct Sent {
    std::uint64_t size = 0;
    std::string crc32;  ///< the x-amz-checksum-crc32 value sent; empty: none
    std::string sent_md5;  ///< the hex MD5 sent as Content-MD5; empty: none
    OpenBody body;
    std::shared_ptr<const EncodedBody> encoded;  ///< set: the compressed body was sent, not the file
    std::string md5;  ///< with UploadSpec::want_md5: the hex MD5 of the file's bytes sent, when computed
  };
  auto sent = std::make_shared<Sent>();
  // The file is opened when the transfer starts, beneath SOURCE, and uploaded whole as it is then (its size may
  // have changed since the walk).
  // An object stored with an encryption whose ETag is no MD5 of the body: its MD5 is computed while it is sent.
  const bool etag_not_md5 = !EncryptionKeepsMd5Etag(r.headers);
  r.prepare = [file = spec.file, sent, encoded, choice = spec.checksum, want_md5 = spec.want_md5, etag_not_md5,
               body_ahead = std::exchange(spec.body_ahead, nullptr)](aws::HttpRequest& req) mutable
                  -> aws::Result<void> {
    sent->crc32.clear();  // prepare runs again when the request is sent again for the bucket's region (SubmitS3)
    sent->sent_md5.clear();
    sent->md5.clear();
    const BodyChecksum checksum = choice->Current();
    // The checksums sent, for the answer to be compared with.
    const auto note_sent = [&] {
      for (const auto& [name, value] : req.headers) {
        if (name == "x-amz-checksum-crc32") sent->crc32 = value;
      }
    };
    // Content-MD5 computes the MD5 anyway; with the CRC-32 alone it is computed for the record only where the
    // answer's ETag will not be it.
    const bool md5_for_record =
        want_md5 && (etag_not_md5 || choice->md5_while_sending.load(std::memory_order_relaxed));
    // Hashed ahead (HashBodies): the body from the file opened then, nothing read now (first attempt only).
    const auto ahead_of = std::exchange(body_ahead, nullptr);
    if (auto ahead = ahead_of ? ahead_of() : nullptr; ahead && !encoded) {
      sent->body = OpenBody{ahead->file, file.AbsPath()};
      sent->size = ahead->size;
      auto ok = SetBody<BodyHash>(req, sent->body, 0, ahead->size, nullptr);
      if (!ok) return ok;
      AddChecksumHeaders(req, checksum, ahead->md5, ahead->crc32);
      if (checksum != BodyChecksum::kCrc32) sent->sent_md5 = aws::HexEncode(ahead->md5);
      if (want_md5) sent->md5 = aws::HexEncode(ahead->md5);
      note_sent();
      return {};
    }
    if (encoded) {
      sent->size = encoded->bytes.size();
      sent->encoded = encoded;
      PrepareBytes(req, encoded->bytes, checksum);
      if (checksum != BodyChecksum::kCrc32) sent->sent_md5 = encoded->md5;
      note_sent();
      return {};
    }
    auto current = OpenForUpload(file, sent->body);
    if (!current) return std::unexpected(current.error());
    sent->size = *current;
    std::string md5;
    auto ok = PrepareBody(req, sent->body, 0, *current, checksum, &md5, md5_for_record);
    if (!ok) return ok;
    if (checksum != BodyChecksum::kCrc32) sent->sent_md5 = md5;
    if (want_md5) sent->md5 = std::move(md5);
    note_sent();
    return {};
  };
  // What a resend needs (the spec's few strings, not the body).
  struct Resend {
    aws::HttpClient* client;
    std::shared_ptr<FollowedEndpoint> endpoint;
    UploadSpec spec;
  };
  auto resend = std::make_shared<Resend>(Resend{&client, endpoint, std::move(spec)});
  auto on_answer = [sent, resend, resends, damaged_stored,
                    done = std::move(done)](aws::Result<aws::HttpResponse> res) mutable {
    const UploadSpec& s = resend->spec;
    auto again = [&](bool damaged = false) {
      SubmitSinglePut(*resend->client, resend->endpoint, std::move(resend->spec), std::move(done), resends + 1,
                      damaged_stored || damaged);
    };
    if (!res && !sent->crc32.empty() && RefusedChecksumHeaders(res.error())) {
      s.checksum->content_md5.store(true, std::memory_order_relaxed);
      return again();
    }
    if (!res && BadDigest(res.error()) && resends < kIntegrityResends) return again();
    if (!res) {
      aws::Error e = res.error();
      if (BadDigest(e)) {
        e.message += fmt::format(" (sent {} times: every time the server received other bytes than were sent; "
                                 "something between here and the server alters request bodies)", resends + 1);
      }
      if (damaged_stored) {
        return DeleteDamagedCopy(*resend->client, resend->endpoint, s, std::move(e), std::move(done));
      }
      return done(std::unexpected(std::move(e)));
    }
    const std::string etag = Unquote(res->Header("etag"));
    const bool md5_sent = !sent->sent_md5.empty();
    // Whether the answer's ETag, where it is the MD5 of what was stored, is not the MD5 sent.
    const bool stored_other = md5_sent && EtagIsBodyMd5(*res, etag) && !EqualsIgnoringCase(etag, sent->sent_md5);
    // What was stored is what was sent (the server checked a checksum): the body's MD5 as the record wants it.
    const auto uploaded = [&]() -> Uploaded {
      if (sent->encoded) return Uploaded{sent->size, etag, sent->encoded->md5, Md5Source::kBody};
      if (!s.want_md5) return Uploaded{sent->size, etag};
      if (EtagIsBodyMd5(*res, etag) && !stored_other) return Uploaded{sent->size, etag, etag, Md5Source::kEtag};
      if (!sent->md5.empty()) return Uploaded{sent->size, etag, sent->md5, Md5Source::kSending};
      // An ETag that is no MD5 (a bucket that encrypts with SSE-KMS by default) on a PUT sent with the CRC-32 alone
      // before the session knew: the rest of the session computes the MD5 while sending.
      s.checksum->md5_while_sending.store(true, std::memory_order_relaxed);
      return ReadSentAgain(sent->body, sent->size, s.file, etag);
    };
    const auto finish = [&] { done(uploaded()); };
    if (sent->crc32.empty()) {
      // Content-MD5 alone: checked by the server. Only one already caught storing other bytes than were sent (this
      // is a resend after that) has its ETag compared as well, a bounded number of times.
      if (!damaged_stored || !stored_other) return finish();
      if (resends < kIntegrityResends) return again(/*damaged=*/true);
      aws::Error e{ErrorCode::kHttp,
                   fmt::format("PutObject s3://{}/{}: sent {} times, and every time the server stored other bytes "
                               "than were sent (its ETag is not the MD5 sent): it checks no checksum, and something "
                               "between here and the server alters request bodies",
                               s.bucket, s.key, resends + 1),
                   false, 0, {}};
      return DeleteDamagedCopy(*resend->client, resend->endpoint, s, std::move(e), std::move(done));
    }
    // S3 echoes the CRC-32 it verified (x-amz-checksum-crc32 in the PutObject answer): from then on the CRC-32 is
    // sent alone. A server that answers 200 without it did not check it (RGW 16.2 takes the header and ignores it):
    // from then on Content-MD5 alone, which it does check. This PUT was checked by the Content-MD5 sent with the
    // CRC-32, if any, else its ETag (the MD5 of what was stored) is compared with the MD5 of what was sent.
    const std::string echoed = res->Header("x-amz-checksum-crc32");
    if (echoed == sent->crc32) {
      s.checksum->EchoSeen();
      return finish();
    }
    s.checksum->content_md5.store(true, std::memory_order_relaxed);
    if (echoed.empty() && md5_sent && !stored_other) return finish();
    if (echoed.empty() && !md5_sent) {
      auto md5 = sent->encoded ? aws::Result<std::string>(sent->encoded->md5) : Md5Hex(sent->body, sent->size);
      if (!md5) return done(std::unexpected(md5.error()));
      if (*md5 == etag) {
        if (!sent->encoded && s.want_md5) sent->md5 = std::move(*md5);
        return finish();
      }
    }
    // Stored other than sent (an echo of another CRC-32, another MD5 as the ETag), or not provably the same (an
    // ETag that is no MD5 for a body sent with the CRC-32 alone): sent again with Content-MD5 alone, whose answer
    // the server's own check makes final.
    again(/*damaged=*/true);
  };
  SubmitS3(client, endpoint, resend->spec.bucket, resend->spec.key, std::move(r), std::move(on_answer));
}

// A generated file (a redirect object): no file behind it, an empty body (Content-MD5 of nothing), and its
// x-amz-website-redirect-location, which S3's website endpoint answers with a 301.
void SubmitGeneratedPut(aws::HttpClient& client, const std::shared_ptr<FollowedEndpoint>& endpoint, UploadSpec spec,
                        UploadDone done) {
  aws::HttpRequest r = S3Request(endpoint->endpoint(), spec.bucket, spec.key, "PUT");
  AddObjectHeaders(r, spec.file);
  const bool has_location = std::ranges::any_of(
      r.headers, [](const auto& h) { return h.first == "x-amz-website-redirect-location"; });
  if (!has_location && spec.file.extra != nullptr && !spec.file.extra->website_redirect.empty()) {
    r.headers.emplace_back("x-amz-website-redirect-location", spec.file.extra->website_redirect);
  }
  r.body.kind = aws::Body::Kind::kBytes;
  r.body.bytes.clear();
  r.headers.emplace_back("content-md5", Base64Md5(aws::Md5().Final()));
  SubmitS3(client, endpoint, spec.bucket, spec.key, std::move(r),
           [done = std::move(done)](aws::Result<aws::HttpResponse> res) {
             if (!res) return done(std::unexpected(res.error()));
             done(Uploaded{0, Unquote(res->Header("etag")), std::string(kEmptyMd5), Md5Source::kBody});
           });
}

// One multipart upload: create, all parts in flight together, complete; abort when anything fails so that no
// orphan parts stay billed.
struct Multipart : std::enable_shared_from_this<Multipart> {
  aws::HttpClient* client;
  std::shared_ptr<FollowedEndpoint> endpoint;
  UploadSpec spec;
  UploadDone done;
  std::string upload_id;
  std::uint64_t size = 0;
  std::uint64_t part_size = 0;
  std::vector<std::string> etags;
  std::size_t parts_left = 0;
  std::optional<aws::Error> failure;
  OpenBody body;  // opened once beneath SOURCE; every part reads it
  int complete_attempts = 0;  ///< CompleteMultipartUpload requests sent (each retried by the client as well).
  static constexpr int kCompleteAttempts = 4;

  // Every request of the upload goes through the followed endpoint (sent again if the bucket's region changes).
  void Send(aws::HttpRequest r, aws::HttpClient::Callback then) {
    SubmitS3(*client, endpoint, spec.bucket, spec.key, std::move(r), std::move(then));
  }

  void Start() {
    auto current = OpenForUpload(spec.file, body);
    if (!current) return done(std::unexpected(current.error()));
    size = *current;
    part_size = PartSizeFor(size, spec.part_size);
    aws::HttpRequest r = S3Request(endpoint->endpoint(), spec.bucket, spec.key, "POST");
    r.query.emplace_back("uploads", "");
    AddObjectHeaders(r, spec.file);
    Send(std::move(r), [self = shared_from_this()](aws::Result<aws::HttpResponse> res) {
      self->OnCreated(std::move(res));
    });
  }

  void OnCreated(aws::Result<aws::HttpResponse> res) {
    if (!res) return done(std::unexpected(res.error()));
    auto doc = aws::ParseXml(res->body);
    if (!doc || doc->ChildText("UploadId").empty()) {
      return done(Fail(ErrorCode::kParse, fmt::format("CreateMultipartUpload s3://{}/{}: no UploadId in the answer",
                                                      spec.bucket, spec.key)));
    }
    upload_id = doc->ChildText("UploadId");
    const std::uint64_t parts = std::max<std::uint64_t>(1, (size + part_size - 1) / part_size);
    etags.assign(static_cast<std::size_t>(parts), {});
    parts_left = etags.size();
    for (std::uint64_t i = 0; i < parts; ++i) SubmitPart(static_cast<std::size_t>(i), 0);
  }

  // Parts always carry Content-MD5, which S3 and RGW check (400 BadDigest): a part is never stored other than it
  // was sent, whatever the server makes of checksum headers. A part refused so is sent again.
  void SubmitPart(std::size_t i, int resends) {
    const std::uint64_t offset = i * part_size;
    const std::uint64_t length = std::min(part_size, size - offset);
    aws::HttpRequest r = S3Request(endpoint->endpoint(), spec.bucket, spec.key, "PUT");
    r.what = fmt::format("UploadPart {} of s3://{}/{}", i + 1, spec.bucket, spec.key);
    r.query.emplace_back("partNumber", std::to_string(i + 1));
    r.query.emplace_back("uploadId", upload_id);
    r.prepare = [file = body, offset, length](aws::HttpRequest& req) {
      return PrepareBody(req, file, offset, length, BodyChecksum::kContentMd5);
    };
    Send(std::move(r), [self = shared_from_this(), i, resends](aws::Result<aws::HttpResponse> part) {
      if (!part && BadDigest(part.error()) && resends < kIntegrityResends) return self->SubmitPart(i, resends + 1);
      self->OnPart(i, std::move(part));
    });
  }

  void OnPart(std::size_t index, aws::Result<aws::HttpResponse> res) {
    if (!res) {
      if (!failure) failure = res.error();
    } else {
      etags[index] = res->Header("etag");
    }
    if (--parts_left > 0) return;
    if (failure) return Abort();
    Complete();
  }

  void Complete() {
    ++complete_attempts;
    aws::XmlElement root{"CompleteMultipartUpload", {}, {}};
    for (std::size_t i = 0; i < etags.size(); ++i) {
      aws::XmlElement part{"Part", {}, {}};
      part.children.push_back({"PartNumber", std::to_string(i + 1), {}});
      part.children.push_back({"ETag", etags[i], {}});
      root.children.push_back(std::move(part));
    }
    aws::HttpRequest r = S3Request(endpoint->endpoint(), spec.bucket, spec.key, "POST");
    r.what = fmt::format("CompleteMultipartUpload s3://{}/{}", spec.bucket, spec.key);
    r.query.emplace_back("uploadId", upload_id);
    r.headers.emplace_back("content-type", "application/xml");
    r.body.kind = aws::Body::Kind::kBytes;
    r.body.bytes = aws::WriteXml(root, "http://s3.amazonaws.com/doc/2006-03-01/");
    Send(std::move(r), [self = shared_from_this()](aws::Result<aws::HttpResponse> res2) {
      self->OnCompleted(std::move(res2));
    });
  }

  void OnCompleted(aws::Result<aws::HttpResponse> res) {
    if (!res) {
      // NoSuchUpload: the upload is gone, most likely because an earlier attempt of this Complete succeeded and
      // only its answer was lost (the client retried it). A lost answer after the last retry leaves the outcome
      // unknown. Either way, the object itself says whether it is the one uploaded.
      const bool gone = res.error().service_code == "NoSuchUpload";
      const bool unknown = res.error().http_status == 0 && res.error().code == ErrorCode::kNetwork;
      failure = res.error();
      if (gone || unknown) return Verify(/*then_abort=*/!gone);
      return Abort();
    }
    // CompleteMultipartUpload can answer 200 and still fail: the error is in the body, and the request is to be
    // retried (S3 API reference, CompleteMultipartUpload; the AWS SDKs retry it as a 500).
    auto [code, message] = aws::ParseErrorBody(res->body);
    if (!code.empty()) {
      failure = aws::Error{ErrorCode::kHttp,
                           fmt::format("CompleteMultipartUpload s3://{}/{}: 200 with an error: {}: {} (after {} "
                                       "attempts)",
                                       spec.bucket, spec.key, code, message, complete_attempts),
                           true, 200, code};
      if (complete_attempts < kCompleteAttempts) return Complete();
      return Abort();
    }
    auto doc = aws::ParseXml(res->body);
    done(Uploaded{size, doc ? Unquote(doc->ChildText("ETag")) : std::string{}});
  }

  // The ETag S3 gives the completed object: the MD5 of the parts' binary MD5s, "-N" (empty when a part's ETag
  // is not a plain MD5, as with SSE-KMS).
  std::string ExpectedEtag() const {
    aws::Md5 all;
    for (const std::string& quoted : etags) {
      const std::string hex = Unquote(quoted);
      if (hex.size() != 32) return {};
      std::array<unsigned char, 16> digest{};
      for (std::size_t i = 0; i < digest.size(); ++i) {
        unsigned value = 0;
        if (std::from_chars(hex.data() + 2 * i, hex.data() + 2 * i + 2, value, 16).ec != std::errc{}) return {};
        digest[i] = static_cast<unsigned char>(value);
      }
      all.Update(digest.data(), digest.size());
    }
    return aws::HexEncode(all.Final()) + "-" + std::to_string(etags.size());
  }

  // HEAD of the key after a Complete whose outcome is not known: the right size (and, where it can be computed,
  // the right ETag) means this upload completed. Otherwise it failed with `failure`, after an abort when the
  // upload may still exist.
  void Verify(bool then_abort) {
    aws::HttpRequest r = S3Request(endpoint->endpoint(), spec.bucket, spec.key, "HEAD");
    r.what = fmt::format("HeadObject s3://{}/{}", spec.bucket, spec.key);
    Send(std::move(r), [self = shared_from_this(), then_abort](aws::Result<aws::HttpResponse> res) {
      if (res) {
        const std::string etag = Unquote(res->Header("etag"));
        const std::string expected = self->ExpectedEtag();
        std::uint64_t length = 0;
        const std::string text = res->Header("content-length");
        const bool sized = std::from_chars(text.data(), text.data() + text.size(), length).ec == std::errc{} &&
                           length == self->size;
        if (sized && (expected.empty() || etag == expected)) return self->done(Uploaded{self->size, etag});
        self->failure->message += fmt::format("; s3://{}/{} is not the object uploaded ({} bytes, ETag {})",
                                              self->spec.bucket, self->spec.key, text, etag);
      } else {
        self->failure->message += "; checking the object also failed: " + res.error().message;
      }
      if (then_abort) return self->Abort();
      self->done(std::unexpected(std::move(*self->failure)));
    });
  }

  void Abort() {
    aws::HttpRequest r = S3Request(endpoint->endpoint(), spec.bucket, spec.key, "DELETE");
    r.what = fmt::format("AbortMultipartUpload s3://{}/{}", spec.bucket, spec.key);
    r.query.emplace_back("uploadId", upload_id);
    Send(std::move(r), [self = shared_from_this()](aws::Result<aws::HttpResponse> res) {
      aws::Error error = *self->failure;
      if (!res) error.message += "; aborting the multipart upload also failed: " + res.error().message;
      self->done(std::unexpected(std::move(error)));
    });
  }
};

}  // namespace

aws::HttpRequest S3Request(const S3Endpoint& endpoint, const std::string& bucket, const std::string& key,
                           std::string method) {
  aws::HttpRequest r;
  r.service = "s3";
  r.region = endpoint.region;  // followed when the bucket turns out to be elsewhere (FollowedEndpoint)
  r.mode = aws::SigningMode::kS3;
  r.method = std::move(method);
  // The partition's regional endpoint (s3.cn-north-1.amazonaws.com.cn, s3-fips.dualstack...), unless configured.
  std::string base = endpoint.endpoint;
  if (base.empty()) {
    auto regional = aws::PartitionEndpoint(aws::EndpointService::kS3, endpoint.region, endpoint.fips,
                                           endpoint.dualstack);
    base = regional ? regional->url : fmt::format("https://s3.{}.amazonaws.com", endpoint.region);
  }
  while (base.ends_with('/')) base.pop_back();
  // Virtual-hosted style puts the bucket in the host name; a bucket with dots would not match the TLS
  // certificate's wildcard, so such buckets stay path-style (as the AWS SDKs do).
  const bool path_style = endpoint.path_style || (SchemeOf(base) == "https" && bucket.find('.') != std::string::npos);
  if (path_style) {
    r.endpoint = base;
    r.path = key.empty() ? "/" + bucket : "/" + bucket + "/" + key;
  } else {
    r.endpoint = SchemeOf(base) + "://" + bucket + "." + HostOf(base);
    r.path = "/" + key;
  }
  r.what = fmt::format("{} s3://{}/{}", r.method, bucket, key);
  return r;
}

namespace {

// Whether `region` can be a region name ("eu-west-1", "us-gov-west-1", "cn-north-1"): it goes into host names
// and credential scopes, so nothing but lowercase letters, digits and inner dashes is taken from an answer.
bool WellFormedRegion(std::string_view region) {
  if (region.size() < 4 || region.size() > 32 || region.front() == '-' || region.back() == '-') return false;
  if (region.find('-') == std::string_view::npos || region.find("--") != std::string_view::npos) return false;
  return std::all_of(region.begin(), region.end(),
                     [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; });
}

// The region a 400 AuthorizationHeaderMalformed names in its message when the answer carried no header or
// <Region> element: "... the region 'us-east-1' is wrong; expecting 'eu-west-1'".
std::string ExpectedRegionInMessage(std::string_view message) {
  constexpr std::string_view kExpecting = "expecting '";
  const auto start = message.find(kExpecting);
  if (start == std::string_view::npos) return {};
  const auto from = start + kExpecting.size();
  const auto end = message.find('\'', from);
  if (end == std::string_view::npos) return {};
  return std::string(message.substr(from, end - from));
}

}  // namespace

std::string FollowableRegion(const aws::Error& error, std::string_view sent_region) {
  // S3 answers a request that went to, or was signed for, the wrong region with 301 PermanentRedirect (a regional
  // endpoint of another region; HEAD too, without a body), 307 TemporaryRedirect (a bucket still settling in DNS)
  // or 400 AuthorizationHeaderMalformed (signed for another region), and names the bucket's region in the
  // x-amz-bucket-region header or the body's <Region> (aws/ reads both into Error::bucket_region).
  const int status = error.http_status;
  if (!(status == 301 || status == 307 || status == 400)) return {};
  std::string region = error.bucket_region;
  if (region.empty() && status == 400 && error.service_code == "AuthorizationHeaderMalformed") {
    region = ExpectedRegionInMessage(error.message);
  }
  if (!WellFormedRegion(region) || region == sent_region) return {};
  return region;
}

FollowedEndpoint::FollowedEndpoint(S3Endpoint endpoint)
    : endpoint_(std::move(endpoint)), configured_region_(endpoint_.region) {}

FollowedEndpoint::Verdict FollowedEndpoint::OnFailure(const std::string& bucket, std::string_view sent_region,
                                                      aws::Error& error) {
  const std::string named = FollowableRegion(error, sent_region);
  if (named.empty()) {
    if (!endpoint_.endpoint.empty() && WellFormedRegion(error.bucket_region) && error.bucket_region == sent_region &&
        error.http_status / 100 == 3) {
      // Signed for the right region and still sent elsewhere: the configured endpoint serves another region.
      error.message += fmt::format("; the endpoint {} does not serve region {}: give that region's S3 endpoint, or "
                                   "leave the endpoint out",
                                   endpoint_.endpoint, error.bucket_region);
    }
    return Verdict::kFail;
  }
  if (named == endpoint_.region) return Verdict::kResend;  // an answer to a request sent before the switch
  if (switched_) {
    // Followed once already: a third opinion is not chased (never a loop between regions).
    error.message += fmt::format("; S3 named region {} for bucket {} earlier in this run and now {}: set the "
                                 "bucket's region with --region (region: in sitesync.yaml)",
                                 endpoint_.region, bucket, named);
    return Verdict::kFail;
  }
  switched_ = true;
  endpoint_.region = named;
  if (on_note) {
    on_note(fmt::format("bucket {0} is in region {1}, not {2}: following it for the rest of this run (--region {1}, "
                        "or region: {1} in sitesync.yaml, saves a request)",
                        bucket, named, configured_region_));
  }
  return Verdict::kResend;
}

void SubmitS3(aws::HttpClient& client, const std::shared_ptr<FollowedEndpoint>& followed, const std::string& bucket,
              const std::string& key, aws::HttpRequest request, aws::HttpClient::Callback done) {
  if (request.region.empty()) request.region = followed->endpoint().region;
  // The request as it is before its first attempt (prepare has not run: no body read, no checksum header yet),
  // kept to be sent again; the transfer gets its own copy.
  auto unsent = std::make_shared<aws::HttpRequest>(request);
  client.Submit(std::move(request), [&client, followed, bucket, key, unsent,
                                     done = std::move(done)](aws::Result<aws::HttpResponse> res) mutable {
    if (res) return done(std::move(res));
    aws::Error error = std::move(res.error());
    if (followed->OnFailure(bucket, unsent->region, error) == FollowedEndpoint::Verdict::kFail) {
      return done(std::unexpected(std::move(error)));
    }
    // Addressed anew from the followed endpoint: on AWS the host names the region too.
    const aws::HttpRequest addressed = S3Request(followed->endpoint(), bucket, key, unsent->method);
    unsent->endpoint = addressed.endpoint;
    unsent->path = addressed.path;
    unsent->region = addressed.region;
    SubmitS3(client, followed, bucket, key, std::move(*unsent), std::move(done));
  });
}

std::string DecodeListedKey(std::string_view encoded) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(encoded.size());
  for (std::size_t i = 0; i < encoded.size(); ++i) {
    const char c = encoded[i];
    if (c == '+') {
      out += ' ';  // S3 uses form encoding here: a literal '+' in a key comes back as %2B
    } else if (c == '%' && i + 2 < encoded.size() + 0 && hex(encoded[i + 1]) >= 0 && hex(encoded[i + 2]) >= 0) {
      out += static_cast<char>(hex(encoded[i + 1]) * 16 + hex(encoded[i + 2]));
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

namespace {

struct ReaderDeleter {
  void operator()(xmlTextReader* reader) const { xmlFreeTextReader(reader); }
};

std::string_view View(const xmlChar* s) {
  return s == nullptr ? std::string_view() : std::string_view(reinterpret_cast<const char*>(s));
}

void DecodeInPlace(std::string& s) {
  if (s.find_first_of("%+") != std::string::npos) s = DecodeListedKey(s);
}

// Seconds since the epoch of an ISO 8601 UTC time as ListObjectsV2 gives LastModified
// ("2009-10-12T17:50:30.000Z"); 0 when it is not one.
std::int64_t ParseLastModified(std::string_view text) {
  int fields[6] = {};
  const char* p = text.data();
  const char* end = text.data() + text.size();
  constexpr char kSeparators[6] = {'-', '-', 'T', ':', ':', '\0'};
  for (int i = 0; i < 6; ++i) {
    auto [next, ec] = std::from_chars(p, end, fields[i]);
    if (ec != std::errc{}) return 0;
    p = next;
    if (i < 5) {
      if (p == end || *p != kSeparators[i]) return 0;
      ++p;
    }
  }
  using namespace std::chrono;
  const year_month_day date{year{fields[0]}, month{static_cast<unsigned>(fields[1])},
                            day{static_cast<unsigned>(fields[2])}};
  if (!date.ok()) return 0;
  return sys_days{date}.time_since_epoch().count() * 86400 + fields[3] * 3600 + fields[4] * 60 + fields[5];
}

}  // namespace

// Streamed with libxml2's xmlTextReader into the objects directly: a page of 1,000 keys is ~350 KB, and building
// a tree of it first cost about 20 allocations an object (half the CPU of a large no-op went to malloc).
aws::Result<std::string> ParseListPage(std::string_view xml, std::vector<RemoteObject>& out,
                                       std::vector<std::string>* common_prefixes) {
  const std::unique_ptr<xmlTextReader, ReaderDeleter> owned(
      xmlReaderForMemory(xml.data(), static_cast<int>(xml.size()), nullptr, nullptr,
                         XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING));
  if (owned == nullptr) return Fail(ErrorCode::kParse, "ListObjectsV2: cannot read the answer");
  xmlTextReader* reader = owned.get();
  enum class Field { kNone, kKey, kSize, kEtag, kModified, kPrefix, kEncoding, kTruncated, kToken };
  Field field = Field::kNone;
  const std::size_t first_object = out.size();
  const std::size_t first_prefix = common_prefixes != nullptr ? common_prefixes->size() : 0;
  bool in_contents = false;
  bool in_prefixes = false;
  bool have_root = false;
  std::string size_text, modified_text, encoding, truncated, token;
  int rc = 0;
  while ((rc = xmlTextReaderRead(reader)) == 1) {
    const int type = xmlTextReaderNodeType(reader);
    const int depth = xmlTextReaderDepth(reader);
    if (type == XML_READER_TYPE_ELEMENT) {
      const std::string_view name = View(xmlTextReaderConstLocalName(reader));
      const bool empty = xmlTextReaderIsEmptyElement(reader) == 1;
      field = Field::kNone;
      if (depth == 0) {
        if (name != "ListBucketResult") {
          return Fail(ErrorCode::kParse, "ListObjectsV2 answer is not a ListBucketResult: " + std::string(name));
        }
        have_root = true;
      } else if (depth == 1) {
        if (name == "Contents") {
          in_contents = !empty;
          if (in_contents) out.emplace_back();
          size_text.clear();
          modified_text.clear();
        } else if (name == "CommonPrefixes") {
          in_prefixes = !empty && common_prefixes != nullptr;
          if (in_prefixes) common_prefixes->emplace_back();
        } else if (name == "EncodingType") {
          field = Field::kEncoding;
        } else if (name == "IsTruncated") {
          field = Field::kTruncated;
        } else if (name == "NextContinuationToken") {
          field = Field::kToken;
        }
      } else if (depth == 2 && in_contents) {
        field = name == "Key" ? Field::kKey : name == "Size" ? Field::kSize : name == "ETag" ? Field::kEtag
                : name == "LastModified" ? Field::kModified : Field::kNone;
      } else if (depth == 2 && in_prefixes && name == "Prefix") {
        field = Field::kPrefix;
      }
      if (empty) field = Field::kNone;
    } else if (type == XML_READER_TYPE_TEXT || type == XML_READER_TYPE_CDATA ||
               type == XML_READER_TYPE_SIGNIFICANT_WHITESPACE) {
      const std::string_view value = View(xmlTextReaderConstValue(reader));
      switch (field) {
        case Field::kKey: out.back().key += value; break;
        case Field::kSize: size_text += value; break;
        case Field::kEtag: out.back().etag += value; break;
        case Field::kModified: modified_text += value; break;
        case Field::kPrefix: common_prefixes->back() += value; break;
        case Field::kEncoding: encoding += value; break;
        case Field::kTruncated: truncated += value; break;
        case Field::kToken: token += value; break;
        case Field::kNone: break;
      }
    } else if (type == XML_READER_TYPE_END_ELEMENT) {
      field = Field::kNone;
      if (depth == 1 && in_contents) {
        in_contents = false;
        RemoteObject& o = out.back();
        auto [p, ec] = std::from_chars(size_text.data(), size_text.data() + size_text.size(), o.size);
        if (ec != std::errc{} || p != size_text.data() + size_text.size()) {
          return Fail(ErrorCode::kParse, "ListObjectsV2: bad Size '" + size_text + "' for " + o.key);
        }
        o.last_modified_s = ParseLastModified(modified_text);
        if (o.etag.size() >= 2 && o.etag.front() == '"' && o.etag.back() == '"') {
          o.etag.pop_back();
          o.etag.erase(0, 1);
        }
      } else if (depth == 1) {
        in_prefixes = false;
      }
    }
  }
  if (rc != 0 || !have_root) return Fail(ErrorCode::kParse, "ListObjectsV2: the answer is not well-formed XML");
  // EncodingType may come after the keys: decode once the page is read.
  if (encoding == "url") {
    for (std::size_t i = first_object; i < out.size(); ++i) DecodeInPlace(out[i].key);
    if (common_prefixes != nullptr) {
      for (std::size_t i = first_prefix; i < common_prefixes->size(); ++i) DecodeInPlace((*common_prefixes)[i]);
    }
  }
  if (truncated != "true") return std::string{};
  if (token.empty()) return Fail(ErrorCode::kParse, "ListObjectsV2: truncated page without NextContinuationToken");
  return token;
}

namespace {

// One paginated ListObjectsV2 walk of `prefix`, run asynchronously in the multi loop: each page's answer submits
// the next. With `delimiter`, folders come back in `prefixes` instead of their keys.
struct ListWalk : std::enable_shared_from_this<ListWalk> {
  aws::HttpClient* client = nullptr;
  std::shared_ptr<FollowedEndpoint> endpoint;
  std::string bucket;
  std::string prefix;
  std::string start_after;
  bool delimiter = false;
  std::vector<RemoteObject>* objects = nullptr;
  std::vector<std::string>* prefixes = nullptr;
  std::optional<aws::Error>* error = nullptr;
  std::string token;
  int pages = 0;
  int max_pages = 0;  ///< Stop (keeping `token`) after this many pages; 0: no limit.
  std::function<void()> on_done;  ///< Called once the walk has read its last page (not on an error).

  void Next() {
    aws::HttpRequest r = S3Request(endpoint->endpoint(), bucket, "", "GET");
    r.what = fmt::format("ListObjectsV2 s3://{}/{}", bucket, prefix);
    r.query = {{"list-type", "2"}, {"encoding-type", "url"}};
    if (!prefix.empty()) r.query.emplace_back("prefix", prefix);
    if (delimiter) r.query.emplace_back("delimiter", "/");
    if (!token.empty()) {
      r.query.emplace_back("continuation-token", token);
    } else if (!start_after.empty()) {
      r.query.emplace_back("start-after", start_after);
    }
    SubmitS3(*client, endpoint, bucket, "", std::move(r),
             [self = shared_from_this()](aws::Result<aws::HttpResponse> res) { self->OnPage(res); });
  }

  void OnPage(const aws::Result<aws::HttpResponse>& res) {
    if (error->has_value()) return;  // another walk failed: stop
    if (!res) {
      aws::Error e = res.error();
      if (e.service_code == "NoSuchBucket") {
        e.message += fmt::format(" (bucket '{}' does not exist: create it, or fix DEST)", bucket);
      }
      *error = std::move(e);
      return;
    }
    auto next = ParseListPage(res->body, *objects, delimiter ? prefixes : nullptr);
    if (!next) {
      *error = next.error();
      return;
    }
    ++pages;
    if (next->empty()) {
      token.clear();
      if (on_done) on_done();
      return;
    }
    if (*next == token || pages > 1000000) {
      *error = aws::Error{ErrorCode::kParse, "ListObjectsV2: the server repeated a continuation token", false, 0, {}};
      return;
    }
    token = std::move(*next);
    if (max_pages > 0 && pages >= max_pages) return;  // the caller decides how to go on
    Next();
  }
};

// Runs the walks of `prefixes` (all in flight together) and returns the folders they found (delimiter walks).
aws::Result<std::vector<std::string>> WalkAll(aws::HttpClient& client,
                                              const std::shared_ptr<FollowedEndpoint>& endpoint,
                                              const std::string& bucket, const std::vector<std::string>& prefixes,
                                              const std::string& start_after, bool delimiter,
                                              std::vector<RemoteObject>& objects) {
  std::vector<std::string> found;
  std::optional<aws::Error> error;
  // At most kParallelWalks folders at a time: enough to hide the per-page latency of a real S3 (each folder is a
  // separate key range there), without asking a server that reads metadata per key (s3rver: three files a key)
  // for tens of thousands of keys at once, which costs it several times the CPU of the same pages in sequence.
  constexpr std::size_t kParallelWalks = 8;
  std::size_t next = 0;
  std::function<void()> start_next = [&]() {
    if (next >= prefixes.size()) return;
    auto walk = std::make_shared<ListWalk>();
    walk->client = &client;
    walk->endpoint = endpoint;
    walk->bucket = bucket;
    walk->prefix = prefixes[next++];
    walk->start_after = start_after;
    walk->delimiter = delimiter;
    walk->objects = &objects;
    walk->prefixes = &found;
    walk->error = &error;
    walk->on_done = [&start_next]() { start_next(); };
    walk->Next();
  };
  for (std::size_t k = 0; k < kParallelWalks; ++k) start_next();
  client.Run();
  if (error) return std::unexpected(std::move(*error));
  return found;
}

}  // namespace

namespace {

// Finds the folders holding the keys after `after` for a parallel walk: delimiter listings from `after`, a level
// deeper while there are fewer than kEnough, at most three levels. Empty when the key space does not split into
// a moderate number of folders (too many folders would cost a request each): then the caller goes on page by
// page. Keys that come back directly in the listed folders are added to `out`.
aws::Result<std::vector<std::string>> FindFolders(aws::HttpClient& client,
                                                  const std::shared_ptr<FollowedEndpoint>& endpoint,
                                                  const std::string& bucket, const std::string& prefix,
                                                  const std::string& after, std::vector<RemoteObject>& out) {
  constexpr std::size_t kEnough = 8;
  constexpr std::size_t kMost = 64;
  constexpr int kMaxDepth = 3;
  std::vector<std::string> frontier = {prefix};
  for (int depth = 0; depth < kMaxDepth; ++depth) {
    auto folders = WalkAll(client, endpoint, bucket, frontier, after, /*delimiter=*/true, out);
    if (!folders) return std::unexpected(folders.error());
    // Servers differ on whether the folder holding StartAfter itself comes back (S3 rolls up the keys after it;
    // moto leaves the folder out): add it, so that the rest of that folder is never missed.
    for (const std::string& f : frontier) {
      if (!after.starts_with(f)) continue;
      if (const auto slash = after.find('/', f.size()); slash != std::string::npos) {
        folders->push_back(after.substr(0, slash + 1));
      }
    }
    std::sort(folders->begin(), folders->end());
    folders->erase(std::unique(folders->begin(), folders->end()), folders->end());
    if (folders->empty() || folders->size() > kMost) return std::vector<std::string>{};
    if (folders->size() >= kEnough || depth + 1 == kMaxDepth) return std::move(*folders);
    frontier = std::move(*folders);
  }
  return std::vector<std::string>{};
}

}  // namespace

aws::Result<bool> ProbeListing(aws::HttpClient& client, const S3Endpoint& endpoint, const Destination& destination) {
  aws::HttpRequest r = S3Request(endpoint, destination.bucket, "", "GET");
  r.region = endpoint.region;
  r.what = fmt::format("ListObjectsV2 {}", destination.Url());
  r.query = {{"list-type", "2"}, {"encoding-type", "url"}, {"max-keys", "1"}};
  if (!destination.prefix.empty()) r.query.emplace_back("prefix", destination.prefix);
  auto res = client.Send(std::move(r));
  if (!res) return std::unexpected(res.error());
  std::vector<RemoteObject> seen;
  auto next = ParseListPage(res->body, seen);
  if (!next) return std::unexpected(next.error());
  return !seen.empty();
}

aws::Result<std::vector<RemoteObject>> ListObjects(aws::HttpClient& client, const S3Endpoint& endpoint,
                                                   const std::string& bucket, const std::string& prefix) {
  return ListObjectsFollowing(client, std::make_shared<FollowedEndpoint>(endpoint), bucket, prefix);
}

aws::Result<std::vector<RemoteObject>> ListObjectsFollowing(aws::HttpClient& client,
                                                            const std::shared_ptr<FollowedEndpoint>& endpoint,
                                                            const std::string& bucket, const std::string& prefix) {
  // Page by page first: a site of a few thousand objects is listed in a few requests, the fewest there can be.
  constexpr int kSequentialPages = 8;
  std::vector<RemoteObject> out;
  std::optional<aws::Error> error;
  auto walk = std::make_shared<ListWalk>();
  walk->client = &client;
  walk->endpoint = endpoint;
  walk->bucket = bucket;
  walk->prefix = prefix;
  walk->objects = &out;
  walk->error = &error;
  walk->max_pages = kSequentialPages;
  walk->Next();
  client.Run();
  if (error) return std::unexpected(std::move(*error));
  if (!walk->token.empty()) {
    // A very large bucket: rather than waiting on one page at a time, walk the folders that hold the rest in
    // parallel where the key space splits into a moderate number of them; else go on page by page.
    const std::string after = out.empty() ? std::string{} : out.back().key;
    auto folders = FindFolders(client, endpoint, bucket, prefix, after, out);
    if (!folders) return std::unexpected(folders.error());
    if (!folders->empty()) {
      // Keys directly under `prefix` after `after` came back from the delimiter listing; the folders' keys
      // come from their own walks.
      auto ok = WalkAll(client, endpoint, bucket, *folders, after, /*delimiter=*/false, out);
      if (!ok) return std::unexpected(ok.error());
    } else {
      walk->max_pages = 0;
      walk->Next();
      client.Run();
      if (error) return std::unexpected(std::move(*error));
    }
  }
  // A server that ignores start-after or delimiter repeats keys: keep each once.
  std::sort(out.begin(), out.end(), [](const RemoteObject& a, const RemoteObject& b) { return a.key < b.key; });
  out.erase(std::unique(out.begin(), out.end(),
                        [](const RemoteObject& a, const RemoteObject& b) { return a.key == b.key; }),
            out.end());
  return out;
}

void SubmitUpload(aws::HttpClient& client, const S3Endpoint& endpoint, UploadSpec spec, UploadDone done) {
  SubmitUpload(client, std::make_shared<FollowedEndpoint>(endpoint), std::move(spec), std::move(done));
}

void SubmitUpload(aws::HttpClient& client, const std::shared_ptr<FollowedEndpoint>& endpoint, UploadSpec spec,
                  UploadDone done) {
  if (spec.file.generated) return SubmitGeneratedPut(client, endpoint, std::move(spec), std::move(done));
  if (!spec.checksum) spec.checksum = std::make_shared<ChecksumChoice>();
  // An encoded body always goes in one PutObject (see SubmitSinglePut).
  if (spec.file.size <= spec.multipart_threshold || spec.file.encoding != sitemap::Encoding::kIdentity) {
    return SubmitSinglePut(client, endpoint, std::move(spec), std::move(done));
  }
  auto job = std::make_shared<Multipart>();
  job->client = &client;
  job->endpoint = endpoint;
  job->spec = std::move(spec);
  job->done = std::move(done);
  job->Start();
}

std::string DeleteObjectsXml(const std::vector<std::string>& keys) {
  aws::XmlElement root{"Delete", {}, {}};
  root.children.push_back({"Quiet", "true", {}});
  for (const std::string& key : keys) {
    aws::XmlElement object{"Object", {}, {}};
    object.children.push_back({"Key", key, {}});
    root.children.push_back(std::move(object));
  }
  return aws::WriteXml(root, "http://s3.amazonaws.com/doc/2006-03-01/");
}

aws::Result<std::vector<std::pair<std::string, std::string>>> ParseDeleteResult(std::string_view xml) {
  auto doc = aws::ParseXml(xml);
  if (!doc) return std::unexpected(doc.error());
  if (doc->name != "DeleteResult") {
    auto [code, message] = aws::ParseErrorBody(xml);
    return Fail(ErrorCode::kHttp, "DeleteObjects failed: " + (code.empty() ? doc->name : code + ": " + message));
  }
  std::vector<std::pair<std::string, std::string>> failed;
  for (const aws::XmlElement& c : doc->children) {
    if (c.name != "Error") continue;
    failed.emplace_back(c.ChildText("Key"), c.ChildText("Code") + ": " + c.ChildText("Message"));
  }
  return failed;
}

void SubmitDeleteBatch(aws::HttpClient& client, const std::shared_ptr<FollowedEndpoint>& endpoint,
                       const std::string& bucket, std::vector<std::string> keys,
                       std::function<void(aws::Result<std::vector<std::pair<std::string, std::string>>>)> done) {
  aws::HttpRequest r = S3Request(endpoint->endpoint(), bucket, "", "POST");
  r.what = fmt::format("DeleteObjects s3://{} ({} keys)", bucket, keys.size());
  r.query.emplace_back("delete", "");
  r.headers.emplace_back("content-type", "application/xml");
  r.body.kind = aws::Body::Kind::kBytes;
  r.body.bytes = DeleteObjectsXml(keys);
  aws::Md5 md5;
  md5.Update(r.body.bytes.data(), r.body.bytes.size());
  // DeleteObjects requires Content-MD5 (or a checksum header): S3 API reference.
  r.headers.emplace_back("content-md5", Base64Md5(md5.Final()));
  SubmitS3(client, endpoint, bucket, "", std::move(r), [done = std::move(done)](aws::Result<aws::HttpResponse> res) {
    if (!res) return done(std::unexpected(res.error()));
    done(ParseDeleteResult(res->body));
  });
}

std::vector<aws::Result<HashedBody>> HashBodies(std::span<const sitemap::LocalFile* const> files, bool crc32) {
  std::vector<aws::Result<HashedBody>> out;
  out.reserve(files.size());
  std::vector<std::string> paths;  // for messages
  paths.reserve(files.size());
  for (const sitemap::LocalFile* f : files) {
    paths.push_back(f->AbsPath());
    auto opened = sitemap::OpenInSource(*f);
    if (!opened) {
      out.emplace_back(std::unexpected(opened.error()));
      continue;
    }
    HashedBody body;
    body.file = std::make_shared<const UniqueFd>(std::move(opened->fd));
    body.size = opened->size;
    out.emplace_back(std::move(body));
  }
  // The thread's read chunk cut in slices, one for each message being hashed: Md5Many reads at most 16 (its lanes)
  // at a time, and a reader holds its slice from its first piece until it says it is done.
  static constexpr std::size_t kSlices = 16;
  static constexpr std::size_t kSlice = kChunk / kSlices;
  std::vector<char*> free_slices;
  for (std::size_t i = 0; i < kSlices; ++i) free_slices.push_back(ChunkBuffer() + (kSlices - 1 - i) * kSlice);
  std::vector<std::size_t> which;  // out index of each reader
  std::vector<aws::Md5Reader> readers;
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (!out[i]) continue;
    which.push_back(i);
    HashedBody* body = &*out[i];
    readers.emplace_back([body, crc32, path = &paths[i], &free_slices, slice = static_cast<char*>(nullptr),
                          done = std::uint64_t{0}]() mutable -> aws::Result<std::span<const unsigned char>> {
      const auto give_back = [&] {
        if (slice != nullptr) free_slices.push_back(std::exchange(slice, nullptr));
      };
      if (done == body->size) {
        give_back();
        return std::span<const unsigned char>();
      }
      if (slice == nullptr) {
        if (free_slices.empty()) std::abort();  // more readers at once than Md5Many has lanes
        slice = free_slices.back();
        free_slices.pop_back();
      }
      const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(body->size - done, kSlice));
      for (;;) {
        const ssize_t got = ::pread(body->file->get(), slice, want, static_cast<off_t>(done));
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) {
          auto failure = ReadFailure(*path, got);  // before anything else can change errno
          give_back();
          return failure;
        }
        done += static_cast<std::uint64_t>(got);
        if (crc32) body->crc32.Update(slice, static_cast<std::size_t>(got));
        return std::span<const unsigned char>(reinterpret_cast<const unsigned char*>(slice),
                                              static_cast<std::size_t>(got));
      }
    });
  }
  auto digests = aws::Md5Many(readers);
  for (std::size_t n = 0; n < which.size(); ++n) {
    if (digests[n]) {
      out[which[n]]->md5 = *digests[n];
    } else {
      out[which[n]] = std::unexpected(std::move(digests[n].error()));
    }
  }
  return out;
}

std::vector<aws::Result<std::string>> Md5FilesHex(std::span<const sitemap::LocalFile* const> files) {
  std::vector<aws::Result<std::string>> out;
  out.reserve(files.size());
  for (auto& body : HashBodies(files)) {
    if (body) {
      out.emplace_back(aws::HexEncode(body->md5));
    } else {
      out.emplace_back(std::unexpected(std::move(body.error())));
    }
  }
  return out;
}

aws::Result<std::string> Md5FileHex(const sitemap::LocalFile& file, std::uint64_t offset, std::uint64_t length) {
  auto opened = sitemap::OpenInSource(file);
  if (!opened) return std::unexpected(opened.error());
  aws::Md5 md5;
  auto ok = ReadRange(opened->fd.get(), file.AbsPath(), offset, length,
                      [&](const char* p, std::size_t n) { md5.Update(p, n); });
  if (!ok) return std::unexpected(ok.error());
  return aws::HexEncode(md5.Final());
}

std::uint64_t PartSizeFor(std::uint64_t size, std::uint64_t part_size) {
  constexpr std::uint64_t kMaxParts = 10000;
  const std::uint64_t min_for_count = (size + kMaxParts - 1) / kMaxParts;
  return std::max({part_size, min_for_count, std::uint64_t{5} << 20});
}

aws::Result<std::string> LocalEtag(const sitemap::LocalFile& file, std::uint64_t size,
                                   std::uint64_t multipart_threshold, std::uint64_t part_size, std::string* whole_md5) {
  if (size <= multipart_threshold) return Md5FileHex(file, 0, size);
  auto opened = sitemap::OpenInSource(file);
  if (!opened) return std::unexpected(opened.error());
  const std::string path = file.AbsPath();
  const std::uint64_t ps = PartSizeFor(size, part_size);
  aws::Md5 all;
  aws::Md5 whole;
  std::uint64_t parts = 0;
  for (std::uint64_t offset = 0; offset < size; offset += ps, ++parts) {
    aws::Md5 part;
    auto ok = ReadRange(opened->fd.get(), path, offset, std::min(ps, size - offset), [&](const char* p, std::size_t n) {
      part.Update(p, n);
      if (whole_md5 != nullptr) whole.Update(p, n);
    });
    if (!ok) return std::unexpected(ok.error());
    auto digest = part.Final();
    all.Update(digest.data(), digest.size());
  }
  if (whole_md5 != nullptr) *whole_md5 = aws::HexEncode(whole.Final());
  return aws::HexEncode(all.Final()) + "-" + std::to_string(parts);
}

// ---- Issue 14: headers, CopyObject, HEAD ------------------------------------------------------------------------

std::vector<std::pair<std::string, std::string>> ObjectHeaders(const sitemap::LocalFile& file) {
  std::vector<std::pair<std::string, std::string>> out;
  const auto add = [&](std::string_view name, std::string_view value) {
    if (!value.empty()) out.emplace_back(name, value);
  };
  add("content-type", file.content_type.empty() ? std::string_view("application/octet-stream") : file.content_type);
  add("cache-control", file.cache_control);
  // The body's own encoding (compress:) is what the bytes are; a rule's content_encoding only labels a file
  // that was stored encoded already.
  const sitemap::ExtraHeaders none;
  const sitemap::ExtraHeaders& extra = file.extra != nullptr ? *file.extra : none;
  switch (file.encoding) {
    case sitemap::Encoding::kGzip: add("content-encoding", "gzip"); break;
    case sitemap::Encoding::kBrotli: add("content-encoding", "br"); break;
    case sitemap::Encoding::kIdentity: add("content-encoding", extra.content_encoding); break;
  }
  add("content-disposition", extra.content_disposition);
  add("content-language", extra.content_language);
  for (const auto& [name, value] : extra.metadata) {
    // An empty value is stored (and shown by HEAD) as the name with no value: kept, unlike the headers above.
    out.emplace_back("x-amz-meta-" + name, value);
  }
  add("x-amz-storage-class", extra.storage_class);
  add("x-amz-acl", extra.acl);
  add("x-amz-server-side-encryption", extra.sse);
  if (extra.sse.starts_with("aws:kms")) add("x-amz-server-side-encryption-aws-kms-key-id", extra.kms_key_id);
  add("x-amz-website-redirect-location", extra.website_redirect);
  std::sort(out.begin(), out.end());
  return out;
}

std::string HeadersDigest(const sitemap::LocalFile& file) {
  // Names are header tokens (no ':') and values hold no line feed (the config refuses control characters), so
  // "name:value\n" per header, in ObjectHeaders' order, is unambiguous.
  std::string canonical;
  for (const auto& [name, value] : ObjectHeaders(file)) {
    canonical += name;
    canonical += ':';
    canonical += value;
    canonical += '\n';
  }
  return aws::Sha256Hex(canonical);
}

namespace {

// CopyObject copies at most 5 GB in one request (S3 API reference, CopyObject); a larger object would need
// UploadPartCopy, so its headers are changed by uploading it again.
constexpr std::uint64_t kMaxCopySize = 5ull << 30;
// CopyObject requests sent for one update: S3 can answer 200 and still fail, with the error in the body (S3 API
// reference, CopyObject: "a 200 OK response can contain either a success or an error"; the AWS SDKs retry it).
constexpr int kCopyAttempts = 4;

void SendCopy(aws::HttpClient& client, const std::shared_ptr<FollowedEndpoint>& endpoint,
              std::shared_ptr<UploadSpec> spec, UploadDone done, int attempt) {
  aws::HttpRequest r = S3Request(endpoint->endpoint(), spec->bucket, spec->key, "PUT");
  r.what = fmt::format("CopyObject s3://{}/{} (its headers)", spec->bucket, spec->key);
  AddObjectHeaders(r, spec->file);
  // The source is the object itself: "/bucket/key", the key URL-encoded; REPLACE stores the headers sent
  // instead of copying the old ones, which is what makes a copy onto itself legal.
  r.headers.emplace_back("x-amz-copy-source", "/" + spec->bucket + "/" + aws::UriEncode(spec->key, true));
  r.headers.emplace_back("x-amz-metadata-directive", "REPLACE");
  const std::string bucket = spec->bucket;
  const std::string key = spec->key;
  SubmitS3(client, endpoint, bucket, key, std::move(r),
           [&client, endpoint, spec, attempt, done = std::move(done)](aws::Result<aws::HttpResponse> res) mutable {
             if (!res) {
               // The object went since it was listed (NoSuchKey), or it is archived (GLACIER, DEEP_ARCHIVE: S3
               // copies such an object only once restored, 403 InvalidObjectState; moto names it
               // ObjectNotInActiveTierError): a PutObject replaces it whole, body and headers.
               const std::string& code = res.error().service_code;
               if (code == "NoSuchKey" || code == "InvalidObjectState" || code == "ObjectNotInActiveTierError") {
                 return SubmitUpload(client, endpoint, std::move(*spec), std::move(done));
               }
               return done(std::unexpected(res.error()));
             }
             auto [code, message] = aws::ParseErrorBody(res->body);
             if (!code.empty()) {
               if (attempt < kCopyAttempts) return SendCopy(client, endpoint, spec, std::move(done), attempt + 1);
               return done(std::unexpected(aws::Error{
                   ErrorCode::kHttp,
                   fmt::format("CopyObject s3://{}/{}: 200 with an error: {}: {} (after {} attempts); the next run "
                               "tries again",
                               spec->bucket, spec->key, code, message, attempt),
                   true, 200, code}));
             }
             auto doc = aws::ParseXml(res->body);
             if (!doc || doc->name != "CopyObjectResult") {
               return done(Fail(ErrorCode::kParse,
                                fmt::format("CopyObject s3://{}/{}: the answer is not a CopyObjectResult",
                                            spec->bucket, spec->key)));
             }
             done(Uploaded{0, Unquote(doc->ChildText("ETag"))});
           });
}

std::string_view Trimmed(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

std::string_view Find(std::span<const std::pair<std::string, std::string>> headers, std::string_view name) {
  for (const auto& [n, v] : headers) {
    if (n == name) return Trimmed(v);
  }
  return {};
}

std::vector<std::pair<std::string_view, std::string_view>> UserMetadata(
    std::span<const std::pair<std::string, std::string>> headers) {
  std::vector<std::pair<std::string_view, std::string_view>> out;
  for (const auto& [n, v] : headers) {
    if (n.starts_with("x-amz-meta-")) out.emplace_back(n, Trimmed(v));
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

void SubmitCopy(aws::HttpClient& client, const std::shared_ptr<FollowedEndpoint>& endpoint, UploadSpec spec,
                UploadDone done) {
  if (!spec.checksum) spec.checksum = std::make_shared<ChecksumChoice>();
  if (spec.file.size > kMaxCopySize) return SubmitUpload(client, endpoint, std::move(spec), std::move(done));
  SendCopy(client, endpoint, std::make_shared<UploadSpec>(std::move(spec)), std::move(done), 1);
}

void SubmitHead(aws::HttpClient& client, const std::shared_ptr<FollowedEndpoint>& endpoint, const std::string& bucket,
                const std::string& key, std::function<void(aws::Result<ObjectHead>)> done) {
  aws::HttpRequest r = S3Request(endpoint->endpoint(), bucket, key, "HEAD");
  r.what = fmt::format("HeadObject s3://{}/{}", bucket, key);
  SubmitS3(client, endpoint, bucket, key, std::move(r), [done = std::move(done)](aws::Result<aws::HttpResponse> res) {
    if (!res) return done(std::unexpected(res.error()));
    ObjectHead head;
    head.headers = std::move(res->headers);
    for (auto& [name, value] : head.headers) {
      std::transform(name.begin(), name.end(), name.begin(),
                     [](char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); });
    }
    head.etag = Unquote(std::string(Find(head.headers, "etag")));
    const std::string_view length = Find(head.headers, "content-length");
    std::uint64_t size = 0;
    if (std::from_chars(length.data(), length.data() + length.size(), size).ec == std::errc{}) head.size = size;
    done(std::move(head));
  });
}

std::vector<HeadVerdict> HeadAndCompare(aws::HttpClient& client, const std::shared_ptr<FollowedEndpoint>& endpoint,
                                        const std::string& bucket,
                                        std::span<const std::pair<const sitemap::LocalFile*, std::string>> checks) {
  std::vector<HeadVerdict> out(checks.size(), HeadVerdict{HeadVerdict::Kind::kFailed, "no answer"});
  // A window at a time (as Session feeds uploads): thousands of queued requests would only hold memory.
  constexpr std::size_t kWindow = 256;
  std::size_t next = 0;
  std::function<void()> submit_next = [&]() {
    if (next >= checks.size()) return;
    const std::size_t i = next++;
    SubmitHead(client, endpoint, bucket, checks[i].second, [&, i](aws::Result<ObjectHead> head) {
      if (head) {
        const bool differ = HeadersDiffer(*head, ObjectHeaders(*checks[i].first));
        out[i] = HeadVerdict{differ ? HeadVerdict::Kind::kDiffer : HeadVerdict::Kind::kSame, {}};
      } else if (head.error().code == ErrorCode::kNotFound) {
        out[i] = HeadVerdict{HeadVerdict::Kind::kGone, {}};
      } else {
        out[i] = HeadVerdict{HeadVerdict::Kind::kFailed, head.error().message};
      }
      submit_next();
    });
  };
  for (std::size_t k = 0; k < kWindow; ++k) submit_next();
  client.Run();
  return out;
}

bool HeadersDiffer(const ObjectHead& head, std::span<const std::pair<std::string, std::string>> wanted) {
  // Shown by HEAD as stored; absent on both sides is equal.
  for (std::string_view name : {"cache-control", "content-disposition", "content-encoding", "content-language",
                                "content-type", "x-amz-website-redirect-location"}) {
    if (Find(head.headers, name) != Find(wanted, name)) return true;
  }
  if (UserMetadata(head.headers) != UserMetadata(wanted)) return true;
  // S3 leaves x-amz-storage-class out of the answer for STANDARD (S3 API reference, HeadObject).
  const auto storage_class = [](std::string_view v) { return v.empty() ? std::string_view("STANDARD") : v; };
  if (storage_class(Find(head.headers, "x-amz-storage-class")) != storage_class(Find(wanted, "x-amz-storage-class"))) {
    return true;
  }
  // No sse wanted: the bucket's default encryption applies (S3 encrypts every new object with SSE-S3 at least),
  // which a copy would apply again; nothing to compare.
  const std::string_view sse = Find(wanted, "x-amz-server-side-encryption");
  if (!sse.empty()) {
    if (Find(head.headers, "x-amz-server-side-encryption") != sse) return true;
    // HEAD names the key by its ARN whatever form was sent: a key ID matches the ARN's last part; an alias cannot
    // be matched to the key it points at, so it is not compared.
    const std::string_view key = Find(wanted, "x-amz-server-side-encryption-aws-kms-key-id");
    const std::string_view shown = Find(head.headers, "x-amz-server-side-encryption-aws-kms-key-id");
    const bool alias = key.starts_with("alias/") || key.find(":alias/") != std::string_view::npos;
    if (!key.empty() && !alias && shown != key && !(shown.ends_with(key) && shown.size() > key.size() &&
                                                    shown[shown.size() - key.size() - 1] == '/')) {
      return true;
    }
  }
  // x-amz-acl is never shown by HEAD (the ACL is a subresource): not compared.
  return false;
}

}  // namespace sitesync::sync
