"""Integration tests of the local record of what was published (issue 14, point 1, and the record's side of
point 2): the real binary against moto_server with SigV4 checking on, through the FaultProxy; the bucket checked
with boto3.

- a same-size edit is published on the second and later runs, under --compare checksum and under the default
  size compare, and only the changed file is read (the summary's "hashed");
- a touch-only rebuild (every mtime changed, no content) uploads nothing;
- objects whose ETags are no MD5s (multipart with 5 MiB parts put by boto3; forged ETags through the proxy,
  standing in for SSE-KMS) reach a stable no-upload state after one run;
- deleting the cache file only costs a rehash;
- a watch and a sync share the record.

Every run gets XDG_CACHE_HOME under the test's temp dir (the record lives there).

    SITESYNC_BIN=$PWD/build/cli/sitesync python3 tests/integration/test_record.py -v
"""

from __future__ import annotations

import glob
import os
import random
import shutil
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from test_sync import SyncCase, events_of  # noqa: E402
from test_watch import WatchCase, keys_of, write  # noqa: E402

BIN_OK, BIN_WHY = harness.sitesync_available()
needs_sitesync = unittest.skipUnless(BIN_OK, BIN_WHY)

MiB = 1024 * 1024


def small_site(n: int = 12) -> dict:
    """n pages and assets whose sizes are unique, with a version string that same-size edits change."""
    spec = {"index.html": "<h1>home</h1><p>build 09</p>"}
    for i in range(1, n):
        ext = ("html", "css", "js", "txt")[i % 4]
        spec[f"d{i % 3}/f{i:02d}.{ext}"] = f"file {i:02d} " + "x" * i + " v09"
    return spec


def same_size(text: str) -> str:
    edited = text.replace("09", "10")
    assert edited != text and len(edited) == len(text)
    return edited


class RecordCase(SyncCase):
    """A SyncCase whose runs share one cache folder (self.cache) unless told otherwise."""

    def setUp(self):
        super().setUp()
        self.cache = os.path.join(self.tmp, "cache")
        self.proxy.forge_etags = False
        self.addCleanup(setattr, self.proxy, "forge_etags", False)

    def run_sync(self, src, *extra, cache=None):
        res, events = self.ok_sync(src, self.dest(), *extra, env={"XDG_CACHE_HOME": cache or self.cache})
        return events, harness.summary_of(events)

    def record_files(self):
        return glob.glob(os.path.join(self.cache, "sitesync", "*.sqlite"))

    def edit(self, src, rel, text):
        path = os.path.join(src, rel)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)


@needs_sitesync
class SameSizeEditTest(RecordCase):
    def check_same_size_edits(self, *compare):
        spec = small_site()
        src = self.site(spec)
        _e, s = self.run_sync(src, *compare)
        self.assertEqual((s["uploaded"], s["hashed"]), (len(spec), 0))
        self.assertEqual(len(self.record_files()), 1, "one record file for the destination")
        self.proxy.reset_counts()
        _e, s = self.run_sync(src, *compare)
        self.assertEqual((s["uploaded"], s["hashed"], s["unchanged"]), (0, 0, len(spec)),
                         "nothing changed: nothing read, nothing sent")
        self.assertEqual(self.proxy.count("PutObject"), 0)
        # Two later edits at the same size, each published by the run after it, reading only that file.
        for rel in ("index.html", "d1/f04.html"):
            new = same_size(spec[rel])
            self.edit(src, rel, new)
            self.proxy.reset_counts()
            events, s = self.run_sync(src, *compare)
            self.assertEqual((s["uploaded"], s["hashed"]), (1, 1), rel)
            self.assertEqual([e["key"] for e in events_of(events, "upload")], [rel])
            self.assertEqual(self.proxy.count("PutObject"), 1)
            self.assertEqual(harness.get_bytes(self.s3, self.bucket, rel), new.encode())
            spec[rel] = new
        _e, s = self.run_sync(src, *compare)
        self.assertEqual((s["uploaded"], s["hashed"]), (0, 0))

    def test_same_size_edit_published_under_checksum(self):
        self.check_same_size_edits("--compare", "checksum")

    def test_same_size_edit_published_under_the_default_size_compare(self):
        self.check_same_size_edits()

    def test_without_a_record_size_only_counts_newer_same_size_files(self):
        spec = small_site(6)
        src = self.site(spec)
        self.run_sync(src)
        time.sleep(1.1)  # LastModified has whole seconds: the edit must be newer than the object's second
        self.edit(src, "index.html", same_size(spec["index.html"]))
        fresh = os.path.join(self.tmp, "fresh-cache")
        _e, s = self.run_sync(src, cache=fresh)
        self.assertEqual((s["uploaded"], s["newer_same_size"], s["hashed"]), (0, 1, 0),
                         "a fresh cache: size-only, and the newer same-size file is counted")
        res = self.sync(src, self.dest(), json_out=False, env={"XDG_CACHE_HOME": os.path.join(self.tmp, "other")})
        self.assertExit(res, 0)
        self.assertIn("1 file of the same size as its object but newer", res.stderr)
        self.assertIn("--compare checksum", res.stderr)
        # checksum compares it (and adopts the rest into the record).
        _e, s = self.run_sync(src, "--compare", "checksum", cache=fresh)
        self.assertEqual((s["uploaded"], s["newer_same_size"], s["hashed"]), (1, 0, len(spec)))
        _e, s = self.run_sync(src, "--compare", "checksum", cache=fresh)
        self.assertEqual((s["uploaded"], s["hashed"]), (0, 0))

    def test_touch_only_rebuild_uploads_nothing(self):
        spec = small_site()
        src = self.site(spec)
        self.run_sync(src)
        later = time.time() + 5
        for rel in spec:
            os.utime(os.path.join(src, rel), (later, later))
        self.proxy.reset_counts()
        _e, s = self.run_sync(src)
        self.assertEqual((s["uploaded"], s["hashed"]), (0, len(spec)), "every file read once, none sent")
        self.assertEqual(self.proxy.count("PutObject"), 0)
        _e, s = self.run_sync(src, "--compare", "checksum")
        self.assertEqual((s["uploaded"], s["hashed"]), (0, 0), "the new stats were recorded")

    def test_deleting_the_cache_file_only_costs_a_rehash(self):
        spec = small_site()
        src = self.site(spec)
        self.run_sync(src, "--compare", "checksum")
        shutil.rmtree(self.cache)
        self.proxy.reset_counts()
        _e, s = self.run_sync(src, "--compare", "checksum")
        self.assertEqual((s["uploaded"], s["hashed"]), (0, len(spec)))
        self.assertEqual(self.proxy.count("PutObject"), 0)
        _e, s = self.run_sync(src, "--compare", "checksum")
        self.assertEqual((s["uploaded"], s["hashed"]), (0, 0))
        # A damaged record file is recreated the same way.
        for path in self.record_files():
            with open(path, "r+b") as f:
                f.write(b"\xff" * 4096)
        _e, s = self.run_sync(src, "--compare", "checksum")
        self.assertEqual((s["uploaded"], s["hashed"]), (0, len(spec)))

    def test_dry_run_writes_no_record(self):
        src = self.site(small_site(4))
        res = self.sync(src, self.dest(), "--dry-run", env={"XDG_CACHE_HOME": self.cache})
        self.assertExit(res, 0)
        self.assertEqual(self.record_files(), [])
        for e in events_of(harness.parse_json_lines(res.stdout), "upload"):
            self.assertEqual((e["planned"], e["reason"]), (True, "new"))


