"""Integration tests of issue 15's CPU point: a single PutObject's MD5 for the local record is taken from the
answer's ETag where S3 documents the ETag as the body's MD5 (no encryption, SSE-S3), and computed while sending
where it is not (SSE-KMS: a bucket's default encryption, or an `sse: aws:kms` headers rule). Either way the record
is right: a touch-only rebuild (every mtime changed, no content) uploads nothing, and a same-size edit is still
published. The real binary against moto_server with SigV4 checking on, through the FaultProxy; the bucket checked
with boto3.

With a KMS bucket the proxy also forges the ETags (FaultProxy.forge_etags, which adds x-amz-server-side-encryption:
aws:kms as real KMS answers do): moto keeps MD5 ETags even for KMS objects, so without the forgery a record made
from the ETag would pass by luck.

    SITESYNC_BIN=$PWD/build/cli/sitesync python3 tests/integration/test_cpu.py -v
"""

from __future__ import annotations

import os
import sys
import textwrap
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from test_sync import SyncCase  # noqa: E402

BIN_OK, BIN_WHY = harness.sitesync_available()
needs_sitesync = unittest.skipUnless(BIN_OK, BIN_WHY)


def site_spec() -> dict:
    """Pages and assets of distinct sizes (one above the 64 KiB in-memory body size), each with a version string."""
    spec = {"index.html": "<h1>home</h1><p>build 09</p>", "big/app.js": "// v09\n" + "x" * (80 * 1024)}
    for i in range(1, 14):
        ext = ("html", "css", "js", "txt")[i % 4]
        spec[f"d{i % 3}/f{i:02d}.{ext}"] = f"file {i:02d} " + "y" * i + " v09"
    return spec


@needs_sitesync
class RecordFromEtagTest(SyncCase):
    def setUp(self):
        super().setUp()
        self.cache = os.path.join(self.tmp, "cache")
        self.proxy.forge_etags = False
        self.addCleanup(setattr, self.proxy, "forge_etags", False)

    def run_sync(self, src, *extra):
        _res, events = self.ok_sync(src, self.dest(), *extra, env={"XDG_CACHE_HOME": self.cache})
        return harness.summary_of(events)

    def kms_key(self) -> str:
        """A KMS key made on the same moto server (boto3), for SSE-KMS objects."""
        import boto3  # noqa: PLC0415 (installed with the harness)

        kms = boto3.client("kms", endpoint_url=self.server.endpoint, region_name=harness.REGION,
                           aws_access_key_id=self.server.access_key_id,
                           aws_secret_access_key=self.server.secret_access_key)
        return kms.create_key(Description="sitesync test_cpu")["KeyMetadata"]["KeyId"]

    def check_touch_then_edit(self, src, spec, *extra, encryption=None):
        s = self.run_sync(src, *extra)
        self.assertEqual((s["uploaded"], s["failed"]), (len(spec), 0))
        self.assertBucketHolds({k: v.encode() for k, v in spec.items()})
        if encryption:
            for key in spec:
                head = self.s3.head_object(Bucket=self.bucket, Key=key)
                self.assertEqual(head.get("ServerSideEncryption"), encryption, key)
        # A touch-only rebuild: every file read once (its stat changed), none sent, under both compares.
        later = time.time() + 5
        for rel in spec:
            os.utime(os.path.join(src, rel), (later, later))
        self.proxy.reset_counts()
        s = self.run_sync(src, *extra)
        self.assertEqual((s["uploaded"], s["hashed"]), (0, len(spec)), "every file read once, none sent")
        self.assertEqual(self.proxy.count("PutObject"), 0)
        s = self.run_sync(src, "--compare", "checksum", *extra)
        self.assertEqual((s["uploaded"], s["hashed"]), (0, 0), "the new stats were recorded")
        # A same-size edit is published, by the recorded MD5.
        edited = spec["d1/f01.css"].replace("09", "10")
        with open(os.path.join(src, "d1/f01.css"), "w", encoding="utf-8") as f:
            f.write(edited)
        self.proxy.reset_counts()
        s = self.run_sync(src, *extra)
        self.assertEqual(s["uploaded"], 1)
        self.assertEqual(self.proxy.count("PutObject"), 1)
        self.assertEqual(harness.get_bytes(self.s3, self.bucket, "d1/f01.css"), edited.encode())

    def test_plain_bucket_touch_only_rebuild_uploads_nothing(self):
        spec = site_spec()
        self.check_touch_then_edit(self.site(spec), spec)

    def test_kms_default_encrypted_bucket_touch_only_rebuild_uploads_nothing(self):
        key_id = self.kms_key()
        self.s3.put_bucket_encryption(Bucket=self.bucket, ServerSideEncryptionConfiguration={"Rules": [{
            "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_id}}]})
        self.proxy.forge_etags = True
        spec = site_spec()
        self.check_touch_then_edit(self.site(spec), spec, encryption="aws:kms")

    def test_sse_kms_rule_touch_only_rebuild_uploads_nothing(self):
        key_id = self.kms_key()
        self.proxy.forge_etags = True
        spec = site_spec()
        src = self.site(spec)
        cfg = os.path.join(self.tmp, "sitesync.yaml")
        with open(cfg, "w", encoding="utf-8") as f:
            f.write(textwrap.dedent(f"""\
                headers:
                  - match: "*"
                    sse: aws:kms
                    kms_key_id: {key_id}
                """))
        self.check_touch_then_edit(src, spec, "--config", cfg, encryption="aws:kms")


if __name__ == "__main__":
    unittest.main()
