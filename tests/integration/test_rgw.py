"""The real sitesync binary against Ceph's RADOS Gateway (Debian 12's radosgw, Ceph 16.2), a second S3 server
that no one here wrote: its SigV4 canonicalisation is its own (moto's is patched in this repository), it checks
Content-MD5 (400 BadDigest), and it takes x-amz-checksum-crc32 without checking or echoing it.

One single-host cluster (tests/integration/rgw.py) for the whole module: started by setUpModule (~20 s), stopped by
tearDownModule. If it cannot start, every test here fails with the daemons' log tails: the group is never skipped
for it. Outcomes are checked with boto3 straight against the gateway, never with sitesync. A FaultProxy
(harness.py) sits between sitesync and the gateway where a test needs to damage or count requests.

    SITESYNC_BIN=$PWD/build/cli/sitesync python3 tests/integration/test_rgw.py -v
"""

from __future__ import annotations

import base64
import hashlib
import os
import random
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
import rgw  # noqa: E402

BIN_OK, BIN_WHY = harness.sitesync_available()

MiB = 1024 * 1024
CLUSTER: rgw.RgwCluster | None = None
PROXY: harness.FaultProxy | None = None


def setUpModule():  # noqa: N802  (unittest's name)
    global CLUSTER, PROXY
    if not BIN_OK:
        return  # every test is skipped for the missing binary (below); no cluster to start for them
    cluster = rgw.RgwCluster()
    cluster.start()  # raises HarnessError with the daemons' log tails: the module's tests then error, loudly
    CLUSTER = cluster
    sys.stderr.write(f"RGW cluster answered at {cluster.endpoint} after {cluster.start_seconds:.1f}s\n")
    PROXY = harness.FaultProxy(cluster.endpoint).start()


def tearDownModule():  # noqa: N802
    global CLUSTER, PROXY
    if PROXY is not None:
        PROXY.stop()
        PROXY = None
    if CLUSTER is not None:
        CLUSTER.cleanup()
        CLUSTER = None


def events_of(events, kind):
    return [e for e in events if e.get("event") == kind]


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def md5_b64(data: bytes) -> str:
    """Content-MD5: the MD5 digest, base64."""
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def multipart_etag(data: bytes, part_size: int = 8 * MiB) -> str:
    parts = [hashlib.md5(data[i:i + part_size]).digest() for i in range(0, len(data), part_size)]
    return f"{hashlib.md5(b''.join(parts)).hexdigest()}-{len(parts)}"


