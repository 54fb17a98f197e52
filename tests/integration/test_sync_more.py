"""More integration tests of `sitesync sync`: listing pagination, multipart abort, body checksums on the wire,
connection reuse, bounded memory, credentials from a profile, terminal progress, --help/--version, and
--compare checksum against multipart ETags.

Outcomes are checked with boto3 straight against moto (never through sitesync); request and connection counts
come from the FaultProxy between sitesync and moto. One moto server (+ proxy) per class, one bucket per test.

    SITESYNC_BIN=$PWD/build/cli/sitesync python3 tests/integration/test_sync_more.py -v
"""

from __future__ import annotations

import base64
import hashlib
import os
import pty
import random
import re
import select
import shlex
import struct
import subprocess
import sys
import time
import unittest
import zlib
from unittest import mock

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from test_sync import SyncCase, events_of  # noqa: E402  (SyncCase: one server + proxy per class, bucket per test)

BIN_OK, BIN_WHY = harness.sitesync_available()
needs_sitesync = unittest.skipUnless(BIN_OK, BIN_WHY)

KiB = 1024
MiB = 1024 * 1024
GNU_TIME = "/usr/bin/time"

ANSI_OR_CR = re.compile(r"\r|\x1b\[")


def md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode("ascii")


def crc32_b64(data: bytes) -> str:
    """S3's x-amz-checksum-crc32: the big-endian CRC-32 (zlib's), base64."""
    return base64.b64encode(struct.pack(">I", zlib.crc32(data))).decode("ascii")


def file_sha256(client, bucket, key) -> str:
    digest = hashlib.sha256()
    body = client.get_object(Bucket=bucket, Key=key)["Body"]
    for chunk in iter(lambda: body.read(MiB), b""):
        digest.update(chunk)
    return digest.hexdigest()


def multipart_etag(data: bytes, part_size: int = 8 * MiB) -> str:
    parts = [hashlib.md5(data[i:i + part_size]).digest() for i in range(0, len(data), part_size)]
    return f"{hashlib.md5(b''.join(parts)).hexdigest()}-{len(parts)}"


class MoreSyncCase(SyncCase):
    def setUp(self):
        super().setUp()
        self.proxy.record_bodies = False

    def object_exists(self, key) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.s3.head_object(Bucket=self.bucket, Key=key)
            return True
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    def clean_env(self, home, with_credentials=True) -> dict:
        """The environment harness.run_sitesync would give sitesync (for runs it cannot make, e.g. in a pty)."""
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "HOME": home,
            "XDG_STATE_HOME": os.path.join(home, ".local", "state"),
            "XDG_CONFIG_HOME": os.path.join(home, ".config"), "XDG_CACHE_HOME": os.path.join(home, ".cache"),
            "AWS_REGION": harness.REGION, "AWS_EC2_METADATA_DISABLED": "true", "TERM": "xterm",
        }
        for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
            if k in os.environ:
                env[k] = os.environ[k]
        if with_credentials:
            env.update(self.server.sitesync_env())
        return env


# ------------------------------------------------------------------------------------------------------------------


