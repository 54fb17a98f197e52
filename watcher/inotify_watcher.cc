// watcher/inotify_watcher.cc: the inotify EventSource, on the kernel's inotify API.
//
// Why not libinotifytools (Debian 12's libinotifytools0 3.22.6; read from its inotifytools.c): it cannot meet
// these points of the issue, so it is not used (and not linked):
// - Waking a blocked wait without polling: inotifytools_next_events() blocks in select() on its own descriptor
//   (`static int inotify_fd`, with no accessor), so an eventfd cannot be waited on beside it. Its timeout is in
//   whole seconds (`read_timeout.tv_sec = timeout`), so a 300 ms debounce deadline cannot be honoured either; the
//   only way out would be waking every few hundred ms (polling). A signal only helps if it lands inside select()
//   (EINTR); one arriving just before select() is lost, the classic race an eventfd exists to close.
// - Process-global state: one static descriptor, static event buffer, static `first_byte` cursor, a setjmp/longjmp
//   for filtered events, global stats and regex. Two watchers cannot coexist in one process (a test that builds
//   several sources, or `watch` beside anything else using it), and nothing is thread-safe.
// - Watch before list: inotifytools_watch_recursively() opendir()s a folder, recurses into its subfolders and only
//   then adds the folder's own watch (`closedir(dir); inotifytools_watch_file(my_path, ...)` at the end), the
//   reverse of the order that keeps files written between mkdir and the watch; and it reports nothing of what it
//   found. Its exclude list compares exact path strings, not our globs.
// - It reads one read(2) per call from a blocking descriptor (inotify_init(), no IN_NONBLOCK), so "read until
//   EAGAIN" is not available, and when asked for several events it busy-loops on FIONREAD until enough are queued.
// - Moved-away subtrees: its public API removes one watch by wd or exact path and cannot enumerate the watches
//   under a folder, so dropping a subtree needs our own wd <-> path table anyway (and its path strings would
//   have to be kept renamed with inotifytools_replace_filename beside ours).
// What it would have given (IN_Q_OVERFLOW and unknown wds are passed through; ENOSPC via inotifytools_error())
// is a few lines here. The event interpretation lives in WatchTree (inotify_events.h) so that its test can feed
// synthetic buffers (queue overflow, unknown watch descriptors) that a test cannot provoke without root.

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <expected>
#include <utility>
#include <vector>

#include <fmt/core.h>

#include "watcher/inotify_events.h"
#include "watcher/watcher.h"

