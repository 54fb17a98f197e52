"""Integration tests of issue 12, points 12 and 13, with the real binary against moto_server (SigV4 checking on)
behind the fault proxy; the bucket and the invalidations are read back with boto3.

- One option set for every command: a script passes the same options (S3 endpoint, CloudFront endpoint,
  distribution, region, --delete, --jobs, ...) to sync, plan, invalidate, check and sitemap; each works, and
  each option that means nothing to a command is named in a -v note instead of failing the run.
- sitesync's own files are never published: the config in use (also under another name: a hard link), a copy of
  it at SOURCE's root (Jekyll's _site/sitesync.yaml), and a state folder inside SOURCE; a file that only shares
  a name deeper down is published. A copy already in the bucket is not deleted by --delete, and `check` names it
  with the command that removes it. `watch` leaves them out too.
- `sitesync init` in a Jekyll site adds sitesync.yaml to exclude: in _config.yml (a file Jekyll then reads the
  same, plus the entry), or prints the line to add.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402

BIN_OK, BIN_WHY = harness.sitesync_available()
needs_sitesync = unittest.skipUnless(BIN_OK, BIN_WHY)

try:
    import yaml  # noqa: F401
    HAVE_YAML = True
except ImportError:  # pragma: no cover
    HAVE_YAML = False


class CommonCase(unittest.TestCase):
    server: harness.MotoServer
    proxy: harness.FaultProxy

    @classmethod
    def setUpClass(cls):
        harness.start_moto_and_proxy(cls)
        cls.s3 = cls.server.boto3_s3()
        cls.cf = cls.server.boto3_cloudfront()

    def setUp(self):
        harness.last_run = None
        self.proxy.clear_faults()
        self.proxy.reset_counts()
        self._tmp = tempfile.TemporaryDirectory(prefix="sitesync-common-")
        self.addCleanup(self._tmp.cleanup)
        self.tmp = self._tmp.name
        self.bucket = harness.new_bucket_name(self._testMethodName[5:])
        self.s3.create_bucket(Bucket=self.bucket)
        self.dist = harness.create_distribution(self.cf, f"{self.bucket}.s3.amazonaws.com", comment=self.id())

    def tearDown(self):
        if harness.test_failed(self):
            if harness.last_run is not None:
                sys.stderr.write(f"\n===== last sitesync run ({self.id()}) =====\n{harness.last_run.describe()}\n")
            sys.stderr.write(f"===== proxy log =====\n{harness.tail(self.proxy.log_text(), 6000)}\n")

    # -- helpers -------------------------------------------------------------------------------------------------
    def keys(self) -> set[str]:
        return {o["Key"] for o in self.s3.list_objects_v2(Bucket=self.bucket).get("Contents", [])}

    def invalidation_paths(self) -> list[list[str]]:
        return [inv["Paths"] for inv in harness.invalidations(self.cf, self.dist)]

    def assertExit(self, res, code):
        self.assertEqual(res.returncode, code, f"expected exit {code}\n{res.describe()}")

    def common_options(self) -> list[str]:
        """What a deploy script passes to every command."""
        return ["--endpoint", self.proxy.endpoint, "--cloudfront-endpoint", self.proxy.endpoint,
                "--distribution", self.dist, "--region", "us-east-1", "--delete", "--jobs", "8",
                "--exclude", "*.map", "--compare", "size", "--max-deletes", "100", "--path-style",
                "--debounce", "300", "--base-url", "https://example.com/", "--json"]

    # -- point 12 ------------------------------------------------------------------------------------------------
    @needs_sitesync
    def test_one_option_set_for_every_command(self):
        site = os.path.join(self.tmp, "site")
        harness.make_site(site, {"index.html": "<p>home</p>", "a/index.html": "<p>a</p>", "app.js.map": "{}"})
        opts = self.common_options()

        res = harness.run_sitesync(["sync", site, f"s3://{self.bucket}", *opts, "-v"], server=self.server)
        self.assertExit(res, 0)
        self.assertEqual(self.keys(), {"index.html", "a/index.html"})
        self.assertIn("--debounce means nothing to sync; ignored", res.stderr)
        self.assertEqual(len(self.invalidation_paths()), 1)

        # The line: every option of a sync, given to invalidate.
        res = harness.run_sitesync(["invalidate", "/a", "/b/", *opts, "-v"], server=self.server)
        self.assertExit(res, 0)
        invs = self.invalidation_paths()
        self.assertEqual(len(invs), 2)
        self.assertEqual(sorted(invs[-1]), ["/a", "/b/"])
        for option in ("--delete", "--endpoint", "--jobs", "--region", "--path-style", "--exclude", "--compare",
                       "--max-deletes", "--debounce"):
            self.assertIn(f"{option} means nothing to invalidate; ignored", res.stderr)
        self.assertEqual(harness.summary_of(harness.parse_json_lines(res.stdout))["invalidation_paths"], 2)

        # Without -v: accepted silently.
        res = harness.run_sitesync(["invalidate", "/c", *opts], server=self.server)
        self.assertExit(res, 0)
        self.assertNotIn("means nothing", res.stderr)
        self.assertEqual(sorted(self.invalidation_paths()[-1]), ["/c"])

        res = harness.run_sitesync(["check", f"s3://{self.bucket}", *opts, "-v"], server=self.server)
        self.assertExit(res, 0)
        checks = [e for e in harness.parse_json_lines(res.stdout) if e.get("event") == "check"]
        self.assertTrue(checks and all(e["ok"] for e in checks), res.describe())
        self.assertIn("--delete means nothing to check; ignored", res.stderr)
        # check changes nothing anyway, and creates no invalidation to wait for.
        self.proxy.reset_counts()
        res = harness.run_sitesync(["check", f"s3://{self.bucket}", *opts, "--dry-run", "--wait", "-v"],
                                   server=self.server)
        self.assertExit(res, 0)
        self.assertIn("--dry-run means nothing to check; ignored", res.stderr)
        self.assertIn("--wait means nothing to check; ignored", res.stderr)
        writes = [(m, op) for (m, op), n in self.proxy.counts().items() if m not in ("GET", "HEAD") and n]
        self.assertEqual(writes, [], "check only reads")

        out = os.path.join(self.tmp, "sitemap.xml")
        res = harness.run_sitesync(["sitemap", site, "-o", out, *opts, "-v"], server=self.server)
        self.assertExit(res, 0)
        with open(out, encoding="utf-8") as f:
            self.assertIn("<loc>https://example.com/a/</loc>", f.read())
        self.assertIn("--distribution means nothing to sitemap; ignored", res.stderr)

        # plan: nothing left to do, and nothing changed.
        res = harness.run_sitesync(["plan", site, f"s3://{self.bucket}", *opts], server=self.server)
        self.assertExit(res, 0)
        summary = harness.summary_of(harness.parse_json_lines(res.stdout))
        self.assertEqual((summary["uploaded"], summary["deleted"]), (0, 0))
        self.assertEqual(len(self.invalidation_paths()), 3)

    @needs_sitesync
    def test_watch_refuses_dry_run_rather_than_ignoring_it(self):
        # Ignoring --dry-run would publish: watch keeps refusing it (exit 2), before any request.
        site = os.path.join(self.tmp, "site")
        harness.make_site(site, {"index.html": "<p>x</p>"})
        res = harness.run_sitesync(["watch", site, f"s3://{self.bucket}", *self.common_options(), "--dry-run"],
                                   server=self.server)
        self.assertExit(res, 2)
        self.assertIn("watch does not take --dry-run", res.stderr)
        self.assertEqual(self.keys(), set())
        self.assertEqual(self.proxy.total(), 0)

    # -- point 13 ------------------------------------------------------------------------------------------------
    def jekyll_project(self) -> tuple[str, str]:
        """A project folder with sitesync.yaml and a built _site/ holding Jekyll's copy of it."""
        project = os.path.join(self.tmp, "project")
        config = textwrap.dedent(f"""\
            source: _site/
            destination: s3://{self.bucket}
            endpoint: {self.proxy.endpoint}
            cdn:
              distribution: {self.dist}
              endpoint: {self.proxy.endpoint}
            """)
        harness.make_site(project, {
            "sitesync.yaml": config,
            "_site/index.html": "<p>home</p>",
            "_site/sitesync.yaml": config,                                   # Jekyll's copy
            "_site/blog/sitesync.yaml": "title: a page's own data file\n",  # not the config: published
            "_site/state/sitesync/E1.json":                                   # the journal's folder
                '{"version": 1, "distribution": "E1", "caller_reference": "", "paths": []}',
        })
        os.link(os.path.join(project, "sitesync.yaml"), os.path.join(project, "_site", "deploy.yaml"))
        return project, os.path.join(project, "_site")

    @needs_sitesync
    def test_own_files_are_never_published_nor_deleted(self):
        project, site = self.jekyll_project()
        state = {"XDG_STATE_HOME": os.path.join(site, "state")}
        res = harness.run_sitesync(["sync", "--json", "-v"], server=self.server, cwd=project, env_extra=state)
        self.assertExit(res, 0)
        self.assertEqual(self.keys(), {"index.html", "blog/sitesync.yaml"})
        self.assertIn("sitesync.yaml in SOURCE is left out", res.stderr)
        uploads = {e["key"] for e in harness.parse_json_lines(res.stdout) if e.get("event") == "upload"}
        self.assertEqual(uploads, {"index.html", "blog/sitesync.yaml"})

        # A copy an older version published: --delete leaves it (excluded keys are never deleted), and check
        # names it with the way out.
        self.s3.put_object(Bucket=self.bucket, Key="sitesync.yaml", Body=b"source: _site/\n")
        res = harness.run_sitesync(["sync", "--delete", "--json"], server=self.server, cwd=project, env_extra=state)
        self.assertExit(res, 0)
        self.assertIn("sitesync.yaml", self.keys())
        self.assertEqual([e for e in harness.parse_json_lines(res.stdout) if e.get("event") == "delete"], [])

        res = harness.run_sitesync(["check", "--json"], server=self.server, cwd=project, env_extra=state)
        self.assertExit(res, 1)
        own = [e for e in harness.parse_json_lines(res.stdout) if e.get("name") == "own-files"]
        self.assertEqual(len(own), 1, res.describe())
        self.assertFalse(own[0]["ok"])
        self.assertIn(f"aws s3 rm s3://{self.bucket}/sitesync.yaml", own[0]["fix"])

        self.s3.delete_object(Bucket=self.bucket, Key="sitesync.yaml")
        res = harness.run_sitesync(["check", "--json"], server=self.server, cwd=project, env_extra=state)
        self.assertExit(res, 0)
        own = [e for e in harness.parse_json_lines(res.stdout) if e.get("name") == "own-files"]
        self.assertTrue(own and own[0]["ok"], res.describe())

    @needs_sitesync
    def test_watch_leaves_own_files_out(self):
        project, site = self.jekyll_project()
        home = os.path.join(self.tmp, "home")
        os.makedirs(home)
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "HOME": home,
               "XDG_STATE_HOME": os.path.join(site, "state"), "XDG_CACHE_HOME": os.path.join(home, ".cache"),
               "AWS_REGION": harness.REGION, "AWS_EC2_METADATA_DISABLED": "true", **self.server.sitesync_env()}
        for k in harness._PASSTHROUGH_ENV:
            if k in os.environ:
                env[k] = os.environ[k]
        stderr_path = os.path.join(self.tmp, "watch.err")
        with open(stderr_path, "wb") as err:
            proc = subprocess.Popen([harness.sitesync_bin(), "watch", "--json", "--debounce", "100"], cwd=project,
                                    env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err)
        with harness._live_lock:
            harness._live_processes.add(proc)
        summaries = []
        cond = threading.Condition()

        def read():
            for raw in iter(proc.stdout.readline, b""):
                try:
                    event = json.loads(raw)
                except json.JSONDecodeError:
                    continue
                with cond:
                    if event.get("event") == "summary":
                        summaries.append(event)
                    cond.notify_all()

        threading.Thread(target=read, daemon=True).start()

        def wait_summaries(n, timeout=60.0):
            deadline = time.monotonic() + timeout
            with cond:
                while len(summaries) < n:
                    left = deadline - time.monotonic()
                    if left <= 0 or proc.poll() is not None:
                        with open(stderr_path, encoding="utf-8", errors="replace") as f:
                            self.fail(f"no batch summary {n} (exit {proc.poll()}):\n{f.read()[-4000:]}")
                    cond.wait(min(left, 0.5))

        try:
            wait_summaries(1)
            self.assertEqual(self.keys(), {"index.html", "blog/sitesync.yaml"})
            # The generator rebuilds: a new page, the config's copy rewritten, a new journal file.
            with open(os.path.join(site, "sitesync.yaml"), "a") as f:
                f.write("# rebuilt\n")
            with open(os.path.join(site, "state", "sitesync", "E2.json"), "w") as f:
                f.write("{}")
            with open(os.path.join(site, "new.html"), "w") as f:
                f.write("<p>new</p>")
            wait_summaries(2)
            self.assertEqual(self.keys(), {"index.html", "blog/sitesync.yaml", "new.html"})
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
            proc.stdout.close()
            with harness._live_lock:
                harness._live_processes.discard(proc)

    @needs_sitesync
    @unittest.skipUnless(HAVE_YAML, "PyYAML is not installed")
    def test_init_excludes_the_config_from_jekyll(self):
        import yaml
        project = os.path.join(self.tmp, "jekyll")
        harness.make_site(project, {"_config.yml": "title: Blog\nexclude:\n  - Gemfile\n  - vendor\n",
                                    "index.md": "# hi\n"})
        res = harness.run_sitesync(["init"], cwd=project)
        self.assertExit(res, 0)
        self.assertIn("Found a Jekyll site", res.stderr)
        self.assertIn("Added sitesync.yaml to exclude: in _config.yml", res.stderr)
        with open(os.path.join(project, "_config.yml"), encoding="utf-8") as f:
            doc = yaml.safe_load(f)
        self.assertEqual(doc, {"title": "Blog", "exclude": ["Gemfile", "vendor", "sitesync.yaml"]})

        # A flow list is left alone, with the line to add.
        flow = os.path.join(self.tmp, "flow")
        harness.make_site(flow, {"_config.yml": "exclude: [Gemfile]\n"})
        res = harness.run_sitesync(["init"], cwd=flow)
        self.assertExit(res, 0)
        with open(os.path.join(flow, "_config.yml"), encoding="utf-8") as f:
            self.assertEqual(f.read(), "exclude: [Gemfile]\n")
        self.assertIn("Add sitesync.yaml to its exclude: list", res.stderr)

        # a/an by the generator's name.
        eleventy = os.path.join(self.tmp, "eleventy")
        harness.make_site(eleventy, {"eleventy.config.js": "module.exports = () => {};\n"})
        res = harness.run_sitesync(["init"], cwd=eleventy)
        self.assertExit(res, 0)
        self.assertIn("Found an Eleventy site", res.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
