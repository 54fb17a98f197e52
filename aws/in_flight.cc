#include "aws/in_flight.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace sitesync::aws {
namespace {

// Throughput must grow by this much over the best epoch for slow start to go on.
constexpr double kGrowth = 1.05;
// Slow start's step: W x 3/2.
constexpr int kGrowNum = 3;
constexpr int kGrowDen = 2;
// Full epochs held before slow start is tried again, at first and at most (it doubles after a probe that gained
// nothing).
constexpr int kProbeAfter = 4;
constexpr int kProbeAfterMost = 64;
// How far back the accepted rate of the floor looks.
constexpr std::chrono::milliseconds kAcceptedSpan{500};

double Seconds(InFlightController::Clock::duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

bool IsThrottlingAnswer(long status, std::string_view service_code) {
  if (status == 503 || status == 429) return true;
  static constexpr std::string_view kCodes[] = {"SlowDown",         "Throttling",
                                                "ThrottlingException", "ThrottledException",
                                                "RequestLimitExceeded", "TooManyRequestsException",
                                                "RequestThrottled",  "RequestThrottledException",
                                                "ProvisionedThroughputExceededException",
                                                "BandwidthLimitExceeded", "SlowDownRead", "SlowDownWrite"};
  return std::find(std::begin(kCodes), std::end(kCodes), service_code) != std::end(kCodes);
}

InFlightController::InFlightController(InFlightOptions options) : options_(options) {
  options_.min = std::max(1, options_.min);
  options_.max = std::max(options_.min, options_.max);
  options_.start = std::clamp(options_.start, options_.min, options_.max);
  window_ = options_.adaptive ? options_.start : std::max(1, options_.fixed);
  lowest_ = highest_ = window_;
}

WindowChange InFlightController::Set(int to, std::string reason, Clock::time_point now) {
  WindowChange change{window_, to, std::move(reason)};
  window_ = to;
  lowest_ = std::min(lowest_, to);
  highest_ = std::max(highest_, to);
  epoch_start_ = now;
  epoch_answers_ = 0;
  epoch_backlogged_ = 0;
  epoch_bytes_ = 0;
  epoch_latency_ = {};
  epoch_ok_ = 0;
  throttled_in_epoch_ = false;
  return change;
}

int InFlightController::AcceptedFloor(Clock::time_point now) const {
  if (!options_.accepted_floor || !any_ok_ || min_latency_ == Clock::duration::max()) return 0;
  // Only over a full span: the first round trips' burst (a bucket's saved-up admissions) is no steady rate.
  if (now - first_ok_ < kAcceptedSpan) return 0;
  const double rate = static_cast<double>(recent_ok_.size()) / Seconds(kAcceptedSpan);
  return static_cast<int>(std::ceil(rate * Seconds(min_latency_)));
}

WindowChange InFlightController::Done(Clock::time_point started, Clock::time_point now, std::uint64_t ticket,
                                      AttemptAnswer answer, std::uint64_t bytes, bool backlog) {
  WindowChange none{window_, window_, {}};
  if (!options_.adaptive) return none;
  if (!epoch_open_) {
    epoch_open_ = true;
    epoch_start_ = started;
  }
  if (answer == AttemptAnswer::kOk) {
    min_latency_ = std::min(min_latency_, now - started);
    if (!any_ok_) first_ok_ = now;
    any_ok_ = true;
    recent_ok_.push_back(now);
    epoch_latency_ += now - started;
    ++epoch_ok_;
    while (!recent_ok_.empty() && now - recent_ok_.front() > kAcceptedSpan) recent_ok_.pop_front();
  }
  if (answer == AttemptAnswer::kThrottled) {
    throttled_in_epoch_ = true;
    if (ticket == decreases_) {
      // The first throttling answer to an attempt started after the last decrease: one decrease per round trip.
      ++decreases_;
      phase_ = Phase::kAvoidance;
      const int half = std::max(options_.min, window_ / 2);
      const int floor = std::min(AcceptedFloor(now), window_ - 1);
      const int to = std::max(half, floor);
      if (to == window_) return none;
      settling_ = false;  // congestion avoidance counts every epoch
      return Set(to,
                 floor > half ? fmt::format("the server asked to slow down; halving stopped at {} (the {:.0f} "
                                            "requests/s it accepted x the lowest latency {:.0f} ms)",
                                            to, static_cast<double>(recent_ok_.size()) / Seconds(kAcceptedSpan),
                                            Seconds(min_latency_) * 1000)
                              : "the server asked to slow down: halved",
                 now);
    }
  }
  ++epoch_answers_;
  if (backlog) ++epoch_backlogged_;
  epoch_bytes_ += bytes;
  if (epoch_answers_ < std::max(window_, options_.min)) return none;
  return EndEpoch(now);
}

WindowChange InFlightController::EndEpoch(Clock::time_point now) {
  WindowChange none{window_, window_, {}};
  const double elapsed = std::max(Seconds(now - epoch_start_), 1e-6);
  const double rate = epoch_answers_ / elapsed;
  const double byte_rate = static_cast<double>(epoch_bytes_) / elapsed;
  // Full: requests were waiting for a slot at (at least) half the answers of the epoch.
  const bool full = epoch_backlogged_ * 2 >= epoch_answers_;
  const bool throttled = throttled_in_epoch_;
  const double mean_latency = epoch_ok_ > 0 ? Seconds(epoch_latency_) / epoch_ok_ : 0;
  epoch_start_ = now;
  epoch_answers_ = 0;
  epoch_backlogged_ = 0;
  epoch_bytes_ = 0;
  epoch_latency_ = {};
  epoch_ok_ = 0;
  throttled_in_epoch_ = false;
  if (settling_) {
    settling_ = false;
    return none;
  }
  switch (phase_) {
    case Phase::kSlowStart: {
      if (!full) return none;
      const bool grew = best_window_ == 0 || rate >= best_rate_ * kGrowth || byte_rate >= best_byte_rate_ * kGrowth;
      if (grew) {
        misses_ = 0;
        best_rate_ = rate;
        best_byte_rate_ = byte_rate;
        best_window_ = window_;
        if (window_ >= options_.max) {
          phase_ = Phase::kHold;
          probe_from_ = 0;
          return none;
        }
        settling_ = true;
        return Set(std::min(options_.max, window_ * kGrowNum / kGrowDen),
                   fmt::format("throughput {:.0f} requests/s, {:.1f} MB/s, answers in {:.1f} ms ({:.1f} at least): "
                               "growing",
                               rate, byte_rate / 1e6, mean_latency * 1000, Seconds(min_latency_) * 1000),
                   now);
      }
      if (++misses_ < 3) return none;  // measure this window again: one short epoch is noisy (see the header)
      phase_ = Phase::kHold;
      held_epochs_ = 0;
      // A probe that gained nothing (the best window is still the one it started from) goes back there and doubles
      // the wait for the next; otherwise (the first hold, or a probe that grew W) the wait starts at kProbeAfter.
      const int probed_from = probe_from_;
      probe_from_ = 0;
      if (probed_from != 0 && best_window_ == probed_from) {
        probe_after_ = std::min(probe_after_ * 2, kProbeAfterMost);
        if (window_ != probed_from) {
          return Set(probed_from,
                     fmt::format("no more throughput at {} ({:.0f} requests/s, {:.0f} at {}): back to {}", window_,
                                 rate, best_rate_, probed_from, probed_from),
                     now);
        }
        return none;
      }
      probe_after_ = kProbeAfter;
      if (rate < best_rate_ && byte_rate < best_byte_rate_ && best_window_ != window_) {
        return Set(best_window_,
                   fmt::format("throughput stopped growing ({:.0f} requests/s here, {:.0f} at {}): back to {}", rate,
                               best_rate_, best_window_, best_window_),
                   now);
      }
      return none;
    }
    case Phase::kHold: {
      if (!full || window_ >= options_.max || ++held_epochs_ < probe_after_) return none;
      // Probe: this epoch is the measure to beat (the work may have changed since the hold began).
      phase_ = Phase::kSlowStart;
      held_epochs_ = 0;
      misses_ = 0;
      best_rate_ = rate;
      best_byte_rate_ = byte_rate;
      best_window_ = window_;
      probe_from_ = window_;
      settling_ = true;
      return Set(std::min(options_.max, window_ * kGrowNum / kGrowDen),
                 fmt::format("held at {} with {:.0f} requests/s, {:.1f} MB/s: trying more", window_, rate,
                             byte_rate / 1e6),
                 now);
    }
    case Phase::kAvoidance:
      if (throttled || !full || window_ >= options_.max) return none;
      return Set(window_ + 1, "a round trip without throttling: +1", now);
  }
  return none;
}

bool HandshakeGate::MayStart(int running) const {
  if (running <= 0) return true;
  if (running < open_ + expected_) return true;
  return SettingUp() < cap_;
}

void HandshakeGate::Started(int running_before) {
  if (running_before >= open_ + expected_) ++expected_;
}

}  // namespace sitesync::aws