namespace sitesync::watcher {
namespace internal {
namespace {

// Every folder watch. IN_ONLYDIR: a folder replaced by a file between the event and the watch fails with ENOTDIR
// instead of watching the file. IN_EXCL_UNLINK: no events for files already unlinked but still open.
// No IN_ATTRIB: sync compares sizes or checksums, which `touch` and chmod do not change.
constexpr std::uint32_t kFolderMask = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_CLOSE_WRITE |
                                      IN_MODIFY | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_EXCL_UNLINK;
// Folders below the root are never watched through a symlink (watching through them could watch one folder
// under two paths or loop). The folders that sync reaches through links are watched at their real paths
// instead, and their events reported under the links' paths too (WatchTree::Published). The root was made
// canonical, so it is no link, but a generator might recreate it as one.
constexpr std::uint32_t kSubfolderMask = kFolderMask | IN_DONT_FOLLOW;
// Folders outside the root: while the root is gone, the nearest existing folder above it, for the next folder
// down to (re)appear; when SOURCE is a symlink, the folder holding it, for the link being replaced (`ln -sfn`).
// One mask for both, since both may be the same folder (one watch descriptor, whose mask the last add sets).
constexpr std::uint32_t kParentMask =
    IN_CREATE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR;
// More aliases than this for one path only come from links that lead into each other (which the walk refuses
// past the first turn); reporting is harmless, so the list is cut rather than the links judged again.
constexpr std::size_t kMaxAliases = 64;

std::string ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  return name != nullptr ? std::string(name) : fmt::format("errno {}", err);
}

std::string ErrnoText(int err) {
  const char* text = strerrordesc_np(err);  // Thread-safe, unlike strerror().
  return text != nullptr ? std::string(text) : ErrnoName(err);
}

std::string Join(std::string_view folder, std::string_view name) {
  std::string out;
  out.reserve(folder.size() + 1 + name.size());
  out += folder;
  if (!out.empty()) out += '/';
  out += name;
  return out;
}

bool IsFolder(const std::string& abs) {
  struct stat st {};
  return ::stat(abs.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

struct DirCloser {
  void operator()(DIR* d) const { ::closedir(d); }
};
using DirHandle = std::unique_ptr<DIR, DirCloser>;

struct FreeDeleter {
  void operator()(char* p) const { std::free(p); }
};

/// realpath(3), or nullopt.
std::optional<std::string> RealPath(const std::string& path) {
  const std::unique_ptr<char, FreeDeleter> resolved(::realpath(path.c_str(), nullptr));
  if (!resolved) return std::nullopt;
  return std::string(resolved.get());
}

/// True when `path` is `base` or below it ('/'-separated relative paths; "" is the root and contains all).
bool Under(std::string_view path, std::string_view base) {
  if (base.empty()) return true;
  return path == base || (path.size() > base.size() && path.starts_with(base) && path[base.size()] == '/');
}

bool IsSymlink(const std::string& abs) {
  struct stat st {};
  return ::lstat(abs.c_str(), &st) == 0 && S_ISLNK(st.st_mode);
}

}  // namespace

std::string AddWatchFailure(std::string_view what, int err) {
  std::string message = fmt::format("watch {}: inotify_add_watch failed ({})", what, ErrnoName(err));
  switch (err) {
    case ENOSPC:
      // inotify(7): ENOSPC is "the user limit on the total number of inotify watches was reached".
      message += "; raise fs.inotify.max_user_watches (e.g. sysctl fs.inotify.max_user_watches=524288)";
      break;
    case EMFILE:
      message += "; raise fs.inotify.max_user_instances (e.g. sysctl fs.inotify.max_user_instances=512)";
      break;
    case ENOMEM:
      message += "; the kernel is out of memory for inotify watches";
      break;
    case EACCES:
      message += "; the folder is not readable";
      break;
    default:
      message += "; " + ErrnoText(err);
      break;
  }
  return message;
}

std::string InitFailure(int err) {
  std::string message = fmt::format("watch: inotify_init1 failed ({})", ErrnoName(err));
  if (err == EMFILE) {
    // inotify_init(2): EMFILE is either the per-user limit on inotify instances or the per-process fd limit.
    message +=
        "; raise fs.inotify.max_user_instances (e.g. sysctl fs.inotify.max_user_instances=512), or the open-file "
        "limit (ulimit -n)";
  } else {
    message += "; " + ErrnoText(err);
  }
  return message;
}

WatchTree::WatchTree(int inotify_fd, std::filesystem::path root, sitemap::WalkOptions filters, Log log,
                     TreeOptions options)
    : fd_(inotify_fd), root_(std::move(root)), root_str_(root_.string()), filters_(std::move(filters)),
      log_(std::move(log)), options_(std::move(options)) {
  std::filesystem::path given = options_.given_root.empty() ? root_ : options_.given_root.lexically_normal();
  if (!given.has_filename() && given.has_relative_path()) given = given.parent_path();  // "public/" -> "public"
  given_str_ = given.string();
  if (options_.rescan_interval <= std::chrono::seconds(0)) options_.rescan_interval = std::chrono::seconds(30);
}

int WatchTree::CallAddWatch(const std::string& abs, std::uint32_t mask) const {
  return options_.add_watch ? options_.add_watch(fd_, abs.c_str(), mask)
                            : ::inotify_add_watch(fd_, abs.c_str(), mask);
}

std::string WatchTree::AbsPath(std::string_view rel) const {
  if (rel.empty()) return root_str_;
  std::string abs = root_str_;
  if (abs.empty() || abs.back() != '/') abs += '/';  // The root may be "/".
  abs += rel;
  return abs;
}

bool WatchTree::FolderPruned(const std::string& rel) const {
  // As sitemap::Walk prunes: a hidden or excluded folder is skipped whole unless include globs exist (one of them
  // could pick a file out of it). ".well-known" is kept by Excluded().
  return !rel.empty() && filters_.include.empty() && sitemap::Excluded(rel + "/", filters_);
}

std::vector<std::string> WatchTree::Published(const std::string& real_rel) const {
  std::vector<std::string> out{real_rel};
  if (links_.empty()) return out;
  // A path below a followed link's target is also published below the link; that path may in turn be below
  // another link's target (a link inside a linked folder), hence the worklist.
  for (std::size_t i = 0; i < out.size() && out.size() < kMaxAliases; ++i) {
    const std::string path = out[i];
    for (const auto& [link, target] : links_) {
      if (!Under(path, target)) continue;
      std::string alias = link + path.substr(target.size());
      if (std::ranges::find(out, alias) == out.end()) out.push_back(std::move(alias));
      if (out.size() >= kMaxAliases) break;
    }
  }
  return out;
}

std::vector<std::string> WatchTree::KeptFilePaths(const std::string& real_rel) const {
  // sitemap::Excluded is the walk's rule: dot paths, temp files (sitemap::IsTempFile) and exclude globs, unless
  // an include glob brings the file back (e.g. `.htaccess`): what sync publishes is what is waited for.
  std::vector<std::string> paths = Published(real_rel);
  std::erase_if(paths, [&](const std::string& p) { return sitemap::Excluded(p, filters_); });
  return paths;
}

bool WatchTree::FolderPrunedEverywhere(const std::string& real_rel) const {
  if (!FolderPruned(real_rel)) return false;
  const std::vector<std::string> paths = Published(real_rel);
  return std::ranges::all_of(paths, [&](const std::string& p) { return FolderPruned(p); });
}

std::optional<std::string> WatchTree::FollowedLink(const std::string& rel) const {
  const std::string abs = AbsPath(rel);
  if (!IsSymlink(abs)) return std::nullopt;
  // The rules of sitemap::Walk: followed when the fully resolved target is a folder or regular file inside the
  // root; broken links and links outside are skipped (the walk warns about them, so we stay quiet).
  const std::optional<std::string> resolved = RealPath(abs);
  if (!resolved) return std::nullopt;
  struct stat st {};
  if (::stat(resolved->c_str(), &st) != 0 || !(S_ISDIR(st.st_mode) || S_ISREG(st.st_mode))) return std::nullopt;
  std::string target;
  if (*resolved == root_str_) {
    target.clear();
  } else if (root_str_ == "/") {
    target = resolved->substr(1);
  } else if (resolved->size() > root_str_.size() && resolved->starts_with(root_str_) &&
             (*resolved)[root_str_.size()] == '/') {
    target = resolved->substr(root_str_.size() + 1);
  } else {
    return std::nullopt;
  }
  // A loop: the target contains the link (the walk meets it as a folder it is already inside). `rel` is a real
  // path (folders are only ever watched at their real paths), so its parent is the folder the link is in.
  const std::size_t slash = rel.rfind('/');
  const std::string parent = slash == std::string::npos ? std::string() : rel.substr(0, slash);
  if (S_ISDIR(st.st_mode) && Under(parent, target)) return std::nullopt;
  // Hidden or excluded under every path it has, as a file and as a folder: the walk skips it.
  const std::vector<std::string> paths = Published(rel);
  if (std::ranges::all_of(paths, [&](const std::string& p) { return FolderPruned(p) && sitemap::Excluded(p, filters_); })) {
    return std::nullopt;
  }
  return target;
}

void WatchTree::DropLinksUnder(const std::string& rel) {
  std::erase_if(links_, [&](const auto& link) { return Under(link.first, rel); });
  std::erase_if(symlinks_, [&](const std::string& link) { return Under(link, rel); });
}

void WatchTree::RecheckLink(const std::string& rel, bool force, bool report, Coalescer& sink,
                            Clock::time_point now) {
  const std::optional<std::string> target = FollowedLink(rel);
  const auto old = links_.find(rel);
  const bool changed = old == links_.end() ? target.has_value() : (!target || *target != old->second);
  if (!changed && !force) return;
  const auto add_all = [&] {
    if (!report) return;
    for (const std::string& p : Published(rel)) {
      // For a folder: sync walks it whole. Skipped when the walk would skip it as a file and as a folder.
      if (!(FolderPruned(p) && sitemap::Excluded(p, filters_))) sink.Add(p, now);
    }
  };
  add_all();  // Where it led (and every path through it).
  if (target) {
    links_[rel] = *target;
    // A target folder gets the watches (one per inode; the link's path is not watchable without following
    // it); its events are reported under the link's paths too (Published).
    if (!path_to_wd_.contains(*target) && IsFolder(AbsPath(*target))) WatchFolderTree(*target, report, sink, now);
    add_all();  // Where it leads now.
  } else if (old != links_.end()) {
    links_.erase(old);
  }
}

void WatchTree::RecheckLinks(Coalescer& sink, Clock::time_point now) {
  const std::vector<std::string> all(symlinks_.begin(), symlinks_.end());
  for (const std::string& link : all) RecheckLink(link, false, true, sink, now);
}

void WatchTree::ArmLinkParent() {
  if (link_parent_wd_ >= 0 || !IsSymlink(given_str_)) return;
  const std::filesystem::path given(given_str_);
  const std::string parent = given.parent_path().string();
  const std::optional<std::string> parent_real = RealPath(parent);
  // A link inside its own target (`public -> .`) is watched as part of the tree already; a second add would
  // replace that watch's mask.
  if (!parent_real || *parent_real == root_str_ || *parent_real == "/" ||
      parent_real->starts_with(root_str_ + "/")) {
    return;
  }
  const int wd = CallAddWatch(parent, kParentMask);
  if (wd < 0) {
    LogOnce("link parent", AddWatchFailure(fmt::format("{} (to see the link {} replaced)", parent, given_str_),
                                           errno));
    return;
  }
  removed_.erase(wd);
  link_parent_wd_ = wd;
  link_name_ = given.filename().string();
}

Result<void> WatchTree::CheckRootTarget(Coalescer& sink, Clock::time_point now) {
  if (!RootPresent()) return ArmRootReturn(sink, now);
  const std::optional<std::string> resolved = RealPath(given_str_);
  if (resolved && *resolved == root_str_) return {};  // Replaced by a link to the same folder.
  if (!resolved || !IsFolder(*resolved)) {
    RootGone("link was removed or no longer leads to a folder", sink, now);
    return ArmRootReturn(sink, now);
  }
  // The atomic-release pattern (`ln -s new tmp && mv -T tmp public`): the old tree is intact, so nothing
  // under it would ever say so. Watch the new tree and walk it all.
  if (log_) log_(fmt::format("watch {}: now leads to {}; watching it and rescanning", given_str_, *resolved));
  DropAll();
  root_ = *resolved;
  root_str_ = *resolved;
  if (!WatchFolderTree("", false, sink, now)) {
    RootGone("is gone", sink, now);
    return ArmRootReturn(sink, now);
  }
  ++rescans_;
  sink.AddRescan(fmt::format("{} now leads to {}", given_str_, root_str_), now);
  return {};
}

void WatchTree::Unwatchable(const std::string& rel, int err, bool retrying, Coalescer& sink,
                            Clock::time_point now) {
  unwatched_.insert(rel);
  if (!next_retry_) next_retry_ = now + options_.rescan_interval;
  if (retrying) {
    // Still not watchable: this part is walked again instead, as the warning said.
    for (const std::string& p : Published(rel)) sink.Add(p, now);
    return;
  }
  // One warning per errno (the first folder is named; the limit is per user, so the rest follow).
  Rescan("add_watch " + ErrnoName(err),
         fmt::format("{}; until then it is rescanned every {} s (watch.rescan_interval_s)",
                     AddWatchFailure(AbsPath(rel), err), options_.rescan_interval.count()),
         sink, now);
}

std::optional<Clock::time_point> WatchTree::NextTimer() const {
  if (unwatched_.empty()) return std::nullopt;
  return next_retry_;
}

Result<void> WatchTree::Tick(Coalescer& sink, Clock::time_point now) {
  if (!next_retry_ || now < *next_retry_) return {};
  next_retry_.reset();
  if (!RootPresent()) return {};  // Watched whole again when it is back.
  const std::set<std::string> folders = std::exchange(unwatched_, {});
  for (const std::string& folder : folders) {
    if (!IsFolder(AbsPath(folder))) {
      for (const std::string& p : Published(folder)) sink.Add(p, now);  // Gone: sync sees what went with it.
      continue;
    }
    WatchFolderTree(folder, true, sink, now, /*retrying=*/true);
  }
  return {};
}

std::optional<int> WatchTree::WatchOf(const std::string& rel) const {
  const auto it = path_to_wd_.find(rel);
  if (it == path_to_wd_.end()) return std::nullopt;
  return it->second;
}

void WatchTree::LogOnce(const std::string& kind, std::string_view message) {
  if (logged_.insert(kind).second && log_) log_(message);
}

void WatchTree::Rescan(const std::string& kind, std::string reason, Coalescer& sink, Clock::time_point now) {
  ++rescans_;
  LogOnce(kind, reason);
  sink.AddRescan(std::move(reason), now);
}

std::expected<int, int> WatchTree::AddWatch(const std::string& rel, bool& existing) {
  existing = false;
  const std::string abs = AbsPath(rel);
  const int wd = CallAddWatch(abs, rel.empty() ? kFolderMask : kSubfolderMask);
  if (wd < 0) return std::unexpected(errno);
  removed_.erase(wd);  // Defensive: a live watch is never "removed".

  // inotify_add_watch on an inode already watched returns its wd: either the same folder again (a parent's
  // listing found it and now its own IN_CREATE arrives) or the folder under a new path (moved, with the move's
  // events still unread). The listing is current, so the new path wins.
  if (const auto it = wd_to_path_.find(wd); it != wd_to_path_.end()) {
    if (it->second == rel) {
      existing = true;
      return wd;
    }
    if (const auto old = path_to_wd_.find(it->second); old != path_to_wd_.end() && old->second == wd) {
      path_to_wd_.erase(old);
    }
    it->second = rel;
  } else {
    wd_to_path_.emplace(wd, rel);
  }
  // Another watch recorded under this path is an older folder of the same name (deleted or moved away, its
  // events unread): it no longer has this path, so let it go.
  if (const auto other = path_to_wd_.find(rel); other != path_to_wd_.end() && other->second != wd) {
    const int stale = other->second;
    ::inotify_rm_watch(fd_, stale);  // EINVAL when the kernel already removed it; its IN_IGNORED is queued.
    removed_.insert(stale);
    wd_to_path_.erase(stale);
    path_to_wd_.erase(other);
  }
  path_to_wd_[rel] = wd;
  if (rel.empty()) root_wd_ = wd;
  return wd;
}

bool WatchTree::WatchFolderTree(const std::string& rel, bool report, Coalescer& sink, Clock::time_point now,
                                bool retrying) {
  const auto add_all = [&](const std::string& real) {
    for (std::string& p : Published(real)) sink.Add(std::move(p), now);
  };
  std::vector<std::string> pending{rel};
  while (!pending.empty()) {
    std::string folder = std::move(pending.back());
    pending.pop_back();

    // The watch comes BEFORE the listing: whatever is created after this line gives an event, whatever was
    // created before it is in the listing (both, at worst: duplicates are harmless).
    bool existing = false;
    const auto wd = AddWatch(folder, existing);
    if (!wd) {
      const int err = wd.error();
      if (folder.empty()) {
        last_root_errno_ = err;
        return false;
      }
      if (report) add_all(folder);
      // Gone again, or replaced by a file: the events of its parent say so.
      if (err == ENOENT || err == ENOTDIR) continue;
      Unwatchable(folder, err, retrying, sink, now);
      continue;
    }
    if (report && !folder.empty()) add_all(folder);
    if (existing) continue;  // Listed when its watch was first added; events cover everything since.

    const std::string abs = AbsPath(folder);
    DirHandle dir(::opendir(abs.c_str()));
    if (!dir) {
      const int err = errno;
      if (err == ENOENT || err == ENOTDIR) continue;
      Rescan("opendir " + ErrnoName(err), fmt::format("watch {}: opendir failed ({})", abs, ErrnoName(err)), sink,
             now);
      continue;
    }
    for (;;) {
      errno = 0;
      const dirent* entry = ::readdir(dir.get());
      if (entry == nullptr) {
        if (const int err = errno; err != 0 && err != ENOENT) {
          Rescan("readdir " + ErrnoName(err), fmt::format("watch {}: readdir failed ({})", abs, ErrnoName(err)),
                 sink, now);
        }
        break;
      }
      const std::string_view name = entry->d_name;
      if (name == "." || name == "..") continue;
      std::string child = Join(folder, name);
      bool is_folder = entry->d_type == DT_DIR;
      bool is_link = entry->d_type == DT_LNK;
      if (entry->d_type == DT_UNKNOWN) {  // Some file systems do not fill d_type.
        struct stat st {};
        if (::fstatat(::dirfd(dir.get()), entry->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
        is_folder = S_ISDIR(st.st_mode);
        is_link = S_ISLNK(st.st_mode);
      }
      if (is_folder) {
        if (!FolderPrunedEverywhere(child)) pending.push_back(std::move(child));
        continue;
      }
      if (is_link) {
        // A link sync follows: its target's files are published under the link's path too, so a target folder
        // is watched (at its real path) even where nothing else leads to it.
        symlinks_.insert(child);
        if (const auto target = FollowedLink(child)) {
          links_[child] = *target;
          if (!path_to_wd_.contains(*target) && IsFolder(AbsPath(*target))) pending.push_back(*target);
          if (report) add_all(child);
          continue;
        }
        links_.erase(child);
      }
      if (report) {
        // Other symlinks too: sync decides whether to follow them.
        for (std::string& p : KeptFilePaths(child)) sink.Add(std::move(p), now);
      }
    }
  }
  return true;
}

void WatchTree::Forget(int wd) {
  const auto it = wd_to_path_.find(wd);
  if (it == wd_to_path_.end()) return;
  if (const auto p = path_to_wd_.find(it->second); p != path_to_wd_.end() && p->second == wd) path_to_wd_.erase(p);
  wd_to_path_.erase(it);
  if (wd == root_wd_) root_wd_ = -1;
}

void WatchTree::DropSubtree(const std::string& rel) {
  // In byte order "a" < "a b" < "a-b" < "a/x" < "a0": the folder itself, then [ "a/", "a0" ) is what is under it.
  std::string below = rel + '/';
  std::string after = rel + static_cast<char>('/' + 1);
  auto drop = [&](std::map<std::string, int>::iterator first, std::map<std::string, int>::iterator last) {
    for (auto it = first; it != last; ++it) {
      // EINVAL when the kernel removed it already (folder deleted); either way its IN_IGNORED is queued.
      ::inotify_rm_watch(fd_, it->second);
      removed_.insert(it->second);
      wd_to_path_.erase(it->second);
    }
    path_to_wd_.erase(first, last);
  };
  if (const auto self = path_to_wd_.find(rel); self != path_to_wd_.end()) drop(self, std::next(self));
  drop(path_to_wd_.lower_bound(below), path_to_wd_.lower_bound(after));
  DropLinksUnder(rel);
  std::erase_if(unwatched_, [&](const std::string& u) { return Under(u, rel); });
}

void WatchTree::DropAll() {
  for (const auto& [wd, path] : wd_to_path_) {
    ::inotify_rm_watch(fd_, wd);
    removed_.insert(wd);
  }
  wd_to_path_.clear();
  path_to_wd_.clear();
  root_wd_ = -1;
  links_.clear();
  symlinks_.clear();
  unwatched_.clear();
  next_retry_.reset();
}

Result<void> WatchTree::Rewatch(Coalescer& sink, Clock::time_point now) {
  // Events were lost (overflow) or the table is wrong (unknown wd): walk again, watch before list as always.
  // Watches of folders still there come back with the same wd and are re-pointed at their current paths; the
  // rest are removed.
  auto old = std::move(wd_to_path_);
  wd_to_path_.clear();
  path_to_wd_.clear();
  root_wd_ = -1;
  links_.clear();  // Found again by the walk, as are the folders that cannot be watched.
  symlinks_.clear();
  unwatched_.clear();
  next_retry_.reset();
  const bool root_ok = WatchFolderTree("", false, sink, now);
  for (const auto& [wd, path] : old) {
    if (wd_to_path_.contains(wd)) continue;
    ::inotify_rm_watch(fd_, wd);
    removed_.insert(wd);
  }
  if (root_ok) return {};
  RootGone("is gone", sink, now);
  return ArmRootReturn(sink, now);
}

void WatchTree::RootGone(std::string_view why, Coalescer& sink, Clock::time_point /*now*/) {
  LogOnce("root gone", fmt::format("watch {}: the root folder {}; waiting for it to come back", root_str_, why));
  sink.Hold(true);
  DropAll();
}

Result<void> WatchTree::ArmRootReturn(Coalescer& sink, Clock::time_point now) {
  // Site generators `rm -rf public` and write it again (Zola, Hugo with --cleanDestinationDir). Watch the
  // nearest existing folder above the root BEFORE checking whether the next folder down exists, so that its
  // creation is either seen by the check or reported by the watch.
  // SOURCE as named: when it is a symlink, it may come back leading somewhere else.
  const std::filesystem::path given(given_str_);
  for (int attempt = 0; attempt < 64; ++attempt) {
    if (IsFolder(given_str_)) {
      if (const auto resolved = RealPath(given_str_); resolved && *resolved != root_str_) {
        root_ = *resolved;
        root_str_ = *resolved;
      }
      if (WatchFolderTree("", true, sink, now)) {
        if (ancestor_wd_ >= 0) {
          if (ancestor_wd_ != link_parent_wd_) {
            ::inotify_rm_watch(fd_, ancestor_wd_);
            removed_.insert(ancestor_wd_);
          }
          ancestor_wd_ = -1;
        }
        ArmLinkParent();
        Rescan("root recreated", "root folder was recreated", sink, now);
        sink.Hold(false);
        return {};
      }
      if (last_root_errno_ != ENOENT && last_root_errno_ != ENOTDIR) {
        return Fail(ErrorCode::kIo, AddWatchFailure(root_str_, last_root_errno_));
      }
      continue;  // Gone again already.
    }
    std::filesystem::path above = given.parent_path();
    while (!IsFolder(above.string()) && above.has_relative_path()) above = above.parent_path();
    const int wd = CallAddWatch(above.string(), kParentMask);
    if (wd < 0) {
      const int err = errno;
      if (err == ENOENT || err == ENOTDIR) continue;
      return Fail(ErrorCode::kIo,
                       AddWatchFailure(fmt::format("{} (to see {} come back)", above.string(), root_str_), err));
    }
    if (ancestor_wd_ >= 0 && ancestor_wd_ != wd && ancestor_wd_ != link_parent_wd_) {
      ::inotify_rm_watch(fd_, ancestor_wd_);
      removed_.insert(ancestor_wd_);
    }
    removed_.erase(wd);
    ancestor_wd_ = wd;
    const std::filesystem::path down = given.lexically_relative(above);
    next_name_ = down.empty() ? std::string() : down.begin()->string();
    if (!IsFolder((above / next_name_).string())) return {};  // Armed: its creation will be an event.
  }
  return Fail(ErrorCode::kIo,
                   fmt::format("watch {}: the root folder and the folders above it keep changing; giving up",
                               root_str_));
}

Result<void> WatchTree::Start(Coalescer& sink, Clock::time_point now) {
  if (!IsFolder(root_str_)) {
    return Fail(ErrorCode::kInput, fmt::format("watch {}: not a folder", root_str_));
  }
  if (!WatchFolderTree("", false, sink, now)) {
    if (last_root_errno_ == ENOENT || last_root_errno_ == ENOTDIR) {
      return Fail(ErrorCode::kInput, fmt::format("watch {}: not a folder", root_str_));
    }
    return Fail(ErrorCode::kIo, AddWatchFailure(root_str_, last_root_errno_));
  }
  ArmLinkParent();
  return {};
}

Result<void> WatchTree::HandleEvent(int wd, std::uint32_t mask, std::string_view name, Coalescer& sink,
                                         Clock::time_point now, bool& rewatch) {
  if (mask & IN_Q_OVERFLOW) {  // wd is -1: events were dropped, nobody knows which.
    Rescan("overflow",
           "inotify queue overflowed (IN_Q_OVERFLOW); if this repeats, raise fs.inotify.max_queued_events",
           sink, now);
    rewatch = true;
    return {};
  }
  if (link_parent_wd_ >= 0 && wd == link_parent_wd_) {
    if (mask & IN_IGNORED) {
      link_parent_wd_ = -1;  // Its folder is gone: the root's own watch (or the ancestor's) takes over.
    } else if (!name.empty() && name == link_name_ &&
               (mask & (IN_CREATE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM))) {
      return CheckRootTarget(sink, now);
    }
    if (wd != ancestor_wd_) return {};
  }
  if (ancestor_wd_ >= 0 && wd == ancestor_wd_) {
    if (mask & IN_IGNORED) {  // The folder above went away too: find the next one up.
      ancestor_wd_ = -1;
      return ArmRootReturn(sink, now);
    }
    if (mask & (IN_DELETE_SELF | IN_MOVE_SELF)) {
      if (ancestor_wd_ != link_parent_wd_) {
        ::inotify_rm_watch(fd_, ancestor_wd_);
        removed_.insert(ancestor_wd_);
      }
      ancestor_wd_ = -1;
      return ArmRootReturn(sink, now);
    }
    // A folder, or (for a symlinked SOURCE) a link: ArmRootReturn looks at what it is.
    if ((mask & (IN_CREATE | IN_MOVED_TO)) && name == next_name_) return ArmRootReturn(sink, now);
    return {};
  }
  if (const auto r = removed_.find(wd); r != removed_.end()) {
    // A watch we removed: its late events are about a path we already reported. IN_IGNORED is its last.
    if (mask & IN_IGNORED) removed_.erase(r);
    return {};
  }
  const auto it = wd_to_path_.find(wd);
  if (it == wd_to_path_.end()) {
    if (mask & IN_IGNORED) return {};
    Rescan("unknown wd", fmt::format("inotify event for an unknown watch descriptor ({})", wd), sink, now);
    rewatch = true;
    return {};
  }
  if (wd == root_wd_ && (mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT | IN_IGNORED))) {
    RootGone((mask & IN_MOVE_SELF) ? "was moved away" : "was deleted", sink, now);
    return ArmRootReturn(sink, now);
  }
  if (mask & IN_IGNORED) {  // The kernel removed the watch (folder deleted, file system unmounted).
    Forget(wd);
    return {};
  }
  // A subfolder's own deletion or move is also reported, with its name, by its parent: handled there.
  if (mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT)) return {};
  if (name.empty()) return {};  // Anything else about the watched folder itself.

  const std::string rel = Join(it->second, name);
  const auto add_all = [&](const std::vector<std::string>& paths) {
    for (const std::string& p : paths) sink.Add(p, now);
  };
  if (mask & IN_ISDIR) {
    if (FolderPrunedEverywhere(rel)) {
      // Not watched for itself, but a link may lead into it (`stash -> .stash`, mended when it comes back).
      if (!symlinks_.empty()) RecheckLinks(sink, now);
      return {};
    }
    if (mask & (IN_CREATE | IN_MOVED_TO)) {
      // A new folder, or one moved in (never paired with a MOVED_FROM): watch it and everything in it, each
      // before listing it, and count every file found as changed.
      WatchFolderTree(rel, true, sink, now);
    } else if (mask & (IN_DELETE | IN_MOVED_FROM)) {
      // Maybe gone: the path is enough for sync; its watches (moved away: still alive) must not report under
      // this path any more.
      add_all(Published(rel));
      DropSubtree(rel);
    }
    // Links elsewhere may lead into this folder (now mended or broken).
    if (!symlinks_.empty()) RecheckLinks(sink, now);
    return {};
  }
  // Symlinks: a link gone or replaced changes every path through it.
  if (mask & (IN_DELETE | IN_MOVED_FROM | IN_CREATE | IN_MOVED_TO)) {
    const bool known = symlinks_.contains(rel);
    const bool now_link = (mask & (IN_CREATE | IN_MOVED_TO)) && IsSymlink(AbsPath(rel));
    if (known || now_link) {
      if (known) add_all(Published(rel));  // Where it led: sync walks the link's path whole.
      links_.erase(rel);
      symlinks_.erase(rel);
      if (now_link) {
        symlinks_.insert(rel);
        RecheckLink(rel, true, true, sink, now);
      }
      if (known || FollowedLink(rel)) return {};
    }
  }
  const std::vector<std::string> kept = KeptFilePaths(rel);
  if (kept.empty()) return {};
  if (mask & (IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM)) {
    add_all(kept);  // Content ready, or maybe gone: sync stats it.
  } else if (mask & IN_CREATE) {
    // A new regular file is still being written: wait for its IN_CLOSE_WRITE. A symlink (or a hard link, or a
    // fifo) gets no IN_CLOSE_WRITE, so it is ready now.
    struct stat st {};
    const std::string abs = AbsPath(rel);
    if (::lstat(abs.c_str(), &st) == 0 && (!S_ISREG(st.st_mode) || st.st_nlink > 1)) {
      add_all(kept);
    } else {
      sink.Touch(now);
    }
  } else if (mask & IN_MODIFY) {
    sink.Touch(now);  // Still being written: not ready, but the batch must wait.
  }
  return {};
}

Result<void> WatchTree::Process(std::span<const std::byte> bytes, Coalescer& sink, Clock::time_point now) {
  bool rewatch = false;
  std::size_t offset = 0;
  while (bytes.size() - offset >= sizeof(inotify_event)) {
    inotify_event event{};
    std::memcpy(&event, bytes.data() + offset, sizeof event);  // Copied: the buffer need not be aligned.
    const std::size_t record = sizeof event + event.len;
    if (record > bytes.size() - offset) {
      Rescan("truncated", "inotify returned a truncated event record", sink, now);
      rewatch = true;
      break;
    }
    // The name is NUL-padded to `len` bytes.
    const char* name = reinterpret_cast<const char*>(bytes.data() + offset + sizeof event);
    const std::string_view name_view(name, ::strnlen(name, event.len));
    offset += record;
    if (auto r = HandleEvent(event.wd, event.mask, name_view, sink, now, rewatch); !r) return r;
  }
  if (offset != bytes.size() && !rewatch) {
    Rescan("truncated", "inotify returned a truncated event record", sink, now);
    rewatch = true;
  }
  if (!rewatch) return {};
  // Events were lost: while the root is gone, that may have been the one saying it is back.
  return RootPresent() ? Rewatch(sink, now) : ArmRootReturn(sink, now);
}

}  // namespace internal

namespace {

/// A move-only file descriptor (aws/'s UniqueFd is private to aws/).
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      Reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { Reset(); }
  int get() const { return fd_; }
  void Reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

// Room for many events per read(2); inotify(7) requires at least sizeof(inotify_event) + NAME_MAX + 1.
constexpr std::size_t kBufferSize = 64 * 1024;
static_assert(kBufferSize >= sizeof(inotify_event) + NAME_MAX + 1);
// Reads per Wait before returning to the caller, so that an endless stream cannot starve its deadline check.
constexpr int kMaxReadsPerWait = 64;

class InotifySource final : public EventSource {
 public:
  InotifySource(Fd inotify, Fd wake, std::filesystem::path root, sitemap::WalkOptions filters, Log log,
                internal::TreeOptions options)
      : inotify_(std::move(inotify)), wake_(std::move(wake)),
        tree_(inotify_.get(), std::move(root), std::move(filters), std::move(log), std::move(options)) {}

