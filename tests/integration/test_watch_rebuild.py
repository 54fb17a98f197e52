"""Integration tests of `sitesync watch` against a generator's clean rebuild, future mtimes and failed batches
(issue 12, points 2, 3 and 10), with moto_server (SigV4 checking on) behind the FaultProxy.

- A rebuild (rm -rf SOURCE, then the pages written again over 3 s with pauses of up to 1 s) under
  `watch --delete` with CloudFront on: no DeleteObjects request names a key that exists at the end (the
  DeleteObjects bodies are recorded by the proxy), the bucket ends equal to the folder, and the invalidations
  cover every changed URL.
- A file dated one hour ahead (as `cp -p` of a file from a skewed clock makes it) is published in the first batch.
- A batch whose PUT or whose invalidation failed after its retries is tried again on a timer, with no further
  local change, and the output says when.

The watcher fixture (process, reader thread, bucket and distribution per test) is test_watch.py's.

    SITESYNC_BIN=$PWD/build/cli/sitesync python3 -m unittest -v tests/integration/test_watch_rebuild.py
"""

from __future__ import annotations

import os
import random
import re
import shutil
import sys
import time
import unittest
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from test_watch import WatchCase, expected_paths, keys_of, needs_watch, write  # noqa: E402


def deleted_keys(recorded) -> list[str]:
    """The keys named by the DeleteObjects requests among the proxy's recorded requests."""
    keys = []
    for rec in recorded:
        if rec.op != "DeleteObjects" or rec.body is None:
            continue
        root = ET.fromstring(rec.body)
        keys += [el.text or "" for el in root.iter() if el.tag.rsplit("}", 1)[-1] == "Key"]
    return keys


@needs_watch
class RebuildTest(WatchCase):
    """`rm -rf public && build` next to `watch --delete`: the live site never loses a page that comes back."""

    def rebuild(self, src: str, spec: dict, order: list[str], rnd: random.Random) -> float:
        """rm -rf SOURCE, then write `order` over about 3 s in groups, with pauses of up to 1 s between them
        (longer than the debounce, shorter than watch.delete_delay_ms). Returns the time of the last write."""
        shutil.rmtree(src)
        time.sleep(0.3)  # the root stays away for a moment, as while a generator starts
        groups = [order[i:i + 4] for i in range(0, len(order), 4)]
        pauses = [rnd.uniform(0.3, 1.0) for _ in groups[1:]]
        scale = min(1.0, 2.7 / sum(pauses)) if pauses else 1.0  # the whole rebuild takes about 3 s
        last = time.monotonic()
        for n, group in enumerate(groups):
            if n:
                time.sleep(pauses[n - 1] * scale)
            for rel in group:
                last = write(os.path.join(src, rel), spec[rel])
        return last

    def assertBucketIsFolder(self, spec: dict, what: str):
        remote = self.remote()
        self.assertEqual(sorted(remote), sorted(spec), what)
        for k, data in spec.items():
            self.assertEqual(remote[k][0], len(data), f"{what}: {k}")

    def run_rebuild(self, before: dict, after: dict, order: list[str], rnd: random.Random, what: str):
        w = self.watcher
        self.proxy.reset_counts()
        mark = w.mark()
        invs_before = len(self.invs())
        self.rebuild(self.src, after, order, rnd)
        # The deletes wait for 2 s of quiet (watch.delete_delay_ms); the bucket must then equal the folder.
        harness.wait_until(lambda: sorted(self.remote()) == sorted(after), timeout=30, interval=0.3,
                           what=f"{what}: the bucket to equal the folder")
        w.settle(quiet=1.0, min_wait=0.5)
        self.assertAlive()
        deletes = deleted_keys(self.proxy.recorded)
        self.assertEqual(sorted(k for k in deletes if k in after), [],
                         f"{what}: a DeleteObjects named keys that exist at the end ({len(deletes)} deleted)")
        self.assertEqual(sorted(set(deletes)), sorted(set(before) - set(after)), what)
        self.assertEqual(sorted(keys_of(w.since(mark), "delete")), sorted(set(before) - set(after)), what)
        self.assertBucketIsFolder(after, what)
        for k in after:
            if before.get(k) != after[k]:
                self.assertEqual(self.get(k), after[k], f"{what}: {k}")
        changed = [k for k in set(before) | set(after) if before.get(k) != after.get(k)]
        self.assertCovered(self.invs()[invs_before:], expected_paths(changed), what)
        return changed

    def test_rm_rf_and_slow_rebuild_deletes_nothing_that_comes_back(self):
        rnd = random.Random(12)
        first = harness.expected_uploads(harness.generated_site(24, seed=12))
        src = self.site(first)
        self.start_watch(src, "--delete")
        self.proxy.record_bodies = True
        # Round 1: the rebuild changes two pages, drops one, adds one; written in key order.
        second = dict(first)
        pages = sorted(k for k in first if k.endswith("/index.html"))
        second[pages[1]] = b"<p>page rewritten by the rebuild</p>"
        second[pages[2]] = second[pages[2]] + b"<!-- built again -->"
        del second[pages[3]]
        second["blog/new-post/index.html"] = b"<p>a new post</p>"
        changed = self.run_rebuild(first, second, sorted(second), rnd, "rebuild 1 (key order)")
        self.assertEqual(len(changed), 4)
        # Round 2: the same pages, written in another order (assets last, pages shuffled).
        order = sorted(second, key=lambda k: (not k.endswith(".html"), rnd.random()))
        changed = self.run_rebuild(second, second, order, rnd, "rebuild 2 (same pages, another order)")
        self.assertEqual(changed, [])
        self.assertEqual(self.proxy.count("DeleteObjects"), 0, self.proxy.counts())


