#include "cli/output.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace sitesync::cli {
namespace {

using Clock = std::chrono::steady_clock;

// Shared with EraseProgressLineFromSignal: a handler may run on any thread, so lock-free atomics (which are
// async-signal-safe) rather than plain members.
std::atomic<bool> g_progress_on_screen{false};
std::atomic<bool> g_stop_drawing{false};
static_assert(std::atomic<bool>::is_always_lock_free);

// SGR colours (ECMA-48). Modest: only prefixes and the summary are coloured.
constexpr std::string_view kRed = "\033[31m";
constexpr std::string_view kYellow = "\033[33m";
constexpr std::string_view kGreen = "\033[32m";
constexpr std::string_view kDim = "\033[2m";
constexpr std::string_view kReset = "\033[0m";

std::string Paint(bool on, std::string_view sgr, std::string_view text) {
  if (!on || text.empty()) return std::string(text);
  return fmt::format("{}{}{}", sgr, text, kReset);
}

// The width of the terminal on stderr: TIOCGWINSZ, else $COLUMNS, else 80. Asked at every draw, so a resized
// window is followed.
std::size_t TerminalColumns() {
  struct winsize ws {};
  if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  if (const char* env = std::getenv("COLUMNS"); env != nullptr) {
    std::size_t cols = 0;
    const char* end = env + std::strlen(env);
    if (auto [ptr, ec] = std::from_chars(env, end, cols); ec == std::errc() && ptr == end && cols > 0) return cols;
  }
  return 80;
}

std::string HumanBytes(double bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int unit = 0;
  while (bytes >= 1024 && unit < 4) {
    bytes /= 1024;
    ++unit;
  }
  return unit == 0 ? fmt::format("{:.0f} {}", bytes, kUnits[unit]) : fmt::format("{:.1f} {}", bytes, kUnits[unit]);
}

// Why a file is uploaded, for the upload events and the dry-run lines.
std::string_view ReasonName(sync::UploadReason reason) {
  switch (reason) {
    case sync::UploadReason::kNew: return "new";
    case sync::UploadReason::kSizeChanged: return "size changed";
    case sync::UploadReason::kContentChanged: return "content changed";
    case sync::UploadReason::kForced: return "forced";
    case sync::UploadReason::kHeadersChanged: return "headers changed";
  }
  return "";
}

// The note for files a size-only run without a record could not tell apart (SyncResult::newer_same_size).
std::string NewerSameSizeNote(std::uint64_t count) {
  return fmt::format("note: {} file{} of the same size as {} object{} but newer {} not compared by content (no "
                     "local record of {} upload yet); --compare checksum compares them",
                     count, count == 1 ? "" : "s", count == 1 ? "its" : "their", count == 1 ? "" : "s",
                     count == 1 ? "was" : "were", count == 1 ? "its" : "their");
}

// The note for the answers that asked to slow down (SyncResult::throttled): all were retried.
std::string ThrottledNote(std::uint64_t count) {
  return fmt::format("note: the server asked to slow down {} time{}; {} retried",
                     count, count == 1 ? "" : "s", count == 1 ? "that request was" : "each request was");
}

// One JSON object per line on stdout and nothing else there (CLI.md); human messages go to stderr.
// Never coloured, and no progress line: its stderr lines are for logs. -q keeps stderr to errors only; the JSON
// lines on stdout are what was asked for and stay.
class JsonOutput final : public Output {
 public:
  explicit JsonOutput(bool quiet) : quiet_(quiet) {}
  void OnWarning(std::string_view message) override {
    if (quiet_) return;
    std::fprintf(stderr, "warning: %.*s\n", Len(message), message.data());
  }
  void OnPlan(const sync::Plan&, bool) override {}
  void OnUploaded(std::string_view key, std::uint64_t bytes, bool planned, sync::UploadReason reason) override {
    nlohmann::ordered_json j{{"event", "upload"}, {"key", std::string(key)}, {"bytes", bytes}};
    if (planned) j["planned"] = true;
    j["reason"] = ReasonName(reason);
    Emit(j);
  }
  void OnDeleted(std::string_view key, bool planned) override {
    nlohmann::ordered_json j{{"event", "delete"}, {"key", std::string(key)}};
    if (planned) j["planned"] = true;
    Emit(j);
  }
  void OnError(std::string_view key, std::string_view message) override {
    Emit({{"event", "error"}, {"key", std::string(key)}, {"message", std::string(message)}});
  }
  void OnSkipped(std::string_view key, std::string_view reason) override {
    Emit({{"event", "skip"}, {"key", std::string(key)}, {"reason", std::string(reason)}});
  }
  void OnProgress(std::uint64_t, std::uint64_t) override {}
  void Fatal(std::string_view message) override {
    std::fprintf(stderr, "sitesync: %.*s\n", Len(message), message.data());
    Emit({{"event", "error"}, {"message", std::string(message)}});
  }
  void OnInvalidation(std::string_view id, std::span<const std::string> paths, bool planned) override {
    nlohmann::ordered_json j{{"event", "invalidate"}};
    if (!planned) j["id"] = std::string(id);
    j["paths"] = std::vector<std::string>(paths.begin(), paths.end());
    if (planned) j["planned"] = true;
    Emit(j);
  }
  void OnCost(const cdn::MonthCost& c) override {
    nlohmann::ordered_json j{{"event", "cost"},
                             {"distribution", c.distribution_id},
                             {"month", c.month},
                             {"invalidations", c.invalidations},
                             {"submitted_paths", c.submitted},
                             {"planned_paths", c.planned},
                             {"total_paths", c.total},
                             {"free_paths", cdn::kFreeInvalidationPathsPerMonth},
                             {"above_free", c.above_free},
                             {"price_usd", static_cast<double>(c.price_milli_usd) / 1000.0}};
    Emit(j);
  }
  void Note(std::string_view message) override {
    if (quiet_) return;
    std::fprintf(stderr, "%.*s\n", Len(message), message.data());
  }
  void Summary(const sync::SyncResult& r, std::uint64_t invalidation_paths, double seconds) override {
    Emit(SummaryJson(r, invalidation_paths, seconds));
  }
  void BatchSummary(std::uint64_t batch, const sync::SyncResult& r, std::uint64_t invalidation_paths,
                    double seconds) override {
    nlohmann::ordered_json j = SummaryJson(r, invalidation_paths, seconds);
    j["batch"] = batch;
    Emit(j);
  }
  void Trace(std::string_view line) override { std::fprintf(stderr, "%.*s\n", Len(line), line.data()); }

