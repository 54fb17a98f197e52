// Resolves settings into module options, builds the real parts and runs the command: sync/plan (with the
// CloudFront invalidation after it) or invalidate.
#include <signal.h>
#include <unistd.h>

#include <csignal>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/output.h"
#include "watcher/watcher.h"

namespace sitesync::cli {
namespace {

using aws::ErrorCode;

constexpr std::chrono::minutes kWaitTimeout{20};

// Ends the process for `sig` the way the default action would (so the exit status still says "killed by
// SIGINT"), after erasing the progress line: a shell prompt must not start in the middle of it. Only
// async-signal-safe calls: write(2) in EraseProgressLineFromSignal, signal(2) and raise(3) (POSIX 2.4.3).
void EraseAndDie(int sig) {
  EraseProgressLineFromSignal();
  signal(sig, SIG_DFL);
  raise(sig);  // blocked while this handler runs; delivered, with the default action, when it returns
}

// SIGINT/SIGTERM during sync and plan: the run stops at once, as it always did. That is safe: the owed
// invalidation paths were journaled before the first change, so the next run submits them, and uploads in
// flight are just made again (an interrupted multipart upload never becomes an object; its parts stay until the
// bucket's AbortIncompleteMultipartUpload lifecycle rule clears them). The handler only erases the progress line
// first.
class InterruptCleanup {
 public:
  InterruptCleanup() {
    struct sigaction sa {};
    sa.sa_handler = &EraseAndDie;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
  }
  ~InterruptCleanup() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }
  InterruptCleanup(const InterruptCleanup&) = delete;
  InterruptCleanup& operator=(const InterruptCleanup&) = delete;

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
};

// SIGINT/SIGTERM in watch mode: the batch in flight finishes (its invalidation submitted or journaled), then the
// process exits 0. A second signal ends it at once, as the default action would, after erasing the progress line.
class StopSignals {
 public:
  explicit StopSignals(watcher::EventSource* source) {
    source_ = source;
    struct sigaction sa {};
    sa.sa_handler = &StopSignals::Handle;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
  }
  ~StopSignals() {
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    source_ = nullptr;
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;
  static bool Requested() { return requested_ != 0; }

 private:
  static void Handle(int sig) {
    if (requested_ != 0) return EraseAndDie(sig);
    requested_ = 1;
    if (source_ != nullptr) source_->Interrupt();  // an eventfd write: async-signal-safe
  }
  static inline volatile std::sig_atomic_t requested_ = 0;
  static inline watcher::EventSource* source_ = nullptr;
};

// The watch loop's publish step, as a function of the Runner (watcher/ knows neither sync/ nor the CDN).
class BatchPublisher final : public watcher::Publisher {
 public:
  explicit BatchPublisher(std::function<watcher::PublishOutcome(const watcher::PublishRequest&)> publish)
      : publish_(std::move(publish)) {}
  watcher::PublishOutcome Publish(const watcher::PublishRequest& request) override { return publish_(request); }

 private:
  std::function<watcher::PublishOutcome(const watcher::PublishRequest&)> publish_;
};

// The event source the watch scheduler waits on, with its wait also ending when the gathered invalidation is due
// (watch.invalidate_interval_s), so that the loop submits it on time even when no file changes.
class PacedSource final : public watcher::EventSource {
 public:
  PacedSource(watcher::EventSource& inner, const cdn::InvalidationPacer& pacer) : inner_(inner), pacer_(pacer) {}
  Result<void> Wait(std::optional<watcher::Clock::time_point> deadline, watcher::Coalescer& sink) override {
    // cdn::Clock's Now() and the watcher's clock are both std::chrono::steady_clock.
    if (const auto due = pacer_.DueAt(); due && (!deadline || *due < *deadline)) deadline = *due;
    return inner_.Wait(deadline, sink);
  }
  void Interrupt() override { inner_.Interrupt(); }

 private:
  watcher::EventSource& inner_;
  const cdn::InvalidationPacer& pacer_;
};

bool IsUsageLike(const aws::Error& e) {
  return e.code == ErrorCode::kUsage || e.code == ErrorCode::kConfig || e.code == ErrorCode::kInput;
}

// One run's wiring: output, client, exit codes.
// Passes every report on, and keeps the keys a dry run's plan uploads as new (not in the listing), for the
// invalidation it previews (cdn.invalidate_new: false).
class NewKeysTap final : public sync::Reporter {
 public:
  explicit NewKeysTap(sync::Reporter& inner) : inner_(inner) {}
  void OnWarning(std::string_view message) override { inner_.OnWarning(message); }
  void OnNote(std::string_view message) override { inner_.OnNote(message); }
  void OnPlan(const sync::Plan& plan, bool dry_run) override {
    new_keys.clear();
    // Only a dry run previews (a real run's journal has what it attempted): a copy of every new key would
    // otherwise be held through the transfers for nothing.
    if (dry_run) {
      for (const auto& up : plan.uploads) {
        if (up.reason == sync::UploadReason::kNew) new_keys.emplace_back(up.file.Key());
      }
    }
    inner_.OnPlan(plan, dry_run);
  }
  void OnUploaded(std::string_view rel_key, std::uint64_t bytes, bool planned, sync::UploadReason reason) override {
    inner_.OnUploaded(rel_key, bytes, planned, reason);
  }
  void OnDeleted(std::string_view rel_key, bool planned) override { inner_.OnDeleted(rel_key, planned); }
  void OnError(std::string_view rel_key, std::string_view message) override { inner_.OnError(rel_key, message); }
  void OnSkipped(std::string_view rel_key, std::string_view reason) override { inner_.OnSkipped(rel_key, reason); }
  void OnProgress(std::uint64_t files_done, std::uint64_t bytes_done) override {
    inner_.OnProgress(files_done, bytes_done);
  }

  std::vector<std::string> new_keys;  ///< Relative to the prefix.

 private:
  sync::Reporter& inner_;
};

class Runner {
 public:
  explicit Runner(Settings settings) : settings_(std::move(settings)), started_(std::chrono::steady_clock::now()) {
    out_ = MakeOutput(DetectOutput(settings_.json, settings_.quiet, settings_.verbose));
  }

