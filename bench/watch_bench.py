#!/usr/bin/env python3
"""sitesync watch vs the inotifywait + `aws s3 sync` loop: save-to-visible latency, requests per edit, and
memory over many batches (python3 stdlib + boto3; moto for CloudFront). Everything on 127.0.0.1.

    bench/watch_bench.py                          # all three parts, medium site, 20 ms, 30 edits (~12 min)
    bench/watch_bench.py --latency 20,0           # parts 1-2 at 20 ms and again at 0 ms
    bench/watch_bench.py --parts latency,memory   # leave out the peer loop
    bench/watch_bench.py --edits 10 --mem-edits 300 --size small   # quick check

What it does (see bench/WATCH.md):
  setup    generates the site with gen_site.py (seeded) into --work, starts the sink S3 server (servers.py) and
           moto_server for CloudFront behind a small latency + counting proxy (this file; the sink has no
           CloudFront), creates the bucket and a distribution, publishes the site once with `sitesync sync`.
  latency  `sitesync watch SITE s3://B --endpoint S3 --distribution ID --cloudfront-endpoint PROXY --json`
           (default debounce 200 ms); after the batch-0 summary, N edits of one post page each, ~1 s apart.
           Latency = from the write (after close) to the batch's "invalidate" line on stdout (CloudFront
           accepted the invalidation); requests per edit from the counters (reset before each edit, read ~1 s
           after the write, just before the next one).
  peer     the loop `inotifywait -m -r -e close_write,moved_to,delete --format '%w%f' SITE | while read f; do
           aws s3 sync --size-only SITE s3://B --endpoint-url S3; done` in bash (an `echo` after each aws run
           marks its end). Latency = from the write to the edited object holding its new size in the bucket
           (HeadObject every 20 ms; these HEADs are ours and are subtracted from the counts), and to the end of
           the aws run. The next edit waits for the loop to be idle (else the loop's backlog would grow).
  memory   `sitesync watch --debounce 20` (+ watch.max_delay_ms from a config file) against the sink at 0 ms:
           M edits (default 2000), each written as soon as the previous batch's summary arrived; VmRSS of the
           process from /proc/PID/status after batch 100, 500, 1000, 2000.
Every edit changes the page's size (a growing comment), so `--size-only` sees it.

Output: a markdown table on stdout and in bench/out/watch-<timestamp>.md, the raw samples in
bench/out/watch-<timestamp>.json. Every process started here is stopped by its PID (the peer loop by its
process group, which this script created) in `finally`, also on SIGTERM/SIGINT.
"""
import argparse
import http.client
import http.server
import json
import math
import os
import platform
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
sys.path.insert(0, BENCH)
import gen_site  # noqa: E402
import servers  # noqa: E402

BUCKET = "watch-bench"


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def now():
    return time.monotonic()


# ---------------------------------------------------------------------------------------------------------
# CloudFront: a latency + counting proxy in front of moto_server (the sink has no CloudFront API)

