// What invalidations cost this month: the paths a distribution was sent in the current UTC calendar month, read
// back from CloudFront (ListInvalidations, GetInvalidation), plus a plan's, against the free ones.
#include <charconv>

#include <fmt/format.h>

#include "cdn/cdn.h"

namespace sitesync::cdn {
namespace {

using aws::ErrorCode;
using aws::Fail;

// Digits at text[pos, pos+n) as a number; false when they are not all digits.
bool Digits(std::string_view text, std::size_t pos, std::size_t n, int& out) {
  if (pos + n > text.size()) return false;
  const char* first = text.data() + pos;
  for (std::size_t i = 0; i < n; ++i) {
    if (first[i] < '0' || first[i] > '9') return false;
  }
  return std::from_chars(first, first + n, out).ec == std::errc();
}

bool At(std::string_view text, std::size_t pos, char c) { return pos < text.size() && text[pos] == c; }

std::chrono::year_month MonthOf(std::chrono::sys_seconds t) {
  const std::chrono::year_month_day ymd{std::chrono::floor<std::chrono::days>(t)};
  return ymd.year() / ymd.month();
}

}  // namespace

std::optional<std::chrono::sys_seconds> ParseIsoTime(std::string_view text) {
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (!Digits(text, 0, 4, year) || !At(text, 4, '-') || !Digits(text, 5, 2, month) || !At(text, 7, '-') ||
      !Digits(text, 8, 2, day) || !(At(text, 10, 'T') || At(text, 10, 't')) || !Digits(text, 11, 2, hour) ||
      !At(text, 13, ':') || !Digits(text, 14, 2, minute) || !At(text, 16, ':') || !Digits(text, 17, 2, second)) {
    return std::nullopt;
  }
  std::size_t pos = 19;
  if (At(text, pos, '.')) {
    ++pos;
    const std::size_t start = pos;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') ++pos;
    if (pos == start) return std::nullopt;
  }
  std::chrono::seconds offset{0};
  if (At(text, pos, 'Z') || At(text, pos, 'z')) {
    ++pos;
  } else if (At(text, pos, '+') || At(text, pos, '-')) {
    const int sign = text[pos] == '-' ? -1 : 1;
    int oh = 0, om = 0;
    if (!Digits(text, pos + 1, 2, oh) || !At(text, pos + 3, ':') || !Digits(text, pos + 4, 2, om)) return std::nullopt;
    offset = sign * (std::chrono::hours(oh) + std::chrono::minutes(om));
    pos += 6;
  } else {
    return std::nullopt;  // CloudFront's timestamps carry their zone; a local time would be a guess
  }
  if (pos != text.size() || hour > 23 || minute > 59 || second > 60) return std::nullopt;
  const std::chrono::year_month_day ymd{std::chrono::year(year), std::chrono::month(static_cast<unsigned>(month)),
                                        std::chrono::day(static_cast<unsigned>(day))};
  if (!ymd.ok()) return std::nullopt;
  const std::chrono::sys_seconds local = std::chrono::sys_days(ymd) + std::chrono::hours(hour) +
                                         std::chrono::minutes(minute) + std::chrono::seconds(second);
  return local - offset;  // 10:00+02:00 is 08:00 UTC
}

MonthCost PriceMonth(std::uint64_t submitted, std::uint64_t planned) {
  MonthCost c;
  c.submitted = submitted;
  c.planned = planned;
  c.total = submitted + planned;
  c.above_free = c.total > kFreeInvalidationPathsPerMonth ? c.total - kFreeInvalidationPathsPerMonth : 0;
  c.price_milli_usd = c.above_free * kInvalidationPathPriceMilliUsd;
  c.planned_above_free = std::min(c.planned, c.above_free);
  return c;
}

aws::Result<MonthCost> CountMonth(InvalidationHistory& history, const std::string& distribution_id,
                                  std::chrono::system_clock::time_point now, std::uint64_t planned) {
  const std::chrono::year_month month = MonthOf(std::chrono::floor<std::chrono::seconds>(now));
  std::uint64_t invalidations = 0;
  std::uint64_t submitted = 0;
  std::string marker;
  for (int page = 0; page < 100000; ++page) {
    auto listed = history.ListInvalidations(distribution_id, marker);
    if (!listed) return std::unexpected(listed.error());
    bool older_seen = false;
    for (const InvalidationSummary& s : listed->items) {
      const auto created = ParseIsoTime(s.create_time);
      if (!created) {
        return Fail(ErrorCode::kParse, fmt::format("ListInvalidations on distribution {}: invalidation {} has no "
                                                   "readable CreateTime ('{}')",
                                                   distribution_id, s.id, s.create_time));
      }
      const std::chrono::year_month created_month = MonthOf(*created);
      if (created_month != month) {
        if (created_month < month) older_seen = true;
        continue;
      }
      auto detail = history.GetInvalidation(distribution_id, s.id);
      if (!detail) return std::unexpected(detail.error());
      ++invalidations;
      submitted += detail->paths.size();
    }
    // CloudFront lists the newest first: a page that reaches back before the month ends the search.
    if (older_seen || listed->next_marker.empty() || listed->next_marker == marker) break;
    marker = listed->next_marker;
  }
  MonthCost cost = PriceMonth(submitted, planned);
  cost.distribution_id = distribution_id;
  cost.month = fmt::format("{:04}-{:02}", static_cast<int>(month.year()), static_cast<unsigned>(month.month()));
  cost.invalidations = invalidations;
  return cost;
}

std::string FormatUsd(std::uint64_t milli_usd) {
  const std::uint64_t dollars = milli_usd / 1000;
  const std::uint64_t rest = milli_usd % 1000;
  if (rest % 10 == 0) return fmt::format("${}.{:02}", FormatCount(dollars), rest / 10);
  return fmt::format("${}.{:03}", FormatCount(dollars), rest);
}

std::string FormatCount(std::uint64_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

std::string CostLine(const MonthCost& c) {
  std::string line = fmt::format("this month ({}, UTC): {} paths submitted to {} + {} in this plan = {}: ", c.month,
                                 FormatCount(c.submitted), c.distribution_id, FormatCount(c.planned),
                                 FormatCount(c.total));
  if (c.above_free == 0) {
    line += fmt::format("within the {} free, $0.00", FormatCount(kFreeInvalidationPathsPerMonth));
  } else {
    line += fmt::format("{} above the {} free, {}", FormatCount(c.above_free),
                        FormatCount(kFreeInvalidationPathsPerMonth), FormatUsd(c.price_milli_usd));
  }
  line += fmt::format(" at {} a path (the {} free paths a month are per AWS account, across all its "
                      "distributions; only {} is counted here)",
                      FormatUsd(kInvalidationPathPriceMilliUsd), FormatCount(kFreeInvalidationPathsPerMonth),
                      c.distribution_id);
  return line;
}

}  // namespace sitesync::cdn
