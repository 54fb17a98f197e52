// The watch loop's policy over fakes: a scripted EventSource, a publish step that models the bucket and records
// what it was asked (ninja's commands_ran_), and a clock that only moves when the fakes move it. No sleeps.
#include <gtest/gtest.h>

#include <deque>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "watcher/watcher.h"

namespace sitesync::watcher {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

const Clock::time_point kT0 = Clock::time_point{} + std::chrono::hours(1);

class FakeTime final : public TimeSource {
 public:
  Clock::time_point Now() const override { return now; }
  Clock::time_point now = kT0;
};

// One thing that happens in the tree at a given time: an effect on the modelled local files, and what the real
// source would tell the coalescer about it.
struct Happening {
  int at_ms = 0;
  std::function<void(Coalescer&, Clock::time_point)> tell;
  std::function<void()> effect;
};

// Replays a script: Wait advances the clock to the next happening (delivering every happening due by then), or
// to the deadline when that comes first. With nothing left and no deadline, it says it is exhausted.
class ScriptSource final : public EventSource {
 public:
  explicit ScriptSource(FakeTime& time) : time_(time) {}
  std::deque<Happening> script;
  bool exhausted = false;
  int waits = 0;

  Result<void> Wait(std::optional<Clock::time_point> deadline, Coalescer& sink) override {
    ++waits;
    if (script.empty()) {
      if (deadline) {
        time_.now = std::max(time_.now, *deadline);
      } else {
        exhausted = true;
      }
      return {};
    }
    const Clock::time_point at = kT0 + milliseconds(script.front().at_ms);
    if (deadline && *deadline < at) {
      time_.now = std::max(time_.now, *deadline);
      return {};
    }
    time_.now = std::max(time_.now, at);
    while (!script.empty() && kT0 + milliseconds(script.front().at_ms) <= time_.now) {
      Happening h = std::move(script.front());
      script.pop_front();
      if (h.effect) h.effect();
      if (h.tell) h.tell(sink, time_.now);
    }
    return {};
  }
  void Interrupt() override {}

 private:
  FakeTime& time_;
};

// The publish step over a model: `local` is the folder, `remote` the bucket. Records every request with the time
// it was made, and every key deleted. Uploads fail while `uploads_fail` says so; the invalidation fails for the
// first `invalidation_failures` batches that change something or owe something.
class ModelPublisher final : public Publisher {
 public:
  explicit ModelPublisher(FakeTime& time) : time_(time) {}

  struct Call {
    Clock::time_point at;
    PublishRequest request;
  };
  std::vector<Call> calls;
  std::vector<std::string> deleted;
  std::set<std::string> local;
  std::set<std::string> remote;
  std::function<bool(Clock::time_point)> uploads_fail;
  int invalidation_failures = 0;
  bool owed = false;
  int not_run_left = 0;
  milliseconds cost{0};  // how long a batch takes

  PublishOutcome Publish(const PublishRequest& request) override {
    calls.push_back({time_.now, request});
    time_.now += cost;
    PublishOutcome out;
    if (not_run_left > 0) {
      --not_run_left;
      out.not_run = true;
      return out;
    }
    std::set<std::string> considered = request.paths;
    if (request.rescan) {
      considered.insert(local.begin(), local.end());
      considered.insert(remote.begin(), remote.end());
    }
    bool changed = false;
    for (const std::string& p : considered) {
      if (local.contains(p)) {
        if (request.deletes == DeleteMode::kOnly) continue;  // deletes only: an existing file is left alone
        if (uploads_fail && uploads_fail(time_.now)) {
          out.failed.insert(p);
          changed = true;
          continue;
        }
        remote.insert(p);
        changed = true;
      } else if (remote.contains(p)) {
        if (request.deletes == DeleteMode::kHold) {
          out.held_deletes.insert(p);
          continue;
        }
        remote.erase(p);
        deleted.push_back(p);
        changed = true;
      }
    }
    if (changed || owed) {
      if (invalidation_failures > 0) {
        --invalidation_failures;
        owed = true;
        out.invalidation_failed = true;
      } else {
        owed = false;
      }
    }
    return out;
  }

