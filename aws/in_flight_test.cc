#include "aws/in_flight.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <functional>
#include <memory>
#include <queue>
#include <random>
#include <vector>

namespace sitesync::aws {
namespace {

using Clock = InFlightController::Clock;
using std::chrono::microseconds;
using std::chrono::milliseconds;

const Clock::time_point kT0{};

// A discrete-event simulation of the transfer loop in front of a server: `requests` requests, all queued at the
// start; W from the controller; a throttled request goes back to the front of the queue (after a wait when W is at
// its floor or when it was throttled before, keeping its slot meanwhile), as CurlClient does. Time only moves from event to event: nothing sleeps.
struct ServerAnswer {
  AttemptAnswer answer;
  Clock::duration latency;
};
using Server = std::function<ServerAnswer(Clock::time_point now, int in_flight)>;

struct SimResult {
  int completed = 0;
  int throttled = 0;
  int most_throttles_of_one = 0;
  int lowest = 0;
  int highest = 0;
  int final_window = 0;
  Clock::duration elapsed{};
  std::vector<int> windows;  // every value W took, in order
};

SimResult Simulate(InFlightOptions options, int requests, const Server& server, int throttle_budget = 20) {
  InFlightController controller(options);
  struct Running {
    Clock::time_point done;
    Clock::time_point started;
    std::uint64_t ticket;
    AttemptAnswer answer;
    int request;
    bool operator>(const Running& o) const { return done > o.done; }
  };
  std::priority_queue<Running, std::vector<Running>, std::greater<>> running;
  std::deque<int> ready;
  std::vector<std::pair<Clock::time_point, int>> waiting;  // a short wait at the floor
  std::vector<int> throttles(static_cast<std::size_t>(requests), 0);
  for (int i = 0; i < requests; ++i) ready.push_back(i);
  SimResult out;
  out.windows.push_back(controller.Window());
  Clock::time_point now = kT0;
  const auto top_up = [&] {
    for (auto it = waiting.begin(); it != waiting.end();) {
      if (it->first <= now) {
        ready.push_front(it->second);
        it = waiting.erase(it);
      } else {
        ++it;
      }
    }
    // A throttled request waiting out its backoff keeps its slot.
    while (static_cast<int>(running.size() + waiting.size()) < controller.Window() && !ready.empty()) {
      const int r = ready.front();
      ready.pop_front();
      const ServerAnswer a = server(now, static_cast<int>(running.size()) + 1);
      running.push({now + a.latency, now, controller.Started(), a.answer, r});
    }
  };
  top_up();
  while (!running.empty() || !waiting.empty()) {
    Clock::time_point next = Clock::time_point::max();
    if (!running.empty()) next = running.top().done;
    for (const auto& w : waiting) next = std::min(next, w.first);
    now = next;
    while (!running.empty() && running.top().done <= now) {
      const Running r = running.top();
      running.pop();
      const bool backlog = !ready.empty() || !waiting.empty();
      const WindowChange change = controller.Done(r.started, now, r.ticket, r.answer, 1000, backlog);
      if (change.to != change.from) out.windows.push_back(change.to);
      if (r.answer == AttemptAnswer::kThrottled) {
        ++out.throttled;
        int& n = throttles[static_cast<std::size_t>(r.request)];
        ++n;
        out.most_throttles_of_one = std::max(out.most_throttles_of_one, n);
        if (n > throttle_budget) continue;  // failed: not completed
        if (controller.AtFloor() || n > 1) {
          // As CurlClient does, without its jitter: a wait of 50 ms doubling per such answer, at most a second.
          waiting.emplace_back(now + std::min<Clock::duration>(milliseconds(50) * (1 << std::min(n - 1, 10)),
                                                               milliseconds(1000)),
                               r.request);
        } else {
          ready.push_front(r.request);
        }
      } else {
        ++out.completed;
      }
    }
    top_up();
  }
  out.elapsed = now - kT0;
  out.lowest = controller.Lowest();
  out.highest = controller.Highest();
  out.final_window = controller.Window();
  return out;
}

InFlightOptions Adaptive() {
  InFlightOptions o;
  o.adaptive = true;
  return o;
}

// A server without a rate limit that serves each request in 20 ms until `capacity` requests a second, after which
// its latency grows with the load: throughput grows with concurrency up to capacity x 20 ms transfers.
Server Unlimited(double capacity) {
  return [capacity](Clock::time_point, int in_flight) {
    const double seconds = std::max(0.020, in_flight / capacity);
    return ServerAnswer{AttemptAnswer::kOk,
                        std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds))};
  };
}

