// The polling source: its snapshots and comparisons on real temp folders, driven with a fake clock; and the
// inotify source held against it (the naive reference, as watchman holds its watchers) on random file operations.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "watcher/inotify_events.h"
#include "watcher/stat_poll.h"
#include "watcher/watcher.h"

namespace sitesync::watcher {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr seconds kPatience(30);

class TempDir {
 public:
  TempDir() {
    std::string name = (fs::temp_directory_path() / "sitesync-poll-XXXXXX").string();
    if (::mkdtemp(name.data()) != nullptr) path_ = fs::canonical(name);
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

void WriteFile(const fs::path& path, std::string_view content = "x") {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0) << path << ": " << std::strerror(errno);
  ASSERT_EQ(::write(fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
  ::close(fd);
}

void SetMtime(const fs::path& path, std::int64_t sec) {
  const timespec times[2] = {{sec, 0}, {sec, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, 0), 0) << path;
}

std::set<std::string> Paths(const Changes& changes) { return changes.paths; }

// ------------------------------------------------------------------------------------------------------------
// StatPoller with a fake clock
// ------------------------------------------------------------------------------------------------------------

class StatPollerTest : public testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(tmp_.path().empty());
    WriteFile(tmp_.path() / "index.html", "home");
    WriteFile(tmp_.path() / "blog" / "post.html", "post");
    WriteFile(tmp_.path() / "css" / "site.css", "body{}");
    ASSERT_TRUE(poller_.Start(t0_));
  }

  /// One poll at t0 + `at`; its batch.
  Changes PollAt(milliseconds at) {
    poller_.Poll(sink_, t0_ + at);
    if (sink_.Held()) return {};
    return sink_.Take();
  }

  TempDir tmp_;
  Clock::time_point t0_ = Clock::time_point{} + seconds(1000);
  std::vector<std::string> logs_;
  internal::StatPoller poller_{tmp_.path(), sitemap::WalkOptions{},
                               [this](std::string_view m) { logs_.emplace_back(m); }, milliseconds(200)};
  Coalescer sink_{milliseconds(100), milliseconds(1000)};
};

TEST_F(StatPollerTest, NothingChangedNothingReported) {
  EXPECT_EQ(poller_.NextPoll(), t0_ + milliseconds(200));
  EXPECT_FALSE(poller_.Poll(sink_, t0_ + milliseconds(200)));
  EXPECT_TRUE(sink_.Empty());
  EXPECT_FALSE(sink_.Deadline());
  EXPECT_EQ(poller_.NextPoll(), t0_ + milliseconds(400));
}

TEST_F(StatPollerTest, NewChangedAndGoneFilesAreReported) {
  WriteFile(tmp_.path() / "new.html", "n");
  WriteFile(tmp_.path() / "blog" / "post.html", "post, longer");
  fs::remove(tmp_.path() / "css" / "site.css");
  EXPECT_EQ(Paths(PollAt(milliseconds(200))), (std::set<std::string>{"blog/post.html", "css/site.css", "new.html"}));
  EXPECT_TRUE(PollAt(milliseconds(400)).Empty());
}

TEST_F(StatPollerTest, SameSizeEditIsSeenByMtimeAndRenameOverByInode) {
  WriteFile(tmp_.path() / "index.html", "HOME");  // Same size.
  SetMtime(tmp_.path() / "index.html", 1'000'000);
  EXPECT_EQ(Paths(PollAt(milliseconds(200))), (std::set<std::string>{"index.html"}));
  // Same size and same mtime, but another file renamed over it (`cp -p` to a temp name, then mv).
  WriteFile(tmp_.path() / "staged", "HOME");
  SetMtime(tmp_.path() / "staged", 1'000'000);
  fs::rename(tmp_.path() / "staged", tmp_.path() / "index.html");
  EXPECT_EQ(Paths(PollAt(milliseconds(400))), (std::set<std::string>{"index.html"}));
}

TEST_F(StatPollerTest, FiltersAndTempFilesAreThoseOfTheWalk) {
  WriteFile(tmp_.path() / ".git" / "HEAD", "ref");
  WriteFile(tmp_.path() / "index.html.swp", "swap");
  WriteFile(tmp_.path() / "4913", "");
  WriteFile(tmp_.path() / "draft.tmp", "t");
  WriteFile(tmp_.path() / ".well-known" / "security.txt", "s");
  EXPECT_EQ(Paths(PollAt(milliseconds(200))), (std::set<std::string>{".well-known/security.txt"}));
}

TEST_F(StatPollerTest, SymlinkedFoldersFollowTheWalksRules) {
  WriteFile(tmp_.path() / "releases" / "v1" / "a.html", "v1");
  ASSERT_EQ(::symlink("releases/v1", (tmp_.path() / "latest").c_str()), 0);
  ASSERT_EQ(::symlink("/etc", (tmp_.path() / "outside").c_str()), 0);  // Outside SOURCE: refused.
  ASSERT_EQ(::symlink("..", (tmp_.path() / "blog" / "up").c_str()), 0);  // A loop: refused.
  EXPECT_EQ(Paths(PollAt(milliseconds(200))), (std::set<std::string>{"latest/a.html", "releases/v1/a.html"}));
  WriteFile(tmp_.path() / "releases" / "v1" / "a.html", "v1, edited");
  EXPECT_EQ(Paths(PollAt(milliseconds(400))), (std::set<std::string>{"latest/a.html", "releases/v1/a.html"}));
}

TEST_F(StatPollerTest, AFileBeingWrittenKeepsTheBatchOpen) {
  WriteFile(tmp_.path() / "big.bin", "part");
  poller_.Poll(sink_, t0_ + milliseconds(200));
  EXPECT_EQ(sink_.Deadline(), t0_ + milliseconds(300));
  WriteFile(tmp_.path() / "big.bin", "part and more");
  poller_.Poll(sink_, t0_ + milliseconds(250));
  EXPECT_EQ(sink_.Deadline(), t0_ + milliseconds(350));  // The quiet period restarted.
  EXPECT_FALSE(poller_.Poll(sink_, t0_ + milliseconds(300)));
  EXPECT_TRUE(sink_.Due(t0_ + milliseconds(350)));
  EXPECT_EQ(Paths(sink_.Take()), (std::set<std::string>{"big.bin"}));
}

TEST_F(StatPollerTest, RootGoneIsHeldThenRescanned) {
  fs::remove_all(tmp_.path());
  EXPECT_FALSE(poller_.Poll(sink_, t0_ + milliseconds(200)));
  EXPECT_TRUE(sink_.Held());
  EXPECT_FALSE(sink_.Deadline());  // Held: nothing flushes, so nothing is taken for deleted.
  EXPECT_FALSE(poller_.Poll(sink_, t0_ + milliseconds(400)));
  ASSERT_EQ(logs_.size(), 1U);
  EXPECT_NE(logs_[0].find("waiting for it to come back"), std::string::npos) << logs_[0];
  WriteFile(tmp_.path() / "index.html", "home again");
  EXPECT_TRUE(poller_.Poll(sink_, t0_ + milliseconds(600)));
  EXPECT_FALSE(sink_.Held());
  const Changes changes = sink_.Take();
  EXPECT_TRUE(changes.rescan);
  EXPECT_TRUE(changes.paths.contains("index.html"));
  EXPECT_TRUE(changes.paths.contains("blog/post.html"));  // Gone for good: named, so sync can decide.
}

TEST(StatPoller, SymlinkedRootRetargetedAsksForARescan) {
  TempDir tmp;
  WriteFile(tmp.path() / "releases" / "1" / "index.html", "one");
  WriteFile(tmp.path() / "releases" / "2" / "index.html", "two, longer");
  ASSERT_EQ(::symlink("releases/1", (tmp.path() / "public").c_str()), 0);
  const Clock::time_point t0{};
  internal::StatPoller poller(tmp.path() / "public", {}, {}, milliseconds(100));
  ASSERT_TRUE(poller.Start(t0));
  Coalescer sink(milliseconds(50), milliseconds(500));
  // ln -s releases/2 tmp && mv -T tmp public
  ASSERT_EQ(::symlink("releases/2", (tmp.path() / "public.tmp").c_str()), 0);
  fs::rename(tmp.path() / "public.tmp", tmp.path() / "public");
  EXPECT_TRUE(poller.Poll(sink, t0 + milliseconds(100)));
  const Changes changes = sink.Take();
  EXPECT_TRUE(changes.rescan);
  EXPECT_NE(changes.rescan_reason.find("releases/2"), std::string::npos) << changes.rescan_reason;
  EXPECT_EQ(changes.paths, (std::set<std::string>{"index.html"}));
}

TEST(PollSource, WaitReturnsWithChangesAndHonoursInterrupt) {
  TempDir tmp;
  auto made = MakePollSource(tmp.path(), {}, {}, milliseconds(20));
  ASSERT_TRUE(made) << made.error().message;
  auto& source = **made;
  Coalescer sink(milliseconds(10), milliseconds(100));
  WriteFile(tmp.path() / "a.html", "a");
  const auto give_up = Clock::now() + kPatience;
  while (sink.Empty() && Clock::now() < give_up) ASSERT_TRUE(source.Wait(give_up, sink));
  EXPECT_EQ(Paths(sink.Take()), (std::set<std::string>{"a.html"}));
  source.Interrupt();
  const auto before = Clock::now();
  ASSERT_TRUE(source.Wait(std::nullopt, sink));  // Would block forever without the Interrupt.
  EXPECT_LT(Clock::now() - before, seconds(5));
  EXPECT_FALSE(MakePollSource(tmp.path() / "missing", {}, {}, milliseconds(20)));
  EXPECT_FALSE(MakePollSource(tmp.path(), {}, {}, milliseconds(0)));
}

// ------------------------------------------------------------------------------------------------------------
// The inotify source against the naive reference: random operations, then both must name every changed path
// ------------------------------------------------------------------------------------------------------------

/// Random operations on a small tree: writes (new and existing), deletes, folders made, moved and removed whole,
/// renames over existing files, temp files, symlinks to folders created and retargeted.
class RandomTree {
 public:
  RandomTree(const fs::path& root, unsigned seed) : root_(root), rng_(seed) {}

