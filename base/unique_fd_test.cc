#include "base/unique_fd.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include <gtest/gtest.h>

namespace sitesync {
namespace {

// Whether `fd` is an open descriptor of this process.
bool IsOpen(int fd) { return ::fcntl(fd, F_GETFD) != -1 || errno != EBADF; }

int OpenDevNull() { return ::open("/dev/null", O_RDONLY | O_CLOEXEC); }

TEST(UniqueFd, ClosesWhenItGoes) {
  int raw = -1;
  {
    const UniqueFd fd(OpenDevNull());
    raw = fd.get();
    ASSERT_GE(raw, 0);
    EXPECT_TRUE(fd);
    EXPECT_TRUE(IsOpen(raw));
  }
  EXPECT_FALSE(IsOpen(raw));
}

TEST(UniqueFd, NegativeHoldsNothing) {
  const UniqueFd none(-5);
  EXPECT_FALSE(none);
  EXPECT_EQ(none.get(), -1);
  const UniqueFd empty;
  EXPECT_FALSE(empty);
}

TEST(UniqueFd, MoveHandsOverOwnership) {
  UniqueFd a(OpenDevNull());
  const int raw = a.get();
  UniqueFd b(std::move(a));
  EXPECT_FALSE(a);  // NOLINT(bugprone-use-after-move): the moved-from state is the point
  EXPECT_EQ(b.get(), raw);
  UniqueFd c(OpenDevNull());
  const int other = c.get();
  c = std::move(b);
  EXPECT_EQ(c.get(), raw);
  EXPECT_FALSE(IsOpen(other)) << "the descriptor c held before the move was closed";
  EXPECT_TRUE(IsOpen(raw));
}

TEST(UniqueFd, ResetReleaseAndClose) {
  UniqueFd fd(OpenDevNull());
  const int first = fd.get();
  fd.Reset(OpenDevNull());
  EXPECT_FALSE(IsOpen(first));
  const int second = fd.get();
  const int released = fd.Release();
  EXPECT_EQ(released, second);
  EXPECT_FALSE(fd);
  EXPECT_TRUE(IsOpen(released)) << "Release gives the descriptor away without closing it";
  fd.Reset(released);
  EXPECT_TRUE(fd.Close());
  EXPECT_FALSE(fd);
  EXPECT_FALSE(IsOpen(released));
  EXPECT_TRUE(fd.Close()) << "closing nothing succeeds";
}

}  // namespace
}  // namespace sitesync
