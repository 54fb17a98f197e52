// How many transfers the loop lets run at once: the window W. Pure (no curl, no clock of its own): the loop tells
// it when attempts start and how they ended, with the time, and asks for W; in_flight_test.cc drives it with a
// simulated server and clock. Private to aws/.
//
// Fixed (--jobs N, jobs: N): W = N, always. Adaptive (the default), AIMD as TCP does it and the AWS SDKs' adaptive
// retry mode does for request rates:
// - Measured in epochs: an epoch ends when about W answers came in since it began (a round trip's worth). After a
//   change of W, one epoch settles (the new transfers are still on their first round trip) before one is measured.
// - Slow start from `start` (64): while the server never asked to slow down and the window was full (requests
//   waited for a slot: growing is pointless when the application does not supply the work), W grows by half each
//   measured epoch as long as the throughput (requests or bytes a second) grew by at least 5% over the best seen.
//   When three measured epochs in a row at one window beat nothing (one short epoch is noisy: on a shared machine
//   a single slow stretch would end slow start early), W holds (back at the best window, if the step made things
//   worse).
// - A hold is not for good: the work changes under it. A site's assets come first and its pages after them, so a
//   run moves from large bodies, where the server's bytes a second are the limit and more transfers gain nothing,
//   to small ones a round trip apart, where only more transfers gain. After `kProbeAfter` (4) full epochs held,
//   slow start resumes for one step, measured against the epoch just before it; a probe that gains nothing goes
//   back and doubles the wait for the next one (at most 64 epochs).
// - A throttling answer (503, 429, or a service code such as SlowDown, Throttling, RequestLimitExceeded) to a
//   request started after the last decrease halves W, never below `min` (8). Answers to requests started before
//   it do not halve again: one decrease per round trip. Then congestion avoidance: +1 per full epoch without a
//   throttling answer, up to `max` (256).
// - The halving stops at what the server demonstrably accepts: the rate of successful answers over the last half
//   second times the lowest latency seen (Little's law: the fewest transfers that could carry that rate). Against a
//   server that admits a fixed rate (S3's per-prefix limit, a token bucket), a window below that product leaves the
//   server's capacity unused for as long as additive increase takes to climb back, which the simulation of such a
//   server measured as a quarter of the run; at or above it, every admission the server offers is taken, and the
//   excess is only answered "slow down" and retried.
#pragma once

#include <chrono>
#include <cstdint>
#include <algorithm>
#include <deque>
#include <string>

namespace sitesync::aws {

/// How the window is set: fixed, or adaptive within [min, max] from `start`.
struct InFlightOptions {
  bool adaptive = false;
  int fixed = 64;   ///< The window when not adaptive.
  int min = 8;
  int start = 64;
  int max = 256;
  /// Whether a halving stops at the accepted rate times the lowest latency (see the top of this file); off only
  /// in the test that shows what it is for.
  bool accepted_floor = true;
};

/// How an attempt ended, for the window.
enum class AttemptAnswer {
  kOk,         ///< A 2xx answer.
  kThrottled,  ///< The server asked to slow down (see IsThrottlingAnswer).
  kOther,      ///< Any other error or failure: says nothing about the server's rate.
};

/// Whether an HTTP answer asks the client to slow down: 503 (any code), 429, or a throttling service code.
[[nodiscard]] bool IsThrottlingAnswer(long status, std::string_view service_code);

/// A change of the window, for the -v trace.
struct WindowChange {
  int from = 0;
  int to = 0;
  std::string reason;
};

class InFlightController {
 public:
  using Clock = std::chrono::steady_clock;

  explicit InFlightController(InFlightOptions options);

  /// How many attempts may run at once now.
  [[nodiscard]] int Window() const { return window_; }
  [[nodiscard]] bool Adaptive() const { return options_.adaptive; }
  /// Whether W is at its floor (`min`): a throttled request then waits a little before it is retried.
  [[nodiscard]] bool AtFloor() const { return window_ <= options_.min; }

  /// An attempt starts; the returned ticket goes back to Done (it says which decrease the attempt started after).
  [[nodiscard]] std::uint64_t Started() const { return decreases_; }

