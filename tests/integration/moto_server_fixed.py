#!/usr/bin/env python3
"""moto_server (moto 5.2.1) with SigV4 checking fixed: S3 keys with special characters, CloudFront GETs.

Why: with auth on, moto verifies an S3 SigV4 signature by handing botocore's S3SigV4Auth a URL rebuilt from
werkzeug's `request.url`. werkzeug re-quotes that URL with its own safe set, so for a key containing
non-ASCII bytes or any of `+ = & % @ $ , ; ! ' ( ) [ ] * ^ | { } \\ ` < > " :` the canonical URI moto computes
differs from the one the client signed, and a correctly signed request gets 403 SignatureDoesNotMatch
(/work/shared/MOTO.md, trap 1).

The fix (install_patch): for S3 requests only, the canonical URI and canonical query string are rebuilt from
the RAW request target the client sent (werkzeug environ RAW_URI / REQUEST_URI, i.e. the bytes of the HTTP
request line), exactly as S3 does it:
  * path: percent-decode to bytes, then URI-encode every byte except the unreserved `A-Za-z0-9-_.~` and `/`,
    uppercase hex, no normalisation (`a//b`, `.`, `..` kept as they are);
  * query: split on `&`, split each pair at the first `=`, percent-decode name and value, URI-encode both with
    only the unreserved characters kept, sort by encoded name then value, join with `&` (`?uploads` -> `uploads=`).
botocore's S3SigV4Auth takes the path of the URL it is given verbatim (S3 does not normalise) and the query as
given (split, sorted, re-joined), so handing it `http://HOST` + canonical path + `?` + canonical query makes it
build the canonical request from exactly these strings. Everything else (signed headers, payload hash,
timestamp, key lookup, policy evaluation) is moto's own code, unchanged.

Second fix (trap 2: no signed CloudFront GET verifies): for every other service moto builds botocore's AWSRequest
with `data=self._body or self._data`. For a request whose body is empty that is not a form POST (every
CloudFront GET: ListDistributions, GetDistribution, GetInvalidation, ListInvalidations), `self._body` is b"" and
`self._data` is moto's parsed "querystring" dict: the URL's query parameters, or, when the URL has none, the
request HEADERS. botocore form-encodes that dict and hashes it as the payload, so the payload hash never
equals SHA-256("") the client signed. Also the canonical query was rebuilt from werkzeug's re-quoted URL.
For non-S3 requests that are not form POSTs (no form fields parsed by werkzeug) the patch hands botocore's
SigV4Auth
  * the payload exactly as received: the raw body bytes (b"" -> e3b0c442...b855, the empty-string hash);
  * the path of the RAW request target (botocore normalises and URI-encodes it once more, as generic SigV4
    does for non-S3 services: the client signs the same transformation of the path it put on the wire);
  * the canonical query rebuilt from the RAW query string like for S3 (decode, URI-encode with only the
    unreserved characters kept, sort).
Form POSTs (query-protocol services: IAM, STS, ...) keep moto's own handling: werkzeug has consumed their body
into form fields, and moto's re-encoding of those fields is what they sign. Signed headers, timestamp, key
lookup and policy evaluation stay moto's own code, so a wrong secret or a changed path/query/body still fails.

Usage: moto_server_fixed.py [-H 127.0.0.1] [-p PORT|0] [--port-file FILE] [--parent-pid PID]
With -p 0 the OS picks a free port; the chosen port is written to --port-file (atomically) once the socket
listens. With --parent-pid the server exits by itself when that process is gone (no orphans if a test run is
killed).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from urllib.parse import quote, unquote_to_bytes

import moto
from moto import settings
from moto.core.authorization import ActionAuthenticatorMixin

UNRESERVED = "-_.~"  # quote() always keeps A-Za-z0-9 and these; we pass them as `safe` for clarity


def raw_target_from_environ(environ) -> bytes | None:
    """The request target exactly as the client sent it on the request line, as bytes."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw is None:
        return None
    # http.server decodes the request line as latin-1; werkzeug then applies its "WSGI encoding dance"
    # (str.encode('utf-8').decode('latin-1')). Undo both to get the original bytes.
    try:
        data = raw.encode("latin-1")
        try:
            data = data.decode("utf-8").encode("latin-1")
        except (UnicodeDecodeError, UnicodeEncodeError):
            pass
    except UnicodeEncodeError:
        data = raw.encode("utf-8")
    # absolute-form request target (a client talking as if to a proxy): keep only path + query
    lower = data[:8].lower()
    if lower.startswith(b"http://") or lower.startswith(b"https://"):
        rest = data.split(b"://", 1)[1]
        slash = rest.find(b"/")
        data = rest[slash:] if slash >= 0 else b"/"
    return data


