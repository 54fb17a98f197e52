// watcher/inotify_events.h: PRIVATE to watcher/. The watch table of one root folder and what inotify events on
// it mean, split out of inotify_watcher.cc so that its test can feed it synthetic event buffers (a queue
// overflow needs a tiny fs.inotify.max_queued_events, which only root can set). Not part of the public API.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/result.h"
#include "sitemap/sitemap.h"
#include "watcher/watcher.h"

namespace sitesync::watcher::internal {

/// The message (and rescan reason) for a failed inotify_add_watch of folder `what` with `err` (an errno):
/// names the errno and, for ENOSPC, the sysctl to raise.
[[nodiscard]] std::string AddWatchFailure(std::string_view what, int err);

/// The message for a failed inotify_init1 with `err`: for EMFILE names fs.inotify.max_user_instances.
[[nodiscard]] std::string InitFailure(int err);

/// inotify_add_watch(2) as WatchTree calls it: returns the watch descriptor, or -1 with errno set. A seam, so
/// that a test can make one folder's watch fail with ENOSPC without lowering fs.inotify.max_user_watches.
using AddWatchFn = std::function<int(int fd, const char* path, std::uint32_t mask)>;

struct TreeOptions {
  /// SOURCE as the user named it (absolute, not resolved). When it is a symlink, its parent folder is watched
  /// for the link being replaced (`ln -sfn`); empty: the root itself.
  std::filesystem::path given_root;
  /// How often folders whose watch could not be added (ENOSPC, ...) are rescanned, and their watch tried again.
  std::chrono::seconds rescan_interval{30};
  AddWatchFn add_watch;  ///< Empty: the real inotify_add_watch.
};

/// The watches of one root folder, on an inotify descriptor owned by the caller, and the meaning of the events
/// read from it. Single-threaded; the descriptor is only used for inotify_add_watch/inotify_rm_watch.
class WatchTree {
 public:
  /// `root` must be absolute and canonical. `log` may be empty.
  WatchTree(int inotify_fd, std::filesystem::path root, sitemap::WalkOptions filters, Log log,
            TreeOptions options = {});

  /// Watches the root and every folder under it that the filters keep, each BEFORE it is listed. Reports no
  /// paths (the caller syncs everything at start), but a folder that cannot be watched asks `sink` for a
  /// rescan. Fails with kIo when the root itself cannot be watched (the message names the sysctl for ENOSPC),
  /// kInput when it is not a folder.
  [[nodiscard]] Result<void> Start(Coalescer& sink, Clock::time_point now);

  /// Interprets `bytes`: whole `struct inotify_event` records as read(2) returns them (the records are copied
  /// out, so any alignment will do). Adds paths, touches, rescans and holds to `sink`. Fails only when the root
  /// is gone and no folder above it can be watched to see it come back (fatal for the watcher).
  [[nodiscard]] Result<void> Process(std::span<const std::byte> bytes, Coalescer& sink, Clock::time_point now);

  /// When Tick has work to do (a folder that could not be watched is due for its rescan); nullopt: never.
  std::optional<Clock::time_point> NextTimer() const;
  /// At or after NextTimer(): tries the watch of every unwatched folder again, and reports each (the folder
  /// path: sync walks it whole), or, when it can now be watched, every file in it.
  [[nodiscard]] Result<void> Tick(Coalescer& sink, Clock::time_point now);

  /// False while the root folder is gone (flushing is held).
  bool RootPresent() const { return root_wd_ >= 0; }
  /// The watch descriptor of folder `rel` ("" is the root); nullopt when it is not watched.
  std::optional<int> WatchOf(const std::string& rel) const;
  /// Number of folders watched (the parent watch used while the root is gone not counted).
  std::size_t WatchCount() const { return wd_to_path_.size(); }
  /// How many rescans were asked for since construction.
  int Rescans() const { return rescans_; }
  /// The folders whose watch could not be added (rescanned every rescan_interval instead).
  const std::set<std::string>& Unwatched() const { return unwatched_; }
  /// The canonical root now watched (changes when a symlinked SOURCE is retargeted).
  const std::string& Root() const { return root_str_; }
  /// The paths a change at `real_rel` (a path on disk below the root) is published under: itself, then the paths
  /// through every followed symlink to a folder that leads to it (`latest -> posts/2024`: "posts/2024/a.html"
  /// -> also "latest/a.html").
  std::vector<std::string> Published(const std::string& real_rel) const;

