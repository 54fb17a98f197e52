"""Small loopback fakes of the credential sources sitesync calls (issue 13): IMDSv2, the container credentials
endpoint, IAM Identity Center's portal (GetRoleCredentials) and STS's AssumeRoleWithWebIdentity.

Each fake is an http.server on 127.0.0.1 with a port from 0, served by a thread of this process and stopped with
stop() (shutdown, close, join), also as a context manager. Each hands out the credentials it was given (in the
tests: a real IAM access key created in moto, so that moto with its auth on accepts what sitesync signs with),
with an Expiration computed on every fetch from `lifetimes` (seconds from now; the last one repeats), and records
every request so that tests can count fetches and check what was sent.

    with ContainerFake(creds, path="/v2/credentials/abc", lifetimes=[310, 3600]) as ecs:
        env = {"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": ecs.path,
               "SITESYNC_CONTAINER_CREDENTIALS_HOST": ecs.endpoint}
        ...
        ecs.fetches()   # credential answers handed out so far
"""

from __future__ import annotations

import datetime
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

LOOPBACK = "127.0.0.1"


@dataclass
class Seen:
    method: str
    path: str  # path and query as sent
    headers: dict  # names lowercased
    body: bytes
    status: int = 0


@dataclass
class Creds:
    access_key_id: str
    secret_access_key: str
    session_token: str = field(default_factory=lambda: "fake-session-" + uuid.uuid4().hex)


def iso_in(seconds: float) -> str:
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet: the fake keeps its own record
        pass

    def _serve(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        seen = Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        fake: FakeBase = self.server.fake  # type: ignore[attr-defined]
        status, payload, ctype = fake.answer(seen)
        seen.status = status
        fake._record(seen)
        data = payload.encode() if isinstance(payload, str) else payload
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = _serve
    do_PUT = _serve
    do_POST = _serve


class FakeBase:
    """The server, the record of requests and the expiration schedule; subclasses write answer()."""

    def __init__(self, creds: Creds, lifetimes=(3600,)):
        self.creds = creds
        self.lifetimes = list(lifetimes)
        self._lock = threading.Lock()
        self.requests: list[Seen] = []
        self._handed_out = 0
        self._server = ThreadingHTTPServer((LOOPBACK, 0), _Handler)
        self._server.daemon_threads = True
        self._server.fake = self  # type: ignore[attr-defined]
        self.port = self._server.server_address[1]
        self.endpoint = f"http://{LOOPBACK}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"{type(self).__name__}-{self.port}", daemon=True)
        self._thread.start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=10)
        self._server.server_close()

    def _record(self, seen: Seen) -> None:
        with self._lock:
            self.requests.append(seen)

    def seen(self) -> list[Seen]:
        with self._lock:
            return list(self.requests)

    def fetches(self) -> int:
        """How many times credentials were handed out."""
        with self._lock:
            return self._handed_out

    def next_expiration(self) -> tuple[str, float]:
        """The Expiration of the credentials handed out now (ISO 8601, and as epoch seconds); counts a fetch."""
        with self._lock:
            lifetime = self.lifetimes[min(self._handed_out, len(self.lifetimes) - 1)]
            self._handed_out += 1
        return iso_in(lifetime), time.time() + lifetime

    def answer(self, seen: Seen) -> tuple[int, str | bytes, str]:
        raise NotImplementedError


class ImdsFake(FakeBase):
    """IMDSv2: PUT /latest/api/token (with x-aws-ec2-metadata-token-ttl-seconds) gives a token; GETs without a
    valid token get 401 (no IMDSv1). The first `refuse_first_tokens` tokens handed out are refused when used (as
    after an IMDS restart), and refuse_current_tokens() makes the tokens handed out so far invalid."""

    def __init__(self, creds: Creds, role: str = "sitesync-instance-role", lifetimes=(3600,),
                 refuse_first_tokens: int = 0):
        super().__init__(creds, lifetimes)
        self.role = role
        self._tokens: set[str] = set()
        self.tokens_issued = 0
        self.refuse_first_tokens = refuse_first_tokens

    def refuse_current_tokens(self) -> None:
        with self._lock:
            self._tokens.clear()

    def answer(self, seen):
        path = urlsplit(seen.path).path
        if seen.method == "PUT" and path == "/latest/api/token":
            ttl = seen.headers.get("x-aws-ec2-metadata-token-ttl-seconds", "")
            if not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
                return 400, "missing or invalid x-aws-ec2-metadata-token-ttl-seconds", "text/plain"
            token = "imds-token-" + uuid.uuid4().hex
            with self._lock:
                self.tokens_issued += 1
                if self.tokens_issued > self.refuse_first_tokens:
                    self._tokens.add(token)
            return 200, token, "text/plain"
        with self._lock:
            valid = seen.headers.get("x-aws-ec2-metadata-token") in self._tokens
        if not valid:
            return 401, "", "text/plain"
        base = "/latest/meta-data/iam/security-credentials/"
        if seen.method == "GET" and path == base:
            return 200, self.role, "text/plain"
        if seen.method == "GET" and path == base + self.role:
            expiration, _ = self.next_expiration()
            return 200, json.dumps({
                "Code": "Success", "LastUpdated": iso_in(0), "Type": "AWS-HMAC",
                "AccessKeyId": self.creds.access_key_id, "SecretAccessKey": self.creds.secret_access_key,
                "Token": self.creds.session_token, "Expiration": expiration}), "text/plain"
        return 404, "", "text/plain"


