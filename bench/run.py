#!/usr/bin/env python3
"""Benchmark sitesync against aws-cli v2, rclone and s3cmd on a local S3 with a latency knob.

    bench/run.py [--server sink,s3rver] [--size small,medium,large] [--latency 0,20] [--scenario a,b,c,d]
                 [--reps 3] [--tools sitesync,aws,rclone,rclone-fast,s3cmd,floor] [--skip-slow] [--seed 1]
                 [--max-rps N [--burst B] [--rps-prefix-depth D]]
                 [--proto http,https]

For each server mode (started once, on a free loopback port, stopped by its PID at the end even on failure),
size and latency, runs REPS repetitions; in each repetition every scenario, and in each scenario every tool
(the tool order rotates from one repetition to the next), each against a fresh bucket whose state is
bulk-loaded through the server's /_bench/load endpoint (no PUTs):

  (a) first upload   empty bucket; the site is uploaded
  (b) no-op          the bucket already holds the site (same keys, sizes, MD5 ETags); nothing to do
  (c) edit           bucket = the site; local: 5 post pages and rss.xml edited (sizes change): 6 uploads
  (d) delete         bucket = the site; local: 10 files removed; sync with delete: 10 deletes
  size "large" (the 50,000-file listing tree) runs (b) only.

--proto (default http): over plain HTTP, over HTTPS, or both (then the server also listens for TLS, with a
certificate of a CA made for that server only, and in each repetition and scenario every tool runs over HTTP,
then every tool over HTTPS). Over HTTPS every tool is given the CA the way it documents and verifies the server with it:
sitesync --ca-bundle, aws-cli --ca-bundle, rclone --ca-cert, s3cmd ca_certs_file (use_https, certificate
and host name checked), floor.js --ca. Each run also records the TCP connections the server accepted, the TLS
handshakes completed and the sessions resumed.

Each run: wall seconds, user+sys CPU and peak RSS from /usr/bin/time -f '%e %U %S %M'; requests by S3
operation from the server's counters (reset before the run); the bucket afterwards is compared with the
expected state (keys and sizes). The floor is a trivial Node client (floor.js) doing only the requests the
scenario needs (no listing diff, no signing): all PUTs with 64 in flight for (a), one listing walk for (b),
the walk plus 6 PUTs for (c), the walk plus one DeleteObjects for (d).

--sitesync-alt PATH with the tool sitesync-alt: a second sitesync binary (another branch's build), default settings.

--max-rps N (sink only): the server answers 503 SlowDown above N requests a second (a token bucket per partition,
burst B, default N/10; the partition is the bucket, or its first D key segments). Each table of such a run gets a
throttle table: the floor N_requests/N seconds (the requests the scenario needs at the server's limit), each tool's
wall over it, the 503s the server sent while it ran (= requests it had to send again), the objects missing or
wrong afterwards, and the exit codes (tools may fail objects under throttling: recorded, not hidden).

Results: a table per (server, size, latency, scenario) on stdout and in bench/out/results-<timestamp>.md,
every run in bench/out/results-<timestamp>.json (both rewritten after each group, so partial runs survive).
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_site  # noqa: E402
import servers  # noqa: E402

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
DEFAULT_TOOLS = ["sitesync", "aws", "rclone", "rclone-fast", "s3cmd", "floor"]
# Not run unless named: the same tools with 128 requests in flight, to show what the in-flight count allows.
J128_TOOLS = ["sitesync-j128", "rclone-fast-j128", "floor-j128"]
# Not run unless named: sitesync with the fixed 64 in flight it used before the adaptive count, and with the
# adaptive count's ceiling, 256, fixed (the peak RSS target is "with 256 in flight").
J64_TOOLS = ["sitesync-j64", "sitesync-j256"]
# Not run unless named: sitesync with its local record (--compare checksum with a warm or a cold record, size with
# a warm one), sitesync with compress: rules, and the time to read (and to MD5 on one core) the site's bytes.
RECORD_TOOLS = ["sitesync-checksum", "sitesync-checksum-cold", "sitesync-size-warm"]
COMPRESS_TOOLS = ["sitesync-gzip", "sitesync-br"]
# `sitesync plan` (nothing sent) with and without compress: rules on the first upload: what sizing the encoded
# bodies before the diff costs on its own (the upload then encodes each body again as it sends it).
PLAN_TOOLS = ["sitesync-plan", "sitesync-gzip-plan", "sitesync-br-plan"]
READ_TOOLS = ["read-cat", "read-md5sum"]
# Not run unless named: sitesync with default settings from another binary (--sitesync-alt, e.g. another branch's
# build), next to the first in the same run.
ALT_TOOLS = ["sitesync-alt"]
ALL_TOOLS = DEFAULT_TOOLS + ALT_TOOLS + J64_TOOLS + J128_TOOLS + RECORD_TOOLS + COMPRESS_TOOLS + PLAN_TOOLS + READ_TOOLS
# The scenarios a tool runs in when it does not run in all of them: the compressed bodies differ from the
# manifest the bucket is loaded with (so only (a) means anything), and reading the tree is (b)'s reference.
TOOL_SCENARIOS = {"sitesync-gzip": "a", "sitesync-br": "a", "read-cat": "b", "read-md5sum": "b",
                  "sitesync-plan": "a", "sitesync-gzip-plan": "a", "sitesync-br-plan": "a",
                  "sitesync-checksum": "bcd", "sitesync-checksum-cold": "bcd", "sitesync-size-warm": "bcd"}
# compress: rules of the compression rows (sitesync.yaml syntax; a glob without '/' matches the file name).
COMPRESS_GLOBS = ["*.html", "*.css", "*.js"]
COMPRESS_ENCODING = {"sitesync-gzip": "gzip", "sitesync-br": "br"}
PROTOS = ["http", "https"]
SCENARIOS = {"a": "first upload", "b": "no-op resync", "c": "edit 5 pages + rss.xml", "d": "delete 10 files"}
TOOL_LABEL = {
    "sitesync": "sitesync (defaults: adaptive in-flight count, 64 growing to 256)",
    "sitesync-j64": "sitesync --jobs 64 (a fixed 64 in flight: the default before the adaptive count)",
    "sitesync-j256": "sitesync --jobs 256 (a fixed 256 in flight: the adaptive count's ceiling)",
    "aws": "aws s3 sync --size-only (v2, defaults)",
    "rclone": "rclone sync --size-only (defaults)",
    "rclone-fast": "rclone sync --size-only --transfers 64 --fast-list --s3-no-head --s3-no-check-bucket",
    "s3cmd": "s3cmd sync --no-check-md5",
    "floor": "floor (floor.js, 64 in flight)",
    "sitesync-alt": "sitesync (the --sitesync-alt binary, default settings)",
    "sitesync-j128": "sitesync --jobs 128",
    "rclone-fast-j128": "rclone-fast with --transfers 128",
    "floor-j128": "floor (floor.js, 128 in flight)",
    "sitesync-checksum": "sitesync --compare checksum, warm record",
    "sitesync-checksum-cold": "sitesync --compare checksum, cold record (cache dir empty)",
    "sitesync-size-warm": "sitesync --compare size, warm record",
    "sitesync-gzip": "sitesync, compress: *.html *.css *.js gzip",
    "sitesync-br": "sitesync, compress: *.html *.css *.js br",
    "sitesync-plan": "sitesync plan (dry run: the diff only)",
    "sitesync-gzip-plan": "sitesync plan, compress: gzip (sizes the encoded bodies)",
    "sitesync-br-plan": "sitesync plan, compress: br (sizes the encoded bodies)",
    "read-cat": "cat of every file to /dev/null (page cache warm)",
    "read-md5sum": "md5sum of every file, one core (page cache warm)",
}
OP_SHORT = [("PutObject", "Put"), ("ListObjectsV2", "ListV2"), ("ListObjects", "ListV1"),
            ("DeleteObjects", "DelObjs"), ("DeleteObject", "Del1"), ("CreateMultipartUpload", "MPUcreate"),
            ("UploadPart", "Part"), ("CompleteMultipartUpload", "MPUdone"), ("HeadObject", "Head"),
            ("GetObject", "Get")]


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------------------
# sites

class Site:
    """The base tree of a size and its scenario variants, with manifests (key, size, etag)."""

    def __init__(self, work, size, seed):
        self.size = size
        stamp = f"{size}-{seed}-{_file_hash(os.path.join(BENCH, 'gen_site.py'))}"
        d = os.path.join(work, f"site-{size}-{seed}")
        stamp_file = os.path.join(d, ".stamp")
        self.base = os.path.join(d, "base")
        if not (os.path.exists(stamp_file) and open(stamp_file).read() == stamp):
            log(f"==> generating the {size} site (seed {seed})")
            shutil.rmtree(d, ignore_errors=True)
            os.makedirs(d)
            gen_site.generate(self.base, size, seed)
            if size != "large":
                gen_site.derive_edited(self.base, os.path.join(d, "edited"), seed)
                gen_site.derive_removed(self.base, os.path.join(d, "removed"), seed)
            open(stamp_file, "w").write(stamp)
        self.manifest = gen_site.manifest(self.base)
        self.files = len(self.manifest)
        self.bytes = sum(e["size"] for e in self.manifest)
        self.dirs = {"a": self.base, "b": self.base}
        self.changed, self.removed = [], []
        if size != "large":
            self.dirs["c"] = os.path.join(d, "edited")
            self.dirs["d"] = os.path.join(d, "removed")
            base_sizes = {e["key"]: e["size"] for e in self.manifest}
            edited = {e["key"]: e["size"] for e in gen_site.manifest(self.dirs["c"])}
            self.changed = sorted(k for k in edited if base_sizes.get(k) != edited[k])
            self.removed = sorted(set(base_sizes) - set(gen_site.walk(self.dirs["d"])))
        self.lists = {}
        for name, keys in (("all", [e["key"] for e in self.manifest]), ("changed", self.changed),
                           ("removed", self.removed)):
            p = os.path.join(d, f"{name}.txt")
            with open(p, "w") as f:
                f.write("".join(k + "\n" for k in keys))
            self.lists[name] = p

    def expected(self, scenario):
        """{key: size} the bucket must hold after the scenario's sync."""
        if scenario in ("a", "b"):
            return {e["key"]: e["size"] for e in self.manifest}
        if scenario == "c":
            exp = {e["key"]: e["size"] for e in self.manifest}
            for k in self.changed:
                exp[k] = os.path.getsize(os.path.join(self.dirs["c"], k))
            return exp
        return {e["key"]: e["size"] for e in self.manifest if e["key"] not in set(self.removed)}


