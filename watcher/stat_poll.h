// watcher/stat_poll.h: PRIVATE to watcher/. The polling source's snapshots and their comparison, split out of
// stat_poll_source.cc so that tests drive a poller with their own clock and use snapshots as the naive reference
// the inotify source is held against. Not part of the public API.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "sitemap/sitemap.h"
#include "watcher/watcher.h"

namespace sitesync::watcher::internal {

/// What a poll compares per published path.
struct StatEntry {
  std::uint64_t size = 0;
  std::int64_t mtime_ns = 0;
  std::uint64_t dev = 0;
  std::uint64_t ino = 0;   ///< Of the file read (through a followed symlink: its target).
  bool via_link = false;   ///< The path itself is a symlink (a file swapped for a link is a change).
  friend bool operator==(const StatEntry&, const StatEntry&) = default;
};

/// Every file sync would publish (sitemap::Walk: its filters and symlink rules), by rel path.
struct Snapshot {
  std::string root;  ///< The canonical root it was taken under.
  std::map<std::string, StatEntry> files;
  std::vector<std::string> incomplete_folders;  ///< Could not be read in full (sitemap::SiteMap's).
};

/// Walks `root` and stats what the walk keeps. Fails as sitemap::Walk does (kInput when the root is gone).
[[nodiscard]] Result<Snapshot> TakeSnapshot(const std::filesystem::path& root, const sitemap::WalkOptions& filters);

/// The paths whose entry differs between `before` and `after` (new, gone or changed), sorted. Files under a
/// folder of `after` that could not be read are not taken for gone.
[[nodiscard]] std::vector<std::string> DiffSnapshots(const Snapshot& before, const Snapshot& after);

/// The comparing half of the polling source: time comes in as arguments.
class StatPoller {
 public:
  StatPoller(std::filesystem::path root, sitemap::WalkOptions filters, Log log, std::chrono::milliseconds interval);

  /// The first snapshot (nothing reported: the caller syncs everything at start). Fails with kInput when the
  /// root is not a folder.
  [[nodiscard]] Result<void> Start(Clock::time_point now);
  /// When the next poll is due.
  Clock::time_point NextPoll() const { return next_; }
  /// Takes a snapshot and adds every changed path to `sink`. While the root is gone the sink is held; when it is
  /// back, or leads elsewhere (a symlinked root retargeted), a rescan is asked for. Returns whether anything
  /// was added.
  bool Poll(Coalescer& sink, Clock::time_point now);
  /// Polls taken since Start (for tests).
  int Polls() const { return polls_; }

 private:
  void LogOnce(const std::string& kind, std::string_view message);

  std::filesystem::path root_;
  sitemap::WalkOptions filters_;
  Log log_;
  std::chrono::milliseconds interval_;
  Snapshot last_;
  bool gone_ = false;
  Clock::time_point next_{};
  int polls_ = 0;
  std::vector<std::string> logged_;
};

}  // namespace sitesync::watcher::internal
