// OpenInSource(): a file of the site is opened so that nothing outside SOURCE is ever read.
//
// Why: between the walk and the upload (a debounce, a slow listing, a long queue of uploads) the site generator or
// anyone else may replace a file by a symlink, or a folder on its path by a symlink to another folder. Opened by
// name, such a file would be read through the link: a link to ~/.aws/credentials would be published.
//
// How, where the kernel has openat2(2) (Linux 5.6): the path is resolved relative to a descriptor of SOURCE with
// RESOLVE_BENEATH, so the kernel refuses (EXDEV) any resolution that leaves SOURCE, through ".." or a symlink,
// while symlinks that stay inside work as they did in the walk. RESOLVE_NO_MAGICLINKS keeps /proc-style links out.
// RESOLVE_BENEATH also refuses absolute symlinks, even ones that point inside SOURCE (which the walk follows): on
// EXDEV the path is resolved with realpath, and when that lies inside SOURCE it is opened again, relative and
// still with RESOLVE_BENEATH, so a swap in between is refused too. Nothing outside is ever opened.
// A file that was rewritten in place or replaced by rename inside SOURCE is simply read as it is now.
//
// Elsewhere (older kernels; seccomp filters that refuse the syscall with ENOSYS or EPERM): openat follows the
// path, and what was opened is then checked, by the descriptor, so no later swap can fool the check. It is
// accepted when it is the very file the walk recorded (device and inode: the walk saw it inside SOURCE), or when
// its real path (readlink of /proc/self/fd/N, which the kernel keeps for the open file) lies inside SOURCE. Either
// way the open itself uses O_NONBLOCK, so that a FIFO swapped in cannot hang the run, and only a regular file is
// accepted.
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <memory>
#include <string>
#include <system_error>

#include "sitemap/open_beneath.h"