def warm(root):
    """Walks and stats the tree (untimed), so no tool pays for a cold dentry/inode cache: without it the first
    tool to walk a tree in a repetition ran up to 3x slower on a no-op (sys time 0.25 s instead of 0.08 s)."""
    for d, _dirs, files in os.walk(root):
        for f in files:
            os.stat(os.path.join(d, f))


def _floor_seconds(log_path):
    """floor.js's own elapsed seconds (without Node's start-up), from its JSON line."""
    try:
        for line in open(log_path, encoding="utf-8", errors="replace"):
            if line.startswith("{"):
                return json.loads(line)["seconds"]
    except (OSError, ValueError, KeyError):
        pass
    return None


def sitesync_summary(log_path):
    """The last {"event":"summary"} line sitesync printed (--json), or None."""
    found = None
    try:
        for line in open(log_path, encoding="utf-8", errors="replace"):
            if line.startswith("{") and '"summary"' in line:
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                if ev.get("event") == "summary":
                    found = ev
    except OSError:
        pass
    return found


def check_bucket(got, site, scenario, tool):
    """(ok, verify text, bytes stored) of the bucket after a run: the expected keys and sizes; for the
    compression rows, the files the rules match carry the rule's Content-Encoding (a body that is not smaller
    compressed may be stored as it is) and the others are as on disk."""
    exp = site.expected(scenario)
    if tool in PLAN_TOOLS:  # a dry run: the bucket stays as it was loaded
        exp = {} if scenario == "a" else {e["key"]: e["size"] for e in site.manifest}
    stored = sum(o["size"] for o in got)
    keys = {o["key"]: o for o in got}
    if tool not in COMPRESS_TOOLS:
        sizes = {k: o["size"] for k, o in keys.items()}
        if sizes == exp:
            return True, "ok", stored
        miss = len(set(exp) - set(sizes))
        extra = len(set(sizes) - set(exp))
        wrong = sum(1 for k in exp if k in sizes and sizes[k] != exp[k])
        return False, f"bucket wrong: {miss} missing, {extra} extra, {wrong} wrong size", stored
    import fnmatch
    enc = COMPRESS_ENCODING[tool]
    problems, encoded = [], 0
    if set(keys) != set(exp):
        problems.append(f"{len(set(exp) - set(keys))} missing, {len(set(keys) - set(exp))} extra")
    for k, size in exp.items():
        o = keys.get(k)
        if o is None:
            continue
        matched = any(fnmatch.fnmatchcase(k.rsplit("/", 1)[-1], g) for g in COMPRESS_GLOBS)
        ce = o.get("content_encoding")
        if ce:
            encoded += 1
        if matched and ce not in (enc, None) or not matched and ce:
            problems.append(f"{k}: Content-Encoding {ce}")
        elif not ce and o["size"] != size:
            problems.append(f"{k}: {o['size']} bytes, not encoded, file {size}")
    if encoded == 0:
        problems.append("no object has a Content-Encoding")
    if problems:
        return False, f"bucket wrong: {len(problems)} problems, e.g. {problems[0]}", stored
    return True, f"ok ({encoded} encoded)", stored


