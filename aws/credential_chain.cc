// The standard credential chain (ResolveCredentialChain): which source gives the credentials, in the order the AWS
// SDKs use, and the provider that keeps temporary credentials fresh. The calls that reach the network or run a
// process are behind CredentialFetcher (aws/credential_sources.cc); this file decides, reads the shared files, the
// SSO token cache and web identity token files, and never talks to the network itself.
//
// The order, as botocore's create_credential_resolver builds it, with the web identity variables moved before the
// profile as the SDKs' common documentation puts it ("environment, web identity, shared files, container, IMDS"):
//   1. AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY [/ AWS_SESSION_TOKEN]   (skipped when a profile is named explicitly)
//   2. AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN                         (skipped likewise, as botocore's
//                                                                         disable_env_vars does)
//   3. the profile: role_arn (unless it has web_identity_token_file) with source_profile or credential_source;
//      then botocore's profile providers: web_identity_token_file, SSO, static keys in the credentials file,
//      credential_process, static keys in the config file
//   4. the container credentials endpoint, 5. IMDSv2.
//
// No message built here holds a secret, a session token, a web identity token or an SSO access token.
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>

#include "aws/aws.h"

namespace sitesync::aws {
namespace {

using Clock = std::function<std::chrono::system_clock::time_point()>;
using Fetch = std::function<Result<Credentials>()>;
using ProviderPtr = std::shared_ptr<CredentialProvider>;
/// A source's answer: a provider, nullptr when the source is not configured (the chain goes on), or an error when
/// it is configured and fails.
using Found = Result<ProviderPtr>;

/// After a failed advisory refresh (the held credentials are still good), the next try waits this long, so that a
/// broken STS is not asked on every request during the last minutes.
constexpr std::chrono::seconds kRetryAfterFailedRefresh{30};

constexpr std::string_view kCredentialSources[] = {"Environment", "Ec2InstanceMetadata", "EcsContainer"};

std::optional<std::string> NonEmpty(const EnvLookup& env, std::string_view name) {
  if (!env) return std::nullopt;
  std::optional<std::string> value = env(name);
  if (!value || value->empty()) return std::nullopt;
  return value;
}

Error WithContext(Error e, std::string_view context) {
  e.message = std::string(context) + ": " + e.message;
  return e;
}

std::string SectionName(bool config_file, std::string_view profile) {
  if (config_file && profile != "default") return "[profile " + std::string(profile) + "]";
  return "[" + std::string(profile) + "]";
}

/// "2026-12-06T06:00:00Z", "...T06:00:00.123Z", "...T06:00:00UTC" (older AWS CLI caches), "...+00:00".
std::optional<std::chrono::system_clock::time_point> ParseIsoTime(std::string_view s) {
  auto number = [&](std::size_t pos, std::size_t len, int& out) {
    if (pos + len > s.size()) return false;
    const char* first = s.data() + pos;
    auto [ptr, ec] = std::from_chars(first, first + len, out);
    return ec == std::errc() && ptr == first + len;
  };
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (s.size() < 19 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != ' ') || s[13] != ':' ||
      s[16] != ':') {
    return std::nullopt;
  }
  if (!number(0, 4, year) || !number(5, 2, month) || !number(8, 2, day) || !number(11, 2, hour) ||
      !number(14, 2, minute) || !number(17, 2, second)) {
    return std::nullopt;
  }
  std::string_view rest = s.substr(19);
  if (rest.starts_with('.')) {
    std::size_t i = 1;
    while (i < rest.size() && rest[i] >= '0' && rest[i] <= '9') ++i;
    rest.remove_prefix(i);
  }
  if (rest != "Z" && rest != "UTC" && rest != "+00:00" && rest != "+0000" && !rest.empty()) return std::nullopt;
  const std::chrono::year_month_day ymd{std::chrono::year{year}, std::chrono::month{static_cast<unsigned>(month)},
                                        std::chrono::day{static_cast<unsigned>(day)}};
  if (!ymd.ok() || hour > 23 || minute > 59 || second > 60) return std::nullopt;
  return std::chrono::sys_days{ymd} + std::chrono::hours{hour} + std::chrono::minutes{minute} +
         std::chrono::seconds{second};
}

/// The bytes of a small file; kNotFound when it does not exist, kCredentials when it cannot be read.
Result<std::string> ReadSmallFile(const std::string& path, std::string_view what) {
  errno = 0;
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!file) {
    const int err = errno;
    return Fail(err == ENOENT || err == ENOTDIR ? ErrorCode::kNotFound : ErrorCode::kCredentials,
                "read " + std::string(what) + " " + path + ": " + std::strerror(err));
  }
  std::string data;
  char buf[8192];
  while (true) {
    const std::size_t n = std::fread(buf, 1, sizeof buf, file.get());
    data.append(buf, n);
    if (data.size() > (1u << 20)) {
      return Fail(ErrorCode::kCredentials, "read " + std::string(what) + " " + path + ": larger than 1 MiB");
    }
    if (n < sizeof buf) break;
  }
  if (std::ferror(file.get())) {
    return Fail(ErrorCode::kCredentials, "read " + std::string(what) + " " + path + ": read error");
  }
  return data;
}

