"""Integration-test harness for sitesync: a signature-checking moto server, a fault-injecting proxy, helpers.

Everything listens on 127.0.0.1 only. Every process started here is stopped by its own PID (terminate, bounded
wait, kill), also when a test fails: use the context managers, or `start()` + `addClassCleanup(stop)`.

    with MotoServer() as moto, FaultProxy(moto.endpoint) as proxy:
        s3 = moto.boto3_s3()                          # direct, for independent verification
        s3.create_bucket(Bucket="site-1")
        rc, out, err = run_sitesync(["sync", src, "s3://site-1", "--endpoint", proxy.endpoint, "--json"],
                                    server=moto)
        proxy.counts()[("PUT", "PutObject")]

    CloudFront is on the same port (signed GETs verify: moto_server_fixed.py, MOTO.md trap 2):
        cf = moto.boto3_cloudfront()
        dist = create_distribution(cf, "site-1.s3.amazonaws.com", origin_path="")
        ... sitesync sync ... --distribution dist --cloudfront-endpoint proxy.endpoint
        invalidations(cf, dist)                       # [{"Id", "Status", "CallerReference", "Paths"}], oldest first
        proxy.count("CreateInvalidation", "POST")
        proxy.inject(status=500, op="CreateInvalidation", action="forward_error")   # a lost response
"""

from __future__ import annotations

import atexit
import collections
import email.utils
import hashlib
import http.client
import json
import os
import random
import re
import shutil
import socket
import socketserver
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import unquote, urlsplit

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
MOTO_WRAPPER = HERE / "moto_server_fixed.py"
DEFAULT_SITESYNC_BIN = REPO_ROOT / "build" / "cli" / "sitesync"
REGION = "us-east-1"
LOOPBACK = "127.0.0.1"

_live_processes: "set[subprocess.Popen]" = set()
_live_lock = threading.Lock()


def _stop_process(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """Terminate, wait (bounded), kill: by this process's own PID only."""
    if proc.poll() is None:
        try:
            proc.terminate()
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            try:
                proc.kill()
            except ProcessLookupError:
                pass
            proc.wait(timeout=grace)
    with _live_lock:
        _live_processes.discard(proc)


def _stop_all_at_exit() -> None:
    with _live_lock:
        procs = list(_live_processes)
    for p in procs:
        _stop_process(p, grace=5.0)


atexit.register(_stop_all_at_exit)


def free_loopback_port() -> int:
    """A port that is free on 127.0.0.1 right now (and closed: connecting to it is refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def tail(text: str, limit: int = 20000) -> str:
    return text if len(text) <= limit else "...[truncated]...\n" + text[-limit:]


# --------------------------------------------------------------------------------------------------------------
# moto server
# --------------------------------------------------------------------------------------------------------------


class HarnessError(RuntimeError):
    pass


class MotoServer:
    """moto_server (with the S3 canonical-URI fix, see moto_server_fixed.py) with SigV4 checking turned on.

    After start(): .endpoint, .port, .access_key_id, .secret_access_key, .boto3_s3(), .log_text().
    """

    IAM_USER = "sitesync-integration"

    def __init__(self, start_timeout: float = 60.0):
        self.start_timeout = start_timeout
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None
        self.endpoint: str | None = None
        self.access_key_id: str | None = None
        self.secret_access_key: str | None = None
        self.tmpdir: str | None = None
        self.log_path: str | None = None
        self._log_file = None

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def __enter__(self) -> "MotoServer":
        self.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.dump_log(f"moto server log (leaving with {exc_type.__name__})")
        self.cleanup()

    def start(self) -> "MotoServer":
        import requests

        self.tmpdir = tempfile.mkdtemp(prefix="sitesync-moto-")
        self.log_path = os.path.join(self.tmpdir, "moto.log")
        port_file = os.path.join(self.tmpdir, "port")
        self._log_file = open(self.log_path, "wb")
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        self.proc = subprocess.Popen(
            [sys.executable, str(MOTO_WRAPPER), "-H", LOOPBACK, "-p", "0", "--port-file", port_file,
             "--parent-pid", str(os.getpid())],
            stdin=subprocess.DEVNULL, stdout=self._log_file, stderr=subprocess.STDOUT, env=env,
            cwd=self.tmpdir)
        with _live_lock:
            _live_processes.add(self.proc)
        try:
            self._wait_ready(port_file, requests)
            self._enable_auth(requests)
        except BaseException:
            self.dump_log("moto server log (start failed)")
            self.stop()
            raise
        return self

    def _wait_ready(self, port_file: str, requests) -> None:
        deadline = time.monotonic() + self.start_timeout
        attempts = 0
        while True:
            attempts += 1
            if self.proc.poll() is not None:
                raise HarnessError(f"moto server exited with {self.proc.returncode} during start:\n"
                                   f"{self.log_text()}")
            if self.port is None and os.path.exists(port_file):
                self.port = int(Path(port_file).read_text().strip())
                self.endpoint = f"http://{LOOPBACK}:{self.port}"
            if self.port is not None:
                try:
                    r = requests.get(f"{self.endpoint}/moto-api/data.json", timeout=5)
                    if r.status_code == 200:
                        return
                except requests.RequestException:
                    pass
            if attempts >= 600 or time.monotonic() > deadline:
                raise HarnessError(f"moto server not ready after {attempts} checks / {self.start_timeout}s")
            time.sleep(0.05)

    def _enable_auth(self, requests) -> None:
        import boto3

        iam = boto3.client("iam", endpoint_url=self.endpoint, region_name=REGION,
                           aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
        iam.create_user(UserName=self.IAM_USER)
        iam.put_user_policy(UserName=self.IAM_USER, PolicyName="allow-all", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        key = iam.create_access_key(UserName=self.IAM_USER)["AccessKey"]
        self.access_key_id = key["AccessKeyId"]
        self.secret_access_key = key["SecretAccessKey"]
        r = requests.post(f"{self.endpoint}/moto-api/reset-auth", data=b"0", timeout=10)
        if r.status_code != 200:
            raise HarnessError(f"reset-auth failed: {r.status_code} {r.text}")

    def stop(self) -> None:
        if self.proc is not None:
            _stop_process(self.proc)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def cleanup(self) -> None:
        """stop() and remove the temporary directory (log included)."""
        self.stop()
        if self.tmpdir:
            shutil.rmtree(self.tmpdir, ignore_errors=True)

    # -- diagnostics -------------------------------------------------------------------------------------------
    def log_text(self) -> str:
        if not self.log_path or not os.path.exists(self.log_path):
            return ""
        if self._log_file is not None:
            self._log_file.flush()
        return Path(self.log_path).read_bytes().decode("utf-8", "replace")

    def dump_log(self, title: str = "moto server log", limit: int = 20000) -> None:
        sys.stderr.write(f"\n===== {title}: {self.log_path} =====\n{tail(self.log_text(), limit)}\n===== end =====\n")

    # -- clients -----------------------------------------------------------------------------------------------
    def boto3_s3(self, endpoint: str | None = None, secret: str | None = None, access_key: str | None = None,
                 max_attempts: int = 3):
        """A boto3 S3 client: path-style, us-east-1, this server's credentials (or the given ones)."""
        import boto3
        from botocore.config import Config

        cfg = Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": max_attempts, "mode": "standard"},
                     request_checksum_calculation="when_required", response_checksum_validation="when_required",
                     connect_timeout=10, read_timeout=120)
        return boto3.client("s3", endpoint_url=endpoint or self.endpoint, region_name=REGION,
                            aws_access_key_id=access_key or self.access_key_id,
                            aws_secret_access_key=secret or self.secret_access_key, config=cfg)

    def boto3_cloudfront(self, endpoint: str | None = None, secret: str | None = None,
                         access_key: str | None = None, max_attempts: int = 3):
        """A boto3 CloudFront client on this server (same port as S3), us-east-1, this server's credentials (or
        the given ones). Signed GETs verify thanks to moto_server_fixed.py (MOTO.md trap 2)."""
        import boto3
        from botocore.config import Config

        cfg = Config(retries={"total_max_attempts": max_attempts, "mode": "standard"}, connect_timeout=10,
                     read_timeout=120)
        return boto3.client("cloudfront", endpoint_url=endpoint or self.endpoint, region_name=REGION,
                            aws_access_key_id=access_key or self.access_key_id,
                            aws_secret_access_key=secret or self.secret_access_key, config=cfg)

    def sitesync_env(self) -> dict:
        return {"AWS_ACCESS_KEY_ID": self.access_key_id, "AWS_SECRET_ACCESS_KEY": self.secret_access_key}