  int Run() {
    if (settings_.verbose) {
      for (const std::string& option : settings_.ignored_options) {
        out_->Trace(fmt::format("{} means nothing to {}; ignored", option, settings_.command));
      }
    }
    if (auto ok = LoadConfigFile(); !ok) return Fatal(ok.error());
    env_ = aws::ProcessEnv();
    if (settings_.command == "sitemap") return RunSitemap(settings_, *out_);
    if (settings_.command == "check") return RunCheck(settings_, env_);
    if (settings_.command == "invalidate") return RunInvalidate();
    if (settings_.command == "watch") return RunWatch();
    return RunSync();
  }

 private:
  aws::Result<void> LoadConfigFile() {
    std::string config = settings_.config_path.value_or("");
    if (config.empty()) {
      std::error_code ec;
      if (std::filesystem::is_regular_file("sitesync.yaml", ec)) config = "sitesync.yaml";
    }
    if (config.empty()) return {};
    settings_.config_path = config;  // the config in use: never published (OwnFilesOf)
    return LoadConfig(config, settings_);
  }

  aws::Result<void> MakeClient(const std::string& region, int jobs, bool adaptive_jobs = false) {
    aws::ClientOptions options;
    if (auto ok = ApplyTransportSettings(settings_, env_, options); !ok) return ok;
    if (!options.verify_tls) std::fprintf(stderr, "sitesync: %s\n", kNoVerifySslWarning);
    options.region = region;
    options.max_in_flight = jobs;
    options.adaptive_in_flight = adaptive_jobs;
    if (settings_.verbose) options.trace = [this](std::string_view line) { out_->Trace(line); };
    // The whole chain is resolved (and its first credentials fetched) before any other request: a broken setup
    // is exit 2 with nothing changed.
    auto provider = ResolveCredentials(settings_, env_, region, options);
    if (!provider) {
      aws::Error e = provider.error();
      if (e.code == ErrorCode::kCredentials) e.code = ErrorCode::kConfig;  // nothing was tried: exit 2
      return std::unexpected(std::move(e));
    }
    auto credentials = (*provider)->Get(false);
    if (!credentials) {
      aws::Error e = credentials.error();
      if (e.code == ErrorCode::kCredentials) e.code = ErrorCode::kConfig;
      return std::unexpected(std::move(e));
    }
    options.credentials = *credentials;
    options.credential_provider = *provider;
    if (settings_.verbose) out_->Trace(fmt::format("credentials from {}; region {}", credentials->source, region));
    auto client = aws::HttpClient::Create(std::move(options));
    if (!client) return std::unexpected(client.error());
    client_ = std::move(*client);
    return {};
  }

  // The invalidation ledger of this run (cdn::Ledger owns the journal and what is owed); `dest` may be null
  // (`sitesync invalidate` without DEST).
  aws::Result<void> MakeLedger(const CdnResolved& cdn, const sync::Destination* dest) {
    auto dir = cdn::StateDir(env_);
    if (!dir) return std::unexpected(dir.error());
    cdn::LedgerOptions options;
    options.state_dir = *dir;
    options.distribution = cdn.distribution;
    if (dest != nullptr) {
      options.bucket = dest->bucket;
      options.prefix = dest->prefix;
    }
    options.url_prefix = cdn.url_prefix;
    options.paths = cdn.paths;
    cloudfront_ = cdn::MakeCloudFrontApi(*client_, cdn.endpoint);
    ledger_.emplace(std::move(options), *cloudfront_, cdn::SystemClock(),
                    [this](std::string_view note) { out_->OnWarning(note); });
    return {};
  }

  // Finds the distribution and how keys map to URLs, when invalidation is on. CloudFront being unreachable
  // does not stop the run (an explicit ID): the ledger journals the keys until it answers.
  aws::Result<void> SetUpCdn(const sync::Destination& dest) {
    if (!cdn_.enabled) return {};
    if (auto ok = MakeLedger(cdn_, &dest); !ok) return ok;
    if (auto ok = ledger_->Start(true); !ok) return ok;
    if (settings_.verbose && ledger_->mapping()) {
      out_->Trace(fmt::format("distribution {} serves {}; invalidation paths are /{}KEY", ledger_->distribution_id(),
                              dest.Url(), ledger_->mapping()->url_prefix));
    }
    auto owed = ledger_->Peek();
    if (!owed) return std::unexpected(owed.error());
    if (!owed->Empty()) {
      std::size_t keys = 0;
      for (const cdn::UnmappedKeys& u : owed->unmapped) keys += u.keys.size();
      out_->Note(fmt::format("{} invalidation paths{} are owed to distribution {} from an earlier run; they go with "
                             "this run's",
                             owed->paths.size(), keys > 0 ? fmt::format(" and {} keys", keys) : std::string(),
                             ledger_->distribution_id()));
    }
    return {};
  }

  // The owed paths go to disk before the first change of every run or batch: one that dies later is made good
  // by the next.
  void ArmJournal(sync::SyncOptions& options) {
    if (!cdn_.enabled) return;
    const std::string prefix = options.destination.prefix;
    options.before_changes = [this, prefix](const sync::Plan& plan) -> aws::Result<void> {
      std::vector<std::string> rel;
      std::vector<std::string> fresh;  // not in the listing this plan was made from (cdn.invalidate_new)
      for (const auto& up : plan.uploads) {
        rel.emplace_back(up.file.Key());
        if (up.reason == sync::UploadReason::kNew) fresh.emplace_back(up.file.Key());
      }
      for (const auto& key : plan.deletes) rel.push_back(key.substr(prefix.size()));
      return ledger_->Owe(rel, fresh);
    };
  }

  // True when the journal owes anything to the distribution (a watch batch with no change still submits it).
  bool OwesAny() const {
    if (!cdn_.enabled || !ledger_) return false;
    auto owed = ledger_->Peek();
    return !owed || !owed->Empty();
  }