// ---------------------------------------------------------------------------------------------------------------
// The provider: holds what the last fetch gave, fetches again kCredentialRefreshAhead before it expires
// ---------------------------------------------------------------------------------------------------------------

class RefreshingProvider final : public CredentialProvider {
 public:
  RefreshingProvider(Fetch fetch, Clock now, Credentials first)
      : fetch_(std::move(fetch)), now_(std::move(now)), held_(std::move(first)) {}

  Result<Credentials> Get(bool force_refresh) override {
    std::lock_guard lock(mutex_);
    // Long-term keys (and temporary ones given without an expiry) are never fetched again: nothing would change.
    if (!held_.expiration) return held_;
    const auto now = now_();
    const bool due = *held_.expiration - now <= kCredentialRefreshAhead;
    if (!force_refresh && (!due || now < retry_after_)) return held_;
    Result<Credentials> fresh = fetch_();
    if (fresh) {
      held_ = std::move(*fresh);
      retry_after_ = {};
      return held_;
    }
    // The SDKs' advisory refresh: a failed refresh while the held credentials still work is not an error yet.
    // A forced refresh means the server has refused them already, so its failure is returned.
    if (!force_refresh && now < *held_.expiration) {
      retry_after_ = now + kRetryAfterFailedRefresh;
      return held_;
    }
    return std::unexpected(WithContext(std::move(fresh.error()), "refresh the credentials from " + held_.source));
  }

 private:
  std::mutex mutex_;
  Fetch fetch_;
  Clock now_;
  Credentials held_;
  std::chrono::system_clock::time_point retry_after_{};
};

// ---------------------------------------------------------------------------------------------------------------
// The resolver
// ---------------------------------------------------------------------------------------------------------------

class Resolver {
 public:
  Resolver(const CredentialChainOptions& options, std::shared_ptr<CredentialFetcher> fetcher)
      : options_(options), fetcher_(std::move(fetcher)) {
    now_ = options_.now ? options_.now : Clock([] { return std::chrono::system_clock::now(); });
    region_ = options_.region.empty() ? "us-east-1" : options_.region;
    profile_ = ChosenProfile(options_.profile, options_.env);
  }