class ContainerFake(FakeBase):
    """The container credentials endpoint: GET `path` (with `authorization` as the Authorization header when
    given; otherwise 401) -> {AccessKeyId, SecretAccessKey, Token, Expiration}."""

    def __init__(self, creds: Creds, path: str = "/v2/credentials/" + uuid.uuid4().hex, authorization=None,
                 lifetimes=(3600,)):
        super().__init__(creds, lifetimes)
        self.path = path
        self.authorization = authorization

    def answer(self, seen):
        if seen.method != "GET" or seen.path != self.path:
            return 404, json.dumps({"message": "not found"}), "application/json"
        if self.authorization is not None and seen.headers.get("authorization") != self.authorization:
            return 401, json.dumps({"message": "invalid authorization token"}), "application/json"
        expiration, _ = self.next_expiration()
        return 200, json.dumps({
            "AccessKeyId": self.creds.access_key_id, "SecretAccessKey": self.creds.secret_access_key,
            "Token": self.creds.session_token, "Expiration": expiration,
            "RoleArn": "arn:aws:iam::123456789012:role/sitesync-task"}), "application/json"


class SsoFake(FakeBase):
    """IAM Identity Center's portal: GET /federation/credentials?account_id=A&role_name=R with
    x-amz-sso_bearer_token = `access_token` -> {"roleCredentials": {..., "expiration": epoch ms}}; another token
    gets 401 UnauthorizedException."""

    def __init__(self, creds: Creds, access_token: str, account_id: str, role_name: str, lifetimes=(3600,)):
        super().__init__(creds, lifetimes)
        self.access_token = access_token
        self.account_id = account_id
        self.role_name = role_name

    def answer(self, seen):
        parts = urlsplit(seen.path)
        query = parse_qs(parts.query)
        if seen.method != "GET" or parts.path != "/federation/credentials":
            return 404, json.dumps({"message": "not found"}), "application/json"
        if seen.headers.get("x-amz-sso_bearer_token") != self.access_token:
            return 401, json.dumps({"message": "Session token not found or invalid"}), "application/json"
        if query.get("account_id") != [self.account_id] or query.get("role_name") != [self.role_name]:
            return 403, json.dumps({"message": "No access"}), "application/json"
        _, when = self.next_expiration()
        return 200, json.dumps({"roleCredentials": {
            "accessKeyId": self.creds.access_key_id, "secretAccessKey": self.creds.secret_access_key,
            "sessionToken": self.creds.session_token, "expiration": int(when * 1000)}}), "application/json"


class StsWebIdentityFake(FakeBase):
    """STS's AssumeRoleWithWebIdentity (query protocol, form POST, unsigned): checks that the form carries
    `token` and a RoleArn, and answers with the credentials; another token gets 400 InvalidIdentityToken."""

    def __init__(self, creds: Creds, token: str, lifetimes=(3600,)):
        super().__init__(creds, lifetimes)
        self.token = token

    def forms(self) -> list[dict]:
        return [{k: v[0] for k, v in parse_qs(s.body.decode()).items()} for s in self.seen() if s.method == "POST"]

    def answer(self, seen):
        form = {k: v[0] for k, v in parse_qs(seen.body.decode()).items()}
        if seen.method != "POST" or form.get("Action") != "AssumeRoleWithWebIdentity":
            return 400, _sts_error("InvalidAction", "only AssumeRoleWithWebIdentity here"), "text/xml"
        if form.get("WebIdentityToken") != self.token:
            return 400, _sts_error("InvalidIdentityToken", "Couldn't verify the token"), "text/xml"
        if not form.get("RoleArn") or not form.get("RoleSessionName"):
            return 400, _sts_error("ValidationError", "RoleArn and RoleSessionName are required"), "text/xml"
        expiration, _ = self.next_expiration()
        return 200, f"""<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>ci-subject</SubjectFromWebIdentityToken>
    <AssumedRoleUser><Arn>{form['RoleArn']}/{form['RoleSessionName']}</Arn><AssumedRoleId>AROA:x</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <AccessKeyId>{self.creds.access_key_id}</AccessKeyId>
      <SecretAccessKey>{self.creds.secret_access_key}</SecretAccessKey>
      <SessionToken>{self.creds.session_token}</SessionToken>
      <Expiration>{expiration}</Expiration>
    </Credentials>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>""", "text/xml"


def _sts_error(code: str, message: str) -> str:
    return (f'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
            f"<Code>{code}</Code><Message>{message}</Message></Error><RequestId>{uuid.uuid4()}</RequestId>"
            f"</ErrorResponse>")
