// Endpoints as the AWS CLI resolves them: partitions (botocore's data/partitions.json), each service's endpoint
// rules (data/<service>/<version>/endpoint-rule-set-1.json) for the four services sitesync calls, and the
// configured endpoint URLs of the environment and the shared config file (botocore's ConfiguredEndpointProvider).
#include <algorithm>
#include <array>
#include <cctype>

#include <fmt/format.h>

#include "aws/aws.h"

namespace sitesync::aws {
namespace {

// The three partitions sitesync knows. The other partitions of partitions.json (ISO, EUSC) are closed networks
// whose regions fall back to aws here, as any unknown region does in the SDKs.
constexpr std::array<Partition, 3> kPartitions = {{
    {"aws", "amazonaws.com", "api.aws", "us-east-1", true},
    {"aws-cn", "amazonaws.com.cn", "api.amazonwebservices.com.cn", "cn-northwest-1", true},
    {"aws-us-gov", "amazonaws.com", "api.aws", "us-gov-west-1", false},
}};

bool IsWordChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_'; }

// Matches "WORD-WORD-DIGITS" after `prefix` (which ends in '-'), i.e. the partition's regionRegex without its
// alternatives: ^PREFIX\w+\-\d+$.
bool MatchesRegionShape(std::string_view region, std::string_view prefix) {
  if (!region.starts_with(prefix)) return false;
  std::string_view rest = region.substr(prefix.size());
  const auto dash = rest.rfind('-');
  if (dash == std::string_view::npos || dash == 0 || dash + 1 == rest.size()) return false;
  const std::string_view word = rest.substr(0, dash);
  const std::string_view digits = rest.substr(dash + 1);
  return std::all_of(word.begin(), word.end(), IsWordChar) &&
         std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view ServiceId(EndpointService service) {
  switch (service) {
    case EndpointService::kS3: return "s3";
    case EndpointService::kCloudFront: return "cloudfront";
    case EndpointService::kSts: return "sts";
    case EndpointService::kSso: return "sso";
  }
  return "s3";
}

std::string_view ServiceName(EndpointService service) {
  switch (service) {
    case EndpointService::kS3: return "S3";
    case EndpointService::kCloudFront: return "CloudFront";
    case EndpointService::kSts: return "STS";
    case EndpointService::kSso: return "IAM Identity Center (SSO)";
  }
  return "S3";
}

constexpr std::array<EndpointService, 4> kServices = {EndpointService::kS3, EndpointService::kCloudFront,
                                                      EndpointService::kSts, EndpointService::kSso};

std::optional<std::string> NonEmptyEnv(const EnvLookup& env, std::string_view name) {
  std::optional<std::string> v = env(name);
  if (!v || v->empty()) return std::nullopt;
  return v;
}

// A boolean setting as botocore reads it (true/false, any case), except that anything else is refused instead of
// being taken as false: AWS_USE_FIPS_ENDPOINT=1 silently meaning "no FIPS" would be the worse surprise.
Result<std::optional<bool>> ParseBool(std::string_view value, std::string_view what) {
  const std::string v = Lower(value);
  if (v == "true") return std::optional<bool>(true);
  if (v == "false") return std::optional<bool>(false);
  return Fail(ErrorCode::kConfig, fmt::format("bad {} '{}': use true or false", what, value));
}

std::string Where(const ConfigSection& section, const ConfigValue& value) {
  return fmt::format("{} line {}", section.file, value.line);
}

// The environment variable first, then the profile's setting, as botocore's config chain does.
Result<bool> BoolSetting(const EnvLookup& env, std::string_view env_name, const ConfigSection* profile,
                         std::string_view key) {
  if (std::optional<std::string> v = NonEmptyEnv(env, env_name)) {
    auto b = ParseBool(*v, env_name);
    if (!b) return std::unexpected(b.error());
    return **b;
  }
  if (profile != nullptr) {
    if (const ConfigValue* v = profile->Find(key)) {
      auto b = ParseBool(v->value, fmt::format("{} ({})", key, Where(*profile, *v)));
      if (!b) return std::unexpected(b.error());
      return **b;
    }
  }
  return false;
}

Result<ConfiguredUrl> Checked(std::string url, std::string source) {
  auto ok = CheckEndpointUrl(url, source, false);
  if (!ok) return std::unexpected(ok.error());
  return ConfiguredUrl{std::move(*ok), std::move(source)};
}

ServiceEndpoint Partitioned(std::string host, std::string signing_region, const Partition& p) {
  return ServiceEndpoint{"https://" + host, std::move(signing_region), false,
                         fmt::format("the {} partition", p.id)};
}

}  // namespace

const Partition& PartitionOf(std::string_view region) {
  // The regions the partitions list by name that their regex would not match.
  if (region == "aws-global") return kPartitions[0];
  if (region == "aws-cn-global") return kPartitions[1];
  if (region == "aws-us-gov-global") return kPartitions[2];
  if (MatchesRegionShape(region, "us-gov-")) return kPartitions[2];
  if (MatchesRegionShape(region, "cn-")) return kPartitions[1];
  return kPartitions[0];  // ^(us|eu|ap|sa|ca|me|af|il|mx)-\w+-\d+$, and the SDKs' fallback for the rest
}

Result<std::string> CheckEndpointUrl(std::string_view url, std::string_view source, bool command_line) {
  const ErrorCode code = command_line ? ErrorCode::kUsage : ErrorCode::kConfig;
  const auto bad = [&](std::string_view why) -> Result<std::string> {
    return Fail(code, fmt::format("bad endpoint URL '{}' from {}: {}", url, source, why));
  };
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return bad("use a URL such as https://host[:port]");
  const std::string scheme = Lower(url.substr(0, scheme_end));
  if (scheme != "http" && scheme != "https") return bad("use http:// or https://");
  std::string_view rest = url.substr(scheme_end + 3);
  const auto path_start = rest.find_first_of("/?#");
  const std::string_view authority = rest.substr(0, path_start);
  std::string_view tail = path_start == std::string_view::npos ? std::string_view() : rest.substr(path_start);
  if (authority.empty() || authority.starts_with(':')) return bad("it names no host; use https://host[:port]");
  if (authority.find('@') != std::string_view::npos) {
    return bad("user info (user@host) is not used for AWS endpoints; give https://host[:port] and the "
               "credentials as usual");
  }
  if (tail.find_first_of("?#") != std::string_view::npos) {
    return bad("a query or fragment is not part of an endpoint; give https://host[:port]");
  }
  while (tail.ends_with('/')) tail.remove_suffix(1);
  if (!tail.empty()) {
    return bad(fmt::format("sitesync does not support a path in an endpoint URL ('{}'): requests are signed for the "
                           "server's root; give the URL the S3 or CloudFront API answers at, such as {}://{}",
                           tail, scheme, authority));
  }
  return fmt::format("{}://{}", scheme, authority);
}

Result<EndpointSettings> LoadEndpointSettings(const EnvLookup& env, const SharedConfig& config,
                                              std::string_view profile) {
  EndpointSettings s;
  const ConfigSection* section = config.ConfigProfile(profile);

  auto fips = BoolSetting(env, "AWS_USE_FIPS_ENDPOINT", section, "use_fips_endpoint");
  if (!fips) return std::unexpected(fips.error());
  s.use_fips = *fips;
  auto dualstack = BoolSetting(env, "AWS_USE_DUALSTACK_ENDPOINT", section, "use_dualstack_endpoint");
  if (!dualstack) return std::unexpected(dualstack.error());
  s.use_dualstack = *dualstack;
  auto ignore = BoolSetting(env, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", section, "ignore_configured_endpoint_urls");
  if (!ignore) return std::unexpected(ignore.error());
  s.ignore_configured_urls = *ignore;

  for (EndpointService service : kServices) {
    std::string name = "AWS_ENDPOINT_URL_" + std::string(ServiceId(service));
    for (char& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (std::optional<std::string> v = NonEmptyEnv(env, name)) {
      auto url = Checked(*v, name);
      if (!url) return std::unexpected(url.error());
      s.env_service.emplace(service, std::move(*url));
    }
  }
  if (std::optional<std::string> v = NonEmptyEnv(env, "AWS_ENDPOINT_URL")) {
    auto url = Checked(*v, "AWS_ENDPOINT_URL");
    if (!url) return std::unexpected(url.error());
    s.env_global = std::move(*url);
  }
  if (section == nullptr) return s;

  if (const ConfigValue* style = section->Find("s3.addressing_style")) {
    const std::string v = Lower(style->value);
    if (v == "path") {
      s.s3_path_style = true;
    } else if (v == "virtual") {
      s.s3_path_style = false;
    } else if (v != "auto") {
      return Fail(ErrorCode::kConfig, fmt::format("bad s3.addressing_style '{}' in profile {} ({}): use path, virtual "
                                                  "or auto",
                                                  style->value, profile, Where(*section, *style)));
    }
  }
  if (const ConfigValue* v = section->Find("endpoint_url")) {
    auto url = Checked(v->value, fmt::format("endpoint_url in profile {} ({})", profile, Where(*section, *v)));
    if (!url) return std::unexpected(url.error());
    s.config_global = std::move(*url);
  }
  if (const ConfigValue* name = section->Find("services")) {
    auto it = config.services.find(name->value);
    if (it == config.services.end()) {
      return Fail(ErrorCode::kConfig,
                  fmt::format("profile {} says services = {} ({}), but {} has no [services {}] section; add it or "
                              "remove the setting",
                              profile, name->value, Where(*section, *name), config.config_path, name->value));
    }
    const ConfigSection& services = it->second;
    for (EndpointService service : kServices) {
      const std::string key = std::string(ServiceId(service)) + ".endpoint_url";
      if (const ConfigValue* v = services.Find(key)) {
        auto url = Checked(v->value, fmt::format("{} in [services {}] ({})", key, name->value, Where(services, *v)));
        if (!url) return std::unexpected(url.error());
        s.config_service.emplace(service, std::move(*url));
      }
    }
  }
  return s;
}

Result<ServiceEndpoint> PartitionEndpoint(EndpointService service, std::string_view region, bool fips,
                                          bool dualstack) {
  const Partition& p = PartitionOf(region);
  switch (service) {
    case EndpointService::kS3: {
      // S3 keeps the partition's own DNS suffix for dual-stack (s3.dualstack.REGION.amazonaws.com).
      const std::string host = fmt::format("{}{}.{}.{}", fips ? "s3-fips" : "s3", dualstack ? ".dualstack" : "",
                                           region, p.dns_suffix);
      return Partitioned(host, std::string(region), p);
    }
    case EndpointService::kCloudFront: {
      if (!p.has_cloudfront) {
        // The endpoint rules would yield cloudfront.amazonaws.com signed for us-gov-west-1, which no GovCloud
        // account can call: botocore's endpoints.json lists no CloudFront endpoint in aws-us-gov.
        return Fail(ErrorCode::kConfig,
                    fmt::format("CloudFront has no endpoint in the {} partition (region {}): AWS GovCloud (US) does "
                                "not offer CloudFront. Turn invalidation off (no --distribution, or cdn.invalidate: "
                                "false), or give the CloudFront API's URL with --cloudfront-endpoint "
                                "(cdn.endpoint in sitesync.yaml)",
                                p.id, region));
      }
      const std::string_view name = fips ? "cloudfront-fips" : "cloudfront";
      std::string host;
      if (p.id == "aws") {
        host = dualstack ? fmt::format("{}.global.api.aws", name) : fmt::format("{}.{}", name, p.dns_suffix);
      } else if (dualstack) {
        host = fmt::format("{}.{}", name, p.dualstack_dns_suffix);
      } else {
        host = fmt::format("{}.{}.{}", name, p.global_region, p.dns_suffix);
      }
      return Partitioned(host, std::string(p.global_region), p);
    }
    case EndpointService::kSts:
    case EndpointService::kSso: {
      const std::string_view base = service == EndpointService::kSts ? "sts" : "portal.sso";
      // In GovCloud the regular STS and portal hosts are the FIPS ones (their rules have no -fips host there).
      const bool fips_name = fips && !(p.id == "aws-us-gov" && !dualstack);
      const std::string_view suffix = dualstack ? p.dualstack_dns_suffix : p.dns_suffix;
      const std::string host = fmt::format("{}{}.{}.{}", base, fips_name ? "-fips" : "", region, suffix);
      return Partitioned(host, std::string(region), p);
    }
  }
  return Fail(ErrorCode::kInternal, "unknown service");
}

Result<ServiceEndpoint> ResolveEndpoint(const EndpointSettings& settings, EndpointService service,
                                        std::string_view region, const std::optional<ConfiguredUrl>& explicit_url) {
  std::optional<ConfiguredUrl> chosen = explicit_url;
  if (!chosen && !settings.ignore_configured_urls) {
    if (auto it = settings.env_service.find(service); it != settings.env_service.end()) {
      chosen = it->second;
    } else if (settings.env_global) {
      chosen = settings.env_global;
    } else if (auto c = settings.config_service.find(service); c != settings.config_service.end()) {
      chosen = c->second;
    } else if (settings.config_global) {
      chosen = settings.config_global;
    }
  }
  if (!chosen) return PartitionEndpoint(service, region, settings.use_fips, settings.use_dualstack);

  if (settings.use_fips || settings.use_dualstack) {
    const std::string_view what = settings.use_fips ? "FIPS (AWS_USE_FIPS_ENDPOINT or use_fips_endpoint)"
                                                    : "dual-stack (AWS_USE_DUALSTACK_ENDPOINT or "
                                                      "use_dualstack_endpoint)";
    return Fail(ErrorCode::kConfig,
                fmt::format("the {} endpoint {} from {} cannot be combined with {}, as in the AWS SDKs: turn that "
                            "setting off, or remove the endpoint URL",
                            ServiceName(service), chosen->url, chosen->source, what));
  }
  const Partition& p = PartitionOf(region);
  std::string signing_region(region);
  if (service == EndpointService::kCloudFront) {
    signing_region = p.has_cloudfront ? std::string(p.global_region) : "us-east-1";
  }
  return ServiceEndpoint{chosen->url, std::move(signing_region), true, chosen->source};
}

std::function<StsTarget(std::string_view region)> StsEndpoints(EndpointSettings settings) {
  return [settings = std::move(settings)](std::string_view region) {
    auto e = ResolveEndpoint(settings, EndpointService::kSts, region, std::nullopt);
    if (!e) {
      EndpointSettings plain = settings;
      plain.use_fips = plain.use_dualstack = false;
      e = ResolveEndpoint(plain, EndpointService::kSts, region, std::nullopt);
    }
    return e ? StsTarget{e->url, e->signing_region} : StsTarget{fmt::format("https://sts.{}.amazonaws.com", region),
                                                                std::string(region)};
  };
}

std::function<std::string(std::string_view sso_region)> SsoEndpoints(EndpointSettings settings) {
  return [settings = std::move(settings)](std::string_view region) {
    auto e = ResolveEndpoint(settings, EndpointService::kSso, region, std::nullopt);
    if (!e) {
      EndpointSettings plain = settings;
      plain.use_fips = plain.use_dualstack = false;
      e = ResolveEndpoint(plain, EndpointService::kSso, region, std::nullopt);
    }
    return e ? e->url : fmt::format("https://portal.sso.{}.amazonaws.com", region);
  };
}

}  // namespace sitesync::aws
