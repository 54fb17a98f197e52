// compress: rules: deterministic gzip and br bodies (checked by decompressing them with zlib and libbrotli's
// decoder), their sizes before the diff, and their uploads (one PutObject from memory with Content-Encoding).
#include <gtest/gtest.h>

#include <brotli/decode.h>
#include <zlib.h>

#include <fstream>
#include <random>

#include <fmt/format.h>

#include "sync/fake_s3_test.h"
#include "sync/s3_client.h"
#include "sync/sync.h"

namespace sitesync::sync {
namespace {

namespace fs = std::filesystem;
using sitemap::Encoding;
using testing::FakeS3;

std::string Md5Of(std::string_view data) {
  aws::Md5 md5;
  md5.Update(data.data(), data.size());
  return aws::HexEncode(md5.Final());
}

// Decompresses a gzip member with zlib (inflate with the gzip wrapper); empty optional on any error.
std::optional<std::string> Gunzip(const std::string& in) {
  z_stream z{};
  if (inflateInit2(&z, 15 + 16) != Z_OK) return std::nullopt;
  std::string out;
  std::string chunk(1 << 16, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  int rc = Z_OK;
  while (rc == Z_OK) {
    z.next_out = reinterpret_cast<Bytef*>(chunk.data());
    z.avail_out = static_cast<uInt>(chunk.size());
    rc = inflate(&z, Z_NO_FLUSH);
    out.append(chunk.data(), chunk.size() - z.avail_out);
  }
  const bool whole = rc == Z_STREAM_END && z.avail_in == 0;
  inflateEnd(&z);
  if (!whole) return std::nullopt;
  return out;
}

// Decompresses a brotli stream with BrotliDecoderDecompressStream; empty optional on any error.
std::optional<std::string> Unbrotli(const std::string& in) {
  BrotliDecoderState* state = BrotliDecoderCreateInstance(nullptr, nullptr, nullptr);
  if (state == nullptr) return std::nullopt;
  std::string out;
  std::string chunk(1 << 16, '\0');
  std::size_t avail_in = in.size();
  const auto* next_in = reinterpret_cast<const std::uint8_t*>(in.data());
  BrotliDecoderResult rc = BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT;
  while (rc == BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT) {
    std::size_t avail_out = chunk.size();
    auto* next_out = reinterpret_cast<std::uint8_t*>(chunk.data());
    rc = BrotliDecoderDecompressStream(state, &avail_in, &next_in, &avail_out, &next_out, nullptr);
    out.append(chunk.data(), chunk.size() - avail_out);
  }
  BrotliDecoderDestroyInstance(state);
  if (rc != BROTLI_DECODER_RESULT_SUCCESS || avail_in != 0) return std::nullopt;
  return out;
}

std::optional<std::string> Decode(const std::string& body, Encoding encoding) {
  return encoding == Encoding::kGzip ? Gunzip(body) : Unbrotli(body);
}

// Text shaped like a generated site's HTML, `size` bytes, seeded.
std::string Html(std::size_t size, unsigned seed) {
  static constexpr std::string_view kWords[] = {"<p>", "</p>", "<a href=\"/posts/", "\">", "</a>", "the", "site",
                                                 "static", "café", "S3", "deploy", "\n", "<li>", "</li>", "2026"};
  std::mt19937 rng(seed);
  std::string out = "<!doctype html><html><head><title>t</title></head><body>\n";
  while (out.size() < size) {
    out += kWords[rng() % std::size(kWords)];
    out += ' ';
  }
  out.resize(size);
  return out;
}

// Records each request as it is about to be sent (after prepare: body and checksum headers set), then hands it to
// the fake S3.
class Recording final : public aws::HttpClient {
 public:
  explicit Recording(aws::HttpClient& inner) : inner_(inner) {}
  std::vector<aws::HttpRequest> sent;

  void Submit(aws::HttpRequest request, Callback done) override {
    request.prepare = [this, prepare = std::move(request.prepare)](aws::HttpRequest& r) -> aws::Result<void> {
      if (prepare) {
        if (auto ok = prepare(r); !ok) return ok;
      }
      sent.push_back(r);
      return {};
    };
    inner_.Submit(std::move(request), std::move(done));
  }
  void Run() override { inner_.Run(); }
  aws::ClientStats Stats() const override { return inner_.Stats(); }

  // The PUT requests sent for `key` ("site/a.html").
  std::vector<const aws::HttpRequest*> Puts(std::string_view key) const {
    std::vector<const aws::HttpRequest*> out;
    for (const aws::HttpRequest& r : sent) {
      if (r.method == "PUT" && r.path == "/bucket/" + std::string(key)) out.push_back(&r);
    }
    return out;
  }

 private:
  aws::HttpClient& inner_;
};

std::string HeaderOf(const aws::HttpRequest& r, std::string_view name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return {};
}

class NullReporter final : public Reporter {
 public:
  void OnWarning(std::string_view message) override { warnings.emplace_back(message); }
  void OnPlan(const Plan&, bool) override {}
  void OnUploaded(std::string_view key, std::uint64_t, bool, UploadReason) override { uploaded.emplace_back(key); }
  void OnDeleted(std::string_view, bool) override {}
  void OnError(std::string_view key, std::string_view message) override {
    errors.push_back(fmt::format("{}: {}", key, message));
  }
  void OnProgress(std::uint64_t, std::uint64_t) override {}
  std::vector<std::string> warnings, uploaded, errors;
};

class CompressTest : public testing::TempSiteTest {
 protected:
  // The file SOURCE/rel as the walk would give it, with `encoding`.
  sitemap::LocalFile File(const std::string& rel, Encoding encoding) const {
    sitemap::WalkOptions options;
    options.compress = {{rel, encoding}};
    auto site = sitemap::Walk(root_, options);
    EXPECT_TRUE(site.has_value());
    for (const sitemap::LocalFile& f : site->files) {
      if (f.rel_path == rel) return f;
    }
    ADD_FAILURE() << rel << " not walked";
    return {};
  }

  SyncOptions Options(Compare compare = Compare::kSize) const {
    SyncOptions o;
    o.source = root_;
    o.destination = {"bucket", "site/"};
    o.compare = compare;
    o.filters.compress = {{"*.html", Encoding::kGzip}, {"*.css", Encoding::kBrotli}};
    return o;
  }

  S3Endpoint endpoint_{"http://fake", true, "us-east-1"};
};

TEST_F(CompressTest, GzipIsDeterministicDecompressesAndHasAFixedHeader) {
  const std::string content = Html(300 * 1024, 1);
  Write("a.html", content);
  Write("copy/b.html", content);  // same bytes, another name and another mtime
  fs::last_write_time(root_ / "copy/b.html", fs::file_time_type::clock::now() - std::chrono::hours(50));
  auto first = EncodeFile(File("a.html", Encoding::kGzip));
  ASSERT_TRUE(first.has_value()) << first.error().message;
  auto again = EncodeFile(File("a.html", Encoding::kGzip));
  auto other = EncodeFile(File("copy/b.html", Encoding::kGzip));
  ASSERT_TRUE(again.has_value() && other.has_value());
  EXPECT_EQ(first->bytes, again->bytes);
  EXPECT_EQ(first->bytes, other->bytes) << "no name, no mtime in the header";
  EXPECT_EQ(first->md5, Md5Of(first->bytes));
  EXPECT_LT(first->bytes.size(), content.size() / 2);
  auto plain = Gunzip(first->bytes);
  ASSERT_TRUE(plain.has_value());
  EXPECT_EQ(*plain, content);
  // RFC 1952 header: magic, deflate, no flags (no name, comment, extra, header CRC), MTIME 0, XFL 2 (level 9),
  // OS 3.
  ASSERT_GE(first->bytes.size(), 10u);
  const std::string header = first->bytes.substr(0, 10);
  EXPECT_EQ(header, std::string("\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\x03", 10));
}

TEST_F(CompressTest, BrotliIsDeterministicAndDecompresses) {
  const std::string content = Html(200 * 1024, 2);
  Write("s.css", content);
  auto first = EncodeFile(File("s.css", Encoding::kBrotli));
  ASSERT_TRUE(first.has_value()) << first.error().message;
  auto again = EncodeFile(File("s.css", Encoding::kBrotli));
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(first->bytes, again->bytes);
  EXPECT_EQ(first->md5, Md5Of(first->bytes));
  EXPECT_LT(first->bytes.size(), content.size() / 2);
  auto plain = Unbrotli(first->bytes);
  ASSERT_TRUE(plain.has_value());
  EXPECT_EQ(*plain, content);
  // Not a gzip stream.
  EXPECT_FALSE(Gunzip(first->bytes).has_value());
}

TEST_F(CompressTest, EdgeSizesRoundTrip) {
  // Empty, one byte, incompressible bytes (the body grows), and more than one brotli window's worth (4 MiB).
  std::mt19937 rng(7);
  std::string noise(100'000, '\0');
  for (char& c : noise) c = static_cast<char>(rng());
  const std::pair<std::string, std::string> files[] = {
      {"empty.txt", ""}, {"one.txt", "x"}, {"noise.bin", noise}, {"big.html", Html((4 << 20) + 200'000, 3)}};
  for (const auto& [rel, content] : files) Write(rel, content);
  for (const Encoding encoding : {Encoding::kGzip, Encoding::kBrotli}) {
    for (const auto& [rel, content] : files) {
      auto body = EncodeFile(File(rel, encoding));
      ASSERT_TRUE(body.has_value()) << rel << ": " << body.error().message;
      auto plain = Decode(body->bytes, encoding);
      ASSERT_TRUE(plain.has_value()) << rel;
      EXPECT_EQ(*plain, content) << rel;
      if (content.size() > 1'000'000) continue;  // determinism is shown on the small ones (the big one is slow)
      auto again = EncodeFile(File(rel, encoding));
      ASSERT_TRUE(again.has_value());
      EXPECT_EQ(again->bytes, body->bytes) << rel;
    }
  }
}

TEST_F(CompressTest, FailuresNameTheFile) {
  Write("gone.html", "<p>soon gone</p>");
  const sitemap::LocalFile file = File("gone.html", Encoding::kGzip);
  fs::remove(root_ / "gone.html");
  auto gone = EncodeFile(file);
  ASSERT_FALSE(gone.has_value());
  EXPECT_EQ(gone.error().code, aws::ErrorCode::kNotFound);
  EXPECT_NE(gone.error().message.find("gone.html"), std::string::npos) << gone.error().message;
  Write("plain.txt", "text");
  EXPECT_FALSE(EncodeFile(File("plain.txt", Encoding::kIdentity)).has_value());
}

TEST_F(CompressTest, UploadSendsTheEncodedBodyInOnePutWithContentEncoding) {
  const std::string page = Html(40 * 1024, 8);
  const std::string css = Html(30 * 1024, 9);
  Write("index.html", page);
  Write("s.css", css);
  Write("app.js", Html(20'000, 10));
  FakeS3 s3;
  Recording client(s3);
  NullReporter reporter;
  SyncOptions options = Options();
  options.multipart_threshold = 8 << 10;  // below the encoded sizes: still one PutObject each
  auto r = RunSync(options, endpoint_, client, reporter);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_TRUE(reporter.errors.empty()) << reporter.errors.front();
  EXPECT_EQ(r->uploaded, 3u);
  EXPECT_EQ(s3.Count("CREATE site/index.html"), 0) << "no multipart for an encoded body";
  EXPECT_EQ(s3.Count("CREATE site/s.css"), 0);

  const struct {
    std::string key;
    std::string content;
    Encoding encoding;
  } expected[] = {{"site/index.html", page, Encoding::kGzip}, {"site/s.css", css, Encoding::kBrotli}};
  std::uint64_t encoded_bytes = 0;
  for (const auto& e : expected) {
    const auto puts = client.Puts(e.key);
    ASSERT_EQ(puts.size(), 1u) << e.key;
    const aws::HttpRequest& put = *puts[0];
    EXPECT_EQ(HeaderOf(put, "content-encoding"), ContentEncodingOf(e.encoding)) << e.key;
    ASSERT_EQ(put.body.kind, aws::Body::Kind::kBytes);
    auto plain = Decode(put.body.bytes, e.encoding);
    ASSERT_TRUE(plain.has_value()) << e.key;
    EXPECT_EQ(*plain, e.content) << e.key;
    // The CRC-32 is over the encoded bytes (the fake checks it: 400 BadDigest otherwise).
    aws::Crc32 crc;
    crc.Update(put.body.bytes.data(), put.body.bytes.size());
    EXPECT_EQ(HeaderOf(put, "x-amz-checksum-crc32"), crc.Base64());
    EXPECT_EQ(s3.objects.at(e.key), std::make_pair(std::uint64_t{put.body.bytes.size()}, Md5Of(put.body.bytes)));
    encoded_bytes += put.body.bytes.size();
  }
  EXPECT_EQ(s3.Count("CREATE site/app.js"), 1) << "an identity file above the threshold is still multipart";
  for (const aws::HttpRequest& req : client.sent) {
    if (req.path == "/bucket/site/app.js") {
      EXPECT_TRUE(HeaderOf(req, "content-encoding").empty()) << req.what;
    }
  }
  EXPECT_EQ(r->bytes_uploaded, encoded_bytes + s3.objects.at("site/app.js").first) << "bytes = encoded sizes";
  EXPECT_EQ(r->hashed, 0u) << "new objects: encoded once, by their upload, never to compare";
}

TEST_F(CompressTest, ContentMd5SessionsProtectTheEncodedBody) {
  Write("index.html", Html(10'000, 11));
  FakeS3 s3;
  s3.checksums = testing::Checksums::kRgw;  // ignores the CRC-32: the session falls back to Content-MD5
  Recording client(s3);
  NullReporter reporter;
  Write("a.html", Html(9'000, 12));
  auto r = RunSync(Options(), endpoint_, client, reporter);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_TRUE(reporter.errors.empty()) << reporter.errors.front();
  // The first PUT carried a CRC-32 that was not echoed: its ETag was checked against the encoded body's MD5 (no
  // resend), and the next one carries Content-MD5 over the encoded bytes.
  EXPECT_EQ(s3.Count("PUT "), 2);
  const auto second = client.Puts("site/index.html");
  ASSERT_EQ(second.size(), 1u);
  aws::Md5 md5;
  md5.Update(second[0]->body.bytes.data(), second[0]->body.bytes.size());
  EXPECT_EQ(HeaderOf(*second[0], "content-md5"), aws::Base64Encode(md5.Final()));
  EXPECT_EQ(s3.objects.at("site/index.html").second, Md5Of(second[0]->body.bytes));
}

TEST_F(CompressTest, SecondRunUploadsNothingAndAChangedFileGoesUp) {
  Write("index.html", Html(30'000, 13));
  Write("blog/post.html", Html(12'000, 14));
  Write("s.css", Html(8'000, 15));
  Write("raw.txt", "not compressed");
  for (const Compare compare : {Compare::kSize, Compare::kChecksum}) {
    FakeS3 s3;
    NullReporter reporter;
    auto first = RunSync(Options(compare), endpoint_, s3, reporter);
    ASSERT_TRUE(first.has_value());
    EXPECT_EQ(first->uploaded, 4u);
    EXPECT_EQ(s3.objects.at("site/raw.txt").first, 14u);
    NullReporter again_reporter;
    auto again = RunSync(Options(compare), endpoint_, s3, again_reporter);
    ASSERT_TRUE(again.has_value());
    EXPECT_EQ(again->uploaded, 0u) << "compare " << static_cast<int>(compare);
    EXPECT_EQ(again->unchanged, 4u);
    EXPECT_TRUE(again_reporter.warnings.empty()) << again_reporter.warnings.front();
  }
  // A change, in a watch session: the batch uploads exactly the changed page; a batch with no change uploads
  // nothing (its ETag is the encoded body's MD5).
  FakeS3 s3;
  NullReporter reporter;
  Session session(Options(), endpoint_, s3);
  ASSERT_TRUE(session.Initial(reporter).has_value());
  s3.log.clear();
  Write("blog/post.html", Html(12'000, 16));
  auto batch = session.Batch({"blog/post.html", "index.html"}, false, BatchDeletes::kHold, reporter);
  ASSERT_TRUE(batch.has_value()) << batch.error().message;
  EXPECT_EQ(batch->result.uploaded_keys, std::vector<std::string>{"blog/post.html"});
  EXPECT_EQ(s3.log, std::vector<std::string>{"PUT site/blog/post.html"});
  s3.log.clear();
  auto quiet = session.Batch({"blog/post.html", "index.html", "s.css"}, true, BatchDeletes::kHold, reporter);
  ASSERT_TRUE(quiet.has_value());
  EXPECT_EQ(quiet->result.uploaded, 0u);
  EXPECT_TRUE(s3.log.empty()) << s3.log.front();
}

}  // namespace
}  // namespace sitesync::sync
