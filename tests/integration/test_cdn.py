"""Integration tests of CloudFront invalidation (`sync --distribution`, `sitesync invalidate`) against moto_server
with SigV4 checking on (S3 and CloudFront on one port; signed CloudFront GETs verify thanks to
moto_server_fixed.py).

Every outcome is checked independently with boto3: list_invalidations / get_invalidation on moto (moto keeps the
paths exactly as submitted and does NOT de-duplicate CallerReference, so the tests count invalidations), and
list_objects for the uploads. Expected path sets are computed here, in Python, from the rules in CLI.md
("Invalidation paths"), never by sitesync. The FaultProxy sits in front of S3 and CloudFront: it counts
CreateInvalidation requests, injects CloudFront failures and records request bodies (CallerReference).
Skips cleanly when the binary ($SITESYNC_BIN, default build/cli/sitesync) does not exist.

    SITESYNC_BIN=$PWD/build/cli/sitesync python3 -m unittest -v tests/integration/test_cdn.py
"""

from __future__ import annotations

import os
import subprocess
import re
import sys
import tempfile
import textwrap
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402

BIN_OK, BIN_WHY = harness.sitesync_available()
needs_sitesync = unittest.skipUnless(BIN_OK, BIN_WHY)

# --------------------------------------------------------------------------------------------------------------
# The path rules, written independently of sitesync (CLI.md "Invalidation paths")
# --------------------------------------------------------------------------------------------------------------

# Percent-encoded (uppercase hex): non-ASCII bytes, control bytes, space and these; nothing else.
CF_ENCODED_ASCII = frozenset(b' "#%<>[\\]^`{|}~*?')


def cf_encode(text: str) -> str:
    out = []
    for b in text.encode("utf-8"):
        if b < 0x20 or b == 0x7F or b >= 0x80 or b in CF_ENCODED_ASCII:
            out.append(f"%{b:02X}")
        else:
            out.append(chr(b))
    return "".join(out)


def expected_paths(keys, index_document: str = "index.html", bare_alias: bool = True) -> set[str]:
    """The invalidation paths of keys relative to DEST's prefix: "/" + encoded key; an index document also gives
    its directory with the trailing slash and (bare_alias) without it; the root index gives "/"."""
    out = set()
    for key in keys:
        out.add("/" + cf_encode(key))
        if key.rsplit("/", 1)[-1] == index_document:
            directory = key[: len(key) - len(index_document)]  # "" or "a/b/"
            if not directory:
                out.add("/")
            else:
                out.add("/" + cf_encode(directory))
                if bare_alias:
                    out.add("/" + cf_encode(directory[:-1]))
    return out


def covers(pattern: str, path: str) -> bool:
    """CloudFront: a '*' at the end of a path matches any rest; otherwise the paths must be equal."""
    if pattern.endswith("*"):
        return path.startswith(pattern[:-1])
    return pattern == path


CALLER_REF_RE = re.compile(rb"<CallerReference>(.*?)</CallerReference>", re.S)


def caller_reference(body: bytes | None) -> str | None:
    m = CALLER_REF_RE.search(body or b"")
    return m.group(1).decode("utf-8") if m else None


def events_of(events, kind):
    return [e for e in events if e.get("event") == kind]


class PathRuleSelfTest(unittest.TestCase):
    """The expectations used below follow the examples in CLI.md and the issue (runs without sitesync)."""

    def test_encoder(self):
        self.assertEqual("/" + cf_encode("a b.html"), "/a%20b.html")
        self.assertEqual("/" + cf_encode("~tilde.txt"), "/%7Etilde.txt")
        self.assertEqual("/" + cf_encode("hash#.txt"), "/hash%23.txt")
        self.assertEqual("/" + cf_encode("café.html"), "/caf%C3%A9.html")
        self.assertEqual("/" + cf_encode("star*.txt"), "/star%2A.txt")
        self.assertEqual(cf_encode("100%"), "100%25")
        self.assertEqual(cf_encode("tab\tdel\x7f"), "tab%09del%7F")
        self.assertEqual(cf_encode("""q?"<>[\\]^`{|}"""), "q%3F%22%3C%3E%5B%5C%5D%5E%60%7B%7C%7D")
        untouched = "a-z_A.Z0~9!$&'()+,;=:@/"
        self.assertEqual(cf_encode(untouched.replace("~", "")), untouched.replace("~", ""))

    def test_aliases(self):
        self.assertEqual(expected_paths(["a/b/index.html"]), {"/a/b/index.html", "/a/b/", "/a/b"})
        self.assertEqual(expected_paths(["index.html"]), {"/index.html", "/"})
        self.assertEqual(expected_paths(["a/b/index.html"], bare_alias=False), {"/a/b/index.html", "/a/b/"})
        self.assertEqual(expected_paths(["css/site.css", "a/xindex.html"]), {"/css/site.css", "/a/xindex.html"})
        self.assertEqual(expected_paths(["d i/index.html"]), {"/d%20i/index.html", "/d%20i/", "/d%20i"})

    def test_covers(self):
        self.assertTrue(covers("/a/*", "/a/b/c"))
        self.assertTrue(covers("/*", "/"))
        self.assertFalse(covers("/a/*", "/a"))
        self.assertFalse(covers("/a/b", "/a/b/"))


