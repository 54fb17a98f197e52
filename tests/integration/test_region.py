"""Integration tests of issue 13, point 4: a bucket in another region than the configured one is followed.

moto_server (auth on) does not answer a request signed for the wrong region the way S3 does: a bucket created in
eu-west-1 is listed, written and read with requests signed for us-east-1, and no answer names its region (checked
by test_moto_does_not_redirect below). So a FaultProxy sits in front of moto and answers as S3 documents it, to
every request for the bucket whose Authorization credential scope names another region than the bucket's:
301 PermanentRedirect with the x-amz-bucket-region header (and <Bucket>/<Endpoint> in the body), or 400
AuthorizationHeaderMalformed ("the region 'us-east-1' is wrong; expecting 'eu-west-1'", <Region> in the body).
Everything else is forwarded. The real binary must exit 0 with one note naming both regions; the bucket is
checked with boto3 straight on moto.

    SITESYNC_BIN=$PWD/build/cli/sitesync python3 -m unittest -v tests/integration/test_region.py
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402

BIN_OK, BIN_WHY = harness.sitesync_available()
needs_sitesync = unittest.skipUnless(BIN_OK, BIN_WHY)

BUCKET_REGION = "eu-west-1"
SCOPE = re.compile(r"Credential=[^/,]+/\d{8}/([^/,]+)/s3/aws4_request")


class _RegionAnswers:
    """A FaultProxy handler mixin: requests for `proxy.region_bucket` signed for another region than
    `proxy.bucket_region` are answered as S3 answers them (`proxy.answer`: "redirect" or "malformed"), the rest
    forwarded. `proxy.pass_listing` lets ListObjectsV2 through whatever its region (so that the uploads meet the
    wrong region first). Every S3 request's signing region is kept in `proxy.signed` as (method, op, region,
    refused)."""

    def _handle(self):
        proxy = self.proxy
        parts = self.raw_requestline.rstrip(b"\r\n").split(b" ")
        target = (parts[1] if len(parts) >= 2 else self.path.encode("latin-1")).decode("latin-1")
        match = SCOPE.search(self.headers.get("Authorization") or "")
        bucket = target.partition("?")[0].lstrip("/").split("/")[0]
        if match is None or bucket != proxy.region_bucket:
            return super()._handle()
        op = harness.classify_request(self.command, target, self.headers)
        region = match.group(1)
        refuse = region != proxy.bucket_region and not (proxy.pass_listing and op == "ListObjectsV2")
        with proxy._lock:
            proxy.signed.append((self.command, op, region, refuse))
        if not refuse:
            return super()._handle()
        proxy._record(self.command, op, target)
        try:
            self._drain_body()
        except (ConnectionError, OSError):
            self.close_connection = True
            return
        if proxy.answer == "redirect":
            body = harness.s3_error_xml(
                "PermanentRedirect",
                "The bucket you are attempting to access must be addressed using the specified endpoint. "
                "Please send all future requests to this endpoint.",
                {"Bucket": bucket, "Endpoint": f"{bucket}.s3.{proxy.bucket_region}.amazonaws.com"})
            self._send_own(301, body, {"x-amz-bucket-region": proxy.bucket_region})
        else:
            body = harness.s3_error_xml(
                "AuthorizationHeaderMalformed",
                f"The authorization header is malformed; the region '{region}' is wrong; expecting "
                f"'{proxy.bucket_region}'",
                {"Region": proxy.bucket_region})
            self._send_own(400, body)


class RegionCase(unittest.TestCase):
    server: harness.MotoServer
    proxy: harness.FaultProxy

    @classmethod
    def setUpClass(cls):
        harness.start_moto_and_proxy(cls)
        base = cls.proxy._server.RequestHandlerClass
        cls.proxy._server.RequestHandlerClass = type("RegionAnswersHandler", (_RegionAnswers, base), {})
        cls.proxy.bucket_region = BUCKET_REGION
        cls.proxy.region_bucket = None
        cls.proxy.answer = "redirect"
        cls.proxy.pass_listing = False
        cls.proxy.signed = []
        import boto3
        from botocore.config import Config

        # boto3 in the bucket's own region, straight on moto: the independent view of the bucket.
        cls.s3 = boto3.client("s3", endpoint_url=cls.server.endpoint, region_name=BUCKET_REGION,
                              aws_access_key_id=cls.server.access_key_id,
                              aws_secret_access_key=cls.server.secret_access_key,
                              config=Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 3},
                                            request_checksum_calculation="when_required",
                                            response_checksum_validation="when_required"))

    def setUp(self):
        harness.last_run = None
        self.proxy.clear_faults()
        self.proxy.reset_counts()
        self.proxy.answer = "redirect"
        self.proxy.pass_listing = False
        with self.proxy._lock:
            self.proxy.signed = []
        self._tmp = tempfile.TemporaryDirectory(prefix="sitesync-region-")
        self.addCleanup(self._tmp.cleanup)
        self.tmp = self._tmp.name
        self.bucket = harness.new_bucket_name(self._testMethodName[5:])
        self.s3.create_bucket(Bucket=self.bucket, CreateBucketConfiguration={"LocationConstraint": BUCKET_REGION})
        self.proxy.region_bucket = self.bucket

    def tearDown(self):
        if harness.test_failed(self):
            if harness.last_run is not None:
                sys.stderr.write(f"\n===== last sitesync run ({self.id()}) =====\n{harness.last_run.describe()}\n")
            sys.stderr.write(f"===== proxy log =====\n{harness.tail(self.proxy.log_text(), 4000)}\n")

    # -- helpers ---------------------------------------------------------------------------------------------------
    def sitesync(self, *args, timeout=120):
        return harness.run_sitesync([*args, "--endpoint", self.proxy.endpoint], server=self.server, timeout=timeout)

    def signed(self):
        with self.proxy._lock:
            return list(self.proxy.signed)

    def refused(self):
        return [s for s in self.signed() if s[3]]

    def assertNotedOnce(self, stderr):
        notes = [line for line in stderr.splitlines() if f"is in region {BUCKET_REGION}" in line]
        self.assertEqual(len(notes), 1, stderr)
        self.assertIn(f"bucket {self.bucket} is in region {BUCKET_REGION}, not us-east-1", notes[0])
        self.assertNotIn("warning", notes[0])

    def assertBucketHolds(self, spec, prefix=""):
        want = {prefix + k: harness.sha256_hex(v) for k, v in harness.expected_uploads(spec).items()}
        listed = harness.list_bucket(self.s3, self.bucket, head=False)
        got = {k: harness.sha256_hex(harness.get_bytes(self.s3, self.bucket, k)) for k in listed}
        self.assertEqual(got, want)

    # -- tests -----------------------------------------------------------------------------------------------------
    def test_moto_does_not_redirect(self):
        # Why the proxy answers: moto takes a request signed for us-east-1 for a bucket of eu-west-1.
        s3_us = self.server.boto3_s3()  # us-east-1, straight on moto
        s3_us.put_object(Bucket=self.bucket, Key="probe", Body=b"x")
        listed = s3_us.list_objects_v2(Bucket=self.bucket)
        self.assertEqual([o["Key"] for o in listed["Contents"]], ["probe"])
        self.assertNotIn("x-amz-bucket-region", listed["ResponseMetadata"]["HTTPHeaders"])
        self.assertEqual(self.s3.get_bucket_location(Bucket=self.bucket)["LocationConstraint"], BUCKET_REGION)

    @needs_sitesync
    def test_sync_follows_a_permanent_redirect_for_every_operation(self):
        spec = {"index.html": "<p>home</p>", "blog/post/index.html": "<p>post</p>", "css/site.css": "body{}",
                "big.bin": os.urandom(17 << 20)}  # above the 16 MiB threshold: multipart
        self.s3.put_object(Bucket=self.bucket, Key="site/stale.html", Body=b"old")
        src = os.path.join(self.tmp, "site")
        harness.make_site(src, spec)
        res = self.sitesync("sync", src, f"s3://{self.bucket}/site", "--delete", "--json")
        self.assertEqual(res.returncode, 0, res.describe())
        self.assertNotedOnce(res.stderr)
        events = harness.parse_json_lines(res.stdout)
        summary = harness.summary_of(events)
        self.assertEqual((summary["uploaded"], summary["deleted"], summary["failed"]), (4, 1, 0), res.describe())
        self.assertFalse([e for e in events if e.get("event") == "error"])
        # Only the first request, the listing, met the wrong region; every later one was signed for the bucket's.
        signed = self.signed()
        self.assertEqual([s[1:] for s in signed if s[3]], [("ListObjectsV2", "us-east-1", True)])
        self.assertEqual(signed[0][1], "ListObjectsV2")
        self.assertEqual({s[2] for s in signed[1:]}, {BUCKET_REGION})
        ops = {s[1] for s in signed[1:]}
        for op in ("ListObjectsV2", "PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload",
                   "DeleteObjects"):
            self.assertIn(op, ops)
        self.assertBucketHolds(spec, "site/")

    @needs_sitesync
    def test_plan_and_sync_follow_authorization_header_malformed(self):
        self.proxy.answer = "malformed"
        spec = {"index.html": "<p>home</p>", "a.css": "a{}"}
        src = os.path.join(self.tmp, "site")
        harness.make_site(src, spec)
        plan = self.sitesync("plan", src, f"s3://{self.bucket}")
        self.assertEqual(plan.returncode, 0, plan.describe())
        self.assertNotedOnce(plan.stderr)
        self.assertEqual(harness.list_bucket(self.s3, self.bucket, head=False), {})
        res = self.sitesync("sync", src, f"s3://{self.bucket}")
        self.assertEqual(res.returncode, 0, res.describe())
        self.assertNotedOnce(res.stderr)
        self.assertEqual(len(self.refused()), 2, "one refused listing per run")
        self.assertBucketHolds(spec)

    @needs_sitesync
    def test_uploads_in_flight_with_the_old_region_are_sent_again(self):
        # A listing that passes: the uploads, many in flight together, are the first to meet the wrong region.
        self.proxy.pass_listing = True
        spec = {f"assets/f{i:02}.css": f"f{i}{{}}" * 40 for i in range(40)}
        spec["index.html"] = "<p>home</p>"
        src = os.path.join(self.tmp, "site")
        harness.make_site(src, spec)
        res = self.sitesync("sync", src, f"s3://{self.bucket}", "--jobs", "16", "--json")
        self.assertEqual(res.returncode, 0, res.describe())
        self.assertNotedOnce(res.stderr)
        summary = harness.summary_of(harness.parse_json_lines(res.stdout))
        self.assertEqual((summary["uploaded"], summary["failed"]), (41, 0), res.describe())
        refused = self.refused()
        self.assertGreaterEqual(len(refused), 1)
        self.assertTrue(all(op == "PutObject" and region == "us-east-1" for _m, op, region, _r in refused), refused)
        # Each refused PUT was sent again signed for eu-west-1: every object is there.
        puts = [s for s in self.signed() if s[1] == "PutObject" and not s[3]]
        self.assertEqual(len(puts), 41)
        self.assertEqual({s[2] for s in puts}, {BUCKET_REGION})
        self.assertBucketHolds(spec)

    @needs_sitesync
    def test_watch_keeps_the_region_for_later_batches(self):
        spec = {"index.html": "<p>v1</p>", "a.css": "a{}"}
        src = os.path.join(self.tmp, "site")
        harness.make_site(src, spec)
        watch = _Watch(["watch", src, f"s3://{self.bucket}", "--endpoint", self.proxy.endpoint, "--json",
                        "--debounce", "100"], self.server, self.tmp)
        self.addCleanup(watch.stop)
        watch.wait_summary(batch=0, timeout=60)
        self.assertEqual(len(self.refused()), 1)
        after_initial = len(self.signed())
        for n in (2, 3):
            with open(os.path.join(src, "index.html"), "w") as f:
                f.write(f"<p>v{n}</p>")
            watch.wait_summary(batch=n - 1, timeout=30)
            self.assertEqual(harness.get_bytes(self.s3, self.bucket, "index.html"), f"<p>v{n}</p>".encode())
        later = self.signed()[after_initial:]
        self.assertTrue(any(op == "PutObject" for _m, op, _r, _x in later), later)
        self.assertEqual({region for _m, _op, region, _x in later}, {BUCKET_REGION})
        self.assertEqual(len(self.refused()), 1, "no request of a later batch met the wrong region")
        watch.stop()
        self.assertNotedOnce(watch.stderr())

    @needs_sitesync
    def test_check_says_what_it_found_and_that_sync_follows_it(self):
        res = harness.run_sitesync(["check", f"s3://{self.bucket}", "--endpoint", self.proxy.endpoint, "--json"],
                                   server=self.server)
        self.assertEqual(res.returncode, 0, res.describe())
        lines = {e["name"]: e for e in harness.parse_json_lines(res.stdout) if e.get("event") == "check"}
        self.assertTrue(lines["bucket"]["ok"], lines["bucket"])
        self.assertIn(f"can be listed in {BUCKET_REGION}", lines["bucket"]["detail"])
        region = lines["region"]
        self.assertTrue(region["ok"], region)
        self.assertIn(f"bucket {self.bucket} is in {BUCKET_REGION}, not us-east-1 (S3 answered 301 PermanentRedirect)",
                      region["detail"])
        self.assertIn("sync, plan and watch follow it", region["detail"])
        self.assertIn(f"--region {BUCKET_REGION}", region["detail"])


class _Watch:
    """`sitesync watch` as a child process (clean environment as harness.run_sitesync builds it), stdout read into
    JSON events by a thread, stderr to a file; stopped by its own PID."""

    def __init__(self, args, server, tmp):
        home = os.path.join(tmp, "home")
        os.makedirs(home, exist_ok=True)
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "HOME": home,
               "XDG_STATE_HOME": os.path.join(home, ".state"), "XDG_CACHE_HOME": os.path.join(home, ".cache"),
               "XDG_CONFIG_HOME": os.path.join(home, ".config"), "TMPDIR": tmp, "AWS_REGION": harness.REGION,
               "AWS_EC2_METADATA_DISABLED": "true", **server.sitesync_env()}
        for k in harness._PASSTHROUGH_ENV:
            if k in os.environ:
                env[k] = os.environ[k]
        self.args = args
        self.events = []
        self._cond = threading.Condition()
        self._stderr_path = os.path.join(tmp, "watch.stderr")
        self._stderr = open(self._stderr_path, "wb")
        cwd = os.path.join(tmp, "cwd")
        os.makedirs(cwd, exist_ok=True)
        self.proc = subprocess.Popen([harness.sitesync_bin(), *args], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=self._stderr, env=env, cwd=cwd)
        with harness._live_lock:
            harness._live_processes.add(self.proc)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for raw in iter(self.proc.stdout.readline, b""):
            try:
                event = json.loads(raw)
            except json.JSONDecodeError:
                event = {"event": "not-json", "line": raw.decode("utf-8", "replace")}
            with self._cond:
                self.events.append(event)
                self._cond.notify_all()

    def stderr(self):
        if not self._stderr.closed:
            self._stderr.flush()
        with open(self._stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_summary(self, batch, timeout):
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for e in self.events:
                    if e.get("event") == "summary" and e.get("batch") == batch:
                        return e
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise AssertionError(f"no summary of batch {batch} within {timeout}s; events {self.events}\n"
                                         f"stderr:\n{harness.tail(self.stderr(), 4000)}")
                self._cond.wait(min(left, 0.25))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(2)  # SIGINT, to this process's own PID
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._reader.join(timeout=5)
        if not self._reader.is_alive():
            self.proc.stdout.close()
        with harness._live_lock:
            harness._live_processes.discard(self.proc)
        if not self._stderr.closed:
            self._stderr.close()


if __name__ == "__main__":
    unittest.main()
