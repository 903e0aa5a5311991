"""A local HTTP endpoint that stands in for SES and SNS when they fail, for real boto3 clients.

Each request is counted, then answered as the test asked: held past the client's read
timeout, dropped without an answer, or answered with a 5xx or a throttling error (the AWS
query protocol's error document). Counting requests shows how many times a message would
have reached AWS.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from django.test import override_settings

from sesshu import aws

_ERROR = (
    '<ErrorResponse xmlns="http://ses.amazonaws.com/doc/2010-12-01/">'
    "<Error><Type>{kind}</Type><Code>{code}</Code><Message>test</Message></Error>"
    "<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
)


class AwsFault:
    """``mode``: ``hang`` (answer nothing for ``hang_seconds``), ``drop`` (close the connection
    after reading the request), ``500`` (InternalFailure), ``throttle`` (400 Throttling)."""

    def __init__(self, mode: str, *, hang_seconds: float = 3.0) -> None:
        self.mode = mode
        self.hang_seconds = hang_seconds
        self.requests: list[str] = []
        self._lock = threading.Lock()
        self.url = ""

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length).decode("utf-8", "replace")
        action = next(
            (part[7:] for part in body.split("&") if part.startswith("Action=")),
            handler.headers.get("X-Amz-Target", ""),
        )
        with self._lock:
            self.requests.append(action)
        if self.mode == "hang":
            time.sleep(self.hang_seconds)
            handler.close_connection = True
            return
        if self.mode == "drop":
            handler.close_connection = True
            return
        status, kind, code = (
            (500, "Receiver", "InternalFailure")
            if self.mode == "500"
            else (400, "Sender", "Throttling")
        )
        payload = _ERROR.format(kind=kind, code=code).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "text/xml")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)


@contextmanager
def aws_fault(mode: str, *, read_timeout: float = 1.0) -> Iterator[AwsFault]:
    """Point ``sesshu.aws.client`` at a failing endpoint (read timeout shortened) for a while."""
    fault = AwsFault(mode, hang_seconds=read_timeout + 2)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            fault.answer(self)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fault.url = f"http://127.0.0.1:{server.server_address[1]}"
    aws.clear_clients()
    try:
        with override_settings(AWS_ENDPOINT_URL=fault.url, AWS_READ_TIMEOUT_SECONDS=read_timeout):
            yield fault
    finally:
        aws.clear_clients()
        server.shutdown()
        server.server_close()
