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

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

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

    def env(self, extra: dict | None = None, bucket: str | None = None) -> dict:
        env = {
            "PATH": f"{self.bin}:/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "HOME": self.home,
            "XDG_STATE_HOME": os.path.join(self.home, ".local", "state"),
            "XDG_CONFIG_HOME": os.path.join(self.home, ".config"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "WATCH_DELAY": "3",  # after the initial sync of the 6 files, so the change is a batch of its own
        }
        env.update(extra or {})
        env.update(self.server.sitesync_env())
        # The test's bucket and moto's region, whatever the recipe sets.
        env["SITE_BUCKET"] = bucket or self.bucket
        env["AWS_REGION"] = harness.REGION
        return env

    def run_shell(self, script: str, extra_env: dict | None = None, timeout: float = 120, bucket: str | None = None):
        """bash -e -o pipefail -c SCRIPT in the project folder, in its own session (stopped by its id)."""
        proc = subprocess.Popen(["bash", "--noprofile", "--norc", "-e", "-o", "pipefail", "-c", script],
                                cwd=self.project, env=self.env(extra_env, bucket), stdin=subprocess.DEVNULL,
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

    def run_watch_shell(self, script: str, timeout: float = 90):
        """A watch recipe: run it, wait until the stand-in's change is published, then Ctrl-C (SIGINT to the
        recipe's process group, as a terminal does). Returns (exit code, output)."""
        out_path = os.path.join(self.tmp, "watch.out")
        with open(out_path, "wb") as out:
            proc = subprocess.Popen(["bash", "--noprofile", "--norc", "-e", "-o", "pipefail", "-c", script],
                                    cwd=self.project, env=self.env(), stdin=subprocess.DEVNULL, stdout=out,
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
                  "github-actions", "gitlab-ci"}
        self.assertEqual(set(recipes("recipes.md")), tested)
        self.assertEqual(set(recipes("iam-policy.md")), {"iam-policy"})


# --------------------------------------------------------------------------------------------------------------
# CI files
# --------------------------------------------------------------------------------------------------------------


def is_check(line: str) -> bool:
    return line.strip().startswith("sitesync check")


def github_job():
    lang, text = recipes("recipes.md")["github-actions"]
    assert lang == "yaml", lang
    doc = yaml.safe_load(text)
    (job,) = doc["jobs"].values()
    env = {**(doc.get("env") or {}), **(job.get("env") or {})}
    run, skipped = [], []
    for step in job["steps"]:
        label = step.get("name") or step.get("uses")
        if "uses" in step or step.get("name") == "Install sitesync":
            skipped.append(label)  # installs tools or fetches credentials: the test provides those
        else:
            run.append((label, step["run"]))
    return doc, env, run, skipped


def gitlab_job():
    lang, text = recipes("recipes.md")["gitlab-ci"]
    assert lang == "yaml", lang
    doc = yaml.safe_load(text)
    job = doc["publish"]
    env = {k: str(v) for k, v in (job.get("variables") or {}).items()}
    return doc, env, list(job["script"]), list(job.get("before_script") or [])


@needs_yaml
class CiRecipesTest(RecipeCase):
    def test_github_actions_job(self):
        doc, env, run, skipped = github_job()
        self.assertIn("id-token", doc["permissions"], "OIDC for the credentials")
        self.assertEqual(skipped, ["actions/checkout@v4", "peaceiris/actions-hugo@v3",
                                   "aws-actions/configure-aws-credentials@v4", "Install sitesync"])
        labels = [label for label, _ in run]
        self.assertEqual(labels, ["Build", "Preflight", "Publish"])
        for label, script in run:
            self.assertNotIn("${{", script, f"step {label}: an expression the test cannot evaluate")
            if is_check(script):
                continue  # run by test_ci_preflight_steps
            rc, _ = self.run_shell(script, env)
            self.assertEqual(rc, 0, f"step {label}\n{self.last}")
        publish = dict(run)["Publish"]
        for option in ("--delete", "--distribution auto", "--wait"):
            self.assertIn(option, publish)
        self.assertPublished()
        self.assertGreaterEqual(self.proxy.count("GetInvalidation", "GET"), 1, "--wait polled the invalidation")

    def test_gitlab_ci_job(self):
        doc, env, script, before = gitlab_job()
        self.assertIn("AWS_ID_TOKEN", doc["publish"]["id_tokens"], "OIDC for the credentials")
        self.assertTrue(any("assume-role-with-web-identity" in line for line in before))
        lines = [line for line in script if not is_check(line)]  # the check runs in test_ci_preflight_steps
        self.assertEqual(len(lines), len(script) - 1)
        rc, _ = self.run_shell("\n".join(lines), env)
        self.assertEqual(rc, 0, self.last)
        self.assertTrue(any("--delete" in line and "--distribution auto" in line for line in lines))
        self.assertPublished()

    def test_ci_preflight_steps(self):
        """The `sitesync check` steps of both CI files, against the real bucket (read-only: nothing is written),
        and then against a bucket that does not exist (it must fail the job). Skipped, saying so, while `check`
        is still a placeholder in this build."""
        _, gh_env, gh_run, _ = github_job()
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
        """The documented policy for this bucket and distribution, as moto can check it. moto authorizes S3 by
        action and resource (ignoring the s3:prefix condition), but DeleteObjects against the bucket's ARN rather
        than each key's, and every CloudFront call against '*': those two resources are widened here. The actions
        are the documented ones (minus `drop_action`)."""
        text = json.dumps(policy)
        text = (text.replace("arn:aws:s3:::my-site", f"arn:aws:s3:::{bucket}")
                .replace("123456789012", MOTO_ACCOUNT).replace("E2QWRUHAPOMQZL", self.dist))
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


if __name__ == "__main__":
    unittest.main()
