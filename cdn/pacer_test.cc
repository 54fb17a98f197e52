#include <gtest/gtest.h>

#include "cdn/cdn.h"

namespace sitesync::cdn {
namespace {

using std::chrono::seconds;

/// Time moves only when the test says so.
class StepClock final : public Clock {
 public:
  std::chrono::steady_clock::time_point Now() override { return now; }
  std::chrono::system_clock::time_point WallNow() override { return std::chrono::system_clock::time_point{}; }
  void SleepFor(std::chrono::milliseconds d) override { now += d; }
  std::chrono::steady_clock::time_point now{std::chrono::hours(5)};
};

std::vector<std::string> V(std::initializer_list<const char*> keys) { return {keys.begin(), keys.end()}; }

TEST(InvalidationPacer, IntervalZeroSubmitsEveryBatchThatOwes) {
  StepClock clock;
  InvalidationPacer pacer(seconds(0), clock);
  EXPECT_FALSE(pacer.Paced());
  EXPECT_TRUE(pacer.AfterBatch(V({"a.html"}), {}, true));
  EXPECT_FALSE(pacer.Waiting());
  EXPECT_FALSE(pacer.AfterBatch({}, {}, false)) << "nothing owed: nothing to submit";
}

TEST(InvalidationPacer, GathersBatchesUntilTheWindowCloses) {
  StepClock clock;
  InvalidationPacer pacer(seconds(3), clock);
  const auto start = clock.now;
  EXPECT_FALSE(pacer.AfterBatch(V({"a.html"}), {}, true));
  ASSERT_TRUE(pacer.DueAt());
  EXPECT_EQ(*pacer.DueAt(), start + seconds(3)) << "the first owing batch opens the window";
  clock.now += seconds(1);
  EXPECT_FALSE(pacer.AfterBatch(V({"b.html"}), {}, true));
  clock.now += seconds(1);
  EXPECT_FALSE(pacer.AfterBatch(V({"c.html", "a.html"}), {}, true));
  EXPECT_EQ(*pacer.DueAt(), start + seconds(3)) << "later batches do not push the window back";
  EXPECT_FALSE(pacer.Due());
  EXPECT_EQ(pacer.Batches(), 3u);
  clock.now = start + seconds(3) - std::chrono::milliseconds(1);
  EXPECT_FALSE(pacer.Due());
  clock.now = start + seconds(3);
  EXPECT_TRUE(pacer.Due());
  EXPECT_EQ(pacer.DoneKeys(), V({"a.html", "b.html", "c.html"}));
  pacer.Submitted();
  EXPECT_FALSE(pacer.Waiting());
  EXPECT_FALSE(pacer.Due());
  EXPECT_TRUE(pacer.DoneKeys().empty());
  // The next owing batch opens a new window from its own time: at most one submission every 3 s.
  clock.now += seconds(10);
  EXPECT_FALSE(pacer.AfterBatch(V({"d.html"}), {}, true));
  EXPECT_EQ(*pacer.DueAt(), clock.now + seconds(3));
}

TEST(InvalidationPacer, ABatchAfterTheWindowClosedSubmitsAtOnce) {
  StepClock clock;
  InvalidationPacer pacer(seconds(2), clock);
  EXPECT_FALSE(pacer.AfterBatch(V({"a.html"}), {}, true));
  clock.now += seconds(5);  // the loop was busy publishing a long batch
  EXPECT_TRUE(pacer.AfterBatch(V({"b.html"}), {}, true));
}

TEST(InvalidationPacer, ABatchThatOwesNothingOpensNoWindow) {
  StepClock clock;
  InvalidationPacer pacer(seconds(30), clock);
  EXPECT_FALSE(pacer.AfterBatch({}, {}, false));
  EXPECT_FALSE(pacer.Waiting());
  EXPECT_FALSE(pacer.DueAt());
}

TEST(InvalidationPacer, AKeyThatFailsLaterIsNotDone) {
  StepClock clock;
  InvalidationPacer pacer(seconds(10), clock);
  pacer.AfterBatch(V({"a.html", "b.html"}), {}, true);
  pacer.AfterBatch(V({"c.html"}), V({"a.html"}), true);
  EXPECT_EQ(pacer.DoneKeys(), V({"b.html", "c.html"}));
  pacer.AfterBatch(V({"a.html"}), {}, true);  // done again by a retry
  EXPECT_EQ(pacer.DoneKeys(), V({"a.html", "b.html", "c.html"}));
}

TEST(InvalidationPacer, AFailedSubmissionIsRetriedWithBackoff) {
  StepClock clock;
  InvalidationPacer pacer(seconds(3), clock);
  pacer.AfterBatch(V({"a.html"}), {}, true);
  clock.now += seconds(3);
  ASSERT_TRUE(pacer.Due());
  pacer.Failed();
  EXPECT_TRUE(pacer.Waiting()) << "still owed: exit must submit it";
  EXPECT_EQ(*pacer.DueAt(), clock.now + seconds(5)) << "max(interval, 5 s)";
  clock.now += seconds(5);
  pacer.Failed();
  EXPECT_EQ(*pacer.DueAt(), clock.now + seconds(10));
  for (int i = 0; i < 20; ++i) pacer.Failed();
  EXPECT_EQ(*pacer.DueAt(), clock.now + seconds(300)) << "capped at 5 minutes";
  EXPECT_EQ(pacer.DoneKeys(), V({"a.html"})) << "a failure forgets nothing";
  pacer.Submitted();
  pacer.AfterBatch(V({"b.html"}), {}, true);
  clock.now += seconds(3);
  pacer.Failed();
  EXPECT_EQ(*pacer.DueAt(), clock.now + seconds(5)) << "the backoff starts again after a success";
}

TEST(InvalidationPacer, ALongIntervalIsItsOwnFirstRetry) {
  StepClock clock;
  InvalidationPacer pacer(seconds(600), clock);
  pacer.AfterBatch(V({"a.html"}), {}, true);
  clock.now += seconds(600);
  pacer.Failed();
  EXPECT_EQ(*pacer.DueAt(), clock.now + seconds(600));
  pacer.Failed();
  EXPECT_EQ(*pacer.DueAt(), clock.now + seconds(600)) << "capped at max(5 min, interval)";
}

}  // namespace
}  // namespace sitesync::cdn
