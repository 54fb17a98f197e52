// base/: the shared vocabulary of every module: Error, its code, and Result<T> = std::expected<T, Error>. A header
// of its own (ninja's util.h) so that sitemap/ and watcher/, which need no network, do not include aws/.
#pragma once

#include <expected>
#include <string>
#include <utility>

namespace sitesync {

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
  /// S3 only: the bucket's region when the answer names it (x-amz-bucket-region header, or <Region> in the error
  /// body), as S3 does when a request went to or was signed for the wrong region (301 PermanentRedirect, 400
  /// AuthorizationHeaderMalformed); empty otherwise.
  std::string bucket_region{};
};

template <class T>
using Result = std::expected<T, Error>;

/// Convenience for building an unexpected Error.
inline std::unexpected<Error> Fail(ErrorCode code, std::string message, bool retryable = false) {
  return std::unexpected(Error{code, std::move(message), retryable, 0, {}});
}

}  // namespace sitesync
