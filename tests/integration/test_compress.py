"""Integration tests of pre-compression (issue 14, point 4): `compress: [{match, encoding: gzip|br}]` uploads the
compressed body with Content-Encoding, through the real binary, against moto_server with SigV4 checking on
(tests/integration/harness.py). The bucket is read back with boto3: head_object for the headers, get_object for
the bytes, which are decompressed here (gzip: Python's gzip module; br: Python's brotli module when the machine
has it, else tests/tools/brotli_decode, built from libbrotlidec) and compared with the files.

    SITESYNC_BIN=$PWD/build/cli/sitesync SITESYNC_BROTLI_DECODE=$PWD/build/tests/brotli_decode \\
        python3 -m unittest -v tests/integration/test_compress.py
"""

from __future__ import annotations

import gzip
import hashlib
import os
import subprocess
import sys
import tempfile
import textwrap
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402

BIN_OK, BIN_WHY = harness.sitesync_available()

try:  # the machine's Python may have it; the test does not need it
    import brotli  # type: ignore
except ImportError:
    brotli = None

BROTLI_DECODE = os.environ.get("SITESYNC_BROTLI_DECODE") or str(harness.REPO_ROOT / "build" / "tests" / "brotli_decode")
BR_OK = brotli is not None or os.access(BROTLI_DECODE, os.X_OK)


def unbrotli(data: bytes) -> bytes:
    if brotli is not None:
        return brotli.decompress(data)
    proc = subprocess.run([BROTLI_DECODE], input=data, capture_output=True, timeout=60, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"not a brotli stream: {proc.stderr.decode(errors='replace')}")
    return proc.stdout


def html(n: int, seed: int) -> str:
    """A page of about n bytes, compressible like a generator's HTML."""
    words = ["<p>", "</p>", "<a href=\"/posts/", "\">", "</a>", "static", "site", "café", "deploy", "\n", "S3"]
    out, i = ["<!doctype html><html><head><title>t</title></head><body>\n"], seed
    size = len(out[0])
    while size < n:
        i = (i * 1103515245 + 12345) % 2**31
        w = words[i % len(words)] + " "
        out.append(w)
        size += len(w.encode())
    return "".join(out)


SITE = {
    "index.html": html(30_000, 1),
    "blog/post/index.html": html(12_000, 2),
    "css/site.css": "body{margin:0}\n" * 400,
    "js/app.js": "function f(){return 1}\n" * 300,
    "js/vendor/lib.js": "var x = 1;\n" * 200,           # js/*.js does not cross '/': identity
    "img/logo.png": bytes(range(256)) * 8,
    "robots.txt": "User-agent: *\nAllow: /\n",
}

CONFIG = """\
    compress:
      - match: "*.html"
        encoding: gzip
      - match: "*.css"
        encoding: br
      - match: "js/*.js"
        encoding: br
"""

EXPECTED_ENCODING = {"index.html": "gzip", "blog/post/index.html": "gzip", "css/site.css": "br", "js/app.js": "br"}