@needs_sitesync
class ListingPaginationTest(MoreSyncCase):
    def test_pagination_1150_files_two_list_pages(self):
        n = 1150
        spec = {f"sec-{i % 23:02d}/sub-{i % 7}/f-{i:04d}.txt": f"{i}\n" for i in range(n)}
        src = self.site(spec)
        _res, events = self.ok_sync(src, self.dest(), "--jobs", "32", timeout=300)
        listing = self.remote()
        self.assertEqual(len(listing), n)
        self.assertEqual(set(listing), set(spec))
        for key in ("sec-00/sub-0/f-0000.txt", "sec-22/sub-1/f-1149.txt"):
            self.assertEqual(harness.get_bytes(self.s3, self.bucket, key), spec[key].encode())
        s = harness.summary_of(events)
        self.assertEqual((s["uploaded"], s["failed"]), (n, 0))
        self.assertEqual(self.proxy.count("PutObject"), n)

        self.proxy.reset_counts()
        _res, events = self.ok_sync(src, self.dest(), timeout=300)
        counts = self.proxy.counts()
        self.assertEqual(self.proxy.count("PutObject"), 0, counts)
        self.assertNoWrites()
        # A listing of a few pages goes page by page: the fewest requests (parallel folder walks only start
        # past 8 pages, see sync/list_test.cc).
        self.assertEqual(self.proxy.count("ListObjectsV2", "GET"), 2, f"two pages of at most 1,000 keys: {counts}")
        list_targets = [t for _m, op, t in self.proxy.requests if op == "ListObjectsV2"]
        self.assertEqual(sum("continuation-token=" in t for t in list_targets), 1, list_targets)
        s = harness.summary_of(events)
        self.assertEqual((s["uploaded"], s["unchanged"], s["deleted"], s["failed"]), (0, n, 0, 0))
        self.assertEqual(events_of(events, "upload"), [])
        self.assertEqual(self.remote(), listing)


@needs_sitesync
class ForceTest(MoreSyncCase):
    def test_force_uploads_every_file_and_plan_shows_them(self):
        spec = {"index.html": "<h1>home</h1>\n", "css/site.css": "body{}\n", "a/index.html": "<p>a</p>\n"}
        src = self.site(spec)
        self.ok_sync(src, self.dest())
        before = {k: self.s3.head_object(Bucket=self.bucket, Key=k)["LastModified"] for k in spec}

        # Without --force a resync uploads nothing, also with --compare checksum.
        self.proxy.reset_counts()
        self.ok_sync(src, self.dest(), "--compare", "checksum")
        self.assertEqual(self.proxy.count("PutObject"), 0)

        # plan --force names every file as a planned upload and changes nothing.
        self.proxy.reset_counts()
        res = harness.run_sitesync(["plan", src, self.dest(), "--endpoint", self.proxy.endpoint, "--json",
                                    "--force"], server=self.server)
        self.assertEqual(res.returncode, 0, res.describe())
        planned = {e["key"] for e in events_of(harness.parse_json_lines(res.stdout), "upload")}
        self.assertEqual(planned, set(spec))
        self.assertNoWrites()

        self.proxy.reset_counts()
        _res, events = self.ok_sync(src, self.dest(), "--force", "--compare", "checksum")
        self.assertEqual(self.proxy.count("PutObject"), len(spec), self.proxy.counts())
        s = harness.summary_of(events)
        self.assertEqual((s["uploaded"], s["unchanged"], s["failed"]), (len(spec), 0, 0))
        for key, body in spec.items():
            self.assertEqual(harness.get_bytes(self.s3, self.bucket, key), body.encode())
            self.assertGreaterEqual(self.s3.head_object(Bucket=self.bucket, Key=key)["LastModified"], before[key])