  // After a run or batch: one invalidation for everything the journal owes, which holds every change this run
  // attempted (journaled before it was made, whether it then succeeded, failed or had its answer lost) and what
  // earlier runs or other processes owe. Returns the paths submitted (or planned); a failure is reported,
  // counted and turns `exit_code` to 1 (or 2).
  std::uint64_t InvalidateAfter(sync::SyncResult& result, int& exit_code,
                                const std::vector<std::string>* gathered_done = nullptr) {
    if (!cdn_.enabled) return 0;
    if (settings_.dry_run) {
      std::vector<std::string> changed = result.uploaded_keys;
      changed.insert(changed.end(), result.deleted_keys.begin(), result.deleted_keys.end());
      auto set = ledger_->Preview(changed, planned_new_);
      if (!set) {
        out_->OnError("invalidation", set.error().message);
        exit_code = kExitFailed;
        return 0;
      }
      if (!set->paths.empty()) out_->OnInvalidation("", set->paths, true);
      ReportCost(set->paths.size());
      return set->paths.size();
    }
    std::vector<std::string> done = result.uploaded_keys;
    done.insert(done.end(), result.deleted_keys.begin(), result.deleted_keys.end());
    // A paced watch settles what several batches did (watch.invalidate_interval_s).
    auto settled = ledger_->Settle(gathered_done != nullptr ? *gathered_done : done);
    if (!settled) {
      out_->OnError("invalidation", settled.error().message);
      ++result.failed;
      exit_code = IsUsageLike(settled.error()) ? kExitUsage : kExitFailed;
      return 0;
    }
    if (settled->collapsed) {
      out_->Note(fmt::format("{} paths are more than cdn.max_paths ({}): invalidating {} wildcard paths that cover "
                             "them instead",
                             settled->exact_count, cdn_.paths.max_paths, settled->submitted.size()));
    }
    if (!settled->invalidation_id.empty()) {
      out_->OnInvalidation(settled->invalidation_id, settled->submitted, false);
      if (cdn_.wait) {
        if (auto ok = Wait(cdn_, ledger_->distribution_id(), settled->invalidation_id); !ok) {
          out_->OnError("invalidation", ok.error().message);
          ++result.failed;
          exit_code = kExitFailed;
        }
      }
    }
    if (settled->unmapped_left > 0) {
      out_->OnError("invalidation", settled->unmapped_reason);
      ++result.failed;
      exit_code = kExitFailed;
    }
    if (settled->owed_again > 0) {
      out_->Note(fmt::format("{} paths whose change failed or had its answer lost stay owed to distribution {}: the "
                             "next run invalidates them again",
                             settled->owed_again, ledger_->distribution_id()));
    }
    return settled->submitted.size();
  }

  // plan: the paths this distribution was sent this calendar month (UTC), this plan's, and their price. Reading
  // them needs cloudfront:ListInvalidations and GetInvalidation; without them (or with CloudFront failing) the
  // line is left out with a warning: never a failed plan.
  void ReportCost(std::uint64_t planned) {
    const std::string& id = ledger_->distribution_id();
    // The distribution could not be found or read (CloudFront unreachable): warned about already; its history
    // would only cost more retries.
    if (id.starts_with("auto:") || !ledger_->mapping()) return;
    auto history = cdn::MakeInvalidationHistory(*client_, cdn_.endpoint);
    auto cost = cdn::CountMonth(*history, id, std::chrono::system_clock::now(), planned);
    if (!cost) {
      out_->OnWarning(fmt::format("this month's invalidation paths of distribution {} could not be counted ({}); "
                                  "the plan is complete without them. To see the cost line, allow "
                                  "cloudfront:ListInvalidations and cloudfront:GetInvalidation to these credentials "
                                  "(docs/iam-policy.md)",
                                  id, cost.error().message));
      return;
    }
    out_->OnCost(*cost);
  }

  aws::Result<void> Wait(const CdnResolved& cdn, const std::string& distribution_id, const std::string& id) {
    auto done = cdn::WaitForInvalidation(
        *client_, cdn.endpoint, distribution_id, id, kWaitTimeout,
        [this](const cdn::Invalidation& i, std::chrono::seconds elapsed) {
          out_->Note(fmt::format("invalidation {}: {} ({} s)", i.id, i.status, elapsed.count()));
        });
    if (!done) return std::unexpected(done.error());
    return {};
  }

  // sitemap.enabled: checked before anything is done (a missing base URL is a config error, exit 2).
  aws::Result<void> SetUpSitemap(const Resolved& resolved) {
    if (!settings_.sitemap_enabled.value_or(false)) return {};
    auto setup = ResolveSitemap(settings_, resolved.sync.filters);
    if (!setup) return std::unexpected(setup.error());
    sitemap_.emplace(std::move(*setup));
    return {};
  }

  // The sitemap files the sync step did not upload, compared by content (MD5 against the ETag): a sitemap whose
  // only change is a <lastmod> keeps its size, which --compare size (and a watch batch's settle time, the file
  // having just been written) would let pass. Their uploads join `result`, so one invalidation covers them.
  void PublishSitemap(sync::Session& session, const std::vector<std::string>& files, sync::SyncResult& result,
                      bool counted_unchanged) {
    // After a failure a batch would retry the failed uploads too; the next run or batch checks the sitemap again.
    if (files.empty() || settings_.dry_run || result.failed > 0) return;
    std::set<std::string> paths;
    for (const std::string& f : files) {
      if (std::find(result.uploaded_keys.begin(), result.uploaded_keys.end(), f) != result.uploaded_keys.end()) continue;
      if (std::find(result.deleted_keys.begin(), result.deleted_keys.end(), f) != result.deleted_keys.end()) continue;
      paths.insert(f);
    }
    if (paths.empty()) return;
    auto extra = session.Batch(paths, false, sync::BatchDeletes::kHold, *out_);
    if (!extra) {
      out_->OnError("sitemap", extra.error().message);
      ++result.failed;
      result.outcome = sync::Outcome::kFailed;
      return;
    }
    const sync::SyncResult& r = extra->result;
    // The sync step counted these files as unchanged (same size); now they are uploads.
    if (counted_unchanged) result.unchanged -= std::min(result.unchanged, r.uploaded);
    result.uploaded += r.uploaded;
    result.deleted += r.deleted;
    result.failed += r.failed;
    result.bytes_uploaded += r.bytes_uploaded;
    result.uploaded_keys.insert(result.uploaded_keys.end(), r.uploaded_keys.begin(), r.uploaded_keys.end());
    result.deleted_keys.insert(result.deleted_keys.end(), r.deleted_keys.begin(), r.deleted_keys.end());
    result.attempted_keys.insert(result.attempted_keys.end(), r.attempted_keys.begin(), r.attempted_keys.end());
    result.skipped += r.skipped;
    result.skipped_keys.insert(result.skipped_keys.end(), r.skipped_keys.begin(), r.skipped_keys.end());
    result.failed_keys.insert(result.failed_keys.end(), r.failed_keys.begin(), r.failed_keys.end());
    if (r.outcome == sync::Outcome::kFailed) result.outcome = sync::Outcome::kFailed;
  }

