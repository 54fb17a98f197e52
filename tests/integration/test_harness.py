"""Self-test of the integration harness (needs moto + boto3, not sitesync).

    python3 -m unittest -v tests/integration/test_harness.py      (from the repository root)
"""

from __future__ import annotations

import datetime
import hashlib
import http.client
import os
import sys
import time
import unittest
from unittest import mock
from urllib.parse import quote

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
import moto_server_fixed as msf  # noqa: E402

try:
    import boto3  # noqa: F401
    import botocore
    import botocore.auth
    import botocore.exceptions
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    from botocore.exceptions import ClientError
    import requests
except ImportError as e:  # pragma: no cover
    raise unittest.SkipTest(f"boto3/moto not importable: {e}")

SPECIAL_KEYS = [
    "a b/c+d%e#f&g=h~i/ü€.txt",
    "a//b",
    "x//y/z.html",
    "plain/index.html",
    "sp ace.txt",
    "plus+sign.css",
    "percent%41.txt",
    "hash#tag.js",
    "amp&and=eq.json",
    "tilde~.svg",
    "at@dollar$comma,semi;bang!quote'paren().txt",
    "brackets[]star*caret^pipe|braces{}.txt",
    "back\\slash`tick<lt>gt\"dq:colon.txt",
    "é/ü/日本/😀.html",
    "Ünïcödé Nâmé (1).PNG",
    "question?mark.txt",
    "trailing-slash-dir/",
    "dot/./seg/../x",
]


def _error_code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def _status(exc: ClientError) -> int:
    return exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)


class CanonicalUriTest(unittest.TestCase):
    """The canonicalisation used by the moto patch, without a server."""

    def test_botocore_wire_paths_are_fixed_points(self):
        # botocore puts quote(key, safe='/~') on the wire and signs exactly that (S3: no normalisation), so
        # the patch must rebuild the same string from the wire bytes.
        for key in SPECIAL_KEYS:
            wire = "/bucket-x/" + quote(key.encode("utf-8"), safe="/~")
            path, query = msf.canonical_s3_path_and_query(wire.encode("ascii"))
            self.assertEqual(path, wire, key)
            self.assertEqual(query, "")

    def test_equivalent_encodings_map_to_one_canonical_form(self):
        canon = msf.canonical_s3_path_and_query
        self.assertEqual(canon(b"/b/%7e%c3%bc%2b")[0], "/b/~%C3%BC%2B")
        self.assertEqual(canon(b"/b/a+b'c(d)*")[0], "/b/a%2Bb%27c%28d%29%2A")
        self.assertEqual(canon(b"/b/a%2Fb")[0], "/b/a/b")  # an encoded slash is a slash in S3
        self.assertEqual(canon(b"/b//x/./y/../z")[0], "/b//x/./y/../z")  # no normalisation
        self.assertEqual(canon(b"/b/100%")[0], "/b/100%25")  # a stray % stays a literal %

    def test_query_is_decoded_reencoded_and_sorted(self):
        canon = msf.canonical_s3_path_and_query
        self.assertEqual(canon(b"/b?uploads")[1], "uploads=")
        self.assertEqual(canon(b"/b?list-type=2&prefix=a%2Fb c&encoding-type=url&continuation-token=x%2By+z")[1],
                         "continuation-token=x%2By%2Bz&encoding-type=url&list-type=2&prefix=a%2Fb%20c")
        self.assertEqual(canon(b"/b/k?uploadId=A~B&partNumber=10")[1], "partNumber=10&uploadId=A~B")
        self.assertEqual(canon(b"/b?delete=")[1], "delete=")

    def test_raw_target_from_werkzeug_environ(self):
        # http.server decodes the request line as latin-1, werkzeug then re-encodes utf-8 -> latin-1
        raw = "/b/%C3%BC x?y=1"
        dance = raw.encode("utf-8").decode("latin-1")
        self.assertEqual(msf.raw_target_from_environ({"RAW_URI": dance}), raw.encode())
        self.assertEqual(msf.raw_target_from_environ({"REQUEST_URI": "http://h:1/b/k?q"}), b"/b/k?q")
        self.assertIsNone(msf.raw_target_from_environ({}))

    def test_classify_s3(self):
        c = harness.classify_s3
        self.assertEqual(c("GET", "/b?list-type=2&prefix=x"), "ListObjectsV2")
        self.assertEqual(c("GET", "/b/"), "ListObjects")
        self.assertEqual(c("PUT", "/b/k%20x"), "PutObject")
        self.assertEqual(c("PUT", "/b"), "CreateBucket")
        self.assertEqual(c("POST", "/b?delete"), "DeleteObjects")
        self.assertEqual(c("POST", "/b/k?uploads"), "CreateMultipartUpload")
        self.assertEqual(c("PUT", "/b/k?partNumber=1&uploadId=u"), "UploadPart")
        self.assertEqual(c("POST", "/b/k?uploadId=u"), "CompleteMultipartUpload")
        self.assertEqual(c("DELETE", "/b/k?uploadId=u"), "AbortMultipartUpload")
        self.assertEqual(c("DELETE", "/b/k"), "DeleteObject")
        self.assertEqual(c("HEAD", "/b/k"), "HeadObject")
        self.assertEqual(c("HEAD", "/b"), "HeadBucket")
        self.assertEqual(c("GET", "/b/a//b"), "GetObject")
        self.assertEqual(c("GET", "/"), "ListBuckets")

    def test_raw_path_and_canonical_query_for_other_services(self):
        f = msf.raw_path_and_canonical_query
        self.assertEqual(f(b"/2020-05-31/distribution"), ("/2020-05-31/distribution", ""))
        self.assertEqual(f(b"/2020-05-31/distribution/E1/invalidation?MaxItems=5&Marker=a%20b%2Bc~"),
                         ("/2020-05-31/distribution/E1/invalidation", "Marker=a%20b%2Bc~&MaxItems=5"))
        self.assertEqual(f(b"/x/a%2Fb/./c?b=2&a=1&a=0"), ("/x/a%2Fb/./c", "a=0&a=1&b=2"))  # path kept as sent
        self.assertEqual(f(b"/t?Operation=Tag&Resource=arn%3Aaws%3Acloudfront%3A%3A1%3Adistribution%2FE1")[1],
                         "Operation=Tag&Resource=arn%3Aaws%3Acloudfront%3A%3A1%3Adistribution%2FE1")

    def test_classify_cloudfront(self):
        c = harness.classify_request
        p = "/2020-05-31/distribution"
        self.assertEqual(c("POST", p), "CreateDistribution")
        self.assertEqual(c("POST", p + "?WithTags"), "CreateDistributionWithTags")
        self.assertEqual(c("GET", p), "ListDistributions")
        self.assertEqual(c("GET", p + "?MaxItems=10&Marker=x"), "ListDistributions")
        self.assertEqual(c("GET", p + "/E2QWRUHAPOMQZL"), "GetDistribution")
        self.assertEqual(c("DELETE", p + "/E2QWRUHAPOMQZL"), "DeleteDistribution")
        self.assertEqual(c("GET", p + "/E2QWRUHAPOMQZL/config"), "GetDistributionConfig")
        self.assertEqual(c("PUT", p + "/E2QWRUHAPOMQZL/config"), "UpdateDistribution")
        self.assertEqual(c("POST", p + "/E2QWRUHAPOMQZL/invalidation"), "CreateInvalidation")
        self.assertEqual(c("GET", p + "/E2QWRUHAPOMQZL/invalidation"), "ListInvalidations")
        self.assertEqual(c("GET", p + "/E2QWRUHAPOMQZL/invalidation?MaxItems=100"), "ListInvalidations")
        self.assertEqual(c("GET", p + "/E2QWRUHAPOMQZL/invalidation/I2J0I21PCUYOIK"), "GetInvalidation")
        self.assertEqual(c("GET", "/2020-05-31/tagging?Resource=arn"), "ListTagsForResource")
        self.assertEqual(c("POST", "/2020-05-31/tagging?Operation=Tag&Resource=arn"), "TagResource")
        # S3 requests keep their S3 names, also for a bucket named like the API version when signed for s3
        self.assertEqual(c("PUT", "/b/k%20x"), "PutObject")
        self.assertEqual(c("GET", "/b?list-type=2"), "ListObjectsV2")
        s3_auth = {"Authorization": "AWS4-HMAC-SHA256 Credential=AKIA/20240101/us-east-1/s3/aws4_request, "
                                    "SignedHeaders=host, Signature=00"}
        cf_auth = {"Authorization": s3_auth["Authorization"].replace("/s3/", "/cloudfront/")}
        self.assertEqual(c("GET", "/2020-05-31/distribution", s3_auth), "GetObject")
        self.assertEqual(c("GET", "/2020-05-31/distribution", cf_auth), "ListDistributions")
        # classify_s3 itself is unchanged
        self.assertEqual(harness.classify_s3("GET", "/2020-05-31/distribution"), "GetObject")


