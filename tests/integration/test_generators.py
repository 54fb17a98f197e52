"""`sitesync watch --delete` next to a REAL site generator's clean rebuild (issue 12, point 2, the shape users
produce): `rm -rf _site && eleventy`, which empties the output folder and writes it again over a few seconds
(Eleventy 2 writes pages, passthrough CSS and images in its own order; a per-post render step of 80 ms stands for
the image processing or remote data that make real builds slow). Before issue 12's fix this test failed as the
issue reports: the first batch after the root came back deleted (and invalidated) every page not yet rewritten. Against moto_server with SigV4 on, behind
the FaultProxy that records the DeleteObjects bodies; the bucket and the invalidations are read with boto3.

What must hold after each rebuild: no DeleteObjects names a key that exists at the end (no page, CSS file or image
goes missing while the generator runs), the bucket equals the folder, only the keys whose bytes changed or that
are really gone are invalidated (a rebuild that writes the same bytes again invalidates nothing), and every
changed URL is invalidated.

The same for Jekyll (`rm -rf _site && jekyll build`, Debian's jekyll 4), after `sitesync init` has added
sitesync.yaml to `exclude:` in _config.yml: real Jekyll then leaves the config out of _site/ (point 13). (Its
rebuild part also passes on the binary from before issue 12: Jekyll writes its whole output in one pass here, so
it does not reproduce the issue's timing the way the Eleventy case does; it guards the same rules.)

Eleventy comes from npm (tests/generators/package-lock.json, installed by scripts/test with `npm ci`), Jekyll from
Debian (scripts/lib.sh); each test is skipped, saying why, where its generator is not installed.
SITESYNC_ELEVENTY=/path/to/eleventy overrides.

    SITESYNC_BIN=$PWD/build/cli/sitesync python3 -m unittest -v tests/integration/test_generators.py
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from test_watch import WatchCase, expected_paths, keys_of, needs_watch  # noqa: E402
from test_watch_rebuild import deleted_keys  # noqa: E402

WORK_MS = 80  # per post, see make_project
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def eleventy_bin() -> str | None:
    given = os.environ.get("SITESYNC_ELEVENTY")
    if given:
        return given if os.access(given, os.X_OK) else None
    path = os.path.join(ROOT, "tests", "generators", "node_modules", ".bin", "eleventy")
    return path if os.access(path, os.X_OK) else None


ELEVENTY = eleventy_bin()
JEKYLL = shutil.which("jekyll")  # Debian's jekyll package (scripts/lib.sh installs it)
needs_jekyll = unittest.skipUnless(JEKYLL, "jekyll is not installed: apt-get install jekyll (scripts/test does)")
needs_eleventy = unittest.skipUnless(
    ELEVENTY and shutil.which("node"),
    "Eleventy is not installed: run `npm ci --prefix tests/generators` (scripts/test does), or set SITESYNC_ELEVENTY")

LAYOUT = """<!doctype html>
<html><head><meta charset="utf-8"><title>{{ title }}</title>
<link rel="stylesheet" href="/css/site.css"></head>
<body><nav><a href="/">home</a></nav><img src="/img/logo.png" alt="logo">
<main>{{ content | safe }}</main></body></html>
"""


def write_text(path: str, text: str | bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(text.encode() if isinstance(text, str) else text)


def make_project(root: str, posts: dict[str, str]) -> None:
    """An Eleventy project: a layout, an index listing the posts, one markdown file per post, passthrough CSS and
    images (eleventy.config.js copies them)."""
    # `work` stands for what makes real builds take seconds (eleventy-img resizing photos, remote data, a slow
    # markdown plugin): each post waits a little while it renders, so the rebuild spreads its writes over a few
    # seconds, with pauses, as the Eleventy site did (its pages were gone for up to 4 s).
    write_text(os.path.join(root, ".eleventy.js"), """module.exports = function (cfg) {
  cfg.addPassthroughCopy({ "src/css": "css", "src/img": "img" });
  cfg.addAsyncShortcode("work", (ms) => new Promise((done) => setTimeout(() => done(""), ms)));
  return { dir: { input: "src", output: "_site", includes: "_includes" } };
};
""")
    write_text(os.path.join(root, "src", "_includes", "base.njk"), LAYOUT)
    write_text(os.path.join(root, "src", "index.njk"), """---