# --------------------------------------------------------------------------------------------------------------
# fixture
# --------------------------------------------------------------------------------------------------------------


class CdnCase(unittest.TestCase):
    """One moto server + FaultProxy per class; per test: a bucket, a distribution whose S3 origin is that bucket
    (BUCKET.s3.amazonaws.com, origin path ""), a temp dir and one HOME (so one $XDG_STATE_HOME, the journal's
    home) shared by every sitesync run of the test."""

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
        self.proxy.skew_seconds = 0
        self.proxy.record_bodies = False
        self.proxy.reset_counts()
        self._tmp = tempfile.TemporaryDirectory(prefix="sitesync-cdn-")
        self.addCleanup(self._tmp.cleanup)
        self.tmp = self._tmp.name
        self.home = os.path.join(self.tmp, "home")
        os.makedirs(self.home)
        self.bucket = self.new_bucket(self._testMethodName[5:])
        self.dist = harness.create_distribution(self.cf, f"{self.bucket}.s3.amazonaws.com", comment=self.id())

    def tearDown(self):
        self.proxy.clear_faults()
        self.proxy.record_bodies = False
        if harness.test_failed(self):
            if harness.last_run is not None:
                sys.stderr.write(f"\n===== last sitesync run ({self.id()}) =====\n{harness.last_run.describe()}\n")
            sys.stderr.write(f"===== proxy log =====\n{harness.tail(self.proxy.log_text(), 6000)}\n")
            self.server.dump_log(f"moto server log for {self.id()}", limit=6000)

    # -- helpers -------------------------------------------------------------------------------------------------
    def new_bucket(self, tag="b"):
        name = harness.new_bucket_name(tag)
        self.s3.create_bucket(Bucket=name)
        return name

    def site(self, spec, name="site"):
        root = os.path.join(self.tmp, name)
        harness.make_site(root, spec)
        return root

    def dest(self, prefix="", bucket=None):
        return f"s3://{bucket or self.bucket}" + (f"/{prefix}" if prefix else "")

    def write_config(self, text, name="sitesync.yaml"):
        path = os.path.join(self.tmp, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(textwrap.dedent(text))
        return path

    def sitesync(self, *args, timeout=180):
        return harness.run_sitesync([str(a) for a in args], timeout=timeout, server=self.server, home=self.home)

    def sync(self, source, dest=None, *extra, distribution=None, cf_endpoint=None, s3_endpoint=None,
             json_out=True, timeout=180):
        """sitesync sync SOURCE DEST --endpoint (proxy) --distribution (this test's) --cloudfront-endpoint (proxy)
        --json; distribution=False / cf_endpoint=False leave those options out."""
        args = ["sync", source, dest or self.dest(), "--endpoint", s3_endpoint or self.proxy.endpoint]
        if distribution is not False:
            args += ["--distribution", distribution or self.dist]
        if cf_endpoint is not False:
            args += ["--cloudfront-endpoint", cf_endpoint or self.proxy.endpoint]
        args += list(extra)
        if json_out:
            args.append("--json")
        return self.sitesync(*args, timeout=timeout)

    def assertExit(self, res, code):
        self.assertEqual(res.returncode, code, f"expected exit {code}\n{res.describe()}")

    def ok_sync(self, source, dest=None, *extra, **kw):
        res = self.sync(source, dest, *extra, **kw)
        self.assertExit(res, 0)
        return res, harness.parse_json_lines(res.stdout)

    def invs(self, dist=None):
        return harness.invalidations(self.cf, dist or self.dist)

    def assertNoNewInvalidation(self, before: int, dist=None):
        after = self.invs(dist)
        self.assertEqual(after[before:], [], "no invalidation may be created")

    def assertOneNewInvalidation(self, before: int, expected: set, events=None, dist=None, counted=True):
        """Exactly one invalidation was created since `before` (a count of invalidations), with exactly the
        expected paths, deduplicated and sorted; the JSON invalidate event and summary agree with it."""
        after = self.invs(dist)
        new = after[before:]
        self.assertEqual(len(new), 1, f"exactly one new invalidation: {new}")
        inv = new[0]
        paths = inv["Paths"]
        self.assertEqual(set(paths), set(expected))
        self.assertEqual(len(paths), len(set(paths)), f"duplicates in {paths}")
        self.assertEqual(paths, sorted(paths), "paths are submitted sorted")
        self.assertEqual(inv["Status"].lower(), "completed")  # moto completes at once
        if counted:  # ONE CreateInvalidation per run (when the proxy was the CloudFront endpoint, no faults)
            self.assertEqual(self.proxy.count("CreateInvalidation", "POST"), 1, self.proxy.counts())
        if events is not None:
            ev = events_of(events, "invalidate")
            self.assertEqual(len(ev), 1, ev)
            self.assertEqual(ev[0].get("id"), inv["Id"])
            self.assertEqual(set(ev[0]["paths"]), set(expected))
            self.assertNotIn("planned", {k for k, v in ev[0].items() if v})
            self.assertEqual(harness.summary_of(events)["invalidation_paths"], len(paths))
        return inv

    def first_sync(self, spec, *extra, **kw):
        """Sync `spec` to the bucket (one invalidation of every uploaded path), then reset the proxy counts."""
        src = self.site(spec)
        before = len(self.invs())
        _res, events = self.ok_sync(src, None, *extra, **kw)
        self.assertOneNewInvalidation(before, expected_paths(harness.expected_uploads(spec)), events)
        self.proxy.reset_counts()
        return src


# --------------------------------------------------------------------------------------------------------------
# which paths
# --------------------------------------------------------------------------------------------------------------

SMALL_SITE = {
    "index.html": "<p>home</p>",
    "a/b/index.html": "<p>a b</p>",
    "a/b/photo.png": b"\x89PNG small",
    "c/index.html": "<p>c</p>",
    "css/site.css": "body{}",
    "js/app.js": "x()",
    "robots.txt": "User-agent: *\n",
}


@needs_sitesync
class PathsTest(CdnCase):
    def test_first_sync_invalidates_every_uploaded_path_and_alias(self):
        spec = harness.generated_site(40, seed=11)
        src = self.site(spec)
        want = harness.expected_uploads(spec)
        expected = expected_paths(want)
        self.assertIn("/", expected)
        self.assertIn("/blog/page-000/", expected)
        self.assertIn("/blog/page-000", expected)
        self.assertIn("/.well-known/security.txt", expected)
        _res, events = self.ok_sync(src)
        self.assertEqual(set(harness.list_bucket(self.s3, self.bucket, head=False)), set(want))
        self.assertOneNewInvalidation(0, expected, events)
        # nothing skipped (dotfiles) is invalidated
        inv = self.invs()[0]
        self.assertFalse([p for p in inv["Paths"] if "DS_Store" in p or "/.git" in p or ".env" in p])

    def test_index_document_change_adds_directory_with_and_without_slash(self):
        src = self.first_sync(SMALL_SITE)
        with open(os.path.join(src, "a/b/index.html"), "a", encoding="utf-8") as f:
            f.write("<p>more</p>")
        _res, events = self.ok_sync(src)
        self.assertEqual([e["key"] for e in events_of(events, "upload")], ["a/b/index.html"])
        self.assertOneNewInvalidation(1, {"/a/b/index.html", "/a/b/", "/a/b"}, events)

    def test_root_index_change_adds_slash(self):
        src = self.first_sync(SMALL_SITE)
        with open(os.path.join(src, "index.html"), "a", encoding="utf-8") as f:
            f.write("<p>more</p>")
        _res, events = self.ok_sync(src)
        self.assertOneNewInvalidation(1, {"/index.html", "/"}, events)

    def test_asset_change_is_just_its_path(self):
        src = self.first_sync(SMALL_SITE)
        with open(os.path.join(src, "css/site.css"), "a", encoding="utf-8") as f:
            f.write("p{color:red}")
        _res, events = self.ok_sync(src)
        self.assertOneNewInvalidation(1, {"/css/site.css"}, events)

    def test_deleted_index_document_is_invalidated_with_aliases(self):
        src = self.first_sync(SMALL_SITE)
        os.remove(os.path.join(src, "c/index.html"))
        _res, events = self.ok_sync(src, None, "--delete")
        self.assertEqual([e["key"] for e in events_of(events, "delete")], ["c/index.html"])
        self.assertNotIn("c/index.html", harness.list_bucket(self.s3, self.bucket, head=False))
        self.assertOneNewInvalidation(1, {"/c/index.html", "/c/", "/c"}, events)

    def test_changes_and_deletes_in_one_run_make_one_invalidation(self):
        src = self.first_sync(SMALL_SITE)
        os.remove(os.path.join(src, "js/app.js"))
        with open(os.path.join(src, "a/b/photo.png"), "ab") as f:
            f.write(b"more")
        harness.make_site(src, {"new/index.html": "<p>new</p>"})
        _res, events = self.ok_sync(src, None, "--delete")
        self.assertOneNewInvalidation(1, expected_paths(["js/app.js", "a/b/photo.png", "new/index.html"]), events)

    def test_nothing_changed_means_no_invalidation(self):
        src = self.first_sync(SMALL_SITE)
        _res, events = self.ok_sync(src, None, "--delete")
        self.assertNoNewInvalidation(1)
        self.assertEqual(self.proxy.count("CreateInvalidation"), 0)
        self.assertEqual(events_of(events, "invalidate"), [])
        self.assertEqual(harness.summary_of(events)["invalidation_paths"], 0)

    def test_dry_run_plans_the_invalidation_and_creates_none(self):
        src = self.site(SMALL_SITE)
        expected = expected_paths(harness.expected_uploads(SMALL_SITE))
        for command in ("sync", "plan"):
            with self.subTest(command=command):
                extra = ["--dry-run"] if command == "sync" else []
                args = [command, src, self.dest(), "--endpoint", self.proxy.endpoint, "--distribution", self.dist,
                        "--cloudfront-endpoint", self.proxy.endpoint, "--json"] + extra
                res = self.sitesync(*args)
                self.assertExit(res, 0)
                events = harness.parse_json_lines(res.stdout)
                planned = events_of(events, "invalidate")
                self.assertEqual(len(planned), 1, res.describe())
                self.assertIs(planned[0].get("planned"), True)
                self.assertNotIn("id", planned[0])
                self.assertEqual(set(planned[0]["paths"]), expected)
                self.assertIs(harness.summary_of(events)["dry_run"], True)
        self.assertEqual(self.invs(), [])
        self.assertEqual(self.proxy.count("CreateInvalidation"), 0)
        self.assertEqual(harness.list_bucket(self.s3, self.bucket, head=False), {})
        # and a real run afterwards still owes (and makes) the whole invalidation: dry runs journal nothing
        _res, events = self.ok_sync(src)
        self.assertOneNewInvalidation(0, expected, events)

    def test_special_characters_are_percent_encoded(self):
        spec = {
            "a b.html": "space",
            "~tilde.txt": "tilde",
            "hash#.txt": "hash",
            "café.html": "e acute",
            "star*.txt": "star",
            "q?mark.txt": "question",
            "pct%41.txt": "percent",
            "brackets[1]{2}.txt": "brackets",
            "pipe|caret^tick`.txt": "pipe",
            'lt<gt>dq".txt': "lt gt",
            "plus+amp&eq=semi;at@dollar$comma,bang!quote'(paren).txt": "kept as is",
            "dir with space/index.html": "dir",
            "über/日本.html": "cjk",
        }
        src = self.site(spec)
        expected = expected_paths(spec)
        for must in ("/a%20b.html", "/%7Etilde.txt", "/hash%23.txt", "/caf%C3%A9.html", "/star%2A.txt",
                     "/q%3Fmark.txt", "/pct%2541.txt", "/brackets%5B1%5D%7B2%7D.txt", "/pipe%7Ccaret%5Etick%60.txt",
                     "/lt%3Cgt%3Edq%22.txt", "/plus+amp&eq=semi;at@dollar$comma,bang!quote'(paren).txt",
                     "/dir%20with%20space/index.html", "/dir%20with%20space/", "/dir%20with%20space",
                     "/%C3%BCber/%E6%97%A5%E6%9C%AC.html"):
            self.assertIn(must, expected)
        _res, events = self.ok_sync(src)
        self.assertEqual(set(harness.list_bucket(self.s3, self.bucket, head=False)), set(spec))
        self.assertOneNewInvalidation(0, expected, events)

    def test_bare_alias_false_drops_the_form_without_slash(self):
        cfg = self.write_config("""\
            cdn:
              bare_alias: false
            """)
        src = self.site(SMALL_SITE)
        _res, events = self.ok_sync(src, None, "--config", cfg)
        expected = expected_paths(harness.expected_uploads(SMALL_SITE), bare_alias=False)
        self.assertNotIn("/a/b", expected)
        self.assertIn("/a/b/", expected)
        self.assertIn("/", expected)
        self.assertOneNewInvalidation(0, expected, events)

    def test_config_keys_distribution_and_endpoint(self):
        cfg = self.write_config(f"""\
            cdn:
              distribution: {self.dist}
              endpoint: {self.proxy.endpoint}
            """)
        src = self.site(SMALL_SITE)
        _res, events = self.ok_sync(src, None, "--config", cfg, distribution=False, cf_endpoint=False)
        self.assertOneNewInvalidation(0, expected_paths(harness.expected_uploads(SMALL_SITE)), events)


# --------------------------------------------------------------------------------------------------------------
# too many paths: wildcards
# --------------------------------------------------------------------------------------------------------------


@needs_sitesync
class CollapseTest(CdnCase):
    def assertCollapsed(self, res, events, exact: set, max_wildcards: int):
        invs = self.invs()
        self.assertEqual(len(invs), 1, invs)
        paths = invs[0]["Paths"]
        self.assertLessEqual(len(paths), max_wildcards, paths)
        self.assertGreater(len(paths), 0)
        for p in paths:
            self.assertTrue(p.startswith("/") and p.endswith("/*"), f"not a /dir/* wildcard: {p!r}")
        uncovered = sorted(x for x in exact if not any(covers(p, x) for p in paths))
        self.assertEqual(uncovered[:20], [], f"{len(uncovered)} paths not covered by {paths}")
        ev = events_of(events, "invalidate")
        self.assertEqual(len(ev), 1)
        self.assertEqual((ev[0].get("id"), set(ev[0]["paths"])), (invs[0]["Id"], set(paths)))
        self.assertEqual(harness.summary_of(events)["invalidation_paths"], len(paths))
        self.assertRegex(res.stdout + res.stderr, r"(?i)collaps|wildcard", "the collapse is said in the output")
        self.assertEqual(self.proxy.count("CreateInvalidation", "POST"), 1)
        return paths

    def test_2500_changed_files_collapse_to_at_most_8_wildcards(self):
        # 30 folders in 3 sections, each folder with an index document (aliases /sec/fNN/ and /sec/fNN)
        sections = ["docs", "blog", "img"]
        spec = {}
        folders = [f"{sections[i % 3]}/f{i:02d}" for i in range(30)]
        for i in range(2500):
            folder = folders[i % 30]
            if i < 30:
                spec[f"{folder}/index.html"] = str(i)
            else:
                spec[f"{folder}/p{i:04d}.txt"] = str(i)
        self.assertEqual(len(spec), 2500)
        src = self.site(spec)
        exact = expected_paths(spec)
        self.assertEqual(len(exact), 2560)
        # S3 straight to moto (speed), CloudFront through the proxy (counted)
        res = self.sync(src, None, s3_endpoint=self.server.endpoint, timeout=300)
        self.assertExit(res, 0)
        events = harness.parse_json_lines(res.stdout)
        self.assertEqual(len(events_of(events, "upload")), 2500)
        paths = self.assertCollapsed(res, events, exact, 8)
        # three section wildcards fit in the budget: nothing forces the whole distribution ("/*")
        self.assertNotIn("/*", paths)
        self.assertEqual(len(harness.list_bucket(self.s3, self.bucket, head=False)), 2500)

    def test_config_max_paths_and_max_wildcards(self):
        spec = {f"{d}/f{i}.txt": str(i) for d in ("a/x", "a/y", "b/z") for i in range(5)}
        spec["a/x/index.html"] = "i"
        cfg = self.write_config("""\
            cdn:
              max_paths: 10
              max_wildcards: 2
            """)
        src = self.site(spec)
        res = self.sync(src, None, "--config", cfg)
        self.assertExit(res, 0)
        self.assertCollapsed(res, harness.parse_json_lines(res.stdout), expected_paths(spec), 2)

    def test_at_most_max_paths_is_not_collapsed(self):
        spec = {f"d{i % 3}/f{i}.txt": str(i) for i in range(10)}
        cfg = self.write_config("""\
            cdn:
              max_paths: 10
              max_wildcards: 2
            """)
        src = self.site(spec)
        _res, events = self.ok_sync(src, None, "--config", cfg)
        self.assertOneNewInvalidation(0, expected_paths(spec), events)


# --------------------------------------------------------------------------------------------------------------
# failures, the journal, CallerReference
# --------------------------------------------------------------------------------------------------------------


@needs_sitesync
class FailureAndJournalTest(CdnCase):
    def state_files(self):
        d = os.path.join(self.home, ".local", "state", "sitesync")
        out = []
        for dirpath, _dirs, names in os.walk(d):
            out += [os.path.join(dirpath, n) for n in names if os.path.getsize(os.path.join(dirpath, n)) > 0]
        return out

    def fail_first_sync(self, spec):
        """A first sync while every CreateInvalidation gets 503: exit 1, uploads done, nothing in moto; returns
        (source dir, the CallerReference the failed attempts carried)."""
        src = self.site(spec)
        self.proxy.record_bodies = True
        self.proxy.inject(status=503, code="ServiceUnavailable", count=1000, op="CreateInvalidation")
        res = self.sync(src)
        self.assertExit(res, 1)
        self.assertEqual(set(harness.list_bucket(self.s3, self.bucket, head=False)),
                         set(harness.expected_uploads(spec)), "the uploads are done although CloudFront failed")
        self.assertEqual(self.invs(), [])
        attempts = self.proxy.count("CreateInvalidation", "POST")
        self.assertGreaterEqual(attempts, 2, "CloudFront errors are retried")
        refs = {caller_reference(r.body) for r in self.proxy.faulted if r.op == "CreateInvalidation"}
        self.assertEqual(len(refs), 1, f"every retry of one batch carries the same CallerReference: {refs}")
        ref = refs.pop()
        self.assertTrue(ref)
        events = harness.parse_json_lines(res.stdout)
        s = harness.summary_of(events)
        self.assertEqual(s["invalidation_paths"], 0, "no invalidation was made")
        self.assertEqual(s["uploaded"], len(harness.expected_uploads(spec)))
        self.assertRegex(res.stderr + res.stdout, r"(?i)invalidat|cloudfront")
        self.assertTrue(self.state_files(), "the owed paths are journaled under $XDG_STATE_HOME/sitesync/")
        self.proxy.clear_faults()
        self.proxy.reset_counts()
        return src, ref

    def test_failed_invalidation_is_owed_and_submitted_by_the_next_run(self):
        src, ref = self.fail_first_sync(SMALL_SITE)
        expected = expected_paths(harness.expected_uploads(SMALL_SITE))
        self.proxy.record_bodies = True
        # nothing to upload, but the owed invalidation is made
        _res, events = self.ok_sync(src)
        self.assertEqual(events_of(events, "upload"), [])
        inv = self.assertOneNewInvalidation(0, expected, events)
        self.assertEqual(inv["CallerReference"], ref, "the retry of the same batch reuses its CallerReference")
        # and it is no longer owed
        self.proxy.reset_counts()
        _res, events = self.ok_sync(src)
        self.assertNoNewInvalidation(1)
        self.assertEqual(self.proxy.count("CreateInvalidation"), 0)
        self.assertEqual(harness.summary_of(events)["invalidation_paths"], 0)

    def test_owed_paths_join_the_next_runs_changes_in_one_invalidation(self):
        src, _ref = self.fail_first_sync(SMALL_SITE)
        with open(os.path.join(src, "css/site.css"), "a", encoding="utf-8") as f:
            f.write("p{}")
        harness.make_site(src, {"late/index.html": "<p>late</p>"})
        _res, events = self.ok_sync(src)
        self.assertEqual({e["key"] for e in events_of(events, "upload")}, {"css/site.css", "late/index.html"})
        expected = expected_paths(list(harness.expected_uploads(SMALL_SITE)) + ["late/index.html"])
        self.assertOneNewInvalidation(0, expected, events)

    def test_owed_invalidation_survives_no_invalidate_runs(self):
        """--no-invalidate skips invalidating; what was owed before is still owed afterwards."""
        src, _ref = self.fail_first_sync(SMALL_SITE)
        self.ok_sync(src, None, "--no-invalidate")
        self.assertEqual(self.invs(), [])
        self.assertEqual(self.proxy.count("CreateInvalidation"), 0)
        _res, events = self.ok_sync(src)
        self.assertOneNewInvalidation(0, expected_paths(harness.expected_uploads(SMALL_SITE)), events)

    def test_killed_run_is_made_good_by_the_next(self):
        """SIGKILL in the middle of the uploads: the owed paths were journaled before the first upload, so the
        next run invalidates what the killed run uploaded as well as what it uploads itself."""
        spec = {f"p{i:03d}/index.html": f"<p>{i}</p>\n" for i in range(120)}
        src = self.site(spec)
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": self.home,
            "XDG_STATE_HOME": os.path.join(self.home, ".local", "state"), "AWS_REGION": "us-east-1",
        }
        env.update(self.server.sitesync_env())
        args = [harness.sitesync_bin(), "sync", src, self.dest(), "--endpoint", self.proxy.endpoint,
                "--distribution", self.dist, "--cloudfront-endpoint", self.proxy.endpoint, "--json", "--jobs", "1"]
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
                                stdin=subprocess.DEVNULL)
        try:
            line = proc.stdout.readline()  # the first upload done: the journal is written by now
            self.assertIn('"upload"', line.decode())
            proc.kill()
        finally:
            proc.wait(timeout=30)
            proc.stdout.close()
        journal_dir = os.path.join(self.home, ".local", "state", "sitesync")
        # journal.lock is the flock file every process shares (never removed); the journal is the other file
        files = [f for f in os.listdir(journal_dir) if f != "journal.lock"]
        self.assertEqual(len(files), 1, files)
        with open(os.path.join(journal_dir, files[0]), encoding="utf-8") as f:
            self.assertIn("/p000/index.html", f.read())
        self.assertEqual(self.invs(), [])
        uploaded_before = len(harness.list_bucket(self.s3, self.bucket, head=False))
        self.assertLess(uploaded_before, len(spec), "the run was killed part way")
        # The next run uploads the rest and makes one invalidation for everything, the killed run's too.
        _res, events = self.ok_sync(src)
        self.assertEqual(len(events_of(events, "upload")), len(spec) - uploaded_before)
        self.assertOneNewInvalidation(0, expected_paths(list(spec)), events)
        self.assertEqual([f for f in os.listdir(journal_dir) if f != "journal.lock"], [])

    def test_too_many_invalidations_in_progress_is_retried(self):
        src = self.site(SMALL_SITE)
        expected = expected_paths(harness.expected_uploads(SMALL_SITE))
        # CloudFront's quota answer: 400 TooManyInvalidationsInProgress, twice, then accepted.
        self.proxy.inject(status=400, code="TooManyInvalidationsInProgress", count=2, op="CreateInvalidation")
        _res, events = self.ok_sync(src)
        self.assertEqual(self.proxy.count("CreateInvalidation"), 3)
        self.assertOneNewInvalidation(0, expected, events, counted=False)

    def test_lost_response_is_retried_with_the_same_caller_reference(self):
        src = self.site(SMALL_SITE)
        expected = expected_paths(harness.expected_uploads(SMALL_SITE))
        self.proxy.record_bodies = True
        # the first CreateInvalidation reaches moto (which creates it) but the client gets a 500
        self.proxy.inject(status=500, code="InternalError", count=1, op="CreateInvalidation", action="forward_error")
        _res, events = self.ok_sync(src)
        bodies = [r.body for r in self.proxy.recorded if r.op == "CreateInvalidation"]
        self.assertGreaterEqual(len(bodies), 2, "the lost response is retried")
        refs = [caller_reference(b) for b in bodies]
        self.assertTrue(refs[0])
        self.assertEqual(set(refs), {refs[0]}, f"every attempt carries the same CallerReference: {refs}")
        invs = self.invs()  # moto does not de-duplicate: one per attempt that reached it
        self.assertEqual(len(invs), len(bodies))
        for inv in invs:
            self.assertEqual(inv["CallerReference"], refs[0])
            self.assertEqual(set(inv["Paths"]), expected)
        ev = events_of(events, "invalidate")
        self.assertEqual(len(ev), 1)
        self.assertIn(ev[0].get("id"), {i["Id"] for i in invs})
        self.assertEqual(harness.summary_of(events)["invalidation_paths"], len(expected))
        # nothing is owed afterwards
        self.proxy.reset_counts()
        self.ok_sync(src)
        self.assertEqual(self.proxy.count("CreateInvalidation"), 0)

    def test_dropped_connection_after_create_keeps_the_caller_reference(self):
        """The connection is closed after moto made the invalidation: whether sitesync retries at once or owes it
        to the next run (exit 1), every attempt carries the one CallerReference of the batch."""
        src = self.site(SMALL_SITE)
        expected = expected_paths(harness.expected_uploads(SMALL_SITE))
        self.proxy.record_bodies = True
        self.proxy.inject(count=1, op="CreateInvalidation", action="forward_close")
        res = self.sync(src)
        self.assertIn(res.returncode, (0, 1), res.describe())
        if res.returncode == 1:
            res = self.sync(src)
            self.assertExit(res, 0)
        bodies = [r.body for r in self.proxy.recorded if r.op == "CreateInvalidation"]
        self.assertGreaterEqual(len(bodies), 2)
        refs = {caller_reference(b) for b in bodies}
        self.assertEqual(len(refs), 1, refs)
        invs = self.invs()
        self.assertEqual({i["CallerReference"] for i in invs}, refs)
        for inv in invs:
            self.assertEqual(set(inv["Paths"]), expected)