# --------------------------------------------------------------------------------------------------------------
# fault-injecting reverse proxy
# --------------------------------------------------------------------------------------------------------------


def classify_s3(method: str, raw_target: str, headers=None) -> str:
    """The S3 operation name of a path-style request, from method, path and query."""
    path, _, query = raw_target.partition("?")
    params = set()
    if query:
        for item in query.split("&"):
            if item:
                params.add(unquote(item.partition("=")[0]))
    if path.startswith("/moto-api"):
        return "MotoApi"
    segs = path.lstrip("/").split("/", 1)
    bucket = segs[0]
    key = segs[1] if len(segs) > 1 else ""
    copy_source = bool(headers and headers.get("x-amz-copy-source"))
    if not bucket:
        return "ListBuckets" if method == "GET" else f"Service{method.title()}"
    if not key:
        if method == "GET":
            if "list-type" in params:
                return "ListObjectsV2"
            for name, op in (("uploads", "ListMultipartUploads"), ("location", "GetBucketLocation"),
                             ("versions", "ListObjectVersions"), ("versioning", "GetBucketVersioning"),
                             ("policy", "GetBucketPolicy"), ("acl", "GetBucketAcl"), ("cors", "GetBucketCors"),
                             ("website", "GetBucketWebsite"), ("tagging", "GetBucketTagging")):
                if name in params:
                    return op
            return "ListObjects"
        if method == "HEAD":
            return "HeadBucket"
        if method == "PUT":
            return "CreateBucket" if not params else "PutBucket" + "".join(sorted(p.title() for p in params))
        if method == "DELETE":
            return "DeleteBucket" if not params else "DeleteBucket" + "".join(sorted(p.title() for p in params))
        if method == "POST":
            return "DeleteObjects" if "delete" in params else "PostBucket"
        return f"Bucket{method.title()}"
    if method == "PUT":
        if "partNumber" in params and "uploadId" in params:
            return "UploadPartCopy" if copy_source else "UploadPart"
        if "tagging" in params:
            return "PutObjectTagging"
        if "acl" in params:
            return "PutObjectAcl"
        return "CopyObject" if copy_source else "PutObject"
    if method == "POST":
        if "uploads" in params:
            return "CreateMultipartUpload"
        if "uploadId" in params:
            return "CompleteMultipartUpload"
        if "restore" in params:
            return "RestoreObject"
        return "PostObject"
    if method == "DELETE":
        if "uploadId" in params:
            return "AbortMultipartUpload"
        if "tagging" in params:
            return "DeleteObjectTagging"
        return "DeleteObject"
    if method == "GET":
        if "uploadId" in params:
            return "ListParts"
        if "tagging" in params:
            return "GetObjectTagging"
        if "acl" in params:
            return "GetObjectAcl"
        return "GetObject"
    if method == "HEAD":
        return "HeadObject"
    return f"Object{method.title()}"


_CF_API_PREFIX = re.compile(r"^/(20\d\d-\d\d-\d\d)/")


def _auth_service(headers) -> str | None:
    """The service of a SigV4 Authorization header's credential scope (".../REGION/SERVICE/aws4_request")."""
    if not headers:
        return None
    auth = headers.get("Authorization") or headers.get("authorization") or ""
    m = re.search(r"Credential=[^/,]+/\d{8}/[^/,]*/([^/,]+)/aws4_request", auth)
    return m.group(1) if m else None


def is_cloudfront_request(raw_target: str, headers=None) -> bool:
    """A CloudFront REST request (path /2020-05-31/...), unless the request is signed for another service (a
    bucket may be named like a date)."""
    service = _auth_service(headers)
    if service is not None:
        return service == "cloudfront"
    return bool(_CF_API_PREFIX.match(raw_target))


def classify_cloudfront(method: str, raw_target: str, headers=None) -> str:  # noqa: ARG001
    """The CloudFront operation name of a request: /2020-05-31/distribution[/ID[/config|/invalidation[/IID]]]."""
    path, _, query = raw_target.partition("?")
    params = {}
    for item in query.split("&") if query else ():
        if item:
            name, _, value = item.partition("=")
            params[unquote(name)] = unquote(value)
    m = _CF_API_PREFIX.match(path)
    segs = [unquote(x) for x in path[m.end():].strip("/").split("/")] if m else []
    segs = [x for x in segs if x != ""]
    if not segs:
        return f"CloudFront{method.title()}"
    kind, rest = segs[0], segs[1:]
    if kind == "distribution":
        if not rest:
            if method == "POST":
                return "CreateDistributionWithTags" if "WithTags" in params else "CreateDistribution"
            if method == "GET":
                return "ListDistributions"
        elif len(rest) == 1:
            return {"GET": "GetDistribution", "DELETE": "DeleteDistribution"}.get(
                method, f"Distribution{method.title()}")
        elif rest[1] == "config" and len(rest) == 2:
            return {"GET": "GetDistributionConfig", "PUT": "UpdateDistribution"}.get(
                method, f"DistributionConfig{method.title()}")
        elif rest[1] == "invalidation":
            if len(rest) == 2:
                return {"POST": "CreateInvalidation", "GET": "ListInvalidations"}.get(
                    method, f"Invalidation{method.title()}")
            if len(rest) == 3 and method == "GET":
                return "GetInvalidation"
        return f"Distribution{method.title()}"
    if kind == "tagging":
        op = params.get("Operation")
        if method == "POST" and op in ("Tag", "Untag"):
            return f"{op}Resource"
        if method == "GET":
            return "ListTagsForResource"
    return f"CloudFront{method.title()}"