@needs_sitesync
class HeadersFollowTheConfigTest(RecordCase):
    def test_a_changed_cache_control_rule_copies_exactly_the_matching_objects(self):
        spec = small_site(8)
        src = self.site(spec)
        config = os.path.join(self.tmp, "sitesync.yaml")
        with open(config, "w", encoding="utf-8") as f:
            f.write('headers:\n  - match: "*.css"\n    cache_control: "max-age=60"\n')
        self.run_sync(src, "--config", config)
        css = sorted(k for k in spec if k.endswith(".css"))
        self.assertTrue(css)
        with open(config, "w", encoding="utf-8") as f:
            f.write('headers:\n  - match: "*.css"\n    cache_control: "max-age=600"\n')
        plan = self.sync(src, self.dest(), "--config", config, "--dry-run", env={"XDG_CACHE_HOME": self.cache})
        self.assertExit(plan, 0)
        planned = {e["key"]: e["reason"] for e in events_of(harness.parse_json_lines(plan.stdout), "upload")}
        self.assertEqual(planned, {k: "headers changed" for k in css})
        self.proxy.reset_counts()
        events, s = self.run_sync(src, "--config", config)
        self.assertEqual(sorted(e["key"] for e in events_of(events, "upload")), css)
        self.assertEqual((s["uploaded"], s["headers_updated"], s["bytes_uploaded"]), (len(css), len(css), 0))
        self.assertEqual(self.proxy.count("CopyObject"), len(css))
        self.assertEqual(self.proxy.count("PutObject"), 0)
        for key in spec:
            head = self.s3.head_object(Bucket=self.bucket, Key=key)
            self.assertEqual(head.get("CacheControl"), "max-age=600" if key in css else None, key)
            self.assertEqual(harness.get_bytes(self.s3, self.bucket, key), spec[key].encode())
        self.proxy.reset_counts()
        _e, s = self.run_sync(src, "--config", config)
        self.assertEqual((s["uploaded"], s["hashed"]), (0, 0))
        self.assertEqual(self.proxy.count("CopyObject"), 0)


