// watcher/stat_poll_source.cc: the polling EventSource, on stat(2) snapshots of the tree.
//
// For where inotify is silent: NFS (changes made on another host raise no event here), some container bind
// mounts, WSL's /mnt/c (9p/drvfs). It walks with sitemap::Walk, so the paths compared are exactly the files
// sync would publish, under the same filters and symlink rules (links followed inside SOURCE, loops and links
// outside refused), and it feeds the same Coalescer as the inotify source: the batching, settle and delete
// rules do not depend on where changes came from. A file still being written keeps changing size or mtime from
// one poll to the next, so its path keeps restarting the quiet period.

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <utility>

#include <fmt/core.h>

#include "watcher/stat_poll.h"
#include "watcher/watcher.h"

namespace sitesync::watcher {
namespace internal {
namespace {

bool Under(std::string_view path, std::string_view folder) {
  if (folder.empty()) return true;
  return path == folder || (path.size() > folder.size() && path.starts_with(folder) && path[folder.size()] == '/');
}

std::int64_t MtimeNs(const struct stat& st) {
  return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
}

}  // namespace

Result<Snapshot> TakeSnapshot(const std::filesystem::path& root, const sitemap::WalkOptions& filters) {
  auto site = sitemap::Walk(root, filters);
  if (!site) return std::unexpected(std::move(site.error()));
  Snapshot snapshot;
  if (!site->files.empty() && site->files.front().root) snapshot.root = *site->files.front().root;
  snapshot.incomplete_folders = std::move(site->incomplete_folders);
  for (const sitemap::LocalFile& file : site->files) {
    StatEntry entry;
    entry.size = file.size;
    entry.mtime_ns = file.mtime_ns;
    // The walk keeps no inode: a file renamed over another with the same size and mtime (`cp -p`, `rsync -t`)
    // differs only there. lstat is enough for a regular file; a followed link is compared by its target too.
    struct stat st {};
    const std::string abs = file.AbsPath();
    if (::lstat(abs.c_str(), &st) == 0) {
      entry.via_link = S_ISLNK(st.st_mode);
      if (entry.via_link && ::stat(abs.c_str(), &st) != 0) st = {};
      entry.dev = static_cast<std::uint64_t>(st.st_dev);
      entry.ino = static_cast<std::uint64_t>(st.st_ino);
      if (S_ISREG(st.st_mode)) {  // The newest answer, should it have changed since the walk.
        entry.size = static_cast<std::uint64_t>(st.st_size);
        entry.mtime_ns = MtimeNs(st);
      }
    }
    snapshot.files.emplace(file.rel_path, entry);
  }
  return snapshot;
}

std::vector<std::string> DiffSnapshots(const Snapshot& before, const Snapshot& after) {
  std::vector<std::string> changed;
  auto b = before.files.begin();
  auto a = after.files.begin();
  const auto unreadable = [&](const std::string& path) {
    return std::ranges::any_of(after.incomplete_folders, [&](const std::string& f) { return Under(path, f); });
  };
  while (b != before.files.end() || a != after.files.end()) {
    if (a == after.files.end() || (b != before.files.end() && b->first < a->first)) {
      if (!unreadable(b->first)) changed.push_back(b->first);  // Gone.
      ++b;
    } else if (b == before.files.end() || a->first < b->first) {
      changed.push_back(a->first);  // New.
      ++a;
    } else {
      if (!(a->second == b->second)) changed.push_back(a->first);
      ++a;
      ++b;
    }
  }
  return changed;
}

StatPoller::StatPoller(std::filesystem::path root, sitemap::WalkOptions filters, Log log,
                       std::chrono::milliseconds interval)
    : root_(std::move(root)), filters_(std::move(filters)), log_(std::move(log)), interval_(interval) {}

void StatPoller::LogOnce(const std::string& kind, std::string_view message) {
  if (std::ranges::find(logged_, kind) != logged_.end()) return;
  logged_.push_back(kind);
  if (log_) log_(message);
}

Result<void> StatPoller::Start(Clock::time_point now) {
  auto first = TakeSnapshot(root_, filters_);
  if (!first) return std::unexpected(std::move(first.error()));
  last_ = std::move(*first);
  if (last_.root.empty()) {  // An empty site: the walk named no file, so resolve the root here.
    std::error_code ec;
    last_.root = std::filesystem::canonical(root_, ec).string();
  }
  next_ = now + interval_;
  return {};
}

bool StatPoller::Poll(Coalescer& sink, Clock::time_point now) {
  ++polls_;
  next_ = now + interval_;
  auto snapshot = TakeSnapshot(root_, filters_);
  if (!snapshot) {
    // Gone (`rm -rf public` before a rebuild) or unreadable: hold the batch, as the inotify source does, so
    // that nothing is taken for deleted while the generator writes the folder again.
    if (!gone_) {
      LogOnce("root gone", fmt::format("watch {}: {}; waiting for it to come back", root_.string(),
                                       snapshot.error().message));
      gone_ = true;
      sink.Hold(true);
      sink.Touch(now);
    }
    return false;
  }
  std::error_code ec;
  std::string canonical = snapshot->root;
  if (canonical.empty()) canonical = std::filesystem::canonical(root_, ec).string();
  snapshot->root = canonical;
  const std::vector<std::string> changed = DiffSnapshots(last_, *snapshot);
  bool added = false;
  if (gone_) {
    gone_ = false;
    sink.Hold(false);
    sink.AddRescan("root folder was recreated", now);
    added = true;
  } else if (!canonical.empty() && !last_.root.empty() && canonical != last_.root) {
    sink.AddRescan(fmt::format("{} now leads to {}", root_.string(), canonical), now);
    added = true;
  }
  for (const std::string& path : changed) sink.Add(path, now);
  added = added || !changed.empty();
  last_ = std::move(*snapshot);
  return added;
}

namespace {

/// A move-only file descriptor.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&&) = delete;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

class StatPollSource final : public EventSource {
 public:
  StatPollSource(Fd wake, StatPoller poller) : wake_(std::move(wake)), poller_(std::move(poller)) {}