layout: base.njk
title: Home
---
<ul>{% for post in collections.post %}<li><a href="{{ post.url }}">{{ post.data.title }}</a></li>{% endfor %}</ul>
""")
    write_text(os.path.join(root, "src", "css", "site.css"), "body{font-family:sans-serif}\n" * 40)
    write_text(os.path.join(root, "src", "css", "print.css"), "@media print{nav{display:none}}\n")
    for n in range(6):
        write_text(os.path.join(root, "src", "img", f"photo{n}.png"), bytes([n]) * (20_000 + n))
    write_text(os.path.join(root, "src", "img", "logo.png"), b"\x89PNG" + b"L" * 3000)
    set_posts(root, posts)


def set_posts(root: str, posts: dict[str, str]) -> None:
    folder = os.path.join(root, "src", "posts")
    shutil.rmtree(folder, ignore_errors=True)
    for slug, body in posts.items():
        write_text(os.path.join(folder, f"{slug}.md"),
                   f"---\nlayout: base.njk\ntitle: {slug}\ntags: post\n---\n{{% work {WORK_MS} %}}{body}\n")


def build(root: str) -> float:
    """`rm -rf _site && eleventy`, as the issue's users run it; returns the seconds the build took."""
    shutil.rmtree(os.path.join(root, "_site"), ignore_errors=True)
    started = time.monotonic()
    res = subprocess.run([ELEVENTY, "--quiet"], cwd=root, capture_output=True, text=True, timeout=120)
    if res.returncode != 0:
        raise AssertionError(f"eleventy failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
    return time.monotonic() - started


def folder_bytes(site: str) -> dict[str, bytes]:
    out = {}
    for dirpath, _dirs, files in os.walk(site):
        for name in files:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, site).replace(os.sep, "/")] = f.read()
    return out


@needs_watch
@needs_eleventy
class EleventyRebuildTest(WatchCase):
    def test_rm_rf_and_eleventy_rebuild_deletes_and_invalidates_only_what_changed(self):
        project = os.path.join(self.tmp, "project")
        posts = {f"post-{n:02d}": f"Post number {n}.\n\n" + ("Some words. " * (n + 5)) for n in range(40)}
        make_project(project, posts)
        build(project)
        site = os.path.join(project, "_site")
        self.start_watch(site, "--delete")
        self.proxy.record_bodies = True

        # Rebuild 1: one post edited, one removed, one added (the index page lists the posts: it changes too).
        before = folder_bytes(site)
        posts2 = dict(posts)
        posts2["post-03"] = "Rewritten completely."
        del posts2["post-07"]
        posts2["post-new"] = "A brand new post."
        set_posts(project, posts2)
        self.check_rebuild(project, before, "rebuild 1 (an edit, a removal, an addition)")

        # Rebuild 2: nothing changed in the sources: the same bytes come back, nothing may be deleted or invalidated.
        before = folder_bytes(site)
        self.check_rebuild(project, before, "rebuild 2 (same sources)")

    def check_rebuild(self, project: str, before: dict[str, bytes], what: str) -> None:
        w = self.watcher
        site = os.path.join(project, "_site")
        self.proxy.reset_counts()
        mark = w.mark()
        invs_before = len(self.invs())
        seconds = build(project)
        after = folder_bytes(site)
        gone = sorted(set(before) - set(after))
        changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        # The deletes wait for watch.delete_delay_ms (2 s) of quiet; then the bucket must equal the folder.
        harness.wait_until(lambda: sorted(self.remote()) == sorted(after), timeout=60, interval=0.3,
                           what=f"{what}: the bucket to equal the folder")
        w.settle(quiet=1.5, min_wait=2.5)
        self.assertAlive()
        deletes = deleted_keys(self.proxy.recorded)
        self.assertEqual(sorted(k for k in deletes if k in after), [],
                         f"{what}: a DeleteObjects named keys that exist at the end (build took {seconds:.1f} s)")
        self.assertEqual(sorted(set(deletes)), gone, what)
        self.assertEqual(sorted(keys_of(w.since(mark), "delete")), gone, what)
        remote = self.remote()
        for k, data in after.items():
            self.assertEqual(remote[k][0], len(data), f"{what}: {k}")
            if before.get(k) != data:
                self.assertEqual(self.get(k), data, f"{what}: {k}")
        uploaded = sorted(keys_of(w.since(mark), "upload"))
        self.assertEqual(sorted(set(uploaded)), sorted(k for k in after if before.get(k) != after[k]),
                         f"{what}: only the files whose bytes changed go up")
        invs = self.invs()[invs_before:]
        self.assertCovered(invs, expected_paths(changed), what)
        submitted = sorted({p for inv in invs for p in inv["Paths"]})
        self.assertEqual(submitted, sorted(expected_paths(changed)),
                         f"{what}: exactly the changed URLs are invalidated (no page the rebuild wrote again)")


JEKYLL_LAYOUT = """<!doctype html>
<html><head><meta charset="utf-8"><title>{{ page.title }}</title>
<link rel="stylesheet" href="{{ '/css/site.css' | relative_url }}"></head>
<body><img src="/img/logo.png" alt="logo"><main>{{ content }}</main></body></html>
"""


