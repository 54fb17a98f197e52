// watcher/: sees a site folder change and hands out coalesced sets of changed paths, or "rescan needed"; never
// raw inotify events. Needs no network.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "base/result.h"
#include "sitemap/sitemap.h"

namespace sitesync::watcher {

using Clock = std::chrono::steady_clock;

/// One batch of changes: the paths (relative to the root, '/'-separated; files or folders) that may have been
/// written, created, moved or deleted. Deciding is done by stat-ing them, so a path listed for nothing is harmless.
struct Changes {
  std::set<std::string> paths;
  bool rescan = false;       ///< Walk and diff everything (queue overflow, unknown watch, failed add_watch, ...).
  std::string rescan_reason; ///< Why, for the log (the first reason given).
  bool Empty() const { return paths.empty() && !rescan; }
};

/// Coalesces changes by path until the tree has been quiet for `quiet`, with a cap of `max_delay` from the first
/// change of a batch so that a continuous stream still flushes. Pure: time comes in as arguments.
class Coalescer {
 public:
  Coalescer(std::chrono::milliseconds quiet, std::chrono::milliseconds max_delay);

  /// Something happened to `rel_path` at `now` (restarts the quiet period).
  void Add(std::string rel_path, Clock::time_point now);
  /// A full rescan is needed; `reason` is kept if it is the first of this batch.
  void AddRescan(std::string reason, Clock::time_point now);
  /// Activity that restarts the quiet period without naming a path (e.g. a file still being written).
  void Touch(Clock::time_point now);
  /// Holds flushing back (e.g. while the root folder is gone); Release lets it go again.
  void Hold(bool on) { held_ = on; }
  /// True while held (for tests and status output).
  bool Held() const { return held_; }

  /// True when no path and no rescan is pending (a batch of only Touch-es is Empty but still has a Deadline).
  bool Empty() const { return pending_.Empty(); }
  /// The latest activity (Add, AddRescan, Touch) ever seen, kept across Take; nullopt before the first. The
  /// delete window counts from it: the tree is quiet since then.
  std::optional<Clock::time_point> LastActivity() const { return last_seen_; }
  /// When the batch is due: min(last change + quiet, first change + max_delay), Touch-es included; nullopt when
  /// nothing happened since the last Take, or while held.
  std::optional<Clock::time_point> Deadline() const;
  bool Due(Clock::time_point now) const;
  /// The batch; the coalescer is empty afterwards.
  Changes Take();

