// Runs a profile's credential_process: `/bin/sh -c COMMAND`, as the AWS SDKs for Go and Java do on Unix (botocore
// splits the command into words itself and runs it without a shell; for a command of plain quoted words the two
// agree, and the shell also allows pipes and variables). posix_spawn rather than fork: the watch command has
// threads, and only exec may follow a fork there. The child gets its own process group so that a helper that
// hangs is killed together with whatever it started.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "aws/credential_sources.h"

extern char** environ;

namespace sitesync::aws {
namespace {

constexpr std::size_t kErrTail = 4096;

struct SpawnActions {
  posix_spawn_file_actions_t actions;
  SpawnActions() { posix_spawn_file_actions_init(&actions); }
  ~SpawnActions() { posix_spawn_file_actions_destroy(&actions); }
  SpawnActions(const SpawnActions&) = delete;
  SpawnActions& operator=(const SpawnActions&) = delete;
};

struct SpawnAttr {
  posix_spawnattr_t attr;
  SpawnAttr() { posix_spawnattr_init(&attr); }
  ~SpawnAttr() { posix_spawnattr_destroy(&attr); }
  SpawnAttr(const SpawnAttr&) = delete;
  SpawnAttr& operator=(const SpawnAttr&) = delete;
};

}  // namespace

std::string LastLine(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ' || text.back() == '\t')) {
    text.remove_suffix(1);
  }
  if (auto nl = text.find_last_of('\n'); nl != std::string_view::npos) text.remove_prefix(nl + 1);
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t' || text.front() == '\r')) text.remove_prefix(1);
  std::string line(text.substr(0, 300));
  if (text.size() > 300) line += "...";
  for (char& c : line) {
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  }
  return line;
}

Result<ProcessResult> RunShellCommand(const std::string& command, std::chrono::milliseconds timeout,
                                      std::size_t max_output, std::string_view what) {
  int out_pipe[2];
  int err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) {
    return Fail(ErrorCode::kCredentials, fmt::format("{}: pipe failed: {}", what, std::strerror(errno)));
  }
  UniqueFd out_read(out_pipe[0]), out_write(out_pipe[1]);
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    return Fail(ErrorCode::kCredentials, fmt::format("{}: pipe failed: {}", what, std::strerror(errno)));
  }
  UniqueFd err_read(err_pipe[0]), err_write(err_pipe[1]);

  SpawnActions actions;
  posix_spawn_file_actions_adddup2(&actions.actions, out_write.get(), STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions.actions, err_write.get(), STDERR_FILENO);
  SpawnAttr attr;
  posix_spawnattr_setflags(&attr.attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup(&attr.attr, 0);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr.attr, &none);
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  posix_spawnattr_setsigdefault(&attr.attr, &defaults);

  std::string sh = "/bin/sh", dash_c = "-c", cmd = command;
  std::array<char*, 4> argv{sh.data(), dash_c.data(), cmd.data(), nullptr};
  pid_t pid = -1;
  if (int rc = posix_spawn(&pid, "/bin/sh", &actions.actions, &attr.attr, argv.data(), environ); rc != 0) {
    return Fail(ErrorCode::kCredentials, fmt::format("{}: could not start /bin/sh: {}", what, std::strerror(rc)));
  }
  out_write.Reset();
  err_write.Reset();

  ProcessResult result;
  bool too_much = false;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool out_open = true, err_open = true;
  std::array<char, 16384> buffer;
  while (out_open || err_open) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      result.timed_out = true;
      break;
    }
    std::array<pollfd, 2> fds{pollfd{out_open ? out_read.get() : -1, POLLIN, 0},
                              pollfd{err_open ? err_read.get() : -1, POLLIN, 0}};
    const int n = ::poll(fds.data(), fds.size(), static_cast<int>(std::min<long long>(left.count(), 1000)));
    if (n < 0 && errno != EINTR) break;
    for (std::size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      const ssize_t got = ::read(fds[i].fd, buffer.data(), buffer.size());
      if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (got <= 0) {
        (i == 0 ? out_open : err_open) = false;
        continue;
      }
      const auto size = static_cast<std::size_t>(got);
      if (i == 0) {
        if (result.out.size() + size > max_output) {
          too_much = true;
          break;
        }
        result.out.append(buffer.data(), size);
      } else {
        result.err_tail.append(buffer.data(), size);
        if (result.err_tail.size() > 2 * kErrTail) result.err_tail.erase(0, result.err_tail.size() - kErrTail);
      }
    }
    if (too_much) break;
  }
  if (result.timed_out || too_much) ::kill(-pid, SIGKILL);
  int status = 0;
  pid_t waited;
  do {
    waited = ::waitpid(pid, &status, 0);
  } while (waited < 0 && errno == EINTR);
  if (waited != pid) {
    return Fail(ErrorCode::kCredentials, fmt::format("{}: waiting for the process failed: {}", what,
                                                     std::strerror(errno)));
  }
  if (too_much) {
    return Fail(ErrorCode::kCredentials,
                fmt::format("{}: the process wrote more than {} bytes to its standard output; a credential_process "
                            "prints one JSON object",
                            what, max_output));
  }
  if (WIFEXITED(status)) {
    result.exit_status = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.signal = WTERMSIG(status);
  }
  if (result.err_tail.size() > kErrTail) result.err_tail.erase(0, result.err_tail.size() - kErrTail);
  return result;
}

}  // namespace sitesync::aws