  // -v: which of sitesync's own files are in SOURCE, left out of the site.
  void NoteOwnFiles(const Resolved& resolved) {
    if (!settings_.verbose) return;
    const std::string config =
        settings_.config_path ? std::filesystem::path(*settings_.config_path).filename().string() : "";
    for (const std::string& rel : resolved.sync.filters.own.rel_paths) {
      std::error_code ec;
      if (!std::filesystem::exists(resolved.sync.source / rel, ec)) continue;
      out_->Trace(fmt::format("{} in SOURCE is left out: {}; sitesync never publishes its own files", rel,
                              rel == config ? "it is, or has the name of, the config in use (a generator may copy "
                                              "it there, as Jekyll does)"
                                            : "it is sitesync's own (its config, journal or cache)"));
    }
  }

  // -v: where S3 and CloudFront are called, and which setting said so.
  void TraceEndpoints(const Resolved& resolved) {
    if (!settings_.verbose) return;
    const sync::S3Endpoint& e = resolved.endpoint;
    auto regional = aws::PartitionEndpoint(aws::EndpointService::kS3, e.region, e.fips, e.dualstack);
    out_->Trace(fmt::format("S3 endpoint {} ({}, {}-style, signed for {})",
                            e.endpoint.empty() && regional ? regional->url : e.endpoint, resolved.endpoint_source,
                            e.path_style ? "path" : "virtual-hosted", e.region));
    if (cdn_.enabled) {
      out_->Trace(fmt::format("CloudFront endpoint {} ({}, signed for {})", cdn_.endpoint.endpoint,
                              cdn_.endpoint_source, cdn_.endpoint.region));
    }
  }

  int RunSync() {
    auto resolved = Resolve(settings_, env_);
    if (!resolved) return Fatal(resolved.error());
    NoteOwnFiles(*resolved);
    auto cdn = ResolveCdn(settings_, env_);
    if (!cdn) return Fatal(cdn.error());
    cdn_ = *cdn;
    TraceEndpoints(*resolved);
    if (auto ok = SetUpSitemap(*resolved); !ok) return Fatal(ok.error());
    if (auto ok = MakeClient(resolved->endpoint.region, resolved->jobs, resolved->adaptive_jobs); !ok) return Fatal(ok.error());
    if (auto ok = SetUpCdn(resolved->sync.destination); !ok) return Fatal(ok.error());
    ArmJournal(resolved->sync);

    // The sitemap first, so that this sync uploads it (and invalidates it if it changed). Not in a dry run.
    std::vector<std::string> sitemap_files;
    if (sitemap_) {
      auto files = sitemap_->Refresh(*out_, settings_.dry_run);
      if (!files) return Fatal(files.error());
      sitemap_files = std::move(*files);
    }
    const InterruptCleanup interrupt_cleanup;
    // A Session's initial sync is sync::RunSync; the session can then also check the sitemap by content.
    sync::Session session(resolved->sync, resolved->endpoint, *client_);
    NewKeysTap tap(*out_);
    auto result = session.Initial(tap);
    if (!result) return Fatal(result.error());
    planned_new_ = std::move(tap.new_keys);
    if (result->outcome == sync::Outcome::kRefused) {
      out_->Fatal(result->refusal);
      Finish(*result, 0);
      return kExitRefused;
    }
    PublishSitemap(session, sitemap_files, *result, true);
    int exit_code = result->outcome == sync::Outcome::kOk ? kExitOk : kExitFailed;
    const std::uint64_t invalidated = InvalidateAfter(*result, exit_code);
    Finish(*result, invalidated);
    return exit_code;
  }

  int RunWatch() {
    auto resolved = Resolve(settings_, env_);
    if (!resolved) return Fatal(resolved.error());
    NoteOwnFiles(*resolved);
    auto cdn = ResolveCdn(settings_, env_);
    if (!cdn) return Fatal(cdn.error());
    cdn_ = *cdn;
    TraceEndpoints(*resolved);
    if (settings_.dry_run) {
      return Fatal(aws::Error{ErrorCode::kUsage, "watch does not take --dry-run: use 'sitesync plan' to see what a "
                                                 "sync would do", false, 0, {}});
    }
    const auto quiet = std::chrono::milliseconds(settings_.debounce_ms.value_or(200));
    const auto max_delay = std::chrono::milliseconds(settings_.max_delay_ms.value_or(2000));
    if (auto ok = SetUpSitemap(*resolved); !ok) return Fatal(ok.error());
    if (auto ok = MakeClient(resolved->endpoint.region, resolved->jobs, resolved->adaptive_jobs); !ok) return Fatal(ok.error());
    if (auto ok = SetUpCdn(resolved->sync.destination); !ok) return Fatal(ok.error());
    ArmJournal(resolved->sync);

    // Watch BEFORE the initial sync: what changes while it runs is queued by the kernel, not lost.
    const watcher::Log log = [this](std::string_view line) { out_->Note(line); };
    auto source = settings_.poll_ms.value_or(0) > 0  // --poll MS / watch.poll_ms: where inotify is silent.
        ? watcher::MakePollSource(resolved->sync.source, resolved->sync.filters, log,
                                  std::chrono::milliseconds(*settings_.poll_ms))
        : watcher::MakeInotifySource(resolved->sync.source, resolved->sync.filters, log,
                                     {std::chrono::seconds(settings_.rescan_interval_s.value_or(30))});
    if (!source) return Fatal(source.error());
    StopSignals stop(source->get());

    sync::Session session(resolved->sync, resolved->endpoint, *client_);
    std::vector<std::string> sitemap_files;
    if (sitemap_) {
      auto files = sitemap_->Refresh(*out_, false);
      if (!files) return Fatal(files.error());
      sitemap_files = std::move(*files);
    }
    auto initial = session.Initial(*out_);
    if (!initial) return Fatal(initial.error());
    if (initial->outcome == sync::Outcome::kRefused) {
      out_->Fatal(initial->refusal);
      Finish(*initial, 0);
      return kExitRefused;
    }
    PublishSitemap(session, sitemap_files, *initial, true);
    int initial_exit = kExitOk;
    const std::uint64_t invalidated = InvalidateAfter(*initial, initial_exit);
    out_->BatchSummary(0, WithThrottled(*initial), invalidated, Elapsed(started_));
    out_->Note(fmt::format("watching {} for changes (Ctrl-C to stop)", resolved->sync.source.string()));

    // From here the policy (when a batch goes, when a delete may happen, when failures are tried again) is the
    // watcher's Scheduler; this only wires it to the publish step below.
    watcher::SchedulerOptions policy;
    policy.quiet = quiet;
    policy.max_delay = max_delay;
    policy.delete_delay = std::chrono::milliseconds(settings_.delete_delay_ms.value_or(2000));
    if (settings_.poll_ms.value_or(0) > 0) {
      policy = watcher::ForPolling(policy, std::chrono::milliseconds(*settings_.poll_ms));
    }
    std::uint64_t batch = 1;
    const std::string source_name = resolved->sync.source.string();
    // watch.invalidate_interval_s: when the owed paths are submitted is cdn::InvalidationPacer's to say.
    pacer_.emplace(std::chrono::seconds(std::max<std::int64_t>(settings_.invalidate_interval_s.value_or(0), 0)),
                   cdn::SystemClock());
    BatchPublisher publisher(
        [&](const watcher::PublishRequest& request) { return PublishBatch(session, request, batch, source_name); });
    PacedSource paced(**source, *pacer_);
    watcher::Scheduler scheduler(paced, publisher, watcher::SteadyTime(), policy, log);
    watcher::PublishOutcome first;
    first.failed.insert(initial->failed_keys.begin(), initial->failed_keys.end());
    first.invalidation_failed = initial_exit != kExitOk;
    scheduler.Seed(first);
    const std::function<bool()> stopping = [] { return StopSignals::Requested(); };
    Result<void> ran;
    while (ran && !stopping()) {
      ran = scheduler.Step(stopping);
      if (ran && !stopping() && pacer_->Due()) SubmitGathered(batch, false);
    }
    // What the batches gathered is submitted at exit (SIGINT/SIGTERM) too; a crash leaves it in the journal.
    if (pacer_->Waiting()) SubmitGathered(batch, true);
    if (!ran) {
      out_->Fatal(ran.error().message);
      return kExitFailed;
    }
    out_->Note("stopped");
    return kExitOk;
  }

