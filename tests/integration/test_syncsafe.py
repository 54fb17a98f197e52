"""Integration tests of what a sync does when things fail or look wrong (issue 12, points 4, 5 and 14):
- order under failure: a failed asset holds back every page and every delete, a failed page every delete; what
  was held back is reported (skip events, "skipped" in the summary, exit 1), and the next run completes the job;
- an empty or mostly emptied build never wipes the site (--max-delete-fraction, exit 3), in sync and per watch
  batch, where the message never advises raising a limit;
- CompleteMultipartUpload answered 200 with an <Error> is retried; a lost Complete answer is resolved with a
  HEAD; a PUT whose answer is lost on every attempt still gets its path invalidated.

Against moto_server with SigV4 checking on, through the FaultProxy; outcomes checked with boto3.

    SITESYNC_BIN=$PWD/build/cli/sitesync python3 tests/integration/test_syncsafe.py -v
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from test_cdn import CdnCase  # noqa: E402
from test_sync import SyncCase, events_of  # noqa: E402
from test_watch import WatchCase  # noqa: E402

BIN_OK, BIN_WHY = harness.sitesync_available()
needs_sitesync = unittest.skipUnless(BIN_OK, BIN_WHY)

MiB = 1024 * 1024
ASSET_FAILED = "held back: an asset of this run failed"
PAGE_FAILED = "held back: a page of this run failed"
ATTEMPTS = 5  # the client's attempts per request


def multipart_etag(data: bytes, part_size: int = 8 * MiB) -> str:
    parts = [hashlib.md5(data[i:i + part_size]).digest() for i in range(0, len(data), part_size)]
    return f"{hashlib.md5(b''.join(parts)).hexdigest()}-{len(parts)}"


def skips(events) -> dict:
    return {e["key"]: e["reason"] for e in events_of(events, "skip")}


# --------------------------------------------------------------------------------------------------------------
# point 4: order under failure
# --------------------------------------------------------------------------------------------------------------


@needs_sitesync
class OrderUnderFailureTest(SyncCase):
    def test_a_failed_asset_holds_back_every_page_and_every_delete(self):
        spec = {"a.css": "a{}", "index.html": "<p>new home</p>", "blog/post.html": "<p>post</p>"}
        src = self.site(spec)
        self.seed({"index.html": b"<p>old</p>", "old.txt": b"stale"})
        # The one asset's PUT fails on every attempt.
        self.proxy.inject(status=503, code="SlowDown", count=ATTEMPTS, op="PutObject")
        res = self.sync(src, self.dest(), "--delete")
        self.assertExit(res, 1)
        events = harness.parse_json_lines(res.stdout)
        self.assertEqual(skips(events), {"index.html": ASSET_FAILED, "blog/post.html": ASSET_FAILED,
                                         "old.txt": ASSET_FAILED})
        s = harness.summary_of(events)
        self.assertEqual((s["uploaded"], s["failed"], s["skipped"], s["deleted"]), (0, 1, 3, 0))
        self.assertEqual(self.proxy.count("PutObject"), ATTEMPTS, "no page was sent")
        self.assertEqual(self.proxy.count("DeleteObjects"), 0)
        self.assertEqual(harness.get_bytes(self.s3, self.bucket, "index.html"), b"<p>old</p>")
        self.assertIn("old.txt", self.remote())
        # The next run completes the job.
        _res, events = self.ok_sync(src, self.dest(), "--delete")
        self.assertEqual(harness.summary_of(events)["skipped"], 0)
        self.assertBucketHolds({k: v.encode() for k, v in spec.items()}, content_types=False)

    def test_a_failed_page_holds_back_the_deletes(self):
        src = self.site({"a.css": "a{}", "index.html": "<p>new home</p>"})
        self.seed({"a.css": b"a{}", "old.html": b"<p>gone</p>"})
        self.proxy.inject(status=500, code="InternalError", count=ATTEMPTS, op="PutObject")
        res = self.sync(src, self.dest(), "--delete")
        self.assertExit(res, 1)
        events = harness.parse_json_lines(res.stdout)
        self.assertEqual(skips(events), {"old.html": PAGE_FAILED})
        self.assertEqual(harness.summary_of(events)["skipped"], 1)
        self.assertEqual(self.proxy.count("DeleteObjects"), 0)
        self.assertIn("old.html", self.remote())
        # Human output: the skip is said, and counted in the summary line.
        self.proxy.inject(status=500, code="InternalError", count=ATTEMPTS, op="PutObject")
        res = self.sync(src, self.dest(), "--delete", json_out=False)
        self.assertExit(res, 1)
        self.assertIn(f"old.html: {PAGE_FAILED}", res.stderr)
        self.assertRegex(res.stdout, r"1 failed, 1 skipped")
        _res, events = self.ok_sync(src, self.dest(), "--delete")
        self.assertEqual(sorted(self.remote()), ["a.css", "index.html"])


# --------------------------------------------------------------------------------------------------------------
# point 14: an empty build never wipes the site
# --------------------------------------------------------------------------------------------------------------


@needs_sitesync
class EmptyBuildTest(SyncCase):
    def test_an_empty_source_deletes_nothing(self):
        src = self.site({})
        os.makedirs(src, exist_ok=True)
        self.seed({f"p{i}.html": b"<p>page</p>" for i in range(5)})
        res = self.sync(src, self.dest(), "--delete")
        self.assertExit(res, 3)
        self.assertNoWrites()
        self.assertIn("SOURCE holds no file", res.stderr)
        self.assertIn("--max-delete-fraction 1", res.stderr, "the way out is named")
        self.assertEqual(len(self.remote()), 5)
        # The way out.
        _res, events = self.ok_sync(src, self.dest(), "--delete", "--max-delete-fraction", "1")
        self.assertEqual(self.remote(), {})

    def test_a_build_that_lost_most_pages_is_refused_under_the_256_limit(self):
        pages = {f"blog/p{i:03d}/index.html": f"<p>{i}</p>" for i in range(40)}
        src = self.site({k: v for k, v in list(pages.items())[:10]} | {"new.css": "n{}"})
        self.seed({k: v.encode() for k, v in pages.items()})
        res = self.sync(src, self.dest(), "--delete")
        self.assertExit(res, 3)
        self.assertNoWrites()
        self.assertIn("30 of the 40", res.stderr, "both numbers are named")
        self.assertIn("--max-delete-fraction", res.stderr)
        self.assertEqual(len(self.remote()), 40)
        # The config key lets it through.
        cfg = os.path.join(self.tmp, "sitesync.yaml")
        with open(cfg, "w", encoding="utf-8") as f:
            f.write("max_delete_fraction: 0.8\n")
        _res, events = self.ok_sync(src, self.dest(), "--delete", "--config", cfg)
        self.assertEqual(harness.summary_of(events)["deleted"], 30)
        self.assertEqual(len(self.remote()), 11)

    def test_a_bad_fraction_is_a_usage_error(self):
        src = self.site({"index.html": "<p>i</p>"})
        res = self.sync(src, self.dest(), "--max-delete-fraction", "1.5")
        self.assertExit(res, 2)
        self.assertIn("max_delete_fraction", res.stderr)
        cfg = os.path.join(self.tmp, "bad.yaml")
        with open(cfg, "w", encoding="utf-8") as f:
            f.write("max_delete_fraction: -0.1\n")
        res = self.sync(src, self.dest(), "--config", cfg)
        self.assertExit(res, 2)
        self.assertIn("max_delete_fraction", res.stderr)
        self.assertNoWrites()


@needs_sitesync
class WatchGuardTest(WatchCase):
    def held_message(self, w, mark) -> str:
        _i, _t, e = w.wait_for(lambda e: e.get("event") == "error" and "holding back" in e.get("message", ""),
                               mark, timeout=30, what="the guard's message")
        return e["message"]

    def test_a_batch_that_would_delete_most_of_the_site_holds_its_deletes_back(self):
        spec = {f"p{i:02d}.html": f"<p>{i}</p>" for i in range(30)}
        src = self.site(spec)
        w = self.start_watch(src, "--delete")
        mark = w.mark()
        for i in range(20):
            os.remove(os.path.join(src, f"p{i:02d}.html"))
        message = self.held_message(w, mark)
        self.assertIn("20 deletes", message)
        self.assertIn("mid-rebuild or emptied", message)
        for advice in ("--max-delete-fraction 1", "--max-deletes 20", "no limit", "run again"):
            self.assertNotIn(advice, message)
        w.wait_summary(mark, timeout=30)
        self.assertEqual(len(self.remote()), 30, "nothing deleted")
        self.assertEqual(self.proxy.count("DeleteObjects"), 0)
        self.assertEqual(len([e for e in w.since(mark) if e.get("event") == "skip"]), 20)
        self.assertAlive()
        # The generator writes 15 of them back: the next batch retries the held-back deletes and the 5 that stay
        # gone go (5 is under the floor).
        mark = w.mark()
        for i in range(15):
            harness.make_site(src, {f"p{i:02d}.html": f"<p>{i}</p>"})
        gone = {f"p{i:02d}.html" for i in range(15, 20)}
        w.wait_keys("delete", gone, mark, timeout=40)
        w.settle(quiet=1.0)
        self.assertEqual(sorted(self.remote()), sorted(set(spec) - gone))
        deleted = {e["key"] for e in w.since(mark) if e.get("event") == "delete"}
        self.assertEqual(deleted, gone, "no page that came back was deleted")

    def test_watch_started_on_an_emptied_folder_deletes_nothing_and_raises_no_limit(self):
        spec = {f"p{i:02d}.html": f"<p>{i}</p>" for i in range(20)}
        for k, v in spec.items():
            self.s3.put_object(Bucket=self.bucket, Key=k, Body=v.encode())
        src = self.site({"p00.html": spec["p00.html"]})
        w = self.start_watch(src, "--delete", wait_initial=False)
        w.proc.wait(timeout=60)
        self.assertEqual(w.proc.returncode, 3, w.describe())
        text = w.stderr_text()
        w.stop()
        self.watcher = None  # ended before its batch 0: the fixture's per-batch checks do not apply
        self.assertIn("19 of the 20", text)
        self.assertIn("mid-rebuild", text)
        for advice in ("--max-delete-fraction 1", "run again"):
            self.assertNotIn(advice, text)
        self.assertEqual(len(self.remote()), 20)
        self.assertEqual(self.proxy.count("DeleteObjects") + self.proxy.count("PutObject"), 0)

    def test_the_max_deletes_refusal_in_watch_never_advises_raising_the_limit(self):
        src = self.site({f"p{i}.html": f"<p>{i}</p>" for i in range(8)})
        w = self.start_watch(src, "--delete", "--max-deletes", "2")
        mark = w.mark()
        for i in range(3):
            os.remove(os.path.join(src, f"p{i}.html"))
        message = self.held_message(w, mark)
        self.assertIn("--max-deletes 2", message)
        for advice in ("--max-deletes 3", "no limit", "run again"):
            self.assertNotIn(advice, message)
        self.assertEqual(len(self.remote()), 8)


# --------------------------------------------------------------------------------------------------------------
# point 5, S3 half: unknown outcomes
# --------------------------------------------------------------------------------------------------------------


@needs_sitesync
class CompleteMultipartTest(SyncCase):
    """A 17 MiB file goes up in three parts (the multipart threshold is 16 MiB, parts 8 MiB)."""

    def setUp(self):
        super().setUp()
        self.big = random.Random(self._testMethodName).randbytes(17 * MiB)
        self.src = self.site({"media/big.bin": self.big, "index.html": "<p>i</p>"})

    def assertBigIsThere(self):
        head = self.s3.head_object(Bucket=self.bucket, Key="media/big.bin")
        self.assertEqual(head["ContentLength"], len(self.big))
        self.assertEqual(head["ETag"].strip('"'), multipart_etag(self.big))
        self.assertEqual(self.s3.list_multipart_uploads(Bucket=self.bucket).get("Uploads", []), [])

    def run_ok(self):
        _res, events = self.ok_sync(self.src, self.dest(), timeout=180)
        s = harness.summary_of(events)
        self.assertEqual((s["uploaded"], s["failed"], s["skipped"]), (2, 0, 0))
        self.assertBigIsThere()
        self.assertEqual(self.proxy.count("AbortMultipartUpload"), 0)
        return events

    def test_a_200_answer_with_an_error_body_is_retried_not_aborted(self):
        # Not forwarded: S3 did not complete the upload and said so in a 200 (S3 API reference).
        self.proxy.inject(status=200, code="InternalError", count=1, op="CompleteMultipartUpload")
        self.run_ok()
        self.assertEqual(self.proxy.count("CompleteMultipartUpload"), 2)

    def test_a_lost_complete_answer_then_no_such_upload_is_resolved_with_a_head(self):
        # Completed, the answer lost; the retry gets NoSuchUpload (as S3 answers once the upload is complete;
        # moto would complete it again), and a HEAD shows the object.
        self.proxy.inject(count=1, op="CompleteMultipartUpload", action="forward_close")
        self.proxy.inject(status=404, code="NoSuchUpload", count=1, op="CompleteMultipartUpload")
        self.run_ok()
        self.assertEqual(self.proxy.count("CompleteMultipartUpload"), 2)
        self.assertEqual(self.proxy.count("HeadObject"), 1)

    def test_a_completed_upload_answered_200_with_an_error_is_resolved_with_a_head(self):
        self.proxy.inject(status=200, code="InternalError", count=1, op="CompleteMultipartUpload",
                          action="forward_error")
        self.proxy.inject(status=404, code="NoSuchUpload", count=1, op="CompleteMultipartUpload")
        self.run_ok()
        self.assertEqual(self.proxy.count("CompleteMultipartUpload"), 2)
        self.assertEqual(self.proxy.count("HeadObject"), 1)

    def test_complete_answers_lost_on_every_attempt_are_resolved_with_a_head(self):
        # More faults than attempts: curl also resends by itself on a connection closed before any answer.
        self.proxy.inject(count=100, op="CompleteMultipartUpload", action="forward_close")
        self.run_ok()
        self.assertGreaterEqual(self.proxy.count("CompleteMultipartUpload"), ATTEMPTS)
        self.assertEqual(self.proxy.count("HeadObject"), 1)


@needs_sitesync
class LostAnswerTest(CdnCase):
    def test_a_put_whose_answer_is_lost_on_every_attempt_still_gets_its_path_invalidated(self):
        src = self.site({"index.html": "<p>new</p>"})
        before = len(self.invs())
        # More faults than attempts: curl also resends by itself on a connection closed before any answer.
        self.proxy.inject(count=100, op="PutObject", action="forward_close")
        res = self.sync(src)
        self.assertExit(res, 1)
        self.assertGreaterEqual(self.proxy.count("PutObject"), ATTEMPTS)
        self.proxy.clear_faults()
        # S3 did store it (boto3 sees it), although sitesync never heard so.
        self.assertEqual(harness.get_bytes(self.s3, self.bucket, "index.html"), b"<p>new</p>")
        # The next run has nothing to upload; between the two runs the path was invalidated.
        _res, events = self.ok_sync(src)
        self.assertEqual(harness.summary_of(events)["uploaded"], 0)
        paths = {p for inv in self.invs()[before:] for p in inv["Paths"]}
        self.assertTrue({"/index.html", "/"} <= paths, paths)


if __name__ == "__main__":
    unittest.main(verbosity=2)
