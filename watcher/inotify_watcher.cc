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
#include <cstring>
#include <expected>
#include <utility>
#include <vector>

#include <fmt/core.h>

#include "base/unique_fd.h"
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
// Folders below the root are never watched through a symlink (sync follows links, but watching through them
// could watch one folder under two paths or loop). The root was made canonical, so it is no link, but a
// generator might recreate it as one.
constexpr std::uint32_t kSubfolderMask = kFolderMask | IN_DONT_FOLLOW;
// While the root is gone: the nearest existing folder above it, for the next folder down to (re)appear.
constexpr std::uint32_t kAncestorMask = IN_CREATE | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR;

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

}  // namespace

std::string AddWatchFailure(std::string_view what, int err) {
  std::string message = fmt::format("watch {}: inotify_add_watch failed ({})", what, ErrnoName(err));
  switch (err) {
    case ENOSPC:
      // inotify(7): ENOSPC is "the user limit on the total number of inotify watches was reached".
      message += "; raise fs.inotify.max_user_watches (e.g. sysctl fs.inotify.max_user_watches=524288)";
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

WatchTree::WatchTree(int inotify_fd, std::filesystem::path root, sitemap::WalkOptions filters, Log log)
    : fd_(inotify_fd), root_(std::move(root)), root_str_(root_.string()), filters_(std::move(filters)),
      log_(std::move(log)) {}

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

bool WatchTree::FileIgnored(std::string_view name, const std::string& rel) const {
  if (sitemap::Excluded(rel, filters_)) return true;
  if (!IsTempFile(name)) return false;
  // A file the user asked for by an include glob (e.g. `.htaccess`) is published, so it is waited for too.
  return std::ranges::none_of(filters_.include, [&](const std::string& g) { return sitemap::GlobMatch(g, rel); });
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
  const int wd = ::inotify_add_watch(fd_, abs.c_str(), rel.empty() ? kFolderMask : kSubfolderMask);
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

bool WatchTree::WatchFolderTree(const std::string& rel, bool report, Coalescer& sink, Clock::time_point now) {
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
      if (report) sink.Add(folder, now);
      // Gone again, or replaced by a file: the events of its parent say so.
      if (err == ENOENT || err == ENOTDIR) continue;
      Rescan("add_watch " + ErrnoName(err), AddWatchFailure(AbsPath(folder), err), sink, now);
      continue;
    }
    if (report && !folder.empty()) sink.Add(folder, now);
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
      if (entry->d_type == DT_UNKNOWN) {  // Some file systems do not fill d_type.
        struct stat st {};
        if (::fstatat(::dirfd(dir.get()), entry->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
        is_folder = S_ISDIR(st.st_mode);
      }
      if (is_folder) {
        if (!FolderPruned(child)) pending.push_back(std::move(child));
      } else if (report && !FileIgnored(name, child)) {
        sink.Add(std::move(child), now);  // Symlinks too: sync decides whether to follow them.
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
}

void WatchTree::DropAll() {
  for (const auto& [wd, path] : wd_to_path_) {
    ::inotify_rm_watch(fd_, wd);
    removed_.insert(wd);
  }
  wd_to_path_.clear();
  path_to_wd_.clear();
  root_wd_ = -1;
}

Result<void> WatchTree::Rewatch(Coalescer& sink, Clock::time_point now) {
  // Events were lost (overflow) or the table is wrong (unknown wd): walk again, watch before list as always.
  // Watches of folders still there come back with the same wd and are re-pointed at their current paths; the
  // rest are removed.
  auto old = std::move(wd_to_path_);
  wd_to_path_.clear();
  path_to_wd_.clear();
  root_wd_ = -1;
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
  for (int attempt = 0; attempt < 64; ++attempt) {
    if (IsFolder(root_str_)) {
      if (WatchFolderTree("", true, sink, now)) {
        if (ancestor_wd_ >= 0) {
          ::inotify_rm_watch(fd_, ancestor_wd_);
          removed_.insert(ancestor_wd_);
          ancestor_wd_ = -1;
        }
        Rescan("root recreated", "root folder was recreated", sink, now);
        sink.Hold(false);
        return {};
      }
      if (last_root_errno_ != ENOENT && last_root_errno_ != ENOTDIR) {
        return Fail(ErrorCode::kIo, AddWatchFailure(root_str_, last_root_errno_));
      }
      continue;  // Gone again already.
    }
    std::filesystem::path above = root_.parent_path();
    while (!IsFolder(above.string()) && above.has_relative_path()) above = above.parent_path();
    const int wd = ::inotify_add_watch(fd_, above.c_str(), kAncestorMask);
    if (wd < 0) {
      const int err = errno;
      if (err == ENOENT || err == ENOTDIR) continue;
      return Fail(ErrorCode::kIo,
                       AddWatchFailure(fmt::format("{} (to see {} come back)", above.string(), root_str_), err));
    }
    if (ancestor_wd_ >= 0 && ancestor_wd_ != wd) {
      ::inotify_rm_watch(fd_, ancestor_wd_);
      removed_.insert(ancestor_wd_);
    }
    removed_.erase(wd);
    ancestor_wd_ = wd;
    const std::filesystem::path down = root_.lexically_relative(above);
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
  if (ancestor_wd_ >= 0 && wd == ancestor_wd_) {
    if (mask & IN_IGNORED) {  // The folder above went away too: find the next one up.
      ancestor_wd_ = -1;
      return ArmRootReturn(sink, now);
    }
    if (mask & (IN_DELETE_SELF | IN_MOVE_SELF)) {
      ::inotify_rm_watch(fd_, ancestor_wd_);
      removed_.insert(ancestor_wd_);
      ancestor_wd_ = -1;
      return ArmRootReturn(sink, now);
    }
    if ((mask & (IN_CREATE | IN_MOVED_TO)) && (mask & IN_ISDIR) && name == next_name_) {
      return ArmRootReturn(sink, now);
    }
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
  if (mask & IN_ISDIR) {
    if (FolderPruned(rel)) return {};
    if (mask & (IN_CREATE | IN_MOVED_TO)) {
      // A new folder, or one moved in (never paired with a MOVED_FROM): watch it and everything in it, each
      // before listing it, and count every file found as changed.
      WatchFolderTree(rel, true, sink, now);
    } else if (mask & (IN_DELETE | IN_MOVED_FROM)) {
      // Maybe gone: the path is enough for sync; its watches (moved away: still alive) must not report under
      // this path any more.
      sink.Add(rel, now);
      DropSubtree(rel);
    }
    return {};
  }
  if (FileIgnored(name, rel)) return {};
  if (mask & (IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM)) {
    sink.Add(rel, now);  // Content ready, or maybe gone: sync stats it.
  } else if (mask & IN_CREATE) {
    // A new regular file is still being written: wait for its IN_CLOSE_WRITE. A symlink (or a hard link, or a
    // fifo) gets no IN_CLOSE_WRITE, so it is ready now.
    struct stat st {};
    const std::string abs = AbsPath(rel);
    if (::lstat(abs.c_str(), &st) == 0 && (!S_ISREG(st.st_mode) || st.st_nlink > 1)) {
      sink.Add(rel, now);
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

using Fd = sitesync::UniqueFd;  // base/unique_fd.h

// Room for many events per read(2); inotify(7) requires at least sizeof(inotify_event) + NAME_MAX + 1.
constexpr std::size_t kBufferSize = 64 * 1024;
static_assert(kBufferSize >= sizeof(inotify_event) + NAME_MAX + 1);
// Reads per Wait before returning to the caller, so that an endless stream cannot starve its deadline check.
constexpr int kMaxReadsPerWait = 64;

class InotifySource final : public EventSource {
 public:
  InotifySource(Fd inotify, Fd wake, std::filesystem::path root, sitemap::WalkOptions filters, Log log)
      : inotify_(std::move(inotify)), wake_(std::move(wake)),
        tree_(inotify_.get(), std::move(root), std::move(filters), std::move(log)) {}

  Result<void> Start() {
    // Nothing is reported at start (the caller syncs everything), except folders that could not be watched.
    Coalescer startup(std::chrono::milliseconds(0), std::chrono::milliseconds(0));
    if (auto r = tree_.Start(startup, Clock::now()); !r) return r;
    if (!startup.Empty()) startup_ = startup.Take();
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
      if (fds[0].revents & POLLIN) return Drain(sink);
      return {};  // Deadline reached or interrupted.
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
                                                            const sitemap::WalkOptions& filters, Log log) {
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
  auto source = std::make_unique<InotifySource>(std::move(inotify), std::move(wake), std::move(canonical), filters,
                                                std::move(log));
  if (auto r = source->Start(); !r) return std::unexpected(std::move(r.error()));
  return std::unique_ptr<EventSource>(std::move(source));
}

}  // namespace sitesync::watcher