class _ServerCase(unittest.TestCase):
    server: harness.MotoServer

    @classmethod
    def setUpClass(cls):
        cls.server = harness.MotoServer()
        cls.addClassCleanup(cls.server.cleanup)
        cls.server.start()
        cls.s3 = cls.server.boto3_s3()

    def tearDown(self):
        if harness.test_failed(self):
            self.server.dump_log(f"moto server log for {self.id()}", limit=6000)

    def bucket(self):
        name = harness.new_bucket_name(self._testMethodName[5:])
        self.s3.create_bucket(Bucket=name)
        return name


class MotoServerTest(_ServerCase):
    def test_endpoint_is_loopback_and_auth_is_on(self):
        self.assertTrue(self.server.endpoint.startswith("http://127.0.0.1:"))
        r = requests.get(self.server.endpoint + "/", timeout=10)  # unsigned ListBuckets
        self.assertNotEqual(r.status_code, 200, "an unsigned request must not be served with auth on")

    def test_special_keys_round_trip_with_auth_on(self):
        b = self.bucket()
        for key in SPECIAL_KEYS:
            body = ("content of " + key).encode("utf-8")
            self.s3.put_object(Bucket=b, Key=key, Body=body, ContentType="text/plain")
            self.assertEqual(harness.get_bytes(self.s3, b, key), body, key)
            self.assertEqual(self.s3.head_object(Bucket=b, Key=key)["ContentLength"], len(body), key)
        listed = harness.list_bucket(self.s3, b)
        self.assertEqual(set(listed), set(SPECIAL_KEYS))
        # a prefix with special characters goes through the query string
        self.assertEqual(set(harness.list_bucket(self.s3, b, prefix="a b/c+d%e#f&g=h~i/", head=False)),
                         {"a b/c+d%e#f&g=h~i/ü€.txt"})
        self.assertEqual(set(harness.list_bucket(self.s3, b, prefix="a//", head=False)), {"a//b"})
        # paged listing with continuation tokens
        pages = list(self.s3.get_paginator("list_objects_v2").paginate(Bucket=b, PaginationConfig={"PageSize": 5}))
        self.assertGreater(len(pages), 1)
        self.assertEqual({o["Key"] for p in pages for o in p.get("Contents", [])}, set(SPECIAL_KEYS))
        # batch delete of special keys
        doomed = SPECIAL_KEYS[:6]
        resp = self.s3.delete_objects(Bucket=b, Delete={"Objects": [{"Key": k} for k in doomed]})
        self.assertFalse(resp.get("Errors"), resp.get("Errors"))
        self.assertEqual(set(harness.list_bucket(self.s3, b, head=False)), set(SPECIAL_KEYS) - set(doomed))
        # single delete of a special key
        self.s3.delete_object(Bucket=b, Key="é/ü/日本/😀.html")
        self.assertNotIn("é/ü/日本/😀.html", harness.list_bucket(self.s3, b, head=False))

    def test_multipart_with_special_key_and_auth_on(self):
        b = self.bucket()
        key = "big files/ü+%&=.bin"
        part = os.urandom(5 * 1024 * 1024)
        up = self.s3.create_multipart_upload(Bucket=b, Key=key)["UploadId"]
        etags = [self.s3.upload_part(Bucket=b, Key=key, UploadId=up, PartNumber=n, Body=part)["ETag"]
                 for n in (1, 2)]
        self.s3.complete_multipart_upload(Bucket=b, Key=key, UploadId=up, MultipartUpload={
            "Parts": [{"ETag": e, "PartNumber": n} for n, e in enumerate(etags, 1)]})
        head = self.s3.head_object(Bucket=b, Key=key)
        self.assertTrue(head["ETag"].strip('"').endswith("-2"), head["ETag"])
        self.assertEqual(hashlib.sha256(harness.get_bytes(self.s3, b, key)).hexdigest(),
                         hashlib.sha256(part + part).hexdigest())

    def test_wrong_secret_is_rejected(self):
        b = self.bucket()
        bad = self.server.boto3_s3(secret=self.server.secret_access_key[:-4] + "XXXX", max_attempts=1)
        for call in (lambda: bad.list_objects_v2(Bucket=b),
                     lambda: bad.put_object(Bucket=b, Key="a b/c+d%e#f&g=h~i/ü€.txt", Body=b"x"),
                     lambda: bad.put_object(Bucket=b, Key="plain.txt", Body=b"x"),
                     lambda: bad.create_bucket(Bucket=harness.new_bucket_name("never"))):
            with self.assertRaises(ClientError) as cm:
                call()
            self.assertEqual(_error_code(cm.exception), "SignatureDoesNotMatch")
            self.assertEqual(_status(cm.exception), 403)
        self.assertEqual(harness.list_bucket(self.s3, b), {})

    def test_unknown_access_key_is_rejected(self):
        bad = self.server.boto3_s3(access_key="AKIAIOSFODNN7EXAMPLE", max_attempts=1)
        with self.assertRaises(ClientError) as cm:
            bad.list_buckets()
        self.assertEqual(_error_code(cm.exception), "InvalidAccessKeyId")

    def test_tampered_path_is_rejected_equivalent_encoding_accepted(self):
        """The fix does not loosen the check: a path changed after signing fails, while a different but
        equivalent percent-encoding of the same key (what another SDK might send) still verifies."""
        b = self.bucket()
        client = self.server.boto3_s3(max_attempts=1)

        def rewrite(old, new):
            def handler(request, **_):
                request.url = request.url.replace(old, new)
            return handler

        h = rewrite("tilde~x", "tilde%7Ex")
        client.meta.events.register("before-send.s3.PutObject", h)
        client.put_object(Bucket=b, Key="tilde~x", Body=b"1")
        client.meta.events.unregister("before-send.s3.PutObject", h)
        self.assertEqual(harness.get_bytes(self.s3, b, "tilde~x"), b"1")

        h = rewrite("key-a%2B", "key-b%2B")
        client.meta.events.register("before-send.s3.PutObject", h)
        with self.assertRaises(ClientError) as cm:
            client.put_object(Bucket=b, Key="key-a+", Body=b"2")
        client.meta.events.unregister("before-send.s3.PutObject", h)
        self.assertEqual(_error_code(cm.exception), "SignatureDoesNotMatch")
        self.assertNotIn("key-b+", harness.list_bucket(self.s3, b, head=False))

    def test_stop_ends_the_process(self):
        other = harness.MotoServer()
        other.start()
        try:
            pid = other.proc.pid
            self.assertIsNone(other.proc.poll())
        finally:
            other.cleanup()
        self.assertIsNotNone(other.proc.poll())
        with self.assertRaises(ProcessLookupError):
            os.kill(pid, 0)


