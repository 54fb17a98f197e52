"""Integration tests of the adaptive number of transfers in flight (issue 15, point 2), with the real binary.

- Through a proxy that admits 100 requests a second (a token bucket; the rest answered 503 SlowDown, as S3 does
  above a prefix's rate), a first upload of 300 files exits 0 with every object in place (checked with boto3), and
  the summary counts the answers that asked to slow down, exactly as many as the proxy sent; the same with
  `--jobs 16` (throttled requests then wait with exponential backoff); the human summary says it too.
- `--jobs 4` and `jobs: 8` fix the count: the proxy never handles more requests at once, and -v traces no change.
- Without --jobs, against a server whose throughput grows with concurrency (250 ms per request), the count grows
  past 64: the proxy handles more than 64 requests at once, and -v traces the growth.

    SITESYNC_BIN=$PWD/build/cli/sitesync python3 tests/integration/test_adaptive.py -v
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from test_sync import SyncCase  # noqa: E402

BIN_OK, BIN_WHY = harness.sitesync_available()
needs_sitesync = unittest.skipUnless(BIN_OK, BIN_WHY)


def small_site(n: int) -> dict:
    """n small files in a few folders, each with its own content."""
    return {f"d{i % 7}/f{i:04d}.txt": f"file {i} " + "x" * (i % 50) for i in range(n)}


@needs_sitesync
class AdaptiveTest(SyncCase):
    def tearDown(self):
        self.proxy.throttle(None)
        self.proxy.latency_seconds = 0.0
        super().tearDown()

    def assertBucketHoldsSpec(self, spec: dict):
        want = harness.expected_uploads(spec)
        got = self.remote(head=False)
        self.assertEqual(set(got), set(want))
        for key, body in want.items():
            size, etag, _ = got[key]
            self.assertEqual((size, etag), (len(body), hashlib.md5(body).hexdigest()), key)

    def test_a_throttled_first_upload_loses_nothing(self):
        spec = small_site(300)
        src = self.site(spec)
        self.proxy.throttle(100, burst=10)
        res = self.sync(src, self.dest(), "-v", timeout=120)
        self.assertExit(res, 0)
        s = harness.summary_of(harness.parse_json_lines(res.stdout))
        self.assertEqual((s["uploaded"], s["failed"]), (300, 0))
        self.assertGreater(self.proxy.throttled, 0)
        self.assertEqual(s["throttled"], self.proxy.throttled, "every SlowDown the proxy sent is counted")
        self.assertIn("in flight 64 -> 32: the server asked to slow down", res.stderr)
        self.assertNotIn('"event":"error"', res.stdout)
        self.proxy.throttle(None)
        self.assertBucketHoldsSpec(spec)

    def test_a_throttled_upload_with_fixed_jobs_loses_nothing(self):
        # Fixed count: throttled requests wait with exponential backoff, on their own budget of attempts.
        spec = small_site(200)
        src = self.site(spec)
        self.proxy.throttle(100, burst=10)
        res = self.sync(src, self.dest(), "--jobs", "16", timeout=120)
        self.assertExit(res, 0)
        s = harness.summary_of(harness.parse_json_lines(res.stdout))
        self.assertEqual((s["uploaded"], s["failed"]), (200, 0))
        self.assertGreater(s["throttled"], 0)
        self.assertEqual(s["throttled"], self.proxy.throttled)
        self.proxy.throttle(None)
        self.assertBucketHoldsSpec(spec)

    def test_the_human_summary_says_the_server_asked_to_slow_down(self):
        spec = small_site(120)
        src = self.site(spec)
        self.proxy.throttle(100, burst=10)
        res = self.sync(src, self.dest(), json_out=False)
        self.assertExit(res, 0)
        m = re.search(r"the server asked to slow down (\d+) times?; ", res.stderr)
        self.assertIsNotNone(m, res.stderr)
        self.assertEqual(int(m.group(1)), self.proxy.throttled)
        self.proxy.throttle(None)
        self.assertBucketHoldsSpec(spec)

    def test_jobs_4_fixes_the_count(self):
        spec = small_site(80)
        src = self.site(spec)
        self.proxy.latency_seconds = 0.05  # requests overlap: the count is what bounds them
        res = self.sync(src, self.dest(), "--jobs", "4", "-v")
        self.assertExit(res, 0)
        self.assertEqual(self.proxy.max_concurrent, 4)
        self.assertNotIn("in flight ", res.stderr)
        s = harness.summary_of(harness.parse_json_lines(res.stdout))
        self.assertEqual((s["uploaded"], s["failed"], s["throttled"]), (80, 0, 0))
        self.assertBucketHoldsSpec(spec)

    def test_jobs_8_in_the_config_fixes_the_count(self):
        spec = small_site(80)
        src = self.site(spec)
        config = os.path.join(self.tmp, "sitesync.yaml")
        with open(config, "w", encoding="utf-8") as f:
            f.write("jobs: 8\n")
        self.proxy.latency_seconds = 0.05
        res = self.sync(src, self.dest(), "-c", config, "-v")
        self.assertExit(res, 0)
        self.assertEqual(self.proxy.max_concurrent, 8)
        self.assertNotIn("in flight ", res.stderr)
        self.assertBucketHoldsSpec(spec)

    def test_without_jobs_the_count_grows_past_64(self):
        spec = small_site(1500)
        src = self.site(spec)
        # 250 ms a request: 64 in flight carry 256 requests a second, 96 carry 384; the count grows while that
        # holds.
        self.proxy.latency_seconds = 0.25
        res = self.sync(src, self.dest(), "-v", timeout=120)
        self.assertExit(res, 0)
        self.assertIn("in flight 64 -> 96: throughput ", res.stderr)
        self.assertGreater(self.proxy.max_concurrent, 64)
        s = harness.summary_of(harness.parse_json_lines(res.stdout))
        self.assertEqual((s["uploaded"], s["failed"]), (1500, 0))
        self.assertBucketHoldsSpec(spec)


if __name__ == "__main__":
    unittest.main()