class CloudFrontProxy:
    """Forwards every request to moto after `latency_ms` (like the sink: a fixed delay per request) and counts
    requests by CloudFront operation. Serves GET /_bench/stats too, for symmetry (not used by sitesync)."""

    def __init__(self, upstream_port, latency_ms=0):
        self.upstream_port = upstream_port
        self.latency_ms = latency_ms
        self.lock = threading.Lock()
        self.ops = {}
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                op = proxy.classify(self.command, self.path)
                with proxy.lock:
                    proxy.ops[op] = proxy.ops.get(op, 0) + 1
                    latency = proxy.latency_ms
                if latency:
                    time.sleep(latency / 1000)
                conn = getattr(self.server.local, "conn", None)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("connection", "keep-alive", "expect", "transfer-encoding")}
                for attempt in (0, 1):
                    try:
                        if conn is None:
                            conn = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=60)
                            self.server.local.conn = conn
                        conn.request(self.command, self.path, body=body, headers=headers)
                        r = conn.getresponse()
                        data = r.read()
                        break
                    except (OSError, http.client.HTTPException):
                        conn = None
                        self.server.local.conn = None
                        if attempt:
                            raise
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() not in ("connection", "keep-alive", "transfer-encoding", "content-length",
                                         "server", "date"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.local = threading.local()
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @staticmethod
    def classify(method, path):
        p = path.split("?", 1)[0]
        if re.search(r"/distribution/[^/]+/invalidation$", p):
            return "CreateInvalidation" if method == "POST" else "ListInvalidations"
        if re.search(r"/distribution/[^/]+/invalidation/[^/]+$", p):
            return "GetInvalidation"
        if re.search(r"/distribution/?$", p):
            return "ListDistributions" if method == "GET" else "CreateDistribution"
        return f"{method} {p}"

    def stats(self):
        with self.lock:
            return dict(self.ops)

    def reset(self):
        with self.lock:
            self.ops = {}

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def cloudfront_client(url):
    import boto3
    return boto3.client("cloudfront", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id=servers.CREDS[0], aws_secret_access_key=servers.CREDS[1])


def create_distribution(cf, bucket):
    origin_id = "origin-" + uuid.uuid4().hex[:8]
    config = {
        "CallerReference": "watch-bench-" + uuid.uuid4().hex,
        "Comment": "watch bench",
        "Enabled": True,
        "Origins": {"Quantity": 1, "Items": [{"Id": origin_id, "DomainName": f"{bucket}.s3.amazonaws.com",
                                               "OriginPath": "", "S3OriginConfig": {"OriginAccessIdentity": ""}}]},
        "DefaultCacheBehavior": {"TargetOriginId": origin_id, "ViewerProtocolPolicy": "redirect-to-https",
                                 "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6"},
    }
    return cf.create_distribution(DistributionConfig=config)["Distribution"]["Id"]


# ---------------------------------------------------------------------------------------------------------
# processes

class Procs:
    """Every process this script starts, stopped by its own PID (or process group it leads) in stop_all()."""

    def __init__(self):
        self.items = []  # (name, Popen, stop_signal, group)

    def start(self, name, argv, stop_signal=signal.SIGTERM, group=False, **kw):
        p = subprocess.Popen(argv, start_new_session=True, **kw)
        self.items.append((name, p, stop_signal, group))
        return p

    def stop(self, p, timeout=15):
        for i, (name, q, sig, group) in enumerate(self.items):
            if q is p:
                break
        else:
            return None
        if p.poll() is None:
            try:
                if group:
                    os.killpg(p.pid, sig)  # the group this script created for it (start_new_session)
                else:
                    os.kill(p.pid, sig)
                p.wait(timeout=timeout)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    if group:
                        os.killpg(p.pid, signal.SIGKILL)
                    else:
                        os.kill(p.pid, signal.SIGKILL)
                    p.wait(timeout=5)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    pass
        elif group:
            try:  # the leader is gone, but members of its group may not be
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        self.items.pop(i)
        return p.returncode

    def stop_all(self):
        for _, p, _, _ in list(reversed(self.items)):
            self.stop(p)


class LineReader:
    """Reads a pipe in a thread; keeps (monotonic arrival time, line) pairs; wait_for() blocks on a predicate."""

    def __init__(self, pipe, parse_json=False, tee=None):
        self.lines = []
        self.cond = threading.Condition()
        self.parse_json = parse_json
        self.tee = tee
        self.closed = False
        self.thread = threading.Thread(target=self._run, args=(pipe,), daemon=True)
        self.thread.start()

    def _run(self, pipe):
        for raw in iter(pipe.readline, b""):
            t = now()
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if self.tee:
                self.tee.write(f"{t:.4f} {line}\n")
                self.tee.flush()
            item = line
            if self.parse_json:
                try:
                    item = json.loads(line)
                except ValueError:
                    item = {"event": "unparsed", "line": line}
            with self.cond:
                self.lines.append((t, item))
                self.cond.notify_all()
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def wait_for(self, pred, start=0, timeout=30.0):
        """First index >= start whose (t, item) satisfies pred, or None after timeout / end of stream."""
        deadline = now() + timeout
        i = start
        with self.cond:
            while True:
                while i < len(self.lines):
                    if pred(*self.lines[i]):
                        return i
                    i += 1
                left = deadline - now()
                if left <= 0 or self.closed:
                    return None
                self.cond.wait(left)

    def __len__(self):
        with self.cond:
            return len(self.lines)


def rss_kb(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1])
    return out


# ---------------------------------------------------------------------------------------------------------
# edits

class Editor:
    """Rewrites post pages like a generator does (open with truncation, write, close); every edit of a page
    makes it longer than its previous version, so its size always changes."""

    def __init__(self, site, seed):
        pages = [k for k in gen_site.walk(site) if k.startswith("posts/") and k.endswith("/index.html")
                 and k.count("/") == 2]
        rng = random.Random(f"{seed}/watch")
        rng.shuffle(pages)
        self.site = site
        self.pages = pages
        self.next = 0
        self.count = {}
        self.original = {}

    def pick(self, pool=None):
        """The next page (round robin over the first `pool` pages, or over all)."""
        n = len(self.pages) if pool is None else min(pool, len(self.pages))
        key = self.pages[self.next % n]
        self.next += 1
        return key

    def edit(self, key):
        """Rewrites `key`; returns (monotonic time after close, new size)."""
        path = os.path.join(self.site, key)
        if key not in self.original:
            with open(path, "rb") as f:
                self.original[key] = f.read()
        k = self.count.get(key, 0) + 1
        self.count[key] = k
        data = self.original[key]
        i = data.rfind(b"</main>")
        if i < 0:
            i = len(data)
        extra = f"<!-- edit {k} {'.' * k} -->\n".encode()
        body = data[:i] + extra + data[i:]
        with open(path, "wb") as f:
            f.write(body)
        return now(), len(body)