@needs_sitesync
class NonMd5EtagTest(RecordCase):
    def test_multipart_objects_put_by_boto3_reach_a_stable_state(self):
        from boto3.s3.transfer import TransferConfig

        rnd = random.Random(14)
        big = rnd.randbytes(11 * MiB)
        spec = {"big.bin": big, "index.html": "<p>home 09</p>", "a.css": "a{color:red}"}
        src = self.site(spec)
        config = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB)
        self.s3.upload_file(os.path.join(src, "big.bin"), self.bucket, "big.bin", Config=config)
        self.assertTrue(self.remote()["big.bin"][1].strip('"').endswith("-3"), "boto3 made a 3-part object")
        for compare in (("--compare", "checksum"), ()):
            self.proxy.reset_counts()
            _e, s = self.run_sync(src, *compare)
            self.assertNotIn("big.bin", [e["key"] for e in events_of(_e, "upload")])
            self.proxy.reset_counts()
            _e, s = self.run_sync(src, *compare)
            self.assertEqual((s["uploaded"], s["hashed"]), (0, 0), compare)
            self.assertEqual(self.proxy.count("PutObject") + self.proxy.count("UploadPart"), 0)
        # An object of this tool's own multipart upload (ETag "-N" too): a same-size edit is caught by the record.
        huge = bytearray(rnd.randbytes(17 * MiB))
        self.site({"huge.bin": bytes(huge)})
        self.run_sync(src)
        self.assertTrue(self.remote()["huge.bin"][1].strip('"').endswith("-3"))
        huge[5 * MiB] ^= 0xFF
        self.site({"huge.bin": bytes(huge)})
        events, s = self.run_sync(src)
        self.assertEqual([e["key"] for e in events_of(events, "upload")], ["huge.bin"])
        self.assertEqual(harness.get_bytes(self.s3, self.bucket, "huge.bin"), bytes(huge))
        _e, s = self.run_sync(src)
        self.assertEqual((s["uploaded"], s["hashed"]), (0, 0))

    def test_forged_etags_reach_a_stable_state_after_one_run(self):
        spec = small_site(8)
        src = self.site(spec)
        # Put by another tool (boto3, straight to moto): the same bytes, so only the ETags make them look changed.
        self.seed({k: v.encode() for k, v in spec.items()})
        self.proxy.forge_etags = True
        _e, s = self.run_sync(src, "--compare", "checksum")
        # No ETag can be compared with an MD5: every same-size file reads as changed and goes up once.
        self.assertEqual((s["uploaded"], s["hashed"]), (len(spec), len(spec)))
        for run in range(2):
            self.proxy.reset_counts()
            _e, s = self.run_sync(src, "--compare", "checksum")
            self.assertEqual((s["uploaded"], s["hashed"]), (0, 0), f"run {run + 2}")
            self.assertEqual(self.proxy.count("PutObject"), 0)
        # A same-size edit is still caught (by the recorded MD5, the ETag telling nothing).
        self.edit(src, "index.html", same_size(spec["index.html"]))
        events, s = self.run_sync(src, "--compare", "checksum")
        self.assertEqual([e["key"] for e in events_of(events, "upload")], ["index.html"])
        self.assertEqual(harness.get_bytes(self.s3, self.bucket, "index.html"),
                         same_size(spec["index.html"]).encode())
        _e, s = self.run_sync(src)
        self.assertEqual((s["uploaded"], s["hashed"]), (0, 0))


@needs_sitesync
class WatchSharesTheRecordTest(WatchCase):
    def sync_once(self, src, *extra):
        res = harness.run_sitesync(["sync", src, self.dest(), "--endpoint", self.proxy.endpoint, "--json", *extra],
                                   server=self.server, home=self.home,
                                   env_extra={"XDG_CACHE_HOME": os.path.join(self.home, ".cache")})
        self.assertEqual(res.returncode, 0, res.describe())
        return harness.summary_of(harness.parse_json_lines(res.stdout))

    def test_watch_and_sync_share_the_record(self):
        spec = small_site(8)
        src = self.site(spec)
        w = self.start_watch(src, distribution=False)
        self.assertEqual(self.initial_summary["uploaded"], len(spec))
        # A sync while the watch runs: the watch's record says everything is there.
        s = self.sync_once(src, "--compare", "checksum")
        self.assertEqual((s["uploaded"], s["hashed"]), (0, 0))
        # A same-size edit published by the watch is recorded: the next sync neither reads nor sends it.
        rel = "index.html"
        new = same_size(spec[rel]).encode()
        mark = w.mark()
        write(os.path.join(src, rel), new)
        w.wait_keys("upload", [rel], mark, timeout=15)
        self.assertEqual(self.get(rel), new)
        w.settle(1.0)
        self.assertEqual(keys_of(w.since(mark), "upload"), [rel])
        s = self.sync_once(src, "--compare", "checksum")
        self.assertEqual((s["uploaded"], s["hashed"]), (0, 0))
        # And a same-size edit the sync publishes (the watch sees it too, and finds it already there).
        rel2 = "d1/f04.html"
        mark = w.mark()
        new2 = same_size(spec[rel2]).encode()
        write(os.path.join(src, rel2), new2)
        s = self.sync_once(src)
        w.settle(1.5)
        watch_uploads = keys_of(w.since(mark), "upload")
        self.assertEqual(self.get(rel2), new2)
        self.assertGreaterEqual(s["uploaded"] + len(watch_uploads), 1, "published, by whichever came first")
        s = self.sync_once(src)
        self.assertEqual((s["uploaded"], s["hashed"]), (0, 0))
        self.assertIsNone(w.proc.poll(), "the watch is still running")


if __name__ == "__main__":
    unittest.main()
