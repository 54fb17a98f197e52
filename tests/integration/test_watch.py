"""Integration tests of `sitesync watch` against moto_server with SigV4 checking on (S3 and CloudFront on one port).

The watcher runs as a child process (subprocess.Popen, clean environment as in harness.run_sitesync); a reader
thread parses its stdout (one JSON object a line, flushed per line) into a list of (arrival time, event). Every
test waits for the batch-0 summary (the initial sync) before it changes files, and always stops the watcher by
its own PID in tearDown (SIGINT, 10 s, then kill). Outcomes are checked independently: objects and bytes with
boto3 straight on moto, invalidations with list_invalidations / get_invalidation on moto, request counts at the
FaultProxy that sits between sitesync and moto (S3 and CloudFront). Expected invalidation paths are computed
here from CLI.md ("Invalidation paths"), never by sitesync.

Skips cleanly when the binary ($SITESYNC_BIN, default build/cli/sitesync) does not exist or has no `watch`
subcommand (`sitesync watch --help` fails or prints the top-level help).

    SITESYNC_BIN=$PWD/build/cli/sitesync python3 -m unittest -v tests/integration/test_watch.py

Timings measured by the tests (latencies, initial sync of the big site, idle CPU) are printed to stderr at the
end of the module ("watch timings").
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402

BIN_OK, BIN_WHY = harness.sitesync_available()


def _watch_available() -> tuple[bool, str]:
    if not BIN_OK:
        return False, BIN_WHY
    try:
        res = subprocess.run([harness.sitesync_bin(), "watch", "--help"], stdin=subprocess.DEVNULL,
                             capture_output=True, timeout=30, env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, f"`sitesync watch --help` could not run: {e}"
    text = (res.stdout + res.stderr).decode("utf-8", "replace")
    if res.returncode != 0:
        return False, f"`sitesync watch --help` exits {res.returncode}: the binary has no watch command yet"
    # CLI11 prints the top-level help (exit 0) for `watch --help` when there is no such subcommand.
    if not re.search(r"(?m)^Usage:.*\bwatch\b", text):
        return False, "`sitesync watch --help` prints the top-level help: the binary has no watch command yet"
    return True, ""


WATCH_OK, WATCH_WHY = _watch_available()
needs_watch = unittest.skipUnless(WATCH_OK, WATCH_WHY)

# Measured once on the development machine (2 CPUs, moto 5.2.1 behind the FaultProxy): `sitesync sync` of 5,000
# tiny files takes ~28 s (a re-sync with nothing to do ~1.5 s), well under the 90 s budget, so the request-count
# test uses 5,000 files.
BIG_SITE_FILES = 5000

TIMINGS: dict[str, str] = {}


def note(name: str, value: str) -> None:
    TIMINGS[name] = value
    sys.stderr.write(f"  [timing] {name}: {value}\n")


def tearDownModule():  # noqa: N802
    if TIMINGS:
        sys.stderr.write("\n===== watch timings =====\n" + "".join(f"{k}: {v}\n" for k, v in TIMINGS.items()))


# --------------------------------------------------------------------------------------------------------------
# The path rules, written independently of sitesync (CLI.md "Invalidation paths"; as in test_cdn.py)
# --------------------------------------------------------------------------------------------------------------

CF_ENCODED_ASCII = frozenset(b' "#%<>[\\]^`{|}~*?')


def cf_encode(text: str) -> str:
    out = []
    for b in text.encode("utf-8"):
        if b < 0x20 or b == 0x7F or b >= 0x80 or b in CF_ENCODED_ASCII:
            out.append(f"%{b:02X}")
        else:
            out.append(chr(b))
    return "".join(out)


def expected_paths(keys, index_document: str = "index.html") -> set[str]:
    out = set()
    for key in keys:
        out.add("/" + cf_encode(key))
        if key.rsplit("/", 1)[-1] == index_document:
            directory = key[: len(key) - len(index_document)]
            if not directory:
                out.add("/")
            else:
                out.add("/" + cf_encode(directory))
                out.add("/" + cf_encode(directory[:-1]))
    return out


def covers(pattern: str, path: str) -> bool:
    if pattern.endswith("*"):
        return path.startswith(pattern[:-1])
    return pattern == path


def of_kind(events, kind):
    return [e for e in events if e.get("event") == kind]


def keys_of(events, kind):
    return [e.get("key") for e in events if e.get("event") == kind]


def write(path, data) -> float:
    """Write (create or truncate) a file, close it; returns time.monotonic() right after the close."""
    data = data.encode("utf-8") if isinstance(data, str) else data
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return time.monotonic()


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads) from /proc/PID/stat, in seconds."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        text = f.read().decode("ascii", "replace")
    fields = text[text.rindex(")") + 2:].split()  # after "pid (comm) ": field 3 (state) is fields[0]
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------------------------------------------
# the watcher process
# --------------------------------------------------------------------------------------------------------------


class Watcher:
    """`sitesync watch ...` as a child process; stdout parsed by a reader thread into self.events, a list of
    (time.monotonic() at arrival, event dict); stderr to a file. Non-JSON stdout lines land in self.bad_lines."""

    def __init__(self, args, env: dict, cwd: str, stderr_path: str):
        self.args = [str(a) for a in args]
        self.stderr_path = stderr_path
        self.events: list[tuple[float, dict]] = []
        self.bad_lines: list[str] = []
        self.eof = False
        self._cond = threading.Condition()
        self._stderr = open(stderr_path, "wb")
        self.started = time.monotonic()
        self.proc = subprocess.Popen([harness.sitesync_bin()] + self.args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=self._stderr, env=env, cwd=cwd)
        with harness._live_lock:  # the harness's atexit hook stops it if the test run is cut short
            harness._live_processes.add(self.proc)
        self._reader = threading.Thread(target=self._read, name=f"watch-stdout-{self.proc.pid}", daemon=True)
        self._reader.start()

    def _read(self):
        for raw in iter(self.proc.stdout.readline, b""):
            t = time.monotonic()
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                obj = None
            with self._cond:
                if isinstance(obj, dict):
                    self.events.append((t, obj))
                else:
                    self.bad_lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self.eof = True
            self._cond.notify_all()

    # -- state -------------------------------------------------------------------------------------------------
    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def mark(self) -> int:
        with self._cond:
            return len(self.events)

    def since(self, start: int, end: int | None = None) -> list[dict]:
        with self._cond:
            return [e for _t, e in self.events[start:end]]

    def stderr_text(self) -> str:
        self._stderr.flush()
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def batches(self) -> dict[int, list[dict]]:
        """{batch number: its events, the summary last} for every batch whose summary has arrived."""
        out, cur = {}, []
        for _t, e in list(self.events):
            cur.append(e)
            if e.get("event") == "summary":
                out[e.get("batch")] = cur
                cur = []
        return out

    def batch_of(self, index: int) -> tuple[int, list[dict]]:
        """The batch (number, events) that holds event number `index` (its summary must have arrived)."""
        with self._cond:
            evs = list(self.events)
        start = index
        while start > 0 and evs[start - 1][1].get("event") != "summary":
            start -= 1
        end = index
        while evs[end][1].get("event") != "summary":
            end += 1
        return evs[end][1].get("batch"), [e for _t, e in evs[start:end + 1]]

    # -- waiting -----------------------------------------------------------------------------------------------
    def describe(self, n_events: int = 60) -> str:
        with self._cond:
            evs = list(self.events)
            bad = list(self.bad_lines)
        lines = [json.dumps(e, sort_keys=True)[:300] for _t, e in evs[-n_events:]]
        rc = self.proc.poll()
        return (f"$ sitesync {' '.join(self.args)}\npid {self.pid}, "
                f"{'running' if rc is None else f'exited {rc}'}, {len(evs)} events\n"
                f"--- last events ---\n" + "\n".join(lines) +
                (f"\n--- non-JSON stdout lines ---\n" + "\n".join(bad[:20]) if bad else "") +
                f"\n--- stderr ---\n{harness.tail(self.stderr_text(), 6000)}")

    def wait_for(self, pred, start: int = 0, timeout: float = 15.0, what: str = "an event"):
        """The first event at index >= start with pred(event) true: (index, arrival time, event)."""
        deadline = time.monotonic() + timeout
        i = start
        with self._cond:
            while True:
                while i < len(self.events):
                    t, e = self.events[i]
                    if pred(e):
                        return i, t, e
                    i += 1
                if self.eof:
                    self.proc.poll()
                    raise AssertionError(f"watcher ended (exit {self.proc.returncode}) before {what}\n"
                                         f"{self.describe()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{self.describe()}")
                self._cond.wait(min(left, 0.25))

    def wait_summary(self, start: int = 0, timeout: float = 15.0, batch: int | None = None):
        def pred(e):
            return e.get("event") == "summary" and (batch is None or e.get("batch") == batch)
        return self.wait_for(pred, start, timeout, f"a summary (batch {batch if batch is not None else 'any'})")

    def wait_keys(self, kind: str, keys, start: int, timeout: float = 30.0):
        """Waits until every key in `keys` has had a `kind` event at index >= start, then for the summary that
        closes the batch of the last one; returns (index of that summary, its arrival time)."""
        want = set(keys)
        seen: set = set()
        deadline = time.monotonic() + timeout
        i = start
        last = None
        while seen != want:
            left = deadline - time.monotonic()
            if left <= 0:
                missing = sorted(want - seen)
                raise AssertionError(f"timed out after {timeout}s: no {kind} event for {len(missing)} keys, e.g. "
                                     f"{missing[:5]}\n{self.describe()}")
            idx, _t, e = self.wait_for(lambda e: e.get("event") == kind and e.get("key") in want, i, left,
                                       f"{kind} events for {len(want - seen)} more keys")
            seen.add(e.get("key"))
            i = idx + 1
            last = idx
        s_idx, s_t, _s = self.wait_summary(last, timeout=max(deadline - time.monotonic(), 10.0))
        return s_idx, s_t

    def settle(self, quiet: float = 1.0, min_wait: float = 0.0, timeout: float = 30.0) -> None:
        """Waits at least min_wait seconds, then until no new event has arrived for `quiet` seconds."""
        begin = time.monotonic()
        deadline = begin + timeout
        if min_wait:
            time.sleep(min_wait)
        with self._cond:
            while True:
                last = self.events[-1][0] if self.events else begin
                now = time.monotonic()
                if now - max(last, begin) >= quiet:
                    return
                if now > deadline:
                    raise AssertionError(f"the watcher did not go quiet within {timeout}s\n{self.describe()}")
                self._cond.wait(max(0.05, quiet - (now - max(last, begin))))

    # -- stopping ------------------------------------------------------------------------------------------------
    def signal(self, sig) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)  # this process's own PID only

    def stop(self, grace: float = 10.0) -> int | None:
        """SIGINT, wait `grace`, then kill (by its own PID). Returns the exit code."""
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGINT)
                try:
                    self.proc.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=grace)
            self._reader.join(timeout=5)
        finally:
            if not self._reader.is_alive() and self.proc.stdout is not None:
                self.proc.stdout.close()
            with harness._live_lock:
                harness._live_processes.discard(self.proc)
            try:
                self._stderr.close()
            except OSError:
                pass
        return self.proc.returncode


# --------------------------------------------------------------------------------------------------------------
# fixture
# --------------------------------------------------------------------------------------------------------------

SMALL_SITE = {
    "index.html": "<p>home</p>",
    "a/b/index.html": "<p>a b</p>",
    "a/b/photo.png": b"\x89PNG small",
    "c/index.html": "<p>c</p>",
    "css/site.css": "body{}",
    "js/app.js": "x()",
    "docs/guide.html": "<p>guide</p>",
    "robots.txt": "User-agent: *\n",
}


class WatchCase(unittest.TestCase):
    """One moto server + FaultProxy per class; per test: a bucket, a distribution whose S3 origin is that bucket,
    a temp dir with the site, and one HOME (so one $XDG_STATE_HOME: the journal's home)."""

    server: harness.MotoServer
    proxy: harness.FaultProxy

    @classmethod
    def setUpClass(cls):
        harness.start_moto_and_proxy(cls)
        cls.s3 = cls.server.boto3_s3()
        cls.cf = cls.server.boto3_cloudfront()

    def setUp(self):
        self.proxy.clear_faults()
        self.proxy.skew_seconds = 0
        self.proxy.record_bodies = False
        self.proxy.reset_counts()
        self._tmp = tempfile.TemporaryDirectory(prefix="sitesync-watch-")
        self.addCleanup(self._tmp.cleanup)
        self.tmp = self._tmp.name
        self.home = os.path.join(self.tmp, "home")
        os.makedirs(self.home)
        self.cwd = os.path.join(self.tmp, "cwd")
        os.makedirs(self.cwd)
        self.bucket = harness.new_bucket_name(self._testMethodName[5:])
        self.s3.create_bucket(Bucket=self.bucket)
        self.dist = harness.create_distribution(self.cf, f"{self.bucket}.s3.amazonaws.com", comment=self.id())
        self.watcher: Watcher | None = None
        self.src: str | None = None

    def tearDown(self):
        self.proxy.clear_faults()
        w = self.watcher
        if w is not None:
            rc = w.stop()
            if harness.test_failed(self):
                sys.stderr.write(f"\n===== watcher ({self.id()}), stopped with exit {rc} =====\n{w.describe()}\n")
        if harness.test_failed(self):
            sys.stderr.write(f"===== proxy log =====\n{harness.tail(self.proxy.log_text(), 4000)}\n")
            self.server.dump_log(f"moto server log for {self.id()}", limit=4000)
        elif w is not None:
            # the protocol holds in every test: JSON only on stdout, batches numbered 0, 1, 2, ... in order
            self.assertEqual(w.bad_lines, [], "stdout carries one JSON object a line and nothing else")
            numbers = [e.get("batch") for _t, e in w.events if e.get("event") == "summary"]
            self.assertEqual(numbers, list(range(len(numbers))), "summaries carry batch 0, 1, 2, ... in order")

    # -- helpers -------------------------------------------------------------------------------------------------
    def site(self, spec, name="site"):
        root = os.path.join(self.tmp, name)
        harness.make_site(root, spec)
        return root

    def dest(self, prefix=""):
        return f"s3://{self.bucket}" + (f"/{prefix}" if prefix else "")

    def env(self) -> dict:
        """The environment of harness.run_sitesync: clean, HOME / XDG_* under this test's temp dir."""
        scratch = os.path.join(self.tmp, "scratch")
        os.makedirs(scratch, exist_ok=True)
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "HOME": self.home,
            "XDG_STATE_HOME": os.path.join(self.home, ".local", "state"),
            "XDG_CONFIG_HOME": os.path.join(self.home, ".config"),
            "XDG_CACHE_HOME": os.path.join(self.home, ".cache"),
            "TMPDIR": scratch,
            "AWS_REGION": harness.REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        for k in harness._PASSTHROUGH_ENV:
            if k in os.environ:
                env[k] = os.environ[k]
        env.update(self.server.sitesync_env())
        return env

    def start_watch(self, src, *extra, distribution=True, initial_timeout=60.0, wait_initial=True) -> Watcher:
        """Starts `sitesync watch SRC s3://BUCKET --endpoint PROXY --json [--distribution ...] EXTRA`, waits for the
        batch-0 summary, then resets the proxy counts and notes the invalidations made so far (self.invs0)."""
        args = ["watch", src, self.dest(), "--endpoint", self.proxy.endpoint, "--json"]
        if distribution:
            args += ["--distribution", self.dist, "--cloudfront-endpoint", self.proxy.endpoint]
        args += [str(a) for a in extra]
        self.src = src
        self.watcher = Watcher(args, self.env(), self.cwd, os.path.join(self.tmp, "watch.stderr"))
        if wait_initial:
            self.wait_initial(initial_timeout)
        return self.watcher

    def wait_initial(self, timeout=60.0):
        w = self.watcher
        _i, t, s = w.wait_summary(0, timeout=timeout, batch=0)
        self.initial_summary = s
        self.initial_wall = t - w.started
        self.assertEqual(s.get("failed"), 0, w.describe())
        self.invs0 = len(self.invs())
        self.proxy.reset_counts()
        return s

    def invs(self):
        return harness.invalidations(self.cf, self.dist)

    def new_invs(self):
        return self.invs()[self.invs0:]

    def remote(self):
        return harness.list_bucket(self.s3, self.bucket, head=False)

    def get(self, key):
        return harness.get_bytes(self.s3, self.bucket, key)

    def journal_paths(self) -> tuple[list[str], str]:
        """The paths owed in the journal files under $XDG_STATE_HOME/sitesync/ (and their raw text)."""
        d = os.path.join(self.home, ".local", "state", "sitesync")
        paths, texts = [], []
        for dirpath, _dirs, names in os.walk(d):
            for n in names:
                p = os.path.join(dirpath, n)
                try:
                    with open(p, encoding="utf-8", errors="replace") as f:
                        text = f.read()
                except OSError:
                    continue
                texts.append(f"{p}: {text[:2000]}")
                try:
                    doc = json.loads(text)
                    if isinstance(doc, dict) and isinstance(doc.get("paths"), list):
                        paths += [x for x in doc["paths"] if isinstance(x, str)]
                except json.JSONDecodeError:
                    pass
        return paths, "\n".join(texts)

    def assertAlive(self):
        self.assertTrue(self.watcher.alive(), f"the watcher must keep running\n{self.watcher.describe()}")

    def assertCovered(self, invs, expected: set, msg=""):
        paths = [p for inv in invs for p in inv["Paths"]]
        uncovered = sorted(x for x in expected if not any(covers(p, x) for p in paths))
        self.assertEqual(uncovered[:20], [], f"{len(uncovered)} paths not invalidated by {paths[:40]} {msg}")


# --------------------------------------------------------------------------------------------------------------
# 1. one edit: latency, exactly that file, one invalidation
# --------------------------------------------------------------------------------------------------------------


@needs_watch
class EditTest(WatchCase):
    def test_initial_sync_is_batch_0(self):
        src = self.site(SMALL_SITE)
        w = self.start_watch(src)
        events = w.batches()[0]
        want = harness.expected_uploads(SMALL_SITE)
        self.assertEqual(sorted(keys_of(events, "upload")), sorted(want))
        s = self.initial_summary
        self.assertEqual((s["uploaded"], s["deleted"], s["failed"]), (len(want), 0, 0))
        invs = self.invs()
        self.assertEqual(len(invs), 1, invs)
        self.assertEqual(set(invs[0]["Paths"]), expected_paths(want))
        self.assertEqual(of_kind(events, "invalidate")[0].get("id"), invs[0]["Id"])
        self.assertEqual(s["invalidation_paths"], len(invs[0]["Paths"]))
        self.assertEqual(set(self.remote()), set(want))
        self.assertAlive()

    def test_edit_is_published_within_2s_with_one_invalidation(self):
        src = self.site(SMALL_SITE)
        w = self.start_watch(src, "--debounce", "200")
        key = "a/b/index.html"
        new = b"<p>a b, edited: and now a little longer</p>"
        mark = w.mark()
        t0 = write(os.path.join(src, key), new)
        i_up, t_up, up = w.wait_for(lambda e: e.get("event") == "upload" and e.get("key") == key, mark, 10,
                                    f"the upload of {key}")
        i_sum, t_sum, summary = w.wait_summary(i_up, timeout=10)
        inv_ev = [(t, e) for t, e in w.events[mark:i_sum] if e.get("event") == "invalidate"]
        note("edit -> upload event", f"{t_up - t0:.3f}s")
        note("edit -> batch summary", f"{t_sum - t0:.3f}s")
        if inv_ev:
            note("edit -> invalidate event", f"{inv_ev[-1][0] - t0:.3f}s")
        self.assertLess(t_sum - t0, 2.0, "the batch is done within 2 s of the write (debounce 200 ms)")
        self.assertEqual(up.get("bytes"), len(new))
        self.assertEqual(self.get(key), new)
        batch_no, events = w.batch_of(i_up)
        self.assertGreaterEqual(batch_no, 1)
        self.assertEqual(keys_of(events, "upload"), [key], "the batch uploads only the edited file")
        self.assertEqual((summary["uploaded"], summary["deleted"], summary["failed"]), (1, 0, 0))
        self.assertEqual(summary["bytes_uploaded"], len(new))
        # one invalidation, with exactly that file's paths, reported by the batch's invalidate event
        self.assertEqual(len(inv_ev), 1, events)
        inv_event = inv_ev[0][1]
        w.settle(1.0)
        self.assertEqual(keys_of(w.since(mark), "upload"), [key], "nothing else is uploaded afterwards")
        new_invs = self.new_invs()
        self.assertEqual(len(new_invs), 1, new_invs)
        self.assertEqual(set(new_invs[0]["Paths"]), {"/a/b/index.html", "/a/b/", "/a/b"})
        self.assertEqual(len(new_invs[0]["Paths"]), 3, "no duplicates")
        self.assertEqual(inv_event.get("id"), new_invs[0]["Id"])
        self.assertEqual(set(inv_event.get("paths", [])), {"/a/b/index.html", "/a/b/", "/a/b"})
        self.assertEqual(summary["invalidation_paths"], 3)
        c = self.proxy.counts()
        self.assertEqual(self.proxy.count("CreateInvalidation", "POST"), 1, c)
        self.assertEqual(self.proxy.count("PutObject"), 1, c)
        self.assertEqual(self.proxy.count("ListObjectsV2"), 0, c)
        self.assertTrue(w.stderr_text().strip(), "a human line per batch goes to stderr")
        self.assertAlive()

    def test_same_size_edit_is_uploaded(self):
        src = self.site(SMALL_SITE)
        w = self.start_watch(src)
        key = "css/site.css"
        old = SMALL_SITE[key].encode()
        new = b"main{}"
        self.assertEqual(len(new), len(old))
        mark = w.mark()
        t0 = write(os.path.join(src, key), new)
        _i, t_sum = w.wait_keys("upload", [key], mark, timeout=10)
        note("same-size edit -> batch summary", f"{t_sum - t0:.3f}s")
        self.assertEqual(self.get(key), new, "a same-size edit is published (content changed, size equal)")
        w.settle(1.0)
        self.assertEqual(keys_of(w.since(mark), "upload"), [key])
        new_invs = self.new_invs()
        self.assertEqual([set(i["Paths"]) for i in new_invs], [{"/css/site.css"}])
        self.assertAlive()

    def test_delete_only_with_delete_flag(self):
        src = self.site(SMALL_SITE)
        w = self.start_watch(src)  # no --delete
        mark = w.mark()
        os.remove(os.path.join(src, "js/app.js"))
        write(os.path.join(src, "robots.txt"), "User-agent: *\nDisallow: /x\n")
        w.wait_keys("upload", ["robots.txt"], mark, timeout=10)
        w.settle(1.0)
        self.assertEqual(keys_of(w.since(mark), "delete"), [])
        self.assertIn("js/app.js", self.remote(), "without --delete a removed file stays in the bucket")
        self.assertEqual(self.proxy.count("DeleteObjects") + self.proxy.count("DeleteObject"), 0)
        self.assertEqual([set(i["Paths"]) for i in self.new_invs()], [{"/robots.txt"}])
        self.assertAlive()


    def test_removed_file_is_deleted_with_delete_flag(self):
        src = self.site(SMALL_SITE)
        w = self.start_watch(src, "--delete")
        mark = w.mark()
        os.remove(os.path.join(src, "c/index.html"))
        i_del, _t, _e = w.wait_for(lambda e: e.get("event") == "delete" and e.get("key") == "c/index.html", mark,
                                   10, "the delete of c/index.html")
        _i, _t, summary = w.wait_summary(i_del, timeout=10)
        w.settle(1.0)
        self.assertNotIn("c/index.html", self.remote())
        self.assertEqual(len(self.remote()), len(SMALL_SITE) - 1)
        self.assertEqual(keys_of(w.since(mark), "delete"), ["c/index.html"])
        self.assertEqual(keys_of(w.since(mark), "upload"), [])
        self.assertEqual(summary["deleted"], 1)
        self.assertEqual([set(i["Paths"]) for i in self.new_invs()], [{"/c/index.html", "/c/", "/c"}])
        self.assertEqual(self.proxy.count("ListObjectsV2"), 0, self.proxy.counts())
        self.assertAlive()

    def test_atomic_save_and_vim_save_are_published(self):
        src = self.site(SMALL_SITE)
        w = self.start_watch(src)
        # a generator's atomic write: a temp file renamed over the target
        mark = w.mark()
        write(os.path.join(src, "docs/guide.html.tmp"), b"<p>guide, atomically replaced</p>")
        os.replace(os.path.join(src, "docs/guide.html.tmp"), os.path.join(src, "docs/guide.html"))
        w.wait_keys("upload", ["docs/guide.html"], mark, timeout=10)
        self.assertEqual(self.get("docs/guide.html"), b"<p>guide, atomically replaced</p>")
        # vim's save (backupcopy=no): probe file 4913, target renamed to a backup~, new file written, backup removed
        mark = w.mark()
        target = os.path.join(src, "js/app.js")
        write(os.path.join(src, "js/4913"), b"")
        os.remove(os.path.join(src, "js/4913"))
        os.rename(target, target + "~")
        write(target, b"x(); // saved by vim")
        os.remove(target + "~")
        w.wait_keys("upload", ["js/app.js"], mark, timeout=10)
        w.settle(1.0)
        self.assertEqual(self.get("js/app.js"), b"x(); // saved by vim")
        remote = self.remote()
        for junk in ("docs/guide.html.tmp", "js/4913", "js/app.js~"):
            self.assertNotIn(junk, remote)
        uploads = keys_of(w.since(0), "upload")
        self.assertEqual([k for k in uploads if k.endswith(("~", ".tmp", "4913"))], [])
        self.assertAlive()

    def test_file_written_slowly_is_published_complete(self):
        """A file still open for writing, quiet for longer than the debounce: IN_MODIFY only restarts the quiet
        period, IN_CLOSE_WRITE means the content is ready (watcher.h), so no half-written file is published."""
        src = self.site(SMALL_SITE)
        w = self.start_watch(src)
        key = "docs/slow.html"
        first, rest = b"<p>first half " + b"x" * 5000, b" second half</p>"
        mark = w.mark()
        with open(os.path.join(src, key), "wb") as f:
            f.write(first)
            f.flush()
            time.sleep(0.8)  # > debounce (200 ms), < max delay (2 s)
            f.write(rest)
        w.wait_for(lambda e: e.get("event") == "upload" and e.get("key") == key and
                   e.get("bytes") == len(first) + len(rest), mark, 10, "the upload of the complete file")
        w.settle(1.0)
        self.assertEqual(self.get(key), first + rest)
        sizes = [e.get("bytes") for e in w.since(mark) if e.get("event") == "upload" and e.get("key") == key]
        self.assertEqual(sizes, [len(first) + len(rest)], "the half-written file is not published")
        self.assertAlive()

    def test_prefix_destination(self):
        src = self.site(SMALL_SITE)
        dist = harness.create_distribution(self.cf, f"{self.bucket}.s3.amazonaws.com", origin_path="/site")
        self.dist = dist
        args = ["watch", src, self.dest("site/"), "--endpoint", self.proxy.endpoint, "--json", "--distribution",
                dist, "--cloudfront-endpoint", self.proxy.endpoint]
        self.watcher = w = Watcher(args, self.env(), self.cwd, os.path.join(self.tmp, "watch.stderr"))
        self.wait_initial()
        self.assertEqual(set(self.remote()), {"site/" + k for k in SMALL_SITE})
        mark = w.mark()
        write(os.path.join(src, "a/b/index.html"), b"<p>a b under a prefix</p>")
        w.wait_keys("upload", ["a/b/index.html"], mark, timeout=10)
        self.assertEqual(self.get("site/a/b/index.html"), b"<p>a b under a prefix</p>")
        self.assertEqual([set(i["Paths"]) for i in self.new_invs()], [{"/a/b/index.html", "/a/b/", "/a/b"}])
        self.assertAlive()

    def test_config_debounce_and_max_delay(self):
        cfg = os.path.join(self.tmp, "sitesync.yaml")
        with open(cfg, "w", encoding="utf-8") as f:
            f.write("watch:\n  debounce_ms: 1000\n  max_delay_ms: 1500\n")
        src = self.site(SMALL_SITE)
        w = self.start_watch(src, "--config", cfg)
        # watch.debounce_ms: one write is published after about a second of quiet, not after 200 ms
        mark = w.mark()
        t0 = write(os.path.join(src, "robots.txt"), "User-agent: *\nDisallow: /private\n")
        _i, t_sum = w.wait_keys("upload", ["robots.txt"], mark, timeout=10)
        note("one edit with watch.debounce_ms 1000 -> batch summary", f"{t_sum - t0:.3f}s")
        self.assertGreaterEqual(t_sum - t0, 0.9, "watch.debounce_ms from the config file is used")
        self.assertLess(t_sum - t0, 3.5)
        # watch.max_delay_ms: a write every 150 ms for 4.5 s is never quiet for a second, yet batches flush
        w.settle(0.5)
        mark = w.mark()
        want = []
        t_start = time.monotonic()
        for i in range(30):
            key = f"stream/s{i:02d}.txt"
            write(os.path.join(src, key), f"stream {i}")
            want.append(key)
            time.sleep(0.15)
        t_end = time.monotonic()
        during = [(t - t_start, e) for t, e in w.events[mark:] if t <= t_end and e.get("event") == "summary"]
        note("stream of 30 writes over 4.5 s with max_delay_ms 1500: batches during the stream",
             ", ".join(f"{t:.2f}s (+{e.get('uploaded')})" for t, e in during))
        written_at = {k: t_start + 0.15 * n for n, k in enumerate(want)}  # approximately
        self.assertGreaterEqual(len(during), 2, "a continuous stream still flushes every max_delay_ms")
        self.assertLess(during[0][0], 1.5 + 1.5, "the first batch comes about max_delay_ms after the first change")
        w.wait_keys("upload", want, mark, timeout=15)
        published_at = {}
        with w._cond:
            evs = list(w.events[mark:])
        pending = []
        for t, e in evs:
            if e.get("event") == "upload":
                pending.append(e.get("key"))
            elif e.get("event") == "summary":
                published_at.update({k: t for k in pending if k not in published_at})
                pending = []
        worst = max(published_at[k] - written_at[k] for k in want)
        note("stream: worst write -> batch summary", f"{worst:.2f}s (debounce 1.0 s, max delay 1.5 s)")
        self.assertAlive()


# --------------------------------------------------------------------------------------------------------------
# 2. a burst of 300 files
# --------------------------------------------------------------------------------------------------------------

BURST_SCRIPT = textwrap.dedent("""\
    import os, sys
    root = sys.argv[1]
    for i in range(300):
        with open(os.path.join(root, "burst", "d%d" % (i % 10), "f%03d.html" % i), "w") as f:
            f.write("<p>%d</p>" % i * (1 + i % 7))
    """)


@needs_watch
class BurstTest(WatchCase):
    def test_burst_of_300_files(self):
        spec = dict(SMALL_SITE)
        for d in range(10):  # the folders exist already: this is about the burst, not new folders
            spec[f"burst/d{d}/keep.txt"] = f"keep {d}"
        src = self.site(spec)
        w = self.start_watch(src)
        want = {f"burst/d{i % 10}/f{i:03d}.html": (f"<p>{i}</p>" * (1 + i % 7)).encode() for i in range(300)}
        mark = w.mark()
        t0 = time.monotonic()
        subprocess.run([sys.executable, "-c", BURST_SCRIPT, src], check=True, timeout=60)
        t_written = time.monotonic()
        _i, t_done = w.wait_keys("upload", want, mark, timeout=60)
        note("burst of 300: script run", f"{t_written - t0:.3f}s")
        note("burst of 300: end of writes -> last batch summary", f"{t_done - t_written:.3f}s")
        w.settle(1.5)
        remote = self.remote()
        missing = sorted(k for k in want if k not in remote)
        self.assertEqual(missing[:10], [], f"{len(missing)} of 300 not uploaded")
        for k, data in want.items():
            self.assertEqual(remote[k][0], len(data), k)
        for k in list(want)[::37]:
            self.assertEqual(self.get(k), want[k], k)
        events = w.since(mark)
        uploads = keys_of(events, "upload")
        self.assertEqual(set(uploads), set(want), "only the burst's files are uploaded")
        new_invs = self.new_invs()
        note("burst of 300: batches / invalidations / PutObject",
             f"{len(of_kind(events, 'summary'))} / {len(new_invs)} / {self.proxy.count('PutObject')}")
        self.assertGreaterEqual(len(new_invs), 1)
        self.assertLessEqual(len(new_invs), 2, f"at most 2 invalidations for one burst: {len(new_invs)}")
        self.assertEqual(len(of_kind(events, "invalidate")), len(new_invs))
        self.assertCovered(new_invs, expected_paths(want))
        c = self.proxy.counts()
        self.assertEqual(self.proxy.count("ListObjectsV2"), 0, f"no listing after the initial sync: {c}")
        self.assertEqual(self.proxy.count("ListObjects"), 0, c)
        self.assertEqual(self.proxy.count("CreateInvalidation"), len(new_invs), c)
        self.assertAlive()


# --------------------------------------------------------------------------------------------------------------
# 3. the root folder removed and written again (a generator's clean build)
# --------------------------------------------------------------------------------------------------------------


@needs_watch
class RootRewriteTest(WatchCase):
    def assertNothingDeleted(self, spec, mark, what):
        w = self.watcher
        self.assertAlive()
        self.assertEqual(keys_of(w.since(mark), "delete"), [], what)
        self.assertEqual(self.proxy.count("DeleteObjects") + self.proxy.count("DeleteObject"), 0,
                         f"{what}: {self.proxy.counts()}")
        remote = self.remote()
        self.assertEqual(sorted(remote), sorted(spec), what)
        for k, data in harness.expected_uploads(spec).items():
            self.assertEqual(remote[k][0], len(data), k)

    def test_rm_rf_and_rewrite_deletes_only_what_is_really_gone(self):
        spec = harness.expected_uploads(harness.generated_site(30, seed=5))
        src = self.site(spec)
        w = self.start_watch(src, "--delete")
        # 1: rm -rf, then the same files written again at once
        mark = w.mark()
        t0 = time.monotonic()
        shutil.rmtree(src)
        harness.make_site(src, spec)
        w.settle(quiet=1.0, min_wait=3.0)
        note("rm -rf + rewrite (same files): events / seconds to quiet",
             f"{len(w.since(mark))} / {time.monotonic() - t0:.1f}s")
        self.assertNothingDeleted(spec, mark, "rm -rf + immediate rewrite of the same files")
        # 2: rm -rf, the folder stays away for longer than the debounce, then the same files again
        mark = w.mark()
        shutil.rmtree(src)
        time.sleep(0.7)
        self.assertAlive()
        harness.make_site(src, spec)
        w.settle(quiet=1.0, min_wait=3.0)
        self.assertNothingDeleted(spec, mark, "rm -rf, 0.7 s gap, rewrite of the same files")
        # 3: rm -rf, then the files again but one: exactly that one is deleted
        gone = "blog/page-000/index.html"
        self.assertIn(gone, spec)
        fewer = {k: v for k, v in spec.items() if k != gone}
        mark = w.mark()
        t0 = time.monotonic()
        shutil.rmtree(src)
        harness.make_site(src, fewer)
        i_del, t_del, _e = w.wait_for(lambda e: e.get("event") == "delete" and e.get("key") == gone, mark, 20,
                                      f"the delete of {gone}")
        note("rm -rf + rewrite minus one -> delete event", f"{t_del - t0:.3f}s")
        w.wait_summary(i_del, timeout=10)
        w.settle(quiet=1.0, min_wait=1.0)
        self.assertAlive()
        self.assertEqual(keys_of(w.since(mark), "delete"), [gone])
        remote = self.remote()
        self.assertEqual(sorted(remote), sorted(fewer), "exactly the missing file is deleted")
        self.assertCovered(self.new_invs(), expected_paths([gone]), "the deleted file is invalidated")
        # the new tree is watched: an edit after all this is still published
        mark = w.mark()
        key = sorted(k for k in fewer if k.endswith(".html") and "/" in k)[0]
        write(os.path.join(src, key), b"<p>after the rewrites</p>")
        w.wait_keys("upload", [key], mark, timeout=10)
        self.assertEqual(self.get(key), b"<p>after the rewrites</p>")
        self.assertAlive()

    def test_rm_rf_rewrite_with_checksum_uploads_exactly_the_changed_file(self):
        """--compare checksum: after a clean rebuild (rm -rf, rewrite) a same-size content change is published and
        the unchanged files are not uploaded again."""
        spec = harness.expected_uploads(harness.generated_site(20, seed=8))
        src = self.site(spec)
        w = self.start_watch(src, "--delete", "--compare", "checksum")
        changed = dict(spec)
        key = "css/site.css"
        changed[key] = changed[key].replace(b"margin:0", b"margin:1")
        self.assertEqual(len(changed[key]), len(spec[key]))
        self.assertNotEqual(changed[key], spec[key])
        mark = w.mark()
        shutil.rmtree(src)
        harness.make_site(src, changed)
        w.wait_keys("upload", [key], mark, timeout=20)
        w.settle(quiet=1.0, min_wait=1.0)
        self.assertEqual(self.get(key), changed[key])
        self.assertEqual(keys_of(w.since(mark), "upload"), [key], "only the changed file is uploaded")
        self.assertEqual(keys_of(w.since(mark), "delete"), [])
        self.assertEqual(sorted(self.remote()), sorted(spec))
        self.assertEqual([set(i["Paths"]) for i in self.new_invs()], [{"/css/site.css"}])
        self.assertAlive()

    def test_rebuilt_root_publishes_a_same_size_change(self):
        """Default --compare size: a clean rebuild that changes one file's content but not its size, the new tree
        built beside the site and moved into place (rm -rf SOURCE; mv staging SOURCE), so the watcher must rescan.
        Like the same-size edit in place (EditTest), the changed content must reach the bucket. (A plain
        `rm -rf SOURCE` + rewrite loses it too, most of the time: whether the files are named by events or found
        by the rescan is a race.)"""
        spec = harness.expected_uploads(harness.generated_site(20, seed=8))
        src = self.site(spec)
        w = self.start_watch(src, "--delete")
        changed = dict(spec)
        key = "css/site.css"
        changed[key] = changed[key].replace(b"margin:0", b"margin:1")
        self.assertEqual(len(changed[key]), len(spec[key]))
        staging = os.path.join(self.tmp, "staging")
        harness.make_site(staging, changed)
        mark = w.mark()
        shutil.rmtree(src)
        os.rename(staging, src)
        w.settle(quiet=1.0, min_wait=3.0)
        self.assertEqual(keys_of(w.since(mark), "delete"), [])
        self.assertEqual(sorted(self.remote()), sorted(spec))
        self.assertEqual(self.get(key), changed[key],
                         f"the same-size change made by the rebuild is not published (events: {w.since(mark)})")
        self.assertAlive()

    def test_max_deletes_guard_per_batch(self):
        src = self.site(SMALL_SITE)
        w = self.start_watch(src, "--delete", "--max-deletes", "2")
        mark = w.mark()
        for k in ("js/app.js", "docs/guide.html", "robots.txt"):
            os.remove(os.path.join(src, k))
        w.settle(quiet=1.0, min_wait=2.5)
        remote = self.remote()
        for k in ("js/app.js", "docs/guide.html", "robots.txt"):
            self.assertIn(k, remote, "3 deletes in one batch with --max-deletes 2: nothing is deleted")
        self.assertEqual(keys_of(w.since(mark), "delete"), [])
        self.assertEqual(self.proxy.count("DeleteObjects") + self.proxy.count("DeleteObject"), 0)
        if not w.alive():
            self.assertEqual(w.proc.returncode, 3, "a watcher that stops on the guard exits 3")
        self.assertRegex(w.stderr_text() + json.dumps(w.since(mark)), r"(?i)max.?deletes|refus|guard",
                         "the refusal is said")


# --------------------------------------------------------------------------------------------------------------
# 4. new folders: mkdir -p + writes at once, and a tree moved in
# --------------------------------------------------------------------------------------------------------------


@needs_watch
class NewFolderTest(WatchCase):
    def test_new_folder_with_files_written_at_once(self):
        src = self.site(SMALL_SITE)
        w = self.start_watch(src)
        want = {f"new/deep/er/f{i:02d}.html": f"<p>new {i}</p>".encode() for i in range(20)}
        mark = w.mark()
        os.makedirs(os.path.join(src, "new", "deep", "er"))
        for k, data in want.items():  # a tight loop right after mkdir -p
            with open(os.path.join(src, k), "wb") as f:
                f.write(data)
        w.wait_keys("upload", want, mark, timeout=20)
        w.settle(1.0)
        remote = self.remote()
        for k, data in want.items():
            self.assertIn(k, remote)
            self.assertEqual(self.get(k), data, k)
        self.assertEqual(set(keys_of(w.since(mark), "upload")), set(want))
        self.assertCovered(self.new_invs(), expected_paths(want))
        self.assertAlive()

    def test_tree_moved_in(self):
        src = self.site(SMALL_SITE)
        w = self.start_watch(src)
        staging = os.path.join(self.tmp, "staging")  # same filesystem as the site: rename(2) moves it
        tree = {}
        for i in range(5):
            tree[f"moved/p{i}.html"] = f"<p>top {i}</p>"
            tree[f"moved/a/q{i}.txt"] = f"level 1 {i}"
            tree[f"moved/a/b/r{i}.css"] = f"b{i}{{}}"
        self.assertEqual(len(tree), 15)
        harness.make_site(staging, tree)
        self.assertEqual(os.stat(staging).st_dev, os.stat(src).st_dev)
        want = {k: v.encode() for k, v in tree.items()}
        mark = w.mark()
        t0 = time.monotonic()
        os.rename(os.path.join(staging, "moved"), os.path.join(src, "moved"))
        _i, t_done = w.wait_keys("upload", want, mark, timeout=20)
        note("mv of a 15-file tree -> batch summary", f"{t_done - t0:.3f}s")
        w.settle(1.0)
        for k, data in want.items():
            self.assertEqual(self.get(k), data, k)
        self.assertEqual(set(keys_of(w.since(mark), "upload")), set(want))
        self.assertCovered(self.new_invs(), expected_paths(want))
        # the moved-in folders are watched too
        mark = w.mark()
        write(os.path.join(src, "moved/a/b/r0.css"), b"b0{color:red}")
        w.wait_keys("upload", ["moved/a/b/r0.css"], mark, timeout=10)
        self.assertEqual(self.get("moved/a/b/r0.css"), b"b0{color:red}")
        self.assertAlive()


# --------------------------------------------------------------------------------------------------------------
# 5. editor temp files
# --------------------------------------------------------------------------------------------------------------

TEMP_NAMES = ("x.swp", "y~", ".#z", "4913", "a.tmp", ".hidden")


@needs_watch
class TempFileTest(WatchCase):
    def test_editor_temp_files_are_ignored(self):
        src = self.site(SMALL_SITE)
        w = self.start_watch(src)
        mark = w.mark()
        temps = [n for n in TEMP_NAMES] + [f"docs/{n}" for n in TEMP_NAMES]
        for n in temps[:6]:
            write(os.path.join(src, n), b"editor scratch")
        write(os.path.join(src, "index.html"), b"<p>home, edited</p>")  # the real edit, in the same burst
        for n in temps[6:]:
            write(os.path.join(src, n), b"editor scratch")
        w.wait_keys("upload", ["index.html"], mark, timeout=10)
        w.settle(1.5)
        self.assertEqual(self.get("index.html"), b"<p>home, edited</p>")
        self.assertEqual(keys_of(w.since(mark), "upload"), ["index.html"], "only the real file is uploaded")
        remote = self.remote()
        self.assertEqual([n for n in temps if n in remote], [], "no temp file reaches the bucket")
        self.assertEqual([set(i["Paths"]) for i in self.new_invs()], [{"/index.html", "/"}])
        self.assertEqual(self.proxy.count("PutObject"), 1, self.proxy.counts())
        self.assertAlive()


    def test_well_known_edit_is_published(self):
        """CLI.md: dotfiles are skipped except .well-known/, which sync publishes; the watcher's dotfile rule for
        temp files must not hide it."""
        spec = dict(SMALL_SITE)
        spec[".well-known/security.txt"] = "Contact: mailto:a@example.org\n"
        src = self.site(spec)
        w = self.start_watch(src)
        self.assertIn(".well-known/security.txt", self.remote(), "the initial sync publishes .well-known/")
        mark = w.mark()
        write(os.path.join(src, ".well-known/security.txt"), b"Contact: mailto:security@example.org\n")
        w.wait_keys("upload", [".well-known/security.txt"], mark, timeout=10)
        self.assertEqual(self.get(".well-known/security.txt"), b"Contact: mailto:security@example.org\n")
        self.assertAlive()


# --------------------------------------------------------------------------------------------------------------
# 6. SIGINT during a batch; SIGTERM while idle; 7. idle CPU
# --------------------------------------------------------------------------------------------------------------


@needs_watch
class SignalTest(WatchCase):
    def test_sigint_during_a_batch_finishes_it_and_exits_0(self):
        spec = dict(SMALL_SITE)
        spec["bulk/keep.txt"] = "keep"
        src = self.site(spec)
        w = self.start_watch(src)
        want = {f"bulk/f{i:03d}.bin": os.urandom(20_000 + i) for i in range(150)}
        # a few retried PUTs keep the batch in flight a little longer
        self.proxy.inject(status=503, code="SlowDown", count=3, op="PutObject")
        mark = w.mark()
        for k, data in want.items():
            with open(os.path.join(src, k), "wb") as f:
                f.write(data)
        i_up, _t, _e = w.wait_for(lambda e: e.get("event") == "upload" and e.get("key") in want, mark, 20,
                                  "the first upload of the batch")
        batch_done_before = any(e.get("event") == "summary" for e in w.since(i_up))
        t_sig = time.monotonic()
        w.signal(signal.SIGINT)
        try:
            rc = w.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.fail(f"no exit within 5 s of SIGINT\n{w.describe()}")
        t_exit = time.monotonic() - t_sig
        w._reader.join(timeout=5)
        note("SIGINT during a 150-file batch -> exit", f"{t_exit:.3f}s (batch summary already out when signalled: "
                                                      f"{batch_done_before})")
        self.assertEqual(rc, 0, w.describe())
        events = w.since(mark)
        uploaded = [k for k in keys_of(events, "upload") if k in want]
        note("SIGINT: uploads of the batch reported", f"{len(uploaded)} of {len(want)}")
        # the batch in flight is finished: every file of it is in the bucket
        remote = self.remote()
        missing = sorted(k for k in want if k not in remote)
        self.assertEqual(missing[:10], [], f"{len(missing)} files of the batch in flight are not uploaded")
        for k in uploaded:
            self.assertEqual(remote[k][0], len(want[k]), k)
        # its invalidation is made, or owed in the journal
        expected = expected_paths(want)
        new_invs = self.new_invs()
        inv_paths = [p for inv in new_invs for p in inv["Paths"]]
        owed, journal_text = self.journal_paths()
        uncovered_inv = [x for x in expected if not any(covers(p, x) for p in inv_paths)]
        uncovered_journal = [x for x in expected if not any(covers(p, x) for p in owed)]
        note("SIGINT: invalidation made / journaled", f"{len(new_invs)} made, {len(owed)} paths journaled")
        self.assertTrue(not uncovered_inv or not uncovered_journal,
                        f"the batch's paths are neither invalidated ({len(uncovered_inv)} missing from "
                        f"{len(new_invs)} invalidations) nor journaled ({len(uncovered_journal)} missing)\n"
                        f"journal: {journal_text[:3000]}\n{w.describe()}")

    def test_sigint_while_cloudfront_fails_journals_and_the_next_watcher_invalidates(self):
        src = self.site(SMALL_SITE)
        w = self.start_watch(src)
        self.proxy.inject(status=503, code="ServiceUnavailable", count=10_000, op="CreateInvalidation")
        key = "a/b/index.html"
        mark = w.mark()
        write(os.path.join(src, key), b"<p>a b, edited while CloudFront fails</p>")
        w.wait_for(lambda e: e.get("event") == "upload" and e.get("key") == key, mark, 10, f"the upload of {key}")
        t_sig = time.monotonic()
        w.signal(signal.SIGINT)
        try:
            rc = w.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.fail(f"no exit within 20 s of SIGINT\n{w.describe()}")
        t_exit = time.monotonic() - t_sig
        note("SIGINT while CreateInvalidation fails -> exit",
             f"{t_exit:.3f}s ({self.proxy.count('CreateInvalidation')} CreateInvalidation attempts)")
        self.assertEqual(rc, 0, w.describe())
        self.assertLess(t_exit, 15.0)
        self.assertEqual(self.get(key), b"<p>a b, edited while CloudFront fails</p>")
        self.assertEqual(self.new_invs(), [])
        expected = {"/a/b/index.html", "/a/b/", "/a/b"}
        owed, journal_text = self.journal_paths()
        self.assertTrue(expected <= set(owed), f"the batch's paths are owed in the journal: {journal_text}")
        # a new watcher with the same state dir submits what is owed in its initial sync (nothing to upload)
        self.proxy.clear_faults()
        self.proxy.reset_counts()
        w.stop()
        before = len(self.invs())
        w2 = self.start_watch(src)
        self.assertEqual(keys_of(w2.batches()[0], "upload"), [])
        invs = self.invs()[before:]
        self.assertEqual(len(invs), 1, invs)
        self.assertEqual(set(invs[0]["Paths"]), expected)
        owed, journal_text = self.journal_paths()
        self.assertEqual(owed, [], f"nothing is owed afterwards: {journal_text}")

    def test_idle_cpu_and_sigterm(self):
        src = self.site(harness.expected_uploads(harness.generated_site(60, seed=9)))
        w = self.start_watch(src)
        w.settle(0.5)
        mark = w.mark()
        c0, t0 = cpu_seconds(w.pid), time.monotonic()
        time.sleep(3.0)
        c1, t1 = cpu_seconds(w.pid), time.monotonic()
        note("idle CPU over 3 s", f"{c1 - c0:.3f}s over {t1 - t0:.2f}s")
        self.assertLess(c1 - c0, 0.1, "an idle watcher uses (almost) no CPU")
        self.assertEqual(w.since(mark), [], "no batch while nothing changes")
        self.assertEqual(self.proxy.total(), 0, f"no request while idle: {self.proxy.counts()}")
        t_sig = time.monotonic()
        w.signal(signal.SIGTERM)
        try:
            rc = w.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.fail(f"no exit within 5 s of SIGTERM\n{w.describe()}")
        note("SIGTERM while idle -> exit", f"{time.monotonic() - t_sig:.3f}s")
        self.assertEqual(rc, 0, w.describe())


# --------------------------------------------------------------------------------------------------------------
# 8. requests per edit on a big site; changes during the initial sync
# --------------------------------------------------------------------------------------------------------------


@needs_watch
class BigSiteTest(WatchCase):
    def test_one_edit_on_a_5000_file_site_costs_one_put_and_one_invalidation(self):
        spec = {f"s{i % 50:02d}/p{i:05d}.html": f"<p>{i}</p>" for i in range(BIG_SITE_FILES)}
        src = self.site(spec)
        w = self.start_watch(src, initial_timeout=240)
        s = self.initial_summary
        note(f"initial sync of {BIG_SITE_FILES} files (wall, to the batch-0 summary)",
             f"{self.initial_wall:.1f}s (summary says {s.get('seconds')}s)")
        self.assertEqual(s["uploaded"], BIG_SITE_FILES)
        w.settle(1.0)
        self.proxy.reset_counts()
        key = "s17/p01017.html"
        mark = w.mark()
        t0 = write(os.path.join(src, key), "<p>1017, edited</p>")
        _i, t_sum = w.wait_keys("upload", [key], mark, timeout=10)
        note(f"edit on the {BIG_SITE_FILES}-file site -> batch summary", f"{t_sum - t0:.3f}s")
        w.settle(1.0)
        counts = {f"{m} {op}": n for (m, op), n in self.proxy.counts().items()}
        self.assertEqual(counts, {"PUT PutObject": 1, "POST CreateInvalidation": 1},
                         "one edit: one PUT, one CreateInvalidation, no listing, nothing else")
        self.assertEqual(self.get(key), b"<p>1017, edited</p>")
        self.assertEqual([set(i["Paths"]) for i in self.new_invs()], [{"/" + key}])
        self.assertEqual(keys_of(w.since(mark), "upload"), [key])
        self.assertAlive()

    def test_changes_during_the_initial_sync_are_published(self):
        spec = {f"s{i % 20:02d}/p{i:04d}.html": f"<p>{i}</p>" for i in range(800)}
        spec["index.html"] = "<p>home</p>"
        src = self.site(spec)
        w = self.start_watch(src, wait_initial=False)
        w.wait_for(lambda e: e.get("event") == "upload", 0, 60, "the first upload of the initial sync")
        write(os.path.join(src, "late/new.html"), b"<p>written during the initial sync</p>")
        write(os.path.join(src, "index.html"), b"<p>home, edited during the initial sync</p>")
        done_before = any(e.get("event") == "summary" for e in w.since(0))
        self.wait_initial(timeout=120)
        note("changes during the initial sync: initial sync still running when written", str(not done_before))

        def published():
            try:
                return (self.get("late/new.html") == b"<p>written during the initial sync</p>" and
                        self.get("index.html") == b"<p>home, edited during the initial sync</p>")
            except self.s3.exceptions.NoSuchKey:
                return False
            except Exception as e:  # noqa: BLE001 (404 from get_object comes as ClientError)
                if "NoSuchKey" in str(e) or "404" in str(e):
                    return False
                raise

        harness.wait_until(published, timeout=10, interval=0.2,
                           what="the files changed during the initial sync to reach the bucket")
        self.assertAlive()


# --------------------------------------------------------------------------------------------------------------
# 9. a failed upload is retried in the next batch
# --------------------------------------------------------------------------------------------------------------


@needs_watch
class FailureTest(WatchCase):
    def test_failed_upload_is_retried_in_the_next_batch(self):
        src = self.site(SMALL_SITE)
        w = self.start_watch(src)
        # every PutObject fails (503) for longer than sitesync retries
        self.proxy.inject(status=503, code="SlowDown", count=10_000, op="PutObject")
        failed_key, failed_data = "docs/guide.html", b"<p>guide, edited while S3 fails</p>"
        mark = w.mark()
        t0 = write(os.path.join(src, failed_key), failed_data)
        i_err, t_err, err = w.wait_for(lambda e: e.get("event") == "error" and e.get("key") == failed_key, mark,
                                       60, f"an error event for {failed_key}")
        note("upload failing with 503 every time -> error event", f"{t_err - t0:.3f}s "
                                                                 f"({self.proxy.count('PutObject')} PUT attempts)")
        self.assertTrue(err.get("message"), err)
        _i, _t, s = w.wait_summary(i_err, timeout=15)
        self.assertGreaterEqual(s["failed"], 1, s)
        self.assertGreaterEqual(self.proxy.count("PutObject"), 2, "the PUT is retried within the batch")
        time.sleep(0.5)
        self.assertAlive()
        self.assertNotEqual(self.get(failed_key), failed_data)
        # S3 is fine again; another edit makes a batch, which retries the failed file too
        self.proxy.clear_faults()
        other, other_data = "js/app.js", b"y()  // edited later"
        mark = w.mark()
        write(os.path.join(src, other), other_data)
        w.wait_keys("upload", [other, failed_key], mark, timeout=20)
        w.settle(1.0)
        self.assertEqual(self.get(other), other_data)
        self.assertEqual(self.get(failed_key), failed_data, "a failed upload in one batch is retried in the next")
        self.assertCovered(self.new_invs(), expected_paths([other, failed_key]))
        self.assertAlive()


if __name__ == "__main__":
    unittest.main(verbosity=2)