 private:
  static int Len(std::string_view s) { return static_cast<int>(s.size()); }
  static nlohmann::ordered_json SummaryJson(const sync::SyncResult& r, std::uint64_t invalidation_paths,
                                            double seconds) {
    return {{"event", "summary"},
            {"uploaded", r.uploaded},
            {"deleted", r.deleted},
            {"unchanged", r.unchanged},
            {"failed", r.failed},
            {"bytes_uploaded", r.bytes_uploaded},
            {"invalidation_paths", invalidation_paths},
            {"dry_run", r.dry_run},
            {"seconds", std::round(seconds * 1000) / 1000},
            {"skipped", r.skipped},
            {"hashed", r.hashed},
            {"headers_updated", r.headers_updated},
            {"newer_same_size", r.newer_same_size},
            {"throttled", r.throttled}};
  }
  static void Emit(const nlohmann::ordered_json& j) {
    // Keys are bytes from the file system: replace invalid UTF-8 rather than throw.
    const std::string line = j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
  }

  bool quiet_;
};

// Lines for people: per-file lines and the summary on stdout, warnings, errors, notes and the progress line on
// stderr. Colours per stream (OutputOptions); the progress line is redrawn in place and never wraps.
class HumanOutput final : public Output {
 public:
  explicit HumanOutput(const OutputOptions& options) : options_(options), start_(Clock::now()) {}
  ~HumanOutput() override { ClearProgress(); }  // the shell prompt starts on a clean line
  HumanOutput(const HumanOutput&) = delete;
  HumanOutput& operator=(const HumanOutput&) = delete;