 private:
  FakeTime& time_;
};

// Adds path `p` (a file written, or gone) to the coalescer.
std::function<void(Coalescer&, Clock::time_point)> Tell(std::string p) {
  return [p = std::move(p)](Coalescer& c, Clock::time_point now) { c.Add(p, now); };
}

class SchedulerTest : public ::testing::Test {
 protected:
  SchedulerTest() : source_(time_), publisher_(time_) {}

  Scheduler Make(SchedulerOptions options = {}) {
    return Scheduler(source_, publisher_, time_, options, [this](std::string_view line) {
      notes_.emplace_back(line);
    });
  }

  // Steps until the script is done and nothing is due any more (or `max_calls` publishes were made).
  void RunAll(Scheduler& s, std::size_t max_calls = 1000) {
    for (int i = 0; i < 100000; ++i) {
      if (source_.exhausted || publisher_.calls.size() >= max_calls) return;
      ASSERT_TRUE(s.Step().has_value());
    }
    FAIL() << "the scheduler did not settle";
  }

  void At(int ms, std::function<void()> effect, std::function<void(Coalescer&, Clock::time_point)> tell) {
    source_.script.push_back({ms, std::move(tell), std::move(effect)});
  }
  void Write(int ms, const std::string& p) {
    At(ms, [this, p] { publisher_.local.insert(p); }, Tell(p));
  }
  void Remove(int ms, const std::string& p) {
    At(ms, [this, p] { publisher_.local.erase(p); }, Tell(p));
  }

  std::vector<milliseconds> CallTimes() const {
    std::vector<milliseconds> out;
    for (const auto& c : publisher_.calls) out.push_back(std::chrono::duration_cast<milliseconds>(c.at - kT0));
    return out;
  }

