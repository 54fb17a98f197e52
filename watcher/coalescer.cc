// The debouncer: pure logic, no inotify here (inotify_watcher.cc feeds them).
#include <algorithm>
#include <utility>

#include "watcher/watcher.h"

namespace sitesync::watcher {

Coalescer::Coalescer(std::chrono::milliseconds quiet, std::chrono::milliseconds max_delay)
    : quiet_(quiet), max_delay_(max_delay) {}

void Coalescer::Touch(Clock::time_point now) {
  last_seen_ = last_seen_ ? std::max(*last_seen_, now) : now;
  // min/max rather than "first call wins": callers may pass times that are not monotonic (e.g. a time taken
  // before a long scan and one taken after); the batch spans the earliest to the latest activity either way.
  if (!active_) {
    first_ = now;
    last_ = now;
    active_ = true;
    return;
  }
  first_ = std::min(first_, now);
  last_ = std::max(last_, now);
}

void Coalescer::Add(std::string rel_path, Clock::time_point now) {
  Touch(now);
  pending_.paths.insert(std::move(rel_path));
}

void Coalescer::AddRescan(std::string reason, Clock::time_point now) {
  Touch(now);
  if (!pending_.rescan) {
    pending_.rescan = true;
    pending_.rescan_reason = std::move(reason);
  }
}

std::optional<Clock::time_point> Coalescer::Deadline() const {
  if (!active_ || held_) return std::nullopt;
  return std::min(last_ + quiet_, first_ + max_delay_);
}

bool Coalescer::Due(Clock::time_point now) const {
  const auto deadline = Deadline();
  return deadline && now >= *deadline;
}

Changes Coalescer::Take() {
  Changes out = std::move(pending_);
  pending_ = Changes{};
  active_ = false;
  first_ = last_ = Clock::time_point{};
  return out;
}

}  // namespace sitesync::watcher
