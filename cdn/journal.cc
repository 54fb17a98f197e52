// The journal of owed invalidations: one small JSON file per distribution under the state dir. It is written
// before content goes up and cleared only once CloudFront has accepted the invalidation, so a crash, a
// network failure or Ctrl-C between upload and invalidation never leaves stale content cached for good.

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <exception>
#include <filesystem>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cdn/cdn.h"

namespace sitesync::cdn {
namespace {

using aws::ErrorCode;
using aws::Fail;

// Version 2 added "unmapped" (keys whose URL paths wait for the distribution to answer). A journal without such
// keys is still written as version 1, which older sitesync versions read; one with them is version 2, which
// they refuse rather than drop the keys they do not know.
constexpr int kJournalVersion = 2;
constexpr int kJournalVersionWithoutUnmapped = 1;

/// A file descriptor closed on every path out.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { Close(); }
  int get() const { return fd_; }
  /// Closes now and reports whether close succeeded (a failed close can mean lost data on NFS).
  bool Close() {
    if (fd_ < 0) return true;
    const int rc = ::close(fd_);
    fd_ = -1;
    return rc == 0;
  }

 private:
  int fd_;
};

std::string Errno(int err) { return std::strerror(err); }

bool SafeId(std::string_view id) {
  if (id.empty()) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

std::string ParseFailure(const std::filesystem::path& file, std::string_view why) {
  return fmt::format(
      "read invalidation journal {}: {}; fix it, or delete it (the invalidation it records is then "
      "forgotten: run `sitesync invalidate '/*'` to be safe)",
      file.string(), why);
}

/// Creates `dir` and any missing parents with mode 0700: the journal names distributions and paths of a site
/// that other local users need not see.
aws::Result<void> MakeDirs(const std::filesystem::path& dir) {
  std::filesystem::path partial;
  for (const std::filesystem::path& part : dir) {
    partial /= part;
    if (part.empty() || part == "/") continue;
    if (::mkdir(partial.c_str(), 0700) == 0) continue;
    const int err = errno;
    struct stat st {};
    if (err == EEXIST && ::stat(partial.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) continue;
    return Fail(ErrorCode::kIo, fmt::format("create state dir {}: {}; check its permissions or set XDG_STATE_HOME",
                                            partial.string(), Errno(err == EEXIST ? ENOTDIR : err)));
  }
  return {};
}

aws::Result<void> WriteAll(int fd, std::string_view data, const std::filesystem::path& temp) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Fail(ErrorCode::kIo, fmt::format("write {}: {}", temp.string(), Errno(errno)));
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

std::string UtcStamp(std::time_t now) {
  std::tm tm{};
  char buffer[32] = "00000000T000000Z";
  if (::gmtime_r(&now, &tm) != nullptr) std::strftime(buffer, sizeof buffer, "%Y%m%dT%H%M%SZ", &tm);
  return buffer;
}

}  // namespace

aws::Result<std::filesystem::path> StateDir(const aws::EnvLookup& env) {
  // XDG Base Directory spec: a relative XDG_STATE_HOME is invalid and must be ignored.
  if (const std::optional<std::string> xdg = env("XDG_STATE_HOME"); xdg && !xdg->empty() && xdg->front() == '/') {
    return std::filesystem::path(*xdg) / "sitesync";
  }
  if (const std::optional<std::string> home = env("HOME"); home && !home->empty() && home->front() == '/') {
    return std::filesystem::path(*home) / ".local" / "state" / "sitesync";
  }
  return Fail(ErrorCode::kConfig,
              "find the state dir for the invalidation journal: neither XDG_STATE_HOME nor HOME is set to an "
              "absolute path; set one of them");
}

std::filesystem::path Journal::FileFor(const std::string& distribution_id) const {
  // CloudFront ids are [A-Z0-9]; anything else (never expected) is hex-encoded behind a "x." that no safe id can
  // start with, so that no id can name a file outside the folder or another id's file.
  if (SafeId(distribution_id)) return dir_ / (distribution_id + ".json");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string name = "x.";
  for (const char c : distribution_id) {
    const auto b = static_cast<unsigned char>(c);
    name.push_back(kHex[b >> 4]);
    name.push_back(kHex[b & 0x0F]);
  }
  return dir_ / (name + ".json");
}

std::vector<std::string> Journal::Distributions() const {
  std::vector<std::string> out;
  std::error_code ec;
  for (const std::filesystem::directory_entry& e : std::filesystem::directory_iterator(dir_, ec)) {
    const std::string name = e.path().filename().string();
    if (!name.ends_with(".json") || name.starts_with(".")) continue;
    std::string id = name.substr(0, name.size() - 5);
    if (id.starts_with("x.")) {  // hex-encoded (FileFor)
      std::string decoded;
      bool ok = id.size() % 2 == 0;
      for (std::size_t i = 2; ok && i + 1 < id.size(); i += 2) {
        unsigned value = 0;
        const auto [end, err] = std::from_chars(id.data() + i, id.data() + i + 2, value, 16);
        ok = err == std::errc() && end == id.data() + i + 2;
        decoded.push_back(static_cast<char>(value));
      }
      if (!ok) continue;
      id = std::move(decoded);
    } else if (!SafeId(id)) {
      continue;
    }
    out.push_back(std::move(id));
  }
  std::sort(out.begin(), out.end());
  return out;
}

aws::Result<Owed> Journal::Load(const std::string& distribution_id) const {
  const std::filesystem::path file = FileFor(distribution_id);
  Owed owed;
  owed.distribution_id = distribution_id;

  std::string text;
  {
    const int raw = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (raw < 0) {
      if (errno == ENOENT) return owed;  // Nothing is owed.
      return Fail(ErrorCode::kIo, fmt::format("read invalidation journal {}: {}; check its permissions",
                                              file.string(), Errno(errno)));
    }
    Fd fd(raw);
    char buffer[8192];
    for (;;) {
      const ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
      if (n < 0) {
        if (errno == EINTR) continue;
        return Fail(ErrorCode::kIo, fmt::format("read invalidation journal {}: {}", file.string(), Errno(errno)));
      }
      if (n == 0) break;
      text.append(buffer, static_cast<std::size_t>(n));
    }
  }

  // nlohmann throws on type mismatches; nothing may leave this function as an exception.
  try {
    const nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded()) return Fail(ErrorCode::kParse, ParseFailure(file, "not valid JSON"));
    if (!doc.is_object()) return Fail(ErrorCode::kParse, ParseFailure(file, "not a JSON object"));
    const auto version = doc.find("version");
    if (version == doc.end() || !version->is_number_integer()) {
      return Fail(ErrorCode::kParse, ParseFailure(file, "no \"version\""));
    }
    if (version->get<long long>() != kJournalVersion && version->get<long long>() != kJournalVersionWithoutUnmapped) {
      return Fail(ErrorCode::kParse,
                  ParseFailure(file, fmt::format("version {} is not {} (written by another sitesync version?)",
                                                 version->dump(), kJournalVersion)));
    }
    const auto distribution = doc.find("distribution");
    if (distribution == doc.end() || !distribution->is_string()) {
      return Fail(ErrorCode::kParse, ParseFailure(file, "no \"distribution\" string"));
    }
    if (distribution->get<std::string>() != distribution_id) {
      return Fail(ErrorCode::kParse,
                  ParseFailure(file, fmt::format("it is for distribution {}, not {}",
                                                 distribution->get<std::string>(), distribution_id)));
    }
    const auto reference = doc.find("caller_reference");
    if (reference == doc.end() || !reference->is_string()) {
      return Fail(ErrorCode::kParse, ParseFailure(file, "no \"caller_reference\" string"));
    }
    owed.caller_reference = reference->get<std::string>();
    const auto paths = doc.find("paths");
    if (paths == doc.end() || !paths->is_array()) {
      return Fail(ErrorCode::kParse, ParseFailure(file, "no \"paths\" array"));
    }
    for (const nlohmann::json& path : *paths) {
      if (!path.is_string()) return Fail(ErrorCode::kParse, ParseFailure(file, "a path is not a string"));
      owed.paths.push_back(path.get<std::string>());
    }
    if (const auto unmapped = doc.find("unmapped"); unmapped != doc.end()) {
      if (!unmapped->is_array()) return Fail(ErrorCode::kParse, ParseFailure(file, "\"unmapped\" is not an array"));
      for (const nlohmann::json& entry : *unmapped) {
        if (!entry.is_object() || !entry.contains("bucket") || !entry["bucket"].is_string() ||
            !entry.contains("prefix") || !entry["prefix"].is_string() || !entry.contains("keys") ||
            !entry["keys"].is_array()) {
          return Fail(ErrorCode::kParse, ParseFailure(file, "an \"unmapped\" entry lacks bucket, prefix or keys"));
        }
        UnmappedKeys u{entry["bucket"].get<std::string>(), entry["prefix"].get<std::string>(), {}};
        for (const nlohmann::json& key : entry["keys"]) {
          if (!key.is_string()) return Fail(ErrorCode::kParse, ParseFailure(file, "an unmapped key is not a string"));
          u.keys.push_back(key.get<std::string>());
        }
        std::sort(u.keys.begin(), u.keys.end());
        u.keys.erase(std::unique(u.keys.begin(), u.keys.end()), u.keys.end());
        if (!u.keys.empty()) owed.unmapped.push_back(std::move(u));
      }
    }
  } catch (const std::exception& e) {
    return Fail(ErrorCode::kParse, ParseFailure(file, e.what()));
  }
  std::sort(owed.paths.begin(), owed.paths.end());
  owed.paths.erase(std::unique(owed.paths.begin(), owed.paths.end()), owed.paths.end());
  return owed;
}

aws::Result<void> Journal::Save(const Owed& owed) const {
  const std::filesystem::path file = FileFor(owed.distribution_id);
  std::string text;
  try {
    nlohmann::json doc = nlohmann::json::object();
    doc["version"] = owed.unmapped.empty() ? kJournalVersionWithoutUnmapped : kJournalVersion;
    doc["distribution"] = owed.distribution_id;
    doc["caller_reference"] = owed.caller_reference;
    doc["paths"] = owed.paths;
    if (!owed.unmapped.empty()) {
      nlohmann::json unmapped = nlohmann::json::array();
      for (const UnmappedKeys& u : owed.unmapped) {
        unmapped.push_back({{"bucket", u.bucket}, {"prefix", u.prefix}, {"keys", u.keys}});
      }
      doc["unmapped"] = std::move(unmapped);
    }
    text = doc.dump(2);  // Throws on invalid UTF-8; encoded paths are ASCII.
    text.push_back('\n');
  } catch (const std::exception& e) {
    return Fail(ErrorCode::kInternal, fmt::format("write invalidation journal {}: {}", file.string(), e.what()));
  }

  if (auto made = MakeDirs(dir_); !made) return made;

  // Write a temp file in the same folder, fsync it, rename it over the old one and fsync the folder: after a
  // crash the journal is either the old one or the new one, never a torn mix (rename(2) is atomic within a
  // file system; the folder fsync makes the rename itself durable).
  std::string temp_template = (dir_ / ("." + file.filename().string() + ".tmp-XXXXXX")).string();
  const int raw = ::mkostemp(temp_template.data(), O_CLOEXEC);
  if (raw < 0) {
    return Fail(ErrorCode::kIo, fmt::format("write invalidation journal in {}: {}; check the folder's permissions",
                                            dir_.string(), Errno(errno)));
  }
  const std::filesystem::path temp = temp_template;
  Fd fd(raw);
  auto fail = [&](std::string message) -> aws::Result<void> {
    fd.Close();
    ::unlink(temp.c_str());
    return Fail(ErrorCode::kIo, std::move(message));
  };
  if (auto written = WriteAll(fd.get(), text, temp); !written) return fail(written.error().message);
  if (::fsync(fd.get()) != 0) return fail(fmt::format("fsync {}: {}", temp.string(), Errno(errno)));
  if (!fd.Close()) return fail(fmt::format("close {}: {}", temp.string(), Errno(errno)));
  if (::rename(temp.c_str(), file.c_str()) != 0) {
    return fail(fmt::format("rename {} to {}: {}", temp.string(), file.string(), Errno(errno)));
  }

  const int dir_raw = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_raw < 0) return Fail(ErrorCode::kIo, fmt::format("open {}: {}", dir_.string(), Errno(errno)));
  Fd dir_fd(dir_raw);
  if (::fsync(dir_fd.get()) != 0) {
    return Fail(ErrorCode::kIo, fmt::format("fsync {}: {}", dir_.string(), Errno(errno)));
  }
  return {};
}