  Result<ProviderPtr> Resolve() {
    const bool explicit_profile = !options_.profile.empty();
    if (!explicit_profile) {
      if (Found f = FromEnvironmentKeys(); Stops(f)) return f;
    }
    // Read only now: keys in the environment work even beside a broken config file, as they always have.
    Result<SharedConfig> shared = LoadSharedConfig(options_.env);
    if (!shared) return std::unexpected(std::move(shared.error()));
    shared_ = std::move(*shared);
    if (!explicit_profile) {
      if (Found f = FromEnvironmentWebIdentity(); Stops(f)) return f;
    } else {
      looked_.push_back("the environment (not read: profile " + profile_ + " was named explicitly)");
    }

    const ConfigSection* in_credentials = shared_.CredentialsProfile(profile_);
    const ConfigSection* in_config = shared_.ConfigProfile(profile_);
    if (in_credentials == nullptr && in_config == nullptr && profile_ != "default") {
      // botocore: ProfileNotFound. Going on to the container or the instance role would publish with other
      // credentials than the ones asked for.
      return Fail(ErrorCode::kConfig, "profile " + profile_ + " is not in " + DescribeFile(false) + " nor in " +
                                          DescribeFile(true) + "; check its name (--profile, profile:, AWS_PROFILE)" +
                                          " or run `aws configure --profile " + profile_ + "`");
    }
    std::vector<std::string> visited{profile_};
    if (Found f = FromProfile(profile_, visited, false); Stops(f)) return f;
    looked_.push_back(DescribeFile(false));
    looked_.push_back(DescribeFile(true));

    // The fetch functions outlive this resolver (the provider refreshes with them): they own the fetcher.
    std::shared_ptr<CredentialFetcher> fetcher = fetcher_;
    if (Found f = FromFetcher([fetcher] { return fetcher->ContainerCredentials(); }, "container credentials endpoint");
        Stops(f)) {
      return f;
    }
    if (Found f = FromFetcher([fetcher] { return fetcher->InstanceCredentials(); }, "EC2 instance metadata (IMDSv2)");
        Stops(f)) {
      return f;
    }

    std::string message = "no AWS credentials for profile " + profile_ + ": looked in ";
    for (std::size_t i = 0; i < looked_.size(); ++i) message += (i == 0 ? "" : ", ") + looked_[i];
    message += ". Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run `aws configure";
    if (profile_ != "default") message += " --profile " + profile_;
    message += "` (or `aws configure sso`)";
    return Fail(ErrorCode::kCredentials, std::move(message));
  }

 private:
  /// Whether the chain stops at this answer (a provider, or an error).
  static bool Stops(const Found& f) { return !f.has_value() || f.value() != nullptr; }

  /// Fetches once now (a broken setup fails before any work), then hands out a provider that refreshes.
  Result<ProviderPtr> Start(Fetch fetch) {
    Result<Credentials> first = fetch();
    if (!first) return std::unexpected(std::move(first.error()));
    return ProviderPtr(std::make_shared<RefreshingProvider>(std::move(fetch), now_, std::move(*first)));
  }

  Found Started(Fetch fetch) {
    return Start(std::move(fetch));
  }

  // -- the environment ----------------------------------------------------------------------------------------

  Result<std::optional<Credentials>> EnvironmentKeys() {
    const std::optional<std::string> key_id = NonEmpty(options_.env, "AWS_ACCESS_KEY_ID");
    const std::optional<std::string> secret = NonEmpty(options_.env, "AWS_SECRET_ACCESS_KEY");
    if (key_id && secret) {
      Credentials out;
      out.access_key_id = *key_id;
      out.secret_access_key = *secret;
      out.session_token = NonEmpty(options_.env, "AWS_SESSION_TOKEN").value_or("");
      out.source = "environment";
      return std::optional<Credentials>(std::move(out));
    }
    if (key_id || secret) {
      return Fail(ErrorCode::kCredentials,
                  std::string(key_id ? "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not"
                                     : "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not") +
                      "; set both, or unset it to use a profile from ~/.aws/credentials");
    }
    return std::optional<Credentials>();
  }

  Found FromEnvironmentKeys() {
    Result<std::optional<Credentials>> keys = EnvironmentKeys();
    if (!keys) return std::unexpected(std::move(keys.error()));
    if (!*keys) {
      looked_.push_back("the environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set)");
      return ProviderPtr();
    }
    return ProviderPtr(StaticCredentials(std::move(**keys)));
  }

  Found FromEnvironmentWebIdentity() {
    const std::optional<std::string> token_file = NonEmpty(options_.env, "AWS_WEB_IDENTITY_TOKEN_FILE");
    if (!token_file) {
      looked_.push_back("web identity (AWS_WEB_IDENTITY_TOKEN_FILE is not set)");
      return ProviderPtr();
    }
    // botocore takes each setting from the environment first, then from the profile.
    std::string role_arn = NonEmpty(options_.env, "AWS_ROLE_ARN").value_or(Setting(profile_, "role_arn"));
    if (role_arn.empty()) {
      return Fail(ErrorCode::kConfig, "AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not (nor role_arn in "
                                      "profile " + profile_ + "); set AWS_ROLE_ARN to the role to assume, or unset "
                                      "AWS_WEB_IDENTITY_TOKEN_FILE");
    }
    std::string session_name =
        NonEmpty(options_.env, "AWS_ROLE_SESSION_NAME").value_or(Setting(profile_, "role_session_name"));
    return WebIdentity(std::move(role_arn), *token_file, std::move(session_name), 0);
  }

