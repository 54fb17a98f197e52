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

#include "base/result.h"
#include "base/unique_fd.h"

namespace sitesync::aws {

// Errors: the shared vocabulary from base/result.h, under the names aws/ callers have always used.
using sitesync::Error;
using sitesync::ErrorCode;
using sitesync::Fail;
using sitesync::Result;

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
  /// When temporary credentials stop working; std::nullopt for long-term keys.
  std::optional<std::chrono::system_clock::time_point> expiration;
};

/// Temporary credentials are fetched again this long before they expire, as the AWS SDKs do.
inline constexpr std::chrono::minutes kCredentialRefreshAhead{5};

/// Where the signer gets its credentials: a fixed set, or a source that fetches them (STS, SSO, IMDS, ...) and
/// fetches again before they expire. Used from the loop thread only.
class CredentialProvider {
 public:
  virtual ~CredentialProvider() = default;
  /// The credentials to sign with now. A fetching provider returns the ones it holds while they are good for more
  /// than kCredentialRefreshAhead, and fetches again (blocking) when they are not, or when `force_refresh` (the
  /// server answered ExpiredToken). Never fetches on every call.
  [[nodiscard]] virtual Result<Credentials> Get(bool force_refresh) = 0;
};

/// A provider that always returns `credentials` (long-term keys, or temporary ones given from outside).
[[nodiscard]] std::shared_ptr<CredentialProvider> StaticCredentials(Credentials credentials);

// ---------------------------------------------------------------------------------------------------------------
// The shared config and credentials files (~/.aws/config, ~/.aws/credentials), as the AWS CLI reads them
// ---------------------------------------------------------------------------------------------------------------

struct ConfigValue {
  std::string value;
  int line = 0;
};

/// One section of a shared file. Setting names are lowercased; the indented lines of a nested block ("s3 =" then
/// "  endpoint_url = ...") are kept as "s3.endpoint_url".
struct ConfigSection {
  std::string file;  ///< The file's path, for messages.
  int line = 0;      ///< Line of the (first) section header.
  std::map<std::string, ConfigValue> values;

  /// The setting's entry, or nullptr when absent or empty.
  const ConfigValue* Find(std::string_view name) const;
  /// The setting's value, or empty.
  std::string Get(std::string_view name) const;
};

/// Both shared files, parsed. A file that does not exist gives no sections; a malformed one is a kConfig error
/// naming its path and line (never the line's text: it may hold a secret).
struct SharedConfig {
  std::string config_path;       ///< AWS_CONFIG_FILE, else ~/.aws/config; empty without HOME.
  std::string credentials_path;  ///< AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/credentials; empty without HOME.
  bool config_exists = false;
  bool credentials_exists = false;
  std::map<std::string, ConfigSection, std::less<>> config_profiles;       ///< "[default]", "[profile NAME]".
  std::map<std::string, ConfigSection, std::less<>> credentials_profiles;  ///< "[NAME]" in the credentials file.
  std::map<std::string, ConfigSection, std::less<>> sso_sessions;          ///< "[sso-session NAME]".
  std::map<std::string, ConfigSection, std::less<>> services;              ///< "[services NAME]".

  /// The profile's section in the config file, or nullptr.
  const ConfigSection* ConfigProfile(std::string_view name) const;
  /// The profile's section in the credentials file, or nullptr.
  const ConfigSection* CredentialsProfile(std::string_view name) const;
};

[[nodiscard]] Result<SharedConfig> LoadSharedConfig(const EnvLookup& env);

/// The static keys (aws_access_key_id, aws_secret_access_key, aws_session_token or the legacy aws_security_token)
/// of `profile`'s section in the config file (`config_file`) or the credentials file: nullopt when it has none,
/// kConfig naming the file and line when only one of the pair is there. Never puts a secret in a message.
[[nodiscard]] Result<std::optional<Credentials>> StaticKeysOf(const SharedConfig& shared, bool config_file,
                                                              std::string_view profile);

/// The profile in use: `explicit_profile` (--profile, `profile:`) if non-empty, else AWS_PROFILE, else "default".
[[nodiscard]] std::string ChosenProfile(std::string_view explicit_profile, const EnvLookup& env);

/// Static keys only, never the network (runs use ResolveCredentialChain, which also differs in letting an explicit
/// profile beat the environment, as botocore does).