  Result<void> Wait(std::optional<Clock::time_point> deadline, Coalescer& sink) override {
    for (;;) {
      const auto now = Clock::now();
      if (now >= poller_.NextPoll()) {
        // Back to the caller after a poll that found something, so that it sees the batch's new deadline.
        if (poller_.Poll(sink, now)) return {};
        continue;
      }
      if (deadline && now >= *deadline) return {};
      const Clock::time_point wake_at = deadline ? std::min(*deadline, poller_.NextPoll()) : poller_.NextPoll();
      const auto ms = std::chrono::ceil<std::chrono::milliseconds>(wake_at - now).count();
      const int timeout_ms = static_cast<int>(std::clamp<long long>(ms, 0, INT_MAX));
      pollfd fd{wake_.get(), POLLIN, 0};
      const int rc = ::poll(&fd, 1, timeout_ms);
      if (rc < 0) {
        if (errno == EINTR) continue;
        return Fail(ErrorCode::kIo, fmt::format("watch: poll failed ({})", std::strerror(errno)));
      }
      if (fd.revents & POLLIN) {
        std::uint64_t count = 0;
        if (::read(wake_.get(), &count, sizeof count) < 0) {
        }  // EAGAIN when another Wait consumed it: fine.
        return {};  // Interrupted.
      }
    }
  }

  void Interrupt() override {
    // Async-signal-safe: one write(2) to an eventfd.
    const std::uint64_t one = 1;
    if (::write(wake_.get(), &one, sizeof one) < 0) {
    }  // EAGAIN: the counter is full, so the wake-up is pending anyway.
  }

 private:
  Fd wake_;
  StatPoller poller_;
};

}  // namespace
}  // namespace internal

Result<std::unique_ptr<EventSource>> MakePollSource(const std::filesystem::path& root,
                                                         const sitemap::WalkOptions& filters, Log log,
                                                         std::chrono::milliseconds interval) {
  if (interval <= std::chrono::milliseconds(0)) {
    return Fail(ErrorCode::kUsage, "watch --poll: the interval must be a positive number of milliseconds");
  }
  std::error_code ec;
  if (!std::filesystem::is_directory(root, ec)) {
    return Fail(ErrorCode::kInput, fmt::format("watch {}: not a folder", root.string()));
  }
  internal::StatPoller poller(root, filters, std::move(log), interval);
  if (auto r = poller.Start(Clock::now()); !r) return std::unexpected(std::move(r.error()));
  internal::Fd wake(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (wake.get() < 0) return Fail(ErrorCode::kIo, fmt::format("watch: eventfd failed ({})", std::strerror(errno)));
  return std::unique_ptr<EventSource>(std::make_unique<internal::StatPollSource>(std::move(wake), std::move(poller)));
}

}  // namespace sitesync::watcher