  // A paced watch: submits what the batches since the last invalidation owe, as a summary of its own (a batch
  // that uploaded nothing), so that the summaries' invalidation_paths still add up to what CloudFront bills.
  // A failure leaves the paths owed in the journal (the error says so): tried again after the pacer's backoff, or
  // at exit by the next sync or watch.
  void SubmitGathered(std::uint64_t& batch, bool at_exit) {
    const auto since = std::chrono::steady_clock::now();
    out_->Note(fmt::format("{}: submitting the invalidation paths gathered from {} batches "
                           "(watch.invalidate_interval_s: {})",
                           at_exit ? "watch is stopping" : "the interval ended", pacer_->Batches(),
                           settings_.invalidate_interval_s.value_or(0)));
    sync::SyncResult r;
    int code = kExitOk;
    const std::vector<std::string> done = pacer_->DoneKeys();
    const std::uint64_t invalidated = InvalidateAfter(r, code, &done);
    if (code == kExitOk) {
      pacer_->Submitted();
    } else {
      pacer_->Failed();
      if (const auto due = pacer_->DueAt(); due && !at_exit) {
        out_->Note(fmt::format("the gathered invalidation paths stay owed; tried again in {} s, and at exit",
                               std::chrono::ceil<std::chrono::seconds>(*due - std::chrono::steady_clock::now())
                                   .count()));
      }
    }
    out_->BatchSummary(batch++, WithThrottled(r), invalidated, Elapsed(since));
  }

  // One watch batch: the sitemap, the session's batch, then the invalidation after it, and its summary.
  watcher::PublishOutcome PublishBatch(sync::Session& session, const watcher::PublishRequest& request,
                                       std::uint64_t& batch, const std::string& source_name) {
    watcher::PublishOutcome outcome;
    if (request.rescan) out_->Note("rescanning " + source_name + ": " + request.rescan_reason);
    // The sitemap before the batch, rewritten only when a page changed: its own write then comes back as an
    // event that changes no page, so it never starts an endless round of batches.
    std::vector<std::string> sitemap_files;
    if (sitemap_) {
      auto files = sitemap_->Update(request.paths, request.rescan, *out_);
      if (files) {
        sitemap_files = std::move(*files);
      } else {
        out_->OnError("sitemap", files.error().message);
      }
    }
    const sync::BatchDeletes deletes = request.deletes == watcher::DeleteMode::kWith   ? sync::BatchDeletes::kWith
                                       : request.deletes == watcher::DeleteMode::kOnly ? sync::BatchDeletes::kOnly
                                                                                       : sync::BatchDeletes::kHold;
    auto done = session.Batch(request.paths, request.rescan, deletes, *out_);
    if (!done) {
      // Transient (the folder mid-rebuild, a read error): the scheduler tries the whole batch again.
      out_->OnError("", done.error().message);
      outcome.not_run = true;
      return outcome;
    }
    outcome.held_deletes.insert(done->held_deletes.begin(), done->held_deletes.end());
    sync::SyncResult& r = done->result;
    PublishSitemap(session, sitemap_files, r, false);
    outcome.failed.insert(r.failed_keys.begin(), r.failed_keys.end());
    const bool owes = OwesAny();
    const bool changed = r.uploaded != 0 || r.deleted != 0 || r.failed != 0;
    if (!changed && !owes) {
      return outcome;  // nothing to publish: no summary, no invalidation
    }
    int batch_exit = kExitOk;
    std::uint64_t invalidated = 0;
    if (cdn_.enabled && pacer_ && pacer_->Paced()) {
      // watch.invalidate_interval_s: the paths stay owed in the journal and go with the other batches' when the
      // interval ends (the pacer owns the retry of a failed submission too).
      std::vector<std::string> changed_keys = r.uploaded_keys;
      changed_keys.insert(changed_keys.end(), r.deleted_keys.begin(), r.deleted_keys.end());
      if (pacer_->AfterBatch(changed_keys, r.failed_keys, owes)) {
        const std::vector<std::string> gathered = pacer_->DoneKeys();
        invalidated = InvalidateAfter(r, batch_exit, &gathered);
        if (batch_exit == kExitOk) {
          pacer_->Submitted();
        } else {
          pacer_->Failed();
        }
      } else if (!changed) {
        return outcome;  // only owed paths, already waiting for the interval: no batch to report
      } else if (pacer_->Waiting()) {
        auto owed = ledger_->Peek();
        const std::size_t n = owed ? owed->paths.size() : 0;
        const auto due =
            std::chrono::round<std::chrono::seconds>(*pacer_->DueAt() - std::chrono::steady_clock::now());
        out_->Note(fmt::format("invalidation deferred: {} paths owed to distribution {} are gathered with the next "
                               "batches' and submitted in {} s or at exit (watch.invalidate_interval_s: {})",
                               n, ledger_->distribution_id(), std::max<std::int64_t>(due.count(), 0),
                               settings_.invalidate_interval_s.value_or(0)));
      }
    } else {
      invalidated = InvalidateAfter(r, batch_exit);
      outcome.invalidation_failed = batch_exit != kExitOk;
    }
    out_->BatchSummary(batch++, WithThrottled(r), invalidated, Elapsed(request.since));
    return outcome;
  }

