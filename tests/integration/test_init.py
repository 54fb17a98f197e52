"""Integration tests of `sitesync init`: run in fixture folders of Hugo, Zola, Jekyll, Eleventy and Astro sites (made
here, as each generator lays them out), the written sitesync.yaml is parsed with PyYAML (independently of
sitesync) and then used by `sitesync plan` against moto_server (SigV4 checking on). An existing file is never
touched.

    SITESYNC_BIN=$PWD/build/cli/sitesync python3 -m unittest -v tests/integration/test_init.py
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import unittest

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402

BIN_OK, BIN_WHY = harness.sitesync_available()
needs_sitesync = unittest.skipUnless(BIN_OK, BIN_WHY)

# name -> (files of the project folder, expected generator, expected source, expected site URL or None)
FIXTURES = {
    "hugo": ({"hugo.toml": "baseURL = 'https://example.org/'\nlanguageCode = 'en-us'\ntitle = 'My New Hugo Site'\n",
              "archetypes/default.md": "+++\ntitle = ''\n+++\n", "content/_index.md": "# Home\n"},
             "Hugo", "public/", "https://example.org/"),
    "hugo-legacy-config-toml": ({"config.toml": "baseurl = \"https://legacy.example/\"\ntheme = \"ananke\"\n",
                                 "themes/ananke/theme.toml": "name = \"Ananke\"\n"},
                                "Hugo", "public/", "https://legacy.example/"),
    "hugo-publishdir": ({"hugo.yaml": "baseURL: https://docs.example/\npublishDir: docs\n"}, "Hugo", "docs/",
                        "https://docs.example/"),
    "zola": ({"config.toml": "base_url = \"https://zola.example\"\ncompile_sass = true\nbuild_search_index = false\n\n"
                             "[markdown]\nhighlight_code = true\n\n[extra]\n",
              "templates/index.html": "{{ section.title }}\n", "content/_index.md": "+++\n+++\n",
              "themes/.keep": ""},
             "Zola", "public/", "https://zola.example/"),
    "jekyll": ({"_config.yml": "title: My Blog\nurl: \"https://blog.example.com\"\nbaseurl: \"/notes\"\n"
                               "theme: minima\nplugins:\n  - jekyll-feed\n",
                "Gemfile": "source \"https://rubygems.org\"\ngem \"jekyll\", \"~> 4.3\"\n", "index.md": "---\n---\n"},
               "Jekyll", "_site/", "https://blog.example.com/notes/"),
    "eleventy": ({".eleventy.js": "module.exports = function (eleventyConfig) {\n"
                                  "  return { dir: { input: \"src\", output: \"_site\" } };\n};\n",
                  "package.json": '{"name": "s", "devDependencies": {"@11ty/eleventy": "^2.0.1"}}\n'},
                 "Eleventy", "_site/", None),
    "eleventy-package-only": ({"package.json": '{"scripts": {"build": "eleventy"}, '
                                               '"devDependencies": {"@11ty/eleventy": "^3.0.0"}}\n'},
                              "Eleventy", "_site/", None),
    "astro": ({"astro.config.mjs": "import { defineConfig } from 'astro/config';\n\nexport default defineConfig({\n"
                                   "  site: 'https://astro.example',\n});\n",
               "package.json": '{"dependencies": {"astro": "^4.5.0"}}\n', "src/pages/index.astro": "<h1>Hi</h1>\n"},
              "Astro", "dist/", "https://astro.example/"),
}


def sha256_of(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class InitCase(unittest.TestCase):
    server: harness.MotoServer

    @classmethod
    def setUpClass(cls):
        cls.server = harness.MotoServer()
        cls.addClassCleanup(cls.server.cleanup)
        cls.server.start()
        cls.s3 = cls.server.boto3_s3()

    def setUp(self):
        harness.last_run = None
        self._tmp = tempfile.TemporaryDirectory(prefix="sitesync-init-")
        self.addCleanup(self._tmp.cleanup)
        self.tmp = self._tmp.name

    def tearDown(self):
        if harness.test_failed(self) and harness.last_run is not None:
            sys.stderr.write(f"\n===== last sitesync run ({self.id()}) =====\n{harness.last_run.describe()}\n")

    def project(self, name, files):
        root = os.path.join(self.tmp, name)
        harness.make_site(root, files)
        return root

    def init(self, cwd, *args):
        return harness.run_sitesync(["init", *args], cwd=cwd)

    def assertExit(self, res, code):
        self.assertEqual(res.returncode, code, f"expected exit {code}\n{res.describe()}")

    def load(self, path):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        return text, yaml.safe_load(text)

    # -- detection -----------------------------------------------------------------------------------------------
    @needs_sitesync
    def test_each_generator_gets_its_output_folder(self):
        for name, (files, generator, source, url) in FIXTURES.items():
            with self.subTest(name):
                root = self.project(name, files)
                res = self.init(root)
                self.assertExit(res, 0)
                article = "an" if generator[0] in "AEIOU" else "a"
                self.assertIn(f"Found {article} {generator} site", res.stderr)
                self.assertIn("Wrote sitesync.yaml", res.stderr)
                text, doc = self.load(os.path.join(root, "sitesync.yaml"))
                self.assertEqual(doc["source"], source)
                self.assertNotIn("destination", doc, "the placeholder stays commented out")
                self.assertIn("# destination: s3://YOUR-BUCKET", text)
                self.assertNotIn("delete", doc, "delete stays off")
                self.assertIn("# delete: true", text)
                self.assertEqual(doc["cdn"], {"distribution": "auto"})
                rules = {r["match"]: r["cache_control"] for r in doc["headers"]}
                self.assertEqual(rules["*.html"], "public, max-age=0, must-revalidate")
                self.assertEqual(rules["*.xml"], "public, max-age=0, must-revalidate")
                self.assertEqual(rules["*.woff2"], "public, max-age=31536000, immutable")
                self.assertEqual(rules["*.png"], "public, max-age=31536000, immutable")
                self.assertEqual(doc["headers"][-1]["match"], "*.xml", "HTML and XML rules come last and win")
                # Generators rewrite pages at the same size: their sites compare content, at about size's cost
                # thanks to the record, which the comment says lives under $XDG_CACHE_HOME/sitesync.
                self.assertEqual(doc["compare"], "checksum")
                before = text[:text.index("\ncompare: checksum\n")]
                comment = before[before.rindex("\n\n"):]
                for why in ("same size", "pagination", "feed.xml", "$XDG_CACHE_HOME/sitesync", "about what `size` costs"):
                    self.assertIn(why, comment)
                if url:
                    self.assertIn(f"#   base_url: {url}", text)
                else:
                    self.assertIn("#   base_url: https://www.example.com/", text)
                self.assertIn("sitesync check", res.stderr)

    @needs_sitesync
    def test_nothing_detected_still_writes_a_placeholder(self):
        root = self.project("plain", {"README.md": "# notes\n"})
        res = self.init(root)
        self.assertExit(res, 0)
        self.assertIn("No site generator found here", res.stderr)
        self.assertIn("placeholder", res.stderr)
        text, doc = self.load(os.path.join(root, "sitesync.yaml"))
        self.assertEqual(doc["source"], "public/")
        self.assertIn("EDIT THIS if your site is built somewhere else", text)
        self.assertNotIn("compare", doc, "no generator found: the default (size) stays, checksum is suggested")
        self.assertIn("\n# compare: checksum\n", text)

    @needs_sitesync
    def test_nothing_detected_but_a_built_folder(self):
        root = self.project("built", {"build/index.html": "<p>x</p>"})
        res = self.init(root)
        self.assertExit(res, 0)
        _, doc = self.load(os.path.join(root, "sitesync.yaml"))
        self.assertEqual(doc["source"], "build/")

    # -- never overwrite -----------------------------------------------------------------------------------------
    @needs_sitesync
    def test_existing_config_is_left_byte_identical(self):
        files, *_ = FIXTURES["hugo"]
        root = self.project("existing", {**files, "sitesync.yaml": "source: mine/\n# my notes\n"})
        path = os.path.join(root, "sitesync.yaml")
        before, mtime = sha256_of(path), os.stat(path).st_mtime_ns
        res = self.init(root)
        self.assertExit(res, 3)
        self.assertIn("sitesync.yaml already exists", res.stderr)
        self.assertIn("never overwrites", res.stderr)
        self.assertEqual(sha256_of(path), before)
        self.assertEqual(os.stat(path).st_mtime_ns, mtime)
        # The same for -c FILE.
        other = os.path.join(root, "deploy.yaml")
        with open(other, "wb") as f:
            f.write(b"\x00binary, not yaml\xff")
        res = self.init(root, "-c", "deploy.yaml")
        self.assertExit(res, 3)
        self.assertIn("deploy.yaml already exists", res.stderr)
        with open(other, "rb") as f:
            self.assertEqual(f.read(), b"\x00binary, not yaml\xff")

    @needs_sitesync
    def test_a_symlink_in_the_way_is_not_followed(self):
        root = self.project("link", {"_config.yml": "title: x\n"})
        os.symlink("elsewhere.yaml", os.path.join(root, "sitesync.yaml"))
        res = self.init(root)
        self.assertExit(res, 3)
        self.assertFalse(os.path.exists(os.path.join(root, "elsewhere.yaml")))
        self.assertEqual(os.readlink(os.path.join(root, "sitesync.yaml")), "elsewhere.yaml")

    @needs_sitesync
    def test_config_in_a_missing_folder_is_a_usage_error(self):
        root = self.project("nofolder", {"hugo.toml": "baseURL = 'https://x/'\n"})
        res = self.init(root, "-c", "conf/sitesync.yaml")
        self.assertExit(res, 2)
        self.assertIn("conf does not exist", res.stderr)
        self.assertFalse(os.path.exists(os.path.join(root, "conf")))

    # -- the written file works ----------------------------------------------------------------------------------
    @needs_sitesync
    def test_written_file_drives_plan_once_the_bucket_is_set(self):
        files, *_ = FIXTURES["hugo"]
        root = self.project("plan", {**files, "public/index.html": "<p>home</p>", "public/css/site.css": "b{}",
                                     "public/img/a.png": b"\x89PNG\r\n"})
        self.assertExit(self.init(root), 0)
        path = os.path.join(root, "sitesync.yaml")
        # Left as written, sync and plan stop and say to set the destination in sitesync.yaml.
        for cmd in ("plan", "sync"):
            res = harness.run_sitesync([cmd, "--endpoint", self.server.endpoint], server=self.server, cwd=root)
            self.assertExit(res, 2)
            self.assertIn("no DEST given", res.stderr)
            self.assertIn("'destination:' in sitesync.yaml", res.stderr)
        res = harness.run_sitesync(["check", "--endpoint", self.server.endpoint], server=self.server, cwd=root)
        self.assertExit(res, 2)
        self.assertIn("'destination:' in sitesync.yaml", res.stderr)

        bucket = harness.new_bucket_name("init-plan")
        self.s3.create_bucket(Bucket=bucket)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        text = text.replace("# destination: s3://YOUR-BUCKET", f"destination: s3://{bucket}/site")
        text = text.replace("cdn:\n  distribution: auto\n", "")  # no CloudFront here: the section goes, as it says
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        res = harness.run_sitesync(["plan", "--endpoint", self.server.endpoint, "--json"], server=self.server,
                                   cwd=root)
        self.assertExit(res, 0)
        events = harness.parse_json_lines(res.stdout)
        planned = sorted(e["key"] for e in events if e.get("event") == "upload")
        self.assertEqual(planned, ["css/site.css", "img/a.png", "index.html"])
        self.assertTrue(all(e.get("planned") for e in events if e.get("event") == "upload"))
        # And sync applies the header rules it wrote.
        res = harness.run_sitesync(["sync", "--endpoint", self.server.endpoint], server=self.server, cwd=root)
        self.assertExit(res, 0)
        head = {k: self.s3.head_object(Bucket=bucket, Key=f"site/{k}").get("CacheControl")
                for k in ("index.html", "css/site.css", "img/a.png")}
        self.assertEqual(head, {"index.html": "public, max-age=0, must-revalidate",
                                "css/site.css": "public, max-age=300",
                                "img/a.png": "public, max-age=31536000, immutable"})
        # The written compare: checksum publishes a page rebuilt at the same size (a fresh HOME per run: no
        # record, so it is the content compare that finds it); --compare size on the command line would not.
        with open(os.path.join(root, "public", "index.html"), "w", encoding="utf-8") as f:
            f.write("<p>HOME</p>")
        res = harness.run_sitesync(["plan", "--compare", "size", "--endpoint", self.server.endpoint, "--json"],
                                   server=self.server, cwd=root)
        self.assertExit(res, 0)
        self.assertEqual([e for e in harness.parse_json_lines(res.stdout) if e.get("event") == "upload"], [])
        res = harness.run_sitesync(["sync", "--endpoint", self.server.endpoint, "--json"], server=self.server,
                                   cwd=root)
        self.assertExit(res, 0)
        uploaded = [e["key"] for e in harness.parse_json_lines(res.stdout) if e.get("event") == "upload"]
        self.assertEqual(uploaded, ["index.html"])
        body = self.s3.get_object(Bucket=bucket, Key="site/index.html")["Body"].read()
        self.assertEqual(body, b"<p>HOME</p>")

    @needs_sitesync
    def test_config_in_another_folder_points_back_at_the_output(self):
        files, *_ = FIXTURES["zola"]
        root = self.project("elsewhere", {**files, "public/index.html": "<p>z</p>", "deploy/.keep": ""})
        res = self.init(root, "-c", "deploy/site.yaml")
        self.assertExit(res, 0)
        self.assertIn("sitesync check -c deploy/site.yaml", res.stderr)
        _, doc = self.load(os.path.join(root, "deploy", "site.yaml"))
        self.assertEqual(doc["source"], "../public/")
        bucket = harness.new_bucket_name("init-c")
        self.s3.create_bucket(Bucket=bucket)
        path = os.path.join(root, "deploy", "site.yaml")
        with open(path, encoding="utf-8") as f:
            text = f.read()
        text = text.replace("# destination: s3://YOUR-BUCKET", f"destination: s3://{bucket}")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        # SOURCE and DEST both come from the file; the relative source is read from the file's folder.
        res = harness.run_sitesync(["plan", "-c", "deploy/site.yaml", "--endpoint", self.server.endpoint,
                                    "--no-invalidate", "--json"], server=self.server, cwd=root)
        self.assertExit(res, 0)
        events = harness.parse_json_lines(res.stdout)
        self.assertEqual([e["key"] for e in events if e.get("event") == "upload"], ["index.html"])


if __name__ == "__main__":
    unittest.main()
