"""The recipes of docs/recipes.md and the IAM policy of docs/iam-policy.md, run as written against moto_server
(S3 + CloudFront, SigV4 checking on), so that the docs and the tool cannot drift apart.

Runnable blocks are marked in the markdown with `<!-- recipe: NAME -->` on the line before the fence; this file
extracts them, nothing is copied here. What the test changes, visibly:
- the site generators (hugo, zola, bundle exec jekyll, npx @11ty/eleventy) are not installed: stand-ins of the
  same name come first on PATH (FAKE_GENERATOR below) and write a small site into the generator's output folder
  (public/ or _site/); with --watch / serve they change a page a moment later;
- sitesync is pointed at the local S3 and CloudFront by a sitesync.yaml (endpoint:, cdn: endpoint:) in the
  folder the commands run in, and SITE_BUCKET names the test's bucket;
- in the CI files, steps that only install tools or fetch credentials (`uses:`, "Install sitesync",
  `before_script:`) are not run: the credentials come from the environment, as those steps would provide them.
  The `sitesync check` preflight steps run in their own test (test_ci_preflight_steps).
Outcomes are checked with boto3: every file of the site in the bucket, an invalidation made.

    SITESYNC_BIN=$PWD/build/cli/sitesync python3 -m unittest -v tests/integration/test_recipes.py
"""

from __future__ import annotations

import base64
import datetime
import fnmatch
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import uuid
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cred_fakes  # noqa: E402
import harness  # noqa: E402

BIN_OK, BIN_WHY = harness.sitesync_available()
needs_sitesync = unittest.skipUnless(BIN_OK, BIN_WHY)

try:
    import yaml  # Debian python3-yaml / the machine's python
except ImportError:  # pragma: no cover - reported as a skip
    yaml = None
needs_yaml = unittest.skipUnless(yaml is not None, "python3 cannot import yaml: the CI recipes are not checked")

DOCS = harness.REPO_ROOT / "docs"
RECIPE_RE = re.compile(r"<!-- recipe: ([\w-]+) -->\s*\n```(\w+)\n(.*?)\n```", re.S)

# A placeholder command of a build that does not have it yet says exactly this (cli/check.cc before it is built).
PLACEHOLDER_RE = re.compile(r"sitesync: (\w+) is not built yet")