def classify_request(method: str, raw_target: str, headers=None) -> str:
    """The operation name of a request the FaultProxy sees: CloudFront ops by path (e.g. ("POST",
    "CreateInvalidation"), ("GET", "ListDistributions")), everything else as S3 (classify_s3)."""
    if is_cloudfront_request(raw_target.partition("?")[0], headers):
        return classify_cloudfront(method, raw_target, headers)
    return classify_s3(method, raw_target, headers)


def cloudfront_error_xml(code: str, message: str, error_type: str = "Sender") -> bytes:
    """An error body shaped like CloudFront's (rest-xml): <ErrorResponse><Error><Type/><Code/><Message/>..."""
    from xml.sax.saxutils import escape

    rid = str(uuid.uuid4())
    return ('<?xml version="1.0"?>\n<ErrorResponse xmlns="http://cloudfront.amazonaws.com/doc/2020-05-31/">'
            f"<Error><Type>{escape(error_type)}</Type><Code>{escape(code)}</Code>"
            f"<Message>{escape(message)}</Message></Error><RequestId>{rid}</RequestId></ErrorResponse>").encode()


def s3_error_xml(code: str, message: str, extra: dict | None = None) -> bytes:
    from xml.sax.saxutils import escape

    rid = uuid.uuid4().hex[:16].upper()
    parts = [f"<Code>{escape(code)}</Code>", f"<Message>{escape(message)}</Message>"]
    for k, v in (extra or {}).items():
        parts.append(f"<{k}>{escape(str(v))}</{k}>")
    parts.append(f"<RequestId>{rid}</RequestId><HostId>faultproxy/{rid}</HostId>")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<Error>' + "".join(parts) + "</Error>").encode()


DEFAULT_MESSAGES = {
    "SlowDown": "Please reduce your request rate.",
    "InternalError": "We encountered an internal error. Please try again.",
    "ServiceUnavailable": "Service is unable to handle request.",
    "RequestTimeTooSkewed": "The difference between the request time and the current time is too large.",
}

CLOUDFRONT_OPS = frozenset({
    "CreateDistribution", "CreateDistributionWithTags", "ListDistributions", "GetDistribution", "DeleteDistribution",
    "GetDistributionConfig", "UpdateDistribution", "CreateInvalidation", "ListInvalidations", "GetInvalidation",
    "TagResource", "UntagResource", "ListTagsForResource"})

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}


@dataclass
class _Fault:
    remaining: int
    op: str | None
    method: str | None
    action: str  # "error" | "reset" | "close" | "forward_error" | "forward_close" | "corrupt"
    status: int
    code: str
    message: str
    header: str | None = None  # only requests that carry this header (name, any case)


@dataclass(frozen=True)
class RecordedRequest:
    """A request the FaultProxy forwarded while record_bodies was on."""
    method: str
    op: str
    target: str
    headers: dict  # as received (original case of names)
    body_md5: bytes  # MD5 digest of the raw body bytes
    body_len: int
    body: bytes | None = None  # the raw body bytes when body_len <= FaultProxy.record_body_limit, else None

    def header(self, name: str) -> str | None:
        for k, v in self.headers.items():
            if k.lower() == name.lower():
                return v
        return None


