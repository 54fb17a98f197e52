// base/: the one owner of a file descriptor, for every module (aws/, sync/, cdn/, sitemap/, watcher/). Move-only:
// a descriptor has exactly one owner, and it is closed on every path out, error paths included.
#pragma once

#include <unistd.h>

#include <utility>

namespace sitesync {

/// A move-only file descriptor: closed when the owner goes, or earlier with Reset() or Close().
class UniqueFd {
 public:
  UniqueFd() noexcept = default;
  /// Takes ownership of `fd` (-1, or any negative value: holds nothing).
  explicit UniqueFd(int fd) noexcept : fd_(fd < 0 ? -1 : fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) Reset(std::exchange(other.fd_, -1));
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { Reset(); }

  /// The descriptor, still owned; -1 when none is held.
  [[nodiscard]] int get() const noexcept { return fd_; }
  /// Whether a descriptor is held.
  explicit operator bool() const noexcept { return fd_ >= 0; }

  /// Closes the held descriptor (its close error is dropped: use Close() where it matters) and takes `fd`.
  void Reset(int fd = -1) noexcept {
    if (fd_ >= 0 && fd_ != fd) ::close(fd_);
    fd_ = fd < 0 ? -1 : fd;
  }

  /// Gives up ownership: returns the descriptor (the caller closes it) and holds nothing.
  [[nodiscard]] int Release() noexcept { return std::exchange(fd_, -1); }

  /// Closes now and says whether close(2) succeeded (errno tells why not): after a write, a failed close can
  /// mean lost data (NFS, quotas). Holds nothing afterwards either way; true when nothing was held.
  bool Close() noexcept {
    if (fd_ < 0) return true;
    return ::close(std::exchange(fd_, -1)) == 0;
  }

 private:
  int fd_ = -1;
};

}  // namespace sitesync