  // -- the shared files ---------------------------------------------------------------------------------------

  /// A profile's setting as botocore's merged view has it: the credentials file's value, else the config file's.
  const ConfigValue* FindSetting(std::string_view profile, std::string_view name) const {
    if (const ConfigSection* s = shared_.CredentialsProfile(profile)) {
      if (const ConfigValue* v = s->Find(name)) return v;
    }
    if (const ConfigSection* s = shared_.ConfigProfile(profile)) return s->Find(name);
    return nullptr;
  }
  std::string Setting(std::string_view profile, std::string_view name) const {
    const ConfigValue* v = FindSetting(profile, name);
    return v == nullptr ? std::string() : v->value;
  }
  /// "FILE:LINE" of a setting, for messages.
  std::string Where(std::string_view profile, std::string_view name) const {
    for (const ConfigSection* s : {shared_.CredentialsProfile(profile), shared_.ConfigProfile(profile)}) {
      if (s == nullptr) continue;
      if (const ConfigValue* v = s->Find(name)) return s->file + ":" + std::to_string(v->line);
    }
    return "profile " + std::string(profile);
  }
  bool Exists(std::string_view profile) const {
    return shared_.CredentialsProfile(profile) != nullptr || shared_.ConfigProfile(profile) != nullptr;
  }
  bool HasStaticKeys(std::string_view profile) const {
    return FindSetting(profile, "aws_access_key_id") != nullptr ||
           FindSetting(profile, "aws_secret_access_key") != nullptr;
  }
  bool HasAssumeRole(std::string_view profile) const {
    return FindSetting(profile, "role_arn") != nullptr && FindSetting(profile, "web_identity_token_file") == nullptr;
  }

  /// What a file said about the chosen profile, for the "no credentials" message.
  std::string DescribeFile(bool config_file) const {
    const std::string& path = config_file ? shared_.config_path : shared_.credentials_path;
    const bool exists = config_file ? shared_.config_exists : shared_.credentials_exists;
    const auto& sections = config_file ? shared_.config_profiles : shared_.credentials_profiles;
    if (path.empty()) return std::string("~/.aws/") + (config_file ? "config" : "credentials") + " (HOME is not set)";
    if (!exists) return path + " (not found)";
    auto it = sections.find(profile_);
    if (it == sections.end()) {
      std::string out = path + " (no " + SectionName(config_file, profile_) + " section";
      if (!sections.empty()) {
        out += "; it has";
        for (const auto& [name, unused] : sections) out += " " + SectionName(config_file, name);
      }
      return out + ")";
    }
    return path + " (" + SectionName(config_file, profile_) +
           " has no aws_access_key_id, role_arn, sso_session or credential_process)";
  }

  Result<int> DurationSeconds(std::string_view profile) const {
    const ConfigValue* v = FindSetting(profile, "duration_seconds");
    if (v == nullptr) return 0;
    int seconds = 0;
    auto [ptr, ec] = std::from_chars(v->value.data(), v->value.data() + v->value.size(), seconds);
    if (ec != std::errc() || ptr != v->value.data() + v->value.size() || seconds < 900 || seconds > 43200) {
      return Fail(ErrorCode::kConfig, Where(profile, "duration_seconds") + ": duration_seconds of profile " +
                                          std::string(profile) + " must be a number of seconds from 900 to 43200");
    }
    return seconds;
  }

  std::string DefaultSessionName() const {
    // The AWS CLI names its sessions botocore-session-<epoch seconds>; ours say who made them.
    const auto epoch = std::chrono::duration_cast<std::chrono::seconds>(now_().time_since_epoch()).count();
    return "sitesync-" + std::to_string(epoch);
  }

  StsTarget Sts() const {
    // botocore creates the assume-role STS client in the region of the client being made (the run's region).
    if (options_.sts) return options_.sts(region_);
    return StsTarget{"https://sts." + region_ + ".amazonaws.com", region_};
  }

