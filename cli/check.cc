// sitesync check: a read-only preflight for CI. One line per check, `ok`, `fail` (with the fix) or `skip`:
// credentials found, bucket listable, region right, and when a distribution is configured, CloudFront listable,
// the distribution found and its origin serving DEST. Every request is a read (ListObjectsV2 with max-keys=1,
// ListDistributions, GetDistribution); nothing is changed. With a config file in use, also whether the bucket
// holds sitesync's own files (a config published by an older version).
#include <chrono>
#include <cstdio>
#include <regex>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/commands.h"

namespace sitesync::cli {
namespace {

using Status = CheckLine::Status;

constexpr const char* kCloudFrontChecks[] = {"cloudfront-list", "distribution", "origin"};

bool IsRegionCode(const aws::Error& e) {
  return e.service_code == "PermanentRedirect" || e.service_code == "TemporaryRedirect" ||
         e.service_code == "AuthorizationHeaderMalformed" || e.service_code == "IllegalLocationConstraintException" ||
         e.http_status == 301 || e.http_status == 307;
}

// Prints each line as it is decided (a CI log shows how far it got) and counts them.
class Report {
 public:
  Report(bool json, bool quiet) : json_(json), quiet_(quiet) {}

  /// Secrets and key IDs that must never be printed whole, whatever a server put in a message.
  void Redact(std::string key_id, std::string secret) {
    key_id_ = std::move(key_id);
    secret_ = std::move(secret);
  }

