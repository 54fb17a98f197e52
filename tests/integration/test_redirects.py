"""Integration tests of redirects and clean URLs (issue 14, points 5 and 6), against moto_server with SigV4 checking
on (tests/integration/harness.py), through the real binary.

The bucket is checked with boto3 (head_object: WebsiteRedirectLocation, ContentLength, ContentType), the
invalidations with list_invalidations / get_invalidation (moto keeps the paths as submitted); the expected paths
are computed here from CLI.md ("Invalidation paths") with test_cdn.expected_paths, never by sitesync.

    SITESYNC_BIN=$PWD/build/cli/sitesync python3 -m unittest -v tests/integration/test_redirects.py
"""

from __future__ import annotations

import os
import shutil
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from test_cdn import CdnCase, events_of, expected_paths, needs_sitesync  # noqa: E402
from test_watch import WatchCase, needs_watch, write  # noqa: E402

SITE = {
    "index.html": "<p>home</p>",
    "new/index.html": "<p>the new place</p>",
    "about.html": "<p>about us</p>",
    "blog/post.html": "<p>a post</p>",
    "blog/index.html": "<p>blog</p>",
    "css/site.css": "body{}",
}

REDIRECTS_CONFIG = """\
    redirects:
      - from: /old/
        to: /new/
      - {from: /gone.html, to: "https://example.org/elsewhere"}
"""


def head(s3, bucket, key):
    return s3.head_object(Bucket=bucket, Key=key)