def _cf_error_code(exc: ClientError) -> str:
    """CloudFront errors from moto come in a query-protocol <ErrorResponse><Errors><Error> wrapper that botocore's
    rest-xml parser leaves in response["Errors"] (MOTO.md trap 4); the proxy's own errors are CloudFront-shaped."""
    code = exc.response.get("Error", {}).get("Code", "")
    if not code:
        errors = exc.response.get("Errors", {}).get("Error", {})
        if isinstance(errors, list):
            errors = errors[0] if errors else {}
        code = errors.get("Code", "")
    return code


def _batch(paths, ref):
    return {"Paths": {"Quantity": len(paths), "Items": list(paths)}, "CallerReference": ref}


class CloudFrontAuthTest(_ServerCase):
    """MOTO.md trap 2, fixed by moto_server_fixed.py: signed CloudFront GETs verify, wrong signatures do not."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.cf = cls.server.boto3_cloudfront(max_attempts=1)

    def bad_client(self):
        return self.server.boto3_cloudfront(secret=self.server.secret_access_key[:-4] + "XXXX", max_attempts=1)

    def assertRejected(self, call, code="SignatureDoesNotMatch"):
        with self.assertRaises(ClientError) as cm:
            call()
        self.assertEqual(_status(cm.exception), 403, cm.exception.response)
        self.assertEqual(_cf_error_code(cm.exception), code, cm.exception.response)

    def test_signed_cloudfront_calls_verify_with_auth_on(self):
        b = self.bucket()
        dist = harness.create_distribution(self.cf, f"{b}.s3.amazonaws.com", origin_path="/site", comment="c1")
        self.assertTrue(dist)
        listed = self.cf.list_distributions()["DistributionList"]  # GET, no query, empty body
        self.assertIn(dist, [d["Id"] for d in listed.get("Items") or []])
        self.cf.list_distributions(MaxItems="50")  # GET with a query string
        got = self.cf.get_distribution(Id=dist)["Distribution"]  # GET
        origins = got["DistributionConfig"]["Origins"]["Items"]
        self.assertEqual([(o["DomainName"], o["OriginPath"]) for o in origins], [(f"{b}.s3.amazonaws.com", "/site")])
        self.assertEqual(got["DistributionConfig"]["Comment"], "c1")
        paths = ["/a b/index.html", "/caf%C3%A9.html", "/blog/*"]
        inv = self.cf.create_invalidation(DistributionId=dist, InvalidationBatch=_batch(paths, "ref-1"))  # POST
        inv_id = inv["Invalidation"]["Id"]
        fetched = self.cf.get_invalidation(DistributionId=dist, Id=inv_id)["Invalidation"]  # GET
        self.assertEqual(fetched["InvalidationBatch"]["Paths"]["Items"], paths)
        self.assertEqual(fetched["InvalidationBatch"]["CallerReference"], "ref-1")
        self.assertEqual(fetched["Status"].lower(), "completed")
        listed = self.cf.list_invalidations(DistributionId=dist)["InvalidationList"]  # GET
        self.assertEqual([i["Id"] for i in listed["Items"]], [inv_id])
        # a query with characters that need encoding (moto ignores Marker, but the signature covers it)
        self.cf.list_invalidations(DistributionId=dist, MaxItems="10", Marker="a b+c~é/")
        self.assertEqual(harness.invalidations(self.cf, dist), [
            {"Id": inv_id, "Status": fetched["Status"], "CallerReference": "ref-1", "Paths": paths}])
        # the other S3 origin forms are accepted by moto too
        for domain in harness.s3_origin_domains(b).values():
            other = harness.create_distribution(self.cf, domain)
            self.assertEqual(self.cf.get_distribution(Id=other)["Distribution"]["DistributionConfig"]["Origins"][
                "Items"][0]["DomainName"], domain)

    def test_wrong_secret_is_rejected_on_get_and_post(self):
        b = self.bucket()
        dist = harness.create_distribution(self.cf, f"{b}.s3.amazonaws.com")
        inv_id = self.cf.create_invalidation(DistributionId=dist, InvalidationBatch=_batch(["/x"], "r"))[
            "Invalidation"]["Id"]
        bad = self.bad_client()
        self.assertRejected(lambda: bad.list_distributions())
        self.assertRejected(lambda: bad.list_distributions(MaxItems="5"))
        self.assertRejected(lambda: bad.get_distribution(Id=dist))
        self.assertRejected(lambda: bad.list_invalidations(DistributionId=dist))
        self.assertRejected(lambda: bad.get_invalidation(DistributionId=dist, Id=inv_id))
        self.assertRejected(lambda: bad.create_invalidation(DistributionId=dist, InvalidationBatch=_batch(["/y"], "s")))
        n = len(self.cf.list_distributions()["DistributionList"].get("Items") or [])
        self.assertRejected(lambda: harness.create_distribution(bad, f"{b}.s3.amazonaws.com"))
        self.assertEqual(len(self.cf.list_distributions()["DistributionList"].get("Items") or []), n)
        self.assertEqual([i["Paths"] for i in harness.invalidations(self.cf, dist)], [["/x"]])
        unknown = self.server.boto3_cloudfront(access_key="AKIAIOSFODNN7EXAMPLE", max_attempts=1)
        with self.assertRaises(ClientError) as cm:
            unknown.list_distributions()
        self.assertEqual(_status(cm.exception), 403)

    def test_tampered_path_or_query_is_rejected(self):
        b = self.bucket()
        dist = harness.create_distribution(self.cf, f"{b}.s3.amazonaws.com")
        other = harness.create_distribution(self.cf, f"{b}.s3.amazonaws.com")
        client = self.server.boto3_cloudfront(max_attempts=1)

        def rewrite(old, new):
            def handler(request, **_):
                request.url = request.url.replace(old, new)
            return handler

        for event, old, new, call in (
                ("before-send.cloudfront.GetDistribution", dist, other, lambda: client.get_distribution(Id=dist)),
                ("before-send.cloudfront.ListInvalidations", "MaxItems=5", "MaxItems=6",
                 lambda: client.list_invalidations(DistributionId=dist, MaxItems="5")),
                ("before-send.cloudfront.CreateInvalidation", dist, other,
                 lambda: client.create_invalidation(DistributionId=dist, InvalidationBatch=_batch(["/t"], "t")))):
            h = rewrite(old, new)
            client.meta.events.register(event, h)
            try:
                self.assertRejected(call)
            finally:
                client.meta.events.unregister(event, h)
        self.assertEqual(harness.invalidations(self.cf, other), [])
        self.assertEqual(harness.invalidations(self.cf, dist), [])

    def _raw(self, method, path, sign_body: bytes, send_body: bytes):
        """Sign (generic SigV4, service cloudfront) with one payload, send another: moto must hash what it got."""
        url = f"{self.server.endpoint}{path}"
        req = AWSRequest(method=method, url=url, data=sign_body, headers={"Host": f"127.0.0.1:{self.server.port}"})
        creds = Credentials(self.server.access_key_id, self.server.secret_access_key)
        botocore.auth.SigV4Auth(creds, "cloudfront", harness.REGION).add_auth(req)
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
        try:
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            for k, v in req.headers.items():
                if k.lower() != "content-length":
                    conn.putheader(k, v)
            if send_body or method != "GET":
                conn.putheader("Content-Length", str(len(send_body)))
            conn.endheaders(send_body or None)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def test_payload_is_the_body_as_received(self):
        b = self.bucket()
        dist = harness.create_distribution(self.cf, f"{b}.s3.amazonaws.com")
        path = f"/2020-05-31/distribution/{dist}"
        status, body = self._raw("GET", path, b"", b"")
        self.assertEqual(status, 200, body)
        status, body = self._raw("GET", path, b"x", b"")  # signed a byte, sent none
        self.assertEqual(status, 403, body)
        self.assertIn(b"SignatureDoesNotMatch", body)
        status, body = self._raw("GET", path, b"", b"x")  # signed empty, sent a byte (moto's parser 500s first)
        self.assertNotEqual(status, 200, body)
        xml = ('<?xml version="1.0" encoding="UTF-8"?><InvalidationBatch xmlns="http://cloudfront.amazonaws.com/doc/'
               '2020-05-31/"><Paths><Quantity>1</Quantity><Items><Path>/raw</Path></Items></Paths>'
               '<CallerReference>raw-1</CallerReference></InvalidationBatch>').encode()
        status, body = self._raw("POST", path + "/invalidation", xml, xml.replace(b"/raw", b"/wat"))
        self.assertEqual(status, 403, body)
        status, body = self._raw("POST", path + "/invalidation", xml, xml)
        self.assertEqual(status, 201, body)
        self.assertEqual([i["Paths"] for i in harness.invalidations(self.cf, dist)], [["/raw"]])

    def test_form_post_services_still_verify(self):
        """Query-protocol form POSTs (IAM, STS) keep moto's own handling and still verify / reject."""
        import boto3

        kw = dict(endpoint_url=self.server.endpoint, region_name=harness.REGION,
                  aws_access_key_id=self.server.access_key_id)
        sts = boto3.client("sts", aws_secret_access_key=self.server.secret_access_key, **kw)
        self.assertTrue(sts.get_caller_identity()["Arn"].endswith(":user/" + harness.MotoServer.IAM_USER))
        iam = boto3.client("iam", aws_secret_access_key=self.server.secret_access_key, **kw)
        self.assertIn(harness.MotoServer.IAM_USER, [u["UserName"] for u in iam.list_users()["Users"]])
        bad = boto3.client("iam", aws_secret_access_key="wrong" * 8, **kw)
        with self.assertRaises(ClientError) as cm:
            bad.list_users()
        self.assertEqual(_error_code(cm.exception), "SignatureDoesNotMatch")