namespace sitesync::sitemap {
namespace {

std::string ErrnoText(int error) { return std::error_code(error, std::generic_category()).message(); }

constexpr int kOpenFlags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;

// Whether openat2 works here: unknown until first tried, then remembered for the process.
enum class Openat2 { kUnknown, kWorks, kMissing };
std::atomic<Openat2> openat2_state{Openat2::kUnknown};

bool Inside(std::string_view path, std::string_view root) {
  if (root == "/") return !path.empty() && path.front() == '/';
  return path.starts_with(root) && path.size() > root.size() && path[root.size()] == '/';
}

Error Outside(const std::string& root, const std::string& rel_path) {
  return Error{ErrorCode::kInput,
               "not read: '" + rel_path + "' now leads outside SOURCE (" + root +
                   ") through a symlink swapped in after the walk; sitesync reads nothing outside SOURCE (replace "
                   "the link by the file, or a copy of it)",
               false, 0, {}};
}

Error OpenFailed(const std::string& root, const std::string& rel_path, int error) {
  if (error == ENOENT || error == ENOTDIR) {
    return Error{ErrorCode::kNotFound, "cannot open '" + rel_path + "': it vanished since the walk", false, 0, {}};
  }
  if (error == ELOOP) {
    return Error{ErrorCode::kInput, "cannot open '" + rel_path + "': too many levels of symbolic links", false, 0, {}};
  }
  return Error{ErrorCode::kIo, "cannot open '" + rel_path + "' in " + root + " (" + ErrnoText(error) + ")", false, 0,
               {}};
}

// openat2 with RESOLVE_BENEATH: the descriptor, or -1 with errno (ENOSYS when the kernel or a filter lacks it).
int Openat2Beneath(int dir, const std::string& rel_path) {
  open_how how{};
  how.flags = static_cast<std::uint64_t>(kOpenFlags);
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  for (int tries = 0;; ++tries) {
    const long fd = ::syscall(SYS_openat2, dir, rel_path.c_str(), &how, sizeof how);
    if (fd >= 0) return static_cast<int>(fd);
    // EAGAIN: a concurrent rename made the kernel unsure that ".." stayed beneath; openat2(2) says to retry.
    if ((errno == EAGAIN || errno == EINTR) && tries < 8) continue;
    return -1;
  }
}

// The opened file's real path as the kernel keeps it, or empty when /proc is not there.
std::string RealPathOf(int fd) {
  const std::string link = "/proc/self/fd/" + std::to_string(fd);
  std::string target(4096, '\0');
  const ssize_t n = ::readlink(link.c_str(), target.data(), target.size());
  if (n <= 0 || static_cast<std::size_t>(n) >= target.size()) return {};
  target.resize(static_cast<std::size_t>(n));
  return target;
}

}  // namespace

namespace internal {

Result<OpenedFile> OpenBeneath(const std::string& root, const std::string& rel_path, std::uint64_t dev,
                               std::uint64_t ino, OpenMethod method) {
  if (rel_path.empty() || rel_path.front() == '/') {
    return Fail(ErrorCode::kInternal, "cannot open '" + rel_path + "': not a path relative to SOURCE");
  }
  const UniqueFd dir(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dir) {
    return Fail(ErrorCode::kInput, "cannot open SOURCE " + root + " (" + ErrnoText(errno) + ") to read '" + rel_path +
                                       "' from it; was it removed?");
  }

  UniqueFd fd;
  bool confined = false;  // the kernel kept the resolution beneath SOURCE
  if (method == internal::OpenMethod::kAuto && openat2_state.load(std::memory_order_relaxed) != Openat2::kMissing) {
    fd.Reset(Openat2Beneath(dir.get(), rel_path));
    if (fd) {
      openat2_state.store(Openat2::kWorks, std::memory_order_relaxed);
      confined = true;
    } else if (errno == EXDEV) {
      // Outside, or an absolute symlink that leads back inside: resolve it, then open the real path beneath.
      const std::unique_ptr<char, decltype(&std::free)> real(::realpath((root + "/" + rel_path).c_str(), nullptr),
                                                            &std::free);
      const std::string_view path = real ? std::string_view(real.get()) : std::string_view();
      if (!Inside(path, root)) return std::unexpected(Outside(root, rel_path));
      const std::string below(path.substr(root == "/" ? 1 : root.size() + 1));
      fd.Reset(Openat2Beneath(dir.get(), below));
      if (!fd) {
        if (errno == EXDEV) return std::unexpected(Outside(root, rel_path));
        return std::unexpected(OpenFailed(root, rel_path, errno));
      }
      confined = true;
    } else if (errno == ENOSYS || errno == EPERM || errno == E2BIG || errno == EINVAL) {
      // No openat2 here (or a filter refuses it): check what openat opens instead, from now on.
      openat2_state.store(Openat2::kMissing, std::memory_order_relaxed);
    } else {
      return std::unexpected(OpenFailed(root, rel_path, errno));
    }
  }
  if (!confined) {
    fd.Reset(::openat(dir.get(), rel_path.c_str(), kOpenFlags));
    if (!fd) return std::unexpected(OpenFailed(root, rel_path, errno));
  }

  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    return Fail(ErrorCode::kIo, "cannot stat '" + rel_path + "' in " + root + " (" + ErrnoText(errno) + ")");
  }
  if (!confined) {
    const bool walked = ino != 0 && static_cast<std::uint64_t>(st.st_dev) == dev &&
                        static_cast<std::uint64_t>(st.st_ino) == ino;
    if (!walked && !Inside(RealPathOf(fd.get()), root)) return std::unexpected(Outside(root, rel_path));
  }
  if (!S_ISREG(st.st_mode)) {
    return Fail(ErrorCode::kInput, "not read: '" + rel_path + "' is no longer a regular file (it was replaced after "
                                   "the walk)");
  }
  return OpenedFile{std::move(fd), static_cast<std::uint64_t>(st.st_size)};
}

}  // namespace internal

Result<OpenedFile> OpenInSource(const LocalFile& file) {
  if (file.root == nullptr) {
    return Fail(ErrorCode::kInternal, "cannot open '" + file.rel_path + "': it does not come from a walk of SOURCE");
  }
  return internal::OpenBeneath(*file.root, file.rel_path, file.dev, file.ino, internal::OpenMethod::kAuto);
}

}  // namespace sitesync::sitemap
