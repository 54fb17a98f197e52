// OpenInSource / OpenBeneath: a file swapped for a symlink (or a folder on its path swapped for one) between the
// walk and the open is never read outside SOURCE; links that stay inside still work. Each case runs with openat2
// (kAuto) and with the checked fallback (kChecked) that older kernels get.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <system_error>

#include "sitemap/open_beneath.h"
#include "sitemap/sitemap.h"

namespace sitesync::sitemap {
namespace {

namespace fs = std::filesystem;
using internal::OpenMethod;

constexpr std::string_view kSecret = "aws_secret_access_key = do-not-publish";

/// A temp folder holding SOURCE ("site") and a secret next to it, removed (without following links) at the end.
class Scene {
 public:
  Scene() {
    std::string templ = (fs::temp_directory_path() / "open_beneath_test.XXXXXX").string();
    if (mkdtemp(templ.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed";
    top_ = fs::canonical(templ);
    fs::create_directories(top_ / "site");
    fs::create_directories(top_ / "outside");
    Write(top_ / "outside" / "credentials", kSecret);
  }
  ~Scene() {
    std::error_code ec;
    fs::remove_all(top_, ec);
  }
  Scene(const Scene&) = delete;
  Scene& operator=(const Scene&) = delete;

  fs::path Site() const { return top_ / "site"; }
  fs::path Secret() const { return top_ / "outside" / "credentials"; }
  fs::path Outside() const { return top_ / "outside"; }

  static void Write(const fs::path& path, std::string_view content) {
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << content;
  }
  void File(const std::string& rel, std::string_view content) const { Write(Site() / rel, content); }

  /// The walk's record of `rel` (as Walk returns it).
  LocalFile Walked(const std::string& rel) const {
    auto map = Walk(Site(), WalkOptions{});
    EXPECT_TRUE(map.has_value());
    if (map) {
      for (const LocalFile& f : map->files) {
        if (f.rel_path == rel) return f;
      }
    }
    ADD_FAILURE() << "the walk did not find " << rel;
    return {};
  }

  /// Replaces `rel` by a symlink to `target`, atomically (a rename over it, as `ln -sf` would do it in two steps).
  void SwapForLink(const std::string& rel, const fs::path& target) const {
    const fs::path temp = Site() / (rel + ".swap");
    fs::create_symlink(target, temp);
    fs::rename(temp, Site() / rel);
  }

 private:
  fs::path top_;
};

std::string ReadAll(const OpenedFile& opened) {
  std::string out(opened.size, '\0');
  const ssize_t n = ::pread(opened.fd.get(), out.data(), out.size(), 0);
  out.resize(n < 0 ? 0 : static_cast<std::size_t>(n));
  return out;
}

class OpenBeneathTest : public ::testing::TestWithParam<OpenMethod> {
 protected:
  Result<OpenedFile> Open(const LocalFile& f) const {
    return internal::OpenBeneath(*f.root, f.rel_path, f.dev, f.ino, GetParam());
  }
  Scene scene_;
};

TEST_P(OpenBeneathTest, ReadsAFileOfTheWalk) {
  scene_.File("a/index.html", "<p>hi</p>");
  const LocalFile f = scene_.Walked("a/index.html");
  EXPECT_NE(f.ino, 0u) << "the walk records the inode";
  auto opened = Open(f);
  ASSERT_TRUE(opened.has_value()) << opened.error().message;
  EXPECT_EQ(ReadAll(*opened), "<p>hi</p>");
}

TEST_P(OpenBeneathTest, AFileSwappedForALinkOutsideIsNotRead) {
  scene_.File("index.html", "<p>page</p>");
  const LocalFile f = scene_.Walked("index.html");
  scene_.SwapForLink("index.html", scene_.Secret());
  auto opened = Open(f);
  ASSERT_FALSE(opened.has_value()) << "read " << ReadAll(*opened);
  EXPECT_EQ(opened.error().code, ErrorCode::kInput);
  EXPECT_NE(opened.error().message.find("'index.html' now leads outside SOURCE"), std::string::npos)
      << opened.error().message;
  // A relative link climbing out is the same.
  scene_.File("b.txt", "b");
  const LocalFile b = scene_.Walked("b.txt");
  scene_.SwapForLink("b.txt", "../outside/credentials");
  EXPECT_FALSE(Open(b).has_value());
}

TEST_P(OpenBeneathTest, AFolderSwappedForALinkOutsideIsNotRead) {
  scene_.File("docs/credentials", "public docs");
  const LocalFile f = scene_.Walked("docs/credentials");
  fs::remove_all(scene_.Site() / "docs");
  fs::create_directory_symlink(scene_.Outside(), scene_.Site() / "docs");
  auto opened = Open(f);
  ASSERT_FALSE(opened.has_value()) << "read " << ReadAll(*opened);
  EXPECT_EQ(opened.error().code, ErrorCode::kInput);
}

TEST_P(OpenBeneathTest, LinksThatStayInsideStillWork) {
  // Followed on purpose by the walk: a link to a file and a link to a folder, both inside SOURCE.
  scene_.File("posts/2024/index.html", "<p>2024</p>");
  fs::create_directory_symlink("posts/2024", scene_.Site() / "latest");
  fs::create_symlink("posts/2024/index.html", scene_.Site() / "current.html");
  for (const std::string rel : {"latest/index.html", "current.html"}) {
    const LocalFile f = scene_.Walked(rel);
    auto opened = Open(f);
    ASSERT_TRUE(opened.has_value()) << rel << ": " << opened.error().message;
    EXPECT_EQ(ReadAll(*opened), "<p>2024</p>") << rel;
  }
  // An absolute link into SOURCE (openat2's RESOLVE_BENEATH refuses absolute links as such).
  fs::create_directory_symlink(scene_.Site() / "posts" / "2024", scene_.Site() / "abs");
  {
    const LocalFile f = scene_.Walked("abs/index.html");
    auto opened = Open(f);
    ASSERT_TRUE(opened.has_value()) << opened.error().message;
    EXPECT_EQ(ReadAll(*opened), "<p>2024</p>");
  }
  // Swapped after the walk for a link to another file inside: still inside, read as it is now.
  scene_.File("other.html", "<p>other</p>");
  const LocalFile f = scene_.Walked("current.html");
  scene_.SwapForLink("current.html", scene_.Site() / "other.html");
  auto opened = Open(f);
  ASSERT_TRUE(opened.has_value()) << opened.error().message;
  EXPECT_EQ(ReadAll(*opened), "<p>other</p>");
}

TEST_P(OpenBeneathTest, AFileRewrittenByRenameIsReadAsItIsNow) {
  scene_.File("app.css", "old");
  const LocalFile f = scene_.Walked("app.css");
  scene_.File("app.css.tmp", "body{color:red}");
  fs::rename(scene_.Site() / "app.css.tmp", scene_.Site() / "app.css");  // a new inode
  auto opened = Open(f);
  ASSERT_TRUE(opened.has_value()) << opened.error().message;
  EXPECT_EQ(opened->size, 15u);
  EXPECT_EQ(ReadAll(*opened), "body{color:red}");
}

TEST_P(OpenBeneathTest, AFifoSwappedInIsRefusedWithoutBlocking) {
  scene_.File("feed.xml", "<rss/>");
  const LocalFile f = scene_.Walked("feed.xml");
  fs::remove(scene_.Site() / "feed.xml");
  ASSERT_EQ(::mkfifo((scene_.Site() / "feed.xml").c_str(), 0644), 0);
  const auto started = std::chrono::steady_clock::now();
  auto opened = Open(f);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
  ASSERT_FALSE(opened.has_value());
  EXPECT_EQ(opened.error().code, ErrorCode::kInput);
  EXPECT_NE(opened.error().message.find("no longer a regular file"), std::string::npos) << opened.error().message;
}

TEST_P(OpenBeneathTest, AVanishedFileIsNotFound) {
  scene_.File("gone.txt", "x");
  const LocalFile f = scene_.Walked("gone.txt");
  fs::remove(scene_.Site() / "gone.txt");
  auto opened = Open(f);
  ASSERT_FALSE(opened.has_value());
  EXPECT_EQ(opened.error().code, ErrorCode::kNotFound);
}

INSTANTIATE_TEST_SUITE_P(Methods, OpenBeneathTest, ::testing::Values(OpenMethod::kAuto, OpenMethod::kChecked),
                         [](const ::testing::TestParamInfo<OpenMethod>& param_info) {
                           return param_info.param == OpenMethod::kAuto ? std::string("Openat2") : std::string("Checked");
                         });

TEST(OpenInSource, UsesTheWalksRoot) {
  Scene scene;
  scene.File("x.txt", "x");
  const LocalFile f = scene.Walked("x.txt");
  auto opened = OpenInSource(f);
  ASSERT_TRUE(opened.has_value()) << opened.error().message;
  EXPECT_EQ(ReadAll(*opened), "x");
  scene.SwapForLink("x.txt", scene.Secret());
  EXPECT_FALSE(OpenInSource(f).has_value());
  LocalFile no_root;
  no_root.rel_path = "x.txt";
  EXPECT_FALSE(OpenInSource(no_root).has_value());
}

TEST(FileRobotsNoindex, ReadsAPageOfTheSiteOnlyBeneathSource) {
  Scene scene;
  scene.File("page.html", "<html><head><meta name=robots content=noindex></head></html>");
  const LocalFile f = scene.Walked("page.html");
  auto noindex = FileRobotsNoindex(f);
  ASSERT_TRUE(noindex.has_value()) << noindex.error().message;
  EXPECT_TRUE(*noindex);
  scene.SwapForLink("page.html", scene.Secret());
  auto swapped = FileRobotsNoindex(f);
  ASSERT_FALSE(swapped.has_value());
  EXPECT_EQ(swapped.error().code, ErrorCode::kInput);
}

}  // namespace
}  // namespace sitesync::sitemap