def s3_uri_encode(raw: bytes, keep_slash: bool) -> str:
    safe = UNRESERVED + ("/" if keep_slash else "")
    return quote(unquote_to_bytes(raw), safe=safe)


def canonical_s3_path_and_query(raw_target: bytes) -> tuple[str, str]:
    """(canonical URI, canonical query string) of an S3 request, from its raw request target."""
    raw_target = raw_target.split(b"#", 1)[0]  # a fragment is never sent, but never part of the URI either
    path, _, query = raw_target.partition(b"?")
    if not path.startswith(b"/"):
        path = b"/" + path
    canonical_path = s3_uri_encode(path, keep_slash=True)
    pairs = []
    if query:
        for item in query.split(b"&"):
            if not item:
                continue
            name, _, value = item.partition(b"=")
            pairs.append((s3_uri_encode(name, keep_slash=False), s3_uri_encode(value, keep_slash=False)))
    pairs.sort()
    canonical_query = "&".join(f"{n}={v}" for n, v in pairs)
    return canonical_path, canonical_query


def raw_path_and_canonical_query(raw_target: bytes) -> tuple[str, str]:
    """(raw path as sent, canonical query string) of a non-S3 request, from its raw request target. The path is
    left as it was on the wire: botocore's SigV4Auth normalises and encodes it the way generic SigV4 wants."""
    raw_target = raw_target.split(b"#", 1)[0]
    path, _, _query = raw_target.partition(b"?")
    if not path.startswith(b"/"):
        path = b"/" + path
    _, canonical_query = canonical_s3_path_and_query(b"/?" + _query if _query else b"/")
    return path.decode("latin-1"), canonical_query


def is_form_request(response_obj) -> bool:
    """True when werkzeug parsed the body into form fields (query-protocol POSTs): then the raw body bytes are
    gone (request.data is empty) and moto's own re-encoding of the fields must be used."""
    return bool(getattr(response_obj, "form_data", None))


def _request_environ(response_obj):
    req = getattr(response_obj, "request", None)
    environ = getattr(req, "environ", None)
    if environ is not None:
        return environ
    try:
        import flask

        if flask.has_request_context():
            return flask.request.environ
    except Exception:  # pragma: no cover - flask is always there in server mode
        pass
    return None


_installed = False


def _raw_payload_request_cls():
    """moto's IAMRequest, except that the payload handed to botocore is the body bytes exactly as received
    (b"" for an empty body) instead of `body or <moto's parsed querystring/headers dict>`."""
    from botocore.awsrequest import AWSRequest
    from moto.iam.access_control import IAMRequest

    class RawPayloadIAMRequest(IAMRequest):
        def _create_aws_request(self) -> AWSRequest:
            signed_headers = self._get_string_between(
                "SignedHeaders=", ",", self._headers["Authorization"]).split(";")
            headers = self._create_headers_for_aws_request(signed_headers, self._headers)
            body = self._body if self._body is not None else b""
            if isinstance(body, str):
                body = body.encode("utf-8")
            request = AWSRequest(method=self._method, url=self._path, data=body, headers=headers)
            request.context["timestamp"] = headers["X-Amz-Date"]
            return request

    return RawPayloadIAMRequest