@needs_sitesync
class MultipartMoreTest(MoreSyncCase):
    def test_failed_parts_abort_the_upload_and_the_rest_is_done(self):
        big = random.Random(20).randbytes(20 * MiB)
        small = {"index.html": "<p>i</p>", "css/a.css": "a{}", "js/b.js": "b()"}
        src = self.site(dict(small, **{"media/video.bin": big}))
        self.proxy.inject(status=500, code="InternalError", count=1000, op="UploadPart")
        res = self.sync(src, self.dest(), timeout=240)
        self.assertExit(res, 1)
        events = harness.parse_json_lines(res.stdout)
        errors = events_of(events, "error")
        self.assertEqual([e.get("key") for e in errors], ["media/video.bin"], errors)
        self.assertTrue(errors[0].get("message"), errors)
        # The other assets go up; the page is held back, since an asset of this run failed (issue 12, point 4).
        assets = {k: v for k, v in small.items() if not k.endswith(".html")}
        self.assertEqual({e["key"] for e in events_of(events, "upload")}, set(assets))
        self.assertEqual({e["key"] for e in events_of(events, "skip")}, {"index.html"})
        s = harness.summary_of(events)
        self.assertEqual((s["uploaded"], s["failed"], s["skipped"]), (len(assets), 1, 1), s)

        c = self.proxy.counts()
        self.assertEqual(self.proxy.count("CreateMultipartUpload"), 1, c)
        self.assertGreater(self.proxy.count("UploadPart"), 3, f"the failing parts were retried: {c}")
        self.assertEqual(self.proxy.injected, self.proxy.count("UploadPart"), c)
        self.assertEqual(self.proxy.count("CompleteMultipartUpload"), 0, c)
        self.assertGreaterEqual(self.proxy.count("AbortMultipartUpload"), 1, c)
        self.assertEqual(self.s3.list_multipart_uploads(Bucket=self.bucket).get("Uploads", []), [],
                         "no multipart upload (and its parts) may be left behind")
        self.assertFalse(self.object_exists("media/video.bin"))
        self.assertBucketHolds(harness.expected_uploads(assets), content_types=False)

        # faults gone: the rerun uploads the big file, whole, then the page held back
        self.proxy.clear_faults()
        self.proxy.reset_counts()
        _res, events = self.ok_sync(src, self.dest(), timeout=240)
        self.assertEqual([e["key"] for e in events_of(events, "upload")], ["media/video.bin", "index.html"])
        self.assertEqual(self.proxy.count("PutObject"), 1)
        self.assertEqual(self.proxy.count("CompleteMultipartUpload"), 1)
        head = self.s3.head_object(Bucket=self.bucket, Key="media/video.bin")
        self.assertEqual(head["ContentLength"], len(big))
        self.assertEqual(head["ETag"].strip('"'), multipart_etag(big))
        self.assertEqual(file_sha256(self.s3, self.bucket, "media/video.bin"), hashlib.sha256(big).hexdigest())
        self.assertEqual(self.s3.list_multipart_uploads(Bucket=self.bucket).get("Uploads", []), [])

    def test_checksum_compare_with_multipart_etag(self):
        size = 20 * MiB
        data = bytearray(random.Random(21).randbytes(size))
        src = self.site({"media/video.bin": bytes(data), "index.html": "<p>i</p>"})
        path = os.path.join(src, "media/video.bin")
        self.proxy.record_bodies = True
        self.ok_sync(src, self.dest(), timeout=240)
        etag1 = self.s3.head_object(Bucket=self.bucket, Key="media/video.bin")["ETag"].strip('"')
        self.assertTrue(etag1.endswith("-3"), etag1)
        self.assertEqual(etag1, multipart_etag(bytes(data)))
        # every part carried the Content-MD5 of its bytes
        parts = [r for r in self.proxy.recorded if r.op == "UploadPart"]
        self.assertEqual(len(parts), 3)
        for r in parts:
            self.assertEqual(r.header("Content-MD5"), base64.b64encode(r.body_md5).decode(), r.target)
        self.proxy.record_bodies = False

        # unchanged multipart file under checksum: nothing is sent
        self.proxy.reset_counts()
        _res, events = self.ok_sync(src, self.dest(), "--compare", "checksum", timeout=240)
        self.assertEqual(events_of(events, "upload"), [])
        self.assertEqual((self.proxy.count("PutObject"), self.proxy.count("UploadPart")), (0, 0))
        self.assertNoWrites()
        self.assertEqual(harness.summary_of(events)["unchanged"], 2)

        # same size, different bytes (in the second part)
        data[10 * MiB:10 * MiB + 16] = b"CHANGED-IN-PLACE"
        with open(path, "r+b") as f:
            f.seek(10 * MiB)
            f.write(b"CHANGED-IN-PLACE")
        self.assertEqual(os.path.getsize(path), size)

        self.proxy.reset_counts()
        _res, events = self.ok_sync(src, self.dest(), "--compare", "size", timeout=240)
        self.assertEqual(events_of(events, "upload"), [])
        self.assertNoWrites()
        self.assertEqual(self.s3.head_object(Bucket=self.bucket, Key="media/video.bin")["ETag"].strip('"'), etag1)

        self.proxy.reset_counts()
        _res, events = self.ok_sync(src, self.dest(), "--compare", "checksum", timeout=240)
        self.assertEqual([e["key"] for e in events_of(events, "upload")], ["media/video.bin"])
        c = self.proxy.counts()
        self.assertEqual((self.proxy.count("CreateMultipartUpload"), self.proxy.count("UploadPart"),
                          self.proxy.count("CompleteMultipartUpload"), self.proxy.count("PutObject")), (1, 3, 1, 0), c)
        etag2 = self.s3.head_object(Bucket=self.bucket, Key="media/video.bin")["ETag"].strip('"')
        self.assertEqual(etag2, multipart_etag(bytes(data)))
        self.assertNotEqual(etag2, etag1)
        self.assertEqual(file_sha256(self.s3, self.bucket, "media/video.bin"), hashlib.sha256(data).hexdigest())

        self.proxy.reset_counts()
        _res, events = self.ok_sync(src, self.dest(), "--compare", "checksum", timeout=240)
        self.assertEqual(events_of(events, "upload"), [])
        self.assertEqual((self.proxy.count("PutObject"), self.proxy.count("UploadPart")), (0, 0))
        self.assertNoWrites()


