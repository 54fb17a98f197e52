// aws/: what sync/ and cdn/ share to talk to AWS: errors, credentials and region, SigV4 signing, hashes,
// the one libcurl multi loop that carries every request, and the libxml2 helpers for S3/CloudFront XML.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <expected>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sitesync::aws {

// ---------------------------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------------------------

/// What kind of failure an Error is. kNotFound is kept apart from kFailed (404 vs 5xx, ENOENT vs EIO).
enum class ErrorCode {
  kUsage,        ///< The command line is wrong.
  kConfig,       ///< The config file or the credentials/config files are wrong.
  kInput,        ///< Local input (SOURCE) is missing or unreadable.
  kNotFound,     ///< The remote or local object does not exist.
  kCredentials,  ///< Credentials are missing, or were refused by the server.
  kNetwork,      ///< Could not connect, timed out, connection reset.
  kHttp,         ///< The server answered with an error status.
  kParse,        ///< A server answer could not be parsed.
  kIo,           ///< A local read or write failed.
  kInternal,
};

/// An error with a message that names the operation, the object and the way out.
struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;
  bool retryable = false;
  int http_status = 0;       ///< 0 when no HTTP answer was received.
  std::string service_code;  ///< S3/CloudFront error code, e.g. "SlowDown", "SignatureDoesNotMatch".
};

template <class T>
using Result = std::expected<T, Error>;

/// Convenience for building an unexpected Error.
inline std::unexpected<Error> Fail(ErrorCode code, std::string message, bool retryable = false) {
  return std::unexpected(Error{code, std::move(message), retryable, 0, {}});
}

// ---------------------------------------------------------------------------------------------------------------
// Credentials and region
// ---------------------------------------------------------------------------------------------------------------

/// Looks up an environment variable; std::nullopt when unset. Injected so tests need no real environment.
using EnvLookup = std::function<std::optional<std::string>(std::string_view name)>;

/// The process environment (getenv).
EnvLookup ProcessEnv();

/// Access key, secret and optional session token, and where they came from (for messages; never the secret).
struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  ///< Empty when none.
  std::string source;         ///< e.g. "environment", "profile default in /root/.aws/credentials".
};

/// Finds credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN, else the profile
/// (`profile` if non-empty, else AWS_PROFILE, else "default") in the shared credentials file
/// (AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/credentials) and then the config file (AWS_CONFIG_FILE, else
/// ~/.aws/config, section "[profile NAME]" or "[default]"). Fails with kCredentials naming every place it
/// looked, or kConfig when a file is malformed (naming the file and line). Never puts a secret in a message.
[[nodiscard]] Result<Credentials> LoadCredentials(std::string_view profile, const EnvLookup& env);

/// The region: `cli_region` if non-empty, else AWS_REGION, AWS_DEFAULT_REGION, the profile's `region` in the
/// config file (profile chosen as in LoadCredentials), else "us-east-1".
[[nodiscard]] std::string ResolveRegion(std::string_view cli_region, std::string_view profile,
                                        const EnvLookup& env);

// ---------------------------------------------------------------------------------------------------------------
// Hashes (OpenSSL)
// ---------------------------------------------------------------------------------------------------------------

std::string HexEncode(std::span<const unsigned char> bytes);
std::string Base64Encode(std::span<const unsigned char> bytes);
/// Lowercase hex SHA-256 of `data`.
std::string Sha256Hex(std::string_view data);
/// Raw HMAC-SHA256.
std::vector<unsigned char> HmacSha256(std::span<const unsigned char> key, std::string_view data);

/// Incremental MD5, for hashing file bodies while they stream.
class Md5 {
 public:
  Md5();
  ~Md5();
  Md5(const Md5&) = delete;
  Md5& operator=(const Md5&) = delete;
  void Update(const void* data, std::size_t size);
  /// The 16-byte digest; the object cannot be updated after this.
  std::array<unsigned char, 16> Final();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// ---------------------------------------------------------------------------------------------------------------
// SigV4
// ---------------------------------------------------------------------------------------------------------------

/// kGeneric: the canonical URI is the path with dot segments removed and repeated slashes collapsed (RFC 3986),
/// each segment URI-encoded. kS3: the path is not normalized (S3 keys may contain "//" and ".."), each segment
/// encoded once.
enum class SigningMode { kGeneric, kS3 };

/// A request as the signer sees it.
struct SignableRequest {
  std::string method;  ///< "GET", "PUT", ...
  /// The decoded path (raw bytes, e.g. "/my bucket/a+b/ሴ.txt"); encoded by the signer per SigningMode.
  std::string path;
  /// Decoded query parameters in any order; the signer encodes and sorts them. A parameter with no '=' has
  /// an empty value.
  std::vector<std::pair<std::string, std::string>> query;
  /// Headers as sent, names in any case, duplicates allowed (joined with ',' in order), values trimmed and
  /// inner runs of spaces folded by the signer. Must include "host" and "x-amz-date".
  std::vector<std::pair<std::string, std::string>> headers;
  /// Lowercase hex SHA-256 of the body, or "UNSIGNED-PAYLOAD".
  std::string payload_hash;
};

/// URI-encodes per SigV4: unreserved A-Za-z0-9-_.~ kept, everything else %XX uppercase; '/' kept when
/// `keep_slash`.
std::string UriEncode(std::string_view s, bool keep_slash);

/// The canonical URI for `path` in `mode` (also the path to send on the wire).
std::string CanonicalUri(std::string_view path, SigningMode mode);

/// The canonical query string: each name and value encoded, sorted by name then value.
std::string CanonicalQuery(const std::vector<std::pair<std::string, std::string>>& query);

/// The canonical request (SigV4 task 1).
std::string CanonicalRequest(const SignableRequest& request, SigningMode mode);

/// "20150830/us-east-1/service/aws4_request" for amz_date "20150830T123600Z".
std::string CredentialScope(std::string_view amz_date, std::string_view region, std::string_view service);

/// The string to sign (SigV4 task 2).
std::string StringToSign(std::string_view amz_date, std::string_view scope, std::string_view canonical_request);

/// Hex signature (SigV4 task 3) of `string_to_sign` with the key derived from `secret`.
std::string Signature(std::string_view secret, std::string_view amz_date, std::string_view region,
                      std::string_view service, std::string_view string_to_sign);

/// The complete Authorization header value for `request` ("AWS4-HMAC-SHA256 Credential=..., SignedHeaders=...,
/// Signature=...").
std::string Authorization(const SignableRequest& request, SigningMode mode, const Credentials& credentials,
                          std::string_view amz_date, std::string_view region, std::string_view service);

/// "20150830T123600Z" for a time point (UTC).
std::string AmzDate(std::chrono::system_clock::time_point t);

}  // namespace sitesync::aws