  /// The profile's credentials. `as_source`: it is the source_profile of another, and then static keys beat its
  /// own role_arn (botocore's _resolve_credentials_from_profile).
  Found FromProfile(const std::string& profile, std::vector<std::string>& visited, bool as_source) {
    if (HasAssumeRole(profile) && !(as_source && HasStaticKeys(profile))) {
      Result<ProviderPtr> role = AssumeRoleOf(profile, visited);
      if (!role) return std::unexpected(std::move(role.error()));
      return ProviderPtr(std::move(*role));
    }
    return ProfileProviders(profile);
  }

  /// botocore's ProfileProviderBuilder order: web identity, SSO, credentials file, credential_process, config file.
  Found ProfileProviders(const std::string& profile) {
    if (const ConfigValue* token_file = FindSetting(profile, "web_identity_token_file")) {
      std::string role_arn = Setting(profile, "role_arn");
      if (role_arn.empty()) {
        return Fail(ErrorCode::kConfig, Where(profile, "web_identity_token_file") + ": profile " + profile +
                                            " has web_identity_token_file but no role_arn; add the role to assume");
      }
      Result<int> duration = DurationSeconds(profile);
      if (!duration) return std::unexpected(std::move(duration.error()));
      return WebIdentity(std::move(role_arn), token_file->value, Setting(profile, "role_session_name"), *duration);
    }
    if (FindSetting(profile, "sso_account_id") != nullptr || FindSetting(profile, "sso_role_name") != nullptr) {
      return Sso(profile);
    }
    Result<std::optional<Credentials>> keys = StaticKeys(false, profile);
    if (!keys) return std::unexpected(std::move(keys.error()));
    if (*keys) return ProviderPtr(StaticCredentials(std::move(**keys)));
    if (const ConfigValue* command = FindSetting(profile, "credential_process")) {
      std::shared_ptr<CredentialFetcher> fetcher = fetcher_;
      std::string source = "credential_process of profile " + profile;
      return Started([fetcher, command = command->value, profile, source]() -> Result<Credentials> {
        Result<Credentials> c = fetcher->ProcessCredentials(command, profile);
        if (!c) return c;
        c->source = source;
        return c;
      });
    }
    keys = StaticKeys(true, profile);
    if (!keys) return std::unexpected(std::move(keys.error()));
    if (*keys) return ProviderPtr(StaticCredentials(std::move(**keys)));
    return ProviderPtr();
  }

  /// Static keys of the profile's section in one file: nullopt when it has none, kConfig when only half.
  Result<std::optional<Credentials>> StaticKeys(bool config_file, std::string_view profile) const {
    return StaticKeysOf(shared_, config_file, profile);
  }

  // -- assumed roles ------------------------------------------------------------------------------------------