/// The access key ID as every message shows it: "..." and its last 4 characters ("...MPLE"), or "..." alone for an
/// ID shorter than 16 characters (4 of them would give away too much of it). The full ID is never printed.
[[nodiscard]] std::string ShortKeyId(std::string_view access_key_id);

/// `text` with every occurrence of `access_key_id` replaced by ShortKeyId(access_key_id) (a server's message may
/// quote it).
[[nodiscard]] std::string RedactKeyId(std::string text, std::string_view access_key_id);

/// The region: `cli_region` if non-empty, else AWS_REGION, AWS_DEFAULT_REGION, the profile's `region` in the
/// config file (profile chosen as in ChosenProfile), else "us-east-1".
[[nodiscard]] std::string ResolveRegion(std::string_view cli_region, std::string_view profile,
                                        const EnvLookup& env);

// ---------------------------------------------------------------------------------------------------------------
// Hashes (OpenSSL)
// ---------------------------------------------------------------------------------------------------------------

std::string HexEncode(std::span<const unsigned char> bytes);
std::string Base64Encode(std::span<const unsigned char> bytes);
/// Lowercase hex SHA-256 of `data`.
std::string Sha256Hex(std::string_view data);
/// Lowercase hex SHA-1 of `data` (names of the AWS CLI's SSO token cache files; not for security).
std::string Sha1Hex(std::string_view data);
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

using Md5Digest = std::array<unsigned char, 16>;

/// One message for Md5Many: each call gives its next piece (any size, valid until the next call), an empty piece at
/// the end, or an error (a file that cannot be read).
using Md5Reader = std::function<Result<std::span<const unsigned char>>()>;

/// The MD5 of each message, in order. With AVX-512 (and `lanes`), sixteen messages are hashed side by side, one per
/// 32-bit lane: about ten times the speed of one MD5 after another, which cannot beat ~0.7 GB/s here because each
/// of MD5's steps waits for the one before. Without AVX-512, OpenSSL's MD5, one message after another. A reader's
/// error is that message's result; the others go on.
[[nodiscard]] std::vector<Result<Md5Digest>> Md5Many(std::span<const Md5Reader> readers, bool lanes = true);
/// The same for messages in memory.
[[nodiscard]] std::vector<Md5Digest> Md5Many(std::span<const std::string_view> messages);
/// Whether Md5Many hashes side by side on this CPU.
[[nodiscard]] bool Md5ManyUsesLanes();

/// Incremental CRC-32 (ISO-HDLC, zlib's), for S3's x-amz-checksum-crc32: S3 recomputes it over the received body
/// and refuses the PUT on a mismatch, as it does for Content-MD5, at a fraction of MD5's cost. libdeflate computes
/// it with carry-less multiplication (PCLMULQDQ): 14.5 GB/s here, against 3.4 GB/s for zlib 1.2.13's crc32_z and
/// ~0.7 GB/s for MD5. At zlib's speed it was 6 % of a first upload's CPU over HTTPS.
class Crc32 {
 public:
  void Update(const void* data, std::size_t size);
  /// The checksum as S3 wants it in the header: the 4 big-endian bytes, base64.
  std::string Base64() const;
  std::uint32_t value() const { return value_; }

 private:
  std::uint32_t value_ = 0;
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

// ---------------------------------------------------------------------------------------------------------------
// HTTP: one libcurl multi loop carries every request (aws/curl_transport.cc)
// ---------------------------------------------------------------------------------------------------------------

using HeaderList = std::vector<std::pair<std::string, std::string>>;

/// Why `value` cannot be an HTTP header value, e.g. "contains a line feed (LF) at byte 12", or std::nullopt when it
/// can: control characters (below 0x20 except tab, and DEL 0x7F) are refused, since CR or LF would end the header
/// and start another one (header injection) and the others are invalid in a field value (RFC 9110, 5.5).
[[nodiscard]] std::optional<std::string> HeaderValueProblem(std::string_view value);

/// What a request sends: nothing, bytes held in memory, or a byte range of a file streamed from disk.
struct Body {
  enum class Kind { kNone, kBytes, kFile };
  Kind kind = Kind::kNone;
  std::string bytes;
  /// kFile: the file, opened by the caller (sync/ opens bodies beneath SOURCE); read with pread at `offset`, never
  /// opened again by name. Shared by the parts of a multipart upload.
  std::shared_ptr<const UniqueFd> file;
  std::string file_path;  ///< kFile: for messages only.
  std::uint64_t offset = 0;
  std::uint64_t length = 0;