@needs_sitesync
class WireTest(MoreSyncCase):
    def wire_files(self):
        rnd = random.Random(3)
        return {
            "small.html": ("<!doctype html><p>" + "small " * 300 + "</p>\n").encode(),  # in memory
            "edge-in-memory.bin": rnd.randbytes(64 * KiB),                               # the largest in memory
            "edge-streamed.bin": rnd.randbytes(64 * KiB + 1),                            # the smallest streamed
            "medium.bin": rnd.randbytes(1 * MiB + 12345),                                # streamed
            "empty.txt": b"",
        }

    def test_put_carries_correct_crc32_and_content_md5(self):
        files = self.wire_files()
        src = self.site(files)
        self.proxy.record_bodies = True
        self.ok_sync(src, self.dest())
        puts = {r.target.split("?")[0].split("/", 2)[2]: r for r in self.proxy.recorded if r.op == "PutObject"}
        self.assertEqual(set(puts), set(files))
        for key, data in files.items():
            with self.subTest(key=key):
                r = puts[key]
                self.assertNotIn("chunked", (r.header("Transfer-Encoding") or "").lower())
                self.assertEqual(r.body_len, len(data))
                self.assertEqual(r.body_md5, hashlib.md5(data).digest(), "the proxy saw exactly the file's bytes")
                # the body's CRC-32 as the AWS SDKs send it (S3 recomputes it and refuses a mismatch)
                self.assertEqual(r.header("x-amz-checksum-crc32"), crc32_b64(data))
                self.assertEqual(r.header("x-amz-sdk-checksum-algorithm"), "CRC32")
                # the checksum headers are signed like every x-amz- header
                self.assertIn("x-amz-checksum-crc32", r.header("Authorization"))
                # the PUTs sent before any answer showed that the server checks the CRC-32 carry the body's MD5
                # as well, which every S3 server checks (RGW ignores the CRC-32); the others the CRC-32 alone
                if r.header("Content-MD5") is not None:
                    self.assertEqual(r.header("Content-MD5"), md5_b64(data))
                    self.assertIn("content-md5", r.header("Authorization"))
                head = self.s3.head_object(Bucket=self.bucket, Key=key)
                self.assertEqual(head["ETag"].strip('"'), hashlib.md5(data).hexdigest())
                self.assertEqual(head["ContentLength"], len(data))
        with_md5 = [key for key, r in puts.items() if r.header("Content-MD5") is not None]
        self.assertGreaterEqual(len(with_md5), 1, "the first PUT, sent before any answer, carries both")
        # the page goes up after the assets' answers, which echoed the CRC-32 (moto checks it): the CRC-32 alone
        self.assertIsNone(puts["small.html"].header("Content-MD5"))

    def test_server_that_refuses_checksum_headers_gets_content_md5(self):
        # Some S3-compatible stores answer 400 InvalidArgument to x-amz-checksum-* headers they do not know.
        # Every PUT refused for them is sent again with Content-MD5, and the rest of the run uses Content-MD5.
        files = self.wire_files()
        files.update({f"p/{i:02d}/index.html": f"<p>page {i}</p>".encode() * (i + 1) for i in range(40)})
        src = self.site(files)
        self.proxy.record_bodies = True
        self.proxy.inject(400, "InvalidArgument", count=10_000, op="PutObject", header="x-amz-checksum-crc32",
                          message="Unsupported header 'x-amz-checksum-crc32' received for this API call.")
        try:
            _res, events = self.ok_sync(src, self.dest(), "--jobs", "4")
        finally:
            self.proxy.clear_faults()
        self.assertEqual(harness.summary_of(events)["uploaded"], len(files))
        self.assertEqual(events_of(events, "error"), [])
        refused = [r for r in self.proxy.faulted if r.op == "PutObject"]
        self.assertGreaterEqual(len(refused), 1)
        self.assertLessEqual(len(refused), 4, "only the PUTs already in flight when the first refusal came back")
        puts = {r.target.split("?")[0].split("/", 2)[2]: r for r in self.proxy.recorded if r.op == "PutObject"}
        self.assertEqual(set(puts), set(files))
        for key, data in files.items():
            with self.subTest(key=key):
                self.assertEqual(puts[key].header("Content-MD5"), md5_b64(data))
                self.assertIsNone(puts[key].header("x-amz-checksum-crc32"))
                head = self.s3.head_object(Bucket=self.bucket, Key=key)
                self.assertEqual(head["ETag"].strip('"'), hashlib.md5(data).hexdigest())

    def test_connections_are_reused(self):
        spec = {f"p/{i % 10}/f-{i:03d}.html": f"<p>{i}</p>" for i in range(200)}
        src = self.site(spec)
        before = self.proxy.connections_accepted
        _res, events = self.ok_sync(src, self.dest(), "--jobs", "8")
        opened = self.proxy.connections_accepted - before
        requests = self.proxy.total()
        self.assertGreaterEqual(requests, 201)
        self.assertGreaterEqual(opened, 1)
        self.assertLessEqual(opened, 10, f"{opened} TCP connections for {requests} requests with --jobs 8")
        self.assertEqual(len(self.remote()), 200)
        self.assertEqual(harness.summary_of(events)["uploaded"], 200)