def make_jekyll(root: str, posts: dict[str, str]) -> None:
    write_text(os.path.join(root, "_config.yml"), "title: A Jekyll site\nmarkdown: kramdown\nexclude:\n  - README.md\n")
    write_text(os.path.join(root, "_layouts", "default.html"), JEKYLL_LAYOUT)
    # Jekyll renders everything, then writes every file in one pass; on a real site (hundreds of posts, large
    # images, a slow disk or a busy CI runner) that pass takes seconds. A post_write hook stands for that time.
    write_text(os.path.join(root, "_plugins", "slow_write.rb"),
               "Jekyll::Hooks.register :documents, :post_write do |_doc|\n  sleep 0.1\nend\n")
    write_text(os.path.join(root, "index.html"), """---
layout: default
title: Home
---
<ul>{% for post in site.posts %}<li><a href="{{ post.url }}">{{ post.title }}</a></li>{% endfor %}</ul>
""")
    write_text(os.path.join(root, "css", "site.css"), "body{margin:0}\n" * 50)
    for n in range(5):
        write_text(os.path.join(root, "img", f"photo{n}.png"), bytes([n + 1]) * (15_000 + n))
    write_text(os.path.join(root, "img", "logo.png"), b"\x89PNG" + b"J" * 2000)
    set_jekyll_posts(root, posts)


def set_jekyll_posts(root: str, posts: dict[str, str]) -> None:
    folder = os.path.join(root, "_posts")
    shutil.rmtree(folder, ignore_errors=True)
    for n, (slug, body) in enumerate(sorted(posts.items())):
        write_text(os.path.join(folder, f"2026-01-{1 + n % 28:02d}-{slug}.md"),
                   f"---\nlayout: default\ntitle: {slug}\n---\n{body}\n")


def jekyll_build(root: str) -> float:
    """`rm -rf _site && jekyll build`, as the issue's Jekyll users run it; returns the seconds it took."""
    shutil.rmtree(os.path.join(root, "_site"), ignore_errors=True)
    started = time.monotonic()
    res = subprocess.run([JEKYLL, "build", "--quiet"], cwd=root, capture_output=True, text=True, timeout=180,
                         env={**os.environ, "JEKYLL_ENV": "production", "LANG": "C.UTF-8"})
    if res.returncode != 0:
        raise AssertionError(f"jekyll build failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
    return time.monotonic() - started


@needs_watch
@needs_jekyll
class JekyllRebuildTest(WatchCase):
    def test_init_keeps_the_config_out_and_a_rebuild_deletes_nothing_that_comes_back(self):
        project = os.path.join(self.tmp, "jekyll")
        posts = {f"post-{n:02d}": f"Post {n}. " + ("Words here. " * (n + 3)) for n in range(30)}
        make_jekyll(project, posts)
        # Point 13: `sitesync init` adds its config to Jekyll's exclude:, and real Jekyll then leaves it out.
        res = harness.run_sitesync(["init"], cwd=project, home=self.home)
        self.assertEqual(res.returncode, 0, res.describe())
        self.assertIn("Found a Jekyll site", res.stderr + res.stdout)
        self.assertTrue(os.path.exists(os.path.join(project, "sitesync.yaml")))
        with open(os.path.join(project, "_config.yml")) as f:
            self.assertIn("sitesync.yaml", f.read())
        jekyll_build(project)
        site = os.path.join(project, "_site")
        self.assertFalse(os.path.exists(os.path.join(site, "sitesync.yaml")), "Jekyll copied the config")
        self.start_watch(site, "--delete")
        self.proxy.record_bodies = True

        before = folder_bytes(site)
        posts2 = dict(posts)
        posts2["post-04"] = "Rewritten."
        del posts2["post-09"]
        w = self.watcher
        self.proxy.reset_counts()
        mark = w.mark()
        invs_before = len(self.invs())
        set_jekyll_posts(project, posts2)
        seconds = jekyll_build(project)
        after = folder_bytes(site)
        gone = sorted(set(before) - set(after))
        changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        self.assertTrue(gone, "the rebuild removed a post")
        harness.wait_until(lambda: sorted(self.remote()) == sorted(after), timeout=60, interval=0.3,
                           what="the bucket to equal the folder")
        w.settle(quiet=1.5, min_wait=2.5)
        self.assertAlive()
        deletes = deleted_keys(self.proxy.recorded)
        self.assertEqual(sorted(k for k in deletes if k in after), [],
                         f"a DeleteObjects named keys that exist at the end (build took {seconds:.1f} s)")
        self.assertEqual(sorted(set(deletes)), gone)
        self.assertEqual(sorted(set(keys_of(w.since(mark), "upload"))),
                         sorted(k for k in after if before.get(k) != after[k]), "only changed bytes go up")
        invs = self.invs()[invs_before:]
        self.assertEqual(sorted({p for inv in invs for p in inv["Paths"]}), sorted(expected_paths(changed)),
                         "exactly the changed URLs are invalidated")
        remote = self.remote()
        for k, data in after.items():
            self.assertEqual(remote[k][0], len(data), k)


if __name__ == "__main__":
    unittest.main(verbosity=2)
