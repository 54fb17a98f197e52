// How a run is shown: JSON lines, or human lines with a live progress line on a terminal. Private to cli/.
#pragma once

#include <chrono>
#include <memory>
#include <span>
#include <string>

#include "sync/sync.h"

namespace sitesync::cli {

struct OutputOptions {
  bool json = false;
  bool quiet = false;
  bool verbose = false;
  bool progress = false;  ///< stderr is a terminal: draw the progress line.
};

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
  /// An informational line for people (stderr); suppressed by -q.
  virtual void Note(std::string_view message) = 0;
  /// Prints a line of -v tracing.
  virtual void Trace(std::string_view line) = 0;
};

std::unique_ptr<Output> MakeOutput(const OutputOptions& options);

}  // namespace sitesync::cli
