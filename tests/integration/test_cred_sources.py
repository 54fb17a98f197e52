"""Issue 13, point 1 and 2: the real binary takes its credentials from each source of the chain that reaches the
network or runs a process, and refreshes temporary credentials.

The sources are small loopback fakes (cred_fakes.py): IMDSv2, the container endpoint (relative URI through the
test-only SITESYNC_CONTAINER_CREDENTIALS_HOST, full URI with a token file), IAM Identity Center's portal (via
AWS_ENDPOINT_URL_SSO and a token in ~/.aws/sso/cache), STS's AssumeRoleWithWebIdentity (moto 5.2.1 answers it with
a 500 when its auth is on, so a fake) and a credential_process script. Each hands out a real IAM access key made in
moto for the test, and moto (SigV4 checking on) must accept what sitesync signs with it: no other credentials are in
sitesync's environment. The bucket is checked with boto3 under the harness's own key.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
import unittest
import uuid
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from cred_fakes import ContainerFake, Creds, ImdsFake, SsoFake, StsWebIdentityFake, iso_in  # noqa: E402

SITE = {"index.html": "<p>home</p>", "css/site.css": "body{}", "docs/guide.html": "<p>guide</p>"}


def setUpModule():  # noqa: N802
    ok, why = harness.sitesync_available()
    if not ok:
        raise unittest.SkipTest(why)


class CredSourceCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        harness.start_moto_and_proxy(cls)
        cls.s3 = cls.server.boto3_s3()
        # A key of its own for the fakes to hand out: moto checks its signature like any IAM user's.
        import boto3
        iam = boto3.client("iam", endpoint_url=cls.server.endpoint, region_name=harness.REGION,
                           aws_access_key_id=cls.server.access_key_id,
                           aws_secret_access_key=cls.server.secret_access_key)
        iam.create_user(UserName="credential-source")
        iam.put_user_policy(UserName="credential-source", PolicyName="allow-all", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        key = iam.create_access_key(UserName="credential-source")["AccessKey"]
        cls.key_id = key["AccessKeyId"]
        cls.secret = key["SecretAccessKey"]

    def setUp(self):
        self.proxy.clear_faults()
        self.proxy.reset_counts()
        self._tmp = tempfile.TemporaryDirectory(prefix="sitesync-creds-")
        self.addCleanup(self._tmp.cleanup)
        self.tmp = self._tmp.name
        self.home = os.path.join(self.tmp, "home")
        os.makedirs(os.path.join(self.home, ".aws"))
        self.src = os.path.join(self.tmp, "site")
        self.files = harness.make_site(self.src, SITE)
        self.bucket = harness.new_bucket_name(self._testMethodName[5:])
        self.s3.create_bucket(Bucket=self.bucket)

    def creds(self) -> Creds:
        return Creds(self.key_id, self.secret)

    def fake(self, fake):
        self.addCleanup(fake.stop)
        return fake

    def sync(self, env: dict, *extra, endpoint=None):
        return harness.run_sitesync(
            ["sync", self.src, f"s3://{self.bucket}", "--endpoint", endpoint or self.server.endpoint, "--json",
             *extra], env_extra=env, home=self.home, timeout=90)

    def remote(self) -> dict:
        out = {}
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            for o in page.get("Contents", []):
                out[o["Key"]] = self.s3.get_object(Bucket=self.bucket, Key=o["Key"])["Body"].read()
        return out

    def assert_published(self, result):
        self.assertEqual(result[0], 0, result.describe())
        self.assertEqual(self.remote(), self.files, result.describe())

    def assert_nothing_published(self, result):
        self.assertNotEqual(result[0], 0, result.describe())
        self.assertEqual(self.remote(), {}, result.describe())

    def assert_no_secret(self, result, *secrets):
        text = result[1] + result[2]
        for s in (self.secret,) + secrets:
            self.assertNotIn(s, text, "a secret was printed")

    def write_config(self, text: str) -> None:
        Path(self.home, ".aws", "config").write_text(text)


class TestInstanceMetadata(CredSourceCase):
    def test_imdsv2_token_then_role_credentials(self):
        # The first token is refused when used (as after an IMDS restart): sitesync fetches another one.
        imds = self.fake(ImdsFake(self.creds(), refuse_first_tokens=1))
        r = self.sync({"AWS_EC2_METADATA_DISABLED": None, "AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.endpoint})
        self.assert_published(r)
        self.assert_no_secret(r, self.creds().session_token)
        seen = imds.seen()
        self.assertEqual(imds.tokens_issued, 2, [(s.method, s.path, s.status) for s in seen])
        self.assertEqual(seen[0].method, "PUT")
        self.assertEqual(seen[0].headers.get("x-aws-ec2-metadata-token-ttl-seconds"), "21600")
        self.assertIn(401, [s.status for s in seen], "the first token was used and refused")
        self.assertEqual(imds.fetches(), 1)
        for s in seen:
            self.assertNotIn("authorization", s.headers, "IMDS requests are not signed")

    def test_disabled_imds_is_not_asked(self):
        imds = self.fake(ImdsFake(self.creds()))
        r = self.sync({"AWS_EC2_METADATA_DISABLED": "true", "AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.endpoint})
        self.assert_nothing_published(r)
        self.assertEqual(imds.seen(), [])


class TestContainer(CredSourceCase):
    def test_relative_uri_through_the_test_host(self):
        ecs = self.fake(ContainerFake(self.creds()))
        r = self.sync({"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": ecs.path,
                       "SITESYNC_CONTAINER_CREDENTIALS_HOST": ecs.endpoint})
        self.assert_published(r)
        self.assertEqual(ecs.fetches(), 1)
        self.assert_no_secret(r)

    def test_full_uri_with_a_token_file(self):
        token = "pod-identity-" + uuid.uuid4().hex
        token_file = os.path.join(self.tmp, "eks-pod-identity-token")
        Path(token_file).write_text(token + "\n")
        ecs = self.fake(ContainerFake(self.creds(), authorization=token))
        env = {"AWS_CONTAINER_CREDENTIALS_FULL_URI": ecs.endpoint + ecs.path,
               "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": token_file}
        r = self.sync(env)
        self.assert_published(r)
        self.assertEqual(ecs.seen()[0].headers.get("authorization"), token)

        # A token the endpoint refuses: a clear error naming the source, no upload, the token never printed.
        self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in self.files]})
        Path(token_file).write_text("stale-" + token)
        bad = self.sync(env)
        self.assert_nothing_published(bad)
        self.assertIn("container credentials", bad[2], bad.describe())
        self.assertIn("authorization token", bad[2], bad.describe())
        self.assert_no_secret(bad, token)


class TestSso(CredSourceCase):
    def setup_profile(self, access_token: str):
        self.write_config(
            "[profile dev]\nsso_session = corp\nsso_account_id = 123456789012\nsso_role_name = Deploy\n"
            "region = us-east-1\n\n[sso-session corp]\nsso_region = us-east-1\n"
            "sso_start_url = https://example.awsapps.com/start\nsso_registration_scopes = sso:account:access\n")
        cache = Path(self.home, ".aws", "sso", "cache")
        cache.mkdir(parents=True, exist_ok=True)
        # The AWS CLI names the cache file for an sso-session by the SHA-1 of the session's name.
        (cache / (hashlib.sha1(b"corp").hexdigest() + ".json")).write_text(json.dumps(
            {"startUrl": "https://example.awsapps.com/start", "region": "us-east-1", "accessToken": access_token,
             "expiresAt": iso_in(3600)}))

    def test_role_credentials_from_the_portal(self):
        token = "sso-access-" + uuid.uuid4().hex
        portal = self.fake(SsoFake(self.creds(), token, "123456789012", "Deploy"))
        self.setup_profile(token)
        r = self.sync({"AWS_ENDPOINT_URL_SSO": portal.endpoint}, "--profile", "dev")
        self.assert_published(r)
        self.assertEqual(portal.fetches(), 1)
        self.assert_no_secret(r, token)

    def test_a_refused_token_says_sso_login(self):
        portal = self.fake(SsoFake(self.creds(), "the-valid-token", "123456789012", "Deploy"))
        self.setup_profile("an-expired-token")
        r = self.sync({"AWS_ENDPOINT_URL_SSO": portal.endpoint}, "--profile", "dev")
        self.assert_nothing_published(r)
        self.assertIn("aws sso login --profile dev", r[2], r.describe())
        self.assert_no_secret(r, "an-expired-token")


class TestWebIdentity(CredSourceCase):
    def test_web_identity_from_the_environment(self):
        oidc = "eyJ" + uuid.uuid4().hex
        token_file = os.path.join(self.tmp, "oidc-token")
        Path(token_file).write_text(oidc)
        sts = self.fake(StsWebIdentityFake(self.creds(), oidc))
        role = "arn:aws:iam::123456789012:role/gitlab-deploy"
        r = self.sync({"AWS_WEB_IDENTITY_TOKEN_FILE": token_file, "AWS_ROLE_ARN": role,
                       "AWS_ROLE_SESSION_NAME": "pipeline-42", "AWS_ENDPOINT_URL_STS": sts.endpoint})
        self.assert_published(r)
        forms = sts.forms()
        self.assertEqual(len(forms), 1, forms)
        self.assertEqual(forms[0]["RoleArn"], role)
        self.assertEqual(forms[0]["RoleSessionName"], "pipeline-42")
        self.assertEqual(forms[0]["Version"], "2011-06-15")
        self.assertNotIn("authorization", sts.seen()[0].headers, "AssumeRoleWithWebIdentity is not signed")
        self.assert_no_secret(r, oidc)


class TestCredentialProcess(CredSourceCase):
    def script(self, name: str, body: str) -> str:
        path = os.path.join(self.tmp, name)
        Path(path).write_text("#!/bin/sh\n" + body)
        os.chmod(path, 0o755)
        return path

    def test_process_credentials(self):
        out = json.dumps({"Version": 1, "AccessKeyId": self.key_id, "SecretAccessKey": self.secret,
                          "SessionToken": "process-token", "Expiration": iso_in(3600)})
        helper = self.script("helper.sh", f"echo 'helper: fetching' >&2\ncat <<'EOF'\n{out}\nEOF\n")
        self.write_config(f"[profile proc]\ncredential_process = \"{helper}\" --role deploy\n")
        r = self.sync({}, "--profile", "proc")
        self.assert_published(r)
        self.assert_no_secret(r, "process-token")

    def test_failing_and_malformed_helpers(self):
        failing = self.script("failing.sh", f"echo '{self.secret}'\necho 'helper: not logged in' >&2\nexit 7\n")
        bad_json = self.script("bad.sh", f"echo 'AccessKeyId={self.key_id} SecretAccessKey={self.secret}'\n")
        version2 = self.script("v2.sh", "echo '" + json.dumps(
            {"Version": 2, "AccessKeyId": self.key_id, "SecretAccessKey": self.secret}) + "'\n")
        cases = [(failing, ["profile proc", "exit status 7", "helper: not logged in"]),
                 (bad_json, ["profile proc", "not a JSON object"]),
                 (version2, ["profile proc", "Version 2"])]
        for helper, says in cases:
            with self.subTest(helper=os.path.basename(helper)):
                self.write_config(f"[profile proc]\ncredential_process = {helper}\n")
                r = self.sync({}, "--profile", "proc")
                self.assert_nothing_published(r)
                for s in says:
                    self.assertIn(s, r[2], r.describe())
                self.assert_no_secret(r)


class TestAssumeRole(CredSourceCase):
    """role_arn + source_profile against moto's own STS (AWS_ENDPOINT_URL_STS), auth on: AssumeRole is signed with
    the source profile's keys and moto checks the assumed role's temporary keys on every S3 request."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        import boto3
        iam = boto3.client("iam", endpoint_url=cls.server.endpoint, region_name=harness.REGION,
                           aws_access_key_id=cls.server.access_key_id,
                           aws_secret_access_key=cls.server.secret_access_key)
        trust = json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]})
        allow = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
        cls.roles = {}
        for name in ("deploy", "cross-account"):
            arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
            iam.put_role_policy(RoleName=name, PolicyName="allow-all", PolicyDocument=allow)
            cls.roles[name] = arn

    def write_profiles(self, secret: str) -> None:
        Path(self.home, ".aws", "credentials").write_text(
            f"[base]\naws_access_key_id = {self.key_id}\naws_secret_access_key = {secret}\n")
        self.write_config(
            f"[profile deploy]\nrole_arn = {self.roles['deploy']}\nsource_profile = base\n"
            f"role_session_name = sitesync-test\nduration_seconds = 900\n\n"
            f"[profile chained]\nrole_arn = {self.roles['cross-account']}\nsource_profile = deploy\n")

    def test_assumed_role_publishes(self):
        self.write_profiles(self.secret)
        for profile in ("deploy", "chained"):
            with self.subTest(profile=profile):
                r = self.sync({"AWS_ENDPOINT_URL_STS": self.server.endpoint}, "--profile", profile)
                self.assert_published(r)
                self.assert_no_secret(r)
                self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in self.files]})

    def test_a_wrong_source_secret_is_named(self):
        self.write_profiles("not-the-secret-" + uuid.uuid4().hex)
        r = self.sync({"AWS_ENDPOINT_URL_STS": self.server.endpoint}, "--profile", "deploy")
        self.assert_nothing_published(r)
        self.assertIn("sts:AssumeRole " + self.roles["deploy"], r[2], r.describe())
        self.assertIn("source profile's access key ID and secret key", r[2], r.describe())
        self.assertNotIn(self.key_id, r[2], "the full key ID is never printed")


