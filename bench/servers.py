"""Start and drive the benchmark S3 servers (python3 stdlib). Used by run.py and check_server.py.

Server modes:
  sink        bench/sink_server.js: in-memory, bodies discarded, fixed latency, counters, bulk load
  s3rver      bench/s3rver_server.js: s3rver 3.7.1 (listing fixed) behind the same latency/counting front
  s3rver-raw  the same without the listing fix (check_server.py only: shows what is wrong)
  moto        python3 -m moto.server (check_server.py only: the reference for listing order)

Every server is started on a free loopback port, watches our PID (exits if we die) and is stopped by its
own PID (SIGTERM, then SIGKILL) in stop(); use it as a context manager.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

BENCH = os.path.dirname(os.path.abspath(__file__))
CREDS = ("S3RVER", "S3RVER")  # s3rver's built-in key pair; the sink and moto take any


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node_modules_ok():
    return os.path.exists(os.path.join(BENCH, "node_modules", "s3rver", "package.json"))


def ensure_node_modules():
    if node_modules_ok():
        return
    print("==> installing bench/node_modules (npm ci --prefix bench)", file=sys.stderr)
    subprocess.run(["npm", "ci", "--prefix", BENCH, "--no-audit", "--no-fund"], check=True)


class Server:
    def __init__(self, mode, latency_ms=0, log_dir=None):
        self.mode = mode
        self.proc = None
        self.tmp = tempfile.mkdtemp(prefix=f"sitesync-bench-{mode}-")
        self.log_path = os.path.join(log_dir or self.tmp, f"server-{mode}.log")
        port_file = os.path.join(self.tmp, "port")
        if mode == "sink":
            cmd = ["node", os.path.join(BENCH, "sink_server.js")]
        elif mode in ("s3rver", "s3rver-raw"):
            ensure_node_modules()
            cmd = ["node", "--openssl-legacy-provider", os.path.join(BENCH, "s3rver_server.js")]
            if mode == "s3rver-raw":
                cmd.append("--no-fix")
        elif mode == "moto":
            port = free_port()
            cmd = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
        else:
            raise ValueError(f"unknown server mode {mode}")
        if mode != "moto":
            cmd += ["--port", "0", "--port-file", port_file, "--latency-ms", str(latency_ms),
                    "--parent-pid", str(os.getpid())]
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        deadline = time.time() + 30
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{mode} server exited with {self.proc.returncode}; see {self.log_path}")
            if mode == "moto":
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                        self.port = port
                        break
                except OSError:
                    pass
            elif os.path.exists(port_file):
                self.port = int(open(port_file).read())
                break
            if time.time() > deadline:
                self.stop()
                raise RuntimeError(f"{mode} server did not start; see {self.log_path}")
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{self.port}"
        self.pid = self.proc.pid

    # context manager: always stopped by its own PID
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.kill(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(timeout=5)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    pass
        if getattr(self, "log", None):
            self.log.close()
            self.log = None
        if os.path.isdir(self.tmp) and not os.path.exists(os.path.join(self.tmp, "keep")):
            shutil.rmtree(self.tmp, ignore_errors=True)

    # bench endpoints (sink and s3rver modes)
    def _call(self, method, path, body=None, timeout=600):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read() or b"null")

    def stats(self):
        return self._call("GET", "/_bench/stats")

    def reset(self):
        return self._call("POST", "/_bench/reset", {})

    def set_latency(self, ms):
        return self._call("POST", "/_bench/config", {"latency_ms": ms})

    def set_throttle(self, max_rps, burst=0, prefix_depth=0):
        """Sink only: answer 503 SlowDown above max_rps requests a second per partition (0 = off); burst 0 =
        the server's default (max_rps/10)."""
        return self._call("POST", "/_bench/config", {"max_rps": max_rps, "burst": burst,
                                                     "rps_prefix_depth": prefix_depth})

    def load(self, bucket, objects, replace=True):
        return self._call("POST", f"/_bench/load?bucket={bucket}&replace={1 if replace else 0}", objects)

    def drop(self, bucket):
        return self._call("POST", f"/_bench/drop?bucket={bucket}", {})

    def dump(self, bucket):
        return self._call("GET", f"/_bench/dump?bucket={bucket}")


def boto3_client(url):
    import boto3
    from botocore.config import Config
    return boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id=CREDS[0],
                        aws_secret_access_key=CREDS[1],
                        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2},
                                      max_pool_connections=32))
