"""Integration tests of sitemap.xml: `sitesync sitemap`, and `sitemap.enabled` in sync, plan and watch.

The sitemaps are read back with Python's xml.etree and compared with what is expected, computed here
independently of sitesync: every HTML page of the tree (os.walk; dotfiles and dot-folders skipped except
.well-known, as the sync skips them; excluded folders and the pages known to carry a robots noindex left out),
`dir/index.html` listed as `BASE/dir/`, the path percent-encoded with urllib.parse.quote (RFC 3986 path
characters kept, '+' encoded), <lastmod> the file's mtime in UTC. The sync and watch tests run against
moto_server with SigV4 checking on; what was published is read with boto3 (get_object, list_invalidations).

    SITESYNC_BIN=$PWD/build/cli/sitesync python3 tests/integration/test_sitemap.py -v
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import textwrap
import time
import unittest
import xml.etree.ElementTree as ET
from urllib.parse import quote

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from test_watch import WATCH_OK, WATCH_WHY, WatchCase, keys_of, write  # noqa: E402

BIN_OK, BIN_WHY = harness.sitesync_available()
needs_sitesync = unittest.skipUnless(BIN_OK, BIN_WHY)

NS = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
# RFC 3986 path characters besides the unreserved ones (which quote() always keeps); '+' is left out on purpose:
# S3 reads '+' in a URL path as a space, so the sitemap writes %2B.
PATH_SAFE = "/!$&'()*,;=:@"
MAX_URLS = 50_000
MAX_BYTES = 52_428_800
EXAMPLE_SITE = os.path.join(harness.REPO_ROOT, "examples", "site")


# --------------------------------------------------------------------------------------------------------------
# The expected sitemap, computed independently of sitesync
# --------------------------------------------------------------------------------------------------------------


def w3c(mtime_ns: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(mtime_ns // 1_000_000_000))


def expected_urls(root, base: str, *, excluded_dirs=(), noindex=(), index_document="index.html") -> dict:
    """{absolute URL: lastmod} of the HTML pages under root."""
    base = base if base.endswith("/") else base + "/"
    out = {}
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            rel = os.path.relpath(os.path.join(dirpath, name), root).replace(os.sep, "/")
            if harness._is_dot_path(rel) or not name.lower().endswith((".html", ".htm")):
                continue
            if rel in noindex or any(rel.startswith(d.rstrip("/") + "/") for d in excluded_dirs):
                continue
            path = rel[: -len(index_document)] if name == index_document else rel
            url = base + quote(path, safe=PATH_SAFE)
            assert url not in out, url
            out[url] = w3c(os.stat(os.path.join(root, rel)).st_mtime_ns)
    return out


def parse(xml: bytes, root_tag: str, entry_tag: str) -> list[tuple[str, str]]:
    """[(loc, lastmod)] of a <urlset> or <sitemapindex>, in document order; checks the namespace and that every
    entry has both children."""
    root = ET.fromstring(xml)
    assert root.tag == NS + root_tag, root.tag
    out = []
    for entry in root:
        assert entry.tag == NS + entry_tag, entry.tag
        loc, lastmod = entry.find(NS + "loc"), entry.find(NS + "lastmod")
        assert loc is not None and lastmod is not None, ET.tostring(entry)
        out.append((loc.text, lastmod.text))
    return out


def read(path) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def run(args, **kw) -> harness.RunResult:
    return harness.run_sitesync(args, **kw)


PAGE = "<!doctype html><html><head><title>{t}</title></head><body><p>{t}</p></body></html>\n"

# A fixture with what a sitemap must get right: noindex in several spellings, an excluded folder, dotfiles, file
# names with non-ASCII bytes, spaces, '&', '+', '%' and quotes, an .htm page, index pages at several depths.
FIXTURE = {
    "index.html": PAGE.format(t="home"),
    "about/index.html": PAGE.format(t="about"),
    "docs/guide.htm": PAGE.format(t="guide"),
    "docs/deep/er/index.html": PAGE.format(t="deeper"),
    "blog/caf\u00e9 & cr\u00e8me.html": PAGE.format(t="cafe"),
    "blog/a+b (1).html": PAGE.format(t="plus"),
    "blog/100%.html": PAGE.format(t="percent"),
    "blog/it's \"quoted\" <x>.html": PAGE.format(t="quotes"),
    "\u65e5\u672c/index.html": PAGE.format(t="nihon"),
    "UPPER.HTML": PAGE.format(t="upper"),
    ".well-known/page.html": PAGE.format(t="well-known"),
    # noindex, three ways; and two pages that are indexable although they mention it
    "private.html": '<html><head><META content="NOINDEX, nofollow" NAME=robots><title>p</title></head><body>x',
    "hidden-section/index.html": "<head><meta name='robots' content='none'></head><body>x</body>",
    "old.html": '<!doctype html><html lang="en"><head>\n<meta charset="utf-8">\n<meta\n  name="Robots"\n'
                '  content="max-snippet:-1 , noindex">\n</head><body></body></html>',
    "indexable.html": '<html><head><meta name="robots" content="index, follow">'
                      '<!-- <meta name="robots" content="noindex"> --></head><body>'
                      '<pre>&lt;meta name="robots" content="noindex"&gt;</pre></body></html>',
    "not-robots.html": '<html><head><meta name="googlebot-news" content="noindex"></head><body>x</body></html>',
    # excluded with --exclude drafts/
    "drafts/wip.html": PAGE.format(t="wip"),
    "drafts/deep/x.html": PAGE.format(t="x"),
    # skipped as the sync skips them
    ".hidden/page.html": PAGE.format(t="hidden"),
    "blog/.draft.html": PAGE.format(t="draft"),
    # not pages
    "css/site.css": "body{}",
    "feed.xml": "<rss/>",
    "robots.txt": "User-agent: *\n",
    "img/x.png": b"\x89PNG",
}
FIXTURE_NOINDEX = ("private.html", "hidden-section/index.html", "old.html")


# --------------------------------------------------------------------------------------------------------------
# sitesync sitemap
# --------------------------------------------------------------------------------------------------------------


@needs_sitesync
class SitemapCommandTest(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="sitesync-sitemap-")
        self.addCleanup(self._tmp.cleanup)
        self.tmp = self._tmp.name

    def fixture(self, spec=FIXTURE, name="site"):
        root = os.path.join(self.tmp, name)
        harness.make_site(root, spec)
        # Distinct mtimes, some before and some after 1 January 2000, to check <lastmod> page by page.
        for n, rel in enumerate(sorted(k for k in spec if not isinstance(spec[k], harness.Symlink))):
            t = 946_684_700 + n * 86_400 * 97 + n * 3_601
            os.utime(os.path.join(root, rel), (t, t))
        return root

    def assertUrlset(self, xml: bytes, want: dict, msg=""):
        got = parse(xml, "urlset", "url")
        locs = [loc for loc, _ in got]
        self.assertEqual(len(locs), len(set(locs)), "no URL twice")
        self.assertEqual(locs, sorted(locs), "sorted by URL")
        self.assertEqual(dict(got), want, msg)

    def test_example_site(self):
        src = os.path.join(self.tmp, "site")
        shutil.copytree(EXAMPLE_SITE, src)
        r = run(["sitemap", src, "--base-url", "https://www.example.org"])
        self.assertEqual(r.returncode, 0, r.describe())
        xml = read(os.path.join(src, "sitemap.xml"))
        self.assertTrue(xml.startswith(b'<?xml version="1.0" encoding="UTF-8"?>'), xml[:80])
        want = expected_urls(src, "https://www.example.org/")
        self.assertIn("https://www.example.org/", want)
        self.assertIn("https://www.example.org/blog/first-post/", want)
        self.assertUrlset(xml, want)
        # The one-line note, on stderr; nothing on stdout.
        self.assertIn(f"{len(want)} URLs", r.stderr)
        self.assertIn(os.path.join(src, "sitemap.xml"), r.stderr)
        self.assertEqual(r.stdout, "")

    def test_fixture_noindex_excluded_folder_and_escaping(self):
        src = self.fixture()
        r = run(["sitemap", src, "--base-url", "https://x.com/blog", "--exclude", "drafts/"])
        self.assertEqual(r.returncode, 0, r.describe())
        xml = read(os.path.join(src, "sitemap.xml"))
        want = expected_urls(src, "https://x.com/blog/", excluded_dirs=["drafts"], noindex=FIXTURE_NOINDEX)
        self.assertUrlset(xml, want)
        # Spot checks of the rules the expectation encodes.
        self.assertIn("https://x.com/blog/", want)
        self.assertIn("https://x.com/blog/docs/deep/er/", want)
        self.assertIn("https://x.com/blog/blog/caf%C3%A9%20&%20cr%C3%A8me.html", want)
        self.assertIn("https://x.com/blog/blog/a%2Bb%20(1).html", want)
        self.assertIn("https://x.com/blog/blog/100%25.html", want)
        self.assertIn("https://x.com/blog/%E6%97%A5%E6%9C%AC/", want)
        self.assertIn("https://x.com/blog/indexable.html", want)
        self.assertIn("https://x.com/blog/not-robots.html", want)
        self.assertIn("https://x.com/blog/.well-known/page.html", want)
        # Entity-escaped in the file: every '&' starts an entity, and the quote characters are percent-encoded.
        self.assertIn(b"caf%C3%A9%20&amp;%20cr%C3%A8me.html", xml)
        self.assertNotRegex(xml.decode("ascii"), r"&(?!amp;|lt;|gt;|quot;|apos;)")
        self.assertIn(b"it's%20%22quoted%22%20%3Cx%3E.html", xml)
        self.assertEqual(xml.decode("ascii").count("<url>"), len(want))
        self.assertEqual(len(want), 13)
        self.assertIn("13 URLs", r.stderr)

    def test_config_keys_and_index_document(self):
        src = self.fixture({"index.html": PAGE.format(t="a"), "docs/default.htm": PAGE.format(t="b"),
                            "docs/index.html": PAGE.format(t="c"), "maps/.keep": ""})
        cfg = os.path.join(self.tmp, "sitesync.yaml")
        with open(cfg, "w") as f:
            f.write(textwrap.dedent("""\
                source: site
                cdn:
                  index_document: default.htm
                sitemap:
                  base_url: https://docs.example/
                  output: maps/sitemap.xml
                """))
        # The config is ./sitesync.yaml of the current folder; SOURCE and the output come from it.
        r = run(["sitemap"], cwd=self.tmp)
        self.assertEqual(r.returncode, 0, r.describe())
        self.assertFalse(os.path.exists(os.path.join(src, "sitemap.xml")))
        xml = read(os.path.join(src, "maps", "sitemap.xml"))
        self.assertUrlset(xml, expected_urls(src, "https://docs.example/", index_document="default.htm"))
        self.assertIn(b"<loc>https://docs.example/docs/</loc>", xml)
        self.assertIn(b"<loc>https://docs.example/docs/index.html</loc>", xml)
        # --base-url wins over sitemap.base_url.
        r = run(["sitemap", "--base-url", "https://other.example"], cwd=self.tmp)
        self.assertEqual(r.returncode, 0, r.describe())
        self.assertIn(b"<loc>https://other.example/docs/</loc>", read(os.path.join(src, "maps", "sitemap.xml")))

    def test_output_elsewhere_and_stdout(self):
        src = self.fixture({"index.html": PAGE.format(t="a"), "b/index.html": PAGE.format(t="b")})
        want = expected_urls(src, "https://e.example/")
        out = os.path.join(self.tmp, "out", "map.xml")
        os.makedirs(os.path.dirname(out))
        r = run(["sitemap", src, "--base-url", "https://e.example/", "-o", out])
        self.assertEqual(r.returncode, 0, r.describe())
        self.assertUrlset(read(out), want)
        self.assertEqual(sorted(os.listdir(src)), ["b", "index.html"], "SOURCE is not written to")
        self.assertEqual(sorted(os.listdir(os.path.dirname(out))), ["map.xml"], "no temporary file is left")
        r = run(["sitemap", src, "--base-url", "https://e.example/", "-o", "-"])
        self.assertEqual(r.returncode, 0, r.describe())
        self.assertUrlset(r.stdout.encode("utf-8"), want)
        self.assertEqual(sorted(os.listdir(src)), ["b", "index.html"])

    def test_errors(self):
        src = self.fixture({"index.html": PAGE.format(t="a")})
        cases = [
            (["sitemap", src], 2, ["--base-url", "sitemap.base_url"]),
            (["sitemap", src, "--base-url", "example.com"], 2, ["example.com", "https://"]),
            (["sitemap", src, "--base-url", "https://example.com/?q=1"], 2, ["query"]),
            (["sitemap", src, "--base-url", "ftp://example.com/"], 2, ["https://"]),
            (["sitemap", "--base-url", "https://example.com/"], 2, ["SOURCE"]),
            (["sitemap", os.path.join(self.tmp, "nope"), "--base-url", "https://example.com/"], 2, ["does not exist"]),
            (["sitemap", src, "--base-url", "https://example.com/", "-o", os.path.join(self.tmp, "no", "dir", "s.xml")],
             1, [os.path.join(self.tmp, "no", "dir", "s.xml")]),
            (["sitemap", src, "--base-url", "https://example.com/", "-o", self.tmp], 2, ["folder"]),
        ]
        for args, code, words in cases:
            r = run(args)
            self.assertEqual(r.returncode, code, r.describe())
            for w in words:
                self.assertIn(w, r.stderr, r.describe())
        self.assertEqual(os.listdir(src), ["index.html"], "nothing was written")
        cfg = os.path.join(self.tmp, "bad.yaml")
        with open(cfg, "w") as f:
            f.write("sitemap:\n  base_url: www.example.com\n")
        r = run(["sitemap", src, "-c", cfg])
        self.assertEqual(r.returncode, 2, r.describe())
        self.assertIn(f"{cfg}:2:", r.stderr)

    def test_rewritten_only_when_the_content_changes(self):
        src = self.fixture({"index.html": PAGE.format(t="a"), "b.html": PAGE.format(t="b")})
        args = ["sitemap", src, "--base-url", "https://e.example/"]
        self.assertEqual(run(args).returncode, 0)
        path = os.path.join(src, "sitemap.xml")
        before = os.stat(path)
        time.sleep(0.02)
        r = run(args)
        self.assertEqual(r.returncode, 0, r.describe())
        after = os.stat(path)
        self.assertEqual((before.st_ino, before.st_mtime_ns), (after.st_ino, after.st_mtime_ns), "not rewritten")
        self.assertIn("up to date", r.stderr)
        r = run(args + ["-q"])
        self.assertEqual((r.returncode, r.stderr), (0, ""), "-q prints nothing")
        harness.make_site(src, {"c/index.html": PAGE.format(t="c")})
        self.assertEqual(run(args).returncode, 0)
        self.assertUrlset(read(path), expected_urls(src, "https://e.example/"))
        self.assertNotEqual(os.stat(path).st_ino, before.st_ino, "replaced by rename, not rewritten in place")

    def test_60000_pages_split_into_an_index_and_parts(self):
        src = os.path.join(self.tmp, "big")
        n = 60_000
        for d in range(60):
            os.makedirs(os.path.join(src, f"section-{d:02d}"))
        for i in range(n):  # empty pages: fast to write, still pages
            fd = os.open(os.path.join(src, f"section-{i % 60:02d}", f"page-{i:05d}.html"), os.O_CREAT | os.O_WRONLY)
            os.close(fd)
        base = "https://big.example/"
        want = expected_urls(src, base)
        self.assertEqual(len(want), n)
        r = run(["sitemap", src, "--base-url", base], timeout=300)
        self.assertEqual(r.returncode, 0, r.describe())
        index = parse(read(os.path.join(src, "sitemap.xml")), "sitemapindex", "sitemap")
        self.assertGreaterEqual(len(index), 2)
        seen: dict = {}
        for k, (loc, lastmod) in enumerate(index, 1):
            name = f"sitemap-{k}.xml"
            self.assertEqual(loc, base + name, "parts listed by absolute URL, BASE + their path in SOURCE")
            data = read(os.path.join(src, name))
            self.assertLessEqual(len(data), MAX_BYTES)
            part = parse(data, "urlset", "url")
            self.assertLessEqual(len(part), MAX_URLS)
            self.assertEqual(lastmod, max(m for _, m in part), "the part's lastmod is its newest page")
            for url, m in part:
                self.assertNotIn(url, seen, "each URL in one part only")
                seen[url] = m
        self.assertEqual(seen, want)
        self.assertIn(f"{n} URLs in {len(index)} files", r.stderr)

        # Fewer pages: one sitemap again, and the parts it no longer needs are gone.
        for i in range(20_000):
            os.unlink(os.path.join(src, f"section-{i % 60:02d}", f"page-{i:05d}.html"))
        r = run(["sitemap", src, "--base-url", base], timeout=300)
        self.assertEqual(r.returncode, 0, r.describe())
        self.assertUrlset(read(os.path.join(src, "sitemap.xml")), expected_urls(src, base))
        self.assertEqual([x for x in os.listdir(src) if x.endswith(".xml")], ["sitemap.xml"])


# --------------------------------------------------------------------------------------------------------------
# sitemap.enabled in sync and plan, against moto
# --------------------------------------------------------------------------------------------------------------


SYNC_SITE = {
    "index.html": PAGE.format(t="home"),
    "about/index.html": PAGE.format(t="about"),
    "blog/post-1.html": PAGE.format(t="post 1"),
    "private.html": '<html><head><meta name="robots" content="noindex"></head><body>x</body></html>',
    "css/site.css": "body{}",
}
SYNC_BASE = "https://www.example.org/"


@needs_sitesync
class SitemapSyncTest(unittest.TestCase):
    server: harness.MotoServer

    @classmethod
    def setUpClass(cls):
        cls.server = harness.MotoServer()
        cls.addClassCleanup(cls.server.cleanup)
        cls.server.start()
        cls.s3 = cls.server.boto3_s3()
        cls.cf = cls.server.boto3_cloudfront()

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="sitesync-sitemap-sync-")
        self.addCleanup(self._tmp.cleanup)
        self.tmp = self._tmp.name
        self.home = os.path.join(self.tmp, "home")
        os.makedirs(self.home)
        self.bucket = harness.new_bucket_name(self._testMethodName[5:])
        self.s3.create_bucket(Bucket=self.bucket)
        self.dist = harness.create_distribution(self.cf, f"{self.bucket}.s3.amazonaws.com", comment=self.id())
        self.src = os.path.join(self.tmp, "site")
        harness.make_site(self.src, SYNC_SITE)
        self.cfg = os.path.join(self.tmp, "sitesync.yaml")
        self.config(f"sitemap:\n  enabled: true\n  base_url: {SYNC_BASE}\n")

    def tearDown(self):
        if harness.test_failed(self):
            self.server.dump_log(f"moto server log for {self.id()}", limit=4000)

    def config(self, text: str):
        with open(self.cfg, "w") as f:
            f.write(text)

    def sync(self, command="sync", *extra):
        args = [command, self.src, f"s3://{self.bucket}", "--endpoint", self.server.endpoint, "-c", self.cfg,
                "--distribution", self.dist, "--cloudfront-endpoint", self.server.endpoint, "--json", *extra]
        r = harness.run_sitesync(args, server=self.server, home=self.home)
        return r, harness.parse_json_lines(r.stdout)

    def remote_sitemap(self) -> dict:
        return dict(parse(harness.get_bytes(self.s3, self.bucket, "sitemap.xml"), "urlset", "url"))

    def invalidated(self) -> list[list[str]]:
        return [inv["Paths"] for inv in harness.invalidations(self.cf, self.dist)]

    def test_sync_publishes_the_sitemap_and_keeps_it_current(self):
        r, events = self.sync()
        self.assertEqual(r.returncode, 0, r.describe())
        self.assertIn("sitemap.xml", keys_of(events, "upload"))
        want = expected_urls(self.src, SYNC_BASE, noindex=["private.html"])
        self.assertEqual(set(want), {SYNC_BASE, SYNC_BASE + "about/", SYNC_BASE + "blog/post-1.html"})
        self.assertEqual(self.remote_sitemap(), want)
        self.assertEqual(harness.get_bytes(self.s3, self.bucket, "sitemap.xml"), read(os.path.join(self.src, "sitemap.xml")))
        self.assertIn("/sitemap.xml", self.invalidated()[-1])
        self.assertEqual(r.stderr.count("sitemap: written"), 1, r.stderr)

        # A new page: the same sync uploads it and the new sitemap, and invalidates both.
        harness.make_site(self.src, {"blog/post-2/index.html": PAGE.format(t="post 2")})
        r, events = self.sync()
        self.assertEqual(r.returncode, 0, r.describe())
        self.assertEqual(sorted(keys_of(events, "upload")), ["blog/post-2/index.html", "sitemap.xml"])
        want = expected_urls(self.src, SYNC_BASE, noindex=["private.html"])
        self.assertIn(SYNC_BASE + "blog/post-2/", want)
        self.assertEqual(self.remote_sitemap(), want)
        self.assertEqual(len(self.invalidated()), 2)
        self.assertTrue({"/sitemap.xml", "/blog/post-2/"} <= set(self.invalidated()[-1]), self.invalidated())

        # A page rebuilt with the same bytes and a new mtime: --compare size sees nothing to upload, but the
        # sitemap's <lastmod> changed at the same size, and it is uploaded.
        later = time.time() + 3600
        os.utime(os.path.join(self.src, "about", "index.html"), (later, later))
        size_before = os.path.getsize(os.path.join(self.src, "sitemap.xml"))
        r, events = self.sync()
        self.assertEqual(r.returncode, 0, r.describe())
        self.assertEqual(os.path.getsize(os.path.join(self.src, "sitemap.xml")), size_before)
        self.assertEqual(keys_of(events, "upload"), ["sitemap.xml"])
        summary = harness.summary_of(events)
        self.assertEqual((summary["uploaded"], summary["failed"]), (1, 0), summary)
        self.assertEqual(self.remote_sitemap()[SYNC_BASE + "about/"], w3c(int(later) * 1_000_000_000))
        self.assertEqual(self.invalidated()[-1], ["/sitemap.xml"])

        # Nothing changed: no write, no upload, no invalidation.
        mtime = os.stat(os.path.join(self.src, "sitemap.xml")).st_mtime_ns
        r, events = self.sync()
        self.assertEqual(r.returncode, 0, r.describe())
        self.assertEqual(keys_of(events, "upload"), [])
        self.assertEqual(os.stat(os.path.join(self.src, "sitemap.xml")).st_mtime_ns, mtime)
        self.assertEqual(len(self.invalidated()), 3)

    def test_plan_writes_nothing(self):
        r, events = self.sync("plan")
        self.assertEqual(r.returncode, 0, r.describe())
        self.assertIn("would write", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.src, "sitemap.xml")))
        self.assertNotIn("sitemap.xml", keys_of(events, "upload"))
        self.assertEqual(harness.list_bucket(self.s3, self.bucket, head=False), {})
        r, _ = self.sync("sync", "--dry-run")
        self.assertEqual(r.returncode, 0, r.describe())
        self.assertFalse(os.path.exists(os.path.join(self.src, "sitemap.xml")))

    def test_enabled_without_base_url_is_a_config_error(self):
        self.config("sitemap:\n  enabled: true\n")
        r, _ = self.sync()
        self.assertEqual(r.returncode, 2, r.describe())
        self.assertIn("base_url", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.src, "sitemap.xml")))
        self.assertEqual(harness.list_bucket(self.s3, self.bucket, head=False), {})


# --------------------------------------------------------------------------------------------------------------
# sitemap.enabled in watch
# --------------------------------------------------------------------------------------------------------------


@needs_sitesync
@unittest.skipUnless(WATCH_OK, WATCH_WHY)
class SitemapWatchTest(WatchCase):
    def test_a_new_page_updates_the_published_sitemap_without_looping(self):
        src = self.site({"index.html": PAGE.format(t="home"), "a/index.html": PAGE.format(t="a"),
                         "css/site.css": "body{}"})
        cfg = os.path.join(self.tmp, "sitesync.yaml")
        with open(cfg, "w") as f:
            f.write(f"sitemap:\n  enabled: true\n  base_url: {SYNC_BASE}\n")
        w = self.start_watch(src, "-c", cfg, "--debounce", "200")
        self.assertIn("sitemap.xml", keys_of(w.since(0), "upload"), "the initial sync publishes the sitemap")
        self.assertEqual(dict(parse(self.get("sitemap.xml"), "urlset", "url")), expected_urls(src, SYNC_BASE))
        w.settle(quiet=1.5, timeout=20)  # the sitemap's own write comes back as an event: it must change nothing
        self.assertEqual(len(w.batches()), 1, "only batch 0 so far")

        mark = w.mark()
        write(os.path.join(src, "b", "new-page.html"), PAGE.format(t="new"))
        w.wait_keys("upload", ["b/new-page.html", "sitemap.xml"], mark, timeout=30)
        want = expected_urls(src, SYNC_BASE)
        self.assertIn(SYNC_BASE + "b/new-page.html", want)
        self.assertEqual(dict(parse(self.get("sitemap.xml"), "urlset", "url")), want)
        # Bounded: after the batch the watcher goes quiet, and one batch held the page and its sitemap.
        w.settle(quiet=2.0, timeout=20)
        summaries = [e for e in w.since(mark) if e.get("event") == "summary"]
        self.assertEqual(len(summaries), 1, w.describe())
        self.assertEqual(sorted(keys_of(w.since(mark), "upload")), ["b/new-page.html", "sitemap.xml"])
        self.assertTrue({"/b/new-page.html", "/sitemap.xml"} <= set(self.new_invs()[-1]["Paths"]), self.new_invs())

        # A removed page leaves the sitemap too.
        mark = w.mark()
        os.unlink(os.path.join(src, "a", "index.html"))
        w.wait_keys("upload", ["sitemap.xml"], mark, timeout=30)
        self.assertEqual(dict(parse(self.get("sitemap.xml"), "urlset", "url")), expected_urls(src, SYNC_BASE))
        w.settle(quiet=2.0, timeout=20)
        self.assertEqual(len([e for e in w.since(mark) if e.get("event") == "summary"]), 1, w.describe())
        self.assertAlive()


if __name__ == "__main__":
    unittest.main()