aws::Result<void> Journal::Clear(const std::string& distribution_id) const {
  const std::filesystem::path file = FileFor(distribution_id);
  if (::unlink(file.c_str()) != 0 && errno != ENOENT) {
    return Fail(ErrorCode::kIo, fmt::format("remove invalidation journal {}: {}; remove it by hand",
                                            file.string(), Errno(errno)));
  }
  return {};
}

JournalLock& JournalLock::operator=(JournalLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

JournalLock::~JournalLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the last descriptor of the open file releases the flock
}

aws::Result<JournalLock> Journal::Lock(Clock& clock, std::chrono::milliseconds timeout) const {
  if (auto made = MakeDirs(dir_); !made) return std::unexpected(made.error());
  const std::filesystem::path file = LockFile();
  // A lock file of its own, never removed: the journal files are replaced by rename(2), so a lock on them would
  // be on an inode that the next writer no longer uses; and removing a lock file races with a process that has
  // just opened it.
  const int raw = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (raw < 0) {
    return Fail(ErrorCode::kIo, fmt::format("open the invalidation journal lock {}: {}; check the folder's "
                                            "permissions or set XDG_STATE_HOME",
                                            file.string(), Errno(errno)));
  }
  JournalLock lock(raw);
  const auto start = clock.Now();
  for (;;) {
    if (::flock(raw, LOCK_EX | LOCK_NB) == 0) return lock;
    const int err = errno;
    if (err == EINTR) continue;
    if (err != EWOULDBLOCK) {
      return Fail(ErrorCode::kIo, fmt::format("lock the invalidation journal {}: {}", file.string(), Errno(err)));
    }
    const auto waited = clock.Now() - start;
    if (waited >= timeout) {
      return Fail(ErrorCode::kIo,
                  fmt::format("lock the invalidation journal {}: another sitesync process (a watch, or another sync "
                              "or invalidate) has held it for {} s; let it finish and run again, or find it with "
                              "`fuser {}`",
                              file.string(),
                              std::chrono::duration_cast<std::chrono::seconds>(waited).count(), file.string()));
    }
    clock.SleepFor(std::chrono::milliseconds(20));
  }
}

