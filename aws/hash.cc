// Hashes and encodings over OpenSSL's EVP interface (hex, base64, SHA-256, HMAC-SHA256, streaming MD5) and
// libdeflate's CRC-32.
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <libdeflate.h>

#include <algorithm>
#include <cstdlib>
#include <memory>

#include "aws/aws.h"

namespace sitesync::aws {
namespace {

struct EvpMdCtxDeleter {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
/// Owns an EVP_MD_CTX: freed on every path, including the ones that fail.
using EvpMdCtx = std::unique_ptr<EVP_MD_CTX, EvpMdCtxDeleter>;

// The OpenSSL calls below only fail on allocation failure or misuse (a wrong digest, a NULL context). Neither
// can be recovered from inside a hash function, and a wrong hash would silently corrupt a signature or an
// integrity check, so stop instead of returning garbage. No exception crosses the C boundary.
void Check(int ok) {
  if (ok != 1) std::abort();
}

// OpenSSL 3 looks an algorithm up in its provider tables (locks, property parsing, allocations) each time a
// legacy EVP_sha256() is used or HMAC() is called; fetched once here, each request's signature and digest skip
// that. They live as long as the process.
const EVP_MD* Fetched(const char* name) {
  EVP_MD* md = EVP_MD_fetch(nullptr, name, nullptr);
  if (md == nullptr) std::abort();  // a provider without it (MD5 under FIPS): stop rather than hash wrongly
  return md;
}

const EVP_MD* Sha256Md() {
  static const EVP_MD* const md = Fetched("SHA256");
  return md;
}

struct EvpMacCtxDeleter {
  void operator()(EVP_MAC_CTX* p) const { EVP_MAC_CTX_free(p); }
};

// One HMAC-SHA256 context per thread, its digest set once: each use only sets the key.
EVP_MAC_CTX* HmacSha256Ctx() {
  thread_local const std::unique_ptr<EVP_MAC_CTX, EvpMacCtxDeleter> ctx = [] {
    static EVP_MAC* const mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    if (mac == nullptr) std::abort();
    std::unique_ptr<EVP_MAC_CTX, EvpMacCtxDeleter> c(EVP_MAC_CTX_new(mac));
    if (!c) std::abort();
    char digest[] = "SHA256";
    const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                                 OSSL_PARAM_construct_end()};
    Check(EVP_MAC_CTX_set_params(c.get(), params));
    return c;
  }();
  return ctx.get();
}

}  // namespace

std::string HexEncode(std::span<const unsigned char> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0x0f]);
  }
  return out;
}

std::string Base64Encode(std::span<const unsigned char> bytes) {
  if (bytes.empty()) return {};
  // EVP_EncodeBlock writes 4 characters per started 3 bytes plus a NUL, and takes an int length.
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  std::size_t written = 0;
  constexpr std::size_t kChunk = 3 * 1024 * 1024;  // A multiple of 3, so chunks concatenate without padding.
  for (std::size_t at = 0; at < bytes.size(); at += kChunk) {
    const std::size_t n = std::min(kChunk, bytes.size() - at);
    const int w = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data() + written), bytes.data() + at,
                                  static_cast<int>(n));
    written += static_cast<std::size_t>(w);
  }
  out.resize(written);
  return out;
}

std::string Sha256Hex(std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int size = 0;
  EvpMdCtx ctx(EVP_MD_CTX_new());
  if (!ctx) std::abort();
  Check(EVP_DigestInit_ex(ctx.get(), Sha256Md(), nullptr));
  Check(EVP_DigestUpdate(ctx.get(), data.data(), data.size()));
  Check(EVP_DigestFinal_ex(ctx.get(), digest.data(), &size));
  return HexEncode(std::span<const unsigned char>(digest.data(), size));
}

std::string Sha1Hex(std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int size = 0;
  EvpMdCtx ctx(EVP_MD_CTX_new());
  if (!ctx) std::abort();
  Check(EVP_DigestInit_ex(ctx.get(), EVP_sha1(), nullptr));
  Check(EVP_DigestUpdate(ctx.get(), data.data(), data.size()));
  Check(EVP_DigestFinal_ex(ctx.get(), digest.data(), &size));
  return HexEncode(std::span<const unsigned char>(digest.data(), size));
}

std::vector<unsigned char> HmacSha256(std::span<const unsigned char> key, std::string_view data) {
  std::vector<unsigned char> out(EVP_MAX_MD_SIZE);
  std::size_t size = 0;
  // A zero-length key must still be a valid pointer: a null one would mean "keep the previous key".
  static constexpr unsigned char kEmpty = 0;
  const unsigned char* key_data = key.empty() ? &kEmpty : key.data();
  EVP_MAC_CTX* ctx = HmacSha256Ctx();
  Check(EVP_MAC_init(ctx, key_data, key.size(), nullptr));
  Check(EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(data.data()), data.size()));
  Check(EVP_MAC_final(ctx, out.data(), &size, out.size()));
  out.resize(size);
  return out;
}

struct Md5::Impl {
  EvpMdCtx ctx;
  bool finished = false;
  std::array<unsigned char, 16> digest{};  ///< Kept so that a second Final() returns the same digest.
};

Md5::Md5() : impl_(std::make_unique<Impl>()) {
  impl_->ctx.reset(EVP_MD_CTX_new());
  if (!impl_->ctx) std::abort();
  // MD5 is only used as the S3 Content-MD5 integrity check and ETag comparison, never for security; under a
  // FIPS provider EVP_md5 may be unavailable, which Check turns into a clear stop rather than a wrong digest.
  static const EVP_MD* const md5 = Fetched("MD5");
  Check(EVP_DigestInit_ex(impl_->ctx.get(), md5, nullptr));
}

Md5::~Md5() = default;

void Md5::Update(const void* data, std::size_t size) {
  // After Final() the digest is fixed; later bytes are ignored rather than corrupting it.
  if (impl_->finished || size == 0) return;
  Check(EVP_DigestUpdate(impl_->ctx.get(), data, size));
}

std::array<unsigned char, 16> Md5::Final() {
  if (impl_->finished) return impl_->digest;
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int size = 0;
  Check(EVP_DigestFinal_ex(impl_->ctx.get(), digest.data(), &size));
  if (size != impl_->digest.size()) std::abort();
  std::copy_n(digest.begin(), impl_->digest.size(), impl_->digest.begin());
  impl_->finished = true;
  return impl_->digest;
}

void Crc32::Update(const void* data, std::size_t size) {
  value_ = ::libdeflate_crc32(value_, data, size);
}

std::string Crc32::Base64() const {
  const std::array<unsigned char, 4> bytes{static_cast<unsigned char>(value_ >> 24),
                                           static_cast<unsigned char>(value_ >> 16),
                                           static_cast<unsigned char>(value_ >> 8), static_cast<unsigned char>(value_)};
  return Base64Encode(bytes);
}

}  // namespace sitesync::aws
