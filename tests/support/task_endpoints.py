"""What AWS provides inside an ECS task and nothing here does, as small servers on 127.0.0.1:
the task metadata endpoint v4, the container credentials endpoint (and the status webhook a
task posts to), and a proxy in front of
moto_server that verifies every request's Signature Version 4 signature against the served
credentials (moto_server accepts any signature; its own check mis-handles encoded queries).
Each is started by a fixture and shut down by it."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import http.client
import json
import re
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

_AUTHORIZATION = re.compile(r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<scope>[^,]+), ?"
                            r"SignedHeaders=(?P<signed>[^,]+), ?Signature=(?P<signature>[0-9a-f]+)")


@contextlib.contextmanager
def serving(handler: type[BaseHTTPRequestHandler], **attributes: Any) -> Iterator[str]:
    """`handler` on a free 127.0.0.1 port (attributes set on its class), yielding its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("Handler", (handler,), attributes))
    # shutdown() waits for serve_forever's next poll: 0.5 s by default, on every exit.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class _Quiet(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *_: object) -> None:
        pass

    def reply(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


# --- task metadata endpoint v4 --------------------------------------------------------------

class _Metadata(_Quiet):
    tasks: dict[str, str]  # path prefix -> TaskARN

    def do_GET(self) -> None:
        prefix, _, rest = self.path.strip("/").partition("/")
        if rest != "task" or prefix not in self.tasks:
            self.reply(404, b"{}")
            return
        self.reply(200, json.dumps({"TaskARN": self.tasks[prefix], "Family": "test"}).encode())


@dataclass
class Metadata:
    """One server for many tasks: `uri(arn)` is the ECS_CONTAINER_METADATA_URI_V4 of one."""

    url: str
    tasks: dict[str, str]

    def uri(self, task_arn: str) -> str:
        prefix = task_arn.rsplit("/", 1)[-1]
        self.tasks[prefix] = task_arn
        return f"{self.url}/{prefix}"


@contextlib.contextmanager
def metadata_endpoint() -> Iterator[Metadata]:
    tasks: dict[str, str] = {}
    with serving(_Metadata, tasks=tasks) as url:
        yield Metadata(url, tasks)


# --- the status webhook ----------------------------------------------------------------------

class _Webhook(_Quiet):
    received: list[dict]

    def do_POST(self) -> None:
        self.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.reply(204, b"")


@contextlib.contextmanager
def webhook() -> Iterator[tuple[str, list[dict]]]:
    """A status webhook's URL (with a secret-looking path) and the bodies posted to it."""
    received: list[dict] = []
    with serving(_Webhook, received=received) as url:
        yield f"{url}/hook-{secrets.token_hex(8)}", received


# --- container credentials endpoint ---------------------------------------------------------

@dataclass(frozen=True)
class Credentials:
    key: str
    secret: str
    token: str

    @classmethod
    def new(cls) -> Credentials:
        return cls("ASIA" + secrets.token_hex(8).upper(), secrets.token_urlsafe(30),
                   secrets.token_urlsafe(60))


class _Credentials(_Quiet):
    served: Credentials
    path_served: str
    hits: list[str]  # the User-Agent of each request

    def do_GET(self) -> None:
        self.hits.append(self.headers.get("User-Agent", ""))
        if self.path != self.path_served:
            self.reply(404, b"{}")
            return
        expiration = dt.datetime.now(dt.UTC) + dt.timedelta(hours=6)
        self.reply(200, json.dumps({
            "AccessKeyId": self.served.key, "SecretAccessKey": self.served.secret,
            "Token": self.served.token, "Expiration": expiration.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }).encode())


@dataclass
class CredentialsEndpoint:
    url: str  # AWS_CONTAINER_CREDENTIALS_FULL_URI
    hits: list[str]


@contextlib.contextmanager
def credentials_endpoint(served: Credentials) -> Iterator[CredentialsEndpoint]:
    path = f"/v2/credentials/{secrets.token_hex(8)}"
    hits: list[str] = []
    with serving(_Credentials, served=served, path_served=path, hits=hits) as url:
        yield CredentialsEndpoint(url + path, hits)


# --- a SigV4-verifying proxy in front of moto_server ---------------------------------------

def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def _canonical_query(query: str) -> str:
    pairs = [part if "=" in part else part + "=" for part in query.split("&") if part]
    return "&".join(sorted(pairs, key=lambda pair: pair.split("=", 1)))


def signature_problem(method: str, raw_path: str, headers: Any, body: bytes,
                      expected: Credentials) -> str | None:
    """Why the request is not signed with `expected` (AWS Signature Version 4, built from the
    request as it came: path and query as encoded by the client); None if it is."""
    found = _AUTHORIZATION.fullmatch(headers.get("Authorization", ""))
    if found is None:
        return "no SigV4 Authorization header (anonymous or other credentials)"
    if found["key"] != expected.key:
        return f"access key {found['key']}, not the served one"
    signed = found["signed"].split(";")
    if headers.get("X-Amz-Security-Token") != expected.token or "x-amz-security-token" \
            not in signed:
        return "the served session token is not signed in"
    path, _, query = raw_path.partition("?")
    canonical_headers = "".join(
        f"{name}:{','.join(' '.join(v.split()) for v in headers.get_all(name, []))}\n"
        for name in signed)
    payload = headers.get("X-Amz-Content-Sha256") or hashlib.sha256(body).hexdigest()
    canonical = "\n".join([method, path, _canonical_query(query), canonical_headers,
                           found["signed"], payload])
    date, region, service, _ = found["scope"].split("/")
    to_sign = "\n".join(["AWS4-HMAC-SHA256", headers.get("X-Amz-Date", ""), found["scope"],
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = b"AWS4" + expected.secret.encode()
    for part in (date, region, service, "aws4_request"):
        key = _hmac(key, part)
    if hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest() != found["signature"]:
        return "signature does not match the served secret key"
    return None


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    user_agent: str
    service: str
    problem: str | None


_HOP_BY_HOP = {"connection", "transfer-encoding", "keep-alive"}


class _Proxy(_Quiet):
    upstream: str
    expected: Credentials
    seen: list[Seen]

    def _handle(self) -> None:
        if "chunked" in self.headers.get("Transfer-Encoding", ""):
            self.reply(400, b"chunked request bodies are not supported by this proxy")
            return
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        problem = signature_problem(self.command, self.path, self.headers, body, self.expected)
        scope = _AUTHORIZATION.fullmatch(self.headers.get("Authorization", ""))
        self.seen.append(Seen(self.command, self.path, self.headers.get("User-Agent", ""),
                              scope["scope"].split("/")[2] if scope else "", problem))
        if problem is not None:
            self.reply(403, (f"<Error><Code>SignatureDoesNotMatch</Code><Message>proxy: "
                             f"{problem}</Message></Error>").encode(), "application/xml")
            return
        target = urlsplit(self.upstream)
        connection = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
        try:
            connection.request(self.command, self.path, body=body or None, headers={
                k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP})
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        self.send_response(response.status)
        for name, value in response.getheaders():
            if name.lower() not in _HOP_BY_HOP | {"content-length"}:
                self.send_header(name, value)
        length = response.getheader("Content-Length") if self.command == "HEAD" else None
        self.send_header("Content-Length", length or str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle


@dataclass
class Proxy:
    url: str
    seen: list[Seen] = field(default_factory=list)


@contextlib.contextmanager
def signing_proxy(upstream: str, expected: Credentials) -> Iterator[Proxy]:
    seen: list[Seen] = []
    with serving(_Proxy, upstream=upstream, expected=expected, seen=seen) as url:
        yield Proxy(url, seen)