 private:
  std::chrono::milliseconds quiet_;
  std::chrono::milliseconds max_delay_;
  Changes pending_;
  Clock::time_point first_{};
  Clock::time_point last_{};
  bool active_ = false;  ///< Something (even a Touch) happened since the last Take: first_/last_ are valid.
  bool held_ = false;
  std::optional<Clock::time_point> last_seen_;
};

/// The temp-file rule (`*.swp`, `*~`, `4913`, `*.tmp`, dotfiles): one function for sync and watch, in sitemap/.
using sitemap::IsTempFile;

/// Where changes come from. The real one is inotify; tests use a fake.
class EventSource {
 public:
  virtual ~EventSource() = default;
  /// Blocks until there are events, `deadline` passes (nullopt: no deadline) or Interrupt is called; adds what
  /// it saw to `sink`. An Error here is fatal for the watcher (e.g. the inotify descriptor failed).
  [[nodiscard]] virtual Result<void> Wait(std::optional<Clock::time_point> deadline, Coalescer& sink) = 0;
  /// Wakes a blocked Wait. Async-signal-safe (a write to an eventfd).
  virtual void Interrupt() = 0;
};

/// Warnings and notes from the watcher (logged once per reason by the caller's policy).
using Log = std::function<void(std::string_view)>;

/// How a source looks at SOURCE (config keys watch.rescan_interval_s and watch.poll_ms).
struct SourceOptions {
  /// How often a folder whose inotify watch could not be added (ENOSPC, EMFILE) is rescanned instead.
  std::chrono::seconds rescan_interval{30};
};

/// The inotify source: watches `root` recursively (adding each new folder's watch BEFORE listing it, and
/// reporting every file found in it as changed), skipping what `filters` exclude and temp files. IN_CLOSE_WRITE
/// and IN_MOVED_TO mean content is ready; IN_MODIFY only restarts the quiet period; deletes and moves out mean
/// "maybe gone". IN_Q_OVERFLOW, an unknown watch descriptor or a failed add_watch ask for a rescan (ENOSPC names
/// the sysctl to raise). When the root itself goes away, flushing is held until it is back, then a rescan is
/// asked for. Sees what sync sees: folders reached through symlinks that sync follows (inside `root`, no loops)
/// are watched at their real paths and reported under the links' paths too; when `root` is a symlink, its
/// parent folder is watched for it being replaced (`ln -sfn`), and then the new target is watched and a rescan
/// asked for. A folder whose watch cannot be added (ENOSPC, EMFILE) is warned about once (naming the sysctl)
/// and reported every `options.rescan_interval` (sync walks it whole) until its watch can be added.
/// Fails with kInput when `root` is not a folder.
[[nodiscard]] Result<std::unique_ptr<EventSource>> MakeInotifySource(const std::filesystem::path& root,
                                                                          const sitemap::WalkOptions& filters,
                                                                          Log log, SourceOptions options = {});

/// The polling source, for where inotify is silent (NFS, some container bind mounts, WSL's /mnt/c): every
/// `interval`, walks `root` with sitemap::Walk (the same filters and symlink rules as sync) and compares the
/// snapshot (size, mtime ns, inode and type per path) with the last one; every path that differs is added to
/// the sink, so the same batching, settle and delete rules apply. A root that is gone holds the sink until it
/// is back, then asks for a rescan (as does a symlinked root that now leads elsewhere). Fails with kInput when
/// `root` is not a folder, kUsage when `interval` is not positive.
[[nodiscard]] Result<std::unique_ptr<EventSource>> MakePollSource(const std::filesystem::path& root,
                                                                       const sitemap::WalkOptions& filters,
                                                                       Log log, std::chrono::milliseconds interval);

// ---- The watch loop's policy: when changes go, when a disappearance may become a delete, when a failed batch is
// tried again. Pure logic over an EventSource, a Publisher and a TimeSource, so that a test drives it with fakes.

/// What a batch may do about files that are gone.
enum class DeleteMode {
  kWith,  ///< Uploads and deletes together (the delete window is open: the tree has been quiet long enough).
  kHold,  ///< Uploads only; the keys that would be deleted come back in PublishOutcome::held_deletes.
  kOnly,  ///< Deletes only, each re-checked by the batch's own stat: a path that exists again is not deleted.
};

/// One batch asked of the publish step.
struct PublishRequest {
  std::set<std::string> paths;  ///< Relative to the root, files or folders; decided by stat-ing them.
  bool rescan = false;          ///< Walk and diff everything instead of `paths`.
  std::string rescan_reason;
  DeleteMode deletes = DeleteMode::kHold;
  Clock::time_point since{};  ///< When the batch's first change was seen (for the summary's seconds).
};

/// What a batch did, as far as the policy needs to know.
struct PublishOutcome {
  /// Paths (relative to the root) whose remote object would have been deleted under DeleteMode::kHold.
  std::set<std::string> held_deletes;
  /// Paths whose upload or delete failed after its retries: tried again on the retry timer.
  std::set<std::string> failed;
  /// The invalidation failed and its paths stay owed: submitted again on the retry timer.
  bool invalidation_failed = false;
  /// The batch could not run at all (e.g. the walk failed); the whole request is tried again on the timer.
  bool not_run = false;
};

/// The step that publishes a batch (cli/ implements it over sync::Session and the CDN, with the invalidation
/// after it). Synchronous; it reports to the user itself.
class Publisher {
 public:
  virtual ~Publisher() = default;
  /// Publishes one batch and says what failed and what was held back; never fails as a whole (a batch that
  /// could not run says so in PublishOutcome::not_run).
  virtual PublishOutcome Publish(const PublishRequest& request) = 0;
};

/// Where the policy reads the time. Must agree with the time points an EventSource gives the Coalescer.
class TimeSource {
 public:
  virtual ~TimeSource() = default;
  /// The current time on the watcher's Clock.
  virtual Clock::time_point Now() const = 0;
};

/// Clock::now().
[[nodiscard]] const TimeSource& SteadyTime();

struct SchedulerOptions {
  std::chrono::milliseconds quiet{200};      ///< watch.debounce_ms
  std::chrono::milliseconds max_delay{2000};  ///< watch.max_delay_ms
  /// watch.delete_delay_ms: a disappearance becomes a delete only once the whole tree has been quiet this long
  /// (and never while the root folder is gone). 0: deletes go with the batch that saw them.
  std::chrono::milliseconds delete_delay{2000};
  std::chrono::milliseconds retry_first{5000};   ///< The first retry of a failed batch comes after this long,
  std::chrono::milliseconds retry_max{300000};   ///< doubling on every failure up to this.
};

/// The options for a polling source taking a snapshot every `interval`: a path is settled only once one more
/// poll has found it unchanged ("quiet since"), so the quiet period (and the max delay, at least as long) grow
/// by `interval`. A file still being written then keeps restarting the quiet period, as IN_MODIFY does.
[[nodiscard]] SchedulerOptions ForPolling(SchedulerOptions options, std::chrono::milliseconds interval);

/// The watch loop's policy. Changes from `source` are coalesced (quiet period, max delay) and published as one
/// batch with deletes held back (DeleteMode::kHold); the held deletes go in a batch of their own (kOnly) once the
/// tree has been quiet for delete_delay, counted from the last event and from the root folder's return, so a
/// file that a rebuild writes again within the window is never deleted. What failed after its retries (paths,
/// the invalidation, a batch that could not run) is tried again on a timer, retry_first doubling to retry_max,
/// reset by a batch that fails nothing; a batch made by a change meanwhile takes the failures along (the
/// publish step retries failed uploads and owed paths with every batch), and no retry runs while the root is
/// gone. Each scheduled retry is told through `log` ("retrying 3 failed paths in 10 s").
class Scheduler {
 public:
  Scheduler(EventSource& source, Publisher& publisher, const TimeSource& time, SchedulerOptions options, Log log);

