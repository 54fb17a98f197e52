"""Integration tests of `sitesync sync` / `sitesync plan` against moto_server with SigV4 checking on.

Every outcome is checked independently with boto3 (never with sitesync itself); request counts come from the
FaultProxy that sits between sitesync and moto. Each class starts its own server (+ proxy), each test its own
bucket. Skips cleanly when the binary ($SITESYNC_BIN, default build/cli/sitesync) does not exist.

    SITESYNC_BIN=$PWD/build/cli/sitesync python3 -m unittest -v tests/integration/test_sync.py
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import random
import re
import sys
import tempfile
import textwrap
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import Symlink  # noqa: E402

BIN_OK, BIN_WHY = harness.sitesync_available()
needs_sitesync = unittest.skipUnless(BIN_OK, BIN_WHY)

EXAMPLE_SITE = harness.REPO_ROOT / "examples" / "site"
MiB = 1024 * 1024

# operations that change a bucket
WRITE_OPS = ("PutObject", "CopyObject", "DeleteObject", "DeleteObjects", "CreateMultipartUpload", "UploadPart",
             "CompleteMultipartUpload", "AbortMultipartUpload")


def events_of(events, kind):
    return [e for e in events if e.get("event") == kind]


class SyncCase(unittest.TestCase):
    """One moto server + FaultProxy per class, one bucket and temp dir per test."""

    server: harness.MotoServer
    proxy: harness.FaultProxy

    @classmethod
    def setUpClass(cls):
        harness.start_moto_and_proxy(cls)
        cls.s3 = cls.server.boto3_s3()

    def setUp(self):
        harness.last_run = None
        self.proxy.clear_faults()
        self.proxy.skew_seconds = 0
        self.proxy.reset_counts()
        self._tmp = tempfile.TemporaryDirectory(prefix="sitesync-test-")
        self.addCleanup(self._tmp.cleanup)
        self.tmp = self._tmp.name
        self.bucket = harness.new_bucket_name(self._testMethodName[5:])
        self.s3.create_bucket(Bucket=self.bucket)

    def tearDown(self):
        if harness.test_failed(self):
            if harness.last_run is not None:
                sys.stderr.write(f"\n===== last sitesync run ({self.id()}) =====\n{harness.last_run.describe()}\n")
            sys.stderr.write(f"===== proxy log =====\n{harness.tail(self.proxy.log_text(), 6000)}\n")
            self.server.dump_log(f"moto server log for {self.id()}", limit=6000)

    # -- helpers -------------------------------------------------------------------------------------------------
    def site(self, spec, name="site"):
        root = os.path.join(self.tmp, name)
        harness.make_site(root, spec)
        return root

    def dest(self, prefix=""):
        return f"s3://{self.bucket}" + (f"/{prefix}" if prefix else "")

    def sitesync(self, *args, endpoint=None, env=None, timeout=120, cwd=None, json_out=True):
        args = [str(a) for a in args]
        if endpoint is not False:
            args += ["--endpoint", endpoint or self.proxy.endpoint]
        if json_out:
            args.append("--json")
        return harness.run_sitesync(args, env_extra=env, timeout=timeout, server=self.server, cwd=cwd)

    def sync(self, source, dest, *extra, **kw):
        return self.sitesync("sync", source, dest, *extra, **kw)

    def assertExit(self, res, code):
        self.assertEqual(res.returncode, code, f"expected exit {code}\n{res.describe()}")

    def ok_sync(self, source, dest, *extra, **kw):
        res = self.sync(source, dest, *extra, **kw)
        self.assertExit(res, 0)
        return res, harness.parse_json_lines(res.stdout)

    def remote(self, prefix="", head=False):
        return harness.list_bucket(self.s3, self.bucket, prefix, head=head)

    def seed(self, objects: dict, content_type=None):
        def put(item):
            key, body = item
            extra = {"ContentType": content_type} if content_type else {}
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, **extra)

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(put, objects.items()))

    def writes(self):
        c = self.proxy.counts()
        return {f"{m} {op}": n for (m, op), n in c.items() if op in WRITE_OPS and n}

    def assertNoWrites(self):
        self.assertEqual(self.writes(), {}, "no request that changes the bucket may be sent")

    def assertBucketHolds(self, files: dict, prefix="", content_types=True):
        """The bucket under prefix holds exactly `files` ({rel: bytes}): keys, sizes, bytes, Content-Type."""
        listing = harness.list_bucket(self.s3, self.bucket, prefix, head=content_types)
        self.assertEqual(sorted(listing), sorted(prefix + k for k in files))
        for rel, data in files.items():
            size, _etag, ctype = listing[prefix + rel]
            self.assertEqual(size, len(data), rel)
            self.assertEqual(harness.get_bytes(self.s3, self.bucket, prefix + rel), data, rel)
            if content_types:
                self.assertEqual(ctype, harness.expected_content_type(rel), rel)


# ------------------------------------------------------------------------------------------------------------------


@needs_sitesync
class FirstAndRepeatSyncTest(SyncCase):
    def test_first_sync_uploads_every_file(self):
        spec = harness.generated_site(60)
        src = self.site(spec)
        want = harness.expected_uploads(spec)
        self.assertGreaterEqual(len(want), 60)
        self.assertGreater(sum(map(len, want.values())), 250_000)
        res, events = self.ok_sync(src, self.dest())
        self.assertBucketHolds(want)
        remote = self.remote()
        for hidden in (".DS_Store", ".git/config", "blog/.hidden.html", ".env"):
            self.assertNotIn(hidden, remote)
        self.assertIn(".well-known/security.txt", remote)
        self.assertEqual({e["key"] for e in events_of(events, "upload")}, set(want))
        s = harness.summary_of(events)
        self.assertEqual((s["uploaded"], s["deleted"], s["unchanged"], s["failed"]), (len(want), 0, 0, 0))
        self.assertEqual(s["bytes_uploaded"], sum(map(len, want.values())))
        self.assertIs(s["dry_run"], False)
        self.assertEqual(self.proxy.count("PutObject"), len(want))
        # the secret never appears in output
        self.assertNotIn(self.server.secret_access_key, res.stdout + res.stderr)

    def test_example_site_skips_dotfiles_except_well_known(self):
        self.assertTrue((EXAMPLE_SITE / ".DS_Store").is_file(), "examples/site/.DS_Store is part of the fixture")
        self.ok_sync(EXAMPLE_SITE, self.dest())
        files = {}
        for dirpath, _dirs, names in os.walk(EXAMPLE_SITE):
            for n in names:
                rel = os.path.relpath(os.path.join(dirpath, n), EXAMPLE_SITE).replace(os.sep, "/")
                files[rel] = (EXAMPLE_SITE / rel).read_bytes()
        want = {k: v for k, v in files.items() if k != ".DS_Store"}
        self.assertIn(".well-known/security.txt", want)
        self.assertBucketHolds(want)
        self.assertEqual(self.remote()["img/logo.png"][0], len(files["img/logo.png"]))

    def test_second_sync_uploads_nothing(self):
        spec = harness.generated_site(60, seed=7)
        src = self.site(spec)
        want = harness.expected_uploads(spec)
        self.ok_sync(src, self.dest())
        before = self.remote()
        self.proxy.reset_counts()
        _res, events = self.ok_sync(src, self.dest())
        counts = self.proxy.counts()
        self.assertEqual(self.proxy.count("PutObject"), 0, counts)
        self.assertNoWrites()
        self.assertEqual(self.proxy.count("ListObjectsV2", "GET"), 1, f"one ListObjectsV2 page walk: {counts}")
        self.assertEqual(events_of(events, "upload"), [])
        s = harness.summary_of(events)
        self.assertEqual((s["uploaded"], s["deleted"], s["unchanged"], s["failed"], s["bytes_uploaded"]),
                         (0, 0, len(want), 0, 0))
        self.assertEqual(self.remote(), before)

    def test_size_change_uploads_only_that_file(self):
        spec = harness.generated_site(20, seed=3)
        src = self.site(spec)
        self.ok_sync(src, self.dest())
        before = self.remote()
        with open(os.path.join(src, "css/site.css"), "ab") as f:
            f.write(b"p{color:red}\n")
        self.proxy.reset_counts()
        _res, events = self.ok_sync(src, self.dest())
        self.assertEqual([e["key"] for e in events_of(events, "upload")], ["css/site.css"])
        self.assertEqual(self.proxy.count("PutObject"), 1)
        after = self.remote()
        self.assertEqual({k for k in after if after[k] != before[k]}, {"css/site.css"})
        with open(os.path.join(src, "css/site.css"), "rb") as f:
            self.assertEqual(harness.get_bytes(self.s3, self.bucket, "css/site.css"), f.read())
        s = harness.summary_of(events)
        self.assertEqual((s["uploaded"], s["unchanged"]), (1, len(before) - 1))

    def test_same_size_edit_needs_checksum_compare(self):
        spec = harness.generated_site(20, seed=4)
        src = self.site(spec)
        self.ok_sync(src, self.dest())
        path = os.path.join(src, "js/app.js")
        with open(path, "rb") as f:
            old = f.read()
        new = old.replace(b"hi", b"HI")
        self.assertEqual(len(new), len(old))
        self.assertNotEqual(new, old)
        with open(path, "wb") as f:
            f.write(new)
        self.proxy.reset_counts()
        _res, events = self.ok_sync(src, self.dest())  # default: --compare size
        self.assertEqual(events_of(events, "upload"), [])
        self.assertEqual(self.proxy.count("PutObject"), 0)
        self.assertEqual(harness.get_bytes(self.s3, self.bucket, "js/app.js"), old)

        _res, events = self.ok_sync(src, self.dest(), "--compare", "checksum")
        self.assertEqual([e["key"] for e in events_of(events, "upload")], ["js/app.js"])
        self.assertEqual(self.proxy.count("PutObject"), 1)
        self.assertEqual(harness.get_bytes(self.s3, self.bucket, "js/app.js"), new)

        self.proxy.reset_counts()
        _res, events = self.ok_sync(src, self.dest(), "--compare", "checksum")
        self.assertEqual(events_of(events, "upload"), [])
        self.assertNoWrites()

    def test_uploads_non_html_first_then_html_then_deletes(self):
        spec = harness.generated_site(40, seed=5)
        src = self.site(spec)
        self.seed({"stale-1.txt": b"s", "old/stale-2.html": b"s"})
        self.ok_sync(src, self.dest(), "--delete")
        order = [(m, op, target) for m, op, target in self.proxy.requests if op in WRITE_OPS]
        kinds = []
        for m, op, target in order:
            if op in ("DeleteObject", "DeleteObjects"):
                kinds.append("delete")
            else:
                kinds.append("html" if target.split("?")[0].endswith(".html") else "asset")
        first_html = kinds.index("html")
        self.assertNotIn("asset", kinds[first_html:], "every non-HTML upload is sent before the first HTML one")
        first_delete = kinds.index("delete")
        self.assertEqual(set(kinds[first_delete:]), {"delete"}, "deletes come after all uploads")
        self.assertNotIn("stale-1.txt", self.remote())

    def test_json_counts_match_bucket(self):
        spec = harness.generated_site(30, seed=6)
        src = self.site(spec)
        self.ok_sync(src, self.dest())
        before = self.remote()
        # change 2 sizes, add 3 files, remove 1 locally, plus 2 stale remote keys
        changed = ["css/site.css", "robots.txt"]
        for rel in changed:
            with open(os.path.join(src, rel), "ab") as f:
                f.write(b"/* more */\n")
        added = {"new/a.html": "<p>a</p>", "new/b.css": "b{}", "new/c.json": "{}"}
        harness.make_site(src, added)
        os.remove(os.path.join(src, "sitemap.xml"))
        self.seed({"gone-1.txt": b"x", "gone/2.txt": b"y"})
        _res, events = self.ok_sync(src, self.dest(), "--delete")
        after = self.remote()
        new_or_changed = {k for k in after if before.get(k) != after[k]}
        uploads = events_of(events, "upload")
        self.assertEqual({e["key"] for e in uploads}, new_or_changed)
        self.assertEqual(new_or_changed, set(changed) | set(added))
        for e in uploads:
            self.assertEqual(e["bytes"], after[e["key"]][0], e)
        deletes = {e["key"] for e in events_of(events, "delete")}
        self.assertEqual(deletes, {"sitemap.xml", "gone-1.txt", "gone/2.txt"})
        self.assertTrue(deletes.isdisjoint(after))
        s = harness.summary_of(events)
        self.assertEqual(s["uploaded"], len(new_or_changed))
        self.assertEqual(s["deleted"], 3)
        self.assertEqual(s["unchanged"], len(after) - len(new_or_changed))
        self.assertEqual(s["bytes_uploaded"], sum(after[k][0] for k in new_or_changed))
        self.assertEqual(s["failed"], 0)
        self.assertEqual(s["invalidation_paths"], 0)
        self.assertIsInstance(s["seconds"], (int, float))
        self.assertGreaterEqual(s["seconds"], 0)


@needs_sitesync
class KeysAndPrefixesTest(SyncCase):
    SPECIAL = {
        "sp ace.html": "<p>space</p>",
        "dir with space/index.html": "<p>dir space</p>",
        "plus+sign.txt": "plus",
        "c++/a+b.css": "a+b{}",
        "percent%20literal.txt": "percent",
        "100%.txt": "hundred",
        "hash#tag.js": "hash",
        "amp&and=eq.json": "{}",
        "tilde~.svg": "<svg/>",
        "quote'paren(1).txt": "q",
        "semi;colon:at@comma,dollar$.txt": "s",
        "brackets[1]{2}.txt": "b",
        "café/é.txt": "é",
        "über/ü.html": "<p>ü</p>",
        "日本/語.html": "<p>日本語</p>",
        "emoji-😀/🎉.png": b"\x89PNG emoji",
        "a b+c%d#e&f=g~h/ü€.txt": "mixed",
    }

    def test_special_file_names_round_trip(self):
        src = self.site(self.SPECIAL)
        want = harness.expected_uploads(self.SPECIAL)
        _res, events = self.ok_sync(src, self.dest())
        self.assertBucketHolds(want)
        self.assertEqual({e["key"] for e in events_of(events, "upload")}, set(want))
        # the listing's keys must decode to exactly the local names: a second run changes nothing
        self.proxy.reset_counts()
        _res, events = self.ok_sync(src, self.dest(), "--delete")
        self.assertNoWrites()
        self.assertEqual(harness.summary_of(events)["unchanged"], len(want))
        # and deleting one of them deletes exactly that key
        os.remove(os.path.join(src, "a b+c%d#e&f=g~h/ü€.txt"))
        os.remove(os.path.join(src, "plus+sign.txt"))
        _res, events = self.ok_sync(src, self.dest(), "--delete")
        self.assertEqual({e["key"] for e in events_of(events, "delete")},
                         {"a b+c%d#e&f=g~h/ü€.txt", "plus+sign.txt"})
        self.assertEqual(set(self.remote()), set(want) - {"a b+c%d#e&f=g~h/ü€.txt", "plus+sign.txt"})

    def test_double_slash_in_dest_prefix(self):
        spec = {"index.html": "<p>i</p>", "css/a.css": "a{}", "b/c.txt": "c"}
        src = self.site(spec)
        self.seed({"x/y/keep.txt": b"single slash: another prefix", "x//y/stale.txt": b"stale"})
        _res, events = self.ok_sync(src, self.dest("x//y/"), "--delete")
        remote = self.remote()
        self.assertEqual(set(remote), {"x//y/index.html", "x//y/css/a.css", "x//y/b/c.txt", "x/y/keep.txt"})
        self.assertEqual(harness.get_bytes(self.s3, self.bucket, "x//y/b/c.txt"), b"c")
        self.assertEqual({e["key"] for e in events_of(events, "upload")}, set(spec))
        self.assertEqual({e["key"] for e in events_of(events, "delete")}, {"stale.txt"})
        self.proxy.reset_counts()
        self.ok_sync(src, self.dest("x//y/"), "--delete")
        self.assertNoWrites()
        self.assertEqual(self.remote(), remote)

    def test_double_slash_remote_key_deleted(self):
        spec = {"a/b.html": "<p>b</p>", "dir/x.css": "x{}"}
        src = self.site(spec)
        self.seed({"site/a//b.html": b"double", "site/dir//x.css": b"double", "site//lead.txt": b"lead"})
        _res, events = self.ok_sync(src, self.dest("site/"), "--delete")
        self.assertEqual(set(self.remote()), {"site/a/b.html", "site/dir/x.css"})
        self.assertEqual(harness.get_bytes(self.s3, self.bucket, "site/a/b.html"), b"<p>b</p>")
        self.assertEqual({e["key"] for e in events_of(events, "delete")}, {"a//b.html", "dir//x.css", "/lead.txt"})

    def test_prefix_with_and_without_trailing_slash_stays_inside(self):
        spec = {"index.html": "<p>i</p>", "css/site.css": "b{}", "x": "not the other x"}
        src = self.site(spec)
        outside = {"other/keep.txt": b"keep", "site-old/x": b"old", "sitefile": b"file", "site": b"object named site",
                   "Site/upper.txt": b"case"}
        self.seed(dict(outside, **{"site/stale.txt": b"stale"}))
        _res, events = self.ok_sync(src, self.dest("site"), "--delete")
        self.assertEqual({e["key"] for e in events_of(events, "upload")}, set(spec))
        self.assertEqual({e["key"] for e in events_of(events, "delete")}, {"stale.txt"})
        self.assertBucketHolds(harness.expected_uploads(spec), prefix="site/", content_types=False)
        for key, body in outside.items():
            self.assertEqual(harness.get_bytes(self.s3, self.bucket, key), body, key)
        # the same folder spelled with a trailing slash: nothing to do
        self.proxy.reset_counts()
        _res, events = self.ok_sync(src, self.dest("site/"), "--delete")
        self.assertNoWrites()
        self.assertEqual(harness.summary_of(events)["unchanged"], len(spec))
        self.assertEqual(set(self.remote()), set(outside) | {"site/" + k for k in spec})


@needs_sitesync
class DeleteAndGuardTest(SyncCase):
    def test_stale_keys_kept_without_delete_removed_with_delete(self):
        src = self.site({"index.html": "<p>i</p>", "a.css": "a{}"})
        stale = {"old.html": b"o", "old/deep/x.js": b"x", "y.txt": b"y"}
        self.seed(stale)
        _res, events = self.ok_sync(src, self.dest())
        self.assertEqual(events_of(events, "delete"), [])
        self.assertEqual(set(self.remote()), {"index.html", "a.css"} | set(stale))
        _res, events = self.ok_sync(src, self.dest(), "--delete")
        self.assertEqual({e["key"] for e in events_of(events, "delete")}, set(stale))
        self.assertEqual(set(self.remote()), {"index.html", "a.css"})
        self.assertEqual(harness.summary_of(events)["deleted"], 3)

    def test_max_deletes_guard_refuses_and_changes_nothing(self):
        src = self.site({"index.html": "<p>new</p>", "new.css": "n{}"})
        self.seed({"index.html": b"<p>old, different size</p>", "s1.txt": b"1", "s2.txt": b"2", "s3.txt": b"3"})
        before = self.remote(head=True)
        res = self.sync(src, self.dest(), "--delete", "--max-deletes", "2")
        self.assertExit(res, 3)
        self.assertEqual(self.remote(head=True), before, "nothing deleted, nothing uploaded")
        self.assertNoWrites()
        self.assertRegex(res.stderr, r"(?i)max.deletes", "stderr names the guard")
        self.assertIn("--max-deletes", res.stderr, "stderr says how to override")
        # the limit is raised: the run goes through
        _res, events = self.ok_sync(src, self.dest(), "--delete", "--max-deletes", "3")
        self.assertEqual(set(self.remote()), {"index.html", "new.css"})
        self.assertEqual(harness.summary_of(events)["deleted"], 3)

    def test_default_max_deletes_is_256_and_minus_one_is_unlimited(self):
        src = self.site({"index.html": "<p>i</p>"})
        self.seed({f"stale/{i:03d}.txt": b"s" for i in range(257)})
        res = self.sync(src, self.dest(), "--delete")
        self.assertExit(res, 3)
        self.assertNoWrites()
        self.assertEqual(len(self.remote()), 257)
        # 257 of 258 objects is also more than --max-delete-fraction's default half: both guards are lifted.
        res = self.sync(src, self.dest(), "--delete", "--max-deletes", "-1")
        self.assertExit(res, 3)
        self.assertIn("--max-delete-fraction 1", res.stderr)
        _res, events = self.ok_sync(src, self.dest(), "--delete", "--max-deletes", "-1", "--max-delete-fraction", "1")
        self.assertEqual(set(self.remote()), {"index.html"})
        self.assertEqual(harness.summary_of(events)["deleted"], 257)
        self.assertEqual(len(events_of(events, "delete")), 257)


@needs_sitesync
class MultipartTest(SyncCase):
    def test_large_file_goes_up_by_multipart(self):
        big = random.Random(40).randbytes(40 * MiB)
        src = self.site({"media/big.bin": big, "index.html": "<p>i</p>", "small.css": "s{}"})
        _res, events = self.ok_sync(src, self.dest(), timeout=300)
        c = self.proxy.counts()
        self.assertEqual(self.proxy.count("CreateMultipartUpload"), 1, c)
        parts = self.proxy.count("UploadPart")
        self.assertGreaterEqual(parts, 3, c)
        self.assertEqual(self.proxy.count("CompleteMultipartUpload"), 1, c)
        self.assertEqual(self.proxy.count("AbortMultipartUpload"), 0, c)
        self.assertEqual(self.proxy.count("PutObject"), 2, c)  # the two small files
        head = self.s3.head_object(Bucket=self.bucket, Key="media/big.bin")
        self.assertEqual(head["ContentLength"], len(big))
        m = re.fullmatch(r'"?[0-9a-f]{32}-(\d+)"?', head["ETag"])
        self.assertIsNotNone(m, head["ETag"])
        self.assertEqual(int(m.group(1)), parts)
        self.assertEqual(head["ContentType"], "application/octet-stream")
        digest = hashlib.sha256()
        body = self.s3.get_object(Bucket=self.bucket, Key="media/big.bin")["Body"]
        for chunk in iter(lambda: body.read(MiB), b""):
            digest.update(chunk)
        self.assertEqual(digest.hexdigest(), hashlib.sha256(big).hexdigest())
        upload = [e for e in events_of(events, "upload") if e["key"] == "media/big.bin"]
        self.assertEqual(len(upload), 1)
        self.assertEqual(upload[0]["bytes"], len(big))
        self.assertEqual(self.s3.list_multipart_uploads(Bucket=self.bucket).get("Uploads", []), [])
        # unchanged on the next run
        self.proxy.reset_counts()
        self.ok_sync(src, self.dest())
        self.assertNoWrites()


@needs_sitesync
class FiltersAndSymlinksTest(SyncCase):
    def test_exclude_and_include_globs(self):
        spec = {
            "index.html": "<p>i</p>",
            "js/app.js": "a", "js/app.js.map": "{}", "css/x.css.map": "{}",
            "drafts/x.html": "<p>d</p>", "drafts/sub/y.html": "<p>d</p>", "drafts/keep.html": "<p>k</p>",
            "notdrafts/z.html": "<p>z</p>",
            ".htaccess": "Deny from all",
        }
        src = self.site(spec)
        self.seed({"old.map": b"remote map", "drafts/remote.html": b"remote draft", "stale.txt": b"s"})
        _res, events = self.ok_sync(src, self.dest(), "--delete", "--exclude", "*.map", "--exclude", "drafts/**",
                                    "--include", "drafts/keep.html", "--include", ".htaccess")
        uploaded = {"index.html", "js/app.js", "drafts/keep.html", "notdrafts/z.html", ".htaccess"}
        self.assertEqual({e["key"] for e in events_of(events, "upload")}, uploaded)
        # excluded remote keys are not deleted; stale ones are
        self.assertEqual(set(self.remote()), uploaded | {"old.map", "drafts/remote.html"})
        self.assertEqual({e["key"] for e in events_of(events, "delete")}, {"stale.txt"})

    def test_symlinks_inside_followed_outside_and_broken_skipped(self):
        outside_dir = os.path.join(self.tmp, "outside")
        harness.make_site(outside_dir, {"secret.txt": "outside the site"})
        spec = {
            "index.html": "<p>i</p>",
            "real/page.html": "<p>real</p>",
            "alias.html": Symlink("real/page.html"),
            "leak.txt": Symlink(os.path.join(outside_dir, "secret.txt")),
            "leak-rel.txt": Symlink("../outside/secret.txt"),
            "broken.html": Symlink("does-not-exist.html"),
        }
        src = self.site(spec)
        res, events = self.ok_sync(src, self.dest())
        self.assertEqual(set(self.remote()), {"index.html", "real/page.html", "alias.html"})
        self.assertEqual(harness.get_bytes(self.s3, self.bucket, "alias.html"), b"<p>real</p>")
        for name in ("leak.txt", "leak-rel.txt", "broken.html"):
            self.assertIn(name, res.stderr, f"a warning names the skipped symlink {name}")
        self.assertNotIn("outside the site", res.stdout + res.stderr)


@needs_sitesync
class FaultsTest(SyncCase):
    def test_transient_put_errors_are_retried(self):
        spec = harness.generated_site(20, seed=11)
        src = self.site(spec)
        want = harness.expected_uploads(spec)
        self.proxy.inject(status=500, code="InternalError", count=2, op="PutObject")
        self.proxy.inject(status=503, code="SlowDown", count=2, op="PutObject")
        _res, events = self.ok_sync(src, self.dest(), timeout=180)
        self.assertEqual(self.proxy.injected, 4)
        self.assertGreaterEqual(self.proxy.count("PutObject"), len(want) + 4)
        self.assertBucketHolds(want, content_types=False)
        s = harness.summary_of(events)
        self.assertEqual((s["uploaded"], s["failed"]), (len(want), 0))
        self.assertEqual(events_of(events, "error"), [])

    def test_transient_list_errors_are_retried(self):
        spec = {"index.html": "<p>i</p>", "a.css": "a{}"}
        src = self.site(spec)
        self.proxy.inject(status=500, code="InternalError", count=1, op="ListObjectsV2")
        self.proxy.inject(status=503, code="SlowDown", count=1, op="ListObjectsV2")
        self.ok_sync(src, self.dest(), timeout=180)
        self.assertEqual(self.proxy.injected, 2)
        self.assertEqual(self.proxy.count("ListObjectsV2"), 3)
        self.assertBucketHolds(harness.expected_uploads(spec))

    def test_connection_reset_is_retried(self):
        spec = {"index.html": "<p>i</p>", "a.css": "a{}", "b.js": "b"}
        src = self.site(spec)
        self.proxy.inject(action="reset", count=1, op="PutObject")
        self.ok_sync(src, self.dest(), timeout=180)
        self.assertEqual(self.proxy.injected, 1)
        self.assertBucketHolds(harness.expected_uploads(spec))

    def test_clock_skew_is_corrected(self):
        spec = {"index.html": "<p>i</p>", "a.css": "a{}"}
        src = self.site(spec)
        self.proxy.skew_seconds = 3600
        self.seed({"stale.txt": b"s"})
        _res, events = self.ok_sync(src, self.dest(), "--delete", timeout=180)
        self.assertGreaterEqual(self.proxy.skew_rejections, 1, "the skew must have been noticed and corrected")
        self.assertBucketHolds(harness.expected_uploads(spec))
        self.assertEqual(harness.summary_of(events)["failed"], 0)

    def test_unreachable_endpoint_fails_fast(self):
        port = harness.free_loopback_port()
        src = self.site({"index.html": "<p>i</p>"})
        start = time.monotonic()
        res = self.sync(src, self.dest(), endpoint=f"http://127.0.0.1:{port}", timeout=120)
        elapsed = time.monotonic() - start
        self.assertExit(res, 1)
        self.assertLess(elapsed, 60, res.describe())
        self.assertRegex(res.stderr, rf"(?i)(connect|refused|unreachable|127\.0\.0\.1:{port})", res.describe())
        self.assertEqual(self.remote(), {})

    def test_wrong_secret_fails_without_leaking_it(self):
        src = self.site({"index.html": "<p>i</p>"})
        wrong = "WrongSecretDoNotPrint0123456789abcdefXYZ"
        for extra in (["-v"], []):
            res = self.sync(src, self.dest(), *extra, env={"AWS_SECRET_ACCESS_KEY": wrong})
            self.assertExit(res, 1)
            self.assertRegex(res.stderr, r"(?i)(credential|signature)", res.describe())
            self.assertNotIn(wrong, res.stdout + res.stderr)
            self.assertNotIn(wrong[:16], res.stdout + res.stderr)
        self.assertEqual(self.remote(), {})
        # and the right secret does not show up in a verbose successful run either
        res = self.sync(src, self.dest(), "-v")
        self.assertExit(res, 0)
        self.assertNotIn(self.server.secret_access_key, res.stdout + res.stderr)


@needs_sitesync
class InputErrorsTest(SyncCase):
    def assertUsageError(self, res, *patterns):
        self.assertExit(res, 2)
        for p in patterns:
            self.assertRegex(res.stderr, p, res.describe())
        self.assertEqual(self.proxy.total(), 0, "nothing may be sent for a usage error")

    def test_missing_source(self):
        self.seed({"keep.txt": b"k"})
        missing = os.path.join(self.tmp, "no-such-dir")
        res = self.sync(missing, self.dest(), "--delete")
        self.assertUsageError(res, re.escape("no-such-dir"))
        res = harness.run_sitesync(["sync", "--endpoint", self.proxy.endpoint], server=self.server)
        self.assertUsageError(res, r"(?i)source")
        self.assertEqual(set(self.remote()), {"keep.txt"})

    def test_bad_destinations(self):
        src = self.site({"index.html": "<p>i</p>"})
        for bad in ("http://x", "s3://", "bucket-only", f"https://{self.bucket}/x"):
            with self.subTest(dest=bad):
                res = self.sync(src, bad)
                self.assertUsageError(res, r"(?i)(" + re.escape(bad) + r"|dest|s3://)")
        self.assertEqual(self.remote(), {})

    def write_config(self, text, name="sitesync.yaml"):
        d = os.path.join(self.tmp, "cfg")
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return d, path

    def test_yaml_syntax_error_names_file_and_line(self):
        src = self.site({"index.html": "<p>i</p>"})
        self.seed({"keep.txt": b"k"})
        cfg = (f"source: {src}\n"                                 # 1
               f"destination: s3://{self.bucket}\n"               # 2
               f"endpoint: {self.proxy.endpoint}\n"               # 3
               "delete: true\n"                                   # 4
               "# a comment\n"                                    # 5
               "jobs: 4\n"                                        # 6
               "compare: size\n"                                  # 7
               "region: us-east-1: oops\n"                        # 8  <- syntax error
               "exclude:\n  - '*.map'\n")
        d, _path = self.write_config(cfg)
        res = harness.run_sitesync(["sync"], server=self.server, cwd=d)  # ./sitesync.yaml found by default
        self.assertUsageError(res, r"sitesync\.yaml", r"(line\s*8\b|:8\b)")
        self.assertEqual(set(self.remote()), {"keep.txt"})

    def test_yaml_wrong_type_names_key_file_and_line(self):
        src = self.site({"index.html": "<p>i</p>"})
        cfg = (f"source: {src}\n"                                 # 1
               f"destination: s3://{self.bucket}\n"               # 2
               f"endpoint: {self.proxy.endpoint}\n"               # 3
               "compare: size\n"                                  # 4
               "# jobs must be a number\n"                        # 5
               "jobs: many\n")                                    # 6
        _d, path = self.write_config(cfg, name="publish.yaml")
        res = harness.run_sitesync(["sync", "--config", path], server=self.server)
        self.assertUsageError(res, r"publish\.yaml", r"(line\s*6\b|:6\b)", r"jobs")
        self.assertEqual(self.remote(), {})


@needs_sitesync
class PlanAndConfigTest(SyncCase):
    def test_plan_and_dry_run_change_nothing(self):
        src = self.site({"index.html": "<p>new index</p>", "same.css": "s{}", "added.js": "a"})
        self.seed({"index.html": b"<p>old</p>", "same.css": b"s{}", "stale.txt": b"x"})
        before = self.remote(head=True)
        planned = {}
        for args in (["plan", src, self.dest(), "--delete"], ["sync", src, self.dest(), "--delete", "--dry-run"]):
            with self.subTest(args=args[0]):
                self.proxy.reset_counts()
                res = self.sitesync(*args)
                self.assertExit(res, 0)
                events = harness.parse_json_lines(res.stdout)
                ups, dels = events_of(events, "upload"), events_of(events, "delete")
                self.assertEqual({e["key"] for e in ups}, {"index.html", "added.js"})
                self.assertEqual({e["key"] for e in dels}, {"stale.txt"})
                for e in ups + dels:
                    self.assertIs(e.get("planned"), True, e)
                s = harness.summary_of(events)
                self.assertIs(s["dry_run"], True)
                self.assertEqual((s["uploaded"], s["deleted"], s["unchanged"]), (2, 1, 1))
                self.assertNoWrites()
                self.assertEqual(self.remote(head=True), before)
                planned[args[0]] = ({e["key"] for e in ups}, {e["key"] for e in dels})
        # the real run does what was planned
        _res, events = self.ok_sync(src, self.dest(), "--delete")
        done = ({e["key"] for e in events_of(events, "upload")}, {e["key"] for e in events_of(events, "delete")})
        self.assertEqual(done, planned["plan"])
        for e in events_of(events, "upload") + events_of(events, "delete"):
            self.assertNotEqual(e.get("planned"), True, e)
        self.assertEqual(set(self.remote()), {"index.html", "same.css", "added.js"})

    def test_config_file_sets_headers(self):
        spec = {
            "index.html": "<p>i</p>", "blog/index.html": "<p>b</p>", "about.html": "<p>a</p>",
            "css/site.css": "body{}", "readme.txt": "read me", "notes/todo.txt": "todo", "js/app.js": "a",
        }
        src = self.site(spec)
        cfg_dir = os.path.join(self.tmp, "project")
        os.makedirs(cfg_dir)
        with open(os.path.join(cfg_dir, "sitesync.yaml"), "w", encoding="utf-8") as f:
            f.write(textwrap.dedent(f"""\
                source: {src}
                destination: s3://{self.bucket}/cfg
                endpoint: {self.proxy.endpoint}
                headers:
                  - match: "*.css"
                    cache_control: "public, max-age=31536000, immutable"
                  - match: "*.txt"
                    content_type: "text/markdown; charset=utf-8"
                  - match: "notes/*.txt"
                    content_type: "text/x-notes"
                  - match: "*.html"
                    cache_control: "no-cache"
                  - match: "index.html"
                    cache_control: "max-age=60"
                """))
        res = harness.run_sitesync(["sync", "--json"], server=self.server, cwd=cfg_dir)
        self.assertExit(res, 0)

        def head(key):
            h = self.s3.head_object(Bucket=self.bucket, Key="cfg/" + key)
            return h.get("ContentType"), h.get("CacheControl")

        self.assertEqual(head("css/site.css"), ("text/css; charset=utf-8", "public, max-age=31536000, immutable"))
        self.assertEqual(head("readme.txt"), ("text/markdown; charset=utf-8", None))
        self.assertEqual(head("notes/todo.txt"), ("text/x-notes", None))  # the last matching rule wins
        self.assertEqual(head("about.html"), ("text/html; charset=utf-8", "no-cache"))
        self.assertEqual(head("index.html"), ("text/html; charset=utf-8", "max-age=60"))
        self.assertEqual(head("blog/index.html"), ("text/html; charset=utf-8", "max-age=60"))
        self.assertEqual(head("js/app.js"), ("text/javascript; charset=utf-8", None))
        self.assertEqual(set(self.remote()), {"cfg/" + k for k in spec})
        # an explicit --config from elsewhere reads the same file: nothing left to do
        self.proxy.reset_counts()
        res = harness.run_sitesync(["sync", "--json", "--config", os.path.join(cfg_dir, "sitesync.yaml")],
                                   server=self.server)
        self.assertExit(res, 0)
        self.assertNoWrites()
        self.assertEqual(harness.summary_of(harness.parse_json_lines(res.stdout))["unchanged"], len(spec))


if __name__ == "__main__":
    unittest.main(verbosity=2)
