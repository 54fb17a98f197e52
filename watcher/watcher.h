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

}  // namespace sitesync::watcher