  void Add(CheckLine line) {
    line.detail = Clean(line.detail);
    line.fix = Clean(line.fix);
    if (line.status == Status::kFail) ++failed_;
    if (line.status == Status::kSkip) ++skipped_;
    ++total_;
    if (json_) {
      nlohmann::ordered_json j{{"event", "check"}, {"name", line.name}, {"ok", line.status != Status::kFail}};
      if (line.status == Status::kSkip) j["skipped"] = true;
      j["detail"] = line.detail;
      if (line.status == Status::kFail) j["fix"] = line.fix;
      Print(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
      return;
    }
    if (quiet_ && line.status != Status::kFail) return;
    const char* word = line.status == Status::kOk ? "ok  " : line.status == Status::kFail ? "fail" : "skip";
    Print(fmt::format("{} {}: {}", word, line.name, line.detail));
    if (line.status == Status::kFail && !line.fix.empty()) Print(fmt::format("     fix: {}", line.fix));
  }

  void Skip(std::string name, std::string why) { Add({std::move(name), Status::kSkip, std::move(why), ""}); }

  /// Prints the summary; returns the exit code (1 when anything failed).
  int Finish(double seconds) {
    if (json_) {
      nlohmann::ordered_json j{{"event", "summary"}, {"command", "check"}, {"ok", failed_ == 0},
                               {"checks", total_},   {"failed", failed_},   {"skipped", skipped_},
                               {"seconds", seconds}};
      Print(j.dump());
    } else if (failed_ > 0) {
      Print(fmt::format("sitesync check: {} of {} checks failed", failed_, total_));
    } else if (!quiet_) {
      Print(skipped_ > 0 ? fmt::format("sitesync check: all ok ({} skipped)", skipped_)
                         : std::string("sitesync check: all ok"));
    }
    return failed_ > 0 ? kExitFailed : kExitOk;
  }

 private:
  std::string Clean(std::string text) const {
    if (!secret_.empty()) {
      for (auto p = text.find(secret_); p != std::string::npos; p = text.find(secret_, p)) {
        text.replace(p, secret_.size(), "***");
      }
    }
    return aws::RedactKeyId(std::move(text), key_id_);
  }

  static void Print(const std::string& line) {
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
  }

  bool json_;
  bool quiet_;
  std::string key_id_;
  std::string secret_;
  int total_ = 0;
  int failed_ = 0;
  int skipped_ = 0;
};

std::string CredentialsDetail(const aws::Credentials& c) {
  std::string where = c.source == "environment" ? "the environment (AWS_ACCESS_KEY_ID)" : c.source;
  std::string out = "found in " + where;
  const std::string hint = KeyIdHint(c.access_key_id);
  if (!hint.empty()) out += ", access key ID " + hint;
  if (!c.session_token.empty()) out += ", with a session token";
  return out;
}

CheckLine CloudFrontFailure(const aws::Error& e, std::string_view name, std::string_view what,
                            std::string_view permission, std::string_view distribution_id) {
  CheckLine line{std::string(name), Status::kFail, "", ""};
  const std::string& code = e.service_code;
  if (e.code == aws::ErrorCode::kNetwork) {
    line.detail = fmt::format("cannot reach CloudFront: {}", e.message);
    line.fix = "check the network and any proxy (HTTPS_PROXY), and --cloudfront-endpoint (cdn.endpoint in "
               "sitesync.yaml) if you set one";
  } else if (code == "NoSuchDistribution" || (e.code == aws::ErrorCode::kNotFound && !distribution_id.empty())) {
    line.detail = fmt::format("distribution {} does not exist in this account", distribution_id);
    line.fix = "check the ID (aws cloudfront list-distributions, or the CloudFront console), or use "
               "--distribution auto (cdn.distribution: auto) to find it by its origin";
  } else if (code == "AccessDenied") {
    line.detail = fmt::format("{}: access denied (these credentials may not call it)", what);
    line.fix = std::string(permission);
  } else if (CredentialsRefused(e)) {
    line.detail = fmt::format("{}: CloudFront refused the credentials ({})", what, code);
    line.fix = "correct the access key and secret (see the bucket line), or renew the session token";
  } else {
    line.detail = e.message;
    line.fix = "see the message; `sitesync check -v` shows each request";
  }
  return line;
}

std::string OriginList(const cdn::Distribution& d) {
  std::string out;
  for (const cdn::Origin& o : d.origins) out += (out.empty() ? "" : ", ") + o.domain + o.path;
  return out.empty() ? "none" : out;
}

// How sync maps keys to URLs on `d` (cdn::MapKeys, or cdn.url_prefix): the same rule, so check and sync agree.
CheckLine OriginLine(const cdn::Distribution& d, const sync::Destination& dest, const CdnResolved& cdn) {
  const cdn::KeyMapping m = cdn::MapKeys(d, dest.bucket, dest.prefix);
  const std::string configured =
      cdn.url_prefix ? fmt::format("cdn.url_prefix: invalidation paths are /{}KEY", *cdn.url_prefix) : std::string();
  if (m.source == cdn::KeyMapping::Source::kOrigin) {
    std::string detail = fmt::format("{} serves {} from origin {}", d.id, dest.Url(), m.origin);
    if (!configured.empty()) {
      detail += " (" + configured + ")";
    } else if (!m.url_prefix.empty()) {
      detail += fmt::format(" (its URLs start with /{}: invalidation paths are /{}KEY)", m.url_prefix, m.url_prefix);
    } else {
      detail += " (invalidation paths are /KEY)";
    }
    return {"origin", Status::kOk, detail, ""};
  }
  if (m.source == cdn::KeyMapping::Source::kCustomOrigin || !configured.empty()) {
    // A custom origin (a web server or proxy in front of the bucket) cannot be matched to DEST: sync maps keys
    // relative to the DEST prefix unless cdn.url_prefix says otherwise.
    return {"origin", Status::kOk,
            fmt::format("none of the origins of {} is {} (its origins: {}): {}", d.id, dest.Url(), OriginList(d),
                        configured.empty() ? std::string("invalidation paths are /KEY (the keys relative to the "
                                                         "DEST prefix); set cdn.url_prefix if the site is served "
                                                         "under another URL path")
                                           : configured),
            ""};
  }
  return {"origin", Status::kFail,
          fmt::format("no origin of {} serves {} (its origins: {}); an S3 origin such as {}.s3.amazonaws.com with "
                      "the DEST prefix, or a folder above it, as origin path is needed (meanwhile sync's "
                      "invalidation paths are /KEY, the keys relative to the DEST prefix)",
                      d.id, dest.Url(), OriginList(d), dest.bucket),
          "give the distribution that serves this bucket (--distribution auto finds it), correct DEST, or set "
          "cdn.url_prefix to the URL path the DEST prefix is served under"};
}

// One line per distribution that the journal owes paths to (a run failed at CloudFront, or was cut short).
void CheckOwed(Report& report, const aws::EnvLookup& env) {
  auto dir = cdn::StateDir(env);
  if (!dir) return;
  const cdn::Journal journal(*dir);
  for (const std::string& id : journal.Distributions()) {
    auto owed = journal.Load(id);
    if (!owed) {
      report.Add({"owed", Status::kFail, owed.error().message,
                  fmt::format("fix or delete {}", journal.FileFor(id).string())});
      continue;
    }
    if (owed->Empty()) continue;
    std::size_t keys = 0;
    for (const cdn::UnmappedKeys& u : owed->unmapped) keys += u.keys.size();
    std::string sample;
    for (std::size_t i = 0; i < owed->paths.size() && i < 5; ++i) sample += (i ? " " : "") + owed->paths[i];
    if (owed->paths.size() > 5) sample += " ...";
    report.Add({"owed", Status::kOk,
                fmt::format("{} invalidation paths{} are owed to distribution {} by an earlier run{}: the next sync "
                            "or invalidate submits them; `sitesync invalidate --discard-owed --distribution {}` "
                            "drops them ({})",
                            owed->paths.size(), keys > 0 ? fmt::format(" and {} changed keys", keys) : std::string(),
                            id, sample.empty() ? std::string() : " (" + sample + ")", id,
                            journal.FileFor(id).string()),
                ""});
  }
}

// The bucket and region lines. Returns false when the credentials were refused (CloudFront would refuse them too).
// When S3 names a region that sync follows, `endpoint` takes it for the checks after this one.
bool CheckBucket(Report& report, aws::HttpClient& client, sync::S3Endpoint& endpoint, const sync::Destination& dest,
                 const aws::Credentials& credentials) {
  const std::string key_hint = KeyIdHint(credentials.access_key_id);
  auto probe = sync::ProbeListing(client, endpoint, dest);
  if (probe) {
    report.Add({"bucket", Status::kOk,
                fmt::format("{} exists and can be listed ({})", dest.Url(),
                            *probe ? "it holds objects" : "nothing under the prefix yet"),
                ""});
    report.Add({"region", Status::kOk, fmt::format("the bucket answers in {}", endpoint.region), ""});
    return true;
  }
  const aws::Error& error = probe.error();
  // The region a sync would follow (sync::FollowableRegion), else any region the answer names.
  const std::string followed = sync::FollowableRegion(error, endpoint.region);
  const std::string hint = followed.empty() ? RegionHint(error) : followed;
  if (!hint.empty() && hint != endpoint.region) {
    // Follow S3's hint, so that the bucket line still says whether listing works once the region is right.
    sync::S3Endpoint right = endpoint;
    right.region = hint;
    auto again = sync::ProbeListing(client, right, dest);
    bool accepted = true;
    if (again) {
      report.Add({"bucket", Status::kOk,
                  fmt::format("{} exists and can be listed in {} ({})", dest.Url(), hint,
                              *again ? "it holds objects" : "nothing under the prefix yet"),
                  ""});
    } else {
      report.Add(BucketFailure(again.error(), dest, hint, credentials.source, key_hint));
      accepted = !CredentialsRefused(again.error());
    }
    const std::string found = fmt::format("bucket {} is in {}, not {} (S3 answered {} {})", dest.bucket, hint,
                                          endpoint.region, error.http_status,
                                          error.service_code.empty() ? "error" : error.service_code);
    if (!followed.empty()) {
      // sync, plan and watch follow that answer (with a note), so it fails nothing; the setting saves a request.
      report.Add({"region", Status::kOk,
                  fmt::format("{0}: sync, plan and watch follow it for the run, with a note; --region {1} (or region: "
                              "{1} in sitesync.yaml) saves a request each run",
                              found, hint),
                  ""});
      endpoint.region = hint;
      return accepted;
    }
    report.Add({"region", Status::kFail, found,
                fmt::format("bucket is in {0}: use --region {0}, or region: {0} in sitesync.yaml", hint)});
    return accepted;
  }
  if (hint.empty() && IsRegionCode(error)) {
    report.Skip("bucket", fmt::format("not listed: S3 sent the request to another region (see region)"));
    report.Add({"region", Status::kFail,
                fmt::format("bucket {} is not in {}: S3 answered {} {} without naming its region", dest.bucket,
                            endpoint.region, error.http_status, error.service_code),
                fmt::format("find the bucket's region (aws s3api get-bucket-location --bucket {}, or the S3 console) "
                            "and use --region NAME, or region: NAME in sitesync.yaml",
                            dest.bucket)});
    return true;
  }
  report.Add(BucketFailure(error, dest, endpoint.region, credentials.source, key_hint));
  if (hint == endpoint.region) {
    report.Add({"region", Status::kOk, fmt::format("S3 says the bucket is in {}", hint), ""});
  } else if (error.service_code == "NoSuchBucket") {
    report.Skip("region", "the bucket does not exist");
  } else {
    report.Skip("region", "S3 gave no answer about the bucket (see bucket)");
  }
  return !CredentialsRefused(error);
}

void CheckCloudFront(Report& report, aws::HttpClient& client, const CdnResolved& cdn, const sync::Destination& dest) {
  const auto skip_rest = [&](std::size_t from, const std::string& why) {
    for (std::size_t i = from; i < std::size(kCloudFrontChecks); ++i) report.Skip(kCloudFrontChecks[i], why);
  };
  if (cdn.distribution == "auto") {
    auto all = cdn::ListDistributions(client, cdn.endpoint);
    if (!all) {
      report.Add(CloudFrontFailure(all.error(), "cloudfront-list", "ListDistributions",
                                   "allow cloudfront:ListDistributions (and cloudfront:GetDistribution) to this user "
                                   "or role, which distribution: auto needs; or give the distribution ID "
                                   "(--distribution ID, or cdn.distribution: ID)",
                                   ""));
      skip_rest(1, "needs the list of distributions (see cloudfront-list)");
      return;
    }
    report.Add({"cloudfront-list", Status::kOk,
                fmt::format("ListDistributions works ({} distribution{} visible)", all->size(),
                            all->size() == 1 ? "" : "s"),
                ""});
    std::vector<const cdn::Distribution*> serving;
    for (const cdn::Distribution& d : *all) {
      if (cdn::MatchDistribution(std::span<const cdn::Distribution>(&d, 1), dest.bucket, dest.prefix)) {
        serving.push_back(&d);
      }
    }
    if (serving.empty()) {
      auto none = cdn::MatchDistribution(*all, dest.bucket, dest.prefix);
      report.Add({"distribution", Status::kFail,
                  none ? std::string("no distribution found") : none.error().message,
                  fmt::format("create a CloudFront distribution with the origin {}.s3.amazonaws.com, or give the ID "
                              "of the one that serves the site (--distribution ID, or cdn.distribution: ID); if the "
                              "site has no CloudFront, delete the cdn: section of sitesync.yaml",
                              dest.bucket)});
      skip_rest(2, "no distribution found");
      return;
    }
    if (serving.size() > 1) {
      std::string ids;
      for (const cdn::Distribution* d : serving) ids += (ids.empty() ? "" : ", ") + d->id;
      report.Add({"distribution", Status::kFail,
                  fmt::format("{} distributions serve {}: {}", serving.size(), dest.Url(), ids),
                  "choose one: --distribution ID, or cdn.distribution: ID in sitesync.yaml"});
      skip_rest(2, "no single distribution");
      return;
    }
    report.Add({"distribution", Status::kOk,
                fmt::format("{} ({}) found by its origin", serving[0]->id, serving[0]->domain), ""});
    report.Add(OriginLine(*serving[0], dest, cdn));
    return;
  }
  report.Skip("cloudfront-list", "not needed: the distribution is given by ID");
  auto d = cdn::GetDistribution(client, cdn.endpoint, cdn.distribution);
  if (!d) {
    report.Add(CloudFrontFailure(d.error(), "distribution", "GetDistribution " + cdn.distribution,
                                 "allow cloudfront:GetDistribution on it to this user or role, so that check can see "
                                 "it (sync itself needs cloudfront:CreateInvalidation)",
                                 cdn.distribution));
    skip_rest(2, "the distribution could not be read");
    return;
  }
  report.Add({"distribution", Status::kOk, fmt::format("{} ({}) exists", d->id, d->domain), ""});
  report.Add(OriginLine(*d, dest, cdn));
}

int Usage(std::string_view message) {
  std::fprintf(stderr, "sitesync: %.*s\n", static_cast<int>(message.size()), message.data());
  return kExitUsage;
}

}  // namespace

std::string KeyIdHint(std::string_view access_key_id) {
  if (access_key_id.size() < 16) return {};
  return fmt::format("ending in {}", access_key_id.substr(access_key_id.size() - 4));
}

std::string RegionHint(const aws::Error& error) {
  static const std::regex kRegion("^[a-z]{2}(-[a-z0-9]+)+-[0-9]+$");
  const auto valid = [](const std::string& r) { return std::regex_match(r, kRegion); };
  if (!error.bucket_region.empty() && valid(error.bucket_region)) return error.bucket_region;
  // "The authorization header is malformed; the region 'us-east-1' is wrong; expecting 'us-west-2'"
  static const std::regex kExpecting("expecting '([a-z0-9-]+)'");
  // "The af-south-1 location constraint is incompatible for the region specific endpoint this request was sent to."
  static const std::regex kConstraint("The ([a-z0-9-]+) location constraint is incompatible");
  std::smatch m;
  if (std::regex_search(error.message, m, kExpecting) && valid(m[1].str())) return m[1].str();
  if (std::regex_search(error.message, m, kConstraint) && valid(m[1].str())) return m[1].str();
  return {};
}

bool CredentialsRefused(const aws::Error& error) {
  static constexpr std::string_view kCodes[] = {"SignatureDoesNotMatch", "InvalidAccessKeyId", "InvalidClientTokenId",
                                                "ExpiredToken",          "InvalidToken",       "TokenRefreshRequired",
                                                "IncompleteSignature",   "UnrecognizedClientException"};
  return std::find(std::begin(kCodes), std::end(kCodes), error.service_code) != std::end(kCodes);
}

CheckLine BucketFailure(const aws::Error& error, const sync::Destination& dest, std::string_view region,
                        std::string_view where, std::string_view key_hint) {
  CheckLine line{"bucket", Status::kFail, "", ""};
  const std::string& code = error.service_code;
  const std::string key = key_hint.empty() ? "the access key ID" : fmt::format("the access key ID {}", key_hint);
  const bool from_env = where.starts_with("environment");
  if (error.code == aws::ErrorCode::kNetwork) {
    line.detail = fmt::format("cannot reach S3 for {}: {}", dest.Url(), error.message);
    line.fix = "check the network and any proxy (HTTPS_PROXY), and the endpoint (--endpoint, or endpoint: in "
               "sitesync.yaml) if you set one";
  } else if (code == "NoSuchBucket" || (error.http_status == 404 && code.empty())) {
    line.detail = fmt::format("bucket {} does not exist", dest.bucket);
    line.fix = fmt::format("create it (aws s3 mb s3://{} --region {}), or correct the bucket in DEST (destination: "
                           "in sitesync.yaml)",
                           dest.bucket, region);
  } else if (code == "SignatureDoesNotMatch") {
    line.detail = fmt::format("S3 refused the request signature: the secret access key does not belong to {} "
                              "(credentials from {})",
                              key, where);
    line.fix = fmt::format("correct the secret access key ({}): it must be the one created with that key ID",
                           from_env ? "AWS_SECRET_ACCESS_KEY" : "aws_secret_access_key of the " + std::string(where));
  } else if (code == "InvalidAccessKeyId" || code == "InvalidClientTokenId") {
    line.detail = fmt::format("AWS does not know {} (credentials from {}): deleted, deactivated or mistyped", key,
                              where);
    line.fix = fmt::format("use an active access key: correct {}, or create a new key in IAM",
                           from_env ? "AWS_ACCESS_KEY_ID" : "aws_access_key_id of the " + std::string(where));
  } else if (code == "ExpiredToken" || code == "TokenRefreshRequired" || code == "InvalidToken") {
    line.detail = fmt::format("the session token is expired or not valid ({})", code);
    line.fix = "get fresh temporary credentials (aws sso login, or a new aws sts assume-role) and use their "
               "session token (AWS_SESSION_TOKEN)";
  } else if (code == "AccessDenied" || code == "AllAccessDisabled" || error.http_status == 403) {
    line.detail = fmt::format("access denied: these credentials may not list {} (or the bucket belongs to another "
                              "account)",
                              dest.Url());
    line.fix = fmt::format("allow s3:ListBucket on arn:aws:s3:::{0} to this user or role; sync also needs "
                           "s3:PutObject (and s3:DeleteObject for delete) on arn:aws:s3:::{0}/{1}*",
                           dest.bucket, dest.prefix);
  } else {
    line.detail = error.message;
    line.fix = "see the message; `sitesync check -v` shows each request";
  }
  return line;
}

namespace {

// sitesync never uploads its own files (the config in use, its journal and cache), and never deletes them
// remotely either (they are excluded, and excluded keys are never deleted): a copy uploaded by an older version,
// or by another tool, stays public until someone deletes it. Asked only when a config file is in use.
void CheckOwnFiles(Report& report, aws::HttpClient& client, const sync::S3Endpoint& endpoint,
                   const sync::Destination& dest, const Settings& s, const aws::EnvLookup& env) {
  const std::vector<std::string> rels = OwnFilesOf(s, env).rel_paths;
  std::string names;
  for (const std::string& rel : rels) {
    const std::string key = dest.prefix + rel;
    auto listed = sync::ListObjects(client, endpoint, dest.bucket, key);
    if (!listed) {
      report.Add({"own-files", Status::kFail, fmt::format("cannot look for {}: {}", key, listed.error().message),
                  "see the message; `sitesync check -v` shows each request"});
      return;
    }
    for (const sync::RemoteObject& o : *listed) {
      if (o.key != key && !o.key.starts_with(key + "/")) continue;
      report.Add({"own-files", Status::kFail,
                  fmt::format("s3://{}/{} is in the bucket: it is sitesync's own (its config, or a file of its "
                              "journal or cache), uploaded before sitesync left its own files out, and it stays "
                              "public until deleted",
                              dest.bucket, o.key),
                  fmt::format("delete it once: aws s3 rm s3://{}/{} (sitesync never uploads it again, and never "
                              "deletes it itself: its own files are excluded)",
                              dest.bucket, o.key)});
      return;
    }
    names += (names.empty() ? "" : ", ") + rel;
  }
  report.Add({"own-files", Status::kOk,
              fmt::format("none of sitesync's own files ({}) is in {}; sync never uploads them", names, dest.Url()),
              ""});
}

}  // namespace

int RunCheck(const Settings& s, const aws::EnvLookup& env) {
  const auto started = std::chrono::steady_clock::now();
  if (s.quiet && s.verbose) return Usage("-q and -v contradict each other; give one.");
  if (!s.destination || s.destination->empty()) {
    return Usage("no DEST given: run 'sitesync check s3://BUCKET[/PREFIX]', or set 'destination:' in sitesync.yaml");
  }
  auto dest = sync::ParseDestination(*s.destination);
  if (!dest) return Usage(dest.error().message);
  auto endpoint = ResolveS3Endpoint(s, env);
  if (!endpoint) return Usage(endpoint.error().message);
  auto cdn = ResolveCdn(s, env);
  if (!cdn) return Usage(cdn.error().message);

  Report report(s.json, s.quiet);
  const auto finish = [&] {
    return report.Finish(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  };
  aws::ClientOptions options;
  if (auto ok = ApplyTransportSettings(s, env, options); !ok) return Usage(ok.error().message);
  if (!options.verify_tls) std::fprintf(stderr, "sitesync: %s\n", kNoVerifySslWarning);
  options.region = endpoint->region;
  options.max_in_flight = 4;
  options.max_attempts = 3;  // a preflight reports; it need not ride out a long outage
  if (s.verbose) {
    options.trace = [](std::string_view line) {
      std::fprintf(stderr, "%.*s\n", static_cast<int>(line.size()), line.data());
    };
  }
  auto provider = ResolveCredentials(s, env, endpoint->region, options);
  aws::Result<aws::Credentials> credentials =
      provider ? (*provider)->Get(false) : aws::Result<aws::Credentials>(std::unexpected(provider.error()));
  if (!credentials) {
    std::string detail = credentials.error().message;
    // The chain's message ends with the way out; the fix line says it (with --profile), once.
    if (auto cut = detail.find(". Set AWS_ACCESS_KEY_ID"); cut != std::string::npos) detail.resize(cut);
    report.Add({"credentials", Status::kFail, detail,
                credentials.error().code == aws::ErrorCode::kConfig
                    ? "correct the setting named above"
                    : "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run `aws configure` (a profile in "
                      "~/.aws/credentials) or `aws configure sso`, or give --profile NAME (profile: in "
                      "sitesync.yaml)"});
    for (const char* name : {"bucket", "region"}) report.Skip(name, "needs credentials");
    for (const char* name : kCloudFrontChecks) report.Skip(name, "needs credentials");
    return finish();
  }
  report.Redact(credentials->access_key_id, credentials->secret_access_key);
  report.Add({"credentials", Status::kOk, CredentialsDetail(*credentials), ""});
  options.credentials = *credentials;
  options.credential_provider = *provider;
  auto client = aws::HttpClient::Create(std::move(options));
  if (!client) {
    std::fprintf(stderr, "sitesync: %s\n", client.error().message.c_str());
    return kExitFailed;
  }

  const bool accepted = CheckBucket(report, **client, *endpoint, *dest, *credentials);
  if (!cdn->enabled) {
    const std::string why = cdn->distribution.empty()
                                ? "no distribution configured (cdn.distribution or --distribution): nothing to check"
                                : "cdn.invalidate is false: sync sends no invalidation";
    for (const char* name : kCloudFrontChecks) report.Skip(name, why);
  } else if (!accepted) {
    for (const char* name : kCloudFrontChecks) report.Skip(name, "the credentials were refused (see bucket)");
  } else {
    CheckCloudFront(report, **client, *cdn, *dest);
  }
  CheckOwed(report, env);
  if (s.config_path) {
    if (accepted) {
      CheckOwnFiles(report, **client, *endpoint, *dest, s, env);
    } else {
      report.Skip("own-files", "the credentials were refused (see bucket)");
    }
  }
  return finish();
}

}  // namespace sitesync::cli