  static double Elapsed(std::chrono::steady_clock::time_point since) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
  }

  int RunInvalidate() {
    auto cdn = ResolveCdn(settings_, env_);
    if (!cdn) return Fatal(cdn.error());
    if (!settings_.distribution) {
      return Fatal(aws::Error{ErrorCode::kUsage,
                              "sitesync invalidate needs --distribution ID (or auto with 'destination:' in "
                              "sitesync.yaml), or cdn.distribution in sitesync.yaml",
                              false, 0, {}});
    }
    if (settings_.discard_owed) return RunDiscardOwed(*cdn);
    if (settings_.invalidate_paths.empty()) {
      return Fatal(aws::Error{ErrorCode::kUsage,
                              "sitesync invalidate needs the URL paths to invalidate (such as /blog/ or '/img/*'), "
                              "or --discard-owed to drop what is owed",
                              false, 0, {}});
    }
    std::optional<sync::Destination> dest;
    if (settings_.destination) {
      auto d = sync::ParseDestination(*settings_.destination);
      if (!d) return Fatal(d.error());
      dest = *d;
    }
    std::vector<std::string> paths;
    for (const std::string& p : settings_.invalidate_paths) {
      if (p.empty()) continue;
      paths.push_back(cdn::EncodePath(p.starts_with('/') ? p : "/" + p, /*keep_trailing_star=*/true));
    }
    std::sort(paths.begin(), paths.end());
    paths.erase(std::unique(paths.begin(), paths.end()), paths.end());
    const std::string region = aws::ResolveRegion(settings_.region.value_or(""), settings_.profile.value_or(""), env_);
    if (auto ok = MakeClient(region, 8); !ok) return Fatal(ok.error());
    if (auto ok = MakeLedger(*cdn, dest ? &*dest : nullptr); !ok) return Fatal(ok.error());
    if (auto ok = ledger_->Start(false); !ok) return Fatal(ok.error());

    sync::SyncResult result;
    result.dry_run = settings_.dry_run;
    if (settings_.dry_run) {
      const cdn::PathSet set = cdn::Collapse(paths, cdn->paths);
      out_->OnInvalidation("", set.paths, true);
      Finish(result, set.paths.size());
      return kExitOk;
    }
    if (auto ok = ledger_->OwePaths(paths); !ok) return Fatal(ok.error());
    auto settled = ledger_->SubmitOwed();
    if (!settled) return Fatal(settled.error());
    if (settled->collapsed) {
      out_->Note(fmt::format("{} paths are more than cdn.max_paths ({}): invalidating {} wildcard paths that cover "
                             "them instead",
                             settled->exact_count, cdn->paths.max_paths, settled->submitted.size()));
    }
    int exit_code = kExitOk;
    if (!settled->invalidation_id.empty()) {
      out_->OnInvalidation(settled->invalidation_id, settled->submitted, false);
      if (cdn->wait) {
        if (auto ok = Wait(*cdn, ledger_->distribution_id(), settled->invalidation_id); !ok) return Fatal(ok.error());
      }
    }
    if (settled->unmapped_left > 0) {
      out_->OnError("invalidation", settled->unmapped_reason);
      ++result.failed;
      exit_code = kExitFailed;
    }
    Finish(result, settled->submitted.size());
    return exit_code;
  }

  // `sitesync invalidate --discard-owed --distribution ID`: prints what is owed to ID and drops it. Local only:
  // no credentials, no request (the way out when CloudFront keeps refusing the owed paths).
  int RunDiscardOwed(const CdnResolved& cdn) {
    if (!settings_.invalidate_paths.empty()) {
      return Fatal(aws::Error{ErrorCode::kUsage,
                              "--discard-owed takes no PATH: it drops everything owed to the distribution; run "
                              "`sitesync invalidate PATH... --distribution ID` on its own to invalidate paths",
                              false, 0, {}});
    }
    if (cdn.distribution == "auto") {
      return Fatal(aws::Error{ErrorCode::kUsage,
                              "--discard-owed needs the distribution ID (--distribution ID), not auto: `sitesync "
                              "check` lists the distributions that are owed paths",
                              false, 0, {}});
    }
    auto dir = cdn::StateDir(env_);
    if (!dir) return Fatal(dir.error());
    auto dropped = cdn::DiscardOwed(*dir, cdn.distribution, cdn::SystemClock());
    if (!dropped) return Fatal(dropped.error());
    std::vector<std::string> keys;
    for (const cdn::UnmappedKeys& u : dropped->unmapped) {
      for (const std::string& k : u.keys) keys.push_back("s3://" + u.bucket + "/" + u.prefix + k);
    }
    std::string text;
    if (settings_.json) {
      nlohmann::ordered_json j{{"event", "discard"}, {"distribution", cdn.distribution}, {"paths", dropped->paths},
                               {"keys", keys}};
      text = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    } else if (dropped->Empty()) {
      if (!settings_.quiet) text = fmt::format("nothing is owed to distribution {}\n", cdn.distribution);
    } else {
      text = fmt::format("dropped {} owed invalidation paths{} of distribution {} (they will not be invalidated):\n",
                         dropped->paths.size(),
                         keys.empty() ? std::string() : fmt::format(" and {} keys", keys.size()), cdn.distribution);
      for (const std::string& p : dropped->paths) text += "  " + p + "\n";
      for (const std::string& k : keys) text += "  " + k + "\n";
    }
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
    sync::SyncResult result;
    if (settings_.json) Finish(result, 0);
    return kExitOk;
  }

