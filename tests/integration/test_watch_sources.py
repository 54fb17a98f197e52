"""Integration tests of the watcher's event sources (issue 12, points 11 and 15) with the real binary against
moto_server with SigV4 checking on, through the FaultProxy; the bucket and the invalidations checked with boto3.

- A SOURCE that is a symlink switched with `ln -sfn` (the atomic-release pattern) is noticed: the new release's
  content is published.
- A folder reached through a symlink inside SOURCE (`latest -> posts/2024`) is watched: an edit in it republishes
  the key under the link as well as under the real folder.
- `watch --poll 200` (stat snapshots instead of inotify) publishes an edit and a new file.
- Out of inotify watches (ENOSPC, provoked in a user namespace of its own with a lowered
  /proc/sys/user/max_inotify_watches, so no other process on the machine is affected): one warning naming
  fs.inotify.max_user_watches, and edits in the unwatched folders are still published by the periodic rescan
  (watch.rescan_interval_s).
- The temp files watch ignores (`*.swp`, `*~`, `4913`, `*.tmp`) are the ones sync skips: never uploaded.

The watcher process, its JSON reader and the per-test bucket/distribution come from test_watch.py.

    SITESYNC_BIN=$PWD/build/cli/sitesync python3 -m unittest -v tests/integration/test_watch_sources.py
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import unittest
from unittest import mock

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
import test_watch  # noqa: E402
from test_watch import expected_paths, keys_of, needs_watch, write  # noqa: E402


def _userns_limits() -> tuple[bool, str]:
    """Whether `unshare -U -r` may lower the inotify watch limit of a user namespace of its own (Linux >= 5.11:
    the limits in /proc/sys/user are per user namespace)."""
    unshare = shutil.which("unshare")
    if not unshare:
        return False, "no unshare(1)"
    try:
        res = subprocess.run([unshare, "-U", "-r", "sh", "-c",
                              "echo 7 > /proc/sys/user/max_inotify_watches && cat /proc/sys/user/max_inotify_watches"],
                             capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, f"unshare failed: {e}"
    if res.returncode != 0 or res.stdout.strip() != b"7":
        return False, f"cannot lower max_inotify_watches in a user namespace: {res.stderr.decode()[:200]}"
    return True, ""


USERNS_OK, USERNS_WHY = _userns_limits()


@needs_watch
class SourcesTest(test_watch.WatchCase):
    def wait_uploaded(self, w, keys, mark, timeout=30.0):
        w.wait_keys("upload", keys, mark, timeout=timeout)

    def test_ln_sfn_retargeted_source_publishes_the_new_release(self):
        releases = os.path.join(self.tmp, "releases")
        harness.make_site(os.path.join(releases, "v1"), {"index.html": "<p>release one</p>", "css/a.css": "a{}"})
        harness.make_site(os.path.join(releases, "v2"), {"index.html": "<p>release two, longer</p>",
                                                          "css/a.css": "a{}", "new.html": "<p>new in two</p>"})
        public = os.path.join(self.tmp, "public")
        os.symlink(os.path.join(releases, "v1"), public)
        w = self.start_watch(public)
        self.assertEqual(self.get("index.html"), b"<p>release one</p>")
        mark = w.mark()
        # ln -s releases/v2 public.tmp && mv -T public.tmp public: the old release is left intact, so only the
        # link's own folder says anything happened.
        os.symlink(os.path.join(releases, "v2"), public + ".tmp")
        os.replace(public + ".tmp", public)
        self.wait_uploaded(w, ["index.html", "new.html"], mark)
        self.assertEqual(self.get("index.html"), b"<p>release two, longer</p>")
        self.assertEqual(self.get("new.html"), b"<p>new in two</p>")
        w.settle(1.0)
        self.assertNotIn("css/a.css", keys_of(w.since(mark), "upload"), "unchanged files are not uploaded again")
        self.assertCovered(self.new_invs(), expected_paths(["index.html", "new.html"]))
        # The new release is the one watched now.
        mark = w.mark()
        write(os.path.join(releases, "v2", "new.html"), "<p>new in two, edited</p>")
        self.wait_uploaded(w, ["new.html"], mark)
        self.assertEqual(self.get("new.html"), b"<p>new in two, edited</p>")
        self.assertIn("now leads to", w.stderr_text())
        self.assertAlive()

    def test_file_in_a_symlinked_folder_is_republished_when_edited(self):
        src = self.site({
            "index.html": "<p>home</p>",
            "posts/2024/a.html": "<p>a</p>",
            "latest": harness.Symlink("posts/2024"),
        })
        w = self.start_watch(src)
        self.assertEqual(set(self.remote()), {"index.html", "posts/2024/a.html", "latest/a.html"})
        mark = w.mark()
        write(os.path.join(src, "posts", "2024", "a.html"), "<p>a, edited and longer</p>")
        self.wait_uploaded(w, ["posts/2024/a.html", "latest/a.html"], mark)
        self.assertEqual(self.get("latest/a.html"), b"<p>a, edited and longer</p>")
        # A file added to the real folder appears under the link too.
        mark = w.mark()
        write(os.path.join(src, "posts", "2024", "b.html"), "<p>b</p>")
        self.wait_uploaded(w, ["posts/2024/b.html", "latest/b.html"], mark)
        w.settle(1.0)
        self.assertCovered(self.new_invs(), expected_paths(["posts/2024/a.html", "latest/a.html",
                                                             "posts/2024/b.html", "latest/b.html"]))
        self.assertAlive()

    def test_poll_publishes_an_edit_and_a_new_file(self):
        src = self.site(test_watch.SMALL_SITE)
        w = self.start_watch(src, "--poll", "200")
        mark = w.mark()
        write(os.path.join(src, "css", "site.css"), "body{color:red}")
        write(os.path.join(src, "blog", "new.html"), "<p>new</p>")
        write(os.path.join(src, "notes.swp"), "editor swap file")  # Skipped by sync, so by the poll too.
        self.wait_uploaded(w, ["css/site.css", "blog/new.html"], mark)
        self.assertEqual(self.get("css/site.css"), b"body{color:red}")
        self.assertEqual(self.get("blog/new.html"), b"<p>new</p>")
        w.settle(1.0)
        uploads = keys_of(w.since(mark), "upload")
        self.assertEqual(sorted(uploads), ["blog/new.html", "css/site.css"], "each once, nothing else")
        self.assertNotIn("notes.swp", self.remote())
        self.assertCovered(self.new_invs(), expected_paths(["css/site.css", "blog/new.html"]))
        self.assertAlive()

    def test_sync_skips_the_temp_files_watch_ignores(self):
        # One rule (sitemap::IsTempFile) for both: what watch does not wait for, sync does not publish.
        src = self.site({
            "index.html": "<p>home</p>", "a/page.html": "<p>page</p>", "old.tmp/kept.html": "<p>kept</p>",
            "index.html.swp": "vim swap", "a/.page.html.swx": "vim swap", "a/page.html~": "backup", "4913": "",
            "build.tmp": "half written",
        })
        res = harness.run_sitesync(["sync", src, self.dest(), "--endpoint", self.proxy.endpoint, "--json"],
                                   server=self.server)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(set(self.remote()), {"index.html", "a/page.html", "old.tmp/kept.html"})
        # --include brings one back, as it does for dotfiles.
        res = harness.run_sitesync(["sync", src, self.dest(), "--endpoint", self.proxy.endpoint,
                                    "--include", "*.tmp"], server=self.server)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("build.tmp", self.remote())

    @unittest.skipUnless(USERNS_OK, USERNS_WHY)
    def test_out_of_watches_warns_once_and_rescans_the_unwatched_folders(self):
        folders = [f"f{i:02d}" for i in range(20)]
        spec = {"index.html": "<p>home</p>"}
        spec.update({f"{f}/page.html": f"<p>{f}</p>" for f in folders})
        src = self.site(spec)
        with open(os.path.join(self.cwd, "sitesync.yaml"), "w") as f:
            f.write("watch:\n  rescan_interval_s: 2\n")
        # The real binary, in a user namespace of its own whose inotify watch limit is 8: the root and 7
        # folders get watches, the other 13 fail with ENOSPC.
        wrapper = os.path.join(self.tmp, "sitesync-few-watches")
        with open(wrapper, "w") as f:
            f.write("#!/bin/sh\n"
                    "exec unshare -U -r sh -c 'echo 8 > /proc/sys/user/max_inotify_watches && exec \"$0\" \"$@\"' "
                    f"'{harness.sitesync_bin()}' \"$@\"\n")
        os.chmod(wrapper, 0o755)
        with mock.patch.object(harness, "sitesync_bin", return_value=wrapper):
            w = self.start_watch(src)
        warnings = [line for line in w.stderr_text().splitlines() if "inotify_add_watch failed" in line]
        self.assertEqual(len(warnings), 1, w.stderr_text())
        self.assertIn("ENOSPC", warnings[0])
        self.assertIn("fs.inotify.max_user_watches", warnings[0])
        self.assertIn("rescanned every 2 s", warnings[0])
        mark = w.mark()
        for f in folders:
            write(os.path.join(src, f, "page.html"), f"<p>{f}, edited</p>")
        # Watched folders come by inotify, the others by the rescan every 2 s.
        self.wait_uploaded(w, [f"{f}/page.html" for f in folders], mark, timeout=40)
        for f in folders:
            self.assertEqual(self.get(f"{f}/page.html"), f"<p>{f}, edited</p>".encode())
        w.settle(1.0)
        warnings = [line for line in w.stderr_text().splitlines() if "inotify_add_watch failed" in line]
        self.assertEqual(len(warnings), 1, "one warning, not one per folder or per rescan\n" + w.stderr_text())
        self.assertCovered(self.new_invs(), expected_paths([f"{f}/page.html" for f in folders]))
        self.assertAlive()


if __name__ == "__main__":
    unittest.main(verbosity=2)