def install_patch() -> None:
    """Replace ActionAuthenticatorMixin._authenticate_and_authorize_action for S3 requests and for non-S3,
    non-form requests (see module doc)."""
    global _installed
    if _installed:
        return
    from moto.iam.access_control import IAMRequest, S3IAMRequest

    if not moto.__version__.startswith("5."):
        print(f"moto_server_fixed: warning: written for moto 5.2.x, running {moto.__version__}", file=sys.stderr)

    original = ActionAuthenticatorMixin._authenticate_and_authorize_action
    raw_payload_cls = _raw_payload_request_cls()

    def _authenticate_and_authorize_action(self, iam_request_cls, resource="*"):
        # Same structure as moto 5.2.1's method. S3: only the `path` handed to the IAM request differs.
        # Other services, when not a form POST: the path/query come from the raw request line and the payload
        # is the raw body (RawPayloadIAMRequest). Everything else falls back to moto's own method.
        if iam_request_cls is S3IAMRequest:
            request_cls = iam_request_cls
        elif iam_request_cls is IAMRequest and not is_form_request(self):
            request_cls = raw_payload_cls
        else:
            return original(self, iam_request_cls, resource)
        if ActionAuthenticatorMixin.request_count < settings.INITIAL_NO_AUTH_ACTION_COUNT:
            return original(self, iam_request_cls, resource)  # auth still off: moto counts the request
        environ = _request_environ(self)
        raw = raw_target_from_environ(environ) if environ is not None else None
        if raw is None:
            return original(self, iam_request_cls, resource)
        if self.headers.get("X-Amz-Target") in ActionAuthenticatorMixin.PUBLIC_OPERATIONS:
            return None
        if request_cls is S3IAMRequest:
            path, query = canonical_s3_path_and_query(raw)
        else:
            path, query = raw_path_and_canonical_query(raw)
        host = self.headers.get("Host", "")
        url = f"http://{host}{path}"
        if query:
            url += "?" + query
        iam_request = request_cls(
            account_id=self.current_account,
            method=self.method,
            path=url,
            data=self.data,
            body=self.raw_body,
            headers=self.headers,
            action=self._get_action(),
        )
        iam_request.check_signature()
        iam_request.check_action_permitted(resource)
        return None

    _authenticate_and_authorize_action.__wrapped__ = original  # type: ignore[attr-defined]
    ActionAuthenticatorMixin._authenticate_and_authorize_action = _authenticate_and_authorize_action
    _installed = True


def _watch_parent(parent_pid: int) -> None:
    while True:
        time.sleep(1.0)
        try:
            os.kill(parent_pid, 0)
        except ProcessLookupError:
            os.kill(os.getpid(), signal.SIGTERM)
            return
        except PermissionError:
            pass
        if os.getppid() != parent_pid and os.getppid() == 1:
            os.kill(os.getpid(), signal.SIGTERM)
            return


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=0)
    parser.add_argument("--port-file", default=None)
    parser.add_argument("--parent-pid", type=int, default=None)
    args = parser.parse_args(argv)

    install_patch()

    from werkzeug.serving import make_server
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    app = DomainDispatcherApplication(create_backend_app)
    app.debug = True  # type: ignore[attr-defined]  # as moto.server.main does
    server = make_server(args.host, args.port, app, threaded=True)
    port = server.server_port
    os.environ.setdefault("MOTO_PORT", str(port))

    def _stop(signum, frame):  # noqa: ARG001
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    if args.parent_pid:
        threading.Thread(target=_watch_parent, args=(args.parent_pid,), daemon=True).start()

    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w", encoding="ascii") as f:
            f.write(f"{port}\n")
        os.replace(tmp, args.port_file)
    print(f"moto_server_fixed (moto {moto.__version__}) listening on http://{args.host}:{port}", flush=True)
    try:
        server.serve_forever()
    except SystemExit:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