def read_text(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def recipes(page: str) -> dict:
    """{name: (language, text)} of the marked blocks of docs/PAGE."""
    text = (DOCS / page).read_text(encoding="utf-8")
    found = {}
    for name, lang, body in RECIPE_RE.findall(text):
        if name in found:
            raise AssertionError(f"docs/{page}: recipe {name} is marked twice")
        found[name] = (lang, body)
    return found


# The stand-in for every generator; its name on PATH says which one it plays. It writes the files below into
# the generator's output folder. `--watch` or `serve`: the site, then after WATCH_DELAY seconds a changed page,
# then it waits (at most 60 s) to be killed, like a real watcher.
FAKE_GENERATOR = r'''#!/usr/bin/env python3
"""STAND-IN for a site generator (the real one is not installed on the test machine)."""
import os, shutil, sys, time
name = os.path.basename(sys.argv[0])
args = sys.argv[1:]
out = {"hugo": "public", "zola": "public", "bundle": "_site", "npx": "_site"}[name]
if name == "bundle" and args[:3] != ["exec", "jekyll", "build"]:
    sys.exit(f"stand-in bundle: only 'exec jekyll build' is played, not {args}")
if name == "npx" and args[:1] != ["@11ty/eleventy"]:
    sys.exit(f"stand-in npx: only '@11ty/eleventy' is played, not {args}")
if name == "zola" and args[:1] not in (["build"], ["serve"]):
    sys.exit(f"stand-in zola: only build and serve are played, not {args}")
watching = "--watch" in args or "serve" in args
print(f"[stand-in {name} {' '.join(args)}: writing {out}/]", file=sys.stderr, flush=True)
SITE = {
    "index.html": "<!doctype html><title>Home</title><a href=posts/hello/>hello</a>",
    "404.html": "<!doctype html><title>Not found</title>",
    "css/site.css": "body{margin:0}",
    "img/logo.svg": "<svg xmlns='http://www.w3.org/2000/svg'/>",
    "posts/hello/index.html": "<!doctype html><title>Hello</title><p>first post",
    "posts/changed/index.html": "<!doctype html><p>before",
}
def write(files):
    for rel, text in files.items():
        path = os.path.join(out, rel)
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path + ".tmp", "w") as f:
            f.write(text)
        os.replace(path + ".tmp", path)
if not watching:
    if name == "zola":
        shutil.rmtree(out, ignore_errors=True)  # zola build deletes its output folder first
    write(SITE)
    sys.exit(0)
if not os.path.isdir(out):
    write(SITE)
time.sleep(float(os.environ.get("WATCH_DELAY", "1.5")))
write({"posts/changed/index.html": "<!doctype html><p>after a save"})
print(f"[stand-in {name}: rebuilt posts/changed/index.html]", file=sys.stderr, flush=True)
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    time.sleep(0.2)
'''

SITE_KEYS = {"index.html", "404.html", "css/site.css", "img/logo.svg", "posts/hello/index.html",
             "posts/changed/index.html"}


@needs_sitesync
class RecipeCase(unittest.TestCase):
    server: harness.MotoServer
    proxy: harness.FaultProxy

    @classmethod
    def setUpClass(cls):
        harness.start_moto_and_proxy(cls)
        cls.s3 = cls.server.boto3_s3()
        cls.cf = cls.server.boto3_cloudfront()

    def setUp(self):
        self.proxy.clear_faults()
        self.proxy.reset_counts()
        self._tmp = tempfile.TemporaryDirectory(prefix="sitesync-recipe-")
        self.addCleanup(self._tmp.cleanup)
        self.tmp = self._tmp.name
        self.home = os.path.join(self.tmp, "home")
        self.project = os.path.join(self.tmp, "project")
        self.bin = os.path.join(self.tmp, "bin")
        for d in (self.home, self.project, self.bin):
            os.makedirs(d)
        os.symlink(harness.sitesync_bin(), os.path.join(self.bin, "sitesync"))
        fake = os.path.join(self.bin, "fake-generator")
        with open(fake, "w", encoding="utf-8") as f:
            f.write(FAKE_GENERATOR)
        os.chmod(fake, 0o755)
        for name in ("hugo", "zola", "bundle", "npx"):
            os.symlink(fake, os.path.join(self.bin, name))
        self.bucket = harness.new_bucket_name(self._testMethodName[5:])
        self.s3.create_bucket(Bucket=self.bucket)
        self.dist = harness.create_distribution(self.cf, f"{self.bucket}.s3.amazonaws.com", comment=self.id())
        # The test's only addition to the recipes: where S3 and CloudFront are.
        with open(os.path.join(self.project, "sitesync.yaml"), "w", encoding="utf-8") as f:
            f.write(f"endpoint: {self.proxy.endpoint}\ncdn:\n  endpoint: {self.proxy.endpoint}\n")
        self.last = ""

    def tearDown(self):
        if harness.test_failed(self):
            sys.stderr.write(f"\n===== last recipe run ({self.id()}) =====\n{harness.tail(self.last, 8000)}\n")
            sys.stderr.write(f"===== proxy log =====\n{harness.tail(self.proxy.log_text(), 4000)}\n")

    def env(self, extra: dict | None = None, bucket: str | None = None, static_keys: bool = True) -> dict:
        """The recipe's environment. static_keys=False: no AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY from the test
        (the keyless recipes get their credentials the way the recipe says)."""
        env = {
            "PATH": f"{self.bin}:/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "HOME": self.home,
            "XDG_STATE_HOME": os.path.join(self.home, ".local", "state"),
            "XDG_CONFIG_HOME": os.path.join(self.home, ".config"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "TMPDIR": self.tmp,  # a recipe's mktemp stays in the test's folder
            "WATCH_DELAY": "3",  # after the initial sync of the 6 files, so the change is a batch of its own
        }
        env.update(extra or {})
        if static_keys:
            env.update(self.server.sitesync_env())
        # The test's bucket and moto's region, whatever the recipe sets.
        env["SITE_BUCKET"] = bucket or self.bucket
        env["AWS_REGION"] = harness.REGION
        return env

    def run_shell(self, script: str, extra_env: dict | None = None, timeout: float = 120, bucket: str | None = None,
                  static_keys: bool = True):
        """bash -e -o pipefail -c SCRIPT in the project folder, in its own session (stopped by its id)."""
        proc = subprocess.Popen(["bash", "--noprofile", "--norc", "-e", "-o", "pipefail", "-c", script],
                                cwd=self.project, env=self.env(extra_env, bucket, static_keys),
                                stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the session this test started
            out, _ = proc.communicate(timeout=30)
            self.last = f"$ {script}\n(timed out)\n{out.decode('utf-8', 'replace')}"
            raise AssertionError(f"the recipe did not finish within {timeout}s\n{self.last}")
        self.last = f"$ {script}\nexit {proc.returncode}\n{out.decode('utf-8', 'replace')}"
        return proc.returncode, out.decode("utf-8", "replace")

    def run_watch_shell(self, script: str, timeout: float = 90, extra_env: dict | None = None,
                        static_keys: bool = True):
        """A watch recipe: run it, wait until the stand-in's change is published, then Ctrl-C (SIGINT to the
        recipe's process group, as a terminal does). Returns (exit code, output)."""
        out_path = os.path.join(self.tmp, "watch.out")
        with open(out_path, "wb") as out:
            proc = subprocess.Popen(["bash", "--noprofile", "--norc", "-e", "-o", "pipefail", "-c", script],
                                    cwd=self.project, env=self.env(extra_env, None, static_keys),
                                    stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        self.addCleanup(self._kill_session, proc)

        def published():
            if proc.poll() is not None:
                raise AssertionError(f"the watch recipe ended early (exit {proc.returncode}):\n{read_text(out_path)}")
            try:
                body = harness.get_bytes(self.s3, self.bucket, "posts/changed/index.html")
            except self.s3.exceptions.NoSuchKey:
                return False
            return b"after a save" in body

        try:
            harness.wait_until(published, timeout=timeout, interval=0.2, what="the rebuilt page in the bucket")
            # The batch's invalidation comes right after its uploads.
            harness.wait_until(lambda: len(harness.invalidations(self.cf, self.dist)) >= 2, timeout=20,
                               interval=0.2, what="the batch's invalidation")
        finally:
            self.last = read_text(out_path)
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the watch recipe did not stop within 30 s of Ctrl-C\n{self.last}") from None
        self.last = f"$ {script}\nexit {proc.returncode}\n" + read_text(out_path)
        return proc.returncode, self.last

    @staticmethod
    def _kill_session(proc):
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)

    def assertRecordIn(self, folder: str, what: str):
        """sitesync's record of this run is in `folder`, the path the recipe caches between CI runs."""
        self.assertTrue(record_files(folder), f"{what}: no record under {folder}\n{self.last}")

    def assertPublished(self, changed: bool = False, min_invalidations: int = 1):
        objects = harness.list_bucket(self.s3, self.bucket, head=True)
        self.assertEqual(set(objects), SITE_KEYS, self.last)
        self.assertEqual(objects["index.html"][2], "text/html; charset=utf-8")
        body = harness.get_bytes(self.s3, self.bucket, "posts/changed/index.html")
        self.assertIn(b"after a save" if changed else b"before", body)
        invs = harness.invalidations(self.cf, self.dist)
        self.assertGreaterEqual(len(invs), min_invalidations, self.last)
        self.assertIn("/posts/hello/", invs[0]["Paths"])
        return invs


class ShellRecipesTest(RecipeCase):
    """Every generator recipe: a build then `sitesync sync ... --delete --distribution auto`."""

    def run_build_recipe(self, name: str):
        lang, script = recipes("recipes.md")[name]
        self.assertEqual(lang, "sh")
        # A stale object from an earlier build: --delete removes it.
        self.s3.put_object(Bucket=self.bucket, Key="posts/removed/index.html", Body=b"gone from the build")
        rc, out = self.run_shell(script)
        self.assertEqual(rc, 0, self.last)
        self.assertIn("[stand-in", out, "the generator line ran (as the stand-in)")
        self.assertPublished()
        self.assertIn("/posts/removed/", harness.invalidations(self.cf, self.dist)[0]["Paths"])

    def test_hugo(self):
        self.run_build_recipe("hugo")

    def test_zola(self):
        self.run_build_recipe("zola")

    def test_jekyll(self):
        self.run_build_recipe("jekyll")

    def test_eleventy(self):
        self.run_build_recipe("eleventy")

    def run_watch_recipe(self, name: str):
        lang, script = recipes("recipes.md")[name]
        self.assertEqual(lang, "sh")
        self.assertIn("sitesync watch", script)
        rc, out = self.run_watch_shell(script)
        self.assertEqual(rc, 0, f"Ctrl-C: the batch in flight finishes, then exit 0\n{out}")
        self.assertIn("rebuilt posts/changed/index.html", out)
        invs = self.assertPublished(changed=True, min_invalidations=2)
        self.assertIn("/posts/changed/", invs[-1]["Paths"])

    def test_hugo_watch(self):
        self.run_watch_recipe("hugo-watch")

    def test_zola_watch(self):
        self.run_watch_recipe("zola-watch")

    def test_jekyll_watch(self):
        self.run_watch_recipe("jekyll-watch")

    def test_eleventy_watch(self):
        self.run_watch_recipe("eleventy-watch")

    def test_every_marked_recipe_is_tested(self):
        tested = {"hugo", "zola", "jekyll", "eleventy", "hugo-watch", "zola-watch", "jekyll-watch", "eleventy-watch",
                  "github-actions", "github-actions-web-identity", "gitlab-ci", "codebuild", "sso-profile", "sso-watch",
                  "cross-account-profile", "cross-account"}
        self.assertEqual(set(recipes("recipes.md")), tested)
        self.assertEqual(set(recipes("iam-policy.md")), {"iam-policy", "iam-kms", "trust-github", "trust-gitlab",
                                                          "cross-account-source", "cross-account-trust"})


# --------------------------------------------------------------------------------------------------------------
# CI files
# --------------------------------------------------------------------------------------------------------------


def is_check(line: str) -> bool:
    return line.strip().startswith("sitesync check")


def github_job(name: str = "github-actions"):
    """(workflow, job env, [(label, run script)], [labels of the steps not run], [the steps]) of a GitHub recipe."""
    lang, text = recipes("recipes.md")[name]
    assert lang == "yaml", lang
    doc = yaml.safe_load(text)
    (job,) = doc["jobs"].values()
    env = {k: str(v) for k, v in {**(doc.get("env") or {}), **(job.get("env") or {})}.items()}
    run, skipped = [], []
    for step in job["steps"]:
        label = step.get("name") or step.get("uses")
        if "uses" in step or step.get("name") == "Install sitesync":
            skipped.append(label)  # installs tools or fetches credentials: the test provides those
        else:
            run.append((label, step["run"]))
    return doc, env, run, skipped, job["steps"]


def is_install(line: str) -> bool:
    """A before_script line that installs tools (apt-get, the sitesync .deb): not run here."""
    return "apt-get" in line


def gitlab_job():
    lang, text = recipes("recipes.md")["gitlab-ci"]
    assert lang == "yaml", lang
    doc = yaml.safe_load(text)
    job = doc["publish"]
    env = {k: str(v) for k, v in (job.get("variables") or {}).items()}
    return doc, env, list(job["script"]), list(job.get("before_script") or [])


def codebuild_spec():
    lang, text = recipes("recipes.md")["codebuild"]
    assert lang == "yaml", lang
    doc = yaml.safe_load(text)
    env = {k: str(v) for k, v in ((doc.get("env") or {}).get("variables") or {}).items()}
    return doc, env


def cache_step(steps) -> dict:
    """The `with:` of the GitHub job's actions/cache step."""
    (step,) = [s for s in steps if s.get("uses", "").startswith("actions/cache@")]
    return step["with"]


def record_files(folder: str) -> list:
    """The SQLite files under folder (sitesync's record: one per destination)."""
    found = []
    for d, _dirs, files in os.walk(folder):
        for name in files:
            path = os.path.join(d, name)
            with open(path, "rb") as f:
                if f.read(16) == b"SQLite format 3\x00":
                    found.append(path)
    return found


# --------------------------------------------------------------------------------------------------------------
# Where the keyless recipes get their credentials: loopback stand-ins (threads of this process, stopped by the
# class cleanup): cred_fakes' container credentials endpoint and IAM Identity Center portal, and two of the
# recipes' own, GitHub's OIDC token service and an STS that checks the documented trust policy. Every session they
# hand out is a real AssumeRole session of moto's role ROLE_NAME (auth on), so the S3 and CloudFront requests that
# follow are verified by moto with that role's policy (iam-policy.md, whole-bucket variation).
# --------------------------------------------------------------------------------------------------------------

ROLE_NAME = "sitesync-publish"  # the recipes' and iam-policy.md's role, in moto's account
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
GITHUB_SUB = "repo:my-org/my-site:ref:refs/heads/main"  # a push to main of the repository of iam-policy.md
GITLAB_ISSUER = "https://gitlab.com"
GITLAB_SUB = "project_path:my-group/my-site:ref_type:branch:ref:main"
STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"


def in_moto_account(text: str) -> str:
    """The docs' example accounts (111122223333 publishing, 444455556666 owning the site, 123456789012) are all
    moto's one account here: moto checks a role's trust policy, the caller's sts:AssumeRole and the external ID
    within an account just as across accounts."""
    return text.replace("111122223333", MOTO_ACCOUNT).replace("444455556666", MOTO_ACCOUNT)


def iso_utc(when: datetime.datetime) -> str:
    return when.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt_claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


class OidcTokens:
    """The OIDC tokens a CI system hands its jobs (JWTs). Real STS checks their signature against the provider's
    keys; the stand-in STS instead accepts exactly the tokens minted here."""

    def __init__(self):
        self.minted = set()

    def mint(self, iss: str, aud: str, sub: str, lifetime: int = 300) -> str:
        now = int(time.time())
        header = b64url(json.dumps({"alg": "RS256", "typ": "JWT", "kid": "recipe-test"}).encode())
        claims = b64url(json.dumps({"iss": iss, "aud": aud, "sub": sub, "iat": now, "nbf": now,
                                    "exp": now + lifetime, "jti": uuid.uuid4().hex}).encode())
        token = f"{header}.{claims}.{b64url(os.urandom(64))}"
        self.minted.add(token)
        return token


def trust_allows_web_identity(trust: dict, role_arn: str, claims: dict) -> bool:
    """Whether a role's trust policy lets a token with these claims call AssumeRoleWithWebIdentity: an Allow
    statement for that action whose Federated principal is the OIDC provider of the token's issuer in the role's
    account, and whose StringEquals / StringLike conditions on ISSUER:aud / ISSUER:sub hold."""
    host = urlsplit(claims["iss"]).netloc
    account = role_arn.split(":")[4]
    for st in trust["Statement"]:
        actions = [st["Action"]] if isinstance(st["Action"], str) else st["Action"]
        if st.get("Effect") != "Allow" or "sts:AssumeRoleWithWebIdentity" not in actions:
            continue
        if (st.get("Principal") or {}).get("Federated") != f"arn:aws:iam::{account}:oidc-provider/{host}":
            continue
        holds = True
        for op, conditions in (st.get("Condition") or {}).items():
            for key, wanted in conditions.items():
                provider, _, claim = key.rpartition(":")
                wanted = [wanted] if isinstance(wanted, str) else wanted
                have = claims.get(claim)
                if provider != host or not isinstance(have, str):
                    holds = False
                elif op == "StringEquals":
                    holds = holds and have in wanted
                elif op == "StringLike":
                    holds = holds and any(fnmatch.fnmatchcase(have, w) for w in wanted)
                else:
                    raise AssertionError(f"the stand-in STS does not evaluate the condition operator {op}")
        if holds:
            return True
    return False


class GitHubTokenService(cred_fakes.FakeBase):
    """GitHub's OIDC token service (ACTIONS_ID_TOKEN_REQUEST_URL with the bearer ACTIONS_ID_TOKEN_REQUEST_TOKEN):
    GET ...&audience=AUD -> {"value": a token for AUD whose subject is .sub}."""

    def __init__(self, tokens: OidcTokens):
        super().__init__(creds=None)
        self.tokens = tokens
        self.request_token = uuid.uuid4().hex
        self.sub = GITHUB_SUB
        self.request_url = f"{self.endpoint}/_apis/distributedtask/token?api-version=2.0"

    def answer(self, seen):
        if seen.headers.get("authorization", "").lower() != f"bearer {self.request_token}":
            return 401, json.dumps({"message": "bad request token"}), "application/json"
        audience = (parse_qs(urlsplit(seen.path).query).get("audience") or ["https://github.com/my-org"])[0]
        return 200, json.dumps({"value": self.tokens.mint(GITHUB_ISSUER, audience, self.sub)}), "application/json"

    def token(self, audience: str) -> str:
        """What the credentials action does first: the job's token for `audience`, from this service."""
        import requests

        r = requests.get(f"{self.request_url}&audience={audience}", timeout=10,
                         headers={"Authorization": f"bearer {self.request_token}"})
        r.raise_for_status()
        return r.json()["value"]


class TrustCheckingSts(cred_fakes.FakeBase):
    """STS's AssumeRoleWithWebIdentity as the recipes need it: unlike cred_fakes.StsWebIdentityFake (one fixed
    token, fixed keys), it evaluates the role's documented trust policy (.trust[role ARN]) against the token's
    claims and hands out a fresh moto AssumeRole session of the role, so that the documented trust policy and
    the role's policy are both what decides."""

    def __init__(self, tokens: OidcTokens, session):
        super().__init__(creds=None)
        self.tokens = tokens
        self.session = session
        self.trust = {}

    def forms(self) -> list[dict]:
        return [{k: v[0] for k, v in parse_qs(s.body.decode()).items()} for s in self.seen() if s.method == "POST"]

    def answer(self, seen):
        param = {k: v[0] for k, v in parse_qs(seen.body.decode()).items()}

        def error(status, code, message):
            return status, cred_fakes._sts_error(code, message), "text/xml"

        if seen.method != "POST" or param.get("Action") != "AssumeRoleWithWebIdentity":
            return error(400, "InvalidAction", "only AssumeRoleWithWebIdentity here")
        if "authorization" in seen.headers:
            return error(400, "InvalidRequest", "AssumeRoleWithWebIdentity is not signed")
        token, role_arn = param.get("WebIdentityToken", ""), param.get("RoleArn", "")
        if token not in self.tokens.minted:
            return error(400, "InvalidIdentityToken", "Couldn't verify the token")
        claims = jwt_claims(token)
        if claims["exp"] < time.time():
            return error(400, "ExpiredTokenException", "Token expired")
        if not param.get("RoleSessionName"):
            return error(400, "ValidationError", "RoleSessionName is required")
        trust = self.trust.get(role_arn)
        if trust is None or not trust_allows_web_identity(trust, role_arn, claims):
            return error(403, "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity")
        c = self.session(param["RoleSessionName"])
        return 200, (
            f'<AssumeRoleWithWebIdentityResponse xmlns="{STS_NS}"><AssumeRoleWithWebIdentityResult>'
            f'<Credentials><AccessKeyId>{c["AccessKeyId"]}</AccessKeyId>'
            f'<SecretAccessKey>{c["SecretAccessKey"]}</SecretAccessKey>'
            f'<SessionToken>{c["SessionToken"]}</SessionToken>'
            f'<Expiration>{iso_utc(c["Expiration"])}</Expiration></Credentials>'
            f'<SubjectFromWebIdentityToken>{claims["sub"]}</SubjectFromWebIdentityToken>'
            f'<AssumedRoleUser><AssumedRoleId>AROA0000:{param["RoleSessionName"]}</AssumedRoleId>'
            f'<Arn>{role_arn.replace(":iam:", ":sts:").replace(":role/", ":assumed-role/")}/'
            f'{param["RoleSessionName"]}</Arn></AssumedRoleUser>'
            f'<Provider>{urlsplit(claims["iss"]).netloc}</Provider><Audience>{claims["aud"]}</Audience>'
            f'</AssumeRoleWithWebIdentityResult><ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId>'
            f'</ResponseMetadata></AssumeRoleWithWebIdentityResponse>'), "text/xml"


class CredentialStandIns:
    """The loopback stand-ins of one test class (cred_fakes' container endpoint and SSO portal, the token
    service and the trust-checking STS above), and the moto role whose sessions they hand out."""

    def __init__(self, server: harness.MotoServer):
        import boto3

        self.tokens = OidcTokens()
        self.role_arn = f"arn:aws:iam::{MOTO_ACCOUNT}:role/{ROLE_NAME}"
        kw = dict(endpoint_url=server.endpoint, region_name=harness.REGION,
                  aws_access_key_id=server.access_key_id, aws_secret_access_key=server.secret_access_key)
        self.iam = boto3.client("iam", **kw)
        self.sts = boto3.client("sts", **kw)
        self.prepare_role({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::none"}]})
        self.github = GitHubTokenService(self.tokens)
        self.fake_sts = TrustCheckingSts(self.tokens, self.session)
        # One session of the role for the two fakes that hand out fixed credentials: moto applies the role's
        # policy of the moment (each test's) to every request signed with it.
        c = self.session("stand-ins")
        role_creds = cred_fakes.Creds(c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])
        self.container = cred_fakes.ContainerFake(role_creds, path="/v2/credentials/" + uuid.uuid4().hex,
                                                  authorization="Bearer " + uuid.uuid4().hex)
        self.sso_token = "sso-" + uuid.uuid4().hex
        # The account and role of the sso-profile recipe.
        self.portal = cred_fakes.SsoFake(role_creds, self.sso_token, "111122223333", "SitePublisher")

    def stop(self):
        for fake in (self.github, self.fake_sts, self.container, self.portal):
            fake.stop()

    def prepare_role(self, policy: dict, trust: dict | None = None):
        """ROLE_NAME with `policy`. Its trust in moto: `trust` (moto checks it on AssumeRole), else only the
        stand-ins' own identity (the test's admin user), which assumes it on behalf of a checked token."""
        admin = f"arn:aws:iam::{MOTO_ACCOUNT}:user/{harness.MotoServer.IAM_USER}"
        trust = trust or {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": admin}, "Action": "sts:AssumeRole"}]}
        try:
            self.iam.create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument=json.dumps(trust))
        except self.iam.exceptions.EntityAlreadyExistsException:
            self.iam.update_assume_role_policy(RoleName=ROLE_NAME, PolicyDocument=json.dumps(trust))
        self.iam.put_role_policy(RoleName=ROLE_NAME, PolicyName="sitesync", PolicyDocument=json.dumps(policy))

    def session(self, name: str) -> dict:
        return self.sts.assume_role(RoleArn=self.role_arn, RoleSessionName=name)["Credentials"]

    def web_identity_calls(self) -> list:
        return [f for f in self.fake_sts.forms() if f.get("Action") == "AssumeRoleWithWebIdentity"]

    def reset(self):
        """Before each test: no trust policies known to the STS, the GitHub subject of main, no requests seen."""
        self.fake_sts.trust.clear()
        self.github.sub = GITHUB_SUB
        for fake in (self.github, self.fake_sts, self.container, self.portal):
            with fake._lock:
                fake.requests.clear()
                fake._handed_out = 0
                fake.lifetimes = [3600]


# The stand-in for the AWS CLI v2's `aws sso login` (v2 is not installed here, and signing in needs a browser):
# it writes the token cache entry the CLI writes after a sign-in, for the profile's sso-session.
FAKE_AWS_CLI = r'''#!/usr/bin/env python3
"""STAND-IN for `aws sso login --profile P` (AWS CLI v2): caches a token as the CLI does after the browser sign-in."""
import configparser, datetime, hashlib, json, os, sys
args = sys.argv[1:]
if args[:2] != ["sso", "login"] or "--profile" not in args:
    sys.exit(f"stand-in aws: only 'sso login --profile P' is played, not {args}")
profile = args[args.index("--profile") + 1]
config = configparser.RawConfigParser()
config.read(os.environ.get("AWS_CONFIG_FILE") or os.path.expanduser("~/.aws/config"))
if not config.has_section(f"profile {profile}"):
    sys.exit(f"stand-in aws: The config profile ({profile}) could not be found")
session = config.get(f"profile {profile}", "sso_session")
sso = config[f"sso-session {session}"]
expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=8)
entry = {"startUrl": sso["sso_start_url"], "region": sso["sso_region"],
         "accessToken": os.environ["STAND_IN_SSO_ACCESS_TOKEN"], "expiresAt": expires.strftime("%Y-%m-%dT%H:%M:%SZ")}
cache = os.path.expanduser("~/.aws/sso/cache")
os.makedirs(cache, mode=0o700, exist_ok=True)
path = os.path.join(cache, hashlib.sha1(session.encode()).hexdigest() + ".json")
with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
    json.dump(entry, f)
print(f"[stand-in aws sso login --profile {profile}: signed in, token cached]", file=sys.stderr)
'''


def whole_bucket_policy(bucket: str, dist: str) -> dict:
    """iam-policy.md's policy with its "whole bucket" variation (the recipes publish to s3://BUCKET), as moto
    checks it."""
    policy = json.loads(json.dumps(documented_policy()).replace("arn:aws:s3:::my-site/site/*",
                                                                "arn:aws:s3:::my-site/*"))
    for st in policy["Statement"]:
        if st["Action"] == "s3:ListBucket":
            st.pop("Condition", None)
    return policy_for_moto(policy, bucket, dist)


@needs_yaml
class CiRecipesTest(RecipeCase):
    stand_ins: CredentialStandIns

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.stand_ins = CredentialStandIns(cls.server)
        cls.addClassCleanup(cls.stand_ins.stop)

    def setUp(self):
        super().setUp()
        self.stand_ins.reset()
        self.stand_ins.prepare_role(whole_bucket_policy(self.bucket, self.dist))

    def keyless_env(self, **extra) -> dict:
        """No stored keys: only where STS and the SSO portal are (the stand-ins; the test's other addition, next
        to sitesync.yaml)."""
        return {"AWS_ENDPOINT_URL_STS": self.stand_ins.fake_sts.endpoint,
                "AWS_ENDPOINT_URL_SSO": self.stand_ins.portal.endpoint, **extra}

    def assertNothingPublished(self):
        self.assertEqual(harness.list_bucket(self.s3, self.bucket, head=False), {}, self.last)

    def test_github_actions_job(self):
        """The credentials action's exchange (done here, with its role-to-assume), then the run steps with only the
        session it exports."""
        doc, env, run, skipped, steps = github_job()
        self.assertEqual(doc["permissions"]["id-token"], "write", "OIDC for the credentials")
        self.assertEqual(skipped, ["actions/checkout@v4", "peaceiris/actions-hugo@v3",
                                   "aws-actions/configure-aws-credentials@v4", "Install sitesync",
                                   "sitesync record"])
        cache = self.assertCachesTheRecord(steps)
        (action,) = [s for s in steps if s.get("uses", "").startswith("aws-actions/configure-aws-credentials@")]
        role_arn = action["with"]["role-to-assume"]
        self.assertEqual(role_arn, self.stand_ins.role_arn)
        self.stand_ins.fake_sts.trust[role_arn] = json.loads(recipes("iam-policy.md")["trust-github"][1])
        # What aws-actions/configure-aws-credentials does: the job's token for sts.amazonaws.com, the exchange
        # (unsigned), the session exported for the later steps.
        import boto3
        from botocore import UNSIGNED
        from botocore.config import Config

        sts = boto3.client("sts", endpoint_url=self.stand_ins.fake_sts.endpoint,
                           region_name=action["with"]["aws-region"],
                           config=Config(signature_version=UNSIGNED))
        c = sts.assume_role_with_web_identity(RoleArn=role_arn, RoleSessionName="GitHubActions",
                                              WebIdentityToken=self.stand_ins.github.token("sts.amazonaws.com"),
                                              DurationSeconds=3600)["Credentials"]
        env.update({"AWS_ACCESS_KEY_ID": c["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": c["SecretAccessKey"],
                    "AWS_SESSION_TOKEN": c["SessionToken"], "AWS_DEFAULT_REGION": action["with"]["aws-region"]})
        labels = [label for label, _ in run]
        self.assertEqual(labels, ["Build", "Preflight", "Publish"])
        for label, script in run:
            self.assertNotIn("${{", script, f"step {label}: an expression the test cannot evaluate")
            rc, out = self.run_shell(script, env, static_keys=False)
            self.assertEqual(rc, 0, f"step {label}\n{self.last}")
            self.assertNotIn(c["SecretAccessKey"], out)
        publish = dict(run)["Publish"]
        for option in ("--compare checksum", "--delete", "--distribution auto", "--wait"):
            self.assertIn(option, publish)
        self.assertPublished()
        # What actions/cache saves at the end of the job holds the record the publish wrote.
        self.assertRecordIn(cache["path"].replace("~", self.home, 1), "actions/cache path")
        self.assertGreaterEqual(self.proxy.count("GetInvalidation", "GET"), 1, "--wait polled the invalidation")
        self.assertEqual(len(self.stand_ins.web_identity_calls()), 1, "sitesync used the exported session")

    def assertCachesTheRecord(self, steps) -> dict:
        """The actions/cache step: before the publish, on ~/.cache/sitesync, one key per branch and run (a cache
        entry is immutable) restored by the branch's prefix."""
        cache = cache_step(steps)
        names = [s.get("name") or s.get("uses") for s in steps]
        self.assertLess(names.index("sitesync record"), names.index("Publish"), "restored before the publish")
        self.assertEqual(cache["path"], "~/.cache/sitesync")
        self.assertIn("${{ github.ref_name }}", cache["key"])
        restore = [line.strip() for line in cache["restore-keys"].splitlines() if line.strip()]
        self.assertEqual(len(restore), 1)
        self.assertTrue(cache["key"].startswith(restore[0]) and restore[0].endswith("-"), (cache["key"], restore))
        self.assertIn("${{ github.ref_name }}", restore[0])
        return cache

    def run_github_steps(self, run, env: dict) -> dict:
        """The run steps of a GitHub job in order, each in its own shell, with the runner's variables: RUNNER_TEMP,
        GITHUB_ENV (the NAME=VALUE lines a step appends are in the environment of the steps after it) and, as with
        id-token: write, ACTIONS_ID_TOKEN_REQUEST_URL / _TOKEN (the stand-in token service).
        Returns {"failed": label or None, "env": the environment after the last step run}."""
        runner_temp = os.path.join(self.tmp, "runner-temp")
        os.makedirs(runner_temp, exist_ok=True)
        github_env = os.path.join(runner_temp, "github-env")
        env = {**self.keyless_env(), **env, "RUNNER_TEMP": runner_temp, "GITHUB_ENV": github_env,
               "ACTIONS_ID_TOKEN_REQUEST_URL": self.stand_ins.github.request_url,
               "ACTIONS_ID_TOKEN_REQUEST_TOKEN": self.stand_ins.github.request_token}
        for label, script in run:
            self.assertNotIn("${{", script, f"step {label}: an expression the test cannot evaluate")
            open(github_env, "w").close()
            rc, _ = self.run_shell(script, env, static_keys=False)
            if rc != 0:
                return {"failed": label, "env": env}
            for line in read_text(github_env).splitlines():
                name, sep, value = line.partition("=")
                self.assertTrue(sep, f"step {label}: GITHUB_ENV line {line!r}")
                env[name] = value
        return {"failed": None, "env": env}

    def test_github_actions_web_identity_job(self):
        doc, env, run, skipped, steps = github_job("github-actions-web-identity")
        self.assertEqual(doc["permissions"]["id-token"], "write", "OIDC for the token step")
        self.assertEqual(skipped, ["actions/checkout@v4", "peaceiris/actions-hugo@v3", "Install sitesync",
                                   "sitesync record"])
        cache = self.assertCachesTheRecord(steps)
        self.assertEqual([label for label, _ in run], ["OIDC token for AWS", "Build", "Preflight", "Publish"])
        self.assertNotIn("AWS_ACCESS_KEY_ID", json.dumps(doc), "no keys exported")
        self.assertEqual(env["AWS_ROLE_ARN"], self.stand_ins.role_arn)
        self.stand_ins.fake_sts.trust[env["AWS_ROLE_ARN"]] = json.loads(recipes("iam-policy.md")["trust-github"][1])

        # A pull request's token is not one the trust policy accepts: the preflight fails, nothing is written.
        self.stand_ins.github.sub = "repo:my-org/my-site:pull_request"
        out = self.run_github_steps(run, env)
        self.assertEqual(out["failed"], "Preflight", self.last)
        self.assertIn("AssumeRoleWithWebIdentity", self.last)
        self.assertNothingPublished()

        self.stand_ins.github.sub = GITHUB_SUB
        refused = len(self.stand_ins.web_identity_calls())
        out = self.run_github_steps(run, env)
        self.assertIsNone(out["failed"], self.last)
        token_file = out["env"]["AWS_WEB_IDENTITY_TOKEN_FILE"]
        self.assertEqual(os.stat(token_file).st_mode & 0o077, 0, "the token file is private")
        token = read_text(token_file).strip()
        self.assertEqual(jwt_claims(token)["aud"], "sts.amazonaws.com")
        calls = self.stand_ins.web_identity_calls()[refused:]
        self.assertGreaterEqual(len(calls), 2, "the preflight and the publish each exchanged the token")
        for call in calls:
            self.assertEqual((call["RoleArn"], call["WebIdentityToken"]), (env["AWS_ROLE_ARN"], token))
        self.assertNotIn(token, self.last, "the token is never shown")
        self.assertPublished()
        self.assertGreaterEqual(self.proxy.count("GetInvalidation", "GET"), 1, "--wait polled the invalidation")
        self.assertRecordIn(cache["path"].replace("~", self.home, 1), "actions/cache path")

    def test_gitlab_ci_job(self):
        doc, env, script, before = gitlab_job()
        job = doc["publish"]
        self.assertEqual(env["AWS_ROLE_ARN"], self.stand_ins.role_arn)
        self.assertNotIn("AWS_ACCESS_KEY_ID", json.dumps(doc), "no keys exported")
        installs = [line for line in before if is_install(line)]
        self.assertEqual(len(installs), 2, "only the two install lines are not run")
        # GitLab runs before_script and script in one shell.
        lines = [line for line in before if not is_install(line)] + script
        self.assertTrue(any("AWS_WEB_IDENTITY_TOKEN_FILE" in line for line in lines))
        self.assertTrue(any(is_check(line) for line in script))
        self.assertTrue(any("--delete" in line and "--distribution auto" in line and "--compare checksum" in line
                            for line in script))
        # The record is cached per branch; GitLab caches only paths in the project folder (relative to it).
        self.assertIn("$CI_COMMIT_REF_SLUG", job["cache"]["key"])
        (cached,) = job["cache"]["paths"]
        self.assertFalse(os.path.isabs(cached), cached)
        self.stand_ins.fake_sts.trust[env["AWS_ROLE_ARN"]] = json.loads(recipes("iam-policy.md")["trust-gitlab"][1])
        ((token_name, token_spec),) = job["id_tokens"].items()

        def run_job(sub):
            # What the runner provides: the ID token (for the aud written in id_tokens:) in a variable.
            token = self.stand_ins.tokens.mint(GITLAB_ISSUER, token_spec["aud"], sub)
            # CI_PROJECT_DIR: the clone the runner runs the job in (here the recipe's folder).
            rc, out = self.run_shell("\n".join(lines), self.keyless_env(**env, **{token_name: token},
                                                                        CI_PROJECT_DIR=self.project),
                                     static_keys=False)
            self.assertNotIn(token, out, "the token is never shown")
            return rc

        # A job of another branch: refused by the trust policy, in the preflight, before anything is written.
        rc = run_job("project_path:my-group/my-site:ref_type:branch:ref:feature")
        self.assertNotEqual(rc, 0, self.last)
        self.assertIn("AssumeRoleWithWebIdentity", self.last)
        self.assertNothingPublished()

        refused = len(self.stand_ins.web_identity_calls())
        self.assertEqual(run_job(GITLAB_SUB), 0, self.last)
        self.assertRegex(self.last, rf"ok +credentials: .*web identity \(role {env['AWS_ROLE_ARN']}",
                         "the preflight names the source")
        self.assertPublished()
        calls = self.stand_ins.web_identity_calls()[refused:]
        self.assertGreaterEqual(len(calls), 2, "the preflight and the publish each exchanged the token")
        self.assertTrue(all(c["RoleArn"] == env["AWS_ROLE_ARN"] for c in calls))
        self.assertRecordIn(os.path.join(self.project, cached), "GitLab cache: paths:")
        self.assertFalse(os.path.exists(os.path.join(self.home, ".cache", "sitesync")), "nothing outside the project")

    def test_codebuild_buildspec(self):
        doc, env = codebuild_spec()
        self.assertEqual(str(doc["version"]), "0.2")
        phases = doc["phases"]
        self.assertEqual(list(phases), ["install", "pre_build", "build"])
        self.assertNotIn("AWS_ACCESS_KEY_ID", json.dumps(doc), "no keys in the buildspec")
        # CodeBuild runs every phase's commands in one shell; the install phase (downloads) is not run here.
        commands = phases["pre_build"]["commands"] + phases["build"]["commands"]
        self.assertTrue(is_check(commands[0]), "the preflight comes before the build")
        self.assertTrue(any("--compare checksum" in c for c in commands))
        (cached,) = doc["cache"]["paths"]
        self.assertTrue(cached.startswith("/root/") and cached.endswith("/**/*"), cached)
        # The container credentials endpoint, as CodeBuild provides it; here in its loopback form (FULL_URI with
        # an authorization token), as the link-local address CodeBuild uses cannot be served on this machine.
        container = self.stand_ins.container
        cred_env = {"AWS_CONTAINER_CREDENTIALS_FULL_URI": container.endpoint + container.path,
                    "AWS_CONTAINER_AUTHORIZATION_TOKEN": container.authorization}
        rc, out = self.run_shell("\n".join(commands), self.keyless_env(**env, **cred_env), static_keys=False)
        self.assertEqual(rc, 0, self.last)
        self.assertRegex(out, r"ok +credentials: .*container credentials endpoint", "the preflight names the source")
        self.assertNotIn(container.authorization.split()[1], out, "the authorization token is never shown")
        self.assertPublished()
        self.assertGreaterEqual(container.fetches(), 2, "the preflight and the publish each fetched")
        # CodeBuild's builds run as root (HOME=/root): the test's HOME stands in for it.
        folder = os.path.join(self.home, cached[len("/root/"):-len("/**/*")])
        self.assertRecordIn(folder, "buildspec cache: paths:")  # `**/*`: every file under it, at any depth
        self.assertGreaterEqual(self.proxy.count("GetInvalidation", "GET"), 1, "--wait polled the invalidation")

    def test_sso_watch(self):
        lang, config = recipes("recipes.md")["sso-profile"]
        self.assertEqual(lang, "ini")
        os.makedirs(os.path.join(self.home, ".aws"))
        with open(os.path.join(self.home, ".aws", "config"), "w", encoding="utf-8") as f:
            f.write(config + "\n")
        stand_in = os.path.join(self.bin, "aws")
        with open(stand_in, "w", encoding="utf-8") as f:
            f.write(FAKE_AWS_CLI)
        os.chmod(stand_in, 0o755)
        lang, script = recipes("recipes.md")["sso-watch"]
        self.assertEqual(lang, "sh")
        self.assertTrue(script.startswith("aws sso login --profile site\n"))
        self.assertIn('sitesync watch public "s3://$SITE_BUCKET" --profile site', script)
        # The portal's first credentials are about to expire (301 s: inside the 5 minutes the SDKs refresh ahead),
        # the next last an hour: the watch fetches again before it publishes the edit (3 s in), then no more.
        self.stand_ins.portal.lifetimes = [301, 3600]
        # Someone else's keys in the environment: the profile named on the command line wins.
        rc, out = self.run_watch_shell(script, extra_env=self.keyless_env(
            STAND_IN_SSO_ACCESS_TOKEN=self.stand_ins.sso_token, AWS_ACCESS_KEY_ID="AKIAIOSFODNN7EXAMPLE",
            AWS_SECRET_ACCESS_KEY="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"), static_keys=False)
        self.assertEqual(rc, 0, f"Ctrl-C: the batch in flight finishes, then exit 0\n{out}")
        self.assertIn("[stand-in aws sso login --profile site", out)
        self.assertNotIn(self.stand_ins.sso_token, out, "the SSO token is never shown")
        invs = self.assertPublished(changed=True, min_invalidations=2)
        self.assertIn("/posts/changed/", invs[-1]["Paths"])
        portal = self.stand_ins.portal
        self.assertEqual(portal.fetches(), 2, "fetched at the start, and again before the first ones expired")
        for seen in portal.seen():
            self.assertEqual(seen.status, 200, f"{seen.path}: the profile's account and role, the cached token")

    def test_cross_account_role(self):
        """moto (auth on) checks all of it: the source user may only call sts:AssumeRole (cross-account-source),
        the role's trust policy names that user and the external ID (cross-account-trust), and the role has the
        publishing policy. The user's own keys could publish nothing."""
        pages = recipes("iam-policy.md")
        source_policy = json.loads(in_moto_account(pages["cross-account-source"][1]))
        trust = json.loads(in_moto_account(pages["cross-account-trust"][1]))
        self.stand_ins.prepare_role(whole_bucket_policy(self.bucket, self.dist), trust=trust)
        user = trust["Statement"][0]["Principal"]["AWS"].rsplit("/", 1)[1]
        try:
            self.stand_ins.iam.create_user(UserName=user)
        except self.stand_ins.iam.exceptions.EntityAlreadyExistsException:
            pass
        self.stand_ins.iam.put_user_policy(UserName=user, PolicyName="assume",
                                           PolicyDocument=json.dumps(source_policy))
        key = self.stand_ins.iam.create_access_key(UserName=user)["AccessKey"]
        lang, profile = recipes("recipes.md")["cross-account-profile"]
        self.assertEqual(lang, "ini")
        profile = in_moto_account(profile)
        self.assertIn(f"role_arn = {self.stand_ins.role_arn}", profile)
        aws_dir = os.path.join(self.home, ".aws")
        os.makedirs(aws_dir)
        with open(os.path.join(aws_dir, "credentials"), "w", encoding="utf-8") as f:
            f.write(f"[default]\naws_access_key_id = {key['AccessKeyId']}\n"
                    f"aws_secret_access_key = {key['SecretAccessKey']}\n")
        lang, script = recipes("recipes.md")["cross-account"]
        self.assertEqual(lang, "sh")
        self.assertIn("--profile site-deploy", script)
        env = {"AWS_ENDPOINT_URL_STS": self.server.endpoint}  # the emulator's own STS, auth on

        def run_with(config_text):
            with open(os.path.join(aws_dir, "config"), "w", encoding="utf-8") as f:
                f.write(config_text + "\n")
            return self.run_shell(script, env, static_keys=False)[0]

        # A wrong external ID: the trust policy's condition refuses the AssumeRole; nothing is written.
        self.assertIn("external_id = my-site-publish", profile)
        rc = run_with(profile.replace("external_id = my-site-publish", "external_id = someone-else"))
        self.assertNotEqual(rc, 0, self.last)
        self.assertIn(ROLE_NAME, self.last, "the refusal names the role")
        self.assertNotIn(key["SecretAccessKey"], self.last)
        self.assertNothingPublished()
        # As written: published with the role's session (the user's own keys may publish nothing).
        self.assertEqual(run_with(profile), 0, self.last)
        self.assertNotIn(key["SecretAccessKey"], self.last)
        self.assertPublished()

    def test_ci_preflight_steps(self):
        """The `sitesync check` steps of both CI files, against the real bucket (read-only: nothing is written),
        and then against a bucket that does not exist (it must fail the job). Skipped, saying so, while `check`
        is still a placeholder in this build."""
        _, gh_env, gh_run, _, _ = github_job()
        _, gl_env, gl_script, _ = gitlab_job()
        checks = [(gh_env, s) for _, s in gh_run if is_check(s)] + [(gl_env, s) for s in gl_script if is_check(s)]
        self.assertEqual(len(checks), 2, "one preflight step in each CI file")
        for env, line in checks:
            rc, out = self.run_shell(line, env)
            placeholder = PLACEHOLDER_RE.search(out)
            if placeholder:
                self.skipTest(f"'sitesync {placeholder.group(1)}' is still a placeholder in this build ({out.strip()})")
            self.assertEqual(rc, 0, self.last)
            self.assertEqual(harness.list_bucket(self.s3, self.bucket, head=False), {}, "check writes nothing")
            missing = "no-such-bucket-" + self.bucket[-6:]
            rc, out = self.run_shell(line, env, bucket=missing)
            self.assertNotEqual(rc, 0, f"a preflight against a missing bucket fails\n{self.last}")
            self.assertIn(missing, out, self.last)


# --------------------------------------------------------------------------------------------------------------
# the IAM policy
# --------------------------------------------------------------------------------------------------------------

# The IAM action that authorizes each operation (Service Authorization Reference: Amazon S3, Amazon CloudFront).
IAM_ACTION_OF = {
    "ListObjectsV2": "s3:ListBucket",
    "PutObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "DeleteObjects": "s3:DeleteObject",
    "CreateInvalidation": "cloudfront:CreateInvalidation",
    "GetInvalidation": "cloudfront:GetInvalidation",
    "ListDistributions": "cloudfront:ListDistributions",
    "GetDistribution": "cloudfront:GetDistribution",
}

MOTO_ACCOUNT = "123456789012"
BIG = 17 * 1024 * 1024  # above the 16 MiB multipart threshold: three 8 MiB parts


def policy_actions(policy: dict) -> set:
    out = set()
    for st in policy["Statement"]:
        actions = st["Action"]
        out.update([actions] if isinstance(actions, str) else actions)
    return out


def documented_policy() -> dict:
    lang, text = recipes("iam-policy.md")["iam-policy"]
    assert lang == "json", lang
    return json.loads(text)


def policy_for_moto(policy: dict, bucket: str, dist: str, drop_action: str | None = None) -> dict:
    """The documented policy for this bucket and distribution, as moto can check it. moto authorizes S3 by
    action and resource (ignoring the s3:prefix condition), but DeleteObjects against the bucket's ARN rather
    than each key's, and every CloudFront call against '*': those two resources are widened here. The actions
    are the documented ones (minus `drop_action`)."""
    text = json.dumps(policy)
    text = (text.replace("arn:aws:s3:::my-site", f"arn:aws:s3:::{bucket}")
            .replace("123456789012", MOTO_ACCOUNT).replace("E2QWRUHAPOMQZL", dist))
    p = json.loads(text)
    for st in p["Statement"]:
        actions = [st["Action"]] if isinstance(st["Action"], str) else list(st["Action"])
        if drop_action in actions:
            actions.remove(drop_action)
        st["Action"] = actions
        if "s3:DeleteObject" in actions:
            st["Resource"] = [st["Resource"], f"arn:aws:s3:::{bucket}"]
        if any(a.startswith("cloudfront:") for a in actions):
            st["Resource"] = "*"
    p["Statement"] = [st for st in p["Statement"] if st["Action"]]
    return p


class IamPolicyTest(RecipeCase):
    def site_with_everything(self):
        """A site with a multipart-sized file and small ones, and a stale object under the prefix to delete."""
        src = os.path.join(self.tmp, "site")
        harness.make_site(src, {"index.html": "<p>home</p>", "css/site.css": "body{}",
                                "video/big.bin": os.urandom(BIG)})
        return src

    def sync_everything(self, src, bucket, env_extra=None):
        args = ["sync", src, f"s3://{bucket}/site", "--endpoint", self.proxy.endpoint, "--delete",
                "--distribution", "auto", "--cloudfront-endpoint", self.proxy.endpoint, "--wait", "--json"]
        return harness.run_sitesync(args, server=self.server, home=self.home, env_extra=env_extra, timeout=300)

    def operations(self) -> set:
        return {op for (_method, op) in self.proxy.counts()}

    def test_policy_lists_exactly_the_actions_sitesync_calls(self):
        policy = documented_policy()
        self.assertEqual(policy["Version"], "2012-10-17")
        src = self.site_with_everything()
        self.s3.put_object(Bucket=self.bucket, Key="site/old/stale.txt", Body=b"stale")
        # Run 1: a part fails for good (403), so the multipart upload is aborted; everything else happens.
        self.proxy.inject(status=403, code="AccessDenied", op="UploadPart", count=1)
        res = self.sync_everything(src, self.bucket)
        self.assertEqual(res.returncode, 1, res.describe())
        self.assertEqual(self.proxy.pending_faults(), 0)
        # Run 2: the big file again, by multipart, completed.
        res = self.sync_everything(src, self.bucket)
        self.assertEqual(res.returncode, 0, res.describe())
        objects = harness.list_bucket(self.s3, self.bucket, "site/", head=False)
        self.assertEqual(set(objects), {"site/index.html", "site/css/site.css", "site/video/big.bin"})
        self.assertTrue(objects["site/video/big.bin"][1].endswith("-3"), "uploaded by multipart")

        ops = self.operations()
        unknown = ops - set(IAM_ACTION_OF)
        self.assertEqual(unknown, set(), f"sitesync called {unknown}: add the IAM action to docs/iam-policy.md "
                                         f"and to IAM_ACTION_OF")
        self.assertEqual(ops, set(IAM_ACTION_OF), "the run exercised every operation of the table")
        self.assertEqual({IAM_ACTION_OF[op] for op in ops}, policy_actions(policy))

    def test_check_needs_nothing_beyond_the_policy(self):
        """`sitesync check` (read-only preflight) calls only operations whose actions the policy grants. Skipped,
        saying so, while `check` is still a placeholder in this build."""
        res = harness.run_sitesync(["check", f"s3://{self.bucket}/site", "--endpoint", self.proxy.endpoint,
                                    "--distribution", "auto", "--cloudfront-endpoint", self.proxy.endpoint],
                                   server=self.server, home=self.home)
        placeholder = PLACEHOLDER_RE.search(res.stderr)
        if placeholder:
            self.skipTest(f"'sitesync {placeholder.group(1)}' is still a placeholder in this build")
        self.assertEqual(res.returncode, 0, res.describe())
        ops = self.operations()
        unknown = ops - set(IAM_ACTION_OF)
        self.assertEqual(unknown, set(), f"check calls {unknown}: add the IAM action to docs/iam-policy.md")
        self.assertLessEqual({IAM_ACTION_OF[op] for op in ops}, policy_actions(documented_policy()))

    def least_privilege_env(self, policy: dict) -> dict:
        import boto3

        iam = boto3.client("iam", endpoint_url=self.server.endpoint, region_name=harness.REGION,
                           aws_access_key_id=self.server.access_key_id,
                           aws_secret_access_key=self.server.secret_access_key)
        user = f"least-{len(policy_actions(policy))}-{self.bucket[-12:]}"
        iam.create_user(UserName=user)
        iam.put_user_policy(UserName=user, PolicyName="sitesync", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=user)["AccessKey"]
        return {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}

    def for_this_run(self, policy: dict, bucket: str, drop_action: str | None = None) -> dict:
        return policy_for_moto(policy, bucket, self.dist, drop_action)

    def test_the_extra_documents_are_valid_iam_policies(self):
        """IAM (moto's policy validator) takes the policy with the KMS statement added, the source identity's
        permission, and the three trust policies as written."""
        import boto3

        iam = boto3.client("iam", endpoint_url=self.server.endpoint, region_name=harness.REGION,
                           aws_access_key_id=self.server.access_key_id,
                           aws_secret_access_key=self.server.secret_access_key)
        pages = recipes("iam-policy.md")
        with_kms = documented_policy()
        with_kms["Statement"].append(json.loads(pages["iam-kms"][1]))
        self.assertEqual(len({st["Sid"] for st in with_kms["Statement"]}), len(with_kms["Statement"]))
        user = f"docs-{self.bucket[-12:]}"
        iam.create_user(UserName=user)
        iam.put_user_policy(UserName=user, PolicyName="with-kms", PolicyDocument=json.dumps(with_kms))
        iam.put_user_policy(UserName=user, PolicyName="assume", PolicyDocument=pages["cross-account-source"][1])
        for name in ("trust-github", "trust-gitlab", "cross-account-trust"):
            role = iam.create_role(RoleName=f"{name}-{self.bucket[-8:]}", AssumeRolePolicyDocument=pages[name][1])
            self.assertEqual(role["Role"]["AssumeRolePolicyDocument"], json.loads(pages[name][1]))

    def test_a_user_with_only_the_policy_can_publish(self):
        policy = documented_policy()
        src = self.site_with_everything()
        self.s3.put_object(Bucket=self.bucket, Key="site/old/stale.txt", Body=b"stale")
        # moto enforces: without s3:DeleteObject, the delete is refused (and the run fails).
        env = self.least_privilege_env(self.for_this_run(policy, self.bucket, drop_action="s3:DeleteObject"))
        res = self.sync_everything(src, self.bucket, env_extra=env)
        self.assertEqual(res.returncode, 1, res.describe())
        self.assertIn("AccessDenied", res.stdout + res.stderr)
        self.assertIn("site/old/stale.txt", harness.list_bucket(self.s3, self.bucket, "site/", head=False))
        # With the policy as documented: everything goes.
        env = self.least_privilege_env(self.for_this_run(policy, self.bucket))
        res = self.sync_everything(src, self.bucket, env_extra=env)
        self.assertEqual(res.returncode, 0, res.describe())
        events = harness.parse_json_lines(res.stdout)
        self.assertEqual(harness.summary_of(events)["deleted"], 1)
        self.assertEqual(set(harness.list_bucket(self.s3, self.bucket, "site/", head=False)),
                         {"site/index.html", "site/css/site.css", "site/video/big.bin"})
        invs = harness.invalidations(self.cf, self.dist)
        self.assertIn("/site/old/stale.txt", invs[-1]["Paths"])


class TrustPolicyTest(unittest.TestCase):
    """The trust policies of iam-policy.md let exactly the documented jobs assume the role (evaluated as the
    recipes' stand-in STS evaluates them)."""

    ROLE = f"arn:aws:iam::123456789012:role/{ROLE_NAME}"

    def allowed(self, page_recipe: str, iss: str, aud: str, sub: str) -> bool:
        trust = json.loads(recipes("iam-policy.md")[page_recipe][1])
        return trust_allows_web_identity(trust, self.ROLE, {"iss": iss, "aud": aud, "sub": sub})

    def test_github_trust_policy(self):
        self.assertTrue(self.allowed("trust-github", GITHUB_ISSUER, "sts.amazonaws.com", GITHUB_SUB))
        for aud, sub in [("sts.amazonaws.com", "repo:my-org/my-site:pull_request"),
                         ("sts.amazonaws.com", "repo:my-org/my-site:ref:refs/heads/feature"),
                         ("sts.amazonaws.com", "repo:someone/my-site:ref:refs/heads/main"),
                         ("https://github.com/my-org", GITHUB_SUB)]:
            self.assertFalse(self.allowed("trust-github", GITHUB_ISSUER, aud, sub), (aud, sub))
        self.assertFalse(self.allowed("trust-github", GITLAB_ISSUER, "sts.amazonaws.com", GITHUB_SUB))

    def test_gitlab_trust_policy(self):
        self.assertTrue(self.allowed("trust-gitlab", GITLAB_ISSUER, "https://gitlab.com", GITLAB_SUB))
        for aud, sub in [("https://gitlab.com", "project_path:my-group/my-site:ref_type:branch:ref:feature"),
                         ("https://gitlab.com", "project_path:other/my-site:ref_type:branch:ref:main"),
                         ("sts.amazonaws.com", GITLAB_SUB)]:
            self.assertFalse(self.allowed("trust-gitlab", GITLAB_ISSUER, aud, sub), (aud, sub))

    def test_kms_statement(self):
        lang, text = recipes("iam-policy.md")["iam-kms"]
        self.assertEqual(lang, "json")
        st = json.loads(text)
        self.assertEqual(st["Effect"], "Allow")
        # PutObject to an SSE-KMS bucket needs GenerateDataKey; a multipart upload Decrypt as well.
        self.assertEqual(set(st["Action"]), {"kms:GenerateDataKey", "kms:Decrypt"})
        self.assertTrue(st["Resource"].startswith("arn:aws:kms:eu-west-1:123456789012:key/"), st["Resource"])
        self.assertEqual(st["Condition"]["StringEquals"]["kms:ViaService"], "s3.eu-west-1.amazonaws.com")


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


class DocLinksTest(unittest.TestCase):
    """The links between the recipes, the IAM page and the README point at files and headings that exist."""

    def test_links_resolve(self):
        pages = {"docs/recipes.md": DOCS / "recipes.md", "docs/iam-policy.md": DOCS / "iam-policy.md",
                 "README.md": harness.REPO_ROOT / "README.md"}
        anchors = {}
        for name, path in pages.items():
            text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
            anchors[path.resolve()] = {github_slug(h) for h in re.findall(r"^#+ (.+)$", text, re.M)}
        checked = 0
        for name, path in pages.items():
            for target, anchor in re.findall(r"\]\(([^)#\s]*)(?:#([^)\s]+))?\)", path.read_text(encoding="utf-8")):
                if target.startswith(("http://", "https://", "mailto:")):
                    continue
                dest = (path.parent / target).resolve() if target else path.resolve()
                self.assertTrue(dest.exists(), f"{name}: link to {target} (missing)")
                if anchor:
                    self.assertIn(anchor, anchors.get(dest, set()), f"{name}: link to {target}#{anchor}")
                checked += 1
        self.assertGreaterEqual(checked, 10)


if __name__ == "__main__":
    unittest.main()
