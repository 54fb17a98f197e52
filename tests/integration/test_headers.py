"""Integration tests of issue 14's headers (points 2 and 3): every header per glob, CopyObject when only the
headers change, --force, --refresh-headers. The real binary against moto_server with SigV4 checking on
(tests/integration/harness.py); every outcome is read back with boto3 (head_object, get_object_acl), and requests
are counted at the FaultProxy (a PUT with x-amz-copy-source is a CopyObject there).

    SITESYNC_BIN=$PWD/build/cli/sitesync python3 -m unittest -v tests/integration/test_headers.py

What moto 5.2.1 does with these headers (checked here): it stores x-amz-server-side-encryption aws:kms with any
kms key id as given (no KMS key needs to exist; HEAD echoes the id verbatim, where S3 answers the key's ARN), and
keeps every storage class as sent (HEAD leaves out STANDARD); it refuses to copy a GLACIER or DEEP_ARCHIVE object
(ObjectNotInActiveTierError, S3's InvalidObjectState), which sitesync answers with a PutObject.
"""

from __future__ import annotations

import os
import sys
import tempfile
import textwrap
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402

BIN_OK, BIN_WHY = harness.sitesync_available()
needs_sitesync = unittest.skipUnless(BIN_OK, BIN_WHY)

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"

SITE = {
    "index.html": "<p>home</p>",
    "about.html": "<p>about</p>",
    "css/site.css": "body{}",
    "css/print.css": "p{color:black}",
    "docs/guide.pdf": b"%PDF-1.4 guide",
    "img/logo.png": b"\x89PNG logo",
    "kms/secret.txt": "secret",
    "archive/old.txt": "old",
    "old.html": "",
}

# Every field of a headers rule, spread over the site; the last matching rule wins per field.
EVERY_FIELD = """\
headers:
  - match: "*"
    cache_control: "public, max-age=300"
  - match: "*.css"
    cache_control: "public, max-age=31536000, immutable"
    content_encoding: identity
  - match: "docs/*.pdf"
    content_disposition: 'attachment; filename="guide.pdf"'
    content_language: de-CH
    metadata:
      Author: Docs Team
      build-id: 42
    storage_class: STANDARD_IA
    acl: public-read
    sse: AES256
  - match: "img/*"
    storage_class: INTELLIGENT_TIERING
    acl: public-read
  - match: "kms/*"
    sse: aws:kms
    kms_key_id: KEY_ID
  - match: "archive/*"
    storage_class: GLACIER_IR
  - match: "old.html"
    website_redirect: /about.html
"""