@needs_sitesync
class RedirectsTest(CdnCase):
    def assertRedirect(self, key, location):
        h = head(self.s3, self.bucket, key)
        self.assertEqual(h.get("WebsiteRedirectLocation"), location, f"{key}: {h}")
        self.assertEqual(h["ContentLength"], 0, f"{key} is zero bytes")
        self.assertTrue(h["ContentType"].startswith("text/html"), h["ContentType"])
        self.assertEqual(harness.get_bytes(self.s3, self.bucket, key), b"")

    def test_config_and_file_redirects_are_created_shown_in_plan_invalidated_and_removed_with_delete(self):
        spec = dict(SITE)
        spec["_redirects"] = "# moved\n/blog/old-post.html /blog/post.html 301\n/team /about.html\n"
        src = self.site(spec)
        cfg = self.write_config(REDIRECTS_CONFIG)
        # plan shows the redirect objects as uploads and changes nothing.
        res = self.sitesync("plan", src, self.dest(), "--endpoint", self.proxy.endpoint, "--config", cfg, "--json")
        self.assertExit(res, 0)
        planned = {e["key"] for e in events_of(harness.parse_json_lines(res.stdout), "upload")}
        redirect_keys = {"old/index.html", "gone.html", "blog/old-post.html", "team"}
        self.assertTrue(redirect_keys <= planned, planned)
        self.assertEqual(harness.list_bucket(self.s3, self.bucket, head=False), {})

        before = len(self.invs())
        _res, events = self.ok_sync(src, None, "--config", cfg)
        keys = set(harness.list_bucket(self.s3, self.bucket, head=False))
        page_keys = set(SITE)
        self.assertEqual(keys, page_keys | redirect_keys, "the _redirects file itself is never uploaded")
        self.assertRedirect("old/index.html", "/new/")
        self.assertRedirect("gone.html", "https://example.org/elsewhere")
        self.assertRedirect("blog/old-post.html", "/blog/post.html")
        self.assertRedirect("team", "/about.html")
        self.assertIsNone(head(self.s3, self.bucket, "index.html").get("WebsiteRedirectLocation"))
        # Invalidated like pages: "/old/" has its folder aliases.
        self.assertOneNewInvalidation(before, expected_paths(page_keys | redirect_keys), events)
        self.assertTrue({"/old/", "/old/index.html", "/old"} <= set(self.invs()[-1]["Paths"]))

        # A second run changes nothing.
        self.proxy.reset_counts()
        before = len(self.invs())
        _res, events = self.ok_sync(src, None, "--config", cfg)
        self.assertEqual(harness.summary_of(events)["uploaded"], 0)
        self.assertNoNewInvalidation(before)

        # The rules go (one from the file, one from the config): with --delete their objects go, invalidated.
        with open(os.path.join(src, "_redirects"), "w", encoding="utf-8") as f:
            f.write("/team /about.html\n")
        cfg = self.write_config("redirects:\n  - {from: /old/, to: /new/}\n")
        before = len(self.invs())
        _res, events = self.ok_sync(src, None, "--config", cfg, "--delete")
        keys = set(harness.list_bucket(self.s3, self.bucket, head=False))
        self.assertEqual(keys, page_keys | {"old/index.html", "team"})
        self.assertEqual({e["key"] for e in events_of(events, "delete")}, {"gone.html", "blog/old-post.html"})
        self.assertOneNewInvalidation(before, expected_paths(["gone.html", "blog/old-post.html"]), events)

    def test_a_changed_target_updates_the_object_with_and_without_the_record(self):
        src = self.site({"index.html": "<p>home</p>", "_redirects": "/team /about.html\n"})
        self.ok_sync(src)
        self.assertRedirect("team", "/about.html")
        # Same size (0), other target: the headers recorded at upload tell (the local record).
        with open(os.path.join(src, "_redirects"), "w", encoding="utf-8") as f:
            f.write("/team /people/\n")
        self.proxy.reset_counts()
        before = len(self.invs())
        _res, events = self.ok_sync(src)
        self.assertRedirect("team", "/people/")
        self.assertOneNewInvalidation(before, expected_paths(["team"]), events)
        # Without the record (a fresh CI runner): the redirect objects are HEADed and compared.
        cache = os.path.join(self.home, ".cache", "sitesync")
        self.assertTrue(os.path.isdir(cache), "the record lives under $XDG_CACHE_HOME/sitesync")
        shutil.rmtree(cache)
        with open(os.path.join(src, "_redirects"), "w", encoding="utf-8") as f:
            f.write("/team https://example.org/team\n")
        self.proxy.reset_counts()
        before = len(self.invs())
        _res, events = self.ok_sync(src)
        self.assertRedirect("team", "https://example.org/team")
        self.assertOneNewInvalidation(before, expected_paths(["team"]), events)
        self.assertEqual(self.proxy.count("HeadObject", "HEAD"), 1, self.proxy.counts())
        self.assertEqual(self.proxy.count("PutObject", "PUT"), 0, "headers only: CopyObject, no body")
        # And then nothing more to do.
        before = len(self.invs())
        _res, events = self.ok_sync(src)
        self.assertEqual(harness.summary_of(events)["uploaded"], 0)
        self.assertNoNewInvalidation(before)

    def test_an_unsupported_redirects_line_is_an_input_error_and_nothing_changes(self):
        src = self.site({"index.html": "x", "_redirects": "/ok /fine\n/blog/* /news/:splat 301\n"})
        res = self.sync(src, None, json_out=False)
        self.assertExit(res, 2)
        self.assertIn("_redirects:2", res.stderr)
        self.assertIn("splat", res.stderr)
        self.assertEqual(harness.list_bucket(self.s3, self.bucket, head=False), {})
        self.assertEqual(self.invs(), [])

    def test_a_bad_config_entry_names_it(self):
        src = self.site({"index.html": "x"})
        cfg = self.write_config("redirects:\n  - {from: /a, to: /b}\n  - {from: old, to: /new/}\n")
        res = self.sync(src, None, "--config", cfg, json_out=False)
        self.assertExit(res, 2)
        self.assertIn("redirects[1]", res.stderr)
        self.assertEqual(harness.list_bucket(self.s3, self.bucket, head=False), {})


