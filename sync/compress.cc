// Pre-compressed bodies (`compress:` rules): gzip with zlib, br with libbrotli's encoder. The output must be the
// same bytes for the same file on every run, so that the size diff (and the record's MD5) stay stable: fixed
// levels and window, and a gzip header without a timestamp or a name.
#include <brotli/encode.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstring>
#include <mutex>
#include <thread>
#include <unordered_map>

#include <fmt/format.h>

#include "sync/s3_client.h"

namespace sitesync::sync {
namespace {

using aws::ErrorCode;
using aws::Fail;

// gzip: zlib's highest level. Its ratio on HTML is within a fraction of a percent of level 6 and it costs little
// more; both are fixed so that the bytes never change between runs.
constexpr int kGzipLevel = 9;
constexpr int kGzipWindowBits = 15 + 16;  // 32 KiB window; +16 asks deflate for the gzip wrapper (RFC 1952)
constexpr int kGzipMemLevel = 8;          // zlib's default
constexpr int kGzipOsUnix = 3;            // RFC 1952 OS byte, fixed whatever the build platform says

// br: quality 5 and a 4 MiB window. Measured (CPU time, one core of this project's 2-core machine) on 1 MiB of the
// bench generator's HTML: q5 29 MB/s to 25.1 % of the size; q6 23 MB/s, 24.8 %; q9 7.8 MB/s, 24.2 %; q11 (the
// maximum) 0.7 MB/s, 22.5 %; zlib level 9 16 MB/s, 31.1 %. The medium bench site has ~45 MB of HTML, compressed on
// every run that has no record of it: about 1.5 s of CPU at q5, over a minute at q11, for 2.6 % less.
constexpr int kBrotliQuality = 5;
constexpr int kBrotliWindowBits = 22;

// What EncodeFile found for a file at one state of it: reused by EncodedMd5 while the file
// is unchanged (same device, inode, mtime and size), so that a watch rescan does not compress the site again.
struct Memo {
  std::uint64_t dev = 0;
  std::uint64_t ino = 0;
  std::int64_t mtime_ns = 0;
  std::uint64_t disk_size = 0;
  sitemap::Encoding encoding = sitemap::Encoding::kIdentity;
  std::uint64_t encoded_size = 0;
  std::string md5;
};

struct MemoTable {
  std::mutex mutex;
  std::unordered_map<std::string, Memo> by_path;  // one entry per file path: bounded by the site
};

MemoTable& Memos() {
  static MemoTable table;
  return table;
}

std::optional<Memo> FindMemo(const sitemap::LocalFile& file) {
  if (file.dev == 0 && file.ino == 0) return std::nullopt;  // the walk did not see it: nothing to compare with
  MemoTable& table = Memos();
  const std::lock_guard lock(table.mutex);
  auto it = table.by_path.find(file.AbsPath());
  if (it == table.by_path.end()) return std::nullopt;
  const Memo& m = it->second;
  if (m.dev != file.dev || m.ino != file.ino || m.mtime_ns != file.mtime_ns || m.disk_size != file.disk_size ||
      m.encoding != file.encoding) {
    return std::nullopt;
  }
  return m;
}

void KeepMemo(const std::string& path, Memo memo) {
  MemoTable& table = Memos();
  const std::lock_guard lock(table.mutex);
  table.by_path.insert_or_assign(path, std::move(memo));
}

// Reads the whole open file (as it is now: it may have changed size since the walk).
aws::Result<std::string> ReadAll(int fd, std::uint64_t size_hint, const std::string& path) {
  std::string data;
  data.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(size_hint, 1ull << 30)));
  std::string chunk(1 << 16, '\0');
  for (;;) {
    const ssize_t got = ::read(fd, chunk.data(), chunk.size());
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return Fail(ErrorCode::kIo, fmt::format("compress {}: cannot read it: {}", path, std::strerror(errno)));
    if (got == 0) break;
    data.append(chunk.data(), static_cast<std::size_t>(got));
  }
  return data;
}

