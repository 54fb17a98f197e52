"""Integration tests of TLS, the User-Agent and the ExpiredToken refresh (issue 13, points 2, 5 and 6), with the real
sitesync binary.

- A TLS front made here (python's ssl, a server certificate for 127.0.0.1 signed by a CA that the test makes with
  the openssl CLI) terminates HTTPS and relays bytes to the FaultProxy in front of moto_server (SigV4 checking on):
  a sync over https works with AWS_CA_BUNDLE, with --ca-bundle, with `ca_bundle:` in sitesync.yaml and with the
  profile's ca_bundle in ~/.aws/config; without the CA it fails with exit 2 (a config error: nothing reached the
  server, the fix is a setting) after ONE connection, naming curl's certificate problem and the fix; a bundle that
  does not exist is exit 2 naming it, with no connection at all; --no-verify-ssl works and warns on stderr.
- A PutObject answered 400 ExpiredToken once (through the FaultProxy): the sync refreshes, retries, exits 0, and
  every object is in the bucket.
- Every request carries `User-Agent: sitesync/VERSION` (recorded by the FaultProxy).

Results are checked with boto3 straight against moto, or through the TLS front with verify=CA.

    SITESYNC_BIN=$PWD/build/cli/sitesync python3 tests/integration/test_tls.py -v
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402

BIN_OK, BIN_WHY = harness.sitesync_available()
needs_sitesync = unittest.skipUnless(BIN_OK, BIN_WHY)

SITE = {
    "index.html": "<!doctype html><title>tls</title>\n",
    "css/site.css": "body{margin:0}\n" * 50,
    "blog/post/index.html": "<p>" + "words " * 400 + "</p>\n",
    "img/a.bin": bytes(range(256)) * 40,
}
FIX = "pass --ca-bundle FILE or set AWS_CA_BUNDLE to the CA that signed the server's certificate"


def make_ca_and_server_cert(folder: str) -> tuple[str, str, str]:
    """(ca.pem, server.pem, server.key): a throwaway CA and a certificate for IP 127.0.0.1 that it signed."""
    def run(*args):
        subprocess.run(["openssl", *args], check=True, cwd=folder, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=60)

    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "ca.key",
        "-out", "ca.pem", "-days", "2", "-subj", "/CN=sitesync test CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "server.key",
        "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    with open(os.path.join(folder, "ext.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf")
    return tuple(os.path.join(folder, n) for n in ("ca.pem", "server.pem", "server.key"))


class TlsFront:
    """Accepts TLS on 127.0.0.1, and relays the decrypted bytes both ways to `upstream` (host, port). Counts the
    connections accepted, the handshakes that failed (a client that refused the certificate), and of those that
    succeeded, the ones that resumed a session (python's ssl issues TLS 1.3 session tickets, as servers do)."""

    def __init__(self, cert: str, key: str, upstream: tuple[str, int]):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.upstream = upstream
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((harness.LOOPBACK, 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.endpoint = f"https://{harness.LOOPBACK}:{self.port}"
        self.lock = threading.Lock()
        self.accepted = 0
        self.handshakes = 0
        self.resumed = 0
        self.handshake_failures: list[str] = []
        self.conns: list[socket.socket] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True, name=f"TlsFront:{self.port}")
        self.thread.start()

    def reset_counts(self):
        with self.lock:
            self.accepted = 0
            self.handshakes = 0
            self.resumed = 0
            self.handshake_failures = []

    def _serve(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.accepted += 1
                self.conns.append(conn)
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, raw: socket.socket):
        raw.settimeout(30)
        try:
            tls = self.ctx.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError) as e:
            with self.lock:
                self.handshake_failures.append(str(e))
            raw.close()
            return
        with self.lock:
            self.handshakes += 1
            self.resumed += 1 if tls.session_reused else 0
        try:
            up = socket.create_connection(self.upstream, timeout=30)
        except OSError:
            tls.close()
            return
        relay(tls, up)

    def stop(self):
        self.stopping.set()
        with self.lock:
            conns = list(self.conns)
        for s in [self.sock] + conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        self.thread.join(10)


def relay(a: socket.socket, b: socket.socket) -> None:
    """Copies bytes both ways between a and b until either side closes; then closes both."""
    done = threading.Event()

    def pump(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            done.set()

    t = threading.Thread(target=pump, args=(b, a), daemon=True)
    t.start()
    pump(a, b)
    done.wait(60)
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()
    t.join(10)


class ConnectProxy:
    """An HTTP proxy on 127.0.0.1 that serves CONNECT only (what curl sends for an https:// URL through
    HTTPS_PROXY) and records the targets asked for."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((harness.LOOPBACK, 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://{harness.LOOPBACK}:{self.port}"
        self.lock = threading.Lock()
        self.targets: list[str] = []
        self.conns: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True, name=f"ConnectProxy:{self.port}")
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.conns.append(conn)
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket):
        conn.settimeout(30)
        head = b""
        try:
            while b"\r\n\r\n" not in head and len(head) < 65536:
                chunk = conn.recv(4096)
                if not chunk:
                    raise OSError("closed")
                head += chunk
            method, target = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")[:2]
            with self.lock:
                self.targets.append(f"{method} {target}")
            if method != "CONNECT":
                conn.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                conn.close()
                return
            host, port = target.rsplit(":", 1)
            if host != harness.LOOPBACK:
                raise OSError("loopback only")
            up = socket.create_connection((host, int(port)), timeout=30)
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        except (OSError, ValueError):
            conn.close()
            return
        relay(conn, up)

    def stop(self):
        with self.lock:
            conns = list(self.conns)
        for s in [self.sock] + conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        self.thread.join(10)


@needs_sitesync
class OpenCounter:
    """Counts the opens of one file with inotify (IN_OPEN; IN_CLOSE_NOWRITE too, so that the kernel does not fold
    two opens in a row into one event)."""
    IN_OPEN, IN_CLOSE_NOWRITE = 0x20, 0x10

    def __init__(self, path: str):
        import ctypes
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self.libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0 or self.libc.inotify_add_watch(self.fd, path.encode(),
                                                      self.IN_OPEN | self.IN_CLOSE_NOWRITE) < 0:
            raise OSError(ctypes.get_errno(), f"inotify on {path}")
        self.count = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        import struct
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                break
            at = 0
            while at < len(data):
                _, mask, _, name_len = struct.unpack_from("iIII", data, at)
                self.count += bool(mask & self.IN_OPEN)
                at += 16 + name_len
        os.close(self.fd)
        return False


class TlsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        harness.start_moto_and_proxy(cls)
        cls.certs = tempfile.mkdtemp(prefix="sitesync-tls-")
        cls.addClassCleanup(shutil.rmtree, cls.certs, True)
        cls.ca, cert, key = make_ca_and_server_cert(cls.certs)
        other = os.path.join(cls.certs, "other")
        os.makedirs(other)
        cls.other_ca = make_ca_and_server_cert(other)[0]  # a real CA that did not sign the front's certificate
        cls.front = TlsFront(cert, key, (harness.LOOPBACK, cls.proxy.port))
        cls.addClassCleanup(cls.front.stop)
        cls.s3 = cls.server.boto3_s3()
        cls.n = 0

    def setUp(self):
        TlsTest.n += 1
        self.bucket = f"tls-{TlsTest.n}"
        self.s3.create_bucket(Bucket=self.bucket)
        self.tmp = tempfile.mkdtemp(prefix="sitesync-tls-site-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.site = os.path.join(self.tmp, "public")
        self.expected = harness.make_site(self.site, SITE)
        self.front.reset_counts()
        self.proxy.reset_counts()
        self.proxy.clear_faults()

    def sync(self, *extra, env=None, home=None, cwd=None):
        args = ["sync", self.site, f"s3://{self.bucket}", "--endpoint", self.front.endpoint, "--json", *extra]
        return harness.run_sitesync(args, env_extra=env, server=self.server, home=home, cwd=cwd, timeout=120)

    def assert_published(self, res, via_tls: bool = True):
        self.assertEqual(res.returncode, 0, res.describe())
        summary = harness.summary_of(harness.parse_json_lines(res.stdout))
        self.assertEqual(summary["uploaded"], len(self.expected), res.describe())
        # Read back through the TLS front with the CA (boto3 verifies it), or straight from moto.
        endpoint = self.front.endpoint if via_tls else self.server.endpoint
        import boto3
        from botocore.config import Config
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name=harness.REGION, verify=self.ca,
                          aws_access_key_id=self.server.access_key_id,
                          aws_secret_access_key=self.server.secret_access_key,
                          config=Config(s3={"addressing_style": "path"}))
        for key, data in self.expected.items():
            self.assertEqual(s3.get_object(Bucket=self.bucket, Key=key)["Body"].read(), data, key)

    def assert_nothing_published(self):
        self.assertEqual(self.s3.list_objects_v2(Bucket=self.bucket).get("KeyCount", 0), 0)

    # -- the CA bundle from each place -----------------------------------------------------------------------------
    def test_aws_ca_bundle_env(self):
        self.assert_published(self.sync(env={"AWS_CA_BUNDLE": self.ca}))
        self.assertEqual(self.front.handshake_failures, [])

    def test_ca_bundle_option(self):
        self.assert_published(self.sync("--ca-bundle", self.ca))

    def test_ca_bundle_in_sitesync_yaml_relative_to_it(self):
        conf = os.path.join(self.tmp, "conf")
        os.makedirs(conf)
        shutil.copy(self.ca, os.path.join(conf, "corp-ca.pem"))
        with open(os.path.join(conf, "sitesync.yaml"), "w") as f:
            f.write("ca_bundle: corp-ca.pem\n")
        self.assert_published(self.sync("-c", os.path.join(conf, "sitesync.yaml")))

    def test_ca_bundle_in_the_profile(self):
        home = os.path.join(self.tmp, "home")
        os.makedirs(os.path.join(home, ".aws"))
        with open(os.path.join(home, ".aws", "config"), "w") as f:
            f.write(f"[default]\nregion = {harness.REGION}\nca_bundle = {self.ca}\n")
        self.assert_published(self.sync(home=home))

    def test_option_beats_an_environment_bundle_of_another_ca(self):
        res = self.sync(env={"AWS_CA_BUNDLE": self.other_ca})
        self.assertEqual(res.returncode, 2, res.describe())
        self.assertIn(FIX, res.stderr, res.describe())
        self.assert_nothing_published()
        self.assert_published(self.sync("--ca-bundle", self.ca, env={"AWS_CA_BUNDLE": self.other_ca}))

    # -- one certificate store for every connection ------------------------------------------------------------
    def test_a_system_sized_bundle_is_read_once_for_all_connections(self):
        # A real bundle: the system's CAs (about 140 on Debian) and the test's. libcurl keeps one store loaded from a
        # file for every connection only when no CA directory is set too (Debian's libcurl has /etc/ssl/certs): before
        # this, each of 16 connections parsed the whole bundle into a store of its own (measured with 256 in
        # flight: 251 MiB and 11.7 s of CPU; 46 MiB and 1.2 s now). The file's opens are counted with inotify.
        system = "/etc/ssl/certs/ca-certificates.crt"
        if not os.path.isfile(system):
            self.skipTest(f"{system} is not on this machine")
        bundle = os.path.join(self.tmp, "bundle.pem")
        with open(bundle, "wb") as out:
            for part in (system, self.ca):
                with open(part, "rb") as f:
                    out.write(f.read())
        self.expected.update(harness.make_site(self.site, {f"many/p{i}.html": f"page {i}\n" * 40 for i in range(60)}))
        self.proxy.latency_seconds = 0.05  # transfers overlap, so curl opens many connections
        self.addCleanup(setattr, self.proxy, "latency_seconds", 0.0)
        with OpenCounter(bundle) as opens:
            res = self.sync("--ca-bundle", bundle, "--jobs", "16")
        self.assert_published(res)
        self.assertGreaterEqual(self.front.accepted, 8, "too few connections for the count to mean anything")
        # Once for the store; once more is allowed (a check that the file can be read before anything is sent).
        self.assertLessEqual(opens.count, 2, f"the bundle was opened {opens.count} times for "
                                             f"{self.front.accepted} connections")

    def test_connections_opened_later_resume_the_session_too(self):
        # OpenSSL takes a TLS 1.3 session out of the client cache once a handshake resumed it (RFC 8446 advises one
        # use per ticket), which left curl's cached session unusable for every connection opened before the next
        # ticket was read, with an answer: with 128 in flight, the 64 connections after the first 64 (the
        # handshake gate lets 64 set up at once) made full handshakes. sitesync keeps the session resumable (one
        # client, one key, one bucket: nothing to unlink), so only the first connection (the listing's) is full.
        self.expected.update(harness.make_site(self.site, {f"many/p{i}.html": f"page {i}\n" * 40 for i in range(200)}))
        self.proxy.latency_seconds = 0.05  # answers come after the next connections have started
        self.addCleanup(setattr, self.proxy, "latency_seconds", 0.0)
        res = self.sync("--ca-bundle", self.ca, "--jobs", "128")
        self.assert_published(res)
        with self.front.lock:
            handshakes, resumed = self.front.handshakes, self.front.resumed
        self.assertGreater(handshakes, 64, "too few connections for a second wave")
        self.assertLessEqual(handshakes - resumed, 2, f"{handshakes - resumed} full handshakes of {handshakes}")

    # -- proxies -----------------------------------------------------------------------------------------------
    def test_https_proxy_from_the_environment_is_used_and_no_proxy_bypasses_it(self):
        proxy = ConnectProxy()
        self.addCleanup(proxy.stop)
        res = self.sync(env={"AWS_CA_BUNDLE": self.ca, "HTTPS_PROXY": proxy.url})
        self.assert_published(res)
        self.assertTrue(proxy.targets, "HTTPS_PROXY was not used")
        self.assertEqual(set(proxy.targets), {f"CONNECT {harness.LOOPBACK}:{self.front.port}"})
        # The certificate checked through the tunnel is still the endpoint's: without the CA it fails the same way.
        res = self.sync(env={"HTTPS_PROXY": proxy.url})
        self.assertEqual(res.returncode, 2, res.describe())
        self.assertIn(FIX, res.stderr, res.describe())
        before = len(proxy.targets)
        self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in self.expected]})
        res = self.sync(env={"AWS_CA_BUNDLE": self.ca, "HTTPS_PROXY": proxy.url, "NO_PROXY": harness.LOOPBACK})
        self.assert_published(res)
        self.assertEqual(len(proxy.targets), before, "NO_PROXY was not honoured")

    # -- failures ----------------------------------------------------------------------------------------------
    def test_without_the_ca_fails_once_naming_the_problem_and_the_fix(self):
        res = self.sync()
        # Exit 2: a configuration error. The first request fails in the TLS handshake, before anything reaches the
        # server (nothing changed), and retrying cannot help; the way out is a setting (--ca-bundle/AWS_CA_BUNDLE).
        self.assertEqual(res.returncode, 2, res.describe())
        self.assertIn("certificate", res.stderr, res.describe())
        self.assertIn("SSL certificate problem", res.stderr, res.describe())  # curl's own words
        self.assertIn(FIX, res.stderr, res.describe())
        self.assertIn(self.front.endpoint, res.stderr, res.describe())
        self.assertEqual(self.front.accepted, 1, f"retried a certificate problem: {self.front.accepted} connections")
        self.assertEqual(self.proxy.total(), 0)
        self.assert_nothing_published()

    def test_missing_bundle_file_is_a_config_error_naming_it(self):
        missing = os.path.join(self.tmp, "no-such-ca.pem")
        for how in (["--ca-bundle", missing], []):
            env = {} if how else {"AWS_CA_BUNDLE": missing}
            res = self.sync(*how, env=env)
            self.assertEqual(res.returncode, 2, res.describe())
            self.assertIn(missing, res.stderr, res.describe())
            self.assertIn("--ca-bundle" if how else "AWS_CA_BUNDLE", res.stderr, res.describe())
        self.assertEqual(self.front.accepted, 0)
        self.assert_nothing_published()

    def test_check_names_the_certificate_problem_too(self):
        res = harness.run_sitesync(["check", f"s3://{self.bucket}", "--endpoint", self.front.endpoint],
                                   server=self.server, timeout=120)
        self.assertNotEqual(res.returncode, 0, res.describe())
        self.assertIn(FIX, res.stdout + res.stderr, res.describe())
        res = harness.run_sitesync(["check", f"s3://{self.bucket}", "--endpoint", self.front.endpoint,
                                    "--ca-bundle", self.ca], server=self.server, timeout=120)
        self.assertEqual(res.returncode, 0, res.describe())

    def test_no_verify_ssl_works_and_warns(self):
        res = self.sync("--no-verify-ssl")
        self.assert_published(res)
        self.assertIn("WARNING: --no-verify-ssl", res.stderr, res.describe())
        self.assertIn("NOT verified", res.stderr, res.describe())
        # Every run, even with -q.
        res = self.sync("--no-verify-ssl", "-q")
        self.assertEqual(res.returncode, 0, res.describe())
        self.assertIn("WARNING: --no-verify-ssl", res.stderr, res.describe())

    # -- ExpiredToken and User-Agent (plain HTTP, through the FaultProxy) --------------------------------------
    def test_expired_token_once_is_refreshed_and_retried_and_every_request_names_sitesync(self):
        self.proxy.record_bodies = True
        self.addCleanup(setattr, self.proxy, "record_bodies", False)
        self.proxy.inject(status=400, code="ExpiredToken", message="The provided token has expired.", count=1,
                          op="PutObject")
        res = harness.run_sitesync(["sync", self.site, f"s3://{self.bucket}", "--endpoint", self.proxy.endpoint,
                                    "--json", "-v"], server=self.server, timeout=120)
        self.assert_published(res, via_tls=False)
        self.assertEqual(self.proxy.pending_faults(), 0, "the ExpiredToken answer was not served")
        self.assertEqual(self.proxy.count("PutObject", "PUT"), len(self.expected) + 1, self.proxy.counts())
        summary = harness.summary_of(harness.parse_json_lines(res.stdout))
        self.assertEqual(summary["failed"], 0)
        self.assertIn("ExpiredToken", res.stderr, "-v traces the refresh")
        agents = {r.header("User-Agent") for r in list(self.proxy.recorded) + list(self.proxy.faulted)}
        self.assertTrue(agents, "nothing recorded")
        for agent in agents:
            self.assertIsNotNone(agent)
            self.assertRegex(agent, r"^sitesync/\d+\.\d+\.\d+$")

    def test_access_denied_names_the_action_not_the_secret_key(self):
        self.proxy.inject(status=403, code="AccessDenied", message="Access Denied", count=100, op="PutObject")
        res = harness.run_sitesync(["sync", self.site, f"s3://{self.bucket}", "--endpoint", self.proxy.endpoint],
                                   server=self.server, timeout=120)
        self.assertEqual(res.returncode, 1, res.describe())
        self.assertIn("IAM or the bucket policy refuses s3:PutObject to the credentials from environment",
                      res.stderr, res.describe())
        self.assertNotIn("secret key", res.stderr, res.describe())
        self.assertNotIn(self.server.access_key_id, res.stdout + res.stderr)
        self.assertIn("..." + self.server.access_key_id[-4:], res.stderr, res.describe())
        # A refusal by policy is not retried: one PUT per asset tried (pages are held back after an asset fails).
        self.assertEqual(self.proxy.count("PutObject", "PUT"), 2, self.proxy.counts())


if __name__ == "__main__":
    unittest.main()