  /// An attempt started at `started` with `ticket` ended at `now`, carrying `bytes` (body sent and received).
  /// `backlog`: requests were waiting for a slot (the window was full). Returns the change of W it caused, if any
  /// (from == to when none).
  WindowChange Done(Clock::time_point started, Clock::time_point now, std::uint64_t ticket, AttemptAnswer answer,
                    std::uint64_t bytes, bool backlog);

  /// The smallest and largest W so far.
  [[nodiscard]] int Lowest() const { return lowest_; }
  [[nodiscard]] int Highest() const { return highest_; }

 private:
  enum class Phase { kSlowStart, kHold, kAvoidance };

  WindowChange Set(int to, std::string reason, Clock::time_point now);
  WindowChange EndEpoch(Clock::time_point now);
  int AcceptedFloor(Clock::time_point now) const;

  InFlightOptions options_;
  int window_;
  int lowest_;
  int highest_;
  Phase phase_ = Phase::kSlowStart;
  std::uint64_t decreases_ = 0;

  // The current epoch.
  bool epoch_open_ = false;
  bool settling_ = true;  ///< The first epoch after a change: not measured.
  bool throttled_in_epoch_ = false;
  Clock::time_point epoch_start_{};
  int epoch_answers_ = 0;
  int epoch_backlogged_ = 0;
  std::uint64_t epoch_bytes_ = 0;
  Clock::duration epoch_latency_{};  ///< The sum of the latencies of the epoch's successful answers.
  int epoch_ok_ = 0;

  // Slow start's best measured epoch.
  double best_rate_ = 0;
  double best_byte_rate_ = 0;
  int best_window_ = 0;
  int misses_ = 0;  ///< Measured epochs at this window that did not beat the best.

  // Probing from a hold.
  int held_epochs_ = 0;   ///< Full epochs since the hold began or the last probe.
  int probe_after_ = 0;   ///< Full epochs to hold before the next probe (set when the first hold begins).
  int probe_from_ = 0;    ///< The window the running probe started from; 0: no probe running.

  // For the floor: successful answers in the last half second, and the lowest latency seen.
  std::deque<Clock::time_point> recent_ok_;
  Clock::time_point first_ok_{};
  bool any_ok_ = false;
  Clock::duration min_latency_ = Clock::duration::max();
};

/// How many new TLS connections may be in their handshake at once: the loop asks before it hands curl a transfer.
/// A connection in its handshake holds some 35 KB that it gives back when the handshake is done (OpenSSL's
/// handshake message buffer of 21.8 KB and its 8 KB write buffering, the key exchange): 256 transfers started at
/// once (`--jobs 256`) opened 256 connections that were all in their handshakes together, 9 of a run's 43 MiB at
/// its peak. Pure: the loop reports sockets and handshakes (only those of https endpoints) and curl's runs.
class HandshakeGate {
 public:
  static constexpr int kDefaultCap = 64;  ///< The adaptive window's start: its first round trip is never held.
  explicit HandshakeGate(int cap = kDefaultCap) : cap_(cap) {}

  /// Whether a transfer to an https endpoint may be handed to curl now, with `running` such transfers already
  /// handed. Yes when an idle connection should be there for it (fewer transfers than connections), or when fewer
  /// than `cap` connections are being set up; always when none runs (so that the loop can never wait on nothing).
  [[nodiscard]] bool MayStart(int running) const;
  /// A transfer was handed to curl (after MayStart): counts the connection it will open, if no idle one is there.
  void Started(int running_before);
  /// curl ran: it has opened the sockets of the transfers handed to it so far, or reused connections for them.
  void CurlRan() { expected_ = 0; }
  void SocketOpened() { ++open_; }
  void SocketClosed() { open_ = std::max(0, open_ - 1); }
  /// A connection's first handshake is done; a connection whose handshake was done went away.
  void HandshakeDone() { ++ready_; }
  void ReadyClosed() { ready_ = std::max(0, ready_ - 1); }

  [[nodiscard]] int SettingUp() const { return std::max(0, open_ - ready_) + expected_; }

 private:
  int cap_;
  int open_ = 0;      ///< Sockets open to https endpoints.
  int ready_ = 0;     ///< Of them, those whose handshake is done.
  int expected_ = 0;  ///< Transfers handed to curl since it last ran that will open a socket.
};

}  // namespace sitesync::aws
