"""Integration tests of the transport's guard rails (issue 12, points 8 and 9), with the real sitesync binary.

- A server that accepts connections and never answers: `sitesync sync` exits 1 within 60 s, naming the endpoint.
- A slow but moving upload (a relay that reads the body at 16 KiB/s, about 32 s) is never cut.
- A healthy run through the fault proxy is unaffected (single PUTs, streamed bodies, multipart).
- A file swapped for a symlink to a secret outside SOURCE between the walk and the upload is not uploaded: the run
  reports it as failed, and boto3 shows the secret's bytes never landed.
- A header value with a control character in sitesync.yaml is a config error (exit 2) naming the rule; nothing
  is sent.
- The full access key ID never appears in the output for InvalidAccessKeyId / SignatureDoesNotMatch answers, in
  `sync` and in `check`, with -v too.

Outcomes are checked with boto3 straight against moto. The relays and the silent server below are threads of this
process, stopped by closing their sockets.

    SITESYNC_BIN=$PWD/build/cli/sitesync python3 tests/integration/test_transport.py -v
"""

from __future__ import annotations

import hashlib
import os
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from test_sync import SyncCase, events_of  # noqa: E402

BIN_OK, BIN_WHY = harness.sitesync_available()
needs_sitesync = unittest.skipUnless(BIN_OK, BIN_WHY)

MiB = 1024 * 1024
SECRET = b"[default]\naws_secret_access_key = THIS-MUST-NEVER-BE-PUBLISHED-7f3a\n"


class SilentServer:
    """Accepts TCP connections on 127.0.0.1 and never sends a byte (reads and drops what comes)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((harness.LOOPBACK, 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.endpoint = f"http://{harness.LOOPBACK}:{self.port}"
        self.accepted = 0
        self.conns: list[socket.socket] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            self.conns.append(conn)
            threading.Thread(target=self._drain, args=(conn,), daemon=True).start()

    @staticmethod
    def _drain(conn):
        try:
            while conn.recv(65536):
                pass
        except OSError:
            pass

    def stop(self):
        self.stopping.set()
        for s in [self.sock] + self.conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        self.thread.join(timeout=5)


class Relay:
    """A TCP relay to `upstream` (host, port). Client-to-server bytes go at most `rate` bytes/s (None: at once) in
    16 KiB steps, with a small receive buffer so that the client feels it; server-to-client bytes go at once.
    With hold_listing set, a connection whose request is a ListObjectsV2 waits (before forwarding) until
    release() is called: listing_seen is set when the first one arrives."""

    STEP = 16 * 1024

    def __init__(self, upstream_port: int, rate: float | None = None, hold_listing: bool = False):
        self.upstream = (harness.LOOPBACK, upstream_port)
        self.rate = rate
        self.hold_listing = hold_listing
        self.listing_seen = threading.Event()
        self.released = threading.Event()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rate is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)  # inherited by accepted sockets
        self.sock.bind((harness.LOOPBACK, 0))
        self.sock.listen(64)
        self.endpoint = f"http://{harness.LOOPBACK}:{self.sock.getsockname()[1]}"
        self.conns: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def release(self):
        self.released.set()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            try:
                up = socket.create_connection(self.upstream, timeout=30)
            except OSError:
                conn.close()
                continue
            up.settimeout(None)
            self.conns += [conn, up]
            threading.Thread(target=self._pump, args=(conn, up, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(up, conn, False), daemon=True).start()

    def _pump(self, src, dst, upstream_bound):
        try:
            while True:
                data = src.recv(self.STEP if upstream_bound else 1 << 20)
                if not data:
                    break
                if upstream_bound and self.hold_listing and b"list-type=2" in data:
                    self.listing_seen.set()
                    self.released.wait(timeout=30)
                dst.sendall(data)
                if upstream_bound and self.rate:
                    time.sleep(len(data) / self.rate)
        except OSError:
            pass
        finally:
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def stop(self):
        self.released.set()
        for s in [self.sock] + self.conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        self.thread.join(timeout=5)


def upstream_port(proxy) -> int:
    return int(proxy.endpoint.rsplit(":", 1)[1])


@needs_sitesync
class SilentServerTest(SyncCase):
    """Point 8: a server that answers nothing fails the run fast, naming the endpoint."""

    def test_silent_server_fails_within_60_s_naming_the_endpoint(self):
        silent = SilentServer()
        self.addCleanup(silent.stop)
        src = self.site({"index.html": "<p>i</p>", "a.css": "a{}"})
        env = {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLEEXAMPLE12", "AWS_SECRET_ACCESS_KEY": "secret-for-a-silent-server"}
        started = time.monotonic()
        res = harness.run_sitesync(["sync", src, self.dest(), "--endpoint", silent.endpoint], env_extra=env,
                                   timeout=120)
        elapsed = time.monotonic() - started
        self.assertEqual(res.returncode, 1, res.describe())
        self.assertLess(elapsed, 60, f"took {elapsed:.1f} s\n{res.describe()}")
        self.assertGreater(elapsed, 40, "given up only after 45-55 s of silence, not at the first idle cut")
        self.assertIn(f"no answer from {silent.endpoint} in 50 s", res.stderr)
        self.assertIn("check --endpoint and the network", res.stderr)
        self.assertGreaterEqual(silent.accepted, 3, "each 15 s idle cut was followed by a retry on a new connection")
        self.assertEqual(self.remote(), {})


@needs_sitesync
class SlowUploadTest(SyncCase):
    """Point 8: a slow upload that keeps moving is never cut, however long it takes. Here 512 KiB at 16 KiB/s
    (about 32 s, twice the idle limit): curl hands the last few hundred KB to the kernel long before the relay has
    read them, so for many seconds the only movement is the socket's send queue draining (SIOCOUTQ)."""

    def test_slow_but_moving_upload_succeeds(self):
        relay = Relay(upstream_port(self.proxy), rate=16 * 1024)
        self.addCleanup(relay.stop)
        big = os.urandom(512 * 1024)
        src = self.site({"index.html": "<p>i</p>"})
        with open(os.path.join(src, "video.bin"), "wb") as f:
            f.write(big)
        started = time.monotonic()
        res = self.sync(src, self.dest(), "-v", endpoint=relay.endpoint, timeout=120)
        elapsed = time.monotonic() - started
        self.assertExit(res, 0)
        self.assertGreater(elapsed, 20, "the upload must take longer than the idle limit for this test to mean much")
        summary = harness.summary_of(harness.parse_json_lines(res.stdout))
        self.assertEqual(summary["uploaded"], 2)
        body = self.s3.get_object(Bucket=self.bucket, Key="video.bin")["Body"].read()
        self.assertEqual(hashlib.sha256(body).hexdigest(), hashlib.sha256(big).hexdigest())
        self.assertEqual(self.proxy.count("PutObject", "PUT"), 2, "no attempt was cut and retried")
        self.assertNotIn("stalled", res.stderr)