  Result<ProviderPtr> AssumeRoleOf(const std::string& profile, std::vector<std::string>& visited) {
    const std::string source_profile = Setting(profile, "source_profile");
    const std::string credential_source = Setting(profile, "credential_source");
    const std::string role_arn = Setting(profile, "role_arn");
    if (!source_profile.empty() && !credential_source.empty()) {
      return Fail(ErrorCode::kConfig, "profile " + profile + " has both source_profile (" +
                                          Where(profile, "source_profile") + ") and credential_source (" +
                                          Where(profile, "credential_source") + "); keep one of them");
    }
    if (source_profile.empty() && credential_source.empty()) {
      return Fail(ErrorCode::kConfig, Where(profile, "role_arn") + ": profile " + profile +
                                          " has role_arn but neither source_profile nor credential_source; add the "
                                          "profile whose credentials assume the role (source_profile = NAME)");
    }

    ProviderPtr source;
    if (!credential_source.empty()) {
      Result<ProviderPtr> s = CredentialSource(profile, credential_source);
      if (!s) return std::unexpected(std::move(s.error()));
      source = std::move(*s);
    } else {
      if (!Exists(source_profile)) {
        return Fail(ErrorCode::kConfig, Where(profile, "source_profile") + ": the source_profile " + source_profile +
                                            " of profile " + profile + " does not exist in " +
                                            shared_.credentials_path + " nor in " + shared_.config_path +
                                            "; add it or correct the name");
      }
      const bool seen = std::find(visited.begin(), visited.end(), source_profile) != visited.end();
      // A profile may name itself as its source to use its own static keys (botocore allows exactly that).
      if (seen && !(source_profile == profile && HasStaticKeys(profile))) {
        std::string cycle;
        for (const std::string& v : visited) cycle += v + " -> ";
        return Fail(ErrorCode::kConfig, "the source_profile settings form a cycle (" + cycle + source_profile +
                                            "); make one of these profiles use static keys, SSO or "
                                            "credential_source instead");
      }
      visited.push_back(source_profile);
      Found s = FromProfile(source_profile, visited, true);
      if (!s) return std::unexpected(std::move(s.error()));
      if (!*s) {
        return Fail(ErrorCode::kConfig, "the source_profile " + source_profile + " of profile " + profile +
                                            " has no credentials (no aws_access_key_id, role_arn, SSO or "
                                            "credential_process); add them to it");
      }
      source = std::move(*s);
    }

    AssumeRoleParams params;
    params.role_arn = role_arn;
    params.role_session_name = Setting(profile, "role_session_name");
    if (params.role_session_name.empty()) params.role_session_name = DefaultSessionName();
    params.external_id = Setting(profile, "external_id");
    params.mfa_serial = Setting(profile, "mfa_serial");
    Result<int> duration = DurationSeconds(profile);
    if (!duration) return std::unexpected(std::move(duration.error()));
    params.duration_seconds = *duration;
    if (!params.mfa_serial.empty() && !options_.read_mfa_code) {
      return Fail(ErrorCode::kConfig, "profile " + profile + " needs an MFA code (mfa_serial " + params.mfa_serial +
                                          ") and sitesync reads it only from a terminal; run it from a terminal, "
                                          "or use a profile without mfa_serial (CI: a role without MFA)");
    }

    std::shared_ptr<CredentialFetcher> fetcher = fetcher_;
    const StsTarget sts = Sts();
    auto read_mfa = options_.read_mfa_code;
    const std::string what = "assume role " + role_arn + " (profile " + profile + ")";
    return Start([fetcher, source, params, sts, read_mfa, what, role_arn, profile]() mutable -> Result<Credentials> {
      Result<Credentials> from = source->Get(false);
      if (!from) return std::unexpected(WithContext(std::move(from.error()), what));
      if (!params.mfa_serial.empty()) {
        std::optional<std::string> code = read_mfa ? read_mfa(params.mfa_serial) : std::nullopt;
        if (!code || code->empty()) {
          return Fail(ErrorCode::kCredentials, what + ": no MFA code was entered for " + params.mfa_serial +
                                                   "; run again and type the code from the device");
        }
        params.mfa_code = std::move(*code);
      }
      Result<Credentials> c = fetcher->AssumeRole(*from, params, sts);
      params.mfa_code.clear();
      if (!c) return c;
      c->source = "assumed role " + role_arn + " via profile " + profile + " (source " + from->source + ")";
      return c;
    });
  }

  Result<ProviderPtr> CredentialSource(const std::string& profile, const std::string& name) {
    if (std::find(std::begin(kCredentialSources), std::end(kCredentialSources), name) ==
        std::end(kCredentialSources)) {
      return Fail(ErrorCode::kConfig, Where(profile, "credential_source") + ": credential_source " + name +
                                          " of profile " + profile +
                                          " is not one of Environment, Ec2InstanceMetadata, EcsContainer");
    }
    const std::string what = "credential_source " + name + " of profile " + profile;
    if (name == "Environment") {
      Result<std::optional<Credentials>> keys = EnvironmentKeys();
      if (!keys) return std::unexpected(WithContext(std::move(keys.error()), what));
      if (!*keys) {
        return Fail(ErrorCode::kCredentials, what + ": AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set; "
                                                    "export them, or change credential_source");
      }
      return StaticCredentials(std::move(**keys));
    }
    std::shared_ptr<CredentialFetcher> fetcher = fetcher_;
    const bool imds = name == "Ec2InstanceMetadata";
    const std::string source = imds ? "EC2 instance metadata (IMDSv2)" : "container credentials endpoint";
    Result<ProviderPtr> p = Start([fetcher, imds, source]() -> Result<Credentials> {
      Result<Credentials> c = imds ? fetcher->InstanceCredentials() : fetcher->ContainerCredentials();
      if (!c) return c;
      c->source = source;
      return c;
    });
    if (!p) {
      Error e = WithContext(std::move(p.error()), what);
      if (e.code == ErrorCode::kNotFound) e.code = ErrorCode::kCredentials;  // Named, so it must be there.
      return std::unexpected(std::move(e));
    }
    return p;
  }