  std::uint64_t size() const { return kind == Kind::kBytes ? bytes.size() : kind == Kind::kFile ? length : 0; }
};

struct HttpRequest;
/// Runs when a request is about to start its first attempt, on the loop thread: it may read the body and set
/// headers (e.g. Content-MD5) so that memory is only held for transfers in flight. An error fails the request.
using PrepareFn = std::function<Result<void>(HttpRequest&)>;

/// A request to an AWS endpoint. The client signs it anew on every attempt.
struct HttpRequest {
  std::string service = "s3";            ///< SigV4 service name.
  std::string region;                    ///< SigV4 region; empty: the client's (CloudFront: its partition's global region).
  SigningMode mode = SigningMode::kS3;
  std::string method = "GET";
  std::string endpoint;                  ///< "https://host[:port]", no path.
  std::string path = "/";                ///< Decoded path; encoded once with CanonicalUri(path, mode).
  std::vector<std::pair<std::string, std::string>> query;  ///< Decoded.
  HeaderList headers;                    ///< Extra headers to send and sign (Content-Type, Content-MD5, ...).
  Body body;
  /// Hex SHA-256 of the body; when empty the client computes it for in-memory bodies and uses
  /// UNSIGNED-PAYLOAD for file bodies.
  std::string payload_hash;
  std::string what;                      ///< For messages: "PUT s3://bucket/key".
  PrepareFn prepare;
  /// False for requests that carry no SigV4 signature (IMDS, the container endpoint, the SSO portal,
  /// AssumeRoleWithWebIdentity): sent without Authorization and x-amz-* signing headers.
  bool sign = true;
};

/// The IAM action a request needs, as a policy names it ("s3:PutObject", "s3:ListBucket", "s3:DeleteObject",
/// "cloudfront:CreateInvalidation", "sts:AssumeRole"), derived from its service, method, query and headers; a
/// PutObject with an acl, a copy source or SSE-KMS names the extra permission in parentheses. Empty when unknown.
/// For the message of an AccessDenied answer to a request whose signature was accepted.
[[nodiscard]] std::string IamAction(const HttpRequest& request);

struct HttpResponse {
  long status = 0;
  HeaderList headers;  ///< Names lowercased.
  std::string body;
  /// The first header named `name` (lowercase), or empty.
  std::string Header(std::string_view name) const;
};

struct ClientOptions {
  /// Signs every request when `credential_provider` is null.
  Credentials credentials;
  /// When set, asked before every signed attempt (it caches; see CredentialProvider::Get), and asked once with
  /// force_refresh when a server answers ExpiredToken, after which the request is retried.
  std::shared_ptr<CredentialProvider> credential_provider;
  /// PEM file of CAs to trust instead of the system's (--ca-bundle, AWS_CA_BUNDLE, the profile's ca_bundle).
  std::string ca_bundle;
  /// False only for --no-verify-ssl: certificates and host names are not checked.
  bool verify_tls = true;
  /// Sent as User-Agent on every request.
  std::string user_agent = "sitesync";
  std::string region = "us-east-1";
  int max_in_flight = 64;  ///< Transfers running at once, when not adaptive_in_flight.
  /// The number of transfers running at once finds its own level (aws/in_flight.h): from in_flight_start it grows
  /// while throughput grows, up to in_flight_max, and halves when the server asks to slow down (503, 429,
  /// SlowDown, Throttling...), never below in_flight_min. False (--jobs N): max_in_flight, fixed.
  bool adaptive_in_flight = false;
  int in_flight_min = 8;
  int in_flight_start = 64;
  int in_flight_max = 256;
  int max_attempts = 5;    ///< Per request, including the first; answers asking to slow down are not counted.
  /// Answers asking to slow down that one request may get and still be retried (apart from max_attempts). When
  /// adaptive, such a request is retried next, without backoff (the halved window is the backoff; a short wait
  /// only at in_flight_min); when fixed, with exponential backoff and full jitter.
  int max_throttled_attempts = 20;
  std::chrono::milliseconds base_backoff{200};
  std::chrono::milliseconds max_backoff{8000};
  std::chrono::milliseconds connect_timeout{5000};
  /// An attempt during which no byte moves for this long (none of the body sent or acknowledged, no response byte)
  /// is cut and retried: a request whose body was sent and that gets no answer, or an upload that stalled. A slow
  /// upload that keeps moving is never cut.
  std::chrono::milliseconds idle_timeout{15000};
  /// An endpoint that has not sent one response byte since the client started, while requests to it waited this
  /// long, is given up: every request to it fails ("no answer from ENDPOINT in 50 s (N attempts): ..."), and new
  /// ones fail at once for as long again. With 15 s idle cuts, a silent server fails a run within a minute.
  std::chrono::milliseconds silent_timeout{50000};
  /// Receives one line per attempt when set (-v). Never given secrets or signatures.
  std::function<void(std::string_view)> trace;
};

/// Counters for tests, benchmarks and -v.
struct ClientStats {
  std::map<std::string, std::uint64_t> requests_by_method;
  std::uint64_t retries = 0;
  std::uint64_t clock_corrections = 0;
  /// Answers that asked to slow down (503, 429, SlowDown, Throttling...); each was retried or counted as failed.
  std::uint64_t throttled = 0;
  /// The number of transfers allowed in flight: lowest, highest and last (all max_in_flight when fixed).
  int in_flight_lowest = 0;
  int in_flight_highest = 0;
  int in_flight_final = 0;
};

/// Runs every request through one curl multi handle with at most max_in_flight transfers (or an adaptive number,
/// adaptive_in_flight), reusing connections. Retries 5xx, 429, SlowDown/Throttling codes, timeouts (idle_timeout)
/// and connection errors with exponential backoff and full jitter, up to max_attempts (throttling answers up to
/// max_throttled_attempts); gives up on an endpoint that never answers
/// (silent_timeout); corrects the clock from the server's Date header on RequestTimeTooSkewed. No message
/// carries the full access key ID (ShortKeyId). Not thread-safe: use from one thread.
class HttpClient {
 public:
  using Callback = std::function<void(Result<HttpResponse>)>;