  // `r` with the answers that asked to slow down since the last summary (the transport counts them).
  sync::SyncResult WithThrottled(sync::SyncResult r) {
    if (!client_) return r;
    const aws::ClientStats stats = client_->Stats();
    r.throttled = stats.throttled - throttled_reported_;
    throttled_reported_ = stats.throttled;
    if (settings_.verbose && stats.in_flight_highest > 0) {
      out_->Trace(fmt::format("transfers in flight: {} to {}, now {}; {} answers asked to slow down",
                              stats.in_flight_lowest, stats.in_flight_highest, stats.in_flight_final,
                              stats.throttled));
    }
    return r;
  }

  void Finish(const sync::SyncResult& result, std::uint64_t invalidated) {
    out_->Summary(WithThrottled(result), invalidated,
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count());
  }

  int Fatal(const aws::Error& e) {
    out_->Fatal(e.message);
    sync::SyncResult none;
    none.dry_run = settings_.dry_run;
    const bool usage = IsUsageLike(e);
    if (!usage) none.failed = 1;
    if (settings_.json) Finish(none, 0);  // the summary stays the last JSON line; people need only the error
    return usage ? kExitUsage : kExitFailed;
  }

  Settings settings_;
  std::chrono::steady_clock::time_point started_;
  std::unique_ptr<Output> out_;
  aws::EnvLookup env_;
  std::unique_ptr<aws::HttpClient> client_;
  std::uint64_t throttled_reported_ = 0;  ///< Answers that asked to slow down, as of the last summary.

  CdnResolved cdn_;
  std::unique_ptr<cdn::CloudFrontApi> cloudfront_;
  std::optional<cdn::Ledger> ledger_;
  std::vector<std::string> planned_new_;  ///< A dry run's keys planned as new uploads (for Preview).
  std::optional<cdn::InvalidationPacer> pacer_;  ///< watch: when the owed paths are submitted.
  std::optional<SitemapStep> sitemap_;
};

}  // namespace

aws::Result<void> CheckSourceFolder(const std::string& source) {
  std::error_code ec;
  if (!std::filesystem::exists(source, ec)) {
    return aws::Fail(ErrorCode::kInput, fmt::format("source '{}' does not exist; check the SOURCE argument, or build "
                                                    "the site first",
                                                    source));
  }
  if (!std::filesystem::is_directory(source, ec)) {
    return aws::Fail(ErrorCode::kInput, fmt::format("source '{}' is not a directory; SOURCE must be the folder that "
                                                    "holds the built site (such as public/)",
                                                    source));
  }
  return {};
}

namespace {

// The cache folder (CLI.md): $XDG_CACHE_HOME/sitesync, else ~/.cache/sitesync; empty when neither is an
// absolute path (XDG Base Directory: a relative one is ignored).
std::filesystem::path CacheDir(const aws::EnvLookup& env) {
  if (const auto xdg = env("XDG_CACHE_HOME"); xdg && !xdg->empty() && xdg->front() == '/') {
    return std::filesystem::path(*xdg) / "sitesync";
  }
  if (const auto home = env("HOME"); home && !home->empty() && home->front() == '/') {
    return std::filesystem::path(*home) / ".cache" / "sitesync";
  }
  return {};
}

}  // namespace

sitemap::OwnFiles OwnFilesOf(const Settings& s, const aws::EnvLookup& env) {
  std::vector<std::filesystem::path> paths;
  std::vector<std::string> root_names;
  if (s.config_path && !s.config_path->empty()) {
    paths.emplace_back(*s.config_path);
    root_names.push_back(std::filesystem::path(*s.config_path).filename().string());
  }
  if (auto state = cdn::StateDir(env)) paths.push_back(*state);
  if (auto cache = CacheDir(env); !cache.empty()) paths.push_back(std::move(cache));
  return sitemap::FindOwnFiles(s.source.value_or(""), paths, root_names);
}

aws::Result<Resolved> Resolve(const Settings& s, const aws::EnvLookup& env) {
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
  // Checked here too (the walk checks again) so that a missing SOURCE is reported before anything else.
  if (auto ok = CheckSourceFolder(*s.source); !ok) return std::unexpected(ok.error());
  r.sync.source = *s.source;
  r.sync.destination = *dest;
  r.sync.filters.exclude = s.exclude;
  r.sync.filters.include = s.include;
  r.sync.filters.headers = s.headers;
  r.sync.filters.compress = s.compress;
  r.sync.filters.own = OwnFilesOf(s, env);
  // clean_urls and the index document: one key mapping for the walk, the invalidation paths and sitemap.xml.
  r.sync.filters.clean_urls = s.clean_urls.value_or(false);
  r.sync.filters.index_document = s.index_document.value_or("index.html");
  r.sync.redirects = s.redirects;
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
  r.sync.max_delete_fraction = s.max_delete_fraction.value_or(0.5);
  r.sync.watching = s.command == "watch";
  if (!(r.sync.max_delete_fraction >= 0 && r.sync.max_delete_fraction <= 1)) {
    return aws::Fail(ErrorCode::kUsage, fmt::format("bad max_delete_fraction {}: use a number from 0 to 1 (1 turns "
                                                    "the check off)", r.sync.max_delete_fraction));
  }
  r.sync.dry_run = s.dry_run;
  r.sync.force = s.force;
  r.sync.refresh_headers = s.refresh_headers;
  r.jobs = s.jobs.value_or(64);
  r.adaptive_jobs = !s.jobs.has_value();
  if (r.jobs < 1 || r.jobs > 1024) {
    return aws::Fail(ErrorCode::kUsage, fmt::format("bad jobs {}: use 1 to 1024 transfers in flight", r.jobs));
  }
  auto endpoint = ResolveS3Endpoint(s, env, r.endpoint_source);
  if (!endpoint) return std::unexpected(endpoint.error());
  r.endpoint = std::move(*endpoint);
  // The local record of what was published to DEST, one file per destination. Its identity: the configured
  // endpoint URL, else the AWS partition (a bucket name is unique within a partition, whatever the region, FIPS
  // or dual-stack endpoint that reaches it). A dry run reads it and never writes it (sync/).
  if (const auto cache = CacheDir(env); !cache.empty()) {
    const std::string identity = !r.endpoint.endpoint.empty()
                                     ? r.endpoint.endpoint
                                     : "aws:" + std::string(aws::PartitionOf(r.endpoint.region).id);
    r.sync.record_file = sync::Record::FileFor(cache, r.sync.destination, identity);
  }
  return r;
}