  Result<void> Start() {
    // Nothing is reported at start: the caller syncs everything next. A folder that could not be watched was
    // warned about (the log) and is rescanned on the tree's timer; a rescan now would repeat the initial sync.
    Coalescer startup(std::chrono::milliseconds(0), std::chrono::milliseconds(0));
    if (auto r = tree_.Start(startup, Clock::now()); !r) return r;
    if (Changes changes = startup.Take(); !changes.paths.empty()) {
      changes.rescan = false;
      startup_ = std::move(changes);
    }
    return {};
  }

  Result<void> Wait(std::optional<Clock::time_point> deadline, Coalescer& sink) override {
    if (startup_) {
      const auto now = Clock::now();
      for (const auto& path : startup_->paths) sink.Add(path, now);
      if (startup_->rescan) sink.AddRescan(std::move(startup_->rescan_reason), now);
      startup_.reset();
      return {};
    }
    // Folders that could not be watched are rescanned on the tree's own timer.
    const std::optional<Clock::time_point> timer = tree_.NextTimer();
    if (timer && (!deadline || *timer < *deadline)) deadline = timer;
    for (;;) {
      int timeout_ms = -1;  // No deadline: block until an event or Interrupt(), no periodic wake-ups.
      if (deadline) {
        const auto left = *deadline - Clock::now();
        // Rounded up, so that poll() never returns just before the deadline and makes the caller spin.
        const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
        timeout_ms = ms <= 0 ? 0 : static_cast<int>(std::min<long long>(ms, INT_MAX));
      }
      std::array<pollfd, 2> fds{{{inotify_.get(), POLLIN, 0}, {wake_.get(), POLLIN, 0}}};
      const int rc = ::poll(fds.data(), fds.size(), timeout_ms);
      if (rc < 0) {
        if (errno == EINTR) continue;  // A signal handler that wants us awake wrote the eventfd.
        return Fail(ErrorCode::kIo, fmt::format("watch: poll failed ({})", internal::ErrnoName(errno)));
      }
      if (fds[1].revents & POLLIN) {
        std::uint64_t count = 0;
        if (::read(wake_.get(), &count, sizeof count) < 0) {
        }  // EAGAIN when another Wait consumed it: fine.
      }
      if (fds[0].revents & (POLLERR | POLLHUP | POLLNVAL)) {
        return Fail(ErrorCode::kIo, "watch: the inotify descriptor failed");
      }
      if (fds[0].revents & POLLIN) {
        if (auto r = Drain(sink); !r) return r;
      }
      if (const auto due = tree_.NextTimer(); due && Clock::now() >= *due) return tree_.Tick(sink, Clock::now());
      return {};  // Events read, deadline reached or interrupted.
    }
  }