@needs_watch
class FutureMtimeTest(WatchCase):
    def test_file_dated_an_hour_ahead_is_published_in_the_first_batch(self):
        src = self.site({"index.html": "<p>home</p>", "css/site.css": "body{}"})
        w = self.start_watch(src)
        # `cp -p` of a file from a machine whose clock runs an hour ahead: made outside SOURCE, dated, moved in.
        staging = os.path.join(self.tmp, "staging")
        os.makedirs(staging)
        ahead = time.time() + 3600
        for name, data in (("future.html", b"<p>from the future</p>"), ("future.css", b"main{}")):
            with open(os.path.join(staging, name), "wb") as f:
                f.write(data)
            os.utime(os.path.join(staging, name), (ahead, ahead))
        mark = w.mark()
        os.rename(os.path.join(staging, "future.css"), os.path.join(src, "css/future.css"))
        os.rename(os.path.join(staging, "future.html"), os.path.join(src, "future.html"))
        i_sum, _t = w.wait_keys("upload", ["future.html", "css/future.css"], mark, timeout=10)
        summaries = [e for e in w.since(mark, i_sum + 1) if e.get("event") == "summary"]
        self.assertEqual(len(summaries), 1, f"both files go in the first batch: {w.since(mark)}")
        self.assertEqual(self.get("future.html"), b"<p>from the future</p>")
        self.assertEqual(self.get("css/future.css"), b"main{}")
        self.assertCovered(self.new_invs(), expected_paths(["future.html", "css/future.css"]))
        self.assertAlive()


@needs_watch
class RetryTest(WatchCase):
    def test_failed_upload_lands_without_further_change(self):
        src = self.site({"index.html": "<p>home</p>", "docs/guide.html": "<p>guide</p>"})
        w = self.start_watch(src)
        self.proxy.inject(status=503, code="SlowDown", count=10_000, op="PutObject")
        key, data = "docs/guide.html", b"<p>guide, edited while S3 fails</p>"
        mark = w.mark()
        write(os.path.join(src, key), data)
        i_err, _t, _e = w.wait_for(lambda e: e.get("event") == "error" and e.get("key") == key, mark, 60,
                                   f"the error event for {key}")
        w.wait_summary(i_err, timeout=15)
        harness.wait_until(lambda: re.search(r"retrying 1 failed path in 5 s", w.stderr_text()), timeout=5,
                           what="the note saying when the next try is")
        attempts = self.proxy.count("PutObject")
        # S3 recovers; nothing changes locally: the timer alone publishes the file.
        self.proxy.clear_faults()
        t_clear = time.monotonic()
        i_up, t_up, _e = w.wait_for(lambda e: e.get("event") == "upload" and e.get("key") == key, i_err, 30,
                                    f"the retried upload of {key}")
        w.wait_summary(i_up, timeout=10)
        self.assertLess(t_up - t_clear, 15.0)
        self.assertGreater(self.proxy.count("PutObject"), attempts)
        self.assertEqual(self.get(key), data)
        self.assertCovered(self.new_invs(), expected_paths([key]))
        self.assertAlive()

    def test_failed_delete_is_retried_without_further_change(self):
        cfg = os.path.join(self.tmp, "sitesync.yaml")
        with open(cfg, "w", encoding="utf-8") as f:
            f.write("watch:\n  delete_delay_ms: 300\n")
        src = self.site({"index.html": "<p>home</p>", "old/index.html": "<p>old</p>"})
        w = self.start_watch(src, "--delete", "--config", cfg)
        self.proxy.inject(status=503, code="SlowDown", count=10_000, op="DeleteObjects")
        key = "old/index.html"
        mark = w.mark()
        os.remove(os.path.join(src, key))
        w.wait_for(lambda e: e.get("event") == "error" and e.get("key") == key, mark, 60,
                   f"the failed delete of {key}")
        harness.wait_until(lambda: re.search(r"retrying 1 failed path in 5 s", w.stderr_text()), timeout=10,
                           what="the note saying when the next try is")
        self.assertIn(key, self.remote())
        self.proxy.clear_faults()
        w.wait_for(lambda e: e.get("event") == "delete" and e.get("key") == key, mark, 30,
                   f"the retried delete of {key}")
        harness.wait_until(lambda: key not in self.remote(), timeout=10, what=f"{key} to be gone from the bucket")
        harness.wait_until(lambda: self.new_invs(), timeout=10, what="the invalidation of the deleted page")
        self.assertCovered(self.new_invs(), expected_paths([key]))
        self.assertAlive()

    def test_failed_invalidation_is_submitted_without_further_change(self):
        src = self.site({"index.html": "<p>home</p>", "a/index.html": "<p>a</p>"})
        w = self.start_watch(src)
        self.proxy.inject(status=503, code="ServiceUnavailable", count=10_000, op="CreateInvalidation")
        key = "a/index.html"
        mark = w.mark()
        write(os.path.join(src, key), b"<p>a, edited while CloudFront fails</p>")
        w.wait_for(lambda e: e.get("event") == "error" and "invalidation" in str(e.get("key", "")) + str(
            e.get("message", "")), mark, 60, "the failed invalidation")
        harness.wait_until(lambda: re.search(r"retrying .*invalidation.* in 5 s", w.stderr_text()), timeout=10,
                           what="the note saying when the next try is")
        self.assertEqual(self.new_invs(), [])
        self.proxy.clear_faults()
        harness.wait_until(lambda: self.new_invs(), timeout=30, interval=0.3,
                           what="the owed invalidation to be submitted by the timer")
        self.assertCovered(self.new_invs(), expected_paths([key]))
        self.assertEqual(self.get(key), b"<p>a, edited while CloudFront fails</p>")
        self.assertAlive()


if __name__ == "__main__":
    unittest.main(verbosity=2)