  /// Takes the initial sync's outcome: its failures are retried on the timer like a batch's.
  void Seed(const PublishOutcome& outcome);
  /// One round: waits for events, interruption or the next deadline, then (unless `stop` says so) publishes
  /// what is due: the coalesced batch, then the held deletes, then a retry. Fails when the source fails.
  [[nodiscard]] Result<void> Step(const std::function<bool()>& stop = {});
  /// Steps until `stop` returns true (checked after every wait) or the source fails.
  [[nodiscard]] Result<void> Run(const std::function<bool()>& stop);

  /// The earliest time something is due: the batch, the delete window or the retry; nullopt: only events.
  [[nodiscard]] std::optional<Clock::time_point> NextDeadline() const;
  /// Paths whose delete waits for the window (for tests and status).
  const std::set<std::string>& PendingDeletes() const { return pending_deletes_; }
  /// When failures are tried again; nullopt when nothing failed.
  std::optional<Clock::time_point> RetryAt() const { return retry_at_; }
  /// The wait before the next retry after another failure.
  std::chrono::milliseconds Backoff() const { return backoff_; }

 private:
  std::optional<Clock::time_point> DeletesDueAt() const;
  bool DeleteWindowOpen(Clock::time_point now) const;
  bool RetryWaits() const;
  void Publish(PublishRequest request, Clock::time_point now);
  void Absorb(const PublishRequest& request, const PublishOutcome& outcome, Clock::time_point now);

  EventSource& source_;
  Publisher& publisher_;
  const TimeSource& time_;
  SchedulerOptions options_;
  Log log_;
  Coalescer changes_;

  std::optional<Clock::time_point> first_change_;  ///< When the pending batch's first change was seen.
  std::optional<Clock::time_point> held_seen_;     ///< The last time the root was seen gone, or seen back.
  bool was_held_ = false;                          ///< Held at the previous look.
  std::set<std::string> pending_deletes_;

  // Failures waiting for the retry timer.
  std::set<std::string> retry_paths_;
  bool retry_rescan_ = false;
  std::string retry_rescan_reason_;
  bool retry_invalidation_ = false;
  std::optional<Clock::time_point> retry_at_;
  std::chrono::milliseconds backoff_;
};

}  // namespace sitesync::watcher
