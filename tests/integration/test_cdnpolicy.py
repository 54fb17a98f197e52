"""Integration tests of the invalidation policy (issue 14, point 7): `cdn.skip` globs and `cdn.invalidate_new:
false`, against moto_server with SigV4 checking on (tests/integration/harness.py), through the real binary.

The invalidations are read back with boto3 (list_invalidations / get_invalidation on moto, which keeps the paths
exactly as submitted) and the bucket with list_objects; the expected path sets are computed here from CLI.md
("Invalidation paths") with test_cdn.expected_paths, never by sitesync.

    SITESYNC_BIN=$PWD/build/cli/sitesync python3 -m unittest -v tests/integration/test_cdnpolicy.py
"""

from __future__ import annotations

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from test_cdn import CdnCase, events_of, expected_paths, needs_sitesync  # noqa: E402
from test_watch import WatchCase, needs_watch, write  # noqa: E402

# A generator's output: pages, fingerprinted assets in the Hugo, Vite and Eleventy styles, and plain assets.
SITE = {
    "index.html": "<p>home</p>",
    "blog/index.html": "<p>blog</p>",
    "css/main.min.3f2a9c1b.css": "body{}",        # Hugo: resources.Fingerprint of a minified file
    "css/site.css": "p{}",                        # not fingerprinted
    "assets/index-Bx3k9QzA.js": "x()",            # Vite: assets/[name]-[hash][extname]
    "assets/sub/deep-Cc1.js": "y()",              # '*' does not cross '/': not matched by assets/*-*.js
    "img/logo.png": b"\x89PNG logo",
    "docs/index.html": "<p>docs</p>",              # skipped by "docs/**": no alias of it either
}

SKIP_CONFIG = """\
    cdn:
      skip: ["*.min.*.css", "assets/*-*.js", "docs/**"]
"""
SKIPPED = {"css/main.min.3f2a9c1b.css", "assets/index-Bx3k9QzA.js", "docs/index.html"}


@needs_sitesync
class SkipTest(CdnCase):
    def test_skip_leaves_exactly_the_matching_paths_out_of_sync_and_plan(self):
        src = self.site(SITE)
        cfg = self.write_config(SKIP_CONFIG)
        kept = set(harness.expected_uploads(SITE)) - SKIPPED
        # plan prints the same paths and creates nothing.
        before = len(self.invs())
        res = self.sitesync("plan", src, self.dest(), "--endpoint", self.proxy.endpoint, "--distribution", self.dist,
                            "--cloudfront-endpoint", self.proxy.endpoint, "--config", cfg, "--json")
        self.assertExit(res, 0)
        planned = events_of(harness.parse_json_lines(res.stdout), "invalidate")
        self.assertEqual(len(planned), 1, planned)
        self.assertEqual(set(planned[0]["paths"]), expected_paths(kept))
        self.assertNoNewInvalidation(before)
        # sync: every file goes up, the skipped ones are not invalidated (nor the docs/ aliases).
        _res, events = self.ok_sync(src, None, "--config", cfg)
        self.assertEqual(set(harness.list_bucket(self.s3, self.bucket, head=False)), set(harness.expected_uploads(SITE)))
        inv = self.assertOneNewInvalidation(before, expected_paths(kept), events)
        self.assertTrue(expected_paths(SKIPPED).isdisjoint(inv["Paths"]), inv["Paths"])
        self.assertIn("/assets/sub/deep-Cc1.js", inv["Paths"])
        # A change to only skipped files: uploaded, no invalidation at all.
        self.proxy.reset_counts()
        harness.make_site(src, {"css/main.min.3f2a9c1b.css": "body{color:red}", "assets/index-Bx3k9QzA.js": "xx()"})
        before = len(self.invs())
        _res, events = self.ok_sync(src, None, "--config", cfg)
        self.assertEqual(harness.summary_of(events)["uploaded"], 2)
        self.assertNoNewInvalidation(before)
        self.assertEqual(self.proxy.count("CreateInvalidation", "POST"), 0, self.proxy.counts())
        self.assertEqual(harness.summary_of(events)["invalidation_paths"], 0)

    def test_skip_that_is_not_a_list_or_holds_an_empty_glob_is_a_config_error(self):
        src = self.site({"index.html": "x"})
        for text in ("cdn:\n  skip: '*.css'\n", "cdn:\n  skip: ['']\n", "cdn:\n  skip: {a: b}\n"):
            cfg = self.write_config(text)
            res = self.sync(src, None, "--config", cfg, json_out=False)
            self.assertExit(res, 2)
            self.assertIn("cdn.skip", res.stderr)
            self.assertEqual(harness.list_bucket(self.s3, self.bucket, head=False), {}, "nothing changed")


