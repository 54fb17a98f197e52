"""Terminal manners of sitesync, checked in a real pseudo-terminal (python's pty module) against moto_server with
SigV4 checking on: the progress line redrawn in place (CR + erase-line) and never wider than the terminal,
colours only on a terminal and never with NO_COLOR / TERM=dumb / --json / on a pipe (each stream decided for
itself), -q printing errors only, and Ctrl-C / SIGTERM mid-sync leaving the line erased and the process killed
by the signal at once.

sitesync talks to moto through a LatencyRelay (a TCP relay that holds every client->server chunk for a few ms)
so that a sync of a few hundred files lasts long enough for several progress draws and for a Ctrl-C to land in
the middle of it. What reached S3 is checked with boto3.

    SITESYNC_BIN=$PWD/build/cli/sitesync python3 -m unittest -v tests/integration/test_terminal.py
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import socket
import struct
import sys
import tempfile
import termios
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402

BIN_OK, BIN_WHY = harness.sitesync_available()
needs_sitesync = unittest.skipUnless(BIN_OK, BIN_WHY)

SGR = re.compile(rb"\x1b\[[0-9;]*m")  # a colour (Select Graphic Rendition) sequence
ESC = b"\x1b"
ERASE = b"\r\x1b[K"
# One progress draw: CR, erase-line, then the text up to the next control byte ("12/300 files  1.2 MiB/...").
DRAW = re.compile(rb"\r\x1b\[K(\d+/\d+[^\r\n\x1b]*)")
PROGRESS_TEXT = re.compile(r"\d+/\d+ files")


# --------------------------------------------------------------------------------------------------------------
# a slow link and a pseudo-terminal
# --------------------------------------------------------------------------------------------------------------


class LatencyRelay:
    """127.0.0.1 TCP relay to `upstream_port` that sleeps `delay` seconds before passing on each chunk the client
    sends (so each request takes at least that long). Threads are daemons; stop() closes every socket."""

    def __init__(self, upstream_port: int, delay: float):
        self.upstream_port = upstream_port
        self.delay = delay
        self._sock: socket.socket | None = None
        self._socks: set = set()
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self.endpoint: str | None = None

    def start(self) -> "LatencyRelay":
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((harness.LOOPBACK, 0))
        self._sock.listen(128)
        self._sock.settimeout(0.2)
        self.endpoint = f"http://{harness.LOOPBACK}:{self._sock.getsockname()[1]}"
        threading.Thread(target=self._accept, name="latency-relay", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        with self._lock:
            socks = list(self._socks)
            self._socks.clear()
        for s in socks + ([self._sock] if self._sock else []):
            try:
                s.close()
            except OSError:
                pass

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            client.settimeout(None)
            try:
                upstream = socket.create_connection((harness.LOOPBACK, self.upstream_port), timeout=30)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._socks.update((client, upstream))
            pair = {"open": 2}
            threading.Thread(target=self._pump, args=(client, upstream, self.delay, pair), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, 0.0, pair), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, delay: float, pair: dict) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if delay:
                    time.sleep(delay)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            with self._lock:
                pair["open"] -= 1
                last = pair["open"] == 0
                if last:
                    self._socks.discard(src)
                    self._socks.discard(dst)
            if last:  # both directions are done: the connection is over
                src.close()
                dst.close()


class PtyRun:
    """What a run in a pseudo-terminal wrote and how it ended."""

    def __init__(self, args, tty: bytes, pipe: bytes, status: int, seconds: float, interrupted_after: float | None,
                 exit_after_interrupt: float | None):
        self.args = args
        self.tty = tty                    # everything written to the terminal (stdout and/or stderr), raw
        self.pipe = pipe                  # stdout, when it was a pipe
        self.status = status              # os.waitpid status
        self.seconds = seconds
        self.interrupted_after = interrupted_after
        self.exit_after_interrupt = exit_after_interrupt

    @property
    def exit_code(self) -> int | None:
        return os.waitstatus_to_exitcode(self.status) if os.WIFEXITED(self.status) else None

    @property
    def term_signal(self) -> int | None:
        return os.WTERMSIG(self.status) if os.WIFSIGNALED(self.status) else None

    def draws(self) -> list[bytes]:
        return DRAW.findall(self.tty)

    def describe(self) -> str:
        how = (f"exit {self.exit_code}" if self.exit_code is not None else f"killed by signal {self.term_signal}")
        return (f"$ sitesync {' '.join(self.args)}\n{how} after {self.seconds:.2f}s\n"
                f"--- terminal (raw) ---\n{harness.tail(repr(self.tty), 6000)}\n"
                f"--- stdout pipe ---\n{harness.tail(self.pipe.decode('utf-8', 'replace'), 3000)}")


def screen(data: bytes) -> list[str]:
    """The lines a terminal shows after `data`: CR, LF, erase-line (ESC [ K) and printable text; other escape
    sequences (colours) are dropped."""
    text = data.decode("utf-8", "replace")
    lines: list[list[str]] = [[]]
    col = 0
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\x1b":
            m = re.match(r"\x1b\[([0-9;]*)([A-Za-z])", text[i:])
            if m:
                if m.group(2) == "K":
                    del lines[-1][col:]
                i += m.end()
                continue
        if c == "\r":
            col = 0
        elif c == "\n":
            lines.append([])
            col = 0
        else:
            line = lines[-1]
            while len(line) < col:
                line.append(" ")
            if col < len(line):
                line[col] = c
            else:
                line.append(c)
            col += 1
        i += 1
    return ["".join(x) for x in lines]


def run_in_pty(args, env: dict, cwd: str, *, cols: int = 80, rows: int = 24, stdout_pipe: bool = False,
               interrupt=None, timeout: float = 90.0) -> PtyRun:
    """Runs sitesync with stdin/stdout/stderr on a new pseudo-terminal (its controlling terminal, cols x rows; a
    Ctrl-C written to it reaches the child as SIGINT), or with stdout on a pipe. `interrupt(tty_so_far)` is asked
    after each read; when it returns a bytes value, that is typed into the terminal; an int is sent as a signal
    to the child (its own PID). Reads until the terminal closes; the child is killed by its PID on timeout."""
    args = [str(a) for a in args]
    binary = harness.sitesync_bin()
    pipe_r = pipe_w = None
    if stdout_pipe:
        pipe_r, pipe_w = os.pipe()
    start = time.monotonic()
    pid, master = pty.fork()
    if pid == 0:  # the child: only what exec needs
        try:
            os.chdir(cwd)
            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
            if pipe_w is not None:
                os.dup2(pipe_w, 1)
                os.close(pipe_w)
                os.close(pipe_r)
            os.execve(binary, [binary] + args, env)
        finally:
            os._exit(127)
    if pipe_w is not None:
        os.close(pipe_w)
    tty = bytearray()
    pipe = bytearray()
    open_fds = {master} | ({pipe_r} if pipe_r is not None else set())
    interrupted_at = None
    deadline = start + timeout
    try:
        while open_fds:
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)  # its own PID
                os.waitpid(pid, 0)
                raise AssertionError(f"sitesync {' '.join(args)} did not end within {timeout}s; terminal so far:\n"
                                     f"{harness.tail(repr(bytes(tty)), 4000)}")
            poller = select.poll()
            for fd in open_fds:
                poller.register(fd, select.POLLIN)
            for fd, _ in poller.poll(100):
                try:
                    chunk = os.read(fd, 65536)
                except OSError:  # EIO: the terminal's last user closed it
                    chunk = b""
                if not chunk:
                    open_fds.discard(fd)
                elif fd == master:
                    tty += chunk
                else:
                    pipe += chunk
            if interrupt is not None and interrupted_at is None:
                action = interrupt(bytes(tty))
                if action is not None:
                    interrupted_at = time.monotonic()
                    if isinstance(action, bytes):
                        os.write(master, action)
                    else:
                        os.kill(pid, action)
        _, status = os.waitpid(pid, 0)
        end = time.monotonic()
    finally:
        os.close(master)
        if pipe_r is not None:
            os.close(pipe_r)
    return PtyRun(args, bytes(tty), bytes(pipe), status, end - start,
                  None if interrupted_at is None else interrupted_at - start,
                  None if interrupted_at is None else end - interrupted_at)


def site_spec(n: int, size: int = 4000, tag: str = "p") -> dict:
    return {f"{tag}/{i:04d}/index.html": (f"<p>{tag} {i}</p>" + "x" * size) for i in range(n)}


# --------------------------------------------------------------------------------------------------------------
# tests
# --------------------------------------------------------------------------------------------------------------


@needs_sitesync
class TerminalTest(unittest.TestCase):
    server: harness.MotoServer
    relay: LatencyRelay

    @classmethod
    def setUpClass(cls):
        cls.server = harness.MotoServer()
        cls.addClassCleanup(cls.server.cleanup)
        cls.server.start()
        cls.relay = LatencyRelay(cls.server.port, delay=0.02)
        cls.addClassCleanup(cls.relay.stop)
        cls.relay.start()
        cls.s3 = cls.server.boto3_s3()
        cls.cf = cls.server.boto3_cloudfront()

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="sitesync-term-")
        self.addCleanup(self._tmp.cleanup)
        self.tmp = self._tmp.name
        self.home = os.path.join(self.tmp, "home")
        self.cwd = os.path.join(self.tmp, "cwd")
        os.makedirs(self.home)
        os.makedirs(self.cwd)
        self.bucket = harness.new_bucket_name(self._testMethodName[5:])
        self.s3.create_bucket(Bucket=self.bucket)
        self.last: PtyRun | None = None

    def tearDown(self):
        if harness.test_failed(self) and self.last is not None:
            sys.stderr.write(f"\n===== last pty run ({self.id()}) =====\n{self.last.describe()}\n")

    # -- helpers -------------------------------------------------------------------------------------------------
    def env(self, **extra) -> dict:
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "HOME": self.home,
            "XDG_STATE_HOME": os.path.join(self.home, ".local", "state"),
            "XDG_CONFIG_HOME": os.path.join(self.home, ".config"),
            "AWS_REGION": harness.REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
            "TERM": "xterm-256color",
        }
        env.update(self.server.sitesync_env())
        for k, v in extra.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        return env

    def site(self, spec: dict, name: str = "site") -> str:
        root = os.path.join(self.tmp, name)
        harness.make_site(root, spec)
        return root

    def sync_args(self, src: str, prefix: str = "", *extra) -> list:
        dest = f"s3://{self.bucket}" + (f"/{prefix}" if prefix else "")
        return ["sync", src, dest, "--endpoint", self.relay.endpoint, *extra]

    def pty(self, args, **kw) -> PtyRun:
        kw.setdefault("env", self.env())
        env = kw.pop("env")
        self.last = run_in_pty(args, env, self.cwd, **kw)
        return self.last

    def keys(self, prefix: str = "") -> set:
        return set(harness.list_bucket(self.s3, self.bucket, prefix, head=False))

    def assertExit(self, run: PtyRun, code: int):
        self.assertEqual(run.exit_code, code, f"expected exit {code}\n{run.describe()}")

    def assertProgressDrawn(self, run: PtyRun, total: int, min_draws: int = 2):
        draws = [d for d in run.draws() if re.match(rb"\d+/%d" % total, d)]
        self.assertGreaterEqual(len(draws), min_draws, f"progress redrawn in place at least {min_draws} times\n"
                                                       f"{run.describe()}")
        return draws

    def assertNoProgressLeft(self, run: PtyRun):
        left = [line for line in screen(run.tty) if PROGRESS_TEXT.search(line)]
        self.assertEqual(left, [], f"a progress line is left on the screen\n{run.describe()}")

    # -- a sync in a terminal ------------------------------------------------------------------------------------
    def test_pty_sync_redraws_progress_in_place_and_ends_with_a_clean_summary(self):
        src = self.site(site_spec(300))
        run = self.pty(self.sync_args(src, "", "--jobs", "4"))
        self.assertExit(run, 0)
        draws = self.assertProgressDrawn(run, 300)
        for d in draws:
            self.assertLessEqual(len(d), 79, f"progress wider than the 80-column terminal: {d!r}")
        self.assertNotIn(b"upload: ", run.tty, "per-file lines give way to the progress line on a terminal")
        lines = screen(run.tty)
        summary = [line for line in lines if "300 uploaded" in line]
        self.assertEqual(len(summary), 1, lines)
        self.assertTrue(summary[0].startswith("300 uploaded"), f"the summary starts on a clean line: {summary}")
        self.assertRegex(run.tty, rb"\x1b\[32m300 uploaded", "the summary of a run that went well is green")
        self.assertNoProgressLeft(run)
        # The last draw is erased before the summary: CR + erase-line comes after it.
        last_draw = run.tty.rfind(b"\r\x1b[K" + draws[-1])
        self.assertIn(ERASE, run.tty[last_draw + 3 + len(draws[-1]):])
        self.assertEqual(len(self.keys()), 300)

    def test_progress_is_cut_to_the_terminal_width_or_columns(self):
        src = self.site(site_spec(200))
        run = self.pty(self.sync_args(src, "narrow", "--jobs", "4"), cols=30)
        self.assertExit(run, 0)
        draws = self.assertProgressDrawn(run, 200)
        self.assertTrue(all(len(d) <= 29 for d in draws), draws)
        self.assertIn(29, {len(d) for d in draws}, f"the full line is longer than 29 columns and is cut: {draws}")
        # A terminal that reports no size (0 columns): $COLUMNS decides.
        run = self.pty(self.sync_args(src, "columns", "--jobs", "4"), cols=0, env=self.env(COLUMNS="24"))
        self.assertExit(run, 0)
        draws = self.assertProgressDrawn(run, 200)
        self.assertTrue(all(len(d) <= 23 for d in draws), draws)
        self.assertIn(23, {len(d) for d in draws}, draws)
        self.assertEqual(len(self.keys("narrow/")), 200)
        self.assertEqual(len(self.keys("columns/")), 200)

    def test_pipes_show_neither_progress_nor_colour(self):
        spec = site_spec(150)
        spec_link = {"broken-link.html": harness.Symlink("does-not-exist.html")}
        src = self.site(spec)
        harness.make_site(src, spec_link)
        res = harness.run_sitesync(self.sync_args(src, "piped", "--jobs", "4"), server=self.server,
                                   home=self.home, env_extra={"TERM": "xterm-256color"})
        self.assertEqual(res.returncode, 0, res.describe())
        for name, text in (("stdout", res.stdout), ("stderr", res.stderr)):
            self.assertNotIn("\x1b", text, f"no escape codes on a {name} pipe\n{res.describe()}")
            self.assertNotIn("\r", text, f"no redraws on a {name} pipe")
        self.assertIn("150 uploaded", res.stdout)
        self.assertEqual(res.stdout.count("upload: "), 150, "on a pipe every upload gets its line")
        self.assertIn("warning: skipped symlink 'broken-link.html'", res.stderr)

        # Each stream for itself: stderr on the terminal (progress, a yellow warning), stdout on a pipe (plain).
        run = self.pty(self.sync_args(src, "mixed", "--jobs", "4"), stdout_pipe=True)
        self.assertExit(run, 0)
        self.assertProgressDrawn(run, 150)
        self.assertIn(b"\x1b[33mwarning:\x1b[0m skipped symlink 'broken-link.html'", run.tty)
        self.assertNotIn(ESC, run.pipe, run.describe())
        self.assertIn(b"150 uploaded", run.pipe)
        self.assertNotIn(b"uploaded", run.tty)
        self.assertEqual(len(self.keys("mixed/")), 150)

    def test_no_color_keeps_progress_and_drops_colours(self):
        spec = site_spec(150)
        spec["broken-link.html"] = harness.Symlink("nowhere.html")
        src = self.site(spec)
        run = self.pty(self.sync_args(src, "nocolor", "--jobs", "4"), env=self.env(NO_COLOR="1"))
        self.assertExit(run, 0)
        self.assertProgressDrawn(run, 150)
        self.assertIsNone(SGR.search(run.tty), f"NO_COLOR=1: no colour codes\n{run.describe()}")
        self.assertIn(b"warning: skipped symlink", run.tty)
        self.assertIn(b"150 uploaded", run.tty)
        # no-color.org: an empty NO_COLOR does not count.
        run = self.pty(self.sync_args(src, "emptynocolor", "--jobs", "4"), env=self.env(NO_COLOR=""))
        self.assertExit(run, 0)
        self.assertIsNotNone(SGR.search(run.tty), f"NO_COLOR='' still colours\n{run.describe()}")

    def test_term_dumb_gets_plain_lines(self):
        src = self.site(site_spec(40))
        run = self.pty(self.sync_args(src, "dumb", "--jobs", "4"), env=self.env(TERM="dumb"))
        self.assertExit(run, 0)
        self.assertNotIn(ESC, run.tty, f"TERM=dumb: no escape codes at all\n{run.describe()}")
        self.assertEqual(run.tty.count(b"upload: "), 40, "TERM=dumb: a line per file instead of the progress line")
        self.assertNotIn(b"\r\r", run.tty)
        self.assertEqual(run.tty.replace(b"\r\n", b"\n").count(b"\r"), 0, "no carriage-return redraws")
        self.assertIn(b"40 uploaded", run.tty)

    def test_json_in_a_terminal_is_plain_json(self):
        src = self.site(site_spec(60))
        run = self.pty(self.sync_args(src, "json", "--jobs", "4", "--json"))
        self.assertExit(run, 0)
        self.assertNotIn(ESC, run.tty, f"--json: no colours and no progress line\n{run.describe()}")
        events = harness.parse_json_lines(run.tty.decode("utf-8").replace("\r\n", "\n"))
        self.assertEqual(harness.summary_of(events)["uploaded"], 60)

    def test_dry_run_lines_are_dim(self):
        src = self.site(site_spec(5))
        run = self.pty(["plan", src, f"s3://{self.bucket}/dry", "--endpoint", self.relay.endpoint])
        self.assertExit(run, 0)
        self.assertIn(b"\x1b[2m(dry run) upload: p/0000/index.html", run.tty, run.describe())
        self.assertIn(b"\x1b[2mdry run, nothing changed:\x1b[0m", run.tty)
        self.assertEqual(self.keys("dry/"), set())

    # -- -q ------------------------------------------------------------------------------------------------------
    def test_quiet_prints_nothing_when_all_goes_well(self):
        dist = harness.create_distribution(self.cf, f"{self.bucket}.s3.amazonaws.com", comment=self.id())
        spec = site_spec(120)
        spec["broken-link.html"] = harness.Symlink("nowhere.html")  # a warning: -q drops it too
        src = self.site(spec)
        cdn = ["--distribution", dist, "--cloudfront-endpoint", self.relay.endpoint]
        run = self.pty(self.sync_args(src, "", "--jobs", "4", "--delete", "-q", *cdn))
        self.assertExit(run, 0)
        self.assertEqual(run.tty, b"", f"-q on success: not a byte\n{run.describe()}")
        self.assertEqual(len(self.keys()), 120)
        self.assertEqual(len(harness.invalidations(self.cf, dist)), 1)

        run = self.pty(["plan", src, f"s3://{self.bucket}/other", "--endpoint", self.relay.endpoint, "-q"])
        self.assertExit(run, 0)
        self.assertEqual(run.tty, b"", run.describe())

        run = self.pty(["invalidate", "/a/b/", "-q", *cdn, "--wait"])
        self.assertExit(run, 0)
        self.assertEqual(run.tty, b"", run.describe())
        self.assertEqual(len(harness.invalidations(self.cf, dist)), 2)

        # watch -q: the initial sync, then Ctrl-C; nothing printed and still a clean stop (exit 0).
        wsrc = self.site(site_spec(10, tag="w"), name="wsite")
        dest = f"s3://{self.bucket}/watched"

        def when_synced(_tty):
            return b"\x03" if len(self.keys("watched/")) == 10 else None

        run = self.pty(["watch", wsrc, dest, "--endpoint", self.relay.endpoint, "-q"], interrupt=when_synced,
                       timeout=60)
        self.assertExit(run, 0)
        self.assertEqual(run.tty.replace(b"^C", b""), b"", f"watch -q: nothing but the terminal's ^C echo\n"
                                                           f"{run.describe()}")

    def test_quiet_still_prints_errors(self):
        src = self.site(site_spec(3))
        run = self.pty(["sync", src, "s3://no-such-bucket-for-sitesync", "--endpoint", self.relay.endpoint, "-q"])
        self.assertExit(run, 1)
        self.assertRegex(run.tty, rb"\x1b\[31msitesync:\x1b\[0m .*NoSuchBucket", run.describe())
        run = self.pty(["sync", src, "-q"])  # no DEST: a usage error
        self.assertExit(run, 2)
        self.assertIn(b"no DEST given", run.tty)
        run = self.pty(["sync", src, "s3://no-such-bucket-for-sitesync", "--endpoint", self.relay.endpoint, "-q"],
                       env=self.env(NO_COLOR="yes"))
        self.assertExit(run, 1)
        self.assertIsNone(SGR.search(run.tty), run.describe())
        self.assertIn(b"sitesync: ", run.tty)

    # -- interrupted -------------------------------------------------------------------------------------------
    def interrupt_mid_sync(self, how, expected_signal: int):
        src = self.site(site_spec(300))

        def after_two_draws(tty):
            return how if len(DRAW.findall(tty)) >= 2 else None

        run = self.pty(self.sync_args(src, "", "--jobs", "1"), interrupt=after_two_draws, timeout=120)
        self.assertIsNotNone(run.interrupted_after, run.describe())
        self.assertEqual(run.term_signal, expected_signal,
                         f"killed by the signal (the shell sees 128+{expected_signal})\n{run.describe()}")
        self.assertLess(run.exit_after_interrupt, 5.0, "ended promptly")
        draws = run.draws()
        last_draw = run.tty.rfind(b"\r\x1b[K" + draws[-1])
        after = run.tty[last_draw + 3 + len(draws[-1]):]
        self.assertTrue(ERASE in after or b"\n" in after, f"after the last draw: {after!r}\n{run.describe()}")
        self.assertNoProgressLeft(run)
        uploaded = len(self.keys())
        self.assertLess(uploaded, 300, "the signal came mid-sync")
        # The next run finishes the job.
        res = harness.run_sitesync(self.sync_args(src, "", "--jobs", "8"), server=self.server, home=self.home)
        self.assertEqual(res.returncode, 0, res.describe())
        self.assertEqual(len(self.keys()), 300)
        return run

    def test_ctrl_c_mid_sync_erases_the_line_and_dies_by_sigint(self):
        self.interrupt_mid_sync(b"\x03", signal.SIGINT)

    def test_sigterm_mid_sync_erases_the_line_and_dies_by_sigterm(self):
        self.interrupt_mid_sync(signal.SIGTERM, signal.SIGTERM)

    def test_ctrl_c_in_watch_still_finishes_gracefully(self):
        src = self.site(site_spec(20))

        def when_watching(tty):
            return b"\x03" if b"(Ctrl-C to stop)" in tty else None

        run = self.pty(["watch", src, f"s3://{self.bucket}", "--endpoint", self.relay.endpoint],
                       interrupt=when_watching, timeout=60)
        self.assertExit(run, 0)
        self.assertIn(b"stopped", run.tty)
        self.assertNoProgressLeft(run)
        self.assertEqual(len(self.keys()), 20)


if __name__ == "__main__":
    unittest.main()