@needs_sitesync
class MemoryTest(MoreSyncCase):
    """Peak RSS (GNU time's %M) of whole sync runs, compared with a run that uploads one tiny file.

    Measured on the 2-core dev machine (RelWithDebInfo, dynamically linked): a tiny sync peaks at ~15.5-15.9 MiB
    (libcurl, libcrypto, libxml2, libstdc++ and the walk/listing state), the 15 MiB single PUT at ~16.2 MiB, the
    40 MiB multipart upload (5 parts in flight) at ~16.9-17.0 MiB, a 100 MiB one at ~17.1 MiB. So an absolute
    limit of 12 MiB cannot hold for any run; what shows a body held in memory is the growth over the baseline:
    a buffered 15 MiB body would add 15 MiB, one buffered 8 MiB part 8 MiB.
    """

    SINGLE_PUT_GROWTH_KIB = 4 * 1024   # measured: ~0.5 MiB
    SINGLE_PUT_LIMIT_KIB = 24 * 1024   # measured: ~16.2 MiB; baseline + the whole body would be ~31 MiB
    MULTIPART_GROWTH_KIB = 7 * 1024    # measured: ~1.2 MiB; one buffered 8 MiB part would exceed it
    MULTIPART_LIMIT_KIB = 32 * 1024    # measured: ~17 MiB; well below the 40 MiB file

    @classmethod
    def setUpClass(cls):
        if not os.access(GNU_TIME, os.X_OK):
            raise unittest.SkipTest(f"{GNU_TIME} (GNU time) not installed")
        with open(harness.sitesync_bin(), "rb") as f:
            image = f.read()
            if b"__asan_init" in image or b"__tsan_init" in image:
                raise unittest.SkipTest("sanitizer build: its memory use says nothing about sitesync's")
        super().setUpClass()

    def sync_measured(self, *args, timeout=240):
        """Runs `sitesync sync ... --json` under GNU time; returns (RunResult, peak RSS in KiB)."""
        real = harness.sitesync_bin()
        wrapper = os.path.join(self.tmp, "sitesync-timed")
        with open(wrapper, "w") as f:
            f.write(f"#!/bin/sh\nexec {GNU_TIME} -f 'SITESYNC_MAXRSS_KIB=%M' {shlex.quote(real)} \"$@\"\n")
        os.chmod(wrapper, 0o755)
        with mock.patch.object(harness, "sitesync_bin", lambda: wrapper):
            res = self.sync(*args, timeout=timeout)
        m = re.search(r"SITESYNC_MAXRSS_KIB=(\d+)\s*$", res.stderr)
        self.assertIsNotNone(m, res.describe())
        return res, int(m.group(1))

    def baseline_rss(self) -> int:
        src = self.site({"index.html": "<p>tiny</p>"}, name="tiny-site")
        res, rss = self.sync_measured(src, self.dest("baseline"))
        self.assertExit(res, 0)
        return rss

    def report(self, what, rss, base):
        sys.stderr.write(f"[{what}: peak RSS {rss / 1024:.1f} MiB, tiny-sync baseline {base / 1024:.1f} MiB, "
                         f"growth {(rss - base) / 1024:.1f} MiB] ")

    def test_peak_rss_single_put_15mib(self):
        base = self.baseline_rss()
        data = random.Random(15).randbytes(15 * MiB)
        src = self.site({"one.bin": data})
        self.proxy.reset_counts()
        res, rss = self.sync_measured(src, self.dest())
        self.report("15 MiB single PUT", rss, base)
        self.assertExit(res, 0)
        self.assertEqual((self.proxy.count("PutObject"), self.proxy.count("CreateMultipartUpload")), (1, 0))
        head = self.s3.head_object(Bucket=self.bucket, Key="one.bin")
        self.assertEqual(head["ETag"].strip('"'), hashlib.md5(data).hexdigest())
        self.assertLess(rss - base, self.SINGLE_PUT_GROWTH_KIB, f"peak RSS {rss} KiB vs {base} KiB for a tiny sync")
        self.assertLess(rss, self.SINGLE_PUT_LIMIT_KIB, f"peak RSS {rss} KiB for a 15 MiB single PUT")

    def test_peak_rss_multipart_40mib(self):
        base = self.baseline_rss()
        data = random.Random(40).randbytes(40 * MiB)
        src = self.site({"big.bin": data})
        self.proxy.reset_counts()
        res, rss = self.sync_measured(src, self.dest())
        self.report("40 MiB multipart", rss, base)
        self.assertExit(res, 0)
        self.assertEqual((self.proxy.count("CreateMultipartUpload"), self.proxy.count("UploadPart")), (1, 5))
        head = self.s3.head_object(Bucket=self.bucket, Key="big.bin")
        self.assertEqual(head["ETag"].strip('"'), multipart_etag(data))
        self.assertLess(rss - base, self.MULTIPART_GROWTH_KIB, f"peak RSS {rss} KiB vs {base} KiB for a tiny sync")
        self.assertLess(rss, self.MULTIPART_LIMIT_KIB, f"peak RSS {rss} KiB for a 40 MiB multipart upload")