class TestRefresh(CredSourceCase):
    def test_expired_token_answer_gets_a_refresh_and_a_retry(self):
        ecs = self.fake(ContainerFake(self.creds()))
        self.proxy.inject(status=400, code="ExpiredToken", op="PutObject", count=1)
        r = self.sync({"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": ecs.path,
                       "SITESYNC_CONTAINER_CREDENTIALS_HOST": ecs.endpoint}, endpoint=self.proxy.endpoint)
        self.assert_published(r)
        self.assertEqual(self.proxy.pending_faults(), 0, "the ExpiredToken answer was given")
        self.assertEqual(ecs.fetches(), 2, "one fetch at the start, one after ExpiredToken")
        summary = harness.parse_json_lines(r[1])[-1]
        self.assertEqual(summary.get("failed"), 0, r.describe())

    def test_watch_refreshes_before_expiry_and_not_on_every_request(self):
        from test_watch import Watcher

        # The first credentials expire in 5 min 12 s: with the 5-minute refresh margin they are due after ~12 s.
        # The next ones last an hour.
        ecs = self.fake(ContainerFake(self.creds(), lifetimes=[312, 3600]))
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "HOME": self.home,
            "XDG_STATE_HOME": os.path.join(self.home, ".local", "state"),
            "XDG_CONFIG_HOME": os.path.join(self.home, ".config"),
            "XDG_CACHE_HOME": os.path.join(self.home, ".cache"), "TMPDIR": self.tmp,
            "AWS_REGION": harness.REGION, "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": ecs.path,
            "SITESYNC_CONTAINER_CREDENTIALS_HOST": ecs.endpoint,
        }
        for k in harness._PASSTHROUGH_ENV:
            if k in os.environ:
                env[k] = os.environ[k]
        cwd = os.path.join(self.tmp, "cwd")
        os.makedirs(cwd)
        w = Watcher(["watch", self.src, f"s3://{self.bucket}", "--endpoint", self.proxy.endpoint, "--json"], env,
                    cwd, os.path.join(self.tmp, "watch.stderr"))
        self.addCleanup(w.stop)
        started = time.monotonic()
        w.wait_summary(0, timeout=60, batch=0)
        self.assertEqual(ecs.fetches(), 1, w.describe())

        # Edits before the refresh is due: published with the first credentials.
        mark = w.mark()
        Path(self.src, "index.html").write_text("<p>edit 1</p>")
        w.wait_keys("upload", ["index.html"], mark, timeout=30)
        self.assertEqual(ecs.fetches(), 1, "no fetch per request while the credentials are good")

        # Past the refresh point (and long before the first credentials expire): the next batch fetches again.
        time.sleep(max(0.0, started + 14 - time.monotonic()))
        for n in range(2, 6):
            mark = w.mark()
            Path(self.src, "index.html").write_text(f"<p>edit {n}</p>")
            Path(self.src, f"new-{n}.html").write_text(f"<p>new {n}</p>")
            w.wait_keys("upload", ["index.html", f"new-{n}.html"], mark, timeout=30)
        self.assertTrue(w.alive(), w.describe())
        self.assertEqual(ecs.fetches(), 2, "one refresh, then the hour-long credentials are kept")
        remote = self.remote()
        self.assertEqual(remote["index.html"], b"<p>edit 5</p>")
        self.assertEqual(remote["new-5.html"], b"<p>new 5</p>")
        failed = [e for _t, e in w.events if e.get("event") == "summary" and e.get("failed")]
        self.assertEqual(failed, [], w.describe())


if __name__ == "__main__":
    unittest.main(verbosity=2)
