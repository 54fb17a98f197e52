"""Integration tests of the invalidation ledger (issue 12, points 1, 5, 6 and 7) with the real binary against
moto_server (S3 + CloudFront, SigV4 checking on; signed CloudFront GETs verify thanks to moto_server_fixed.py) and
the FaultProxy. Invalidations are read with boto3 (list_invalidations / get_invalidation), the bucket with boto3;
the expected path sets are computed here from CLI.md's rules (test_cdn.expected_paths), never by sitesync.

    SITESYNC_BIN=$PWD/build/cli/sitesync python3 -m unittest -v tests/integration/test_ledger.py
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from test_cdn import expected_paths  # noqa: E402

BIN_OK, BIN_WHY = harness.sitesync_available()
needs_sitesync = unittest.skipUnless(BIN_OK, BIN_WHY)

SITE = {"index.html": "<p>home</p>", "post/index.html": "<p>post</p>", "css/site.css": "body{}"}


def covered(invs) -> set:
    out = set()
    for inv in invs:
        out.update(inv["Paths"])
    return out


@needs_sitesync
class LedgerCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        harness.start_moto_and_proxy(cls)
        cls.s3 = cls.server.boto3_s3()
        cls.cf = cls.server.boto3_cloudfront()

    def setUp(self):
        harness.last_run = None
        self.proxy.clear_faults()
        self.proxy.reset_counts()
        self._tmp = tempfile.TemporaryDirectory(prefix="sitesync-ledger-")
        self.addCleanup(self._tmp.cleanup)
        self.tmp = self._tmp.name
        self.home = os.path.join(self.tmp, "home")
        os.makedirs(self.home)
        self.bucket = harness.new_bucket_name(self._testMethodName[5:])
        self.s3.create_bucket(Bucket=self.bucket)

    def tearDown(self):
        self.proxy.clear_faults()
        if harness.test_failed(self):
            if harness.last_run is not None:
                sys.stderr.write(f"\n===== last sitesync run ({self.id()}) =====\n{harness.last_run.describe()}\n")
            sys.stderr.write(f"===== proxy log =====\n{harness.tail(self.proxy.log_text(), 4000)}\n")

    # -- helpers -------------------------------------------------------------------------------------------------
    def site(self, spec, name="site"):
        root = os.path.join(self.tmp, name)
        harness.make_site(root, spec)
        return root

    def journal_dir(self):
        return os.path.join(self.home, ".local", "state", "sitesync")

    def sitesync(self, *args, timeout=120):
        return harness.run_sitesync([str(a) for a in args], timeout=timeout, server=self.server, home=self.home)

    def sync(self, src, dest, dist, *extra, cf_endpoint=None):
        return self.sitesync("sync", src, dest, "--endpoint", self.proxy.endpoint, "--distribution", dist,
                             "--cloudfront-endpoint", cf_endpoint or self.proxy.endpoint, "--json", *extra)

    def assertExit(self, res, code):
        self.assertEqual(res.returncode, code, f"expected exit {code}\n{res.describe()}")

    def config(self, text):
        path = os.path.join(self.tmp, f"cfg-{uuid.uuid4().hex[:6]}.yaml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(textwrap.dedent(text))
        return path

    def custom_distribution(self, domain="www.example.com"):
        origin_id = "custom-" + uuid.uuid4().hex[:8]
        config = {
            "CallerReference": "ledger-" + uuid.uuid4().hex, "Comment": self.id(), "Enabled": True,
            "Origins": {"Quantity": 1, "Items": [{
                "Id": origin_id, "DomainName": domain, "OriginPath": "",
                "CustomOriginConfig": {"HTTPPort": 80, "HTTPSPort": 443, "OriginProtocolPolicy": "https-only"}}]},
            "DefaultCacheBehavior": {"TargetOriginId": origin_id, "ViewerProtocolPolicy": "redirect-to-https",
                                     "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6"},
        }
        return self.cf.create_distribution(DistributionConfig=config)["Distribution"]["Id"]


class ExplicitIdMappingTest(LedgerCase):
    """Point 1: --distribution ID maps keys like auto, and check says the same mapping."""

    def check_url_prefix(self, dest, dist, *extra):
        res = self.sitesync("check", dest, "--endpoint", self.proxy.endpoint, "--distribution", dist,
                            "--cloudfront-endpoint", self.proxy.endpoint, "--json", *extra)
        lines = {e["name"]: e for e in harness.parse_json_lines(res.stdout) if e.get("event") == "check"}
        origin = lines["origin"]
        m = re.search(r"invalidation paths are (/\S*?)KEY", origin["detail"])
        self.assertIsNotNone(m, origin)
        return m.group(1), origin

    def test_origin_paths_against_dest_prefixes_sync_and_check_agree(self):
        for origin_path in ("", "/blog", "/site"):
            dist = harness.create_distribution(self.cf, f"{self.bucket}.s3.amazonaws.com", origin_path=origin_path,
                                               comment=self.id())
            for prefix in ("", "blog/", "site/blog/"):
                with self.subTest(origin_path=origin_path, prefix=prefix):
                    src = self.site({f"p-{uuid.uuid4().hex[:6]}.css": "x{}"}, name=uuid.uuid4().hex[:8])
                    key = os.listdir(src)[0]
                    dest = f"s3://{self.bucket}/{prefix}"
                    fits = ("/" + prefix).startswith(origin_path + "/")
                    want_prefix = "/" + (("/" + prefix)[len(origin_path) + 1:] if fits else "")
                    before = len(harness.invalidations(self.cf, dist))
                    res = self.sync(src, dest, dist)
                    self.assertExit(res, 0)
                    new = harness.invalidations(self.cf, dist)[before:]
                    self.assertEqual(len(new), 1, new)
                    self.assertEqual(new[0]["Paths"], [want_prefix + key])
                    if not fits:
                        self.assertIn("no origin for", res.stderr, "the mismatch is said")
                    said, line = self.check_url_prefix(dest, dist)
                    self.assertEqual(said, want_prefix, line)
                    self.assertEqual(line["ok"], fits, line)

    def test_explicit_id_equals_auto_for_a_dest_prefix(self):
        dist = harness.create_distribution(self.cf, f"{self.bucket}.s3.amazonaws.com", comment=self.id())
        src = self.site(SITE)
        self.assertExit(self.sync(src, f"s3://{self.bucket}/blog", dist), 0)
        by_id = harness.invalidations(self.cf, dist)[-1]["Paths"]
        src2 = self.site({k: v + "!" for k, v in SITE.items()}, name="site2")
        self.assertExit(self.sync(src2, f"s3://{self.bucket}/blog", "auto"), 0)
        by_auto = harness.invalidations(self.cf, dist)[-1]["Paths"]
        self.assertEqual(by_id, by_auto)
        self.assertEqual(set(by_id), expected_paths(["blog/" + k for k in SITE]))

    def test_custom_origin_is_said_and_url_prefix_sets_the_mapping(self):
        dist = self.custom_distribution()
        src = self.site(SITE)
        res = self.sync(src, f"s3://{self.bucket}/blog", dist)
        self.assertExit(res, 0)
        self.assertIn("www.example.com", res.stderr)
        self.assertIn("cdn.url_prefix", res.stderr)
        self.assertEqual(set(harness.invalidations(self.cf, dist)[-1]["Paths"]), expected_paths(SITE))
        said, line = self.check_url_prefix(f"s3://{self.bucket}/blog", dist)
        self.assertEqual(said, "/")
        self.assertTrue(line["ok"], line)

        cfg = self.config("""\
            cdn:
              url_prefix: /news
            """)
        with open(os.path.join(src, "css/site.css"), "a", encoding="utf-8") as f:
            f.write("p{}")
        res = self.sync(src, f"s3://{self.bucket}/blog", dist, "--config", cfg)
        self.assertExit(res, 0)
        self.assertEqual(harness.invalidations(self.cf, dist)[-1]["Paths"], ["/news/css/site.css"])
        said, _ = self.check_url_prefix(f"s3://{self.bucket}/blog", dist, "--config", cfg)
        self.assertEqual(said, "/news/")

    def test_cloudfront_unreachable_at_start_does_not_block_publishing(self):
        dist = harness.create_distribution(self.cf, f"{self.bucket}.s3.amazonaws.com", comment=self.id())
        src = self.site(SITE)
        dead = f"http://127.0.0.1:{harness.free_loopback_port()}"
        res = self.sync(src, f"s3://{self.bucket}/blog", dist, cf_endpoint=dead)
        self.assertExit(res, 1)
        self.assertEqual(set(harness.list_bucket(self.s3, self.bucket, head=False)), {"blog/" + k for k in SITE},
                         "the uploads went although CloudFront was unreachable")
        self.assertEqual(harness.invalidations(self.cf, dist), [])
        self.assertIn("publishing goes on", res.stderr)
        # A later run, with nothing to upload and CloudFront back, computes the URL paths and delivers them.
        res = self.sync(src, f"s3://{self.bucket}/blog", dist)
        self.assertExit(res, 0)
        invs = harness.invalidations(self.cf, dist)
        self.assertEqual(len(invs), 1, invs)
        self.assertEqual(set(invs[0]["Paths"]), expected_paths(["blog/" + k for k in SITE]))


    def test_auto_with_cloudfront_unreachable_publishes_and_a_later_run_delivers(self):
        dist = harness.create_distribution(self.cf, f"{self.bucket}.s3.amazonaws.com", comment=self.id())
        src = self.site(SITE)
        dead = f"http://127.0.0.1:{harness.free_loopback_port()}"
        res = self.sync(src, f"s3://{self.bucket}/blog", "auto", cf_endpoint=dead)
        self.assertExit(res, 1)
        self.assertEqual(set(harness.list_bucket(self.s3, self.bucket, head=False)), {"blog/" + k for k in SITE})
        self.assertIn("publishing goes on", res.stderr)
        self.assertEqual(harness.invalidations(self.cf, dist), [])
        res = self.sync(src, f"s3://{self.bucket}/blog", "auto")
        self.assertExit(res, 0)
        invs = harness.invalidations(self.cf, dist)
        self.assertEqual(len(invs), 1, invs)
        self.assertEqual(set(invs[0]["Paths"]), expected_paths(["blog/" + k for k in SITE]))
        self.assertEqual([f for f in os.listdir(self.journal_dir()) if f.endswith(".json")], [])


class UnknownOutcomeTest(LedgerCase):
    """Point 5: a PUT whose answer is lost on every attempt stays owed until CloudFront has it, again next run."""

    def test_lost_put_answer_is_invalidated_by_the_next_run_with_nothing_to_upload(self):
        dist = harness.create_distribution(self.cf, f"{self.bucket}.s3.amazonaws.com", comment=self.id())
        src = self.site(SITE)
        self.assertExit(self.sync(src, f"s3://{self.bucket}", dist), 0)
        with open(os.path.join(src, "post/index.html"), "a", encoding="utf-8") as f:
            f.write("<p>changed</p>")
        before = len(harness.invalidations(self.cf, dist))
        # every attempt of the PUT reaches moto (which stores it); the answer never comes back
        self.proxy.inject(op="PutObject", action="forward_close", count=1000)
        res = self.sync(src, f"s3://{self.bucket}", dist)
        self.assertExit(res, 1)
        self.proxy.clear_faults()
        self.assertIn(b"changed", harness.get_bytes(self.s3, self.bucket, "post/index.html"))
        self.proxy.reset_counts()
        res = self.sync(src, f"s3://{self.bucket}", dist)
        self.assertExit(res, 0)
        events = harness.parse_json_lines(res.stdout)
        self.assertEqual([e for e in events if e.get("event") == "upload"], [], "nothing left to upload")
        new = harness.invalidations(self.cf, dist)[before:]
        self.assertTrue(new, "the path is invalidated")
        self.assertEqual(set(new[-1]["Paths"]), expected_paths(["post/index.html"]),
                         "the next run, with nothing to upload, still invalidates the path")
        self.assertEqual(self.proxy.count("PutObject"), 0)


class PermanentErrorTest(LedgerCase):
    """Point 6: a permanent CloudFront error names the reason and the fix; --discard-owed is the way out."""

    def test_access_denied_then_discard_owed(self):
        dist = harness.create_distribution(self.cf, f"{self.bucket}.s3.amazonaws.com", comment=self.id())
        src = self.site(SITE)
        self.proxy.inject(status=403, code="AccessDenied", count=1000, op="CreateInvalidation",
                          message="User is not authorized to perform: cloudfront:CreateInvalidation")
        res = self.sync(src, f"s3://{self.bucket}", dist)
        self.assertExit(res, 1)
        for says in ("AccessDenied", "cloudfront:CreateInvalidation", f"--discard-owed --distribution {dist}"):
            self.assertIn(says, res.stderr + res.stdout)
        res = self.sync(src, f"s3://{self.bucket}", dist)
        self.assertExit(res, 1)  # still owed, still refused
        self.proxy.clear_faults()
        # check reports what is owed, per distribution
        res = self.sitesync("check", f"s3://{self.bucket}", "--endpoint", self.proxy.endpoint, "--json")
        owed = [e for e in harness.parse_json_lines(res.stdout) if e.get("name") == "owed"]
        self.assertEqual(len(owed), 1, res.describe())
        self.assertIn(dist, owed[0]["detail"])
        self.assertIn(f"{len(expected_paths(SITE))} invalidation paths", owed[0]["detail"])
        # --discard-owed prints and drops them, exit 0, with no request at all
        self.proxy.reset_counts()
        res = self.sitesync("invalidate", "--discard-owed", "--distribution", dist)
        self.assertExit(res, 0)
        for p in expected_paths(SITE):
            self.assertIn(p, res.stdout.split())
        self.assertEqual(self.proxy.total(), 0)
        self.assertEqual([f for f in os.listdir(self.journal_dir()) if f.endswith(".json")], [])
        res = self.sync(src, f"s3://{self.bucket}", dist)
        self.assertExit(res, 0)
        self.assertEqual(harness.invalidations(self.cf, dist), [], "nothing was owed any more")
        # usage: --discard-owed takes no PATH
        res = self.sitesync("invalidate", "/x", "--discard-owed", "--distribution", dist)
        self.assertExit(res, 2)
        self.assertIn("takes no PATH", res.stderr)

    def test_max_paths_above_3000_is_a_config_error(self):
        src = self.site(SITE)
        cfg = self.config("""\
            cdn:
              max_paths: 3001
            """)
        res = self.sync(src, f"s3://{self.bucket}", "E123", "--config", cfg)
        self.assertExit(res, 2)
        self.assertIn("cdn.max_paths", res.stderr)
        self.assertIn("3000", res.stderr)
        self.assertEqual(self.proxy.total(), 0)


class TwoProcessesTest(LedgerCase):
    """Point 7: a watch and a manual sync of one distribution share the journal; neither drops the other's paths."""

    def test_watch_and_failing_manual_sync_both_end_up_invalidated(self):
        dist = harness.create_distribution(self.cf, f"{self.bucket}.s3.amazonaws.com", comment=self.id())
        watched = self.site(SITE, name="watched")
        manual = self.site({"m/index.html": "<p>m</p>", "m/app.js": "x()"}, name="manual")
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": self.home,
               "XDG_STATE_HOME": os.path.join(self.home, ".local", "state"), "AWS_REGION": "us-east-1",
               "AWS_EC2_METADATA_DISABLED": "true"}
        env.update(self.server.sitesync_env())
        args = [harness.sitesync_bin(), "watch", watched, f"s3://{self.bucket}/w", "--endpoint", self.proxy.endpoint,
                "--distribution", dist, "--cloudfront-endpoint", self.proxy.endpoint, "--json", "--debounce", "100"]
        log = open(os.path.join(self.tmp, "watch.out"), "w+", encoding="utf-8")
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env, stdin=subprocess.DEVNULL,
                                cwd=self.tmp)
        try:
            def summaries():
                log.flush()
                with open(log.name, encoding="utf-8") as f:
                    return f.read().count('"event":"summary"')
            harness.wait_until(lambda: summaries() >= 1, timeout=30, what="the watch's initial sync")
            # CloudFront refuses for a while: the manual sync journals its paths and exits 1 ...
            self.proxy.inject(status=503, code="ServiceUnavailable", count=10000, op="CreateInvalidation")
            res = self.sync(manual, f"s3://{self.bucket}/other", dist)
            self.assertExit(res, 1)
            # ... and the watch publishes a change meanwhile: its journal write must merge, not overwrite
            with open(os.path.join(watched, "css/site.css"), "a", encoding="utf-8") as f:
                f.write("p{color:red}")
            harness.wait_until(lambda: summaries() >= 2, timeout=60, what="the watch's batch")
            self.proxy.clear_faults()
            # CloudFront is back: the manual sync, with nothing to upload, delivers what is owed
            res = self.sync(manual, f"s3://{self.bucket}/other", dist)
            self.assertExit(res, 0)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
            log.close()
        want = {"/other" + p for p in expected_paths(["m/index.html", "m/app.js"])}
        want |= {"/w/css/site.css"}
        have = covered(harness.invalidations(self.cf, dist))
        self.assertEqual(want - have, set(), "every path of both processes is invalidated")
        self.assertEqual([f for f in os.listdir(self.journal_dir()) if f.endswith(".json")], [], "nothing owed")


if __name__ == "__main__":
    unittest.main(verbosity=2)