class FaultProxyTest(_ServerCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.proxy = harness.FaultProxy(cls.server.endpoint)
        cls.addClassCleanup(cls.proxy.stop)
        cls.proxy.start()

    def setUp(self):
        self.proxy.clear_faults()
        self.proxy.skew_seconds = 0
        self.proxy.reset_counts()

    def via_proxy(self, max_attempts=1):
        return self.server.boto3_s3(endpoint=self.proxy.endpoint, max_attempts=max_attempts)

    def test_forwards_unchanged_and_counts_operations(self):
        b = self.bucket()
        c = self.via_proxy()
        keys = ["index.html", "a b/c+d%e#f&g=h~i/ü€.txt", "a//b", "日本/😀.png"]
        for k in keys:
            c.put_object(Bucket=b, Key=k, Body=k.encode() * 100)
        for k in keys:
            self.assertEqual(c.get_object(Bucket=b, Key=k)["Body"].read(), k.encode() * 100)
            self.assertEqual(c.head_object(Bucket=b, Key=k)["ContentLength"], len(k.encode()) * 100)
        self.assertEqual({o["Key"] for o in c.list_objects_v2(Bucket=b)["Contents"]}, set(keys))
        c.delete_objects(Bucket=b, Delete={"Objects": [{"Key": keys[0]}, {"Key": keys[1]}]})
        c.delete_object(Bucket=b, Key=keys[2])
        # independent view, not through the proxy
        self.assertEqual(set(harness.list_bucket(self.s3, b, head=False)), {keys[3]})
        counts = self.proxy.counts()
        self.assertEqual(counts[("PUT", "PutObject")], 4)
        self.assertEqual(counts[("GET", "GetObject")], 4)
        self.assertEqual(counts[("HEAD", "HeadObject")], 4)
        self.assertEqual(counts[("GET", "ListObjectsV2")], 1)
        self.assertEqual(counts[("POST", "DeleteObjects")], 1)
        self.assertEqual(counts[("DELETE", "DeleteObject")], 1)
        self.assertEqual(self.proxy.total(), 15)
        self.assertEqual(self.proxy.count("PutObject"), 4)
        # keep-alive: one client, many requests, few connections
        self.assertLess(self.proxy.connections_accepted, 15)
        self.proxy.reset_counts()
        self.assertEqual(self.proxy.total(), 0)

    def test_multipart_operations_are_classified(self):
        b = self.bucket()
        c = self.via_proxy()
        part = os.urandom(5 * 1024 * 1024)
        up = c.create_multipart_upload(Bucket=b, Key="big.bin")["UploadId"]
        etags = [c.upload_part(Bucket=b, Key="big.bin", UploadId=up, PartNumber=n,
                               Body=part if n < 3 else b"tail")["ETag"] for n in (1, 2, 3)]
        c.complete_multipart_upload(Bucket=b, Key="big.bin", UploadId=up, MultipartUpload={
            "Parts": [{"ETag": e, "PartNumber": n} for n, e in enumerate(etags, 1)]})
        up2 = c.create_multipart_upload(Bucket=b, Key="abandoned.bin")["UploadId"]
        c.abort_multipart_upload(Bucket=b, Key="abandoned.bin", UploadId=up2)
        counts = self.proxy.counts()
        self.assertEqual(counts[("POST", "CreateMultipartUpload")], 2)
        self.assertEqual(counts[("PUT", "UploadPart")], 3)
        self.assertEqual(counts[("POST", "CompleteMultipartUpload")], 1)
        self.assertEqual(counts[("DELETE", "AbortMultipartUpload")], 1)
        self.assertEqual(counts[("PUT", "PutObject")], 0)
        data = harness.get_bytes(self.s3, b, "big.bin")
        self.assertEqual(data, part + part + b"tail")
        self.assertTrue(self.s3.head_object(Bucket=b, Key="big.bin")["ETag"].strip('"').endswith("-3"))

    def test_inject_503_slowdown_only_for_the_given_operation(self):
        b = self.bucket()
        c = self.via_proxy()
        self.proxy.inject(status=503, code="SlowDown", count=2, op="PutObject")
        c.list_objects_v2(Bucket=b)  # not a PutObject: forwarded
        for _ in range(2):
            with self.assertRaises(ClientError) as cm:
                c.put_object(Bucket=b, Key="k.txt", Body=b"x" * 5000)
            self.assertEqual(_error_code(cm.exception), "SlowDown")
            self.assertEqual(_status(cm.exception), 503)
        self.assertEqual(harness.list_bucket(self.s3, b), {}, "an injected answer must not be forwarded")
        c.put_object(Bucket=b, Key="k.txt", Body=b"x" * 5000)  # same connection, after drained bodies
        self.assertEqual(harness.get_bytes(self.s3, b, "k.txt"), b"x" * 5000)
        self.assertEqual(self.proxy.injected, 2)
        self.assertEqual(self.proxy.count("PutObject"), 3)
        self.assertEqual(self.proxy.pending_faults(), 0)

    def test_corrupt_flips_one_body_byte_of_the_next_put_only(self):
        b = self.bucket()
        c = self.via_proxy()
        body = bytes(range(256)) * 800  # 200 KiB
        self.proxy.inject(op="PutObject", action="corrupt", count=1)
        c.put_object(Bucket=b, Key="damaged.bin", Body=body)  # moto stores what it receives, unchecked
        c.put_object(Bucket=b, Key="intact.bin", Body=body)
        damaged = harness.get_bytes(self.s3, b, "damaged.bin")
        self.assertEqual(len(damaged), len(body))
        diff = [i for i in range(len(body)) if damaged[i] != body[i]]
        self.assertEqual(diff, [len(body) // 2])
        self.assertEqual(damaged[len(body) // 2], body[len(body) // 2] ^ 0xFF)
        self.assertEqual(harness.get_bytes(self.s3, b, "intact.bin"), body)
        self.assertEqual(self.proxy.corrupted, 1)
        self.assertEqual(self.proxy.pending_faults(), 0)

    def test_inject_500_and_a_retrying_client_recovers(self):
        b = self.bucket()
        self.proxy.inject(status=500, count=1, op="ListObjectsV2")
        with self.assertRaises(ClientError) as cm:
            self.via_proxy().list_objects_v2(Bucket=b)
        self.assertEqual(_error_code(cm.exception), "InternalError")
        self.assertEqual(_status(cm.exception), 500)
        self.proxy.reset_counts()
        self.proxy.inject(status=500, code="InternalError", count=2, op="PutObject")
        self.via_proxy(max_attempts=5).put_object(Bucket=b, Key="r.txt", Body=b"retry me")
        self.assertEqual(self.proxy.count("PutObject"), 3)
        self.assertEqual(harness.get_bytes(self.s3, b, "r.txt"), b"retry me")

    def test_reset_and_close_drop_the_connection(self):
        b = self.bucket()
        self.s3.put_object(Bucket=b, Key="x", Body=b"x")
        c = self.via_proxy()
        for action in ("reset", "close"):
            self.proxy.inject(action=action, count=1, op="GetObject")
            with self.assertRaises(botocore.exceptions.BotoCoreError):
                c.get_object(Bucket=b, Key="x")["Body"].read()
            self.assertEqual(c.get_object(Bucket=b, Key="x")["Body"].read(), b"x")

    def test_chunked_request_body_is_relayed(self):
        b = self.bucket()
        body = os.urandom(300_000)
        url = f"{self.proxy.endpoint}/{b}/chunked%20up.bin"
        req = AWSRequest(method="PUT", url=url, headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
        creds = Credentials(self.server.access_key_id, self.server.secret_access_key)
        botocore.auth.S3SigV4Auth(creds, "s3", harness.REGION).add_auth(req)
        conn = http.client.HTTPConnection("127.0.0.1", self.proxy.port, timeout=30)
        try:
            conn.putrequest("PUT", f"/{b}/chunked%20up.bin", skip_host=True, skip_accept_encoding=True)
            for k, v in req.headers.items():
                conn.putheader(k, v)
            conn.putheader("Host", f"127.0.0.1:{self.proxy.port}")
            conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            for i in range(0, len(body), 65536):
                piece = body[i:i + 65536]
                conn.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            conn.send(b"0\r\n\r\n")
            resp = conn.getresponse()
            text = resp.read()
            self.assertEqual(resp.status, 200, text)
        finally:
            conn.close()
        self.assertEqual(harness.get_bytes(self.s3, b, "chunked up.bin"), body)

    def test_clock_skew_mode(self):
        b = self.bucket()
        self.proxy.skew_seconds = 3600
        c = self.via_proxy()
        with self.assertRaises(ClientError) as cm:
            c.put_object(Bucket=b, Key="skew.txt", Body=b"s")
        self.assertEqual(_error_code(cm.exception), "RequestTimeTooSkewed")
        self.assertEqual(_status(cm.exception), 403)
        date = cm.exception.response["ResponseMetadata"]["HTTPHeaders"]["date"]
        server_time = datetime.datetime.strptime(date, "%a, %d %b %Y %H:%M:%S GMT").replace(
            tzinfo=datetime.timezone.utc).timestamp()
        self.assertLess(abs(server_time - (time.time() + 3600)), 120, date)
        self.assertEqual(self.proxy.skew_rejections, 1)
        self.assertEqual(harness.list_bucket(self.s3, b), {})

        # a client that corrects its clock by the server's Date gets through, and moto verifies it
        skewed_now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) + datetime.timedelta(
            seconds=3600)
        with mock.patch.object(botocore.auth, "get_current_datetime", return_value=skewed_now):
            c.put_object(Bucket=b, Key="skew.txt", Body=b"s")
        self.assertEqual(harness.get_bytes(self.s3, b, "skew.txt"), b"s")
        self.assertEqual(self.proxy.skew_rejections, 1)

        self.proxy.skew_seconds = 0
        c.put_object(Bucket=b, Key="noskew.txt", Body=b"n")
        self.assertEqual(harness.get_bytes(self.s3, b, "noskew.txt"), b"n")

    def test_cloudfront_through_the_proxy(self):
        b = self.bucket()
        cf = self.server.boto3_cloudfront(endpoint=self.proxy.endpoint, max_attempts=1)
        dist = harness.create_distribution(cf, f"{b}.s3.amazonaws.com")
        cf.list_distributions()
        cf.get_distribution(Id=dist)
        inv = cf.create_invalidation(DistributionId=dist, InvalidationBatch=_batch(["/a"], "p-1"))["Invalidation"]
        cf.get_invalidation(DistributionId=dist, Id=inv["Id"])
        cf.list_invalidations(DistributionId=dist)
        counts = self.proxy.counts()
        for key in (("POST", "CreateDistribution"), ("GET", "ListDistributions"), ("GET", "GetDistribution"),
                    ("POST", "CreateInvalidation"), ("GET", "GetInvalidation"), ("GET", "ListInvalidations")):
            self.assertEqual(counts[key], 1, (key, counts))
        self.assertEqual(self.proxy.total(), 6)

    def test_cloudfront_faults_and_lost_responses(self):
        b = self.bucket()
        direct = self.server.boto3_cloudfront()
        dist = harness.create_distribution(direct, f"{b}.s3.amazonaws.com")
        cf = self.server.boto3_cloudfront(endpoint=self.proxy.endpoint, max_attempts=1)
        self.proxy.record_bodies = True
        self.addCleanup(setattr, self.proxy, "record_bodies", False)

        # an injected 503 is answered by the proxy (CloudFront's error shape) and never reaches moto
        self.proxy.inject(status=503, count=2, op="CreateInvalidation")
        cf.list_invalidations(DistributionId=dist)  # other ops pass
        for _ in range(2):
            with self.assertRaises(ClientError) as cm:
                cf.create_invalidation(DistributionId=dist, InvalidationBatch=_batch(["/a"], "r-503"))
            self.assertEqual(_status(cm.exception), 503)
            self.assertEqual(_error_code(cm.exception), "ServiceUnavailable")
        self.assertEqual(harness.invalidations(direct, dist), [])
        self.assertEqual(self.proxy.count("CreateInvalidation", "POST"), 2)
        faulted = [r.body for r in self.proxy.faulted if r.op == "CreateInvalidation"]
        self.assertEqual(len(faulted), 2)
        for body in faulted:
            self.assertIn(b"<CallerReference>r-503</CallerReference>", body)
        self.assertEqual(self.proxy.pending_faults(), 0)

        # forward_error: moto creates the invalidation, the client sees a 500
        self.proxy.inject(status=500, count=1, op="CreateInvalidation", action="forward_error")
        with self.assertRaises(ClientError) as cm:
            cf.create_invalidation(DistributionId=dist, InvalidationBatch=_batch(["/lost"], "r-lost"))
        self.assertEqual(_status(cm.exception), 500)
        self.assertEqual(_error_code(cm.exception), "InternalError")
        # forward_close: moto creates it, the client's connection is closed without an answer
        self.proxy.inject(count=1, op="CreateInvalidation", action="forward_close")
        with self.assertRaises((botocore.exceptions.BotoCoreError, ClientError)):
            cf.create_invalidation(DistributionId=dist, InvalidationBatch=_batch(["/lost2"], "r-lost2"))
        self.assertEqual([(i["CallerReference"], i["Paths"]) for i in harness.invalidations(direct, dist)],
                         [("r-lost", ["/lost"]), ("r-lost2", ["/lost2"])])
        # the proxy kept the forwarded bodies: the CallerReference of each attempt can be checked
        bodies = [r.body for r in self.proxy.recorded if r.op == "CreateInvalidation"]
        self.assertEqual(len(bodies), 2)
        self.assertIn(b"<CallerReference>r-lost</CallerReference>", bodies[0])
        self.assertIn(b"<CallerReference>r-lost2</CallerReference>", bodies[1])
        # a retrying client gets through after a lost response (and moto does not de-duplicate)
        self.proxy.inject(status=500, count=1, op="CreateInvalidation", action="forward_error")
        self.server.boto3_cloudfront(endpoint=self.proxy.endpoint, max_attempts=3).create_invalidation(
            DistributionId=dist, InvalidationBatch=_batch(["/again"], "r-again"))
        refs = [i["CallerReference"] for i in harness.invalidations(direct, dist)]
        self.assertEqual(refs.count("r-again"), 2)

    def test_upstream_down_gives_502(self):
        p = harness.FaultProxy(f"http://127.0.0.1:{harness.free_loopback_port()}")
        with p:
            r = requests.get(p.endpoint + "/bucket?list-type=2", timeout=10)
            self.assertEqual(r.status_code, 502)
            self.assertEqual(p.count("ListObjectsV2"), 1)


class RunSitesyncHelperTest(unittest.TestCase):
    """run_sitesync's environment and timeout handling, with a stand-in binary."""

    def test_clean_env_and_cwd(self):
        import tempfile

        with tempfile.TemporaryDirectory() as d:
            fake = os.path.join(d, "fake-sitesync")
            with open(fake, "w") as f:
                f.write("#!/bin/sh\nenv | sort\necho \"cwd=$(pwd)\"\necho err >&2\nexit 3\n")
            os.chmod(fake, 0o755)
            with mock.patch.dict(os.environ, {"SITESYNC_BIN": fake, "AWS_PROFILE": "leak", "AWS_SECRET_ACCESS_KEY": "no"}):
                rc, out, err = harness.run_sitesync(["sync"], env_extra={"FOO": "bar", "LANG": None})
        self.assertEqual(rc, 3)
        self.assertEqual(err, "err\n")
        env = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        self.assertEqual(env["FOO"], "bar")
        self.assertEqual(env["AWS_REGION"], "us-east-1")
        self.assertNotIn("AWS_PROFILE", env)
        self.assertNotIn("AWS_SECRET_ACCESS_KEY", env)
        self.assertNotIn("LANG", env)
        self.assertNotEqual(env["HOME"], os.path.expanduser("~"))
        self.assertTrue(env["XDG_STATE_HOME"].startswith(env["HOME"]))

    def test_parse_json_lines(self):
        ev = harness.parse_json_lines('{"event":"upload","key":"a","bytes":1}\n\n{"event":"summary"}\n')
        self.assertEqual([e["event"] for e in ev], ["upload", "summary"])
        with self.assertRaises(AssertionError):
            harness.parse_json_lines("uploading a\n")

    def test_make_site_and_expected_uploads(self):
        import tempfile

        with tempfile.TemporaryDirectory() as d:
            spec = {"a/b.html": "x", ".DS_Store": b"\0", ".well-known/security.txt": "c", "l": harness.Symlink("a")}
            written = harness.make_site(d, spec)
            self.assertEqual(set(written), {"a/b.html", ".DS_Store", ".well-known/security.txt"})
            self.assertTrue(os.path.islink(os.path.join(d, "l")))
            self.assertEqual(set(harness.expected_uploads(spec)), {"a/b.html", ".well-known/security.txt"})


if __name__ == "__main__":
    unittest.main(verbosity=2)