@needs_sitesync
class CredentialsTest(MoreSyncCase):
    WRONG_KEY_ID = "AKIAWRONGWRONGWRONG0"
    WRONG_SECRET = "WrongDefaultSecretDoNotUse0123456789abcd"

    def write_credentials(self):
        path = os.path.join(self.tmp, "shared-credentials")
        with open(path, "w") as f:
            f.write(f"[default]\naws_access_key_id = {self.WRONG_KEY_ID}\n"
                    f"aws_secret_access_key = {self.WRONG_SECRET}\n\n"
                    f"# the key the server knows\n[deploy]\naws_access_key_id = {self.server.access_key_id}\n"
                    f"aws_secret_access_key = {self.server.secret_access_key}\n")
        return path

    def run_nocreds_env(self, args, env):
        """No AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY in the environment (server=None), fresh empty HOME."""
        args = [str(a) for a in args] + ["--endpoint", self.proxy.endpoint, "--json"]
        return harness.run_sitesync(args, env_extra=dict(env, AWS_ACCESS_KEY_ID=None, AWS_SECRET_ACCESS_KEY=None,
                                                         AWS_SESSION_TOKEN=None, AWS_PROFILE=env.get("AWS_PROFILE")))

    def test_profile_from_shared_credentials_file(self):
        spec = {"index.html": "<p>i</p>", "a.css": "a{}"}
        src = self.site(spec)
        creds = self.write_credentials()
        missing_config = os.path.join(self.tmp, "no-such-config")
        base_env = {"AWS_SHARED_CREDENTIALS_FILE": creds, "AWS_CONFIG_FILE": missing_config}

        # the default profile holds a key the server does not know: refused, nothing written
        res = self.run_nocreds_env(["sync", src, self.dest("default")], base_env)
        self.assertExit(res, 1)
        self.assertNotIn(self.WRONG_SECRET, res.stdout + res.stderr)
        self.assertEqual(self.remote(), {})

        res = self.run_nocreds_env(["sync", src, self.dest("flag"), "--profile", "deploy"], base_env)
        self.assertExit(res, 0)
        self.assertBucketHolds(harness.expected_uploads(spec), prefix="flag/", content_types=False)
        self.assertNotIn(self.server.secret_access_key, res.stdout + res.stderr)

        res = self.run_nocreds_env(["sync", src, self.dest("envvar")], dict(base_env, AWS_PROFILE="deploy"))
        self.assertExit(res, 0)
        self.assertBucketHolds(harness.expected_uploads(spec), prefix="envvar/", content_types=False)
        self.assertEqual(set(self.remote()), {p + k for p in ("flag/", "envvar/") for k in spec})

        # a profile that is in no file: a usage/config error naming it, nothing sent
        self.proxy.reset_counts()
        res = self.run_nocreds_env(["sync", src, self.dest("nosuch"), "--profile", "nosuch"], base_env)
        self.assertExit(res, 2)
        self.assertIn("nosuch", res.stderr)
        self.assertEqual(self.proxy.total(), 0)

    def test_no_credentials_anywhere_is_exit_2_with_advice(self):
        src = self.site({"index.html": "<p>i</p>"})
        empty_home = os.path.join(self.tmp, "empty-home")
        os.makedirs(empty_home)
        for name, env in (("empty HOME", {"HOME": empty_home}), ("no HOME", {"HOME": None})):
            with self.subTest(name):
                res = self.run_nocreds_env(["sync", src, self.dest()], env)
                self.assertExit(res, 2)
                self.assertRegex(res.stderr, r"AWS_ACCESS_KEY_ID|aws configure", res.describe())
                self.assertEqual(self.proxy.total(), 0, "nothing may be sent without credentials")
        self.assertEqual(os.listdir(empty_home), [], "nothing written into HOME")
        self.assertEqual(self.remote(), {})