  /// Fails with kInternal when curl cannot be set up.
  [[nodiscard]] static Result<std::unique_ptr<HttpClient>> Create(ClientOptions options);
  virtual ~HttpClient() = default;

  /// Queues `request`; `done` runs on the loop (inside Run) with the final answer: a 2xx response, or the
  /// Error after retries (http_status and service_code set when the server answered).
  virtual void Submit(HttpRequest request, Callback done) = 0;
  /// Runs the loop until nothing is queued, waiting or in flight. Callbacks may Submit more.
  virtual void Run() = 0;
  /// Submits one request and runs the loop until it is done.
  [[nodiscard]] Result<HttpResponse> Send(HttpRequest request);

  [[nodiscard]] virtual ClientStats Stats() const = 0;
};

// ---------------------------------------------------------------------------------------------------------------
// The credential chain (aws/credentials.cc) and its sources that reach the network (aws/credential_sources.cc)
// ---------------------------------------------------------------------------------------------------------------

/// Where STS is called and the region it is signed for.
struct StsTarget {
  std::string endpoint;  ///< "https://sts.us-east-1.amazonaws.com" (or AWS_ENDPOINT_URL_STS, ...).
  std::string region;
};

/// AssumeRole, with the settings the AWS CLI reads from a profile.
struct AssumeRoleParams {
  std::string role_arn;
  std::string role_session_name;  ///< Required by STS: the chain fills in a default when the profile has none.
  std::string external_id;        ///< Empty: not sent.
  std::string mfa_serial;         ///< Empty: not sent.
  std::string mfa_code;           ///< The code read for mfa_serial.
  int duration_seconds = 0;       ///< 0: not sent (STS's default, one hour).
};

/// AssumeRoleWithWebIdentity (an unsigned STS call).
struct WebIdentityParams {
  std::string role_arn;
  std::string role_session_name;
  std::string token;          ///< The OIDC token read from the token file, never shown.
  std::string token_file;     ///< For messages.
  int duration_seconds = 0;
};

/// IAM Identity Center's GetRoleCredentials (an unsigned call with the cached bearer token).
struct SsoParams {
  std::string endpoint;  ///< "https://portal.sso.REGION.amazonaws.com" (or AWS_ENDPOINT_URL_SSO, ...).
  std::string sso_region;
  std::string account_id;
  std::string role_name;
  std::string access_token;  ///< From ~/.aws/sso/cache, never shown.
  std::string profile;       ///< For the message "run `aws sso login --profile P`".
};

/// The network and process calls of the credential chain, behind an interface so that the chain's unit tests use
/// fakes. Every call fetches anew (caching and refresh belong to the chain's providers). A source that is simply
/// not there (no container variables, IMDS disabled or not answering) fails with ErrorCode::kNotFound so that the
/// chain goes on; a source that is there and fails gives a kCredentials (or kConfig) error that names it and the
/// fix.
class CredentialFetcher {
 public:
  virtual ~CredentialFetcher() = default;
  [[nodiscard]] virtual Result<Credentials> AssumeRole(const Credentials& source, const AssumeRoleParams& params,
                                                       const StsTarget& sts) = 0;
  [[nodiscard]] virtual Result<Credentials> AssumeRoleWithWebIdentity(const WebIdentityParams& params,
                                                                      const StsTarget& sts) = 0;
  [[nodiscard]] virtual Result<Credentials> SsoRoleCredentials(const SsoParams& params) = 0;
  /// The container credentials endpoint (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI / _FULL_URI, with
  /// AWS_CONTAINER_AUTHORIZATION_TOKEN or _TOKEN_FILE).
  [[nodiscard]] virtual Result<Credentials> ContainerCredentials() = 0;
  /// IMDSv2 (AWS_EC2_METADATA_DISABLED, AWS_EC2_METADATA_SERVICE_ENDPOINT honoured).
  [[nodiscard]] virtual Result<Credentials> InstanceCredentials() = 0;
  /// Runs a profile's credential_process command and reads its JSON (Version 1).
  [[nodiscard]] virtual Result<Credentials> ProcessCredentials(const std::string& command,
                                                               const std::string& profile) = 0;
};

/// The real fetcher: HTTP through HttpClient (its own small client per call, with `transport`'s TLS settings and
/// trace, short timeouts), STS XML read with libxml2, JSON with nlohmann-json, credential_process run with
/// `/bin/sh -c` as the AWS SDKs for Go and Java do (botocore splits the words itself, without a shell). `env` gives
/// the container/IMDS variables (and the test-only SITESYNC_CONTAINER_CREDENTIALS_HOST).
[[nodiscard]] std::unique_ptr<CredentialFetcher> NetworkCredentialFetcher(ClientOptions transport, EnvLookup env);

/// What the chain needs to know, resolved once in cli/.
struct CredentialChainOptions {
  /// --profile or `profile:`, given explicitly; empty: AWS_PROFILE, else "default", and then the environment's
  /// AWS_ACCESS_KEY_ID comes first (with an explicit profile it is not looked at, as botocore does).
  std::string profile;
  EnvLookup env;
  std::string region;  ///< The run's region: regional STS is signed for it.
  /// The STS endpoint for a region (the endpoint rules: AWS_ENDPOINT_URL_STS, the profile's services, the
  /// partition's sts.REGION host).
  std::function<StsTarget(std::string_view region)> sts;
  /// The SSO portal endpoint for an sso_region (AWS_ENDPOINT_URL_SSO, ..., portal.sso.REGION.amazonaws.com).
  std::function<std::string(std::string_view sso_region)> sso_endpoint;
  /// Reads an MFA code for `mfa_serial` from the terminal; null when stdin is not a terminal (a profile that needs
  /// one then fails with a message saying so).
  std::function<std::optional<std::string>(std::string_view mfa_serial)> read_mfa_code;
  std::function<std::chrono::system_clock::time_point()> now;  ///< Null: the system clock.
};

/// Resolves the chain in the AWS SDKs' order (environment unless a profile was named explicitly, web identity from
/// the environment, the profile: role_arn with source_profile/credential_source, web_identity_token_file, SSO,
/// credential_process, static keys; then container credentials, then IMDSv2) and fetches the first credentials,
/// so that a broken setup fails before any work (kConfig/kCredentials naming every place looked at). The returned
/// provider refreshes temporary credentials kCredentialRefreshAhead before they expire; its Credentials::source
/// names the source ("assumed role arn:... via profile deploy (source profile default)").
/// The provider keeps `fetcher` for its refreshes.
[[nodiscard]] Result<std::shared_ptr<CredentialProvider>> ResolveCredentialChain(
    const CredentialChainOptions& options, std::shared_ptr<CredentialFetcher> fetcher);

// ---------------------------------------------------------------------------------------------------------------
// Endpoints and partitions, as the AWS CLI resolves them (aws/endpoints.cc)
// ---------------------------------------------------------------------------------------------------------------

/// An AWS partition (botocore's data/partitions.json): the DNS suffixes of its endpoints and the region that
/// global services (CloudFront) are signed for.
struct Partition {
  std::string_view id;                    ///< "aws", "aws-cn", "aws-us-gov".
  std::string_view dns_suffix;            ///< "amazonaws.com", "amazonaws.com.cn".
  std::string_view dualstack_dns_suffix;  ///< "api.aws", "api.amazonwebservices.com.cn" (S3 keeps dns_suffix).
  std::string_view global_region;         ///< implicitGlobalRegion: "us-east-1", "cn-northwest-1", "us-gov-west-1".
  bool has_cloudfront = true;             ///< False for aws-us-gov: GovCloud offers no CloudFront endpoint.
};

/// The partition of `region`: a region it lists, else the first whose regionRegex matches (aws:
/// ^(us|eu|ap|sa|ca|me|af|il|mx)-\w+-\d+$, aws-cn: ^cn-\w+-\d+$, aws-us-gov: ^us-gov-\w+-\d+$), else aws (as
/// the SDKs do for an unknown region).
[[nodiscard]] const Partition& PartitionOf(std::string_view region);

/// The services sitesync calls. Their SDK service IDs give the names of the settings: AWS_ENDPOINT_URL_S3,
/// AWS_ENDPOINT_URL_CLOUDFRONT, AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL_SSO, and "s3", "cloudfront", "sts", "sso"
/// in a [services NAME] section.
enum class EndpointService { kS3, kCloudFront, kSts, kSso };

/// A URL the user gave for an endpoint and where it came from (for messages: "--endpoint", "AWS_ENDPOINT_URL_S3",
/// "s3.endpoint_url in [services local] (/root/.aws/config line 7)").
struct ConfiguredUrl {
  std::string url;
  std::string source;
};

/// `url` checked and normalized to "scheme://host[:port]" (a trailing "/" dropped). Refused with kUsage (kConfig
/// when `source` is not a command-line option) naming `source`: a scheme other than http or https, no host, user
/// info, a query or fragment, and a path: sitesync signs requests for the server's root, and a gateway prefix
/// such as http://host/s3 is not supported (a usage error, nothing is sent).
[[nodiscard]] Result<std::string> CheckEndpointUrl(std::string_view url, std::string_view source,
                                                   bool command_line);

/// The endpoint settings of the environment and the profile in ~/.aws/config, read once.
struct EndpointSettings {
  bool use_fips = false;                 ///< AWS_USE_FIPS_ENDPOINT, else the profile's use_fips_endpoint.
  bool use_dualstack = false;            ///< AWS_USE_DUALSTACK_ENDPOINT, else use_dualstack_endpoint.
  /// AWS_IGNORE_CONFIGURED_ENDPOINT_URLS, else ignore_configured_endpoint_urls: the environment's and the
  /// config's endpoint URLs are not used (an explicit --endpoint still is).
  bool ignore_configured_urls = false;
  /// The profile's `s3 = / addressing_style = path|virtual`; nullopt for auto or absent.
  std::optional<bool> s3_path_style;
  std::map<EndpointService, ConfiguredUrl> env_service;     ///< AWS_ENDPOINT_URL_<SERVICE>.
  std::optional<ConfiguredUrl> env_global;                  ///< AWS_ENDPOINT_URL.
  std::map<EndpointService, ConfiguredUrl> config_service;  ///< <service>.endpoint_url in the profile's services.
  std::optional<ConfiguredUrl> config_global;               ///< The profile's endpoint_url.
};

/// Reads the settings for `profile` (the profile in use: ChosenProfile). Every URL is checked (CheckEndpointUrl)
/// even when ignored. Fails with kConfig naming the setting: a boolean that is not true or false, a bad URL, or a
/// profile whose `services = NAME` names no [services NAME] section (botocore refuses it too).
[[nodiscard]] Result<EndpointSettings> LoadEndpointSettings(const EnvLookup& env, const SharedConfig& config,
                                                            std::string_view profile);

/// Where a service is called and the region its requests are signed for.
struct ServiceEndpoint {
  std::string url;             ///< "https://host[:port]".
  std::string signing_region;
  bool configured = false;     ///< From --endpoint, the environment or the config, not the partition.
  std::string source;          ///< For -v: "--endpoint", "AWS_ENDPOINT_URL", "the aws partition", ...
};

/// The partition's own endpoint for `service` in `region` (the SDKs' endpoint rules): S3 s3[-fips][.dualstack].
/// REGION.DNS; CloudFront cloudfront[-fips].amazonaws.com (dual-stack: cloudfront[-fips].global.api.aws) signed
/// us-east-1, cloudfront[-fips].cn-northwest-1.amazonaws.com.cn signed cn-northwest-1 in aws-cn; STS
/// sts[-fips].REGION.DNS (FIPS in aws-us-gov is sts.REGION.amazonaws.com); SSO portal.sso[-fips].REGION.DNS.
/// CloudFront in aws-us-gov fails with kConfig (GovCloud has no CloudFront endpoint) saying what to do.
[[nodiscard]] Result<ServiceEndpoint> PartitionEndpoint(EndpointService service, std::string_view region,
                                                        bool fips, bool dualstack);

/// The endpoint like the AWS CLI: `explicit_url` (--endpoint, --cloudfront-endpoint; already checked) >
/// AWS_ENDPOINT_URL_<SERVICE> > AWS_ENDPOINT_URL > <service>.endpoint_url in the profile's services section > the
/// profile's endpoint_url > the partition's endpoint; ignore_configured_urls skips the four in the middle. A
/// configured URL with FIPS or dual-stack on fails with kConfig (the SDKs' rule: a custom endpoint cannot be
/// combined with them). A configured URL is signed for `region` (CloudFront: the partition's global region, or
/// us-east-1 where the partition has none).
[[nodiscard]] Result<ServiceEndpoint> ResolveEndpoint(const EndpointSettings& settings, EndpointService service,
                                                      std::string_view region,
                                                      const std::optional<ConfiguredUrl>& explicit_url);

/// For CredentialChainOptions::sts: the STS endpoint for a region per `settings` (AWS_ENDPOINT_URL_STS, ...,
/// sts.REGION.DNS). Never fails: a configured URL wins over FIPS here; check ResolveEndpoint(kSts) once first to
/// report that conflict.
[[nodiscard]] std::function<StsTarget(std::string_view region)> StsEndpoints(EndpointSettings settings);

/// For CredentialChainOptions::sso_endpoint: the IAM Identity Center portal for an sso_region
/// (AWS_ENDPOINT_URL_SSO, ..., portal.sso.REGION.DNS). Never fails, as StsEndpoints.
[[nodiscard]] std::function<std::string(std::string_view sso_region)> SsoEndpoints(EndpointSettings settings);

/// Call once in main before any thread: curl_global_init and xmlInitParser.
void GlobalInit();

// ---------------------------------------------------------------------------------------------------------------
// XML (libxml2): parsed into an owned tree; element names are local names (namespaces dropped)
// ---------------------------------------------------------------------------------------------------------------

struct XmlElement {
  std::string name;
  std::string text;  ///< Concatenated text content of this element's own text children.
  std::vector<XmlElement> children;

  /// The first child named `child`, or nullptr.
  const XmlElement* Child(std::string_view child) const;
  /// The text of the first child named `child`, or empty.
  std::string ChildText(std::string_view child) const;
};

/// Parses `xml` (no network access, no entities expansion). Fails with kParse.
[[nodiscard]] Result<XmlElement> ParseXml(std::string_view xml);

/// Serializes `root` with an XML declaration; `xmlns` is set on the root when non-empty.
[[nodiscard]] std::string WriteXml(const XmlElement& root, std::string_view xmlns);

/// The error code and message of an S3 (<Error>) or CloudFront (<ErrorResponse><Error>) error body; empty
/// strings when the body is not such a document.
std::pair<std::string, std::string> ParseErrorBody(std::string_view body);

}  // namespace sitesync::aws
