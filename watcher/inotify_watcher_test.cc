// The inotify source on real inotify in temp folders (waiting on events with deadlines, never sleeping for them),
// and WatchTree fed synthetic event buffers for what a test cannot provoke (queue overflow, unknown wds).
#include <fcntl.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "watcher/inotify_events.h"
#include "watcher/watcher.h"

namespace sitesync::watcher {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;

// Generous: the machine may be loaded; a passing run takes milliseconds.
constexpr seconds kPatience(30);

class TempDir {
 public:
  TempDir() {
    std::error_code ec;
    fs::path base = fs::temp_directory_path(ec);
    if (ec) base = "/tmp";
    std::string name = (base / "sitesync-watch-XXXXXX").string();
    if (::mkdtemp(name.data()) != nullptr) path_ = fs::canonical(name, ec);
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// Writes with open/write/close, so that the watcher sees exactly one IN_CLOSE_WRITE.
void WriteFile(const fs::path& path, std::string_view content = "x") {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0) << path << ": " << std::strerror(errno);
  ASSERT_EQ(::write(fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
  ::close(fd);
}

void MakeDirs(const fs::path& path) {
  std::error_code ec;
  fs::create_directories(path, ec);
  ASSERT_FALSE(ec) << path << ": " << ec.message();
}

void RemoveAll(const fs::path& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
  ASSERT_FALSE(ec) << path << ": " << ec.message();
}

void Rename(const fs::path& from, const fs::path& to) {
  ASSERT_EQ(::rename(from.c_str(), to.c_str()), 0) << from << " -> " << to << ": " << std::strerror(errno);
}

// A real inotify source on `root` and the loop a caller runs: wait until the batch is due, take it.
class Watching {
 public:
  explicit Watching(const fs::path& root, sitemap::WalkOptions filters = {})
      : sink(milliseconds(20), milliseconds(500)) {
    auto made = MakeInotifySource(root, filters, [this](std::string_view m) { logs.emplace_back(m); });
    if (made) {
      source = std::move(*made);
    } else {
      ADD_FAILURE() << made.error().message;
    }
  }

  /// Waits for events and takes due batches until `done()` or `timeout`; false on timeout.
  bool PumpUntil(const std::function<bool()>& done, Clock::duration timeout = kPatience) {
    const auto give_up = Clock::now() + timeout;
    for (;;) {
      if (sink.Due(Clock::now())) Merge(sink.Take());
      if (done()) return true;
      if (Clock::now() >= give_up || !source) return false;
      const auto deadline = sink.Deadline();
      auto waited = source->Wait(deadline ? std::min(*deadline, give_up) : give_up, sink);
      if (!waited) {
        ADD_FAILURE() << "Wait failed: " << waited.error().message;
        return false;
      }
    }
  }

  bool Saw(const std::string& path) const { return seen.contains(path); }
  bool SawAll(const std::vector<std::string>& paths) const {
    return std::ranges::all_of(paths, [&](const std::string& p) { return Saw(p); });
  }
  /// Writes `marker` in the root and waits for it: every event before it has been taken by then.
  void Flush(const fs::path& root, const std::string& marker = "marker.html") {
    WriteFile(root / marker);
    ASSERT_TRUE(PumpUntil([&] { return Saw(marker); })) << "marker never seen";
  }
  std::vector<std::string> SeenUnder(std::string_view prefix) const {
    std::vector<std::string> out;
    for (const auto& p : seen)
      if (p.starts_with(prefix)) out.push_back(p);
    return out;
  }

  std::unique_ptr<EventSource> source;
  Coalescer sink;
  std::set<std::string> seen;
  int rescans = 0;
  std::string first_rescan_reason;
  int batches = 0;
  std::vector<std::string> logs;

 private:
  void Merge(Changes changes) {
    ++batches;
    if (changes.rescan) {
      if (rescans++ == 0) first_rescan_reason = changes.rescan_reason;
    }
    seen.merge(changes.paths);
  }
};

std::string Joined(const std::set<std::string>& paths) {
  std::string out;
  for (const auto& p : paths) out += p + " ";
  return out;
}

// ------------------------------------------------------------------------------------------------------------
// Real inotify
// ------------------------------------------------------------------------------------------------------------

TEST(InotifySource, FailsOnMissingRootOrFile) {
  TempDir tmp;
  auto missing = MakeInotifySource(tmp.path() / "nope", {}, {});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kInput);
  EXPECT_NE(missing.error().message.find("nope"), std::string::npos);
  WriteFile(tmp.path() / "file");
  auto file = MakeInotifySource(tmp.path() / "file", {}, {});
  ASSERT_FALSE(file);
  EXPECT_EQ(file.error().code, ErrorCode::kInput);
}

TEST(InotifySource, WrittenFileIsSeen) {
  TempDir tmp;
  MakeDirs(tmp.path() / "blog");
  Watching w(tmp.path());
  ASSERT_TRUE(w.source);
  WriteFile(tmp.path() / "index.html");
  WriteFile(tmp.path() / "blog" / "post.html");
  ASSERT_TRUE(w.PumpUntil([&] { return w.SawAll({"index.html", "blog/post.html"}); })) << Joined(w.seen);
  EXPECT_EQ(w.rescans, 0) << w.first_rescan_reason;
}

TEST(InotifySource, SymlinkIsSeenWithoutCloseWrite) {
  TempDir tmp;
  WriteFile(tmp.path() / "target.html");
  Watching w(tmp.path());
  ASSERT_TRUE(w.source);
  ASSERT_EQ(::symlink("target.html", (tmp.path() / "link.html").c_str()), 0);
  ASSERT_TRUE(w.PumpUntil([&] { return w.Saw("link.html"); })) << Joined(w.seen);
}

TEST(InotifySource, EditorTempFilesAreIgnored) {
  TempDir tmp;
  MakeDirs(tmp.path() / "sub");
  Watching w(tmp.path());
  ASSERT_TRUE(w.source);
  for (const char* name : {".index.html.swp", ".index.html.swx", "index.html~", "4913", "build.tmp", ".DS_Store"}) {
    WriteFile(tmp.path() / name);
    WriteFile(tmp.path() / "sub" / name);
  }
  ASSERT_EQ(::symlink("user@host.1234", (tmp.path() / ".#index.html").c_str()), 0);  // emacs lock
  ASSERT_EQ(::unlink((tmp.path() / "4913").c_str()), 0);  // vim deletes its probe
  w.Flush(tmp.path(), "index.html");
  EXPECT_EQ(w.seen, (std::set<std::string>{"index.html"}));
}

TEST(InotifySource, DotFoldersAreNotWatchedButWellKnownIs) {
  TempDir tmp;
  MakeDirs(tmp.path() / ".git");
  MakeDirs(tmp.path() / "sub" / ".cache");
  MakeDirs(tmp.path() / "sub" / ".well-known");
  Watching w(tmp.path());
  ASSERT_TRUE(w.source);
  WriteFile(tmp.path() / ".git" / "index");
  WriteFile(tmp.path() / "sub" / ".cache" / "x.html");
  MakeDirs(tmp.path() / ".hg" / "store");  // Created while watching.
  WriteFile(tmp.path() / ".hg" / "store" / "y.html");
  WriteFile(tmp.path() / ".well-known" / "security.txt");  // Folder created while watching.
  WriteFile(tmp.path() / ".well-known" / ".hidden");
  WriteFile(tmp.path() / "sub" / ".well-known" / "assetlinks.json");
  w.Flush(tmp.path());
  EXPECT_TRUE(w.Saw(".well-known/security.txt")) << Joined(w.seen);
  EXPECT_TRUE(w.Saw("sub/.well-known/assetlinks.json")) << Joined(w.seen);
  EXPECT_FALSE(w.Saw(".well-known/.hidden"));
  EXPECT_TRUE(w.SeenUnder(".git").empty()) << Joined(w.seen);
  EXPECT_TRUE(w.SeenUnder(".hg").empty()) << Joined(w.seen);
  EXPECT_TRUE(w.SeenUnder("sub/.cache").empty()) << Joined(w.seen);
}

TEST(InotifySource, ExcludedFoldersAndFilesAreSkipped) {
  TempDir tmp;
  MakeDirs(tmp.path() / "drafts");
  sitemap::WalkOptions filters;
  filters.exclude = {"drafts/", "*.psd"};
  Watching w(tmp.path(), filters);
  ASSERT_TRUE(w.source);
  WriteFile(tmp.path() / "drafts" / "a.html");
  WriteFile(tmp.path() / "x" / "drafts" / "b.html");  // New folders, one excluded.
  WriteFile(tmp.path() / "x" / "img.psd");
  WriteFile(tmp.path() / "x" / "img.png");
  w.Flush(tmp.path());
  EXPECT_EQ(w.seen, (std::set<std::string>{"marker.html", "x", "x/img.png"}));
}

TEST(InotifySource, IncludedDotfileIsSeen) {
  TempDir tmp;
  sitemap::WalkOptions filters;
  filters.include = {".htaccess"};
  Watching w(tmp.path(), filters);
  ASSERT_TRUE(w.source);
  WriteFile(tmp.path() / ".htaccess");
  WriteFile(tmp.path() / ".other");
  w.Flush(tmp.path());
  EXPECT_EQ(w.seen, (std::set<std::string>{".htaccess", "marker.html"}));
}

// mkdir -p and files written at once, from another thread while the watcher runs: whatever lands between the
// mkdir and the watch is found by listing the folder after its watch was added.
TEST(InotifySource, MkdirPAndTightWriteLoopLosesNothing) {
  TempDir tmp;
  Watching w(tmp.path());
  ASSERT_TRUE(w.source);
  std::vector<std::string> expected;
  for (int i = 0; i < 30; ++i) {
    for (const char* level : {"", "/b", "/b/c"}) {
      for (int f = 0; f < 4; ++f) expected.push_back("d" + std::to_string(i) + level + "/f" + std::to_string(f));
    }
  }
  std::thread writer([&] {
    for (int i = 0; i < 30; ++i) {
      const fs::path top = tmp.path() / ("d" + std::to_string(i));
      std::error_code ec;
      fs::create_directories(top / "b" / "c", ec);
      for (const fs::path& dir : {top, top / "b", top / "b" / "c"}) {
        for (int f = 0; f < 4; ++f) WriteFile(dir / ("f" + std::to_string(f)));
      }
    }
  });
  const bool all = w.PumpUntil([&] { return w.SawAll(expected); });
  writer.join();
  std::vector<std::string> missing;
  for (const auto& p : expected)
    if (!w.Saw(p)) missing.push_back(p);
  EXPECT_TRUE(all) << missing.size() << " missing, e.g. " << (missing.empty() ? "" : missing.front());
  EXPECT_EQ(w.rescans, 0) << w.first_rescan_reason;
  // And they stay watched.
  WriteFile(tmp.path() / "d29" / "b" / "c" / "later.html");
  EXPECT_TRUE(w.PumpUntil([&] { return w.Saw("d29/b/c/later.html"); }));
}

TEST(InotifySource, PreparedTreeMovedInIsSeenWhole) {
  TempDir tmp;
  TempDir outside;
  MakeDirs(tmp.path() / "root");
  const fs::path root = tmp.path() / "root";
  const fs::path prepared = tmp.path() / "prepared";  // Same file system as root, so rename() works.
  std::vector<std::string> expected;
  for (const char* rel : {"index.html", "a/index.html", "a/b/style.css", "a/b/c/d/deep.js", "e/f.png"}) {
    WriteFile(prepared / rel);
    expected.push_back(std::string("site/") + rel);
  }
  WriteFile(prepared / "a" / ".b.swp");
  Watching w(root);
  ASSERT_TRUE(w.source);
  Rename(prepared, root / "site");
  ASSERT_TRUE(w.PumpUntil([&] { return w.SawAll(expected); })) << Joined(w.seen);
  EXPECT_FALSE(w.Saw("site/a/.b.swp"));
  // Its folders are watched now.
  WriteFile(root / "site" / "a" / "b" / "c" / "d" / "new.html");
  EXPECT_TRUE(w.PumpUntil([&] { return w.Saw("site/a/b/c/d/new.html"); })) << Joined(w.seen);
  EXPECT_EQ(w.rescans, 0) << w.first_rescan_reason;
}

TEST(InotifySource, DeletesAreSeen) {
  TempDir tmp;
  WriteFile(tmp.path() / "old.html");
  WriteFile(tmp.path() / "dir" / "sub" / "x.html");
  Watching w(tmp.path());
  ASSERT_TRUE(w.source);
  ASSERT_EQ(::unlink((tmp.path() / "old.html").c_str()), 0);
  RemoveAll(tmp.path() / "dir");
  ASSERT_TRUE(w.PumpUntil([&] { return w.SawAll({"old.html", "dir"}); })) << Joined(w.seen);
  // A folder of the same name again: watched afresh.
  WriteFile(tmp.path() / "dir" / "sub" / "y.html");
  ASSERT_TRUE(w.PumpUntil([&] { return w.Saw("dir/sub/y.html"); })) << Joined(w.seen);
  WriteFile(tmp.path() / "dir" / "sub" / "z.html");
  ASSERT_TRUE(w.PumpUntil([&] { return w.Saw("dir/sub/z.html"); })) << Joined(w.seen);
  EXPECT_EQ(w.rescans, 0) << w.first_rescan_reason;
}

TEST(InotifySource, FoldersMovedWithinAndOut) {
  TempDir tmp;
  const fs::path root = tmp.path() / "root";
  WriteFile(root / "a" / "x" / "y" / "f.html");
  MakeDirs(root / "b");
  Watching w(root);
  ASSERT_TRUE(w.source);
  // Within the root: seen at the new path, and reported under it from then on.
  Rename(root / "a" / "x", root / "b" / "x");
  ASSERT_TRUE(w.PumpUntil([&] { return w.SawAll({"a/x", "b/x", "b/x/y/f.html"}); })) << Joined(w.seen);
  WriteFile(root / "b" / "x" / "y" / "g.html");
  ASSERT_TRUE(w.PumpUntil([&] { return w.Saw("b/x/y/g.html"); })) << Joined(w.seen);
  EXPECT_TRUE(w.SeenUnder("a/x/").empty()) << Joined(w.seen);
  // Out of the root: "maybe gone", and its watches go with it.
  w.seen.clear();
  Rename(root / "b" / "x", tmp.path() / "x");
  ASSERT_TRUE(w.PumpUntil([&] { return w.Saw("b/x"); }));
  w.seen.clear();
  WriteFile(tmp.path() / "x" / "y" / "h.html");
  WriteFile(tmp.path() / "x" / "i.html");
  w.Flush(root);
  EXPECT_EQ(w.seen, (std::set<std::string>{"marker.html"}));
  EXPECT_EQ(w.rescans, 0) << w.first_rescan_reason;
}

TEST(InotifySource, RootRemovedAndRecreatedIsHeldThenRescanned) {
  TempDir tmp;
  const fs::path root = tmp.path() / "public";
  WriteFile(root / "index.html");
  WriteFile(root / "blog" / "post" / "index.html");
  Watching w(root);
  ASSERT_TRUE(w.source);
  // What Zola and Hugo do on every build.
  for (int build = 0; build < 3; ++build) {
    SCOPED_TRACE("build " + std::to_string(build));
    RemoveAll(root);
    ASSERT_TRUE(w.PumpUntil([&] { return w.sink.Held(); }));
    EXPECT_FALSE(w.sink.Deadline());
    // Nothing flushes while it is gone, however long (this wait is for something NOT to happen).
    const int batches = w.batches;
    EXPECT_FALSE(w.PumpUntil([] { return false; }, milliseconds(300)));
    EXPECT_EQ(w.batches, batches);
    EXPECT_TRUE(w.sink.Held());

    const int rescans = w.rescans;
    w.seen.clear();
    WriteFile(root / "blog" / "new" / "index.html");
    WriteFile(root / "index.html");
    ASSERT_TRUE(w.PumpUntil([&] {
      return w.rescans > rescans && w.SawAll({"blog/new/index.html", "index.html"});
    })) << Joined(w.seen);
    EXPECT_FALSE(w.sink.Held());
    EXPECT_EQ(w.first_rescan_reason, "root folder was recreated");
    // Watched again, recursively.
    WriteFile(root / "blog" / "new" / "after.html");
    ASSERT_TRUE(w.PumpUntil([&] { return w.Saw("blog/new/after.html"); })) << Joined(w.seen);
  }
  // Logged once, not once per build.
  EXPECT_EQ(std::ranges::count_if(w.logs, [](const std::string& m) { return m.find("come back") != m.npos; }), 1)
      << testing::PrintToString(w.logs);
}

TEST(InotifySource, RootAndItsParentRemoved) {
  TempDir tmp;
  const fs::path root = tmp.path() / "build" / "public";
  WriteFile(root / "index.html");
  Watching w(root);
  ASSERT_TRUE(w.source);
  RemoveAll(tmp.path() / "build");
  ASSERT_TRUE(w.PumpUntil([&] { return w.sink.Held(); }));
  MakeDirs(tmp.path() / "build");  // The parent first, then (separately) the root.
  WriteFile(tmp.path() / "build" / "other.txt");
  WriteFile(root / "a" / "index.html");
  ASSERT_TRUE(w.PumpUntil([&] { return w.rescans > 0 && w.Saw("a/index.html"); })) << Joined(w.seen);
  EXPECT_FALSE(w.sink.Held());
  WriteFile(root / "a" / "b.html");
  ASSERT_TRUE(w.PumpUntil([&] { return w.Saw("a/b.html"); })) << Joined(w.seen);
}

TEST(InotifySource, RootMovedAwayAndReplaced) {
  TempDir tmp;
  const fs::path root = tmp.path() / "public";
  WriteFile(root / "index.html");
  WriteFile(tmp.path() / "next" / "fresh.html");
  Watching w(root);
  ASSERT_TRUE(w.source);
  Rename(root, tmp.path() / "public.old");
  Rename(tmp.path() / "next", root);
  ASSERT_TRUE(w.PumpUntil([&] { return w.rescans > 0 && w.Saw("fresh.html"); })) << Joined(w.seen);
  EXPECT_FALSE(w.sink.Held());
  // The old tree is not watched any more.
  w.seen.clear();
  WriteFile(tmp.path() / "public.old" / "stale.html");
  w.Flush(root);
  EXPECT_EQ(w.seen, (std::set<std::string>{"marker.html"}));
}

// The atomic-release pattern: SOURCE is a symlink switched to a new release; the old release stays intact.
TEST(InotifySource, SymlinkedRootRetargetedWithLnSfnIsRescanned) {
  TempDir tmp;
  WriteFile(tmp.path() / "releases" / "1" / "index.html", "one");
  WriteFile(tmp.path() / "releases" / "2" / "index.html", "two");
  WriteFile(tmp.path() / "releases" / "3" / "index.html", "three");
  const fs::path root = tmp.path() / "public";
  ASSERT_EQ(::symlink("releases/1", root.c_str()), 0);
  Watching w(root);
  ASSERT_TRUE(w.source);
  // ln -s releases/2 public.tmp && mv -T public.tmp public
  ASSERT_EQ(::symlink("releases/2", (tmp.path() / "public.tmp").c_str()), 0);
  Rename(tmp.path() / "public.tmp", root);
  ASSERT_TRUE(w.PumpUntil([&] { return w.rescans > 0; })) << Joined(w.seen);
  EXPECT_NE(w.first_rescan_reason.find("releases/2"), std::string::npos) << w.first_rescan_reason;
  EXPECT_FALSE(w.sink.Held());
  // The new release is watched, the old one is not.
  w.seen.clear();
  WriteFile(tmp.path() / "releases" / "1" / "stale.html");
  WriteFile(tmp.path() / "releases" / "2" / "fresh.html");
  ASSERT_TRUE(w.PumpUntil([&] { return w.Saw("fresh.html"); })) << Joined(w.seen);
  w.Flush(root);
  EXPECT_FALSE(w.Saw("stale.html"));

  // Not atomic (`rm public; ln -s ...`), and the old release deleted afterwards: held, then rescanned.
  const int rescans = w.rescans;
  ASSERT_EQ(::unlink(root.c_str()), 0);
  ASSERT_EQ(::symlink("releases/3", root.c_str()), 0);
  RemoveAll(tmp.path() / "releases" / "2");
  ASSERT_TRUE(w.PumpUntil([&] { return w.rescans > rescans && !w.sink.Held(); })) << Joined(w.seen);
  w.seen.clear();
  WriteFile(tmp.path() / "releases" / "3" / "third.html");
  ASSERT_TRUE(w.PumpUntil([&] { return w.Saw("third.html"); })) << Joined(w.seen);
}

// sync follows symlinks inside SOURCE (sitemap::Walk); watch must see changes under every path sync publishes.
TEST(InotifySource, FoldersReachedThroughSymlinksAreWatched) {
  TempDir tmp;
  const fs::path root = tmp.path() / "site";
  const fs::path outside = tmp.path() / "outside";
  WriteFile(root / "posts" / "2024" / "a.html");
  WriteFile(root / ".drafts" / "d.html");  // Hidden: only published through the link below.
  WriteFile(outside / "o.html");
  ASSERT_EQ(::symlink("posts/2024", (root / "latest").c_str()), 0);
  ASSERT_EQ(::symlink(".drafts", (root / "preview").c_str()), 0);
  ASSERT_EQ(::symlink(outside.c_str(), (root / "elsewhere").c_str()), 0);  // Outside SOURCE: sync refuses it.
  ASSERT_EQ(::symlink("..", (root / "posts" / "up").c_str()), 0);          // A loop: sync refuses it.
  Watching w(root);
  ASSERT_TRUE(w.source);
  EXPECT_EQ(w.rescans, 0) << w.first_rescan_reason;

  WriteFile(root / "posts" / "2024" / "a.html", "edited");
  WriteFile(root / ".drafts" / "d.html", "edited");
  ASSERT_TRUE(w.PumpUntil([&] { return w.SawAll({"posts/2024/a.html", "latest/a.html", "preview/d.html"}); }))
      << Joined(w.seen);
  EXPECT_FALSE(w.Saw(".drafts/d.html"));
  // A folder made inside the linked one is watched too, under both paths.
  WriteFile(root / "posts" / "2024" / "img" / "x.png");
  ASSERT_TRUE(w.PumpUntil([&] { return w.Saw("latest/img/x.png"); })) << Joined(w.seen);
  WriteFile(root / "posts" / "2024" / "img" / "y.png");
  ASSERT_TRUE(w.PumpUntil([&] { return w.Saw("latest/img/y.png"); })) << Joined(w.seen);
  // Outside SOURCE: not watched (sync would not publish it).
  w.seen.clear();
  WriteFile(outside / "o.html", "edited");
  w.Flush(root);
  EXPECT_EQ(w.seen, (std::set<std::string>{"marker.html"}));

  // A link made after the start, then retargeted (ln -sfn inside SOURCE): both trees' paths are named.
  WriteFile(root / "v1" / "page.html");
  WriteFile(root / "v2" / "page.html");
  ASSERT_EQ(::symlink("v1", (root / "current").c_str()), 0);
  ASSERT_TRUE(w.PumpUntil([&] { return w.Saw("current"); })) << Joined(w.seen);
  WriteFile(root / "v1" / "page.html", "v1 edited");
  ASSERT_TRUE(w.PumpUntil([&] { return w.Saw("current/page.html"); })) << Joined(w.seen);
  ASSERT_EQ(::symlink("v2", (root / "current.tmp").c_str()), 0);
  w.seen.clear();
  Rename(root / "current.tmp", root / "current");
  ASSERT_TRUE(w.PumpUntil([&] { return w.Saw("current"); })) << Joined(w.seen);
  w.seen.clear();
  WriteFile(root / "v1" / "page.html", "v1 again");
  WriteFile(root / "v2" / "page.html", "v2 edited");
  ASSERT_TRUE(w.PumpUntil([&] { return w.Saw("v2/page.html"); })) << Joined(w.seen);
  w.Flush(root);
  EXPECT_TRUE(w.Saw("current/page.html"));  // Through v2 now.
  EXPECT_TRUE(w.Saw("v1/page.html"));
  EXPECT_EQ(w.rescans, 0) << w.first_rescan_reason;
}

TEST(InotifySource, InterruptWakesABlockedWait) {
  TempDir tmp;
  Watching w(tmp.path());
  ASSERT_TRUE(w.source);
  std::atomic<Clock::rep> interrupted_at{0};
  std::thread interrupter([&] {
    // Give Wait time to block; the assertion below is about the wake-up, not this delay.
    std::this_thread::sleep_for(milliseconds(200));
    interrupted_at = Clock::now().time_since_epoch().count();
    w.source->Interrupt();
  });
  const auto waited = w.source->Wait(std::nullopt, w.sink);
  const auto woke = Clock::now();
  interrupter.join();
  ASSERT_TRUE(waited) << waited.error().message;
  const Clock::time_point at{Clock::duration(interrupted_at.load())};
  EXPECT_LT(woke - at, seconds(1));
  EXPECT_TRUE(w.sink.Empty());
}

TEST(InotifySource, InterruptBeforeWaitIsNotLost) {
  TempDir tmp;
  Watching w(tmp.path());
  ASSERT_TRUE(w.source);
  w.source->Interrupt();
  const auto start = Clock::now();
  ASSERT_TRUE(w.source->Wait(std::nullopt, w.sink));
  EXPECT_LT(Clock::now() - start, seconds(1));
}

// Lock-free, so reading it in a signal handler is safe.
std::atomic<EventSource*> g_signalled_source{nullptr};
static_assert(std::atomic<EventSource*>::is_always_lock_free);
extern "C" void InterruptOnSignal(int) {
  if (EventSource* source = g_signalled_source.load()) source->Interrupt();
}

TEST(InotifySource, InterruptFromASignalHandler) {
  TempDir tmp;
  Watching w(tmp.path());
  ASSERT_TRUE(w.source);
  g_signalled_source = w.source.get();
  struct sigaction action {};
  struct sigaction previous {};
  action.sa_handler = InterruptOnSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;  // poll() is never restarted anyway; the eventfd is what wakes it.
  ASSERT_EQ(::sigaction(SIGUSR1, &action, &previous), 0);
  const pthread_t waiter = ::pthread_self();
  std::atomic<Clock::rep> signalled_at{0};
  std::thread signaller([&] {
    std::this_thread::sleep_for(milliseconds(200));
    signalled_at = Clock::now().time_since_epoch().count();
    ::pthread_kill(waiter, SIGUSR1);
  });
  const auto waited = w.source->Wait(std::nullopt, w.sink);
  const auto woke = Clock::now();
  signaller.join();
  ::sigaction(SIGUSR1, &previous, nullptr);
  g_signalled_source = nullptr;
  ASSERT_TRUE(waited) << waited.error().message;
  EXPECT_LT(woke - Clock::time_point{Clock::duration(signalled_at.load())}, seconds(1));
}

TEST(InotifySource, IdleWaitReturnsAtTheDeadline) {
  TempDir tmp;
  Watching w(tmp.path());
  ASSERT_TRUE(w.source);
  const auto start = Clock::now();
  const auto deadline = start + milliseconds(300);
  ASSERT_TRUE(w.source->Wait(deadline, w.sink));
  const auto end = Clock::now();
  EXPECT_GE(end, deadline);                    // Never early (poll's timeout is rounded up).
  EXPECT_LT(end - start, milliseconds(2300));  // And not much late, even on a loaded machine.
  EXPECT_TRUE(w.sink.Empty());
}

double ThreadCpuSeconds() {
  rusage usage{};
  ::getrusage(RUSAGE_THREAD, &usage);
  auto seconds_of = [](const timeval& tv) {
    return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
  };
  return seconds_of(usage.ru_utime) + seconds_of(usage.ru_stime);
}

TEST(InotifySource, IdleWaitingUsesNoCpu) {
  TempDir tmp;
  Watching w(tmp.path());
  ASSERT_TRUE(w.source);
  const double cpu_before = ThreadCpuSeconds();
  const auto end = Clock::now() + seconds(1);
  int waits = 0;
  // As the caller does with an idle tree: Wait to a deadline, again and again.
  while (Clock::now() < end) {
    ASSERT_TRUE(w.source->Wait(std::min(end, Clock::now() + milliseconds(300)), w.sink));
    ++waits;
  }
  const double cpu = ThreadCpuSeconds() - cpu_before;
  EXPECT_LT(cpu, 0.050) << "CPU seconds for 1 s of idle waiting";
  EXPECT_LE(waits, 10) << "Wait returned early and often: a busy loop";
}

// ------------------------------------------------------------------------------------------------------------
// WatchTree with synthetic event buffers
// ------------------------------------------------------------------------------------------------------------

void Append(std::vector<std::byte>& buffer, int wd, std::uint32_t mask, std::string_view name = {}) {
  // As the kernel does: the name NUL-terminated and padded to a multiple of the event size.
  const std::size_t len = name.empty() ? 0 : (name.size() + 1 + 15) / 16 * 16;
  inotify_event event{};
  event.wd = wd;
  event.mask = mask;
  event.len = static_cast<std::uint32_t>(len);
  const auto* raw = reinterpret_cast<const std::byte*>(&event);
  buffer.insert(buffer.end(), raw, raw + sizeof event);
  const std::size_t at = buffer.size();
  buffer.resize(at + len, std::byte{0});
  if (!name.empty()) std::memcpy(buffer.data() + at, name.data(), name.size());
}

class WatchTreeTest : public testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(tmp_.path().empty());
    MakeDirs(tmp_.path() / "sub");
    MakeDirs(tmp_.path() / ".git");
    fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    ASSERT_GE(fd_, 0);
    tree_ = std::make_unique<internal::WatchTree>(fd_, tmp_.path(), sitemap::WalkOptions{},
                                                  [this](std::string_view m) { logs_.emplace_back(m); });
    ASSERT_TRUE(tree_->Start(sink_, t0_));
    EXPECT_TRUE(sink_.Empty());
    EXPECT_FALSE(sink_.Deadline());
  }
  void TearDown() override {
    tree_.reset();
    if (fd_ >= 0) ::close(fd_);
  }