  // -- web identity ---------------------------------------------------------------------------------------------

  Found WebIdentity(std::string role_arn, const std::string& token_file, std::string session_name, int duration) {
    WebIdentityParams params;
    params.role_arn = std::move(role_arn);
    params.token_file = token_file;
    params.role_session_name = session_name.empty() ? DefaultSessionName() : std::move(session_name);
    params.duration_seconds = duration;
    std::shared_ptr<CredentialFetcher> fetcher = fetcher_;
    const StsTarget sts = Sts();
    return Started([fetcher, params, sts]() mutable -> Result<Credentials> {
      // Read anew on every fetch: Kubernetes and CI runners rotate the token file under a running process.
      Result<std::string> token = ReadSmallFile(params.token_file, "the web identity token file");
      if (!token) {
        Error e = std::move(token.error());
        e.code = ErrorCode::kCredentials;
        e.message += " (AWS_WEB_IDENTITY_TOKEN_FILE or web_identity_token_file); check the path";
        return std::unexpected(std::move(e));
      }
      while (!token->empty() && (token->back() == '\n' || token->back() == '\r' || token->back() == ' ')) {
        token->pop_back();
      }
      if (token->empty()) {
        return Fail(ErrorCode::kCredentials, "the web identity token file " + params.token_file + " is empty");
      }
      params.token = std::move(*token);
      Result<Credentials> c = fetcher->AssumeRoleWithWebIdentity(params, sts);
      params.token.clear();
      if (!c) return c;
      c->source = "web identity (role " + params.role_arn + ", token file " + params.token_file + ")";
      return c;
    });
  }

  // -- IAM Identity Center (SSO) --------------------------------------------------------------------------------

  Found Sso(const std::string& profile) {
    std::map<std::string, std::string> settings;
    for (std::string_view name : {"sso_start_url", "sso_region", "sso_account_id", "sso_role_name", "sso_session"}) {
      if (const ConfigValue* v = FindSetting(profile, name)) settings[std::string(name)] = v->value;
    }
    const std::string session = settings["sso_session"];
    if (!session.empty()) {
      auto it = shared_.sso_sessions.find(session);
      if (it == shared_.sso_sessions.end()) {
        return Fail(ErrorCode::kConfig, Where(profile, "sso_session") + ": profile " + profile +
                                            " names sso_session " + session + " but " + shared_.config_path +
                                            " has no [sso-session " + session + "] section; add it (aws configure "
                                            "sso-session)");
      }
      for (const auto& [name, value] : it->second.values) {
        if (value.value.empty()) continue;
        std::string& mine = settings[name];
        if (!mine.empty() && mine != value.value) {
          return Fail(ErrorCode::kConfig, "profile " + profile + " and [sso-session " + session + "] disagree on " +
                                              name + " (" + mine + " against " + value.value + "); keep one");
        }
        mine = value.value;
      }
    }
    std::string missing;
    for (const char* name : {"sso_start_url", "sso_region", "sso_account_id", "sso_role_name"}) {
      if (settings[name].empty()) missing += (missing.empty() ? "" : ", ") + std::string(name);
    }
    if (!missing.empty()) {
      return Fail(ErrorCode::kConfig, "profile " + profile + " is set up for SSO but lacks " + missing +
                                          "; run `aws configure sso --profile " + profile + "`");
    }
    // The AWS CLI names the cache file after the SHA-1 of the session name (sso-session) or of the start URL
    // (legacy profiles).
    const std::optional<std::string> home = NonEmpty(options_.env, "HOME");
    if (!home) {
      return Fail(ErrorCode::kCredentials, "profile " + profile + " uses SSO, whose token cache is in "
                                           "~/.aws/sso/cache, and HOME is not set; set HOME");
    }
    const std::string cache_file = *home + "/.aws/sso/cache/" +
                                   Sha1Hex(session.empty() ? settings["sso_start_url"] : session) + ".json";

    SsoParams params;
    params.endpoint = options_.sso_endpoint ? options_.sso_endpoint(settings["sso_region"])
                                            : "https://portal.sso." + settings["sso_region"] + ".amazonaws.com";
    params.sso_region = settings["sso_region"];
    params.account_id = settings["sso_account_id"];
    params.role_name = settings["sso_role_name"];
    params.profile = profile;
    std::shared_ptr<CredentialFetcher> fetcher = fetcher_;
    const Clock now = now_;
    const std::string source =
        "SSO profile " + profile + " (account " + params.account_id + ", role " + params.role_name + ")";
    return Started([fetcher, params, cache_file, now, source]() mutable -> Result<Credentials> {
      // Read anew on every fetch: `aws sso login` in another terminal renews a watch that is running.
      Result<std::string> token = ReadSsoToken(cache_file, params.profile, now());
      if (!token) return std::unexpected(std::move(token.error()));
      params.access_token = std::move(*token);
      Result<Credentials> c = fetcher->SsoRoleCredentials(params);
      params.access_token.clear();
      if (!c) return c;
      c->source = source;
      return c;
    });
  }