  FakeTime time_;
  ScriptSource source_;
  ModelPublisher publisher_;
  std::vector<std::string> notes_;
};

TEST_F(SchedulerTest, UploadsGoAfterTheQuietPeriodAndDeletesWaitForTheWindow) {
  publisher_.local = publisher_.remote = {"a.html", "b.html", "c.css"};
  Scheduler s = Make();
  Write(0, "b.html");
  Remove(0, "a.html");
  RunAll(s);
  ASSERT_EQ(publisher_.calls.size(), 2u);
  // The batch at 200 ms uploads and holds the delete back; the delete goes 2 s after the last change.
  EXPECT_EQ(CallTimes(), (std::vector<milliseconds>{milliseconds(200), milliseconds(2000)}));
  EXPECT_EQ(publisher_.calls[0].request.deletes, DeleteMode::kHold);
  EXPECT_EQ(publisher_.calls[0].request.paths, (std::set<std::string>{"a.html", "b.html"}));
  EXPECT_EQ(publisher_.calls[1].request.deletes, DeleteMode::kOnly);
  EXPECT_EQ(publisher_.calls[1].request.paths, (std::set<std::string>{"a.html"}));
  EXPECT_EQ(publisher_.deleted, std::vector<std::string>{"a.html"});
  EXPECT_EQ(publisher_.remote, publisher_.local);
  EXPECT_TRUE(s.PendingDeletes().empty());
}

TEST_F(SchedulerTest, EveryChangeRestartsTheDeleteWindow) {
  publisher_.local = publisher_.remote = {"a.html", "b.html"};
  Scheduler s = Make();
  Remove(0, "a.html");
  Write(1500, "b.html");  // within the window: it starts again from here
  Write(3000, "b.html");
  RunAll(s);
  EXPECT_EQ(CallTimes(), (std::vector<milliseconds>{milliseconds(200), milliseconds(1700), milliseconds(3200),
                                                    milliseconds(5000)}));
  EXPECT_EQ(publisher_.calls.back().request.deletes, DeleteMode::kOnly);
  EXPECT_EQ(publisher_.deleted, std::vector<std::string>{"a.html"});
}

TEST_F(SchedulerTest, AFileThatComesBackWithinTheWindowIsNeverDeleted) {
  publisher_.local = publisher_.remote = {"a.html", "b.html", "c.html"};
  Scheduler s = Make();
  Remove(0, "a.html");
  Remove(0, "b.html");
  Write(900, "a.html");   // a rebuild writes it again, after a pause longer than the quiet period
  Write(1800, "b.html");
  RunAll(s);
  EXPECT_TRUE(publisher_.deleted.empty());
  EXPECT_EQ(publisher_.remote, (std::set<std::string>{"a.html", "b.html", "c.html"}));
  for (const auto& call : publisher_.calls) {
    EXPECT_NE(call.request.deletes, DeleteMode::kWith) << "no batch may delete before the window";
  }
}

TEST_F(SchedulerTest, RootRemovedAndRebuiltSlowlyDeletesOnlyWhatStaysGone) {
  const std::set<std::string> site = {"index.html", "a/index.html", "b/index.html", "css/site.css", "old.html"};
  publisher_.local = publisher_.remote = site;
  Scheduler s = Make();
  // rm -rf public: the files' deletions, then the root itself (the source holds flushing while it is gone).
  At(0, [this] { publisher_.local.clear(); },
     [&](Coalescer& c, Clock::time_point now) {
       for (const auto& p : site) c.Add(p, now);
       c.Hold(true);
     });
  // The root is gone for 5 s: longer than the delete window, yet nothing may be deleted meanwhile.
  At(5000, [this] { publisher_.local = {"index.html"}; },
     [](Coalescer& c, Clock::time_point now) {
       c.AddRescan("root folder was recreated", now);
       c.Hold(false);
     });
  Write(5900, "css/site.css");
  Write(6800, "a/index.html");
  Write(7700, "b/index.html");  // old.html never comes back
  RunAll(s);
  EXPECT_EQ(publisher_.deleted, std::vector<std::string>{"old.html"});
  EXPECT_EQ(publisher_.remote, publisher_.local);
  const auto& last = publisher_.calls.back();
  EXPECT_EQ(last.request.deletes, DeleteMode::kOnly);
  EXPECT_EQ(last.at, kT0 + milliseconds(7700 + 2000));
  for (std::size_t i = 0; i + 1 < publisher_.calls.size(); ++i) {
    EXPECT_EQ(publisher_.calls[i].request.deletes, DeleteMode::kHold);
    EXPECT_GE(publisher_.calls[i].at, kT0 + milliseconds(5000)) << "nothing is published while the root is gone";
  }
}

TEST_F(SchedulerTest, HeldRootSeenByTheSchedulerRestartsTheWindowAtItsReturn) {
  publisher_.local = publisher_.remote = {"a.html", "b.html"};
  Scheduler s = Make();
  Remove(0, "a.html");  // batch at 200 holds the delete; the window would end at 2000
  At(1000, nullptr, [](Coalescer& c, Clock::time_point) { c.Hold(true); });
  At(9000, nullptr, [](Coalescer& c, Clock::time_point) { c.Hold(false); });  // back, with no event
  RunAll(s);
  ASSERT_EQ(publisher_.calls.size(), 2u);
  EXPECT_EQ(publisher_.calls[1].request.deletes, DeleteMode::kOnly);
  EXPECT_GE(publisher_.calls[1].at, kT0 + milliseconds(9000 + 2000)) << "the window counts from the return";
}

TEST_F(SchedulerTest, ZeroDelayDeletesWithTheBatch) {
  publisher_.local = publisher_.remote = {"a.html", "b.html"};
  SchedulerOptions options;
  options.delete_delay = milliseconds(0);
  Scheduler s = Make(options);
  Remove(0, "a.html");
  Write(0, "b.html");
  RunAll(s);
  ASSERT_EQ(publisher_.calls.size(), 1u);
  EXPECT_EQ(publisher_.calls[0].request.deletes, DeleteMode::kWith);
  EXPECT_EQ(publisher_.deleted, std::vector<std::string>{"a.html"});
}

TEST_F(SchedulerTest, TouchesWithoutPathsKeepTheWindowClosed) {
  publisher_.local = publisher_.remote = {"a.html", "big.bin"};
  Scheduler s = Make();
  Remove(0, "a.html");
  // A big file written for 3 s: IN_MODIFY every 150 ms (a Touch), no IN_CLOSE_WRITE yet.
  for (int t = 300; t <= 3300; t += 150) {
    At(t, nullptr, [](Coalescer& c, Clock::time_point now) { c.Touch(now); });
  }
  RunAll(s);
  ASSERT_FALSE(publisher_.calls.empty());
  EXPECT_EQ(publisher_.calls.back().request.deletes, DeleteMode::kOnly);
  EXPECT_EQ(publisher_.calls.back().at, kT0 + milliseconds(3300 + 2000));
}

TEST_F(SchedulerTest, AFailedUploadIsRetriedOnABackoffTimer) {
  publisher_.local = {"x.html"};
  // S3 fails for an hour, then recovers.
  publisher_.uploads_fail = [](Clock::time_point now) { return now < kT0 + std::chrono::minutes(60); };
  Scheduler s = Make();
  Write(0, "x.html");
  RunAll(s, 11);
  std::vector<milliseconds> gaps;
  for (std::size_t i = 1; i < publisher_.calls.size(); ++i) {
    gaps.push_back(std::chrono::duration_cast<milliseconds>(publisher_.calls[i].at - publisher_.calls[i - 1].at));
  }
  EXPECT_EQ(gaps, (std::vector<milliseconds>{seconds(5), seconds(10), seconds(20), seconds(40), seconds(80),
                                             seconds(160), seconds(300), seconds(300), seconds(300),
                                             seconds(300)}));
  for (std::size_t i = 1; i < publisher_.calls.size(); ++i) {
    EXPECT_EQ(publisher_.calls[i].request.paths, std::set<std::string>{"x.html"});
  }
  ASSERT_GE(notes_.size(), 3u);
  EXPECT_EQ(notes_[0], "retrying 1 failed path in 5 s");
  EXPECT_EQ(notes_[1], "retrying 1 failed path in 10 s");
  EXPECT_EQ(notes_[2], "retrying 1 failed path in 20 s");
  EXPECT_TRUE(publisher_.remote.empty());
  // Then S3 recovers: the next retry lands the file with no further change, and the timer stops.
  publisher_.uploads_fail = nullptr;
  publisher_.calls.clear();
  RunAll(s);
  ASSERT_EQ(publisher_.calls.size(), 1u);
  EXPECT_EQ(publisher_.remote, std::set<std::string>{"x.html"});
  EXPECT_FALSE(s.RetryAt());
  EXPECT_EQ(s.Backoff(), seconds(5)) << "a batch that fails nothing resets the backoff";
}

TEST_F(SchedulerTest, AFailedInvalidationIsRetriedWithNothingElse) {
  publisher_.local = {"x.html"};
  publisher_.invalidation_failures = 2;
  Scheduler s = Make();
  Write(0, "x.html");
  RunAll(s);
  EXPECT_EQ(CallTimes(), (std::vector<milliseconds>{milliseconds(200), milliseconds(5200), milliseconds(15200)}));
  EXPECT_TRUE(publisher_.calls[1].request.paths.empty());
  EXPECT_FALSE(publisher_.owed);
  ASSERT_EQ(notes_.size(), 2u);
  EXPECT_EQ(notes_[0], "retrying the owed invalidation in 5 s");
  EXPECT_EQ(notes_[1], "retrying the owed invalidation in 10 s");
}

TEST_F(SchedulerTest, AChangeBeforeTheTimerTakesTheFailuresAlong) {
  publisher_.local = {"x.html", "y.html"};
  publisher_.uploads_fail = [](Clock::time_point now) { return now < kT0 + seconds(1); };
  Scheduler s = Make();
  Write(0, "x.html");
  Write(2000, "y.html");  // before the retry at 5.2 s
  RunAll(s);
  ASSERT_EQ(publisher_.calls.size(), 2u);
  EXPECT_EQ(publisher_.calls[1].at, kT0 + milliseconds(2200));
  EXPECT_EQ(publisher_.calls[1].request.paths, (std::set<std::string>{"x.html", "y.html"}));
  EXPECT_EQ(publisher_.remote, publisher_.local);
  EXPECT_FALSE(s.RetryAt());
}

TEST_F(SchedulerTest, ABatchThatCouldNotRunIsRetriedWhole) {
  publisher_.local = {"x.html"};
  publisher_.not_run_left = 1;
  Scheduler s = Make();
  At(0, nullptr, [](Coalescer& c, Clock::time_point now) {
    c.Add("x.html", now);
    c.AddRescan("inotify queue overflow", now);
  });
  RunAll(s);
  ASSERT_EQ(publisher_.calls.size(), 2u);
  EXPECT_EQ(publisher_.calls[1].at, kT0 + milliseconds(5200));
  EXPECT_TRUE(publisher_.calls[1].request.rescan);
  EXPECT_EQ(publisher_.calls[1].request.paths, std::set<std::string>{"x.html"});
  EXPECT_EQ(notes_.at(0), "retrying the rescan and 1 failed path in 5 s");
  EXPECT_EQ(publisher_.remote, publisher_.local);
}

TEST_F(SchedulerTest, TheInitialSyncsFailuresAreRetriedOnTheTimer) {
  publisher_.local = {"x.html"};
  Scheduler s = Make();
  PublishOutcome initial;
  initial.failed = {"x.html"};
  s.Seed(initial);
  EXPECT_EQ(s.RetryAt(), kT0 + seconds(5));
  RunAll(s);
  EXPECT_EQ(CallTimes(), std::vector<milliseconds>{seconds(5)});
  EXPECT_EQ(publisher_.remote, publisher_.local);
}

TEST_F(SchedulerTest, NoRetryWhileTheRootIsGoneAndTheRescanTakesTheFailuresAlong) {
  publisher_.local = {"x.html"};
  publisher_.uploads_fail = [](Clock::time_point now) { return now < kT0 + seconds(1); };
  Scheduler s = Make();
  Write(0, "x.html");  // fails at 200 ms; the retry would come at 5.2 s
  At(1000, [this] { publisher_.local.clear(); }, [](Coalescer& c, Clock::time_point) { c.Hold(true); });
  At(20000, [this] { publisher_.local = {"x.html"}; },
     [](Coalescer& c, Clock::time_point now) {
       c.AddRescan("root folder was recreated", now);
       c.Hold(false);
     });
  RunAll(s);
  ASSERT_EQ(publisher_.calls.size(), 2u);
  EXPECT_EQ(publisher_.calls[1].at, kT0 + milliseconds(20200));
  EXPECT_TRUE(publisher_.calls[1].request.rescan);
  EXPECT_EQ(publisher_.calls[1].request.paths, std::set<std::string>{"x.html"});
  EXPECT_EQ(publisher_.remote, publisher_.local);
  EXPECT_FALSE(s.RetryAt());
}

TEST_F(SchedulerTest, PollingSettlesAPathOnlyAfterOneMorePollFoundItUnchanged) {
  SchedulerOptions options = ForPolling(SchedulerOptions{}, milliseconds(1000));
  EXPECT_EQ(options.quiet, milliseconds(1200));
  EXPECT_EQ(options.max_delay, milliseconds(2000));
  EXPECT_EQ(ForPolling(SchedulerOptions{}, milliseconds(5000)).max_delay, milliseconds(5200));
  publisher_.local = {"big.bin"};
  Scheduler s = Make(options);
  // A poll every second sees big.bin grow three times, then the same.
  Write(0, "big.bin");
  Write(1000, "big.bin");
  Write(2000, "big.bin");
  RunAll(s);
  EXPECT_EQ(CallTimes(), std::vector<milliseconds>{milliseconds(2000)}) << "the max delay, not a half file per poll";
}

TEST_F(SchedulerTest, NothingIsDueWhileIdle) {
  Scheduler s = Make();
  EXPECT_FALSE(s.NextDeadline());
  ASSERT_TRUE(s.Step().has_value());
  EXPECT_TRUE(source_.exhausted) << "an idle scheduler waits for events with no deadline (no periodic wake-up)";
  EXPECT_TRUE(publisher_.calls.empty());
}

TEST_F(SchedulerTest, StopAfterTheWaitPublishesNothing) {
  publisher_.local = {"x.html"};
  Scheduler s = Make();
  Write(0, "x.html");
  ASSERT_TRUE(s.Step().has_value());  // the change arrives; due at 200 ms
  ASSERT_TRUE(s.Step([] { return true; }).has_value());
  EXPECT_TRUE(publisher_.calls.empty());
}

}  // namespace
}  // namespace sitesync::watcher
