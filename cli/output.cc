#include "cli/output.h"

#include <cmath>
#include <cstdio>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace sitesync::cli {
namespace {

using Clock = std::chrono::steady_clock;

std::string HumanBytes(double bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int unit = 0;
  while (bytes >= 1024 && unit < 4) {
    bytes /= 1024;
    ++unit;
  }
  return unit == 0 ? fmt::format("{:.0f} {}", bytes, kUnits[unit]) : fmt::format("{:.1f} {}", bytes, kUnits[unit]);
}

// One JSON object per line on stdout and nothing else there (CLI.md); human messages go to stderr.
class JsonOutput final : public Output {
 public:
  void OnWarning(std::string_view message) override { std::fprintf(stderr, "warning: %.*s\n", Len(message), message.data()); }
  void OnPlan(const sync::Plan&, bool) override {}
  void OnUploaded(std::string_view key, std::uint64_t bytes, bool planned) override {
    nlohmann::ordered_json j{{"event", "upload"}, {"key", std::string(key)}, {"bytes", bytes}};
    if (planned) j["planned"] = true;
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
  void Note(std::string_view message) override {
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
            {"seconds", std::round(seconds * 1000) / 1000}};
  }
  static void Emit(const nlohmann::ordered_json& j) {
    // Keys are bytes from the file system: replace invalid UTF-8 rather than throw.
    const std::string line = j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
  }
};

class HumanOutput final : public Output {
 public:
  explicit HumanOutput(const OutputOptions& options) : options_(options), start_(Clock::now()) {}

  void OnWarning(std::string_view message) override {
    if (options_.quiet) return;
    ClearProgress();
    std::fprintf(stderr, "warning: %.*s\n", Len(message), message.data());
  }
  void OnPlan(const sync::Plan& plan, bool dry_run) override {
    total_files_ = plan.uploads.size();
    total_bytes_ = plan.upload_bytes;
    if (options_.quiet) return;
    if (dry_run) {
      std::printf("plan: %zu to upload (%s), %zu to delete, %llu unchanged\n", plan.uploads.size(),
                  HumanBytes(static_cast<double>(plan.upload_bytes)).c_str(), plan.deletes.size(),
                  static_cast<unsigned long long>(plan.unchanged));
    }
  }
  void OnUploaded(std::string_view key, std::uint64_t bytes, bool planned) override {
    if (options_.quiet || (options_.progress && !options_.verbose && !planned)) return;
    ClearProgress();
    std::printf("%supload: %.*s (%s)\n", planned ? "(dry run) " : "", Len(key), key.data(),
                HumanBytes(static_cast<double>(bytes)).c_str());
  }
  void OnDeleted(std::string_view key, bool planned) override {
    if (options_.quiet || (options_.progress && !options_.verbose && !planned)) return;
    ClearProgress();
    std::printf("%sdelete: %.*s\n", planned ? "(dry run) " : "", Len(key), key.data());
  }
  void OnError(std::string_view key, std::string_view message) override {
    ClearProgress();
    std::fprintf(stderr, "error: %.*s: %.*s\n", Len(key), key.data(), Len(message), message.data());
  }
  void OnProgress(std::uint64_t files_done, std::uint64_t bytes_done) override {
    if (!options_.progress || options_.quiet) return;
    const auto now = Clock::now();
    if (files_done < total_files_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    const double secs = std::chrono::duration<double>(now - start_).count();
    const double rate = secs > 0 ? static_cast<double>(bytes_done) / secs : 0;
    std::string eta = "--";
    if (rate > 0 && total_bytes_ >= bytes_done) {
      eta = fmt::format("{:.0f}s", static_cast<double>(total_bytes_ - bytes_done) / rate);
    }
    std::fprintf(stderr, "\r\033[K%llu/%zu files  %s/%s  %s/s  ETA %s", static_cast<unsigned long long>(files_done),
                 total_files_, HumanBytes(static_cast<double>(bytes_done)).c_str(),
                 HumanBytes(static_cast<double>(total_bytes_)).c_str(), HumanBytes(rate).c_str(), eta.c_str());
    std::fflush(stderr);
    drawn_ = true;
  }
  void Fatal(std::string_view message) override {
    ClearProgress();
    std::fprintf(stderr, "sitesync: %.*s\n", Len(message), message.data());
  }
  void OnInvalidation(std::string_view id, std::span<const std::string> paths, bool planned) override {
    if (options_.quiet) return;
    ClearProgress();
    if (planned) {
      std::printf("(dry run) invalidate %zu paths:", paths.size());
    } else {
      std::printf("invalidation %.*s: %zu paths:", Len(id), id.data(), paths.size());
    }
    const std::size_t shown = options_.verbose ? paths.size() : std::min<std::size_t>(paths.size(), 10);
    for (std::size_t i = 0; i < shown; ++i) std::printf(" %s", paths[i].c_str());
    if (shown < paths.size()) std::printf(" ... (%zu more; -v lists all)", paths.size() - shown);
    std::printf("\n");
  }
  void Note(std::string_view message) override {
    if (options_.quiet) return;
    ClearProgress();
    std::fprintf(stderr, "%.*s\n", Len(message), message.data());
  }
  void Summary(const sync::SyncResult& r, std::uint64_t invalidation_paths, double seconds) override {
    ClearProgress();
    if (options_.quiet) return;
    std::printf("%s%llu uploaded (%s), %llu deleted, %llu unchanged, %llu failed, %llu paths invalidated in %.2f s\n",
                r.dry_run ? "dry run, nothing changed: " : "", static_cast<unsigned long long>(r.uploaded),
                HumanBytes(static_cast<double>(r.bytes_uploaded)).c_str(), static_cast<unsigned long long>(r.deleted),
                static_cast<unsigned long long>(r.unchanged), static_cast<unsigned long long>(r.failed),
                static_cast<unsigned long long>(invalidation_paths), seconds);
    std::fflush(stdout);
  }
  void BatchSummary(std::uint64_t batch, const sync::SyncResult& r, std::uint64_t invalidation_paths,
                    double seconds) override {
    if (batch == 0) return Summary(r, invalidation_paths, seconds);
    ClearProgress();
    if (options_.quiet) return;
    std::fprintf(stderr, "batch %llu: %llu uploaded (%s), %llu deleted, %llu failed, %llu paths invalidated, %.2f s "
                 "from first change to done\n",
                 static_cast<unsigned long long>(batch), static_cast<unsigned long long>(r.uploaded),
                 HumanBytes(static_cast<double>(r.bytes_uploaded)).c_str(), static_cast<unsigned long long>(r.deleted),
                 static_cast<unsigned long long>(r.failed), static_cast<unsigned long long>(invalidation_paths),
                 seconds);
  }
  void Trace(std::string_view line) override {
    ClearProgress();
    std::fprintf(stderr, "%.*s\n", Len(line), line.data());
  }

 private:
  static int Len(std::string_view s) { return static_cast<int>(s.size()); }
  void ClearProgress() {
    if (!drawn_) return;
    std::fputs("\r\033[K", stderr);
    drawn_ = false;
  }

  OutputOptions options_;
  Clock::time_point start_;
  Clock::time_point last_draw_{};
  std::size_t total_files_ = 0;
  std::uint64_t total_bytes_ = 0;
  bool drawn_ = false;
};

}  // namespace

std::unique_ptr<Output> MakeOutput(const OutputOptions& options) {
  if (options.json) return std::make_unique<JsonOutput>();
  return std::make_unique<HumanOutput>(options);
}

}  // namespace sitesync::cli