  Changes Feed(const std::vector<std::byte>& buffer) {
    EXPECT_TRUE(tree_->Process(buffer, sink_, t0_));
    return sink_.Take();
  }
  int Wd(const std::string& rel) { return tree_->WatchOf(rel).value_or(-2); }

  TempDir tmp_;
  int fd_ = -1;
  std::unique_ptr<internal::WatchTree> tree_;
  Coalescer sink_{milliseconds(100), milliseconds(1000)};
  Clock::time_point t0_ = Clock::now();
  std::vector<std::string> logs_;
};

TEST_F(WatchTreeTest, StartWatchesKeptFoldersOnly) {
  EXPECT_EQ(tree_->WatchCount(), 2U);  // root and sub; .git is not watched.
  EXPECT_TRUE(tree_->WatchOf(""));
  EXPECT_TRUE(tree_->WatchOf("sub"));
  EXPECT_FALSE(tree_->WatchOf(".git"));
}

TEST_F(WatchTreeTest, QueueOverflowAsksForARescanAndLogsOnce) {
  std::vector<std::byte> buffer;
  Append(buffer, Wd(""), IN_CLOSE_WRITE, "a.html");
  Append(buffer, -1, IN_Q_OVERFLOW);
  Changes changes = Feed(buffer);
  EXPECT_TRUE(changes.rescan);
  EXPECT_NE(changes.rescan_reason.find("IN_Q_OVERFLOW"), std::string::npos) << changes.rescan_reason;
  EXPECT_EQ(changes.paths, (std::set<std::string>{"a.html"}));
  EXPECT_EQ(tree_->Rescans(), 1);
  EXPECT_EQ(tree_->WatchCount(), 2U);  // Watched again, same folders.
  EXPECT_TRUE(tree_->RootPresent());
  // Again: a rescan again, but no second log line.
  buffer.clear();
  Append(buffer, -1, IN_Q_OVERFLOW);
  changes = Feed(buffer);
  EXPECT_TRUE(changes.rescan);
  EXPECT_EQ(tree_->Rescans(), 2);
  EXPECT_EQ(logs_.size(), 1U) << testing::PrintToString(logs_);
}

TEST_F(WatchTreeTest, UnknownWatchDescriptorAsksForARescan) {
  std::vector<std::byte> buffer;
  Append(buffer, 987654, IN_CLOSE_WRITE, "x.html");
  const Changes changes = Feed(buffer);
  EXPECT_TRUE(changes.rescan);
  EXPECT_NE(changes.rescan_reason.find("unknown watch descriptor"), std::string::npos) << changes.rescan_reason;
  EXPECT_TRUE(changes.paths.empty());
  ASSERT_EQ(logs_.size(), 1U);
  // Its IN_IGNORED alone is not a reason.
  buffer.clear();
  Append(buffer, 987655, IN_IGNORED);
  EXPECT_TRUE(Feed(buffer).Empty());
}

TEST_F(WatchTreeTest, EventMeanings) {
  std::vector<std::byte> buffer;
  Append(buffer, Wd(""), IN_CLOSE_WRITE, "a.html");
  Append(buffer, Wd("sub"), IN_MOVED_TO, "b.html");
  Append(buffer, Wd("sub"), IN_MOVED_FROM, "c.html");
  Append(buffer, Wd(""), IN_DELETE, "d.html");
  Append(buffer, Wd(""), IN_CLOSE_WRITE, ".a.html.swp");
  Append(buffer, Wd(""), IN_CLOSE_WRITE, "4913");
  Append(buffer, Wd(""), IN_ATTRIB | IN_ISDIR);  // Not asked for, and about the folder itself: ignored.
  EXPECT_EQ(Feed(buffer).paths, (std::set<std::string>{"a.html", "d.html", "sub/b.html", "sub/c.html"}));

  // IN_MODIFY and the IN_CREATE of a regular file (not there any more): not ready, but the batch waits.
  buffer.clear();
  Append(buffer, Wd(""), IN_MODIFY, "big.html");
  Append(buffer, Wd(""), IN_CREATE, "new.html");
  EXPECT_TRUE(tree_->Process(buffer, sink_, t0_ + milliseconds(50)));
  EXPECT_TRUE(sink_.Empty());
  EXPECT_EQ(sink_.Deadline(), t0_ + milliseconds(150));
  EXPECT_TRUE(sink_.Take().Empty());

  // IN_CREATE of a symlink: no IN_CLOSE_WRITE will come, so it is ready now.
  ASSERT_EQ(::symlink("a.html", (tmp_.path() / "link.html").c_str()), 0);
  buffer.clear();
  Append(buffer, Wd(""), IN_CREATE, "link.html");
  EXPECT_EQ(Feed(buffer).paths, (std::set<std::string>{"link.html"}));
  EXPECT_EQ(tree_->Rescans(), 0);
}

TEST_F(WatchTreeTest, DeletedFolderDropsItsWatchesAndTheirLateEvents) {
  const int sub = Wd("sub");
  std::vector<std::byte> buffer;
  Append(buffer, Wd(""), IN_DELETE | IN_ISDIR, "sub");
  Append(buffer, sub, IN_CLOSE_WRITE, "late.html");  // Queued before we removed the watch: dropped.
  Changes changes = Feed(buffer);
  EXPECT_EQ(changes.paths, (std::set<std::string>{"sub"}));
  EXPECT_FALSE(changes.rescan);
  EXPECT_FALSE(tree_->WatchOf("sub"));
  // IN_IGNORED is its last event; anything after it is for an unknown watch.
  buffer.clear();
  Append(buffer, sub, IN_IGNORED);
  EXPECT_TRUE(Feed(buffer).Empty());
  buffer.clear();
  Append(buffer, sub, IN_CLOSE_WRITE, "later.html");
  EXPECT_TRUE(Feed(buffer).rescan);
}

TEST_F(WatchTreeTest, NewFolderIsWatchedAndListed) {
  WriteFile(tmp_.path() / "new" / "a" / "x.html");
  WriteFile(tmp_.path() / "new" / ".y.swp");
  MakeDirs(tmp_.path() / "new" / ".cache");
  std::vector<std::byte> buffer;
  Append(buffer, Wd(""), IN_CREATE | IN_ISDIR, "new");
  const Changes changes = Feed(buffer);
  EXPECT_EQ(changes.paths, (std::set<std::string>{"new", "new/a", "new/a/x.html"}));
  EXPECT_TRUE(tree_->WatchOf("new"));
  EXPECT_TRUE(tree_->WatchOf("new/a"));
  EXPECT_FALSE(tree_->WatchOf("new/.cache"));
  // A dot-folder created: not watched, nothing reported.
  MakeDirs(tmp_.path() / ".trash");
  buffer.clear();
  Append(buffer, Wd(""), IN_CREATE | IN_ISDIR, ".trash");
  EXPECT_TRUE(Feed(buffer).Empty());
  EXPECT_FALSE(tree_->WatchOf(".trash"));
}

TEST_F(WatchTreeTest, FailedAddWatchAsksForARescan) {
  // Swap the inotify descriptor for an eventfd under the same number: inotify_add_watch then fails (EINVAL), as
  // it would with ENOSPC, which a test cannot provoke without lowering a system-wide limit.
  const int not_inotify = ::eventfd(0, EFD_CLOEXEC);
  ASSERT_GE(not_inotify, 0);
  ASSERT_EQ(::dup2(not_inotify, fd_), fd_);
  ::close(not_inotify);
  MakeDirs(tmp_.path() / "fresh");
  std::vector<std::byte> buffer;
  Append(buffer, Wd(""), IN_CREATE | IN_ISDIR, "fresh");
  const Changes changes = Feed(buffer);
  EXPECT_TRUE(changes.rescan);
  EXPECT_NE(changes.rescan_reason.find("inotify_add_watch failed (EINVAL)"), std::string::npos)
      << changes.rescan_reason;
  EXPECT_TRUE(changes.paths.contains("fresh"));
}

// ENOSPC cannot be provoked without lowering fs.inotify.max_user_watches for the whole machine: the seam makes
// two folders' watches fail, and the clock is the test's.
TEST(WatchTreeLimits, UnwatchableFolderWarnsOnceAndIsRescannedEveryInterval) {
  TempDir tmp;
  WriteFile(tmp.path() / "big" / "a.html");
  WriteFile(tmp.path() / "big" / "deep" / "b.html");
  WriteFile(tmp.path() / "huge" / "c.html");
  WriteFile(tmp.path() / "ok" / "d.html");
  const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  ASSERT_GE(fd, 0);
  bool full = true;
  internal::TreeOptions options;
  options.rescan_interval = seconds(30);
  options.add_watch = [&](int inotify_fd, const char* path, std::uint32_t mask) {
    const std::string_view p(path);
    if (full && (p.ends_with("/big") || p.ends_with("/huge"))) {
      errno = ENOSPC;
      return -1;
    }
    return ::inotify_add_watch(inotify_fd, path, mask);
  };
  std::vector<std::string> logs;
  internal::WatchTree tree(fd, tmp.path(), {}, [&](std::string_view m) { logs.emplace_back(m); }, options);
  Coalescer sink(milliseconds(100), milliseconds(1000));
  const Clock::time_point t0 = Clock::time_point{} + seconds(5000);
  ASSERT_TRUE(tree.Start(sink, t0));
  // One warning with the way out, however many folders failed.
  ASSERT_EQ(logs.size(), 1U) << testing::PrintToString(logs);
  EXPECT_NE(logs[0].find("inotify_add_watch failed (ENOSPC)"), std::string::npos) << logs[0];
  EXPECT_NE(logs[0].find("fs.inotify.max_user_watches"), std::string::npos) << logs[0];
  EXPECT_NE(logs[0].find("rescanned every 30 s"), std::string::npos) << logs[0];
  EXPECT_EQ(tree.Unwatched(), (std::set<std::string>{"big", "huge"}));
  EXPECT_TRUE(tree.WatchOf("ok"));
  sink.Take();

  // Not before the interval; then the parts are named (sync walks them whole), again and again.
  EXPECT_EQ(tree.NextTimer(), t0 + seconds(30));
  ASSERT_TRUE(tree.Tick(sink, t0 + seconds(29)));
  EXPECT_TRUE(sink.Empty());
  ASSERT_TRUE(tree.Tick(sink, t0 + seconds(30)));
  Changes changes = sink.Take();
  EXPECT_EQ(changes.paths, (std::set<std::string>{"big", "huge"}));
  EXPECT_FALSE(changes.rescan);  // That part only, not the whole tree.
  EXPECT_EQ(tree.NextTimer(), t0 + seconds(60));
  ASSERT_TRUE(tree.Tick(sink, t0 + seconds(60)));
  EXPECT_EQ(sink.Take().paths, (std::set<std::string>{"big", "huge"}));
  EXPECT_EQ(logs.size(), 1U) << testing::PrintToString(logs);

  // The limit was raised: watched at the next tick, every file found named once, and no timer any more.
  full = false;
  RemoveAll(tmp.path() / "huge");
  ASSERT_TRUE(tree.Tick(sink, t0 + seconds(90)));
  changes = sink.Take();
  EXPECT_TRUE(changes.paths.contains("big/a.html"));
  EXPECT_TRUE(changes.paths.contains("big/deep/b.html"));
  EXPECT_TRUE(changes.paths.contains("huge"));  // Gone meanwhile: named, so sync sees what went with it.
  EXPECT_TRUE(tree.WatchOf("big/deep"));
  EXPECT_TRUE(tree.Unwatched().empty());
  EXPECT_FALSE(tree.NextTimer());
  ::close(fd);
}

TEST_F(WatchTreeTest, TruncatedBufferAsksForARescan) {
  std::vector<std::byte> buffer;
  Append(buffer, Wd(""), IN_CLOSE_WRITE, "a.html");
  buffer.resize(buffer.size() - 4);
  EXPECT_TRUE(Feed(buffer).rescan);
}

TEST_F(WatchTreeTest, RootGoneIsHeldUntilItIsBack) {
  const int root = Wd("");
  std::error_code ec;
  fs::rename(tmp_.path(), tmp_.path().string() + ".away", ec);
  ASSERT_FALSE(ec);
  std::vector<std::byte> buffer;
  Append(buffer, root, IN_MOVE_SELF);
  EXPECT_TRUE(tree_->Process(buffer, sink_, t0_));
  EXPECT_TRUE(sink_.Held());
  EXPECT_FALSE(tree_->RootPresent());
  EXPECT_EQ(tree_->WatchCount(), 0U);
  // Back (the test reads no real events here, so it tells the tree with a synthetic late event: the root's
  // IN_IGNORED, which must not count as unknown).
  fs::rename(tmp_.path().string() + ".away", tmp_.path(), ec);
  ASSERT_FALSE(ec);
  buffer.clear();
  Append(buffer, root, IN_IGNORED);
  EXPECT_TRUE(tree_->Process(buffer, sink_, t0_));
  EXPECT_TRUE(sink_.Held());  // Nothing says it came back yet; the real tests see the parent's IN_MOVED_TO.
  EXPECT_EQ(tree_->Rescans(), 0);
  // Events lost while it was gone may include the one saying it is back: an overflow looks again.
  buffer.clear();
  Append(buffer, -1, IN_Q_OVERFLOW);
  const Changes changes = Feed(buffer);
  EXPECT_FALSE(sink_.Held());
  EXPECT_TRUE(tree_->RootPresent());
  EXPECT_TRUE(changes.rescan);
  EXPECT_TRUE(changes.paths.contains("sub"));
  EXPECT_TRUE(tree_->WatchOf("sub"));
}

TEST(WatchMessages, NameTheWayOut) {
  const std::string enospc = internal::AddWatchFailure("public/blog", ENOSPC);
  EXPECT_NE(enospc.find("watch public/blog: inotify_add_watch failed (ENOSPC)"), std::string::npos) << enospc;
  EXPECT_NE(enospc.find("sysctl fs.inotify.max_user_watches=524288"), std::string::npos) << enospc;
  const std::string add_emfile = internal::AddWatchFailure("public", EMFILE);
  EXPECT_NE(add_emfile.find("fs.inotify.max_user_instances"), std::string::npos) << add_emfile;
  const std::string emfile = internal::InitFailure(EMFILE);
  EXPECT_NE(emfile.find("EMFILE"), std::string::npos) << emfile;
  EXPECT_NE(emfile.find("fs.inotify.max_user_instances"), std::string::npos) << emfile;
}

}  // namespace
}  // namespace sitesync::watcher
