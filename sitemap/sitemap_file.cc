// Writing sitemap files: only when their content changed (a watch would otherwise see its own write as a new
// change, and a sync would upload an unchanged file), and atomically (temporary file + rename), so that a web
// server or the sync never reads half a sitemap.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "base/unique_fd.h"
#include "sitemap/sitemap.h"

namespace sitesync::sitemap {
namespace {

std::string ErrnoText(int error) { return std::error_code(error, std::generic_category()).message(); }

// Up to `limit` bytes of `path`; nullopt-like empty + false when it cannot be read (missing, a folder...).
bool ReadPrefix(const std::filesystem::path& path, std::size_t limit, std::string& out) {
  const UniqueFd f(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!f) return false;
  struct stat st{};
  if (::fstat(f.get(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  out.assign(std::min(limit, static_cast<std::size_t>(st.st_size)), '\0');
  std::size_t got = 0;
  while (got < out.size()) {
    const ssize_t n = ::read(f.get(), out.data() + got, out.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  out.resize(got);
  return true;
}

bool SameContent(const std::filesystem::path& path, std::string_view content) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec || size != content.size()) return false;
  std::string existing;
  return ReadPrefix(path, content.size() + 1, existing) && existing == content;
}

Result<void> WriteAtomically(const std::filesystem::path& path, std::string_view content) {
  static std::atomic<unsigned> counter{0};
  const std::filesystem::path folder = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  // A dot name: the sync and the watcher skip dotfiles, so the half-written file is never uploaded.
  const std::filesystem::path temp =
      folder / ("." + path.filename().string() + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
  auto fail = [&](std::string_view what, int error) {
    ::unlink(temp.c_str());
    return Fail(ErrorCode::kIo, "cannot write sitemap " + path.string() + ": " + std::string(what) + " (" +
                                              ErrnoText(error) + "); check that the folder exists and is writable, "
                                                                 "or write elsewhere with -o FILE / sitemap.output");
  };
  UniqueFd f(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666));
  if (!f) {
    const int error = errno;
    return Fail(ErrorCode::kIo, "cannot write sitemap " + path.string() + ": cannot create a file in " +
                                              folder.string() + " (" + ErrnoText(error) +
                                              "); check that the folder exists and is writable, or write elsewhere "
                                              "with -o FILE / sitemap.output");
  }
  std::size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(f.get(), content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail("write failed", errno);
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(f.get()) != 0) return fail("fsync failed", errno);
  if (!f.Close()) return fail("close failed", errno);
  if (::rename(temp.c_str(), path.c_str()) != 0) return fail("rename failed", errno);
  return {};
}

// A file this code wrote: removing a stale part must never remove someone else's file that happens to be
// named like one.
bool IsOurSitemap(const std::filesystem::path& path) {
  std::string head;
  if (!ReadPrefix(path, 512, head)) return false;
  return head.find("<urlset") != std::string::npos &&
         head.find("http://www.sitemaps.org/schemas/sitemap/0.9") != std::string::npos;
}

}  // namespace

Result<WriteOutcome> WriteSitemap(const Sitemap& sitemap, const std::filesystem::path& output) {
  WriteOutcome out;
  const std::filesystem::path folder = output.has_parent_path() ? output.parent_path() : std::filesystem::path(".");
  for (std::size_t i = 0; i < sitemap.documents.size(); ++i) {
    const SitemapDocument& doc = sitemap.documents[i];
    const std::filesystem::path path = i == 0 ? output : folder / doc.name;
    if (SameContent(path, doc.content)) continue;
    if (auto ok = WriteAtomically(path, doc.content); !ok) return std::unexpected(ok.error());
    out.written.push_back(path);
  }

  // Parts an earlier, larger sitemap left: "sitemap-3.xml" when there are two parts now, or any when none.
  const std::string output_name = output.filename().string();
  std::vector<std::filesystem::path> stale;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name == output_name || !IsSitemapFile(name, output_name)) continue;
    bool current = false;
    for (const SitemapDocument& doc : sitemap.documents) current = current || doc.name == name;
    if (!current) stale.push_back(it->path());
  }
  for (const std::filesystem::path& path : stale) {
    std::error_code remove_ec;
    if (IsOurSitemap(path) && std::filesystem::remove(path, remove_ec)) out.removed.push_back(path);
  }
  return out;
}

}  // namespace sitesync::sitemap