  void Step() {
    const auto files = List(false);
    const auto folders = List(true);
    switch (Pick(12)) {
      case 0:
      case 1:
        WriteFile(root_ / RandomFolder(folders) / Name(".html"), Content());
        break;
      case 2:
        if (!files.empty()) WriteFile(root_ / files[Pick(files.size())], Content());
        break;
      case 3:
        if (!files.empty()) fs::remove(root_ / files[Pick(files.size())]);
        break;
      case 4: {
        const fs::path dir = root_ / RandomFolder(folders) / Name("");
        WriteFile(dir / "a.html", Content());
        WriteFile(dir / "sub" / "b.css", Content());
        break;
      }
      case 5:
        if (!folders.empty()) {
          std::error_code ec;
          fs::remove_all(root_ / folders[Pick(folders.size())], ec);
        }
        break;
      case 6:
        if (!folders.empty()) {
          const std::string from = folders[Pick(folders.size())];
          const fs::path to = root_ / Name("");
          std::error_code ec;
          fs::rename(root_ / from, to, ec);  // Fails harmlessly when moving a folder into itself.
        }
        break;
      case 7:
        if (files.size() >= 2) {
          std::error_code ec;
          fs::rename(root_ / files[Pick(files.size())], root_ / files[Pick(files.size())], ec);
        }
        break;
      case 8:
        WriteFile(root_ / RandomFolder(folders) / Name(".html.swp"), Content());
        break;
      case 9:
        if (!folders.empty()) {
          // ln -sfn FOLDER link-N: a new link, or one retargeted by renaming a fresh link over it.
          const std::string link = "link-" + std::to_string(Pick(2));
          const fs::path target = fs::path(folders[Pick(folders.size())]);
          std::error_code ec;
          fs::create_directory_symlink(target, root_ / "link.tmp", ec);
          if (!ec) fs::rename(root_ / "link.tmp", root_ / link, ec);
          if (ec) fs::remove(root_ / "link.tmp", ec);
        }
        break;
      case 10:
        if (!files.empty()) {
          // A link to a file: published under its own path, read through it.
          std::error_code ec;
          fs::remove(root_ / "file-link.html", ec);
          fs::create_symlink(files[Pick(files.size())], root_ / "file-link.html", ec);
        }
        break;
      case 11: {
        // A hidden folder (never published nor watched as itself) reached through a link: `stash -> .stash`.
        WriteFile(root_ / ".stash" / Name(".html"), Content());
        std::error_code ec;
        if (!fs::is_symlink(root_ / "stash", ec)) fs::create_directory_symlink(".stash", root_ / "stash", ec);
        break;
      }
    }
  }

