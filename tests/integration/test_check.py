"""Integration tests of `sitesync check [DEST]`, the read-only preflight, against moto_server with SigV4 checking
on (S3 and CloudFront on one port), through the FaultProxy.

moto does not emulate a bucket in another region, so the proxy answers the way S3 does (documented by AWS and
seen in the SDKs): 301 PermanentRedirect with the x-amz-bucket-region header and <Bucket>/<Endpoint> in the body,
or 400 AuthorizationHeaderMalformed ("... the region 'us-east-1' is wrong; expecting 'eu-central-1'") with
<Region> in the body. The state of the bucket and distributions is checked independently with boto3; that check
changed nothing is checked on the proxy's request log (only GETs).

    SITESYNC_BIN=$PWD/build/cli/sitesync python3 -m unittest -v tests/integration/test_check.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import textwrap
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402

BIN_OK, BIN_WHY = harness.sitesync_available()
needs_sitesync = unittest.skipUnless(BIN_OK, BIN_WHY)

CHECK_NAMES = ["credentials", "bucket", "region", "cloudfront-list", "distribution", "origin"]
CLOUDFRONT_NAMES = ["cloudfront-list", "distribution", "origin"]


class _RegionAnswers:
    """A FaultProxy handler mixin: faults injected with code PermanentRedirect or AuthorizationHeaderMalformed are
    answered as S3 answers a request for a bucket that lives in `proxy.bucket_region`."""

    def _send_fault(self, fault, op):
        region = self.proxy.bucket_region
        bucket = self.path.partition("?")[0].strip("/").split("/")[0]
        if fault.code == "PermanentRedirect":
            body = harness.s3_error_xml(
                "PermanentRedirect",
                "The bucket you are attempting to access must be addressed using the specified endpoint. "
                "Please send all future requests to this endpoint.",
                {"Bucket": bucket, "Endpoint": f"{bucket}.s3.{region}.amazonaws.com"})
            self._send_own(301, body, {"x-amz-bucket-region": region})
            return
        if fault.code == "AuthorizationHeaderMalformed":
            message = (f"The authorization header is malformed; the region 'us-east-1' is wrong; expecting '{region}'"
                       if self.proxy.region_in_message else "The authorization header is malformed.")
            body = harness.s3_error_xml("AuthorizationHeaderMalformed", message, {"Region": region})
            self._send_own(400, body, {"x-amz-bucket-region": region} if self.proxy.region_header else {})
            return
        super()._send_fault(fault, op)


def events_by_name(events):
    return {e["name"]: e for e in events if e.get("event") == "check"}


class CheckCase(unittest.TestCase):
    server: harness.MotoServer
    proxy: harness.FaultProxy

    @classmethod
    def setUpClass(cls):
        harness.start_moto_and_proxy(cls)
        base = cls.proxy._server.RequestHandlerClass
        cls.proxy._server.RequestHandlerClass = type("RegionAnswersHandler", (_RegionAnswers, base), {})
        cls.proxy.bucket_region = "us-west-2"
        cls.proxy.region_header = True
        cls.proxy.region_in_message = True
        cls.s3 = cls.server.boto3_s3()
        cls.cf = cls.server.boto3_cloudfront()

    def setUp(self):
        harness.last_run = None
        self.proxy.clear_faults()
        self.proxy.record_bodies = False
        self.proxy.reset_counts()
        self._tmp = tempfile.TemporaryDirectory(prefix="sitesync-check-")
        self.addCleanup(self._tmp.cleanup)
        self.tmp = self._tmp.name
        self.bucket = harness.new_bucket_name(self._testMethodName[5:])
        self.s3.create_bucket(Bucket=self.bucket)
        self.s3.put_object(Bucket=self.bucket, Key="site/index.html", Body=b"<p>hi</p>")

    def tearDown(self):
        self.proxy.clear_faults()
        if harness.test_failed(self):
            if harness.last_run is not None:
                sys.stderr.write(f"\n===== last sitesync run ({self.id()}) =====\n{harness.last_run.describe()}\n")
            sys.stderr.write(f"===== proxy log =====\n{harness.tail(self.proxy.log_text(), 6000)}\n")

    # -- helpers -------------------------------------------------------------------------------------------------
    def check(self, *args, env_extra=None, server=True, cwd=None, json_out=True):
        argv = ["check", *args]
        if "--endpoint" not in args:
            argv += ["--endpoint", self.proxy.endpoint]
        if "--cloudfront-endpoint" not in args:
            argv += ["--cloudfront-endpoint", self.proxy.endpoint]
        if json_out:
            argv.append("--json")
        return harness.run_sitesync(argv, env_extra=env_extra, server=self.server if server else None, cwd=cwd,
                                    timeout=120)

    def assertExit(self, res, code):
        self.assertEqual(res.returncode, code, f"expected exit {code}\n{res.describe()}")

    def lines(self, res):
        events = harness.parse_json_lines(res.stdout)
        summary = harness.summary_of(events)
        checks = [e for e in events if e.get("event") == "check"]
        self.assertEqual([e["name"] for e in checks], CHECK_NAMES, res.describe())
        for e in checks:
            self.assertIsInstance(e["ok"], bool)
            self.assertTrue(e["detail"], e)
            if not e["ok"]:
                self.assertTrue(e.get("fix"), f"a failed check carries its fix: {e}")
        self.assertEqual(summary["failed"], sum(1 for e in checks if not e["ok"]))
        self.assertEqual(summary["ok"], summary["failed"] == 0)
        return events_by_name(checks), summary

    def assertReadOnly(self):
        writes = [(m, op) for (m, op), n in self.proxy.counts().items() if m not in ("GET", "HEAD") and n]
        self.assertEqual(writes, [], "check must only read")
        keys = [o["Key"] for o in self.s3.list_objects_v2(Bucket=self.bucket).get("Contents", [])]
        self.assertEqual(keys, ["site/index.html"])

    def distribution(self, bucket=None, origin_path=""):
        return harness.create_distribution(self.cf, f"{bucket or self.bucket}.s3.amazonaws.com",
                                           origin_path=origin_path, comment=self.id())

    # -- all ok --------------------------------------------------------------------------------------------------
    @needs_sitesync
    def test_all_ok_with_distribution_auto(self):
        dist = self.distribution()
        res = self.check(f"s3://{self.bucket}/site", "--distribution", "auto")
        self.assertExit(res, 0)
        lines, summary = self.lines(res)
        for name in CHECK_NAMES:
            self.assertTrue(lines[name]["ok"], lines[name])
            self.assertNotIn("skipped", lines[name], lines[name])
        self.assertIn("environment", lines["credentials"]["detail"])
        self.assertIn(f"ending in {self.server.access_key_id[-4:]}", lines["credentials"]["detail"])
        self.assertIn("holds objects", lines["bucket"]["detail"])
        self.assertIn("us-east-1", lines["region"]["detail"])
        self.assertIn(dist, lines["distribution"]["detail"])
        self.assertIn(f"{self.bucket}.s3.amazonaws.com", lines["origin"]["detail"])
        self.assertEqual(summary["failed"], 0)
        self.assertEqual(summary["checks"], 6)
        self.assertGreaterEqual(self.proxy.count("ListDistributions", "GET"), 1)
        self.assertEqual(self.proxy.count("ListObjectsV2", "GET"), 1)
        self.assertReadOnly()

    @needs_sitesync
    def test_all_ok_from_config_by_id_human_output(self):
        dist = self.distribution(origin_path="/site")
        cwd = os.path.join(self.tmp, "proj")
        os.makedirs(cwd)
        with open(os.path.join(cwd, "sitesync.yaml"), "w") as f:
            f.write(textwrap.dedent(f"""\
                source: public/
                destination: s3://{self.bucket}/site/blog
                endpoint: {self.proxy.endpoint}
                cdn:
                  distribution: {dist}
                  endpoint: {self.proxy.endpoint}
                """))
        res = harness.run_sitesync(["check"], server=self.server, cwd=cwd)
        self.assertExit(res, 0)
        out = res.stdout.splitlines()
        self.assertEqual([ln.split()[0] for ln in out[:6]], ["ok", "ok", "ok", "skip", "ok", "ok"], res.describe())
        self.assertTrue(out[3].startswith("skip cloudfront-list: not needed"), out[3])
        self.assertIn("nothing under the prefix yet", out[1])
        self.assertIn(f"{dist} serves s3://{self.bucket}/site/blog/ from origin {self.bucket}.s3.amazonaws.com/site",
                      out[5])
        self.assertIn("URLs start with /blog/", out[5])
        self.assertEqual(out[-1], "sitesync check: all ok (1 skipped)")
        self.assertEqual(self.proxy.count("GetDistribution", "GET"), 1)
        self.assertEqual(self.proxy.count("ListDistributions", "GET"), 0)
        self.assertReadOnly()

    @needs_sitesync
    def test_no_distribution_configured_skips_cloudfront(self):
        res = self.check(f"s3://{self.bucket}")
        self.assertExit(res, 0)
        lines, summary = self.lines(res)
        for name in CLOUDFRONT_NAMES:
            self.assertTrue(lines[name].get("skipped"), lines[name])
            self.assertIn("no distribution configured", lines[name]["detail"])
        self.assertEqual(summary["skipped"], 3)
        self.assertEqual(self.proxy.count("ListDistributions"), 0)

    # -- credentials ---------------------------------------------------------------------------------------------
    @needs_sitesync
    def test_wrong_secret_fails_with_fix_and_no_secret_in_output(self):
        self.distribution()
        wrong = "wRoNgSeCrEt/" + self.server.secret_access_key[12:]
        for json_out in (True, False):
            res = self.check(f"s3://{self.bucket}", "--distribution", "auto", json_out=json_out,
                             env_extra={"AWS_SECRET_ACCESS_KEY": wrong})
            self.assertExit(res, 1)
            text = res.stdout + res.stderr
            self.assertNotIn(wrong, text)
            self.assertNotIn(self.server.secret_access_key, text)
            self.assertNotIn(self.server.access_key_id, text, "at most the last 4 characters of the key ID")
            if json_out:
                lines, _ = self.lines(res)
                self.assertTrue(lines["credentials"]["ok"])
                bucket = lines["bucket"]
                self.assertFalse(bucket["ok"])
                self.assertIn("secret access key does not belong", bucket["detail"])
                self.assertIn("AWS_SECRET_ACCESS_KEY", bucket["fix"])
                for name in CLOUDFRONT_NAMES:
                    self.assertTrue(lines[name].get("skipped"), lines[name])
            else:
                self.assertIn("fail bucket: S3 refused the request signature", res.stdout)
                self.assertIn("     fix: correct the secret access key (AWS_SECRET_ACCESS_KEY)", res.stdout)
                self.assertIn("sitesync check: 1 of 6 checks failed", res.stdout)

    @needs_sitesync
    def test_unknown_key_id(self):
        res = self.check(f"s3://{self.bucket}", env_extra={"AWS_ACCESS_KEY_ID": "AKIAUNKNOWNKEY123456"})
        self.assertExit(res, 1)
        lines, _ = self.lines(res)
        self.assertFalse(lines["bucket"]["ok"])
        self.assertIn("AWS does not know the access key ID ending in 3456", lines["bucket"]["detail"])
        self.assertNotIn("AKIAUNKNOWNKEY123456", res.stdout + res.stderr)

    @needs_sitesync
    def test_no_credentials_at_all(self):
        res = self.check(f"s3://{self.bucket}", "--distribution", "auto", server=False)
        self.assertExit(res, 1)
        lines, summary = self.lines(res)
        self.assertFalse(lines["credentials"]["ok"])
        self.assertIn("no AWS credentials", lines["credentials"]["detail"])
        self.assertIn("AWS_ACCESS_KEY_ID", lines["credentials"]["fix"])
        for name in CHECK_NAMES[1:]:
            self.assertTrue(lines[name].get("skipped"), lines[name])
        self.assertEqual(summary["failed"], 1)
        self.assertEqual(self.proxy.total(), 0, "nothing is sent without credentials")

    @needs_sitesync
    def test_credentials_from_a_profile(self):
        home = os.path.join(self.tmp, "home")
        os.makedirs(os.path.join(home, ".aws"))
        with open(os.path.join(home, ".aws", "credentials"), "w") as f:
            f.write(f"[deploy]\naws_access_key_id = {self.server.access_key_id}\n"
                    f"aws_secret_access_key = {self.server.secret_access_key}\n")
        res = harness.run_sitesync(["check", f"s3://{self.bucket}", "--profile", "deploy", "--endpoint",
                                    self.proxy.endpoint, "--json"], home=home)
        self.assertExit(res, 0)
        lines, _ = self.lines(res)
        self.assertIn("profile deploy in", lines["credentials"]["detail"])
        self.assertNotIn(self.server.secret_access_key, res.stdout + res.stderr)

    @needs_sitesync
    def test_access_denied_names_the_permission(self):
        import boto3

        iam = boto3.client(
            "iam", endpoint_url=self.server.endpoint, region_name=harness.REGION,
            aws_access_key_id=self.server.access_key_id, aws_secret_access_key=self.server.secret_access_key)
        user = "no-perms-" + self.bucket[-6:]
        iam.create_user(UserName=user)
        key = iam.create_access_key(UserName=user)["AccessKey"]
        res = self.check(f"s3://{self.bucket}/site",
                         env_extra={"AWS_ACCESS_KEY_ID": key["AccessKeyId"],
                                    "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]})
        self.assertExit(res, 1)
        lines, _ = self.lines(res)
        self.assertFalse(lines["bucket"]["ok"])
        self.assertIn("access denied", lines["bucket"]["detail"])
        self.assertIn(f"s3:ListBucket on arn:aws:s3:::{self.bucket}", lines["bucket"]["fix"])

    # -- bucket and region ---------------------------------------------------------------------------------------
    @needs_sitesync
    def test_missing_bucket(self):
        missing = harness.new_bucket_name("missing")
        res = self.check(f"s3://{missing}/site")
        self.assertExit(res, 1)
        lines, _ = self.lines(res)
        self.assertFalse(lines["bucket"]["ok"])
        self.assertIn(f"bucket {missing} does not exist", lines["bucket"]["detail"])
        self.assertIn(f"aws s3 mb s3://{missing}", lines["bucket"]["fix"])
        self.assertTrue(lines["region"].get("skipped"))

    @needs_sitesync
    def test_wrong_region_permanent_redirect(self):
        self.proxy.record_bodies = True
        self.proxy.inject(status=301, code="PermanentRedirect", op="ListObjectsV2", count=1)
        res = self.check(f"s3://{self.bucket}/site")
        # sync, plan and watch follow the bucket's region (issue 13, point 4): check says so, and fails nothing.
        self.assertExit(res, 0)
        lines, _ = self.lines(res)
        region = lines["region"]
        self.assertTrue(region["ok"], region)
        self.assertIn(f"bucket {self.bucket} is in us-west-2, not us-east-1", region["detail"])
        self.assertIn("301 PermanentRedirect", region["detail"])
        self.assertIn("sync, plan and watch follow it for the run, with a note", region["detail"])
        self.assertIn("--region us-west-2 (or region: us-west-2 in sitesync.yaml) saves a request each run",
                      region["detail"])
        # The hint was followed: the listing was sent again, signed for us-west-2, and worked.
        self.assertTrue(lines["bucket"]["ok"], lines["bucket"])
        self.assertIn("can be listed in us-west-2", lines["bucket"]["detail"])
        retried = [r for r in self.proxy.recorded if r.op == "ListObjectsV2"]
        self.assertEqual(len(retried), 1)
        self.assertIn("/us-west-2/s3/aws4_request", retried[0].header("Authorization"))
        self.assertIn("/us-east-1/s3/aws4_request", self.proxy.faulted[0].header("Authorization"))

    @needs_sitesync
    def test_wrong_region_authorization_header_malformed_human(self):
        self.proxy.bucket_region = "eu-central-1"
        self.addCleanup(setattr, self.proxy, "bucket_region", "us-west-2")
        self.proxy.inject(status=400, code="AuthorizationHeaderMalformed", op="ListObjectsV2", count=1)
        res = self.check(f"s3://{self.bucket}", json_out=False)
        self.assertExit(res, 0)
        self.assertIn(f"ok   region: bucket {self.bucket} is in eu-central-1, not us-east-1 (S3 answered 400 "
                      "AuthorizationHeaderMalformed): sync, plan and watch follow it", res.stdout)
        self.assertIn("--region eu-central-1 (or region: eu-central-1 in sitesync.yaml) saves a request each run",
                      res.stdout)

    @needs_sitesync
    def test_sync_names_the_region_from_the_error_body(self):
        # No header and a message that does not name it: only <Region> in the body tells (aws/ reads it).
        self.proxy.region_header = False
        self.proxy.region_in_message = False
        self.addCleanup(setattr, self.proxy, "region_header", True)
        self.addCleanup(setattr, self.proxy, "region_in_message", True)
        site = os.path.join(self.tmp, "site")
        harness.make_site(site, {"index.html": "<p>x</p>"})
        self.proxy.inject(status=400, code="AuthorizationHeaderMalformed", op="ListObjectsV2", count=1)
        res = harness.run_sitesync(["plan", site, f"s3://{self.bucket}", "--endpoint", self.proxy.endpoint],
                                   server=self.server)
        # Followed (issue 13, point 4): the note names the region read from the body, and the plan goes on.
        self.assertExit(res, 0)
        self.assertIn(f"bucket {self.bucket} is in region us-west-2, not us-east-1", res.stderr)

    @needs_sitesync
    def test_unreachable_endpoint(self):
        dead = f"http://127.0.0.1:{harness.free_loopback_port()}"
        res = self.check(f"s3://{self.bucket}", "--endpoint", dead)
        self.assertExit(res, 1)
        lines, _ = self.lines(res)
        self.assertIn("cannot reach S3", lines["bucket"]["detail"])
        self.assertIn("--endpoint", lines["bucket"]["fix"])

    # -- CloudFront ----------------------------------------------------------------------------------------------
    @needs_sitesync
    def test_no_distribution_for_the_bucket(self):
        res = self.check(f"s3://{self.bucket}/site", "--distribution", "auto")
        self.assertExit(res, 1)
        lines, _ = self.lines(res)
        self.assertTrue(lines["cloudfront-list"]["ok"])
        dist = lines["distribution"]
        self.assertFalse(dist["ok"])
        self.assertIn(f"no CloudFront distribution has an origin for s3://{self.bucket}/site/", dist["detail"])
        self.assertIn(f"create a CloudFront distribution with the origin {self.bucket}.s3.amazonaws.com",
                      dist["fix"])
        self.assertIn("delete the cdn: section", dist["fix"])
        self.assertTrue(lines["origin"].get("skipped"))

    @needs_sitesync
    def test_unknown_distribution_id(self):
        res = self.check(f"s3://{self.bucket}", "--distribution", "E0000000000000")
        self.assertExit(res, 1)
        lines, _ = self.lines(res)
        self.assertTrue(lines["cloudfront-list"].get("skipped"))
        self.assertFalse(lines["distribution"]["ok"])
        self.assertIn("E0000000000000 does not exist", lines["distribution"]["detail"])
        self.assertIn("--distribution auto", lines["distribution"]["fix"])

    @needs_sitesync
    def test_distribution_of_another_bucket(self):
        other = self.distribution(bucket="someone-elses-bucket")
        res = self.check(f"s3://{self.bucket}", "--distribution", other)
        self.assertExit(res, 1)
        lines, _ = self.lines(res)
        self.assertTrue(lines["distribution"]["ok"])
        origin = lines["origin"]
        self.assertFalse(origin["ok"])
        self.assertIn("someone-elses-bucket.s3.amazonaws.com", origin["detail"])
        self.assertIn("--distribution auto", origin["fix"])

    @needs_sitesync
    def test_two_distributions_for_the_bucket(self):
        a, b = self.distribution(), self.distribution()
        res = self.check(f"s3://{self.bucket}", "--distribution", "auto")
        self.assertExit(res, 1)
        lines, _ = self.lines(res)
        self.assertIn(a, lines["distribution"]["detail"])
        self.assertIn(b, lines["distribution"]["detail"])
        self.assertIn("choose one", lines["distribution"]["fix"])

    @needs_sitesync
    def test_cloudfront_list_denied(self):
        self.proxy.inject(status=403, code="AccessDenied", op="ListDistributions", count=5,
                          message="User is not authorized to perform: cloudfront:ListDistributions")
        res = self.check(f"s3://{self.bucket}", "--distribution", "auto")
        self.assertExit(res, 1)
        lines, _ = self.lines(res)
        self.assertFalse(lines["cloudfront-list"]["ok"])
        self.assertIn("cloudfront:ListDistributions", lines["cloudfront-list"]["fix"])
        self.assertTrue(lines["distribution"].get("skipped"))

    # -- usage ---------------------------------------------------------------------------------------------------
    @needs_sitesync
    def test_usage_errors_exit_2(self):
        for args, says in ((["check"], "no DEST given"),
                           (["check", "http://bucket"], "does not start with s3://"),
                           # --dry-run and --wait are accepted and ignored (issue 12, point 12: test_cli_common).
                           (["check", f"s3://{self.bucket}", "--distribution", "bad/id"], "bad distribution"),
                           (["check", f"s3://{self.bucket}", "--endpoint", "ftp://x"], "bad endpoint")):
            res = harness.run_sitesync(args, server=self.server)
            self.assertExit(res, 2)
            self.assertIn(says, res.stderr)
            self.assertEqual(res.stdout, "")
        self.assertEqual(self.proxy.total(), 0)


if __name__ == "__main__":
    unittest.main()
