// When a request has waited long enough: the two rules the transfer loop applies to a server that stops talking.
// Pure (no curl, no clock of its own): the loop samples its transfers and passes the time in, so the rules are
// unit-tested with a fake clock (watchdog_test.cc). Private to aws/.
//
// - Per attempt (IdleTimer): an attempt during which no byte moves for the idle limit (15 s) is cut, and retried
//   like any timeout. "Moves" is any of: body bytes handed to the connection, the kernel's send queue draining
//   (the peer acknowledged bytes), response bytes arriving. So a slow upload that keeps moving is never cut,
//   however long it takes (curl's CURLOPT_LOW_SPEED_* would judge it by its speed), while a request whose body was
//   sent and that gets no response byte is cut 15 s after the last byte left.
// - Per endpoint (SilenceRule): an endpoint that has not sent a single response byte since the client started,
//   while requests to it kept waiting for the silent limit (50 s), is given up: every request to it fails at once
//   with a message naming it, and new ones fail without trying for the next silent limit. Without this, a server
//   that accepts connections and never answers holds a run for attempts x idle limit (5 x 15 s). An endpoint
//   that ever answered is never given up by this rule: it is alive, and a long upload to it may be slow.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sitesync::aws {

using WatchClock = std::chrono::steady_clock;

/// What the loop samples from one attempt: counters that change whenever a byte moves.
struct TransferProgress {
  std::uint64_t body_sent = 0;   ///< Request body bytes handed to the connection.
  std::uint64_t send_queue = 0;  ///< Bytes the kernel still holds for the peer (SIOCOUTQ); 0 when not sampled.
  std::uint64_t received = 0;    ///< Response bytes: status line, headers and body.
  bool operator==(const TransferProgress&) const = default;
};

/// One attempt's idle timer: expires when its progress has not changed for `limit`.
class IdleTimer {
 public:
  IdleTimer() = default;
  IdleTimer(WatchClock::time_point start, std::chrono::milliseconds limit) : last_change_(start), limit_(limit) {}

  /// Records a sample taken at `now`; any change from the last one restarts the timer.
  void Observe(const TransferProgress& progress, WatchClock::time_point now) {
    if (progress == last_) return;
    last_ = progress;
    last_change_ = now;
  }
  /// Whether nothing moved for the limit (by the samples seen).
  [[nodiscard]] bool Expired(WatchClock::time_point now) const { return now - last_change_ >= limit_; }
  /// The last sample seen.
  [[nodiscard]] const TransferProgress& Last() const { return last_; }

 private:
  TransferProgress last_;
  WatchClock::time_point last_change_{};
  std::chrono::milliseconds limit_{15000};
};

/// The per-endpoint rule (see the top of this file). Endpoints are the request's endpoint string
/// ("https://host[:port]"). Requests are counted from their first attempt until their final answer.
class SilenceRule {
 public:
  explicit SilenceRule(std::chrono::milliseconds limit) : limit_(limit) {}

  /// Whether a request to `endpoint` may start an attempt at `now`: false while the endpoint is given up (for the
  /// silent limit after it was). Once that is over, the endpoint gets a fresh chance.
  [[nodiscard]] bool MayAttempt(std::string_view endpoint, WatchClock::time_point now);
  /// A request to `endpoint` starts its first attempt (`first`) or a retry at `now`.
  void Attempt(std::string_view endpoint, bool first, WatchClock::time_point now);
  /// A request to `endpoint` that had started got its final answer (success or error).
  void Done(std::string_view endpoint);
  /// A response byte came from `endpoint`: it is alive, and never given up by this rule from now on.
  void Answered(std::string_view endpoint);
  /// The endpoints given up at `now` (not those given up before): never answered, and requests to them have
  /// been waiting for the silent limit.
  [[nodiscard]] std::vector<std::string> Check(WatchClock::time_point now);
  /// The message every request to a given-up `endpoint` fails with: "no answer from ENDPOINT in 50 s (N attempts):
  /// check OPTION and the network", `option` being where the user set the endpoint (--endpoint).
  [[nodiscard]] std::string Message(std::string_view endpoint, std::string_view option) const;

 private:
  struct State {
    bool answered = false;
    int outstanding = 0;  ///< Requests started and not yet answered for good.
    int attempts = 0;     ///< In the current stretch of waiting.
    std::optional<WatchClock::time_point> waiting_since;  ///< Set while requests are outstanding.
    std::optional<WatchClock::time_point> given_up_at;
  };
  State& At(std::string_view endpoint);

  std::chrono::milliseconds limit_;
  std::map<std::string, State, std::less<>> states_;
};

}  // namespace sitesync::aws
