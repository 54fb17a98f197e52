"""A single-host Ceph cluster with its RADOS Gateway, on loopback, for tests/integration/test_rgw.py.

RGW is an S3 server that no one here wrote: it verifies SigV4 signatures with its own canonicalisation (moto's is
patched in this repository, see moto_server_fixed.py), checks Content-MD5 (400 BadDigest), and has its own ideas of
the rest. The cluster is as small as Ceph allows: one monitor, one manager, one OSD on memstore (the objects live in
the OSD's memory, capped at MEMSTORE_BYTES), pools of size 1, no authentication between the daemons, and radosgw's
beast frontend on 127.0.0.1:<free port>. Everything lives in one temp dir; every daemon is started here in the
foreground and stopped by its own PID (terminate, bounded wait, kill), then the dir is removed.

    cluster = RgwCluster().start()      # ~25 s; raises HarnessError with the daemons' log tails when it cannot
    s3 = cluster.boto3_s3()             # path-style, the S3 user's keys (generated here)
    run_sitesync([...,"--endpoint", cluster.endpoint], server=cluster)
    cluster.cleanup()

Needs the Debian packages ceph-mon ceph-osd ceph-mgr radosgw (scripts/lib.sh installs them). Runs as root or not:
nothing outside the temp dir is written, and no privileged port is used.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import string
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import LOOPBACK, REGION, HarnessError  # noqa: E402

BINARIES = ("ceph-mon", "ceph-mgr", "ceph-osd", "radosgw", "radosgw-admin", "monmaptool", "ceph-authtool", "ceph")
PACKAGES = "ceph-mon ceph-osd ceph-mgr radosgw"
MEMSTORE_BYTES = 1536 * 1024 * 1024  # the OSD's whole store, in memory: 40 MiB multipart + a few thousand objects
START_TIMEOUT = 180.0  # generous: the machine is shared; a healthy start takes ~25 s


def _random_key(n: int, alphabet: str) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def _listen_port(avoid: frozenset | set = frozenset()) -> int:
    """A free port on 127.0.0.1 BELOW the kernel's ephemeral range (ip_local_port_range, 32768-60999 here) and away
    from Ceph's 6800-7300. radosgw binds its port only ~10 s after it is chosen (once its pools exist); a port from
    the ephemeral range can meanwhile become the local end of one of the many client connections the other test
    modules make under ctest -j2, and radosgw then exits with EADDRINUSE (98). Ports below the range are never
    handed out to client sockets."""
    low, _high = 32768, 60999
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        pass
    rng = secrets.SystemRandom()
    top = max(min(low, 32768), 12001)
    for _ in range(200):
        port = rng.randrange(10000, top)
        if 6800 <= port <= 7300 or port in avoid:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((LOOPBACK, port))
            except OSError:
                continue
        return port
    raise HarnessError("RGW cluster: no free port below the ephemeral range on 127.0.0.1 after 200 tries")


class RgwCluster:
    """One mon, one mgr, one memstore OSD and radosgw, started in a temp dir.

    After start(): .endpoint (http://127.0.0.1:PORT), .access_key_id, .secret_access_key, .boto3_s3(),
    .sitesync_env() (so harness.run_sitesync(server=cluster) passes the keys), .start_seconds, .log_tails().
    """

    def __init__(self, start_timeout: float = START_TIMEOUT):
        self.start_timeout = start_timeout
        self.tmpdir: str | None = None
        self.conf: str | None = None
        self.port: int | None = None
        self.endpoint: str | None = None
        self.access_key_id = "RGW" + _random_key(17, string.ascii_uppercase + string.digits)
        self.secret_access_key = _random_key(40, string.ascii_letters + string.digits)
        self.start_seconds: float | None = None
        self._procs: list[tuple[str, subprocess.Popen]] = []  # (name, process), in start order
        self._deadline = 0.0

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def __enter__(self) -> "RgwCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.cleanup()

    def start(self) -> "RgwCluster":
        missing = [b for b in BINARIES if shutil.which(b) is None]
        if missing:
            raise HarnessError(f"RGW cluster: {', '.join(missing)} not installed (apt-get install {PACKAGES}; "
                               "scripts/test installs them)")
        began = time.monotonic()
        self._deadline = began + self.start_timeout
        self.tmpdir = tempfile.mkdtemp(prefix="sitesync-rgw-")
        try:
            self._configure()
            self._make_monitor()
            self._spawn("mon.a", ["ceph-mon", "-f", "-i", "a"])
            self._spawn("mgr.x", ["ceph-mgr", "-f", "-i", "x"])
            osd_id = self._make_osd()
            self._spawn(f"osd.{osd_id}", ["ceph-osd", "-f", "-i", osd_id])
            self._spawn("client.rgw", ["radosgw", "-f", "-n", "client.rgw"])
            self._wait_answering()
            self._make_user()
            self._wait_signed()
        except BaseException as e:
            tails = self.log_tails()
            self.cleanup()
            if isinstance(e, HarnessError):
                raise HarnessError(f"{e}\n{tails}") from None
            raise
        self.start_seconds = time.monotonic() - began
        return self

    def stop(self) -> None:
        """Stops every daemon by its own PID, the gateway first and the monitor last."""
        for _name, proc in reversed(self._procs):
            harness._stop_process(proc, grace=15.0)
        self._procs.clear()

    def cleanup(self) -> None:
        """stop(), then remove the temp dir (the store and the logs with it)."""
        self.stop()
        if self.tmpdir:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None

    # -- steps -------------------------------------------------------------------------------------------------
    def _path(self, *parts: str) -> str:
        return os.path.join(self.tmpdir, *parts)

    def _configure(self) -> None:
        for d in ("run", "log", "mon", "mgr", "osd", "rgw"):
            os.makedirs(self._path(d))
        mon_port = _listen_port()
        self.port = _listen_port(avoid={mon_port})
        self.endpoint = f"http://{LOOPBACK}:{self.port}"
        self.fsid = str(uuid.uuid4())
        self.mon_addr = f"v2:{LOOPBACK}:{mon_port}"
        self.conf = self._path("ceph.conf")
        d = self.tmpdir
        # Everything the daemons write goes under the temp dir ($name: mon.a, osd.0, ...). Daemons talk msgr2
        # only, on loopback, with cephx keys generated for this cluster alone (one keyring for all: radosgw 16.2
        # cannot reach a monitor that runs with `auth ... = none`).
        Path(self.conf).write_text(f"""[global]
fsid = {self.fsid}
mon host = [{self.mon_addr}]
mon initial members = a
public addr = {LOOPBACK}
cluster addr = {LOOPBACK}
ms bind msgr1 = false
ms bind ipv6 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = {d}/keyring
run dir = {d}/run
admin socket = {d}/run/$name.asok
pid file = {d}/run/$name.pid
log file = {d}/log/$name.log
log to stderr = false
err to stderr = true
mon cluster log file = {d}/log/cluster.log
crash dir = {d}/crash
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
mon data avail warn = 2
mon data avail crit = 1
osd objectstore = memstore
memstore device bytes = {MEMSTORE_BYTES}
osd memory target = 268435456
osd memory base = 134217728
osd memory cache min = 67108864
osd op num shards = 1
osd op num threads per shard = 1
mon osd full ratio = 0.97
mon osd backfillfull ratio = 0.95
mon osd nearfull ratio = 0.9

[mon]
mon data = {d}/mon/$cluster-$id

[mgr]
mgr data = {d}/mgr/$cluster-$id

[osd]
osd data = {d}/osd/$cluster-$id

[client.rgw]
rgw frontends = beast endpoint={LOOPBACK}:{self.port}
rgw data = {d}/rgw
rgw init timeout = {int(self.start_timeout)}
rgw thread pool size = 64
rgw enable usage log = false
rgw enable ops log = false
""")

    def _run(self, what: str, args: list[str], timeout: float = 60.0, conf: bool = True) -> str:
        """Runs a Ceph tool (against this cluster's config when `conf`); its stdout, or HarnessError naming `what`."""
        left = max(5.0, min(timeout, self._deadline - time.monotonic()))
        try:
            r = subprocess.run(args + (["-c", self.conf] if conf else []), stdin=subprocess.DEVNULL,
                               capture_output=True, text=True, timeout=left, env=self._env())
        except subprocess.TimeoutExpired as e:
            raise HarnessError(f"RGW cluster: {what} did not finish within {left:.0f}s: {' '.join(args)}\n"
                               f"{harness.tail(str(e.stderr or ''), 4000)}") from None
        if r.returncode != 0:
            raise HarnessError(f"RGW cluster: {what} failed (exit {r.returncode}): {' '.join(args)}\n"
                               f"{harness.tail(r.stdout + r.stderr, 4000)}")
        return r.stdout

    def _env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CEPH_", "AWS_"))}
        env["CEPH_CONF"] = self.conf
        return env

    def _make_monitor(self) -> None:
        # Every entity's key, generated now; the monitor's mkfs imports them all (caps as the Ceph manual gives them).
        keyring = self._path("keyring")
        entities = [
            ("mon.", ["--cap", "mon", "allow *"]),
            ("client.admin", ["--cap", "mon", "allow *", "--cap", "osd", "allow *", "--cap", "mgr", "allow *"]),
            ("mgr.x", ["--cap", "mon", "allow profile mgr", "--cap", "osd", "allow *"]),
            ("osd.0", ["--cap", "mon", "allow profile osd", "--cap", "mgr", "allow profile osd", "--cap", "osd",
                       "allow *"]),
            ("client.rgw", ["--cap", "mon", "allow rw", "--cap", "osd", "allow rwx", "--cap", "mgr", "allow rw"]),
        ]
        for n, (entity, caps) in enumerate(entities):
            create = ["--create-keyring"] if n == 0 else []
            self._run(f"ceph-authtool {entity}", ["ceph-authtool", keyring, *create, "--gen-key", "-n", entity, *caps],
                      conf=False)
        monmap = self._path("monmap")
        self._run("monmaptool", ["monmaptool", "--create", "--fsid", self.fsid, "--addv", "a",
                                 f"[{self.mon_addr}]", monmap], conf=False)
        self._run("ceph-mon --mkfs", ["ceph-mon", "--mkfs", "-i", "a", "--monmap", monmap])

    def _make_osd(self) -> str:
        osd_uuid = str(uuid.uuid4())
        # `ceph osd new` is the first call that needs the running monitor: it waits for it to form a quorum.
        osd_id = self._run("ceph osd new",
                           ["ceph", "--connect-timeout", "60", "osd", "new", osd_uuid, "0"]).strip()
        if osd_id != "0":
            raise HarnessError(f"RGW cluster: `ceph osd new` answered {osd_id!r}, not OSD id 0 (its key's name)")
        os.makedirs(self._path("osd", f"ceph-{osd_id}"))
        self._run("ceph-osd --mkfs", ["ceph-osd", "--mkfs", "-i", osd_id, "--osd-uuid", osd_uuid])
        return osd_id

    def _spawn(self, name: str, args: list[str]) -> None:
        out = open(self._path("log", f"{name}.stderr"), "wb")
        try:
            proc = subprocess.Popen(args + ["-c", self.conf], stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, env=self._env(), cwd=self.tmpdir)
        finally:
            out.close()
        with harness._live_lock:
            harness._live_processes.add(proc)  # stopped at exit too, should a test leave without cleanup
        self._procs.append((name, proc))

    def _check_alive(self) -> None:
        for name, proc in self._procs:
            if proc.poll() is not None:
                raise HarnessError(f"RGW cluster: {name} (pid {proc.pid}) exited with {proc.returncode} during start")

    def _wait_answering(self) -> None:
        """Until radosgw answers HTTP (it listens once its pools exist, i.e. once the OSD is up and in)."""
        import requests

        attempts = 0
        while True:
            attempts += 1
            self._check_alive()
            try:
                r = requests.get(f"{self.endpoint}/", timeout=5)
                if r.status_code == 200:
                    return
            except requests.RequestException:
                pass
            if attempts >= 2000 or time.monotonic() > self._deadline:
                raise HarnessError(f"RGW cluster: radosgw not answering on {self.endpoint} after "
                                   f"{self.start_timeout:.0f}s ({attempts} tries)")
            time.sleep(0.1)

    def _make_user(self) -> None:
        self._run("radosgw-admin user create",
                  ["radosgw-admin", "user", "create", "--uid", "sitesync", "--display-name", "sitesync tests",
                   "--access-key", self.access_key_id, "--secret", self.secret_access_key])

    def _wait_signed(self) -> None:
        """Until a signed ListBuckets with the new user's keys succeeds (the gateway caches users briefly)."""
        s3 = self.boto3_s3(max_attempts=1)
        attempts = 0
        while True:
            attempts += 1
            self._check_alive()
            try:
                s3.list_buckets()
                return
            except Exception as e:  # noqa: BLE001  (any failure: try again until the deadline)
                last = e
            if attempts >= 600 or time.monotonic() > self._deadline:
                raise HarnessError(f"RGW cluster: signed ListBuckets still failing: {last!r}")
            time.sleep(0.2)

    # -- clients and diagnostics ---------------------------------------------------------------------------------
    def boto3_s3(self, endpoint: str | None = None, max_attempts: int = 3):
        """A boto3 S3 client on the gateway (or `endpoint`): path-style, the S3 user's keys, checksums only
        when required (what boto3 would add is not what sitesync is tested on)."""
        import boto3
        from botocore.config import Config

        cfg = Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": max_attempts, "mode": "standard"},
                     request_checksum_calculation="when_required", response_checksum_validation="when_required",
                     connect_timeout=10, read_timeout=120)
        return boto3.client("s3", endpoint_url=endpoint or self.endpoint, region_name=REGION,
                            aws_access_key_id=self.access_key_id, aws_secret_access_key=self.secret_access_key,
                            config=cfg)

    def sitesync_env(self) -> dict:
        return {"AWS_ACCESS_KEY_ID": self.access_key_id, "AWS_SECRET_ACCESS_KEY": self.secret_access_key}

    def log_tails(self, lines: int = 40) -> str:
        """The last `lines` lines of every daemon's log and output, for a failure message."""
        if not self.tmpdir or not os.path.isdir(self._path("log")):
            return "(no logs)"
        out = []
        for p in sorted(Path(self._path("log")).iterdir()):
            text = p.read_bytes().decode("utf-8", "replace").splitlines()
            if text:
                out.append(f"----- {p.name} (last {min(lines, len(text))} lines) -----")
                out.extend(text[-lines:])
        states = ", ".join(f"{n} pid {p.pid} {'running' if p.poll() is None else f'exit {p.returncode}'}"
                           for n, p in self._procs)
        return f"daemons: {states or 'none started'}\n" + "\n".join(out)


if __name__ == "__main__":
    # Start, show how long it took, stop: `python3 tests/integration/rgw.py`
    cluster = RgwCluster()
    try:
        cluster.start()
        print(f"RGW answered at {cluster.endpoint} after {cluster.start_seconds:.1f}s")
    finally:
        cluster.cleanup()