# ---------------------------------------------------------------------------------------------------------
# stats helpers

def pct(values, p):
    """Nearest-rank percentile (p in 0..100): the smallest value with at least p% of the samples <= it."""
    if not values:
        return float("nan")
    s = sorted(values)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def dist(values):
    if not values:
        return {"n": 0}
    return {"n": len(values), "median": statistics.median(values), "p95": pct(values, 95), "max": max(values),
            "min": min(values), "mean": statistics.fmean(values)}


def sum_ops(list_of_ops):
    total = {}
    for ops in list_of_ops:
        for k, v in ops.items():
            total[k] = total.get(k, 0) + v
    return total


def per_edit(list_of_ops):
    n = len(list_of_ops) or 1
    return {k: v / n for k, v in sorted(sum_ops(list_of_ops).items())}


# ---------------------------------------------------------------------------------------------------------
# the bench

class Bench:
    def __init__(self, a):
        self.a = a
        self.procs = Procs()
        self.sink = None
        self.moto = None
        self.cf = None
        self.results = {"meta": {}, "latency": [], "peer": [], "memory": None}
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.stamp = stamp
        self.work = os.path.join(a.work, f"run-{stamp}")
        os.makedirs(self.work, exist_ok=True)
        self.site = os.path.join(self.work, "site")
        self.state = os.path.join(self.work, "state")  # XDG_STATE_HOME: sitesync's invalidation journal
        os.makedirs(self.state, exist_ok=True)
        aws_config = os.path.join(self.work, "aws-config")
        with open(aws_config, "w") as f:
            f.write("[default]\nregion = us-east-1\n")
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("AWS_") and k.lower() not in ("http_proxy", "https_proxy", "all_proxy",
                                                                 "no_proxy")}
        env.update({"AWS_ACCESS_KEY_ID": servers.CREDS[0], "AWS_SECRET_ACCESS_KEY": servers.CREDS[1],
                    "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1", "AWS_CONFIG_FILE": aws_config,
                    "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_EC2_METADATA_DISABLED": "true",
                    "AWS_PAGER": "", "XDG_STATE_HOME": self.state})
        self.env = env

    # -- setup ------------------------------------------------------------------------------------------
    def setup(self):
        a = self.a
        t = now()
        log(f"==> generating the {a.size} site (seed {a.seed}) in {self.site}")
        gen_site.generate(self.site, a.size, a.seed)
        files = gen_site.walk(self.site)
        nbytes = sum(os.path.getsize(os.path.join(self.site, f)) for f in files)
        dirs = sum(1 for _ in os.walk(self.site))
        log(f"    {len(files)} files, {nbytes / 1e6:.0f} MB, {dirs} folders ({now() - t:.1f} s)")
        self.editor = Editor(self.site, a.seed)

        log("==> starting the sink S3 server and moto (CloudFront)")
        self.sink = servers.Server("sink", latency_ms=self.a.latency[0], log_dir=self.work)
        self.moto = servers.Server("moto", log_dir=self.work)
        self.cf = CloudFrontProxy(self.moto.port, latency_ms=self.cf_latency(self.a.latency[0]))
        s3 = servers.boto3_client(self.sink.url)
        s3.create_bucket(Bucket=BUCKET)
        self.dist = create_distribution(cloudfront_client(self.moto.url), BUCKET)
        log(f"    sink {self.sink.url} (pid {self.sink.pid}), moto {self.moto.url} (pid {self.moto.pid}), "
            f"CloudFront proxy {self.cf.url}, distribution {self.dist}")

        log("==> initial publication: sitesync sync")
        self.sink.reset()
        t = now()
        r = subprocess.run([a.sitesync, "sync", self.site, f"s3://{BUCKET}", "--endpoint", self.sink.url, "--json"],
                           env=self.env, cwd=self.work, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           timeout=900)
        wall = now() - t
        summary = json.loads(r.stdout.decode().strip().splitlines()[-1])
        st = self.sink.stats()
        log(f"    exit {r.returncode}, {summary.get('uploaded')} uploaded in {wall:.1f} s, ops {st['ops']}")
        if r.returncode != 0:
            raise RuntimeError("initial publication failed")
        self.results["meta"].update({
            "site": {"size": a.size, "seed": a.seed, "files": len(files), "bytes": nbytes, "folders": dirs},
            "initial_publication": {"seconds": round(wall, 2), "uploaded": summary.get("uploaded"),
                                    "ops": st["ops"]},
        })

    def cf_latency(self, s3_latency):
        return s3_latency if self.a.cf_latency is None else self.a.cf_latency

    def set_latency(self, ms):
        self.sink.set_latency(ms)
        self.cf.latency_ms = self.cf_latency(ms)

    def start_watch(self, extra, tag):
        argv = [self.a.sitesync, "watch", self.site, f"s3://{BUCKET}", "--endpoint", self.sink.url,
                "--distribution", self.dist, "--cloudfront-endpoint", self.cf.url, "--json"] + extra
        err = open(os.path.join(self.work, f"watch-{tag}.stderr"), "wb")
        tee = open(os.path.join(self.work, f"watch-{tag}.stdout"), "w")
        p = self.procs.start("sitesync watch", argv, stop_signal=signal.SIGINT, env=self.env, cwd=self.work,
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err)
        err.close()
        reader = LineReader(p.stdout, parse_json=True, tee=tee)
        i = reader.wait_for(lambda t, e: e.get("event") == "summary" and e.get("batch") == 0, timeout=300)
        if i is None:
            self.procs.stop(p)
            raise RuntimeError(f"sitesync watch: no batch-0 summary (see {self.work}/watch-{tag}.stderr)")
        log(f"    batch 0: {reader.lines[i][1]}")
        return p, reader, argv

    def stop_watch(self, p):
        rc = self.procs.stop(p, timeout=30)
        if rc not in (0, None):
            log(f"    sitesync watch exited {rc}")
        return rc

    # -- part: sitesync watch latency ---------------------------------------------------------------------
    def part_latency(self, latency_ms):
        a = self.a
        log(f"==> sitesync watch, debounce {a.debounce} ms, sink {latency_ms} ms, {a.edits} edits ~{a.spacing} s apart")
        self.set_latency(latency_ms)
        extra = [] if a.debounce == 200 else ["--debounce", str(a.debounce)]
        p, rd, argv = self.start_watch(extra, f"latency-{latency_ms}ms")
        edits = []
        try:
            time.sleep(1.0)  # let the watcher settle after batch 0
            for n in range(a.edits):
                self.sink.reset()
                self.cf.reset()
                start = len(rd)
                key = self.editor.pick()
                t_w, size = self.editor.edit(key)
                i_inv = rd.wait_for(lambda t, e: t >= t_w and e.get("event") == "invalidate", start, timeout=20)
                i_sum = rd.wait_for(lambda t, e: t >= t_w and e.get("event") == "summary", start, timeout=20)
                # the window of this edit ends just before the next one
                time.sleep(max(0.0, t_w + a.spacing - now()))
                s3ops = self.sink.stats()["ops"]
                cfops = self.cf.stats()
                with rd.cond:
                    window = rd.lines[start:]
                batches = [e for t, e in window if e.get("event") == "summary"]
                uploads = [e.get("key") for t, e in window if e.get("event") == "upload"]
                errors = [e for t, e in window if e.get("event") in ("error", "unparsed")]
                rec = {"key": key, "size": size,
                       "to_invalidate": None if i_inv is None else rd.lines[i_inv][0] - t_w,
                       "to_summary": None if i_sum is None else rd.lines[i_sum][0] - t_w,
                       "summary_seconds": None if i_sum is None else rd.lines[i_sum][1].get("seconds"),
                       "invalidation_paths": None if i_sum is None else rd.lines[i_sum][1].get("invalidation_paths"),
                       "batches": len(batches), "uploads": uploads, "errors": errors, "s3_ops": s3ops,
                       "cf_ops": cfops}
                edits.append(rec)
                inv = rec["to_invalidate"]
                log(f"    edit {n + 1:2d} {key}: invalidate {'-' if inv is None else f'{inv * 1000:.0f} ms'}, "
                    f"{len(batches)} batch(es), S3 {s3ops} CF {cfops}"
                    + (f" ERRORS {errors}" if errors else ""))
        finally:
            rc = self.stop_watch(p)
        problems = self.check_bucket()
        res = {"latency_ms": latency_ms, "cf_latency_ms": self.cf_latency(latency_ms), "debounce_ms": a.debounce,
               "argv": argv, "edits": edits, "exit_code": rc, "problems": problems}
        self.results["latency"].append(res)
        return res

    # -- part: the peer loop ------------------------------------------------------------------------------
    def part_peer(self, latency_ms):
        a = self.a
        log(f"==> peer loop (inotifywait | while read; aws s3 sync --size-only), sink {latency_ms} ms, {a.edits} edits")
        self.set_latency(latency_ms)
        tag = f"peer-{latency_ms}ms"
        ino_log = os.path.join(self.work, f"{tag}.inotifywait.log")
        aws_log = os.path.join(self.work, f"{tag}.aws.log")
        script = ('inotifywait -m -r -e close_write,moved_to,delete --format \'%w%f\' "$SITE" 2>"$INO_LOG" | '
                  'while read f; do '
                  '/usr/bin/aws s3 sync --size-only "$SITE" "s3://$BUCKET" --endpoint-url "$URL" >>"$AWS_LOG" 2>&1; '
                  'echo "done $? $f"; '
                  'done')
        env = dict(self.env, SITE=self.site, BUCKET=BUCKET, URL=self.sink.url, INO_LOG=ino_log, AWS_LOG=aws_log)
        p = self.procs.start("peer loop", ["bash", "-c", script], group=True, env=env, cwd=self.work,
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        rd = LineReader(p.stdout, tee=open(os.path.join(self.work, f"{tag}.stdout"), "w"))
        s3 = servers.boto3_client(self.sink.url)
        edits = []
        try:
            deadline = now() + 120
            while "Watches established" not in (open(ino_log).read() if os.path.exists(ino_log) else ""):
                if now() > deadline or p.poll() is not None:
                    raise RuntimeError(f"inotifywait did not start; see {ino_log}")
                time.sleep(0.1)
            time.sleep(1.0)
            for n in range(a.edits):
                self.sink.reset()
                start = len(rd)
                key = self.editor.pick()
                t_w, size = self.editor.edit(key)
                heads = 0
                t_vis = None
                while now() - t_w < 60:
                    heads += 1
                    try:
                        h = s3.head_object(Bucket=BUCKET, Key=key)
                        if h["ContentLength"] == size:
                            t_vis = now()
                            break
                    except Exception:  # noqa: BLE001 (a failed HEAD is a miss; keep polling)
                        pass
                    time.sleep(0.02)
                i_done = rd.wait_for(lambda t, line: t >= t_w and line.startswith("done "), start, timeout=60)
                t_done = None if i_done is None else rd.lines[i_done][0]
                # idle: no aws run for 0.3 s after the last one ended (a stray extra event would start another)
                while True:
                    n_lines = len(rd)
                    time.sleep(0.3)
                    if len(rd) == n_lines:
                        break
                s3ops = dict(self.sink.stats()["ops"])
                if "HeadObject" in s3ops:
                    s3ops["HeadObject"] -= heads
                    if s3ops["HeadObject"] <= 0:
                        s3ops.pop("HeadObject")
                with rd.cond:
                    runs = [line for t, line in rd.lines[start:] if line.startswith("done ")]
                rec = {"key": key, "size": size, "to_visible": None if t_vis is None else t_vis - t_w,
                       "to_aws_done": None if t_done is None else t_done - t_w, "aws_runs": len(runs),
                       "aws_exit": [r.split()[1] for r in runs], "our_heads": heads, "s3_ops": s3ops}
                edits.append(rec)
                log(f"    edit {n + 1:2d} {key}: visible {'-' if t_vis is None else f'{(t_vis - t_w) * 1000:.0f} ms'}, "
                    f"aws done {'-' if t_done is None else f'{(t_done - t_w) * 1000:.0f} ms'}, {len(runs)} run(s), "
                    f"S3 {s3ops}")
                time.sleep(max(0.0, t_w + a.spacing - now()))
        finally:
            self.procs.stop(p)
        problems = self.check_bucket()
        res = {"latency_ms": latency_ms, "script": script, "edits": edits, "problems": problems}
        self.results["peer"].append(res)
        return res

    # -- part: memory over many batches -------------------------------------------------------------------
    def part_memory(self):
        a = self.a
        log(f"==> memory: sitesync watch --debounce {a.mem_debounce} (max_delay_ms {a.mem_max_delay}), sink 0 ms, "
            f"{a.mem_edits} edits")
        self.set_latency(0)
        config = os.path.join(self.work, "watch-memory.yaml")
        with open(config, "w") as f:
            f.write(f"watch:\n  debounce_ms: {a.mem_debounce}\n  max_delay_ms: {a.mem_max_delay}\n")
        p, rd, argv = self.start_watch(["--debounce", str(a.mem_debounce), "-c", config], "memory")
        samples = [{"batch": 0, **rss_kb(p.pid)}]
        marks = sorted(set(a.mem_samples + [a.mem_edits]))
        self.sink.reset()
        self.cf.reset()
        last_batch = 0
        waits = []
        timeouts = 0
        t0 = now()
        t_end = t0 + a.mem_timeout
        pos = len(rd)
        try:
            time.sleep(0.5)
            for n in range(1, a.mem_edits + 1):
                if now() > t_end:
                    log(f"    time limit ({a.mem_timeout} s) reached after {n - 1} edits")
                    break
                key = self.editor.pick(pool=a.mem_pages)
                t_w, _ = self.editor.edit(key)
                i = rd.wait_for(lambda t, e: e.get("event") == "summary" and e.get("batch", 0) > last_batch,
                                pos, timeout=10)
                if i is None:
                    timeouts += 1
                    if p.poll() is not None:
                        raise RuntimeError(f"sitesync watch exited with {p.returncode}")
                    continue
                t_s, e = rd.lines[i]
                pos = i + 1
                last_batch = e["batch"]
                waits.append(t_s - t_w)
                while marks and last_batch >= marks[0]:
                    s = {"batch": last_batch, "edits": n, "elapsed_s": round(now() - t0, 1), **rss_kb(p.pid)}
                    samples.append(s)
                    log(f"    after batch {last_batch} (edit {n}): VmRSS {s['VmRSS'] / 1024:.1f} MB, "
                        f"VmHWM {s['VmHWM'] / 1024:.1f} MB, {s['elapsed_s']} s")
                    marks.pop(0)
                if a.mem_interval:
                    time.sleep(max(0.0, t_w + a.mem_interval / 1000 - now()))
            time.sleep(0.5)
            s3ops = self.sink.stats()["ops"]
            cfops = self.cf.stats()
            final = rss_kb(p.pid)
        finally:
            rc = self.stop_watch(p)
        with rd.cond:
            events = [e for t, e in rd.lines]
        errors = [e for e in events if e.get("event") in ("error", "unparsed")]
        batches = [e for e in events if e.get("event") == "summary" and e.get("batch", 0) > 0]
        res = {"argv": argv, "config": open(config).read(), "edits": a.mem_edits, "batches": len(batches),
               "uploads": sum(e.get("uploaded", 0) for e in batches), "timeouts": timeouts,
               "seconds": round(now() - t0, 1), "samples": samples, "final": final, "s3_ops": s3ops,
               "cf_ops": cfops, "errors": errors[:20], "n_errors": len(errors), "exit_code": rc,
               "edit_to_summary": dist(waits)}
        self.results["memory"] = res
        return res

    # -- checks -------------------------------------------------------------------------------------------
    def check_bucket(self):
        """Every edited page has its local size in the bucket."""
        remote = {e["key"]: e["size"] for e in self.sink.dump(BUCKET)}
        bad = []
        for key in self.editor.count:
            size = os.path.getsize(os.path.join(self.site, key))
            if remote.get(key) != size:
                bad.append(f"{key}: local {size}, bucket {remote.get(key)}")
        return bad

    def stop(self):
        self.procs.stop_all()
        if self.cf:
            self.cf.stop()
        for s in (self.moto, self.sink):
            if s:
                s.stop()


# ---------------------------------------------------------------------------------------------------------
# report

def ms(x):
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x * 1000:.0f}"