class HeadersCase(unittest.TestCase):
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
        self._tmp = tempfile.TemporaryDirectory(prefix="sitesync-headers-")
        self.addCleanup(self._tmp.cleanup)
        self.tmp = self._tmp.name
        # The record of what was published lives here for the whole test (run_sitesync gives every run a fresh
        # HOME otherwise: no record).
        self.cache = os.path.join(self.tmp, "cache")
        self.bucket = harness.new_bucket_name(self._testMethodName[5:])
        self.s3.create_bucket(Bucket=self.bucket)

    def tearDown(self):
        if harness.test_failed(self):
            if harness.last_run is not None:
                sys.stderr.write(f"\n===== last sitesync run ({self.id()}) =====\n{harness.last_run.describe()}\n")
            sys.stderr.write(f"===== proxy log =====\n{harness.tail(self.proxy.log_text(), 6000)}\n")

    # -- helpers -------------------------------------------------------------------------------------------------
    def site(self, spec=None):
        root = os.path.join(self.tmp, "site")
        harness.make_site(root, spec or SITE)
        return root

    def config(self, text):
        path = os.path.join(self.tmp, "sitesync.yaml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(textwrap.dedent(text))
        return path

    def sync(self, src, cfg, *extra, record=True):
        env = {"XDG_CACHE_HOME": self.cache} if record else None
        res = harness.run_sitesync(["sync", src, f"s3://{self.bucket}", "--endpoint", self.proxy.endpoint,
                                    "--config", cfg, "--json", *extra], env_extra=env, server=self.server)
        self.assertEqual(res.returncode, 0, res.describe())
        return harness.summary_of(harness.parse_json_lines(res.stdout))

    def head(self, key):
        return self.s3.head_object(Bucket=self.bucket, Key=key)

    def ops(self, op):
        return self.proxy.count(op)

    def cache_controls(self):
        keys = harness.list_bucket(self.s3, self.bucket, head=False)
        return {key: self.head(key).get("CacheControl") for key in keys}


@needs_sitesync
class EveryFieldTest(HeadersCase):
    def test_every_header_field_reaches_the_object(self):
        import boto3

        kms = boto3.client("kms", endpoint_url=self.server.endpoint, region_name=harness.REGION,
                           aws_access_key_id=self.server.access_key_id,
                           aws_secret_access_key=self.server.secret_access_key)
        key_id = kms.create_key(Description="sitesync test")["KeyMetadata"]["KeyId"]
        src = self.site()
        cfg = self.config(EVERY_FIELD.replace("KEY_ID", key_id))
        summary = self.sync(src, cfg, record=False)
        self.assertEqual(summary["uploaded"], len(SITE))

        css = self.head("css/site.css")
        self.assertEqual(css["CacheControl"], "public, max-age=31536000, immutable")
        self.assertEqual(css["ContentEncoding"], "identity")
        self.assertEqual(css["ContentType"], harness.expected_content_type("css/site.css"))
        self.assertNotIn("StorageClass", css)  # STANDARD is not echoed

        pdf = self.head("docs/guide.pdf")
        self.assertEqual(pdf["CacheControl"], "public, max-age=300")
        self.assertEqual(pdf["ContentDisposition"], 'attachment; filename="guide.pdf"')
        self.assertEqual(pdf["ContentLanguage"], "de-CH")
        self.assertEqual(pdf["Metadata"], {"author": "Docs Team", "build-id": "42"})
        self.assertEqual(pdf["StorageClass"], "STANDARD_IA")
        self.assertEqual(pdf["ServerSideEncryption"], "AES256")
        self.assertNotIn("ContentEncoding", pdf)

        self.assertEqual(self.head("img/logo.png")["StorageClass"], "INTELLIGENT_TIERING")
        self.assertEqual(self.head("archive/old.txt")["StorageClass"], "GLACIER_IR")
        secret = self.head("kms/secret.txt")
        self.assertEqual(secret["ServerSideEncryption"], "aws:kms")
        self.assertEqual(secret["SSEKMSKeyId"], key_id)  # moto echoes the id as sent (S3: the key's ARN)
        self.assertEqual(self.head("old.html")["WebsiteRedirectLocation"], "/about.html")
        self.assertNotIn("WebsiteRedirectLocation", self.head("about.html"))

        def public_read(key):
            grants = self.s3.get_object_acl(Bucket=self.bucket, Key=key)["Grants"]
            return any(g["Grantee"].get("URI") == ALL_USERS and g["Permission"] == "READ" for g in grants)

        self.assertTrue(public_read("docs/guide.pdf"))
        self.assertTrue(public_read("img/logo.png"))
        self.assertFalse(public_read("index.html"))

        # Nothing changed, no record: a second run changes nothing (size-only), and with --refresh-headers every
        # object is HEADed and found as the config says: still no write.
        self.proxy.reset_counts()
        self.sync(src, cfg, "--refresh-headers", record=False)
        self.assertEqual(self.ops("HeadObject"), len(SITE), self.proxy.counts())
        self.assertEqual(self.ops("CopyObject") + self.ops("PutObject"), 0, self.proxy.counts())

    def test_a_bad_value_is_a_config_error_that_names_the_rule(self):
        src = self.site({"index.html": "x"})
        cfg = self.config("""\
            headers:
              - match: "*"
                cache_control: "max-age=60"
              - match: "*.html"
                storage_class: standard
            """)
        res = harness.run_sitesync(["sync", src, f"s3://{self.bucket}", "--endpoint", self.proxy.endpoint,
                                    "--config", cfg], server=self.server)
        self.assertEqual(res.returncode, 2, res.describe())
        self.assertIn("sitesync.yaml:5: headers rule with match '*.html' (line 4): 'storage_class' is 'standard'; "
                      "use one of STANDARD, REDUCED_REDUNDANCY, STANDARD_IA", res.stderr)
        self.assertEqual(harness.list_bucket(self.s3, self.bucket, head=False), {}, "nothing changed")


@needs_sitesync
class RefreshHeadersTest(HeadersCase):
    RULES = """\
        headers:
          - match: "*"
            cache_control: "public, max-age=300"
          - match: "*.css"
            cache_control: "public, max-age=31536000, immutable"
        """

    def test_refresh_headers_without_a_record_fixes_only_the_object_that_differs(self):
        src = self.site()
        cfg = self.config(self.RULES)
        self.sync(src, cfg, record=False)
        # Another tool changed one object's Cache-Control (and left its body).
        self.s3.copy_object(Bucket=self.bucket, Key="about.html",
                            CopySource={"Bucket": self.bucket, "Key": "about.html"}, MetadataDirective="REPLACE",
                            CacheControl="no-store", ContentType="text/html")
        expected = {key: ("public, max-age=31536000, immutable" if key.endswith(".css") else "public, max-age=300")
                    for key in SITE}
        # Without a record and without --refresh-headers: size-only, nothing sent.
        self.proxy.reset_counts()
        self.sync(src, cfg, record=False)
        self.assertEqual(self.ops("HeadObject") + self.ops("CopyObject") + self.ops("PutObject"), 0)
        self.assertEqual(self.head("about.html")["CacheControl"], "no-store")
        # --refresh-headers: every object HEADed, exactly the one that differs copied onto itself, no body sent.
        self.proxy.reset_counts()
        summary = self.sync(src, cfg, "--refresh-headers", record=False)
        self.assertEqual(self.ops("HeadObject"), len(SITE), self.proxy.counts())
        self.assertEqual(self.ops("CopyObject"), 1, self.proxy.counts())
        self.assertEqual(self.ops("PutObject"), 0, self.proxy.counts())
        self.assertEqual(summary["uploaded"], 1, summary)
        self.assertEqual(self.cache_controls(), expected)
        self.assertEqual(self.head("about.html")["ContentType"], "text/html; charset=utf-8")



@needs_sitesync
class RuleChangeTest(HeadersCase):
    def rules(self, css_cache_control):
        return self.config(f"""\
            headers:
              - match: "*"
                cache_control: "public, max-age=300"
              - match: "css/*.css"
                cache_control: "{css_cache_control}"
            """)

    def writes(self):
        return {op: self.ops(op) for op in ("PutObject", "CopyObject", "CreateMultipartUpload", "DeleteObjects")
                if self.ops(op)}

    def test_a_changed_cache_control_rule_copies_exactly_the_matching_objects_and_force_uploads_all(self):
        src = self.site()
        summary = self.sync(src, self.rules("public, max-age=31536000, immutable"))
        self.assertEqual(summary["uploaded"], len(SITE))
        bodies = {key: harness.get_bytes(self.s3, self.bucket, key) for key in SITE}
        etags = {key: self.head(key)["ETag"] for key in SITE}
        # Same config, same files: nothing sent (the record knows the headers each object was stored with).
        self.proxy.reset_counts()
        self.sync(src, self.rules("public, max-age=31536000, immutable"))
        self.assertEqual(self.writes(), {})

        # A new Cache-Control for css/*.css: exactly those objects are copied onto themselves, no body sent.
        self.proxy.reset_counts()
        summary = self.sync(src, self.rules("public, max-age=600"))
        self.assertEqual(self.writes(), {"CopyObject": 2}, self.proxy.counts())
        self.assertEqual(self.ops("HeadObject"), 0)
        self.assertEqual(summary["uploaded"], 2, summary)
        self.assertEqual(summary["headers_updated"], 2, summary)
        self.assertEqual(summary["bytes_uploaded"], 0, summary)
        expected = {key: "public, max-age=600" if key.startswith("css/") else "public, max-age=300" for key in SITE}
        self.assertEqual(self.cache_controls(), expected)
        self.assertEqual({key: harness.get_bytes(self.s3, self.bucket, key) for key in SITE}, bodies)
        self.assertEqual({key: self.head(key)["ETag"] for key in SITE}, etags)
        self.assertEqual(self.head("css/site.css")["ContentType"], harness.expected_content_type("css/site.css"))
        # Stable afterwards.
        self.proxy.reset_counts()
        self.sync(src, self.rules("public, max-age=600"))
        self.assertEqual(self.writes(), {})

        # --force: every file uploaded again (PutObject), none copied.
        self.proxy.reset_counts()
        summary = self.sync(src, self.rules("public, max-age=600"), "--force")
        self.assertEqual(self.writes(), {"PutObject": len(SITE)}, self.proxy.counts())
        self.assertEqual(summary["uploaded"], len(SITE))
        self.assertEqual(self.cache_controls(), expected)


if __name__ == "__main__":
    unittest.main()