  void OnWarning(std::string_view message) override {
    if (options_.quiet) return;
    ClearProgress();
    Line(stderr, Paint(options_.color_stderr, kYellow, "warning:") + " " + std::string(message));
  }
  void OnPlan(const sync::Plan& plan, bool dry_run) override {
    total_files_ = plan.uploads.size();
    total_bytes_ = plan.upload_bytes;
    if (options_.quiet || !dry_run) return;
    ClearProgress();
    Line(stdout, Paint(options_.color_stdout, kDim,
                       fmt::format("plan: {} to upload ({}), {} to delete, {} unchanged", plan.uploads.size(),
                                   HumanBytes(static_cast<double>(plan.upload_bytes)), plan.deletes.size(),
                                   plan.unchanged)));
  }
  void OnUploaded(std::string_view key, std::uint64_t bytes, bool planned, sync::UploadReason reason) override {
    if (options_.quiet || (options_.progress && !options_.verbose && !planned)) return;
    ClearProgress();
    // A dry run's lines say why; a real run's say what was sent.
    const std::string line =
        planned && reason == sync::UploadReason::kHeadersChanged
            ? fmt::format("(dry run) update headers: {}", key)
            : fmt::format("{}upload: {} ({}{}{})", planned ? "(dry run) " : "", key,
                          HumanBytes(static_cast<double>(bytes)), planned ? ", " : "",
                          planned ? ReasonName(reason) : "");
    Line(stdout, planned ? Paint(options_.color_stdout, kDim, line) : line);
  }
  void OnDeleted(std::string_view key, bool planned) override {
    if (options_.quiet || (options_.progress && !options_.verbose && !planned)) return;
    ClearProgress();
    const std::string line = fmt::format("{}delete: {}", planned ? "(dry run) " : "", key);
    Line(stdout, planned ? Paint(options_.color_stdout, kDim, line) : line);
  }
  void OnError(std::string_view key, std::string_view message) override {
    ClearProgress();
    const std::string error = Paint(options_.color_stderr, kRed, "error:");
    Line(stderr, key.empty() ? fmt::format("{} {}", error, message) : fmt::format("{} {}: {}", error, key, message));
  }
  void OnSkipped(std::string_view key, std::string_view reason) override {
    if (options_.quiet) return;
    ClearProgress();
    Line(stderr, fmt::format("{} {}: {}", Paint(options_.color_stderr, kYellow, "skip:"), key, reason));
  }
  void OnProgress(std::uint64_t files_done, std::uint64_t bytes_done) override {
    if (!options_.progress || options_.quiet || g_stop_drawing.load()) return;
    const auto now = Clock::now();
    if (files_done < total_files_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    const double secs = std::chrono::duration<double>(now - start_).count();
    const double rate = secs > 0 ? static_cast<double>(bytes_done) / secs : 0;
    std::string eta = "--";
    if (rate > 0 && total_bytes_ >= bytes_done) {
      eta = fmt::format("{:.0f}s", static_cast<double>(total_bytes_ - bytes_done) / rate);
    }
    std::string text = fmt::format("{}/{} files  {}/{}  {}/s  ETA {}", files_done, total_files_,
                                   HumanBytes(static_cast<double>(bytes_done)),
                                   HumanBytes(static_cast<double>(total_bytes_)), HumanBytes(rate), eta);
    // One column short of the width: writing the last column leaves some terminals in a pending wrap, and a
    // wrapped line can no longer be erased by CR + erase-line. The text is ASCII: bytes are columns.
    const std::size_t columns = TerminalColumns();
    text.resize(std::min(text.size(), columns > 1 ? columns - 1 : 1));
    const std::string line = "\r\033[K" + text;
    // Marked as on screen before the write: a signal arriving in between then erases a line that was perhaps
    // not drawn yet, which is harmless; the other order could leave one drawn and not erased.
    g_progress_on_screen.store(true);
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fflush(stderr);
  }
  void Fatal(std::string_view message) override {
    ClearProgress();
    Line(stderr, Paint(options_.color_stderr, kRed, "sitesync:") + " " + std::string(message));
  }
  void OnInvalidation(std::string_view id, std::span<const std::string> paths, bool planned) override {
    if (options_.quiet) return;
    ClearProgress();
    std::string line = planned ? fmt::format("(dry run) invalidate {} paths:", paths.size())
                               : fmt::format("invalidation {}: {} paths:", id, paths.size());
    const std::size_t shown = options_.verbose ? paths.size() : std::min<std::size_t>(paths.size(), 10);
    for (std::size_t i = 0; i < shown; ++i) line += " " + paths[i];
    if (shown < paths.size()) line += fmt::format(" ... ({} more; -v lists all)", paths.size() - shown);
    Line(stdout, planned ? Paint(options_.color_stdout, kDim, line) : line);
  }
  void OnCost(const cdn::MonthCost& c) override {
    if (options_.quiet) return;
    ClearProgress();
    Line(stdout, cdn::CostLine(c));
  }
  void Note(std::string_view message) override {
    if (options_.quiet) return;
    ClearProgress();
    Line(stderr, std::string(message));
  }
  void Summary(const sync::SyncResult& r, std::uint64_t invalidation_paths, double seconds) override {
    ClearProgress();
    if (options_.quiet) return;
    const bool color = options_.color_stdout;
    // Green when all went well; otherwise only the failed count stands out, in red.
    std::string counts = fmt::format("{} uploaded ({}), {} deleted, {} unchanged, ", r.uploaded,
                                     HumanBytes(static_cast<double>(r.bytes_uploaded)), r.deleted, r.unchanged);
    std::string failed = fmt::format("{} failed", r.failed);
    // Held back (skipped) only when something failed: said next to the failures.
    if (r.skipped > 0) failed += fmt::format(", {} skipped", r.skipped);
    std::string rest = fmt::format(", {} paths invalidated in {:.2f} s", invalidation_paths, seconds);
    std::string line;
    if (r.failed == 0) {
      line = Paint(color, kGreen, counts + failed + rest);
    } else {
      line = counts + Paint(color, kRed, failed) + rest;
    }
    if (r.dry_run) line = Paint(color, kDim, "dry run, nothing changed:") + " " + line;
    Line(stdout, line);
    if (r.throttled > 0) Line(stderr, ThrottledNote(r.throttled));
    if (r.newer_same_size > 0) Line(stderr, NewerSameSizeNote(r.newer_same_size));
  }
  void BatchSummary(std::uint64_t batch, const sync::SyncResult& r, std::uint64_t invalidation_paths,
                    double seconds) override {
    if (batch == 0) return Summary(r, invalidation_paths, seconds);
    ClearProgress();
    if (options_.quiet) return;
    std::string line = fmt::format("batch {}: {} uploaded ({}), {} deleted, {} failed, {}{} paths invalidated, "
                                   "{:.2f} s from first change to done",
                                   batch, r.uploaded, HumanBytes(static_cast<double>(r.bytes_uploaded)), r.deleted,
                                   r.failed, r.skipped > 0 ? fmt::format("{} skipped, ", r.skipped) : "",
                                   invalidation_paths, seconds);
    Line(stderr, Paint(options_.color_stderr, r.failed == 0 ? kGreen : kRed, line));
  }
  void Trace(std::string_view line) override {
    ClearProgress();
    Line(stderr, std::string(line));
  }

 private:
  static void Line(std::FILE* stream, const std::string& text) {
    std::fwrite(text.data(), 1, text.size(), stream);
    std::fputc('\n', stream);
    std::fflush(stream);
  }
  // Erases the progress line so that the next line starts at column 0 of an empty line.
  static void ClearProgress() {
    if (!g_progress_on_screen.exchange(false)) return;
    std::fputs("\r\033[K", stderr);
    std::fflush(stderr);
  }

  OutputOptions options_;
  Clock::time_point start_;
  Clock::time_point last_draw_{};
  std::size_t total_files_ = 0;
  std::uint64_t total_bytes_ = 0;
};

}  // namespace

OutputOptions ChooseOutput(bool json, bool quiet, bool verbose, const TerminalFacts& facts) {
  OutputOptions o;
  o.json = json;
  o.quiet = quiet;
  o.verbose = verbose;
  // TERM=dumb (Emacs shell buffers, some CI consoles) cannot move the cursor or show SGR colours.
  const bool dumb = facts.term != nullptr && std::string_view(facts.term) == "dumb";
  // no-color.org: "when present and not an empty string ... prevent the addition of ANSI color".
  const bool no_color = facts.no_color != nullptr && facts.no_color[0] != '\0';
  const bool may_color = !json && !no_color && !dumb;
  o.color_stdout = may_color && facts.stdout_tty;
  o.color_stderr = may_color && facts.stderr_tty;
  o.progress = !json && !dumb && facts.stderr_tty;
  return o;
}

OutputOptions DetectOutput(bool json, bool quiet, bool verbose) {
  TerminalFacts facts;
  facts.stdout_tty = ::isatty(STDOUT_FILENO) == 1;
  facts.stderr_tty = ::isatty(STDERR_FILENO) == 1;
  facts.no_color = std::getenv("NO_COLOR");
  facts.term = std::getenv("TERM");
  return ChooseOutput(json, quiet, verbose, facts);
}

void EraseProgressLineFromSignal() noexcept {
  g_stop_drawing.store(true);
  if (!g_progress_on_screen.exchange(false)) return;
  static constexpr char kErase[] = "\r\033[K";
  const ssize_t written = ::write(STDERR_FILENO, kErase, sizeof kErase - 1);
  static_cast<void>(written);  // nothing to do about a failed write in a handler
}

std::unique_ptr<Output> MakeOutput(const OutputOptions& options) {
  if (options.json) return std::make_unique<JsonOutput>(options.quiet);
  return std::make_unique<HumanOutput>(options);
}

}  // namespace sitesync::cli