@needs_sitesync
class HealthyRunTest(SyncCase):
    """Point 8 and 9 change nothing for a healthy server: in-memory, streamed and multipart bodies all land."""

    def test_healthy_run_is_unaffected(self):
        spec = {"index.html": "<p>i</p>", "a/b.css": "b{}", "img/x.png": os.urandom(200 * 1024)}
        src = self.site(spec)
        big = os.urandom(18 * MiB)  # above the 16 MiB multipart threshold: parts share one open file
        with open(os.path.join(src, "big.bin"), "wb") as f:
            f.write(big)
        os.symlink("a/b.css", os.path.join(src, "link.css"))  # a link inside SOURCE is still published
        started = time.monotonic()
        res, events = self.ok_sync(src, self.dest())
        self.assertLess(time.monotonic() - started, 30)
        self.assertEqual(harness.summary_of(events)["uploaded"], 5)
        self.assertEqual(events_of(events, "error"), [])
        remote = self.remote()
        self.assertEqual(set(remote), {"index.html", "a/b.css", "img/x.png", "big.bin", "link.css"})
        self.assertEqual(harness.get_bytes(self.s3, self.bucket, "link.css"), b"b{}")
        self.assertEqual(harness.get_bytes(self.s3, self.bucket, "img/x.png"), spec["img/x.png"])
        self.assertEqual(hashlib.md5(harness.get_bytes(self.s3, self.bucket, "big.bin")).hexdigest(),
                         hashlib.md5(big).hexdigest())
        self.assertEqual(self.proxy.count("CreateMultipartUpload"), 1)


