// The watch loop's policy: batches, the delete window and the retry timer. Pure logic: the events come from an
// EventSource, the time from a TimeSource, and the publishing is somebody else's (cli/ wires sync/ and cdn/).
#include <algorithm>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "watcher/watcher.h"

namespace sitesync::watcher {
namespace {

class Steady final : public TimeSource {
 public:
  Clock::time_point Now() const override { return Clock::now(); }
};

std::string Seconds(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return fmt::format("{} s", d.count() / 1000);
  return fmt::format("{:.1f} s", static_cast<double>(d.count()) / 1000.0);
}

// "retrying 3 failed paths and the invalidation in 10 s": what is tried again, and when.
std::string RetryNote(std::size_t paths, bool rescan, bool invalidation, std::chrono::milliseconds in) {
  std::vector<std::string> what;
  if (rescan) what.emplace_back("the rescan");
  if (paths > 0) what.push_back(fmt::format("{} failed path{}", paths, paths == 1 ? "" : "s"));
  if (invalidation) what.emplace_back("the owed invalidation");
  std::string joined;
  for (std::size_t i = 0; i < what.size(); ++i) {
    if (i > 0) joined += i + 1 == what.size() ? " and " : ", ";
    joined += what[i];
  }
  return fmt::format("retrying {} in {}", joined, Seconds(in));
}

}  // namespace

const TimeSource& SteadyTime() {
  static const Steady steady;
  return steady;
}

SchedulerOptions ForPolling(SchedulerOptions options, std::chrono::milliseconds interval) {
  options.quiet += interval;
  options.max_delay = std::max(options.max_delay, options.quiet);
  return options;
}

Scheduler::Scheduler(EventSource& source, Publisher& publisher, const TimeSource& time, SchedulerOptions options,
                     Log log)
    : source_(source),
      publisher_(publisher),
      time_(time),
      options_(options),
      log_(std::move(log)),
      changes_(options.quiet, options.max_delay),
      backoff_(options.retry_first) {}

void Scheduler::Seed(const PublishOutcome& outcome) { Absorb(PublishRequest{}, outcome, time_.Now()); }

bool Scheduler::DeleteWindowOpen(Clock::time_point now) const {
  // Never while the root is gone (a generator's `rm -rf public`): everything looks deleted then.
  if (changes_.Held()) return false;
  std::optional<Clock::time_point> quiet_since = changes_.LastActivity();
  if (held_seen_) quiet_since = quiet_since ? std::max(*quiet_since, *held_seen_) : *held_seen_;
  return !quiet_since || now >= *quiet_since + options_.delete_delay;
}

std::optional<Clock::time_point> Scheduler::DeletesDueAt() const {
  // While a batch is pending, its deadline comes first (and its activity restarts the window anyway).
  if (pending_deletes_.empty() || changes_.Held() || changes_.Deadline()) return std::nullopt;
  std::optional<Clock::time_point> quiet_since = changes_.LastActivity();
  if (held_seen_) quiet_since = quiet_since ? std::max(*quiet_since, *held_seen_) : *held_seen_;
  if (!quiet_since) return Clock::time_point{};  // Nothing ever happened: due at once.
  return *quiet_since + options_.delete_delay;
}

bool Scheduler::RetryWaits() const {
  // While the root is gone (its return brings a rescan), or while a batch is pending: that batch takes the
  // failures along.
  return changes_.Held() || changes_.Deadline().has_value();
}

std::optional<Clock::time_point> Scheduler::NextDeadline() const {
  std::optional<Clock::time_point> next = changes_.Deadline();
  const std::optional<Clock::time_point> retry = RetryWaits() ? std::nullopt : retry_at_;
  for (const auto& t : {DeletesDueAt(), retry}) {
    if (t && (!next || *t < *next)) next = t;
  }
  return next;
}

void Scheduler::Absorb(const PublishRequest& request, const PublishOutcome& outcome, Clock::time_point now) {
  pending_deletes_.insert(outcome.held_deletes.begin(), outcome.held_deletes.end());
  if (outcome.not_run) {
    retry_paths_.insert(request.paths.begin(), request.paths.end());
    if (request.rescan && !retry_rescan_) {
      retry_rescan_ = true;
      retry_rescan_reason_ = request.rescan_reason;
    }
  }
  retry_paths_.insert(outcome.failed.begin(), outcome.failed.end());
  retry_invalidation_ = retry_invalidation_ || outcome.invalidation_failed;
  const bool failed = outcome.not_run || !outcome.failed.empty() || outcome.invalidation_failed;
  if (failed) {
    retry_at_ = now + backoff_;
    if (log_) log_(RetryNote(retry_paths_.size(), retry_rescan_, retry_invalidation_, backoff_));
    backoff_ = std::min(backoff_ * 2, options_.retry_max);
    return;
  }
  if (retry_paths_.empty() && !retry_rescan_ && !retry_invalidation_) {
    // Everything went: the next failure starts again at the first wait.
    retry_at_.reset();
    backoff_ = options_.retry_first;
  }
}

void Scheduler::Publish(PublishRequest request, Clock::time_point now) {
  const PublishOutcome outcome = publisher_.Publish(request);
  Absorb(request, outcome, std::max(now, time_.Now()));
}

Result<void> Scheduler::Step(const std::function<bool()>& stop) {
  if (auto waited = source_.Wait(NextDeadline(), changes_); !waited) return waited;
  Clock::time_point now = time_.Now();
  // The window counts from the root's return too: a root seen gone (or seen back) is activity.
  if (changes_.Held() || was_held_) held_seen_ = now;
  was_held_ = changes_.Held();
  if (!changes_.Empty() && !first_change_) first_change_ = now;
  if (stop && stop()) return {};

  if (changes_.Due(now)) {
    const bool window_open = DeleteWindowOpen(now);
    Changes taken = changes_.Take();
    const Clock::time_point since = first_change_.value_or(now);
    first_change_.reset();
    if (!taken.Empty()) {
      PublishRequest request{std::move(taken.paths), taken.rescan, std::move(taken.rescan_reason),
                             window_open ? DeleteMode::kWith : DeleteMode::kHold, since};
      // Failures waiting for the timer go along (the batch retries them anyway); the timer restarts from its
      // outcome.
      if (retry_at_) {
        request.paths.insert(retry_paths_.begin(), retry_paths_.end());
        if (retry_rescan_ && !request.rescan) {
          request.rescan = true;
          request.rescan_reason = retry_rescan_reason_;
        }
        retry_paths_.clear();
        retry_rescan_ = false;
        retry_invalidation_ = false;
        retry_at_.reset();
      }
      Publish(std::move(request), now);
      now = time_.Now();
    }
  }

  // The held deletes, once the tree has been quiet for the window and nothing waits to be published first.
  if (const auto due = DeletesDueAt(); due && now >= *due) {
    PublishRequest request{std::move(pending_deletes_), false, "", DeleteMode::kOnly, now};
    pending_deletes_.clear();
    Publish(std::move(request), now);
    now = time_.Now();
  }

  if (retry_at_ && now >= *retry_at_ && !RetryWaits()) {
    PublishRequest request{std::move(retry_paths_), retry_rescan_, std::move(retry_rescan_reason_),
                           DeleteWindowOpen(now) ? DeleteMode::kWith : DeleteMode::kHold, now};
    retry_paths_.clear();
    retry_rescan_ = false;
    retry_rescan_reason_.clear();
    retry_invalidation_ = false;
    retry_at_.reset();
    Publish(std::move(request), now);
  }
  return {};
}

Result<void> Scheduler::Run(const std::function<bool()>& stop) {
  while (!(stop && stop())) {
    if (auto stepped = Step(stop); !stepped) return stepped;
  }
  return {};
}

}  // namespace sitesync::watcher
