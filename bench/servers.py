"""Start and drive the benchmark S3 servers (python3 stdlib). Used by run.py and check_server.py.

Server modes:
  sink        bench/sink_server.js: in-memory, bodies discarded, fixed latency, counters, bulk load
  s3rver      bench/s3rver_server.js: s3rver 3.7.1 (listing fixed) behind the same latency/counting front
  s3rver-raw  the same without the listing fix (check_server.py only: shows what is wrong)
  moto        python3 -m moto.server (check_server.py only: the reference for listing order)

Every server is started on a free loopback port, watches our PID (exits if we die) and is stopped by its
own PID (SIGTERM, then SIGKILL) in stop(); use it as a context manager.

With tls=True (sink and s3rver modes) the server also serves HTTPS on a second free port (https_url), with a
server certificate signed by a CA made for this server only (make_ca: openssl CLI, RSA 2048, in the server's
temporary folder, removed by stop()); ca_file is what a client is given to verify it: the system's CA bundle with
that CA added (a user's client loads the system's 145 or so CAs, and the cost of loading them counts).
url_for("http"|"https") gives either endpoint. The bench endpoints are always called over plain HTTP.
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


SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def make_ca(folder):
    """Makes a self-signed CA and a server certificate it signs, for 127.0.0.1 and localhost, in `folder`
    (openssl CLI). RSA 2048, as S3's default endpoint certificates are (so a client verifies the same kind of
    signature and pays the same TLS CPU as against S3). Returns {"ca": ca.pem, "bundle": the system's CAs and ca.pem,
    "cert": server.pem, "key": server.key}."""
    os.makedirs(folder, exist_ok=True)
    p = {n: os.path.join(folder, n) for n in ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem",
                                               "server.ext")}

    def ssl(*args):
        r = subprocess.run(["openssl", *args], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"openssl {args[0]} failed: {r.stderr.strip()[-400:]}")
    ssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", p["ca.key"])
    ssl("req", "-x509", "-new", "-key", p["ca.key"], "-sha256", "-days", "2", "-subj", "/CN=sitesync bench CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-addext", "subjectKeyIdentifier=hash", "-out", p["ca.pem"])
    ssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", p["server.key"])
    ssl("req", "-new", "-key", p["server.key"], "-subj", "/CN=127.0.0.1", "-out", p["server.csr"])
    with open(p["server.ext"], "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n"
                "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
    ssl("x509", "-req", "-in", p["server.csr"], "-CA", p["ca.pem"], "-CAkey", p["ca.key"], "-set_serial",
        str(int.from_bytes(os.urandom(8), "big")), "-days", "2", "-sha256", "-extfile", p["server.ext"],
        "-out", p["server.pem"])
    # What the tools are given: the system's CAs with the bench CA added, the size of store a user's client loads
    # (about 145 certificates on Debian). A one-certificate file would hide a client that loads its CAs per
    # connection (sitesync did until libcurl's CA directory was turned off: 251 MiB at 256 connections).
    bundle = os.path.join(folder, "bundle.pem")
    with open(bundle, "w") as out:
        if os.path.isfile(SYSTEM_CA_BUNDLE):
            with open(SYSTEM_CA_BUNDLE) as f:
                out.write(f.read())
        with open(p["ca.pem"]) as f:
            out.write(f.read())
    return {"ca": p["ca.pem"], "bundle": bundle, "cert": p["server.pem"], "key": p["server.key"]}


def node_modules_ok():
    return os.path.exists(os.path.join(BENCH, "node_modules", "s3rver", "package.json"))


def ensure_node_modules():
    if node_modules_ok():
        return
    print("==> installing bench/node_modules (npm ci --prefix bench)", file=sys.stderr)
    subprocess.run(["npm", "ci", "--prefix", BENCH, "--no-audit", "--no-fund"], check=True)


class Server:
    def __init__(self, mode, latency_ms=0, log_dir=None, tls=False):
        self.mode = mode
        self.proc = None
        self.tmp = tempfile.mkdtemp(prefix=f"sitesync-bench-{mode}-")
        self.log_path = os.path.join(log_dir or self.tmp, f"server-{mode}.log")
        port_file = os.path.join(self.tmp, "port")
        tls_port_file = os.path.join(self.tmp, "port-tls") if tls else None
        self.ca_file, self.https_url = None, None
        if tls and mode == "moto":
            raise ValueError("tls is for the sink and s3rver modes")
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
        if tls:
            try:
                pem = make_ca(os.path.join(self.tmp, "tls"))
            except BaseException:
                shutil.rmtree(self.tmp, ignore_errors=True)
                raise
            self.ca_file = pem["bundle"]
            cmd += ["--tls-cert", pem["cert"], "--tls-key", pem["key"], "--tls-port", "0",
                    "--tls-port-file", tls_port_file]
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
            elif os.path.exists(port_file) and (not tls or os.path.exists(tls_port_file)):
                self.port = int(open(port_file).read())
                if tls:
                    self.https_port = int(open(tls_port_file).read())
                    self.https_url = f"https://127.0.0.1:{self.https_port}"
                break
            if time.time() > deadline:
                self.stop()
                raise RuntimeError(f"{mode} server did not start; see {self.log_path}")
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{self.port}"
        self.pid = self.proc.pid

    def url_for(self, proto):
        """The S3 endpoint over "http" or "https" (the latter only when started with tls=True)."""
        if proto == "http":
            return self.url
        if proto == "https" and self.https_url:
            return self.https_url
        raise ValueError(f"{self.mode} server has no {proto} endpoint (start it with tls=True)")

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