@unittest.skipUnless(BIN_OK, BIN_WHY)
class CompressTest(unittest.TestCase):
    server: harness.MotoServer
    proxy: harness.FaultProxy

    @classmethod
    def setUpClass(cls):
        harness.start_moto_and_proxy(cls)
        cls.s3 = cls.server.boto3_s3()

    def setUp(self):
        harness.last_run = None
        self.proxy.clear_faults()
        self.proxy.reset_counts()
        self._tmp = tempfile.TemporaryDirectory(prefix="sitesync-compress-")
        self.addCleanup(self._tmp.cleanup)
        self.tmp = self._tmp.name
        self.home = os.path.join(self.tmp, "home")
        os.makedirs(self.home)
        self.bucket = harness.new_bucket_name("compress")
        self.s3.create_bucket(Bucket=self.bucket)
        self.src = os.path.join(self.tmp, "site")
        self.cfg = os.path.join(self.tmp, "sitesync.yaml")

    def tearDown(self):
        if harness.test_failed(self):
            if harness.last_run is not None:
                sys.stderr.write(f"\n===== last sitesync run ({self.id()}) =====\n{harness.last_run.describe()}\n")
            sys.stderr.write(f"===== proxy log =====\n{harness.tail(self.proxy.log_text(), 6000)}\n")

    def config(self, text: str) -> str:
        with open(self.cfg, "w", encoding="utf-8") as f:
            f.write(textwrap.dedent(text))
        return self.cfg

    def sync(self, *extra, code=0):
        res = harness.run_sitesync(["sync", self.src, f"s3://{self.bucket}/", "--endpoint", self.proxy.endpoint,
                                    "--config", self.cfg, "--json", *extra], server=self.server, home=self.home)
        self.assertEqual(res.returncode, code, res.describe())
        return res

    def check_bucket(self, files: dict) -> None:
        """Every object: Content-Encoding as the rules say, body that decompresses to the file, listed size and
        ETag of the stored (compressed) bytes."""
        listed = harness.list_bucket(self.s3, self.bucket, head=False)
        self.assertEqual(set(listed), set(files))
        for key, content in files.items():
            head = self.s3.head_object(Bucket=self.bucket, Key=key)
            raw = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            want = EXPECTED_ENCODING.get(key)
            self.assertEqual(head.get("ContentEncoding"), want, key)
            self.assertEqual(listed[key][0], len(raw), key)
            self.assertEqual(listed[key][1], hashlib.md5(raw).hexdigest(), key)
            self.assertEqual(head["ContentType"], harness.expected_content_type(key), key)
            if want == "gzip":
                self.assertEqual(raw[:2], b"\x1f\x8b", key)
                self.assertEqual(gzip.decompress(raw), content, key)
                self.assertLess(len(raw), len(content), key)
            elif want == "br":
                self.assertEqual(unbrotli(raw), content, key)
                self.assertLess(len(raw), len(content), key)
            else:
                self.assertEqual(raw, content, key)

    @unittest.skipUnless(BR_OK, f"no brotli module and no {BROTLI_DECODE} (build the brotli_decode target)")
    def test_compressed_objects_decompress_to_the_files_and_stay_in_sync(self):
        files = harness.make_site(self.src, SITE)
        self.config(CONFIG)
        res = self.sync()
        summary = harness.summary_of(harness.parse_json_lines(res.stdout))
        self.assertEqual(summary["uploaded"], len(SITE), summary)
        self.check_bucket(files)
        stored = sum(size for size, _etag, _type in harness.list_bucket(self.s3, self.bucket, head=False).values())
        self.assertEqual(summary["bytes_uploaded"], stored, "bytes = the encoded sizes")
        self.assertEqual(self.proxy.count("CreateMultipartUpload"), 0)

        # Second runs, by size and by checksum: the compressed bodies are the same bytes, so nothing goes up.
        for extra in ((), ("--compare", "checksum")):
            self.proxy.reset_counts()
            again = harness.summary_of(harness.parse_json_lines(self.sync(*extra).stdout))
            self.assertEqual(again["uploaded"], 0, (extra, again))
            self.assertEqual(again["unchanged"], len(SITE), (extra, again))
            self.assertEqual(self.proxy.count("PutObject"), 0, (extra, self.proxy.counts()))

        # A changed compressed file (and a changed identity one) goes up, and only those.
        changed = {"css/site.css": "body{margin:1px}\n" * 500, "index.html": html(31_000, 3),
                   "robots.txt": "User-agent: *\nDisallow: /x\n"}
        files.update(harness.make_site(self.src, changed))
        self.proxy.reset_counts()
        summary = harness.summary_of(harness.parse_json_lines(self.sync().stdout))
        self.assertEqual(summary["uploaded"], 3, summary)
        self.assertEqual(self.proxy.count("PutObject"), 3, self.proxy.counts())
        self.check_bucket(files)

    def test_same_size_edit_of_a_compressed_file_is_seen_by_checksum(self):
        # Same length, other bytes: the compressed bodies differ in content, very likely not in size; with
        # --compare checksum the ETag (MD5 of the encoded body) decides whatever the sizes.
        files = harness.make_site(self.src, {"a.html": "<p>" + "abc " * 500 + "</p>", "b.txt": "plain"})
        self.config('compress: [{match: "*.html", encoding: gzip}]\n')
        self.sync()
        files.update(harness.make_site(self.src, {"a.html": "<p>" + "abd " * 500 + "</p>"}))
        self.proxy.reset_counts()
        summary = harness.summary_of(harness.parse_json_lines(self.sync("--compare", "checksum").stdout))
        self.assertEqual(summary["uploaded"], 1, summary)
        raw = self.s3.get_object(Bucket=self.bucket, Key="a.html")["Body"].read()
        self.assertEqual(gzip.decompress(raw), files["a.html"])
        self.assertEqual(self.s3.head_object(Bucket=self.bucket, Key="a.html").get("ContentEncoding"), "gzip")
        self.assertIsNone(self.s3.head_object(Bucket=self.bucket, Key="b.txt").get("ContentEncoding"))

    def test_bad_rules_are_config_errors_and_change_nothing(self):
        harness.make_site(self.src, {"index.html": "<p>x</p>"})
        cases = (
            ('compress: [{match: "*.html", encoding: zstd}]\n', "unknown encoding 'zstd' (use gzip or br)"),
            ('compress: [{match: "*.html", encoding: br, level: 5}]\n', "unknown key 'level' (known: match, encoding)"),
            ('compress: [{match: "*.html"}]\n', "needs 'encoding: gzip' or 'encoding: br'"),
        )
        for text, message in cases:
            self.config(text)
            res = self.sync(code=2)
            self.assertIn("compress rule with match '*.html'", res.stderr)
            self.assertIn(message, res.stderr)
        self.assertEqual(harness.list_bucket(self.s3, self.bucket, head=False), {}, "nothing changed")


if __name__ == "__main__":
    unittest.main(verbosity=2)