 private:
  std::string AbsPath(std::string_view rel) const;
  bool FolderPruned(const std::string& rel) const;
  /// The published paths of `real_rel` the filters keep as a file (empty: ignored under every path).
  std::vector<std::string> KeptFilePaths(const std::string& real_rel) const;
  /// True when the folder at `real_rel` is pruned under every path it is published under.
  bool FolderPrunedEverywhere(const std::string& real_rel) const;
  /// When `rel` is a symlink that sync follows (as sitemap::Walk judges it: its target a folder or a regular
  /// file inside the root, not broken, not leading back to a folder that contains it), and the filters keep it
  /// under some path: its target (a real path below the root).
  std::optional<std::string> FollowedLink(const std::string& rel) const;
  void DropLinksUnder(const std::string& rel);
  /// Looks again at the symlink `rel` (appeared, replaced, or its target may have come or gone): records where
  /// it leads, watches a target folder not yet watched, and when that changed (or `force`), reports the link's
  /// paths before and after.
  void RecheckLink(const std::string& rel, bool force, bool report, Coalescer& sink, Clock::time_point now);
  /// RecheckLink for every symlink known (after folders came or went: a link may lead somewhere else now).
  void RecheckLinks(Coalescer& sink, Clock::time_point now);
  /// The symlinked SOURCE may point elsewhere now: when it does, drop every watch and watch the new tree.
  [[nodiscard]] Result<void> CheckRootTarget(Coalescer& sink, Clock::time_point now);
  /// Watches the folder holding a symlinked SOURCE (for `ln -sfn`), once.
  void ArmLinkParent();
  int CallAddWatch(const std::string& abs, std::uint32_t mask) const;
  void Unwatchable(const std::string& rel, int err, bool retrying, Coalescer& sink, Clock::time_point now);

  /// Watches folder `rel` and every kept folder under it, each before listing it; with `report`, Adds the
  /// folders and every file found. Returns false only when `rel` == "" could not be watched (root gone).
  bool WatchFolderTree(const std::string& rel, bool report, Coalescer& sink, Clock::time_point now,
                       bool retrying = false);
  /// inotify_add_watch for folder `rel` and records the watch; the errno when it failed. `existing` is set when
  /// the folder was already watched under that same path.
  std::expected<int, int> AddWatch(const std::string& rel, bool& existing);
  void Forget(int wd);
  /// Removes the watches of `rel` and every folder under it (a folder deleted or moved away).
  void DropSubtree(const std::string& rel);
  void DropAll();
  /// Walks the whole tree again after lost events, re-pointing every watch at its current path.
  [[nodiscard]] Result<void> Rewatch(Coalescer& sink, Clock::time_point now);
  /// One event; sets `rewatch` when the watch table can no longer be trusted.
  [[nodiscard]] Result<void> HandleEvent(int wd, std::uint32_t mask, std::string_view name, Coalescer& sink,
                                              Clock::time_point now, bool& rewatch);

  void RootGone(std::string_view why, Coalescer& sink, Clock::time_point now);  // Hold(true), drop every watch.
  /// While the root is gone: watches the nearest existing folder above it, or, when the root is back, watches
  /// it again (Hold(false) and a rescan).
  [[nodiscard]] Result<void> ArmRootReturn(Coalescer& sink, Clock::time_point now);

  void Rescan(const std::string& kind, std::string reason, Coalescer& sink, Clock::time_point now);
  void LogOnce(const std::string& kind, std::string_view message);

  int fd_;
  std::filesystem::path root_;
  std::string root_str_;
  sitemap::WalkOptions filters_;
  Log log_;
  TreeOptions options_;
  std::string given_str_;  ///< SOURCE as named (absolute); equal to root_str_ unless a symlink leads there.

  /// Followed symlinks: the link's real path below the root -> its target's real path below the root.
  std::map<std::string, std::string> links_;
  /// Every symlink seen in a watched folder (followed or not: a broken one may be mended), by real path.
  std::set<std::string> symlinks_;
  /// Folders whose watch could not be added; rescanned from NextTimer() on.
  std::set<std::string> unwatched_;
  std::optional<Clock::time_point> next_retry_;
  int link_parent_wd_ = -1;  ///< The folder holding a symlinked SOURCE.
  std::string link_name_;    ///< The symlinked SOURCE's name in it.

  int root_wd_ = -1;
  std::unordered_map<int, std::string> wd_to_path_;
  std::map<std::string, int> path_to_wd_;  ///< Ordered: the folders under one are found by range.
  /// Watches removed by us whose IN_IGNORED has not been read yet: their late events are dropped, not taken
  /// for "unknown watch descriptor".
  std::set<int> removed_;

  int last_root_errno_ = 0;  ///< Why the root's watch failed, when WatchFolderTree("") returned false.
  int ancestor_wd_ = -1;     ///< While the root is gone: the watch on the nearest existing folder above it.
  std::string next_name_;    ///< The folder below the ancestor on the way to the root.

  int rescans_ = 0;
  std::set<std::string> logged_;
};

}  // namespace sitesync::watcher::internal