aws::Result<std::string> Gzip(const std::string& data, const std::string& path) {
  z_stream z{};
  if (deflateInit2(&z, kGzipLevel, Z_DEFLATED, kGzipWindowBits, kGzipMemLevel, Z_DEFAULT_STRATEGY) != Z_OK) {
    return Fail(ErrorCode::kInternal, fmt::format("compress {}: zlib deflateInit2 failed", path));
  }
  struct End {
    z_stream* z;
    ~End() { deflateEnd(z); }
  } end{&z};
  // The header deflate writes by default has mtime 0 and no name already; set every field anyway so that the
  // bytes do not depend on zlib's defaults (the OS byte would be the build platform's).
  gz_header header{};
  header.text = 0;
  header.time = 0;
  header.os = kGzipOsUnix;
  header.extra = Z_NULL;
  header.name = Z_NULL;
  header.comment = Z_NULL;
  header.hcrc = 0;
  if (deflateSetHeader(&z, &header) != Z_OK) {
    return Fail(ErrorCode::kInternal, fmt::format("compress {}: zlib deflateSetHeader failed", path));
  }
  std::string out(static_cast<std::size_t>(deflateBound(&z, static_cast<uLong>(data.size()))) + 64, '\0');
  // One call over the whole input: deflate's output then depends on the bytes alone, never on how they were fed.
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  std::size_t in_left = data.size();
  std::size_t out_done = 0;
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    // avail_* are 32-bit: an input past 4 GiB goes in slices.
    const auto in_now = static_cast<uInt>(std::min<std::size_t>(in_left, UINT_MAX));
    z.avail_in = in_now;
    if (out.size() - out_done < 64) out.resize(out.size() * 2);
    z.next_out = reinterpret_cast<Bytef*>(out.data() + out_done);
    const auto out_now = static_cast<uInt>(std::min<std::size_t>(out.size() - out_done, UINT_MAX));
    z.avail_out = out_now;
    rc = deflate(&z, in_now == in_left ? Z_FINISH : Z_NO_FLUSH);
    if (rc == Z_STREAM_ERROR) return Fail(ErrorCode::kInternal, fmt::format("compress {}: zlib deflate failed", path));
    in_left -= in_now - z.avail_in;
    out_done += out_now - z.avail_out;
  }
  out.resize(out_done);
  return out;
}

aws::Result<std::string> Brotli(const std::string& data, const std::string& path) {
  std::size_t bound = BrotliEncoderMaxCompressedSize(data.size());
  if (bound == 0) bound = data.size() + (data.size() >> 2) + 1024;  // 0: past the bound's own range
  std::string out(bound, '\0');
  std::size_t size = out.size();
  if (BrotliEncoderCompress(kBrotliQuality, kBrotliWindowBits, BROTLI_MODE_GENERIC, data.size(),
                            reinterpret_cast<const std::uint8_t*>(data.data()), &size,
                            reinterpret_cast<std::uint8_t*>(out.data())) != BROTLI_TRUE) {
    return Fail(ErrorCode::kInternal, fmt::format("compress {}: brotli encoding failed", path));
  }
  out.resize(size);
  return out;
}

}  // namespace

std::string_view ContentEncodingOf(sitemap::Encoding encoding) {
  switch (encoding) {
    case sitemap::Encoding::kGzip: return "gzip";
    case sitemap::Encoding::kBrotli: return "br";
    case sitemap::Encoding::kIdentity: break;
  }
  return {};
}

aws::Result<EncodedBody> EncodeFile(const sitemap::LocalFile& file) {
  const std::string path = file.AbsPath();
  if (file.encoding == sitemap::Encoding::kIdentity) {
    return Fail(ErrorCode::kInternal, fmt::format("compress {}: the file has no compress: encoding", path));
  }
  auto opened = sitemap::OpenInSource(file);
  if (!opened) return std::unexpected(opened.error());
  struct stat st {};
  if (::fstat(opened->fd.get(), &st) != 0) {
    return Fail(ErrorCode::kIo, fmt::format("compress {}: cannot stat it: {}", path, std::strerror(errno)));
  }
  auto data = ReadAll(opened->fd.get(), opened->size, path);
  if (!data) return std::unexpected(data.error());
  auto bytes = file.encoding == sitemap::Encoding::kGzip ? Gzip(*data, path) : Brotli(*data, path);
  if (!bytes) return std::unexpected(bytes.error());
  aws::Md5 md5;
  md5.Update(bytes->data(), bytes->size());
  EncodedBody body{std::move(*bytes), aws::HexEncode(md5.Final())};
  // Kept for the file as read (its fstat), not as walked: a file that changed since the walk is found again only
  // when a later walk sees it in this state.
  if (static_cast<std::uint64_t>(st.st_size) == data->size()) {
    KeepMemo(path, Memo{static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino),
                        static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec,
                        data->size(), file.encoding, body.bytes.size(), body.md5});
  }
  return body;
}

aws::Result<std::string> EncodedMd5(const sitemap::LocalFile& file) {
  if (auto memo = FindMemo(file)) return memo->md5;
  auto body = EncodeFile(file);
  if (!body) return std::unexpected(body.error());
  return std::move(body->md5);
}

}  // namespace sitesync::sync