 private:
  std::size_t Pick(std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng_); }
  std::string Name(const std::string& ext) { return "n" + std::to_string(counter_++) + ext; }
  std::string Content() { return std::string(1 + Pick(40), static_cast<char>('a' + Pick(26))); }
  std::string RandomFolder(const std::vector<std::string>& folders) {
    return folders.empty() || Pick(3) == 0 ? std::string() : folders[Pick(folders.size())];
  }
  /// Real files or folders under the root (not through links), relative.
  std::vector<std::string> List(bool want_folders) const {
    std::vector<std::string> out;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(root_, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
      const auto status = it->symlink_status(ec);
      if (ec) break;
      const bool folder = fs::is_directory(status);
      if (folder == want_folders && !fs::is_symlink(status)) out.push_back(fs::relative(it->path(), root_).string());
    }
    std::ranges::sort(out);
    return out;
  }

  fs::path root_;
  std::mt19937 rng_;
  int counter_ = 0;
};

/// True when `changes` names `path`, or a folder above it (sync walks a named folder whole), or asks for a rescan.
bool Names(const std::set<std::string>& seen, bool rescan, const std::string& path) {
  if (rescan) return true;
  for (std::string p = path;;) {
    if (seen.contains(p)) return true;
    const auto slash = p.rfind('/');
    if (slash == std::string::npos) return false;
    p.resize(slash);
  }
}

TEST(InotifyAgainstPolling, RandomOperationsNameEveryChangedPath) {
  for (unsigned seed = 1; seed <= 8; ++seed) {
    TempDir tmp;
    ASSERT_FALSE(tmp.path().empty());
    WriteFile(tmp.path() / "index.html", "home");
    WriteFile(tmp.path() / "docs" / "guide.html", "guide");
    auto made = MakeInotifySource(tmp.path(), {}, {});
    ASSERT_TRUE(made) << made.error().message;
    EventSource& inotify = **made;
    Coalescer inotify_sink(milliseconds(5), milliseconds(100));
    const Clock::time_point t0{};
    internal::StatPoller poller(tmp.path(), {}, {}, milliseconds(1));
    ASSERT_TRUE(poller.Start(t0));
    Coalescer poll_sink(milliseconds(1), milliseconds(10));
    auto reference = internal::TakeSnapshot(tmp.path(), {});
    ASSERT_TRUE(reference) << reference.error().message;

    RandomTree tree(tmp.path(), seed);
    for (int round = 0; round < 25; ++round) {
      const int steps = 1 + static_cast<int>(seed + static_cast<unsigned>(round)) % 6;
      for (int i = 0; i < steps; ++i) tree.Step();
      // Settle: a marker written last is seen only after every event before it was read.
      const std::string marker = "marker-" + std::to_string(round) + ".html";
      WriteFile(tmp.path() / marker, "m");
      std::set<std::string> seen;
      bool rescan = false;
      const auto give_up = Clock::now() + kPatience;
      while (!seen.contains(marker) && Clock::now() < give_up) {
        ASSERT_TRUE(inotify.Wait(std::min(give_up, inotify_sink.Deadline().value_or(give_up)), inotify_sink));
        if (inotify_sink.Due(Clock::now())) {
          Changes batch = inotify_sink.Take();
          rescan = rescan || batch.rescan;
          seen.merge(batch.paths);
        }
      }
      ASSERT_TRUE(seen.contains(marker)) << "seed " << seed << " round " << round;
      // Anything still pending belongs to this round too.
      Changes rest = inotify_sink.Take();
      rescan = rescan || rest.rescan;
      seen.merge(rest.paths);

      auto after = internal::TakeSnapshot(tmp.path(), {});
      ASSERT_TRUE(after) << after.error().message;
      const std::vector<std::string> truth = internal::DiffSnapshots(*reference, *after);
      const auto now = t0 + milliseconds(round + 1);
      poller.Poll(poll_sink, now);
      const Changes polled = poll_sink.Take();
      EXPECT_EQ(polled.paths, std::set<std::string>(truth.begin(), truth.end()))
          << "seed " << seed << " round " << round;
      for (const std::string& path : truth) {
        EXPECT_TRUE(Names(seen, rescan, path)) << "seed " << seed << " round " << round << ": inotify missed "
                                               << path;
      }
      reference = std::move(after);
    }
  }
}

}  // namespace
}  // namespace sitesync::watcher