@needs_sitesync
class InvalidateNewTest(CdnCase):
    def test_invalidate_new_false_leaves_new_keys_out_and_keeps_changed_and_deleted(self):
        first = {"index.html": "<p>v1</p>", "old.html": "<p>old</p>", "blog/index.html": "<p>b</p>",
                 "keep.css": "a{}"}
        src = self.first_sync(first)
        cfg = self.write_config("cdn:\n  invalidate_new: false\n")
        # Second run: index.html changed, old.html deleted, two new files (one an index document).
        os.remove(os.path.join(src, "old.html"))
        harness.make_site(src, {"index.html": "<p>version 2</p>", "new.html": "<p>new</p>",
                                "news/index.html": "<p>n</p>"})
        before = len(self.invs())
        res = self.sitesync("plan", src, self.dest(), "--endpoint", self.proxy.endpoint, "--distribution", self.dist,
                            "--cloudfront-endpoint", self.proxy.endpoint, "--config", cfg, "--delete", "--json")
        self.assertExit(res, 0)
        planned = events_of(harness.parse_json_lines(res.stdout), "invalidate")
        want = expected_paths(["index.html", "old.html"])
        self.assertEqual(len(planned), 1, planned)
        self.assertEqual(set(planned[0]["paths"]), want)
        _res, events = self.ok_sync(src, None, "--config", cfg, "--delete")
        keys = set(harness.list_bucket(self.s3, self.bucket, head=False))
        self.assertEqual(keys, {"index.html", "blog/index.html", "keep.css", "new.html", "news/index.html"})
        inv = self.assertOneNewInvalidation(before, want, events)
        self.assertTrue(expected_paths(["new.html", "news/index.html"]).isdisjoint(inv["Paths"]))
        # Third run: a change to a key that was new last run is a change now: invalidated.
        self.proxy.reset_counts()
        harness.make_site(src, {"new.html": "<p>new, edited</p>"})
        before = len(self.invs())
        _res, events = self.ok_sync(src, None, "--config", cfg)
        self.assertOneNewInvalidation(before, expected_paths(["new.html"]), events)

    def test_default_invalidates_new_keys(self):
        src = self.first_sync({"index.html": "<p>v1</p>"})
        harness.make_site(src, {"fresh.html": "<p>f</p>"})
        before = len(self.invs())
        _res, events = self.ok_sync(src)
        self.assertOneNewInvalidation(before, expected_paths(["fresh.html"]), events)


@needs_watch
class WatchPolicyTest(WatchCase):
    def test_every_watch_batch_leaves_skipped_and_new_keys_out(self):
        src = self.site({"index.html": "<p>v1</p>", "blog/index.html": "<p>b</p>", "app.0123abcd.js": "x()"})
        cfg = os.path.join(self.tmp, "sitesync.yaml")
        with open(cfg, "w", encoding="utf-8") as f:
            f.write('cdn:\n  skip: ["*.[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]*.js"]\n'
                    "  invalidate_new: false\n")
        w = self.start_watch(src, "--config", cfg, "--debounce", "200")
        # batch 0 (the initial sync into an empty bucket): every key is new, the asset is skipped: no invalidation.
        self.assertEqual(self.invs0, 0, self.invs())
        # A changed page, a new page, a changed fingerprinted asset.
        mark = w.mark()
        write(os.path.join(src, "index.html"), b"<p>version 2</p>")
        write(os.path.join(src, "fresh/index.html"), b"<p>fresh</p>")
        write(os.path.join(src, "app.0123abcd.js"), b"xx()")
        w.wait_keys("upload", ["index.html", "fresh/index.html", "app.0123abcd.js"], mark)
        w.settle(1.0)
        paths = [p for inv in self.new_invs() for p in inv["Paths"]]
        self.assertEqual(set(paths), expected_paths(["index.html"]))
        # The page that was new is in the session's listing now: its edit is invalidated.
        before = len(self.invs())
        mark = w.mark()
        write(os.path.join(src, "fresh/index.html"), b"<p>fresh, edited</p>")
        w.wait_keys("upload", ["fresh/index.html"], mark)
        w.settle(1.0)
        new = self.invs()[before:]
        self.assertEqual(len(new), 1, new)
        self.assertEqual(set(new[0]["Paths"]), expected_paths(["fresh/index.html"]))
        self.assertAlive()


if __name__ == "__main__":
    unittest.main(verbosity=2)
