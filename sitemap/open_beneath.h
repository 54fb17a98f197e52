// How a file of the site is opened for reading so that nothing outside SOURCE is ever read (openat2(2) with
// RESOLVE_BENEATH, or a check of what was opened where the kernel lacks it). Private to sitemap/; the public entry
// is OpenInSource (sitemap.h).
#pragma once

#include <cstdint>
#include <string>

#include "sitemap/sitemap.h"

namespace sitesync::sitemap::internal {

/// kAuto: openat2 where the kernel has it (Linux 5.6+, and not refused by a seccomp filter), else kChecked.
/// kChecked: openat (following links), then the opened file is accepted only when it is the one the walk recorded
/// (same device and inode) or when its real path (/proc/self/fd) lies inside the root. Tests force kChecked.
enum class OpenMethod { kAuto, kChecked };

/// Opens `rel_path` below the canonical `root` for reading. `dev`/`ino`: what the walk recorded (0: unknown).
/// Fails with kNotFound (gone), kInput (it now leads outside the root, or is not a regular file), kIo.
[[nodiscard]] Result<OpenedFile> OpenBeneath(const std::string& root, const std::string& rel_path, std::uint64_t dev,
                                             std::uint64_t ino, OpenMethod method);

}  // namespace sitesync::sitemap::internal
