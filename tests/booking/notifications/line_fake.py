"""A local stand-in for LINE's API, strict about what it accepts.

- ``POST /v2/bot/message/push``: checks the bearer token, JSON content type, a UUID
  ``X-Line-Retry-Key``, and the body's shape (``to`` a user id, 1-5 text messages of at most
  5,000 characters). Like LINE, a retry key seen before is answered 409 with the id of the
  request that was accepted, and is not delivered again.
- ``POST /oauth2/v2.1/token``: checks the form (grant type, code, redirect URI, client id and
  secret) and answers with an ID token the test prepared.

Failures can be queued (``fail_next``) to exercise retries.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.parse
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

USER_ID = re.compile(r"^U[0-9a-f]{32}$")


@dataclass
class Push:
    retry_key: str
    to: str
    texts: list[str]
    request_id: str


@dataclass
class LineFake:
    access_token: str
    channel_id: str = ""
    channel_secret: str = ""
    redirect_uri: str = ""
    code: str = ""
    id_token: str = ""
    delivered: list[Push] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    failures: list[int] = field(default_factory=list)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, *statuses: int) -> None:
        with self.lock:
            self.failures.extend(statuses)

    def delivered_keys(self) -> list[str]:
        with self.lock:
            return [push.retry_key for push in self.delivered]


def _handler(fake: LineFake) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

        def _reply(self, status: int, body: dict[str, Any], **headers: str) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(raw)

        def _refuse(self, status: int, why: str) -> None:
            with fake.lock:
                fake.refused.append(why)
            self._reply(status, {"message": why})

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            if self.path == "/v2/bot/message/push":
                self._push(raw)
            elif self.path == "/oauth2/v2.1/token":
                self._token(raw)
            else:
                self._refuse(404, f"unknown path {self.path}")

        def _push(self, raw: bytes) -> None:
            retry_key = self.headers.get("X-Line-Retry-Key", "")
            with fake.lock:
                fake.requests.append({"retry_key": retry_key, "path": self.path})
                failure = fake.failures.pop(0) if fake.failures else None
            if self.headers.get("Authorization") != f"Bearer {fake.access_token}":
                return self._refuse(401, "Authentication failed")
            if not self.headers.get("Content-Type", "").startswith("application/json"):
                return self._refuse(415, "content type")
            try:
                uuid.UUID(retry_key)
            except ValueError:
                return self._refuse(400, "The retry key must be a UUID")
            try:
                body = json.loads(raw)
            except ValueError:
                return self._refuse(400, "body is not JSON")
            messages = body.get("messages")
            if (
                set(body) - {"to", "messages", "notificationDisabled", "customAggregationUnits"}
                or not isinstance(body.get("to"), str)
                or not USER_ID.match(body["to"])
                or not isinstance(messages, list)
                or not 1 <= len(messages) <= 5
                or any(
                    set(m) != {"type", "text"}
                    or m["type"] != "text"
                    or not isinstance(m["text"], str)
                    or not 0 < len(m["text"]) <= 5000
                    for m in messages
                )
            ):
                return self._refuse(400, "The request body has 1 error(s)")
            if failure is not None:
                return self._reply(failure, {"message": "injected failure"})
            with fake.lock:
                earlier = next((p for p in fake.delivered if p.retry_key == retry_key), None)
                if earlier is None:
                    push = Push(
                        retry_key=retry_key,
                        to=body["to"],
                        texts=[m["text"] for m in messages],
                        request_id=str(uuid.uuid4()),
                    )
                    fake.delivered.append(push)
            if earlier is not None:
                return self._reply(
                    409,
                    {"message": "The retry key is already accepted"},
                    **{"x-line-accepted-request-id": earlier.request_id},
                )
            self._reply(
                200, {"sentMessages": [{"id": "1"}]}, **{"x-line-request-id": push.request_id}
            )

        def _token(self, raw: bytes) -> None:
            form = dict(urllib.parse.parse_qsl(raw.decode()))
            expected = {
                "grant_type": "authorization_code",
                "code": fake.code,
                "redirect_uri": fake.redirect_uri,
                "client_id": fake.channel_id,
                "client_secret": fake.channel_secret,
            }
            if form != expected:
                return self._refuse(400, "invalid_grant")
            self._reply(
                200,
                {
                    "access_token": "at",
                    "token_type": "Bearer",
                    "expires_in": 2592000,
                    "scope": "openid",
                    "id_token": fake.id_token,
                },
            )

    return Handler


class LineServer:
    def __init__(self, fake: LineFake) -> None:
        self.fake = fake
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
        host, port = self.server.server_address[:2]
        fake.url = f"http://{host}:{port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> LineFake:
        self.thread.start()
        return self.fake

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
