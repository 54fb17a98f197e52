"""Integration tests of endpoint resolution like the AWS CLI (issue 13 point 3), against moto_server with SigV4
checking on: AWS_ENDPOINT_URL_S3 alone, AWS_ENDPOINT_URL with AWS_ENDPOINT_URL_CLOUDFRONT, a `services` section in
the config file, AWS_IGNORE_CONFIGURED_ENDPOINT_URLS, and the endpoint URL with a path (refused: exit 2, nothing
sent). A FaultProxy in front of moto counts which requests went where; every outcome in the bucket and the
invalidations is checked with boto3, never with sitesync.

    SITESYNC_BIN=$PWD/build/cli/sitesync python3 -m unittest -v tests/integration/test_endpoints.py
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

SITE = {
    "index.html": "<!doctype html><title>Home</title>\n",
    "blog/index.html": "<!doctype html><title>Blog</title>\n",
    "css/site.css": "body { color: #333 }\n",
}


def dead_endpoint() -> str:
    """A loopback URL where nothing listens: a request sent there fails (connection refused)."""
    return f"http://127.0.0.1:{harness.free_loopback_port()}"


@needs_sitesync
class EndpointsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        harness.start_moto_and_proxy(cls)
        cls.s3 = cls.server.boto3_s3()
        cls.cf = cls.server.boto3_cloudfront()

    def setUp(self):
        harness.last_run = None
        self.proxy.clear_faults()
        self.proxy.reset_counts()
        self._tmp = tempfile.TemporaryDirectory(prefix="sitesync-endpoints-")
        self.addCleanup(self._tmp.cleanup)
        self.tmp = self._tmp.name
        self.bucket = harness.new_bucket_name(self._testMethodName[5:])
        self.s3.create_bucket(Bucket=self.bucket)
        self.root = os.path.join(self.tmp, "site")
        harness.make_site(self.root, SITE)

    def tearDown(self):
        if harness.test_failed(self):
            if harness.last_run is not None:
                sys.stderr.write(f"\n===== last sitesync run ({self.id()}) =====\n{harness.last_run.describe()}\n")
            sys.stderr.write(f"===== proxy log =====\n{harness.tail(self.proxy.log_text(), 6000)}\n")
            self.server.dump_log(f"moto server log for {self.id()}", limit=6000)

    # -- helpers -------------------------------------------------------------------------------------------------
    def keys(self):
        return sorted(harness.list_bucket(self.s3, self.bucket))

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(textwrap.dedent(text))
        return path

    def sync(self, *extra, env=None, json_out=True):
        args = ["sync", self.root, f"s3://{self.bucket}", *extra]
        if json_out:
            args.append("--json")
        return harness.run_sitesync(args, env_extra=env, server=self.server)

    def assert_published(self, r):
        self.assertEqual(r.returncode, 0, r.describe())
        self.assertEqual(self.keys(), sorted(SITE), r.describe())
        summary = harness.summary_of(harness.parse_json_lines(r.stdout))
        self.assertEqual(summary["uploaded"], len(SITE))

    # -- tests -----------------------------------------------------------------------------------------------------
    def test_aws_endpoint_url_s3_alone_reaches_the_server(self):
        # No --endpoint: the variable names the server (through the proxy, to see that every request went there),
        # and a configured endpoint means path-style, as --endpoint does.
        env = {"AWS_ENDPOINT_URL_S3": self.proxy.endpoint, "AWS_ENDPOINT_URL": dead_endpoint()}
        r = self.sync(env=env)
        self.assert_published(r)
        self.assertEqual(self.proxy.count("PutObject"), len(SITE), self.proxy.counts())
        self.assertGreaterEqual(self.proxy.count("ListObjectsV2"), 1, self.proxy.counts())
        # -v names the setting that chose the endpoint.
        harness.make_site(self.root, {"new.txt": "new\n"})
        v = harness.run_sitesync(["sync", self.root, f"s3://{self.bucket}", "-v"], env_extra=env, server=self.server)
        self.assertEqual(v.returncode, 0, v.describe())
        self.assertIn("AWS_ENDPOINT_URL_S3", v.stderr)
        self.assertIn("path-style", v.stderr)
        self.assertIn("new.txt", self.keys())

    def test_endpoint_option_beats_the_environment(self):
        env = {"AWS_ENDPOINT_URL_S3": dead_endpoint(), "AWS_ENDPOINT_URL": dead_endpoint()}
        r = self.sync("--endpoint", self.proxy.endpoint, env=env)
        self.assert_published(r)
        self.assertEqual(self.proxy.count("PutObject"), len(SITE))

    def test_aws_endpoint_url_with_cloudfront_specific_one_and_distribution(self):
        # S3 from the global variable (straight to moto), CloudFront from its own (through the proxy): the
        # invalidation goes through the proxy, the uploads do not.
        dist = harness.create_distribution(self.cf, f"{self.bucket}.s3.amazonaws.com", comment=self.id())
        env = {"AWS_ENDPOINT_URL": self.server.endpoint, "AWS_ENDPOINT_URL_CLOUDFRONT": self.proxy.endpoint}
        r = self.sync("--distribution", dist, env=env)
        self.assert_published(r)
        self.assertEqual(self.proxy.count("CreateInvalidation"), 1, self.proxy.counts())
        self.assertEqual(self.proxy.count("PutObject"), 0, self.proxy.counts())
        invs = harness.invalidations(self.cf, dist)
        self.assertEqual(len(invs), 1)
        self.assertEqual(set(invs[0]["Paths"]), {"/index.html", "/", "/blog/index.html", "/blog/", "/blog",
                                                 "/css/site.css"})

    def test_services_section_in_the_config_file(self):
        # The profile's services section beats its endpoint_url (a dead one here); --distribution auto finds the
        # distribution through the services section's CloudFront endpoint.
        dist = harness.create_distribution(self.cf, f"{self.bucket}.s3.us-east-1.amazonaws.com", comment=self.id())
        config = self.write("aws-config", f"""\
            [default]
            region = us-east-1
            endpoint_url = {dead_endpoint()}
            services = local-moto

            [services local-moto]
            s3 =
              endpoint_url = {self.server.endpoint}
            cloudfront =
              endpoint_url = {self.proxy.endpoint}
            """)
        r = self.sync("--distribution", "auto", env={"AWS_CONFIG_FILE": config})
        self.assert_published(r)
        self.assertEqual(self.proxy.count("PutObject"), 0, self.proxy.counts())
        self.assertEqual(self.proxy.count("CreateInvalidation"), 1, self.proxy.counts())
        invs = harness.invalidations(self.cf, dist)
        self.assertEqual(len(invs), 1, invs)
        self.assertIn("/blog/", invs[0]["Paths"])

        # A profile naming a services section that does not exist is a config error (exit 2), nothing sent.
        self.proxy.reset_counts()
        broken = self.write("aws-config-broken", "[default]\nservices = nowhere\n")
        bad = self.sync("--endpoint", self.proxy.endpoint, env={"AWS_CONFIG_FILE": broken}, json_out=False)
        self.assertEqual(bad.returncode, 2, bad.describe())
        self.assertIn("[services nowhere]", bad.stderr)
        self.assertEqual(self.proxy.total(), 0, self.proxy.counts())

    def test_ignore_configured_endpoint_urls(self):
        # The explicit --endpoint still counts; the variables (pointing at a dead port) are not looked at.
        env = {"AWS_ENDPOINT_URL_S3": dead_endpoint(), "AWS_ENDPOINT_URL": dead_endpoint(),
               "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"}
        r = self.sync("--endpoint", self.proxy.endpoint, env=env)
        self.assert_published(r)

        # Without --endpoint the partition's endpoint is used, not the variable's (the proxy here). The run is
        # kept off the internet by an HTTPS proxy that refuses connections, so it fails (exit 1), and the
        # configured endpoint saw nothing.
        self.proxy.reset_counts()
        env = {"AWS_ENDPOINT_URL_S3": self.proxy.endpoint, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true",
               "HTTPS_PROXY": dead_endpoint(), "https_proxy": dead_endpoint(), "NO_PROXY": "", "no_proxy": ""}
        ignored = harness.run_sitesync(["plan", self.root, f"s3://{self.bucket}", "-v"], env_extra=env,
                                       server=self.server, timeout=90)
        self.assertEqual(ignored.returncode, 1, ignored.describe())
        self.assertIn("https://s3.us-east-1.amazonaws.com", ignored.stderr)
        self.assertIn("virtual-hosted", ignored.stderr)
        self.assertEqual(self.proxy.total(), 0, self.proxy.counts())

        # ignore_configured_endpoint_urls in the profile does the same; the environment's false beats it.
        config = self.write("aws-config", f"""\
            [default]
            ignore_configured_endpoint_urls = true
            endpoint_url = {dead_endpoint()}
            """)
        env = {"AWS_CONFIG_FILE": config, "AWS_ENDPOINT_URL_S3": self.proxy.endpoint,
               "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "false"}
        harness.make_site(self.root, {"more.txt": "more\n"})
        again = self.sync(env=env)
        self.assertEqual(again.returncode, 0, again.describe())
        self.assertIn("more.txt", self.keys())
        self.assertGreaterEqual(self.proxy.count("PutObject"), 1)

    def test_endpoint_url_with_a_path_is_refused(self):
        # A path prefix (a gateway's /s3) is refused before anything is sent, from every source, naming it.
        cases = [
            (["--endpoint", self.proxy.endpoint + "/s3"], {}, "--endpoint"),
            ([], {"AWS_ENDPOINT_URL_S3": self.proxy.endpoint + "/s3/"}, "AWS_ENDPOINT_URL_S3"),
            (["--endpoint", self.proxy.endpoint, "--distribution", "E123", "--cloudfront-endpoint",
              self.proxy.endpoint + "/cf"], {}, "--cloudfront-endpoint"),
        ]
        for args, env, source in cases:
            with self.subTest(source=source):
                self.proxy.reset_counts()
                r = self.sync(*args, env=env, json_out=False)
                self.assertEqual(r.returncode, 2, r.describe())
                self.assertIn(source, r.stderr)
                self.assertIn("path", r.stderr)
                self.assertEqual(self.proxy.total(), 0, self.proxy.counts())
        self.assertEqual(self.keys(), [])
        # The same URL without the path (a trailing slash is fine) publishes.
        ok = self.sync("--endpoint", self.proxy.endpoint + "/")
        self.assert_published(ok)


if __name__ == "__main__":
    unittest.main(verbosity=2)
