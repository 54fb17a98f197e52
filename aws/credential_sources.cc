// The credential sources that reach the network or run a process: STS (AssumeRole, AssumeRoleWithWebIdentity),
// IAM Identity Center's portal (GetRoleCredentials), the container credentials endpoint, IMDSv2 and
// credential_process. Each call fetches anew; caching and refresh are the chain's (aws/credentials.cc). Requests
// go through HttpClient, a small client per call (one transfer, short timeouts) with the run's TLS settings.
// No message here ever carries a secret key, a session token, a bearer token or a process's output.
#include "aws/credential_sources.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace sitesync::aws {
namespace {

using std::chrono::milliseconds;
using Json = nlohmann::json;

std::string LowerAscii(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string TrimSpace(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decoding; a '%' not followed by two hex digits is kept as it is.
std::string PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && HexValue(s[i + 1]) >= 0 && HexValue(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(HexValue(s[i + 1]) * 16 + HexValue(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// Reads a fixed-width decimal field; false when it is not all digits.
bool Digits(std::string_view s, std::size_t pos, std::size_t count, int& out) {
  if (pos + count > s.size()) return false;
  const char* first = s.data() + pos;
  const char* last = first + count;
  if (!std::all_of(first, last, [](char c) { return c >= '0' && c <= '9'; })) return false;
  return std::from_chars(first, last, out).ec == std::errc{};
}

// A string member of a JSON object, or nullptr when absent, null or not a string.
const std::string* JsonString(const Json& object, const char* name) {
  auto it = object.find(name);
  if (it == object.end() || !it->is_string()) return nullptr;
  return it->get_ptr<const std::string*>();
}

// A required non-empty string member, or a kCredentials error naming the field (never its value).
Result<std::string> RequiredString(const Json& object, const char* name, std::string_view what) {
  const std::string* value = JsonString(object, name);
  if (value == nullptr || value->empty()) {
    return Fail(ErrorCode::kCredentials,
                fmt::format("{}: the answer has no {} (a string is required)", what, name));
  }
  return *value;
}

Result<Json> ParseJsonObject(std::string_view text, std::string_view what) {
  Json doc = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    return Fail(ErrorCode::kCredentials, fmt::format("{}: the answer is not valid JSON", what));
  }
  if (!doc.is_object()) {
    return Fail(ErrorCode::kCredentials, fmt::format("{}: the answer is not a JSON object", what));
  }
  return doc;
}

// The form encoding of an STS query-protocol body: each name and value percent-encoded (unreserved kept).
std::string FormBody(const std::vector<std::pair<std::string, std::string>>& params) {
  std::string body;
  for (const auto& [name, value] : params) {
    if (!body.empty()) body += '&';
    body += UriEncode(name, false);
    body += '=';
    body += UriEncode(value, false);
  }
  return body;
}

// How long a source may take: per attempt, and how many attempts.
struct Budget {
  milliseconds connect;
  milliseconds idle;
  int attempts;
};

// STS and the SSO portal are AWS services: a few seconds each, three attempts for a transient 5xx.
constexpr Budget kServiceBudget{milliseconds(3000), milliseconds(10000), 3};
// The container endpoint is local to the task: botocore gives it 2 s per attempt and 3 attempts.
constexpr Budget kContainerBudget{milliseconds(2000), milliseconds(2000), 3};
// IMDS: botocore gives it 1 s and one attempt, so a machine without IMDS (a laptop) loses about a second. The
// token PUT gets one attempt (no answer: there is no IMDS); the GETs after it two (IMDS is there).
constexpr Budget kImdsTokenBudget{milliseconds(1000), milliseconds(1000), 1};
constexpr Budget kImdsGetBudget{milliseconds(1000), milliseconds(1000), 2};

std::string ImdsEndpointDefault() { return "http://169.254.169.254"; }

class NetworkFetcher final : public CredentialFetcher {
 public:
  NetworkFetcher(ClientOptions transport, EnvLookup env) : transport_(std::move(transport)), env_(std::move(env)) {}

  Result<Credentials> AssumeRole(const Credentials& source, const AssumeRoleParams& params,
                                 const StsTarget& sts) override {
    const std::string what = fmt::format("sts:AssumeRole {}", params.role_arn);
    std::vector<std::pair<std::string, std::string>> form{{"Action", "AssumeRole"},
                                                          {"Version", "2011-06-15"},
                                                          {"RoleArn", params.role_arn},
                                                          {"RoleSessionName", params.role_session_name}};
    if (!params.external_id.empty()) form.emplace_back("ExternalId", params.external_id);
    if (!params.mfa_serial.empty()) {
      form.emplace_back("SerialNumber", params.mfa_serial);
      form.emplace_back("TokenCode", params.mfa_code);
    }
    if (params.duration_seconds > 0) form.emplace_back("DurationSeconds", std::to_string(params.duration_seconds));
    auto response = CallSts(what, form, sts, &source);
    if (!response) return std::unexpected(AssumeRoleError(std::move(response.error()), source, params, sts));
    auto credentials = ParseStsCredentials(response->body, "AssumeRoleResult", what);
    if (credentials) credentials->source = fmt::format("assumed role {}", params.role_arn);
    return credentials;
  }

  Result<Credentials> AssumeRoleWithWebIdentity(const WebIdentityParams& params, const StsTarget& sts) override {
    const std::string what = fmt::format("sts:AssumeRoleWithWebIdentity {}", params.role_arn);
    std::vector<std::pair<std::string, std::string>> form{{"Action", "AssumeRoleWithWebIdentity"},
                                                          {"Version", "2011-06-15"},
                                                          {"RoleArn", params.role_arn},
                                                          {"RoleSessionName", params.role_session_name},
                                                          {"WebIdentityToken", params.token}};
    if (params.duration_seconds > 0) form.emplace_back("DurationSeconds", std::to_string(params.duration_seconds));
    auto response = CallSts(what, form, sts, nullptr);
    if (!response) return std::unexpected(WebIdentityError(std::move(response.error()), params, sts));
    auto credentials = ParseStsCredentials(response->body, "AssumeRoleWithWebIdentityResult", what);
    if (credentials) {
      credentials->source = fmt::format("web identity role {} (token file {})", params.role_arn, params.token_file);
    }
    return credentials;
  }

  Result<Credentials> SsoRoleCredentials(const SsoParams& params) override {
    const std::string what =
        fmt::format("SSO GetRoleCredentials {} in account {} (profile {})", params.role_name, params.account_id,
                    params.profile);
    auto url = SplitHttpUrl(params.endpoint, "the SSO portal endpoint");
    if (!url) return std::unexpected(std::move(url.error()));
    HttpRequest request;
    request.service = "sso";
    request.region = params.sso_region;
    request.mode = SigningMode::kGeneric;
    request.method = "GET";
    request.endpoint = url->endpoint;
    request.path = JoinPath(url->path, "/federation/credentials");
    request.query = {{"account_id", params.account_id}, {"role_name", params.role_name}};
    request.headers = {{"x-amz-sso_bearer_token", params.access_token}, {"accept", "application/json"}};
    request.what = what;
    request.sign = false;
    auto response = Send(std::move(request), kServiceBudget, nullptr);
    if (!response) {
      Error error = std::move(response.error());
      if (error.http_status == 401 || error.http_status == 403) {
        return Fail(ErrorCode::kCredentials,
                    fmt::format("{}: the portal refused the cached SSO token (HTTP {}): the SSO session has "
                                "expired; run `aws sso login --profile {}`",
                                what, error.http_status, params.profile));
      }
      if (error.http_status == 404) {
        return Fail(ErrorCode::kCredentials,
                    fmt::format("{}: the portal does not know this account and role (HTTP 404): check sso_account_id "
                                "and sso_role_name in profile {}",
                                what, params.profile));
      }
      return std::unexpected(AsCredentialsError(std::move(error)));
    }
    auto credentials = ParseSsoCredentials(response->body, what);
    if (credentials) {
      credentials->source = fmt::format("SSO role {} in account {} (profile {})", params.role_name, params.account_id,
                                        params.profile);
    }
    return credentials;
  }

  Result<Credentials> ContainerCredentials() override {
    const std::string relative = Env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    const std::string full = Env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    if (relative.empty() && full.empty()) {
      return Fail(ErrorCode::kNotFound,
                  "container credentials: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and "
                  "AWS_CONTAINER_CREDENTIALS_FULL_URI are not set");
    }
    std::string url_text;
    std::string variable;
    if (!relative.empty()) {
      // The relative URI wins, as in botocore. Its host is fixed (the ECS agent); tests point it elsewhere.
      variable = "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI";
      if (!relative.starts_with('/')) {
        return Fail(ErrorCode::kConfig,
                    "container credentials: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI must start with '/'");
      }
      std::string host = Env(kContainerHostOverrideEnv);
      if (host.empty()) host = "http://169.254.170.2";
      while (host.ends_with('/')) host.pop_back();
      url_text = host + relative;
    } else {
      variable = "AWS_CONTAINER_CREDENTIALS_FULL_URI";
      url_text = full;
    }
    auto url = SplitHttpUrl(url_text, fmt::format("container credentials: {}", variable));
    if (!url) return std::unexpected(std::move(url.error()));
    if (relative.empty() && !ContainerHostAllowed(*url)) {
      return Fail(ErrorCode::kConfig,
                  fmt::format("container credentials: AWS_CONTAINER_CREDENTIALS_FULL_URI names host {} over http: "
                              "only https, a loopback address or 169.254.170.2, 169.254.170.23, fd00:ec2::23 may be "
                              "called over http (the authorization token would travel in the clear)",
                              url->host));
    }
    const std::string what = fmt::format("container credentials GET {}{}", url->endpoint, url->path);

    HttpRequest request;
    request.service = "container";
    request.mode = SigningMode::kS3;  // the path is sent as given, not normalised
    request.method = "GET";
    request.endpoint = url->endpoint;
    request.path = url->path;
    request.query = url->query;
    request.headers = {{"accept", "application/json"}};
    request.what = what;
    request.sign = false;
    auto token = ContainerAuthorization();
    if (!token) return std::unexpected(std::move(token.error()));
    if (!token->empty()) request.headers.emplace_back("authorization", *token);
    auto response = Send(std::move(request), kContainerBudget, nullptr);
    if (!response) {
      Error error = AsCredentialsError(std::move(response.error()));
      if (error.http_status == 401 || error.http_status == 403) {
        error.message += token->empty() ? "; no authorization token was sent (AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE "
                                          "or AWS_CONTAINER_AUTHORIZATION_TOKEN)"
                                        : "; the endpoint refused the authorization token";
      }
      return std::unexpected(std::move(error));
    }
    auto credentials = ParseMetadataCredentials(response->body, what);
    if (credentials) credentials->source = fmt::format("container credentials ({})", variable);
    return credentials;
  }

  Result<Credentials> InstanceCredentials() override {
    const std::string disabled = LowerAscii(Env("AWS_EC2_METADATA_DISABLED"));
    if (disabled == "true") {
      return Fail(ErrorCode::kNotFound, "instance metadata (IMDS): disabled by AWS_EC2_METADATA_DISABLED=true");
    }
    std::string base = Env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    if (base.empty()) base = ImdsEndpointDefault();
    auto url = SplitHttpUrl(base, "AWS_EC2_METADATA_SERVICE_ENDPOINT");
    if (!url) return std::unexpected(std::move(url.error()));
    const std::string prefix = url->path == "/" ? "" : TrimTrailingSlash(url->path);
    imds_endpoint_ = url->endpoint;

    auto token = ImdsToken(prefix);
    if (!token) return std::unexpected(std::move(token.error()));
    const std::string list_path = prefix + "/latest/meta-data/iam/security-credentials/";
    auto roles = ImdsGet(list_path, *token, prefix);
    if (!roles) return std::unexpected(std::move(roles.error()));
    std::string role = TrimSpace(roles->body.substr(0, roles->body.find('\n')));
    if (role.empty()) {
      return Fail(ErrorCode::kNotFound,
                  fmt::format("instance metadata (IMDS) at {}: the instance has no IAM role (empty role list)",
                              imds_endpoint_));
    }
    auto answer = ImdsGet(list_path + role, *token, prefix);
    if (!answer) return std::unexpected(std::move(answer.error()));
    auto credentials =
        ParseMetadataCredentials(answer->body, fmt::format("instance metadata (IMDS) role {}", role));
    if (credentials) {
      credentials->source = fmt::format("instance role {} (IMDS{} at {})", role, token->empty() ? "v1" : "v2",
                                        imds_endpoint_);
    }
    return credentials;
  }

  Result<Credentials> ProcessCredentials(const std::string& command, const std::string& profile) override {
    const std::string what = fmt::format("credential_process of profile {}", profile);
    // The AWS SDK for Go gives a credential process one minute; the AWS CLI waits forever. A minute leaves room
    // for a helper that asks for an MFA code on the terminal.
    auto run = RunShellCommand(command, std::chrono::minutes(1), 64 * 1024, what);
    if (!run) return std::unexpected(std::move(run.error()));
    const std::string err = LastLine(run->err_tail);
    const std::string err_note = err.empty() ? "" : fmt::format(" (its last error line: {})", err);
    if (run->timed_out) {
      return Fail(ErrorCode::kCredentials,
                  fmt::format("{}: the command did not finish within 60 s and was killed{}; run it by hand to see "
                              "why",
                              what, err_note));
    }
    if (run->signal != 0) {
      return Fail(ErrorCode::kCredentials,
                  fmt::format("{}: the command was killed by signal {}{}", what, run->signal, err_note));
    }
    if (run->exit_status != 0) {
      return Fail(ErrorCode::kCredentials,
                  fmt::format("{}: the command failed with exit status {}{}; run it by hand to see why", what,
                              run->exit_status, err_note));
    }
    auto credentials = ParseProcessCredentials(run->out, what);
    if (credentials) credentials->source = what;
    return credentials;
  }

 private:
  std::string Env(std::string_view name) const {
    if (!env_) return {};
    return env_(name).value_or("");
  }

  static std::string TrimTrailingSlash(std::string path) {
    while (path.ends_with('/')) path.pop_back();
    return path;
  }

  static std::string JoinPath(const std::string& base, std::string_view tail) {
    return (base == "/" ? std::string() : TrimTrailingSlash(base)) + std::string(tail);
  }

  // One request through a client of its own: the run's TLS settings, user agent and trace; signed with `signer`
  // when given.
  Result<HttpResponse> Send(HttpRequest request, const Budget& budget, const Credentials* signer) const {
    ClientOptions options = transport_;
    options.credentials = signer != nullptr ? *signer : Credentials{};
    options.credential_provider = nullptr;
    options.max_in_flight = 1;
    options.max_attempts = budget.attempts;
    options.connect_timeout = budget.connect;
    options.idle_timeout = budget.idle;
    options.base_backoff = milliseconds(100);
    options.max_backoff = milliseconds(1000);
    options.silent_timeout = (budget.connect + budget.idle) * budget.attempts + std::chrono::seconds(2);
    auto client = HttpClient::Create(std::move(options));
    if (!client) return std::unexpected(std::move(client.error()));
    return (*client)->Send(std::move(request));
  }

  Result<HttpResponse> CallSts(const std::string& what, const std::vector<std::pair<std::string, std::string>>& form,
                               const StsTarget& sts, const Credentials* signer) const {
    auto url = SplitHttpUrl(sts.endpoint, "the STS endpoint");
    if (!url) return std::unexpected(std::move(url.error()));
    HttpRequest request;
    request.service = "sts";
    request.region = sts.region;
    request.mode = SigningMode::kGeneric;
    request.method = "POST";
    request.endpoint = url->endpoint;
    request.path = url->path;
    request.headers = {{"content-type", "application/x-www-form-urlencoded; charset=utf-8"}};
    request.body.kind = Body::Kind::kBytes;
    request.body.bytes = FormBody(form);
    request.what = what;
    request.sign = signer != nullptr;
    return Send(std::move(request), kServiceBudget, signer);
  }

  // A failure of a source that is there: network trouble and server errors become kCredentials so that the chain
  // stops there (the source was configured) and says which source failed.
  static Error AsCredentialsError(Error error) {
    if (error.code != ErrorCode::kConfig) error.code = ErrorCode::kCredentials;
    return error;
  }

  static Error AssumeRoleError(Error error, const Credentials& source, const AssumeRoleParams& params,
                               const StsTarget& sts) {
    const std::string& code = error.service_code;
    const std::string what = fmt::format("sts:AssumeRole {} at {}", params.role_arn, sts.endpoint);
    const std::string from = fmt::format("the source credentials ({}, access key ID {})", source.source,
                                         ShortKeyId(source.access_key_id));
    if (code == "AccessDenied") {
      error.code = ErrorCode::kCredentials;
      error.message = fmt::format(
          "{}: AccessDenied: {} may not assume {}: check the role's trust policy and the source's sts:AssumeRole "
          "permission{}",
          what, from, params.role_arn,
          params.mfa_serial.empty() ? "" : " (and that the MFA code for the mfa_serial was current)");
    } else if (code == "InvalidClientTokenId" || code == "SignatureDoesNotMatch" || code == "InvalidAccessKeyId" ||
               code == "IncompleteSignature" || code == "UnrecognizedClientException") {
      error.code = ErrorCode::kCredentials;
      error.message = fmt::format("{}: {}: STS refused {}: check the source profile's access key ID and secret key",
                                  what, code, from);
    } else if (code == "ExpiredToken" || code == "ExpiredTokenException") {
      error.code = ErrorCode::kCredentials;
      error.message = fmt::format("{}: {}: {} have expired: renew them (or their session token)", what, code, from);
    } else if (code == "RegionDisabledException") {
      error.code = ErrorCode::kCredentials;
      error.message = fmt::format("{}: STS is not activated in region {}: activate it in the account's IAM settings, "
                                  "or use another region",
                                  what, sts.region);
    } else if (code == "ValidationError" || code == "MalformedPolicyDocument" || code == "InvalidParameterValue") {
      error.code = ErrorCode::kConfig;
      error.message = fmt::format("{}: {}: STS refused the request's settings: check role_arn, role_session_name, "
                                  "external_id and duration_seconds of the profile ({})",
                                  what, code, RedactKeyId(error.message, source.access_key_id));
    } else {
      error = AsCredentialsError(std::move(error));
      error.message = RedactKeyId(std::move(error.message), source.access_key_id);
    }
    return error;
  }

  static Error WebIdentityError(Error error, const WebIdentityParams& params, const StsTarget& sts) {
    const std::string& code = error.service_code;
    const std::string what =
        fmt::format("sts:AssumeRoleWithWebIdentity {} at {} (token file {})", params.role_arn, sts.endpoint,
                    params.token_file);
    if (code == "AccessDenied") {
      error.message = fmt::format("{}: AccessDenied: the role's trust policy does not accept this identity token: "
                                  "check its federated principal and conditions (aud, sub)",
                                  what);
    } else if (code == "InvalidIdentityToken" || code == "ExpiredTokenException" || code == "IDPRejectedClaim") {
      error.message = fmt::format("{}: {}: STS refused the identity token in the token file: check that the file "
                                  "holds a current token from the identity provider the role trusts",
                                  what, code);
    } else if (code == "IDPCommunicationError") {
      error.message = fmt::format("{}: IDPCommunicationError: STS could not reach the identity provider to check the "
                                  "token; try again",
                                  what);
    }
    return AsCredentialsError(std::move(error));
  }

  // The container endpoint's Authorization value: AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, read on every fetch
  // (EKS Pod Identity rotates the file), else AWS_CONTAINER_AUTHORIZATION_TOKEN; empty when neither is set.
  Result<std::string> ContainerAuthorization() const {
    std::string token;
    const std::string file = Env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    if (!file.empty()) {
      std::ifstream in(file, std::ios::binary);
      std::ostringstream text;
      if (in) text << in.rdbuf();
      if (!in || in.bad()) {
        return Fail(ErrorCode::kCredentials,
                    fmt::format("container credentials: cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE {}",
                                file));
      }
      token = text.str();
      // A final newline (as `echo` writes the file) is not part of the token.
      while (token.ends_with('\n') || token.ends_with('\r')) token.pop_back();
    } else {
      token = Env("AWS_CONTAINER_AUTHORIZATION_TOKEN");
    }
    if (token.find_first_of("\r\n") != std::string::npos) {
      return Fail(ErrorCode::kConfig,
                  "container credentials: the authorization token contains a line break, which a header value "
                  "cannot hold");
    }
    return token;
  }

  // IMDSv2's session token; empty when IMDS refuses to hand one out (403/404/405: an IMDSv1-only endpoint, which
  // botocore then calls without a token). No answer at all means there is no IMDS here: kNotFound.
  Result<std::string> ImdsToken(const std::string& prefix) const {
    HttpRequest request;
    request.service = "imds";
    request.mode = SigningMode::kS3;
    request.method = "PUT";
    request.endpoint = imds_endpoint_;
    request.path = prefix + "/latest/api/token";
    request.headers = {{"x-aws-ec2-metadata-token-ttl-seconds", "21600"}};
    request.body.kind = Body::Kind::kBytes;
    request.what = fmt::format("instance metadata (IMDS) PUT {}{}", imds_endpoint_, request.path);
    request.sign = false;
    auto response = Send(std::move(request), kImdsTokenBudget, nullptr);
    if (response) {
      std::string token = TrimSpace(response->body);
      if (token.empty()) {
        return Fail(ErrorCode::kNotFound,
                    fmt::format("instance metadata (IMDS) at {}: the token answer was empty", imds_endpoint_));
      }
      return token;
    }
    const Error& error = response.error();
    if (error.http_status == 403 || error.http_status == 404 || error.http_status == 405) return std::string();
    if (error.http_status == 0) {
      return Fail(ErrorCode::kNotFound,
                  fmt::format("instance metadata (IMDS): no answer from {} ({})", imds_endpoint_, error.message));
    }
    return Fail(ErrorCode::kNotFound, fmt::format("instance metadata (IMDS) at {}: the token request was refused "
                                                  "(HTTP {})",
                                                  imds_endpoint_, error.http_status));
  }

  // GET `path` with the session token; a 401 (the token was refused: expired, or IMDS restarted) gets one new
  // token and one more try.
  Result<HttpResponse> ImdsGet(const std::string& path, std::string& token, const std::string& prefix) const {
    for (int round = 0;; ++round) {
      HttpRequest request;
      request.service = "imds";
      request.mode = SigningMode::kS3;
      request.method = "GET";
      request.endpoint = imds_endpoint_;
      request.path = path;
      if (!token.empty()) request.headers = {{"x-aws-ec2-metadata-token", token}};
      request.what = fmt::format("instance metadata (IMDS) GET {}{}", imds_endpoint_, path);
      request.sign = false;
      auto response = Send(std::move(request), kImdsGetBudget, nullptr);
      if (response && !response->body.empty()) return response;
      if (response) {
        return Fail(ErrorCode::kNotFound,
                    fmt::format("instance metadata (IMDS) GET {}{}: empty answer", imds_endpoint_, path));
      }
      const Error& error = response.error();
      if (error.http_status == 401 && round == 0) {
        auto fresh = ImdsToken(prefix);
        if (!fresh) return std::unexpected(std::move(fresh.error()));
        token = std::move(*fresh);
        continue;
      }
      if (error.http_status == 401) {
        return Fail(ErrorCode::kCredentials,
                    fmt::format("instance metadata (IMDS) GET {}{}: the session token was refused (HTTP 401) even "
                                "after a new one was fetched",
                                imds_endpoint_, path));
      }
      if (error.http_status == 404) {
        return Fail(ErrorCode::kNotFound,
                    fmt::format("instance metadata (IMDS) at {}: no IAM role is attached to this instance (HTTP 404 "
                                "for {})",
                                imds_endpoint_, path));
      }
      return Fail(ErrorCode::kNotFound,
                  fmt::format("instance metadata (IMDS): {}", error.message));
    }
  }

  ClientOptions transport_;
  EnvLookup env_;
  mutable std::string imds_endpoint_;
};

}  // namespace

Result<std::chrono::system_clock::time_point> ParseIso8601(std::string_view text, std::string_view what) {
  auto bad = [&] {
    return Fail(ErrorCode::kParse,
                fmt::format("{}: the expiration time is not an ISO 8601 date and time (YYYY-MM-DDTHH:MM:SSZ)", what));
  };
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (text.size() < 19 || !Digits(text, 0, 4, year) || text[4] != '-' || !Digits(text, 5, 2, month) ||
      text[7] != '-' || !Digits(text, 8, 2, day) || (text[10] != 'T' && text[10] != 't' && text[10] != ' ') ||
      !Digits(text, 11, 2, hour) || text[13] != ':' || !Digits(text, 14, 2, minute) || text[16] != ':' ||
      !Digits(text, 17, 2, second)) {
    return bad();
  }
  std::size_t pos = 19;
  std::chrono::nanoseconds fraction{0};
  if (pos < text.size() && (text[pos] == '.' || text[pos] == ',')) {
    ++pos;
    const std::size_t start = pos;
    long long scale = 100000000;
    long long nanos = 0;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      nanos += (text[pos] - '0') * scale;
      scale /= 10;
      ++pos;
    }
    if (pos == start) return bad();
    fraction = std::chrono::nanoseconds(nanos);
  }
  std::chrono::minutes offset{0};
  if (pos < text.size() && (text[pos] == 'Z' || text[pos] == 'z')) {
    ++pos;
  } else if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    const int sign = text[pos] == '+' ? 1 : -1;
    ++pos;
    int oh = 0, om = 0;
    if (!Digits(text, pos, 2, oh)) return bad();
    pos += 2;
    if (pos < text.size() && text[pos] == ':') ++pos;
    if (!Digits(text, pos, 2, om)) return bad();
    pos += 2;
    if (oh > 23 || om > 59) return bad();
    offset = std::chrono::minutes(sign * (oh * 60 + om));
  } else {
    return bad();  // no zone: local time is not what any AWS source writes
  }
  if (pos != text.size()) return bad();
  const std::chrono::year_month_day date{std::chrono::year(year), std::chrono::month(static_cast<unsigned>(month)),
                                         std::chrono::day(static_cast<unsigned>(day))};
  if (!date.ok() || hour > 23 || minute > 59 || second > 60) return bad();
  const auto time = std::chrono::sys_days(date) + std::chrono::hours(hour) + std::chrono::minutes(minute) +
                    std::chrono::seconds(second) - offset;
  return std::chrono::time_point_cast<std::chrono::system_clock::duration>(time + fraction);
}

Result<Credentials> ParseStsCredentials(std::string_view xml, std::string_view result, std::string_view what) {
  auto doc = ParseXml(xml);
  if (!doc) return Fail(ErrorCode::kCredentials, fmt::format("{}: the answer is not XML", what));
  const XmlElement* result_element = doc->Child(result);
  const XmlElement* creds = result_element != nullptr ? result_element->Child("Credentials") : nullptr;
  if (creds == nullptr) {
    return Fail(ErrorCode::kCredentials, fmt::format("{}: the answer has no {}/Credentials element", what, result));
  }
  Credentials out;
  const std::pair<const char*, std::string*> fields[] = {{"AccessKeyId", &out.access_key_id},
                                                         {"SecretAccessKey", &out.secret_access_key},
                                                         {"SessionToken", &out.session_token}};
  for (const auto& [name, target] : fields) {
    *target = TrimSpace(creds->ChildText(name));
    if (target->empty()) {
      return Fail(ErrorCode::kCredentials, fmt::format("{}: the answer's Credentials have no {}", what, name));
    }
  }
  const std::string expiration = TrimSpace(creds->ChildText("Expiration"));
  if (expiration.empty()) {
    return Fail(ErrorCode::kCredentials, fmt::format("{}: the answer's Credentials have no Expiration", what));
  }
  auto when = ParseIso8601(expiration, what);
  if (!when) return Fail(ErrorCode::kCredentials, when.error().message);
  out.expiration = *when;
  return out;
}

Result<Credentials> ParseSsoCredentials(std::string_view json, std::string_view what) {
  auto doc = ParseJsonObject(json, what);
  if (!doc) return std::unexpected(std::move(doc.error()));
  auto it = doc->find("roleCredentials");
  if (it == doc->end() || !it->is_object()) {
    return Fail(ErrorCode::kCredentials, fmt::format("{}: the answer has no roleCredentials object", what));
  }
  Credentials out;
  auto key = RequiredString(*it, "accessKeyId", what);
  if (!key) return std::unexpected(std::move(key.error()));
  auto secret = RequiredString(*it, "secretAccessKey", what);
  if (!secret) return std::unexpected(std::move(secret.error()));
  auto token = RequiredString(*it, "sessionToken", what);
  if (!token) return std::unexpected(std::move(token.error()));
  out.access_key_id = std::move(*key);
  out.secret_access_key = std::move(*secret);
  out.session_token = std::move(*token);
  auto expiration = it->find("expiration");
  if (expiration == it->end() || !expiration->is_number() || expiration->get<double>() <= 0) {
    return Fail(ErrorCode::kCredentials,
                fmt::format("{}: the answer has no expiration (milliseconds since 1970, a positive number)", what));
  }
  const auto ms = expiration->is_number_integer() ? expiration->get<std::int64_t>()
                                                  : static_cast<std::int64_t>(expiration->get<double>());
  out.expiration = std::chrono::system_clock::time_point(std::chrono::milliseconds(ms));
  return out;
}

Result<Credentials> ParseMetadataCredentials(std::string_view json, std::string_view what) {
  auto doc = ParseJsonObject(json, what);
  if (!doc) return std::unexpected(std::move(doc.error()));
  // IMDS answers 200 with {"Code": "...", "Message": "..."} when the role cannot be handed out (e.g. the role does
  // not trust ec2.amazonaws.com).
  if (const std::string* code = JsonString(*doc, "Code"); code != nullptr && *code != "Success") {
    const std::string* message = JsonString(*doc, "Message");
    return Fail(ErrorCode::kCredentials,
                fmt::format("{}: the service answered {}{}", what, *code,
                            message != nullptr && !message->empty() ? ": " + LastLine(*message) : std::string()));
  }
  Credentials out;
  auto key = RequiredString(*doc, "AccessKeyId", what);
  if (!key) return std::unexpected(std::move(key.error()));
  auto secret = RequiredString(*doc, "SecretAccessKey", what);
  if (!secret) return std::unexpected(std::move(secret.error()));
  auto token = RequiredString(*doc, "Token", what);
  if (!token) return std::unexpected(std::move(token.error()));
  auto expiration = RequiredString(*doc, "Expiration", what);
  if (!expiration) return std::unexpected(std::move(expiration.error()));
  auto when = ParseIso8601(*expiration, what);
  if (!when) return Fail(ErrorCode::kCredentials, when.error().message);
  out.access_key_id = std::move(*key);
  out.secret_access_key = std::move(*secret);
  out.session_token = std::move(*token);
  out.expiration = *when;
  return out;
}

Result<Credentials> ParseProcessCredentials(std::string_view json, std::string_view what) {
  auto doc = ParseJsonObject(json, what);
  if (!doc) {
    return Fail(ErrorCode::kCredentials,
                fmt::format("{}: the command's output is not a JSON object (it must print {{\"Version\": 1, "
                            "\"AccessKeyId\": ..., \"SecretAccessKey\": ...}})",
                            what));
  }
  auto version = doc->find("Version");
  if (version == doc->end() || !version->is_number_integer() || version->get<std::int64_t>() != 1) {
    const std::string shown = version == doc->end()           ? std::string("no Version")
                              : version->is_number_integer() ? fmt::format("Version {}", version->get<std::int64_t>())
                                                             : std::string("a Version that is not a number");
    return Fail(ErrorCode::kCredentials,
                fmt::format("{}: the output has {}; only Version 1 is supported", what, shown));
  }
  Credentials out;
  auto key = RequiredString(*doc, "AccessKeyId", what);
  if (!key) return std::unexpected(std::move(key.error()));
  auto secret = RequiredString(*doc, "SecretAccessKey", what);
  if (!secret) return std::unexpected(std::move(secret.error()));
  out.access_key_id = std::move(*key);
  out.secret_access_key = std::move(*secret);
  if (const std::string* token = JsonString(*doc, "SessionToken")) out.session_token = *token;
  if (const std::string* expiration = JsonString(*doc, "Expiration"); expiration != nullptr && !expiration->empty()) {
    auto when = ParseIso8601(*expiration, what);
    if (!when) return Fail(ErrorCode::kCredentials, when.error().message);
    out.expiration = *when;
  }
  return out;
}

Result<SplitUrl> SplitHttpUrl(std::string_view url, std::string_view what) {
  auto bad = [&](std::string_view why) {
    return Fail(ErrorCode::kConfig, fmt::format("{}: {} is not a usable URL: {}", what, url, why));
  };
  SplitUrl out;
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return bad("it has no scheme (http:// or https://)");
  out.scheme = LowerAscii(url.substr(0, scheme_end));
  if (out.scheme != "http" && out.scheme != "https") return bad("only http and https are supported");
  std::string_view rest = url.substr(scheme_end + 3);
  const auto authority_end = rest.find_first_of("/?#");
  const std::string_view authority = rest.substr(0, authority_end);
  rest = authority_end == std::string_view::npos ? std::string_view() : rest.substr(authority_end);
  if (authority.empty()) return bad("it has no host");
  if (authority.find('@') != std::string_view::npos) return bad("user names and passwords in URLs are not supported");
  std::string_view port;
  if (authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return bad("an IPv6 address without its ']'");
    out.host = LowerAscii(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return bad("text after the IPv6 address");
      port = after.substr(1);
    }
  } else {
    const auto colon = authority.find(':');
    out.host = LowerAscii(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (out.host.empty()) return bad("it has no host");
  if (!port.empty() || authority.ends_with(':')) {
    int number = 0;
    if (port.empty() || !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
        std::from_chars(port.data(), port.data() + port.size(), number).ec != std::errc{} || number < 1 ||
        number > 65535) {
      return bad("the port is not a number from 1 to 65535");
    }
  }
  out.endpoint = out.scheme + "://" + LowerAscii(authority);
  if (const auto hash = rest.find('#'); hash != std::string_view::npos) rest = rest.substr(0, hash);
  const auto question = rest.find('?');
  const std::string_view path = rest.substr(0, question);
  out.path = path.empty() ? "/" : PercentDecode(path);
  if (question != std::string_view::npos) {
    std::string_view query = rest.substr(question + 1);
    while (!query.empty()) {
      const auto amp = query.find('&');
      const std::string_view item = query.substr(0, amp);
      if (!item.empty()) {
        const auto eq = item.find('=');
        out.query.emplace_back(PercentDecode(item.substr(0, eq)),
                               eq == std::string_view::npos ? std::string() : PercentDecode(item.substr(eq + 1)));
      }
      if (amp == std::string_view::npos) break;
      query.remove_prefix(amp + 1);
    }
  }
  return out;
}

bool ContainerHostAllowed(const SplitUrl& url) {
  if (url.scheme == "https") return true;
  if (url.host == "localhost") return true;
  in_addr v4{};
  if (inet_pton(AF_INET, url.host.c_str(), &v4) == 1) {
    const auto address = ntohl(v4.s_addr);
    if ((address >> 24) == 127) return true;  // 127.0.0.0/8
    return url.host == "169.254.170.2" || url.host == "169.254.170.23";
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, url.host.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    in6_addr allowed{};
    inet_pton(AF_INET6, "fd00:ec2::23", &allowed);
    return std::equal(std::begin(v6.s6_addr), std::end(v6.s6_addr), std::begin(allowed.s6_addr));
  }
  return false;
}

std::unique_ptr<CredentialFetcher> NetworkCredentialFetcher(ClientOptions transport, EnvLookup env) {
  return std::make_unique<NetworkFetcher>(std::move(transport), std::move(env));
}

}  // namespace sitesync::aws