@needs_sitesync
class CleanUrlsTest(CdnCase):
    def test_clean_urls_publish_about_as_about_with_text_html_invalidation_and_sitemap(self):
        src = self.site(SITE)
        cfg = self.write_config("""\
            clean_urls: true
            sitemap:
              enabled: true
              base_url: https://example.com/
        """)
        before = len(self.invs())
        _res, events = self.ok_sync(src, None, "--config", cfg)
        objects = harness.list_bucket(self.s3, self.bucket)
        want = {"index.html", "new/index.html", "about", "blog/post", "blog/index.html", "css/site.css",
                "sitemap.xml"}
        self.assertEqual(set(objects), want)
        self.assertTrue(objects["about"][2].startswith("text/html"), objects["about"])
        self.assertEqual(harness.get_bytes(self.s3, self.bucket, "about"), b"<p>about us</p>")
        inv = self.assertOneNewInvalidation(before, expected_paths(want), events)
        self.assertIn("/about", inv["Paths"])
        self.assertNotIn("/about.html", inv["Paths"])
        self.assertTrue({"/blog/", "/blog"} <= set(inv["Paths"]), "index documents keep their aliases")
        sitemap = harness.get_bytes(self.s3, self.bucket, "sitemap.xml").decode()
        self.assertIn("<loc>https://example.com/about</loc>", sitemap)
        self.assertIn("<loc>https://example.com/blog/post</loc>", sitemap)
        self.assertIn("<loc>https://example.com/blog/</loc>", sitemap)
        self.assertNotIn(".html</loc>", sitemap)
        # `sitesync sitemap` writes the same URLs.
        res = self.sitesync("sitemap", src, "--config", cfg, "-o", "-")
        self.assertExit(res, 0)
        self.assertIn("<loc>https://example.com/about</loc>", res.stdout)

        # Deleted page: its key goes with --delete, invalidated as "/about".
        os.remove(os.path.join(src, "about.html"))
        before = len(self.invs())
        _res, events = self.ok_sync(src, None, "--config", cfg, "--delete")
        self.assertNotIn("about", harness.list_bucket(self.s3, self.bucket, head=False))
        self.assertIn("/about", self.invs()[-1]["Paths"])

    def test_a_literal_namesake_keeps_its_key_with_a_warning(self):
        src = self.site({"about.html": "<p>page</p>", "about": "a file named about"})
        cfg = self.write_config("clean_urls: true\n")
        res, _events = self.ok_sync(src, None, "--config", cfg, distribution=False, cf_endpoint=False)
        self.assertEqual(set(harness.list_bucket(self.s3, self.bucket, head=False)), {"about", "about.html"})
        self.assertEqual(harness.get_bytes(self.s3, self.bucket, "about"), b"a file named about")
        self.assertIn("'about.html' is published under its own name", res.stderr)


@needs_watch
class WatchTest(WatchCase):
    def test_watch_rereads_redirects_and_deletes_a_clean_page_by_its_key(self):
        cfg = os.path.join(self.tmp, "sitesync.yaml")
        with open(cfg, "w", encoding="utf-8") as f:
            f.write("clean_urls: true\ndelete: true\nwatch:\n  delete_delay_ms: 0\n")
        src = self.site({"index.html": "<p>home</p>", "about.html": "<p>about</p>", "_redirects": "/a /about\n"})
        w = self.start_watch(src, "--config", cfg)
        self.assertEqual(set(self.remote()), {"index.html", "about", "a"})
        self.assertEqual(head(self.s3, self.bucket, "a").get("WebsiteRedirectLocation"), "/about")

        # The rules change: /a goes, /b/ comes.
        mark = w.mark()
        write(os.path.join(src, "_redirects"), "/b/ /about\n")
        w.wait_keys("upload", ["b/index.html"], mark)
        harness.wait_until(lambda: "a" not in self.remote(), timeout=20, what="the redirect 'a' deleted")
        h = head(self.s3, self.bucket, "b/index.html")
        self.assertEqual((h.get("WebsiteRedirectLocation"), h["ContentLength"]), ("/about", 0))

        # The page is deleted: the key "about" goes (and no object is left for it), "/about" invalidated.
        mark = w.mark()
        os.remove(os.path.join(src, "about.html"))
        w.wait_keys("delete", ["about"], mark)
        self.assertEqual(set(self.remote()), {"index.html", "b/index.html"})
        paths = [p for inv in self.new_invs() for p in inv["Paths"]]
        self.assertIn("/about", paths)
        self.assertIn("/b/", paths)
        self.assertAlive()


if __name__ == "__main__":
    unittest.main(verbosity=2)
