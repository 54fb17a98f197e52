// When watch submits what its batches owe (watch.invalidate_interval_s). Only the time is decided here: the paths
// stay in the journal until CloudFront accepts them (Ledger), so nothing here needs to survive a crash.
#include <algorithm>

#include "cdn/cdn.h"

namespace sitesync::cdn {
namespace {

constexpr std::chrono::seconds kFirstRetry{5};
constexpr std::chrono::seconds kMaxRetry{300};

}  // namespace

InvalidationPacer::InvalidationPacer(std::chrono::seconds interval, Clock& clock)
    : interval_(std::max(interval, std::chrono::seconds(0))),
      clock_(clock),
      backoff_(std::max(interval_, kFirstRetry)) {}

bool InvalidationPacer::AfterBatch(std::span<const std::string> done, std::span<const std::string> failed,
                                   bool owes) {
  done_.insert(done_.end(), done.begin(), done.end());
  std::sort(done_.begin(), done_.end());
  done_.erase(std::unique(done_.begin(), done_.end()), done_.end());
  // A key done earlier whose change failed now may still land after the invalidation: it must be owed again.
  for (const std::string& key : failed) {
    auto it = std::lower_bound(done_.begin(), done_.end(), key);
    if (it != done_.end() && *it == key) done_.erase(it);
  }
  if (!owes) return false;
  if (!Paced()) return true;
  ++batches_;
  if (!due_) due_ = clock_.Now() + interval_;
  return Due();
}

bool InvalidationPacer::Due() const { return due_ && clock_.Now() >= *due_; }

void InvalidationPacer::Submitted() {
  due_.reset();
  done_.clear();
  batches_ = 0;
  backoff_ = std::max(interval_, kFirstRetry);
}

void InvalidationPacer::Failed() {
  due_ = clock_.Now() + backoff_;
  backoff_ = std::min(backoff_ * 2, std::max(kMaxRetry, interval_));
}

}  // namespace sitesync::cdn