aws::Result<aws::EndpointSettings> ResolveEndpointSettings(const Settings& s, const aws::EnvLookup& env) {
  auto shared = aws::LoadSharedConfig(env);
  if (!shared) return std::unexpected(shared.error());
  return aws::LoadEndpointSettings(env, *shared, aws::ChosenProfile(s.profile.value_or(""), env));
}

aws::Result<sync::S3Endpoint> ResolveS3Endpoint(const Settings& s, const aws::EnvLookup& env) {
  std::string source;
  return ResolveS3Endpoint(s, env, source);
}

aws::Result<sync::S3Endpoint> ResolveS3Endpoint(const Settings& s, const aws::EnvLookup& env, std::string& source) {
  sync::S3Endpoint e;
  std::optional<aws::ConfiguredUrl> explicit_url;
  if (s.endpoint) {
    const std::string option = "--endpoint (endpoint: in sitesync.yaml)";
    auto url = aws::CheckEndpointUrl(*s.endpoint, option, true);
    if (!url) return std::unexpected(url.error());
    explicit_url = aws::ConfiguredUrl{*url, option};
  }
  auto settings = ResolveEndpointSettings(s, env);
  if (!settings) return std::unexpected(settings.error());
  e.region = aws::ResolveRegion(s.region.value_or(""), s.profile.value_or(""), env);
  auto resolved = aws::ResolveEndpoint(*settings, aws::EndpointService::kS3, e.region, explicit_url);
  if (!resolved) return std::unexpected(resolved.error());
  source = resolved->source;
  // A configured endpoint (any source) is an S3-compatible server or a local one: path-style, as --endpoint has
  // always meant, unless --path-style / path_style or the profile's s3.addressing_style says otherwise. The
  // partition's endpoints are virtual-hosted (S3Request keeps dotted buckets path-style over HTTPS).
  if (resolved->configured) e.endpoint = resolved->url;
  e.fips = settings->use_fips;
  e.dualstack = settings->use_dualstack;
  e.path_style = s.path_style.value_or(settings->s3_path_style.value_or(resolved->configured));
  return e;
}

aws::Result<CdnResolved> ResolveCdn(const Settings& s) {
  CdnResolved c;
  c.distribution = s.distribution.value_or("");
  c.enabled = !c.distribution.empty() && s.invalidate.value_or(true);
  if (s.cloudfront_endpoint) {
    auto url = aws::CheckEndpointUrl(*s.cloudfront_endpoint, "--cloudfront-endpoint (cdn.endpoint in sitesync.yaml)",
                                     true);
    if (!url) return std::unexpected(url.error());
    c.endpoint.endpoint = *url;
  }
  if (!c.distribution.empty() && c.distribution != "auto") {
    for (char ch : c.distribution) {
      if (!std::isalnum(static_cast<unsigned char>(ch))) {
        return aws::Fail(ErrorCode::kUsage,
                         fmt::format("bad distribution '{}': use the distribution ID (e.g. E2QWRUHAPOMQZL) or auto",
                                     c.distribution));
      }
    }
  }
  c.paths.index_document = s.index_document.value_or("index.html");
  if (c.paths.index_document.empty() || c.paths.index_document.find('/') != std::string::npos) {
    return aws::Fail(ErrorCode::kUsage, fmt::format("bad cdn.index_document '{}': use a file name such as index.html",
                                                    c.paths.index_document));
  }
  c.paths.bare_alias = s.bare_alias.value_or(true);
  if (s.max_paths && *s.max_paths > static_cast<std::int64_t>(cdn::kMaxInvalidationPaths)) {
    return aws::Fail(ErrorCode::kConfig,
                     fmt::format("bad cdn.max_paths {}: CloudFront takes at most {} paths in one invalidation "
                                 "(BatchTooLarge); set cdn.max_paths to {} or less",
                                 *s.max_paths, cdn::kMaxInvalidationPaths, cdn::kMaxInvalidationPaths));
  }
  c.paths.max_paths = static_cast<std::size_t>(s.max_paths.value_or(1000));
  if (s.url_prefix) {
    auto prefix = cdn::NormalizeUrlPrefix(*s.url_prefix);
    if (!prefix) return std::unexpected(prefix.error());
    c.url_prefix = *prefix;
  }
  c.paths.max_wildcards = static_cast<std::size_t>(s.max_wildcards.value_or(8));
  c.paths.skip = s.cdn_skip;
  c.paths.invalidate_new = s.invalidate_new.value_or(true);
  c.wait = s.wait.value_or(false);
  return c;
}

aws::Result<CdnResolved> ResolveCdn(const Settings& s, const aws::EnvLookup& env) {
  auto c = ResolveCdn(s);
  if (!c) return c;
  // Only when CloudFront will be called: `--discard-owed` is local, and a partition without CloudFront (GovCloud)
  // must not stop a sync that invalidates nothing.
  if (c->distribution.empty() || s.discard_owed || !(c->enabled || s.command == "invalidate")) return c;
  std::optional<aws::ConfiguredUrl> explicit_url;
  if (s.cloudfront_endpoint) {
    explicit_url = aws::ConfiguredUrl{c->endpoint.endpoint, "--cloudfront-endpoint (cdn.endpoint in sitesync.yaml)"};
  }
  auto settings = ResolveEndpointSettings(s, env);
  if (!settings) return std::unexpected(settings.error());
  const std::string region = aws::ResolveRegion(s.region.value_or(""), s.profile.value_or(""), env);
  auto resolved = aws::ResolveEndpoint(*settings, aws::EndpointService::kCloudFront, region, explicit_url);
  if (!resolved) return std::unexpected(resolved.error());
  c->endpoint.endpoint = resolved->url;
  c->endpoint.region = resolved->signing_region;
  c->endpoint_source = resolved->source;
  return c;
}

int Run(const Settings& settings) {
  if (settings.command == "init") return RunInit(settings);
  return Runner(settings).Run();
}

}  // namespace sitesync::cli