def pseudo_random_bytes(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


@unittest.skipUnless(BIN_OK, BIN_WHY)
class RgwCase(unittest.TestCase):
    """One bucket and temp dir per test; sitesync talks to the gateway itself unless `via_proxy`."""

    def setUp(self):
        harness.last_run = None
        self.cluster = CLUSTER
        self.proxy = PROXY
        self.proxy.clear_faults()
        self.proxy.reset_counts()
        self.proxy.record_bodies = False
        self.s3 = self.cluster.boto3_s3()
        self._tmp = tempfile.TemporaryDirectory(prefix="sitesync-rgw-test-")
        self.addCleanup(self._tmp.cleanup)
        self.tmp = self._tmp.name
        self.bucket = harness.new_bucket_name(self._testMethodName[5:].replace("_", "-"))
        self.s3.create_bucket(Bucket=self.bucket)

    def tearDown(self):
        if harness.test_failed(self):
            if harness.last_run is not None:
                sys.stderr.write(f"\n===== last sitesync run ({self.id()}) =====\n{harness.last_run.describe()}\n")
            sys.stderr.write(f"===== proxy log =====\n{harness.tail(self.proxy.log_text(), 6000)}\n")
            sys.stderr.write(f"===== RGW logs =====\n{self.cluster.log_tails(30)}\n")

    # -- helpers -------------------------------------------------------------------------------------------------
    def site(self, spec, name="site"):
        root = os.path.join(self.tmp, name)
        harness.make_site(root, spec)
        return root

    def dest(self, prefix=""):
        return f"s3://{self.bucket}" + (f"/{prefix}" if prefix else "")

    def sync(self, source, dest, *extra, via_proxy=False, env=None, timeout=240):
        endpoint = self.proxy.endpoint if via_proxy else self.cluster.endpoint
        args = ["sync", source, dest, "--endpoint", endpoint, "--json", *extra]
        return harness.run_sitesync(args, env_extra=env, timeout=timeout, server=self.cluster)

    def ok_sync(self, source, dest, *extra, **kw):
        res = self.sync(source, dest, *extra, **kw)
        self.assertEqual(res.returncode, 0, f"expected exit 0\n{res.describe()}")
        return harness.parse_json_lines(res.stdout)

    def stored(self, key) -> bytes:
        return harness.get_bytes(self.s3, self.bucket, key)

    def keys(self, prefix="") -> set:
        out = set()
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            out.update(o["Key"] for o in page.get("Contents", []))
        return out

    def assertHolds(self, files: dict, prefix=""):
        """The bucket under `prefix` holds exactly `files` ({rel: bytes}), byte for byte, with their types."""
        self.assertEqual(self.keys(prefix), {prefix + k for k in files})
        for rel, data in files.items():
            head = self.s3.head_object(Bucket=self.bucket, Key=prefix + rel)
            self.assertEqual(head["ContentLength"], len(data), rel)
            self.assertEqual(head["ContentType"], harness.expected_content_type(rel), rel)
            self.assertEqual(md5_hex(self.stored(prefix + rel)), md5_hex(data), rel)


class RgwSyncTest(RgwCase):
    SPECIAL = {
        "sp ace.html": "<p>space</p>",
        "dir with space/index.html": "<p>dir space</p>",
        "plus+sign.txt": "plus",
        "c++/a+b.css": "a+b{}",
        "percent%20literal.txt": "percent",
        "100%.txt": "hundred",
        "hash#tag.js": "hash",
        "amp&and=eq.json": "{}",
        "tilde~.svg": "<svg/>",
        "quote'paren(1)!.txt": "q",
        "semi;colon:at@comma,dollar$.txt": "s",
        "brackets[1]{2}.txt": "b",
        "star*caret^pipe|.txt": "*",
        "lt<gt>dq\"back`tick.txt": "<>",
        "back\\slash.txt": "\\",
        "café/é.txt": "é",
        "日本/語.html": "<p>日本語</p>",
        "emoji-😀/🎉.png": b"\x89PNG emoji",
        "a b+c%d#e&f=g~h/ü€.txt": "mixed",
    }

    def test_site_syncs_and_a_second_run_changes_nothing(self):
        spec = harness.generated_site(40)
        src = self.site(spec)
        want = harness.expected_uploads(spec)
        events = self.ok_sync(src, self.dest())
        self.assertEqual({e["key"] for e in events_of(events, "upload")}, set(want))
        self.assertHolds(want)
        again = harness.summary_of(self.ok_sync(src, self.dest(), "--delete"))
        self.assertEqual((again["uploaded"], again["deleted"], again["unchanged"]), (0, 0, len(want)))

    def test_wrong_secret_is_refused_by_the_gateway(self):
        # The gateway checks every signature: the special keys below pass only because sitesync signs as RGW
        # canonicalises, not because nothing is checked.
        src = self.site({"index.html": "<p>x</p>"})
        res = self.sync(src, self.dest(), env={"AWS_SECRET_ACCESS_KEY": "not-the-secret-" + "x" * 25})
        self.assertNotEqual(res.returncode, 0, res.describe())
        self.assertIn("SignatureDoesNotMatch", res.stdout + res.stderr)
        self.assertEqual(self.keys(), set())

    def test_special_keys_round_trip_and_delete(self):
        src = self.site(self.SPECIAL)
        want = harness.expected_uploads(self.SPECIAL)
        events = self.ok_sync(src, self.dest())
        self.assertEqual({e["key"] for e in events_of(events, "upload")}, set(want))
        self.assertHolds(want)
        # RGW's listing (encoding-type=url) decodes to exactly the local names: nothing to do the second time
        again = harness.summary_of(self.ok_sync(src, self.dest(), "--delete", "--compare", "checksum"))
        self.assertEqual((again["uploaded"], again["deleted"], again["unchanged"]), (0, 0, len(want)))
        gone = {"a b+c%d#e&f=g~h/ü€.txt", "plus+sign.txt", "lt<gt>dq\"back`tick.txt"}
        for rel in gone:
            os.remove(os.path.join(src, rel))
        events = self.ok_sync(src, self.dest(), "--delete")
        self.assertEqual({e["key"] for e in events_of(events, "delete")}, gone)
        self.assertEqual(self.keys(), set(want) - gone)

    def test_multipart_upload_of_40_mib(self):
        big = pseudo_random_bytes(40 * MiB, seed=40)
        src = self.site({"video/big.bin": big, "index.html": "<p>big</p>"})
        events = self.ok_sync(src, self.dest(), timeout=300)
        self.assertEqual(sorted(e["key"] for e in events_of(events, "upload")), ["index.html", "video/big.bin"])
        head = self.s3.head_object(Bucket=self.bucket, Key="video/big.bin")
        self.assertEqual(head["ContentLength"], len(big))
        self.assertEqual(head["ETag"].strip('"'), multipart_etag(big), "five parts of 8 MiB")
        self.assertEqual(md5_hex(self.stored("video/big.bin")), md5_hex(big))
        # the multipart ETag is recomputed locally: --compare checksum finds nothing to do
        again = harness.summary_of(self.ok_sync(src, self.dest(), "--compare", "checksum", timeout=300))
        self.assertEqual((again["uploaded"], again["unchanged"]), (0, 2))
        self.assertEqual(self.s3.list_multipart_uploads(Bucket=self.bucket).get("Uploads", []), [],
                         "no upload left open")

    def test_more_than_1000_objects_pages_through_the_listing(self):
        spec = {f"p{i // 100:02d}/n{i:04d}.txt": f"object {i}\n" for i in range(1100)}
        src = self.site(spec)
        events = self.ok_sync(src, self.dest(), timeout=400)
        self.assertEqual(len(events_of(events, "upload")), 1100)
        self.assertEqual(self.keys(), set(spec))
        self.assertEqual(self.stored("p10/n1099.txt"), b"object 1099\n")
        # the second run must list all 1,100 (two pages) to find nothing to do; deletes come from page two too
        for i in (5, 1050, 1099):
            os.remove(os.path.join(src, f"p{i // 100:02d}/n{i:04d}.txt"))
        self.proxy.reset_counts()
        events = self.ok_sync(src, self.dest(), "--delete", via_proxy=True, timeout=400)
        summary = harness.summary_of(events)
        self.assertEqual((summary["uploaded"], summary["deleted"], summary["unchanged"]), (0, 3, 1097))
        self.assertGreaterEqual(self.proxy.count("ListObjectsV2", "GET"), 2, "two pages at least")
        self.assertEqual(len(self.keys()), 1097)

    def test_dest_prefix_keeps_to_its_folder(self):
        self.s3.put_object(Bucket=self.bucket, Key="other/keep.txt", Body=b"not ours")
        self.s3.put_object(Bucket=self.bucket, Key="site-old/keep.txt", Body=b"a sibling, not under site/")
        self.s3.put_object(Bucket=self.bucket, Key="site/stale.txt", Body=b"ours, stale")
        spec = {"index.html": "<p>i</p>", "css/a.css": "a{}"}
        src = self.site(spec)
        events = self.ok_sync(src, self.dest("site"), "--delete")
        self.assertEqual({e["key"] for e in events_of(events, "upload")}, set(spec))
        self.assertEqual({e["key"] for e in events_of(events, "delete")}, {"stale.txt"})
        self.assertHolds(harness.expected_uploads(spec), prefix="site/")
        self.assertEqual(self.stored("other/keep.txt"), b"not ours")
        self.assertEqual(self.stored("site-old/keep.txt"), b"a sibling, not under site/")

    def test_delete_only_when_asked(self):
        spec = {"index.html": "<p>i</p>", "old/a.html": "<p>a</p>", "old/b.css": "b{}"}
        src = self.site(spec)
        self.ok_sync(src, self.dest())
        os.remove(os.path.join(src, "old/a.html"))
        os.remove(os.path.join(src, "old/b.css"))
        summary = harness.summary_of(self.ok_sync(src, self.dest()))
        self.assertEqual(summary["deleted"], 0)
        self.assertEqual(self.keys(), set(spec))
        events = self.ok_sync(src, self.dest(), "--delete")
        self.assertEqual({e["key"] for e in events_of(events, "delete")}, {"old/a.html", "old/b.css"})
        self.assertEqual(self.keys(), {"index.html"})

    def test_compare_size_misses_a_same_size_edit_and_checksum_catches_it(self):
        src = self.site({"index.html": "<p>version A</p>", "app.js": "let a = 1;\n"})
        self.ok_sync(src, self.dest())
        harness.make_site(src, {"app.js": "let b = 2;\n"})  # same size, other bytes
        summary = harness.summary_of(self.ok_sync(src, self.dest(), "--compare", "size"))
        self.assertEqual(summary["uploaded"], 0)
        self.assertEqual(self.stored("app.js"), b"let a = 1;\n")
        events = self.ok_sync(src, self.dest(), "--compare", "checksum")
        self.assertEqual([e["key"] for e in events_of(events, "upload")], ["app.js"])
        self.assertEqual(self.stored("app.js"), b"let b = 2;\n")


class RgwIntegrityTest(RgwCase):
    """A request body damaged in transit (FaultProxy action "corrupt": one byte flipped, headers untouched) is
    refused or repaired within the same run, and never left stored by a run that exits 0."""

    def corrupted_run(self, files: dict, op: str, count: int, timeout=240):
        src = self.site(files)
        self.proxy.record_bodies = True
        self.proxy.inject(op=op, method="PUT", action="corrupt", count=count)
        res = self.sync(src, self.dest(), via_proxy=True, timeout=timeout)
        self.assertEqual(self.proxy.corrupted, count, f"the proxy damaged {count} bodies\n{self.proxy.log_text()}")
        return res

    def assertStoredAsLocal(self, res, files: dict):
        """Exit 0 and every object byte for byte the local file, or a failing exit: never 0 with a bad object."""
        if res.returncode == 0:
            for rel, data in files.items():
                self.assertEqual(md5_hex(self.stored(rel)), md5_hex(data),
                                 f"{rel} left stored damaged by a run that exited 0\n{res.describe()}")
        self.assertEqual(res.returncode, 0, f"the damage was repairable within the run\n{res.describe()}")

    def test_put_body_flipped_on_the_first_put_is_refused_by_its_content_md5(self):
        # RGW takes x-amz-checksum-crc32 and ignores it; the first PUT of a run goes out before any answer shows
        # that, and carries Content-MD5 as well, which RGW checks: the damaged body is refused, never stored.
        page = pseudo_random_bytes(200 * 1024, seed=7)
        files = {"page.bin": page}
        res = self.corrupted_run(files, "PutObject", 1)
        self.assertStoredAsLocal(res, files)
        puts = [r for r in self.proxy.recorded if r.op == "PutObject"]
        self.assertEqual(len(puts), 2, "the damaged PUT, then one resend")
        self.assertEqual(puts[0].header("Content-MD5"), md5_b64(page), "the first PUT carried the body's MD5")
        self.assertIsNotNone(puts[0].header("x-amz-checksum-crc32"), "and the CRC-32")
        # A 400 BadDigest says nothing about the CRC-32, so the resend still carries it; had RGW stored the damaged
        # body (200, no echo), the run would have dropped it for the resend.
        self.assertIsNotNone(puts[1].header("x-amz-checksum-crc32"), "the first PUT was refused, not stored")
        self.assertEqual(puts[1].header("Content-MD5"), md5_b64(page))
        self.assertEqual(md5_hex(self.stored("page.bin")), md5_hex(page))

    def test_put_body_flipped_again_under_content_md5_is_refused_then_sent_again(self):
        files = {"a.bin": pseudo_random_bytes(200 * 1024, seed=8), "b.bin": pseudo_random_bytes(150 * 1024, seed=9)}
        res = self.corrupted_run(files, "PutObject", 3)
        self.assertStoredAsLocal(res, files)
        self.assertEqual(harness.summary_of(harness.parse_json_lines(res.stdout))["uploaded"], 2)

    def test_put_body_flipped_on_every_attempt_leaves_no_damaged_copy_and_the_next_run_repairs(self):
        page = pseudo_random_bytes(200 * 1024, seed=11)
        files = {"page.bin": page}
        # Every attempt carries Content-MD5: all three are refused (400 BadDigest), none is stored.
        res = self.corrupted_run(files, "PutObject", 3)
        self.assertEqual(res.returncode, 1, f"the file failed: exit 1\n{res.describe()}")
        self.assertIn("BadDigest", res.stderr + res.stdout)
        self.assertIn("sent 3 times", res.stderr + res.stdout)
        self.assertNotIn("page.bin", self.keys(), "no damaged copy was stored for a size-only run to keep")
        # The next run, with nothing in the way, uploads it again (the key is missing) and stores the right bytes.
        self.ok_sync(os.path.join(self.tmp, "site"), self.dest())
        self.assertHolds(files)

    def test_multipart_part_flipped_is_refused_and_sent_again(self):
        big = pseudo_random_bytes(17 * MiB, seed=17)
        files = {"big.bin": big}
        res = self.corrupted_run(files, "UploadPart", 1, timeout=300)
        self.assertStoredAsLocal(res, files)
        self.assertEqual(self.proxy.count("UploadPart", "PUT"), 4, "three parts, one of them twice")
        head = self.s3.head_object(Bucket=self.bucket, Key="big.bin")
        self.assertEqual(head["ETag"].strip('"'), multipart_etag(big))


if __name__ == "__main__":
    unittest.main(verbosity=2)