def _parse_amz_date(value: str) -> float | None:
    try:
        t = time.strptime(value.strip(), "%Y%m%dT%H%M%SZ")
        import calendar

        return float(calendar.timegm(t))
    except (ValueError, TypeError):
        return None


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 120  # an idle keep-alive connection is dropped after this long
    server_version = "FaultProxy"
    sys_version = ""
    proxy: "FaultProxy"  # set on the subclass made per proxy

    def setup(self):
        super().setup()
        self.proxy._register_conn(self.connection)

    def finish(self):
        try:
            super().finish()
        finally:
            self.proxy._unregister_conn(self.connection)

    def log_message(self, fmt, *args):  # quiet; kept in the proxy's log instead
        self.proxy._log(fmt % args)

    # one handler for every method
    def do_GET(self):
        self._handle()

    do_PUT = do_POST = do_DELETE = do_HEAD = do_OPTIONS = do_PATCH = do_GET

    # -- request body --------------------------------------------------------------------------------------------
    def _body_chunks(self):
        """Yield the raw request body bytes as they arrive (chunked framing kept as is)."""
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise ConnectionError("client closed inside a chunked body")
                yield line
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while True:  # trailers, then the empty line
                        t = self.rfile.readline(65537)
                        if not t:
                            raise ConnectionError("client closed inside chunked trailers")
                        yield t
                        if t in (b"\r\n", b"\n"):
                            return
                remaining = size + 2  # data + CRLF
                while remaining > 0:
                    data = self.rfile.read(min(remaining, 1 << 20))
                    if not data:
                        raise ConnectionError("client closed inside a chunk")
                    remaining -= len(data)
                    yield data
        length = self.headers.get("Content-Length")
        if length:
            remaining = int(length)
            while remaining > 0:
                data = self.rfile.read(min(remaining, 1 << 20))
                if not data:
                    raise ConnectionError("client closed inside the body")
                remaining -= len(data)
                yield data

    def _drain_body(self, record_op: str | None = None, target_str: str = ""):
        """Read and drop the request body; with record_op (record_bodies on), keep it in proxy.faulted."""
        proxy = self.proxy
        if record_op is None or not proxy.record_bodies:
            for _ in self._body_chunks():
                pass
            return
        digest, body_len, kept = hashlib.md5(usedforsecurity=False), 0, []
        for chunk in self._body_chunks():
            digest.update(chunk)
            body_len += len(chunk)
            if kept is not None:
                kept.append(chunk)
                if body_len > proxy.record_body_limit:
                    kept = None
        with proxy._lock:
            proxy.faulted.append(RecordedRequest(self.command, record_op, target_str, dict(self.headers.items()),
                                                 digest.digest(), body_len,
                                                 b"".join(kept) if kept is not None else None))

    # -- answers made by the proxy itself ------------------------------------------------------------------------
    def _send_own(self, status: int, body: bytes, headers: dict | None = None):
        reason = http.client.responses.get(status, "Error")
        out = [f"HTTP/1.1 {status} {reason}"]
        hdrs = {"Date": email.utils.formatdate(time.time() + (self.proxy.skew_seconds or 0), usegmt=True),
                "Server": "AmazonS3", "x-amz-request-id": uuid.uuid4().hex[:16].upper(),
                "Content-Type": "application/xml", "Content-Length": str(len(body))}
        hdrs.update(headers or {})
        if self.command == "HEAD":
            body = b""
        for k, v in hdrs.items():
            out.append(f"{k}: {v}")
        self.wfile.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + body)
        self.wfile.flush()

    def _reset(self):
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close_connection = True
        try:
            self.connection.close()
        except OSError:
            pass

    # -- main path ------------------------------------------------------------------------------------------------
    def _handle(self):
        self.proxy._enter()
        try:
            self._handle_one()
        finally:
            self.proxy._leave()

    def _handle_one(self):
        proxy = self.proxy
        method = self.command
        parts = self.raw_requestline.rstrip(b"\r\n").split(b" ")
        target = parts[1] if len(parts) >= 2 else self.path.encode("latin-1")
        target_str = target.decode("latin-1")
        op = classify_request(method, target_str, self.headers)
        proxy._record(method, op, target_str)

        fault = proxy._take_fault(method, op, self.headers)
        if fault is not None:
            proxy._log(f"inject {fault.action} {fault.status} {fault.code} for {method} {op} {target_str}")
            if fault.action.startswith("forward_"):
                self._forward(method, target, after=fault, op=op)
                return
            if fault.action == "corrupt":
                self._forward(method, target, corrupt=True)
                return
            if fault.action == "reset":
                self._reset()
                return
            try:
                self._drain_body(record_op=op, target_str=target_str)
            except (ConnectionError, OSError):
                self.close_connection = True
                return
            if fault.action == "close":
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            self._send_fault(fault, op)
            return

        if proxy.latency_seconds:
            time.sleep(proxy.latency_seconds)
        if not proxy._admit(op):
            try:
                self._drain_body()
            except (ConnectionError, OSError):
                self.close_connection = True
                return
            self._send_own(503, s3_error_xml("SlowDown", DEFAULT_MESSAGES["SlowDown"]))
            return

        skew = proxy.skew_seconds or 0
        if skew:
            server_now = time.time() + skew
            req_time = None
            amz = self.headers.get("x-amz-date")
            if amz:
                req_time = _parse_amz_date(amz)
            elif self.headers.get("Date"):
                try:
                    req_time = email.utils.parsedate_to_datetime(self.headers["Date"]).timestamp()
                except (TypeError, ValueError):
                    req_time = None
            if req_time is not None and abs(req_time - server_now) > proxy.max_skew_seconds:
                proxy._note_skew_rejection()
                try:
                    self._drain_body()
                except (ConnectionError, OSError):
                    self.close_connection = True
                    return
                self._send_own(403, s3_error_xml("RequestTimeTooSkewed", DEFAULT_MESSAGES["RequestTimeTooSkewed"], {
                    "RequestTime": amz or self.headers.get("Date"),
                    "ServerTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(server_now)),
                    "MaxAllowedSkewMilliseconds": int(proxy.max_skew_seconds * 1000)}))
                return
        self._forward(method, target)

    def _send_fault(self, fault: "_Fault", op: str):
        if op in CLOUDFRONT_OPS or op.startswith(("CloudFront", "Distribution", "Invalidation")):
            error_type = "Receiver" if fault.status >= 500 else "Sender"
            self._send_own(fault.status, cloudfront_error_xml(fault.code, fault.message, error_type),
                           {"Server": "CloudFront", "Content-Type": "text/xml"})
        else:
            self._send_own(fault.status, s3_error_xml(fault.code, fault.message))

    def _forward(self, method: str, target: bytes, after: "_Fault | None" = None, op: str | None = None,
                 corrupt: bool = False):
        """Relay the request to moto and moto's answer to the client. With `after` (a "forward_*" fault) the
        request is relayed and moto's answer read in full (so the operation took effect), but the client gets the
        fault's error (forward_error) or a closed connection (forward_close) instead: a lost response. With
        `corrupt`, the byte in the middle of the (Content-Length) body has its bits flipped on the way up, headers
        untouched: a body damaged in transit."""
        proxy = self.proxy
        try:
            up = socket.create_connection((proxy.upstream_host, proxy.upstream_port), timeout=proxy.upstream_timeout)
        except OSError as e:
            try:
                self._drain_body()
            except (ConnectionError, OSError):
                self.close_connection = True
                return
            self._send_own(502, s3_error_xml("BadGateway", f"proxy: upstream unreachable: {e}"))
            return
        try:
            head = [method.encode("latin-1") + b" " + target + b" HTTP/1.1"]
            for name, value in self.headers.items():
                if name.lower() == "proxy-connection":
                    continue
                head.append(f"{name}: {value}".encode("latin-1"))
            up.sendall(b"\r\n".join(head) + b"\r\n\r\n")
            digest, body_len = (hashlib.md5(usedforsecurity=False), 0) if proxy.record_bodies else (None, 0)
            kept: list | None = [] if proxy.record_bodies else None
            flip_at = int(self.headers.get("Content-Length") or 0) // 2 if corrupt else -1
            if corrupt and (flip_at <= 0 or "chunked" in (self.headers.get("Transfer-Encoding") or "").lower()):
                proxy._log(f"corrupt: {method} {target!r} has no Content-Length body to damage; forwarded as is")
                flip_at = -1
            sent = 0
            for chunk in self._body_chunks():
                if 0 <= flip_at - sent < len(chunk):
                    i = flip_at - sent
                    chunk = chunk[:i] + bytes([chunk[i] ^ 0xFF]) + chunk[i + 1:]
                    with proxy._lock:
                        proxy.corrupted += 1
                    proxy._log(f"corrupt: flipped body byte {flip_at} of {method} {target!r}")
                sent += len(chunk)
                up.sendall(chunk)
                if digest is not None:
                    digest.update(chunk)
                    body_len += len(chunk)
                    if kept is not None:
                        kept.append(chunk)
                        if body_len > proxy.record_body_limit:
                            kept = None
            if digest is not None:
                target_str = target.decode("latin-1")
                proxy._record_body(RecordedRequest(method, classify_request(method, target_str, self.headers),
                                                   target_str, dict(self.headers.items()), digest.digest(), body_len,
                                                   b"".join(kept) if kept is not None else None))
            resp = http.client.HTTPResponse(up, method=method)
            resp.begin()
            status, reason = resp.status, resp.reason
            if after is not None:
                upstream_body = resp.read()
                resp.close()
                proxy._note_forwarded(status)
                proxy._log(f"forwarded {method} {op} -> {status} ({len(upstream_body)} bytes), then {after.action}")
                if after.action == "forward_close":
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                else:
                    self._send_fault(after, op or classify_request(method, target.decode("latin-1"), self.headers))
                return
            resp_headers = resp.getheaders()
            no_body = method == "HEAD" or status in (204, 304) or 100 <= status < 200
            forge_op = op or classify_request(method, target.decode("latin-1"), self.headers)
            if proxy.forge_etags and forge_op in _FORGED_ETAG_OPS:
                resp_headers = [(n, forged_etag(v) if n.lower() == "etag" else v) for n, v in resp_headers]
                # Real SSE-KMS answers name it: an answer whose ETag is forged says so.
                if any(n.lower() == "etag" for n, _ in resp_headers):
                    resp_headers = [(n, v) for n, v in resp_headers if n.lower() != "x-amz-server-side-encryption"]
                    resp_headers.append(("x-amz-server-side-encryption", "aws:kms"))
                if not no_body and forge_op in ("ListObjectsV2", "CopyObject"):
                    body = _ETAG_ELEMENT.sub(lambda m: m.group(1) + forged_etag(m.group(2)).encode() + m.group(3),
                                             resp.read())
                    resp.close()
                    out = [f"HTTP/1.1 {status} {reason}".encode("latin-1")]
                    out += [f"{n}: {v}".encode("latin-1") for n, v in resp_headers
                            if n.lower() not in HOP_BY_HOP and n.lower() != "content-length"]
                    out.append(f"Content-Length: {len(body)}".encode())
                    self.wfile.write(b"\r\n".join(out) + b"\r\n\r\n" + body)
                    self.wfile.flush()
                    proxy._note_forwarded(status)
                    return
            out = [f"HTTP/1.1 {status} {reason}".encode("latin-1")]
            skew = proxy.skew_seconds or 0
            for name, value in resp_headers:
                lname = name.lower()
                if lname in HOP_BY_HOP:
                    continue
                if not no_body and lname == "content-length":
                    continue  # set below
                if lname == "date" and skew:
                    value = email.utils.formatdate(time.time() + skew, usegmt=True)
                out.append(f"{name}: {value}".encode("latin-1"))
            if no_body:
                self.wfile.write(b"\r\n".join(out) + b"\r\n\r\n")
                resp.close()
            elif resp.length is not None and not resp.chunked:
                out.append(f"Content-Length: {resp.length}".encode())
                self.wfile.write(b"\r\n".join(out) + b"\r\n\r\n")
                while True:
                    data = resp.read(1 << 20)
                    if not data:
                        break
                    self.wfile.write(data)
            else:
                body = resp.read()
                out.append(f"Content-Length: {len(body)}".encode())
                self.wfile.write(b"\r\n".join(out) + b"\r\n\r\n" + body)
            self.wfile.flush()
            proxy._note_forwarded(status)
        except (ConnectionError, OSError, http.client.HTTPException) as e:
            proxy._log(f"forward error for {method} {target!r}: {e!r}")
            self.close_connection = True
        finally:
            try:
                up.close()
            except OSError:
                pass


