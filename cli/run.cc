// Resolves settings into module options, builds the real parts and runs the command.
#include <unistd.h>

#include <filesystem>

#include <fmt/format.h>

#include "cli/cli.h"
#include "cli/output.h"

namespace sitesync::cli {

aws::Result<Resolved> Resolve(const Settings& s, const aws::EnvLookup& env) {
  using aws::ErrorCode;
  Resolved r;
  if (!s.source || s.source->empty()) {
    return aws::Fail(ErrorCode::kUsage, fmt::format("no SOURCE given: run 'sitesync {} SOURCE s3://BUCKET[/PREFIX]', "
                                                    "or set 'source:' in sitesync.yaml",
                                                    s.command));
  }
  if (!s.destination || s.destination->empty()) {
    return aws::Fail(ErrorCode::kUsage, fmt::format("no DEST given: run 'sitesync {} {} s3://BUCKET[/PREFIX]', or set "
                                                    "'destination:' in sitesync.yaml",
                                                    s.command, *s.source));
  }
  auto dest = sync::ParseDestination(*s.destination);
  if (!dest) return std::unexpected(dest.error());
  r.sync.source = *s.source;
  r.sync.destination = *dest;
  r.sync.filters.exclude = s.exclude;
  r.sync.filters.include = s.include;
  r.sync.filters.headers = s.headers;
  const std::string compare = s.compare.value_or("size");
  if (compare == "size") {
    r.sync.compare = sync::Compare::kSize;
  } else if (compare == "checksum") {
    r.sync.compare = sync::Compare::kChecksum;
  } else {
    return aws::Fail(ErrorCode::kUsage, fmt::format("bad compare '{}': use size or checksum", compare));
  }
  r.sync.delete_stale = s.delete_stale.value_or(false);
  r.sync.max_deletes = s.max_deletes.value_or(256);
  if (r.sync.max_deletes < -1) {
    return aws::Fail(ErrorCode::kUsage, fmt::format("bad max_deletes {}: use a number >= 0, or -1 for no limit",
                                                    r.sync.max_deletes));
  }
  r.sync.dry_run = s.dry_run;
  r.jobs = s.jobs.value_or(64);
  if (r.jobs < 1 || r.jobs > 1024) {
    return aws::Fail(ErrorCode::kUsage, fmt::format("bad jobs {}: use 1 to 1024 transfers in flight", r.jobs));
  }
  if (s.endpoint) {
    const std::string& e = *s.endpoint;
    if (!(e.starts_with("http://") || e.starts_with("https://")) || e.size() <= 8) {
      return aws::Fail(ErrorCode::kUsage,
                       fmt::format("bad endpoint '{}': use a URL such as http://127.0.0.1:9000", e));
    }
    r.endpoint.endpoint = e;
  }
  r.endpoint.path_style = s.path_style.value_or(s.endpoint.has_value());
  r.endpoint.region = aws::ResolveRegion(s.region.value_or(""), s.profile.value_or(""), env);
  return r;
}

int Run(const Settings& input) {
  const auto started = std::chrono::steady_clock::now();
  Settings settings = input;
  OutputOptions out_options{settings.json, settings.quiet, settings.verbose, ::isatty(STDERR_FILENO) == 1};
  auto out = MakeOutput(out_options);
  auto finish = [&](const sync::SyncResult& result) {
    out->Summary(result, std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  };
  auto fatal = [&](const aws::Error& e) {
    out->Fatal(e.message);
    sync::SyncResult none;
    none.dry_run = settings.dry_run;
    const bool usage = e.code == aws::ErrorCode::kUsage || e.code == aws::ErrorCode::kConfig ||
                       e.code == aws::ErrorCode::kInput;
    if (!usage) none.failed = 1;
    finish(none);
    return usage ? kExitUsage : kExitFailed;
  };

  std::string config = settings.config_path.value_or("");
  if (config.empty()) {
    std::error_code ec;
    if (std::filesystem::is_regular_file("sitesync.yaml", ec)) config = "sitesync.yaml";
  }
  if (!config.empty()) {
    if (auto ok = LoadConfig(config, settings); !ok) return fatal(ok.error());
  }
  const aws::EnvLookup env = aws::ProcessEnv();
  auto resolved = Resolve(settings, env);
  if (!resolved) return fatal(resolved.error());

  auto credentials = aws::LoadCredentials(settings.profile.value_or(""), env);
  if (!credentials) {
    aws::Error e = credentials.error();
    if (e.code == aws::ErrorCode::kCredentials) e.code = aws::ErrorCode::kConfig;  // nothing was tried: exit 2
    return fatal(e);
  }
  aws::ClientOptions client_options;
  client_options.credentials = *credentials;
  client_options.region = resolved->endpoint.region;
  client_options.max_in_flight = resolved->jobs;
  if (settings.verbose) {
    out->Trace(fmt::format("credentials from {}; region {}", credentials->source, client_options.region));
    client_options.trace = [&out](std::string_view line) { out->Trace(line); };
  }
  auto client = aws::HttpClient::Create(std::move(client_options));
  if (!client) return fatal(client.error());

  auto result = sync::RunSync(resolved->sync, resolved->endpoint, **client, *out);
  if (!result) return fatal(result.error());
  if (result->outcome == sync::Outcome::kRefused) {
    out->Fatal(result->refusal);
    finish(*result);
    return kExitRefused;
  }
  finish(*result);
  return result->outcome == sync::Outcome::kOk ? kExitOk : kExitFailed;
}

}  // namespace sitesync::cli