def run_in_pty(argv, env, cwd, timeout=120.0) -> tuple[int, bytes]:
    """Runs argv with stdout and stderr on one pseudo-terminal; returns (exit code, everything it wrote)."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env, cwd=cwd,
                                close_fds=True)
    except BaseException:
        os.close(master)
        os.close(slave)
        raise
    os.close(slave)
    with harness._live_lock:
        harness._live_processes.add(proc)
    out = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while True:
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait(timeout=30)
                raise AssertionError(f"{argv[0]} did not finish within {timeout}s in a pty; output so far:\n"
                                     f"{harness.tail(out.decode('utf-8', 'replace'), 4000)!r}")
            ready, _, _ = select.select([master], [], [], 0.2)
            if not ready:
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every writer of the slave side is gone
                break
            if not data:
                break
            out += data
        rc = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        os.close(master)
        harness._stop_process(proc, grace=5)
    return rc, bytes(out)


@needs_sitesync
class TerminalOutputTest(MoreSyncCase):
    N = 300

    def make_src(self):
        rnd = random.Random(7)
        spec = {f"s{i % 6}/page-{i:03d}.html": "<p>" + "x" * rnd.randint(100, 3000) + "</p>" for i in range(self.N)}
        return self.site(spec), spec

    def test_progress_redraws_in_a_terminal(self):
        src, spec = self.make_src()
        home = os.path.join(self.tmp, "home")
        cwd = os.path.join(self.tmp, "cwd")
        os.makedirs(home)
        os.makedirs(cwd)
        argv = [harness.sitesync_bin(), "sync", src, self.dest("tty"), "--endpoint", self.proxy.endpoint,
                "--jobs", "4"]
        rc, raw = run_in_pty(argv, self.clean_env(home), cwd)
        text = raw.decode("utf-8", "replace")
        self.assertEqual(rc, 0, repr(harness.tail(text, 4000)))
        redraws = re.findall(r"\r(?:\x1b\[K)?(\d+)/(\d+) files", text)
        self.assertGreaterEqual(len(redraws), 2, f"carriage-return progress redraws expected: {text[-2000:]!r}")
        done = [int(a) for a, _b in redraws]
        self.assertEqual(done, sorted(done), "progress never goes backwards")
        self.assertEqual({int(b) for _a, b in redraws}, {self.N})
        self.assertEqual(done[-1], self.N)
        # the summary ends the output on a line of its own (the progress line was cleared first)
        lines = [ln for ln in re.split(r"\r\n|\n", text) if ln.strip()]
        last = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", lines[-1]).split("\r")[-1]
        self.assertRegex(last, rf"^{self.N} uploaded\b", repr(lines[-3:]))
        self.assertNotIn("files", last)
        self.assertEqual(len(self.remote("tty/")), self.N)

    def test_pipes_get_no_progress_and_quiet_prints_nothing(self):
        src, spec = self.make_src()
        res = self.sync(src, self.dest("pipe"), "--jobs", "4", json_out=False)
        self.assertExit(res, 0)
        self.assertIsNone(ANSI_OR_CR.search(res.stdout + res.stderr),
                          f"no CR or ANSI escape on pipes: {ANSI_OR_CR.search(res.stdout + res.stderr)}")
        self.assertRegex(res.stdout, rf"(?m)^{self.N} uploaded\b")
        self.assertEqual(len(self.remote("pipe/")), self.N)

        res = self.sync(src, self.dest("quiet"), "--jobs", "4", "-q", json_out=False)
        self.assertExit(res, 0)
        self.assertEqual(res.stdout, "")
        self.assertIsNone(ANSI_OR_CR.search(res.stderr))
        self.assertEqual(len(self.remote("quiet/")), self.N)


@needs_sitesync
class HelpAndVersionTest(unittest.TestCase):
    def run_ok(self, *args):
        res = harness.run_sitesync(list(args), timeout=30)
        self.assertEqual(res.returncode, 0, res.describe())
        return res

    def test_version(self):
        res = self.run_ok("--version")
        self.assertRegex(res.stdout, r"^sitesync \d+\.\d+\.\d+\S*\s*$")

    def test_help_names_commands_delete_and_exit_codes(self):
        out = self.run_ok("--help").stdout
        for word in ("sync", "plan", "--delete"):
            self.assertIn(word, out)
        self.assertRegex(out, r"(?i)exit codes?")
        for code in ("0", "1", "2", "3"):
            self.assertRegex(out, rf"\b{code}\b")

    def test_help_names_max_deletes(self):
        self.assertIn("--max-deletes", self.run_ok("--help").stdout)

    def test_sync_help_lists_filters_and_json(self):
        out = self.run_ok("sync", "--help").stdout
        for opt in ("--exclude", "--include", "--json", "--delete", "--max-deletes", "--compare", "--jobs"):
            self.assertIn(opt, out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
