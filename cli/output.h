// How a run is shown: JSON lines, or human lines with a live progress line on a terminal. Private to cli/.
#pragma once

#include <chrono>
#include <memory>
#include <span>
#include <string>

#include "cdn/cdn.h"
#include "sync/sync.h"

namespace sitesync::cli {

struct OutputOptions {
  bool json = false;
  bool quiet = false;         ///< Errors only: no warnings, notes, per-file lines, progress or summary.
  bool verbose = false;
  bool progress = false;      ///< stderr is a terminal that can redraw a line: draw the progress line there.
  bool color_stdout = false;  ///< Colour the human lines written to stdout.
  bool color_stderr = false;  ///< Colour the human lines written to stderr.
};

/// What is known about the terminal: whether each stream is one, and the environment that governs it.
struct TerminalFacts {
  bool stdout_tty = false;
  bool stderr_tty = false;
  const char* no_color = nullptr;  ///< $NO_COLOR, or null when unset.
  const char* term = nullptr;      ///< $TERM, or null when unset.
};

/// Decides colours and the progress line (pure). Colours only on a terminal, never with --json, never when
/// NO_COLOR is set to a non-empty value (no-color.org), never with TERM=dumb; each stream decided for itself.
/// The progress line only on a stderr terminal that is not TERM=dumb (it redraws with CR and erase-line).
OutputOptions ChooseOutput(bool json, bool quiet, bool verbose, const TerminalFacts& facts);

/// ChooseOutput with the facts of this process (isatty on fds 1 and 2, getenv).
OutputOptions DetectOutput(bool json, bool quiet, bool verbose);

/// For signal handlers, async-signal-safe: erases the progress line if one is on screen (a write(2) of CR and
/// erase-line to stderr) and stops any further drawing. Nothing else is touched.
void EraseProgressLineFromSignal() noexcept;

/// A sync::Reporter that also prints fatal errors and the final summary.
class Output : public sync::Reporter {
 public:
  /// Prints a fatal error (the run could not go on, or was refused).
  virtual void Fatal(std::string_view message) = 0;
  /// Prints the summary of a run: the last line. `invalidation_paths`: paths submitted (or planned) to CloudFront.
  virtual void Summary(const sync::SyncResult& result, std::uint64_t invalidation_paths, double seconds) = 0;
  /// The summary of a watch batch (0: the initial sync); `seconds` runs from the first event to the invalidation
  /// accepted.
  virtual void BatchSummary(std::uint64_t batch, const sync::SyncResult& result, std::uint64_t invalidation_paths,
                            double seconds) = 0;
  /// An invalidation was created (or, `planned`, would be).
  virtual void OnInvalidation(std::string_view id, std::span<const std::string> paths, bool planned) = 0;
  /// plan: the invalidation paths of this month and their price (cdn::CostLine; with --json a "cost" event).
  virtual void OnCost(const cdn::MonthCost& cost) = 0;
  /// An informational line for people (stderr); suppressed by -q.
  virtual void Note(std::string_view message) = 0;
  /// sync's notes (the bucket's region followed) are notes like any other.
  void OnNote(std::string_view message) override { Note(message); }
  /// Prints a line of -v tracing.
  virtual void Trace(std::string_view line) = 0;
};

std::unique_ptr<Output> MakeOutput(const OutputOptions& options);

}  // namespace sitesync::cli
