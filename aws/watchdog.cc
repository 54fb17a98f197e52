#include "aws/watchdog.h"

#include <fmt/format.h>

namespace sitesync::aws {

SilenceRule::State& SilenceRule::At(std::string_view endpoint) {
  auto it = states_.find(endpoint);
  if (it == states_.end()) it = states_.emplace(std::string(endpoint), State{}).first;
  return it->second;
}

bool SilenceRule::MayAttempt(std::string_view endpoint, WatchClock::time_point now) {
  State& s = At(endpoint);
  if (!s.given_up_at) return true;
  if (now - *s.given_up_at < limit_) return false;
  // The hold-off is over: a fresh chance, with a fresh count (a server may have come up meanwhile).
  s.given_up_at.reset();
  s.attempts = 0;
  s.waiting_since.reset();
  return true;
}

void SilenceRule::Attempt(std::string_view endpoint, bool first, WatchClock::time_point now) {
  State& s = At(endpoint);
  if (first) ++s.outstanding;
  if (!s.waiting_since) s.waiting_since = now;
  ++s.attempts;
}

void SilenceRule::Done(std::string_view endpoint) {
  State& s = At(endpoint);
  if (s.outstanding > 0) --s.outstanding;
  if (s.outstanding == 0 && !s.given_up_at) {
    // Nobody waits on it any more: an idle gap (a watch between batches) is not silence.
    s.waiting_since.reset();
    s.attempts = 0;
  }
}

void SilenceRule::Answered(std::string_view endpoint) { At(endpoint).answered = true; }

std::vector<std::string> SilenceRule::Check(WatchClock::time_point now) {
  std::vector<std::string> out;
  for (auto& [endpoint, s] : states_) {
    if (s.answered || s.given_up_at || !s.waiting_since || now - *s.waiting_since < limit_) continue;
    s.given_up_at = now;
    out.push_back(endpoint);
  }
  return out;
}

std::string SilenceRule::Message(std::string_view endpoint, std::string_view option) const {
  int attempts = 0;
  if (auto it = states_.find(endpoint); it != states_.end()) attempts = it->second.attempts;
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(limit_).count();
  return fmt::format("no answer from {} in {} s ({} attempt{}): check {} and the network", endpoint, seconds, attempts,
                     attempts == 1 ? "" : "s", option);
}

}  // namespace sitesync::aws