_FORGED_ETAG_OPS = ("PutObject", "CopyObject", "HeadObject", "GetObject", "ListObjectsV2")
# An <ETag> element of a ListObjectsV2 or CopyObject body, its value with or without quotes (as &quot; or ").
_ETAG_ELEMENT = re.compile(rb"(<ETag>(?:&quot;|\")?)([^<&\"]*)((?:&quot;|\")?</ETag>)")


def forged_etag(etag) -> str:
    """FaultProxy.forge_etags: the ETag shown for an object whose real ETag is `etag` (quoted or not; quotes
    kept): 32 hex digits that are not the body's MD5, like an SSE-KMS object's."""
    if isinstance(etag, bytes):
        etag = etag.decode("latin-1")
    quoted = etag.startswith('"')
    inner = etag.strip('"')
    forged = hashlib.md5(("sse-kms:" + inner).encode(), usedforsecurity=False).hexdigest()
    return f'"{forged}"' if quoted else forged


class _ThreadingServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256


class FaultProxy:
    """A threaded HTTP/1.1 reverse proxy in front of moto that counts S3 operations and injects faults.

    counts() -> Counter {(METHOD, Operation): n} of every request received (faulted ones included); S3 ops
    as classify_s3 names them, CloudFront ops (path /2020-05-31/...) as classify_cloudfront does, e.g.
    ("POST", "CreateInvalidation"), ("GET", "GetInvalidation"), ("GET", "ListDistributions")
    count(op, method=None) -> int
    reset_counts(); inject(...); clear_faults(); skew_seconds (0 = off); injected (faults served)
    connections_accepted (TCP connections accepted); throttle(rps, burst) -> requests above `rps` a second (a token
    bucket holding at most `burst`) answered 503 SlowDown without forwarding, counted in .throttled; latency_seconds
    (0 = off) -> each request not faulted waits that long before it is forwarded; max_concurrent -> the most
    requests the proxy was handling at once (reset_counts clears it); record_bodies = True -> recorded (RecordedRequest each,
    forwarded requests, .body = the bytes when small) and faulted (requests answered by an injected fault)
    The same proxy can sit in front of S3 and CloudFront calls (moto serves both on one port).
    """

    def __init__(self, upstream: str):
        u = urlsplit(upstream)
        if u.hostname != LOOPBACK:
            raise ValueError("FaultProxy only forwards to 127.0.0.1")
        self.upstream_host = u.hostname
        self.upstream_port = u.port or 80
        self.upstream_timeout = 300.0
        self.skew_seconds = 0
        self.max_skew_seconds = 900
        self._lock = threading.Lock()
        self._counts: collections.Counter = collections.Counter()
        self._faults: list[_Fault] = []
        self._conns: set = set()
        self.connections_accepted = 0
        self.injected = 0
        self.corrupted = 0  # request bodies damaged by a "corrupt" fault
        self.skew_rejections = 0
        self.forwarded = 0
        self.latency_seconds = 0.0
        self._throttle: tuple[float, float] | None = None  # (rate, burst)
        self._tokens = 0.0
        self._tokens_at = 0.0
        self.throttled = 0
        self.concurrent = 0
        self.max_concurrent = 0
        self.requests: collections.deque = collections.deque(maxlen=20000)  # (method, op, target)
        # Opt-in (record_bodies = True): one RecordedRequest per forwarded request, with its headers and the MD5
        # of its raw body bytes as received (chunked framing, if any, included), and the bytes themselves when
        # there are at most record_body_limit of them.
        self.record_bodies = False
        self.record_body_limit = 256 * 1024
        # With record_bodies on, also the requests answered by an injected "error"/"close" fault (never forwarded,
        # so not in `recorded`): one RecordedRequest each.
        self.faulted: collections.deque = collections.deque(maxlen=5000)
        # forge_etags = True stands in for SSE-KMS / SSE-C: every object ETag the client sees (PutObject,
        # CopyObject, HeadObject, GetObject answers and ListObjectsV2 bodies) is replaced by forged_etag(real), a
        # value that is no MD5 of the body but the same for the same stored object; the answers that carry an
        # ETag header also carry x-amz-server-side-encryption: aws:kms, as real SSE-KMS answers do.
        self.forge_etags = False
        self.recorded: collections.deque = collections.deque(maxlen=5000)
        self.log: collections.deque = collections.deque(maxlen=2000)
        self._server: _ThreadingServer | None = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None
        self.endpoint: str | None = None

    def __enter__(self) -> "FaultProxy":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> "FaultProxy":
        handler = type("BoundProxyHandler", (_ProxyHandler,), {"proxy": self})
        self._server = _ThreadingServer((LOOPBACK, 0), handler)
        self.port = self._server.server_address[1]
        self.endpoint = f"http://{LOOPBACK}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"FaultProxy:{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None

    # -- test API ---------------------------------------------------------------------------------------------
    def counts(self) -> collections.Counter:
        with self._lock:
            return collections.Counter(self._counts)

    def count(self, op: str, method: str | None = None) -> int:
        with self._lock:
            return sum(n for (m, o), n in self._counts.items() if o == op and (method is None or m == method))

    def total(self) -> int:
        with self._lock:
            return sum(self._counts.values())

    def reset_counts(self) -> None:
        with self._lock:
            self._counts.clear()
            self.requests.clear()
            self.recorded.clear()
            self.faulted.clear()
            self.injected = 0
            self.corrupted = 0
            self.skew_rejections = 0
            self.forwarded = 0
            self.throttled = 0
            self.max_concurrent = self.concurrent

    def throttle(self, rps: float | None, burst: float | None = None) -> None:
        """Admit at most `rps` requests a second (S3's per-prefix limit, as a token bucket saving up at most
        `burst`, default rps / 10); the others are answered 503 SlowDown without being forwarded. None: off."""
        with self._lock:
            if rps is None:
                self._throttle = None
                return
            b = burst if burst is not None else max(1.0, rps / 10)
            self._throttle = (float(rps), float(b))
            self._tokens = float(b)
            self._tokens_at = time.monotonic()

    def inject(self, status: int = 503, code: str | None = None, count: int = 1, op: str | None = None,
               method: str | None = None, action: str = "error", message: str | None = None,
               header: str | None = None) -> None:
        """Answer the next `count` requests (only those of operation `op` / HTTP `method` / carrying the header
        `header` when given) without
        forwarding them: action "error" = XML error `status`/`code` (S3's shape, or CloudFront's ErrorResponse
        for CloudFront operations); "reset" = TCP RST; "close" = read the request, close without answering.
        Lost responses (the request DOES reach moto and takes effect, the client never sees moto's answer):
        "forward_error" = forward, read moto's answer, then answer the client with the error `status`/`code`;
        "forward_close" = forward, read moto's answer, then close the connection without answering.
        Damaged in transit: "corrupt" = forward with the middle byte of the body flipped (counted in .corrupted),
        moto's answer relayed as is."""
        if action not in ("error", "reset", "close", "forward_error", "forward_close", "corrupt"):
            raise ValueError(action)
        if code is None:
            if op in CLOUDFRONT_OPS:
                code = {503: "ServiceUnavailable"}.get(status, "InternalError")
            else:
                code = {500: "InternalError", 503: "SlowDown"}.get(status, "InternalError")
        with self._lock:
            self._faults.append(_Fault(count, op, method, action, status, code,
                                       message or DEFAULT_MESSAGES.get(code, code), header))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending_faults(self) -> int:
        with self._lock:
            return sum(f.remaining for f in self._faults)

    # -- internals ----------------------------------------------------------------------------------------------
    def _register_conn(self, c):
        with self._lock:
            self._conns.add(c)
            self.connections_accepted += 1

    def _unregister_conn(self, c):
        with self._lock:
            self._conns.discard(c)

    def _record(self, method, op, target):
        with self._lock:
            self._counts[(method, op)] += 1
            self.requests.append((method, op, target))

    def _record_body(self, rec: "RecordedRequest"):
        with self._lock:
            self.recorded.append(rec)

    def _take_fault(self, method, op, headers=None) -> _Fault | None:
        with self._lock:
            for f in self._faults:
                if f.header is not None and (headers is None or headers.get(f.header) is None):
                    continue
                if f.remaining > 0 and (f.op is None or f.op == op) and (f.method is None or f.method == method):
                    f.remaining -= 1
                    self.injected += 1
                    if f.remaining == 0:
                        self._faults.remove(f)
                    return f
        return None

    def _enter(self):
        with self._lock:
            self.concurrent += 1
            self.max_concurrent = max(self.max_concurrent, self.concurrent)

    def _leave(self):
        with self._lock:
            self.concurrent -= 1

    def _admit(self, op) -> bool:
        """Whether the token bucket (throttle) lets this request through now."""
        with self._lock:
            if self._throttle is None:
                return True
            rate, burst = self._throttle
            now = time.monotonic()
            self._tokens = min(burst, self._tokens + (now - self._tokens_at) * rate)
            self._tokens_at = now
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            self.throttled += 1
            return False

    def _note_skew_rejection(self):
        with self._lock:
            self.skew_rejections += 1

    def _note_forwarded(self, status):
        with self._lock:
            self.forwarded += 1

    def _log(self, line: str):
        self.log.append(f"{time.strftime('%H:%M:%S')} {line}")

    def log_text(self) -> str:
        return "\n".join(self.log)


# --------------------------------------------------------------------------------------------------------------
# running sitesync
# --------------------------------------------------------------------------------------------------------------


def sitesync_bin() -> str:
    return os.environ.get("SITESYNC_BIN") or str(DEFAULT_SITESYNC_BIN)


def sitesync_available() -> tuple[bool, str]:
    path = sitesync_bin()
    if not os.path.isabs(path):
        return False, f"SITESYNC_BIN must be an absolute path, got {path!r}"
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        return False, (f"sitesync binary not found at {path} (build it, or set SITESYNC_BIN to its absolute "
                       f"path); skipping the sitesync integration tests")
    return True, path


class RunResult(tuple):
    """(returncode, stdout, stderr) with .seconds, .args and .returncode/.stdout/.stderr."""

    def __new__(cls, returncode, stdout, stderr, seconds, args):
        self = super().__new__(cls, (returncode, stdout, stderr))
        self.seconds = seconds
        self.args = args
        return self

    returncode = property(lambda self: self[0])
    stdout = property(lambda self: self[1])
    stderr = property(lambda self: self[2])

    def describe(self) -> str:
        return (f"$ sitesync {' '.join(self.args)}\nexit {self[0]} after {self.seconds:.2f}s\n"
                f"--- stdout ---\n{tail(self[1], 8000)}\n--- stderr ---\n{tail(self[2], 8000)}")


_PASSTHROUGH_ENV = ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "TSAN_OPTIONS", "MSAN_OPTIONS",
                    "LLVM_PROFILE_FILE", "GCOV_PREFIX", "GCOV_PREFIX_STRIP")