# --------------------------------------------------------------------------------------------------------------
# --distribution auto
# --------------------------------------------------------------------------------------------------------------


@needs_sitesync
class AutoDistributionTest(CdnCase):
    def test_auto_finds_the_distribution_of_the_bucket(self):
        decoys = [harness.create_distribution(self.cf, d) for d in (
            f"{self.new_bucket('other')}.s3.amazonaws.com",  # another bucket
            f"{self.bucket}x.s3.amazonaws.com",  # names that contain this bucket's name
            f"x{self.bucket}.s3.amazonaws.com",
        )]
        src = self.site(SMALL_SITE)
        _res, events = self.ok_sync(src, None, distribution="auto")
        self.assertOneNewInvalidation(0, expected_paths(harness.expected_uploads(SMALL_SITE)), events)
        for d in decoys:
            self.assertEqual(self.invs(d), [], f"decoy {d} must not be invalidated")

    def test_auto_recognises_every_s3_origin_domain_form(self):
        src = self.site({"index.html": "<p>i</p>", "x.css": "x{}"})
        expected = {"/", "/index.html", "/x.css"}
        for form in ("rest-regional", "website-dash", "website-dot"):
            with self.subTest(form=form):
                bucket = self.new_bucket(form)
                dist = harness.create_distribution(self.cf, harness.s3_origin_domains(bucket)[form])
                self.proxy.reset_counts()
                res = self.sync(src, self.dest(bucket=bucket), distribution="auto")
                self.assertExit(res, 0)
                self.assertOneNewInvalidation(0, expected, harness.parse_json_lines(res.stdout), dist=dist)

    def test_auto_with_two_candidates_is_a_usage_error_naming_both(self):
        second = harness.create_distribution(self.cf, f"{self.bucket}.s3.amazonaws.com")
        src = self.site(SMALL_SITE)
        res = self.sync(src, None, distribution="auto")
        self.assertExit(res, 2)
        self.assertIn(self.dist, res.stderr)
        self.assertIn(second, res.stderr)
        self.assertEqual(harness.list_bucket(self.s3, self.bucket, head=False), {}, "exit 2: nothing changed")
        self.assertEqual(self.invs(), [])
        self.assertEqual(self.invs(second), [])

    def test_auto_without_a_candidate_is_a_usage_error(self):
        bucket = self.new_bucket("nodist")
        src = self.site(SMALL_SITE)
        res = self.sync(src, self.dest(bucket=bucket), distribution="auto")
        self.assertExit(res, 2)
        self.assertRegex(res.stderr, r"(?i)distribution")
        self.assertEqual(harness.list_bucket(self.s3, bucket, head=False), {}, "exit 2: nothing changed")
        self.assertEqual(self.proxy.count("CreateInvalidation"), 0)

    def test_auto_matches_the_origin_path_and_paths_are_relative_to_the_prefix(self):
        bucket = self.new_bucket("prefixed")
        site_dist = harness.create_distribution(self.cf, f"{bucket}.s3.amazonaws.com", origin_path="/site")
        other_dist = harness.create_distribution(self.cf, f"{bucket}.s3.amazonaws.com", origin_path="/other")
        spec = {"index.html": "<p>i</p>", "a/index.html": "<p>a</p>", "a/x.css": "x{}"}
        src = self.site(spec)
        res = self.sync(src, f"s3://{bucket}/site/", distribution="auto")
        self.assertExit(res, 0)
        self.assertEqual(set(harness.list_bucket(self.s3, bucket, head=False)), {"site/" + k for k in spec})
        expected = {"/index.html", "/", "/a/index.html", "/a/", "/a", "/a/x.css"}
        self.assertEqual(expected_paths(spec), expected)
        self.assertOneNewInvalidation(0, expected, harness.parse_json_lines(res.stdout), dist=site_dist)
        self.assertEqual(self.invs(other_dist), [])