  void Interrupt() override {
    // Async-signal-safe: one write(2) to an eventfd, no allocation, no lock.
    const std::uint64_t one = 1;
    if (::write(wake_.get(), &one, sizeof one) < 0) {
    }  // EAGAIN: the counter is full, so the wake-up is pending anyway.
  }

 private:
  Result<void> Drain(Coalescer& sink) {
    for (int reads = 0; reads < kMaxReadsPerWait;) {
      const ssize_t n = ::read(inotify_.get(), buffer_.data(), buffer_.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return {};
        return Fail(ErrorCode::kIo,
                         fmt::format("watch: reading inotify events failed ({})", internal::ErrnoName(errno)));
      }
      if (n == 0) return {};
      ++reads;
      const std::span<const std::byte> bytes(buffer_.data(), static_cast<std::size_t>(n));
      if (auto r = tree_.Process(bytes, sink, Clock::now()); !r) return r;
    }
    return {};
  }

  Fd inotify_;
  Fd wake_;
  internal::WatchTree tree_;
  std::optional<Changes> startup_;
  alignas(inotify_event) std::array<std::byte, kBufferSize> buffer_{};
};

}  // namespace

Result<std::unique_ptr<EventSource>> MakeInotifySource(const std::filesystem::path& root,
                                                            const sitemap::WalkOptions& filters, Log log,
                                                            SourceOptions options) {
  // Canonical: the watches are on inodes, and the folders above the root are watched by name when it goes away.
  std::error_code ec;
  std::filesystem::path canonical = std::filesystem::canonical(root, ec);
  if (ec) return Fail(ErrorCode::kInput, fmt::format("watch {}: {}", root.string(), ec.message()));
  if (!std::filesystem::is_directory(canonical, ec)) {
    return Fail(ErrorCode::kInput, fmt::format("watch {}: not a folder", root.string()));
  }
  Fd inotify(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  if (inotify.get() < 0) return Fail(ErrorCode::kIo, internal::InitFailure(errno));
  Fd wake(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (wake.get() < 0) {
    return Fail(ErrorCode::kIo, fmt::format("watch: eventfd failed ({})", internal::ErrnoName(errno)));
  }
  internal::TreeOptions tree_options;
  tree_options.given_root = std::filesystem::absolute(root, ec);  // A symlinked SOURCE is watched for `ln -sfn`.
  tree_options.rescan_interval = options.rescan_interval;
  auto source = std::make_unique<InotifySource>(std::move(inotify), std::move(wake), std::move(canonical), filters,
                                                std::move(log), std::move(tree_options));
  if (auto r = source->Start(); !r) return std::unexpected(std::move(r.error()));
  return std::unique_ptr<EventSource>(std::move(source));
}

}  // namespace sitesync::watcher