last_run: RunResult | None = None


def start_moto_and_proxy(cls) -> None:
    """For a TestCase's setUpClass: `cls.server` (MotoServer) and `cls.proxy` (FaultProxy in front of it),
    started, each stopped by a class cleanup even when a later step fails."""
    cls.server = MotoServer()
    cls.addClassCleanup(cls.server.cleanup)
    cls.server.start()
    cls.proxy = FaultProxy(cls.server.endpoint)
    cls.addClassCleanup(cls.proxy.stop)
    cls.proxy.start()


def run_sitesync(args, env_extra: dict | None = None, timeout: float = 120.0, *, server: MotoServer | None = None,
                 cwd: str | None = None, home: str | None = None, stdin_data: bytes | None = None) -> RunResult:
    """Run $SITESYNC_BIN with a clean environment; returns (exit code, stdout, stderr) (a RunResult).

    The environment holds only PATH, LANG, HOME / XDG_* (fresh temp dirs, so the machine's ~/.aws is never
    read), AWS_REGION=us-east-1, the server's credentials when `server` is given, sanitizer options, and
    env_extra (a value of None removes the variable). cwd defaults to a fresh empty temp dir, so no stray
    ./sitesync.yaml is picked up.
    """
    global last_run
    args = [str(a) for a in args]
    scratch = tempfile.mkdtemp(prefix="sitesync-run-")
    try:
        home = home or os.path.join(scratch, "home")
        os.makedirs(home, exist_ok=True)
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "HOME": home,
            "XDG_STATE_HOME": os.path.join(home, ".local", "state"),
            "XDG_CONFIG_HOME": os.path.join(home, ".config"),
            "XDG_CACHE_HOME": os.path.join(home, ".cache"),
            "TMPDIR": scratch,
            "AWS_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        for k in _PASSTHROUGH_ENV:
            if k in os.environ:
                env[k] = os.environ[k]
        if server is not None:
            env.update(server.sitesync_env())
        for k, v in (env_extra or {}).items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = str(v)
        run_cwd = cwd or os.path.join(scratch, "cwd")
        os.makedirs(run_cwd, exist_ok=True)
        start = time.monotonic()
        proc = subprocess.Popen([sitesync_bin()] + args, stdin=subprocess.PIPE if stdin_data else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=run_cwd)
        with _live_lock:
            _live_processes.add(proc)
        try:
            out, err = proc.communicate(input=stdin_data, timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate(timeout=30)
            last_run = RunResult(None, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"),
                                 time.monotonic() - start, args)
            raise AssertionError(f"sitesync did not finish within {timeout}s\n{last_run.describe()}")
        finally:
            with _live_lock:
                _live_processes.discard(proc)
        last_run = RunResult(proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"),
                             time.monotonic() - start, args)
        return last_run
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def parse_json_lines(stdout: str) -> list[dict]:
    """Every non-empty stdout line must be one JSON object (CLI.md: nothing else on stdout)."""
    events = []
    for n, line in enumerate(stdout.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise AssertionError(f"stdout line {n} is not JSON ({e}): {line!r}") from None
        if not isinstance(obj, dict):
            raise AssertionError(f"stdout line {n} is not a JSON object: {line!r}")
        events.append(obj)
    return events


def summary_of(events: list[dict]) -> dict:
    if not events or events[-1].get("event") != "summary":
        raise AssertionError(f"last JSON line is not the summary: {events[-1:]}")
    return events[-1]


# --------------------------------------------------------------------------------------------------------------
# sites and buckets
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Symlink:
    target: str  # as written into the link (relative or absolute)


def make_site(root, spec: dict) -> dict:
    """Write spec {relative path: bytes | str | Symlink} under root; returns {relative path: bytes} of regular
    files written (symlinks left out)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    written = {}
    for rel, content in spec.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Symlink):
            if p.is_symlink() or p.exists():
                p.unlink()
            os.symlink(content.target, p)
            continue
        data = content.encode("utf-8") if isinstance(content, str) else bytes(content)
        p.write_bytes(data)
        written[rel] = data
    return written


def generated_site(n_files: int = 60, seed: int = 1234) -> dict:
    """A deterministic Hugo-like site: nested dirs, several types, a few hundred KB, plus dotfiles."""
    rnd = random.Random(seed)
    spec: dict = {
        "index.html": "<!doctype html><title>Home</title><h1>Home</h1>\n",
        "404.html": "<!doctype html><title>Not found</title>\n",
        "robots.txt": "User-agent: *\nAllow: /\n",
        "sitemap.xml": '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"/>\n',
        "index.xml": '<?xml version="1.0"?><rss version="2.0"><channel/></rss>\n',
        "feed.rss": '<?xml version="1.0"?><rss version="2.0"><channel/></rss>\n',
        "favicon.ico": bytes(rnd.getrandbits(8) for _ in range(1150)),
        "css/site.css": "body{margin:0}\n" * 200,
        "js/app.js": "console.log('hi');\n" * 300,
        "data/search.json": json.dumps({"pages": list(range(500))}),
        "img/icon.svg": '<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>\n',
        "fonts/body.woff2": bytes(rnd.getrandbits(8) for _ in range(9000)),
        "downloads/archive.weird-ext": bytes(rnd.getrandbits(8) for _ in range(3000)),
        ".well-known/security.txt": "Contact: mailto:security@example.org\n",
        ".DS_Store": b"\x00\x00\x00\x01Bud1" + bytes(100),
        ".git/config": "[core]\n",
        "blog/.hidden.html": "<p>hidden</p>\n",
        ".env": "SECRET=1\n",
    }
    i = 0
    while sum(1 for k in spec if not _is_dot_path(k)) < n_files:
        section = ["blog", "docs", "docs/guide", "tags/a", "posts/2024/05"][i % 5]
        spec[f"{section}/page-{i:03d}/index.html"] = (
            f"<!doctype html><title>Page {i}</title>\n" + "<p>" + "lorem ipsum " * rnd.randint(200, 800) + "</p>\n")
        if i % 4 == 0:
            spec[f"img/photo-{i:03d}.png"] = b"\x89PNG\r\n\x1a\n" + bytes(rnd.getrandbits(8) for _ in range(
                rnd.randint(2000, 12000)))
        i += 1
    return spec


def _is_dot_path(rel: str) -> bool:
    parts = rel.split("/")
    if parts[0] == ".well-known":
        return any(p.startswith(".") for p in parts[1:])
    return any(p.startswith(".") for p in parts)


def expected_uploads(spec: dict) -> dict:
    """The regular files of a spec that sitesync must upload by default (dotfiles/dot-dirs skipped, except
    .well-known/)."""
    out = {}
    for rel, content in spec.items():
        if isinstance(content, Symlink) or _is_dot_path(rel):
            continue
        out[rel] = content.encode("utf-8") if isinstance(content, str) else bytes(content)
    return out


CONTENT_TYPES = {
    "html": "text/html; charset=utf-8", "css": "text/css; charset=utf-8",
    "js": "text/javascript; charset=utf-8", "png": "image/png", "json": "application/json",
    "svg": "image/svg+xml", "xml": "application/xml", "rss": "application/rss+xml",
    "txt": "text/plain; charset=utf-8", "ico": "image/x-icon", "woff2": "font/woff2",
}


def expected_content_type(key: str) -> str:
    name = key.rsplit("/", 1)[-1]
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return CONTENT_TYPES.get(ext, "application/octet-stream")


def list_bucket(client, bucket: str, prefix: str = "", head: bool = True) -> dict:
    """{key: (size, etag, content_type)} of every object under prefix (content_type via head_object; None when
    head=False)."""
    out = {}
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            out[obj["Key"]] = [obj["Size"], obj["ETag"].strip('"'), None]
    if head:
        for key, row in out.items():
            row[2] = client.head_object(Bucket=bucket, Key=key).get("ContentType")
    return {k: tuple(v) for k, v in out.items()}


def s3_origin_domains(bucket: str, region: str = REGION) -> dict:
    """The S3 origin domain forms of a bucket that `--distribution auto` must recognise."""
    return {"rest-global": f"{bucket}.s3.amazonaws.com", "rest-regional": f"{bucket}.s3.{region}.amazonaws.com",
            "website-dash": f"{bucket}.s3-website-{region}.amazonaws.com",
            "website-dot": f"{bucket}.s3-website.{region}.amazonaws.com"}


def create_distribution(cf, bucket_domain: str, origin_path: str = "", comment: str = "") -> str:
    """Create a CloudFront distribution with one S3 origin (`bucket_domain`, which moto requires to end in
    amazonaws.com; `origin_path` like "/site" or ""); returns its id."""
    origin_id = "origin-" + uuid.uuid4().hex[:8]
    if ".s3-website" in bucket_domain:
        origin = {"Id": origin_id, "DomainName": bucket_domain, "OriginPath": origin_path,
                  "CustomOriginConfig": {"HTTPPort": 80, "HTTPSPort": 443, "OriginProtocolPolicy": "http-only"}}
    else:
        origin = {"Id": origin_id, "DomainName": bucket_domain, "OriginPath": origin_path,
                  "S3OriginConfig": {"OriginAccessIdentity": ""}}
    config = {
        "CallerReference": "harness-" + uuid.uuid4().hex,
        "Comment": comment,
        "Enabled": True,
        "Origins": {"Quantity": 1, "Items": [origin]},
        "DefaultCacheBehavior": {"TargetOriginId": origin_id, "ViewerProtocolPolicy": "redirect-to-https",
                                 "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6"},  # CachingOptimized
    }
    return cf.create_distribution(DistributionConfig=config)["Distribution"]["Id"]


def invalidations(cf, distribution_id: str) -> list[dict]:
    """Every invalidation of a distribution, oldest first (moto lists them in creation order), each as
    {"Id", "Status", "CallerReference", "Paths": [as submitted, order and duplicates kept]}."""
    out = []
    marker = None
    while True:
        kw = {"DistributionId": distribution_id, "MaxItems": "1000"}
        if marker:
            kw["Marker"] = marker
        page = cf.list_invalidations(**kw)["InvalidationList"]
        for item in page.get("Items") or []:
            inv = cf.get_invalidation(DistributionId=distribution_id, Id=item["Id"])["Invalidation"]
            batch = inv["InvalidationBatch"]
            out.append({"Id": inv["Id"], "Status": inv["Status"], "CallerReference": batch.get("CallerReference"),
                        "Paths": list(batch["Paths"].get("Items") or [])})
        marker = page.get("NextMarker")
        if not page.get("IsTruncated") or not marker:
            break
    return out


def get_bytes(client, bucket: str, key: str) -> bytes:
    return client.get_object(Bucket=bucket, Key=key)["Body"].read()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_bucket_seq = 0
_bucket_lock = threading.Lock()


def new_bucket_name(tag: str = "t") -> str:
    global _bucket_seq
    with _bucket_lock:
        _bucket_seq += 1
        n = _bucket_seq
    tag = "".join(c for c in tag.lower() if c.isalnum() or c == "-")[:30].strip("-") or "t"
    return f"ss-{tag}-{n}-{uuid.uuid4().hex[:6]}"


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.05, what: str = "condition"):
    """Poll predicate until truthy (bounded by time and attempts); returns its value or raises."""
    deadline = time.monotonic() + timeout
    attempts = 0
    while True:
        attempts += 1
        v = predicate()
        if v:
            return v
        if time.monotonic() > deadline or attempts > timeout / interval + 10:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# Handy in test tearDown: did the current test fail? (Python 3.11 unittest internals, with a safe default.)
def test_failed(testcase) -> bool:
    outcome = getattr(testcase, "_outcome", None)
    return outcome is not None and not getattr(outcome, "success", True)


__all__ = [
    "MotoServer", "FaultProxy", "run_sitesync", "parse_json_lines", "summary_of", "make_site", "list_bucket",
    "Symlink", "generated_site", "expected_uploads", "expected_content_type", "get_bytes", "sha256_hex",
    "new_bucket_name", "sitesync_available", "sitesync_bin", "free_loopback_port", "wait_until", "test_failed",
    "classify_s3", "RunResult", "REGION", "REPO_ROOT", "RecordedRequest",
    "classify_cloudfront", "classify_request", "is_cloudfront_request", "cloudfront_error_xml", "CLOUDFRONT_OPS",
    "create_distribution", "invalidations", "s3_origin_domains",
]