# --------------------------------------------------------------------------------------------------------------
# --wait, `sitesync invalidate`, turning invalidation off
# --------------------------------------------------------------------------------------------------------------


@needs_sitesync
class CommandsAndSwitchesTest(CdnCase):
    def test_wait_reports_completed(self):
        src = self.site(SMALL_SITE)
        res, events = self.ok_sync(src, None, "--wait", timeout=60)
        inv = self.assertOneNewInvalidation(0, expected_paths(harness.expected_uploads(SMALL_SITE)), events)
        self.assertEqual(inv["Status"].lower(), "completed")
        self.assertRegex(res.stdout + res.stderr, r"(?i)complete")

    def test_wait_from_config(self):
        cfg = self.write_config("""\
            cdn:
              wait: true
            """)
        src = self.site(SMALL_SITE)
        res, events = self.ok_sync(src, None, "--config", cfg, timeout=60)
        self.assertOneNewInvalidation(0, expected_paths(harness.expected_uploads(SMALL_SITE)), events)
        self.assertRegex(res.stdout + res.stderr, r"(?i)complete")

    def test_invalidate_command_submits_exactly_the_given_paths(self):
        res = self.sitesync("invalidate", "/x/y.html", "/blog/*", "--distribution", self.dist,
                            "--cloudfront-endpoint", self.proxy.endpoint, "--json")
        self.assertExit(res, 0)
        events = harness.parse_json_lines(res.stdout)
        invs = self.invs()
        self.assertEqual(len(invs), 1, invs)
        self.assertEqual(sorted(invs[0]["Paths"]), ["/blog/*", "/x/y.html"], "the trailing * stays a wildcard")
        ev = events_of(events, "invalidate")
        self.assertEqual(len(ev), 1, res.describe())
        self.assertEqual(ev[0].get("id"), invs[0]["Id"])
        self.assertEqual(set(ev[0]["paths"]), {"/x/y.html", "/blog/*"})
        self.assertEqual(self.proxy.count("CreateInvalidation", "POST"), 1)
        self.assertEqual(self.proxy.count("PutObject"), 0)

    def test_invalidate_command_wait(self):
        res = self.sitesync("invalidate", "/only.html", "--distribution", self.dist, "--cloudfront-endpoint",
                            self.proxy.endpoint, "--wait", timeout=60)
        self.assertExit(res, 0)
        self.assertEqual([i["Paths"] for i in self.invs()], [["/only.html"]])
        self.assertRegex(res.stdout + res.stderr, r"(?i)complete")

    def test_no_invalidate_flag_uploads_without_invalidating(self):
        src = self.site(SMALL_SITE)
        _res, events = self.ok_sync(src, None, "--no-invalidate")
        self.assertEqual(set(harness.list_bucket(self.s3, self.bucket, head=False)),
                         set(harness.expected_uploads(SMALL_SITE)))
        self.assertEqual(self.invs(), [])
        self.assertEqual(self.proxy.count("CreateInvalidation"), 0)
        self.assertEqual(events_of(events, "invalidate"), [])
        self.assertEqual(harness.summary_of(events)["invalidation_paths"], 0)

    def test_config_invalidate_false_uploads_without_invalidating(self):
        cfg = self.write_config("""\
            cdn:
              invalidate: false
            """)
        src = self.site(SMALL_SITE)
        _res, events = self.ok_sync(src, None, "--config", cfg)
        self.assertEqual(set(harness.list_bucket(self.s3, self.bucket, head=False)),
                         set(harness.expected_uploads(SMALL_SITE)))
        self.assertEqual(self.invs(), [])
        self.assertEqual(self.proxy.count("CreateInvalidation"), 0)
        self.assertEqual(harness.summary_of(events)["invalidation_paths"], 0)

    def test_without_a_distribution_nothing_is_invalidated(self):
        src = self.site(SMALL_SITE)
        _res, events = self.ok_sync(src, None, distribution=False, cf_endpoint=False)
        self.assertEqual(self.invs(), [])
        self.assertEqual(self.proxy.count("CreateInvalidation"), 0)
        self.assertEqual(self.proxy.count("ListDistributions"), 0)
        self.assertEqual(harness.summary_of(events)["invalidation_paths"], 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