bool AddOwed(Owed& owed, std::span<const std::string> paths, bool new_batch) {
  std::vector<std::string> merged = owed.paths;
  merged.insert(merged.end(), paths.begin(), paths.end());
  std::sort(merged.begin(), merged.end());
  merged.erase(std::unique(merged.begin(), merged.end()), merged.end());
  if (merged.empty()) return false;  // Nothing owed: no batch, no reference.

  const bool paths_changed = merged != owed.paths;
  owed.paths = std::move(merged);
  // CloudFront (CreateInvalidation, CallerReference): a repeated reference with the same paths returns the
  // earlier invalidation, which for new content would be one made before it went up. A repeated reference with
  // different paths fails with InvalidationBatchAlreadyExists. So a new batch, or a set of paths that grew,
  // gets a new reference; a pure retry of the same set keeps it.
  if (new_batch || paths_changed || owed.caller_reference.empty()) {
    owed.caller_reference = NewCallerReference();
    return true;
  }
  return false;
}

std::string NewCallerReference() { return NewCallerReference(std::chrono::system_clock::now()); }

std::string NewCallerReference(std::chrono::system_clock::time_point now) {
  std::uint64_t bits = 0;
  try {
    std::random_device device;
    bits = (static_cast<std::uint64_t>(device()) << 32) ^ static_cast<std::uint64_t>(device());
  } catch (const std::exception&) {
    // No entropy source: the time and an address still make a clash between two runs all but impossible.
    std::timespec ts{};
    std::timespec_get(&ts, TIME_UTC);
    bits = static_cast<std::uint64_t>(ts.tv_nsec) * 0x9E3779B97F4A7C15ULL ^
           static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(&ts)) ^
           static_cast<std::uint64_t>(::getpid());
  }
  return fmt::format("sitesync-{}-{:016x}", UtcStamp(std::chrono::system_clock::to_time_t(now)), bits);
}

}  // namespace sitesync::cdn