def fmt_ops(ops):
    if not ops:
        return "none"
    order = ["PutObject", "ListObjectsV2", "ListObjects", "HeadObject", "CreateInvalidation"]
    keys = [k for k in order if k in ops] + sorted(k for k in ops if k not in order)
    return ", ".join(f"{k} {ops[k]:g}" if isinstance(ops[k], float) else f"{k} {ops[k]}" for k in keys)


def markdown(res):
    meta = res["meta"]
    out = []
    site = meta.get("site", {})
    out.append(f"# sitesync watch vs inotifywait + aws s3 sync ({meta['started']})")
    out.append("")
    out.append(f"Site: {site.get('size')} (seed {site.get('seed')}): {site.get('files')} files, "
               f"{site.get('bytes', 0) / 1e6:.0f} MB, {site.get('folders')} folders. Server: bench sink "
               f"(fixed latency per request), CloudFront: moto_server behind a latency proxy. "
               f"Machine: {meta['machine']}; load average at start {meta['loadavg_start']}, at end "
               f"{meta.get('loadavg_end', '?')}. sitesync {meta['sitesync_version']} ({meta['sitesync']}); "
               f"{meta['aws_version']}.")
    ip = meta.get("initial_publication")
    if ip:
        out.append(f"Initial publication (`sitesync sync`, sink at {meta['latency'][0]} ms): {ip['uploaded']} files "
                   f"in {ip['seconds']} s.")
    out.append("")
    by_lat = {}
    for r in res["latency"]:
        by_lat.setdefault(r["latency_ms"], {})["sitesync"] = r
    for r in res["peer"]:
        by_lat.setdefault(r["latency_ms"], {})["peer"] = r
    for lat, both in by_lat.items():
        s, p = both.get("sitesync"), both.get("peer")
        out.append(f"## Save to visible, S3 latency {lat} ms per request")
        out.append("")
        cols = []
        if s:
            cols.append(f"sitesync watch (debounce {s['debounce_ms']} ms)")
        if p:
            cols.append("peer loop: inotifywait + aws s3 sync --size-only")
        out.append("| | " + " | ".join(cols) + " |")
        out.append("|---|" + "---|" * len(cols))
        rows = []

        def row(name, sv, pv):
            vals = []
            if s:
                vals.append(sv)
            if p:
                vals.append(pv)
            rows.append(f"| {name} | " + " | ".join(vals) + " |")

        sd = dist([e["to_invalidate"] for e in s["edits"] if e["to_invalidate"] is not None]) if s else {}
        pvis = dist([e["to_visible"] for e in p["edits"] if e["to_visible"] is not None]) if p else {}
        pdone = dist([e["to_aws_done"] for e in p["edits"] if e["to_aws_done"] is not None]) if p else {}
        row("edits (one page each, size changes)", str(len(s["edits"])) if s else "",
            str(len(p["edits"])) if p else "")
        row("measured until", "the batch's `invalidate` line (CloudFront accepted; the PUT is done before)",
            "the edited object has its new size in the bucket (HEAD every 20 ms)")
        for k in ("median", "p95", "max"):
            row(f"save → visible {k} (ms)", ms(sd.get(k)), ms(pvis.get(k)))
        row("min (ms)", ms(sd.get("min")), ms(pvis.get("min")))
        if p:
            row("save → end of the aws run, median / p95 / max (ms)", "-",
                f"{ms(pdone.get('median'))} / {ms(pdone.get('p95'))} / {ms(pdone.get('max'))}")
        if s:
            ss = dist([e["summary_seconds"] for e in s["edits"] if e["summary_seconds"] is not None])
            sum_d = dist([e["to_summary"] for e in s["edits"] if e["to_summary"] is not None])
            row("save → summary line, median / p95 (ms); summary `seconds` (first change seen → done) median",
                f"{ms(sum_d.get('median'))} / {ms(sum_d.get('p95'))}; {ms(ss.get('median'))}", "-")
        s_ops = per_edit([dict(e["s3_ops"], **e["cf_ops"]) for e in s["edits"]]) if s else {}
        p_ops = per_edit([e["s3_ops"] for e in p["edits"]]) if p else {}
        s_tot = sum(s_ops.values()) if s else 0
        p_tot = sum(p_ops.values()) if p else 0
        row("requests per edit, total", f"{s_tot:g}", f"{p_tot:g}")
        row("requests per edit, by op (mean)", fmt_ops(s_ops), fmt_ops(p_ops))
        if s:
            hist = {}
            for e in s["edits"]:
                k = fmt_ops(dict(e["s3_ops"], **e["cf_ops"]))
                hist[k] = hist.get(k, 0) + 1
            s_hist = "; ".join(f"{v}× [{k}]" for k, v in sorted(hist.items(), key=lambda kv: -kv[1]))
        if p:
            hist = {}
            for e in p["edits"]:
                k = fmt_ops(e["s3_ops"])
                hist[k] = hist.get(k, 0) + 1
            p_hist = "; ".join(f"{v}× [{k}]" for k, v in sorted(hist.items(), key=lambda kv: -kv[1]))
        row("requests per edit, as seen", s_hist if s else "", p_hist if p else "")
        if s:
            n_inv = sum(e["cf_ops"].get("CreateInvalidation", 0) for e in s["edits"])
            paths = sorted({e["invalidation_paths"] for e in s["edits"] if e["invalidation_paths"] is not None})
            inv_s = f"{n_inv} CreateInvalidation for {len(s['edits'])} edits ({'/'.join(map(str, paths))} paths each)"
        row("CloudFront invalidations", inv_s if s else "",
            "none: the loop invalidates nothing (the CDN keeps serving the old page until its TTL)")
        if s:
            nb = [e["batches"] for e in s["edits"]]
            row("batches per edit", f"{min(nb)}-{max(nb)}" if min(nb) != max(nb) else str(nb[0]), "-")
        if p:
            nr = [e["aws_runs"] for e in p["edits"]]
            row("aws runs per edit", "-", f"{min(nr)}-{max(nr)}" if min(nr) != max(nr) else str(nr[0]))
        row("problems (bucket vs local, errors)",
            (", ".join(s["problems"]) or "none") + (f"; {sum(len(e['errors']) for e in s['edits'])} error events"
                                                   if s and any(e["errors"] for e in s["edits"]) else "")
            if s else "", (", ".join(p["problems"]) or "none") if p else "")
        out.extend(rows)
        out.append("")
        if s:
            out.append(f"sitesync per-edit save → invalidate (ms): "
                       + " ".join(ms(e["to_invalidate"]) for e in s["edits"]))
        if p:
            out.append(f"peer per-edit save → visible (ms): " + " ".join(ms(e["to_visible"]) for e in p["edits"]))
        out.append("")
    m = res.get("memory")
    if m:
        out.append(f"## Memory over many batches (sink at 0 ms; `--debounce {res['meta']['mem_debounce']}`, "
                   f"watch.max_delay_ms {res['meta']['mem_max_delay']})")
        out.append("")
        out.append("| after batch | edits written | elapsed (s) | VmRSS (MB) | VmHWM (MB) |")
        out.append("|---|---|---|---|---|")
        for smp in m["samples"]:
            out.append(f"| {smp['batch']} | {smp.get('edits', 0)} | {smp.get('elapsed_s', 0)} | "
                       f"{smp['VmRSS'] / 1024:.1f} | {smp['VmHWM'] / 1024:.1f} |")
        by = {smp["batch"]: smp for smp in m["samples"]}
        keys = sorted(by)
        mid = [b for b in keys if b >= 500]
        if len(mid) >= 2:
            g = by[mid[-1]]["VmRSS"] - by[mid[0]]["VmRSS"]
            out.append("")
            out.append(f"VmRSS growth from batch {mid[0]} to {mid[-1]}: {g / 1024:+.2f} MB ({g:+d} kB).")
        d = m["edit_to_summary"]
        out.append("")
        out.append(f"{m['batches']} batches for {m['edits']} edits, {m['uploads']} uploads, "
                   f"{m['timeouts']} edits without a batch within 10 s, {m['n_errors']} error events, "
                   f"{m['seconds']} s; edit → summary median {ms(d.get('median'))} ms, p95 {ms(d.get('p95'))} ms, "
                   f"max {ms(d.get('max'))} ms. Requests over the run: S3 {fmt_ops(m['s3_ops'])}; "
                   f"CloudFront {fmt_ops(m['cf_ops'])}. Exit code after SIGINT: {m['exit_code']}.")
        out.append("")
    return "\n".join(out) + "\n"