// S3's per-prefix limit, modelled as a token bucket: `rate` admissions a second, `burst` at most saved up; a
// request that finds no token is answered 503 SlowDown (after the same round trip).
// Latencies vary by +-25% (a fixed seed: the same run every time), as they do on a network: otherwise every
// answer of a round trip comes at the same instant and the simulated client moves in lockstep.
Server TokenBucket(double rate, double burst, milliseconds base_latency) {
  struct Bucket {
    double tokens;
    Clock::time_point at;
    std::mt19937 random{15};
  };
  auto bucket = std::make_shared<Bucket>(Bucket{burst, kT0});
  return [=](Clock::time_point now, int) {
    std::uniform_int_distribution<long> spread(-250, 250);
    const auto latency = std::chrono::duration_cast<Clock::duration>(base_latency * (1000 + spread(bucket->random))) / 1000;
    bucket->tokens = std::min(burst, bucket->tokens + rate * std::chrono::duration<double>(now - bucket->at).count());
    bucket->at = now;
    if (bucket->tokens >= 1) {
      bucket->tokens -= 1;
      return ServerAnswer{AttemptAnswer::kOk, latency};
    }
    return ServerAnswer{AttemptAnswer::kThrottled, latency};
  };
}

TEST(InFlightController, GrowsFrom64To256WhileThroughputGrows) {
  // Throughput grows with concurrency up to 200 x 20 ms = 10,000 requests/s: 64 -> 96 -> 144 -> 216 -> 256.
  const SimResult r = Simulate(Adaptive(), 20'000, Unlimited(10'000));
  EXPECT_EQ(r.completed, 20'000);
  EXPECT_EQ(r.throttled, 0);
  EXPECT_EQ(r.windows.front(), 64);
  EXPECT_EQ(r.highest, 256);
  EXPECT_GE(r.final_window, 200) << "W settles where throughput stopped growing";
  EXPECT_GE(r.lowest, 64);
}