# What each tool does with a 503 SlowDown by default (the throttle tables quote it).
THROTTLE_NOTES = {
    "sitesync": "no --jobs: adaptive in flight (64 up to 256, halved on a 503 once per round trip, never below 8); a "
                "throttled request is sent again first, on its own budget of 20 while the server accepts others",
    "sitesync-j64": "--jobs 64: fixed in flight; throttled requests retried with full-jitter backoff on the same budget",
    "sitesync-alt": "as sitesync, the --sitesync-alt binary",
    "aws": "retry mode standard: 3 attempts in all (max_attempts 3), exponential backoff (base 2, cap 20 s); "
           "10 requests in flight (s3 max_concurrent_requests)",
    "rclone": "--low-level-retries 10 per request, paced by rclone's S3 pacer (one per remote: the sleep between "
              "calls doubles on each error up to 2 s, decays by 1/4 on success, 0 when under 10 ms), then "
              "--retries 3 (the whole sync again); 4 transfers",
    "rclone-fast": "as rclone, with 64 transfers",
    "s3cmd": "one request at a time; a 503 is retried up to 5 times, after 3 s, 6 s, ... 15 s of sleep",
    "floor": "floor.js: a 503 is sent again up to 10 times after a full-jitter sleep (0..min(2 s, 50 ms x 2^n))",
}