@needs_sitesync
class SymlinkSwapTest(SyncCase):
    """Point 9: a file swapped for a symlink to a secret outside SOURCE after the walk is never read."""

    def test_file_swapped_for_a_link_outside_after_the_walk_is_not_uploaded(self):
        secret_dir = os.path.join(self.tmp, "home", ".aws")
        os.makedirs(secret_dir)
        secret = os.path.join(secret_dir, "credentials")
        with open(secret, "wb") as f:
            f.write(SECRET + os.urandom(100 * 1024))  # large enough for the streamed-body path too
        # Two assets are swapped (a small in-memory body and a streamed one); the pages wait for the assets, so a
        # failed asset holds them back (point 4) and the untouched asset still goes up.
        src = self.site({"index.html": "<p>home</p>", "about.html": "<p>about</p>", "note.txt": "note",
                         "style.css": "b{}", "app.js": b"x" * (100 * 1024)})
        relay = Relay(upstream_port(self.proxy), hold_listing=True)
        self.addCleanup(relay.stop)

        outcome = {}
        runner = threading.Thread(target=lambda: outcome.setdefault("res", self.sync(
            src, self.dest(), endpoint=relay.endpoint, timeout=90)))
        runner.start()
        try:
            self.assertTrue(relay.listing_seen.wait(timeout=30), "sitesync never listed the bucket")
            time.sleep(0.5)  # the walk runs beside the listing; a few files take microseconds
            for name in ("note.txt", "app.js"):  # an in-memory body and a streamed one
                path = os.path.join(src, name)
                os.rename(path, path + ".old")
                os.symlink(secret, path)
        finally:
            relay.release()
            runner.join(timeout=120)
        res = outcome["res"]
        self.assertExit(res, 1)
        events = harness.parse_json_lines(res.stdout)
        errors = {e["key"]: e["message"] for e in events_of(events, "error")}
        self.assertEqual(set(errors), {"note.txt", "app.js"}, res.describe())
        for key, message in errors.items():
            self.assertIn(f"'{key}' now leads outside SOURCE", message)
        self.assertEqual(harness.summary_of(events)["failed"], 2)
        remote = self.remote()
        self.assertNotIn("note.txt", remote)
        self.assertNotIn("app.js", remote)
        for key in remote:
            self.assertNotIn(SECRET, harness.get_bytes(self.s3, self.bucket, key), key)
        self.assertIn("style.css", remote, "the other asset still went up")
        skipped = {e["key"] for e in events_of(events, "skip")}
        self.assertEqual(skipped, {"index.html", "about.html"}, "pages wait for their assets")
        self.assertNotIn("index.html", remote)


@needs_sitesync
class ConfigAndSecretsTest(SyncCase):
    """Point 9: header values with control characters are a config error; key IDs are never printed whole."""

    def test_header_value_with_a_newline_is_a_config_error_naming_the_rule(self):
        src = self.site({"index.html": "<p>i</p>"})
        cfg = os.path.join(self.tmp, "sitesync.yaml")
        with open(cfg, "w") as f:
            f.write('headers:\n  - match: "*.html"\n    cache_control: "max-age=60\\r\\nX-Injected: yes"\n')
        res = self.sync(src, self.dest(), "-c", cfg)
        self.assertExit(res, 2)
        self.assertIn("headers rule with match '*.html'", res.stderr)
        self.assertIn("'cache_control' contains a carriage return (CR)", res.stderr)
        self.assertEqual(self.proxy.total(), 0, "nothing was sent")
        self.assertEqual(self.remote(), {})

    def test_access_key_id_is_never_printed_whole(self):
        src = self.site({"index.html": "<p>i</p>"})
        known = self.server.access_key_id
        unknown = "AKIAUNKNOWNKEYID9876"
        cases = {
            "InvalidAccessKeyId": ({"AWS_ACCESS_KEY_ID": unknown}, unknown),
            "SignatureDoesNotMatch": ({"AWS_SECRET_ACCESS_KEY": "wrong-secret-wrong-secret-wrong-secret0"}, known),
        }
        for code, (env, key_id) in cases.items():
            for command in (["sync", src, self.dest()], ["check", self.dest()]):
                for verbose in ([], ["-v"]):
                    with self.subTest(code=code, command=command[0], verbose=bool(verbose)):
                        res = self.sitesync(*command, *verbose, env=env, json_out=False)
                        self.assertNotEqual(res.returncode, 0, res.describe())
                        text = res.stdout + res.stderr
                        self.assertNotIn(key_id, text)
                        self.assertIn(key_id[-4:], text, "the last 4 characters identify the key")
        self.assertEqual(self.remote(), {})


if __name__ == "__main__":
    unittest.main(verbosity=2)