def versions(sitesync):
    def first_line(cmd):
        try:
            r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
            return r.stdout.decode().strip().splitlines()[0]
        except (OSError, subprocess.TimeoutExpired, IndexError):
            return "?"
    return first_line([sitesync, "--version"]), first_line(["/usr/bin/aws", "--version"]).split(" Python")[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", default="latency,peer,memory", help="latency, peer, memory (comma-separated)")
    ap.add_argument("--size", default="medium", choices=("small", "medium"))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--latency", default="20", help="S3 latency in ms for latency/peer (comma-separated: 20,0)")
    ap.add_argument("--cf-latency", type=int, default=None, help="CloudFront proxy latency in ms (default: = S3's)")
    ap.add_argument("--edits", type=int, default=30)
    ap.add_argument("--spacing", type=float, default=1.0, help="seconds between edits (write to write)")
    ap.add_argument("--debounce", type=int, default=200, help="sitesync watch --debounce for the latency part")
    ap.add_argument("--mem-edits", type=int, default=2000)
    ap.add_argument("--mem-debounce", type=int, default=20)
    ap.add_argument("--mem-max-delay", type=int, default=100, help="watch.max_delay_ms (config file)")
    ap.add_argument("--mem-interval", type=int, default=30, help="min ms between two writes (0: no minimum)")
    ap.add_argument("--mem-pages", type=int, default=50, help="pages the memory part's edits rotate over")
    ap.add_argument("--mem-samples", default="1,10,100,500,1000,1500,2000")
    ap.add_argument("--mem-timeout", type=float, default=900, help="time limit of the memory part (s)")
    ap.add_argument("--sitesync", default=os.path.join(ROOT, "build", "cli", "sitesync"))
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "sitesync-watch-bench"))
    ap.add_argument("--keep", action="store_true", help="keep the run's work folder (site, logs)")
    ap.add_argument("--out", default=os.path.join(BENCH, "out"))
    a = ap.parse_args()
    a.latency = [int(x) for x in a.latency.split(",") if x != ""]
    a.mem_samples = [int(x) for x in a.mem_samples.split(",") if x != ""]
    parts = [x for x in a.parts.split(",") if x]
    for x in parts:
        if x not in ("latency", "peer", "memory"):
            ap.error(f"unknown part {x}")
    if not os.access(a.sitesync, os.X_OK):
        ap.error(f"{a.sitesync} is not built (cmake --build build --target sitesync)")

    def bail(signum, _frame):
        raise SystemExit(f"signal {signum}")
    signal.signal(signal.SIGTERM, bail)

    bench = Bench(a)
    sv, awsv = versions(a.sitesync)
    res = bench.results
    res["meta"].update({"started": time.strftime("%Y-%m-%d %H:%M:%S"), "argv": sys.argv, "parts": parts,
                        "latency": a.latency, "mem_debounce": a.mem_debounce, "mem_max_delay": a.mem_max_delay,
                        "machine": f"{platform.node()}, {os.cpu_count()} CPUs, {platform.platform()}",
                        "loadavg_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
                        "sitesync": a.sitesync, "sitesync_version": sv, "aws_version": awsv,
                        "work": bench.work})
    os.makedirs(a.out, exist_ok=True)
    md_path = os.path.join(a.out, f"watch-{bench.stamp}.md")
    json_path = os.path.join(a.out, f"watch-{bench.stamp}.json")

    def save():
        res["meta"]["loadavg_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
        with open(json_path, "w") as f:
            json.dump(res, f, indent=1)
        text = markdown(res)
        with open(md_path, "w") as f:
            f.write(text)
        return text

    ok = False
    try:
        bench.setup()
        for lat in a.latency:
            if "latency" in parts:
                bench.part_latency(lat)
                save()
            if "peer" in parts:
                bench.part_peer(lat)
                save()
        if "memory" in parts:
            bench.part_memory()
        ok = True
    finally:
        bench.stop()
        text = save()
        print(text)
        log(f"==> wrote {md_path} and {json_path}")
        if not a.keep and ok:
            shutil.rmtree(bench.work, ignore_errors=True)
        else:
            log(f"    work folder kept: {bench.work}")


if __name__ == "__main__":
    main()
