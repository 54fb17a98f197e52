"""Integration tests of the credential chain (issue 13, points 1 and 2's provider side) with the real binary against
moto_server with SigV4 checking on (S3, IAM and STS on one port): a profile with role_arn + source_profile publishes
with the assumed role's temporary keys (moto 5.2.1 verifies them), a chained role too, a wrong source secret fails
with a clear message and exit 2; `--profile P` beats AWS_ACCESS_KEY_ID in the environment (botocore's rule) while
AWS_PROFILE does not; credential_process works, and a failing script or bad JSON is a clear error.

What was uploaded is checked with boto3 (the server's own keys), and which keys signed the uploads is read from the
Authorization headers the FaultProxy recorded. The sources that need fakes of their own (IMDS, the container
endpoint, SSO, web identity) are tested in test_credential_sources.py.

    SITESYNC_BIN=$PWD/build/cli/sitesync python3 -m unittest -v tests/integration/test_credentials.py
"""

from __future__ import annotations

import json
import os
import re
import stat
import sys
import tempfile
import textwrap
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402

BIN_OK, BIN_WHY = harness.sitesync_available()
needs_sitesync = unittest.skipUnless(BIN_OK, BIN_WHY)

ACCOUNT = "123456789012"  # moto's default account
DEPLOY_ROLE = f"arn:aws:iam::{ACCOUNT}:role/sitesync-deploy"
TOP_ROLE = f"arn:aws:iam::{ACCOUNT}:role/sitesync-top"
SITE = {"index.html": b"<h1>hello</h1>", "css/site.css": b"body{}", "a/b/page.html": b"<p>page</p>"}


class CredentialChainCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        harness.start_moto_and_proxy(cls)
        cls.s3 = cls.server.boto3_s3()
        import boto3

        iam = boto3.client("iam", endpoint_url=cls.server.endpoint, region_name=harness.REGION,
                           aws_access_key_id=cls.server.access_key_id,
                           aws_secret_access_key=cls.server.secret_access_key)
        trust = json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]})
        allow_all = json.dumps({"Version": "2012-10-17",
                                "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
        for arn in (DEPLOY_ROLE, TOP_ROLE):
            name = arn.rsplit("/", 1)[1]
            iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)
            iam.put_role_policy(RoleName=name, PolicyName="allow-all", PolicyDocument=allow_all)

    def setUp(self):
        harness.last_run = None
        self.proxy.clear_faults()
        self.proxy.reset_counts()
        self.proxy.recorded.clear()
        self.proxy.record_bodies = True
        self._tmp = tempfile.TemporaryDirectory(prefix="sitesync-credentials-")
        self.addCleanup(self._tmp.cleanup)
        self.tmp = self._tmp.name
        self.home = os.path.join(self.tmp, "home")
        os.makedirs(os.path.join(self.home, ".aws"))
        self.bucket = harness.new_bucket_name(self._testMethodName[5:])
        self.s3.create_bucket(Bucket=self.bucket)
        self.source = os.path.join(self.tmp, "site")
        harness.make_site(self.source, SITE)

    def tearDown(self):
        self.proxy.record_bodies = False
        if harness.test_failed(self):
            if harness.last_run is not None:
                sys.stderr.write(f"\n===== last sitesync run ({self.id()}) =====\n{harness.last_run.describe()}\n")
            sys.stderr.write(f"===== proxy log =====\n{harness.tail(self.proxy.log_text(), 6000)}\n")
            self.server.dump_log(f"moto server log for {self.id()}", limit=6000)

    # -- helpers -------------------------------------------------------------------------------------------------
    def write_aws(self, credentials: str = "", config: str = ""):
        for name, text in (("credentials", credentials), ("config", config)):
            with open(os.path.join(self.home, ".aws", name), "w") as f:
                f.write(textwrap.dedent(text))

    def base_keys(self, secret: str | None = None) -> str:
        return (f"aws_access_key_id = {self.server.access_key_id}\n"
                f"aws_secret_access_key = {secret or self.server.secret_access_key}\n")

    def sync(self, *extra, env=None):
        env_extra = {"AWS_ENDPOINT_URL_STS": self.proxy.endpoint}
        env_extra.update(env or {})
        args = ["sync", self.source, f"s3://{self.bucket}", "--endpoint", self.proxy.endpoint, "-v", *extra]
        return harness.run_sitesync(args, env_extra=env_extra, home=self.home, timeout=120)

    def assertExit(self, res, code):
        self.assertEqual(res.returncode, code, f"expected exit {code}\n{res.describe()}")

    def assertPublished(self):
        listed = harness.list_bucket(self.s3, self.bucket, head=False)
        self.assertEqual(set(listed), set(SITE), listed)
        for key, body in SITE.items():
            self.assertEqual(harness.get_bytes(self.s3, self.bucket, key), body, key)

    def signing_keys(self, op: str) -> set[str]:
        """The access key IDs in the Authorization headers of the recorded requests of operation `op`."""
        keys = set()
        for rec in list(self.proxy.recorded):
            if rec.op != op:
                continue
            m = re.search(r"Credential=([^/]+)/", rec.header("Authorization") or "")
            if m:
                keys.add(m.group(1))
        return keys

    def assertNoSecrets(self, res, *secrets):
        for s in (self.server.secret_access_key, *secrets):
            self.assertNotIn(s, res.stdout + res.stderr)

    # -- assumed roles -------------------------------------------------------------------------------------------
    @needs_sitesync
    def test_role_with_source_profile_publishes_with_the_roles_keys(self):
        self.write_aws(credentials="[base]\n" + self.base_keys(),
                       config=f"[profile deploy]\nrole_arn = {DEPLOY_ROLE}\nsource_profile = base\n"
                              "role_session_name = integration\n")
        res = self.sync("--profile", "deploy")
        self.assertExit(res, 0)
        creds_file = os.path.join(self.home, ".aws", "credentials")
        self.assertIn(f"credentials from assumed role {DEPLOY_ROLE} via profile deploy (source profile base in "
                      f"{creds_file})", res.stderr)
        self.assertPublished()
        # STS was called with the base keys; every upload was signed with the role's temporary keys.
        keys = self.signing_keys("PutObject")
        self.assertTrue(keys, "no PutObject recorded")
        self.assertEqual({k[:4] for k in keys}, {"ASIA"}, keys)
        self.assertNotIn(self.server.access_key_id, self.signing_keys("PutObject"))
        self.assertNoSecrets(res)

    @needs_sitesync
    def test_check_names_the_source(self):
        self.write_aws(credentials="[base]\n" + self.base_keys(),
                       config=f"[profile deploy]\nrole_arn = {DEPLOY_ROLE}\nsource_profile = base\n")
        res = harness.run_sitesync(["check", f"s3://{self.bucket}", "--endpoint", self.proxy.endpoint, "--profile",
                                    "deploy", "--json"], env_extra={"AWS_ENDPOINT_URL_STS": self.proxy.endpoint},
                                   home=self.home)
        self.assertExit(res, 0)
        lines = {e["name"]: e for e in harness.parse_json_lines(res.stdout) if e.get("event") == "check"}
        self.assertTrue(lines["credentials"]["ok"], lines["credentials"])
        self.assertIn(f"assumed role {DEPLOY_ROLE} via profile deploy", lines["credentials"]["detail"])
        self.assertTrue(lines["bucket"]["ok"], lines["bucket"])

    @needs_sitesync
    def test_chained_role(self):
        self.write_aws(credentials="[base]\n" + self.base_keys(),
                       config=f"[profile deploy]\nrole_arn = {DEPLOY_ROLE}\nsource_profile = base\n"
                              f"[profile top]\nrole_arn = {TOP_ROLE}\nsource_profile = deploy\n")
        res = self.sync("--profile", "top")
        self.assertExit(res, 0)
        self.assertIn(f"credentials from assumed role {TOP_ROLE} via profile top (source assumed role {DEPLOY_ROLE} "
                      "via profile deploy (source profile base in", res.stderr)
        self.assertPublished()
        keys = self.signing_keys("PutObject")
        self.assertTrue(keys and all(k.startswith("ASIA") for k in keys), keys)

    @needs_sitesync
    def test_wrong_source_secret_fails_clearly_before_any_upload(self):
        wrong = "wrongSECRETwrongSECRETwrongSECRET0000000"
        self.write_aws(credentials="[base]\n" + self.base_keys(secret=wrong),
                       config=f"[profile deploy]\nrole_arn = {DEPLOY_ROLE}\nsource_profile = base\n")
        res = self.sync("--profile", "deploy")
        self.assertExit(res, 2)
        self.assertIn(DEPLOY_ROLE, res.stderr)
        self.assertRegex(res.stderr, r"(?i)signature|secret")
        self.assertEqual(self.proxy.count("PutObject"), 0)
        self.assertEqual(harness.list_bucket(self.s3, self.bucket, head=False), {})
        self.assertNoSecrets(res, wrong)

    @needs_sitesync
    def test_source_profile_cycle_is_a_config_error(self):
        self.write_aws(config=f"[profile a]\nrole_arn = {DEPLOY_ROLE}\nsource_profile = b\n"
                              f"[profile b]\nrole_arn = {TOP_ROLE}\nsource_profile = a\n")
        res = self.sync("--profile", "a")
        self.assertExit(res, 2)
        self.assertIn("a -> b -> a", res.stderr)
        self.assertEqual(self.proxy.total(), 0)

    # -- precedence ----------------------------------------------------------------------------------------------
    @needs_sitesync
    def test_explicit_profile_beats_environment_keys(self):
        self.write_aws(credentials="[site]\n" + self.base_keys())
        bogus = {"AWS_ACCESS_KEY_ID": "AKIAENVIRONMENTBOGUS", "AWS_SECRET_ACCESS_KEY": "bogusSECRETbogusSECRET00"}
        res = self.sync("--profile", "site", env=bogus)
        self.assertExit(res, 0)
        self.assertIn("credentials from profile site in", res.stderr)
        self.assertPublished()
        self.assertEqual(self.signing_keys("PutObject"), {self.server.access_key_id})

        # AWS_PROFILE is not an explicit profile: the environment's keys come first (and are refused here).
        res = self.sync(env={**bogus, "AWS_PROFILE": "site"})
        self.assertExit(res, 1)
        self.assertIn("credentials from environment", res.stderr)

    # -- credential_process --------------------------------------------------------------------------------------
    def script(self, name: str, body: str) -> str:
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write("#!/bin/sh\n" + body)
        os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)
        return path

    @needs_sitesync
    def test_credential_process(self):
        doc = json.dumps({"Version": 1, "AccessKeyId": self.server.access_key_id,
                          "SecretAccessKey": self.server.secret_access_key})
        path = self.script("creds.sh", f"cat <<'EOF'\n{doc}\nEOF\n")
        self.write_aws(config=f"[profile proc]\ncredential_process = {path} --profile proc\n")
        res = self.sync("--profile", "proc")
        self.assertExit(res, 0)
        self.assertIn("credentials from credential_process of profile proc", res.stderr)
        self.assertPublished()
        self.assertNoSecrets(res)

    @needs_sitesync
    def test_credential_process_that_fails(self):
        path = self.script("fails.sh", "echo 'token expired: run corp-login' >&2\nexit 3\n")
        self.write_aws(config=f"[profile proc]\ncredential_process = {path}\n")
        res = self.sync("--profile", "proc")
        self.assertExit(res, 2)
        self.assertIn("credential_process", res.stderr)
        self.assertIn("proc", res.stderr)
        self.assertIn("3", res.stderr)
        self.assertEqual(self.proxy.total(), 0)

    @needs_sitesync
    def test_credential_process_with_bad_json(self):
        path = self.script("bad.sh", "echo '{\"Version\": 1, \"AccessKeyId\": '\n")
        self.write_aws(config=f"[profile proc]\ncredential_process = {path}\n")
        res = self.sync("--profile", "proc")
        self.assertExit(res, 2)
        self.assertIn("credential_process", res.stderr)
        self.assertRegex(res.stderr, r"(?i)json")
        self.assertEqual(self.proxy.total(), 0)

    # -- nothing found -------------------------------------------------------------------------------------------
    @needs_sitesync
    def test_no_credentials_names_every_place(self):
        res = self.sync()
        self.assertExit(res, 2)
        for place in ("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set", "AWS_WEB_IDENTITY_TOKEN_FILE",
                      os.path.join(self.home, ".aws", "credentials"), "container credentials",
                      "EC2 instance metadata"):
            self.assertIn(place, res.stderr)
        self.assertEqual(self.proxy.total(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