  static Result<std::string> ReadSsoToken(const std::string& path, const std::string& profile,
                                          std::chrono::system_clock::time_point now) {
    const std::string login = "; run `aws sso login --profile " + profile + "`";
    Result<std::string> text = ReadSmallFile(path, "the SSO token cache file");
    if (!text) {
      if (text.error().code == ErrorCode::kNotFound) {
        return Fail(ErrorCode::kCredentials, "SSO profile " + profile + " has no cached login (" + path +
                                                 " does not exist)" + login);
      }
      return std::unexpected(std::move(text.error()));
    }
    nlohmann::json doc = nlohmann::json::parse(*text, nullptr, false);
    if (doc.is_discarded() || !doc.is_object() || !doc.contains("accessToken") || !doc["accessToken"].is_string() ||
        !doc.contains("expiresAt") || !doc["expiresAt"].is_string()) {
      return Fail(ErrorCode::kCredentials, "the SSO token cache file " + path +
                                               " is not a login the AWS CLI wrote (no accessToken and expiresAt)" +
                                               login);
    }
    const std::optional<std::chrono::system_clock::time_point> expires =
        ParseIsoTime(doc["expiresAt"].get<std::string>());
    if (!expires) {
      return Fail(ErrorCode::kCredentials, "the SSO token cache file " + path + " has an unreadable expiresAt" + login);
    }
    if (*expires <= now) {
      return Fail(ErrorCode::kCredentials, "the SSO login of profile " + profile + " expired at " +
                                               doc["expiresAt"].get<std::string>() + login);
    }
    return doc["accessToken"].get<std::string>();
  }

  // -- container and instance metadata --------------------------------------------------------------------------

  /// A source that may simply not be there (kNotFound: noted, the chain goes on).
  Found FromFetcher(std::function<Result<Credentials>()> call, const std::string& source) {
    Found f = Started([call, source]() -> Result<Credentials> {
      Result<Credentials> c = call();
      if (!c) return c;
      c->source = source;
      return c;
    });
    if (!f && f.error().code == ErrorCode::kNotFound) {
      looked_.push_back(source + " (" + f.error().message + ")");
      return ProviderPtr();
    }
    return f;
  }

  const CredentialChainOptions& options_;
  std::shared_ptr<CredentialFetcher> fetcher_;
  SharedConfig shared_;
  Clock now_;
  std::string region_;
  std::string profile_;
  std::vector<std::string> looked_;
};

}  // namespace

Result<std::shared_ptr<CredentialProvider>> ResolveCredentialChain(const CredentialChainOptions& options,
                                                                   std::shared_ptr<CredentialFetcher> fetcher) {
  if (!fetcher) return Fail(ErrorCode::kInternal, "ResolveCredentialChain: no fetcher");
  Resolver resolver(options, std::move(fetcher));
  return resolver.Resolve();
}

}  // namespace sitesync::aws
