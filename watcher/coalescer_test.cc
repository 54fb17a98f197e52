// Coalescer tables and the Coalescer against a naive reference on random event streams.
#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "watcher/watcher.h"

namespace sitesync::watcher {
namespace {

using std::chrono::milliseconds;

const Clock::time_point kT0 = Clock::time_point{} + std::chrono::hours(1);

Clock::time_point At(int ms) { return kT0 + milliseconds(ms); }

TEST(Coalescer, EmptyHasNoDeadline) {
  Coalescer c(milliseconds(100), milliseconds(1000));
  EXPECT_TRUE(c.Empty());
  EXPECT_FALSE(c.Deadline());
  EXPECT_FALSE(c.Due(At(1'000'000)));
  EXPECT_TRUE(c.Take().Empty());
}

TEST(Coalescer, QuietPeriodRestartsOnEveryChange) {
  Coalescer c(milliseconds(100), milliseconds(1000));
  c.Add("a.html", At(0));
  EXPECT_EQ(c.Deadline(), At(100));
  c.Add("b.html", At(50));
  EXPECT_EQ(c.Deadline(), At(150));
  EXPECT_FALSE(c.Due(At(100)));
  EXPECT_FALSE(c.Due(At(149)));
  EXPECT_TRUE(c.Due(At(150)));
  c.Touch(At(140));  // A file still being written: the batch waits for it.
  EXPECT_EQ(c.Deadline(), At(240));
  EXPECT_FALSE(c.Due(At(239)));
  EXPECT_TRUE(c.Due(At(240)));
  const Changes changes = c.Take();
  EXPECT_EQ(changes.paths, (std::set<std::string>{"a.html", "b.html"}));
  EXPECT_FALSE(changes.rescan);
}

TEST(Coalescer, MaxDelayCapsAContinuousStream) {
  Coalescer c(milliseconds(100), milliseconds(1000));
  // A change every 50 ms never leaves 100 ms of quiet; the batch still goes out 1000 ms after its first change.
  for (int t = 0; t <= 2000; t += 50) {
    if (c.Due(At(t))) {
      EXPECT_EQ(t, 1000);
      const Changes changes = c.Take();
      EXPECT_EQ(changes.paths.size(), 1U);  // Coalesced by path.
      break;
    }
    c.Add("index.html", At(t));
    EXPECT_EQ(c.Deadline(), std::min(At(t + 100), At(1000)));
  }
  EXPECT_TRUE(c.Empty());
  EXPECT_FALSE(c.Deadline());
}

TEST(Coalescer, LastActivityOutlivesTake) {
  Coalescer c(milliseconds(100), milliseconds(1000));
  EXPECT_FALSE(c.LastActivity());
  c.Add("a", At(50));
  c.Touch(At(20));  // not monotonic: the latest wins
  EXPECT_EQ(c.LastActivity(), At(50));
  (void)c.Take();
  EXPECT_EQ(c.LastActivity(), At(50)) << "the delete window counts from it after the batch went";
  c.AddRescan("overflow", At(400));
  EXPECT_EQ(c.LastActivity(), At(400));
}

TEST(Coalescer, MaxDelayShorterThanQuiet) {
  Coalescer c(milliseconds(500), milliseconds(200));
  c.Add("a", At(0));
  EXPECT_EQ(c.Deadline(), At(200));
}

TEST(Coalescer, HoldAndRelease) {
  Coalescer c(milliseconds(100), milliseconds(1000));
  c.Add("a", At(0));
  c.Hold(true);
  EXPECT_TRUE(c.Held());
  EXPECT_FALSE(c.Deadline());
  EXPECT_FALSE(c.Due(At(60'000)));
  c.Add("b", At(5000));  // Changes still collect while held.
  EXPECT_FALSE(c.Deadline());
  c.Hold(false);
  EXPECT_FALSE(c.Held());
  // The batch started at 0: its cap has long passed, so it is due at once.
  EXPECT_EQ(c.Deadline(), At(1000));
  EXPECT_TRUE(c.Due(At(5001)));
  EXPECT_EQ(c.Take().paths, (std::set<std::string>{"a", "b"}));
}

TEST(Coalescer, HoldOutlivesTake) {
  Coalescer c(milliseconds(100), milliseconds(1000));
  c.Hold(true);
  c.Add("a", At(0));
  EXPECT_EQ(c.Take().paths.size(), 1U);
  c.Add("b", At(10));
  EXPECT_FALSE(c.Deadline());
  EXPECT_TRUE(c.Held());
}

TEST(Coalescer, FirstRescanReasonIsKept) {
  Coalescer c(milliseconds(100), milliseconds(1000));
  c.Add("a", At(0));
  c.AddRescan("inotify queue overflowed", At(1));
  c.AddRescan("unknown watch descriptor", At(2));
  EXPECT_FALSE(c.Empty());
  EXPECT_EQ(c.Deadline(), At(102));
  Changes changes = c.Take();
  EXPECT_TRUE(changes.rescan);
  EXPECT_EQ(changes.rescan_reason, "inotify queue overflowed");
  EXPECT_EQ(changes.paths, (std::set<std::string>{"a"}));
  // The next batch keeps its own first reason.
  c.AddRescan("root folder was recreated", At(500));
  changes = c.Take();
  EXPECT_EQ(changes.rescan_reason, "root folder was recreated");
}

TEST(Coalescer, RescanAloneIsNotEmpty) {
  Coalescer c(milliseconds(100), milliseconds(1000));
  c.AddRescan("why", At(0));
  EXPECT_FALSE(c.Empty());
  EXPECT_FALSE(c.Take().Empty());
}

TEST(Coalescer, TakeResets) {
  Coalescer c(milliseconds(100), milliseconds(1000));
  c.Add("a", At(0));
  c.AddRescan("r", At(900));
  EXPECT_EQ(c.Deadline(), At(1000));
  EXPECT_FALSE(c.Take().Empty());
  EXPECT_TRUE(c.Empty());
  EXPECT_FALSE(c.Deadline());
  EXPECT_TRUE(c.Take().Empty());
  // A new batch: its cap counts from its own first change, not the old one.
  c.Add("b", At(5000));
  EXPECT_EQ(c.Deadline(), At(5100));
  const Changes changes = c.Take();
  EXPECT_FALSE(changes.rescan);
  EXPECT_TRUE(changes.rescan_reason.empty());
  EXPECT_EQ(changes.paths, (std::set<std::string>{"b"}));
}

TEST(Coalescer, TouchAloneTimesButTakesEmpty) {
  Coalescer c(milliseconds(100), milliseconds(1000));
  c.Touch(At(0));
  EXPECT_TRUE(c.Empty());
  EXPECT_EQ(c.Deadline(), At(100));
  c.Touch(At(80));
  EXPECT_EQ(c.Deadline(), At(180));
  EXPECT_TRUE(c.Due(At(180)));
  EXPECT_TRUE(c.Take().Empty());
  EXPECT_FALSE(c.Deadline());
}

TEST(Coalescer, TouchBeforeAddStartsTheBatch) {
  Coalescer c(milliseconds(100), milliseconds(1000));
  c.Touch(At(0));         // IN_MODIFY of a big file being written...
  c.Add("big", At(950));  // ... and its IN_CLOSE_WRITE: the cap counts from the first activity.
  EXPECT_EQ(c.Deadline(), At(1000));
}

TEST(Coalescer, TimesOutOfOrder) {
  Coalescer c(milliseconds(100), milliseconds(1000));
  c.Add("a", At(500));
  c.Add("b", At(100));  // An earlier time passed later: the batch spans both.
  EXPECT_EQ(c.Deadline(), At(600));
  c.Add("c", At(1050));
  EXPECT_EQ(c.Deadline(), At(1100));  // first = 100: cap 1100, quiet 1150.
}

// -- The same contract, computed the obvious way: keep every event and recompute from the list. ---------------

class NaiveCoalescer {
 public:
  NaiveCoalescer(milliseconds quiet, milliseconds max_delay) : quiet_(quiet), max_delay_(max_delay) {}

  enum class Kind { kAdd, kRescan, kTouch };
  struct Event {
    Kind kind;
    std::string text;
    Clock::time_point at;
  };

  void Record(Kind kind, std::string text, Clock::time_point at) { events_.push_back({kind, std::move(text), at}); }
  void Hold(bool on) { held_ = on; }

  std::optional<Clock::time_point> Deadline() const {
    if (held_ || events_.empty()) return std::nullopt;
    Clock::time_point first = events_.front().at;
    Clock::time_point last = events_.front().at;
    for (const Event& e : events_) {
      first = std::min(first, e.at);
      last = std::max(last, e.at);
    }
    return std::min(last + quiet_, first + max_delay_);
  }

  Changes Take() {
    Changes out;
    for (const Event& e : events_) {
      if (e.kind == Kind::kAdd) out.paths.insert(e.text);
      if (e.kind == Kind::kRescan && !out.rescan) {
        out.rescan = true;
        out.rescan_reason = e.text;
      }
    }
    events_.clear();
    return out;
  }

 private:
  milliseconds quiet_;
  milliseconds max_delay_;
  std::vector<Event> events_;
  bool held_ = false;
};

void ExpectSame(const Changes& got, const Changes& want, const std::string& where) {
  EXPECT_EQ(got.paths, want.paths) << where;
  EXPECT_EQ(got.rescan, want.rescan) << where;
  EXPECT_EQ(got.rescan_reason, want.rescan_reason) << where;
  EXPECT_EQ(got.Empty(), want.Empty()) << where;
}

TEST(Coalescer, MatchesNaiveReferenceOnRandomStreams) {
  int total_batches = 0;
  int rescan_batches = 0;
  int empty_batches = 0;
  for (unsigned seed = 1; seed <= 300; ++seed) {
    std::mt19937 rng(seed);
    auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
    const milliseconds quiet(uniform(1, 300));
    // Sometimes a cap shorter than the quiet period, sometimes a long one.
    const milliseconds max_delay(uniform(0, 3) == 0 ? uniform(1, 300) : uniform(300, 3000));
    Coalescer real(quiet, max_delay);
    NaiveCoalescer naive(quiet, max_delay);
    const std::string where_seed = "seed " + std::to_string(seed);

    // Flushes, as a caller would, at every deadline up to `t`.
    auto flush_until = [&](Clock::time_point t) {
      for (;;) {
        const auto deadline = real.Deadline();
        ASSERT_EQ(deadline, naive.Deadline()) << where_seed;
        ASSERT_EQ(real.Due(t), deadline && *deadline <= t) << where_seed;
        if (!deadline || *deadline > t) return;
        EXPECT_TRUE(real.Due(*deadline)) << where_seed;
        if (*deadline > kT0) {
          EXPECT_FALSE(real.Due(*deadline - std::chrono::nanoseconds(1))) << where_seed;
        }
        const Changes want = naive.Take();
        const Changes got = real.Take();
        ExpectSame(got, want, where_seed);
        ++total_batches;
        rescan_batches += got.rescan ? 1 : 0;
        empty_batches += got.Empty() ? 1 : 0;
      }
    };

    Clock::time_point now = kT0;
    bool held = false;
    for (int step = 0; step < 400; ++step) {
      // Gaps: mostly bursts, sometimes pauses longer than the quiet period or the cap.
      const int gap_kind = uniform(0, 9);
      const int gap = gap_kind < 6 ? uniform(0, 20) : gap_kind < 9 ? uniform(20, 400) : uniform(400, 4000);
      now += milliseconds(gap);
      flush_until(now);
      if (HasFatalFailure()) return;
      const int op = uniform(0, 99);
      if (op < 55) {
        std::string path = "p" + std::to_string(uniform(0, 12));
        real.Add(path, now);
        naive.Record(NaiveCoalescer::Kind::kAdd, std::move(path), now);
      } else if (op < 85) {
        real.Touch(now);
        naive.Record(NaiveCoalescer::Kind::kTouch, "", now);
      } else if (op < 93) {
        std::string reason = "reason " + std::to_string(step);
        real.AddRescan(reason, now);
        naive.Record(NaiveCoalescer::Kind::kRescan, std::move(reason), now);
      } else {
        held = !held;
        real.Hold(held);
        naive.Hold(held);
        EXPECT_EQ(real.Held(), held);
      }
      ASSERT_EQ(real.Deadline(), naive.Deadline()) << where_seed << " step " << step;
    }
    real.Hold(false);
    naive.Hold(false);
    flush_until(Clock::time_point::max() - std::chrono::hours(24 * 365));
    EXPECT_TRUE(real.Empty()) << where_seed;
    EXPECT_FALSE(real.Deadline()) << where_seed;
  }
  // The streams did exercise every kind of batch.
  EXPECT_GT(total_batches, 1000);
  EXPECT_GT(rescan_batches, 100);
  EXPECT_GT(empty_batches, 50);
}

}  // namespace
}  // namespace sitesync::watcher