def needed_requests(site, scenario):
    """The requests a scenario needs at the least: the listing pages (one for the empty bucket of (a)) plus the
    writes (a PUT per file for (a), per changed file for (c), a DeleteObjects per 1,000 removed keys for (d))."""
    pages = 1 if scenario == "a" else max(1, -(-site.files // 1000))
    if scenario == "a":
        return pages + site.files
    if scenario == "c":
        return pages + len(site.changed)
    if scenario == "d":
        return pages + -(-len(site.removed) // 1000)
    return pages


def failed_objects(got, site, scenario):
    """Objects the bucket holds wrong after a run: expected keys missing or with another size, plus extra keys."""
    exp = site.expected(scenario)
    sizes = {o["key"]: o["size"] for o in got}
    return sum(1 for k, v in exp.items() if sizes.get(k) != v) + sum(1 for k in sizes if k not in exp)


def _binary_id(p):
    try:
        st = os.stat(p)
        return f"{_file_hash(p)} {datetime.datetime.fromtimestamp(st.st_mtime).isoformat(timespec='seconds')}"
    except OSError:
        return "missing"


def _file_hash(p):
    import hashlib
    return hashlib.sha256(open(p, "rb").read()).hexdigest()[:12]


# ---------------------------------------------------------------------------------------------------------
# tools

class Tools:
    def __init__(self, work, sitesync):
        # configs private to this invocation: two runs sharing --work must not point each other's tools at
        # their own server (seen: s3cmd of one run got NoSuchBucket from another run's server)
        work = tempfile.mkdtemp(prefix="cfg-", dir=work)
        self.work = work
        self.sitesync = sitesync
        self.aws_config = os.path.join(work, "aws-config")
        with open(self.aws_config, "w") as f:
            f.write("[default]\nregion = us-east-1\n")
        self.rclone_config = os.path.join(work, "rclone.conf")
        open(self.rclone_config, "w").close()
        self.s3cmd_config = os.path.join(work, "s3cmd.cfg")
        base = {k: v for k, v in os.environ.items()
                if not k.startswith(("AWS_", "RCLONE_")) and k.lower() not in ("http_proxy", "https_proxy",
                                                                                 "all_proxy", "no_proxy")}
        base.update({"AWS_ACCESS_KEY_ID": servers.CREDS[0], "AWS_SECRET_ACCESS_KEY": servers.CREDS[1],
                     "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
                     "AWS_CONFIG_FILE": self.aws_config, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                     "AWS_EC2_METADATA_DISABLED": "true", "AWS_PAGER": "", "RCLONE_CONFIG": self.rclone_config})
        self.env = base
        self.compress_configs = {}
        for tool, enc in COMPRESS_ENCODING.items():
            path = os.path.join(work, f"{tool}.yaml")
            with open(path, "w") as f:
                f.write("compress:\n" + "".join(f'  - {{match: "{g}", encoding: {enc}}}\n' for g in COMPRESS_GLOBS))
            self.compress_configs[tool] = path

    def run_env(self, n):
        """The environment of run n: sitesync's record ($XDG_CACHE_HOME/sitesync) in a folder of this run only,
        so no run finds another's record and the machine's ~/.cache is never touched."""
        env = dict(self.env)
        env["XDG_CACHE_HOME"] = os.path.join(self.work, f"cache-{n:05d}")
        return env

    def prepare(self, tool, site, scenario, bucket, env, log_path, timeout):
        """Untimed set-up of a run. Record tools: an empty cache folder; the warm ones then sync the base tree
        once with --compare checksum (the bucket already holds it: nothing is uploaded, the files are hashed
        once and recorded), as the previous publish would have left the record. Returns an error or None."""
        cache = env["XDG_CACHE_HOME"]
        shutil.rmtree(cache, ignore_errors=True)
        os.makedirs(cache)
        if tool not in ("sitesync-checksum", "sitesync-size-warm"):
            return None
        argv = [self.sitesync, "sync", site.base, f"s3://{bucket}", "--endpoint", self.url, "--json",
                "--max-deletes", "-1", "--compare", "checksum"] + self.tls_args("sitesync")
        with open(log_path + ".warmup", "wb") as out:
            rc = subprocess.run(argv, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                timeout=timeout).returncode
        summary = sitesync_summary(log_path + ".warmup") or {}
        if rc != 0 or summary.get("uploaded"):
            return f"warm-up failed: exit {rc}, uploaded {summary.get('uploaded')}"
        return None

    def set_endpoint(self, url, ca=None):
        """Points every tool at `url`; an https:// one is verified against the CA certificate file `ca`."""
        self.url = url
        self.ca = ca if url.startswith("https://") else None
        hostport = url.split("://", 1)[1]
        with open(self.s3cmd_config, "w") as f:
            f.write(f"[default]\naccess_key = {servers.CREDS[0]}\nsecret_key = {servers.CREDS[1]}\n"
                    f"host_base = {hostport}\nhost_bucket = {hostport}\n{self.s3cmd_tls()}"
                    f"signature_v2 = False\nbucket_location = us-east-1\n")
        # AWS_CA_BUNDLE stays out of the shared environment: rclone's AWS SDK (Go, v1) reads it too and then
        # fails ("LoadCustomCABundleError: ... unsupported transport, *fshttp.Transport"); aws-cli gets --ca-bundle
        self.env.update({"RCLONE_CONFIG_BENCH_TYPE": "s3", "RCLONE_CONFIG_BENCH_PROVIDER": "Other",
                         "RCLONE_CONFIG_BENCH_ENDPOINT": url,
                         "RCLONE_CONFIG_BENCH_ACCESS_KEY_ID": servers.CREDS[0],
                         "RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY": servers.CREDS[1],
                         "RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE": "true"})

    def s3cmd_tls(self):
        """s3cmd 2.3's config keys (as `s3cmd --dump-config` names them): HTTPS, verified with our CA."""
        if not self.ca:
            return "use_https = False\n"
        return (f"use_https = True\nca_certs_file = {self.ca}\ncheck_ssl_certificate = True\n"
                f"check_ssl_hostname = True\n")

    def tls_args(self, tool):
        """The arguments that give `tool` the CA over HTTPS (nothing over HTTP; s3cmd's is in its config)."""
        if not self.ca:
            return []
        return {"sitesync": ["--ca-bundle", self.ca], "aws": ["--ca-bundle", self.ca],
                "rclone": ["--ca-cert", self.ca], "floor": ["--ca", self.ca]}.get(tool, [])

    def argv(self, tool, site, scenario, bucket):
        if tool in ("sitesync-j64", "sitesync-j256"):
            return self.argv("sitesync", site, scenario, bucket) + ["--jobs", tool[len("sitesync-j"):]]
        if tool.endswith("-j128"):  # the same tool with 128 requests in flight instead of 64
            cmd = self.argv(tool[:-len("-j128")], site, scenario, bucket)
            if tool.startswith("rclone"):
                return [("128" if a == "64" else a) for a in cmd]
            return cmd + ["--jobs", "128"]
        src = site.dirs[scenario]
        delete = scenario == "d"
        if tool == "sitesync":
            return [self.sitesync, "sync", src, f"s3://{bucket}", "--endpoint", self.url, "--json",
                    "--max-deletes", "-1"] + (["--delete"] if delete else []) + self.tls_args("sitesync")
        if tool == "sitesync-alt":
            return [self.sitesync_alt] + self.argv("sitesync", site, scenario, bucket)[1:]
        if tool in RECORD_TOOLS:
            compare = "size" if tool == "sitesync-size-warm" else "checksum"
            return self.argv("sitesync", site, scenario, bucket) + ["--compare", compare]
        if tool in COMPRESS_TOOLS:
            return self.argv("sitesync", site, scenario, bucket) + ["-c", self.compress_configs[tool]]
        if tool in PLAN_TOOLS:
            base = tool[:-len("-plan")]
            cmd = self.argv("sitesync" if base == "sitesync" else base, site, scenario, bucket)
            return [cmd[0], "plan"] + cmd[2:]
        if tool in READ_TOOLS:
            prog = "cat" if tool == "read-cat" else "md5sum"
            return ["sh", "-c", f'find "$1" -type f -print0 | xargs -0 {prog} > /dev/null', "sh", src]
        if tool == "aws":
            return ["/usr/bin/aws", "s3", "sync", src, f"s3://{bucket}", "--endpoint-url", self.url,
                    "--size-only", "--no-progress"] + (["--delete"] if delete else []) + self.tls_args("aws")
        if tool == "rclone":  # rclone sync always deletes
            return ["rclone", "sync", src, f"bench:{bucket}", "--size-only"] + self.tls_args("rclone")
        if tool == "rclone-fast":
            return ["rclone", "sync", src, f"bench:{bucket}", "--size-only", "--transfers", "64", "--fast-list",
                    "--s3-no-head", "--s3-no-check-bucket"] + self.tls_args("rclone")
        if tool == "s3cmd":
            return ["s3cmd", "-c", self.s3cmd_config, "sync", "--no-check-md5", src + "/", f"s3://{bucket}/"] + \
                (["--delete-removed"] if delete else [])
        if tool == "floor":
            cmd = ["node", os.path.join(BENCH, "floor.js"), "--endpoint", self.url, "--bucket", bucket,
                   "--root", src] + self.tls_args("floor")
            if scenario == "a":
                return cmd + ["--put", site.lists["all"]]
            cmd.append("--list")
            if scenario == "c":
                cmd += ["--put", site.lists["changed"]]
            if scenario == "d":
                cmd += ["--delete", site.lists["removed"]]
            return cmd
        raise ValueError(tool)


def timed(argv, env, log_path, timeout):
    """Runs argv under /usr/bin/time; returns (rc, wall, user, sys, max_rss_kb, tail of output)."""
    tfile = log_path + ".time"
    with open(log_path, "wb") as out:
        p = subprocess.Popen(["/usr/bin/time", "-f", "%e %U %S %M", "-o", tfile, "--"] + argv, env=env,
                             stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True)
        try:
            rc = p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)  # the group we started for this run only
            p.wait()
            rc = "timeout"
        except BaseException:  # stopped (signal, ^C): do not leave the tool running
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            raise
    tail = open(log_path, "rb").read()[-600:].decode("utf-8", "replace")
    try:
        line = open(tfile).read().strip().splitlines()[-1]
        wall, user, sys_, rss = line.split()
        return rc, float(wall), float(user), float(sys_), int(rss), tail
    except (OSError, ValueError, IndexError):
        return rc, None, None, None, None, tail


# ---------------------------------------------------------------------------------------------------------
# results

def summarize(runs):
    """Groups runs by (server, size, latency, scenario) -> tool -> stats."""
    groups = {}
    for r in runs:
        g = groups.setdefault((server_label(r), r["size"], r["latency_ms"], r.get("proto", "http"), r["scenario"]), {})
        g.setdefault(r["tool"], []).append(r)
    out = []
    for (server, size, lat, proto, sc), tools in groups.items():
        rows = {}
        for tool, rs in tools.items():
            good = [r for r in rs if r["wall"] is not None and r["rc"] == 0]  # failed runs: problems only
            walls = [r["wall"] for r in good]
            ops = {}
            for op in sorted({op for r in good for op in r["ops"]}):
                ops[op] = statistics.median(r["ops"].get(op, 0) for r in good)
            rows[tool] = {
                "runs": len(rs), "failed": sum(1 for r in rs if r["rc"] != 0 or not r["ok"]),
                "median": statistics.median(walls) if walls else None,
                "min": min(walls) if walls else None, "max": max(walls) if walls else None,
                "cpu": statistics.median(r["user"] + r["sys"] for r in good) if good else None,
                "rss_mb": statistics.median(r["rss_kb"] for r in good) / 1024 if good else None,
                "server_cpu": statistics.median(r.get("server_cpu", 0) for r in good) if good else None,
                "ops": ops, "walls": walls,
                "expect_100": statistics.median(r.get("expect_100", 0) for r in good) if good else 0,
                "sent_mb": statistics.median(r.get("bytes_in", 0) for r in good) / 1e6 if good else None,
                "stored_mb": statistics.median(r["stored_bytes"] for r in good) / 1e6
                if good and all(r.get("stored_bytes") is not None for r in good) else None,
                # sitesync's own count of the files it hashed (its --json summary), when it says
                "hashed": statistics.median(r["summary"]["hashed"] for r in good)
                if good and all((r.get("summary") or {}).get("hashed") is not None for r in good) else None,
                "internal": statistics.median(r["floor_internal"] for r in good if r.get("floor_internal"))
                if any(r.get("floor_internal") for r in good) else None,
                # TCP connections the server accepted, TLS handshakes completed and sessions resumed (medians)
                "connections": _median_of(good, "connections"),
                "tls_handshakes": _median_of(good, "tls_handshakes"),
                "tls_resumed": _median_of(good, "tls_resumed"),
                "problems": sorted({r["verify"] for r in rs if not r["ok"]} |
                                   {f"exit {r['rc']}" for r in rs if r["rc"] != 0}),
                **throttle_row(rs),
            }
        base = rows.get("sitesync", {}).get("median")
        for row in rows.values():
            row["ratio"] = row["median"] / base if base and row["median"] else None
        out.append({"server": server, "size": size, "latency_ms": lat, "proto": proto, "scenario": sc,
                    "tools": rows})
    return out


def server_label(r):
    """The server a run's table is under: the mode, and the request-rate limit when the run had one."""
    return r["server"] + (f" · max {r['max_rps']:g} req/s" if r.get("max_rps") else "")


def throttle_row(rs):
    """The throttle table's fields of a tool's runs (every run, failed ones too: a throttled run may fail)."""
    if not any(r.get("max_rps") for r in rs):
        return {}
    walls = [r["wall"] for r in rs if r["wall"] is not None]
    return {"max_rps": rs[0]["max_rps"], "burst": rs[0].get("burst"), "needed": rs[0].get("needed_requests"),
            "all_walls": walls, "all_median": statistics.median(walls) if walls else None,
            "throttled": [r.get("throttled", 0) for r in rs], "sent": [r["requests"] for r in rs],
            "failed_objects": [r.get("failed_objects") for r in rs], "rcs": [r["rc"] for r in rs],
            "loads": [r.get("load1") for r in rs]}


def throttle_table(g):
    """The throttle table of a group run with --max-rps: the floor N_requests/N and each tool against it."""
    rows = {t: r for t, r in g["tools"].items() if r.get("max_rps")}
    if not rows:
        return []
    any_row = next(iter(rows.values()))
    n, needed = any_row["max_rps"], any_row["needed"]
    floor_s = needed / n if needed else None
    lines = ["", f"Throttled at {n:g} requests/s (token bucket, burst {any_row['burst']:g}): the scenario needs "
             f"{needed} requests, floor {needed} / {n:g} = **{floor_s:.2f} s**. Wall over all runs (failed ones "
             "too); throttled = the 503s the server sent while the tool ran (requests it had to send again); "
             "failed objects = keys missing or wrong in the bucket afterwards, per run.", "",
             "| tool | wall s median (min-max) | × floor | requests sent | throttled (503s) | failed objects "
             "| exit codes | load (1 min, after each run) | retry defaults |", "|---|---|---|---|---|---|---|---|---|"]
    for t in [t for t in ALL_TOOLS if t in rows]:
        r = rows[t]
        w = r["all_walls"]
        wall = "-" if not w else f"{r['all_median']:.2f} ({min(w):.2f}-{max(w):.2f})"
        xf = "-" if not w or not floor_s else f"{r['all_median'] / floor_s:.2f}"
        med = lambda xs: f"{statistics.median(xs):g}" + (f" ({min(xs):g}-{max(xs):g})" if min(xs) != max(xs) else "")
        fo = ", ".join("-" if x is None else str(x) for x in r["failed_objects"])
        rcs = ", ".join(str(x) for x in r["rcs"])
        loads = ", ".join("-" if x is None else f"{x:.1f}" for x in r.get("loads", []))
        lines.append(f"| {t} | {wall} | {xf} | {med(r['sent'])} | {med(r['throttled'])} | {fo} | {rcs} | {loads} "
                     f"| {THROTTLE_NOTES.get(t, '')} |")
    return lines


def _median_of(runs, key):
    """Median of runs' `key` where every run has it (results of older runs do not), else None."""
    vals = [r.get(key) for r in runs]
    return statistics.median(vals) if vals and all(v is not None for v in vals) else None


def fmt_ops(ops):
    parts, rest = [], 0
    named = dict(OP_SHORT)
    for op, n in ops.items():
        if op in named:
            continue
        rest += n
    for op, short in OP_SHORT:
        if ops.get(op):
            parts.append(f"{short} {ops[op]:g}")
    if rest:
        parts.append(f"other {rest:g} ({', '.join(f'{k} {v:g}' for k, v in ops.items() if k not in named)})")
    return " · ".join(parts) or "-"


def markdown(summary, meta):
    lines = [f"# sitesync benchmark results ({meta['started']})", "",
             f"Machine: {meta['machine']}. Tools: {', '.join(f'{k} {v}' for k, v in meta['versions'].items())}.",
             f"sitesync binary: sha256 {meta.get('sitesync_binary', '?')}. {meta.get('note', '')}" +
             (f" sitesync-alt: {meta['sitesync_alt']}." if meta.get("sitesync_alt") else ""),
             f"Sites: {', '.join(f'{k}: {v}' for k, v in meta['sites'].items())}. Reps: {meta['reps']}. "
             "Times are wall seconds, median (min-max); × is the peer's median over sitesync's. "
             "Requests are medians per run, by S3 operation (Expect: 100-continue: requests that waited for the "
             "server's interim answer, which costs one more latency).", "", "## Overview", "",
             compact(summary), "## Details", ""]
    floors = {}
    for g in summary:
        f = g["tools"].get("floor")
        if f and f["median"] is not None:
            floors[(g["server"], g["size"], g["latency_ms"], g.get("proto", "http"), g["scenario"])] = \
                (f["median"], f["internal"])
    for g in summary:
        proto = g.get("proto", "http")
        key = (g["server"], g["size"], g["latency_ms"], proto)
        lines.append(f"## {g['server']} · {g['size']} · {g['latency_ms']} ms · {proto.upper()} · ({g['scenario']}) "
                     f"{SCENARIOS[g['scenario']]}")
        lines.append("")
        lines.append("| tool | wall s median (min-max) | × sitesync | CPU s | server CPU s | peak RSS MB | sent MB "
                     "| stored MB | hashed | requests | problems | connections | TLS handshakes | resumed |")
        lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        order = [t for t in ALL_TOOLS if t in g["tools"]]
        for t in order:
            r = g["tools"][t]
            med = "-" if r["median"] is None else f"{r['median']:.2f} ({r['min']:.2f}-{r['max']:.2f})"
            ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}"
            cpu = "-" if r["cpu"] is None else f"{r['cpu']:.2f}"
            rss = "-" if r["rss_mb"] is None else f"{r['rss_mb']:.0f}"
            probs = "; ".join(r["problems"])[:160] or ""
            ops = fmt_ops(r["ops"]) + (f" (Expect: 100-continue on {r['expect_100']:g})" if r["expect_100"] else "")
            scpu = "-" if r.get("server_cpu") is None else f"{r['server_cpu']:.2f}"
            sent = "-" if r.get("sent_mb") is None else f"{r['sent_mb']:.1f}"
            stored = "-" if r.get("stored_mb") is None else f"{r['stored_mb']:.1f}"
            hashed = "-" if r.get("hashed") is None else f"{r['hashed']:g}"
            lines.append(f"| {TOOL_LABEL[t]} | {med} | {ratio} | {cpu} | {scpu} | {rss} | {sent} | {stored} | {hashed} "
                         f"| {ops} | {probs} | {_count(r.get('connections'))} "
                         f"| {_count(r.get('tls_handshakes'), proto)} | {_count(r.get('tls_resumed'), proto)} |")
        lines += throttle_table(g)
        def fl(x):
            if x is None:
                return "-"
            return f"{x[0]:.2f} s" + ("" if x[1] is None else f" ({x[1]:.2f} s without Node's start-up)")
        up, ls = floors.get(key + ("a",)), floors.get(key + ("b",))
        if up is not None or ls is not None:
            lines.append("")
            lines.append(f"Floors ({g['server']}, {g['size']}, {g['latency_ms']} ms, {proto.upper()}): upload floor (all PUTs, 64 in "
                         f"flight) {fl(up)}; listing floor (one walk) {fl(ls)}.")
        lines.append("")
    return "\n".join(lines)


def _count(v, proto="https"):
    """A median count for the tables: "-" when not measured (or a TLS count over plain HTTP)."""
    return "-" if v is None or proto != "https" else f"{v:g}"


def report(a):
    runs, metas = [], []
    for path in a.report:
        d = json.load(open(path))
        metas.append(d["meta"])
        runs += d["runs"]
    keep = {"server": set(a.server.split(",")), "size": set(a.size.split(",")),
            "latency_ms": {int(x) for x in a.latency.split(",")}, "scenario": set(a.scenario.split(",")),
            "tool": set(a.tools.split(",")), "proto": set((a.proto or ",".join(PROTOS)).split(","))}
    for r in runs:
        r.setdefault("proto", "http")  # results of runs made before --proto were all plain HTTP
    runs = [r for r in runs if all(r[k] in v for k, v in keep.items())]
    runs.sort(key=lambda r: (["sink", "s3rver"].index(r["server"]) if r["server"] in ("sink", "s3rver") else 9,
                             ["small", "medium", "large"].index(r["size"]), r["latency_ms"],
                             PROTOS.index(r["proto"]), r["scenario"]))
    meta = dict(metas[-1])
    meta["started"] = " + ".join(m["started"] for m in metas)
    meta["reps"] = "/".join(sorted({str(m["reps"]) for m in metas}))
    meta["sitesync_binary"] = " / ".join(sorted({m.get("sitesync_binary", "?") for m in metas}))
    print(markdown(summarize(runs), meta))


def compact(summary):
    """One table per (server, size, latency): tools x scenarios, median (min-max) and × sitesync."""
    blocks = {}
    for g in summary:
        blocks.setdefault((g["server"], g["size"], g["latency_ms"], g.get("proto", "http")), {})[g["scenario"]] = \
            g["tools"]
    lines = []
    for (server, size, lat, proto), scs in blocks.items():
        cols = [sc for sc in SCENARIOS if sc in scs]
        lines.append(f"**{server} · {size} · {lat} ms · {proto.upper()}** (wall s: median (min-max) ×sitesync"
                     + ("; TLS: connections/handshakes/resumed" if proto == "https" else "") + ")")
        lines.append("")
        lines.append("| tool | " + " | ".join(f"({sc}) {SCENARIOS[sc]}" for sc in cols) + " |")
        lines.append("|---|" + "---|" * len(cols))
        for t in ALL_TOOLS:
            if not any(t in scs[sc] for sc in cols):
                continue
            cells = []
            for sc in cols:
                r = scs[sc].get(t)
                if not r or r["median"] is None:
                    cells.append("-")
                    continue
                cell = f"{r['median']:.2f} ({r['min']:.2f}-{r['max']:.2f})"
                if t != "sitesync" and r["ratio"]:
                    cell += f" ×{r['ratio']:.1f}"
                if proto == "https" and r.get("tls_handshakes") is not None:
                    cell += f" [{_count(r.get('connections'))}/{_count(r['tls_handshakes'])}/{_count(r.get('tls_resumed'))}]"
                if r["problems"]:
                    cell += " ⚠"
                cells.append(cell)
            lines.append(f"| {t} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def versions(sitesync):
    def first_line(cmd):
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
            return (out.stdout or out.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "?"
    rev = first_line(["git", "-C", ROOT, "describe", "--always", "--dirty"])
    return {
        "sitesync": f"{first_line([sitesync, '--version'])} ({rev})",
        "aws": first_line(["/usr/bin/aws", "--version"]).split(" ")[0],
        "rclone": first_line(["rclone", "version"]).split(" ")[-1],
        "s3cmd": first_line(["s3cmd", "--version"]).split(" ")[-1],
        "node": first_line(["node", "--version"]),
        "s3rver": json.load(open(os.path.join(BENCH, "node_modules", "s3rver", "package.json")))["version"]
        if servers.node_modules_ok() else "not installed",
    }


# ---------------------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", default="sink,s3rver", help="sink, s3rver or both (comma-separated)")
    ap.add_argument("--size", default="small", help="small, medium, large (comma-separated)")
    ap.add_argument("--latency", default="0,20", help="per-request latency in ms (comma-separated)")
    ap.add_argument("--scenario", default="a,b,c,d")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--tools", default=",".join(DEFAULT_TOOLS))
    ap.add_argument("--skip-slow", action="store_true", help="skip s3cmd on the first upload of medium")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--proto", default=None,
                    help="http, https or both (comma-separated; default http; with --report: every proto): https "
                         "makes the servers listen for TLS with a certificate of a CA made for the run, given to "
                         "every tool")
    ap.add_argument("--sitesync", default=os.path.join(ROOT, "build", "cli", "sitesync"))
    ap.add_argument("--sitesync-alt", default="", help="the binary of the sitesync-alt tool (e.g. another branch's)")
    ap.add_argument("--build", action="store_true", help="cmake --build build --target sitesync first")
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "sitesync-bench-work"),
                    help="where the generated sites and logs go (reused between runs)")
    ap.add_argument("--out", default=os.path.join(BENCH, "out"))
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per tool run")
    ap.add_argument("--max-rps", type=float, default=0,
                    help="sink only: the server answers 503 SlowDown above this many requests a second per partition")
    ap.add_argument("--burst", type=float, default=0, help="with --max-rps: token bucket size (default max-rps/10)")
    ap.add_argument("--rps-prefix-depth", type=int, default=0,
                    help="with --max-rps: a partition is the bucket and the first D key segments (default 0: the bucket)")
    ap.add_argument("--report", nargs="+", metavar="JSON",
                    help="measure nothing: merge the runs of these results files (filtered by --server, --size, "
                         "--latency, --scenario, --tools) and print the tables")
    a = ap.parse_args()
    if a.report:
        return report(a)

    protos = [p.strip() for p in (a.proto or "http").split(",") if p.strip()]
    for p in protos:
        if p not in PROTOS:
            ap.error(f"unknown proto {p}; known: {', '.join(PROTOS)}")
    tools = [t.strip() for t in a.tools.split(",") if t.strip()]
    for t in tools:
        if t not in ALL_TOOLS:
            ap.error(f"unknown tool {t}; known: {', '.join(ALL_TOOLS)}")
    if a.build:
        subprocess.run(["cmake", "--build", os.path.join(ROOT, "build"), "-j2", "--target", "sitesync"], check=True)
    if a.max_rps and any(m.strip() != "sink" for m in a.server.split(",")):
        ap.error("--max-rps needs --server sink (the s3rver front does not throttle)")
    uses_sitesync = any(t.startswith("sitesync") for t in tools)
    if uses_sitesync and not os.access(a.sitesync, os.X_OK):
        ap.error(f"no sitesync binary at {a.sitesync} (build it, or --build)")
    if "sitesync-alt" in tools and not os.access(a.sitesync_alt, os.X_OK):
        ap.error("the sitesync-alt tool needs --sitesync-alt PATH (an executable)")
    if not os.path.exists("/usr/bin/time"):
        ap.error("/usr/bin/time is missing (apt-get install time)")

    os.makedirs(a.work, exist_ok=True)
    os.makedirs(a.out, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    if uses_sitesync:
        # run a private copy: a rebuild of build/cli/sitesync during the run must not change or remove it
        snap = os.path.join(a.work, f"sitesync-{stamp}")
        shutil.copy2(a.sitesync, snap)
        a.sitesync_orig, a.sitesync = a.sitesync, snap
    json_path = os.path.join(a.out, f"results-{stamp}.json")
    md_path = os.path.join(a.out, f"results-{stamp}.md")
    logs = os.path.join(a.work, f"logs-{stamp}")
    os.makedirs(logs)

    # a SIGTERM / SIGHUP ends the run through the finally blocks (servers stopped by their PIDs)
    def bail(signum, _frame):
        raise SystemExit(f"stopped by signal {signum}")
    signal.signal(signal.SIGTERM, bail)
    signal.signal(signal.SIGHUP, bail)

    sizes = [s.strip() for s in a.size.split(",") if s.strip()]
    sites = {s: Site(a.work, s, a.seed) for s in sizes}
    meta = {"started": stamp, "argv": sys.argv[1:], "reps": a.reps, "protos": protos,
            "machine": f"{os.cpu_count()} cores ({cpu_model()}), {platform.platform()}, "
                       f"load {os.getloadavg()[0]:.2f} at start",
            "versions": versions(a.sitesync),
            "sites": {s: f"{x.files} files, {x.bytes / 1e6:.1f} MB" for s, x in sites.items()},
            "tool_args": TOOL_LABEL}
    if a.max_rps:
        meta["throttle"] = {"max_rps": a.max_rps, "burst": a.burst or a.max_rps / 10,
                            "rps_prefix_depth": a.rps_prefix_depth}
    meta["sitesync_binary"] = _binary_id(a.sitesync)
    if "sitesync-alt" in tools:
        snap = os.path.join(a.work, f"sitesync-alt-{stamp}")
        shutil.copy2(a.sitesync_alt, snap)
        meta["sitesync_alt"] = f"{a.sitesync_alt}: sha256 {_binary_id(snap)}"
        a.sitesync_alt = snap
    runs = []

    def save():
        summary = summarize(runs)
        with open(json_path, "w") as f:
            json.dump({"meta": meta, "summary": summary, "runs": runs}, f, indent=1)
        with open(md_path, "w") as f:
            f.write(markdown(summary, meta))
        return summary

    tl = Tools(a.work, a.sitesync)
    tl.sitesync_alt = a.sitesync_alt
    n = 0
    for mode in [m.strip() for m in a.server.split(",") if m.strip()]:
        with servers.Server(mode, 0, log_dir=logs, tls="https" in protos) as srv:
            log(f"==> {mode} server on {srv.url}" + (f" and {srv.https_url}" if srv.https_url else "") +
                f" (pid {srv.pid})")
            if a.max_rps:
                log(f"    throttling: {srv.set_throttle(a.max_rps, a.burst, a.rps_prefix_depth)}")
            for size in sizes:
                site = sites[size]
                scen = [s for s in a.scenario.split(",") if s in SCENARIOS and (size != "large" or s == "b")]
                for lat in [int(x) for x in a.latency.split(",")]:
                    srv.set_latency(lat)
                    for rep in range(a.reps):
                        for sc in scen:
                            order = tools[rep % len(tools):] + tools[:rep % len(tools)]
                            for proto, tool in [(p, t) for p in protos for t in order]:
                                tl.set_endpoint(srv.url_for(proto), srv.ca_file)
                                if tool == "s3cmd" and sc == "a" and size != "small" and a.skip_slow:
                                    continue
                                if sc not in TOOL_SCENARIOS.get(tool, sc):
                                    continue
                                n += 1
                                bucket = f"bench-{n:05d}-{tool.replace('_', '-')}"
                                state = [] if sc == "a" else site.manifest
                                srv.load(bucket, state)
                                warm(site.dirs[sc])
                                log_path = os.path.join(logs, f"{n:05d}-{mode}-{size}-{lat}ms-{proto}-{sc}-{tool}.log")
                                env = tl.run_env(n)
                                failed_prep = tl.prepare(tool, site, sc, bucket, env, log_path, a.timeout)
                                srv.reset()
                                rc, wall, user, sys_, rss, tail = timed(
                                    tl.argv(tool, site, sc, bucket), env, log_path, a.timeout)
                                shutil.rmtree(env["XDG_CACHE_HOME"], ignore_errors=True)
                                if failed_prep:
                                    rc, tail = "warm-up", failed_prep
                                st = srv.stats()
                                summary = sitesync_summary(log_path) if tool.startswith("sitesync") else None
                                ok, verify, stored = True, "ok", None
                                failed = None
                                if size != "large":
                                    got = srv.dump(bucket)
                                    ok, verify, stored = check_bucket(got, site, sc, tool)
                                    if tool not in COMPRESS_TOOLS + PLAN_TOOLS:
                                        failed = failed_objects(got, site, sc)
                                else:
                                    writes = sum(v for k, v in st["ops"].items()
                                                 if k.startswith(("Put", "Delete", "Copy", "Complete")))
                                    if writes:
                                        ok, verify = False, f"{writes} write requests on a no-op"
                                srv.drop(bucket)
                                runs.append({"server": mode, "size": size, "latency_ms": lat, "proto": proto,
                                             "connections": st.get(f"connections_{proto}"),
                                             "tls_handshakes": st.get("tls_handshakes"),
                                             "tls_resumed": st.get("tls_resumed"),
                                             "tls_failed": st.get("tls_failed"),
                                             "scenario": sc,
                                             "tool": tool, "rep": rep, "rc": rc, "wall": wall, "user": user,
                                             "sys": sys_, "rss_kb": rss, "ops": st["ops"],
                                             "requests": st["requests"], "bytes_in": st["bytes_in"],
                                             "expect_100": st.get("expect_100_continue", 0),
                                             "server_cpu": st.get("cpu_ms", 0) / 1000,
                                             "floor_internal": _floor_seconds(log_path) if tool.startswith("floor") else None,
                                             "summary": summary, "stored_bytes": stored,
                                             "ok": ok,
                                             "verify": verify, "log": log_path,
                                             "error_tail": tail if (rc != 0 or not ok) else "",
                                             "max_rps": a.max_rps, "burst": st.get("burst"),
                                             "throttled": st.get("throttled", 0),
                                             "throttled_ops": st.get("throttled_ops", {}),
                                             "needed_requests": needed_requests(site, sc),
                                             "failed_objects": failed, "load1": os.getloadavg()[0]})
                                log(f"  [{n}] {mode} {size} {lat}ms {proto} rep{rep + 1} ({sc}) {tool:11s} "
                                    f"{'-' if wall is None else f'{wall:7.2f}'} s  rc={rc} {verify}  "
                                    f"{fmt_ops(st['ops'])}" +
                                    (f"  conn {st.get('connections_https')} tls {st.get('tls_handshakes')} "
                                     f"resumed {st.get('tls_resumed')} failed {st.get('tls_failed')}"
                                     if proto == "https" else f"  conn {st.get('connections_http')}") +
                                    (f"  throttled {st.get('throttled', 0)}" if a.max_rps else ""))
                                if rc != 0 or not ok:
                                    log("      " + tail.strip().replace("\n", "\n      ")[-400:])
                        save()
    if uses_sitesync and _binary_id(a.sitesync_orig) != meta["sitesync_binary"]:
        meta["note"] = (f"{a.sitesync_orig} was rebuilt during the run; the run used the copy taken at its start")
        log("note: " + meta["note"])
    summary = save()
    shutil.rmtree(tl.work, ignore_errors=True)
    print(markdown(summary, meta))
    log(f"==> wrote {json_path} and {md_path}; logs in {logs}")


if __name__ == "__main__":
    main()