TEST(InFlightController, AShortSlowStretchDoesNotStopTheGrowth) {
  // A server that scales to 256 in flight at 20 ms, but answers in 45 ms for 70 ms early in the run (another
  // process took the cores for a moment, as on a shared 2-core machine): one slow epoch must not end slow start.
  const Server server = [](Clock::time_point now, int) {
    const bool slow = now >= kT0 + milliseconds(60) && now < kT0 + milliseconds(130);
    return ServerAnswer{AttemptAnswer::kOk, slow ? milliseconds(45) : milliseconds(20)};
  };
  const SimResult r = Simulate(Adaptive(), 20'000, server);
  EXPECT_EQ(r.completed, 20'000);
  EXPECT_EQ(r.highest, 256);
}

TEST(InFlightController, StopsGrowingWhereThroughputStops) {
  // A server that serves at most 4,000 requests/s (80 x 20 ms): 96 helps, 144 does not; W ends near 96. Probes
  // from the hold go one step up (216) and come back, less and less often, and cost no throughput.
  const SimResult r = Simulate(Adaptive(), 20'000, Unlimited(4'000));
  EXPECT_EQ(r.completed, 20'000);
  EXPECT_LE(r.highest, 216);
  EXPECT_GE(r.final_window, 80);
  EXPECT_LE(r.final_window, 144);
  EXPECT_LE(r.windows.size(), 12u) << "a probe that gains nothing doubles the wait for the next";
  EXPECT_LE(std::chrono::duration<double>(r.elapsed).count(), 5.0 * 1.02);
}

TEST(InFlightController, GrowsAgainWhenTheWorkChangesUnderAHold) {
  // A site's large assets first, then its small pages: for the first half second the server's bytes a second are
  // the limit (4,000 requests/s whatever W), after it every request is a 20 ms round trip up to 256 in flight.
  // Slow start stops during the first part; a probe from the hold finds the second part's throughput.
  const Server server = [](Clock::time_point now, int in_flight) {
    const double capacity = now < kT0 + milliseconds(500) ? 4'000 : 12'800;
    const double seconds = std::max(0.020, in_flight / capacity);
    return ServerAnswer{AttemptAnswer::kOk,
                        std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds))};
  };
  const SimResult r = Simulate(Adaptive(), 20'000, server);
  EXPECT_EQ(r.completed, 20'000);
  EXPECT_EQ(r.highest, 256);
  EXPECT_GE(r.final_window, 200);
  // 2,000 requests in the first half second, then 18,000 at up to 12,800 a second: about 1.9 s at best; held at
  // 144 it would take 2.5 s.
  EXPECT_LE(std::chrono::duration<double>(r.elapsed).count(), 2.2);
}

TEST(InFlightController, AGrowthSaysHowLongTheAnswersTook) {
  // -v traces every change: a growth names the epoch's mean latency next to the lowest seen, so that a user can
  // tell a server whose answers only queue (the mean grows with W) from one that serves more.
  InFlightController controller(Adaptive());
  WindowChange change;
  Clock::time_point now = kT0;
  for (int answer = 0; answer < 3 * 64 && change.to == change.from; ++answer) {
    now += microseconds(300);
    change = controller.Done(now - milliseconds(answer % 2 == 0 ? 20 : 30), now, controller.Started(),
                             AttemptAnswer::kOk, 1000, true);
  }
  ASSERT_EQ(change.from, 64);
  ASSERT_EQ(change.to, 96);
  EXPECT_NE(change.reason.find("answers in 25.0 ms (20.0 at least): growing"), std::string::npos) << change.reason;
}

TEST(InFlightController, DoesNotGrowWhenTheApplicationSuppliesNoWork) {
  InFlightController c(Adaptive());
  // 40 requests at a time, never a backlog, over many round trips: the window stays at 64.
  Clock::time_point now = kT0;
  for (int round = 0; round < 100; ++round) {
    const Clock::time_point started = now;
    now += milliseconds(20);
    for (int i = 0; i < 40; ++i) {
      const WindowChange change = c.Done(started, now, c.Started(), AttemptAnswer::kOk, 1000, false);
      EXPECT_EQ(change.from, change.to);
    }
  }
  EXPECT_EQ(c.Window(), 64);
}

TEST(InFlightController, KeepsATokenBucketServerBusyAndLosesNothing) {
  // 1,000 requests/s, burst 100, 20 ms: the floor of the run is 5,400 / 1,000 = 5.4 s.
  const SimResult r = Simulate(Adaptive(), 5'400, TokenBucket(1'000, 100, milliseconds(20)));
  EXPECT_EQ(r.completed, 5'400);
  EXPECT_GT(r.throttled, 0);
  EXPECT_LE(r.most_throttles_of_one, 20);
  EXPECT_GE(r.lowest, 8);
  EXPECT_LE(r.highest, 256);
  const double seconds = std::chrono::duration<double>(r.elapsed).count();
  EXPECT_LE(seconds, 5.4 * 1.10) << "utilisation " << 5.4 / seconds;
  // The server needs about 1,000 x 20 ms = 20 in flight (15 at the lowest latency); the window ends near that, not
  // at 64 nor at the floor of 8.
  EXPECT_GE(r.final_window, 12);
  EXPECT_LE(r.final_window, 40);
}

TEST(InFlightController, ASlowServerAnsweringInAMillisecondIsNotFlooded) {
  // 100 requests/s answered in 1 ms: even 8 in flight would send 8,000 a second. The throttled requests wait out
  // a backoff holding their slots, so the window bounds the rate too: nothing fails, and the run stays near the
  // server's limit of 300 / 100 = 3 s.
  const SimResult r = Simulate(Adaptive(), 300, TokenBucket(100, 10, milliseconds(1)));
  EXPECT_EQ(r.completed, 300);
  EXPECT_LE(r.most_throttles_of_one, 10);
  EXPECT_EQ(r.lowest, 8);
  const double seconds = std::chrono::duration<double>(r.elapsed).count();
  EXPECT_LE(seconds, 3.0 * 1.2);
}

TEST(InFlightController, TheAcceptedFloorKeepsTheServerBusy) {
  // 1,000 requests/s at 50 ms needs 50 in flight. With halving alone (no floor) W falls well below that and
  // additive increase climbs back one per round trip, leaving admissions unused; the floor stops the halving at
  // what the server was seen to accept.
  InFlightOptions no_floor = Adaptive();
  no_floor.accepted_floor = false;
  const SimResult plain = Simulate(no_floor, 5'400, TokenBucket(1'000, 100, milliseconds(50)));
  const SimResult floored = Simulate(Adaptive(), 5'400, TokenBucket(1'000, 100, milliseconds(50)));
  EXPECT_EQ(plain.completed, 5'400);
  EXPECT_EQ(floored.completed, 5'400);
  const double plain_s = std::chrono::duration<double>(plain.elapsed).count();
  const double floored_s = std::chrono::duration<double>(floored.elapsed).count();
  EXPECT_LE(floored_s, 5.4 * 1.05);
  EXPECT_LT(floored_s * 1.05, plain_s) << "with floor " << floored_s << " s, without " << plain_s << " s";
  EXPECT_GT(floored.lowest, plain.lowest);
}

TEST(InFlightController, OneDecreasePerRoundTrip) {
  InFlightController c(Adaptive());
  ASSERT_EQ(c.Window(), 64);
  // 64 attempts started before any decrease, all answered SlowDown: one halving only.
  const std::uint64_t before = c.Started();
  const Clock::time_point t1 = kT0 + milliseconds(20);
  WindowChange first = c.Done(kT0, t1, before, AttemptAnswer::kThrottled, 0, true);
  EXPECT_EQ(first.from, 64);
  EXPECT_EQ(first.to, 32);
  EXPECT_FALSE(first.reason.empty());
  for (int i = 1; i < 64; ++i) {
    const WindowChange change = c.Done(kT0, t1, before, AttemptAnswer::kThrottled, 0, true);
    EXPECT_EQ(change.from, change.to) << "answer " << i << " of the same round trip halved again";
  }
  EXPECT_EQ(c.Window(), 32);
  // An attempt started after the decrease and throttled: the next halving.
  const std::uint64_t after = c.Started();
  EXPECT_NE(after, before);
  const WindowChange second = c.Done(t1, t1 + milliseconds(20), after, AttemptAnswer::kThrottled, 0, true);
  EXPECT_EQ(second.to, 16);
  // Never below 8.
  for (int i = 0; i < 10; ++i) {
    (void)c.Done(t1, t1 + milliseconds(40), c.Started(), AttemptAnswer::kThrottled, 0, true);
  }
  EXPECT_EQ(c.Window(), 8);
  EXPECT_TRUE(c.AtFloor());
  EXPECT_EQ(c.Lowest(), 8);
  EXPECT_EQ(c.Highest(), 64);
}

TEST(InFlightController, AdditiveIncreaseAfterADecrease) {
  InFlightController c(Adaptive());
  (void)c.Done(kT0, kT0 + milliseconds(20), c.Started(), AttemptAnswer::kThrottled, 0, true);
  ASSERT_EQ(c.Window(), 32);
  // Full epochs (W answers, a backlog) without throttling: +1 each.
  Clock::time_point now = kT0 + milliseconds(20);
  for (int epoch = 0; epoch < 5; ++epoch) {
    const int w = c.Window();
    const Clock::time_point started = now;
    now += milliseconds(20);
    for (int i = 0; i < w; ++i) (void)c.Done(started, now, c.Started(), AttemptAnswer::kOk, 1000, true);
    EXPECT_EQ(c.Window(), w + 1);
  }
}

TEST(InFlightController, FixedNeverChanges) {
  InFlightOptions fixed;
  fixed.fixed = 12;
  const SimResult r = Simulate(fixed, 2'000, TokenBucket(300, 20, milliseconds(20)), 1000);
  EXPECT_EQ(r.completed, 2'000);
  EXPECT_GT(r.throttled, 0);
  EXPECT_EQ(r.lowest, 12);
  EXPECT_EQ(r.highest, 12);
  EXPECT_EQ(r.windows, std::vector<int>{12});
}

TEST(InFlightController, ThrottlingAnswers) {
  EXPECT_TRUE(IsThrottlingAnswer(503, ""));
  EXPECT_TRUE(IsThrottlingAnswer(503, "ServiceUnavailable"));
  EXPECT_TRUE(IsThrottlingAnswer(429, ""));
  EXPECT_TRUE(IsThrottlingAnswer(400, "Throttling"));
  EXPECT_TRUE(IsThrottlingAnswer(400, "ThrottlingException"));
  EXPECT_TRUE(IsThrottlingAnswer(400, "RequestLimitExceeded"));
  EXPECT_TRUE(IsThrottlingAnswer(400, "TooManyRequestsException"));
  EXPECT_TRUE(IsThrottlingAnswer(400, "RequestThrottled"));
  EXPECT_FALSE(IsThrottlingAnswer(500, "InternalError"));
  EXPECT_FALSE(IsThrottlingAnswer(400, "RequestTimeout"));
  EXPECT_FALSE(IsThrottlingAnswer(403, "AccessDenied"));
}

// HandshakeGate, driven as the loop drives it: hand curl what the gate allows, let curl run (each transfer without
// an idle connection opens a socket), then finish handshakes one by one.
TEST(HandshakeGate, TwoHundredFiftySixStartsNeverHaveMoreThanTheCapInTheirHandshakes) {
  HandshakeGate gate(64);
  int running = 0;
  int in_handshake = 0;  // sockets opened whose handshake is not done
  int most_setting_up = 0;
  for (int round = 0; round < 1000 && running < 256; ++round) {
    while (running < 256 && gate.MayStart(running)) {
      gate.Started(running);
      ++running;
      most_setting_up = std::max(most_setting_up, gate.SettingUp());
    }
    // curl runs: the new transfers open their sockets.
    const int opened = gate.SettingUp() - in_handshake;
    for (int i = 0; i < opened; ++i) gate.SocketOpened();
    in_handshake += opened;
    gate.CurlRan();
    EXPECT_EQ(gate.SettingUp(), in_handshake);
    // Ten handshakes finish before the loop looks again.
    for (int i = 0; i < 10 && in_handshake > 0; ++i, --in_handshake) gate.HandshakeDone();
  }
  EXPECT_EQ(running, 256);
  EXPECT_LE(most_setting_up, 64);
  EXPECT_EQ(most_setting_up, 64);
}

TEST(HandshakeGate, IdleConnectionsAreReusedWhateverTheCap) {
  HandshakeGate gate(4);
  for (int i = 0; i < 100; ++i) {
    gate.SocketOpened();
    gate.HandshakeDone();
  }
  // 100 connections ready and idle: 100 transfers may start at once; the 101st needs a new connection.
  int running = 0;
  while (running < 100) {
    ASSERT_TRUE(gate.MayStart(running)) << running;
    gate.Started(running++);
  }
  EXPECT_EQ(gate.SettingUp(), 0);
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(gate.MayStart(running));
    gate.Started(running++);
  }
  EXPECT_EQ(gate.SettingUp(), 4);
  EXPECT_FALSE(gate.MayStart(running));
}

TEST(HandshakeGate, AFailedHandshakeFreesItsPlaceAndNothingRunningIsNeverHeld) {
  HandshakeGate gate(2);
  gate.Started(0);
  gate.Started(1);
  gate.SocketOpened();
  gate.SocketOpened();
  gate.CurlRan();
  EXPECT_FALSE(gate.MayStart(2));
  gate.SocketClosed();  // refused mid-handshake: no HandshakeDone
  EXPECT_TRUE(gate.MayStart(1));
  // Counts gone wrong (a socket never reported closed) cannot stop a loop with nothing running.
  HandshakeGate stuck(1);
  stuck.SocketOpened();
  EXPECT_TRUE(stuck.MayStart(0));
}

TEST(HandshakeGate, AConnectionThatWasReadyAndClosedIsNotCountedAsSettingUp) {
  HandshakeGate gate(1);
  gate.SocketOpened();
  gate.HandshakeDone();
  gate.SocketClosed();
  gate.ReadyClosed();
  EXPECT_EQ(gate.SettingUp(), 0);
  // Either order of the two reports.
  gate.SocketOpened();
  gate.HandshakeDone();
  gate.ReadyClosed();
  EXPECT_EQ(gate.SettingUp(), 1);  // for a moment: the socket is still open
  gate.SocketClosed();
  EXPECT_EQ(gate.SettingUp(), 0);
}

}  // namespace
}  // namespace sitesync::aws
